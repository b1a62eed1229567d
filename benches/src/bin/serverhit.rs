//! Hit ratio and memory through the server: a cache-aside client replays a seeded Zipf trace
//! against `redis-server` and `cachalot-server`, each started with the same `maxmemory`
//! under each of its eviction policies, and prints one markdown table per Zipf exponent.
//!
//! The client does what a cache-aside application does: `GET key`, and on a miss
//! `SET key value`. Every request of the trace is sent, in trace order.
//!
//! **Batching.** One request per round trip would make a replay take minutes, so requests
//! go out in pipelined batches of *distinct* keys: a batch ends early at the first key it
//! already holds, else a key's second `GET` would run before the `SET` that its first miss
//! calls for. A batch is one pipeline: the `SET`s for the previous batch's misses, then this
//! batch's `GET`s. Compared with a client that waits for every reply, each `SET` moves later,
//! past fewer than `--batch` `GET`s of other keys; a key's own commands keep their order.
//! A request can therefore only differ in outcome if its key was evicted within that short
//! window, rare in a cache of hundreds of thousands of keys. `--batch 1` is exactly the
//! one-at-a-time client (each `SET` rides in front of the next `GET`); on a small run (200k
//! keys, 1M requests, 8mb) it moved no hit ratio by more than 0.0007 against `--batch 256`.
//! After each replay the client's hit count is checked against the server's `keyspace_hits`.
//!
//! **Measured.** Hit ratio over the whole trace and over its second half (after warm-up),
//! counted by the client; at the end, the server's resident memory (`VmRSS`, and its peak
//! `VmHWM`, from `/proc/<pid>/status`), its own `INFO memory` `used_memory`, its key count
//! (`DBSIZE`) and `evicted_keys`. The "top-k" column is the hit ratio of the best static
//! cache holding as many keys as the server held at the end (the shares of the k most
//! popular keys): on an independent Zipf trace no policy holding k keys does better in the
//! long run, so it separates "how many keys fit in `maxmemory`" from "how well the policy
//! chooses them".
//!
//! Each server is pinned to one core (`taskset`), as in `compare`. Redis runs with
//! `--save ''`, `--appendonly no`, on loopback, with its default `maxmemory-samples` (5)
//! unless `--redis-samples` says otherwise. `--cachalot-maxmemory` gives cachalot-server a
//! different bound, to compare the two at equal resident memory instead.
//!
//! ```sh
//! cargo build --release -p cachalot-server
//! cargo run --release -p cachalot-benches --bin serverhit -- --alphas 1.0,0.8,1.2
//! ```

use std::collections::HashSet;
use std::error::Error;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use cachalot_benches::process::{free_port, Running};
use cachalot_benches::trace::Zipf;
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// How long a server may take to accept connections.
const START_TIMEOUT_SECS: u64 = 10;
/// How long the client waits for one pipeline's replies before giving up on the server.
const REPLY_TIMEOUT_SECS: u64 = 60;
/// Bytes in a MiB, for the table.
const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Parser)]
#[command(about = "Cache-aside hit ratio and memory of cachalot-server and redis-server")]
struct Args {
    /// cachalot-server binary.
    #[arg(long, default_value = "target/release/cachalot-server")]
    cachalot_bin: PathBuf,
    /// redis-server binary.
    #[arg(long, default_value = "redis-server")]
    redis_bin: PathBuf,
    /// `maxmemory` of every server, in Redis's units.
    #[arg(long, default_value = "64mb")]
    maxmemory: String,
    /// `maxmemory` of cachalot-server only, to compare at equal resident memory instead
    /// [default: --maxmemory].
    #[arg(long)]
    cachalot_maxmemory: Option<String>,
    /// Redis policies to run.
    #[arg(long, default_value = "allkeys-lru,allkeys-lfu")]
    redis_policies: String,
    /// Cachalot policies to run.
    #[arg(long, default_value = "allkeys-lru,allkeys-lfu,allkeys-tinylfu")]
    cachalot_policies: String,
    /// Redis's `maxmemory-samples` (its default is 5).
    #[arg(long, default_value_t = 5)]
    redis_samples: u32,
    /// Zipf exponents, one table each.
    #[arg(long, default_value = "1.0")]
    alphas: String,
    /// Distinct keys in the Zipf universe (`key:0` is the most popular).
    #[arg(long, default_value_t = 2_000_000)]
    keys: usize,
    /// Requests per trace.
    #[arg(long, default_value_t = 10_000_000)]
    requests: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Most requests per pipelined batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Seed of the trace generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Core the servers are pinned to.
    #[arg(long, default_value_t = 0)]
    server_core: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Cachalot,
    Redis,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Cachalot => "cachalot",
            Server::Redis => "redis",
        }
    }
}

fn start(server: Server, policy: &str, args: &Args) -> Result<Running, Box<dyn Error>> {
    let port = free_port()?.to_string();
    let maxmemory = match server {
        Server::Cachalot => args.cachalot_maxmemory.as_ref().unwrap_or(&args.maxmemory),
        Server::Redis => &args.maxmemory,
    };
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &args.server_core.to_string()]);
    let common = [
        "--port",
        &port,
        "--maxmemory",
        maxmemory,
        "--maxmemory-policy",
        policy,
    ];
    match server {
        Server::Cachalot => {
            cmd.arg(&args.cachalot_bin)
                .args(common)
                .args(["--log-level", "warn"]);
        }
        Server::Redis => {
            cmd.arg(&args.redis_bin).args(common).args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-samples",
                &args.redis_samples.to_string(),
                "--loglevel",
                "warning",
            ]);
        }
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
    Running::spawn(
        &mut cmd,
        port.parse()?,
        Duration::from_secs(START_TIMEOUT_SECS),
    )
    .map_err(|e| format!("cannot start {} {policy}: {e}", server.name()).into())
}

/// Length of the batch at the start of `trace`: at most `max` requests, all for different
/// keys. `seen` is scratch space. At least 1 unless `trace` is empty.
fn batch_len(trace: &[u32], max: usize, seen: &mut HashSet<u32>) -> usize {
    seen.clear();
    trace
        .iter()
        .take(max.max(1))
        .take_while(|&&k| seen.insert(k))
        .count()
}

/// What the client counted during one replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Hits {
    hits: u64,
    /// Hits among the requests of the trace's second half.
    late_hits: u64,
    /// Pipelines sent (round trips).
    batches: u64,
}

fn key_name(rank: u32, buf: &mut String) -> &str {
    buf.clear();
    let _ = write!(buf, "key:{rank}");
    buf
}

/// Replays `trace` cache-aside through `con` in batches (see the module docs).
fn replay(
    con: &mut redis::Connection,
    trace: &[u32],
    value: &[u8],
    batch: usize,
) -> redis::RedisResult<Hits> {
    let half = trace.len() / 2;
    let mut out = Hits::default();
    let mut seen = HashSet::new();
    let mut to_set: Vec<u32> = Vec::new();
    let mut buf = String::new();
    let mut start = 0;
    while start < trace.len() || !to_set.is_empty() {
        let len = batch_len(&trace[start..], batch, &mut seen);
        let mut pipe = redis::pipe();
        for &k in &to_set {
            pipe.cmd("SET")
                .arg(key_name(k, &mut buf))
                .arg(value)
                .ignore();
        }
        for &k in &trace[start..start + len] {
            pipe.cmd("GET").arg(key_name(k, &mut buf));
        }
        let replies: Vec<redis::Value> = pipe.query(con)?;
        out.batches += 1;
        to_set.clear();
        for (i, reply) in replies.iter().enumerate() {
            let at = start + i;
            if matches!(reply, redis::Value::Nil) {
                to_set.push(trace[at]);
            } else {
                out.hits += 1;
                if at >= half {
                    out.late_hits += 1;
                }
            }
        }
        start += len;
    }
    Ok(out)
}

/// A field of an `INFO` reply (`name:value` lines).
fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn status_bytes(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Resident bytes now and at peak.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (
        status_bytes(&status, "VmRSS").unwrap_or(0),
        status_bytes(&status, "VmHWM").unwrap_or(0),
    )
}

/// One server and policy's results on one trace.
#[derive(Clone, Debug)]
struct Row {
    server: Server,
    policy: String,
    hits: Hits,
    keys: u64,
    used_memory: u64,
    evicted: u64,
    rss_empty: u64,
    rss: u64,
    peak_rss: u64,
    secs: f64,
}

fn run_one(
    server: Server,
    policy: &str,
    trace: &[u32],
    args: &Args,
) -> Result<Row, Box<dyn Error>> {
    let running = start(server, policy, args)?;
    let pid = running.pid();
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", running.port))?;
    let mut con = client.get_connection()?;
    con.set_read_timeout(Some(Duration::from_secs(REPLY_TIMEOUT_SECS)))?;
    let (rss_empty, _) = rss(pid);
    let value = vec![b'v'; args.value_size];
    let started = Instant::now();
    let hits = replay(&mut con, trace, &value, args.batch)?;
    let secs = started.elapsed().as_secs_f64();
    let (rss, peak_rss) = rss(pid);
    let info: String = redis::cmd("INFO").arg("memory").query(&mut con)?;
    let stats: String = redis::cmd("INFO").arg("stats").query(&mut con)?;
    let keys: u64 = redis::cmd("DBSIZE").query(&mut con)?;
    // The server's own count must agree with the client's: a check on the replay loop.
    let server_hits = info_field(&stats, "keyspace_hits");
    if server_hits != Some(hits.hits) {
        eprintln!(
            "warning: {} {policy}: the client counted {} hits, the server {server_hits:?}",
            server.name(),
            hits.hits
        );
    }
    Ok(Row {
        server,
        policy: policy.to_owned(),
        hits,
        keys,
        used_memory: info_field(&info, "used_memory").unwrap_or(0),
        evicted: info_field(&stats, "evicted_keys").unwrap_or(0),
        rss_empty,
        rss,
        peak_rss,
        secs,
    })
}

/// Hit ratio of a static cache of the `k` most popular ranks.
fn top_k_ratio(zipf: &Zipf, k: u64) -> f64 {
    (0..usize::try_from(k).unwrap_or(usize::MAX))
        .map(|r| zipf.share(r))
        .take_while(|&s| s > 0.0)
        .sum()
}

fn table(rows: &[Row], requests: usize, zipf: &Zipf) -> String {
    let mut out = String::from(
        "| server | policy | hit ratio, 2nd half | hit ratio, all | top-k bound | keys held | used_memory MiB | RSS MiB | peak RSS MiB | RSS − empty RSS, B/key | evicted | replay s |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let late = (requests - requests / 2).max(1) as f64;
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.4} | {:.4} | {:.4} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {} | {:.1} |",
            r.server.name(),
            r.policy,
            r.hits.late_hits as f64 / late,
            r.hits.hits as f64 / requests.max(1) as f64,
            top_k_ratio(zipf, r.keys),
            r.keys,
            r.used_memory as f64 / MIB,
            r.rss as f64 / MIB,
            r.peak_rss as f64 / MIB,
            r.rss.saturating_sub(r.rss_empty) as f64 / r.keys.max(1) as f64,
            r.evicted,
            r.secs,
        );
    }
    out
}

fn list(s: &str) -> Vec<&str> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn main() -> ExitCode {
    cachalot_benches::exit_code(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let keys = u32::try_from(args.keys).map_err(|_| "--keys must fit in 32 bits")?;
    let contenders: Vec<(Server, &str)> = list(&args.redis_policies)
        .into_iter()
        .map(|p| (Server::Redis, p))
        .chain(
            list(&args.cachalot_policies)
                .into_iter()
                .map(|p| (Server::Cachalot, p)),
        )
        .collect();
    let mut stdout = std::io::stdout().lock();
    for alpha in list(&args.alphas) {
        let alpha: f64 = alpha.parse().map_err(|_| format!("bad alpha {alpha:?}"))?;
        let zipf = Zipf::new(keys as usize, alpha);
        let mut rng = StdRng::seed_from_u64(args.seed);
        let trace: Vec<u32> = (0..args.requests)
            .map(|_| zipf.sample(&mut rng) as u32)
            .collect();
        let distinct = trace.iter().collect::<HashSet<_>>().len();
        let mut rows = Vec::new();
        for &(server, policy) in &contenders {
            let row = run_one(server, policy, &trace, &args)?;
            eprintln!(
                "zipf {alpha}: {} {policy}: hit ratio {:.4} (2nd half), {} keys, RSS {:.1} MiB, {:.1} s, {:.1} requests per round trip",
                server.name(),
                row.hits.late_hits as f64 / (args.requests - args.requests / 2).max(1) as f64,
                row.keys,
                row.rss as f64 / MIB,
                row.secs,
                args.requests as f64 / row.hits.batches.max(1) as f64,
            );
            rows.push(row);
        }
        let cachalot_bound = args
            .cachalot_maxmemory
            .as_ref()
            .map_or(String::new(), |m| format!(" (cachalot: {m})"));
        let _ = writeln!(
            stdout,
            "\nZipf α = {alpha}, {} keys ({distinct} requested), {} requests, {}-byte values, maxmemory {}{cachalot_bound}, seed {}:\n",
            args.keys, args.requests, args.value_size, args.maxmemory, args.seed
        );
        let _ = write!(stdout, "{}", table(&rows, args.requests, &zipf));
        let _ = stdout.flush();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_ends_before_its_first_repeated_key() {
        let mut seen = HashSet::new();
        let cases: [(&[u32], usize, usize); 6] = [
            (&[1, 2, 3, 4], 10, 4),
            (&[1, 2, 3, 4], 3, 3),
            (&[1, 2, 1, 3], 10, 2),
            (&[5, 5, 5], 10, 1),
            (&[], 10, 0),
            (&[7, 8], 0, 1),
        ];
        for (trace, max, want) in cases {
            assert_eq!(
                batch_len(trace, max, &mut seen),
                want,
                "{trace:?} max {max}"
            );
        }
    }

    #[test]
    fn info_and_status_fields_parse() {
        let info = "# Memory\r\nused_memory:1234\r\nused_memory_human:1.21K\r\n";
        assert_eq!(info_field(info, "used_memory"), Some(1234));
        assert_eq!(info_field(info, "used_memory_human"), None);
        assert_eq!(info_field(info, "maxmemory"), None);
        let status = "Name:\tredis-server\nVmHWM:\t   2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(status_bytes(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(status_bytes(status, "VmHWM"), Some(2048 * 1024));
        assert_eq!(status_bytes(status, "Name"), None);
    }

    #[test]
    fn the_top_k_bound_grows_to_one() {
        let zipf = Zipf::new(100, 1.0);
        assert_eq!(top_k_ratio(&zipf, 0), 0.0);
        assert!((top_k_ratio(&zipf, 1) - zipf.share(0)).abs() < 1e-12);
        assert!(top_k_ratio(&zipf, 10) < top_k_ratio(&zipf, 20));
        assert!((top_k_ratio(&zipf, 100) - 1.0).abs() < 1e-9);
        assert!((top_k_ratio(&zipf, 1_000) - 1.0).abs() < 1e-9);
    }
}
