//! The celebrity workload: one key takes a large share of the reads on a static cluster.
//! Measures total throughput, each shard's share of the commands, with the client's
//! near-cache off and on.
//!
//! Starts `--shards` cachalot-server processes on loopback as one static cluster, writes
//! `--keys` keys, then for each hot share (10% and 50% by default) and each setting
//! (near-cache off, on) runs `--tasks` concurrent tasks for `--secs`, each reading one key
//! at a time: the celebrity key with probability `share`, otherwise a uniformly random one.
//! Per-shard load is each node's `total_commands_processed` delta over the run (`INFO
//! stats`), so it counts what reached the node, not what the client asked.
//!
//! ```sh
//! cargo build --release -p cachalot-server -p cachalot-benches
//! target/release/celebrity --secs 5 --rounds 3
//! ```

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachalot_benches::process::start_static_cluster;
use cachalot_client::{Client, NearCacheSettings};
use clap::Parser;
use rand::Rng;

/// The celebrity.
const HOT_KEY: &str = "celebrity";

#[derive(Debug, Parser)]
#[command(about = "Hot-key (celebrity) workload with the near-cache off and on")]
struct Args {
    /// cachalot-server binary.
    #[arg(long, default_value = "target/release/cachalot-server")]
    server_bin: PathBuf,
    /// Shards (one server process each).
    #[arg(long, default_value_t = 3)]
    shards: usize,
    /// Concurrent reading tasks.
    #[arg(long, default_value_t = 64)]
    tasks: usize,
    /// Seconds per measured run.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Rounds per cell (near-cache off and on alternate).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Distinct keys besides the celebrity.
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// Hot shares to run, comma-separated fractions of the reads.
    #[arg(long, default_value = "0.1,0.5")]
    shares: String,
    /// Client runtime worker threads.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
}

/// One run's outcome.
struct Run {
    reads_per_sec: f64,
    /// Commands each node processed per second, in node order.
    node_ops: Vec<f64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cachalot_benches::exit_code_async(args.client_threads, run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let shares = cachalot_benches::parse_list(&args.shares, |s| {
        s.parse::<f64>().map_err(|e| format!("share {s}: {e}"))
    })?;
    let (servers, addrs) = start_static_cluster(
        &args.server_bin,
        args.shards,
        &["--threads", "1", "--log-level", "warn"],
    )?;
    let plain = Client::connect(addrs.clone()).await?;
    let value = vec![b'v'; 64];
    let pairs: Vec<(String, Vec<u8>)> = (0..args.keys).map(|i| (key(i), value.clone())).collect();
    for chunk in pairs.chunks(1000) {
        plain.mset(chunk).await?;
    }
    plain.set(HOT_KEY, &value).await?;
    let hot_node = plain
        .primary_for(HOT_KEY.as_bytes())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let cached = Client::builder(addrs.clone())
        .near_cache(NearCacheSettings::hot_keys())
        .connect()
        .await?;
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| hot share | near-cache | round | reads/s | per-shard commands/s | hot shard ÷ mean |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|---|");
    for &share in &shares {
        let mut medians = [Vec::new(), Vec::new()];
        for round in 0..args.rounds {
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let client = if which == 0 { &plain } else { &cached };
                if which == 1 {
                    // Let the nodes see the celebrity and the client learn it is hot.
                    warm_up(client, share, &args).await?;
                }
                let r = measure(client, share, &args, &addrs).await?;
                let hot_i = addrs.iter().position(|a| *a == hot_node).unwrap_or(0);
                let mean = r.node_ops.iter().sum::<f64>() / r.node_ops.len().max(1) as f64;
                let hot_ratio = r.node_ops.get(hot_i).copied().unwrap_or(0.0) / mean;
                let per_node: Vec<String> = r.node_ops.iter().map(|o| format!("{o:.0}")).collect();
                let _ = writeln!(
                    table,
                    "| {:.0}% | {} | {round} | {:.0} | {} | {hot_ratio:.2} |",
                    share * 100.0,
                    if which == 0 { "off" } else { "on" },
                    r.reads_per_sec,
                    per_node.join(" / "),
                );
                eprintln!("share {share} near={which} round {round}: {:.0} reads/s, hot/mean {hot_ratio:.2}", r.reads_per_sec);
                medians[which].push((r.reads_per_sec, hot_ratio));
            }
        }
        let med = |v: &mut Vec<(f64, f64)>, pick: fn(&(f64, f64)) -> f64| {
            let mut xs: Vec<f64> = v.iter().map(pick).collect();
            xs.sort_by(f64::total_cmp);
            xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
        };
        let (off_tp, on_tp) = (med(&mut medians[0], |x| x.0), med(&mut medians[1], |x| x.0));
        let on_hot = med(&mut medians[1], |x| x.1);
        let _ = writeln!(
            table,
            "| {:.0}% | **median** | | off {off_tp:.0}, on {on_tp:.0} (**{:.2}×**) | | on: **{on_hot:.2}** |",
            share * 100.0,
            on_tp / off_tp
        );
    }
    println!("{table}");
    if let Some(m) = cached.metrics().near_cache {
        println!("near-cache: {m:?}");
    }
    drop(servers);
    Ok(())
}

fn key(i: usize) -> String {
    format!("key:{i:08}")
}

/// Runs the workload for a second without measuring.
async fn warm_up(client: &Client, share: f64, args: &Args) -> Result<(), Box<dyn Error>> {
    let short = Args {
        secs: 1.0,
        server_bin: args.server_bin.clone(),
        shares: args.shares.clone(),
        ..*args
    };
    drive(client, share, &short).await.map(|_| ())
}

/// Reads done by `--tasks` tasks for `--secs`.
async fn drive(client: &Client, share: f64, args: &Args) -> Result<u64, Box<dyn Error>> {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.tasks {
        let (c, stop, count, keys) = (
            client.clone(),
            Arc::clone(&stop),
            Arc::clone(&count),
            args.keys,
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let k = {
                    let mut rng = rand::thread_rng();
                    if rng.gen_bool(share) {
                        HOT_KEY.to_owned()
                    } else {
                        key(rng.gen_range(0..keys))
                    }
                };
                c.get(&k).await?;
                n += 1;
            }
            count.fetch_add(n, Ordering::Relaxed);
            Ok::<(), cachalot_client::Error>(())
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    Ok(count.load(Ordering::Relaxed))
}

async fn measure(
    client: &Client,
    share: f64,
    args: &Args,
    addrs: &[String],
) -> Result<Run, Box<dyn Error>> {
    let before = commands_processed(addrs).await?;
    let started = Instant::now();
    let reads = drive(client, share, args).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let after = commands_processed(addrs).await?;
    Ok(Run {
        reads_per_sec: reads as f64 / elapsed,
        node_ops: before
            .iter()
            .zip(&after)
            .map(|(b, a)| a.saturating_sub(*b) as f64 / elapsed)
            .collect(),
    })
}

/// Each node's `total_commands_processed`.
async fn commands_processed(addrs: &[String]) -> Result<Vec<u64>, Box<dyn Error>> {
    let mut out = Vec::new();
    for a in addrs {
        let mut conn = redis::Client::open(format!("redis://{a}/"))?
            .get_multiplexed_async_connection()
            .await?;
        let info: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut conn)
            .await?;
        let n = info
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or("no total_commands_processed in INFO stats")?;
        out.push(n);
    }
    Ok(out)
}
