//! Wire-level behaviour over raw TCP, compared byte for byte with what Redis 7 sends:
//! inline and multibulk requests, RESP2 and RESP3 replies, pipelining, many connections.

#[path = "support/raw.rs"]
mod raw;

use std::time::Duration;

use cachalot_tests::ServerProcess;
use raw::{bulk, bulk_payload, elements, int_of, reply_len, request, shown, Raw};

/// Requests in the one-write pipeline test.
const PIPELINED_COMMANDS: usize = 10_000;
/// Connections held open at once in the concurrency test (fewer if the fd limit is low).
const CONCURRENT_CONNECTIONS: usize = 1_000;
/// File descriptors the test process keeps for itself beyond its client sockets.
const SPARE_FDS: u64 = 64;

#[test]
fn inline_commands_typed_like_telnet_get_resp2_replies() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(b"PING\r\n", b"+PONG\r\n");
    c.exchange(b"ping hello\r\n", b"$5\r\nhello\r\n");
    c.exchange(b"ECHO 'single quoted'\r\n", b"$13\r\nsingle quoted\r\n");
    c.exchange(b"set a \"b c\"\r\n", b"+OK\r\n");
    c.exchange(b"get a\r\n", b"$3\r\nb c\r\n");
    c.exchange(b"SET esc \"x\\ty\\x41\\n\"\r\n", b"+OK\r\n");
    c.exchange(b"GET esc\r\n", b"$5\r\nx\tyA\n\r\n");
    c.exchange(b"get missing\r\n", b"$-1\r\n");
    // Blank lines are skipped; a bare LF ends a line too.
    c.exchange(b"\r\n   \r\n\nPING\n", b"+PONG\r\n");
    c.exchange(b"incr n\r\nINCR n\r\n", b":1\r\n:2\r\n");
    c.exchange(
        b"nosuch a b\r\n",
        b"-ERR unknown command 'nosuch', with args beginning with: 'a' 'b' \r\n",
    );
    c.exchange(
        b"get\r\n",
        b"-ERR wrong number of arguments for 'get' command\r\n",
    );
    // Errors keep the connection open.
    c.exchange(b"PING\r\n", b"+PONG\r\n");
}

#[test]
fn multibulk_commands_get_resp2_replies() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(&request(&["PING"]), b"+PONG\r\n");
    c.exchange(&request(&["SET", "k", "v"]), b"+OK\r\n");
    c.exchange(&request(&["GET", "k"]), b"$1\r\nv\r\n");
    c.exchange(&request(&["SET", "bin", "a\r\nb\0c"]), b"+OK\r\n");
    c.exchange(&request(&["GET", "bin"]), b"$6\r\na\r\nb\0c\r\n");
    c.exchange(&request(&["HSET", "h", "f", "v"]), b":1\r\n");
    c.exchange(&request(&["HGETALL", "h"]), b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    c.exchange(
        &request(&["GET", "h"]),
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    );
    c.exchange(
        &request(&["MGET", "k", "nope"]),
        b"*2\r\n$1\r\nv\r\n$-1\r\n",
    );
    c.exchange(&request(&["COMMAND", "INFO", "nosuch"]), b"*1\r\n$-1\r\n");
    c.exchange(
        &request(&["CONFIG", "GET", "maxmemory"]),
        b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n",
    );
    // `*0` and `*-1` are skipped like blank lines.
    c.exchange(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", b"+PONG\r\n");
}

/// The fixed part of a `HELLO` reply after the `id` field.
const HELLO_TAIL: &[u8] =
    b"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";

fn hello_reply(header: &str, proto: u8, id: i64) -> Vec<u8> {
    let mut want = format!(
        "{header}\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n\
         $5\r\nproto\r\n:{proto}\r\n$2\r\nid\r\n:{id}\r\n"
    )
    .into_bytes();
    want.extend_from_slice(HELLO_TAIL);
    want
}

#[test]
fn hello_3_switches_the_connection_to_resp3_replies() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    let id = int_of(&c.call(&[b"CLIENT", b"ID"]));
    c.exchange(b"HELLO 3\r\n", &hello_reply("%7", 3, id));
    c.exchange(b"GET missing\r\n", b"_\r\n");
    c.exchange(b"HSET h f v\r\n", b":1\r\n");
    c.exchange(b"HGETALL h\r\n", b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    c.exchange(b"HGETALL none\r\n", b"%0\r\n");
    c.exchange(b"MGET h none\r\n", b"*2\r\n_\r\n_\r\n");
    c.exchange(b"CLIENT GETNAME\r\n", b"_\r\n");
    c.exchange(
        b"CONFIG GET timeout\r\n",
        b"%1\r\n$7\r\ntimeout\r\n$1\r\n0\r\n",
    );
    c.exchange(b"COMMAND INFO nosuch\r\n", b"*1\r\n_\r\n");
    // Floats stay bulk strings in RESP3, as in Redis 7.
    c.exchange(b"INCRBYFLOAT f 1.5\r\n", b"$3\r\n1.5\r\n");

    // INFO and CLIENT INFO are verbatim strings.
    let info = c.call(&[b"INFO", b"server"]);
    assert_verbatim_txt(&info);
    assert!(String::from_utf8_lossy(&bulk_payload(&info)).starts_with("# Server\r\n"));
    let me = c.call(&[b"CLIENT", b"INFO"]);
    assert_verbatim_txt(&me);
    let line = String::from_utf8_lossy(&bulk_payload(&me)).into_owned();
    assert!(line.starts_with(&format!("id={id} ")), "{line}");
    assert!(line.contains(" resp=3 "), "{line}");
    assert!(line.ends_with('\n'), "{line:?}");

    // Back to RESP2: the same reply becomes a flat array and nulls are `$-1`.
    c.exchange(b"HELLO 2\r\n", &hello_reply("*14", 2, id));
    c.exchange(b"GET missing\r\n", b"$-1\r\n");
    c.exchange(b"HGETALL h\r\n", b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    let info = c.call(&[b"INFO", b"server"]);
    assert!(info.starts_with(b"$"), "{}", shown(&info));
}

/// Checks that `reply` is a RESP3 verbatim string of format `txt` whose length is right.
fn assert_verbatim_txt(reply: &[u8]) {
    let text = shown(reply);
    let header_end = reply.windows(2).position(|w| w == b"\r\n").expect("header");
    let len: usize = std::str::from_utf8(&reply[1..header_end])
        .ok()
        .and_then(|n| n.parse().ok())
        .expect("verbatim length");
    assert!(reply.starts_with(b"="), "{text}");
    assert_eq!(reply.len(), header_end + 2 + len + 2, "{text}");
    assert_eq!(&reply[header_end + 2..header_end + 6], b"txt:", "{text}");
}

#[test]
fn hello_refuses_protocols_it_does_not_speak() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(b"HELLO 4\r\n", b"-NOPROTO unsupported protocol version\r\n");
    c.exchange(
        b"HELLO three\r\n",
        b"-ERR Protocol version is not an integer or out of range\r\n",
    );
    c.exchange(
        b"HELLO 3 BOGUS\r\n",
        b"-ERR Syntax error in HELLO option 'BOGUS'\r\n",
    );
    // Nothing changed: still RESP2.
    c.exchange(b"GET missing\r\n", b"$-1\r\n");
    // HELLO with no version reports the current one and switches nothing.
    let reply = c.call(&[b"HELLO"]);
    assert!(reply.starts_with(b"*14\r\n"), "{}", shown(&reply));
    assert!(shown(&reply).contains("proto\\r\\n:2\\r\\n"));
}

#[test]
fn ten_thousand_pipelined_commands_in_one_write_get_ten_thousand_replies_in_order() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    let mut requests = Vec::new();
    let mut want = Vec::new();
    let mut counter = 0;
    for i in 0..PIPELINED_COMMANDS {
        match i % 3 {
            0 => {
                requests.extend(request(&[
                    "SET",
                    &format!("key:{i}"),
                    &format!("value-{i}"),
                ]));
                want.extend_from_slice(b"+OK\r\n");
            }
            1 => {
                let j = i - 1;
                requests.extend(request(&["GET", &format!("key:{j}")]));
                want.extend(bulk(&format!("value-{j}")));
            }
            _ => {
                counter += 1;
                requests.extend(request(&["INCR", "counter"]));
                want.extend_from_slice(format!(":{counter}\r\n").as_bytes());
            }
        }
    }
    // One write, from another thread so that reading replies never waits on it.
    let mut writer = c.writer();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        writer.write_all(&requests).expect("write the pipeline");
    });
    let got = c.read_bytes(want.len());
    sender.join().expect("writer thread");
    let mut replies = 0;
    let mut at = 0;
    while at < got.len() {
        at += reply_len(&got[at..]).expect("whole replies");
        replies += 1;
    }
    assert_eq!(replies, PIPELINED_COMMANDS);
    if got != want {
        let first = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
        let from = first.saturating_sub(40);
        panic!(
            "replies differ at byte {first}: got {:?}, want {:?}",
            shown(&got[from..(from + 120).min(got.len())]),
            shown(&want[from..(from + 120).min(want.len())])
        );
    }
    // Nothing extra was queued after the last reply.
    c.exchange(b"PING\r\n", b"+PONG\r\n");
}

/// The soft limit on open files of this process, from `/proc/self/limits`.
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

#[test]
fn a_thousand_concurrent_connections_are_all_served() {
    let allowed = usize::try_from(open_files_limit().saturating_sub(SPARE_FDS)).unwrap_or(0);
    let n = CONCURRENT_CONNECTIONS.min(allowed);
    if n < CONCURRENT_CONNECTIONS {
        eprintln!("open-file limit allows only {n} of {CONCURRENT_CONNECTIONS} connections");
    }
    let server = ServerProcess::start();
    let addr = server.addr();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::sync::Barrier;

        /// Writes `req` and reads exactly `want.len()` bytes, comparing them.
        async fn exchange(s: &mut tokio::net::TcpStream, req: &[u8], want: &[u8]) {
            s.write_all(req).await.expect("write");
            let mut got = vec![0; want.len()];
            s.read_exact(&mut got).await.expect("read reply");
            assert_eq!(shown(&got), shown(want));
        }

        // Everyone connects, then everyone works while all are open, then a check runs
        // while all are still open.
        let connected = Arc::new(Barrier::new(n + 1));
        let done = Arc::new(Barrier::new(n + 1));
        let checked = Arc::new(Barrier::new(n + 1));
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let (connected, done, checked) = (
                Arc::clone(&connected),
                Arc::clone(&done),
                Arc::clone(&checked),
            );
            tasks.push(tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                connected.wait().await;
                let key = format!("conn:{i}");
                exchange(&mut s, &request(&["SET", &key, &i.to_string()]), b"+OK\r\n").await;
                exchange(&mut s, &request(&["GET", &key]), &bulk(&i.to_string())).await;
                s.write_all(b"INCR shared\r\n").await.expect("write");
                let mut line = Vec::new();
                while !line.ends_with(b"\r\n") {
                    line.push(s.read_u8().await.expect("read"));
                }
                assert!(line.starts_with(b":"), "{}", shown(&line));
                done.wait().await;
                checked.wait().await;
                exchange(&mut s, b"PING\r\n", b"+PONG\r\n").await;
            }));
        }
        let timeout = Duration::from_secs(60);
        tokio::time::timeout(timeout, connected.wait())
            .await
            .expect("all connections open");
        tokio::time::timeout(timeout, done.wait())
            .await
            .expect("all connections did their work");
        let mut probe = tokio::net::TcpStream::connect(addr).await.expect("connect");
        exchange(&mut probe, b"GET shared\r\n", &bulk(&n.to_string())).await;
        exchange(
            &mut probe,
            b"DBSIZE\r\n",
            format!(":{}\r\n", n + 1).as_bytes(),
        )
        .await;
        probe.write_all(b"INFO clients\r\n").await.expect("write");
        let mut info = Vec::new();
        while reply_len(&info).is_none() {
            let mut chunk = [0; 4096];
            let len = probe.read(&mut chunk).await.expect("read");
            assert!(len > 0, "closed in the middle of {}", shown(&info));
            info.extend_from_slice(&chunk[..len]);
        }
        let info = String::from_utf8_lossy(&info).into_owned();
        assert!(
            info.contains(&format!("connected_clients:{}\r\n", n + 1)),
            "{info}"
        );
        tokio::time::timeout(timeout, checked.wait())
            .await
            .expect("all connections still open");
        for t in tasks {
            tokio::time::timeout(timeout, t)
                .await
                .expect("task finished")
                .expect("task did not panic");
        }
    });
}

#[test]
fn quit_replies_ok_and_closes_the_connection() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.send(b"QUIT\r\nPING\r\n");
    c.expect_then_close(b"+OK\r\n");
}

#[test]
fn reset_returns_the_connection_to_its_initial_state() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(b"CLIENT SETNAME before-reset\r\n", b"+OK\r\n");
    let hello = c.call(&[b"HELLO", b"3"]);
    assert!(hello.starts_with(b"%7\r\n"));
    c.exchange(b"RESET\r\n", b"+RESET\r\n");
    c.exchange(b"GET missing\r\n", b"$-1\r\n");
    c.exchange(b"CLIENT GETNAME\r\n", b"$-1\r\n");
}

#[test]
fn only_database_zero_can_be_selected() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(b"SELECT 0\r\n", b"+OK\r\n");
    c.exchange(b"SELECT 1\r\n", b"-ERR DB index is out of range\r\n");
    c.exchange(
        b"SELECT x\r\n",
        b"-ERR value is not an integer or out of range\r\n",
    );
}

#[test]
fn time_replies_with_seconds_and_microseconds_of_now() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let reply = c.call(&[b"TIME"]);
    let parts: Vec<u64> = elements(&reply)
        .iter()
        .map(|e| {
            String::from_utf8_lossy(&bulk_payload(e))
                .parse()
                .expect("decimal")
        })
        .collect();
    assert!(reply.starts_with(b"*2\r\n$"), "{}", shown(&reply));
    assert_eq!(parts.len(), 2);
    assert!(parts[0] >= before && parts[0] <= before + 5, "{parts:?}");
    assert!(parts[1] < 1_000_000, "{parts:?}");
}
