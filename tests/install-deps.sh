#!/usr/bin/env bash
# Installs the real programs the tests use, when missing: Debian's docker-registry (the Distribution registry) and
# skopeo, and PyPI's kubernetes-validate. Needs root for apt-get; says exactly what is missing otherwise.
set -euo pipefail

missing_apt=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || missing_apt+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing_apt+=(skopeo)
command -v kubectl >/dev/null 2>&1 || { echo "install-deps: kubectl is needed (kubectl kustomize renders the manifests); install kubectl 1.32" >&2; exit 2; }
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

if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "install-deps: pip install kubernetes-validate"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate || {
    echo "install-deps: could not pip install kubernetes-validate (needed by tests/validate-manifests.sh)" >&2
    exit 2
  }
fi
echo "install-deps: docker-registry, skopeo, kubectl, kubernetes-validate present"
