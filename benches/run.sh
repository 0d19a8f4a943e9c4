#!/usr/bin/env bash
# `make bench`: every benchmark of BENCHMARKS.md, then one table, also written to target/bench/report.md
# (under $CARGO_TARGET_DIR when set).
#
#   BENCH_DURATION=10     seconds of each end-to-end load (after 1 s of warm-up)
#   BENCH_CONNECTIONS=32  keep-alive connections (and concurrent new connections)
#   BENCH_RATE=2000       reviews/s of the fixed-rate run
#   BENCH_SCALE=10000,100000   pull Secrets of the scale suite, local and cluster mode (ten per namespace, plus
#                              one Opaque per namespace); `none` skips it. 10,000 takes about 3 minutes, 100,000
#                              about 20 (creating them through the API is most of it)
#   BENCH_RELIST_SECONDS=45    seconds of 2,000 reviews/s while the cache relists (scale suite)
#
# Nothing here leaves the machine: the servers listen on 127.0.0.1 and are killed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
out=$target/bench
duration=${BENCH_DURATION:-10}
connections=${BENCH_CONNECTIONS:-32}
rate=${BENCH_RATE:-2000}
mkdir -p "$out"
rm -f "$out/e2e.tsv"

echo "== build (release profile)"
cargo build --locked --release --bin pullsecret-injector
cargo bench --locked --no-run --bench decision --bench loadgen --bench refserver --bench cluster --bench memory
executable() {
  cargo bench --locked --no-run --bench "$1" --message-format=json 2>/dev/null \
    | grep "\"kind\":\[\"bench\"\]" | grep "\"name\":\"$1\"" \
    | grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/'
}
decision=$(executable decision)
loadgen=$(executable loadgen)
refserver=$(executable refserver)
cluster=$(executable cluster)
memory=$(executable memory)

load=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${load%% *}" 'BEGIN { exit !(l > 0.5) }'; then
  echo "warning: load average is $load: other work on this machine will distort the figures" >&2
fi

echo "== decision core (divan)"
"$decision" --bench | tee "$out/decision.txt"

echo "== end to end over TLS on loopback (${duration} s per load, ${connections} connections, ${rate}/s fixed rate)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$loadgen" suite --server-bin "$target/release/pullsecret-injector" --refserver-bin "$refserver" --work "$work" \
  --record "$out/e2e.tsv" --duration "$duration" --connections "$connections" --rate "$rate" | tee "$out/e2e.txt"

scale=${BENCH_SCALE:-10000,100000}
if [ "$scale" != none ]; then
  echo "== scale suite: $scale pull Secrets, local mode and cluster mode against the real kube-apiserver"
  rm -f "$out/scale.png"
  "$memory" run --secrets "${scale##*,}" | tee "$out/memory.txt"
  "$cluster" scale --server-bin "$target/release/pullsecret-injector" --loadgen-bin "$loadgen" --work "$work/scale" \
    --sizes "$scale" --relist-seconds "${BENCH_RELIST_SECONDS:-45}" --record "$out/e2e.tsv" --plot "$out/scale.png" \
    | tee "$out/scale.txt"
fi

{
  echo "## make bench, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), \
$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r), $(rustc --version | cut -d' ' -f1-2); \
load average before the run: $load. Load generator and servers share the machine."
  echo
} > "$out/report.md"
"$loadgen" report --decision "$out/decision.txt" --records "$out/e2e.tsv" >> "$out/report.md"
echo
echo "== report (also in $out/report.md)"
cat "$out/report.md"
