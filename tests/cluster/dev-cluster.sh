#!/usr/bin/env bash
# `make dev-cluster` / `make dev-cluster-down`: a real Kubernetes API server on this machine with the webhook
# registered, for trying things by hand with kubectl. No Docker, no kubelet: Pods are admitted and stored, not run.
#
#   dev-cluster.sh up BINARY   start (state in target/dev-cluster), print the KUBECONFIG line
#   dev-cluster.sh down        stop everything and remove the state
#
# The webhook runs here as `BINARY serve` in cluster mode, authenticated with a token of the manifests'
# ServiceAccount (so it has exactly the manifests' RBAC, not the admin's), registered with the manifests' own
# MutatingWebhookConfiguration pointed at https://127.0.0.1:<port>/mutate with its CA.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
state=$root/target/dev-cluster

down() {
  for pidfile in "$state"/*.pid; do
    [ -e "$pidfile" ] || continue
    # Each was started in its own session: the negative pid is its whole process group.
    kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$state"
}

case "${1:-}" in
  down) down; echo "dev-cluster: stopped"; exit 0 ;;
  up) bin=$(cd "$(dirname "${2:?usage: dev-cluster.sh up BINARY}")" && pwd)/$(basename "$2") ;;
  *) echo "usage: dev-cluster.sh up BINARY | down" >&2; exit 2 ;;
esac
command -v kubectl >/dev/null || { echo "dev-cluster: kubectl is needed (make test-deps installs it)" >&2; exit 2; }
[ -d "$state" ] && { echo "dev-cluster: already running? run 'make dev-cluster-down' first ($state exists)" >&2; exit 2; }
mkdir -p "$state"
trap 'echo "dev-cluster: failed; logs in $state" >&2' ERR

kube_bin=$("$here/build.sh")
echo "dev-cluster: starting etcd, kube-apiserver, kube-controller-manager ($(basename "$kube_bin"))"
PULLSECRET_INJECTOR_KUBE_BIN=$kube_bin setsid "$here/control-plane.sh" up "$state/control-plane" \
  >"$state/control-plane.out" 2>"$state/control-plane.err" </dev/null &
echo $! >"$state/control-plane.pid"
for _ in $(seq 600); do
  grep -q '^ready$' "$state/control-plane.out" 2>/dev/null && break
  kill -0 "$(cat "$state/control-plane.pid")" 2>/dev/null || { cat "$state/control-plane.err" >&2; exit 1; }
  sleep 0.1
done
grep -q '^ready$' "$state/control-plane.out" || { echo "dev-cluster: control plane not ready after 60 s" >&2; exit 1; }
export KUBECONFIG=$state/control-plane/kubeconfig
# shellcheck disable=SC1091
source "$state/control-plane/env"

echo "dev-cluster: applying the manifests' namespace, RBAC and CRD"
kubectl kustomize "$root/manifests/base" | kubectl create --dry-run=client -o json -f - >"$state/manifests.json"
python3 - "$state/manifests.json" >"$state/rbac.json" <<'EOF'
import json, sys
text, items, at = open(sys.argv[1]).read(), [], 0
while text[at:].strip():  # kubectl prints one JSON document per object
    item, at = json.JSONDecoder().raw_decode(text, len(text) - len(text[at:].lstrip()))
    items.append(item)
keep = {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "CustomResourceDefinition"}
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": [o for o in items if o["kind"] in keep]}))
EOF
kubectl apply -f "$state/rbac.json" >/dev/null
kubectl wait --for=condition=Established --timeout=30s crd/clusterpullsecrets.pullsecret-injector.io >/dev/null
token=$(kubectl create token pullsecret-injector -n pullsecret-injector --duration=48h)
cat >"$state/webhook.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "$APISERVER", certificate-authority: "$CA_FILE"}
users:
- name: pullsecret-injector
  user: {token: "$token"}
contexts:
- name: local
  context: {cluster: local, user: pullsecret-injector}
current-context: local
EOF

echo "dev-cluster: starting the webhook"
"$bin" certs --out "$state/certs" --dns localhost --ip 127.0.0.1 >/dev/null 2>&1
KUBECONFIG=$state/webhook.kubeconfig setsid "$bin" serve --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --tls-cert "$state/certs/tls.crt" --tls-key "$state/certs/tls.key" --log-format text \
  >"$state/webhook.log" 2>&1 </dev/null &
echo $! >"$state/webhook.pid"
listen="" admin=""
for _ in $(seq 300); do
  line=$(grep -m1 ' serving ' "$state/webhook.log" 2>/dev/null || true)
  if [ -n "$line" ]; then
    listen=$(grep -o 'listen=[^ ]*' <<<"$line" | cut -d= -f2)
    admin=$(grep -o 'admin=[^ ]*' <<<"$line" | cut -d= -f2)
    break
  fi
  kill -0 "$(cat "$state/webhook.pid")" 2>/dev/null || { cat "$state/webhook.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$listen" ] || { echo "dev-cluster: the webhook did not start; see $state/webhook.log" >&2; exit 1; }
for _ in $(seq 300); do curl -fsS -o /dev/null "http://$admin/readyz" 2>/dev/null && break; sleep 0.1; done

python3 - "$state/manifests.json" "$listen" "$state/certs/ca.crt" >"$state/webhook.json" <<'EOF'
import base64, json, sys
text, items, at = open(sys.argv[1]).read(), [], 0
while text[at:].strip():
    item, at = json.JSONDecoder().raw_decode(text, len(text) - len(text[at:].lstrip()))
    items.append(item)
config = next(o for o in items if o["kind"] == "MutatingWebhookConfiguration")
ca = base64.b64encode(open(sys.argv[3], "rb").read()).decode()
for hook in config["webhooks"]:
    hook["clientConfig"] = {"url": f"https://{sys.argv[2]}/mutate", "caBundle": ca}
print(json.dumps(config))
EOF
kubectl apply -f "$state/webhook.json" >/dev/null
trap - ERR

cat <<EOF
dev-cluster: ready. The webhook answers on https://$listen/mutate (metrics: http://$admin/metrics).
  export KUBECONFIG=$KUBECONFIG
  kubectl create secret docker-registry regcred --docker-server=registry.example.com --docker-username=me --docker-password=secret
  kubectl create deployment web --image=registry.example.com/team/web:1.0
  kubectl get pods -o jsonpath='{.items[*].spec.imagePullSecrets}'
Logs: $state/webhook.log, $state/control-plane/logs/. Stop with: make dev-cluster-down
EOF
