//! Client throughput against a static cachalot cluster: `cachalot-client` against the
//! `redis` crate's async cluster client, in the same run, on the same servers.
//!
//! Starts `--shards` cachalot-server processes on loopback as one static cluster, loads
//! `--keys` keys, then runs rounds: in each round every contender (in alternating order)
//! runs `--tasks` concurrent tokio tasks for `--secs`, each looping over one command on
//! uniformly random keys and awaiting each reply before the next (so concurrency, not
//! explicit pipelining, fills the connections). Prints each round's requests per second
//! and the median ratio ours ÷ redis-rs per command.
//!
//! ```sh
//! cargo build --release -p cachalot-server
//! cargo run --release -p cachalot-benches --bin clientbench -- --rounds 5
//! ```

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachalot_benches::process::start_static_cluster;
use clap::Parser;
use rand::Rng;

#[derive(Debug, Parser)]
#[command(about = "cachalot-client against the redis crate's cluster client")]
struct Args {
    /// cachalot-server binary.
    #[arg(long, default_value = "target/release/cachalot-server")]
    server_bin: PathBuf,
    /// Shards (one server process each).
    #[arg(long, default_value_t = 3)]
    shards: usize,
    /// Concurrent tasks per contender.
    #[arg(long, default_value_t = 64)]
    tasks: usize,
    /// Seconds each contender runs one command in one round.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Rounds (contenders alternate who goes first).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 64)]
    value_size: usize,
    /// Client runtime worker threads.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Run only one contender (`ours` or `redis-rs`), for profiling.
    #[arg(long)]
    only: Option<String>,
    /// Worker threads per server.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
}

/// The command a round measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Get,
    Set,
}

/// A client under test.
#[derive(Clone)]
enum Contender {
    Ours(cachalot_client::Client),
    RedisRs(redis::cluster_async::ClusterConnection),
}

impl Contender {
    fn name(&self) -> &'static str {
        match self {
            Contender::Ours(_) => "cachalot-client",
            Contender::RedisRs(_) => "redis-rs cluster",
        }
    }

    async fn run(
        &mut self,
        op: Op,
        key: &str,
        value: &[u8],
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        match (self, op) {
            (Contender::Ours(c), Op::Get) => {
                c.get(key).await?;
            }
            (Contender::Ours(c), Op::Set) => c.set(key, value).await?,
            (Contender::RedisRs(c), Op::Get) => {
                let _: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(c).await?;
            }
            (Contender::RedisRs(c), Op::Set) => {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .query_async::<()>(c)
                    .await?;
            }
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    cachalot_benches::exit_code_async(args.client_threads, run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let threads = args.server_threads.to_string();
    let (servers, addrs) = start_static_cluster(
        &args.server_bin,
        args.shards,
        &["--threads", &threads, "--log-level", "warn"],
    )?;
    let ours = cachalot_client::Client::connect(addrs.clone()).await?;
    let urls: Vec<String> = addrs.iter().map(|a| format!("redis://{a}/")).collect();
    let theirs = redis::cluster::ClusterClient::new(urls)?
        .get_async_connection()
        .await?;
    let value = vec![b'x'; args.value_size];
    let pairs: Vec<(String, Vec<u8>)> = (0..args.keys).map(|i| (key(i), value.clone())).collect();
    for chunk in pairs.chunks(1000) {
        ours.mset(chunk).await?;
    }
    let contenders = [Contender::Ours(ours), Contender::RedisRs(theirs)];
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| command | round | cachalot-client (req/s) | redis-rs cluster (req/s) | ratio |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|");
    for op in [Op::Get, Op::Set] {
        let mut ratios = Vec::new();
        for round in 0..args.rounds {
            let mut rates = [0.0f64; 2];
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let skip = match args.only.as_deref() {
                    Some("ours") => i != 0,
                    Some(_) => i != 1,
                    None => false,
                };
                if skip {
                    continue;
                }
                rates[i] = measure(&contenders[i], op, &args, &value).await?;
                eprintln!(
                    "{op:?} round {round}: {} {:.0} req/s",
                    contenders[i].name(),
                    rates[i]
                );
            }
            let ratio = rates[0] / rates[1];
            ratios.push(ratio);
            let _ = writeln!(
                table,
                "| {op:?} | {round} | {:.0} | {:.0} | {ratio:.3} |",
                rates[0], rates[1]
            );
        }
        ratios.sort_by(f64::total_cmp);
        let median = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
        let _ = writeln!(table, "| {op:?} | median | | | **{median:.3}** |");
    }
    println!("{table}");
    drop(servers);
    Ok(())
}

fn key(i: usize) -> String {
    format!("key:{i:08}")
}

/// Requests per second of `contender` running `op` from `--tasks` tasks for `--secs`.
async fn measure(
    contender: &Contender,
    op: Op,
    args: &Args,
    value: &[u8],
) -> Result<f64, Box<dyn Error>> {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    for _ in 0..args.tasks {
        let (mut c, stop, count, value, keys) = (
            contender.clone(),
            Arc::clone(&stop),
            Arc::clone(&count),
            value.to_vec(),
            args.keys,
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let k = key(rand::thread_rng().gen_range(0..keys));
                c.run(op, &k, &value).await?;
                n += 1;
            }
            count.fetch_add(n, Ordering::Relaxed);
            Ok::<(), Box<dyn Error + Send + Sync>>(())
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?.map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(count.load(Ordering::Relaxed) as f64 / elapsed)
}
