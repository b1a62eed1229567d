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

/// Starts the binary with `args` and `env`, returning the child and the address it bound.
fn start(args: &[&str], env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut child = Command::new(BIN)
        .args(["--port", "0"])
        .args(args)
        .envs(env.iter().copied())
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
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// Sends one inline command and reads one reply of at most 256 bytes.
fn call(conn: &mut TcpStream, line: &str) -> String {
    conn.write_all(format!("{line}\r\n").as_bytes())
        .expect("write");
    let mut buf = [0u8; 256];
    let n = conn.read(&mut buf).expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Sends `signal` and expects a clean exit with status 0 that closes open clients.
fn signal_drains_and_exits_zero(signal: &str) {
    let (mut child, addr) = start(&[], &[]);
    let mut conn = TcpStream::connect(&addr).expect("connect");
    assert_eq!(call(&mut conn, "PING"), "+PONG\r\n");
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
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
            "server did not exit after {signal}"
        );
        std::thread::park_timeout(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
    // The open client saw its connection closed, not an error reply.
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn sigterm_drains_and_exits_zero() {
    signal_drains_and_exits_zero("-TERM");
}

#[test]
fn sigint_drains_and_exits_zero() {
    signal_drains_and_exits_zero("-INT");
}

#[test]
fn settings_come_from_file_then_environment_then_flags() {
    let dir = std::env::temp_dir().join(format!("cachalot-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("node.toml");
    std::fs::write(
        &file,
        "maxmemory = \"3mb\"\nmaxclients = 77\nmaxmemory-policy = \"allkeys-lfu\"\n",
    )
    .expect("write config");
    let file_arg = file.to_string_lossy().into_owned();
    let (mut child, addr) = start(
        &["--config", &file_arg, "--maxclients", "55"],
        &[("CACHALOT_MAXMEMORY", "2mb"), ("CACHALOT_MAXCLIENTS", "66")],
    );
    let mut conn = TcpStream::connect(&addr).expect("connect");
    // The file's policy stands; the environment beats the file; the flag beats both.
    assert!(call(&mut conn, "CONFIG GET maxmemory-policy").contains("allkeys-lfu"));
    assert!(call(&mut conn, "CONFIG GET maxmemory").contains("2097152"));
    assert!(call(&mut conn, "CONFIG GET maxclients").contains("55"));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
