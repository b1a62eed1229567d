//! Connection and server administration over raw TCP, compared with Redis 7's replies:
//! AUTH, SHUTDOWN, CLIENT, CONFIG, SLOWLOG, INFO and COMMAND.

#[path = "support/raw.rs"]
mod raw;

use std::time::Duration;

use cachalot_tests::ServerProcess;
use raw::{bulk, bulk_payload, elements, eventually, int_of, request, shown, Raw};

/// How long a node may take to exit after `SHUTDOWN`.
const EXIT_TIMEOUT_SECS: u64 = 10;

#[test]
fn requirepass_demands_auth_before_other_commands() {
    let server = ServerProcess::start_with(&["--requirepass", "secret"]);
    let mut c = Raw::connect(server.addr());
    c.exchange(b"GET k\r\n", b"-NOAUTH Authentication required.\r\n");
    c.exchange(b"PING\r\n", b"-NOAUTH Authentication required.\r\n");
    c.exchange(
        b"HELLO 3\r\n",
        b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the \
          HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
          select the RESP protocol version at the same time\r\n",
    );
    let wrongpass: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    c.exchange(b"AUTH wrong\r\n", wrongpass);
    c.exchange(b"AUTH someone secret\r\n", wrongpass);
    c.exchange(b"GET k\r\n", b"-NOAUTH Authentication required.\r\n");
    c.exchange(b"AUTH secret\r\n", b"+OK\r\n");
    c.exchange(b"GET k\r\n", b"$-1\r\n");
    // RESET forgets the authentication.
    c.exchange(b"RESET\r\n", b"+RESET\r\n");
    c.exchange(b"GET k\r\n", b"-NOAUTH Authentication required.\r\n");
    c.exchange(b"AUTH default secret\r\n", b"+OK\r\n");
    c.exchange(b"GET k\r\n", b"$-1\r\n");

    let mut resp3 = Raw::connect(server.addr());
    resp3.exchange(b"HELLO 3 AUTH default wrong\r\n", wrongpass);
    let hello = resp3.call_str(&["HELLO", "3", "AUTH", "default", "secret", "SETNAME", "app"]);
    assert!(hello.starts_with("%7\r\n$6\r\nserver\r\n"), "{hello:?}");
    resp3.exchange(b"GET k\r\n", b"_\r\n");
    resp3.exchange(b"CLIENT GETNAME\r\n", b"$3\r\napp\r\n");
    // QUIT needs no authentication.
    let mut quitter = Raw::connect(server.addr());
    quitter.send(b"QUIT\r\n");
    quitter.expect_then_close(b"+OK\r\n");
}

#[test]
fn unauthenticated_clients_may_send_only_small_requests() {
    let server = ServerProcess::start_with(&["--requirepass", "secret"]);
    let mut c = Raw::connect(server.addr());
    c.send(b"*11\r\n");
    c.expect_then_close(b"-ERR Protocol error: unauthenticated multibulk length\r\n");
    let mut c = Raw::connect(server.addr());
    c.send(b"*2\r\n$3\r\nGET\r\n$16385\r\n");
    c.expect_then_close(b"-ERR Protocol error: unauthenticated bulk length\r\n");
    // Over the configured limits it is the usual error.
    let mut c = Raw::connect(server.addr());
    c.send(b"*1\r\n$999999999999\r\n");
    c.expect_then_close(b"-ERR Protocol error: invalid bulk length\r\n");
    // Within them the command runs, and AUTH lifts them for the very next request.
    let big = "v".repeat(20_000);
    let mut pipeline = request(&["GET", "k"]);
    pipeline.extend(request(&["AUTH", "secret"]));
    pipeline.extend(request(&["SET", "k", &big]));
    pipeline.extend(request(&[
        "DEL", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k",
    ]));
    let mut c = Raw::connect(server.addr());
    c.send(&pipeline);
    c.expect(b"-NOAUTH Authentication required.\r\n+OK\r\n+OK\r\n:1\r\n");
}

#[test]
fn auth_without_requirepass_is_refused_with_redis_hint() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(
        b"AUTH foo\r\n",
        b"-ERR AUTH <password> called without any password configured for the default user. \
          Are you sure your configuration is correct?\r\n",
    );
    // The two-argument form is checked against the password-less default user.
    c.exchange(b"AUTH default anything\r\n", b"+OK\r\n");
}

#[test]
fn shutdown_applies_pipelined_writes_closes_clients_and_exits_zero() {
    let mut server = ServerProcess::start();
    let mut bystander = Raw::connect(server.addr());
    bystander.exchange(b"PING\r\n", b"+PONG\r\n");
    let mut c = Raw::connect(server.addr());
    c.send(b"SET k v\r\nSHUTDOWN\r\n");
    // The SET is answered; a successful SHUTDOWN closes without a reply, as in Redis.
    c.expect_then_close(b"+OK\r\n");
    let (rest, _) = bystander.read_to_close();
    assert!(rest.is_empty(), "{}", shown(&rest));
    let status = server
        .wait_exit(Duration::from_secs(EXIT_TIMEOUT_SECS))
        .expect("the node exits after SHUTDOWN");
    assert_eq!(status.code(), Some(0), "log:\n{}", server.log().join("\n"));
}

#[test]
fn sigterm_stops_the_node_with_exit_code_zero() {
    let mut server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(b"PING\r\n", b"+PONG\r\n");
    server.signal("TERM");
    c.expect_then_close(b"");
    let status = server
        .wait_exit(Duration::from_secs(EXIT_TIMEOUT_SECS))
        .expect("the node exits after SIGTERM");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn shutdown_refuses_options_it_cannot_honour() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(b"SHUTDOWN ABORT\r\n", b"-ERR No shutdown in progress.\r\n");
    c.exchange(b"SHUTDOWN MAYBE\r\n", b"-ERR syntax error\r\n");
    c.exchange(b"PING\r\n", b"+PONG\r\n");
}

/// The `CLIENT LIST` line of the client at `addr`.
fn client_line(list: &str, addr: std::net::SocketAddr) -> Option<String> {
    list.lines()
        .find(|l| l.contains(&format!(" addr={addr} ")))
        .map(str::to_owned)
}

#[test]
fn client_id_name_list_and_info_describe_connections() {
    let server = ServerProcess::start();
    let mut a = Raw::connect(server.addr());
    let mut b = Raw::connect(server.addr());
    let id_a = int_of(&a.call(&[b"CLIENT", b"ID"]));
    let id_b = int_of(&b.call(&[b"CLIENT", b"ID"]));
    assert!(id_b > id_a, "ids increase: {id_a} then {id_b}");
    a.exchange(b"CLIENT GETNAME\r\n", b"$-1\r\n");
    a.exchange(b"CLIENT SETNAME worker-1\r\n", b"+OK\r\n");
    a.exchange(b"CLIENT GETNAME\r\n", b"$8\r\nworker-1\r\n");
    a.exchange(
        b"CLIENT SETNAME \"a b\"\r\n",
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    );
    a.exchange(b"CLIENT SETINFO LIB-NAME mylib\r\n", b"+OK\r\n");
    a.exchange(b"CLIENT SETINFO LIB-VER 1.2.3\r\n", b"+OK\r\n");
    a.exchange(
        b"CLIENT SETINFO COLOR blue\r\n",
        b"-ERR Unrecognized option 'COLOR'\r\n",
    );

    let list_reply = a.call(&[b"CLIENT", b"LIST"]);
    assert!(list_reply.starts_with(b"$"), "{}", shown(&list_reply));
    let list = String::from_utf8_lossy(&bulk_payload(&list_reply)).into_owned();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.ends_with('\n'));
    let line_a = client_line(&list, a.local_addr()).expect("a is listed");
    assert!(line_a.starts_with(&format!("id={id_a} addr=")), "{line_a}");
    for field in [
        " name=worker-1 ",
        " db=0 ",
        " flags=N ",
        " resp=2 ",
        " lib-name=mylib lib-ver=1.2.3",
    ] {
        assert!(line_a.contains(field), "{field} missing in {line_a}");
    }
    let line_b = client_line(&list, b.local_addr()).expect("b is listed");
    assert!(line_b.contains(" cmd=client|id "), "{line_b}");
    let only_b = b.call_str(&["CLIENT", "LIST", "ID", &id_b.to_string()]);
    assert_eq!(
        bulk_payload(only_b.as_bytes())
            .iter()
            .filter(|&&c| c == b'\n')
            .count(),
        1
    );

    let info = String::from_utf8_lossy(&bulk_payload(&a.call(&[b"CLIENT", b"INFO"]))).into_owned();
    assert!(info.starts_with(&format!("id={id_a} ")), "{info}");
    assert!(info.contains(" cmd=client|info "), "{info}");
    assert!(
        info.ends_with('\n') && info.lines().count() == 1,
        "{info:?}"
    );
}

#[test]
fn client_kill_closes_the_connections_it_selects() {
    let server = ServerProcess::start();
    let mut admin = Raw::connect(server.addr());
    let mut by_id = Raw::connect(server.addr());
    let mut by_addr = Raw::connect(server.addr());
    let mut old_form = Raw::connect(server.addr());
    let id = int_of(&by_id.call(&[b"CLIENT", b"ID"]));
    // A reply proves the server has registered the connection.
    for c in [&mut admin, &mut by_addr, &mut old_form] {
        c.exchange(b"PING\r\n", b"+PONG\r\n");
    }

    admin.exchange(
        &request(&["CLIENT", "KILL", "ID", &id.to_string()]),
        b":1\r\n",
    );
    by_id.expect_then_close(b"");
    admin.exchange(
        &request(&["CLIENT", "KILL", "ID", &id.to_string()]),
        b":0\r\n",
    );

    let addr = by_addr.local_addr().to_string();
    admin.exchange(&request(&["CLIENT", "KILL", "ADDR", &addr]), b":1\r\n");
    by_addr.expect_then_close(b"");

    let addr = old_form.local_addr().to_string();
    admin.exchange(&request(&["CLIENT", "KILL", &addr]), b"+OK\r\n");
    old_form.expect_then_close(b"");
    admin.exchange(
        &request(&["CLIENT", "KILL", &addr]),
        b"-ERR No such client\r\n",
    );
    admin.exchange(
        &request(&["CLIENT", "KILL", "ID", "0"]),
        b"-ERR client-id should be greater than 0\r\n",
    );

    // SKIPME yes (the default) spares the caller; SKIPME no kills it after the reply.
    let me = admin.local_addr().to_string();
    admin.exchange(&request(&["CLIENT", "KILL", "ADDR", &me]), b":0\r\n");
    admin.exchange(
        &request(&["CLIENT", "KILL", "ADDR", &me, "SKIPME", "yes"]),
        b":0\r\n",
    );
    admin.exchange(b"PING\r\n", b"+PONG\r\n");
    admin.send(&request(&["CLIENT", "KILL", "ADDR", &me, "SKIPME", "no"]));
    admin.expect_then_close(b":1\r\n");

    // The killed clients are gone from the list.
    let mut probe = Raw::connect(server.addr());
    eventually("killed clients unlisted", Duration::from_secs(10), || {
        let list = probe.call_str(&["CLIENT", "LIST"]);
        (list.matches("id=").count() == 1).then_some(())
    });
}

/// The name/value pairs of a `CONFIG GET` reply.
fn config_pairs(reply: &[u8]) -> std::collections::BTreeMap<String, String> {
    let text: Vec<String> = elements(reply)
        .iter()
        .map(|e| String::from_utf8_lossy(&bulk_payload(e)).into_owned())
        .collect();
    text.chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}

#[test]
fn config_get_and_set_follow_redis_rules() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(b"CONFIG SET maxmemory 10mb\r\n", b"+OK\r\n");
    c.exchange(
        b"CONFIG GET maxmemory\r\n",
        b"*2\r\n$9\r\nmaxmemory\r\n$8\r\n10485760\r\n",
    );
    c.exchange(b"CONFIG SET maxmemory 2GB\r\n", b"+OK\r\n");
    c.exchange(
        b"CONFIG GET maxmemory\r\n",
        b"*2\r\n$9\r\nmaxmemory\r\n$10\r\n2147483648\r\n",
    );
    c.exchange(b"CONFIG SET maxmemory-policy allkeys-lru\r\n", b"+OK\r\n");
    c.exchange(
        b"CONFIG GET maxmemory-policy\r\n",
        b"*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n",
    );
    c.exchange(
        b"CONFIG SET maxmemory-policy sometimes\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) \
          must be one of the following: volatile-lru, allkeys-lru, volatile-lfu, allkeys-lfu, \
          volatile-random, allkeys-random, volatile-ttl, noeviction\r\n",
    );
    c.exchange(
        b"CONFIG SET maxmemory lots\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be \
          a memory value\r\n",
    );
    c.exchange(
        b"CONFIG SET no-such-thing 1\r\n",
        b"-ERR Unknown option or number of arguments for CONFIG SET - 'no-such-thing'\r\n",
    );
    c.exchange(
        b"CONFIG SET timeout -1\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be \
          between 0 and 2147483647 inclusive\r\n",
    );
    c.exchange(
        b"CONFIG SET databases 16\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set \
          immutable config\r\n",
    );
    c.exchange(
        b"CONFIG SET maxmemory 1mb maxmemory\r\n",
        b"-ERR syntax error\r\n",
    );
    c.exchange(
        b"CONFIG SET maxmemory 1mb maxmemory 2mb\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate \
          parameter\r\n",
    );
    // A bad value anywhere changes nothing.
    let refused = c.call_str(&[
        "CONFIG",
        "SET",
        "maxmemory",
        "5mb",
        "timeout",
        "30",
        "maxmemory-policy",
        "bogus",
    ]);
    assert!(refused.starts_with("-ERR CONFIG SET failed"), "{refused}");
    // Redis answers several parameters in no particular order.
    assert_eq!(
        config_pairs(&c.call(&[
            b"CONFIG",
            b"GET",
            b"maxmemory",
            b"timeout",
            b"maxmemory-policy"
        ])),
        [
            ("maxmemory", "2147483648"),
            ("maxmemory-policy", "allkeys-lru"),
            ("timeout", "0")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into()
    );
    // Every pair applies when all are good.
    c.exchange(
        b"CONFIG SET maxmemory 5mb timeout 30 maxmemory-policy allkeys-lfu\r\n",
        b"+OK\r\n",
    );
    let all = config_pairs(&c.call(&[b"CONFIG", b"GET", b"maxmemory*"]));
    assert_eq!(all.get("maxmemory").map(String::as_str), Some("5242880"));
    assert_eq!(
        all.get("maxmemory-policy").map(String::as_str),
        Some("allkeys-lfu")
    );
    let info = c.call_str(&["INFO", "memory"]);
    assert!(info.contains("maxmemory:5242880\r\n"), "{info}");
    let everything = c.call(&[b"CONFIG", b"GET", b"*"]);
    assert!(elements(&everything).len() >= 20, "{}", shown(&everything));
}

#[test]
fn slowlog_records_commands_over_the_threshold() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(b"SLOWLOG RESET\r\n", b"+OK\r\n");
    c.exchange(b"CLIENT SETNAME slow-one\r\n", b"+OK\r\n");
    c.exchange(b"CONFIG SET slowlog-log-slower-than 0\r\n", b"+OK\r\n");
    c.exchange(b"SET slowkey v\r\n", b"+OK\r\n");
    let long = "x".repeat(200);
    c.exchange(&request(&["GET", &long]), b"$-1\r\n");
    let len = int_of(&c.call(&[b"SLOWLOG", b"LEN"]));
    assert!(len >= 2, "{len} entries");

    let newest = c.call(&[b"SLOWLOG", b"GET", b"2"]);
    let entries = elements(&newest);
    assert_eq!(entries.len(), 2, "{}", shown(&newest));
    // The newest entry is SLOWLOG LEN itself; the one before is the long GET.
    let fields = elements(&entries[1]);
    assert_eq!(fields.len(), 6, "{}", shown(&entries[1]));
    let args = elements(&fields[3]);
    assert_eq!(args[0], bulk("GET"));
    assert_eq!(
        args[1],
        bulk(&format!("{}... (72 more bytes)", &long[..128]))
    );
    assert_eq!(fields[4], bulk(&c.local_addr().to_string()));
    assert_eq!(fields[5], bulk("slow-one"));
    assert!(int_of(&fields[0]) > int_of(&elements(&entries[0])[0]) - 2);

    let all = c.call(&[b"SLOWLOG", b"GET", b"-1"]);
    let logged_set = elements(&all).iter().any(|e| {
        let args = elements(&elements(e)[3]);
        args == [bulk("SET"), bulk("slowkey"), bulk("v")]
    });
    assert!(logged_set, "{}", shown(&all));

    c.exchange(b"CONFIG SET slowlog-log-slower-than -1\r\n", b"+OK\r\n");
    c.exchange(b"SLOWLOG RESET\r\n", b"+OK\r\n");
    c.exchange(b"SLOWLOG LEN\r\n", b":0\r\n");
    c.exchange(b"SLOWLOG GET\r\n", b"*0\r\n");
}

#[test]
fn info_has_redis_sections_of_field_value_lines() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(b"SET k v\r\n", b"+OK\r\n");
    let text = String::from_utf8_lossy(&bulk_payload(&c.call(&[b"INFO"]))).into_owned();
    for section in [
        "Server",
        "Clients",
        "Memory",
        "Persistence",
        "Stats",
        "Replication",
        "CPU",
        "Keyspace",
    ] {
        assert!(
            text.contains(&format!("# {section}\r\n")),
            "no {section}: {text}"
        );
    }
    for line in text
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (field, value) = line.split_once(':').unwrap_or_else(|| panic!("{line:?}"));
        assert!(!field.is_empty() && !value.contains('\n'), "{line:?}");
    }
    for field in [
        "redis_version:7.2.4",
        "tcp_port:",
        "connected_clients:1",
        "used_memory:",
        "total_commands_processed:",
        "role:master",
        "db0:keys=1,expires=0,avg_ttl=0",
    ] {
        assert!(text.contains(&format!("\r\n{field}")), "no {field}: {text}");
    }
    let two = String::from_utf8_lossy(&bulk_payload(&c.call(&[b"INFO", b"server", b"CLIENTS"])))
        .into_owned();
    assert!(two.starts_with("# Server\r\n") && two.contains("\r\n\r\n# Clients\r\n"));
    assert!(!two.contains("# Memory"), "{two}");
    c.exchange(b"INFO nosuchsection\r\n", b"$0\r\n\r\n");
}

#[test]
fn command_introspection_describes_the_command_table() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    let count = int_of(&c.call(&[b"COMMAND", b"COUNT"]));
    let names = elements(&c.call(&[b"COMMAND", b"LIST"]));
    assert_eq!(names.len(), usize::try_from(count).expect("positive"));
    for name in ["get", "set", "client", "config", "command"] {
        assert!(names.contains(&bulk(name)), "{name} not listed");
    }
    assert_eq!(elements(&c.call(&[b"COMMAND"])).len(), names.len());

    let get = c.call(&[b"COMMAND", b"INFO", b"get"]);
    let want_start: &[u8] = b"*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n\
        :1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n\
        *6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n";
    assert!(get.starts_with(want_start), "{}", shown(&get));
    assert!(get.ends_with(b"*0\r\n"), "no subcommands: {}", shown(&get));

    let docs = c.call_str(&["COMMAND", "DOCS", "set"]);
    assert!(docs.starts_with("*2\r\n$3\r\nset\r\n"), "{docs}");
    for part in [
        "$7\r\nsummary\r\n",
        "$5\r\nsince\r\n$5\r\n1.0.0\r\n",
        "$5\r\ngroup\r\n$6\r\nstring\r\n",
        "$9\r\narguments\r\n",
        "$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n",
        "$5\r\ntoken\r\n$2\r\nNX\r\n",
        "$5\r\ntoken\r\n$7\r\nKEEPTTL\r\n",
    ] {
        assert!(docs.contains(part), "{part:?} missing in {docs}");
    }
    c.exchange(b"COMMAND DOCS nosuch\r\n", b"*0\r\n");
    c.exchange(
        b"COMMAND NOPE\r\n",
        b"-ERR unknown subcommand 'NOPE'. Try COMMAND HELP.\r\n",
    );
}

#[test]
fn passwords_never_reach_the_slow_log() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(
        &request(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        b"+OK\r\n",
    );
    c.exchange(
        &request(&["CONFIG", "SET", "requirepass", "hunter2"]),
        b"+OK\r\n",
    );
    let _ = c.call_str(&["HELLO", "2", "AUTH", "default", "hunter2"]);
    let log = c.call_str(&["SLOWLOG", "GET", "-1"]);
    assert!(!log.contains("hunter2"), "{log}");
    assert!(log.contains("(redacted)"), "{log}");
}

#[test]
fn an_unauthenticated_client_gets_arity_errors_before_noauth_like_redis() {
    let server = ServerProcess::start_with(&["--requirepass", "pw"]);
    let mut c = Raw::connect(server.addr());
    c.exchange(
        &request(&["GET"]),
        b"-ERR wrong number of arguments for 'get' command\r\n",
    );
    c.exchange(
        &request(&["GET", "k"]),
        b"-NOAUTH Authentication required.\r\n",
    );
    // Removing the password at runtime lets clients that never authenticated in.
    let mut admin = Raw::connect(server.addr());
    admin.exchange(&request(&["AUTH", "pw"]), b"+OK\r\n");
    admin.exchange(&request(&["CONFIG", "SET", "requirepass", ""]), b"+OK\r\n");
    c.exchange(&request(&["GET", "k"]), b"$-1\r\n");
}

#[test]
fn config_resetstat_zeroes_the_counters_info_reports() {
    let server = ServerProcess::start();
    let mut c = Raw::connect(server.addr());
    c.exchange(&request(&["SET", "k", "v"]), b"+OK\r\n");
    c.exchange(&request(&["GET", "k"]), b"$1\r\nv\r\n");
    c.exchange(&request(&["GET", "missing"]), b"$-1\r\n");
    let before = c.call_str(&["INFO", "stats"]);
    assert!(before.contains("keyspace_hits:1\r\n"), "{before}");
    assert!(before.contains("keyspace_misses:1\r\n"), "{before}");
    c.exchange(&request(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    let after = c.call_str(&["INFO", "stats"]);
    assert!(after.contains("keyspace_hits:0\r\n"), "{after}");
    assert!(after.contains("keyspace_misses:0\r\n"), "{after}");
}
