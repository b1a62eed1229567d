//! Replication between real processes: `REPLICAOF`, the effect stream (writes, expiry,
//! eviction, flushes), `WAIT`, partial and full resyncs, read-only replicas, and a replica
//! too slow for the backlog. Driven with the `redis` crate and redis-cli.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cachalot_tests::{command, info_field, run_tool, wait_until, ServerProcess};
use redis::Commands;

/// `INFO replication` of a node as `field -> value`.
fn repl_info(addr: SocketAddr) -> BTreeMap<String, String> {
    command(addr, &["INFO", "replication"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

fn field(addr: SocketAddr, name: &str) -> String {
    info_field(addr, "replication", name)
}

fn connect(server: &ServerProcess) -> redis::Connection {
    redis::Client::open(server.url())
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// A replica of `primary`, started with `--replicaof`, once its link is up.
fn replica_of(primary: &ServerProcess, extra: &[&str]) -> ServerProcess {
    let target = format!("127.0.0.1 {}", primary.port());
    let mut args = vec!["--replicaof", target.as_str()];
    args.extend_from_slice(extra);
    let replica = ServerProcess::start_with(&args);
    wait_until("the replica's link", 30, || {
        field(replica.addr(), "master_link_status") == "up"
    });
    replica
}

fn wait_replicas(conn: &mut redis::Connection, n: i64) -> i64 {
    redis::cmd("WAIT")
        .arg(n)
        .arg(5000)
        .query(conn)
        .expect("WAIT")
}

#[test]
fn a_replica_applies_every_kind_of_write_and_refuses_clients_writes() {
    let primary = ServerProcess::start();
    let mut p = connect(&primary);
    let _: () = p.set("before", "was here first").expect("SET");
    let replica = ServerProcess::start();
    let mut r = connect(&replica);
    let _: () = r.set("stale", "goes away").expect("SET");
    let reply: String = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query(&mut r)
        .expect("REPLICAOF");
    assert_eq!(reply, "OK");
    wait_until("link up", 30, || {
        field(replica.addr(), "master_link_status") == "up"
    });

    let _: () = p.set("s", "v").expect("SET");
    let _: () = p.set_ex("ttl", "t", 100).expect("SETEX");
    let _: i64 = p.incr("n", 5).expect("INCRBY");
    let _: i64 = p.append("s", "+w").expect("APPEND");
    let _: () = p
        .hset_multiple("h", &[("a", "1"), ("b", "2")])
        .expect("HMSET");
    let _: i64 = p.hdel("h", "a").expect("HDEL");
    let _: () = p.set("gone", "x").expect("SET");
    let _: i64 = p.del("gone").expect("DEL");
    let _: () = p.set("persisted", "p").expect("SET");
    let _: bool = p.expire("persisted", 50).expect("EXPIRE");
    let _: bool = p.persist("persisted").expect("PERSIST");
    let _: () = redis::cmd("RENAME")
        .arg("before")
        .arg("renamed")
        .query(&mut p)
        .expect("RENAME");
    assert_eq!(wait_replicas(&mut p, 1), 1, "WAIT 1 counts the replica");

    let get = |r: &mut redis::Connection, k: &str| -> Option<String> { r.get(k).expect("GET") };
    assert_eq!(get(&mut r, "s").as_deref(), Some("v+w"));
    assert_eq!(get(&mut r, "n").as_deref(), Some("5"));
    assert_eq!(get(&mut r, "gone"), None);
    assert_eq!(get(&mut r, "before"), None, "renamed away");
    assert_eq!(get(&mut r, "renamed").as_deref(), Some("was here first"));
    assert_eq!(get(&mut r, "stale"), None, "the replica's own data went");
    let h: BTreeMap<String, String> = r.hgetall("h").expect("HGETALL");
    assert_eq!(h, BTreeMap::from([("b".to_owned(), "2".to_owned())]));
    let ttl: i64 = r.ttl("ttl").expect("TTL");
    assert!(
        (95..=100).contains(&ttl),
        "absolute expiry carried over: {ttl}"
    );
    let primary_at: i64 = redis::cmd("PEXPIRETIME")
        .arg("ttl")
        .query(&mut p)
        .expect("P");
    let replica_at: i64 = redis::cmd("PEXPIRETIME")
        .arg("ttl")
        .query(&mut r)
        .expect("R");
    assert_eq!(primary_at, replica_at, "the same absolute expiry");
    let ttl: i64 = r.ttl("persisted").expect("TTL");
    assert_eq!(ttl, -1);
    let primary_keys: i64 = redis::cmd("DBSIZE").query(&mut p).expect("DBSIZE");
    let replica_keys: i64 = redis::cmd("DBSIZE").query(&mut r).expect("DBSIZE");
    assert_eq!(primary_keys, replica_keys);

    // Clients may not write on a replica.
    let err = r
        .set::<_, _, ()>("s", "no")
        .expect_err("a replica refuses writes");
    assert!(err
        .to_string()
        .contains("You can't write against a read only replica."));
    assert_eq!(
        command(replica.addr(), &["SET", "s", "no"]),
        Err("READONLY You can't write against a read only replica.".to_owned())
    );
    let err = redis::cmd("WAIT")
        .arg(0)
        .arg(0)
        .query::<i64>(&mut r)
        .expect_err("WAIT on a replica");
    assert!(err.to_string().contains("WAIT cannot be used with replica"));

    // ROLE in Redis's shapes.
    let role: redis::Value = redis::cmd("ROLE").query(&mut r).expect("ROLE");
    let text = format!("{role:?}");
    assert!(
        text.contains("slave") && text.contains("connected"),
        "{text}"
    );
    let role: (String, i64, Vec<Vec<String>>) = redis::cmd("ROLE").query(&mut p).expect("ROLE");
    assert_eq!(role.0, "master");
    assert_eq!(role.2.len(), 1);
    assert_eq!(role.2[0][1], replica.port().to_string());
    let info = repl_info(primary.addr());
    assert_eq!(info["role"], "master");
    assert_eq!(info["connected_slaves"], "1");
    assert!(info["slave0"].contains("state=online"), "{info:?}");
    let info = repl_info(replica.addr());
    assert_eq!(info["role"], "slave");
    assert_eq!(info["master_port"], primary.port().to_string());
    assert_eq!(info["master_repl_offset"], role.1.to_string());

    // FLUSHALL empties the replica too: the stream starts over, and the replica
    // resyncs from the emptied keyspace (WAIT counts it once it has).
    let _: () = redis::cmd("FLUSHALL").query(&mut p).expect("FLUSHALL");
    let _: () = p.set("after-flush", "kept").expect("SET");
    assert_eq!(wait_replicas(&mut p, 1), 1);
    let replica_keys: i64 = redis::cmd("DBSIZE").query(&mut r).expect("DBSIZE");
    assert_eq!(replica_keys, 1);
    let kept: Option<String> = r.get("after-flush").expect("GET");
    assert_eq!(kept.as_deref(), Some("kept"));
    assert_eq!(field(primary.addr(), "sync_full"), "2");

    // REPLICAOF NO ONE makes it a primary that takes writes.
    let _: () = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut r)
        .expect("NO ONE");
    let _: () = r
        .set("mine", "now")
        .expect("a promoted replica takes writes");
    assert_eq!(field(replica.addr(), "role"), "master");
}

#[test]
fn expired_and_evicted_keys_leave_the_replica_with_the_primary() {
    let primary =
        ServerProcess::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
    // The replica's own, smaller bound is set aside while it is one: it holds what the
    // primary holds, and evicts nothing by itself.
    let replica = replica_of(
        &primary,
        &["--maxmemory", "1mb", "--maxmemory-policy", "allkeys-lru"],
    );
    let _ = command(replica.addr(), &["CONFIG", "SET", "maxmemory", "512kb"]);
    let mut p = connect(&primary);
    let value = "x".repeat(1000);
    for i in 0..5000 {
        let _: () = p.set(format!("k{i}"), &value).expect("SET");
    }
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("short{i}"))
            .arg("v")
            .arg("PX")
            .arg(50)
            .query(&mut p)
            .expect("SET PX");
    }
    let evicted: u64 = command(primary.addr(), &["INFO", "stats"])
        .expect("INFO")
        .lines()
        .find_map(|l| l.strip_prefix("evicted_keys:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("evicted_keys");
    assert!(evicted > 1000, "the primary evicted ({evicted})");
    // Expired keys are removed by the primary's active expiry, and the replica follows.
    wait_until("the short-lived keys to be gone on both", 30, || {
        let _ = wait_replicas(&mut p, 1);
        let sizes: Vec<i64> = [&primary, &replica]
            .iter()
            .map(|s| redis::cmd("DBSIZE").query(&mut connect(s)).expect("DBSIZE"))
            .collect();
        sizes[0] == sizes[1]
            && (0..200).all(|i| !p.exists::<_, bool>(format!("short{i}")).expect("EXISTS"))
    });
    let mut r = connect(&replica);
    let mut kept = 0;
    for i in 0..5000 {
        let k = format!("k{i}");
        let on_primary: Option<String> = p.get(&k).expect("GET");
        let on_replica: Option<String> = r.get(&k).expect("GET");
        assert_eq!(on_primary.is_some(), on_replica.is_some(), "{k}");
        kept += usize::from(on_primary.is_some());
    }
    assert!(kept > 0 && kept < 5000, "some evicted, some kept: {kept}");
    let configured: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut r)
        .expect("CONFIG GET");
    assert_eq!(configured, ["maxmemory", "524288"], "kept for a promotion");
}

#[test]
fn wait_counts_the_replicas_that_acknowledged_and_times_out() {
    let primary = ServerProcess::start();
    let first = replica_of(&primary, &[]);
    let second = replica_of(&primary, &[]);
    let mut p = connect(&primary);
    let _: () = p.set("k", "v").expect("SET");
    assert_eq!(wait_replicas(&mut p, 2), 2);
    // Asking for more replicas than there are waits for the timeout, then counts.
    let started = Instant::now();
    let n: i64 = redis::cmd("WAIT")
        .arg(3)
        .arg(300)
        .query(&mut p)
        .expect("WAIT");
    assert_eq!(n, 2);
    assert!(started.elapsed() >= Duration::from_millis(290));
    // A stopped replica does not acknowledge.
    first.pause();
    let _: () = p.set("k", "w").expect("SET");
    let n: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(300)
        .query(&mut p)
        .expect("WAIT");
    assert_eq!(n, 1, "only the running replica acknowledged");
    // WAIT is about this client's writes, as in Redis: another client's later writes,
    // which the stopped replica lacks, do not make this client's count drop.
    second.pause();
    let mut other = connect(&primary);
    let _: () = other.set("other", "x").expect("SET");
    let n: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(200)
        .query(&mut other)
        .expect("WAIT");
    assert_eq!(n, 0, "nobody has the other client's write");
    second.signal("CONT");
    let n: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(2000)
        .query(&mut p)
        .expect("WAIT");
    assert_eq!(n, 1, "the running replica has this client's writes");
    second.pause();
    let _: () = other.set("other", "y").expect("SET");
    let n: i64 = redis::cmd("WAIT")
        .arg(2)
        .arg(200)
        .query(&mut p)
        .expect("WAIT");
    assert_eq!(
        n, 1,
        "both stopped now, but the second one had this client's writes before it stopped"
    );
    let mut idle = connect(&primary);
    let n: i64 = redis::cmd("WAIT")
        .arg(0)
        .arg(0)
        .query(&mut idle)
        .expect("WAIT");
    assert_eq!(n, 2, "a client that wrote nothing counts every replica");
    second.signal("CONT");
    first.signal("CONT");
    assert_eq!(wait_replicas(&mut p, 2), 2);
    let v: String = connect(&second).get("k").expect("GET");
    assert_eq!(v, "w");
    // Argument errors in Redis's words.
    let bad = |args: &[&str]| command(primary.addr(), args).expect_err("refused");
    assert_eq!(bad(&["WAIT", "1", "-1"]), "ERR timeout is negative");
    assert_eq!(
        bad(&["WAIT", "1", "x"]),
        "ERR timeout is not an integer or out of range"
    );
    assert_eq!(
        bad(&["WAIT", "x", "0"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        bad(&["WAIT", "1"]),
        "ERR wrong number of arguments for 'wait' command"
    );
}

#[test]
fn a_brief_disconnect_resumes_from_the_backlog() {
    let primary = ServerProcess::start();
    let replica = replica_of(&primary, &[]);
    let mut p = connect(&primary);
    for i in 0..100 {
        let _: () = p.set(format!("a{i}"), i).expect("SET");
    }
    assert_eq!(wait_replicas(&mut p, 1), 1);
    assert_eq!(field(primary.addr(), "sync_full"), "1");
    // Cut the link; write while it is down.
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query(&mut p)
        .expect("CLIENT KILL");
    assert_eq!(killed, 1);
    for i in 0..100 {
        let _: () = p.set(format!("b{i}"), i).expect("SET");
    }
    assert_eq!(wait_replicas(&mut p, 1), 1, "the replica is back");
    assert_eq!(field(primary.addr(), "sync_partial_ok"), "1");
    assert_eq!(
        field(primary.addr(), "sync_full"),
        "1",
        "no second full sync"
    );
    let mut r = connect(&replica);
    for i in 0..100 {
        let v: i64 = r.get(format!("b{i}")).expect("GET");
        assert_eq!(v, i);
    }
    assert_eq!(
        field(primary.addr(), "master_repl_offset"),
        field(replica.addr(), "master_repl_offset")
    );
}

#[test]
fn a_replica_too_slow_for_the_backlog_is_dropped_and_resyncs() {
    let primary = ServerProcess::start_with(&["--repl-backlog-size", "64kb"]);
    let replica = replica_of(&primary, &[]);
    let mut p = connect(&primary);
    replica.pause();
    // Far more than the backlog (and the socket buffers) hold.
    let value = "v".repeat(1024);
    for i in 0..20_000 {
        let _: () = p.set(format!("k{}", i % 2000), &value).expect("SET");
    }
    wait_until("the primary to drop the stopped replica", 30, || {
        field(primary.addr(), "connected_slaves") == "0"
    });
    let backlog: usize = field(primary.addr(), "repl_backlog_histlen")
        .parse()
        .expect("histlen");
    assert!(backlog <= 64 * 1024, "the backlog stays bounded: {backlog}");
    replica.signal("CONT");
    assert_eq!(wait_replicas(&mut p, 1), 1, "the replica came back");
    wait_until("a second full sync", 30, || {
        field(primary.addr(), "sync_full") == "2"
    });
    let _ = wait_replicas(&mut p, 1);
    let size: i64 = redis::cmd("DBSIZE")
        .query(&mut connect(&replica))
        .expect("DBSIZE");
    assert_eq!(size, 2000);
}

#[test]
fn a_replica_started_empty_syncs_a_million_keys_written_to_meanwhile() {
    const KEYS: usize = 1_000_000;
    let primary = ServerProcess::start();
    let mut p = connect(&primary);
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
        let mut cmd = redis::cmd("MSET");
        for i in chunk {
            cmd.arg(format!("key:{i}")).arg(format!("value:{i}"));
        }
        let _: () = cmd.query(&mut p).expect("MSET");
    }
    // Writes keep coming while the replica loads the snapshot.
    let writer = {
        let url = primary.url();
        std::thread::spawn(move || {
            let mut c = redis::Client::open(url)
                .expect("client")
                .get_connection()
                .expect("connect");
            for round in 0..20_000usize {
                let i = round % KEYS;
                let _: () = c
                    .set(format!("key:{i}"), format!("new:{round}"))
                    .expect("SET");
                if round % 3 == 0 {
                    let _: i64 = c.del(format!("key:{}", (i + 7) % KEYS)).expect("DEL");
                }
            }
        })
    };
    let target = format!("127.0.0.1 {}", primary.port());
    let replica = ServerProcess::start_with(&["--replicaof", &target]);
    writer.join().expect("writer");
    wait_until("the link", 120, || {
        field(replica.addr(), "master_link_status") == "up"
    });
    // WAIT counts this connection's writes: one more write, after all of the writer's,
    // that the replica acknowledges only once it has applied everything before it.
    let _: () = p.set("marker", "last").expect("SET");
    assert_eq!(wait_replicas(&mut p, 1), 1);
    let size =
        |s: &ServerProcess| -> i64 { redis::cmd("DBSIZE").query(&mut connect(s)).expect("DBSIZE") };
    assert_eq!(size(&primary), size(&replica));
    // Every key reads the same on both (pipelined in chunks).
    let mut r = connect(&replica);
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(5000) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("key:{i}")).collect();
        let a: Vec<Option<String>> = p.mget(&keys).expect("MGET");
        let b: Vec<Option<String>> = r.mget(&keys).expect("MGET");
        assert_eq!(a, b);
    }
    // redis-cli reads from the replica too.
    let out = run_tool(
        "redis-cli",
        &["-p", &replica.port().to_string(), "GET", "key:1"],
        b"",
    );
    assert!(!out.stdout.trim().is_empty());
}
