//! How long a joining shard takes to receive its slots: one dynamic-cluster node is filled
//! with `--keys` keys, a second node joins it, and the harness times the join from the
//! second process's start until both nodes report no slot migrating, then prints the keys
//! moved, keys per second and megabytes per second (keys and values).
//!
//! `cargo build --release -p cachalot-server -p cachalot-benches &&
//!  target/release/migratebench --keys 2000000`

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cachalot_benches::process::{free_port, Running};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Time to move a shard's share of the keys to a joining node")]
struct Args {
    /// The server binary.
    #[arg(long, default_value = "target/release/cachalot-server")]
    bin: PathBuf,
    /// Keys written to the first node before the second joins (about half move).
    #[arg(long, default_value_t = 2_000_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 32)]
    value_size: usize,
    /// Rounds (each with fresh nodes).
    #[arg(long, default_value_t = 1)]
    rounds: u32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    for round in 1..=args.rounds {
        let r = run(&args)?;
        println!(
            "round {round}: {} keys moved in {:.2} s after the join ({:.2} s for the \
             migration alone): {:.0} keys/s, {:.1} MB/s",
            r.moved,
            r.total.as_secs_f64(),
            r.migration.as_secs_f64(),
            r.moved as f64 / r.migration.as_secs_f64(),
            r.bytes as f64 / r.migration.as_secs_f64() / 1e6,
        );
    }
    Ok(())
}

struct Round {
    moved: u64,
    bytes: u64,
    total: Duration,
    migration: Duration,
}

fn node(
    bin: &PathBuf,
    dir: &std::path::Path,
    join: Option<u16>,
) -> Result<Running, Box<dyn std::error::Error>> {
    let (port, bus) = (free_port()?, free_port()?);
    let mut cmd = Command::new(bin);
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-bus-port",
            &bus.to_string(),
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(seed) = join {
        cmd.args(["--cluster-join", &format!("127.0.0.1:{seed}")]);
    }
    Ok(Running::spawn(&mut cmd, port, Duration::from_secs(10))?)
}

fn run(args: &Args) -> Result<Round, Box<dyn std::error::Error>> {
    let root = std::env::temp_dir().join(format!("cachalot-migratebench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (dir_a, dir_b) = (root.join("a"), root.join("b"));
    std::fs::create_dir_all(&dir_a)?;
    std::fs::create_dir_all(&dir_b)?;
    let a = node(&args.bin, &dir_a, None)?;
    let addr_a: SocketAddr = ([127, 0, 0, 1], a.port).into();
    wait(|| Ok(info(addr_a)?.get("cluster_raft_role").map(String::as_str) == Some("leader")))?;

    let client = redis::Client::open(format!("redis://127.0.0.1:{}", a.port))?;
    let mut con = client.get_connection()?;
    let value = "v".repeat(args.value_size);
    let batch = 10_000;
    let mut i = 0;
    while i < args.keys {
        let mut pipe = redis::pipe();
        for k in i..(i + batch).min(args.keys) {
            pipe.cmd("SET")
                .arg(format!("key:{k:010}"))
                .arg(&value)
                .ignore();
        }
        pipe.query::<()>(&mut con)?;
        i += batch;
    }
    let key_bytes = 14u64;

    let started = Instant::now();
    let b = node(&args.bin, &dir_b, Some(a.port))?;
    let addr_b: SocketAddr = ([127, 0, 0, 1], b.port).into();
    let mut migration_start = None;
    wait(|| {
        let (ia, ib) = (info(addr_a)?, info(addr_b)?);
        let migrating = ia.get("cluster_slots_migrating").map(String::as_str) != Some("0");
        if migrating && migration_start.is_none() {
            migration_start = Some(Instant::now());
        }
        Ok(!migrating
            && migration_start.is_some()
            && ib.get("cluster_known_nodes").map(String::as_str) == Some("2")
            && ib.get("cluster_slots_migrating").map(String::as_str) == Some("0"))
    })?;
    let done = Instant::now();
    let moved: u64 = info(addr_b)?
        .get("cluster_migration_keys_received")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&root);
    Ok(Round {
        moved,
        bytes: moved * (key_bytes + args.value_size as u64),
        total: done - started,
        migration: done - migration_start.unwrap_or(started),
    })
}

/// Polls `check` every 5 ms for up to 10 minutes.
fn wait(
    mut check: impl FnMut() -> Result<bool, Box<dyn std::error::Error>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        if check().unwrap_or(false) {
            return Ok(());
        }
        std::thread::park_timeout(Duration::from_millis(5));
    }
    Err("timed out".into())
}

/// `CLUSTER INFO` as `field -> value`.
fn info(addr: SocketAddr) -> Result<BTreeMap<String, String>, Box<dyn std::error::Error>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n")?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let len: usize = line.trim_end().trim_start_matches('$').parse()?;
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect())
}
