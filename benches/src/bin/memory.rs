//! Bytes per entry the store spends above the raw key and value.
//!
//! Inserts N entries of 16-byte keys and 64-byte values (both inline arrays, so every heap
//! byte counted is the container's own) into a fresh cache per configuration, and divides
//! the heap bytes the process gained by N. A counting global allocator measures what was
//! requested from the allocator (not what the allocator itself spends around it), so the
//! figures are the containers' own: slab slots, hash table, sketch, lists. The containers
//! make a few large allocations, so the allocator's own per-allocation cost is negligible.
//!
//! ```sh
//! cargo run --release -p cachalot-benches --bin memory -- --entries 1000000
//! ```

use std::alloc::System;
use std::collections::HashMap;

use cachalot_store::{Cache, Policy};
use clap::Parser;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

/// The system allocator, counting what it hands out (the workspace forbids `unsafe`, so the
/// counting allocator comes from `stats_alloc`).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

type Key = [u8; 16];
type Value = [u8; 64];

/// Raw bytes of one entry: key plus value.
const RAW: usize = std::mem::size_of::<Key>() + std::mem::size_of::<Value>();

#[derive(Debug, Parser)]
#[command(about = "Heap bytes per entry above the raw key and value")]
struct Args {
    /// Entries inserted into each cache.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Print a markdown table.
    #[arg(long)]
    markdown: bool,
}

fn key(i: u64) -> Key {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.to_le_bytes());
    k[8..].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    k
}

fn value(i: u64) -> Value {
    let mut v = [0u8; 64];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

/// Heap bytes still held, once `fill` returns, by what it allocated: the container is
/// measured alive, and temporaries it freed are not counted. Returns (bytes, the container).
fn measure<T>(fill: impl FnOnce() -> T) -> (isize, T) {
    let region = Region::new(GLOBAL);
    let container = fill();
    let c = region.change();
    let held = c.bytes_allocated as isize - c.bytes_deallocated as isize + c.bytes_reallocated;
    (held, container)
}

/// One row: a name, the heap bytes, and (for ours) the overhead the cache accounts.
struct Row {
    name: String,
    bytes: isize,
    accounted: Option<u64>,
}

fn store_row(policy: Policy, n: u64, bounded: bool) -> Row {
    let name = format!(
        "cachalot {}{}",
        policy.redis_name(),
        if bounded { " (max_entries)" } else { "" }
    );
    let (bytes, cache) = measure(|| {
        let mut b = Cache::<Key, Value>::builder().policy(policy);
        if bounded {
            b = b.max_entries(n);
        }
        let cache = b.build().expect("valid configuration");
        for i in 0..n {
            cache
                .insert(key(i), value(i))
                .expect("room for every entry");
        }
        cache
    });
    assert_eq!(cache.len(), n, "{name} kept every entry");
    Row {
        name,
        bytes,
        accounted: Some(cache.entry_overhead_bytes()),
    }
}

fn moka_row(n: u64) -> Row {
    let (bytes, cache) = measure(|| {
        let cache = moka::sync::Cache::<Key, Value>::builder()
            .max_capacity(n)
            .build();
        for i in 0..n {
            cache.insert(key(i), value(i));
        }
        cache.run_pending_tasks();
        cache
    });
    assert_eq!(cache.entry_count(), n, "moka kept every entry");
    Row {
        name: "moka 0.12 sync (max_capacity)".into(),
        bytes,
        accounted: None,
    }
}

fn hashmap_row(n: u64) -> Row {
    let (bytes, map) = measure(|| {
        let mut map = HashMap::new();
        for i in 0..n {
            map.insert(key(i), value(i));
        }
        map
    });
    assert_eq!(map.len() as u64, n);
    Row {
        name: "std HashMap (no bookkeeping)".into(),
        bytes,
        accounted: None,
    }
}

fn main() {
    let args = Args::parse();
    let n = args.entries;
    let mut rows = Vec::new();
    for policy in [
        Policy::no_eviction(),
        Policy::allkeys_lru(),
        Policy::allkeys_lfu(),
        Policy::tiny_lfu(),
    ] {
        rows.push(store_row(policy, n, false));
    }
    rows.push(store_row(Policy::tiny_lfu(), n, true));
    rows.push(moka_row(n));
    rows.push(hashmap_row(n));

    let entries = n as f64;
    if args.markdown {
        println!("| container | heap bytes per entry | above key+value | accounted overhead |");
        println!("|---|---|---|---|");
    } else {
        println!(
            "{:<40} {:>12} {:>16} {:>19}",
            "container", "bytes/entry", "above key+value", "accounted overhead"
        );
    }
    for r in rows {
        let per = r.bytes as f64 / entries;
        let above = per - RAW as f64;
        let accounted = r
            .accounted
            .map_or_else(|| "-".to_string(), |a| a.to_string());
        if args.markdown {
            println!("| {} | {per:.1} | {above:.1} | {accounted} |", r.name);
        } else {
            println!("{:<40} {per:>12.1} {above:>16.1} {accounted:>19}", r.name);
        }
    }
}
