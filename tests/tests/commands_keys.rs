//! Keyspace commands against a real node, through the `redis` crate: deletion, expiry
//! (with short TTLs and polling), scans, renames, copies and introspection.

mod support {
    pub mod client;
}

use std::collections::HashSet;

use cachalot_tests::ServerProcess;
use redis::Value;
use support::client::{
    assert_arity_errors, connect, err, ok, wait_until_gone, NOT_INTEGER, SYNTAX, WRONGTYPE,
};

/// Keys present for a whole scan in the SCAN guarantee test.
const STABLE_KEYS: usize = 2_000;
/// Keys written and deleted between two SCAN calls.
const CHURN_KEYS_PER_CALL: usize = 20;

#[tokio::test]
async fn del_unlink_and_exists_count_every_named_key() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["MSET", "a", "1", "b", "2", "c", "3"]).await;
    assert_eq!(
        ok::<i64, _>(&mut con, &["EXISTS", "a", "a", "b", "nope"]).await,
        3
    );
    assert_eq!(ok::<i64, _>(&mut con, &["DEL", "a", "nope", "a"]).await, 1);
    assert_eq!(ok::<i64, _>(&mut con, &["UNLINK", "b", "c"]).await, 2);
    assert_eq!(ok::<i64, _>(&mut con, &["EXISTS", "a", "b", "c"]).await, 0);
}

#[tokio::test]
async fn touch_counts_existing_keys_and_type_names_each_type() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "s", "v"]).await;
    ok::<(), _>(&mut con, &["SET", "n", "12"]).await;
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    assert_eq!(
        ok::<i64, _>(&mut con, &["TOUCH", "s", "h", "nope"]).await,
        2
    );
    for (key, want) in [
        ("s", "string"),
        ("n", "string"),
        ("h", "hash"),
        ("nope", "none"),
    ] {
        assert_eq!(ok::<String, _>(&mut con, &["TYPE", key]).await, want);
    }
}

#[tokio::test]
async fn ttl_replies_distinguish_missing_persistent_and_expiring_keys() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "k", "v"]).await;
    for cmd in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(ok::<i64, _>(&mut con, &[cmd, "nope"]).await, -2, "{cmd}");
        assert_eq!(ok::<i64, _>(&mut con, &[cmd, "k"]).await, -1, "{cmd}");
    }
    assert_eq!(ok::<i64, _>(&mut con, &["EXPIRE", "k", "100"]).await, 1);
    assert!((99..=100).contains(&ok::<i64, _>(&mut con, &["TTL", "k"]).await));
    assert!((99_000..=100_000).contains(&ok::<i64, _>(&mut con, &["PTTL", "k"]).await));
    assert_eq!(
        ok::<i64, _>(&mut con, &["PEXPIREAT", "k", "4102444800500"]).await,
        1
    );
    assert_eq!(
        ok::<i64, _>(&mut con, &["PEXPIRETIME", "k"]).await,
        4102444800500
    );
    assert_eq!(
        ok::<i64, _>(&mut con, &["EXPIRETIME", "k"]).await,
        4102444801,
        "rounded"
    );
    assert_eq!(ok::<i64, _>(&mut con, &["EXPIRE", "nope", "100"]).await, 0);
}

#[tokio::test]
async fn an_expired_key_disappears_from_every_read() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "k", "v"]).await;
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["PEXPIRE", "k", "100"]).await, 1);
    assert_eq!(ok::<i64, _>(&mut con, &["PEXPIRE", "h", "100"]).await, 1);
    wait_until_gone(&con, "k").await;
    wait_until_gone(&con, "h").await;
    assert_eq!(ok::<Option<String>, _>(&mut con, &["GET", "k"]).await, None);
    assert_eq!(ok::<i64, _>(&mut con, &["HLEN", "h"]).await, 0);
    assert_eq!(
        ok::<Vec<String>, _>(&mut con, &["KEYS", "*"]).await,
        Vec::<String>::new()
    );
    assert_eq!(ok::<i64, _>(&mut con, &["PERSIST", "k"]).await, 0);
}

#[tokio::test]
async fn a_past_or_negative_expire_time_deletes_the_key() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    for args in [
        &["EXPIRE", "k", "0"][..],
        &["EXPIRE", "k", "-10"],
        &["PEXPIRE", "k", "-9223372036854775808"],
        &["EXPIREAT", "k", "1"],
        &["PEXPIREAT", "k", "0"],
    ] {
        ok::<(), _>(&mut con, &["SET", "k", "v"]).await;
        assert_eq!(ok::<i64, _>(&mut con, args).await, 1, "{args:?}");
        assert_eq!(
            ok::<i64, _>(&mut con, &["EXISTS", "k"]).await,
            0,
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn expire_times_that_overflow_are_invalid() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "k", "v"]).await;
    for (cmd, n) in [
        ("EXPIRE", "9223372036854775807"),
        ("EXPIRE", "-9223372036854775808"),
        ("PEXPIRE", "9223372036854775807"),
        ("EXPIREAT", "9223372036854775807"),
    ] {
        let want = format!(
            "ERR invalid expire time in '{}' command",
            cmd.to_ascii_lowercase()
        );
        assert_eq!(err(&mut con, &[cmd, "k", n]).await, want);
    }
    assert_eq!(err(&mut con, &["EXPIRE", "k", "1.5"]).await, NOT_INTEGER);
    // An absolute time at the very end of the range is accepted.
    assert_eq!(
        ok::<i64, _>(&mut con, &["PEXPIREAT", "k", "9223372036854775807"]).await,
        1
    );
    assert!(ok::<i64, _>(&mut con, &["TTL", "k"]).await > 1 << 50);
}

#[tokio::test]
async fn expire_conditions_nx_xx_gt_lt_decide_whether_to_write() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "k", "v"]).await;
    // Without a TTL the key counts as never expiring: XX and GT refuse, NX and LT accept.
    for (args, want) in [
        (&["EXPIRE", "k", "100", "XX"][..], 0),
        (&["EXPIRE", "k", "100", "GT"], 0),
        (&["EXPIRE", "k", "100", "NX"], 1),
        (&["EXPIRE", "k", "200", "NX"], 0),
        (&["EXPIRE", "k", "200", "XX"], 1),
        (&["EXPIRE", "k", "100", "GT"], 0),
        (&["EXPIRE", "k", "300", "gt"], 1),
        (&["EXPIRE", "k", "400", "LT"], 0),
        (&["EXPIRE", "k", "150", "XX", "LT"], 1),
        (&["PEXPIRE", "k", "500000", "XX", "GT"], 1),
    ] {
        assert_eq!(ok::<i64, _>(&mut con, args).await, want, "{args:?}");
    }
    assert!((499..=500).contains(&ok::<i64, _>(&mut con, &["TTL", "k"]).await));
    ok::<(), _>(&mut con, &["PERSIST", "k"]).await;
    assert_eq!(
        ok::<i64, _>(&mut con, &["EXPIRE", "k", "100", "LT"]).await,
        1
    );
}

#[tokio::test]
async fn incompatible_expire_conditions_are_refused_before_anything_else() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    let nx = "ERR NX and XX, GT or LT options at the same time are not compatible";
    let gtlt = "ERR GT and LT options at the same time are not compatible";
    for (args, want) in [
        (&["EXPIRE", "k", "1", "NX", "XX"][..], nx),
        (&["EXPIRE", "k", "1", "NX", "GT"], nx),
        (&["PEXPIRE", "k", "1", "LT", "NX"], nx),
        (&["EXPIRE", "k", "1", "GT", "LT"], gtlt),
        (&["EXPIREAT", "k", "abc", "GT", "LT"], gtlt),
        (
            &["EXPIRE", "k", "abc", "BOGUS"],
            "ERR Unsupported option BOGUS",
        ),
    ] {
        assert_eq!(err(&mut con, args).await, want, "{args:?}");
    }
}

#[tokio::test]
async fn persist_removes_an_expiry_only_when_there_is_one() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "k", "v", "EX", "100"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["PERSIST", "k"]).await, 1);
    assert_eq!(ok::<i64, _>(&mut con, &["PERSIST", "k"]).await, 0);
    assert_eq!(ok::<i64, _>(&mut con, &["PERSIST", "nope"]).await, 0);
    assert_eq!(ok::<i64, _>(&mut con, &["TTL", "k"]).await, -1);
}

#[tokio::test]
async fn keys_matches_glob_patterns() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(
        &mut con,
        &[
            "MSET", "hello", "1", "hallo", "2", "hxllo", "3", "hllo", "4", "h*llo", "5",
        ],
    )
    .await;
    for (pattern, want) in [
        ("h?llo", &["h*llo", "hallo", "hello", "hxllo"][..]),
        ("h[ae]llo", &["hallo", "hello"]),
        ("h[^e]llo", &["h*llo", "hallo", "hxllo"]),
        ("h[a-b]llo", &["hallo"]),
        ("h\\*llo", &["h*llo"]),
        ("*llo", &["h*llo", "hallo", "hello", "hllo", "hxllo"]),
        ("nothing*", &[]),
    ] {
        let mut got: Vec<String> = ok(&mut con, &["KEYS", pattern]).await;
        got.sort();
        assert_eq!(got, want, "{pattern}");
    }
}

#[tokio::test]
async fn scan_returns_every_key_present_for_the_whole_scan_while_others_are_written() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    let mut mset = vec!["MSET".to_string()];
    for i in 0..STABLE_KEYS {
        mset.extend([format!("stable:{i}"), "v".to_string()]);
    }
    ok::<(), _>(&mut con, &mset).await;
    let mut seen = HashSet::new();
    let (mut cursor, mut round) = ("0".to_string(), 0usize);
    loop {
        let (next, keys): (String, Vec<String>) =
            ok(&mut con, &["SCAN", &cursor, "COUNT", "25"]).await;
        seen.extend(keys.into_iter().filter(|k| k.starts_with("stable:")));
        // Between calls: write a batch of new keys and delete the previous batch.
        let churn = |r: usize| (0..CHURN_KEYS_PER_CALL).map(move |j| format!("churn:{r}:{j}"));
        let mut add = vec!["MSET".to_string()];
        add.extend(churn(round).flat_map(|k| [k, "x".to_string()]));
        ok::<(), _>(&mut con, &add).await;
        if round > 0 {
            let mut del = vec!["DEL".to_string()];
            del.extend(churn(round - 1));
            ok::<(), _>(&mut con, &del).await;
        }
        round += 1;
        assert!(round < 100 * STABLE_KEYS, "the scan does not end");
        if next == "0" {
            break;
        }
        cursor = next;
    }
    let missing: Vec<usize> = (0..STABLE_KEYS)
        .filter(|i| !seen.contains(&format!("stable:{i}")))
        .collect();
    assert!(missing.is_empty(), "SCAN skipped stable keys {missing:?}");
}

#[tokio::test]
async fn scan_filters_by_pattern_and_type() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["MSET", "s:1", "a", "s:2", "b", "other", "c"]).await;
    ok::<(), _>(&mut con, &["HSET", "h:1", "f", "v"]).await;
    for (options, want) in [
        (&["MATCH", "s:*"][..], &["s:1", "s:2"][..]),
        (&["TYPE", "hash"], &["h:1"]),
        (&["TYPE", "STRING", "MATCH", "*1"], &["s:1"]),
        (&["TYPE", "list"], &[]),
    ] {
        let mut found = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let mut args = vec!["SCAN", cursor.as_str(), "COUNT", "3"];
            args.extend_from_slice(options);
            let (next, keys): (String, Vec<String>) = ok(&mut con, &args).await;
            found.extend(keys);
            if next == "0" {
                break;
            }
            cursor = next;
        }
        found.sort();
        assert_eq!(found, want, "{options:?}");
    }
}

#[tokio::test]
async fn scan_refuses_bad_cursors_and_options() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    for cursor in ["abc", " 0", "0 ", "-", "18446744073709551616"] {
        assert_eq!(
            err(&mut con, &["SCAN", cursor]).await,
            "ERR invalid cursor",
            "{cursor:?}"
        );
    }
    // Like C's strtoul: an empty cursor is 0 and a sign is allowed.
    for cursor in ["", "+0", "-1"] {
        ok::<(String, Vec<String>), _>(&mut con, &["SCAN", cursor]).await;
    }
    assert_eq!(err(&mut con, &["SCAN", "0", "COUNT", "0"]).await, SYNTAX);
    assert_eq!(
        err(&mut con, &["SCAN", "0", "COUNT", "x"]).await,
        NOT_INTEGER
    );
    assert_eq!(err(&mut con, &["SCAN", "0", "MATCH"]).await, SYNTAX);
    assert_eq!(err(&mut con, &["SCAN", "0", "NOVALUES"]).await, SYNTAX);
}

#[tokio::test]
async fn randomkey_picks_an_existing_key_or_nil() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["RANDOMKEY"]).await,
        None
    );
    ok::<(), _>(&mut con, &["MSET", "a", "1", "b", "2"]).await;
    let key: String = ok(&mut con, &["RANDOMKEY"]).await;
    assert!(key == "a" || key == "b", "{key}");
}

#[tokio::test]
async fn rename_moves_the_value_and_its_expiry() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "a", "1", "EX", "100"]).await;
    ok::<(), _>(&mut con, &["SET", "b", "2"]).await;
    ok::<(), _>(&mut con, &["RENAME", "a", "b"]).await;
    assert_eq!(ok::<String, _>(&mut con, &["GET", "b"]).await, "1");
    assert!(ok::<i64, _>(&mut con, &["TTL", "b"]).await > 0);
    assert_eq!(ok::<i64, _>(&mut con, &["EXISTS", "a"]).await, 0);
    assert_eq!(
        err(&mut con, &["RENAME", "a", "c"]).await,
        "ERR no such key"
    );
    assert_eq!(
        err(&mut con, &["RENAMENX", "a", "c"]).await,
        "ERR no such key"
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["RENAME", "b", "b"]).await,
        Value::Okay
    );
    assert_eq!(ok::<i64, _>(&mut con, &["RENAMENX", "b", "b"]).await, 0);
    ok::<(), _>(&mut con, &["SET", "c", "3"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["RENAMENX", "b", "c"]).await, 0);
    assert_eq!(ok::<i64, _>(&mut con, &["RENAMENX", "b", "d"]).await, 1);
    assert_eq!(ok::<String, _>(&mut con, &["GET", "d"]).await, "1");
}

#[tokio::test]
async fn copy_duplicates_a_value_and_respects_replace() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    ok::<(), _>(&mut con, &["PEXPIRE", "h", "100000"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["COPY", "h", "h2"]).await, 1);
    assert_eq!(ok::<String, _>(&mut con, &["HGET", "h2", "f"]).await, "v");
    assert!(
        ok::<i64, _>(&mut con, &["PTTL", "h2"]).await > 0,
        "the expiry is copied"
    );
    ok::<(), _>(&mut con, &["HSET", "h2", "f", "changed"]).await;
    assert_eq!(
        ok::<String, _>(&mut con, &["HGET", "h", "f"]).await,
        "v",
        "copies are independent"
    );
    ok::<(), _>(&mut con, &["SET", "s", "x"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["COPY", "s", "h2"]).await, 0);
    assert_eq!(
        ok::<i64, _>(&mut con, &["COPY", "s", "h2", "DB", "0", "REPLACE"]).await,
        1
    );
    assert_eq!(ok::<String, _>(&mut con, &["TYPE", "h2"]).await, "string");
    assert_eq!(ok::<i64, _>(&mut con, &["COPY", "nope", "x"]).await, 0);
    for (args, want) in [
        (
            &["COPY", "s", "s"][..],
            "ERR source and destination objects are the same",
        ),
        (
            &["COPY", "nope", "nope"],
            "ERR source and destination objects are the same",
        ),
        (
            &["COPY", "s", "t", "DB", "1"],
            "ERR DB index is out of range",
        ),
        (&["COPY", "s", "t", "DB", "x"], NOT_INTEGER),
        (&["COPY", "s", "t", "DB"], SYNTAX),
        (&["COPY", "s", "t", "BOGUS"], SYNTAX),
    ] {
        assert_eq!(err(&mut con, args).await, want, "{args:?}");
    }
}

#[tokio::test]
async fn dbsize_counts_keys_and_flushes_empty_the_keyspace() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["MSET", "a", "1", "b", "2"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["DBSIZE"]).await, 2);
    ok::<(), _>(&mut con, &["FLUSHDB", "ASYNC"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["DBSIZE"]).await, 0);
    ok::<(), _>(&mut con, &["SET", "a", "1"]).await;
    ok::<(), _>(&mut con, &["FLUSHALL", "sync"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["DBSIZE"]).await, 0);
    assert_eq!(err(&mut con, &["FLUSHALL", "BOGUS"]).await, SYNTAX);
    assert_eq!(err(&mut con, &["FLUSHDB", "ASYNC", "SYNC"]).await, SYNTAX);
}

#[tokio::test]
async fn object_encoding_follows_redis_history_rules() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    let long = "x".repeat(45);
    let long_field = "f".repeat(65);
    for setup in [
        &["SET", "int", "12345"][..],
        &["SET", "lead", "0123"],
        &["SET", "emb", "hello"],
        &["SET", "raw", &long],
        &["SET", "app", "ab"],
        &["APPEND", "app", "cd"],
        &["SETRANGE", "sr", "0", "ab"],
        &["INCRBYFLOAT", "fl", "3"],
        &["HSET", "small", "f", "v"],
        &["HSET", "big", &long_field, "v", "g", "w"],
        &["HDEL", "big", &long_field],
    ] {
        ok::<(), _>(&mut con, setup).await;
    }
    for (key, want) in [
        ("int", "int"),
        ("lead", "embstr"),
        ("emb", "embstr"),
        ("raw", "raw"),
        ("app", "raw"),
        ("sr", "raw"),
        ("fl", "embstr"),
        ("small", "listpack"),
        ("big", "hashtable"),
    ] {
        assert_eq!(
            ok::<String, _>(&mut con, &["OBJECT", "ENCODING", key]).await,
            want,
            "{key}"
        );
    }
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["OBJECT", "ENCODING", "nope"]).await,
        None
    );
}

#[tokio::test]
async fn object_subcommands_answer_like_redis() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["MSET", "small", "100", "s", "text"]).await;
    assert_eq!(
        ok::<i64, _>(&mut con, &["OBJECT", "REFCOUNT", "small"]).await,
        i64::from(i32::MAX),
        "shared integer"
    );
    assert_eq!(
        ok::<i64, _>(&mut con, &["OBJECT", "REFCOUNT", "s"]).await,
        1
    );
    // Whole seconds since the access second: 1 if a second ticked since the write.
    let idle = ok::<i64, _>(&mut con, &["OBJECT", "IDLETIME", "s"]).await;
    assert!((0..=1).contains(&idle), "{idle}");
    assert!(err(&mut con, &["OBJECT", "FREQ", "s"])
        .await
        .starts_with("ERR An LFU maxmemory policy is not selected"));
    let help: Vec<String> = ok(&mut con, &["OBJECT", "HELP"]).await;
    assert_eq!(
        help.last().map(String::as_str),
        Some("    Prints this help.")
    );
    assert_eq!(
        err(&mut con, &["OBJECT", "BOGUS", "s"]).await,
        "ERR unknown subcommand 'BOGUS'. Try OBJECT HELP."
    );
    assert_eq!(
        err(&mut con, &["OBJECT", "ENCODING"]).await,
        "ERR wrong number of arguments for 'object|encoding' command"
    );
}

#[tokio::test]
async fn memory_usage_reports_a_size_for_existing_keys_only() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "k", "v"]).await;
    assert!(ok::<i64, _>(&mut con, &["MEMORY", "USAGE", "k"]).await > 0);
    assert!(ok::<i64, _>(&mut con, &["MEMORY", "USAGE", "k", "SAMPLES", "0"]).await > 0);
    assert_eq!(
        ok::<Option<i64>, _>(&mut con, &["MEMORY", "USAGE", "nope"]).await,
        None
    );
    assert_eq!(
        err(&mut con, &["MEMORY", "USAGE", "k", "SAMPLES"]).await,
        SYNTAX
    );
    assert_eq!(
        err(&mut con, &["MEMORY", "USAGE", "k", "SAMPLES", "x"]).await,
        NOT_INTEGER
    );
}

#[tokio::test]
async fn key_commands_on_the_wrong_type_or_count_fail_with_redis_texts() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "s", "v"]).await;
    assert_eq!(err(&mut con, &["HGET", "s", "f"]).await, WRONGTYPE);
    assert_arity_errors(
        &mut con,
        &[
            &["DEL"],
            &["UNLINK"],
            &["EXISTS"],
            &["TOUCH"],
            &["TYPE"],
            &["EXPIRE", "k"],
            &["PEXPIREAT", "k"],
            &["TTL", "a", "b"],
            &["PTTL"],
            &["EXPIRETIME"],
            &["PEXPIRETIME", "a", "b"],
            &["PERSIST"],
            &["KEYS"],
            &["SCAN"],
            &["RANDOMKEY", "x"],
            &["RENAME", "a"],
            &["RENAMENX", "a", "b", "c"],
            &["COPY", "a"],
            &["DBSIZE", "x"],
            &["OBJECT"],
            &["MEMORY"],
        ],
    )
    .await;
}

#[tokio::test]
async fn an_unknown_command_is_quoted_back_with_its_arguments() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(
        err(&mut con, &["NOSUCH", "a", "b c"]).await,
        "ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b c' "
    );
    assert_eq!(
        err(&mut con, &["SUBSTR", "k", "0", "1"])
            .await
            .split(',')
            .next(),
        Some("ERR unknown command 'SUBSTR'")
    );
}
