#!/usr/bin/env bash
# Starts a local Cachalot cluster on loopback: N shards x R replicas, formed the way a
# real one is (the first node starts the cluster, every other node joins it with
# --cluster-join), each node with its own data directory. Ctrl-C stops them all; the data
# directories stay in $CACHALOT_CLUSTER_DIR (default: a new temporary directory).
#
# Usage: scripts/local-cluster.sh [N] [FIRST_PORT] [R]   (defaults: 3, 7001, 0)
# Environment: CACHALOT_SERVER_BIN (default target/release/cachalot-server).
#
# Replicas follow their shard's primary and take over if it fails (cluster-node-timeout).
set -euo pipefail

n="${1:-3}"
first_port="${2:-7001}"
replicas="${3:-0}"
bin="${CACHALOT_SERVER_BIN:-target/release/cachalot-server}"
if [[ ! -x "$bin" ]]; then
    echo "no server binary at $bin: run 'cargo build --release' or set CACHALOT_SERVER_BIN" >&2
    exit 1
fi
root="${CACHALOT_CLUSTER_DIR:-$(mktemp -d -t cachalot-cluster.XXXXXX)}"

pids=()
stop() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait
}
trap stop EXIT INT TERM

# Waits until the node on port $1 reports no slot migrating and $2 known nodes.
settle() {
    for _ in $(seq 1 600); do
        info="$(redis-cli -p "$1" cluster info 2>/dev/null || true)"
        if grep -q "cluster_slots_migrating:0" <<<"$info" &&
            grep -q "cluster_known_nodes:$2" <<<"$info"; then
            return 0
        fi
        sleep 0.1
    done
    echo "the cluster did not settle" >&2
    return 1
}

start() { # port, extra flags...
    local port="$1"
    shift
    mkdir -p "$root/$port"
    "$bin" --port "$port" --cluster-enabled yes --dir "$root/$port" "$@" &
    pids+=("$!")
}

port="$first_port"
nodes=0
for ((s = 1; s <= n; s++)); do
    if ((s == 1)); then
        start "$port"
    else
        start "$port" --cluster-join "127.0.0.1:$first_port"
    fi
    nodes=$((nodes + 1))
    port=$((port + 1))
    settle "$first_port" "$nodes"
    for ((r = 1; r <= replicas; r++)); do
        start "$port" --cluster-join "127.0.0.1:$first_port" --cluster-replica-of "$s"
        nodes=$((nodes + 1))
        port=$((port + 1))
        settle "$first_port" "$nodes"
    done
done

echo "cluster of $n shards x $replicas replicas on ports $first_port-$((port - 1)); data in $root"
echo "try: redis-cli -c -p $first_port set foo bar; redis-cli -p $first_port cluster nodes"
wait
