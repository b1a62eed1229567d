//! Routing against scripted fake nodes on loopback: `-MOVED` and `-ASK` are followed,
//! `-TRYAGAIN` is retried, replicas get `READONLY` and the reads, multi-key commands are
//! split by slot and merged in the caller's order, and a plain node works without
//! cluster mode.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cachalot_client::{Client, Error, ReadFrom};
use cachalot_protocol::{encode, key_slot, Limits, RequestDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a fake node answers: given one request (and the connection's state), the reply
/// bytes.
type Script = Arc<dyn Fn(&[Bytes], &mut ConnState) -> Vec<u8> + Send + Sync>;

/// Per-connection state a script may keep (`ASKING`, `READONLY`), and how long the node
/// waits before it answers (a slow node).
#[derive(Default)]
struct ConnState {
    asking: bool,
    readonly: bool,
    delay: Duration,
}

/// Every request a fake node received, as uppercase-name strings joined by spaces.
type Log = Arc<Mutex<Vec<String>>>;

async fn fake_node(script: Script) -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log: Log = Arc::default();
    let seen = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let script = Arc::clone(&script);
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut decoder = RequestDecoder::new(Limits::default());
                let mut buf = BytesMut::new();
                let mut state = ConnState::default();
                loop {
                    match sock.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let mut out = Vec::new();
                    while let Ok(Some(args)) = decoder.decode(&mut buf) {
                        let text: Vec<String> = args
                            .iter()
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .collect();
                        seen.lock().expect("log").push(text.join(" "));
                        out.extend(script(&args, &mut state));
                    }
                    if !state.delay.is_zero() {
                        tokio::time::sleep(state.delay).await;
                    }
                    if sock.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, log)
}

fn name_is(args: &[Bytes], name: &str) -> bool {
    args.first()
        .is_some_and(|a| a.eq_ignore_ascii_case(name.as_bytes()))
}

/// A `CLUSTER SLOTS` reply giving every slot to `primary` (with `replicas`).
fn all_slots_to(primary: SocketAddr, replicas: &[SocketAddr]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode::write_array_header(&mut out, 1);
    encode::write_array_header(&mut out, 3 + replicas.len());
    encode::write_integer(&mut out, 0);
    encode::write_integer(&mut out, 16383);
    for n in std::iter::once(&primary).chain(replicas) {
        encode::write_array_header(&mut out, 3);
        encode::write_bulk(&mut out, n.ip().to_string().as_bytes());
        encode::write_integer(&mut out, i64::from(n.port()));
        encode::write_bulk(&mut out, b"0000000000000000000000000000000000000000");
    }
    out.to_vec()
}

/// A cluster whose slot map is split at `split`: slots below go to `low`, the rest to
/// `high`.
fn split_slots(low: SocketAddr, high: SocketAddr, split: u16) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode::write_array_header(&mut out, 2);
    for (start, end, n) in [(0, split - 1, low), (split, 16383, high)] {
        encode::write_array_header(&mut out, 3);
        encode::write_integer(&mut out, i64::from(start));
        encode::write_integer(&mut out, i64::from(end));
        encode::write_array_header(&mut out, 2);
        encode::write_bulk(&mut out, n.ip().to_string().as_bytes());
        encode::write_integer(&mut out, i64::from(n.port()));
    }
    out.to_vec()
}

fn bulk(data: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode::write_bulk(&mut out, data);
    out.to_vec()
}

/// A node that claims every slot (in `CLUSTER SLOTS`) but whose `GET`s answer `-MOVED`
/// to `owner`: the map it hands out is stale.
async fn stale_node(owner: SocketAddr, reply: &'static str) -> (SocketAddr, Log) {
    let me = Arc::new(Mutex::new(None::<SocketAddr>));
    let me_in = Arc::clone(&me);
    let (addr, log) = fake_node(Arc::new(move |args, _| {
        if name_is(args, "CLUSTER") {
            let me = me_in.lock().expect("me").expect("address set");
            all_slots_to(me, &[])
        } else {
            let slot = args.get(1).map_or(0, |k| key_slot(k).get());
            format!("-{reply} {slot} {owner}\r\n").into_bytes()
        }
    }))
    .await;
    *me.lock().expect("me") = Some(addr);
    (addr, log)
}

/// A node that serves `GET` from a fixed map, needing `ASKING` first when `ask_only`.
async fn serving_node(
    values: HashMap<&'static str, &'static str>,
    ask_only: bool,
) -> (SocketAddr, Log) {
    fake_node(Arc::new(move |args, state| {
        if name_is(args, "ASKING") {
            state.asking = true;
            return b"+OK\r\n".to_vec();
        }
        if name_is(args, "CLUSTER") {
            return b"-ERR not asked in this test\r\n".to_vec();
        }
        if ask_only && !std::mem::take(&mut state.asking) {
            return b"-ERR ASKING was not sent\r\n".to_vec();
        }
        let key = args.get(1).map(|k| String::from_utf8_lossy(k).into_owned());
        match key.as_deref().and_then(|k| values.get(k)) {
            Some(v) => bulk(v.as_bytes()),
            None => b"$-1\r\n".to_vec(),
        }
    }))
    .await
}

#[tokio::test]
async fn moved_is_followed_and_sets_off_a_refresh() {
    let (owner, owner_log) = serving_node(HashMap::from([("k", "v")]), false).await;
    let (stale, stale_log) = stale_node(owner, "MOVED").await;
    let client = Client::connect([stale.to_string()]).await.expect("connect");
    assert_eq!(
        client.get("k").await.expect("get").as_deref(),
        Some(&b"v"[..])
    );
    assert!(client.metrics().redirects >= 1);
    assert!(owner_log.lock().expect("log").iter().any(|l| l == "GET k"));
    // The redirect asked for a new map: the stale node is asked again.
    let asked_slots = || {
        stale_log
            .lock()
            .expect("log")
            .iter()
            .filter(|l| l.as_str() == "CLUSTER SLOTS")
            .count()
    };
    for _ in 0..100 {
        if asked_slots() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(asked_slots() >= 2, "a refresh followed the MOVED");
}

#[tokio::test]
async fn ask_is_followed_once_with_asking_and_the_map_is_kept() {
    let (target, target_log) = serving_node(HashMap::from([("k", "moving")]), true).await;
    let (source, _) = stale_node(target, "ASK").await;
    let client = Client::connect([source.to_string()])
        .await
        .expect("connect");
    assert_eq!(
        client.get("k").await.expect("get").as_deref(),
        Some(&b"moving"[..])
    );
    let log = target_log.lock().expect("log").clone();
    assert_eq!(
        log,
        ["ASKING", "GET k"],
        "ASKING goes right before the command"
    );
    assert_eq!(
        client.primary_for(b"k"),
        Some(source),
        "ASK does not change the map"
    );
}

#[tokio::test]
async fn tryagain_is_retried_until_it_succeeds() {
    let tries = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&tries);
    let me = Arc::new(Mutex::new(None::<SocketAddr>));
    let me_in = Arc::clone(&me);
    let (addr, _) = fake_node(Arc::new(move |args, _| {
        if name_is(args, "CLUSTER") {
            return all_slots_to(me_in.lock().expect("me").expect("set"), &[]);
        }
        if counter.fetch_add(1, Ordering::SeqCst) < 3 {
            b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n".to_vec()
        } else {
            b"+OK\r\n".to_vec()
        }
    }))
    .await;
    *me.lock().expect("me") = Some(addr);
    let client = Client::connect([addr.to_string()]).await.expect("connect");
    client.set("k", "v").await.expect("retried to success");
    assert_eq!(tries.load(Ordering::SeqCst), 4);
    assert_eq!(client.metrics().retries, 3);
}

#[tokio::test]
async fn final_errors_are_not_retried() {
    let tries = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&tries);
    let (addr, _) = fake_node(Arc::new(move |args, _| {
        if name_is(args, "CLUSTER") {
            return b"-ERR This instance has cluster support disabled\r\n".to_vec();
        }
        counter.fetch_add(1, Ordering::SeqCst);
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n".to_vec()
    }))
    .await;
    let client = Client::connect([addr.to_string()]).await.expect("connect");
    assert!(!client.is_cluster());
    let err = client.get("k").await.expect_err("wrong type");
    assert!(
        matches!(&err, Error::Server(t) if t.starts_with("WRONGTYPE")),
        "{err:?}"
    );
    assert_eq!(tries.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn replica_reads_go_to_replicas_with_readonly_and_writes_to_the_primary() {
    let replica_script: Script = Arc::new(|args, state| {
        if name_is(args, "READONLY") {
            state.readonly = true;
            return b"+OK\r\n".to_vec();
        }
        if name_is(args, "GET") && state.readonly {
            return bulk(b"from-replica");
        }
        b"-MOVED 0 127.0.0.1:1\r\n".to_vec()
    });
    let (replica, replica_log) = fake_node(replica_script).await;
    let me = Arc::new(Mutex::new(None::<SocketAddr>));
    let me_in = Arc::clone(&me);
    let (primary, primary_log) = fake_node(Arc::new(move |args, _| {
        if name_is(args, "CLUSTER") {
            return all_slots_to(me_in.lock().expect("me").expect("set"), &[replica]);
        }
        if name_is(args, "SET") {
            return b"+OK\r\n".to_vec();
        }
        bulk(b"from-primary")
    }))
    .await;
    *me.lock().expect("me") = Some(primary);
    let client = Client::builder([primary.to_string()])
        .read_from(ReadFrom::replicas_round_robin())
        .connect()
        .await
        .expect("connect");
    assert_eq!(
        client.get("k").await.expect("get").as_deref(),
        Some(&b"from-replica"[..])
    );
    client.set("k", "v").await.expect("set");
    assert_eq!(
        replica_log.lock().expect("log").clone(),
        ["READONLY", "GET k"]
    );
    assert!(primary_log
        .lock()
        .expect("log")
        .iter()
        .any(|l| l == "SET k v"));

    let primary_only = Client::connect([primary.to_string()])
        .await
        .expect("connect");
    assert_eq!(
        primary_only.get("k").await.expect("get").as_deref(),
        Some(&b"from-primary"[..])
    );
}

#[tokio::test]
async fn nearest_reads_settle_on_the_fastest_node() {
    let replica = |delay_ms: u64| -> Script {
        Arc::new(move |args, state| {
            state.delay = Duration::from_millis(delay_ms);
            if name_is(args, "READONLY") {
                return b"+OK\r\n".to_vec();
            }
            bulk(format!("delay {delay_ms}").as_bytes())
        })
    };
    let (fast, _) = fake_node(replica(0)).await;
    let (slow, _) = fake_node(replica(30)).await;
    let me = Arc::new(Mutex::new(None::<SocketAddr>));
    let me_in = Arc::clone(&me);
    let (primary, _) = fake_node(Arc::new(move |args, state| {
        state.delay = Duration::from_millis(15);
        if name_is(args, "CLUSTER") {
            return all_slots_to(me_in.lock().expect("me").expect("set"), &[slow, fast]);
        }
        bulk(b"delay 15")
    }))
    .await;
    *me.lock().expect("me") = Some(primary);
    let client = Client::builder([primary.to_string()])
        .read_from(ReadFrom::nearest())
        .connect()
        .await
        .expect("connect");
    let mut from_fast = 0;
    for _ in 0..20 {
        if client.get("k").await.expect("get").as_deref() == Some(&b"delay 0"[..]) {
            from_fast += 1;
        }
    }
    assert!(
        from_fast >= 16,
        "{from_fast} of 20 reads from the fastest node"
    );
}

#[tokio::test]
async fn multi_key_commands_are_split_by_slot_and_merged_in_order() {
    // Two nodes; each answers MGET with "<port>:<key>" per key and DEL with its key count,
    // and refuses keys of slots it does not own with -CROSSSLOT-like errors.
    let split = 8000u16;
    let low_addr = Arc::new(Mutex::new(None::<(SocketAddr, SocketAddr)>));
    let make = |is_low: bool, addrs: Arc<Mutex<Option<(SocketAddr, SocketAddr)>>>| -> Script {
        Arc::new(move |args, _| {
            if name_is(args, "CLUSTER") {
                let (low, high) = addrs.lock().expect("addrs").expect("set");
                return split_slots(low, high, split);
            }
            let keys = args.get(1..).unwrap_or_default();
            let slots: Vec<u16> = keys.iter().map(|k| key_slot(k).get()).collect();
            if slots.iter().any(|&s| (s < split) != is_low) {
                return b"-ERR a key of another node\r\n".to_vec();
            }
            if slots.windows(2).any(|w| w[0] != w[1]) {
                return b"-CROSSSLOT Keys in request don't hash to the same slot\r\n".to_vec();
            }
            let mut out = BytesMut::new();
            if name_is(args, "MGET") {
                encode::write_array_header(&mut out, keys.len());
                for k in keys {
                    encode::write_bulk(
                        &mut out,
                        format!("{is_low}:{}", String::from_utf8_lossy(k)).as_bytes(),
                    );
                }
            } else {
                encode::write_integer(&mut out, i64::try_from(keys.len()).expect("small"));
            }
            out.to_vec()
        })
    };
    let (low, _) = fake_node(make(true, Arc::clone(&low_addr))).await;
    let (high, _) = fake_node(make(false, Arc::clone(&low_addr))).await;
    *low_addr.lock().expect("addrs") = Some((low, high));
    let client = Client::connect([low.to_string()]).await.expect("connect");
    let keys: Vec<String> = (0..50).map(|i| format!("key:{i}")).collect();
    let values = client.mget(&keys).await.expect("mget");
    assert_eq!(values.len(), keys.len());
    for (k, v) in keys.iter().zip(&values) {
        let is_low = key_slot(k.as_bytes()).get() < split;
        assert_eq!(
            v.as_deref(),
            Some(format!("{is_low}:{k}").as_bytes()),
            "value in the caller's order"
        );
    }
    assert_eq!(client.del(&keys).await.expect("del"), 50);
    assert_eq!(client.exists(&keys).await.expect("exists"), 50);
}

#[tokio::test]
async fn a_seed_that_refuses_connections_fails_connect_with_a_topology_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = Client::builder([addr.to_string()])
        .connect_timeout(Duration::from_millis(200))
        .connect()
        .await
        .err()
        .expect("nothing listens");
    assert!(matches!(err, Error::Topology(_)), "{err:?}");
}

#[tokio::test]
async fn a_slot_bouncing_between_nodes_is_followed_until_they_agree() {
    // Two nodes that each say the other owns "k" for the first 20 GETs (a change applied
    // on one and not yet on the other), then the second one serves it.
    let gets = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let other = Arc::new(Mutex::new(None::<SocketAddr>));
    let (a_gets, a_other) = (Arc::clone(&gets), Arc::clone(&other));
    let (a, _) = fake_node(Arc::new(move |args, _| {
        let peer = a_other.lock().expect("peer").expect("set");
        if name_is(args, "CLUSTER") {
            return all_slots_to(peer, &[]);
        }
        a_gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let slot = key_slot(b"k").get();
        format!("-MOVED {slot} {peer}\r\n").into_bytes()
    }))
    .await;
    let b_gets = Arc::clone(&gets);
    let (b, _) = fake_node(Arc::new(move |args, _| {
        if name_is(args, "CLUSTER") {
            return all_slots_to(a, &[]);
        }
        let n = b_gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n < 20 {
            let slot = key_slot(b"k").get();
            return format!("-MOVED {slot} {a}\r\n").into_bytes();
        }
        bulk(b"agreed")
    }))
    .await;
    *other.lock().expect("peer") = Some(b);
    let client = Client::connect([a.to_string()]).await.expect("connect");
    assert_eq!(
        client
            .get("k")
            .await
            .expect("followed to the end")
            .as_deref(),
        Some(&b"agreed"[..])
    );
    assert!(
        client.metrics().redirects > 16,
        "more redirects than followed at once"
    );
}
