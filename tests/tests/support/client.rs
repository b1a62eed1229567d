//! Helpers for driving a Cachalot node through the `redis` crate.

// Each test file compiles this module and uses a different subset of it.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use cachalot_tests::ServerProcess;
use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, RedisError, ToRedisArgs};
use tokio::time::Instant;

/// How long a test waits for something eventual (an expiry) before failing.
const EVENTUALLY_DEADLINE_MILLIS: u64 = 5_000;
/// Pause between polls while waiting.
const POLL_MILLIS: u64 = 10;

/// A RESP2 connection to `server`.
pub async fn connect(server: &ServerProcess) -> MultiplexedConnection {
    connect_url(&server.url()).await
}

/// A RESP3 connection to `server` (the client sends `HELLO 3`).
pub async fn connect_resp3(server: &ServerProcess) -> MultiplexedConnection {
    connect_url(&format!("{}?protocol=resp3", server.url())).await
}

async fn connect_url(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("valid url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to cachalot-server")
}

/// A command from its words (strings or bytes).
pub fn cmd<A: ToRedisArgs>(args: &[A]) -> redis::Cmd {
    let mut c = redis::Cmd::new();
    for a in args {
        c.arg(a);
    }
    c
}

/// Runs a command that must succeed and converts its reply.
pub async fn ok<T: FromRedisValue, A: ToRedisArgs>(
    con: &mut MultiplexedConnection,
    args: &[A],
) -> T {
    let c = cmd(args);
    match c.query_async(con).await {
        Ok(v) => v,
        Err(e) => panic!("{:?} failed: {}", shown(args), error_text(&e)),
    }
}

/// Runs a command that must fail and returns the error exactly as the server wrote it
/// (`ERR syntax error`, `WRONGTYPE Operation ...`).
pub async fn err<A: ToRedisArgs>(con: &mut MultiplexedConnection, args: &[A]) -> String {
    let c = cmd(args);
    match c.query_async::<redis::Value>(con).await {
        Ok(v) => panic!("{:?} should fail but replied {v:?}", shown(args)),
        Err(e) => error_text(&e),
    }
}

/// The full text of a server error: its code, a space, its detail.
pub fn error_text(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

fn shown<A: ToRedisArgs>(args: &[A]) -> Vec<String> {
    args.iter()
        .flat_map(|a| a.to_redis_args())
        .map(|a| String::from_utf8_lossy(&a).into_owned())
        .collect()
}

/// Polls `probe` every few milliseconds until it returns true; fails the test after a
/// deadline, naming `what` was awaited.
pub async fn eventually<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_millis(EVENTUALLY_DEADLINE_MILLIS);
    loop {
        if probe().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {EVENTUALLY_DEADLINE_MILLIS} ms waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(POLL_MILLIS)).await;
    }
}

/// Waits until `key` no longer exists (it expired).
pub async fn wait_until_gone(con: &MultiplexedConnection, key: &str) {
    eventually(&format!("{key} to expire"), || {
        let mut con = con.clone();
        let key = key.to_string();
        async move { ok::<i64, _>(&mut con, &["EXISTS", &key]).await == 0 }
    })
    .await;
}

/// Asserts that each command fails with Redis's arity error for `name`.
pub async fn assert_arity_errors(con: &mut MultiplexedConnection, cases: &[&[&str]]) {
    for args in cases {
        let name = args[0].to_ascii_lowercase();
        assert_eq!(
            err(con, args).await,
            format!("ERR wrong number of arguments for '{name}' command"),
            "{args:?}"
        );
    }
}

/// The WRONGTYPE error text.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// The not-an-integer error text.
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// The syntax error text.
pub const SYNTAX: &str = "ERR syntax error";
