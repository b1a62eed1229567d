//! Cluster mode with a static shard list: three real nodes on loopback started with the
//! same `--cluster-shards`, driven by plain clients, `redis-cli -c`, `redis-benchmark
//! --cluster` and the `redis` crate's async cluster client.

#[path = "support/raw.rs"]
mod raw;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use cachalot_protocol::{key_slot, SLOT_COUNT};
use cachalot_server::cluster::{node_id, parse_shard_list, ShardId, Topology};
use cachalot_tests::{benchmark_cluster, free_port, run_tool, ServerProcess, StaticCluster};
use raw::{bulk_payload, elements, int_of, Raw};
use redis::AsyncCommands;

/// Shards in the test cluster.
const NODES: usize = 3;
/// Keys written through each cluster-aware client.
const KEYS: usize = 300;

/// Three nodes started with one shard list; shard `i + 1` is `nodes[i]`.
struct Cluster {
    inner: StaticCluster,
    nodes: Vec<ServerProcess>,
}

impl Cluster {
    fn start() -> Cluster {
        let mut inner = StaticCluster::start(NODES, &[]);
        let nodes = inner.take_nodes();
        Cluster { inner, nodes }
    }

    /// The slot map the ring computes for this shard list, as node 1 sees it.
    fn topology(&self) -> Topology {
        let peers = parse_shard_list(self.inner.shard_list()).expect("valid shard list");
        Topology::new(&peers, ShardId::new(1)).expect("valid topology")
    }

    /// The node that owns `key`'s slot.
    fn owner_of(&self, topology: &Topology, key: &str) -> &ServerProcess {
        let owner = topology.slot_map().owner(key_slot(key.as_bytes()));
        &self.nodes[usize::try_from(owner.get() - 1).expect("small id")]
    }

    fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(ServerProcess::url).collect()
    }
}

/// A key owned by `owner` and not by the node it is sent to.
fn key_owned_by(cluster: &Cluster, topology: &Topology, owner: usize) -> String {
    (0..)
        .map(|i| format!("probe:{i}"))
        .find(|k| cluster.owner_of(topology, k).port() == cluster.nodes[owner].port())
        .expect("some key hashes to every shard")
}

#[test]
fn cluster_slots_cover_every_slot_once_and_match_the_ring() {
    let cluster = Cluster::start();
    let topology = cluster.topology();
    let mut replies = Vec::new();
    for node in &cluster.nodes {
        let reply = Raw::connect(node.addr()).call(&[b"CLUSTER", b"SLOTS"]);
        let mut owner_of_slot = vec![None; usize::from(SLOT_COUNT)];
        for range in elements(&reply) {
            let parts = elements(&range);
            assert_eq!(parts.len(), 3, "no replicas: start, end, primary");
            let (start, end) = (int_of(&parts[0]), int_of(&parts[1]));
            assert!(0 <= start && start <= end && end < i64::from(SLOT_COUNT));
            let primary = elements(&parts[2]);
            assert_eq!(primary.len(), 4, "ip, port, id, metadata");
            assert_eq!(bulk_payload(&primary[0]), b"127.0.0.1");
            let port = u16::try_from(int_of(&primary[1])).expect("port");
            let id = String::from_utf8(bulk_payload(&primary[2])).expect("hex id");
            assert_eq!(primary[3], b"*0\r\n", "no extra endpoints");
            for slot in start..=end {
                let seen = &mut owner_of_slot[usize::try_from(slot).expect("slot")];
                assert!(seen.is_none(), "slot {slot} listed twice");
                *seen = Some((port, id.clone()));
            }
        }
        for (slot, owner) in owner_of_slot.iter().enumerate() {
            let (port, id) = owner
                .as_ref()
                .unwrap_or_else(|| panic!("slot {slot} missing"));
            let slot = cachalot_protocol::SlotId::new(u16::try_from(slot).expect("slot"))
                .expect("in range");
            let shard = topology.slot_map().owner(slot);
            let peer = topology.peer(shard).expect("member");
            assert_eq!(*port, peer.peer.addr.port(), "slot {} owner", slot.get());
            assert_eq!(*id, node_id(shard));
        }
        replies.push(reply);
    }
    assert!(
        replies.windows(2).all(|w| w[0] == w[1]),
        "every node reports the same map"
    );
}

#[test]
fn cluster_info_nodes_shards_and_myid_describe_the_same_cluster() {
    let cluster = Cluster::start();
    let topology = cluster.topology();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let mut con = Raw::connect(node.addr());
        let me = node_id(ShardId::new(u64::try_from(i + 1).expect("id")));
        let myid = con.call(&[b"CLUSTER", b"MYID"]);
        assert_eq!(bulk_payload(&myid), me.as_bytes());

        let info =
            String::from_utf8(bulk_payload(&con.call(&[b"CLUSTER", b"INFO"]))).expect("text");
        for line in [
            "cluster_state:ok\r\n",
            "cluster_slots_assigned:16384\r\n",
            "cluster_slots_ok:16384\r\n",
            "cluster_known_nodes:3\r\n",
            "cluster_size:3\r\n",
            "cluster_current_epoch:3\r\n",
            &format!("cluster_my_epoch:{}\r\n", i + 1),
        ] {
            assert!(info.contains(line), "{line:?} in {info:?}");
        }

        let nodes =
            String::from_utf8(bulk_payload(&con.call(&[b"CLUSTER", b"NODES"]))).expect("text");
        let lines: Vec<&str> = nodes.lines().collect();
        assert_eq!(lines.len(), NODES);
        let mut slots_listed = 0u32;
        for line in &lines {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields[0].len(), 40);
            let port: u16 = fields[1]
                .split_once('@')
                .and_then(|(a, _)| a.rsplit_once(':'))
                .and_then(|(_, p)| p.parse().ok())
                .expect("ip:port@cport");
            let mine = fields[0] == me;
            assert_eq!(mine, port == node.port());
            assert_eq!(fields[2], if mine { "myself,master" } else { "master" });
            assert_eq!(&fields[3..6], ["-", "0", "0"]);
            assert_eq!(fields[7], "connected");
            for range in &fields[8..] {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                let (a, b): (u32, u32) = (a.parse().expect("slot"), b.parse().expect("slot"));
                slots_listed += b - a + 1;
            }
        }
        assert_eq!(slots_listed, u32::from(SLOT_COUNT));

        let shards = elements(&con.call(&[b"CLUSTER", b"SHARDS"]));
        assert_eq!(shards.len(), NODES);
        for shard in &shards {
            let fields = elements(shard);
            assert_eq!(bulk_payload(&fields[0]), b"slots");
            assert_eq!(bulk_payload(&fields[2]), b"nodes");
            let shard_nodes = elements(&fields[3]);
            assert_eq!(shard_nodes.len(), 1);
            let node_fields: Vec<Vec<u8>> = elements(&shard_nodes[0]);
            let names: Vec<Vec<u8>> = node_fields
                .iter()
                .step_by(2)
                .map(|f| bulk_payload(f))
                .collect();
            let want: [&[u8]; 7] = [
                b"id",
                b"port",
                b"ip",
                b"endpoint",
                b"role",
                b"replication-offset",
                b"health",
            ];
            assert_eq!(names, want);
            let id = String::from_utf8(bulk_payload(&node_fields[1])).expect("hex");
            let shard_id = topology
                .peers()
                .iter()
                .find(|p| p.node_id == id)
                .expect("a member")
                .peer
                .id;
            let pairs = elements(&fields[1]);
            let count: i64 = pairs
                .chunks(2)
                .map(|p| int_of(&p[1]) - int_of(&p[0]) + 1)
                .sum();
            assert_eq!(count, i64::from(topology.slot_map().slot_count(shard_id)));
        }
        let keyslot = con.call(&[b"CLUSTER", b"KEYSLOT", b"somekey"]);
        assert_eq!(int_of(&keyslot), 11058);
        for ok in [&b"READONLY"[..], b"READWRITE", b"ASKING"] {
            assert_eq!(con.call(&[ok]), b"+OK\r\n");
        }
        assert_eq!(
            con.call(&[b"CLUSTER", b"SETSLOT", b"1", b"STABLE"]),
            b"-ERR unknown subcommand 'SETSLOT'. Try CLUSTER HELP.\r\n"
        );
    }
}

/// The keys of `slot` that the node behind `con` lists (at most `count`), sorted.
fn keys_in_slot(con: &mut Raw, slot: u16, count: usize) -> Vec<String> {
    let slot = slot.to_string();
    let count = count.to_string();
    let reply = con.call_str(&["CLUSTER", "GETKEYSINSLOT", &slot, &count]);
    let mut keys: Vec<String> = elements(reply.as_bytes())
        .iter()
        .map(|k| String::from_utf8(bulk_payload(k)).expect("text"))
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn countkeysinslot_and_getkeysinslot_list_each_nodes_live_keys() {
    let cluster = Cluster::start();
    let topology = cluster.topology();
    let client = redis::cluster::ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut con = client.get_async_connection().await.expect("connect");
    // Plain keys spread over all nodes, one hash-tagged slot with many keys, and keys
    // that expire before the counting.
    let mut live: Vec<String> = (0..KEYS).map(|i| format!("slot:{i}")).collect();
    live.extend((0..40).map(|i| format!("{{crowd}}{i}")));
    for k in &live {
        let () = con.set(k, "v").await.expect("SET");
    }
    for i in 0..10 {
        let () = con
            .pset_ex(format!("{{crowd}}short{i}"), "v", 50)
            .await
            .expect("PSETEX");
        let () = con
            .pset_ex(format!("short:{i}"), "v", 50)
            .await
            .expect("PSETEX");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let mut by_slot: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for k in &live {
        by_slot
            .entry(key_slot(k.as_bytes()).get())
            .or_default()
            .push(k.clone());
    }
    for keys in by_slot.values_mut() {
        keys.sort();
    }
    let crowd = key_slot(b"crowd").get();
    assert_eq!(by_slot[&crowd].len(), 40);
    let mut seen = 0;
    for node in &cluster.nodes {
        let mut raw = Raw::connect(node.addr());
        for (&slot, keys) in &by_slot {
            let owner = cluster.owner_of(&topology, &keys[0]);
            let mine = owner.port() == node.port();
            let slot_arg = slot.to_string();
            let count = int_of(
                &raw.call_str(&["CLUSTER", "COUNTKEYSINSLOT", &slot_arg])
                    .into_bytes(),
            );
            let listed = keys_in_slot(&mut raw, slot, 1000);
            if mine {
                assert_eq!(
                    count,
                    i64::try_from(keys.len()).expect("small"),
                    "slot {slot}"
                );
                assert_eq!(&listed, keys, "slot {slot}");
                seen += keys.len();
            } else {
                assert_eq!(count, 0, "slot {slot} is not on port {}", node.port());
                assert!(listed.is_empty(), "slot {slot}: {listed:?}");
            }
        }
        if cluster.owner_of(&topology, "{crowd}").port() == node.port() {
            let some = keys_in_slot(&mut raw, crowd, 7);
            assert_eq!(some.len(), 7);
            assert!(some.iter().all(|k| by_slot[&crowd].contains(k)), "{some:?}");
            assert_eq!(
                raw.call_str(&["CLUSTER", "GETKEYSINSLOT", &crowd.to_string(), "0"]),
                "*0\r\n"
            );
        }
    }
    assert_eq!(
        seen,
        live.len(),
        "every live key is counted on exactly one node"
    );
}

#[test]
fn slot_key_commands_refuse_bad_arguments_in_redis_words() {
    let cluster = Cluster::start();
    let mut con = Raw::connect(cluster.nodes[0].addr());
    let not_int = "-ERR value is not an integer or out of range\r\n";
    let cases: [(&[&str], &str); 15] = [
        (&["-1"], "-ERR Invalid slot\r\n"),
        (&["16384"], "-ERR Invalid slot\r\n"),
        (&["99999999999999999999"], not_int),
        (&["abc"], not_int),
        (&["+1"], not_int),
        (&["01"], not_int),
        (&["1.5"], not_int),
        (&["16384", "1"], "-ERR Invalid slot or number of keys\r\n"),
        (&["-1", "1"], "-ERR Invalid slot or number of keys\r\n"),
        (&["1", "-1"], "-ERR Invalid slot or number of keys\r\n"),
        (&["abc", "-1"], not_int),
        (&["16384", "abc"], not_int),
        (&["1", "abc"], not_int),
        (
            &[],
            "-ERR wrong number of arguments for 'cluster|countkeysinslot' command\r\n",
        ),
        (
            &["1", "2", "3"],
            "-ERR wrong number of arguments for 'cluster|getkeysinslot' command\r\n",
        ),
    ];
    for (args, want) in cases {
        let sub = if args.len() <= 1 {
            "COUNTKEYSINSLOT"
        } else {
            "GETKEYSINSLOT"
        };
        let mut request = vec!["CLUSTER", sub];
        request.extend_from_slice(args);
        assert_eq!(con.call_str(&request), want, "{request:?}");
    }
    assert_eq!(
        con.call_str(&["cluster", "countkeysinslot", "16383"]),
        ":0\r\n"
    );
    assert_eq!(
        con.call_str(&["CLUSTER", "GETKEYSINSLOT", "0", "9223372036854775807"]),
        "*0\r\n"
    );
    let help = elements(&con.call(&[b"CLUSTER", b"HELP"]));
    let lines: Vec<String> = help
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    for line in [
        "+COUNTKEYSINSLOT <slot>\r\n",
        "+    Return the number of keys in <slot>.\r\n",
        "+GETKEYSINSLOT <slot> <count>\r\n",
        "+    Return key names stored by current node in a slot.\r\n",
    ] {
        assert!(lines.iter().any(|l| l == line), "{line:?} in {lines:?}");
    }
    let docs = con.call_str(&["COMMAND", "DOCS", "cluster"]);
    assert!(
        docs.contains("$23\r\ncluster|countkeysinslot\r\n"),
        "{docs}"
    );
    assert!(docs.contains("$21\r\ncluster|getkeysinslot\r\n"), "{docs}");
}

#[test]
fn plain_clients_get_moved_and_crossslot_in_redis_words() {
    let cluster = Cluster::start();
    let topology = cluster.topology();
    let elsewhere = key_owned_by(&cluster, &topology, 1);
    let here = key_owned_by(&cluster, &topology, 0);
    let mut con = Raw::connect(cluster.nodes[0].addr());
    let slot = key_slot(elsewhere.as_bytes()).get();
    let moved = format!("-MOVED {slot} 127.0.0.1:{}\r\n", cluster.nodes[1].port());
    assert_eq!(con.call_str(&["GET", &elsewhere]), moved);
    assert_eq!(con.call_str(&["SET", &elsewhere, "v"]), moved);
    assert_eq!(con.call_str(&["SET", &here, "v"]), "+OK\r\n");
    assert_eq!(con.call_str(&["GET", &here]), "$1\r\nv\r\n");
    assert_eq!(
        con.call_str(&["MSET", "a", "1", "b", "2"]),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(
        con.call_str(&["DEL", &here, &elsewhere]),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    // Hash tags put keys in one slot; whichever node owns it answers or redirects.
    let tagged = con.call_str(&["MSET", "{t}a", "1", "{t}b", "2"]);
    let tag_owner = cluster.owner_of(&topology, "{t}");
    let tag_here = tag_owner.port() == cluster.nodes[0].port();
    if tag_here {
        assert_eq!(tagged, "+OK\r\n");
    } else {
        let slot = key_slot(b"{t}").get();
        assert_eq!(
            tagged,
            format!("-MOVED {slot} 127.0.0.1:{}\r\n", tag_owner.port())
        );
    }
    // Commands without keys run on any node; there is one database, as in Redis Cluster.
    assert_eq!(con.call_str(&["PING"]), "+PONG\r\n");
    assert_eq!(con.call_str(&["SELECT", "0"]), "+OK\r\n");
    assert_eq!(
        con.call_str(&["SELECT", "1"]),
        "-ERR SELECT is not allowed in cluster mode\r\n"
    );
    let local_keys = if tag_here { 3 } else { 1 };
    assert_eq!(con.call_str(&["DBSIZE"]), format!(":{local_keys}\r\n"));
}

#[test]
fn redis_cli_in_cluster_mode_lands_every_key_on_its_owner() {
    let cluster = Cluster::start();
    let topology = cluster.topology();
    let port = cluster.nodes[0].port().to_string();
    let mut script = String::new();
    for i in 0..KEYS {
        script.push_str(&format!("SET cli:{i} value:{i}\n"));
    }
    let out = run_tool("redis-cli", &["-c", "-p", &port], script.as_bytes());
    assert!(out.status.success(), "redis-cli: {}", out.stderr);
    assert_eq!(out.stdout.matches("OK").count(), KEYS, "{}", out.stdout);

    let mut expected: BTreeMap<u16, usize> = BTreeMap::new();
    for i in 0..KEYS {
        *expected
            .entry(cluster.owner_of(&topology, &format!("cli:{i}")).port())
            .or_default() += 1;
    }
    for node in &cluster.nodes {
        let mut con = Raw::connect(node.addr());
        let keys = elements(&con.call(&[b"KEYS", b"cli:*"]));
        assert_eq!(keys.len(), expected.get(&node.port()).copied().unwrap_or(0));
        for k in keys {
            let key = String::from_utf8(bulk_payload(&k)).expect("text");
            assert_eq!(
                cluster.owner_of(&topology, &key).port(),
                node.port(),
                "{key}"
            );
        }
    }
    // Reading back through another node follows the redirects too.
    let last = cluster.nodes[NODES - 1].port().to_string();
    let mut script = String::new();
    for i in 0..KEYS {
        script.push_str(&format!("GET cli:{i}\n"));
    }
    let out = run_tool("redis-cli", &["-c", "-p", &last], script.as_bytes());
    assert!(out.status.success(), "redis-cli: {}", out.stderr);
    let values: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("value:"))
        .collect();
    assert_eq!(values.len(), KEYS, "{}", out.stdout);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(*v, format!("value:{i}"));
    }
}

#[tokio::test]
async fn the_redis_crate_cluster_client_reads_and_writes_many_keys() {
    let cluster = Cluster::start();
    let client = redis::cluster::ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut con = client
        .get_async_connection()
        .await
        .expect("connect to the cluster");
    for i in 0..KEYS {
        let () = con
            .set(format!("crate:{i}"), format!("v{i}"))
            .await
            .expect("SET through the cluster client");
    }
    for i in 0..KEYS {
        let v: String = con.get(format!("crate:{i}")).await.expect("GET");
        assert_eq!(v, format!("v{i}"));
    }
    let () = con
        .mset(&[("{user:1}name", "ann"), ("{user:1}city", "oslo")])
        .await
        .expect("MSET in one slot");
    let both: Vec<String> = con
        .mget(&["{user:1}name", "{user:1}city"])
        .await
        .expect("MGET in one slot");
    assert_eq!(both, ["ann", "oslo"]);
    let topology = cluster.topology();
    let mut total = 0;
    for node in &cluster.nodes {
        let mut raw = Raw::connect(node.addr());
        let keys = elements(&raw.call(&[b"KEYS", b"crate:*"]));
        for k in &keys {
            let key = String::from_utf8(bulk_payload(k)).expect("text");
            assert_eq!(
                cluster.owner_of(&topology, &key).port(),
                node.port(),
                "{key}"
            );
        }
        total += keys.len();
    }
    assert_eq!(total, KEYS);
}

#[test]
fn redis_benchmark_runs_in_cluster_mode() {
    let cluster = Cluster::start();
    benchmark_cluster(cluster.nodes[0].port(), NODES);
}

#[test]
fn without_cluster_mode_cluster_commands_are_refused() {
    let node = ServerProcess::start();
    let mut con = Raw::connect(node.addr());
    let disabled = "-ERR This instance has cluster support disabled\r\n";
    assert_eq!(con.call_str(&["CLUSTER", "INFO"]), disabled);
    assert_eq!(con.call_str(&["CLUSTER", "SLOTS"]), disabled);
    assert_eq!(con.call_str(&["READONLY"]), disabled);
    assert_eq!(con.call_str(&["ASKING"]), disabled);
    let info = String::from_utf8(bulk_payload(&con.call(&[b"INFO", b"cluster"]))).expect("text");
    assert_eq!(info, "# Cluster\r\ncluster_enabled:0\r\n");
    assert_eq!(
        con.call_str(&["CONFIG", "GET", "cluster-enabled"]),
        "*2\r\n$15\r\ncluster-enabled\r\n$2\r\nno\r\n"
    );
    // Every key is served locally.
    assert_eq!(con.call_str(&["MSET", "a", "1", "b", "2"]), "+OK\r\n");
}

#[test]
fn bad_cluster_settings_stop_the_node_with_exit_code_2() {
    let port = free_port().to_string();
    let cases: [&[&str]; 4] = [
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-shards",
            "1@127.0.0.1",
            "--cluster-id",
            "1",
        ],
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-shards",
            "1@127.0.0.1:7001,1@127.0.0.1:7002",
            "--cluster-id",
            "1",
        ],
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-shards",
            "1@127.0.0.1:7001",
            "--cluster-id",
            "2",
        ],
        &["--cluster-shards", "1@127.0.0.1:7001", "--cluster-id", "1"],
    ];
    for args in cases {
        let out = Command::new(cachalot_tests::server_binary())
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(args)
            .env_remove("CACHALOT_PORT")
            .stdin(Stdio::null())
            .output()
            .expect("run cachalot-server");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            log.contains("refusing to start") && log.contains("cluster"),
            "{log}"
        );
    }
}
