//! Read throughput of the store against moka 0.12, measured in short interleaved slices so
//! that both sides see the same machine.
//!
//! On the shared 2-core VM a contender's throughput drifts by up to 2× within minutes, so
//! criterion's back-to-back groups (`benches/benches/store.rs`) compare a contender measured
//! in one minute with moka measured in another. Here two worker threads stay alive for the
//! whole run, and every round gives each contender one slice of `--slice-ops` reads per
//! thread, in an order that rotates from round to round. A round's ratio (moka's time ÷
//! ours, so higher is better for us) compares slices taken a fraction of a second apart;
//! the run reports the median and quartiles of those ratios over all rounds.
//!
//! The workload is `store/get` and `store/get_bounded`'s: 100k keys of 16 bytes
//! (`Box<[u8]>`), 64-byte `Bytes` values, Zipf α = 1.0 reads that all hit, each value
//! cloned out. `bounded` caches have room for every key with 5% to spare, so they keep all
//! of their policy's bookkeeping (the W-TinyLFU sketch and segments, moka's too) though
//! nothing is evicted; `unbounded` ones have no bound.
//!
//! ```sh
//! cargo build --release -p cachalot-benches --bin getratio
//! target/release/getratio --rounds 40
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cachalot_benches::reads::{
    key, room_for_all_keys, value, Store, Workload, KEYS, KEY_BYTES, SEQUENCE_LEN, VALUE_BYTES,
};
use cachalot_store::{Cache, ManualClock, Policy};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Store reads against moka, in interleaved slices on persistent threads")]
struct Args {
    /// Rounds; each gives every contender one slice.
    #[arg(long, default_value_t = 40)]
    rounds: usize,
    /// Reads per thread per slice.
    #[arg(long, default_value_t = 200_000)]
    slice_ops: usize,
    /// Reading threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Contenders to run, comma-separated: `allkeys-tinylfu`, `allkeys-lru`, `moka`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "allkeys-tinylfu,allkeys-lru,moka"
    )]
    policies: Vec<String>,
    /// Cases to run, comma-separated: `bounded`, `unbounded`.
    #[arg(long, value_delimiter = ',', default_value = "bounded,unbounded")]
    cases: Vec<String>,
    /// Give our caches a `ManualClock` that never moves instead of the system clock: what
    /// the clock read costs each operation.
    #[arg(long)]
    manual_clock: bool,
    /// Shards of our caches (default: the builder's, 16 per CPU).
    #[arg(long)]
    shards: Option<usize>,
    /// Print a markdown table.
    #[arg(long)]
    markdown: bool,
}

fn ours(policy: Policy, bounded: bool, args: &Args) -> Cache<Box<[u8]>, Bytes> {
    let mut builder = Cache::<Box<[u8]>, Bytes>::builder()
        .policy(policy)
        .weigher(|k, v| (k.len() + v.len()) as u64);
    if let Some(n) = args.shards {
        builder = builder.shards(n);
    }
    if args.manual_clock {
        builder = builder.clock(Arc::new(ManualClock::new(1_700_000_000_000)));
    }
    let cache = builder.build().expect("valid configuration");
    if bounded {
        let per_entry = (KEY_BYTES + VALUE_BYTES) as u64 + cache.entry_overhead_bytes();
        cache.set_max_weight(Some(room_for_all_keys(per_entry)));
    }
    cache
}

fn moka(bounded: bool) -> moka::sync::Cache<Box<[u8]>, Bytes> {
    if bounded {
        moka::sync::Cache::<Box<[u8]>, Bytes>::builder()
            .max_capacity(room_for_all_keys((KEY_BYTES + VALUE_BYTES) as u64))
            .weigher(|k, v| (k.len() + v.len()) as u32)
            .build()
    } else {
        moka::sync::Cache::builder().build()
    }
}

/// A contender: its policy label, its case (bounded or not) and its store.
struct Contender {
    label: &'static str,
    case: &'static str,
    store: Box<dyn Store>,
}

fn main() {
    let args = Args::parse();
    let work = Workload::new(KEYS);
    let mut contenders = Vec::new();
    for (case, bounded) in [("bounded", true), ("unbounded", false)] {
        if !args.cases.iter().any(|c| c == case) {
            continue;
        }
        let entries: [(&'static str, Box<dyn Store>); 3] = [
            (
                "allkeys-tinylfu",
                Box::new(ours(Policy::tiny_lfu(), bounded, &args)),
            ),
            (
                "allkeys-lru",
                Box::new(ours(Policy::allkeys_lru(), bounded, &args)),
            ),
            ("moka", Box::new(moka(bounded))),
        ];
        for (label, store) in entries {
            if !args.policies.iter().any(|p| p == label) {
                continue;
            }
            contenders.push(Contender { label, case, store });
        }
    }
    for c in &contenders {
        for i in 0..KEYS as u32 {
            c.store.insert(Box::from(key(i)), value());
        }
    }

    let n = contenders.len();
    let barrier = Barrier::new(args.threads + 1);
    // The contender of the next slice; usize::MAX tells the workers to stop.
    let current = AtomicUsize::new(0);
    // Each contender's slices: wall time over the reads of one thread, in nanoseconds.
    let mut times = vec![Vec::with_capacity(args.rounds); n];
    std::thread::scope(|s| {
        for t in 0..args.threads {
            let (barrier, current, contenders, work) = (&barrier, &current, &contenders, &work);
            let slice_ops = args.slice_ops;
            s.spawn(move || {
                let mut at = t * SEQUENCE_LEN / args.threads;
                loop {
                    barrier.wait();
                    let which = current.load(Ordering::Acquire);
                    if which == usize::MAX {
                        return;
                    }
                    let store = contenders[which].store.as_ref();
                    for _ in 0..slice_ops {
                        black_box(store.get(&work.key(at)));
                        at += 1;
                    }
                    barrier.wait();
                }
            });
        }
        let slice = |which: usize| {
            current.store(which, Ordering::Release);
            barrier.wait();
            let start = Instant::now();
            barrier.wait();
            start.elapsed()
        };
        // One warm-up slice each.
        for i in 0..n {
            slice(i);
        }
        for round in 0..args.rounds {
            for k in 0..n {
                let i = (round + k) % n;
                let took: Duration = slice(i);
                times[i].push(took.as_nanos() as f64 / args.slice_ops as f64);
            }
        }
        current.store(usize::MAX, Ordering::Release);
        barrier.wait();
    });

    if args.markdown {
        println!(
            "| case | policy | ns per read per thread, median | moka ÷ ours per round: p25 / median / p75 |"
        );
        println!("|---|---|---|---|");
    }
    for case in ["bounded", "unbounded"] {
        let in_case = || (0..n).filter(|&i| contenders[i].case == case);
        let Some(moka) = in_case().find(|&i| contenders[i].label == "moka") else {
            continue;
        };
        for i in in_case() {
            let c = &contenders[i];
            let ns = median(&times[i]);
            let ratios: Vec<f64> = times[moka]
                .iter()
                .zip(&times[i])
                .map(|(m, o)| m / o)
                .collect();
            let (p25, p50, p75) = (
                quantile(&ratios, 0.25),
                quantile(&ratios, 0.5),
                quantile(&ratios, 0.75),
            );
            if args.markdown {
                println!(
                    "| {case} | {} | {ns:.1} | {p25:.2} / **{p50:.2}** / {p75:.2} |",
                    c.label
                );
            } else {
                println!(
                    "{case:<10} {:<16} {ns:>7.1} ns/read   moka/ours p25 {p25:.2}  median {p50:.2}  p75 {p75:.2}",
                    c.label
                );
            }
        }
    }
}

fn median(xs: &[f64]) -> f64 {
    quantile(xs, 0.5)
}

/// The `q` quantile of `xs` by nearest rank (0 for no samples).
fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}
