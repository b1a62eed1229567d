//! Differential tests: the same raw RESP commands go to a real `redis-server` and to a
//! `cachalot-server`, and the reply bytes must be identical, command by command.
//!
//! The scripts live in `scripts/*.redis`. Replies whose order Redis does not define
//! (`HKEYS`, `HGETALL`, `KEYS`, ...) are sorted before comparing; random ones
//! (`RANDOMKEY`, `HRANDFIELD`) are compared by shape; TTLs that depend on the clock are
//! checked against a range. Everything else is byte-exact. A mismatch prints the command
//! and both replies.
//!
//! Left out on purpose, because Redis's answer depends on what Cachalot does not have or
//! does differently by design:
//! - `SELECT`/`COPY ... DB` with a non-zero index (Redis has 16 databases, Cachalot one);
//! - `MEMORY USAGE` sizes (allocator-specific) and `MEMORY HELP` (Cachalot lists only the
//!   subcommands it implements);
//! - `HELLO`'s `version` and `id` values;
//! - `HSCAN ... NOVALUES` (a Redis 7.4 option Cachalot already has);
//! - `SCAN`/`HSCAN` cursors of multi-page scans (each server numbers its own cursors).
//!
//! Needs `redis-server` on the `PATH` (Debian package `redis-server`).

mod support {
    pub mod redis_pair;
}

use support::redis_pair::{run_script, Mode, Pair};

const STRINGS: &str = include_str!("scripts/strings.redis");
const KEYS: &str = include_str!("scripts/keys.redis");
const HASHES: &str = include_str!("scripts/hashes.redis");
const CONNECTION: &str = include_str!("scripts/connection.redis");
const TRACKING: &str = include_str!("scripts/tracking.redis");

/// Fields in the generated hash: past Redis's listpack limit of 512 entries.
const BIG_HASH_FIELDS: usize = 600;
/// Redis's default `hash-max-listpack-entries`.
const LISTPACK_MAX_ENTRIES: usize = 512;

#[test]
fn string_commands_reply_exactly_as_redis_does() {
    let mut pair = Pair::start();
    run_script(&mut pair, STRINGS);
}

#[test]
fn string_commands_reply_exactly_as_redis_does_over_resp3() {
    let mut pair = Pair::start();
    pair.check(Mode::Hello, &words(&["HELLO", "3"]));
    run_script(&mut pair, STRINGS);
}

#[test]
fn key_commands_reply_exactly_as_redis_does() {
    let mut pair = Pair::start();
    run_script(&mut pair, KEYS);
}

#[test]
fn key_commands_reply_exactly_as_redis_does_over_resp3() {
    let mut pair = Pair::start();
    pair.check(Mode::Hello, &words(&["HELLO", "3"]));
    run_script(&mut pair, KEYS);
}

#[test]
fn hash_commands_reply_exactly_as_redis_does() {
    let mut pair = Pair::start();
    run_script(&mut pair, HASHES);
}

#[test]
fn hash_commands_reply_exactly_as_redis_does_over_resp3() {
    let mut pair = Pair::start();
    pair.check(Mode::Hello, &words(&["HELLO", "3"]));
    run_script(&mut pair, HASHES);
}

#[test]
fn tracking_options_and_pubsub_confirmations_reply_exactly_as_redis_does() {
    let mut pair = Pair::start();
    run_script(&mut pair, TRACKING);
}

#[test]
fn tracking_options_and_pubsub_confirmations_reply_exactly_as_redis_does_over_resp3() {
    let mut pair = Pair::start();
    pair.check(Mode::Hello, &words(&["HELLO", "3"]));
    run_script(&mut pair, TRACKING);
}

#[test]
fn connection_commands_and_resp3_reply_exactly_as_redis_does() {
    let mut pair = Pair::start();
    run_script(&mut pair, CONNECTION);
}

#[test]
fn a_hash_past_the_listpack_limits_replies_exactly_as_redis_does() {
    let mut pair = Pair::start();
    let mut hset = words(&["HSET", "big"]);
    for i in 0..BIG_HASH_FIELDS {
        hset.push(format!("field:{i}").into_bytes());
        hset.push(format!("value:{i}").into_bytes());
    }
    pair.check(Mode::Exact, &hset);
    let mut small = words(&["HSET", "small"]);
    small.extend(hset[2..2 + 2 * LISTPACK_MAX_ENTRIES].iter().cloned());
    pair.check(Mode::Exact, &small);
    for line in [
        "OBJECT ENCODING big",
        "OBJECT ENCODING small",
        "HSET small one-more 1",
        "OBJECT ENCODING small",
        "HLEN big",
        "HGET big field:150",
        "HMGET big field:0 field:599 field:600",
        "HGETALL big",
        "HKEYS big",
        "HVALS big",
        "HDEL big field:0 field:1",
        "HLEN big",
        "HSTRLEN big field:150",
        "HINCRBY big field:150 1",
        "HSET big counter 10",
        "HINCRBY big counter 5",
        "HINCRBYFLOAT big counter 0.5",
        "HRANDFIELD big -700",
        "HRANDFIELD big 700",
        "HRANDFIELD big 5 WITHVALUES",
        "COPY big big2",
        "OBJECT ENCODING big2",
        "HGETALL big2",
    ] {
        let args: Vec<Vec<u8>> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        pair.check(Mode::for_command(&args), &args);
    }
    // Deleting fields never converts a hash table back.
    let mut hdel = words(&["HDEL", "big"]);
    hdel.extend((2..BIG_HASH_FIELDS - 3).map(|i| format!("field:{i}").into_bytes()));
    pair.check(Mode::Exact, &hdel);
    for line in ["HLEN big", "OBJECT ENCODING big", "HGETALL big"] {
        let args: Vec<Vec<u8>> = line.split(' ').map(|w| w.as_bytes().to_vec()).collect();
        pair.check(Mode::for_command(&args), &args);
    }
    pair.assert_agreed();
}

#[test]
fn every_command_answers_every_argument_count_like_redis() {
    let mut pair = Pair::start();
    pair.sweep_arguments();
}

#[test]
fn every_command_answers_every_argument_count_like_redis_over_resp3() {
    let mut pair = Pair::start();
    pair.check(Mode::Hello, &words(&["HELLO", "3"]));
    pair.sweep_arguments();
}

fn words(ws: &[&str]) -> Vec<Vec<u8>> {
    ws.iter().map(|w| w.as_bytes().to_vec()).collect()
}
