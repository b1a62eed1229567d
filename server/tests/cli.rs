//! The binary's command line: it starts with no configuration, refuses bad settings with a
//! non-zero exit, and exits 0 after a graceful shutdown on SIGTERM.
//!
//! (Having an integration test here also makes `cargo test --workspace` build the
//! `cachalot-server` binary that the `tests/` crate's cross-process tests run.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cachalot-server");

#[test]
fn version_flag_prints_the_version() {
    let out = Command::new(BIN).arg("--version").output().expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn an_invalid_setting_exits_non_zero_and_names_it() {
    let out = Command::new(BIN)
        .args(["--port", "0", "--maxmemory-policy", "sometimes"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("maxmemory-policy"));
}

#[test]
fn sigterm_drains_and_exits_zero() {
    let mut child = Command::new(BIN)
        .args(["--port", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().expect("server exited early").expect("read");
        if let Some(i) = line.find("addr=") {
            break line[i + 5..]
                .split_whitespace()
                .next()
                .expect("addr")
                .to_string();
        }
    };
    let mut conn = TcpStream::connect(&addr).expect("connect");
    conn.write_all(b"PING\r\n").expect("write");
    let mut buf = [0u8; 7];
    conn.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"+PONG\r\n");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code();
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after SIGTERM"
        );
        std::thread::park_timeout(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
    // The open client saw its connection closed, not an error reply.
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(rest.is_empty());
}
