#!/usr/bin/env bash
# A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager, built by
# tests/cluster/build.sh from the pinned k8s.io/kubernetes release. No kubelet and no container runtime: Pods are
# admitted and stored, never run.
#
#   control-plane.sh up DIR    start in the foreground; state, logs and kubeconfig under DIR (created, throwaway)
#
# It prints `ready` on stdout once kube-apiserver answers /readyz and the `default` ServiceAccount exists in
# `default`, then keeps running until it is killed or a component dies (then it exits 1 with that component's log
# tail). Every component is started with a parent-death signal, so killing this script (even with SIGKILL) stops
# all of it: nothing is left behind. SIGHUP restarts kube-apiserver (kill -9 and start again on the same etcd),
# printing `restarted` when it is ready again.
#
# DIR/kubeconfig      admin (system:masters) kubeconfig, token-authenticated
# DIR/env             KUBECONFIG, APISERVER, ETCD (etcd's client URL), ADMIN_TOKEN, CA_FILE: sourceable
# DIR/logs/*.log      each component's output
#
# Throwaway by design: etcd runs with --unsafe-no-fsync and the stop is SIGKILL (a graceful stop with open watches
# takes a minute).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ "${1:-}" = up ] && [ -n "${2:-}" ] || { echo "usage: control-plane.sh up DIR" >&2; exit 2; }
dir=$(mkdir -p "$2" && cd "$2" && pwd)
bin=${PULLSECRET_INJECTOR_KUBE_BIN:-$("$here/build.sh")}/bin
for program in etcd kube-apiserver kube-controller-manager; do
  [ -x "$bin/$program" ] || { echo "control-plane.sh: $bin/$program is missing (run tests/cluster/build.sh)" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "control-plane.sh: openssl is needed for the throwaway PKI" >&2; exit 2; }
command -v setpriv >/dev/null || { echo "control-plane.sh: setpriv (util-linux) is needed" >&2; exit 2; }
mkdir -p "$dir/pki" "$dir/logs"

# Four free loopback ports, chosen by the kernel.
read -r etcd_port peer_port api_port kcm_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')

# --- PKI: one CA signs the API server's serving certificate; a token file authenticates the admin. ---
pki=$dir/pki
openssl_quiet() { openssl "$@" 2>/dev/null; }
openssl_quiet ecparam -name prime256v1 -genkey -noout -out "$pki/ca.key"
openssl_quiet req -x509 -new -key "$pki/ca.key" -subj "/CN=pullsecret-injector-test-ca" -days 2 -out "$pki/ca.crt"
openssl_quiet ecparam -name prime256v1 -genkey -noout -out "$pki/apiserver.key"
openssl_quiet req -new -key "$pki/apiserver.key" -subj "/CN=kube-apiserver" -out "$pki/apiserver.csr"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' \
  > "$pki/apiserver.ext"
openssl_quiet x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
  -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt"
openssl_quiet ecparam -name prime256v1 -genkey -noout -out "$pki/sa.key"
openssl_quiet ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
admin_token=$(openssl rand -hex 24)
echo "$admin_token,admin,admin,system:masters" > "$pki/tokens.csv"

cat > "$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$pki/ca.crt"}
users:
- name: admin
  user: {token: "$admin_token"}
contexts:
- name: local
  context: {cluster: local, user: admin, namespace: default}
current-context: local
EOF
cat > "$dir/env" <<EOF
export KUBECONFIG=$dir/kubeconfig
export APISERVER=https://127.0.0.1:$api_port
export ETCD=http://127.0.0.1:$etcd_port
export ADMIN_TOKEN=$admin_token
export CA_FILE=$pki/ca.crt
EOF

# --- Components: each dies with this script (parent-death signal), none outlives it. ---
declare -A pids=()
start() { # name args...
  local name=$1; shift
  setpriv --pdeathsig KILL -- "$bin/$name" "$@" >>"$dir/logs/$name.log" 2>&1 &
  pids[$name]=$!
}
stop_all() { for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done; }
trap stop_all EXIT
die() { # name: a component is gone
  echo "control-plane.sh: $1 stopped; last lines of $dir/logs/$1.log:" >&2
  tail -n 20 "$dir/logs/$1.log" >&2 || true
  exit 1
}
wait_for() { # what url [curl args...]: poll until the URL answers 2xx, at most 60 s, failing fast if a component died
  local what=$1 url=$2; shift 2
  for _ in $(seq 600); do
    if curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; then return 0; fi
    for name in "${!pids[@]}"; do kill -0 "${pids[$name]}" 2>/dev/null || die "$name"; done
    sleep 0.1
  done
  echo "control-plane.sh: $what not ready after 60 s (logs in $dir/logs)" >&2
  exit 1
}

start etcd --name default --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "default=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level warn
wait_for etcd "http://127.0.0.1:$etcd_port/health"

start_apiserver() {
  start kube-apiserver --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --endpoint-reconciler-type none \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
    --token-auth-file "$pki/tokens.csv" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc --api-audiences https://kubernetes.default.svc \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=true --profiling=false
  wait_for kube-apiserver "https://127.0.0.1:$api_port/readyz" --cacert "$pki/ca.crt" \
    -H "Authorization: Bearer $admin_token"
}
start_apiserver

# clusterrole-aggregation-controller fills the built-in `admin`, `edit` and `view` ClusterRoles (tenants in the tests
# are bound to `edit`, as on a real cluster).
start kube-controller-manager --kubeconfig "$dir/kubeconfig" --leader-elect=false --secure-port 0 \
  --controllers namespace-controller,serviceaccount-controller,serviceaccount-token-controller,garbage-collector-controller,replicaset-controller,deployment-controller,job-controller,cronjob-controller,resourcequota-controller,clusterrole-aggregation-controller \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" --use-service-account-credentials=false
# Pods are refused until their namespace's `default` ServiceAccount exists: that is what "ready" means here.
wait_for "the default ServiceAccount" "https://127.0.0.1:$api_port/api/v1/namespaces/default/serviceaccounts/default" \
  --cacert "$pki/ca.crt" -H "Authorization: Bearer $admin_token"

restart_apiserver() {
  kill -KILL "${pids[kube-apiserver]}" 2>/dev/null || true
  wait "${pids[kube-apiserver]}" 2>/dev/null || true
  unset 'pids[kube-apiserver]'
  start_apiserver
  echo restarted
}
restart_requested=false
trap 'restart_requested=true' HUP

echo ready
while true; do
  # `wait -n` returns when a component exits or a trapped signal arrives.
  wait -n "${pids[@]}" 2>/dev/null || true
  if $restart_requested; then restart_requested=false; restart_apiserver; continue; fi
  for name in "${!pids[@]}"; do kill -0 "${pids[$name]}" 2>/dev/null || die "$name"; done
done
