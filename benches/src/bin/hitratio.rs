//! Trace-driven hit-ratio harness: replays traces through `cachalot-store` under each
//! eviction policy, through moka, and through Belady's optimal policy, and prints the miss
//! ratios as a table for `docs/benchmarks.md`.
//!
//! Each replay is cache-aside: `get`, and on a miss `insert`. Cache sizes are fractions of
//! the trace's distinct keys, bounded by entry count. The store runs with one shard (exact
//! eviction order) unless a policy name ends in `@sharded`, which uses the default shard
//! count. Only the miss ratio is measured, not speed, so cells run in parallel.
//!
//! ```sh
//! cargo run --release -p cachalot-benches --bin hitratio -- --requests 2000000 --markdown
//! cargo run --release -p cachalot-benches --bin hitratio -- --trace-file keys.txt --sizes 1,5
//! ```

use std::error::Error;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachalot_benches::parse_list;
use cachalot_benches::table::render;
use cachalot_benches::trace::{self, Trace, Workload};
use cachalot_store::{Cache, ManualClock, Policy};
use clap::Parser;

/// Requests replayed per millisecond of the store's manual clock: a node serving 1M
/// requests/s. Only the LFU counter's decay (one step per idle minute) reads the clock.
const REQUESTS_PER_MILLI: usize = 1_000;

/// Start of the store's manual clock (unix ms, November 2023): any fixed time works.
const CLOCK_START_MILLIS: u64 = 1_700_000_000_000;

/// moka applies evictions in `run_pending_tasks`, which we call every `capacity / 256`
/// inserts (at least 1, at most [`MOKA_SYNC_MAX_INSERTS`]): between calls the cache exceeds
/// its bound by at most 1/256 of it (0.4%), or by one entry.
const MOKA_SYNC_CAPACITY_DIVISOR: usize = 256;

/// moka runs its pending tasks by itself after 64 logged writes; syncing less often than
/// that would change nothing.
const MOKA_SYNC_MAX_INSERTS: usize = 64;

#[derive(Debug, Parser)]
#[command(about = "Miss ratios of the store's policies, moka and OPT on cache traces")]
struct Args {
    /// Requests per generated trace, and the most keys read from a trace file.
    #[arg(long, default_value_t = 10_000_000)]
    requests: usize,
    /// Replay this trace file (one key per line; repeatable). Replaces the generated
    /// traces unless --traces names some.
    #[arg(long)]
    trace_file: Vec<PathBuf>,
    /// Generated traces, comma-separated [default: all: zipf-0.8, zipf-1.0, zipf-1.2,
    /// zipf-scans, shifting-hot-set, one-hit-wonders].
    #[arg(long)]
    traces: Option<String>,
    /// Policies to compare with OPT: store policy names (suffix `@sharded` for the default
    /// shard count instead of one shard) and `moka`. Default: the store policies that evict
    /// without TTLs, allkeys-lru@sharded and moka.
    #[arg(long)]
    policies: Option<String>,
    /// Cache sizes, in percent of the trace's distinct keys.
    #[arg(long, default_value = "0.1,1,10")]
    sizes: String,
    /// Print markdown tables.
    #[arg(long)]
    markdown: bool,
    /// Seed of the trace generators.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Cells replayed at once [default: available parallelism].
    #[arg(long)]
    threads: Option<usize>,
}

/// What a trace is replayed through.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Contender {
    /// `cachalot-store` with this policy; `sharded`: default shard count, else one shard.
    Store { policy: Policy, sharded: bool },
    /// moka 0.12's sync cache (W-TinyLFU).
    Moka,
    /// Belady's offline optimal.
    Opt,
    /// The best static cache in hindsight (`trace::static_top_misses`).
    StaticTop,
}

impl Contender {
    fn parse(name: &str) -> Result<Self, String> {
        let (base, sharded) = match name.strip_suffix("@sharded") {
            Some(base) => (base, true),
            None => (name, false),
        };
        match base {
            "moka" if !sharded => Ok(Contender::Moka),
            "opt" if !sharded => Ok(Contender::Opt),
            "static-top" if !sharded => Ok(Contender::StaticTop),
            _ => Policy::from_redis_name(base)
                .map(|policy| Contender::Store { policy, sharded })
                .ok_or_else(|| format!("unknown policy {name:?}")),
        }
    }

    fn name(self) -> String {
        match self {
            Contender::Store { policy, sharded } if sharded => {
                format!("{}@sharded", policy.redis_name())
            }
            Contender::Store { policy, .. } => policy.redis_name().to_owned(),
            Contender::Moka => "moka".to_owned(),
            Contender::Opt => "opt".to_owned(),
            Contender::StaticTop => "static-top".to_owned(),
        }
    }

    /// Store policies that can evict with no TTLs set (the volatile ones then act like
    /// `noeviction`), then the sharded LRU and moka.
    fn defaults() -> Vec<Contender> {
        let mut all: Vec<Contender> = Policy::all()
            .filter(|&p| p != Policy::no_eviction() && !p.is_volatile_only())
            .map(|policy| Contender::Store {
                policy,
                sharded: false,
            })
            .collect();
        all.push(Contender::Store {
            policy: Policy::allkeys_lru(),
            sharded: true,
        });
        all.push(Contender::Moka);
        all.push(Contender::StaticTop);
        all
    }
}

/// The result of one replay.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    misses: u64,
    /// Most entries seen in the cache (for moka: right after each sync).
    peak_entries: u64,
    /// Inserts the cache refused (a volatile policy or noeviction, full).
    refused: u64,
}

fn replay(
    keys: &[u64],
    next: &[usize],
    capacity: usize,
    who: Contender,
) -> Result<Outcome, String> {
    match who {
        Contender::Store { policy, sharded } => replay_store(keys, capacity, policy, sharded),
        Contender::Moka => Ok(replay_moka(keys, capacity)),
        Contender::Opt => Ok(Outcome {
            misses: trace::opt_misses(keys, next, capacity),
            ..Outcome::default()
        }),
        Contender::StaticTop => Ok(Outcome {
            misses: trace::static_top_misses(keys, capacity),
            ..Outcome::default()
        }),
    }
}

fn replay_store(
    keys: &[u64],
    capacity: usize,
    policy: Policy,
    sharded: bool,
) -> Result<Outcome, String> {
    let clock = Arc::new(ManualClock::new(CLOCK_START_MILLIS));
    let mut builder = Cache::<u64, ()>::builder()
        .max_entries(capacity as u64)
        .policy(policy)
        .clock(clock.clone());
    if !sharded {
        builder = builder.shards(1);
    }
    let cache = builder.build().map_err(|e| e.to_string())?;
    let mut out = Outcome::default();
    for (i, key) in keys.iter().enumerate() {
        if i % REQUESTS_PER_MILLI == 0 {
            clock.advance(Duration::from_millis(1));
        }
        if cache.get(key).is_none() {
            out.misses += 1;
            if cache.insert(*key, ()).is_err() {
                out.refused += 1;
            }
            out.peak_entries = out.peak_entries.max(cache.len());
        }
    }
    Ok(out)
}

fn replay_moka(keys: &[u64], capacity: usize) -> Outcome {
    let cache: moka::sync::Cache<u64, ()> = moka::sync::Cache::builder()
        .max_capacity(capacity as u64)
        .build();
    let sync_every = (capacity / MOKA_SYNC_CAPACITY_DIVISOR).clamp(1, MOKA_SYNC_MAX_INSERTS);
    let mut out = Outcome::default();
    let mut unsynced = 0;
    for key in keys {
        if cache.get(key).is_none() {
            out.misses += 1;
            cache.insert(*key, ());
            unsynced += 1;
            if unsynced == sync_every {
                cache.run_pending_tasks();
                unsynced = 0;
                out.peak_entries = out.peak_entries.max(cache.entry_count());
            }
        }
    }
    out
}

/// Cache capacities, in entries, for `sizes` percent of `distinct` keys (at least 1).
fn capacities(distinct: usize, sizes: &[f64]) -> Vec<usize> {
    sizes
        .iter()
        .map(|pct| ((distinct as f64 * pct / 100.0).round() as usize).max(1))
        .collect()
}

/// One trace's results: `misses[size][contender]`.
struct TraceResult {
    name: String,
    requests: usize,
    distinct: usize,
    /// Cache sizes in percent of `distinct`, and in entries.
    sizes: Vec<f64>,
    capacities: Vec<usize>,
    misses: Vec<Vec<u64>>,
}

/// Replays `trace` at every size through every contender, `threads` cells at a time.
fn run_trace(
    trace: &Trace,
    sizes: &[f64],
    contenders: &[Contender],
    threads: usize,
) -> Result<TraceResult, String> {
    let distinct = trace.distinct_keys();
    let caps = capacities(distinct, sizes);
    let next = trace::next_uses(&trace.keys);
    let cells: Vec<(usize, usize)> = (0..caps.len())
        .flat_map(|s| (0..contenders.len()).map(move |c| (s, c)))
        .collect();
    let results = Mutex::new(vec![vec![0; contenders.len()]; caps.len()]);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let cursor = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                while let Some(&(s, c)) = cells.get(cursor.fetch_add(1, Ordering::Relaxed)) {
                    let cap = caps[s];
                    let who = contenders[c];
                    match replay(&trace.keys, &next, cap, who) {
                        Ok(out) => {
                            check_bound(&trace.name, cap, who, &out);
                            if let Ok(mut r) = results.lock() {
                                r[s][c] = out.misses;
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                *f = Some(format!("{} at {cap} entries: {e}", who.name()));
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().map_err(|e| e.to_string())? {
        return Err(e);
    }
    Ok(TraceResult {
        name: trace.name.clone(),
        requests: trace.keys.len(),
        distinct,
        sizes: sizes.to_vec(),
        capacities: caps,
        misses: results.into_inner().map_err(|e| e.to_string())?,
    })
}

/// Warns when a replay broke the cache's bound or had inserts refused.
fn check_bound(trace: &str, capacity: usize, who: Contender, out: &Outcome) {
    if out.peak_entries > capacity as u64 {
        eprintln!(
            "warning: {} on {trace} held {} entries, above its bound of {capacity}",
            who.name(),
            out.peak_entries
        );
    }
    if out.refused > 0 {
        eprintln!(
            "note: {} on {trace} at {capacity} entries refused {} inserts",
            who.name(),
            out.refused
        );
    }
}

/// The per-cell table: miss ratio of each contender and its ratio to OPT's.
fn cell_table(results: &[TraceResult], contenders: &[Contender], opt: usize) -> Vec<Vec<String>> {
    let mut header = vec!["trace".to_owned(), "size".to_owned(), "entries".to_owned()];
    header.push("opt".to_owned());
    header.extend(
        (0..contenders.len())
            .filter(|&c| c != opt)
            .map(|c| contenders[c].name()),
    );
    let mut rows = vec![header];
    for r in results {
        for (s, misses) in r.misses.iter().enumerate() {
            let ratio = |m: u64| m as f64 / r.requests.max(1) as f64;
            let opt_misses = misses[opt];
            let mut row = vec![
                r.name.clone(),
                format!("{}%", r.sizes[s]),
                r.capacities[s].to_string(),
                format!("{:.4}", ratio(opt_misses)),
            ];
            row.extend(
                misses
                    .iter()
                    .enumerate()
                    .filter(|&(c, _)| c != opt)
                    .map(|(_, &m)| {
                        format!(
                            "{:.4} ×{:.3}",
                            ratio(m),
                            m as f64 / opt_misses.max(1) as f64
                        )
                    }),
            );
            rows.push(row);
        }
    }
    rows
}

/// Per contender: the geometric mean and worst cell of (miss ÷ OPT's), and the worst cell
/// of (miss ÷ moka's) when moka ran.
fn summary_table(
    results: &[TraceResult],
    contenders: &[Contender],
    opt: usize,
) -> Vec<Vec<String>> {
    let moka = contenders.iter().position(|&c| c == Contender::Moka);
    let mut rows = vec![vec![
        "policy".to_owned(),
        "geomean miss ÷ opt".to_owned(),
        "worst miss ÷ opt".to_owned(),
        "worst miss ÷ moka".to_owned(),
    ]];
    let cells = || results.iter().flat_map(|r| r.misses.iter());
    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    for (c, who) in contenders.iter().enumerate().filter(|&(c, _)| c != opt) {
        let to_opt: Vec<f64> = cells().map(|m| ratio(m[c], m[opt])).collect();
        let geomean =
            (to_opt.iter().map(|x| x.ln()).sum::<f64>() / to_opt.len().max(1) as f64).exp();
        let worst = to_opt.iter().copied().fold(0.0, f64::max);
        let vs_moka = moka.map_or("-".to_owned(), |m| {
            let worst = cells().map(|x| ratio(x[c], x[m])).fold(0.0, f64::max);
            format!("{worst:.3}")
        });
        rows.push(vec![
            who.name(),
            format!("{geomean:.3}"),
            format!("{worst:.3}"),
            vs_moka,
        ]);
    }
    rows
}

fn main() -> ExitCode {
    cachalot_benches::exit_code(run(Args::parse()))
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let sizes = parse_list(&args.sizes, |s| match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("size {s:?} is not a percentage in (0, 100]")),
    })?;
    let mut contenders = match &args.policies {
        Some(list) => parse_list(list, Contender::parse)?,
        None => Contender::defaults(),
    };
    contenders.retain(|&c| c != Contender::Opt);
    contenders.insert(0, Contender::Opt);
    let workloads = match (&args.traces, args.trace_file.is_empty()) {
        (Some(list), _) => parse_list(list, |n| {
            Workload::from_name(n).ok_or_else(|| format!("unknown trace {n:?}"))
        })?,
        (None, true) => Workload::standard().to_vec(),
        (None, false) => Vec::new(),
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });

    let mut results = Vec::new();
    let traces = workloads
        .iter()
        .map(|w| TraceSource::Generated(*w))
        .chain(args.trace_file.iter().map(|p| TraceSource::File(p.clone())));
    for source in traces {
        let trace = match source {
            // Seeded per workload, so a trace is the same whichever others run with it.
            TraceSource::Generated(w) => w.generate(
                args.requests,
                args.seed ^ trace::hash_key(w.name().as_bytes()),
            ),
            TraceSource::File(path) => trace::read_file(&path, args.requests)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        };
        let t = Instant::now();
        let result = run_trace(&trace, &sizes, &contenders, threads)?;
        eprintln!(
            "{}: {} requests, {} distinct keys, {:.1}s",
            trace.name,
            result.requests,
            result.distinct,
            t.elapsed().as_secs_f64()
        );
        results.push(result);
    }

    let mut out = std::io::stdout().lock();
    let mut traces = vec![vec![
        "trace".to_owned(),
        "requests".to_owned(),
        "distinct keys".to_owned(),
    ]];
    traces.extend(results.iter().map(|r| {
        vec![
            r.name.clone(),
            r.requests.to_string(),
            r.distinct.to_string(),
        ]
    }));
    writeln!(out, "{}", render(&traces, args.markdown))?;
    writeln!(
        out,
        "{}",
        render(&cell_table(&results, &contenders, 0), args.markdown)
    )?;
    writeln!(
        out,
        "{}",
        render(&summary_table(&results, &contenders, 0), args.markdown)
    )?;
    eprintln!("total {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Where a trace comes from.
enum TraceSource {
    Generated(Workload),
    File(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contender_names_round_trip() {
        for who in Contender::defaults().into_iter().chain([Contender::Opt]) {
            assert_eq!(Contender::parse(&who.name()), Ok(who));
        }
        assert_eq!(
            Contender::parse("volatile-lru"),
            Ok(Contender::Store {
                policy: Policy::volatile_lru(),
                sharded: false
            })
        );
        assert!(Contender::parse("moka@sharded").is_err());
        assert!(Contender::parse("lru").is_err());
    }

    #[test]
    fn default_contenders_are_the_policies_that_evict_without_ttls() {
        let names: Vec<String> = Contender::defaults()
            .into_iter()
            .map(Contender::name)
            .collect();
        assert_eq!(
            names,
            [
                "allkeys-lru",
                "allkeys-lfu",
                "allkeys-random",
                "allkeys-tinylfu",
                "allkeys-lru@sharded",
                "moka",
                "static-top"
            ]
        );
    }

    #[test]
    fn no_contender_beats_opt_and_bounds_hold() {
        let trace = Workload::Zipf { alpha: 1.0 }.generate(30_000, 1);
        let next = trace::next_uses(&trace.keys);
        for cap in capacities(trace.distinct_keys(), &[0.1, 1.0, 10.0]) {
            let opt = replay(&trace.keys, &next, cap, Contender::Opt)
                .expect("opt replays")
                .misses;
            for who in Contender::defaults() {
                let out = replay(&trace.keys, &next, cap, who).expect("replays");
                assert!(out.misses >= opt, "{} at {cap}", who.name());
                assert!(out.peak_entries <= cap as u64, "{} at {cap}", who.name());
                assert_eq!(out.refused, 0, "{} at {cap}", who.name());
            }
        }
    }

    #[test]
    fn volatile_policies_without_ttls_keep_the_first_keys() {
        let keys: Vec<u64> = (0..10).chain(0..10).collect();
        let who = Contender::parse("volatile-lru").expect("a policy");
        let out = replay(&keys, &trace::next_uses(&keys), 4, who).expect("replays");
        // Keys 0..4 stay; every other request misses and its insert is refused.
        assert_eq!((out.misses, out.refused), (16, 12));
    }

    #[test]
    fn capacities_are_shares_of_distinct_keys_and_at_least_one() {
        assert_eq!(capacities(65_651, &[0.1, 1.0, 10.0]), [66, 657, 6_565]);
        assert_eq!(capacities(10, &[0.1]), [1]);
    }
}
