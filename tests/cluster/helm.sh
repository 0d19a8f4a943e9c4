#!/usr/bin/env bash
# helm, pinned, built from the Go module proxy (helm.sh/helm/v4) and cached beside the control plane; prints its
# path. The first call builds it (a few minutes), later ones return at once.
set -euo pipefail
version=v4.3.2
command -v go >/dev/null || { echo "helm.sh: go is not installed (helm is built from the Go module proxy)" >&2; exit 2; }
cache=${PULLSECRET_INJECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pullsecret-injector}
out=$cache/tools/helm-$version
if [ ! -x "$out/helm" ]; then
  mkdir -p "$out"
  exec 9>"$out/.lock"
  flock 9
  if [ ! -x "$out/helm" ]; then
    echo "helm.sh: building helm $version" >&2
    # Go's caches go to a scratch folder removed afterwards: only the binary is kept (the caches are ~1 GB).
    export GOCACHE="$out/go-scratch/build" GOMODCACHE="$out/go-scratch/mod"
    GOBIN=$out CGO_ENABLED=0 go install -trimpath "helm.sh/helm/v4/cmd/helm@$version"
    go clean -modcache >/dev/null 2>&1 || true
    rm -rf "$out/go-scratch"
  fi
fi
echo "$out/helm"
