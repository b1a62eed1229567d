//! Replication and failover in a dynamic cluster, with real processes: a killed primary
//! is replaced by its most up-to-date replica with every `WAIT`-acknowledged write kept; a
//! primary cut off from the majority stops taking writes; a paused primary comes back as a
//! replica of its successor; `CLUSTER FAILOVER` switches roles without losing a write;
//! replicas serve `READONLY` reads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachalot_protocol::key_slot;
use cachalot_tests::{command, info_field, wait_until, DynamicCluster};

/// `ROLE` of a node: `("master", None)` or `("slave", Some(primary port))`.
fn role(addr: SocketAddr) -> Option<(String, Option<u16>)> {
    let conn = redis::Client::open(format!("redis://{addr}/")).ok()?;
    let mut conn = conn
        .get_connection_with_timeout(Duration::from_secs(2))
        .ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let v: redis::Value = redis::cmd("ROLE").query(&mut conn).ok()?;
    let redis::Value::Array(items) = v else {
        return None;
    };
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let kind = text(items.first()?);
    let port = match (kind.as_str(), items.get(2)) {
        ("slave", Some(redis::Value::Int(p))) => u16::try_from(*p).ok(),
        _ => None,
    };
    Some((kind, port))
}

fn connect(addr: SocketAddr) -> redis::Connection {
    let c = redis::Client::open(format!("redis://{addr}/")).expect("client");
    let conn = c
        .get_connection_with_timeout(Duration::from_secs(2))
        .expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    conn
}

/// Keys whose slots the node on `port` owns (per `CLUSTER SLOTS` of `via`).
fn keys_owned_by(via: SocketAddr, port: u16, n: usize, prefix: &str) -> Vec<String> {
    let slots = command_slots(via);
    (0..)
        .map(|i| format!("{prefix}:{i}"))
        .filter(|k| slots.get(&key_slot(k.as_bytes()).get()) == Some(&port))
        .take(n)
        .collect()
}

/// Slot → owner port, from `CLUSTER SLOTS`.
fn command_slots(via: SocketAddr) -> BTreeMap<u16, u16> {
    let mut conn = connect(via);
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut conn)
        .expect("CLUSTER SLOTS");
    let mut out = BTreeMap::new();
    for r in ranges {
        let redis::Value::Array(parts) = r else {
            continue;
        };
        let int = |v: &redis::Value| match v {
            redis::Value::Int(n) => *n,
            _ => -1,
        };
        let (start, end) = (int(&parts[0]), int(&parts[1]));
        let redis::Value::Array(primary) = &parts[2] else {
            continue;
        };
        let port = u16::try_from(int(&primary[1])).expect("port");
        for s in start..=end {
            out.insert(u16::try_from(s).expect("slot"), port);
        }
    }
    out
}

/// Three shards; shard 1 (node 0) has two replicas (nodes 3 and 4).
fn cluster_with_replicas() -> DynamicCluster {
    let mut c = DynamicCluster::start(3, &[]);
    for shard in ["1", "1"] {
        c.add_node(&["--cluster-replica-of", shard]);
    }
    c.wait_settled();
    let primary = c.node(0).port();
    for i in [3, 4] {
        let addr = c.node(i).addr();
        wait_until("replicas to follow shard 1's primary", 30, || {
            role(addr) == Some(("slave".into(), Some(primary)))
                && replication_field(addr, "master_link_status") == "up"
        });
    }
    c
}

fn replication_field(addr: SocketAddr, name: &str) -> String {
    info_field(addr, "replication", name)
}

/// A key of shard 1 (named from `prefix`) set to `value` on its primary (node 0) and
/// acknowledged by both replicas; the key and a connection to the primary.
fn key_on_both_replicas(
    c: &DynamicCluster,
    prefix: &str,
    value: &str,
) -> (String, redis::Connection) {
    let primary = c.node(0).addr();
    let key = keys_owned_by(primary, primary.port(), 1, prefix).remove(0);
    let mut p = connect(primary);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(value)
        .query(&mut p)
        .expect("SET");
    let n: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(2000)
        .query(&mut p)
        .expect("WAIT");
    assert_eq!(n, 2, "both replicas acknowledge");
    (key, p)
}

/// Which of `candidates` is a primary now.
fn find_primary(c: &DynamicCluster, candidates: &[usize]) -> Option<usize> {
    candidates
        .iter()
        .copied()
        .find(|&i| role(c.node(i).addr()).is_some_and(|(r, _)| r == "master"))
}

#[test]
fn a_killed_primary_is_replaced_and_every_waited_write_survives() {
    let mut c = cluster_with_replicas();
    let victim = c.node(0).addr();
    let keys = keys_owned_by(victim, victim.port(), 400, "k");
    // Write load on shard 1: SET, then WAIT 1; a write counts as kept once WAIT says a
    // replica has it.
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let acks = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let first_write_after: Arc<Mutex<Option<Instant>>> = Arc::default();
    let addrs: Vec<SocketAddr> = [0, 3, 4].iter().map(|&i| c.node(i).addr()).collect();
    let writer = {
        let (acked, acks, stop, killed_at, first) = (
            Arc::clone(&acked),
            Arc::clone(&acks),
            Arc::clone(&stop),
            Arc::clone(&killed_at),
            Arc::clone(&first_write_after),
        );
        std::thread::spawn(move || {
            // Whoever of the replicas is primary now, if one is.
            let promoted = || {
                addrs[1..]
                    .iter()
                    .copied()
                    .find(|&a| role(a).is_some_and(|(r, _)| r == "master"))
            };
            let mut target = addrs[0];
            let mut conn: Option<redis::Connection> = None;
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let Some(cn) = conn.as_mut() else {
                    conn = redis::Client::open(format!("redis://{target}/"))
                        .ok()
                        .and_then(|cl| {
                            cl.get_connection_with_timeout(Duration::from_millis(300))
                                .ok()
                        });
                    match &conn {
                        Some(cn) => {
                            let _ = cn.set_read_timeout(Some(Duration::from_secs(1)));
                        }
                        // Nobody listens at the target: poll for the promoted replica
                        // (the main thread's deadline bounds this).
                        None => match promoted() {
                            Some(a) => target = a,
                            None => std::thread::park_timeout(Duration::from_millis(20)),
                        },
                    }
                    continue;
                };
                seq += 1;
                let key = &keys[usize::try_from(seq).unwrap_or(0) % keys.len()];
                let value = format!("v{seq}");
                let set: redis::RedisResult<()> = redis::cmd("SET").arg(key).arg(&value).query(cn);
                match set {
                    Ok(()) => {
                        if killed_at.lock().expect("lock").is_some() {
                            first.lock().expect("lock").get_or_insert_with(Instant::now);
                        }
                        let n: redis::RedisResult<i64> =
                            redis::cmd("WAIT").arg(1).arg(500).query(cn);
                        if n.is_ok_and(|n| n >= 1) {
                            acked.lock().expect("lock").insert(key.clone(), value);
                            acks.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        // MOVED (the node became a replica), CLUSTERDOWN, or a dead
                        // socket: find the primary again.
                        conn = None;
                        if let Some(a) = promoted() {
                            target = a;
                        }
                    }
                }
            }
        })
    };
    wait_until("writes acknowledged before the kill", 20, || {
        acks.load(Ordering::Relaxed) > 100
    });
    let before = acked.lock().expect("lock").len();
    assert!(
        before > 20,
        "the load runs before the kill ({before} acked)"
    );
    c.kill(0);
    // The process is gone (reaped): no write after this can have reached it.
    *killed_at.lock().expect("lock") = Some(Instant::now());
    wait_until("a write to succeed after the kill", 20, || {
        first_write_after.lock().expect("lock").is_some()
    });
    let at = acks.load(Ordering::Relaxed);
    wait_until(
        "writes acknowledged by the new primary's replica",
        20,
        || acks.load(Ordering::Relaxed) > at + 20,
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    let killed = killed_at.lock().expect("lock").expect("killed");
    let took = first_write_after.lock().expect("lock").expect("write") - killed;
    eprintln!("failover: first write {took:?} after the kill");
    assert!(took < Duration::from_secs(10), "failover took {took:?}");

    let new_primary = find_primary(&c, &[3, 4]).expect("a replica was promoted");
    let other = if new_primary == 3 { 4 } else { 3 };
    let p = c.node(new_primary).addr();
    // Every write a replica acknowledged before or after the kill is there: the key holds
    // that value or one written after it (a later write whose WAIT did not come back).
    let mut conn = connect(p);
    let acked = acked.lock().expect("lock").clone();
    let seq = |v: &str| -> u64 { v.trim_start_matches('v').parse().expect("a vN value") };
    for (k, v) in &acked {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut conn).expect("GET");
        let got = got.unwrap_or_else(|| panic!("{k} lost"));
        assert!(
            seq(&got) >= seq(v),
            "{k}: acknowledged {v}, found the older {got}"
        );
    }
    // The other replica follows the new primary, and the cluster routes to it.
    let other_addr = c.node(other).addr();
    wait_until("the other replica to follow the new primary", 20, || {
        role(other_addr) == Some(("slave".into(), Some(p.port())))
    });
    let slots = command_slots(c.node(1).addr());
    assert!(slots.values().any(|&port| port == p.port()));
    assert!(!slots.values().any(|&port| port == victim.port()));
    // The old primary comes back as a replica of the new one and gets its data.
    c.restart(0);
    let back = c.node(0).addr();
    wait_until("the old primary to rejoin as a replica", 30, || {
        role(back) == Some(("slave".into(), Some(p.port())))
            && replication_field(back, "master_link_status") == "up"
    });
    let n: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(5000)
        .query(&mut conn)
        .expect("WAIT");
    assert_eq!(n, 2, "both replicas acknowledge the new primary");
    let mut old = connect(back);
    let _: () = redis::cmd("READONLY").query(&mut old).expect("READONLY");
    for k in acked.keys().take(50) {
        let on_old: Option<String> = redis::cmd("GET").arg(k).query(&mut old).expect("GET");
        let on_new: Option<String> = redis::cmd("GET").arg(k).query(&mut conn).expect("GET");
        assert_eq!(
            on_old, on_new,
            "{k}: the rejoined replica has the new primary's value"
        );
    }
}

#[test]
fn a_primary_cut_off_from_the_majority_refuses_writes_after_the_node_timeout() {
    let c = cluster_with_replicas();
    let primary = c.node(0).addr();
    let key = keys_owned_by(primary, primary.port(), 1, "minority").remove(0);
    let mut conn = connect(primary);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("before")
        .query(&mut conn)
        .expect("SET");
    // Freeze every other node: node 0 is now alone, a minority of one.
    let others = [1, 2, 3, 4];
    for &i in &others {
        c.node(i).pause();
    }
    let stopped = Instant::now();
    let mut refused = None;
    wait_until("the lone primary to refuse writes", 10, || {
        let r: redis::RedisResult<()> = redis::cmd("SET").arg(&key).arg("during").query(&mut conn);
        refused = r.err();
        refused.is_some()
    });
    let refused = refused.expect("a refusal");
    let after = stopped.elapsed();
    eprintln!("minority primary refused writes {after:?} after losing the majority");
    assert!(
        refused.to_string().to_lowercase().contains("clusterdown"),
        "{refused}"
    );
    assert_eq!(
        command(primary, &["SET", &key, "during"]),
        Err("CLUSTERDOWN The cluster is down".to_owned())
    );
    assert!(
        after >= Duration::from_millis(1500) && after < Duration::from_secs(4),
        "refused {after:?} after the cut (node timeout 2 s)"
    );
    // Reads still work.
    let got: Option<String> = redis::cmd("GET").arg(&key).query(&mut conn).expect("GET");
    assert!(got.is_some());
    for &i in &others {
        c.node(i).signal("CONT");
    }
    // Back in touch: writes are taken again (by node 0, or by a replica promoted while
    // the others judged a frozen world; either way one primary serves the slot).
    wait_until("writes to be taken again", 20, || {
        let owner = command_slots(c.node(1).addr())
            .get(&key_slot(key.as_bytes()).get())
            .copied();
        owner.is_some_and(|port| {
            let addr = SocketAddr::new(primary.ip(), port);
            command(addr, &["SET", &key, "after"]).is_ok()
        })
    });
    let masters: usize = [0, 3, 4]
        .iter()
        .filter(|&&i| role(c.node(i).addr()).is_some_and(|(r, _)| r == "master"))
        .count();
    assert_eq!(masters, 1, "one primary for shard 1");
}

#[test]
fn a_paused_primary_returns_as_a_replica_of_its_successor() {
    let c = cluster_with_replicas();
    let old = c.node(0).addr();
    let keys = keys_owned_by(old, old.port(), 50, "paused");
    let mut conn = connect(old);
    for k in &keys {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("1")
            .query(&mut conn)
            .expect("SET");
    }
    let n: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(2000)
        .query(&mut conn)
        .expect("WAIT");
    assert_eq!(n, 2);
    c.node(0).pause();
    let mut new_primary = None;
    wait_until("a replica to be promoted", 20, || {
        new_primary = find_primary(&c, &[3, 4]);
        new_primary.is_some()
    });
    let p = c.node(new_primary.expect("promoted")).addr();
    let mut pc = connect(p);
    for k in &keys {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("2")
            .query(&mut pc)
            .expect("SET on the new primary");
    }
    c.node(0).signal("CONT");
    // The moment it runs again it takes no write: its proof of a majority is stale.
    let r = command(old, &["SET", &keys[0], "split-brain"]);
    assert!(
        r.is_err(),
        "the old primary took a write after its pause: {r:?}"
    );
    wait_until(
        "the old primary to become a replica of the new one",
        20,
        || {
            role(old) == Some(("slave".into(), Some(p.port())))
                && replication_field(old, "master_link_status") == "up"
        },
    );
    let n: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(5000)
        .query(&mut pc)
        .expect("WAIT");
    assert_eq!(n, 2);
    let mut oc = connect(old);
    let _: () = redis::cmd("READONLY").query(&mut oc).expect("READONLY");
    for k in &keys {
        let v: String = redis::cmd("GET").arg(k).query(&mut oc).expect("GET");
        assert_eq!(v, "2", "the old primary has the new primary's data");
    }
    // One primary per shard in everyone's view.
    for i in 0..5 {
        let nodes = command(c.node(i).addr(), &["CLUSTER", "NODES"]).expect("NODES");
        let masters = nodes.lines().filter(|l| l.contains("master")).count();
        assert_eq!(masters, 3, "node {i}: {nodes}");
    }
}

#[test]
fn a_manual_failover_under_load_loses_no_write() {
    let c = cluster_with_replicas();
    let primary = c.node(0).addr();
    let keys = keys_owned_by(primary, primary.port(), 200, "manual");
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let acks = Arc::new(AtomicUsize::new(0));
    let seeds: Vec<String> = (0..3).map(|i| c.node(i).addr().to_string()).collect();
    let writer = {
        let (stop, acked, acks) = (Arc::clone(&stop), Arc::clone(&acked), Arc::clone(&acks));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let client = cachalot_client::Client::connect(seeds)
                    .await
                    .expect("client");
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let key = &keys[usize::try_from(seq).unwrap_or(0) % keys.len()];
                    let value = format!("v{seq}");
                    if client.set(key.as_str(), value.as_bytes()).await.is_ok() {
                        acked.lock().expect("lock").insert(key.clone(), value);
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        })
    };
    wait_until("writes before the failover", 20, || {
        acks.load(Ordering::Relaxed) > 200
    });
    let replica = c.node(3).addr();
    let reply = command(replica, &["CLUSTER", "FAILOVER"]);
    assert_eq!(reply, Ok("OK".to_owned()));
    let at = acks.load(Ordering::Relaxed);
    wait_until("writes taken by the new primary", 20, || {
        acks.load(Ordering::Relaxed) > at + 200
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert_eq!(role(replica).map(|r| r.0).as_deref(), Some("master"));
    wait_until("the old primary to follow", 20, || {
        role(primary) == Some(("slave".into(), Some(replica.port())))
    });
    let mut conn = connect(replica);
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 50, "the load ran: {}", acked.len());
    // Each key holds its last acknowledged value, or a later one (a write that failed on
    // the client's side may still have run).
    let seq = |v: &str| -> u64 { v.trim_start_matches('v').parse().expect("a vN value") };
    for (k, v) in &acked {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut conn).expect("GET");
        let got = got.unwrap_or_else(|| panic!("{k}: an acknowledged write was lost"));
        assert!(
            seq(&got) >= seq(v),
            "{k}: acknowledged {v}, found the older {got}"
        );
    }
    // Errors in Redis's words.
    assert_eq!(
        command(replica, &["CLUSTER", "FAILOVER"]),
        Err("ERR You should send CLUSTER FAILOVER to a replica".to_owned())
    );
    assert_eq!(
        command(primary, &["CLUSTER", "FAILOVER", "SOON"]),
        Err("ERR syntax error".to_owned())
    );
}

#[test]
fn replicas_serve_readonly_reads_and_redirect_the_rest() {
    let c = cluster_with_replicas();
    let primary = c.node(0).addr();
    let (key, _p) = key_on_both_replicas(&c, "ro", "v");
    let replica = c.node(3).addr();
    let slot = key_slot(key.as_bytes()).get();
    let moved = format!("MOVED {slot} {primary}");
    assert_eq!(command(replica, &["GET", &key]), Err(moved.clone()));
    let mut r = connect(replica);
    let _: () = redis::cmd("READONLY").query(&mut r).expect("READONLY");
    let v: String = redis::cmd("GET").arg(&key).query(&mut r).expect("GET");
    assert_eq!(v, "v");
    // Writes still go to the primary, READONLY or not.
    let err = redis::cmd("SET")
        .arg(&key)
        .arg("w")
        .query::<()>(&mut r)
        .expect_err("a replica takes no write");
    assert!(err.to_string().to_lowercase().contains("moved"), "{err}");
    let _: () = redis::cmd("READWRITE").query(&mut r).expect("READWRITE");
    let err = redis::cmd("GET")
        .arg(&key)
        .query::<String>(&mut r)
        .expect_err("MOVED again");
    assert!(err.to_string().to_lowercase().contains("moved"), "{err}");
    // CLUSTER SHARDS reports every node online, with its offset.
    let mut any = connect(c.node(1).addr());
    let shards: redis::Value = redis::cmd("CLUSTER")
        .arg("SHARDS")
        .query(&mut any)
        .expect("SHARDS");
    let text = format!("{shards:?}");
    assert_eq!(text.matches("online").count(), 5, "{text}");
}

/// `keyspace_hits` of a node.
fn hits(addr: SocketAddr) -> u64 {
    info_field(addr, "stats", "keyspace_hits")
        .parse()
        .unwrap_or(0)
}

#[test]
fn reads_of_a_hot_key_spread_over_its_shards_replicas() {
    let c = cluster_with_replicas();
    let (hot, _p) = key_on_both_replicas(&c, "celebrity", "famous");
    let nodes = [0, 3, 4].map(|i| c.node(i).addr());
    let before = nodes.map(hits);
    let seeds: Vec<String> = (0..3).map(|i| c.node(i).addr().to_string()).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = cachalot_client::Client::builder(seeds)
            .read_from(cachalot_client::ReadFrom::replicas_round_robin())
            .connect()
            .await
            .expect("client");
        for _ in 0..3000 {
            let v = client.get(hot.as_str()).await.expect("GET");
            assert_eq!(v.as_deref(), Some(&b"famous"[..]));
        }
    });
    let served: Vec<u64> = nodes
        .iter()
        .zip(before)
        .map(|(&a, b)| hits(a) - b)
        .collect();
    eprintln!("hot-key reads served by primary, replica, replica: {served:?}");
    assert!(served[0] < 100, "the primary is spared: {served:?}");
    for &s in &served[1..] {
        assert!(
            (1200..=1800).contains(&s),
            "each replica serves about half: {served:?}"
        );
    }
}
