#!/usr/bin/env bash
# Starts an N-shard Cachalot cluster on loopback with a static shard list, and stops it
# on Ctrl-C. Usage: scripts/local-cluster.sh [N] [FIRST_PORT]  (defaults: 3, 7001)
# Environment: CACHALOT_SERVER_BIN (default target/release/cachalot-server).
set -euo pipefail

n="${1:-3}"
first_port="${2:-7001}"
bin="${CACHALOT_SERVER_BIN:-target/release/cachalot-server}"
if [[ ! -x "$bin" ]]; then
    echo "no server binary at $bin: run 'cargo build --release' or set CACHALOT_SERVER_BIN" >&2
    exit 1
fi

shards=""
for ((i = 1; i <= n; i++)); do
    shards+="${shards:+,}${i}@127.0.0.1:$((first_port + i - 1))"
done

pids=()
stop() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait
}
trap stop EXIT INT TERM

for ((i = 1; i <= n; i++)); do
    port=$((first_port + i - 1))
    "$bin" --port "$port" --cluster-enabled yes --cluster-shards "$shards" --cluster-id "$i" &
    pids+=("$!")
done

echo "cluster of $n shards: $shards"
echo "try: redis-cli -c -p $first_port set foo bar; redis-cli -p $first_port cluster nodes"
wait
