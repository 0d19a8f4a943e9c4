#!/bin/sh
# Helm's rendered manifests on stdin; on stdout, the same stream with the imagePullSecrets the webhook would add.
# The arguments are Helm's --post-renderer-args: at least --secrets=PATH and --namespace=NAMESPACE (Helm gives a
# post-renderer no namespace, and renders namespaced objects without one). The chart's Secrets pass through
# (--pass-secrets). A denial (--deny-unmatched) fails the post-renderer, and Helm installs nothing.
exec "${PULLSECRET_INJECTOR_BIN:-pullsecret-injector}" mutate --pass-secrets "$@"
