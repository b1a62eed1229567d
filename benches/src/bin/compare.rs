//! Runs redis-benchmark against `cachalot-server` and `redis-server` in the same run and
//! prints a markdown table for `docs/benchmarks.md`.
//!
//! Each server is pinned to one core and redis-benchmark to the other (`taskset`). The two
//! servers alternate over several rounds and each cell is the median over rounds, because
//! one cell can swing ±15% between identical runs on a shared 2-core machine. Besides rps
//! and latency, it reports each server's CPU time per request, read from
//! `/proc/<pid>/stat` before and after each test: steadier than rps.
//!
//! ```sh
//! cargo build --release -p cachalot-server
//! cargo run --release -p cachalot-benches --bin compare -- --rounds 5
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use cachalot_benches::process::{free_port, Running};
use clap::Parser;

/// Clock ticks per second in `/proc/<pid>/stat` (USER_HZ, 100 on common Linux builds).
const TICKS_PER_SEC: f64 = 100.0;
/// How long a server may take to accept connections.
const START_TIMEOUT_SECS: u64 = 10;

#[derive(Debug, Parser)]
#[command(about = "Compare cachalot-server with redis-server using redis-benchmark")]
struct Args {
    /// cachalot-server binary.
    #[arg(long, default_value = "target/release/cachalot-server")]
    cachalot_bin: PathBuf,
    /// redis-server binary.
    #[arg(long, default_value = "redis-server")]
    redis_bin: PathBuf,
    /// redis-benchmark binary.
    #[arg(long, default_value = "redis-benchmark")]
    benchmark_bin: PathBuf,
    /// Rounds; the servers alternate which goes first.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Requests per test.
    #[arg(long, default_value_t = 200_000)]
    requests: u64,
    /// Tests, as redis-benchmark -t names.
    #[arg(long, default_value = "set,get,incr,mset")]
    tests: String,
    /// Pipeline depths.
    #[arg(long, default_value = "1,16")]
    pipelines: String,
    /// Parallel clients.
    #[arg(long, default_value_t = 50)]
    clients: u32,
    /// Keyspace size for random keys (-r).
    #[arg(long, default_value_t = 100_000)]
    keyspace: u64,
    /// Value size in bytes (-d).
    #[arg(long, default_value_t = 64)]
    data_size: u32,
    /// Core the server is pinned to.
    #[arg(long, default_value_t = 0)]
    server_core: u32,
    /// Core redis-benchmark is pinned to.
    #[arg(long, default_value_t = 1)]
    client_core: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Cachalot,
    Redis,
}

/// One measurement of one test on one server.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us_per_req: f64,
}

fn start(server: Server, args: &Args) -> Running {
    let port = free_port().expect("a free loopback port");
    let core = args.server_core.to_string();
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &core]);
    match server {
        Server::Cachalot => {
            cmd.arg(&args.cachalot_bin)
                .args(["--port", &port.to_string(), "--log-level", "warn"]);
        }
        Server::Redis => {
            cmd.arg(&args.redis_bin).args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
            ]);
        }
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    Running::spawn(&mut cmd, port, Duration::from_secs(START_TIMEOUT_SECS))
        .unwrap_or_else(|e| panic!("cannot start {server:?}: {e}"))
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / TICKS_PER_SEC
}

fn run_test(running: &Running, test: &str, pipeline: u32, args: &Args) -> Sample {
    let pid = running.pid();
    let before = cpu_seconds(pid);
    let out = Command::new("taskset")
        .args(["-c", &args.client_core.to_string()])
        .arg(&args.benchmark_bin)
        .args(["-h", "127.0.0.1", "-p", &running.port.to_string()])
        .args(["-c", &args.clients.to_string()])
        .args(["-r", &args.keyspace.to_string()])
        .args(["-d", &args.data_size.to_string()])
        .args(["-n", &args.requests.to_string()])
        .args(["-P", &pipeline.to_string()])
        .args(["-t", test, "--csv"])
        .output()
        .expect("run redis-benchmark");
    let cpu = cpu_seconds(pid) - before;
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| !l.starts_with("\"test\"") && l.starts_with('"'))
        .unwrap_or_else(|| panic!("no CSV row from redis-benchmark for {test}: {text}"));
    let cols: Vec<f64> = row
        .split(',')
        .skip(1)
        .map(|c| c.trim_matches('"').parse().unwrap_or(0.0))
        .collect();
    // Columns: rps, avg, min, p50, p95, p99, max.
    Sample {
        rps: cols.first().copied().unwrap_or(0.0),
        p50_ms: cols.get(3).copied().unwrap_or(0.0),
        p99_ms: cols.get(5).copied().unwrap_or(0.0),
        cpu_us_per_req: cpu * 1e6 / args.requests as f64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() {
    let args = Args::parse();
    let tests: Vec<&str> = args.tests.split(',').collect();
    let pipelines: Vec<u32> = args
        .pipelines
        .split(',')
        .map(|p| p.trim().parse().expect("pipeline depth"))
        .collect();
    // samples[server][pipeline][test] = one Sample per round
    let mut samples = vec![vec![vec![Vec::<Sample>::new(); tests.len()]; pipelines.len()]; 2];
    for round in 0..args.rounds {
        let order = if round % 2 == 0 {
            [Server::Cachalot, Server::Redis]
        } else {
            [Server::Redis, Server::Cachalot]
        };
        for server in order {
            let running = start(server, &args);
            for (pi, &p) in pipelines.iter().enumerate() {
                for (ti, test) in tests.iter().enumerate() {
                    let s = run_test(&running, test, p, &args);
                    eprintln!(
                        "round {round} {server:?} {test} P{p}: {:.0} rps, p50 {:.3} ms, p99 {:.3} ms, {:.2} µs CPU/req",
                        s.rps, s.p50_ms, s.p99_ms, s.cpu_us_per_req
                    );
                    samples[server as usize][pi][ti].push(s);
                }
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "| test | pipeline | cachalot rps | redis rps | rps ratio | cachalot p50 / p99 ms | redis p50 / p99 ms | cachalot CPU µs/req | redis CPU µs/req | CPU ratio (redis ÷ cachalot) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for (pi, p) in pipelines.iter().enumerate() {
        for (ti, test) in tests.iter().enumerate() {
            let m = |server: Server, f: fn(&Sample) -> f64| {
                median(samples[server as usize][pi][ti].iter().map(f).collect())
            };
            let (c_rps, r_rps) = (m(Server::Cachalot, |s| s.rps), m(Server::Redis, |s| s.rps));
            let (c_cpu, r_cpu) = (
                m(Server::Cachalot, |s| s.cpu_us_per_req),
                m(Server::Redis, |s| s.cpu_us_per_req),
            );
            let _ = writeln!(
                out,
                "| {} | {p} | {c_rps:.0} | {r_rps:.0} | {:.2} | {:.3} / {:.3} | {:.3} / {:.3} | {c_cpu:.2} | {r_cpu:.2} | {:.2} |",
                test.to_uppercase(),
                c_rps / r_rps.max(1.0),
                m(Server::Cachalot, |s| s.p50_ms),
                m(Server::Cachalot, |s| s.p99_ms),
                m(Server::Redis, |s| s.p50_ms),
                m(Server::Redis, |s| s.p99_ms),
                r_cpu / c_cpu.max(1e-9),
            );
        }
    }
}
