//! Hash commands against a real node, through the `redis` crate.

mod support {
    pub mod client;
}

use std::collections::{HashMap, HashSet};

use cachalot_tests::ServerProcess;
use redis::Value;
use support::client::{assert_arity_errors, connect, err, ok, NOT_INTEGER, SYNTAX, WRONGTYPE};

/// Fields in the hash scanned while it changes: a hash table (more than 512 fields).
const SCANNED_FIELDS: usize = 1_000;

#[tokio::test]
async fn hset_adds_fields_and_counts_only_new_ones() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(
        ok::<i64, _>(&mut con, &["HSET", "h", "a", "1", "b", "2"]).await,
        2
    );
    assert_eq!(
        ok::<i64, _>(&mut con, &["HSET", "h", "a", "10", "c", "3"]).await,
        1
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["HMSET", "h", "d", "4"]).await,
        Value::Okay
    );
    assert_eq!(ok::<String, _>(&mut con, &["HGET", "h", "a"]).await, "10");
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["HGET", "h", "nope"]).await,
        None
    );
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["HGET", "nope", "a"]).await,
        None
    );
    let got: Vec<Option<String>> = ok(&mut con, &["HMGET", "h", "a", "nope", "d"]).await;
    assert_eq!(got, [Some("10".into()), None, Some("4".into())]);
    let got: Vec<Option<String>> = ok(&mut con, &["HMGET", "nope", "a", "b"]).await;
    assert_eq!(got, [None, None]);
    assert_eq!(ok::<i64, _>(&mut con, &["HLEN", "h"]).await, 4);
    assert_eq!(ok::<i64, _>(&mut con, &["HLEN", "nope"]).await, 0);
}

#[tokio::test]
async fn hash_fields_and_values_are_binary_safe() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(
        &mut con,
        &[&b"HSET"[..], b"h", b"f\x00\r\n", b"", b"g", b"\xff\x00"],
    )
    .await;
    assert_eq!(
        ok::<Vec<u8>, _>(&mut con, &[&b"HGET"[..], b"h", b"f\x00\r\n"]).await,
        b""
    );
    assert_eq!(
        ok::<Vec<u8>, _>(&mut con, &["HGET", "h", "g"]).await,
        b"\xff\x00"
    );
    assert_eq!(ok::<i64, _>(&mut con, &["HSTRLEN", "h", "g"]).await, 2);
}

#[tokio::test]
async fn hset_with_a_field_missing_its_value_is_an_arity_error() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_arity_errors(
        &mut con,
        &[
            &["HSET", "h", "a"],
            &["HSET", "h", "a", "1", "b"],
            &["HMSET", "h", "a", "1", "b"],
        ],
    )
    .await;
    assert_eq!(ok::<i64, _>(&mut con, &["EXISTS", "h"]).await, 0);
}

#[tokio::test]
async fn hsetnx_writes_only_a_missing_field() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(ok::<i64, _>(&mut con, &["HSETNX", "h", "f", "1"]).await, 1);
    assert_eq!(ok::<i64, _>(&mut con, &["HSETNX", "h", "f", "2"]).await, 0);
    assert_eq!(ok::<String, _>(&mut con, &["HGET", "h", "f"]).await, "1");
}

#[tokio::test]
async fn hdel_deletes_the_key_with_its_last_field() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["HSET", "h", "a", "1", "b", "2"]).await;
    assert_eq!(
        ok::<i64, _>(&mut con, &["HDEL", "h", "a", "a", "nope"]).await,
        1
    );
    assert_eq!(ok::<i64, _>(&mut con, &["HDEL", "nope", "a"]).await, 0);
    assert_eq!(ok::<i64, _>(&mut con, &["HDEL", "h", "b"]).await, 1);
    assert_eq!(ok::<i64, _>(&mut con, &["EXISTS", "h"]).await, 0);
    assert_eq!(ok::<String, _>(&mut con, &["TYPE", "h"]).await, "none");
}

#[tokio::test]
async fn hgetall_hkeys_and_hvals_return_the_whole_hash() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["HSET", "h", "a", "1", "b", "2", "c", "3"]).await;
    let all: HashMap<String, String> = ok(&mut con, &["HGETALL", "h"]).await;
    assert_eq!(
        all,
        HashMap::from([
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("c".into(), "3".into())
        ])
    );
    let mut keys: Vec<String> = ok(&mut con, &["HKEYS", "h"]).await;
    keys.sort();
    assert_eq!(keys, ["a", "b", "c"]);
    let mut vals: Vec<String> = ok(&mut con, &["HVALS", "h"]).await;
    vals.sort();
    assert_eq!(vals, ["1", "2", "3"]);
    assert_eq!(
        ok::<Vec<String>, _>(&mut con, &["HGETALL", "nope"]).await,
        Vec::<String>::new()
    );
    assert_eq!(ok::<i64, _>(&mut con, &["HEXISTS", "h", "a"]).await, 1);
    assert_eq!(ok::<i64, _>(&mut con, &["HEXISTS", "h", "z"]).await, 0);
    assert_eq!(ok::<i64, _>(&mut con, &["HSTRLEN", "h", "z"]).await, 0);
}

#[tokio::test]
async fn hincrby_counts_and_refuses_non_integers_and_overflow() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(ok::<i64, _>(&mut con, &["HINCRBY", "h", "n", "5"]).await, 5);
    assert_eq!(
        ok::<i64, _>(&mut con, &["HINCRBY", "h", "n", "-7"]).await,
        -2
    );
    ok::<(), _>(
        &mut con,
        &[
            "HSET",
            "h",
            "s",
            "abc",
            "lead",
            "07",
            "max",
            "9223372036854775807",
        ],
    )
    .await;
    for (args, want) in [
        (
            &["HINCRBY", "h", "s", "1"][..],
            "ERR hash value is not an integer",
        ),
        (
            &["HINCRBY", "h", "lead", "1"],
            "ERR hash value is not an integer",
        ),
        (
            &["HINCRBY", "h", "max", "1"],
            "ERR increment or decrement would overflow",
        ),
        (&["HINCRBY", "h", "n", "1.5"], NOT_INTEGER),
        (&["HINCRBY", "h", "n", "9223372036854775808"], NOT_INTEGER),
    ] {
        assert_eq!(err(&mut con, args).await, want, "{args:?}");
    }
}

#[tokio::test]
async fn hincrbyfloat_prints_the_digits_redis_prints() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    for (incr, want) in [
        ("10.5", "10.5"),
        ("0.1", "10.6"),
        ("-5", "5.6"),
        ("5.0e3", "5005.60000000000000009"),
    ] {
        assert_eq!(
            ok::<String, _>(&mut con, &["HINCRBYFLOAT", "h", "x", incr]).await,
            want
        );
    }
    ok::<(), _>(&mut con, &["HSET", "h", "s", "abc", "i", "3"]).await;
    assert_eq!(
        ok::<String, _>(&mut con, &["HINCRBYFLOAT", "h", "i", "0.5"]).await,
        "3.5"
    );
    for (args, want) in [
        (
            &["HINCRBYFLOAT", "h", "s", "1"][..],
            "ERR hash value is not a float",
        ),
        (
            &["HINCRBYFLOAT", "h", "x", "abc"],
            "ERR value is not a valid float",
        ),
        (
            &["HINCRBYFLOAT", "h", "x", "inf"],
            "ERR value is NaN or Infinity",
        ),
        (
            &["HINCRBYFLOAT", "h", "x", "1e99999"],
            "ERR value is not a valid float",
        ),
    ] {
        assert_eq!(err(&mut con, args).await, want, "{args:?}");
    }
}

#[tokio::test]
async fn hscan_returns_a_small_hash_in_one_page() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["HSET", "h", "a1", "1", "a2", "2", "b1", "3"]).await;
    let (cursor, items): (String, Vec<String>) =
        ok(&mut con, &["HSCAN", "h", "0", "COUNT", "1"]).await;
    assert_eq!(cursor, "0");
    assert_eq!(items.len(), 6);
    let (_, items): (String, HashMap<String, String>) =
        ok(&mut con, &["HSCAN", "h", "0", "MATCH", "a*"]).await;
    assert_eq!(
        items,
        HashMap::from([("a1".into(), "1".into()), ("a2".into(), "2".into())])
    );
    // NOVALUES (from Redis 7.4) returns the fields only.
    let (_, mut fields): (String, Vec<String>) =
        ok(&mut con, &["HSCAN", "h", "0", "NOVALUES"]).await;
    fields.sort();
    assert_eq!(fields, ["a1", "a2", "b1"]);
}

#[tokio::test]
async fn hscan_returns_every_field_present_for_the_whole_scan_while_others_change() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    let mut hset = vec!["HSET".to_string(), "h".to_string()];
    for i in 0..SCANNED_FIELDS {
        hset.extend([format!("stable:{i}"), i.to_string()]);
    }
    ok::<(), _>(&mut con, &hset).await;
    let mut seen = HashSet::new();
    let (mut cursor, mut round) = ("0".to_string(), 0usize);
    loop {
        let (next, items): (String, Vec<String>) =
            ok(&mut con, &["HSCAN", "h", &cursor, "COUNT", "20"]).await;
        seen.extend(items.chunks(2).map(|pair| pair[0].clone()));
        ok::<(), _>(&mut con, &["HSET", "h", &format!("churn:{round}"), "x"]).await;
        ok::<(), _>(
            &mut con,
            &["HDEL", "h", &format!("churn:{}", round.saturating_sub(1))],
        )
        .await;
        round += 1;
        assert!(round < 100 * SCANNED_FIELDS, "the scan does not end");
        if next == "0" {
            break;
        }
        cursor = next;
    }
    let missing: Vec<usize> = (0..SCANNED_FIELDS)
        .filter(|i| !seen.contains(&format!("stable:{i}")))
        .collect();
    assert!(missing.is_empty(), "HSCAN skipped fields {missing:?}");
}

#[tokio::test]
async fn hscan_answers_a_missing_key_or_wrong_type_before_reading_options() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    let (cursor, items): (String, Vec<String>) =
        ok(&mut con, &["HSCAN", "nope", "0", "BOGUS"]).await;
    assert_eq!((cursor.as_str(), items.len()), ("0", 0));
    ok::<(), _>(&mut con, &["SET", "s", "v"]).await;
    assert_eq!(
        err(&mut con, &["HSCAN", "s", "0", "BOGUS"]).await,
        WRONGTYPE
    );
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    assert_eq!(err(&mut con, &["HSCAN", "h", "0", "BOGUS"]).await, SYNTAX);
    assert_eq!(
        err(&mut con, &["HSCAN", "h", "0", "TYPE", "hash"]).await,
        SYNTAX
    );
    assert_eq!(
        err(&mut con, &["HSCAN", "h", "0", "COUNT", "0"]).await,
        SYNTAX
    );
    assert_eq!(
        err(&mut con, &["HSCAN", "h", "x"]).await,
        "ERR invalid cursor"
    );
}

#[tokio::test]
async fn hrandfield_picks_distinct_fields_or_repeats_for_a_negative_count() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["HSET", "h", "a", "1", "b", "2", "c", "3"]).await;
    let one: String = ok(&mut con, &["HRANDFIELD", "h"]).await;
    assert!(["a", "b", "c"].contains(&one.as_str()));
    let mut distinct: Vec<String> = ok(&mut con, &["HRANDFIELD", "h", "10"]).await;
    distinct.sort();
    assert_eq!(distinct, ["a", "b", "c"]);
    let repeated: Vec<String> = ok(&mut con, &["HRANDFIELD", "h", "-10"]).await;
    assert_eq!(repeated.len(), 10);
    let pairs: Vec<(String, String)> = ok(&mut con, &["HRANDFIELD", "h", "-4", "WITHVALUES"]).await;
    assert_eq!(pairs.len(), 4);
    for (field, value) in &pairs {
        assert_eq!(
            ok::<String, _>(&mut con, &["HGET", "h", field]).await,
            *value
        );
    }
    assert_eq!(
        ok::<Vec<String>, _>(&mut con, &["HRANDFIELD", "h", "0"]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["HRANDFIELD", "nope"]).await,
        None
    );
    assert_eq!(
        ok::<Vec<String>, _>(&mut con, &["HRANDFIELD", "nope", "-5"]).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn hrandfield_refuses_bad_counts_and_options() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["HSET", "h", "a", "1"]).await;
    for (args, want) in [
        (&["HRANDFIELD", "h", "x"][..], NOT_INTEGER.to_string()),
        (&["HRANDFIELD", "h", "1", "BOGUS"], SYNTAX.to_string()),
        (
            &["HRANDFIELD", "h", "1", "WITHVALUES", "x"],
            SYNTAX.to_string(),
        ),
        (
            &["HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"],
            "ERR value is out of range".to_string(),
        ),
        (
            &["HRANDFIELD", "h", "-9223372036854775808"],
            format!(
                "ERR value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            ),
        ),
    ] {
        assert_eq!(err(&mut con, args).await, want, "{args:?}");
    }
}

#[tokio::test]
async fn hash_commands_on_a_string_answer_wrongtype() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "s", "v"]).await;
    for args in [
        &["HSET", "s", "f", "v"][..],
        &["HSETNX", "s", "f", "v"],
        &["HMSET", "s", "f", "v"],
        &["HGET", "s", "f"],
        &["HMGET", "s", "f"],
        &["HGETALL", "s"],
        &["HDEL", "s", "f"],
        &["HEXISTS", "s", "f"],
        &["HLEN", "s"],
        &["HKEYS", "s"],
        &["HVALS", "s"],
        &["HINCRBY", "s", "f", "1"],
        &["HINCRBYFLOAT", "s", "f", "1"],
        &["HSTRLEN", "s", "f"],
        &["HSCAN", "s", "0"],
        &["HRANDFIELD", "s"],
        &["HRANDFIELD", "s", "2", "WITHVALUES"],
    ] {
        assert_eq!(err(&mut con, args).await, WRONGTYPE, "{args:?}");
    }
    assert_eq!(ok::<String, _>(&mut con, &["GET", "s"]).await, "v");
}

#[tokio::test]
async fn hash_commands_with_the_wrong_argument_count_name_themselves() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_arity_errors(
        &mut con,
        &[
            &["HSET", "h"],
            &["HSETNX", "h", "f"],
            &["HMSET", "h", "f"],
            &["HGET", "h"],
            &["HMGET", "h"],
            &["HGETALL"],
            &["HDEL", "h"],
            &["HEXISTS", "h", "f", "g"],
            &["HLEN"],
            &["HKEYS", "a", "b"],
            &["HVALS"],
            &["HINCRBY", "h", "f"],
            &["HINCRBYFLOAT", "h", "f", "1", "2"],
            &["HSTRLEN", "h"],
            &["HSCAN", "h"],
            &["HRANDFIELD"],
        ],
    )
    .await;
}

#[tokio::test]
async fn small_hashes_keep_insertion_order_like_a_redis_listpack() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(
        &mut con,
        &["HSET", "h", "z", "1", "a", "2", "m", "3", "b", "4"],
    )
    .await;
    let keys: Vec<String> = ok(&mut con, &["HKEYS", "h"]).await;
    assert_eq!(keys, ["z", "a", "m", "b"]);
    ok::<(), _>(&mut con, &["HDEL", "h", "a"]).await;
    ok::<(), _>(&mut con, &["HSET", "h", "c", "5"]).await;
    let all: Vec<String> = ok(&mut con, &["HGETALL", "h"]).await;
    assert_eq!(all, ["z", "1", "m", "3", "b", "4", "c", "5"]);
    let vals: Vec<String> = ok(&mut con, &["HVALS", "h"]).await;
    assert_eq!(vals, ["1", "3", "4", "5"]);
}

#[tokio::test]
async fn a_negative_hrandfield_count_cannot_build_a_giant_reply() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    let big = "x".repeat(1 << 20);
    ok::<(), _>(&mut con, &["HSET", "h", "f", &big]).await;
    let few: Vec<String> = ok(&mut con, &["HRANDFIELD", "h", "-3"]).await;
    assert_eq!(few, ["f", "f", "f"]);
    // 1,000 copies of a 1 MiB value would be a 1 GiB reply.
    assert_eq!(
        err(&mut con, &["HRANDFIELD", "h", "-1000", "WITHVALUES"]).await,
        "ERR value is out of range"
    );
}
