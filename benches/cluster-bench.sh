#!/usr/bin/env bash
# redis-benchmark against Cachalot dynamic clusters of 1 and 3 shards (formed with
# scripts/local-cluster.sh), a Redis Cluster of 3 masters and a plain Redis node, one after
# the other in the same run. redis-benchmark refuses --cluster against a one-node cluster,
# so the 1-shard rows run without it (the node is in cluster mode and owns every slot).
# Usage: benches/cluster-bench.sh   (after cargo build --release -p cachalot-server;
# needs redis-server, redis-cli and redis-benchmark; ports 7201-7401)
set -u
cd /work/main
run1() { redis-benchmark -p "$1" -t set,get -n 200000 -c 50 -q 2>&1 | tr '\r' '\n' | grep -E '^(SET|GET): .*per second' | tr '\n' ' '; echo; }
run() { redis-benchmark --cluster -p "$1" -t set,get -n 200000 -c 50 -q 2>&1 | tr '\r' '\n' | grep -E '^(SET|GET): .*per second' | tr '\n' ' '; echo; }
for shards in 1 3; do
  port=$((7100 + shards * 100 + 1))
  CACHALOT_CLUSTER_DIR=$(mktemp -d) scripts/local-cluster.sh $shards $port > /tmp/lc$shards.log 2>&1 &
  lc=$!
  for _ in $(seq 1 300); do grep -q "cluster of" /tmp/lc$shards.log && break; sleep 0.1; done
  for r in 1 2; do
    if ((shards == 1)); then echo "cachalot 1 shard (cluster mode, no --cluster: redis-benchmark refuses 1-node clusters) run $r: $(run1 $port)";
    else echo "cachalot $shards shards run $r: $(run $port)"; fi
  done
  kill $lc 2>/dev/null; wait $lc 2>/dev/null
done
rm -rf /tmp/rc && mkdir -p /tmp/rc
for p in 7301 7302 7303; do
  redis-server --port $p --cluster-enabled yes --cluster-config-file /tmp/rc/nodes-$p.conf --dir /tmp/rc --save "" --appendonly no --daemonize no > /tmp/rc/$p.log 2>&1 &
done
sleep 1
redis-cli --cluster create 127.0.0.1:7301 127.0.0.1:7302 127.0.0.1:7303 --cluster-yes > /tmp/rc/create.log 2>&1
for _ in $(seq 1 100); do redis-cli -p 7301 cluster info | grep -q "cluster_state:ok" && break; sleep 0.1; done
sleep 1
for r in 1 2; do echo "redis 3 masters run $r: $(run 7301)"; done
for p in 7301 7302 7303; do redis-cli -p $p shutdown nosave >/dev/null 2>&1; done
redis-server --port 7401 --save "" --appendonly no > /tmp/rc/single.log 2>&1 &
sleep 0.5
for r in 1 2; do echo "redis 1 node (no cluster) run $r: $(run1 7401)"; done
redis-cli -p 7401 shutdown nosave >/dev/null 2>&1
