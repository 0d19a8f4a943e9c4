#!/usr/bin/env bash
# Builds the real Kubernetes programs the tests use, from the module pinned in tests/cluster/go.mod, and prints the
# folder that holds them. Each is built once per (Go version, go.mod, go.sum, its own sources); later runs reuse it
# in about a second. The cache is outside the work tree, so fresh clones (CI) reuse it too.
#   bin/etcd  bin/kube-apiserver  bin/kube-controller-manager  bin/kubelet-oracle
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

command -v go >/dev/null || { echo "build.sh: go is not installed (the control plane is built from the Go module proxy)" >&2; exit 2; }
release=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
[ -n "$release" ] || { echo "build.sh: go.mod does not require k8s.io/kubernetes" >&2; exit 2; }
cache=${PULLSECRET_INJECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pullsecret-injector}
out="$cache/control-plane/$release"
mkdir -p "$out/bin"
exec 9>"$out/.lock"
flock 9 # one build at a time; a second caller waits, then finds the programs built

minor=$(echo "$release" | cut -d. -f2)
version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $pkg.gitVersion=$release -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
export CGO_ENABLED=0
# Go >= 1.27 turns the jsonv2 experiment on, which breaks kube-openapi's /openapi/v2 (kubectl apply then fails
# validation). Off is the behaviour of the Go the release was built with.
case "$(go env GOVERSION)" in go1.2[0-6]|go1.2[0-6].*) ;; *) export GOEXPERIMENT=nojsonv2 ;; esac

# Go's build and module caches for these programs take ~4 GB, more than the binaries ever need again: they live in a
# scratch folder that is removed once the build is done (a later rebuild, after a go.mod change, starts cold).
scratch="$out/go-scratch"
export GOCACHE="$scratch/build" GOMODCACHE="$scratch/mod"
trim_go_caches() { [ ! -d "$scratch" ] || { go clean -modcache >/dev/null 2>&1 || true; rm -rf "$scratch"; }; }

# Each program is rebuilt only when what it is built from changes: the Go version, the module graph and its own
# source folder (so editing the oracle never relinks kube-apiserver).
build() { # program package [source folder]
  local key
  key=$( { go version; echo "${GOEXPERIMENT:-}"; cat go.mod go.sum; [ -z "${3:-}" ] || find "$3" -type f -print0 | sort -z | xargs -0 cat; } | sha256sum | cut -c1-16)
  [ -x "$out/bin/$1" ] && [ "$(cat "$out/bin/$1.key" 2>/dev/null)" = "$key" ] && return 0
  echo "build.sh: building $1 ($release)" >&2
  go build -trimpath -tags providerless -ldflags "-s -w$version_flags" -o "$out/bin/$1.tmp" "$2"
  mv "$out/bin/$1.tmp" "$out/bin/$1"
  echo "$key" >"$out/bin/$1.key"
}
build etcd ./etcd etcd
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kubelet-oracle ./kubelet-oracle kubelet-oracle
trim_go_caches
echo "$out"
