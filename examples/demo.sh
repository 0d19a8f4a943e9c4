#!/usr/bin/env bash
# The round-trip behind `make run` / `make demo`: start the real webhook over TLS on loopback with the example
# credentials, wait until it reports ready, send it an AdmissionReview the way the API server does, and show the
# answer: the JSON patch (decoded), the warnings, and the Pod with the patch applied.
#
# Usage: examples/demo.sh BINARY [--keep-running]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: examples/demo.sh BINARY [--keep-running]}
keep=${2:-}
port=${DEMO_PORT:-8443}
admin=${DEMO_ADMIN_PORT:-8080}

for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "demo: '$tool' is needed (apt-get install $tool)" >&2; exit 2; }
done
[ -f certs/tls.crt ] || "$bin" certs --out certs --dns localhost --ip 127.0.0.1 >/dev/null

"$bin" serve --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
  --tls-cert certs/tls.crt --tls-key certs/tls.key --secrets-dir examples/secrets \
  --shutdown-delay 0s &
server=$!
# On any exit, stop the server and wait for its drain. The script's own failure wins; otherwise the status is the
# server's: 0 after a clean stop. Ctrl-C (SIGINT to the whole process group, the server included) or SIGTERM is a
# clean stop, so `make run` ends with status 0, not 130.
finish() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$server" ]; then
    kill -TERM "$server" 2>/dev/null || true
    local served=0
    wait "$server" 2>/dev/null || served=$?
    if [ "$status" -eq 0 ]; then status=$served; fi
  fi
  exit "$status"
}
trap finish EXIT
trap 'exit 0' INT TERM

# Readiness is the signal: /readyz answers 200 once the certificate and the credentials are loaded.
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; then break; fi
  kill -0 $server 2>/dev/null || { echo "demo: the server exited" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null

echo
echo "== POST https://localhost:$port/mutate  (examples/review.json: a Pod in namespace 'shop', six images)"
response=$(curl -fsS --cacert certs/ca.crt -H 'Content-Type: application/json' \
  --data-binary @examples/review.json "https://localhost:$port/mutate")
echo "$response" | jq '{uid: .response.uid, allowed: .response.allowed, patchType: .response.patchType}'
echo "== patch (base64-decoded)"
patch=$(echo "$response" | jq -r '.response.patch // empty' | base64 -d)
echo "${patch:-[]}" | jq .
echo "== warnings (kubectl prints these as 'Warning: ...')"
echo "$response" | jq -r '.response.warnings[]? | "Warning: " + .'
echo "== imagePullSecrets of the Pod after the patch (the same decision, offline: pullsecret-injector mutate)"
"$bin" mutate --secrets examples/secrets -f examples/review.json -o json 2>/dev/null | jq -c '.spec.imagePullSecrets'
echo
echo "== why did the worker image get jdcloud? (pullsecret-injector explain)"
"$bin" explain myregistry-cn-north-1.jcr.service.jdcloud.com/shop/worker:1 --secrets examples/secrets -n shop

if [ "$keep" = "--keep-running" ]; then
  echo
  echo "The webhook keeps running: https://localhost:$port/mutate (CA: certs/ca.crt), metrics at http://127.0.0.1:$admin/metrics."
  echo "Edit examples/secrets/ and it reloads. Ctrl-C stops it."
  # Returns when the server exits on its own (its status, through finish), or when a signal runs the trap above.
  status=0
  wait "$server" || status=$?
  server=
  exit "$status"
fi
