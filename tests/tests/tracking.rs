//! Client-side caching (`CLIENT TRACKING`) and pub/sub against a real server process, over
//! raw TCP with byte-exact assertions; every expected frame was checked against
//! redis-server 7.0.15. Ends with a foreign client (the `redis` crate's client-side cache).

#[path = "support/raw.rs"]
mod raw;

use std::time::Duration;

use cachalot_tests::ServerProcess;
use raw::{bulk, eventually, int_of, request, Raw};

/// How long a test waits for something that should not arrive (an invalidation that must
/// not be sent) before it concludes it will not.
const QUIET_MILLIS: u64 = 200;

/// A RESP3 `invalidate` push for `keys`.
fn push(keys: &[&str]) -> Vec<u8> {
    let mut b = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len()).into_bytes();
    for k in keys {
        b.extend_from_slice(&bulk(k));
    }
    b
}

/// The flush's null invalidation as a RESP3 push.
const NULL_PUSH: &[u8] = b">2\r\n$10\r\ninvalidate\r\n_\r\n";

/// A RESP2 `message` on `__redis__:invalidate` for `keys`.
fn message(keys: &[&str]) -> Vec<u8> {
    let mut b = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n".to_vec();
    b.extend_from_slice(format!("*{}\r\n", keys.len()).as_bytes());
    for k in keys {
        b.extend_from_slice(&bulk(k));
    }
    b
}

fn resp3(server: &ServerProcess) -> Raw {
    let mut c = Raw::connect(server.addr());
    let hello = c.call_str(&["HELLO", "3"]);
    assert!(hello.starts_with('%'), "{hello}");
    c
}

fn ok(c: &mut Raw, args: &[&str]) {
    assert_eq!(c.call_str(args), "+OK\r\n", "{args:?}");
}

/// Asserts nothing more arrives on `c` for a while.
fn quiet(c: &mut Raw) {
    assert!(
        !c.closes_within(Duration::from_millis(QUIET_MILLIS)),
        "connection closed"
    );
    c.exchange(&request(&["PING"]), b"+PONG\r\n");
}

fn info_field(c: &mut Raw, section: &str, field: &str) -> i64 {
    let reply = c.call_str(&["INFO", section]);
    let prefix = format!("{field}:");
    reply
        .split("\r\n")
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} not in {reply}"))
}

#[test]
fn default_mode_sends_one_invalidation_per_changed_key_then_forgets_it() {
    let server = ServerProcess::start();
    let mut a = resp3(&server);
    let mut b = Raw::connect(server.addr());
    ok(&mut a, &["CLIENT", "TRACKING", "ON"]);
    a.exchange(&request(&["GET", "k1"]), b"_\r\n");
    a.exchange(
        &request(&["MGET", "k1", "k2", "k3"]),
        b"*3\r\n_\r\n_\r\n_\r\n",
    );
    ok(&mut b, &["SET", "k1", "v"]);
    a.expect(&push(&["k1"]));
    ok(&mut b, &["MSET", "k2", "v", "k3", "v"]);
    a.expect(&push(&["k2"]));
    a.expect(&push(&["k3"]));
    // Forgotten after one message: a second change says nothing.
    ok(&mut b, &["SET", "k2", "w"]);
    quiet(&mut a);
    // Keys of non-read-only commands are not remembered.
    ok(&mut a, &["SET", "k4", "v"]);
    ok(&mut b, &["SET", "k4", "w"]);
    quiet(&mut a);
}

#[test]
fn an_own_write_is_announced_right_after_its_reply() {
    let server = ServerProcess::start();
    let mut a = resp3(&server);
    ok(&mut a, &["CLIENT", "TRACKING", "ON"]);
    a.exchange(&request(&["GET", "k1"]), b"_\r\n");
    let mut pipeline = request(&["SET", "k1", "x"]);
    pipeline.extend_from_slice(&request(&["PING"]));
    a.send(&pipeline);
    let mut want = b"+OK\r\n".to_vec();
    want.extend_from_slice(&push(&["k1"]));
    want.extend_from_slice(b"+PONG\r\n");
    a.expect(&want);
}

#[test]
fn bcast_sends_each_prefix_its_changed_keys_in_byte_order() {
    let server = ServerProcess::start();
    let mut a = resp3(&server);
    let mut b = Raw::connect(server.addr());
    ok(
        &mut a,
        &[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p:", "PREFIX", "q:",
        ],
    );
    ok(&mut b, &["SET", "p:1", "v"]);
    a.expect(&push(&["p:1"]));
    ok(
        &mut b,
        &["MSET", "p:2", "v", "p:1", "v", "q:1", "v", "z", "v"],
    );
    a.expect(&push(&["p:1", "p:2"]));
    a.expect(&push(&["q:1"]));
    // Broadcasts do not forget: the same key is sent again.
    ok(&mut b, &["SET", "p:1", "w"]);
    a.expect(&push(&["p:1"]));
    ok(&mut b, &["SET", "other", "w"]);
    quiet(&mut a);
    assert_eq!(info_field(&mut b, "stats", "tracking_total_prefixes"), 2);
    let info = a.call_str(&["CLIENT", "TRACKINGINFO"]);
    assert_eq!(
        info,
        "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*2\r\n$2\r\np:\r\n$2\r\nq:\r\n"
    );
    // Without a prefix every key is sent; NOLOOP leaves out the client's own writes.
    ok(&mut a, &["CLIENT", "TRACKING", "OFF"]);
    ok(&mut a, &["CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP"]);
    ok(&mut a, &["SET", "mine", "v"]);
    ok(&mut b, &["SET", "anything", "v"]);
    a.expect(&push(&["anything"]));
    quiet(&mut a);
}

#[test]
fn optin_remembers_only_after_caching_yes_and_optout_skips_after_caching_no() {
    let server = ServerProcess::start();
    let mut a = resp3(&server);
    let mut b = Raw::connect(server.addr());
    ok(&mut a, &["CLIENT", "TRACKING", "ON", "OPTIN"]);
    a.exchange(&request(&["GET", "plain"]), b"_\r\n");
    ok(&mut a, &["CLIENT", "CACHING", "YES"]);
    a.exchange(&request(&["GET", "chosen"]), b"_\r\n");
    // The flag lasted one command.
    a.exchange(&request(&["GET", "after"]), b"_\r\n");
    ok(&mut b, &["MSET", "plain", "1", "chosen", "1", "after", "1"]);
    a.expect(&push(&["chosen"]));
    quiet(&mut a);

    ok(&mut a, &["CLIENT", "TRACKING", "OFF"]);
    ok(&mut a, &["CLIENT", "TRACKING", "ON", "OPTOUT"]);
    ok(&mut a, &["CLIENT", "CACHING", "NO"]);
    a.exchange(&request(&["GET", "plain"]), b"$1\r\n1\r\n");
    a.exchange(&request(&["GET", "chosen"]), b"$1\r\n1\r\n");
    ok(&mut b, &["MSET", "plain", "2", "chosen", "2"]);
    a.expect(&push(&["chosen"]));
    quiet(&mut a);
}

#[test]
fn noloop_sends_nothing_about_the_clients_own_writes() {
    let server = ServerProcess::start();
    let mut a = resp3(&server);
    let mut b = Raw::connect(server.addr());
    ok(&mut a, &["CLIENT", "TRACKING", "ON", "NOLOOP"]);
    a.exchange(&request(&["GET", "n1"]), b"_\r\n");
    ok(&mut a, &["SET", "n1", "v"]);
    quiet(&mut a);
    // The key was forgotten all the same, as Redis does.
    ok(&mut b, &["SET", "n1", "w"]);
    quiet(&mut a);
    a.exchange(&request(&["GET", "n2"]), b"_\r\n");
    ok(&mut b, &["SET", "n2", "w"]);
    a.expect(&push(&["n2"]));
}

#[test]
fn resp2_redirects_to_a_subscriber_of_the_invalidate_channel() {
    let server = ServerProcess::start();
    let mut a = Raw::connect(server.addr());
    let mut b = Raw::connect(server.addr());
    let mut c = Raw::connect(server.addr());
    let cid = int_of(&c.call(&[b"CLIENT", b"ID"]));
    c.exchange(
        &request(&["SUBSCRIBE", "__redis__:invalidate"]),
        b"*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n",
    );
    ok(
        &mut a,
        &["CLIENT", "TRACKING", "ON", "REDIRECT", &cid.to_string()],
    );
    assert_eq!(a.call_str(&["CLIENT", "GETREDIR"]), format!(":{cid}\r\n"));
    a.exchange(&request(&["GET", "r1"]), b"$-1\r\n");
    ok(&mut b, &["SET", "r1", "v"]);
    c.expect(&message(&["r1"]));
    ok(&mut b, &["FLUSHALL"]);
    c.expect(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n");
    // In RESP2 subscribed mode only the pub/sub commands, PING, QUIT and RESET run.
    c.exchange(
        &request(&["GET", "x"]),
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    c.exchange(
        &request(&["CLIENT", "ID"]),
        b"-ERR Can't execute 'client|id': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    c.exchange(&request(&["PING"]), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    c.exchange(
        &request(&["PING", "hi"]),
        b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n",
    );
    let list = a.call_str(&["CLIENT", "LIST"]);
    assert!(list.contains("flags=t db=0 sub=0 psub=0"), "{list}");
    assert!(list.contains(&format!("redir={cid} ")), "{list}");
    assert!(list.contains("flags=P db=0 sub=1 psub=0"), "{list}");
}

#[test]
fn a_gone_redirect_target_is_reported_to_a_resp3_client() {
    let server = ServerProcess::start();
    let mut a = resp3(&server);
    let mut b = Raw::connect(server.addr());
    let mut c = Raw::connect(server.addr());
    let cid = int_of(&c.call(&[b"CLIENT", b"ID"]));
    ok(
        &mut a,
        &["CLIENT", "TRACKING", "ON", "REDIRECT", &cid.to_string()],
    );
    a.exchange(&request(&["GET", "r1"]), b"_\r\n");
    drop(c);
    eventually("the target to leave", Duration::from_secs(10), || {
        let list = b.call_str(&["CLIENT", "LIST"]);
        (!list.contains(&format!("id={cid} "))).then_some(())
    });
    ok(&mut b, &["SET", "r1", "v"]);
    a.expect(format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{cid}\r\n").as_bytes());
    let info = a.call_str(&["CLIENT", "TRACKINGINFO"]);
    assert!(info.contains("$15\r\nbroken_redirect\r\n"), "{info}");
}

#[test]
fn flushall_and_flushdb_send_the_null_invalidation_to_every_tracking_client() {
    let server = ServerProcess::start();
    let mut a = resp3(&server);
    let mut bc = resp3(&server);
    ok(&mut a, &["CLIENT", "TRACKING", "ON", "NOLOOP"]);
    ok(&mut bc, &["CLIENT", "TRACKING", "ON", "BCAST"]);
    a.exchange(&request(&["GET", "k"]), b"_\r\n");
    let mut want = b"+OK\r\n".to_vec();
    want.extend_from_slice(NULL_PUSH);
    // NOLOOP does not apply to flushes; the flusher's push follows its reply.
    a.exchange(&request(&["FLUSHALL"]), &want);
    bc.expect(NULL_PUSH);
    a.exchange(&request(&["FLUSHDB"]), &want);
    bc.expect(NULL_PUSH);
    assert_eq!(info_field(&mut a, "stats", "tracking_total_keys"), 0);
}

#[test]
fn an_expired_key_is_invalidated() {
    let server = ServerProcess::start();
    let mut a = resp3(&server);
    let mut b = Raw::connect(server.addr());
    ok(&mut a, &["CLIENT", "TRACKING", "ON"]);
    ok(&mut b, &["SET", "e1", "v", "PX", "300"]);
    a.exchange(&request(&["GET", "e1"]), b"$1\r\nv\r\n");
    // Nobody touches the key: the active expiry cycle finds it and announces it.
    a.expect(&push(&["e1"]));
    quiet(&mut a);
}

#[test]
fn an_evicted_key_is_invalidated() {
    let server =
        ServerProcess::start_with(&["--maxmemory", "1mb", "--maxmemory-policy", "allkeys-random"]);
    let mut a = resp3(&server);
    let mut b = Raw::connect(server.addr());
    ok(&mut a, &["CLIENT", "TRACKING", "ON"]);
    ok(&mut b, &["SET", "victim", "v"]);
    a.exchange(&request(&["GET", "victim"]), b"$1\r\nv\r\n");
    let value = "x".repeat(1000);
    let mut n = 0;
    loop {
        ok(&mut b, &["SET", &format!("filler:{n}"), &value]);
        n += 1;
        let gone = b.call_str(&["EXISTS", "victim"]) == ":0\r\n";
        if gone {
            break;
        }
        assert!(n < 100_000, "victim never evicted");
    }
    a.expect(&push(&["victim"]));
}

#[test]
fn the_table_bound_evicts_keys_with_invalidations() {
    let server = ServerProcess::start();
    let mut a = resp3(&server);
    assert_eq!(
        a.call_str(&["CONFIG", "GET", "tracking-table-max-keys"]),
        "%1\r\n$23\r\ntracking-table-max-keys\r\n$7\r\n1000000\r\n"
    );
    ok(&mut a, &["CONFIG", "SET", "tracking-table-max-keys", "2"]);
    ok(&mut a, &["CLIENT", "TRACKING", "ON"]);
    a.exchange(&request(&["GET", "t1"]), b"_\r\n");
    a.exchange(&request(&["GET", "t2"]), b"_\r\n");
    a.exchange(&request(&["GET", "t3"]), b"_\r\n");
    // One of the three keys was dropped, with its invalidation, after the reply.
    let dropped = a.reply();
    let text = String::from_utf8_lossy(&dropped);
    assert!(
        text.starts_with(">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\nt"),
        "{text}"
    );
    assert_eq!(info_field(&mut a, "stats", "tracking_total_keys"), 2);
    assert_eq!(info_field(&mut a, "stats", "tracking_total_items"), 2);
    assert_eq!(info_field(&mut a, "clients", "tracking_clients"), 1);
    assert_eq!(
        a.call_str(&["CONFIG", "SET", "tracking-table-max-keys", "-1"]),
        "-ERR CONFIG SET failed (possibly related to argument 'tracking-table-max-keys') - argument must be between 0 and 9223372036854775807 inclusive\r\n"
    );
}

#[test]
fn invalid_tracking_options_get_redis_errors() {
    let server = ServerProcess::start();
    let mut a = Raw::connect(server.addr());
    let cases: &[(&[&str], &str)] = &[
        (&["CLIENT", "TRACKING", "ON", "PREFIX", "x"], "-ERR PREFIX option requires BCAST mode to be enabled\r\n"),
        (&["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"], "-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n"),
        (&["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"], "-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n"),
        (&["CLIENT", "TRACKING", "ON", "REDIRECT", "999"], "-ERR The client ID you want redirect to does not exist\r\n"),
        (&["CLIENT", "TRACKING", "ON", "REDIRECT", "abc"], "-ERR value is not an integer or out of range\r\n"),
        (&["CLIENT", "TRACKING", "ON", "FOO"], "-ERR syntax error\r\n"),
        (&["CLIENT", "TRACKING", "MAYBE"], "-ERR syntax error\r\n"),
        (&["CLIENT", "TRACKING"], "-ERR wrong number of arguments for 'client|tracking' command\r\n"),
        (&["CLIENT", "CACHING", "NO"], "-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled\r\n"),
        (&["CLIENT", "GETREDIR"], ":-1\r\n"),
        (&["CLIENT", "TRACKINGINFO"], "*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n"),
        // RESP2 without REDIRECT is accepted, as in Redis (it just gets no messages).
        (&["CLIENT", "TRACKING", "ON"], "+OK\r\n"),
        (&["CLIENT", "CACHING", "YES"], "-ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.\r\n"),
        (&["CLIENT", "CACHING", "MAYBE"], "-ERR syntax error\r\n"),
        (&["CLIENT", "TRACKING", "ON", "BCAST"], "-ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.\r\n"),
        (&["CLIENT", "TRACKING", "ON", "OPTIN"], "+OK\r\n"),
        (&["CLIENT", "TRACKING", "ON", "OPTOUT"], "-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.\r\n"),
        (&["CLIENT", "CACHING", "NO"], "-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n"),
        (&["CLIENT", "TRACKING", "OFF"], "+OK\r\n"),
        (&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "abc"], "-ERR Prefix 'ab' overlaps with another provided prefix 'abc'. Prefixes for a single client must not overlap.\r\n"),
        (&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "cd"], "+OK\r\n"),
        (&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a"], "-ERR Prefix 'a' overlaps with an existing prefix 'ab'. Prefixes for a single client must not overlap.\r\n"),
        (&["CLIENT", "GETREDIR"], ":0\r\n"),
    ];
    for (args, want) in cases {
        assert_eq!(a.call_str(args), *want, "{args:?}");
    }
}

#[test]
fn pubsub_delivers_messages_in_redis_formats() {
    let server = ServerProcess::start();
    let mut sub = Raw::connect(server.addr());
    let mut sub3 = resp3(&server);
    let mut publisher = Raw::connect(server.addr());
    sub.exchange(
        &request(&["SUBSCRIBE", "ch1", "ch2"]),
        b"*3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$3\r\nch2\r\n:2\r\n",
    );
    sub.exchange(
        &request(&["PSUBSCRIBE", "ch*"]),
        b"*3\r\n$10\r\npsubscribe\r\n$3\r\nch*\r\n:3\r\n",
    );
    sub3.exchange(
        &request(&["SUBSCRIBE", "ch1"]),
        b">3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n",
    );
    // A RESP3 subscriber keeps running commands.
    sub3.exchange(&request(&["GET", "x"]), b"_\r\n");
    sub3.exchange(&request(&["PING"]), b"+PONG\r\n");
    assert_eq!(publisher.call_str(&["PUBLISH", "ch1", "hello"]), ":3\r\n");
    sub.expect(b"*3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n");
    sub.expect(b"*4\r\n$8\r\npmessage\r\n$3\r\nch*\r\n$3\r\nch1\r\n$5\r\nhello\r\n");
    sub3.expect(b">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n");
    // A RESP3 publisher subscribed to the channel gets its message before the reply.
    sub3.exchange(
        &request(&["PUBLISH", "ch1", "me"]),
        b">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$2\r\nme\r\n:3\r\n",
    );
    sub.expect(b"*3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$2\r\nme\r\n");
    sub.expect(b"*4\r\n$8\r\npmessage\r\n$3\r\nch*\r\n$3\r\nch1\r\n$2\r\nme\r\n");
    assert_eq!(publisher.call_str(&["PUBLISH", "nobody", "x"]), ":0\r\n");
    assert_eq!(info_field(&mut publisher, "stats", "pubsub_channels"), 2);
    assert_eq!(info_field(&mut publisher, "stats", "pubsub_patterns"), 1);
    sub.exchange(
        &request(&["UNSUBSCRIBE", "ch1"]),
        b"*3\r\n$11\r\nunsubscribe\r\n$3\r\nch1\r\n:2\r\n",
    );
    sub.exchange(
        &request(&["PUNSUBSCRIBE"]),
        b"*3\r\n$12\r\npunsubscribe\r\n$3\r\nch*\r\n:1\r\n",
    );
    sub.exchange(
        &request(&["UNSUBSCRIBE"]),
        b"*3\r\n$11\r\nunsubscribe\r\n$3\r\nch2\r\n:0\r\n",
    );
    sub.exchange(
        &request(&["UNSUBSCRIBE"]),
        b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n",
    );
    sub.exchange(&request(&["GET", "x"]), b"$-1\r\n");
    sub3.exchange(
        &request(&["UNSUBSCRIBE"]),
        b">3\r\n$11\r\nunsubscribe\r\n$3\r\nch1\r\n:0\r\n",
    );
    sub3.exchange(
        &request(&["PUNSUBSCRIBE"]),
        b">3\r\n$12\r\npunsubscribe\r\n_\r\n:0\r\n",
    );
    assert_eq!(
        publisher.call_str(&["SUBSCRIBE"]),
        "-ERR wrong number of arguments for 'subscribe' command\r\n"
    );
}

#[test]
fn a_subscriber_that_stops_reading_is_disconnected_and_counted() {
    let server = ServerProcess::start();
    let mut sub = Raw::connect(server.addr());
    let mut publisher = Raw::connect(server.addr());
    sub.exchange(
        &request(&["SUBSCRIBE", "flood"]),
        b"*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n",
    );
    let payload = "p".repeat(16 * 1024);
    let batch: Vec<u8> = (0..256)
        .flat_map(|_| request(&["PUBLISH", "flood", &payload]))
        .collect();
    let disconnected = eventually(
        "the subscriber's disconnection",
        Duration::from_secs(60),
        || {
            publisher.send(&batch);
            for _ in 0..256 {
                publisher.reply();
            }
            let n = info_field(
                &mut publisher,
                "stats",
                "client_output_buffer_limit_disconnections",
            );
            (n > 0).then_some(n)
        },
    );
    assert_eq!(disconnected, 1);
    // The publisher was never blocked, and the subscriber's connection is closed.
    let (_, _end) = sub.read_to_close();
    assert_eq!(publisher.call_str(&["PUBLISH", "flood", "x"]), ":0\r\n");
}

#[tokio::test]
async fn the_redis_crates_client_side_cache_is_invalidated_by_another_connections_write() {
    use redis::caching::CacheConfig;
    use redis::AsyncCommands;
    let server = ServerProcess::start();
    let client = redis::Client::open(format!("{}?protocol=resp3", server.url())).expect("url");
    let config = redis::AsyncConnectionConfig::new().set_cache_config(CacheConfig::new());
    let mut cached = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect with a cache");
    let mut other = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let () = other.set("cc:key", "one").await.expect("set");
    let v: String = cached.get("cc:key").await.expect("get");
    assert_eq!(v, "one");
    let v: String = cached.get("cc:key").await.expect("get");
    assert_eq!(v, "one");
    let stats = cached.get_cache_statistics().expect("cache statistics");
    assert_eq!((stats.hit, stats.miss), (1, 1));
    let () = other.set("cc:key", "two").await.expect("set");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = cached.get_cache_statistics().expect("cache statistics");
        if stats.invalidate >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no invalidation reached the cache"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let v: String = cached.get("cc:key").await.expect("get");
    assert_eq!(v, "two");
}
