//! The Prometheus endpoint (`--metrics-port`) of a real node: INFO's numbers as gauges,
//! hot keys and replicas as labelled series, and HTTP errors for anything but
//! `GET /metrics`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cachalot_tests::{free_port, ServerProcess};

/// One HTTP exchange: (status line, body).
fn http(addr: SocketAddr, request: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request).expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read");
    let (head, body) = reply.split_once("\r\n\r\n").expect("a head and a body");
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

fn scrape(addr: SocketAddr) -> String {
    let (status, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    body
}

#[test]
fn metrics_show_info_figures_hot_keys_and_replicas() {
    let port = free_port();
    let port_arg = port.to_string();
    let primary = ServerProcess::start_with(&["--metrics-port", &port_arg]);
    let metrics: SocketAddr = ([127, 0, 0, 1], port).into();
    let target = format!("127.0.0.1 {}", primary.port());
    let replica = ServerProcess::start_with(&["--replicaof", &target]);
    let mut con = redis::Client::open(primary.url())
        .expect("client")
        .get_connection()
        .expect("connect");
    let _: () = redis::cmd("SET")
        .arg("celebrity")
        .arg("v")
        .query(&mut con)
        .expect("SET");
    // Hammer one key until the detector reports it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let mut pipe = redis::pipe();
        for _ in 0..2000 {
            pipe.cmd("GET").arg("celebrity").ignore();
        }
        pipe.query::<()>(&mut con).expect("GETs");
        let body = scrape(metrics);
        if body.contains("cachalot_hotkey_ops_per_second{key=\"celebrity\"}")
            && body.contains("cachalot_replica_offset{")
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no hot key or replica in:\n{body}"
        );
    };
    let value = |name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert!(value("cachalot_connected_clients") >= 1.0);
    assert!(value("cachalot_keyspace_hits") >= 2000.0);
    assert_eq!(value("cachalot_connected_slaves"), 1.0);
    assert!(body.contains("# TYPE cachalot_used_memory gauge"));
    assert!(body.contains("cachalot_keyspace_keys{db=\"0\"} 1"));
    let rate: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("cachalot_hotkey_ops_per_second{key=\"celebrity\"} "))
        .and_then(|v| v.parse().ok())
        .expect("a rate");
    assert!(rate > 0.0);
    let replica_line = body
        .lines()
        .find(|l| l.starts_with("cachalot_replica_offset{"))
        .expect("replica series");
    assert!(
        replica_line.contains(&format!("port=\"{}\"", replica.port())),
        "{replica_line}"
    );
    // Anything else gets an HTTP error, and a huge request head is refused unread.
    let (status, _) = http(metrics, b"GET /other HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http(metrics, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    let (status, _) = http(metrics, &big);
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
}
