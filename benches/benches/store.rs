//! Storage engine throughput: `get` and `insert` from 1 and 2 threads on Zipf-distributed
//! keys, against `moka::sync::Cache` and a `parking_lot::Mutex<HashMap>` (`store/get`,
//! `store/insert`, every cache unbounded); `get` with every cache bounded with room for all
//! keys, so each keeps its full policy bookkeeping (`store/get_bounded`); and inserts where
//! every miss evicts (`store/insert_evicting`, `allkeys-lru`, `allkeys-tinylfu`, moka).
//!
//! Keys are 16-byte `Box<[u8]>`, values 64-byte `Bytes` (a fresh allocation per insert, as
//! the server's decoder hands it one). Each key is spelled from its index on the stack
//! (`key:` and 12 hex digits), as a key arrives in a just-read request buffer, so the
//! bench's own key lookups add no cache misses. Reads clone the value out, as a `GET` must
//! before it unlocks. Each `iter_custom` iteration is [`BATCH_OPS`] operations per thread; threads
//! start together at a barrier and the wall time from the first start to the last finish
//! is measured, so thread spawning is not.
//!
//! ```sh
//! CARGO_TARGET_DIR=target-store cargo bench -p cachalot-benches --bench store
//! ```

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cachalot_benches::reads::{
    key, room_for_all_keys, value, Store, Workload, KEYS, KEY_BYTES, SEED, SEQUENCE_LEN,
    VALUE_BYTES,
};
use cachalot_store::{Cache, ManualClock, Policy};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Keys in the eviction case's keyspace, ten times what fits.
const EVICTION_KEYS: usize = 1_000_000;
/// Entries that fit under the eviction case's weight bound.
const EVICTION_RESIDENT: u64 = 100_000;
/// Operations per thread per criterion iteration: large enough to hide the barrier.
const BATCH_OPS: u64 = 10_000;
/// Thread counts measured (the bench machine has two cores).
const THREADS: [usize; 2] = [1, 2];

/// The naive baseline: one lock over a std `HashMap` (SipHash).
struct Locked(Mutex<HashMap<Box<[u8]>, Bytes>>);

impl Store for Locked {
    fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.0.lock().get(key).cloned()
    }
    fn insert(&self, key: Box<[u8]>, value: Bytes) {
        let old = self.0.lock().insert(key, value);
        drop(black_box(old));
    }
}

#[derive(Clone, Copy)]
enum Op {
    Get,
    Insert,
}

/// Runs `iters * BATCH_OPS` operations on each of `threads` threads, each thread starting at
/// its own place in the sequence; returns the wall time from first start to last finish.
fn run(store: &dyn Store, work: &Workload, op: Op, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads);
    let ops = (iters * BATCH_OPS) as usize;
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let offset = t * SEQUENCE_LEN / threads + rand::random::<usize>() % 4096;
                    barrier.wait();
                    let start = Instant::now();
                    match op {
                        Op::Get => {
                            for i in offset..offset + ops {
                                black_box(store.get(&work.key(i)));
                            }
                        }
                        Op::Insert => {
                            for i in offset..offset + ops {
                                store.insert(Box::from(work.key(i)), value());
                            }
                        }
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    let first = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("at least one thread");
    let last = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("at least one thread");
    last - first
}

fn ours(policy: Policy) -> Cache<Box<[u8]>, Bytes> {
    Cache::<Box<[u8]>, Bytes>::builder()
        .policy(policy)
        .weigher(|k, v| (k.len() + v.len()) as u64)
        .build()
        .expect("valid configuration")
}

/// The contenders of the unbounded get/insert cases, filled with every key of `work`.
fn contenders(work: &Workload) -> Vec<(&'static str, Box<dyn Store>)> {
    let all: Vec<(&'static str, Box<dyn Store>)> = vec![
        ("cachalot-noeviction", Box::new(ours(Policy::no_eviction()))),
        ("cachalot-lru", Box::new(ours(Policy::allkeys_lru()))),
        ("cachalot-tinylfu", Box::new(ours(Policy::tiny_lfu()))),
        ("moka", Box::new(moka::sync::Cache::builder().build())),
        (
            "mutex-hashmap",
            Box::new(Locked(Mutex::new(HashMap::new()))),
        ),
    ];
    for (_, store) in &all {
        for i in 0..work.keys {
            store.insert(Box::from(key(i)), value());
        }
    }
    all
}

fn bench_group(c: &mut Criterion, name: &str, op: Op, work: &Workload) {
    let stores = contenders(work);
    let refs: Vec<(&str, &dyn Store)> = stores.iter().map(|(l, s)| (*l, s.as_ref())).collect();
    bench_stores(c, name, op, work, &refs);
}

fn get_and_insert(c: &mut Criterion) {
    let work = Workload::new(KEYS);
    bench_group(c, "store/get", Op::Get, &work);
    bench_group(c, "store/insert", Op::Insert, &work);
}

/// Reads from caches bounded with room for every key, so that their policies keep all
/// their bookkeeping (an unbounded cache needs none: neither ours nor moka keeps a
/// frequency sketch without a bound), though nothing is evicted.
fn get_bounded(c: &mut Criterion) {
    let work = Workload::new(KEYS);
    let entry_bytes = (KEY_BYTES + VALUE_BYTES) as u64;
    let lru = ours(Policy::allkeys_lru());
    let tiny = ours(Policy::tiny_lfu());
    for c in [&lru, &tiny] {
        c.set_max_weight(Some(room_for_all_keys(
            entry_bytes + c.entry_overhead_bytes(),
        )));
    }
    let moka = moka::sync::Cache::<Box<[u8]>, Bytes>::builder()
        .max_capacity(room_for_all_keys(entry_bytes))
        .weigher(|k, v| (k.len() + v.len()) as u32)
        .build();
    let stores: [(&str, &dyn Store); 3] = [
        ("cachalot-lru", &lru),
        ("cachalot-tinylfu", &tiny),
        ("moka", &moka),
    ];
    for (_, store) in stores {
        for i in 0..work.keys {
            store.insert(Box::from(key(i)), value());
        }
    }
    moka.run_pending_tasks();
    bench_stores(c, "store/get_bounded", Op::Get, &work, &stores);
}

/// The group `name`: `op` on each of `stores`, at each thread count.
fn bench_stores(
    c: &mut Criterion,
    name: &str,
    op: Op,
    work: &Workload,
    stores: &[(&str, &dyn Store)],
) {
    let mut group = c.benchmark_group(name);
    for threads in THREADS {
        group.throughput(Throughput::Elements(BATCH_OPS * threads as u64));
        for &(label, store) in stores {
            group.bench_with_input(BenchmarkId::new(label, threads), &threads, |b, &t| {
                b.iter_custom(|iters| run(store, work, op, t, iters));
            });
        }
    }
    group.finish();
}

/// Inserts over a keyspace ten times what fits: hits replace, misses evict.
fn insert_evicting(c: &mut Criterion) {
    let work = Workload::new(EVICTION_KEYS);
    let entry_bytes = (KEY_BYTES + VALUE_BYTES) as u64;
    let cachalot = ours(Policy::allkeys_lru());
    let tiny = ours(Policy::tiny_lfu());
    for c in [&cachalot, &tiny] {
        c.set_max_weight(Some(
            EVICTION_RESIDENT * (entry_bytes + c.entry_overhead_bytes()),
        ));
    }
    let moka = moka::sync::Cache::<Box<[u8]>, Bytes>::builder()
        .max_capacity(EVICTION_RESIDENT * entry_bytes)
        .weigher(|k, v| (k.len() + v.len()) as u32)
        .build();
    let stores: [(&str, &dyn Store); 3] = [
        ("cachalot-lru", &cachalot),
        ("cachalot-tinylfu", &tiny),
        ("moka", &moka),
    ];
    bench_stores(c, "store/insert_evicting", Op::Insert, &work, &stores);
}

/// Switching from `noeviction` into `allkeys-lru` and back: the LRU lists' rebuild from
/// last-access times, over [`KEYS`] entries last accessed in random order (elements are
/// entries relinked).
fn policy_switch(c: &mut Criterion) {
    let clock = Arc::new(ManualClock::new(0));
    let cache = Cache::<Box<[u8]>, Bytes>::builder()
        .policy(Policy::no_eviction())
        .clock(clock.clone())
        .build()
        .expect("valid configuration");
    let mut rng = StdRng::seed_from_u64(SEED);
    for i in 0..KEYS as u32 {
        clock.set(rng.gen_range(1..1_000_000_000));
        Store::insert(&cache, Box::from(key(i)), value());
    }
    let mut group = c.benchmark_group("store/set_policy");
    group.throughput(Throughput::Elements(KEYS as u64));
    group.bench_function("noeviction-to-lru-and-back", |b| {
        b.iter(|| {
            cache.set_policy(Policy::allkeys_lru());
            cache.set_policy(Policy::no_eviction());
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = get_and_insert, get_bounded, insert_evicting, policy_switch
}
criterion_main!(benches);
