//! Stress: threads mixing every operation; afterwards the totals match a full recount.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use cachalot_store::{Cache, ManualClock, Policy, RemovalCause};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const THREADS: u64 = 4;
const ITERATIONS: u64 = 50_000;
const KEYS: u64 = 2_000;

#[allow(clippy::ptr_arg)] // The weigher's signature is fixed by the cache's types.
fn weigher(_: &u64, v: &Vec<u8>) -> u64 {
    8 + v.len() as u64
}

#[test]
fn concurrent_operations_keep_the_totals_and_the_bound() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let removals: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let sink = Arc::clone(&removals);
    let cache: Cache<u64, Vec<u8>> = Cache::builder()
        .shards(8)
        .policy(Policy::allkeys_lru())
        .weigher(weigher)
        .clock(clock.clone())
        .removal_listener(move |_, _, cause| {
            let i = match cause {
                RemovalCause::Expired => 0,
                RemovalCause::Evicted => 1,
                RemovalCause::Removed => 2,
                _ => 3,
            };
            sink[i].fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .expect("valid");
    let max_weight = 300 * (cache.entry_overhead_bytes() + 40);
    cache.set_max_weight(Some(max_weight));

    let start = Barrier::new(THREADS as usize);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let cache = cache.clone();
            let clock = Arc::clone(&clock);
            let start = &start;
            scope.spawn(move || {
                start.wait();
                let mut rng = StdRng::seed_from_u64(t);
                let mut cursor = 0;
                for i in 0..ITERATIONS {
                    let key = rng.gen_range(0..KEYS);
                    let len = rng.gen_range(0..64);
                    match rng.gen_range(0..100) {
                        0..=24 => {
                            let _ = cache.get(&key);
                        }
                        25..=39 => {
                            let written = cache.insert(key, vec![t as u8; len]);
                            assert!(written.is_ok());
                        }
                        40..=49 => {
                            let ttl = Duration::from_millis(rng.gen_range(1..50));
                            let written = cache.insert_with_ttl(key, vec![1; len], ttl);
                            assert!(written.is_ok());
                        }
                        50..=59 => {
                            let _ = cache.remove(&key);
                        }
                        60..=74 => {
                            let appended = cache.compute(key, |e| match e.get_mut() {
                                Some(v) if v.len() < 200 => v.extend_from_slice(&[2; 8]),
                                Some(_) => {
                                    e.remove();
                                }
                                None => {
                                    e.insert(vec![2; len]);
                                }
                            });
                            assert!(appended.is_ok());
                        }
                        75..=79 => {
                            let at = rng.gen_bool(0.5).then(|| 1_000_000 + i * 2);
                            cache.set_expire_at(&key, at);
                        }
                        80..=84 => {
                            cursor = cache.scan(cursor, 16, |_, v| assert!(v.len() < 400));
                        }
                        85..=87 => {
                            cache.sweep_expired(64);
                        }
                        88..=89 => {
                            let _ = cache.random_key();
                        }
                        90..=93 => {
                            let _ = cache.entry_info(&key);
                            let _ = cache.ttl(&key);
                        }
                        94..=95 => {
                            let policies = [
                                Policy::allkeys_lru(),
                                Policy::allkeys_lfu(),
                                Policy::allkeys_random(),
                            ];
                            cache.set_policy(policies[rng.gen_range(0..policies.len())]);
                        }
                        _ => clock.advance(Duration::from_millis(1)),
                    }
                }
            });
        }
    });

    // Quiescent now. A first pass drops entries that expired; a second one recounts.
    let mut cursor = 0;
    loop {
        cursor = cache.scan(cursor, 100, |_, _| {});
        if cursor == 0 {
            break;
        }
    }
    let (mut len, mut weight) = (0u64, 0u64);
    let overhead = cache.entry_overhead_bytes();
    loop {
        cursor = cache.scan(cursor, 100, |k, v| {
            len += 1;
            weight += weigher(k, v) + overhead;
        });
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(cache.len(), len);
    assert_eq!(cache.weighted_size(), weight);
    assert!(weight <= max_weight, "{weight} > {max_weight}");
    let stats = cache.stats();
    assert!(
        stats.evictions > 0,
        "the bound was never reached: {stats:?}"
    );
    assert_eq!(stats.evictions, removals[1].load(Ordering::Relaxed));
    assert_eq!(stats.expirations, removals[0].load(Ordering::Relaxed));
    cache.clear();
    assert_eq!(
        (cache.len(), cache.weighted_size(), cache.expiring_len()),
        (0, 0, 0)
    );
}

#[test]
fn writers_fighting_over_a_tiny_cache_end_within_the_bound() {
    // Nearly every write must evict from another shard while others do the same.
    let cache: Cache<u64, u64> = Cache::builder()
        .shards(64)
        .max_entries(8)
        .build()
        .expect("valid");
    let start = Barrier::new(THREADS as usize);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let cache = cache.clone();
            let start = &start;
            scope.spawn(move || {
                start.wait();
                for i in 0..ITERATIONS / 4 {
                    let key = t * ITERATIONS + i;
                    assert!(cache.insert(key, i).is_ok());
                    let _ = cache.compute(key ^ 1, |e| e.insert(i));
                }
            });
        }
    });
    assert!(cache.len() <= 8, "{}", cache.len());
    let mut seen = 0;
    let mut cursor = 0;
    loop {
        cursor = cache.scan(cursor, 10, |_, _| seen += 1);
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen, cache.len());
}
