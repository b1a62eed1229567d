//! A subset of the commands over RESP3 (`redis://...?protocol=resp3`, where the client
//! starts with `HELLO 3`): maps, nulls and nested pairs take their RESP3 types.

mod support {
    pub mod client;
}

use cachalot_tests::ServerProcess;
use redis::Value;
use support::client::{connect_resp3, err, ok, WRONGTYPE};

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// The value under `key` in a RESP3 map reply.
fn map_get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    let Value::Map(pairs) = map else {
        panic!("expected a map, got {map:?}");
    };
    pairs.iter().find(|(k, _)| *k == bulk(key)).map(|(_, v)| v)
}

#[tokio::test]
async fn hello_3_reports_a_redis_server_speaking_resp3() {
    let server = ServerProcess::start();
    let mut con = connect_resp3(&server).await;
    let hello: Value = ok(&mut con, &["HELLO", "3"]).await;
    assert_eq!(map_get(&hello, "server"), Some(&bulk("redis")));
    assert_eq!(map_get(&hello, "proto"), Some(&Value::Int(3)));
    assert_eq!(map_get(&hello, "mode"), Some(&bulk("standalone")));
    assert_eq!(map_get(&hello, "role"), Some(&bulk("master")));
    assert!(matches!(map_get(&hello, "id"), Some(Value::Int(_))));
    assert_eq!(map_get(&hello, "modules"), Some(&Value::Array(Vec::new())));
    assert_eq!(
        err(&mut con, &["HELLO", "4"]).await,
        "NOPROTO unsupported protocol version"
    );
}

#[tokio::test]
async fn hgetall_replies_with_a_map() {
    let server = ServerProcess::start();
    let mut con = connect_resp3(&server).await;
    ok::<(), _>(&mut con, &["HSET", "h", "a", "1", "b", "2"]).await;
    let mut pairs = match ok::<Value, _>(&mut con, &["HGETALL", "h"]).await {
        Value::Map(pairs) => pairs,
        other => panic!("expected a map, got {other:?}"),
    };
    pairs.sort_by_key(|(k, _)| format!("{k:?}"));
    assert_eq!(pairs, [(bulk("a"), bulk("1")), (bulk("b"), bulk("2"))]);
    assert_eq!(
        ok::<Value, _>(&mut con, &["HGETALL", "nope"]).await,
        Value::Map(Vec::new())
    );
}

#[tokio::test]
async fn missing_values_are_resp3_nulls() {
    let server = ServerProcess::start();
    let mut con = connect_resp3(&server).await;
    ok::<(), _>(&mut con, &["SET", "k", "v"]).await;
    for args in [
        &["GET", "nope"][..],
        &["HGET", "nope", "f"],
        &["GETDEL", "nope"],
        &["GETEX", "nope", "PERSIST"],
        &["SET", "k", "w", "NX"],
        &["OBJECT", "ENCODING", "nope"],
        &["HRANDFIELD", "nope"],
    ] {
        assert_eq!(ok::<Value, _>(&mut con, args).await, Value::Nil, "{args:?}");
    }
    let got: Value = ok(&mut con, &["MGET", "nope", "k"]).await;
    assert_eq!(got, Value::Array(vec![Value::Nil, bulk("v")]));
    ok::<(), _>(&mut con, &["FLUSHALL"]).await;
    assert_eq!(ok::<Value, _>(&mut con, &["RANDOMKEY"]).await, Value::Nil);
}

#[tokio::test]
async fn hrandfield_withvalues_replies_with_pairs() {
    let server = ServerProcess::start();
    let mut con = connect_resp3(&server).await;
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    let pair = Value::Array(vec![bulk("f"), bulk("v")]);
    assert_eq!(
        ok::<Value, _>(&mut con, &["HRANDFIELD", "h", "-2", "WITHVALUES"]).await,
        Value::Array(vec![pair.clone(), pair.clone()])
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["HRANDFIELD", "h", "1", "WITHVALUES"]).await,
        Value::Array(vec![pair])
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["HRANDFIELD", "h", "1"]).await,
        Value::Array(vec![bulk("f")])
    );
}

#[tokio::test]
async fn numbers_keep_the_types_redis_gives_them() {
    let server = ServerProcess::start();
    let mut con = connect_resp3(&server).await;
    // Float increments stay bulk strings in RESP3, as in Redis; counters are integers.
    assert_eq!(
        ok::<Value, _>(&mut con, &["INCRBYFLOAT", "f", "1.5"]).await,
        bulk("1.5")
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["HINCRBYFLOAT", "h", "f", "0.25"]).await,
        bulk("0.25")
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["INCR", "n"]).await,
        Value::Int(1)
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["TTL", "n"]).await,
        Value::Int(-1)
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["TYPE", "h"]).await,
        Value::SimpleString("hash".into())
    );
    assert_eq!(err(&mut con, &["HGET", "n", "f"]).await, WRONGTYPE);
}

#[tokio::test]
async fn scans_reply_with_a_cursor_and_an_array() {
    let server = ServerProcess::start();
    let mut con = connect_resp3(&server).await;
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    assert_eq!(
        ok::<Value, _>(&mut con, &["HSCAN", "h", "0"]).await,
        Value::Array(vec![bulk("0"), Value::Array(vec![bulk("f"), bulk("v")])])
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["SCAN", "0", "COUNT", "100"]).await,
        Value::Array(vec![bulk("0"), Value::Array(vec![bulk("h")])])
    );
}
