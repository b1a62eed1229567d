//! Active expiry in steady state: how much memory expired, never-read keys hold, and how
//! long each sweep step pauses the node. Prints tables for `docs/benchmarks.md`.
//!
//! Workload: a writer inserts keys with TTLs (log-uniform between `--min-ttl-secs` and
//! `--max-ttl-secs`) and, for a `--persistent` share of its writes, overwrites a random key
//! of a pool of keys without expiry. Nothing is ever read, so only the active sweep removes
//! expired keys. The pool is sized so that the cache holds `--keys` live keys in steady
//! state. Optionally, batches of `--batch-keys` keys with one TTL are written at once at a
//! fixed interval, like a bulk load; they expire in the same millisecond, so the sweep then
//! meets long runs of expired entries, its most expensive steps.
//!
//! Time is a [`ManualClock`](cachalot_store::ManualClock) moved one millisecond at a
//! time, with `rate / 1000` writes in each. Every
//! [`ExpirySchedule::period`](cachalot_store::ExpirySchedule::period) of that clock a tick
//! runs exactly as the server's cron runs it (the same schedule, steps and budgets, minus
//! the yields); each step, one [`Cache::sample_expired`](cachalot_store::Cache::sample_expired)
//! or [`Cache::sweep_expired`](cachalot_store::Cache::sweep_expired) call, is timed with
//! [`Instant`](std::time::Instant) ("checks/s" counts the sweep's checks, "removed/s"
//! both). A step is what the node runs between two yields, so its duration bounds both the
//! pause the sweep causes and each of its shard lock holds. The writes keep to the
//! simulated rate however long the sweep takes; "sweep CPU" is the sweep's real time over
//! the simulated time.
//!
//! On a shared machine a step can be preempted: the thread's run delay
//! (`/proc/thread-self/schedstat`, time spent runnable but not running) is read around each
//! step, and "on CPU" is the step's duration minus the delay that fell in it. The
//! schedule's budget is charged that time on CPU, not the wall time the server's cron
//! charges (`--wall-budget` does that): preemption by neighbours would otherwise eat the
//! budget, which on a node with its own core it does not. Hypervisor steal time is not
//! seen per thread and counts as time on CPU; the host's total steal time during each run
//! is printed with its summary line.
//!
//! After the warm-up, every `--sample-ms` the share of the weighted size held by already
//! expired entries is measured
//! ([`Cache::expired_usage`](cachalot_store::Cache::expired_usage)).
//!
//! No two such runs make the same steps: a slow step leaves less budget to the steps after
//! it, and the store hashes and samples with the OS's randomness. `--replayable` seeds the
//! store and charges each step a modelled cost, so every run of the same arguments makes
//! the same steps; `--steps-out` writes them with their times, and `--combine` takes each
//! step's least time over several such runs: its cost without the interruptions of the
//! machine, which do not strike the same step twice.
//!
//! The workload and the simulation live in [`cachalot_benches::expiry`]; this file has the
//! arguments and the tables.
//!
//! ```sh
//! cargo run --release -p cachalot-benches --bin expiry -- --keys 5000000 --markdown
//! cargo run --release -p cachalot-benches --bin expiry -- --keys 1000000 --max-ttl-secs 10
//! # the same work three times, then each step's least time
//! for i in 1 2 3; do
//!     cargo run --release -p cachalot-benches --bin expiry -- --keys 5000000 --replayable \
//!         --steps-out r.$i.csv
//! done
//! cargo run --release -p cachalot-benches --bin expiry -- --combine r.1.csv,r.2.csv,r.3.csv
//! ```

use std::error::Error;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cachalot_benches::expiry::{
    control_steps, host_steal, least_of_runs, read_steps, run_scenario, write_steps, Batch,
    Outcome, Scenario, TtlRange,
};
use cachalot_benches::parse_list;
use cachalot_benches::table::render;
use cachalot_store::{ExpiryStep, Policy};
use clap::Parser;

/// The longest pause the sweep should cause (the issue's target): steps longer than this
/// are counted.
const MAX_PAUSE_MICROS: u64 = 1_000;

#[derive(Debug, Parser)]
#[command(about = "Memory held by expired keys and sweep pauses, in steady state")]
struct Args {
    /// Live keys in steady state (comma-separated: one run each); at least the keys with
    /// a TTL that the rate and TTLs keep alive.
    #[arg(long, default_value = "5000000")]
    keys: String,
    /// Writes per simulated second.
    #[arg(long, default_value_t = 200_000)]
    rate: u64,
    /// Share of writes that overwrite a persistent key; the rest insert new keys with a TTL.
    #[arg(long, default_value_t = 0.1)]
    persistent: f64,
    /// Shortest TTL, in seconds.
    #[arg(long, default_value_t = 1.0)]
    min_ttl_secs: f64,
    /// Longest TTL, in seconds.
    #[arg(long, default_value_t = 60.0)]
    max_ttl_secs: f64,
    /// Also write this many keys at once, all with the same TTL, every `--batch-every-secs`
    /// (a bulk load): they expire together, so the sweep meets runs of expired entries.
    #[arg(long, default_value_t = 0)]
    batch_keys: u64,
    /// Seconds between two batches.
    #[arg(long, default_value_t = 10)]
    batch_every_secs: u64,
    /// TTL of the batches' keys, in seconds.
    #[arg(long, default_value_t = 30)]
    batch_ttl_secs: u64,
    /// Value sizes, in bytes: uniform in `min,max`.
    #[arg(long, default_value = "16,256")]
    value_bytes: String,
    /// Simulated seconds before measuring [default: twice the longest TTL].
    #[arg(long)]
    warmup_secs: Option<u64>,
    /// Simulated seconds measured.
    #[arg(long, default_value_t = 120)]
    measure_secs: u64,
    /// Simulated milliseconds between two samples of the expired share.
    #[arg(long, default_value_t = 1_000)]
    sample_ms: u64,
    /// Expiry ticks per second (the server's `hz`).
    #[arg(long, default_value_t = 10)]
    hz: u32,
    /// Eviction policy (the server's default: noeviction; no bound is set anyway).
    #[arg(long, default_value = "noeviction")]
    policy: String,
    /// Shards [default: the engine's default, as the server].
    #[arg(long)]
    shards: Option<usize>,
    /// Don't read the run delay around each step (no "on CPU" columns, and the budget
    /// counts wall time).
    #[arg(long)]
    no_run_delay: bool,
    /// Charge the schedule's budget with each step's wall time, as the server does, instead
    /// of its time on CPU (wall time minus run delay).
    #[arg(long)]
    wall_budget: bool,
    /// Also print every sample, warm-up included, to stderr as CSV (the sweep's checks,
    /// removals and time since the previous sample too).
    #[arg(long)]
    series: bool,
    /// Instead of a workload, time `--control-secs` seconds of fixed-work steps (no store)
    /// the way sweep steps are timed, and print their step table: long steps there are the
    /// machine's.
    #[arg(long)]
    control_secs: Option<u64>,
    /// Rounds of arithmetic per control step (about 35 µs, a median sweep step, on the
    /// 2-core benchmark machine).
    #[arg(long, default_value_t = 20_000)]
    control_rounds: u64,
    /// Print every measured step over a millisecond of thread CPU time to stderr, with its
    /// work and the page faults it took.
    #[arg(long)]
    log_long_steps: bool,
    /// Print markdown tables.
    #[arg(long)]
    markdown: bool,
    /// Seed of the workload.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Make the run repeatable step for step: the store is seeded with `--seed` and the
    /// budget charged a modelled cost per step instead of measured time, so every such run
    /// of the same arguments makes the same steps (compare them with `--combine`).
    #[arg(long)]
    replayable: bool,
    /// Write every measured step (work, wall and thread CPU time) to this CSV file; one
    /// `--keys` value only.
    #[arg(long)]
    steps_out: Option<PathBuf>,
    /// Instead of a workload, read the `--steps-out` files of replayable runs
    /// (comma-separated) and print each step's least time over the runs: what the step
    /// costs without the machine's interruptions, which do not strike the same step twice.
    #[arg(long)]
    combine: Option<String>,
}

/// The `p`-quantile (nearest rank) of sorted `v`; zero when empty.
fn quantile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn millis(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Row label: keys, rate and TTL range.
fn label(s: &Scenario) -> Vec<String> {
    vec![
        format!("{:.1}M", s.keys as f64 / 1e6),
        format!("{}k/s", s.rate / 1_000),
        format!(
            "{}–{} s{}",
            s.ttl.min_millis / 1_000.0,
            s.ttl.max_millis / 1_000.0,
            s.batch.map_or(String::new(), |b| format!(
                "; {}k at once every {} s, {} s",
                b.keys / 1_000,
                b.every_secs,
                b.ttl_secs
            ))
        ),
    ]
}

fn memory_table(runs: &[(Scenario, Outcome)]) -> Vec<Vec<String>> {
    let mut rows = vec![[
        "live keys",
        "writes",
        "TTLs",
        "persistent keys",
        "live (mean)",
        "expired entries (mean / max)",
        "expired share of weight (mean / max)",
    ]
    .map(str::to_owned)
    .to_vec()];
    for (s, o) in runs {
        let n = o.samples.len().max(1) as f64;
        let live = o.samples.iter().map(|x| x.0 as f64).sum::<f64>() / n;
        let expired = o.samples.iter().map(|x| x.1 as f64).sum::<f64>() / n;
        let expired_max = o.samples.iter().map(|x| x.1).max().unwrap_or(0);
        let share = o.samples.iter().map(|x| x.2).sum::<f64>() / n;
        let share_max = o.samples.iter().map(|x| x.2).fold(0.0, f64::max);
        let mut row = label(s);
        row.extend([
            o.pool.to_string(),
            format!("{live:.0}"),
            format!("{expired:.0} / {expired_max}"),
            format!("{:.2}% / {:.2}%", share * 100.0, share_max * 100.0),
        ]);
        rows.push(row);
    }
    rows
}

fn step_table(runs: &[(Scenario, Outcome)]) -> Vec<Vec<String>> {
    let mut rows = vec![[
        "live keys",
        "writes",
        "TTLs",
        "steps",
        "preempted",
        "p50 µs",
    ]
    .into_iter()
    .chain(PAUSE_HEADERS.iter().flatten().copied())
    .map(str::to_owned)
    .collect::<Vec<_>>()];
    for (s, o) in runs {
        let mut row = label(s);
        row.extend(step_columns(o));
        rows.push(row);
    }
    rows
}

/// Steps, preempted steps, the median step and [`pause_columns`] of wall time, time on CPU
/// and thread CPU time.
fn step_columns(o: &Outcome) -> Vec<String> {
    let mut steps = o.steps.clone();
    steps.sort_unstable();
    let mut row = vec![
        steps.len().to_string(),
        o.preempted.to_string(),
        micros(quantile(&steps, 0.5)),
    ];
    row.extend(pause_columns(&steps));
    row.extend(pause_columns(&o.on_cpu));
    row.extend(pause_columns(&o.thread_cpu));
    row
}

/// Headers of [`pause_columns`] for wall time, time on CPU and thread CPU time.
const PAUSE_HEADERS: [[&str; 4]; 3] = [
    ["p99 µs", "p99.9 µs", "max µs", "> 1 ms"],
    ["on CPU: p99 µs", "p99.9 µs", "max µs", "> 1 ms"],
    ["thread CPU: p99 µs", "p99.9 µs", "max µs", "> 1 ms"],
];

/// p99, p99.9, max and the count over a millisecond of step times, or dashes when there
/// are none (the measurement was not available).
fn pause_columns(times: &[Duration]) -> [String; 4] {
    if times.is_empty() {
        return ["-", "-", "-", "-"].map(str::to_owned);
    }
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let over = sorted
        .iter()
        .filter(|&&d| d > Duration::from_micros(MAX_PAUSE_MICROS))
        .count();
    [
        micros(quantile(&sorted, 0.99)),
        micros(quantile(&sorted, 0.999)),
        micros(quantile(&sorted, 1.0)),
        over.to_string(),
    ]
}

fn work_table(runs: &[(Scenario, Outcome)]) -> Vec<Vec<String>> {
    let mut rows = vec![[
        "live keys",
        "writes",
        "TTLs",
        "sweep per tick: p50 ms",
        "p99 ms",
        "max ms",
        "checks/s",
        "removed/s",
        "sweep CPU",
    ]
    .map(str::to_owned)
    .to_vec()];
    for (s, o) in runs {
        let mut ticks = o.ticks.clone();
        ticks.sort_unstable();
        let secs = s.measure_secs.max(1) as f64;
        let busy: Duration = o.steps.iter().sum();
        let mut row = label(s);
        row.extend([
            millis(quantile(&ticks, 0.5)),
            millis(quantile(&ticks, 0.99)),
            millis(quantile(&ticks, 1.0)),
            format!("{:.0}", o.checks as f64 / secs),
            format!("{:.0}", o.removed as f64 / secs),
            format!("{:.1}%", busy.as_secs_f64() / secs * 100.0),
        ]);
        rows.push(row);
    }
    rows
}

/// The table of `--combine`: per run its steps over a millisecond, then the quantiles of
/// each step's least time over the runs.
fn replay_table(files: &[&Path]) -> Result<Vec<Vec<String>>, String> {
    let runs = files
        .iter()
        .map(|f| read_steps(f))
        .collect::<Result<Vec<_>, _>>()?;
    let replay = least_of_runs(&runs, Duration::from_micros(MAX_PAUSE_MICROS))?;
    let mut header: Vec<String> = [
        "runs",
        "steps",
        "> 1 ms thread CPU, per run",
        "in two runs or more",
    ]
    .map(str::to_owned)
    .to_vec();
    let quantiles = [
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "p99.99 µs",
        "max µs",
        "> 1 ms",
    ];
    for clock in ["least thread CPU", "least wall"] {
        header.extend(quantiles.iter().enumerate().map(|(i, q)| match i {
            0 => format!("{clock}: {q}"),
            _ => (*q).to_owned(),
        }));
    }
    header.push("longest step (least thread CPU)".to_owned());
    let mut row = vec![
        runs.len().to_string(),
        replay.least_cpu.len().to_string(),
        replay
            .over_per_run
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" / "),
        replay.over_in_two.to_string(),
    ];
    for least in [&replay.least_cpu, &replay.least_wall] {
        let mut sorted = least.clone();
        sorted.sort_unstable();
        row.extend([0.5, 0.99, 0.999, 0.9999, 1.0].map(|p| micros(quantile(&sorted, p))));
        let over = sorted
            .iter()
            .filter(|&&d| d > Duration::from_micros(MAX_PAUSE_MICROS))
            .count();
        row.push(over.to_string());
    }
    row.push(match replay.longest {
        Some((work, t)) => {
            let what = match work.step {
                ExpiryStep::Sample(n) => format!("{n} samples"),
                ExpiryStep::Sweep(n) => format!("{n} checks"),
            };
            format!("{what}, {} removed: {} µs", work.removed, micros(t))
        }
        None => "-".to_owned(),
    });
    Ok(vec![header, row])
}

fn scenarios(args: &Args) -> Result<Vec<Scenario>, String> {
    let keys = parse_list(&args.keys, |k| {
        k.parse::<u64>().map_err(|e| format!("--keys {k:?}: {e}"))
    })?;
    let sizes = parse_list(&args.value_bytes, |b| {
        b.parse::<usize>()
            .map_err(|e| format!("--value-bytes {b:?}: {e}"))
    })?;
    let value_bytes = match sizes[..] {
        [lo, hi] if lo <= hi => (lo, hi),
        _ => return Err("--value-bytes takes min,max with min <= max".to_owned()),
    };
    if !(0.0..=1.0).contains(&args.persistent) {
        return Err("--persistent is a share in [0, 1]".to_owned());
    }
    let policy = Policy::from_redis_name(&args.policy)
        .ok_or_else(|| format!("unknown policy {:?}", args.policy))?;
    let ttl = TtlRange::new(args.min_ttl_secs, args.max_ttl_secs)?;
    if args.batch_keys > 0 && (args.batch_every_secs == 0 || args.batch_ttl_secs == 0) {
        return Err("--batch-every-secs and --batch-ttl-secs must be positive".to_owned());
    }
    let batch = (args.batch_keys > 0).then_some(Batch {
        keys: args.batch_keys,
        every_secs: args.batch_every_secs,
        ttl_secs: args.batch_ttl_secs,
    });
    let warmup_secs = args
        .warmup_secs
        .unwrap_or(2 * args.max_ttl_secs.ceil() as u64);
    let all: Vec<Scenario> = keys
        .into_iter()
        .map(|keys| Scenario {
            keys,
            rate: args.rate,
            persistent: args.persistent,
            ttl,
            batch,
            value_bytes,
            warmup_secs,
            measure_secs: args.measure_secs,
            sample_ms: args.sample_ms,
            hz: args.hz,
            policy,
            shards: args.shards,
            run_delay: !args.no_run_delay,
            wall_budget: args.wall_budget,
            series: args.series,
            log_long_steps: args.log_long_steps,
            seed: args.seed,
            replayable: args.replayable,
        })
        .collect();
    for s in &all {
        s.pool()?;
    }
    Ok(all)
}

fn main() -> ExitCode {
    cachalot_benches::exit_code(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    if let Some(secs) = args.control_secs {
        let outcome = control_steps(secs, args.control_rounds);
        let rows = vec![
            ["steps", "preempted", "p50 µs"]
                .into_iter()
                .chain(PAUSE_HEADERS.iter().flatten().copied())
                .map(str::to_owned)
                .collect::<Vec<_>>(),
            step_columns(&outcome),
        ];
        writeln!(std::io::stdout().lock(), "{}", render(&rows, args.markdown))?;
        return Ok(());
    }
    if let Some(list) = &args.combine {
        let files: Vec<&Path> = list.split(',').map(Path::new).collect();
        let rows = replay_table(&files)?;
        writeln!(std::io::stdout().lock(), "{}", render(&rows, args.markdown))?;
        return Ok(());
    }
    let all = scenarios(&args)?;
    if args.steps_out.is_some() && all.len() != 1 {
        return Err("--steps-out takes one run: give --keys one value".into());
    }
    let mut runs = Vec::new();
    for s in all {
        let steal_before = host_steal();
        let outcome = run_scenario(&s)?;
        let steal = match (steal_before, host_steal()) {
            (Some(a), Some(b)) => format!("{:.1} s", b.saturating_sub(a).as_secs_f64()),
            _ => "unknown".to_owned(),
        };
        eprintln!(
            "{} keys at {}/s: {} simulated s in {:.1} s; host steal time meanwhile {steal}",
            s.keys,
            s.rate,
            s.warmup_secs + s.measure_secs,
            outcome.wall.as_secs_f64()
        );
        if let Some(path) = &args.steps_out {
            write_steps(&outcome, path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        runs.push((s, outcome));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", render(&memory_table(&runs), args.markdown))?;
    writeln!(out, "{}", render(&step_table(&runs), args.markdown))?;
    writeln!(out, "{}", render(&work_table(&runs), args.markdown))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_ranks() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_micros(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_micros(100));
        assert_eq!(quantile(&v, 0.0), Duration::from_micros(1));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn each_table_has_a_header_and_a_row_per_run() {
        let s = Scenario::small();
        let out = run_scenario(&s).expect("runs");
        let runs = [(s.clone(), out), (s, Outcome::default())];
        assert_eq!(memory_table(&runs).len(), 3);
        assert_eq!(step_table(&runs).len(), 3);
        assert_eq!(work_table(&runs).len(), 3);
    }
}
