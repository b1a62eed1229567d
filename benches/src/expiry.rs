//! The expiry harness (`src/bin/expiry.rs`): a workload of keys with TTLs that nobody
//! reads, run against the store on a manual clock while the active sweep runs on the
//! server's schedule, and what it measures (the memory held by expired entries, each sweep
//! step's duration).
//!
//! Everything here is deterministic for a seed except the time measurements: the sweep's
//! work depends on how long its steps take (its budget is time), and the store seeds its
//! hasher from the OS. A [replayable](Scenario::replayable) run removes both, so that
//! several runs can be compared step by step ([`least_of_runs`]).

use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachalot_store::{Cache, ExpirySchedule, ExpiryStep, ExpiryTick, ManualClock, Policy};
use nix::time::{clock_gettime, ClockId};
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

/// Bytes a key weighs: keys are `u64`s, standing for short string keys.
const KEY_BYTES: u64 = 8;

/// What a replayable run charges the budget per check of a sweep step, per sample of a
/// sample step and per entry either removed, in nanoseconds: what the steps cost on the
/// 2-core benchmark machine (a least-squares line through the thread CPU time of each
/// kind of step against its removals, over the 655,587 steps of a measured 5M-key run,
/// 2026-12-04), so that the sweep does about as much per tick as when it charges measured
/// time.
const MODEL_NS_PER_CHECK: u64 = 15;
const MODEL_NS_PER_SAMPLE: u64 = 147;
const MODEL_NS_PER_REMOVAL: u64 = 815;

/// The time a replayable run charges `step` that removed `removed` entries.
pub fn modelled_cost(step: ExpiryStep, removed: usize) -> Duration {
    let looked = match step {
        ExpiryStep::Sweep(checks) => checks as u64 * MODEL_NS_PER_CHECK,
        ExpiryStep::Sample(samples) => samples as u64 * MODEL_NS_PER_SAMPLE,
    };
    Duration::from_nanos(looked + removed as u64 * MODEL_NS_PER_REMOVAL)
}

/// One run's settings.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Live keys wanted in steady state.
    pub keys: u64,
    /// Writes per simulated second.
    pub rate: u64,
    /// Share of writes that overwrite a persistent key.
    pub persistent: f64,
    /// TTLs of the other writes.
    pub ttl: TtlRange,
    /// Bulk loads on top of the writes, if any.
    pub batch: Option<Batch>,
    /// Value sizes in bytes, uniform in `(min, max)` inclusive.
    pub value_bytes: (usize, usize),
    /// Simulated seconds before measuring.
    pub warmup_secs: u64,
    /// Simulated seconds measured.
    pub measure_secs: u64,
    /// Simulated milliseconds between two samples of the expired share.
    pub sample_ms: u64,
    /// Expiry ticks per simulated second.
    pub hz: u32,
    /// The store's eviction policy (no bound is set).
    pub policy: Policy,
    /// Shards, or the engine's default.
    pub shards: Option<usize>,
    /// Whether to read the run delay around each step.
    pub run_delay: bool,
    /// Whether the budget counts wall time even when the run delay is known.
    pub wall_budget: bool,
    /// Whether to print every sample to stderr.
    pub series: bool,
    /// Print every measured step over a millisecond of thread CPU time to stderr, with its
    /// work and the page faults it took (read around every step, which costs a little).
    pub log_long_steps: bool,
    /// Seed of the workload, and with `replayable` of the store too.
    pub seed: u64,
    /// Whether the run does exactly the same work as every other replayable run of the
    /// same scenario: the store is built with `seed` ([`CacheBuilder::seed`]) and the
    /// budget is charged each step's [`modelled_cost`] instead of a measured time. The
    /// steps, and the allocations and frees in them, are then the same in every run, and
    /// only their times differ.
    ///
    /// [`CacheBuilder::seed`]: cachalot_store::CacheBuilder::seed
    pub replayable: bool,
}

/// Keys written at once, with one TTL, at a fixed interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Keys per batch.
    pub keys: u64,
    /// Simulated seconds between two batches.
    pub every_secs: u64,
    /// The batch's TTL, in seconds.
    pub ttl_secs: u64,
}

/// TTLs drawn log-uniformly between two bounds, in milliseconds: as many 1–2 s TTLs as
/// 30–60 s ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TtlRange {
    /// Shortest TTL.
    pub min_millis: f64,
    /// Longest TTL.
    pub max_millis: f64,
}

impl TtlRange {
    /// TTLs between `min_secs` and `max_secs`.
    ///
    /// # Errors
    /// When `min_secs` is under a millisecond or above `max_secs`.
    pub fn new(min_secs: f64, max_secs: f64) -> Result<Self, String> {
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

    /// One TTL, in whole milliseconds.
    pub fn sample(self, rng: &mut impl Rng) -> Duration {
        let (lo, hi) = (self.min_millis.ln(), self.max_millis.ln());
        let millis = (lo + rng.gen::<f64>() * (hi - lo)).exp();
        Duration::from_millis(millis.round() as u64)
    }

    /// Mean TTL in seconds: `(max − min) / ln(max / min)` for a log-uniform draw.
    pub fn mean_secs(self) -> f64 {
        let (lo, hi) = (self.min_millis, self.max_millis);
        if hi - lo < 1.0 {
            return lo / 1_000.0;
        }
        (hi - lo) / (hi / lo).ln() / 1_000.0
    }
}

impl Scenario {
    /// Keys with a TTL alive at any instant in steady state (Little's law).
    pub fn volatile_keys(&self) -> u64 {
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
    pub fn pool(&self) -> Result<u64, String> {
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

/// One measured step: what it was asked to do and what it removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepWork {
    /// The step.
    pub step: ExpiryStep,
    /// Entries it removed.
    pub removed: usize,
}

/// What one run measured (after the warm-up).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every measured step's work, in order (`steps[i]` is the duration of `work[i]`).
    pub work: Vec<StepWork>,
    /// Persistent keys the run kept.
    pub pool: u64,
    /// Per sample: live entries, expired entries, expired weight ÷ weighted size.
    pub samples: Vec<(u64, u64, f64)>,
    /// Duration of every sweep step.
    pub steps: Vec<Duration>,
    /// The same minus the run delay that fell in it; empty without schedstat.
    pub on_cpu: Vec<Duration>,
    /// The thread's own CPU time in every step (`CLOCK_THREAD_CPUTIME_ID`): neither time
    /// waiting for a CPU nor, in a guest kernel with paravirtual steal accounting, time the
    /// hypervisor ran something else; empty where the clock is not available.
    pub thread_cpu: Vec<Duration>,
    /// Steps during which the thread waited for a CPU.
    pub preempted: u64,
    /// Sweep time of every tick (its steps' sum).
    pub ticks: Vec<Duration>,
    /// Entries the sweep steps checked.
    pub checks: u64,
    /// Entries the sample and sweep steps removed.
    pub removed: u64,
    /// Real time of the whole run, warm-up and sampling included.
    pub wall: Duration,
}

/// Runs `s`: fills the persistent pool, then simulates its warm-up and measured time a
/// millisecond at a time (the writes, then a tick every period, then a sample when due).
///
/// # Errors
/// When the scenario does not fit ([`Scenario::pool`]) or the store refuses a write.
pub fn run_scenario(s: &Scenario) -> Result<Outcome, String> {
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
    if s.replayable {
        builder = builder.seed(s.seed);
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
    let mut previous = None;
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
            let mut tick = match &previous {
                Some(last) => schedule.next_tick(last),
                None => schedule.tick(),
            };
            let (checked, removed, spent) = run_tick(&cache, &mut tick, &mut delay, s, record);
            previous = Some(tick);
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

/// Runs `tick` as `cachalot_server::cron` does (without the yields), recording into `out`
/// when given; returns the tick's checks, removals and time.
///
/// The schedule's budget is charged each step's time on CPU (its duration minus the run
/// delay that fell in it) unless `s.wall_budget` or the run delay is unknown: on a shared
/// machine, time spent preempted would otherwise eat the budget, which on a node with its
/// own core does not happen.
fn run_tick<V>(
    cache: &Cache<u64, V>,
    tick: &mut ExpiryTick,
    delay: &mut RunDelay,
    s: &Scenario,
    mut out: Option<&mut Outcome>,
) -> (u64, u64, Duration)
where
    V: Send + Sync + 'static,
{
    let (mut checked, mut reclaimed) = (0, 0);
    let mut spent = Duration::ZERO;
    while let Some(step) = tick.next_step() {
        let log = s.log_long_steps && out.is_some();
        let faults_before = if log { page_faults() } else { None };
        let delay_before = delay.read();
        let cpu_before = thread_cpu_time();
        let started = Instant::now();
        let removed = match step {
            ExpiryStep::Sample(samples) => cache.sample_expired(samples),
            ExpiryStep::Sweep(checks) => cache.sweep_expired(checks),
        };
        let took = started.elapsed();
        let cpu_after = thread_cpu_time();
        let delay_after = delay.read();
        if let (true, Some(before), Some(after)) = (log, cpu_before, cpu_after) {
            let cpu = after.saturating_sub(before);
            if cpu > Duration::from_millis(1) {
                let faults = match (faults_before, page_faults()) {
                    (Some((a, b)), Some((c, d))) => format!("{} minor, {} major", c - a, d - b),
                    _ => "unknown".to_owned(),
                };
                eprintln!(
                    "long step: {step:?}, {} µs thread CPU, {} µs wall, removed {removed}, page faults {faults}",
                    cpu.as_micros(),
                    took.as_micros()
                );
            }
        }
        let on_cpu = match (delay_before, delay_after) {
            (Some(before), Some(after)) => Some(took.saturating_sub(after.saturating_sub(before))),
            _ => None,
        };
        let charged = match on_cpu {
            _ if s.replayable => modelled_cost(step, removed),
            Some(t) if !s.wall_budget => t,
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
            o.work.push(StepWork { step, removed });
            o.steps.push(took);
            if let Some(t) = on_cpu {
                o.preempted += u64::from(t < took);
                o.on_cpu.push(t);
            }
            if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
                o.thread_cpu.push(after.saturating_sub(before));
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
    /// Opens the file when `enabled` and the kernel has it.
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

/// The control experiment for the pause columns: `secs` seconds of back-to-back steps that
/// each do the same fixed arithmetic (`rounds` rounds of a 64-bit mixer, no memory traffic
/// and no allocation), timed exactly as [`run_scenario`] times sweep steps. Whatever long
/// steps it shows come from the machine, not from the store.
pub fn control_steps(secs: u64, rounds: u64) -> Outcome {
    let mut out = Outcome::default();
    let mut delay = RunDelay::open(true);
    let started = Instant::now();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while started.elapsed() < Duration::from_secs(secs) {
        let delay_before = delay.read();
        let cpu_before = thread_cpu_time();
        let step = Instant::now();
        for _ in 0..rounds {
            x ^= x >> 31;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        }
        std::hint::black_box(x);
        let took = step.elapsed();
        let cpu_after = thread_cpu_time();
        if let (Some(before), Some(after)) = (delay_before, delay.read()) {
            let on_cpu = took.saturating_sub(after.saturating_sub(before));
            out.preempted += u64::from(on_cpu < took);
            out.on_cpu.push(on_cpu);
        }
        if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
            out.thread_cpu.push(after.saturating_sub(before));
        }
        out.steps.push(took);
    }
    out.wall = started.elapsed();
    out
}

/// Writes every measured step of `out` to `path` as CSV: its kind, size, removals, wall
/// time and thread CPU time in nanoseconds (empty where not measured).
///
/// # Errors
/// When the file cannot be written.
pub fn write_steps(out: &Outcome, path: &Path) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    writeln!(w, "kind,size,removed,wall_ns,thread_cpu_ns")?;
    for (i, (work, wall)) in out.work.iter().zip(&out.steps).enumerate() {
        let (kind, size) = match work.step {
            ExpiryStep::Sample(n) => ("sample", n),
            ExpiryStep::Sweep(n) => ("sweep", n),
        };
        let cpu = out
            .thread_cpu
            .get(i)
            .map_or(String::new(), |d| d.as_nanos().to_string());
        writeln!(
            w,
            "{kind},{size},{},{},{cpu}",
            work.removed,
            wall.as_nanos()
        )?;
    }
    w.flush()
}

/// One step read back from [`write_steps`]'s file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedStep {
    /// Its work.
    pub work: StepWork,
    /// Its wall time.
    pub wall: Duration,
    /// Its thread CPU time.
    pub thread_cpu: Duration,
}

/// Reads a file written by [`write_steps`] (with thread CPU times).
///
/// # Errors
/// When the file cannot be read or a line is not what [`write_steps`] writes.
pub fn read_steps(path: &Path) -> Result<Vec<RecordedStep>, String> {
    let name = path.display();
    let file = File::open(path).map_err(|e| format!("{name}: {e}"))?;
    let mut steps = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate().skip(1) {
        let line = line.map_err(|e| format!("{name}: {e}"))?;
        let bad = || {
            format!(
                "{name}:{}: not kind,size,removed,wall_ns,thread_cpu_ns",
                i + 1
            )
        };
        let fields: Vec<&str> = line.split(',').collect();
        let [kind, size, removed, wall, cpu] = fields[..] else {
            return Err(bad());
        };
        let number = |f: &str| f.parse::<u64>().map_err(|_| bad());
        let size = usize::try_from(number(size)?).map_err(|_| bad())?;
        let step = match kind {
            "sample" => ExpiryStep::Sample(size),
            "sweep" => ExpiryStep::Sweep(size),
            _ => return Err(bad()),
        };
        steps.push(RecordedStep {
            work: StepWork {
                step,
                removed: usize::try_from(number(removed)?).map_err(|_| bad())?,
            },
            wall: Duration::from_nanos(number(wall)?),
            thread_cpu: Duration::from_nanos(number(cpu)?),
        });
    }
    Ok(steps)
}

/// Several replayable runs of one scenario, compared step by step.
#[derive(Debug, Default)]
pub struct Replay {
    /// Per step, the least thread CPU time any run took for it.
    pub least_cpu: Vec<Duration>,
    /// Per step, the least wall time.
    pub least_wall: Vec<Duration>,
    /// Per run, its steps over `limit` of thread CPU time.
    pub over_per_run: Vec<usize>,
    /// Steps over `limit` of thread CPU time in at least two runs.
    pub over_in_two: usize,
    /// The step whose least thread CPU time is the longest, and that time.
    pub longest: Option<(StepWork, Duration)>,
}

/// Compares runs that did the same work ([`Scenario::replayable`]): a step that is long
/// because of its own work (or the allocator's, which it drives the same way every run)
/// is long in every run, while one that the machine slowed down (steal time, another
/// process) is long in one run only. So each step's cost, without the machine's
/// interruptions, is about the least time any run took for it.
///
/// # Errors
/// When there are no runs or the runs did not make the same steps.
pub fn least_of_runs(runs: &[Vec<RecordedStep>], limit: Duration) -> Result<Replay, String> {
    let Some(first) = runs.first() else {
        return Err("no runs to compare".to_owned());
    };
    for (r, run) in runs.iter().enumerate().skip(1) {
        if run.len() != first.len() {
            return Err(format!(
                "run {} made {} steps, run 1 made {}: not the same work",
                r + 1,
                run.len(),
                first.len()
            ));
        }
        if let Some(i) = (0..run.len()).find(|&i| run[i].work != first[i].work) {
            return Err(format!(
                "step {} differs between run 1 ({:?}) and run {} ({:?}): not the same work",
                i + 1,
                first[i].work,
                r + 1,
                run[i].work
            ));
        }
    }
    let mut replay = Replay {
        over_per_run: runs
            .iter()
            .map(|run| run.iter().filter(|s| s.thread_cpu > limit).count())
            .collect(),
        ..Replay::default()
    };
    for (i, step) in first.iter().enumerate() {
        let least = |f: fn(&RecordedStep) -> Duration| {
            runs.iter().map(|run| f(&run[i])).min().unwrap_or_default()
        };
        let cpu = least(|s| s.thread_cpu);
        replay.least_cpu.push(cpu);
        replay.least_wall.push(least(|s| s.wall));
        let over = runs.iter().filter(|run| run[i].thread_cpu > limit).count();
        replay.over_in_two += usize::from(over >= 2);
        if replay.longest.is_none_or(|(_, t)| cpu > t) {
            replay.longest = Some((step.work, cpu));
        }
    }
    Ok(replay)
}

/// The calling thread's minor and major page faults so far, if the kernel reports them.
fn page_faults() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name: state is the 3rd field, minflt the
    // 10th, majflt the 12th.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace();
    let minor = fields.nth(7)?.parse().ok()?;
    let major = fields.nth(1)?.parse().ok()?;
    Some((minor, major))
}

/// The calling thread's CPU time so far, if the clock is available.
fn thread_cpu_time() -> Option<Duration> {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    Some(Duration::from(t))
}

/// CPU time the hypervisor gave to others while this machine's CPUs wanted to run (steal
/// time, summed over CPUs), if reported: a guest sees it as time on CPU, so a step that
/// was "on CPU" for long may have been stolen from.
pub fn host_steal() -> Option<Duration> {
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

impl Scenario {
    /// A scenario that runs in well under a second: for the harness's own tests.
    #[doc(hidden)]
    pub fn small() -> Scenario {
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
            log_long_steps: false,
            seed: 1,
            replayable: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ..Scenario::small()
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
        let s = Scenario::small();
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
    }

    #[test]
    fn batches_add_keys_that_expire_together() {
        let s = Scenario {
            batch: Some(Batch {
                keys: 1_000,
                every_secs: 1,
                ttl_secs: 1,
            }),
            ..Scenario::small()
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

    /// A file under the system's temporary directory, unique to this process and `name`,
    /// removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(name: &str) -> Self {
            let file = format!("cachalot-expiry-{}-{name}.csv", std::process::id());
            Self(std::env::temp_dir().join(file))
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn replayable_runs_make_the_same_steps_and_read_back_from_their_files() {
        let s = Scenario {
            replayable: true,
            ..Scenario::small()
        };
        let (a, b) = (
            run_scenario(&s).expect("runs"),
            run_scenario(&s).expect("runs"),
        );
        assert!(a.work.len() > 30 && a.work.iter().any(|w| w.removed > 0));
        assert_eq!(a.work, b.work);
        assert_eq!((a.removed, a.checks), (b.removed, b.checks));
        let files = [TempFile::new("replay-a"), TempFile::new("replay-b")];
        write_steps(&a, &files[0].0).expect("writes");
        write_steps(&b, &files[1].0).expect("writes");
        let runs: Vec<_> = files
            .iter()
            .map(|f| read_steps(&f.0).expect("reads"))
            .collect();
        assert_eq!(runs[0].len(), a.work.len());
        assert!(runs[0].iter().map(|r| r.work).eq(a.work.iter().copied()));
        assert_eq!(runs[0][3].wall, a.steps[3]);
        assert_eq!(runs[0][3].thread_cpu, a.thread_cpu[3]);
        let replay = least_of_runs(&runs, Duration::from_millis(1)).expect("same work");
        assert_eq!(replay.least_cpu.len(), a.work.len());
        assert!(replay
            .least_cpu
            .iter()
            .zip(&a.thread_cpu)
            .all(|(least, t)| least <= t));
    }

    fn recorded(step: ExpiryStep, removed: usize, cpu_micros: u64) -> RecordedStep {
        RecordedStep {
            work: StepWork { step, removed },
            wall: Duration::from_micros(cpu_micros + 1),
            thread_cpu: Duration::from_micros(cpu_micros),
        }
    }

    #[test]
    fn the_least_of_runs_is_taken_step_by_step_and_only_over_the_same_work() {
        let (sample, sweep) = (ExpiryStep::Sample(256), ExpiryStep::Sweep(256));
        let a = vec![
            recorded(sample, 3, 40),
            recorded(sweep, 20, 2_000),
            recorded(sweep, 9, 30),
        ];
        let b = vec![
            recorded(sample, 3, 45),
            recorded(sweep, 20, 50),
            recorded(sweep, 9, 3_000),
        ];
        let limit = Duration::from_millis(1);
        let replay = least_of_runs(&[a.clone(), b.clone()], limit).expect("same work");
        let micros = |v: &[Duration]| v.iter().map(|d| d.as_micros()).collect::<Vec<_>>();
        assert_eq!(micros(&replay.least_cpu), [40, 50, 30]);
        assert_eq!(micros(&replay.least_wall), [41, 51, 31]);
        assert_eq!(replay.over_per_run, [1, 1]);
        assert_eq!(replay.over_in_two, 0);
        assert_eq!(
            replay.longest,
            Some((
                StepWork {
                    step: sweep,
                    removed: 20
                },
                Duration::from_micros(50)
            ))
        );
        let both_long = least_of_runs(&[a.clone(), a.clone()], limit).expect("same work");
        assert_eq!(both_long.over_in_two, 1);
        assert_eq!(
            both_long.longest.map(|l| l.1),
            Some(Duration::from_millis(2))
        );

        let mut other = b.clone();
        other[2].work.removed = 8;
        assert!(least_of_runs(&[a.clone(), other], limit).is_err());
        assert!(least_of_runs(&[a, b[..2].to_vec()], limit).is_err());
        assert!(least_of_runs(&[], limit).is_err());
    }

    #[test]
    fn a_steps_file_with_a_bad_line_is_refused_with_its_place() {
        let file = TempFile::new("bad-line");
        std::fs::write(
            &file.0,
            "kind,size,removed,wall_ns,thread_cpu_ns\nsweep,256,3,100,90\nsweep,256,x,1,1\n",
        )
        .expect("writes");
        let err = read_steps(&file.0).expect_err("line 3 is bad");
        assert!(
            err.ends_with(":3: not kind,size,removed,wall_ns,thread_cpu_ns"),
            "{err}"
        );
        std::fs::write(&file.0, "kind\nsweep,256,3,100,90\n").expect("writes");
        assert_eq!(read_steps(&file.0).map(|r| r.len()), Ok(1));
    }
}
