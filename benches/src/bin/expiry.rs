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
//! Time is a [`ManualClock`] moved one millisecond at a time, with `rate / 1000` writes in
//! each. Every [`ExpirySchedule::period`] of that clock a tick runs exactly as the server's
//! cron runs it (the same schedule, steps and budgets, minus the yields); each step, one
//! [`Cache::sample_expired`] or [`Cache::sweep_expired`] call, is timed with [`Instant`]
//! ("checks/s" counts the sweep's checks, "removed/s" both). A step is what the node runs
//! between two yields, so its duration bounds both the pause the sweep causes and each of
//! its shard lock holds. The writes keep to the simulated rate however long the sweep
//! takes; "sweep CPU" is the sweep's real time over the simulated time.
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
//! expired entries is measured ([`Cache::expired_usage`]).
//!
//! ```sh
//! cargo run --release -p cachalot-benches --bin expiry -- --keys 5000000 --markdown
//! cargo run --release -p cachalot-benches --bin expiry -- --keys 1000000 --max-ttl-secs 10
//! ```

use std::error::Error;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachalot_benches::table::render;
use cachalot_store::{Cache, ExpirySchedule, ExpiryStep, ManualClock, Policy};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Start of the manual clock (unix ms, November 2023): any fixed time works.
const CLOCK_START_MILLIS: u64 = 1_700_000_000_000;

/// Where Linux reports the calling thread's scheduler statistics: time on CPU, time
/// waiting to run (the run delay) and timeslices, in nanoseconds.
const SCHEDSTAT_PATH: &str = "/proc/thread-self/schedstat";

/// Where Linux reports CPU time by kind; its first line sums all CPUs.
const PROC_STAT_PATH: &str = "/proc/stat";

/// Clock ticks per second of `/proc/stat` (`USER_HZ`): 100 on every mainstream Linux
/// architecture.
const USER_HZ: u64 = 100;

/// Room for that file's one line: three decimal `u64`s.
const SCHEDSTAT_BYTES: usize = 64;

/// The longest pause the sweep should cause (the issue's target): steps longer than this
/// are counted.
const MAX_PAUSE_MICROS: u64 = 1_000;

/// Bytes a key weighs: keys are `u64`s, standing for short string keys.
const KEY_BYTES: u64 = 8;

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
    /// Print markdown tables.
    #[arg(long)]
    markdown: bool,
    /// Seed of the workload.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// One run's settings.
#[derive(Clone, Debug)]
struct Scenario {
    /// Live keys wanted in steady state.
    keys: u64,
    rate: u64,
    persistent: f64,
    ttl: TtlRange,
    batch: Option<Batch>,
    value_bytes: (usize, usize),
    warmup_secs: u64,
    measure_secs: u64,
    sample_ms: u64,
    hz: u32,
    policy: Policy,
    shards: Option<usize>,
    /// Whether to read the run delay around each step.
    run_delay: bool,
    /// Whether the budget counts wall time even when the run delay is known.
    wall_budget: bool,
    /// Whether to print every sample to stderr.
    series: bool,
    seed: u64,
}

/// Keys written at once, with one TTL, at a fixed interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Batch {
    keys: u64,
    every_secs: u64,
    ttl_secs: u64,
}

/// TTLs drawn log-uniformly between two bounds, in milliseconds: as many 1–2 s TTLs as
/// 30–60 s ones.
#[derive(Clone, Copy, Debug, PartialEq)]
struct TtlRange {
    min_millis: f64,
    max_millis: f64,
}

impl TtlRange {
    fn new(min_secs: f64, max_secs: f64) -> Result<Self, String> {
        if !(min_secs >= 0.001 && max_secs >= min_secs && max_secs.is_finite()) {
            return Err(format!(
                "TTLs must satisfy 0.001 <= min ({min_secs}) <= max ({max_secs})"
            ));
        }
        Ok(Self {
            min_millis: min_secs * 1_000.0,
            max_millis: max_secs * 1_000.0,
        })
    }

    fn sample(self, rng: &mut impl Rng) -> Duration {
        let (lo, hi) = (self.min_millis.ln(), self.max_millis.ln());
        let millis = (lo + rng.gen::<f64>() * (hi - lo)).exp();
        Duration::from_millis(millis.round() as u64)
    }

    /// Mean TTL in seconds: `(max − min) / ln(max / min)` for a log-uniform draw.
    fn mean_secs(self) -> f64 {
        let (lo, hi) = (self.min_millis, self.max_millis);
        if hi - lo < 1.0 {
            return lo / 1_000.0;
        }
        (hi - lo) / (hi / lo).ln() / 1_000.0
    }
}

impl Scenario {
    /// Keys with a TTL alive at any instant in steady state (Little's law).
    fn volatile_keys(&self) -> u64 {
        let written = self.rate as f64 * (1.0 - self.persistent) * self.ttl.mean_secs();
        let batched = self.batch.map_or(0.0, |b| {
            b.keys as f64 * b.ttl_secs as f64 / b.every_secs.max(1) as f64
        });
        (written + batched).round() as u64
    }

    /// Persistent keys: what the volatile keys leave of `keys`.
    ///
    /// # Errors
    /// When the volatile keys alone outnumber `keys`, or persistent writes have no pool.
    fn pool(&self) -> Result<u64, String> {
        let volatile = self.volatile_keys();
        let pool = self.keys.checked_sub(volatile).ok_or_else(|| {
            format!(
                "{} writes/s with {:.1} s mean TTL keep {volatile} keys with a TTL alive, \
                 more than --keys {}; lower --rate or --max-ttl-secs",
                self.rate,
                self.ttl.mean_secs(),
                self.keys
            )
        })?;
        if pool == 0 && self.persistent > 0.0 {
            return Err(format!(
                "no room for persistent keys in --keys {}",
                self.keys
            ));
        }
        Ok(pool)
    }
}

/// What one run measured (after the warm-up).
#[derive(Debug, Default)]
struct Outcome {
    pool: u64,
    /// Per sample: live entries, expired entries, expired weight ÷ weighted size.
    samples: Vec<(u64, u64, f64)>,
    /// Duration of every sweep step.
    steps: Vec<Duration>,
    /// The same minus the run delay that fell in it; empty without schedstat.
    on_cpu: Vec<Duration>,
    /// Steps during which the thread waited for a CPU.
    preempted: u64,
    /// Sweep time of every tick (its steps' sum).
    ticks: Vec<Duration>,
    checks: u64,
    removed: u64,
    /// Real time of the whole run, warm-up and sampling included.
    wall: Duration,
}

fn run_scenario(s: &Scenario) -> Result<Outcome, String> {
    let pool = s.pool()?;
    let started = Instant::now();
    let clock = Arc::new(ManualClock::new(CLOCK_START_MILLIS));
    let mut builder = Cache::<u64, Box<[u8]>>::builder()
        .policy(s.policy)
        .weigher(|_, v| KEY_BYTES + v.len() as u64)
        .clock(clock.clone());
    if let Some(n) = s.shards {
        builder = builder.shards(n);
    }
    let cache = builder.build().map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(s.seed);
    let (vmin, vmax) = s.value_bytes;
    let value = |rng: &mut StdRng| vec![0u8; rng.gen_range(vmin..=vmax)].into_boxed_slice();
    for key in 0..pool {
        cache
            .insert(key, value(&mut rng))
            .map_err(|e| e.to_string())?;
    }

    let schedule = ExpirySchedule::new(s.hz);
    let period_ms = (schedule.period().as_millis() as u64).max(1);
    let warmup_ms = s.warmup_secs * 1_000;
    let total_ms = warmup_ms + s.measure_secs * 1_000;
    let writes_per_ms = s.rate as f64 / 1_000.0;
    let mut owed = 0.0;
    let mut next_key = pool;
    let mut out = Outcome {
        pool,
        ..Outcome::default()
    };
    let mut delay = RunDelay::open(s.run_delay);
    // Checks, removals and sweep time since the last sample, for `--series`.
    let mut since = (0, 0, Duration::ZERO);
    if s.series {
        eprintln!("seconds,live,expired,expired_weight_share,checks,removed,sweep_ms");
    }
    for ms in 1..=total_ms {
        clock.advance(Duration::from_millis(1));
        owed += writes_per_ms;
        while owed >= 1.0 {
            owed -= 1.0;
            if pool > 0 && rng.gen::<f64>() < s.persistent {
                let key = rng.gen_range(0..pool);
                cache
                    .insert(key, value(&mut rng))
                    .map_err(|e| e.to_string())?;
            } else {
                let ttl = s.ttl.sample(&mut rng);
                cache
                    .insert_with_ttl(next_key, value(&mut rng), ttl)
                    .map_err(|e| e.to_string())?;
                next_key += 1;
            }
        }
        if let Some(b) = s.batch.filter(|b| ms % (b.every_secs.max(1) * 1_000) == 0) {
            for _ in 0..b.keys {
                let ttl = Duration::from_secs(b.ttl_secs);
                cache
                    .insert_with_ttl(next_key, value(&mut rng), ttl)
                    .map_err(|e| e.to_string())?;
                next_key += 1;
            }
        }
        let measuring = ms > warmup_ms;
        if ms % period_ms == 0 {
            let record = measuring.then_some(&mut out);
            let (checked, removed, spent) =
                run_tick(&cache, schedule, &mut delay, s.wall_budget, record);
            since.0 += checked;
            since.1 += removed;
            since.2 += spent;
        }
        if (measuring || s.series) && ms % s.sample_ms.max(1) == 0 {
            let expired = cache.expired_usage();
            let weight = cache.weighted_size().max(1);
            let sample = (
                cache.len() - expired.entries,
                expired.entries,
                expired.weight as f64 / weight as f64,
            );
            if s.series {
                let (checked, removed, spent) = std::mem::take(&mut since);
                eprintln!(
                    "{:.1},{},{},{:.4},{checked},{removed},{:.1}",
                    ms as f64 / 1_000.0,
                    sample.0,
                    sample.1,
                    sample.2,
                    spent.as_secs_f64() * 1e3
                );
            }
            if measuring {
                out.samples.push(sample);
            }
        }
    }
    out.wall = started.elapsed();
    Ok(out)
}

/// One tick of the sweep, driven as `cachalot_server::cron` drives it (without the yields),
/// recording into `out` when given; returns the tick's checks, removals and time.
///
/// The schedule's budget is charged each step's time on CPU (its duration minus the run
/// delay that fell in it) unless `wall_budget` or the run delay is unknown: on a shared
/// machine, time spent preempted would otherwise eat the budget, which on a node with its
/// own core does not happen.
fn run_tick<V>(
    cache: &Cache<u64, V>,
    schedule: ExpirySchedule,
    delay: &mut RunDelay,
    wall_budget: bool,
    mut out: Option<&mut Outcome>,
) -> (u64, u64, Duration)
where
    V: Send + Sync + 'static,
{
    let mut tick = schedule.tick();
    let (mut checked, mut reclaimed) = (0, 0);
    let mut spent = Duration::ZERO;
    while let Some(step) = tick.next_step() {
        let delay_before = delay.read();
        let started = Instant::now();
        let removed = match step {
            ExpiryStep::Sample(samples) => cache.sample_expired(samples),
            ExpiryStep::Sweep(checks) => cache.sweep_expired(checks),
        };
        let took = started.elapsed();
        let delay_after = delay.read();
        let on_cpu = match (delay_before, delay_after) {
            (Some(before), Some(after)) => Some(took.saturating_sub(after.saturating_sub(before))),
            _ => None,
        };
        let charged = match on_cpu {
            Some(t) if !wall_budget => t,
            _ => took,
        };
        tick.record(removed, charged);
        spent += took;
        reclaimed += removed as u64;
        let checks = match step {
            ExpiryStep::Sweep(checks) => checks as u64,
            ExpiryStep::Sample(_) => 0,
        };
        checked += checks;
        if let Some(o) = out.as_deref_mut() {
            o.steps.push(took);
            if let Some(t) = on_cpu {
                o.preempted += u64::from(t < took);
                o.on_cpu.push(t);
            }
            o.checks += checks;
            o.removed += removed as u64;
        }
    }
    if let Some(o) = out {
        o.ticks.push(spent);
    }
    (checked, reclaimed, spent)
}

/// Reads the calling thread's run delay: the file stays open and each read is one
/// `pread`, so measuring disturbs the sweep as little as it can.
struct RunDelay {
    /// `None` when the kernel does not report it or measuring is off.
    file: Option<File>,
    buf: [u8; SCHEDSTAT_BYTES],
}

impl RunDelay {
    fn open(enabled: bool) -> Self {
        Self {
            file: enabled.then(|| File::open(SCHEDSTAT_PATH).ok()).flatten(),
            buf: [0; SCHEDSTAT_BYTES],
        }
    }

    /// The run delay so far, if known.
    fn read(&mut self) -> Option<Duration> {
        let n = self.file.as_ref()?.read_at(&mut self.buf, 0).ok()?;
        let stat = std::str::from_utf8(self.buf.get(..n)?).ok()?;
        let nanos = stat.split_whitespace().nth(1)?.parse().ok()?;
        Some(Duration::from_nanos(nanos))
    }
}

/// CPU time the hypervisor gave to others while this machine's CPUs wanted to run (steal
/// time, summed over CPUs), if reported: a guest sees it as time on CPU, so a step that
/// was "on CPU" for long may have been stolen from.
fn host_steal() -> Option<Duration> {
    let stat = std::fs::read_to_string(PROC_STAT_PATH).ok()?;
    let ticks: u64 = stat
        .lines()
        .next()?
        .split_whitespace()
        .nth(8)?
        .parse()
        .ok()?;
    Some(Duration::from_millis(ticks * 1_000 / USER_HZ))
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
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "> 1 ms",
        "on CPU: p99 µs",
        "p99.9 µs",
        "max µs",
        "> 1 ms",
    ]
    .map(str::to_owned)
    .to_vec()];
    for (s, o) in runs {
        let mut steps = o.steps.clone();
        steps.sort_unstable();
        let mut on_cpu = o.on_cpu.clone();
        on_cpu.sort_unstable();
        let cpu = |p: f64| {
            if on_cpu.is_empty() {
                "-".to_owned()
            } else {
                micros(quantile(&on_cpu, p))
            }
        };
        let over = |v: &[Duration]| {
            v.iter()
                .filter(|&&d| d > Duration::from_micros(MAX_PAUSE_MICROS))
                .count()
                .to_string()
        };
        let mut row = label(s);
        row.extend([
            steps.len().to_string(),
            o.preempted.to_string(),
            micros(quantile(&steps, 0.5)),
            micros(quantile(&steps, 0.99)),
            micros(quantile(&steps, 0.999)),
            micros(quantile(&steps, 1.0)),
            over(&steps),
            cpu(0.99),
            cpu(0.999),
            cpu(1.0),
            if on_cpu.is_empty() {
                "-".to_owned()
            } else {
                over(&on_cpu)
            },
        ]);
        rows.push(row);
    }
    rows
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

fn parse_list<T>(list: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse)
        .collect()
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
            seed: args.seed,
        })
        .collect();
    for s in &all {
        s.pool()?;
    }
    Ok(all)
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let mut runs = Vec::new();
    for s in scenarios(&args)? {
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

    fn small() -> Scenario {
        Scenario {
            keys: 5_000,
            rate: 2_000,
            persistent: 0.1,
            ttl: TtlRange::new(0.1, 1.0).expect("valid"),
            batch: None,
            value_bytes: (1, 8),
            warmup_secs: 2,
            measure_secs: 3,
            sample_ms: 500,
            hz: 10,
            policy: Policy::no_eviction(),
            shards: Some(4),
            run_delay: true,
            wall_budget: false,
            series: false,
            seed: 1,
        }
    }

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
    fn ttls_stay_in_range_and_average_as_computed() {
        let range = TtlRange::new(1.0, 60.0).expect("valid");
        let mut rng = StdRng::seed_from_u64(7);
        let n = 100_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let t = range.sample(&mut rng);
            assert!((1_000..=60_000).contains(&t.as_millis()), "{t:?}");
            sum += t.as_secs_f64();
        }
        let mean = sum / f64::from(n);
        assert!((mean / range.mean_secs() - 1.0).abs() < 0.02, "{mean}");
        assert_eq!(TtlRange::new(5.0, 5.0).map(TtlRange::mean_secs), Ok(5.0));
        assert!(TtlRange::new(2.0, 1.0).is_err());
        assert!(TtlRange::new(0.0, 1.0).is_err());
    }

    #[test]
    fn the_pool_fills_what_the_volatile_keys_leave() {
        let s = Scenario {
            keys: 1_000_000,
            rate: 100_000,
            persistent: 0.5,
            ttl: TtlRange::new(10.0, 10.0).expect("valid"),
            ..small()
        };
        assert_eq!(s.volatile_keys(), 500_000);
        assert_eq!(s.pool(), Ok(500_000));
        let crowded = Scenario {
            keys: 400_000,
            ..s.clone()
        };
        assert!(crowded.pool().is_err());
        let exact = Scenario { keys: 500_000, ..s };
        assert!(exact.pool().is_err());
    }

    #[test]
    fn a_small_run_sweeps_every_tick_and_samples_after_the_warm_up() {
        let s = small();
        let out = run_scenario(&s).expect("runs");
        assert_eq!(out.ticks.len(), 30);
        assert!(out.steps.len() >= out.ticks.len());
        assert_eq!(out.samples.len(), 6);
        assert!(out.removed > 0 && out.removed <= out.checks);
        for &(live, _, share) in &out.samples {
            assert!((0.0..1.0).contains(&share), "{share}");
            // About 1,000 live keys with a TTL plus the pool of 4,000.
            assert!((4_500..5_500).contains(&live), "{live}");
        }
        let runs = [(s, out)];
        assert_eq!(memory_table(&runs).len(), 2);
        assert_eq!(step_table(&runs).len(), 2);
        assert_eq!(work_table(&runs).len(), 2);
    }

    #[test]
    fn batches_add_keys_that_expire_together() {
        let s = Scenario {
            batch: Some(Batch {
                keys: 1_000,
                every_secs: 1,
                ttl_secs: 1,
            }),
            ..small()
        };
        assert_eq!(s.pool(), Ok(3_296));
        let out = run_scenario(&s).expect("runs");
        for &(live, _, _) in &out.samples {
            // The pool, ~700 keys with random TTLs and the one batch alive at a time.
            assert!((4_500..5_500).contains(&live), "{live}");
        }
        // Three seconds measured: three batches expired, and the other writes.
        assert!(out.removed > 3_000, "{}", out.removed);
    }
}
