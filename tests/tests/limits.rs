//! Limits that protect a node (docs/operations.md): malformed and oversized requests,
//! `maxclients`, `timeout` and `maxmemory`, checked byte for byte over raw TCP.

#[path = "support/raw.rs"]
mod raw;

use std::time::{Duration, Instant};

use cachalot_tests::ServerProcess;
use raw::{eventually, int_of, request, rss_bytes, shown, Raw};

/// How much the server's resident memory may grow while it holds a request whose header
/// declares a huge size; far below every declared size used here.
const RSS_GROWTH_ALLOWED_BYTES: u64 = 32 << 20;
/// How long the server's output to others must stay unchanged to count as stalled.
const STALL_MILLIS: u64 = 200;
/// Size of each value written by the maxmemory tests.
const VALUE_BYTES: usize = 1_000;
/// SETs sent per write while filling memory.
const FILL_BATCH: usize = 100;
/// Writes after which a 1 MB node must have refused or evicted (about 10 MB of values).
const FILL_MAX_BATCHES: usize = 100;

/// Sends `bad` on a fresh connection and checks that exactly `want` comes back before the
/// server closes it, while a connection opened earlier keeps being served.
fn rejects_and_closes(server: &ServerProcess, bad: &[u8], want: &[u8]) {
    let mut bystander = Raw::connect(server.addr());
    bystander.exchange(b"PING\r\n", b"+PONG\r\n");
    let mut c = Raw::connect(server.addr());
    c.send(bad);
    let (got, _) = c.read_to_close();
    assert_eq!(shown(&got), shown(want), "for input {:?}", shown(bad));
    bystander.exchange(
        b"SET still alive\r\nGET still\r\n",
        b"+OK\r\n$5\r\nalive\r\n",
    );
}

#[test]
fn malformed_requests_get_one_protocol_error_and_are_disconnected() {
    let server = ServerProcess::start();
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"*abc\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$x\r\nfoo\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*2\r\n:1\r\n",
            b"-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        // A good command first gets its reply; the garbage after it ends the connection.
        (
            b"*1\r\n$3\r\nfoo\r\n*1\r\n!garbage\r\n",
            b"-ERR unknown command 'foo', with args beginning with: \r\n\
              -ERR Protocol error: expected '$', got '!'\r\n",
        ),
        (
            b"set a \"b c\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            b"set a \"b\"c\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (bad, want) in cases {
        rejects_and_closes(&server, bad, want);
    }
}

#[test]
fn a_huge_bulk_header_is_refused_before_any_payload() {
    let server = ServerProcess::start();
    let rss_before = rss_bytes(server.pid());
    let mut c = Raw::connect(server.addr());
    c.send(b"*1\r\n$999999999999\r\n");
    c.expect_then_close(b"-ERR Protocol error: invalid bulk length\r\n");
    // One byte over the default proto-max-bulk-len (512 MiB).
    rejects_and_closes(
        &server,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870913\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    );
    let grown = rss_bytes(server.pid()).saturating_sub(rss_before);
    assert!(
        grown < RSS_GROWTH_ALLOWED_BYTES,
        "RSS grew by {grown} bytes"
    );
}

#[test]
fn an_allowed_but_huge_declared_size_does_not_reserve_memory() {
    let server = ServerProcess::start();
    let rss_before = rss_bytes(server.pid());
    let mut bulk = Raw::connect(server.addr());
    // 500 MB declared (under the 512 MiB limit), 5 bytes sent.
    bulk.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000000\r\nhello");
    let mut array = Raw::connect(server.addr());
    // The largest element count accepted, with one element sent.
    array.send(b"*1048576\r\n$4\r\nPING\r\n");
    // Wait until the server has read both partial requests into its query buffers.
    let mut probe = Raw::connect(server.addr());
    let waiting = [bulk.local_addr(), array.local_addr()];
    eventually(
        "both partial requests buffered",
        Duration::from_secs(10),
        || {
            let list = probe.call_str(&["CLIENT", "LIST"]);
            let buffered = list
                .lines()
                .filter(|l| waiting.iter().any(|a| l.contains(&format!(" addr={a} "))))
                .filter(|l| !l.contains(" qbuf=0 "))
                .count();
            (buffered == 2).then_some(())
        },
    );
    let grown = rss_bytes(server.pid()).saturating_sub(rss_before);
    assert!(
        grown < RSS_GROWTH_ALLOWED_BYTES,
        "RSS grew by {grown} bytes"
    );
    // Neither request completed, so neither got a reply or was closed.
    assert!(!bulk.closes_within(Duration::from_millis(100)));
    assert!(!array.closes_within(Duration::from_millis(100)));
}

#[test]
fn proto_max_bulk_len_bounds_the_bulk_header() {
    let server = ServerProcess::start_with(&["--proto-max-bulk-len", "1kb"]);
    let mut c = Raw::connect(server.addr());
    let exactly = "x".repeat(1024);
    c.exchange(&request(&["SET", "k", &exactly]), b"+OK\r\n");
    c.exchange(
        &request(&["CONFIG", "GET", "proto-max-bulk-len"]),
        b"*2\r\n$18\r\nproto-max-bulk-len\r\n$4\r\n1024\r\n",
    );
    rejects_and_closes(
        &server,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2048\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    );
    // A change applies to connections already open, from their next request.
    let mut open = Raw::connect(server.addr());
    open.exchange(b"CONFIG SET proto-max-bulk-len 2kb\r\n", b"+OK\r\n");
    open.exchange(&request(&["SET", "k", &"y".repeat(2048)]), b"+OK\r\n");
    open.exchange(b"CONFIG SET proto-max-bulk-len 1kb\r\n", b"+OK\r\n");
    open.send(&request(&["SET", "k", &"y".repeat(2048)]));
    open.expect_then_close(b"-ERR Protocol error: invalid bulk length\r\n");
    rejects_and_closes(
        &server,
        b"*99999999\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
    );
}

#[test]
fn an_inline_request_over_64_kib_is_refused() {
    let server = ServerProcess::start();
    let mut bystander = Raw::connect(server.addr());
    bystander.exchange(b"PING\r\n", b"+PONG\r\n");
    let mut c = Raw::connect(server.addr());
    let mut writer = c.writer();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        // The server may close before taking it all; that is the point.
        let _ = writer.write_all(&vec![b'a'; 70_000]);
    });
    let (got, _) = c.read_to_close();
    let _ = sender.join();
    assert_eq!(
        shown(&got),
        shown(b"-ERR Protocol error: too big inline request\r\n")
    );
    bystander.exchange(b"PING\r\n", b"+PONG\r\n");
}

#[test]
fn a_client_that_does_not_read_its_replies_is_not_buffered_without_bound() {
    const VALUE_LEN: usize = 100_000;
    const GETS: usize = 1_000;
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(
        &request(&["SET", "big", &"b".repeat(VALUE_LEN)]),
        b"+OK\r\n",
    );
    let rss_before = rss_bytes(server.pid());
    // 100 MB of replies asked for, none read yet.
    let pipeline = request(&["GET", "big"]).repeat(GETS);
    let mut writer = c.writer();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        writer.write_all(&pipeline).expect("write the pipeline");
    });
    // Wait until the server has stopped making progress: the bytes it has written to
    // others than the probe stay the same for STALL_MILLIS of repeated looks, as this
    // client reads nothing.
    let mut probe = Raw::connect(server.addr());
    let (mut last, mut to_probe, mut since) = (0, 0, Instant::now());
    eventually("the writer to stall", Duration::from_secs(10), || {
        let stats = probe.call_str(&["INFO", "stats"]);
        let written: u64 = stats
            .lines()
            .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("total_net_output_bytes field");
        let others = written - to_probe;
        to_probe += stats.len() as u64;
        if others != last {
            (last, since) = (others, Instant::now());
        }
        let stalled =
            others > VALUE_LEN as u64 && since.elapsed() >= Duration::from_millis(STALL_MILLIS);
        stalled.then_some(())
    });
    let me = c.local_addr();
    let list = probe.call_str(&["CLIENT", "LIST"]);
    let line = list.lines().find(|l| l.contains(&format!(" addr={me} ")));
    assert!(line.is_some_and(|l| !l.contains(" qbuf=0 ")), "{list}");
    let grown = rss_bytes(server.pid()).saturating_sub(rss_before);
    assert!(
        grown < RSS_GROWTH_ALLOWED_BYTES,
        "RSS grew by {grown} bytes"
    );
    let reply_len = format!("${VALUE_LEN}\r\n").len() + VALUE_LEN + 2;
    for i in 0..GETS {
        let reply = c.read_bytes(reply_len);
        assert!(reply.starts_with(b"$100000\r\nbbb"), "reply {i}");
    }
    sender.join().expect("writer thread");
    c.exchange(b"PING\r\n", b"+PONG\r\n");
}

#[test]
fn the_client_over_maxclients_is_told_and_closed_until_a_slot_frees() {
    let server = ServerProcess::start_with(&["--maxclients", "3"]);
    let mut open: Vec<Raw> = (0..3)
        .map(|_| {
            let mut c = Raw::connect(server.addr());
            c.exchange(b"PING\r\n", b"+PONG\r\n");
            c
        })
        .collect();
    let mut fourth = Raw::connect(server.addr());
    fourth.expect_then_close(b"-ERR max number of clients reached\r\n");
    drop(open.pop());
    // The server notices the close asynchronously: retry until a new client is accepted.
    let mut fresh = eventually("a free client slot", Duration::from_secs(10), || {
        let mut c = Raw::connect(server.addr());
        c.send(b"PING\r\n");
        (c.reply() == b"+PONG\r\n").then_some(c)
    });
    let stats = fresh.call_str(&["INFO", "stats"]);
    assert!(!stats.contains("\r\nrejected_connections:0\r\n"), "{stats}");
    for c in &mut open {
        c.exchange(b"PING\r\n", b"+PONG\r\n");
    }
}

#[test]
fn timeout_closes_idle_clients_but_not_active_ones() {
    let server = ServerProcess::start_with(&["--timeout", "1"]);
    let mut idle = Raw::connect(server.addr());
    idle.exchange(b"PING\r\n", b"+PONG\r\n");
    let idle_since = Instant::now();
    let mut active = Raw::connect(server.addr());
    let mut idle_closed_after = None;
    while idle_since.elapsed() < Duration::from_millis(2_500) {
        active.exchange(b"PING\r\n", b"+PONG\r\n");
        if idle_closed_after.is_none() && idle.closes_within(Duration::from_millis(200)) {
            idle_closed_after = Some(idle_since.elapsed());
        }
    }
    let after = idle_closed_after.unwrap_or_else(|| {
        assert!(
            idle.closes_within(Duration::from_secs(2)),
            "idle client kept"
        );
        idle_since.elapsed()
    });
    assert!(
        after >= Duration::from_millis(900) && after <= Duration::from_millis(3_500),
        "idle client closed after {after:?}"
    );
    active.exchange(b"PING\r\n", b"+PONG\r\n");
}

/// Sends `FILL_BATCH` SETs of `VALUE_BYTES` bytes starting at key `first`; returns how many
/// were refused with OOM (every other reply must be `+OK`).
fn fill_batch(c: &mut Raw, first: usize) -> usize {
    let value = "v".repeat(VALUE_BYTES);
    let mut batch = Vec::new();
    for i in first..first + FILL_BATCH {
        batch.extend(request(&["SET", &format!("key:{i:06}"), &value]));
    }
    c.send(&batch);
    let mut refused = 0;
    for _ in 0..FILL_BATCH {
        match c.reply().as_slice() {
            b"+OK\r\n" => {}
            b"-OOM command not allowed when used memory > 'maxmemory'.\r\n" => refused += 1,
            other => panic!("unexpected reply {}", shown(other)),
        }
    }
    refused
}

#[test]
fn noeviction_refuses_writes_at_maxmemory_but_serves_reads_and_deletes() {
    let server = ServerProcess::start_with(&["--maxmemory", "1mb"]);
    let mut c = Raw::connect(server.addr());
    let mut written = 0;
    while fill_batch(&mut c, written) == 0 {
        written += FILL_BATCH;
        assert!(
            written < FILL_BATCH * FILL_MAX_BATCHES,
            "never refused a write"
        );
    }
    let stored = int_of(&c.call(&[b"DBSIZE"]));
    assert!(stored > 0 && stored < 1_100, "{stored} keys stored in 1 MB");
    let oom: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    c.exchange(
        &request(&["SET", "one-more", &"v".repeat(VALUE_BYTES)]),
        oom,
    );
    // Reads and deletes still work, and deleting makes room.
    let first = c.call(&[b"GET", b"key:000000"]);
    assert_eq!(
        first.len(),
        format!("${VALUE_BYTES}\r\n").len() + VALUE_BYTES + 2
    );
    let mut del = vec!["DEL".to_owned()];
    del.extend((0..100).map(|i| format!("key:{i:06}")));
    let del: Vec<&str> = del.iter().map(String::as_str).collect();
    c.exchange(&request(&del), b":100\r\n");
    c.exchange(
        &request(&["SET", "one-more", &"v".repeat(VALUE_BYTES)]),
        b"+OK\r\n",
    );
    let info = c.call_str(&["INFO", "memory"]);
    assert!(info.contains("maxmemory:1048576\r\n"), "{info}");
    assert!(info.contains("maxmemory_policy:noeviction\r\n"), "{info}");
}

#[test]
fn allkeys_lru_keeps_accepting_writes_within_maxmemory() {
    let server =
        ServerProcess::start_with(&["--maxmemory", "1mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = Raw::connect(server.addr());
    let batches = 50;
    for b in 0..batches {
        assert_eq!(fill_batch(&mut c, b * FILL_BATCH), 0, "a write was refused");
    }
    let stored = int_of(&c.call(&[b"DBSIZE"]));
    assert!(stored > 0 && stored < 1_100, "{stored} keys stored in 1 MB");
    // The newest key survives.
    let last = format!("key:{:06}", batches * FILL_BATCH - 1);
    let reply = c.call(&[b"GET", last.as_bytes()]);
    assert!(reply.starts_with(format!("${VALUE_BYTES}\r\n").as_bytes()));
    let stats = c.call_str(&["INFO", "stats"]);
    let evicted: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("evicted_keys:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("evicted_keys field");
    let written = u64::try_from(batches * FILL_BATCH).expect("small");
    let stored = u64::try_from(stored).expect("positive");
    assert_eq!(
        evicted + stored,
        written,
        "every key written is stored or evicted"
    );
}

#[test]
fn over_maxmemory_only_commands_that_grow_memory_are_refused() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    let value = "v".repeat(VALUE_BYTES);
    for i in 0..200 {
        c.exchange(&request(&["SET", &format!("s{i}"), &value]), b"+OK\r\n");
    }
    c.exchange(&request(&["HSET", "h", "a", "1", "b", "2"]), b":2\r\n");
    c.exchange(&request(&["SET", "g", "x"]), b"+OK\r\n");
    // Lower the bound under what is stored: the node is now over maxmemory.
    c.exchange(
        &request(&["CONFIG", "SET", "maxmemory", "10kb"]),
        b"+OK\r\n",
    );
    let oom: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    c.exchange(&request(&["SET", "new", "x"]), oom);
    c.exchange(&request(&["HSET", "h", "c", "3"]), oom);
    c.exchange(&request(&["APPEND", "g", "y"]), oom);
    // Reads, deletes, expiry changes and shrinking commands still run, as in Redis.
    c.exchange(&request(&["GET", "g"]), b"$1\r\nx\r\n");
    c.exchange(&request(&["EXPIRE", "s0", "100"]), b":1\r\n");
    c.exchange(&request(&["PERSIST", "s0"]), b":1\r\n");
    c.exchange(&request(&["HDEL", "h", "a"]), b":1\r\n");
    c.exchange(&request(&["GETDEL", "g"]), b"$1\r\nx\r\n");
    c.exchange(&request(&["DEL", "s1"]), b":1\r\n");
    c.exchange(&request(&["RENAME", "s2", "t2"]), b"+OK\r\n");
}
