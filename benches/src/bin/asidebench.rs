//! Loader calls saved by cache-aside: a seeded Zipf workload over a slow loader through one
//! cachalot-server, with a naive cache-aside written here against `CacheAside` (single
//! flight, XFetch early refresh, TTL jitter), in the same run.
//!
//! Starts one cachalot-server on loopback. In each round every contender (in rotating
//! order, after a `FLUSHALL`) runs `--tasks` tokio tasks for `--secs`. Each task draws keys
//! from its own seeded Zipf stream (the same streams for every contender) over `--keys`
//! keys and reads each through the contender, awaiting one request before the next. Values
//! are `--value-size` bytes cached for `--ttl-ms`, short so keys keep expiring; the loader
//! (the "store of record") sleeps `--load-ms` and counts its calls.
//!
//! Contenders (`--contenders`, comma-separated):
//! - `naive`: `GET`; on a miss, load then `SET key value PX ttl`. No coalescing, no early
//!   refresh, no jitter.
//! - `aside`: `CacheAside::new` with its defaults (single-flight, beta 1, 10% jitter).
//! - `single-flight`: `CacheAside` with beta 0 and jitter 0: single-flight only, the same
//!   TTLs as `naive`.
//! - `aside-no-jitter`: `CacheAside` with beta 1 and jitter 0 (not run by default).
//!
//! Per contender and round: requests/s, loader calls, loads/s, loads per 1,000 requests,
//! loads that overlapped another load of the same key, the most concurrent loads of one
//! key, and request latency p50/p99/max (a request that misses includes its load). Latency
//! goes into a log-bucketed histogram per task (32 buckets per power of two, so quantiles
//! are within ~3%; fixed memory) merged at the end; the max is exact.
//!
//! ```sh
//! cargo build --release -p cachalot-server -p cachalot-benches
//! target/release/asidebench
//! ```

use std::convert::Infallible;
use std::error::Error;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cachalot_benches::process::{free_port, Running};
use cachalot_benches::table;
use cachalot_benches::trace::Zipf;
use cachalot_client::{CacheAside, Client};
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// How long the server may take to accept connections.
const START_TIMEOUT_SECS: u64 = 10;

/// Histogram resolution: 2^5 = 32 buckets per power of two of microseconds, so a bucket
/// is at most 1/32 (~3%) of its values wide.
const SUB_BUCKET_BITS: u32 = 5;

/// Latencies are clamped below 2^36 µs (~19 hours): far past any request in a 10 s run,
/// and it keeps the histogram at 1,024 buckets (8 KiB per task).
const MAX_MICROS_LOG2: u32 = 36;

type BoxError = Box<dyn Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(about = "loader calls and latency: naive cache-aside against CacheAside")]
struct Args {
    /// cachalot-server binary.
    #[arg(long, default_value = "target/release/cachalot-server")]
    server_bin: PathBuf,
    /// Worker threads for the server (its own default if unset).
    #[arg(long)]
    server_threads: Option<usize>,
    /// Client runtime worker threads.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Concurrent tasks per contender.
    #[arg(long, default_value_t = 64)]
    tasks: usize,
    /// Seconds each contender runs in one round.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Rounds (the contenders' order rotates each round).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Zipf exponent.
    #[arg(long, default_value_t = 1.0)]
    alpha: f64,
    /// Value size in bytes (before CacheAside's 16-byte envelope).
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// TTL of cached values, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    ttl_ms: u64,
    /// How long one loader call sleeps, in milliseconds.
    #[arg(long, default_value_t = 1.0)]
    load_ms: f64,
    /// Seed of the key streams (task `i` uses `seed + i`).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Contenders, comma-separated: naive, aside, single-flight, aside-no-jitter.
    #[arg(long, default_value = "naive,aside,single-flight")]
    contenders: String,
}

/// A way of reading through the cache.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Naive,
    Aside { beta: f64, jitter: f64 },
}

#[derive(Clone, Copy, Debug)]
struct Contender {
    name: &'static str,
    kind: Kind,
}

fn parse_contender(name: &str) -> Result<Contender, String> {
    let (name, kind) = match name {
        "naive" => ("naive", Kind::Naive),
        "aside" => (
            "aside",
            Kind::Aside {
                beta: cachalot_client::DEFAULT_BETA,
                jitter: cachalot_client::DEFAULT_TTL_JITTER,
            },
        ),
        "single-flight" => (
            "single-flight",
            Kind::Aside {
                beta: 0.0,
                jitter: 0.0,
            },
        ),
        "aside-no-jitter" => (
            "aside-no-jitter",
            Kind::Aside {
                beta: cachalot_client::DEFAULT_BETA,
                jitter: 0.0,
            },
        ),
        other => return Err(format!("unknown contender {other:?}")),
    };
    Ok(Contender { name, kind })
}

/// The reader one contender's tasks share.
#[derive(Clone)]
enum Reader {
    Naive(Client),
    Aside(CacheAside<Client>),
}

/// The slow store of record: sleeps, counts its calls and how many run at once per key.
struct Loader {
    value: Bytes,
    delay: Duration,
    calls: AtomicU64,
    /// Calls that started while another call for the same key was running.
    overlapping: AtomicU64,
    /// Calls running right now, per key rank.
    in_flight: Vec<AtomicU32>,
    /// The most calls that ran at once for one key.
    max_in_flight: AtomicU32,
}

impl Loader {
    fn new(keys: usize, value: Bytes, delay: Duration) -> Self {
        Loader {
            value,
            delay,
            calls: AtomicU64::new(0),
            overlapping: AtomicU64::new(0),
            in_flight: (0..keys).map(|_| AtomicU32::new(0)).collect(),
            max_in_flight: AtomicU32::new(0),
        }
    }

    async fn load(&self, rank: usize) -> Result<Bytes, Infallible> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        // Ranks come from a Zipf over `in_flight.len()` keys, so there is always a slot;
        // without one the call is still counted, only not per key.
        let _running = self.in_flight.get(rank).map(|slot| {
            let before = slot.fetch_add(1, Ordering::Relaxed);
            if before > 0 {
                self.overlapping.fetch_add(1, Ordering::Relaxed);
            }
            self.max_in_flight.fetch_max(before + 1, Ordering::Relaxed);
            InFlight(slot)
        });
        tokio::time::sleep(self.delay).await;
        Ok(self.value.clone())
    }
}

/// Takes one call off its key's running count when the call ends (or is dropped).
struct InFlight<'a>(&'a AtomicU32);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Request latencies in microseconds, log-bucketed: fixed memory, merged by adding counts.
#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_micros: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; ((MAX_MICROS_LOG2 - SUB_BUCKET_BITS + 1) << SUB_BUCKET_BITS) as usize],
            total: 0,
            max_micros: 0,
        }
    }

    /// Values below 2^(SUB_BUCKET_BITS+1) get a bucket each; above, each power of two is
    /// split into 2^SUB_BUCKET_BITS equal buckets.
    fn index(micros: u64) -> usize {
        let v = micros.min((1 << MAX_MICROS_LOG2) - 1);
        if v < 1 << SUB_BUCKET_BITS {
            return v as usize;
        }
        let log2 = 63 - v.leading_zeros();
        let shift = log2 - SUB_BUCKET_BITS;
        let block = (shift + 1) as usize;
        (block << SUB_BUCKET_BITS) + ((v >> shift) as usize - (1 << SUB_BUCKET_BITS))
    }

    /// The largest value that lands in bucket `index`.
    fn bucket_high(index: usize) -> u64 {
        let block = index >> SUB_BUCKET_BITS;
        if block == 0 {
            return index as u64;
        }
        let within = (index & ((1 << SUB_BUCKET_BITS) - 1)) as u64;
        let shift = block - 1;
        (((1 << SUB_BUCKET_BITS) + within) << shift) + (1 << shift) - 1
    }

    fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if let Some(c) = self.counts.get_mut(Self::index(micros)) {
            *c += 1;
        }
        self.total += 1;
        self.max_micros = self.max_micros.max(micros);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max_micros = self.max_micros.max(other.max_micros);
    }

    /// The `q` quantile (0..=1), as the top of its bucket, at most the exact max.
    fn quantile_micros(&self, q: f64) -> u64 {
        let rank = ((self.total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::bucket_high(i).min(self.max_micros);
            }
        }
        self.max_micros
    }
}

/// One contender's run in one round.
struct Outcome {
    requests: u64,
    secs: f64,
    loads: u64,
    overlapping: u64,
    max_in_flight: u32,
    latency: Histogram,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cachalot_benches::exit_code_async(args.client_threads, run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let contenders = cachalot_benches::parse_list(&args.contenders, parse_contender)?;
    if contenders.is_empty() || args.keys == 0 || args.tasks == 0 {
        return Err("need at least one contender, key and task".into());
    }
    let port = free_port()?;
    let mut cmd = Command::new(&args.server_bin);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(threads) = args.server_threads {
        cmd.args(["--threads", &threads.to_string()]);
    }
    let server = Running::spawn(&mut cmd, port, Duration::from_secs(START_TIMEOUT_SECS))?;
    let client = Client::connect([format!("127.0.0.1:{port}")]).await?;
    let keys: Arc<Vec<Bytes>> = Arc::new(
        (0..args.keys)
            .map(|i| Bytes::from(format!("k:{i:06}")))
            .collect(),
    );
    let zipf = Arc::new(Zipf::new(args.keys, args.alpha));

    let mut rows = vec![[
        "contender",
        "round",
        "req/s",
        "loader calls",
        "loads/s",
        "loads/1k req",
        "overlapping loads",
        "max loads/key",
        "p50 ms",
        "p99 ms",
        "max ms",
    ]
    .map(String::from)
    .to_vec()];
    let mut per_contender: Vec<Vec<Outcome>> = contenders.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        for turn in 0..contenders.len() {
            let i = (turn + round) % contenders.len();
            let (Some(contender), Some(results)) = (contenders.get(i), per_contender.get_mut(i))
            else {
                continue;
            };
            client.flushall().await?;
            let outcome = measure(contender, &client, &args, &keys, &zipf).await?;
            eprintln!(
                "round {round}: {} {:.0} req/s, {} loads",
                contender.name,
                outcome.requests as f64 / outcome.secs,
                outcome.loads
            );
            rows.push(row(contender.name, &round.to_string(), &outcome));
            results.push(outcome);
        }
    }
    for (contender, results) in contenders.iter().zip(&per_contender) {
        if let Some(median) = median_by_loads(results) {
            rows.push(row(contender.name, "median (by loads/s)", median));
        }
    }
    println!(
        "{} tasks, {} s, {} keys, Zipf {}, {} B values, TTL {} ms, loader {} ms, {} rounds\n",
        args.tasks,
        args.secs,
        args.keys,
        args.alpha,
        args.value_size,
        args.ttl_ms,
        args.load_ms,
        args.rounds
    );
    print!("{}", table::render(&rows, true));
    drop(server);
    Ok(())
}

/// The round with the median loads/s.
fn median_by_loads(results: &[Outcome]) -> Option<&Outcome> {
    let mut sorted: Vec<&Outcome> = results.iter().collect();
    sorted.sort_by(|a, b| (a.loads as f64 / a.secs).total_cmp(&(b.loads as f64 / b.secs)));
    sorted.get(sorted.len() / 2).copied()
}

fn row(name: &str, round: &str, o: &Outcome) -> Vec<String> {
    let ms = |micros: u64| format!("{:.2}", micros as f64 / 1000.0);
    vec![
        name.to_owned(),
        round.to_owned(),
        format!("{:.0}", o.requests as f64 / o.secs),
        o.loads.to_string(),
        format!("{:.0}", o.loads as f64 / o.secs),
        format!("{:.1}", o.loads as f64 * 1000.0 / o.requests.max(1) as f64),
        o.overlapping.to_string(),
        o.max_in_flight.to_string(),
        ms(o.latency.quantile_micros(0.50)),
        ms(o.latency.quantile_micros(0.99)),
        ms(o.latency.max_micros),
    ]
}

/// Runs `contender` from `--tasks` tasks for `--secs` on a flushed server.
async fn measure(
    contender: &Contender,
    client: &Client,
    args: &Args,
    keys: &Arc<Vec<Bytes>>,
    zipf: &Arc<Zipf>,
) -> Result<Outcome, Box<dyn Error>> {
    let reader = match contender.kind {
        Kind::Naive => Reader::Naive(client.clone()),
        Kind::Aside { beta, jitter } => Reader::Aside(
            CacheAside::builder(client.clone())
                .beta(beta)
                .ttl_jitter(jitter)
                .build(),
        ),
    };
    let loader = Arc::new(Loader::new(
        args.keys,
        Bytes::from(vec![b'v'; args.value_size]),
        Duration::from_secs_f64(args.load_ms / 1000.0),
    ));
    let ttl = Duration::from_millis(args.ttl_ms);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.tasks);
    for t in 0..args.tasks {
        let (reader, loader, stop, keys, zipf) = (
            reader.clone(),
            Arc::clone(&loader),
            Arc::clone(&stop),
            Arc::clone(keys),
            Arc::clone(zipf),
        );
        let mut rng = StdRng::seed_from_u64(args.seed.wrapping_add(t as u64));
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::new();
            while !stop.load(Ordering::Relaxed) {
                let rank = zipf.sample(&mut rng);
                let Some(key) = keys.get(rank) else {
                    continue;
                };
                let sent = Instant::now();
                match &reader {
                    Reader::Naive(client) => {
                        if client.get(key).await?.is_none() {
                            let Ok(value) = loader.load(rank).await;
                            client.set_ex(key, value, ttl).await?;
                        }
                    }
                    Reader::Aside(aside) => {
                        aside.get_or_load(key, ttl, || loader.load(rank)).await?;
                    }
                }
                latency.record(sent.elapsed());
            }
            Ok::<Histogram, BoxError>(latency)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latency = Histogram::new();
    for t in tasks {
        latency.merge(&t.await?.map_err(|e| e.to_string())?);
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(Outcome {
        requests: latency.total,
        secs,
        loads: loader.calls.load(Ordering::Relaxed),
        overlapping: loader.overlapping.load(Ordering::Relaxed),
        max_in_flight: loader.max_in_flight.load(Ordering::Relaxed),
        latency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_whose_top_is_within_a_32nd() {
        for v in (0..5000u64).chain([1 << 20, (1 << 20) + 12_345, (1 << 35) + 7]) {
            let i = Histogram::index(v);
            let high = Histogram::bucket_high(i);
            assert!(high >= v, "{v} -> bucket {i} tops at {high}");
            assert!(high - v <= v / 32, "{v} -> bucket {i} tops at {high}");
            if i > 0 {
                assert!(Histogram::bucket_high(i - 1) < v, "{v} fits a lower bucket");
            }
        }
        assert!(Histogram::index((1 << MAX_MICROS_LOG2) - 1) < Histogram::new().counts.len());
    }

    #[test]
    fn quantiles_come_from_merged_counts() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        for _ in 0..99 {
            a.record(Duration::from_micros(10));
        }
        b.record(Duration::from_millis(50));
        a.merge(&b);
        assert_eq!(a.total, 100);
        assert_eq!(a.quantile_micros(0.5), 10);
        assert_eq!(a.quantile_micros(0.99), 10);
        assert_eq!(a.quantile_micros(1.0), 50_000);
        assert_eq!(a.max_micros, 50_000);
    }
}
