//! `cachalot-client` against real `cachalot-server` processes: routing checked by the
//! nodes themselves, the typed API on a plain node, a node restart under load, and the
//! circuit breaker around a node that is gone and comes back.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cachalot_client::{BreakerSettings, BreakerState, Client, Error, Ttl};
use cachalot_protocol::key_slot;
use cachalot_tests::{wait_until_stopped, ServerProcess, StaticCluster};

/// Keys written in the routing test.
const ROUTED_KEYS: usize = 10_000;
/// Concurrent writers while a node restarts.
const WRITERS: usize = 16;

/// A plain (non-cluster) `redis` crate connection to one node, for checking what it holds.
async fn raw(addr: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{addr}/"))
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// Slot ranges to node address, from one node's `CLUSTER SLOTS` (not the client's map).
async fn slot_owners(addr: &str) -> Vec<(u16, u16, String)> {
    let mut conn = raw(addr).await;
    let reply: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(&mut conn)
        .await
        .expect("CLUSTER SLOTS");
    reply
        .into_iter()
        .map(|range| {
            let (start, end, ip, port): (u16, u16, String, u16) = match range {
                redis::Value::Array(parts) => {
                    let start = redis::from_redis_value(parts[0].clone()).expect("start");
                    let end = redis::from_redis_value(parts[1].clone()).expect("end");
                    let (ip, port, _id): (String, u16, String) = match &parts[2] {
                        redis::Value::Array(n) => (
                            redis::from_redis_value(n[0].clone()).expect("ip"),
                            redis::from_redis_value(n[1].clone()).expect("port"),
                            redis::from_redis_value(n[2].clone()).expect("id"),
                        ),
                        other => panic!("node entry {other:?}"),
                    };
                    (start, end, ip, port)
                }
                other => panic!("range {other:?}"),
            };
            (start, end, format!("{ip}:{port}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_keys_land_on_their_owners() {
    let cluster = StaticCluster::start(3, &[]);
    let addrs = cluster.addrs();
    let client = Client::connect(addrs.clone()).await.expect("connect");
    assert!(client.is_cluster());
    let keys: Vec<String> = (0..ROUTED_KEYS).map(|i| format!("routed:{i}")).collect();
    // Half through MSET (split by slot), half through single SETs.
    let (batched, single) = keys.split_at(ROUTED_KEYS / 2);
    for chunk in batched.chunks(500) {
        let pairs: Vec<(&str, &str)> = chunk.iter().map(|k| (k.as_str(), k.as_str())).collect();
        client.mset(&pairs).await.expect("mset");
    }
    for k in single {
        client.set(k, k).await.expect("set");
    }

    let owners = slot_owners(&addrs[0]).await;
    let owner_of = |slot: u16| -> &str {
        owners
            .iter()
            .find(|(s, e, _)| (*s..=*e).contains(&slot))
            .map(|(_, _, a)| a.as_str())
            .expect("every slot has an owner")
    };
    let mut expected: BTreeMap<&str, BTreeMap<u16, BTreeSet<String>>> = BTreeMap::new();
    for k in &keys {
        let slot = key_slot(k.as_bytes()).get();
        expected
            .entry(owner_of(slot))
            .or_default()
            .entry(slot)
            .or_default()
            .insert(k.clone());
    }
    assert_eq!(expected.len(), 3, "every node owns some of the keys");
    for addr in &addrs {
        let mut conn = raw(addr).await;
        let mine = expected.get(addr.as_str()).expect("node has keys");
        // Every key the node holds, against every key that hashes to its slots.
        let held: BTreeSet<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        let owned: BTreeSet<String> = mine.values().flatten().cloned().collect();
        assert_eq!(held, owned, "{addr} holds exactly the keys of its slots");
        // And slot by slot, as Redis Cluster tools check it: each call walks the node's
        // keyspace here, so a sample of the slots (every 32nd, under a hundred per node),
        // one call at a time.
        for (&slot, ks) in mine.iter().step_by(32) {
            let count: usize = redis::cmd("CLUSTER")
                .arg("COUNTKEYSINSLOT")
                .arg(slot)
                .query_async(&mut conn)
                .await
                .expect("COUNTKEYSINSLOT");
            let found: BTreeSet<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(ks.len() + 1)
                .query_async(&mut conn)
                .await
                .expect("GETKEYSINSLOT");
            assert_eq!(count, ks.len(), "{addr} slot {slot}");
            assert_eq!(&found, ks, "{addr} slot {slot}");
        }
    }
    // And every key reads back through the client, one MGET split over the nodes.
    let values = client.mget(&keys).await.expect("mget");
    assert!(keys
        .iter()
        .zip(&values)
        .all(|(k, v)| v.as_deref() == Some(k.as_bytes())));
}

#[tokio::test]
async fn the_typed_api_works_against_a_plain_node() {
    let server = ServerProcess::start();
    let client = Client::connect([server.addr().to_string()])
        .await
        .expect("connect");
    assert!(!client.is_cluster());
    client.ping().await.expect("ping");
    client.set("s", "v").await.expect("set");
    assert_eq!(
        client.get("s").await.expect("get").as_deref(),
        Some(&b"v"[..])
    );
    assert!(!client.set_nx("s", "w").await.expect("set nx"));
    assert_eq!(client.append("s", "x").await.expect("append"), 2);
    assert_eq!(client.strlen("s").await.expect("strlen"), 2);
    client
        .set_ex("t", "v", Duration::from_secs(100))
        .await
        .expect("set ex");
    assert!(
        matches!(client.ttl("t").await.expect("ttl"), Ttl::Expires(d) if d > Duration::from_secs(90))
    );
    assert!(client.persist("t").await.expect("persist"));
    assert_eq!(client.ttl("t").await.expect("ttl"), Ttl::Persistent);
    assert_eq!(client.ttl("none").await.expect("ttl"), Ttl::Missing);
    assert!(client
        .expire("t", Duration::from_secs(5))
        .await
        .expect("expire"));
    assert_eq!(client.incr("n").await.expect("incr"), 1);
    assert_eq!(client.incr_by("n", 41).await.expect("incrby"), 42);
    let err = client.incr("s").await.expect_err("not an integer");
    assert!(
        matches!(&err, Error::Server(t) if t == "ERR value is not an integer or out of range"),
        "{err:?}"
    );
    client.mset(&[("a", "1"), ("b", "2")]).await.expect("mset");
    let got = client.mget(&["a", "missing", "b"]).await.expect("mget");
    assert_eq!(got[0].as_deref(), Some(&b"1"[..]));
    assert_eq!(got[1], None);
    assert_eq!(got[2].as_deref(), Some(&b"2"[..]));
    assert_eq!(
        client.exists(&["a", "b", "missing"]).await.expect("exists"),
        2
    );
    assert_eq!(
        client
            .hset("h", &[("f", "1"), ("g", "2")])
            .await
            .expect("hset"),
        2
    );
    assert_eq!(
        client.hget("h", "f").await.expect("hget").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(client.hincr_by("h", "f", 9).await.expect("hincrby"), 10);
    assert_eq!(client.hlen("h").await.expect("hlen"), 2);
    assert!(client.hexists("h", "g").await.expect("hexists"));
    let mut all = client.hgetall("h").await.expect("hgetall");
    all.sort();
    assert_eq!(all.len(), 2);
    assert_eq!(&all[0].0[..], b"f");
    assert_eq!(&all[0].1[..], b"10");
    assert_eq!(
        client.hmget("h", &["g", "zz"]).await.expect("hmget"),
        vec![Some(bytes::Bytes::from_static(b"2")), None]
    );
    let err = client.get("h").await.expect_err("a hash");
    assert!(
        matches!(&err, Error::Server(t) if t.starts_with("WRONGTYPE")),
        "{err:?}"
    );
    assert_eq!(client.hdel("h", &["f", "g"]).await.expect("hdel"), 2);
    assert_eq!(
        client.get_del("a").await.expect("getdel").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(client.dbsize().await.expect("dbsize"), 4);
    assert_eq!(client.del(&["b", "s", "t", "n"]).await.expect("del"), 4);
    client.flushall().await.expect("flushall");
    assert_eq!(client.dbsize().await.expect("dbsize"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_see_no_error_while_a_node_restarts() {
    let mut cluster = StaticCluster::start(3, &[]);
    let client = Client::connect(cluster.addrs()).await.expect("connect");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (client, stop, done) = (client.clone(), Arc::clone(&stop), Arc::clone(&done));
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("restart:{w}:{}", i % 200);
                let value = i.to_string();
                client.set(&key, &value).await?;
                // The node may restart (empty) between the write and the read: a miss is
                // possible, an error or another value is not.
                let got = client.get(&key).await?;
                assert!(got.is_none() || got.as_deref() == Some(value.as_bytes()));
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            Ok::<(), Error>(())
        }));
    }
    let before = wait_for_progress(&done, 500).await;
    tokio::task::block_in_place(|| cluster.kill(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| cluster.restart(1));
    let after_restart = wait_for_progress(&done, before + 2_000).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await
            .expect("writer task")
            .expect("no caller saw an error");
    }
    assert!(after_restart > before);
    let metrics = client.metrics();
    let restarted = metrics
        .nodes
        .iter()
        .find(|n| n.addr.to_string() == cluster.addrs()[1])
        .expect("node metrics");
    assert!(
        restarted.failures > 0,
        "the restart was seen: {restarted:?}"
    );
    assert!(metrics.retries > 0);
}

/// Waits (up to 30 s) until `done` reaches `target`; returns its value.
async fn wait_for_progress(done: &AtomicU64, target: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n = done.load(Ordering::Relaxed);
        if n >= target || tokio::time::Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_against_a_stopped_node_and_closes_after_it_returns() {
    let mut cluster = StaticCluster::start(3, &[]);
    let client = Client::builder(cluster.addrs())
        .call_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(200))
        .breaker(BreakerSettings {
            failure_threshold: 3,
            min_failing_for: Duration::ZERO,
            open_for: Duration::from_millis(300),
        })
        .connect()
        .await
        .expect("connect");
    let target = cluster.addrs()[2].clone();
    let key = (0..)
        .map(|i| format!("breaker:{i}"))
        .find(|k| client.primary_for(k.as_bytes()).map(|a| a.to_string()) == Some(target.clone()))
        .expect("a key on node 3");
    client.set(&key, "v").await.expect("set while up");
    let state = |c: &Client| {
        c.metrics()
            .nodes
            .into_iter()
            .find(|n| n.addr.to_string() == target)
            .expect("node metrics")
    };
    assert_eq!(state(&client).breaker, BreakerState::Closed);

    tokio::task::block_in_place(|| cluster.kill(2));
    let mut open_errors = 0;
    for _ in 0..50 {
        match client.get(&key).await {
            Err(Error::CircuitOpen { .. }) => open_errors += 1,
            Err(_) => {}
            Ok(v) => panic!("a dead node answered {v:?}"),
        }
        if state(&client).breaker == BreakerState::Open && open_errors > 0 {
            break;
        }
    }
    assert_eq!(state(&client).breaker, BreakerState::Open);
    assert!(open_errors > 0, "calls failed fast with CircuitOpen");
    // Other nodes are unaffected.
    let other = (0..)
        .map(|i| format!("other:{i}"))
        .find(|k| client.primary_for(k.as_bytes()).map(|a| a.to_string()) != Some(target.clone()))
        .expect("a key elsewhere");
    client
        .set(&other, "v")
        .await
        .expect("other node still serves");

    tokio::task::block_in_place(|| cluster.restart(2));
    let mut answered = false;
    for _ in 0..100 {
        if client.set(&key, "back").await.is_ok() {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(answered, "the node answers again through the client");
    let node = state(&client);
    assert_eq!(node.breaker, BreakerState::Closed);
    assert!(node.circuit_opened >= 1);
}

#[test]
fn the_blocking_wrapper_works_from_plain_threads() {
    let server = ServerProcess::start();
    let client =
        cachalot_client::blocking::Client::connect([server.addr().to_string()]).expect("connect");
    client.set("k", "v").expect("set");
    assert_eq!(client.get("k").expect("get").as_deref(), Some(&b"v"[..]));
    client.mset(&[("a", "1"), ("b", "2")]).expect("mset");
    assert_eq!(client.mget(&["a", "b"]).expect("mget").len(), 2);
    assert_eq!(client.incr_by("n", 5).expect("incr"), 5);
    assert_eq!(client.hset("h", &[("f", "1")]).expect("hset"), 1);
    assert_eq!(
        client.hget("h", "f").expect("hget").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(client.del(&["k", "a", "b", "n", "h"]).expect("del"), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_node_opens_the_breaker_and_is_reconnected_when_it_resumes() {
    let cluster = StaticCluster::start(3, &[]);
    let client = Client::builder(cluster.addrs())
        .call_timeout(Duration::from_millis(300))
        .breaker(BreakerSettings {
            failure_threshold: 2,
            min_failing_for: Duration::ZERO,
            open_for: Duration::from_millis(300),
        })
        .connect()
        .await
        .expect("connect");
    let target = cluster.addrs()[0].clone();
    let key = (0..)
        .map(|i| format!("paused:{i}"))
        .find(|k| client.primary_for(k.as_bytes()).map(|a| a.to_string()) == Some(target.clone()))
        .expect("a key on node 1");
    client.set(&key, "v").await.expect("set while running");
    let node_state = |c: &Client| {
        c.metrics()
            .nodes
            .into_iter()
            .find(|n| n.addr.to_string() == target)
            .expect("node metrics")
    };
    cluster.node(0).signal("STOP");
    tokio::task::block_in_place(|| wait_until_stopped(cluster.node(0).pid()));
    let mut timeouts = 0;
    for _ in 0..20 {
        match client.get(&key).await {
            Err(Error::Timeout { .. }) => timeouts += 1,
            Err(Error::CircuitOpen { .. }) => break,
            other => panic!("a paused node cannot answer: {other:?}"),
        }
    }
    assert!(timeouts >= 2, "calls timed out first");
    assert_eq!(node_state(&client).breaker, BreakerState::Open);
    cluster.node(0).signal("CONT");
    let mut back = false;
    for _ in 0..100 {
        if client.get(&key).await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back, "the node answers again on a fresh connection");
    assert_eq!(node_state(&client).breaker, BreakerState::Closed);
}
