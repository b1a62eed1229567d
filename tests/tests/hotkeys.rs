//! Hot-key detection against a real node: a hammered key shows up in `HOTKEYS` and
//! `INFO hotkeys` within a second of wall time, the switch works live, and bad arguments
//! get Redis-style errors byte for byte.

#[path = "support/raw.rs"]
mod raw;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachalot_tests::ServerProcess;
use raw::{bulk_payload, Raw};
use redis::aio::MultiplexedConnection;
use redis::Value;

/// The bound: a key that becomes hot is reported within this long.
const REPORT_DEADLINE_MILLIS: u64 = 1_000;
/// Pause between `HOTKEYS` polls.
const POLL_MILLIS: u64 = 20;
/// Keys of the uniform background traffic.
const BACKGROUND_KEYS: u64 = 10_000;
/// Connections sending background traffic.
const BACKGROUND_CLIENTS: usize = 3;
/// Commands each traffic task keeps in flight on its multiplexed connection.
const IN_FLIGHT: usize = 16;

async fn connect(server: &ServerProcess) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("valid url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// Sends `GET`s until `stop` is set: of `key` if given, else of uniformly random keys.
async fn traffic(mut con: MultiplexedConnection, key: Option<&'static str>, stop: Arc<AtomicBool>) {
    let mut n: u64 = 0x9e37_79b9;
    while !stop.load(Ordering::Relaxed) {
        let mut pipe = redis::pipe();
        for _ in 0..IN_FLIGHT {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            match key {
                Some(k) => pipe.cmd("GET").arg(k),
                None => pipe
                    .cmd("GET")
                    .arg(format!("bg:{}", (n >> 33) % BACKGROUND_KEYS)),
            };
        }
        // The server goes away when the test ends; the traffic just stops then.
        let sent: redis::RedisResult<Vec<Option<Vec<u8>>>> = pipe.query_async(&mut con).await;
        if sent.is_err() {
            return;
        }
    }
}

/// `HOTKEYS` as (key, rate) pairs, checking the reply's shape.
async fn hotkeys(con: &mut MultiplexedConnection) -> Vec<(String, i64)> {
    let reply: Value = redis::cmd("HOTKEYS")
        .query_async(con)
        .await
        .expect("HOTKEYS");
    let Value::Array(items) = reply else {
        panic!("HOTKEYS replied {reply:?}")
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Array(pair) => match &pair[..] {
                [Value::BulkString(k), Value::Int(rate)] => {
                    (String::from_utf8_lossy(k).into_owned(), *rate)
                }
                other => panic!("pair {other:?}"),
            },
            other => panic!("item {other:?}"),
        })
        .collect()
}

/// Polls `HOTKEYS` until `key` is listed or the deadline passes; how long it took.
async fn time_until_reported(
    con: &mut MultiplexedConnection,
    key: &str,
    since: Instant,
    deadline: Duration,
) -> Option<(Duration, i64)> {
    loop {
        if let Some((_, rate)) = hotkeys(con).await.into_iter().find(|(k, _)| k == key) {
            return Some((since.elapsed(), rate));
        }
        if since.elapsed() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(POLL_MILLIS)).await;
    }
}

/// Starts background traffic, then one hammered key; returns the stop flag.
async fn start_traffic(server: &ServerProcess, hot: &'static str) -> (Arc<AtomicBool>, Instant) {
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..BACKGROUND_CLIENTS {
        tokio::spawn(traffic(connect(server).await, None, Arc::clone(&stop)));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hot_con = connect(server).await;
    let started = Instant::now();
    tokio::spawn(traffic(hot_con, Some(hot), Arc::clone(&stop)));
    (stop, started)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hammered_key_is_reported_within_a_second() {
    let server = ServerProcess::start();
    let mut admin = connect(&server).await;
    assert!(
        hotkeys(&mut admin).await.is_empty(),
        "idle node has no hot keys"
    );
    let (stop, started) = start_traffic(&server, "hot:key").await;
    let found = time_until_reported(
        &mut admin,
        "hot:key",
        started,
        Duration::from_millis(REPORT_DEADLINE_MILLIS),
    )
    .await;
    let (after, rate) = found.unwrap_or_else(|| {
        panic!(
            "hot:key not reported within {REPORT_DEADLINE_MILLIS} ms: {:?}",
            server.log()
        )
    });
    eprintln!("hot:key reported after {after:?} at an estimated {rate} ops/s");
    assert!(rate > 0);
    // The background keys are each far below 1% of the traffic.
    let listed = hotkeys(&mut admin).await;
    assert!(listed.iter().all(|(k, _)| k == "hot:key"), "{listed:?}");
    let info: String = redis::cmd("INFO")
        .arg("hotkeys")
        .query_async(&mut admin)
        .await
        .expect("INFO");
    assert!(
        info.starts_with("# Hotkeys\r\nhotkeys_enabled:1\r\n"),
        "{info}"
    );
    assert!(info.contains("\r\nhotkey_0:key=hot:key,rate="), "{info}");
    assert!(info.contains("\r\nhotkeys_dropped_samples:"), "{info}");
    let all: String = redis::cmd("INFO")
        .query_async(&mut admin)
        .await
        .expect("INFO");
    assert!(all.contains("# Hotkeys\r\n"), "INFO includes the section");
    stop.store(true, Ordering::Relaxed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_switched_off_reports_nothing_until_switched_on() {
    let server = ServerProcess::start_with(&["--hotkeys-enabled", "no"]);
    let mut admin = connect(&server).await;
    let (stop, _) = start_traffic(&server, "hot:off").await;
    tokio::time::sleep(Duration::from_millis(REPORT_DEADLINE_MILLIS)).await;
    assert!(hotkeys(&mut admin).await.is_empty());
    let info: String = redis::cmd("INFO")
        .arg("hotkeys")
        .query_async(&mut admin)
        .await
        .expect("INFO");
    assert!(info.contains("hotkeys_enabled:0\r\n"), "{info}");
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "hotkeys-enabled", "yes"])
        .query_async(&mut admin)
        .await
        .expect("CONFIG SET");
    let on = Instant::now();
    let found = time_until_reported(
        &mut admin,
        "hot:off",
        on,
        Duration::from_millis(REPORT_DEADLINE_MILLIS),
    )
    .await;
    assert!(found.is_some(), "reported within a second of switching on");
    stop.store(true, Ordering::Relaxed);
}

#[test]
fn hotkeys_arguments_and_settings_get_redis_style_replies() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(b"HOTKEYS\r\n", b"*0\r\n");
    c.exchange(b"HOTKEYS COUNT 5\r\n", b"*0\r\n");
    c.exchange(b"hotkeys count 5\r\n", b"*0\r\n");
    c.exchange(b"HOTKEYS COUNT\r\n", b"-ERR syntax error\r\n");
    c.exchange(b"HOTKEYS LIMIT 5\r\n", b"-ERR syntax error\r\n");
    c.exchange(b"HOTKEYS COUNT 5 6\r\n", b"-ERR syntax error\r\n");
    c.exchange(
        b"HOTKEYS COUNT five\r\n",
        b"-ERR value is not an integer or out of range\r\n",
    );
    c.exchange(
        b"HOTKEYS COUNT 0\r\n",
        b"-ERR value is out of range, must be positive\r\n",
    );
    c.exchange(
        b"HOTKEYS COUNT -3\r\n",
        b"-ERR value is out of range, must be positive\r\n",
    );
    c.exchange(
        b"CONFIG GET hotkeys-*\r\n",
        b"*10\r\n$15\r\nhotkeys-enabled\r\n$3\r\nyes\r\n$17\r\nhotkeys-min-share\r\n$4\r\n0.01\r\n\
          $16\r\nhotkeys-min-rate\r\n$3\r\n100\r\n$13\r\nhotkeys-top-k\r\n$2\r\n32\r\n\
          $14\r\nhotkeys-sample\r\n$1\r\n8\r\n",
    );
    c.exchange(b"CONFIG SET hotkeys-min-share 0.5\r\n", b"+OK\r\n");
    c.exchange(
        b"CONFIG SET hotkeys-min-share 2\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'hotkeys-min-share') - argument must be a number between 0 and 1\r\n",
    );
    c.exchange(
        b"CONFIG SET hotkeys-top-k 8\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'hotkeys-top-k') - can't set immutable config\r\n",
    );
    c.exchange(
        b"CONFIG SET hotkeys-sample 0\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'hotkeys-sample') - argument must be between 1 and 1000000 inclusive\r\n",
    );
    c.exchange(b"CONFIG SET hotkeys-sample 1\r\n", b"+OK\r\n");
    let docs = String::from_utf8_lossy(&c.call(&[b"COMMAND", b"DOCS", b"hotkeys"])).into_owned();
    assert!(
        docs.contains("Returns the keys this node finds hot now"),
        "{docs}"
    );
    let info = c.call(&[b"COMMAND", b"INFO", b"hotkeys"]);
    assert!(
        info.starts_with(b"*1\r\n*10\r\n$7\r\nhotkeys\r\n:-1\r\n"),
        "{:?}",
        String::from_utf8_lossy(&info)
    );
    let text = String::from_utf8_lossy(&bulk_payload(&c.call(&[b"INFO", b"hotkeys"]))).into_owned();
    assert_eq!(
        text,
        "# Hotkeys\r\nhotkeys_enabled:1\r\nhotkeys_tracked:0\r\nhotkeys_top_k:32\r\n\
         hotkeys_sample:1\r\nhotkeys_key_rate:0\r\nhotkeys_dropped_samples:0\r\n\
         hotkeys_long_keys_skipped:0\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_a_push_when_a_key_turns_hot() {
    let server = ServerProcess::start();
    let addr = server.addr();
    let subscriber = tokio::task::spawn_blocking(move || {
        let mut sub = Raw::connect(addr);
        sub.send(&raw::request(&["HELLO", "3"]));
        sub.reply();
        sub.send(&raw::request(&["SUBSCRIBE", "__cachalot__:hotkeys"]));
        assert_eq!(
            sub.reply(),
            b">3\r\n$9\r\nsubscribe\r\n$20\r\n__cachalot__:hotkeys\r\n:1\r\n"
        );
        sub
    })
    .await
    .expect("subscribe");
    let (stop, started) = start_traffic(&server, "pushed-celebrity").await;
    let want: &[u8] =
        b">3\r\n$7\r\nmessage\r\n$20\r\n__cachalot__:hotkeys\r\n$20\r\nhot:pushed-celebrity\r\n";
    let got = tokio::task::spawn_blocking(move || {
        let mut sub = subscriber;
        loop {
            let push = sub.reply();
            if push == want {
                return started.elapsed();
            }
            // Other keys may turn hot and cool on the way; only this one matters.
            assert!(
                push.starts_with(b">3\r\n$7\r\nmessage\r\n"),
                "{}",
                raw::shown(&push)
            );
        }
    })
    .await
    .expect("the push arrives");
    stop.store(true, Ordering::Relaxed);
    assert!(
        got < Duration::from_millis(2 * REPORT_DEADLINE_MILLIS),
        "pushed after {got:?}"
    );
}
