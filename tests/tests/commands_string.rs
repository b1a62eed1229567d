//! String commands against a real node, through the `redis` crate: results, options and
//! Redis's exact error texts. (`differential.rs` compares the same area byte for byte with
//! a real Redis; these tests state the behaviour one rule at a time.)

mod support {
    pub mod client;
}

use cachalot_tests::ServerProcess;
use redis::Value;
use support::client::{
    assert_arity_errors, connect, err, ok, wait_until_gone, NOT_INTEGER, SYNTAX, WRONGTYPE,
};

#[tokio::test]
async fn a_missing_key_reads_as_nil() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["GET", "nope"]).await,
        None
    );
    assert_eq!(ok::<i64, _>(&mut con, &["STRLEN", "nope"]).await, 0);
}

#[tokio::test]
async fn set_and_get_round_trip_binary_values() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    for value in [&b"hello"[..], b"", b"a\x00b\r\nc", &[0xff, 0xfe, 0x00]] {
        ok::<(), _>(&mut con, &[&b"SET"[..], b"k", value]).await;
        assert_eq!(ok::<Vec<u8>, _>(&mut con, &["GET", "k"]).await, value);
    }
}

#[tokio::test]
async fn set_nx_and_xx_write_only_missing_or_existing_keys() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(
        ok::<Value, _>(&mut con, &["SET", "k", "1", "XX"]).await,
        Value::Nil
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["SET", "k", "1", "NX"]).await,
        Value::Okay
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["SET", "k", "2", "NX"]).await,
        Value::Nil
    );
    assert_eq!(
        ok::<Value, _>(&mut con, &["SET", "k", "3", "xx"]).await,
        Value::Okay
    );
    assert_eq!(ok::<String, _>(&mut con, &["GET", "k"]).await, "3");
}

#[tokio::test]
async fn set_get_returns_the_old_value_even_when_nx_blocks_the_write() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["SET", "k", "a", "GET"]).await,
        None
    );
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["SET", "k", "b", "GET"])
            .await
            .as_deref(),
        Some("a")
    );
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["SET", "k", "c", "NX", "GET"])
            .await
            .as_deref(),
        Some("b")
    );
    assert_eq!(ok::<String, _>(&mut con, &["GET", "k"]).await, "b");
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    assert_eq!(err(&mut con, &["SET", "h", "v", "GET"]).await, WRONGTYPE);
    // Without GET, SET overwrites any type.
    ok::<(), _>(&mut con, &["SET", "h", "v"]).await;
    assert_eq!(ok::<String, _>(&mut con, &["TYPE", "h"]).await, "string");
}

#[tokio::test]
async fn set_options_follow_redis_rules_for_repeats_and_conflicts() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    // Repeating an option is fine (the last expiry wins); combining exclusive ones is not.
    for accepted in [
        &["SET", "k", "v", "NX", "NX"][..],
        &["SET", "k", "v", "GET", "GET"],
        &["SET", "k", "v", "KEEPTTL", "KEEPTTL"],
        &["SET", "k", "v", "EX", "10", "EX", "20"],
        &["SET", "k", "v", "px", "100000", "xx", "get"],
    ] {
        ok::<Value, _>(&mut con, accepted).await;
    }
    for refused in [
        &["SET", "k", "v", "NX", "XX"][..],
        &["SET", "k", "v", "XX", "NX"],
        &["SET", "k", "v", "EX", "10", "PX", "10"],
        &["SET", "k", "v", "EX", "10", "KEEPTTL"],
        &["SET", "k", "v", "KEEPTTL", "PXAT", "10"],
        &["SET", "k", "v", "EX"],
        &["SET", "k", "v", "PERSIST"],
        &["SET", "k", "v", "BOGUS"],
        // A syntax error wins over a bad number, as the value is read after the options.
        &["SET", "k", "v", "EX", "abc", "BOGUS"],
    ] {
        assert_eq!(err(&mut con, refused).await, SYNTAX, "{refused:?}");
    }
}

#[tokio::test]
async fn set_refuses_bad_expire_times() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    for (args, want) in [
        (
            &["SET", "k", "v", "EX", "0"][..],
            "ERR invalid expire time in 'set' command",
        ),
        (
            &["SET", "k", "v", "PX", "-1"],
            "ERR invalid expire time in 'set' command",
        ),
        (
            &["SET", "k", "v", "EX", "9223372036854775807"],
            "ERR invalid expire time in 'set' command",
        ),
        (
            &["SET", "k", "v", "PX", "9223372036854775807"],
            "ERR invalid expire time in 'set' command",
        ),
        (&["SET", "k", "v", "EX", "1.5"], NOT_INTEGER),
        (&["SET", "k", "v", "EXAT", "soon"], NOT_INTEGER),
        (
            &["SETEX", "k", "0", "v"],
            "ERR invalid expire time in 'setex' command",
        ),
        (
            &["PSETEX", "k", "-5", "v"],
            "ERR invalid expire time in 'psetex' command",
        ),
        (&["SETEX", "k", "x", "v"], NOT_INTEGER),
    ] {
        assert_eq!(err(&mut con, args).await, want, "{args:?}");
    }
    assert_eq!(ok::<i64, _>(&mut con, &["EXISTS", "k"]).await, 0);
}

#[tokio::test]
async fn a_key_set_with_px_expires_and_reads_as_nil() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "k", "v", "PX", "100"]).await;
    let pttl: i64 = ok(&mut con, &["PTTL", "k"]).await;
    assert!((1..=100).contains(&pttl), "pttl {pttl}");
    wait_until_gone(&con, "k").await;
    assert_eq!(ok::<Option<String>, _>(&mut con, &["GET", "k"]).await, None);
    assert_eq!(ok::<i64, _>(&mut con, &["TTL", "k"]).await, -2);
}

#[tokio::test]
async fn keepttl_keeps_the_expiry_and_a_plain_set_clears_it() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "k", "v", "EXAT", "4102444800"]).await;
    ok::<(), _>(&mut con, &["SET", "k", "w", "KEEPTTL"]).await;
    assert_eq!(
        ok::<i64, _>(&mut con, &["EXPIRETIME", "k"]).await,
        4102444800
    );
    ok::<(), _>(&mut con, &["SET", "k", "x"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["TTL", "k"]).await, -1);
    ok::<(), _>(&mut con, &["SET", "k", "v", "PXAT", "4102444800123"]).await;
    assert_eq!(
        ok::<i64, _>(&mut con, &["PEXPIRETIME", "k"]).await,
        4102444800123
    );
    // A time already past stores nothing readable.
    ok::<(), _>(&mut con, &["SET", "old", "v", "PXAT", "1"]).await;
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["GET", "old"]).await,
        None
    );
}

#[tokio::test]
async fn setnx_setex_and_psetex_write_as_their_names_say() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(ok::<i64, _>(&mut con, &["SETNX", "k", "a"]).await, 1);
    assert_eq!(ok::<i64, _>(&mut con, &["SETNX", "k", "b"]).await, 0);
    assert_eq!(ok::<String, _>(&mut con, &["GET", "k"]).await, "a");
    ok::<(), _>(&mut con, &["SETEX", "s", "100", "v"]).await;
    assert!((99..=100).contains(&ok::<i64, _>(&mut con, &["TTL", "s"]).await));
    ok::<(), _>(&mut con, &["PSETEX", "p", "100", "v"]).await;
    wait_until_gone(&con, "p").await;
}

#[tokio::test]
async fn getset_and_getdel_return_the_old_value() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["GETSET", "k", "a"]).await,
        None
    );
    ok::<(), _>(&mut con, &["EXPIRE", "k", "100"]).await;
    assert_eq!(ok::<String, _>(&mut con, &["GETSET", "k", "b"]).await, "a");
    assert_eq!(
        ok::<i64, _>(&mut con, &["TTL", "k"]).await,
        -1,
        "GETSET clears the TTL"
    );
    assert_eq!(ok::<String, _>(&mut con, &["GETDEL", "k"]).await, "b");
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["GETDEL", "k"]).await,
        None
    );
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    assert_eq!(err(&mut con, &["GETDEL", "h"]).await, WRONGTYPE);
    assert_eq!(err(&mut con, &["GETSET", "h", "v"]).await, WRONGTYPE);
    assert_eq!(ok::<i64, _>(&mut con, &["EXISTS", "h"]).await, 1);
}

#[tokio::test]
async fn getex_sets_or_removes_the_expiry() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "k", "v"]).await;
    assert_eq!(
        ok::<String, _>(&mut con, &["GETEX", "k", "EX", "100"]).await,
        "v"
    );
    assert!((99..=100).contains(&ok::<i64, _>(&mut con, &["TTL", "k"]).await));
    ok::<String, _>(&mut con, &["GETEX", "k", "EXAT", "4102444800"]).await;
    assert_eq!(
        ok::<i64, _>(&mut con, &["EXPIRETIME", "k"]).await,
        4102444800
    );
    ok::<String, _>(&mut con, &["GETEX", "k", "PERSIST", "PERSIST"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["TTL", "k"]).await, -1);
    ok::<String, _>(&mut con, &["GETEX", "k", "PX", "100"]).await;
    wait_until_gone(&con, "k").await;
    // A past absolute time deletes the key after returning it.
    ok::<(), _>(&mut con, &["SET", "k", "v"]).await;
    assert_eq!(
        ok::<String, _>(&mut con, &["GETEX", "k", "PXAT", "1"]).await,
        "v"
    );
    assert_eq!(ok::<i64, _>(&mut con, &["EXISTS", "k"]).await, 0);
}

#[tokio::test]
async fn getex_checks_the_key_before_the_expire_value() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(
        ok::<Option<String>, _>(&mut con, &["GETEX", "nope", "EX", "abc"]).await,
        None
    );
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    assert_eq!(err(&mut con, &["GETEX", "h", "EX", "abc"]).await, WRONGTYPE);
    ok::<(), _>(&mut con, &["SET", "k", "v"]).await;
    assert_eq!(
        err(&mut con, &["GETEX", "k", "EX", "abc"]).await,
        NOT_INTEGER
    );
    assert_eq!(
        err(&mut con, &["GETEX", "k", "EX", "0"]).await,
        "ERR invalid expire time in 'getex' command"
    );
    for refused in [
        &["GETEX", "k", "EX", "10", "PX", "10"][..],
        &["GETEX", "k", "EX", "10", "PERSIST"],
        &["GETEX", "k", "KEEPTTL"],
        &["GETEX", "k", "NX"],
        &["GETEX", "k", "EX"],
    ] {
        assert_eq!(err(&mut con, refused).await, SYNTAX, "{refused:?}");
    }
}

#[tokio::test]
async fn mget_reads_nil_for_missing_keys_and_other_types() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["MSET", "a", "1", "b", "2"]).await;
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    let got: Vec<Option<String>> = ok(&mut con, &["MGET", "a", "nope", "h", "b"]).await;
    assert_eq!(got, [Some("1".into()), None, None, Some("2".into())]);
}

#[tokio::test]
async fn msetnx_writes_all_keys_or_none() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(
        ok::<i64, _>(&mut con, &["MSETNX", "a", "1", "b", "2"]).await,
        1
    );
    assert_eq!(
        ok::<i64, _>(&mut con, &["MSETNX", "b", "3", "c", "4"]).await,
        0
    );
    assert_eq!(ok::<i64, _>(&mut con, &["EXISTS", "c"]).await, 0);
    assert_eq!(ok::<String, _>(&mut con, &["GET", "b"]).await, "2");
    assert_arity_errors(
        &mut con,
        &[
            &["MSET", "a"],
            &["MSET", "a", "1", "b"],
            &["MSETNX", "a", "1", "b"],
        ],
    )
    .await;
}

#[tokio::test]
async fn counters_count_and_keep_the_expiry() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(ok::<i64, _>(&mut con, &["INCR", "n"]).await, 1);
    assert_eq!(ok::<i64, _>(&mut con, &["INCRBY", "n", "10"]).await, 11);
    assert_eq!(ok::<i64, _>(&mut con, &["DECR", "n"]).await, 10);
    assert_eq!(ok::<i64, _>(&mut con, &["DECRBY", "n", "-5"]).await, 15);
    ok::<(), _>(&mut con, &["EXPIRE", "n", "100"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["INCRBY", "n", "-20"]).await, -5);
    assert!(
        ok::<i64, _>(&mut con, &["TTL", "n"]).await > 0,
        "INCR keeps the TTL"
    );
    assert_eq!(ok::<String, _>(&mut con, &["GET", "n"]).await, "-5");
}

#[tokio::test]
async fn counters_refuse_non_integers_and_overflow() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    for value in [
        "abc",
        " 1",
        "1 ",
        "+1",
        "01",
        "-0",
        "1.5",
        "99999999999999999999",
        "",
    ] {
        ok::<(), _>(&mut con, &["SET", "s", value]).await;
        assert_eq!(
            err(&mut con, &["INCR", "s"]).await,
            NOT_INTEGER,
            "{value:?}"
        );
        assert_eq!(
            err(&mut con, &["INCRBY", "n", value]).await,
            NOT_INTEGER,
            "{value:?}"
        );
    }
    ok::<(), _>(&mut con, &["SET", "max", "9223372036854775807"]).await;
    assert_eq!(
        err(&mut con, &["INCR", "max"]).await,
        "ERR increment or decrement would overflow"
    );
    ok::<(), _>(&mut con, &["SET", "min", "-9223372036854775808"]).await;
    assert_eq!(
        err(&mut con, &["DECR", "min"]).await,
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        err(&mut con, &["DECRBY", "n", "-9223372036854775808"]).await,
        "ERR decrement would overflow"
    );
    ok::<(), _>(&mut con, &["HSET", "h", "f", "1"]).await;
    assert_eq!(err(&mut con, &["INCR", "h"]).await, WRONGTYPE);
}

#[tokio::test]
async fn incrbyfloat_prints_the_digits_redis_prints() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    // Redis adds in 80-bit long double and prints 17 decimals: 0.1 + 0.2 is 0.3 there.
    for (start, incr, want) in [
        ("10.50", "0.1", "10.6"),
        ("10.6", "-5", "5.6"),
        ("5.0e3", "2.0e2", "5200"),
        ("0.1", "0.2", "0.3"),
        ("5.6", "5000", "5005.60000000000000009"),
        ("7", "0x10", "23"),
        ("3", "-3", "0"),
        ("1", "1e-20", "1"),
    ] {
        ok::<(), _>(&mut con, &["SET", "f", start]).await;
        assert_eq!(
            ok::<String, _>(&mut con, &["INCRBYFLOAT", "f", incr]).await,
            want,
            "{start} + {incr}"
        );
        assert_eq!(ok::<String, _>(&mut con, &["GET", "f"]).await, want);
    }
    assert_eq!(
        ok::<String, _>(&mut con, &["INCRBYFLOAT", "new", "1.5"]).await,
        "1.5"
    );
}

#[tokio::test]
async fn incrbyfloat_refuses_what_redis_refuses() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "f", "1"]).await;
    for incr in ["abc", "nan", "", "1 ", " 1", "1e", "1e99999"] {
        assert_eq!(
            err(&mut con, &["INCRBYFLOAT", "f", incr]).await,
            "ERR value is not a valid float",
            "{incr:?}"
        );
    }
    for incr in ["inf", "-inf"] {
        assert_eq!(
            err(&mut con, &["INCRBYFLOAT", "f", incr]).await,
            "ERR increment would produce NaN or Infinity"
        );
    }
    ok::<(), _>(&mut con, &["SET", "s", "text"]).await;
    assert_eq!(
        err(&mut con, &["INCRBYFLOAT", "s", "1"]).await,
        "ERR value is not a valid float"
    );
    // The type is checked before the increment.
    ok::<(), _>(&mut con, &["HSET", "h", "f", "1"]).await;
    assert_eq!(err(&mut con, &["INCRBYFLOAT", "h", "abc"]).await, WRONGTYPE);
}

#[tokio::test]
async fn append_and_strlen_measure_the_joined_string() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_eq!(ok::<i64, _>(&mut con, &["APPEND", "k", "hello"]).await, 5);
    assert_eq!(ok::<i64, _>(&mut con, &["APPEND", "k", " world"]).await, 11);
    assert_eq!(
        ok::<String, _>(&mut con, &["GET", "k"]).await,
        "hello world"
    );
    assert_eq!(ok::<i64, _>(&mut con, &["STRLEN", "k"]).await, 11);
    ok::<(), _>(&mut con, &["SET", "n", "12"]).await;
    assert_eq!(ok::<i64, _>(&mut con, &["APPEND", "n", "34"]).await, 4);
    assert_eq!(ok::<i64, _>(&mut con, &["INCR", "n"]).await, 1235);
    assert_eq!(ok::<i64, _>(&mut con, &["APPEND", "empty", ""]).await, 0);
    assert_eq!(ok::<i64, _>(&mut con, &["EXISTS", "empty"]).await, 1);
}

#[tokio::test]
async fn getrange_clamps_its_indexes_like_redis() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "s", "This is a string"]).await;
    for (start, end, want) in [
        ("0", "3", "This"),
        ("-3", "-1", "ing"),
        ("0", "-1", "This is a string"),
        ("10", "100", "string"),
        ("5", "3", ""),
        ("-1", "-5", ""),
        ("-100", "2", "Thi"),
        ("100", "200", ""),
        ("-9223372036854775808", "0", "T"),
    ] {
        assert_eq!(
            ok::<String, _>(&mut con, &["GETRANGE", "s", start, end]).await,
            want,
            "{start}..{end}"
        );
    }
    assert_eq!(
        ok::<String, _>(&mut con, &["GETRANGE", "nope", "0", "-1"]).await,
        ""
    );
    assert_eq!(
        err(&mut con, &["GETRANGE", "s", "a", "1"]).await,
        NOT_INTEGER
    );
}

#[tokio::test]
async fn setrange_patches_and_pads_with_zero_bytes() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["SET", "s", "Hello World"]).await;
    assert_eq!(
        ok::<i64, _>(&mut con, &["SETRANGE", "s", "6", "Redis"]).await,
        11
    );
    assert_eq!(
        ok::<String, _>(&mut con, &["GET", "s"]).await,
        "Hello Redis"
    );
    assert_eq!(
        ok::<i64, _>(&mut con, &["SETRANGE", "pad", "3", "x"]).await,
        4
    );
    assert_eq!(
        ok::<Vec<u8>, _>(&mut con, &["GET", "pad"]).await,
        b"\0\0\0x"
    );
    // An empty patch reports the length and creates nothing.
    assert_eq!(
        ok::<i64, _>(&mut con, &["SETRANGE", "s", "100", ""]).await,
        11
    );
    assert_eq!(
        ok::<i64, _>(&mut con, &["SETRANGE", "none", "5", ""]).await,
        0
    );
    assert_eq!(ok::<i64, _>(&mut con, &["EXISTS", "none"]).await, 0);
    assert_eq!(
        err(&mut con, &["SETRANGE", "s", "-1", "x"]).await,
        "ERR offset is out of range"
    );
    assert_eq!(
        err(&mut con, &["SETRANGE", "s", "536870912", "x"]).await,
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    assert_eq!(
        err(&mut con, &["SETRANGE", "h", "536870912", "x"]).await,
        WRONGTYPE,
        "type before size"
    );
}

#[tokio::test]
async fn string_commands_on_a_hash_answer_wrongtype() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    ok::<(), _>(&mut con, &["HSET", "h", "f", "v"]).await;
    for args in [
        &["GET", "h"][..],
        &["GETEX", "h"],
        &["GETEX", "h", "PERSIST"],
        &["INCR", "h"],
        &["DECRBY", "h", "1"],
        &["INCRBYFLOAT", "h", "1"],
        &["APPEND", "h", "x"],
        &["STRLEN", "h"],
        &["GETRANGE", "h", "0", "1"],
        &["SETRANGE", "h", "0", "x"],
    ] {
        assert_eq!(err(&mut con, args).await, WRONGTYPE, "{args:?}");
    }
    assert_eq!(ok::<i64, _>(&mut con, &["SETNX", "h", "v"]).await, 0);
}

#[tokio::test]
async fn string_commands_with_the_wrong_argument_count_name_themselves() {
    let server = ServerProcess::start();
    let mut con = connect(&server).await;
    assert_arity_errors(
        &mut con,
        &[
            &["GET"],
            &["GET", "a", "b"],
            &["SET", "k"],
            &["SETNX", "k"],
            &["SETEX", "k", "1"],
            &["PSETEX", "k", "1", "v", "x"],
            &["GETSET", "k"],
            &["GETEX"],
            &["GETDEL", "a", "b"],
            &["MGET"],
            &["MSETNX", "k"],
            &["INCR"],
            &["DECR", "a", "b"],
            &["INCRBY", "k"],
            &["DECRBY", "k", "1", "2"],
            &["INCRBYFLOAT", "k"],
            &["APPEND", "k"],
            &["STRLEN"],
            &["GETRANGE", "k", "0"],
            &["SETRANGE", "k", "0"],
        ],
    )
    .await;
}
