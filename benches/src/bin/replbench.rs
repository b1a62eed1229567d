//! Replication and failover figures, each from fresh server processes:
//!
//! - `failover`: a dynamic cluster of three nodes (shard 1's primary, its replica, shard
//!   2's primary); a cachalot-client writer keeps writing a key of shard 1; shard 1's
//!   primary is SIGKILLed; the time from the kill to the writer's first successful write
//!   after it, over `--rounds` rounds (median and max).
//! - `lag`: a primary and one replica (`--replicaof`) under a redis-benchmark SET load;
//!   a probe writes a key on the primary every 10 ms and times until the replica has it;
//!   also the largest offset gap seen.
//! - `throughput`: redis-benchmark SET against a primary with 0, 1 and 2 replicas, the
//!   three configurations alternated `--rounds` times.
//! - `fullsync`: a primary holding `--keys` keys; the time from a replica's start to its
//!   link being up with every key.
//!
//! `cargo build --release -p cachalot-server -p cachalot-benches &&
//!  target/release/replbench failover --rounds 10`

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachalot_benches::process::{free_port, Running};
use clap::{Parser, Subcommand};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Parser)]
#[command(about = "Replication and failover measurements")]
struct Args {
    /// The server binary.
    #[arg(long, default_value = "target/release/cachalot-server", global = true)]
    bin: PathBuf,
    /// redis-benchmark.
    #[arg(long, default_value = "redis-benchmark", global = true)]
    benchmark: String,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Kill-to-first-write time of a failover.
    Failover {
        #[arg(long, default_value_t = 10)]
        rounds: u32,
    },
    /// Replication lag under a SET load.
    Lag {
        #[arg(long, default_value_t = 500_000)]
        requests: u64,
    },
    /// SET throughput with 0, 1 and 2 replicas.
    Throughput {
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        #[arg(long, default_value_t = 300_000)]
        requests: u64,
    },
    /// Full-sync time.
    Fullsync {
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
}

fn main() -> Res<()> {
    let args = Args::parse();
    match args.what {
        What::Failover { rounds } => failover(&args.bin, rounds),
        What::Lag { requests } => lag(&args.bin, &args.benchmark, requests),
        What::Throughput { rounds, requests } => {
            throughput(&args.bin, &args.benchmark, rounds, requests)
        }
        What::Fullsync { keys, rounds } => fullsync(&args.bin, keys, rounds),
    }
}

fn spawn(bin: &Path, port: u16, extra: &[&str]) -> Res<Running> {
    let mut cmd = Command::new(bin);
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Ok(Running::spawn(&mut cmd, port, Duration::from_secs(10))?)
}

fn conn(port: u16) -> Res<redis::Connection> {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let con = c.get_connection_with_timeout(Duration::from_secs(2))?;
    con.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(con)
}

/// One `INFO section` field.
fn info_field(port: u16, section: &str, name: &str) -> Option<String> {
    let mut c = conn(port).ok()?;
    let text: String = redis::cmd("INFO").arg(section).query(&mut c).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_owned())
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(format!("timed out waiting for {what}").into())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------

fn cluster_node(bin: &Path, dir: &Path, join: Option<u16>, extra: &[&str]) -> Res<Running> {
    std::fs::create_dir_all(dir)?;
    let (port, bus) = (free_port()?, free_port()?);
    let dir = dir.to_string_lossy().into_owned();
    let bus = bus.to_string();
    let seed = join.map(|p| format!("127.0.0.1:{p}"));
    let mut args = vec![
        "--cluster-enabled",
        "yes",
        "--cluster-bus-port",
        bus.as_str(),
        "--dir",
        dir.as_str(),
    ];
    if let Some(seed) = &seed {
        args.extend(["--cluster-join", seed.as_str()]);
    }
    args.extend_from_slice(extra);
    spawn(bin, port, &args)
}

fn failover(bin: &Path, rounds: u32) -> Res<()> {
    let mut times = Vec::new();
    for round in 1..=rounds {
        let took = failover_round(bin)?;
        println!(
            "round {round}: first write {:.0} ms after the kill",
            took * 1e3
        );
        times.push(took);
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    println!(
        "failover over {rounds} rounds: median {:.0} ms, max {:.0} ms",
        median(&mut times) * 1e3,
        max * 1e3
    );
    Ok(())
}

fn failover_round(bin: &Path) -> Res<f64> {
    let root = std::env::temp_dir().join(format!("cachalot-replbench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let a = cluster_node(bin, &root.join("a"), None, &[])?;
    wait_for("a leader", 20, || {
        info_field(a.port, "cluster", "cluster_enabled").is_some()
            && cluster_info(a.port, "cluster_raft_role").as_deref() == Some("leader")
    })?;
    let b = cluster_node(
        bin,
        &root.join("b"),
        Some(a.port),
        &["--cluster-replica-of", "1"],
    )?;
    let c = cluster_node(bin, &root.join("c"), Some(a.port), &[])?;
    wait_for("the cluster to settle", 60, || {
        [a.port, b.port, c.port].iter().all(|&p| {
            cluster_info(p, "cluster_known_nodes").as_deref() == Some("3")
                && cluster_info(p, "cluster_slots_migrating").as_deref() == Some("0")
                && cluster_info(p, "cluster_state").as_deref() == Some("ok")
        }) && info_field(b.port, "replication", "master_link_status").as_deref() == Some("up")
    })?;
    // A key shard 1 owns.
    let key = (0..)
        .map(|i| format!("fo:{i}"))
        .find(|k| {
            let mut con = conn(a.port).expect("conn");
            redis::cmd("GET")
                .arg(k)
                .query::<Option<String>>(&mut con)
                .is_ok()
        })
        .expect("a key of shard 1");
    let seeds: Vec<String> = [a.port, b.port, c.port]
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let first: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (killed_at, first, stop, writes) = (
            Arc::clone(&killed_at),
            Arc::clone(&first),
            Arc::clone(&stop),
            Arc::clone(&writes),
        );
        std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let client = cachalot_client::Client::builder(seeds)
                    .call_timeout(Duration::from_secs(10))
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let ok = client
                        .set(key.as_str(), n.to_string().as_str())
                        .await
                        .is_ok();
                    let killed = killed_at.lock().expect("lock").is_some();
                    writes.fetch_add(u64::from(ok), Ordering::Relaxed);
                    if ok && killed {
                        first.lock().expect("lock").get_or_insert_with(Instant::now);
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok(())
            })
        })
    };
    wait_for("writes before the kill", 20, || {
        writes.load(Ordering::Relaxed) > 100
    })?;
    drop(a); // SIGKILL and reap
    *killed_at.lock().expect("lock") = Some(Instant::now());
    wait_for("a write after the kill", 60, || {
        first.lock().expect("lock").is_some()
    })?;
    stop.store(true, Ordering::Relaxed);
    writer.join().map_err(|_| "writer panicked")??;
    let took =
        first.lock().expect("lock").expect("set") - killed_at.lock().expect("lock").expect("set");
    drop((b, c));
    let _ = std::fs::remove_dir_all(&root);
    Ok(took.as_secs_f64())
}

fn cluster_info(port: u16, name: &str) -> Option<String> {
    let mut c = conn(port).ok()?;
    let text: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_owned())
}

// ---------------------------------------------------------------------------------------

fn primary_with_replicas(bin: &Path, replicas: usize) -> Res<(Running, Vec<Running>)> {
    let p = spawn(bin, free_port()?, &[])?;
    let target = format!("127.0.0.1 {}", p.port);
    let mut rs = Vec::new();
    for _ in 0..replicas {
        let r = spawn(bin, free_port()?, &["--replicaof", &target])?;
        let port = r.port;
        wait_for("a replica link", 30, || {
            info_field(port, "replication", "master_link_status").as_deref() == Some("up")
        })?;
        rs.push(r);
    }
    Ok((p, rs))
}

fn benchmark(tool: &str, port: u16, requests: u64) -> Res<f64> {
    let out = Command::new(tool)
        .args(["-p", &port.to_string(), "-t", "set", "-c", "50", "-q"])
        .args(["-n", &requests.to_string(), "-r", "100000", "-d", "64"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "SET: 81234.56 requests per second, p50=..."
    let rps = text
        .rsplit("SET: ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no SET figure in: {text}"))?;
    Ok(rps)
}

fn lag(bin: &Path, tool: &str, requests: u64) -> Res<()> {
    let (p, rs) = primary_with_replicas(bin, 1)?;
    let r = &rs[0];
    let stop = Arc::new(AtomicBool::new(false));
    let (pp, rp) = (p.port, r.port);
    let probe = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || -> Res<(Vec<f64>, u64)> {
            let (mut pc, mut rc) = (conn(pp)?, conn(rp)?);
            let mut delays = Vec::new();
            let mut max_gap = 0u64;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let key = format!("probe:{i}");
                let _: () = redis::cmd("SET").arg(&key).arg(i).query(&mut pc)?;
                let written = Instant::now();
                loop {
                    let v: Option<u64> = redis::cmd("GET").arg(&key).query(&mut rc)?;
                    if v.is_some() {
                        break;
                    }
                    if written.elapsed() > Duration::from_secs(10) {
                        return Err("the replica never got a probe".into());
                    }
                }
                delays.push(written.elapsed().as_secs_f64());
                let po: u64 = info_field(pp, "replication", "master_repl_offset")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let ro: u64 = info_field(rp, "replication", "slave_repl_offset")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                max_gap = max_gap.max(po.saturating_sub(ro));
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok((delays, max_gap))
        })
    };
    let rps = benchmark(tool, pp, requests)?;
    stop.store(true, Ordering::Relaxed);
    let (mut delays, gap) = probe.join().map_err(|_| "probe panicked")??;
    let n = delays.len();
    let max = delays.iter().copied().fold(0.0, f64::max);
    let med = median(&mut delays);
    let p99 = delays[(n * 99 / 100).min(n - 1)];
    println!(
        "lag under SET load ({rps:.0} SET/s, 1 replica): {n} probes, write-to-visible on the \
         replica median {:.2} ms, p99 {:.2} ms, max {:.2} ms; largest offset gap {gap} bytes",
        med * 1e3,
        p99 * 1e3,
        max * 1e3
    );
    Ok(())
}

fn throughput(bin: &Path, tool: &str, rounds: u32, requests: u64) -> Res<()> {
    let mut results: [Vec<f64>; 3] = Default::default();
    for round in 1..=rounds {
        for (replicas, result) in results.iter_mut().enumerate() {
            let (p, rs) = primary_with_replicas(bin, replicas)?;
            let rps = benchmark(tool, p.port, requests)?;
            // The replicas must have kept up (they are not measured otherwise).
            let end: u64 = info_field(p.port, "replication", "master_repl_offset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            for r in &rs {
                let port = r.port;
                wait_for("a replica to catch up", 30, || {
                    info_field(port, "replication", "slave_repl_offset")
                        .and_then(|v| v.parse::<u64>().ok())
                        .is_some_and(|o| o >= end)
                })?;
            }
            println!("round {round}: {replicas} replicas: {rps:.0} SET/s");
            result.push(rps);
            drop((p, rs));
        }
    }
    for (replicas, v) in results.iter_mut().enumerate() {
        println!("{replicas} replicas: median {:.0} SET/s", median(v));
    }
    Ok(())
}

fn fullsync(bin: &Path, keys: u64, rounds: u32) -> Res<()> {
    let mut times = Vec::new();
    for round in 1..=rounds {
        let p = spawn(bin, free_port()?, &[])?;
        let mut c = conn(p.port)?;
        let value = "v".repeat(32);
        let mut i = 0;
        while i < keys {
            let mut pipe = redis::pipe();
            for k in i..(i + 10_000).min(keys) {
                pipe.cmd("SET")
                    .arg(format!("key:{k:010}"))
                    .arg(&value)
                    .ignore();
            }
            pipe.query::<()>(&mut c)?;
            i += 10_000;
        }
        let target = format!("127.0.0.1 {}", p.port);
        let started = Instant::now();
        let r = spawn(bin, free_port()?, &["--replicaof", &target])?;
        let port = r.port;
        wait_for("the sync", 600, || {
            info_field(port, "replication", "master_link_status").as_deref() == Some("up")
        })?;
        let took = started.elapsed().as_secs_f64();
        let mut rc = conn(r.port)?;
        let n: u64 = redis::cmd("DBSIZE").query(&mut rc)?;
        if n != keys {
            return Err(format!("the replica has {n} keys, not {keys}").into());
        }
        println!(
            "round {round}: {keys} keys synced in {took:.2} s ({:.0} keys/s)",
            keys as f64 / took
        );
        times.push(took);
        drop((p, r));
    }
    println!(
        "full sync of {keys} keys: median {:.2} s",
        median(&mut times)
    );
    Ok(())
}
