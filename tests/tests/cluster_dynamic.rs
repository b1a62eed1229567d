//! Dynamic clusters: membership replicated with raft, formed with `--cluster-join`, and
//! resharded online. Real processes on loopback, driven by `redis-cli -c`,
//! `redis-benchmark --cluster`, the `redis` crate's cluster client and ours.

#[path = "support/raw.rs"]
mod raw;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cachalot_protocol::{SlotId, SLOT_COUNT};
use cachalot_server::cluster::{HashRing, RingConfig, ShardId, ShardSet};
use cachalot_tests::{benchmark_cluster, command, command_as, run_tool, DynamicCluster};
use raw::{elements, int_of, Raw};
use redis::AsyncCommands;

/// The owner port of every slot, from one node's `CLUSTER SLOTS`; each slot listed once.
fn slot_owners(addr: std::net::SocketAddr) -> Vec<u16> {
    let reply = Raw::connect(addr).call(&[b"CLUSTER", b"SLOTS"]);
    let mut owners = vec![0u16; usize::from(SLOT_COUNT)];
    for range in elements(&reply) {
        let parts = elements(&range);
        let (start, end) = (int_of(&parts[0]), int_of(&parts[1]));
        let port = u16::try_from(int_of(&elements(&parts[2])[1])).expect("port");
        for slot in start..=end {
            let seen = &mut owners[usize::try_from(slot).expect("slot")];
            assert_eq!(*seen, 0, "slot {slot} listed twice");
            *seen = port;
        }
    }
    assert!(owners.iter().all(|&p| p != 0), "every slot has an owner");
    owners
}

/// The ports of the nodes, by shard id (node `i` created shard `i + 1`).
fn ports_by_shard(cluster: &DynamicCluster) -> BTreeMap<u64, u16> {
    (0..cluster.len())
        .filter(|&i| cluster.running().contains(&i))
        .map(|i| (u64::try_from(i + 1).expect("small"), cluster.node(i).port()))
        .collect()
}

#[test]
fn three_nodes_join_into_three_shards_that_match_the_ring_and_elect_three_voters() {
    let cluster = DynamicCluster::start(3, &[]);
    let expected = HashRing::new(
        &ShardSet::uniform([1, 2, 3].map(ShardId::new)).expect("shards"),
        RingConfig::default(),
    )
    .expect("ring")
    .slot_map();
    let ports = ports_by_shard(&cluster);
    let first = slot_owners(cluster.node(0).addr());
    for i in cluster.running() {
        assert_eq!(
            slot_owners(cluster.node(i).addr()),
            first,
            "node {i} agrees"
        );
    }
    for (slot, port) in first.iter().enumerate() {
        let slot = SlotId::new(u16::try_from(slot).expect("slot")).expect("in range");
        assert_eq!(
            ports[&expected.owner(slot).get()],
            *port,
            "slot {}",
            slot.get()
        );
    }
    let info = cluster.info(0);
    assert_eq!(info["cluster_known_nodes"], "3");
    assert_eq!(info["cluster_size"], "3");
    assert_eq!(
        info["cluster_raft_voters"].split(',').count(),
        3,
        "{info:?}"
    );
    let leaders: Vec<String> = cluster
        .running()
        .iter()
        .map(|&i| cluster.info(i)["cluster_raft_leader"].clone())
        .collect();
    assert!(leaders.iter().all(|l| l.len() == 40 && *l == leaders[0]));
    // CLUSTER NODES lists every node once, with this node flagged.
    let nodes = command(cluster.node(1).addr(), &["CLUSTER", "NODES"]).expect("nodes");
    assert_eq!(nodes.lines().count(), 3);
    assert_eq!(nodes.matches("myself,master").count(), 1);
}

#[test]
fn cluster_aware_tools_work_against_a_joined_cluster() {
    let cluster = DynamicCluster::start(3, &[]);
    let port = cluster.node(2).port().to_string();
    let script: String = (0..300).map(|i| format!("SET tool:{i} v{i}\n")).collect();
    let out = run_tool("redis-cli", &["-c", "-p", &port], script.as_bytes());
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout.matches("OK").count(), 300, "{}", out.stdout);
    let script: String = (0..300).map(|i| format!("GET tool:{i}\n")).collect();
    let out = run_tool("redis-cli", &["-c", "-p", &port], script.as_bytes());
    let values: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("-> Redirected"))
        .collect();
    assert_eq!(values.len(), 300);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(*v, format!("v{i}"));
    }
    benchmark_cluster(cluster.node(2).port(), 3);
}

#[test]
fn admin_commands_refuse_bad_input_with_redis_style_errors() {
    let cluster = DynamicCluster::start(2, &[]);
    let addr = cluster.node(1).addr();
    let refused = |args: &[&str], needle: &str| {
        let err = command(addr, args).expect_err(needle);
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    refused(&["CLUSTER", "REWEIGHT", "1", "0"], "between 1 and 64");
    refused(&["CLUSTER", "REWEIGHT", "1", "65"], "between 1 and 64");
    refused(&["CLUSTER", "REWEIGHT", "7", "2"], "no shard 7");
    refused(&["CLUSTER", "REWEIGHT", "x", "2"], "not an integer");
    refused(&["CLUSTER", "REMOVESHARD", "9"], "no shard 9");
    refused(&["CLUSTER", "FORGET", "abc"], "Unknown node abc");
    refused(
        &["CLUSTER", "JOIN", "5", "nowhere", "17000"],
        "Invalid node address",
    );
    refused(
        &["CLUSTER", "JOIN", "5", "127.0.0.1:1", "17000", "WEIGHT"],
        "syntax error",
    );
    refused(&["CLUSTER", "REWEIGHT", "1"], "wrong number of arguments");
    // A node that serves slots cannot be forgotten.
    let id = command(addr, &["CLUSTER", "MYID"]).expect("myid");
    refused(&["CLUSTER", "FORGET", &id], "still serves slots");
    // Removing every shard is refused at the last one.
    command(addr, &["CLUSTER", "REMOVESHARD", "1"]).expect("drains shard 1");
    cluster.wait_settled_with(1);
    refused(&["CLUSTER", "REMOVESHARD", "2"], "last shard");
}

#[test]
fn nodes_with_a_password_join_with_it() {
    let cluster = DynamicCluster::start(2, &["--requirepass", "s3cret"]);
    let b = cluster.node(1).addr();
    assert!(command(b, &["CLUSTER", "INFO"])
        .expect_err("needs AUTH")
        .starts_with("NOAUTH"));
    assert_eq!(
        command_as(b, Some("s3cret"), &["CLUSTER", "INFO"])
            .expect("info")
            .lines()
            .find(|l| l.starts_with("cluster_known_nodes:")),
        Some("cluster_known_nodes:2")
    );
}

#[test]
fn a_restarted_node_rejoins_with_its_identity_and_serves_its_slots() {
    let mut cluster = DynamicCluster::start(3, &[]);
    let id = command(cluster.node(1).addr(), &["CLUSTER", "MYID"]).expect("myid");
    let owners = slot_owners(cluster.node(0).addr());
    cluster.kill(1);
    cluster.restart(1);
    cluster.wait_settled();
    assert_eq!(
        command(cluster.node(1).addr(), &["CLUSTER", "MYID"]).expect("myid"),
        id
    );
    assert_eq!(
        slot_owners(cluster.node(1).addr()),
        owners,
        "same map after rejoin"
    );
    assert_eq!(cluster.info(1)["cluster_known_nodes"], "3");
    // It takes writes for its own slots again.
    let port = cluster.node(1).port();
    let key = (0..)
        .map(|i| format!("rejoin:{i}"))
        .find(|k| owners[usize::from(cachalot_protocol::key_slot(k.as_bytes()).get())] == port)
        .expect("some key is node 1's");
    assert_eq!(
        command(cluster.node(1).addr(), &["SET", &key, "back"]).expect("set"),
        "OK"
    );
    raw::eventually(
        "the restarted node hears from the leader",
        Duration::from_secs(30),
        || {
            let info = cluster.info(1);
            let role = info.get("cluster_raft_role")?;
            let leader = info.get("cluster_raft_leader")?;
            ((role == "follower" || role == "leader") && leader.len() == 40).then_some(())
        },
    );
}

#[test]
fn values_ttls_and_hashes_move_with_their_slots() {
    let mut cluster = DynamicCluster::start(1, &[]);
    let a = cluster.node(0).addr();
    for i in 0..500 {
        command(a, &["SET", &format!("s:{i}"), &format!("v{i}")]).expect("set");
    }
    command(a, &["SET", "n:counter", "41"]).expect("set");
    command(a, &["APPEND", "n:raw", "abc"]).expect("append");
    command(a, &["SET", "t:ttl", "x", "EX", "1000"]).expect("set ex");
    command(a, &["HSET", "h:hash", "f1", "v1", "f2", "v2"]).expect("hset");
    cluster.add_node(&[]);
    cluster.wait_settled();
    let b = cluster.node(1).addr();
    let moved: u64 = cluster.info(1)["cluster_migration_keys_received"]
        .parse()
        .expect("count");
    assert!(
        (150..=354).contains(&moved),
        "about half of 504 keys moved: {moved}"
    );
    let dbsize = |addr| {
        command(addr, &["DBSIZE"])
            .expect("dbsize")
            .parse::<u64>()
            .expect("n")
    };
    assert_eq!(dbsize(a) + dbsize(b), 504, "nothing lost, nothing doubled");
    let follow = |args: &[&str]| {
        let run = run_tool(
            "redis-cli",
            &[&["-c", "-p", &a.port().to_string()][..], args].concat(),
            b"",
        );
        run.stdout.trim().to_string()
    };
    for i in (0..500).step_by(7) {
        assert_eq!(follow(&["GET", &format!("s:{i}")]), format!("v{i}"));
    }
    assert_eq!(follow(&["INCR", "n:counter"]), "42");
    assert_eq!(follow(&["GET", "n:raw"]), "abc");
    let ttl: i64 = follow(&["TTL", "t:ttl"]).parse().expect("ttl");
    assert!((990..=1000).contains(&ttl), "{ttl}");
    assert_eq!(follow(&["HGETALL", "h:hash"]), "f1\nv1\nf2\nv2");
}

/// What one writer ends with: the last acknowledged value per key, and every problem.
type WriterResult = (BTreeMap<String, u64>, Vec<String>);

/// Writers that each own their keys: SET a new value, record it once acknowledged, read
/// it back. Returns the last acknowledged value per key, read failures, and errors.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<WriterResult>>,
}

impl Load {
    fn start(urls: Vec<String>, seeds: Vec<String>, writers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
            let (urls, seeds) = (urls.clone(), seeds.clone());
            tasks.push(tokio::spawn(async move {
                let mut last = BTreeMap::new();
                let mut problems = Vec::new();
                // Half the writers use the redis crate's cluster client, half ours.
                let foreign = w % 2 == 0;
                let mut redis_con = if foreign {
                    Some(
                        redis::cluster::ClusterClient::new(urls)
                            .expect("client")
                            .get_async_connection()
                            .await
                            .expect("connect"),
                    )
                } else {
                    None
                };
                let ours = if foreign {
                    None
                } else {
                    Some(
                        cachalot_client::Client::connect(seeds)
                            .await
                            .expect("connect"),
                    )
                };
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("load:{w}:{}", n % 400);
                    let value = n.to_string();
                    let set = match (&mut redis_con, &ours) {
                        (Some(c), _) => c
                            .set::<_, _, ()>(&key, &value)
                            .await
                            .map_err(|e| e.to_string()),
                        (_, Some(c)) => c
                            .set(&key, &value)
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        _ => unreachable!(),
                    };
                    match set {
                        Ok(()) => {
                            last.insert(key.clone(), n);
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => problems.push(format!("SET {key}: {e}")),
                    }
                    let got: Result<Option<String>, String> = match (&mut redis_con, &ours) {
                        (Some(c), _) => c.get(&key).await.map_err(|e| e.to_string()),
                        (_, Some(c)) => c
                            .get(&key)
                            .await
                            .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
                            .map_err(|e| e.to_string()),
                        _ => unreachable!(),
                    };
                    if let Some(&want) = last.get(&key) {
                        match got {
                            Ok(Some(v)) if v == want.to_string() => {}
                            other => problems.push(format!("GET {key}: {other:?}, want {want}")),
                        }
                    }
                    n += 1;
                }
                (last, problems)
            }));
        }
        Load { stop, acked, tasks }
    }

    async fn wait_for(&self, acked: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.acked.load(Ordering::Relaxed) < acked {
            assert!(tokio::time::Instant::now() < deadline, "load stalled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> WriterResult {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = BTreeMap::new();
        let mut problems = Vec::new();
        for t in self.tasks {
            let (last, p) = t.await.expect("writer");
            all.extend(last);
            problems.extend(p);
        }
        (all, problems)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_joins_and_another_leaves_under_load_and_no_acknowledged_write_is_lost() {
    let mut cluster = tokio::task::spawn_blocking(|| DynamicCluster::start(3, &[]))
        .await
        .expect("start");
    let urls: Vec<String> = cluster
        .running()
        .iter()
        .map(|&i| cluster.node(i).url())
        .collect();
    let seeds: Vec<String> = cluster
        .running()
        .iter()
        .map(|&i| cluster.node(i).addr().to_string())
        .collect();
    // Background keys, so that each migration lasts while the writers run.
    let port = cluster.node(0).port().to_string();
    let fill = run_tool(
        "redis-benchmark",
        &[
            "--cluster",
            "-p",
            &port,
            "-t",
            "set",
            "-n",
            "200000",
            "-r",
            "100000000",
            "-P",
            "32",
            "-c",
            "4",
            "-q",
        ],
        b"",
    );
    assert!(fill.status.success(), "{}", fill.stderr);
    let background = |c: &DynamicCluster| -> u64 {
        c.running()
            .iter()
            .map(|&i| {
                command(c.node(i).addr(), &["DBSIZE"])
                    .expect("dbsize")
                    .parse::<u64>()
                    .expect("n")
            })
            .sum()
    };
    let filled = background(&cluster);
    assert!(filled > 190_000, "{filled}");
    let load = Load::start(urls, seeds, 4);
    load.wait_for(2_000).await;

    // A fourth shard joins while the writers run.
    let before_join = load.acked.load(Ordering::Relaxed);
    let mut cluster = tokio::task::spawn_blocking(move || {
        cluster.add_node(&[]);
        cluster.wait_settled();
        cluster
    })
    .await
    .expect("join");
    let after_join = load.acked.load(Ordering::Relaxed);
    assert!(
        after_join > before_join,
        "writes were acknowledged during the join"
    );
    load.wait_for(after_join + 2_000).await;
    let received: u64 = cluster.info(3)["cluster_migration_keys_received"]
        .parse()
        .expect("count");
    assert!(received > 0, "the new shard received keys");

    // Shard 2 leaves while the writers run; once the others no longer list it, it is
    // stopped.
    let leaving = cluster.node(1).addr();
    let before_leave = load.acked.load(Ordering::Relaxed);
    command(cluster.node(0).addr(), &["CLUSTER", "REMOVESHARD", "2"]).expect("drain");
    let first = cluster.node(0).addr();
    let cluster = tokio::task::spawn_blocking(move || {
        raw::eventually(
            "the drained node leaves the configuration",
            Duration::from_secs(60),
            || {
                let nodes = command(first, &["CLUSTER", "NODES"]).ok()?;
                (nodes.lines().count() == 3).then_some(())
            },
        );
        assert_eq!(
            command(leaving, &["DBSIZE"]).expect("dbsize"),
            "0",
            "the drained node kept no keys"
        );
        cluster.kill(1);
        cluster.wait_settled();
        cluster
    })
    .await
    .expect("leave");
    let after_leave = load.acked.load(Ordering::Relaxed);
    assert!(
        after_leave > before_leave,
        "writes were acknowledged while the shard drained"
    );
    load.wait_for(after_leave + 2_000).await;
    let (acked, problems) = load.finish().await;
    assert!(
        problems.is_empty(),
        "{} problems, first: {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );

    // Every acknowledged key holds its last acknowledged value, read through the cluster.
    let urls: Vec<String> = [0usize, 2, 3]
        .iter()
        .map(|&i| cluster.node(i).url())
        .collect();
    let mut con = redis::cluster::ClusterClient::new(urls)
        .expect("client")
        .get_async_connection()
        .await
        .expect("connect");
    for (key, want) in &acked {
        let got: Option<String> = con.get(key).await.expect("GET");
        assert_eq!(got, Some(want.to_string()), "{key}");
    }
    let total: u64 = [0usize, 2, 3]
        .iter()
        .map(|&i| {
            command(cluster.node(i).addr(), &["DBSIZE"])
                .expect("dbsize")
                .parse::<u64>()
                .expect("n")
        })
        .sum();
    assert_eq!(
        total,
        filled + acked.len() as u64,
        "no key lost or left behind twice"
    );
}
