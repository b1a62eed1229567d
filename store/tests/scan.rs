//! SCAN: every key present for the whole scan is returned, whatever happens meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cachalot_store::{Cache, ManualClock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn full_scan(cache: &Cache<u64, u64>, count: usize) -> HashMap<u64, usize> {
    let mut seen = HashMap::new();
    let mut cursor = 0;
    loop {
        cursor = cache.scan(cursor, count, |k, _| *seen.entry(*k).or_insert(0) += 1);
        if cursor == 0 {
            return seen;
        }
    }
}

#[test]
fn a_quiet_cache_is_scanned_exactly_once() {
    for shards in [1, 4, 64] {
        let cache: Cache<u64, u64> = Cache::builder().shards(shards).build().expect("valid");
        for k in 0..3_000 {
            cache.insert(k, k).expect("unbounded");
        }
        for count in [1, 10, 1_000, usize::MAX] {
            let seen = full_scan(&cache, count);
            assert_eq!(seen.len(), 3_000, "shards={shards} count={count}");
            assert!(seen.values().all(|&n| n == 1));
        }
    }
}

#[test]
fn an_empty_cache_scans_in_one_call() {
    let cache: Cache<u64, u64> = Cache::builder().shards(16).build().expect("valid");
    assert_eq!(cache.scan(0, 10, |_, _| panic!("nothing to visit")), 0);
}

#[test]
fn keys_present_for_the_whole_scan_are_returned_despite_churn() {
    let mut rng = StdRng::seed_from_u64(0x5ca9);
    for (shards, count) in [(1, 3), (4, 7), (8, 50), (2, 1)] {
        let cache: Cache<u64, u64> = Cache::builder().shards(shards).build().expect("valid");
        let stable: HashSet<u64> = (0..300).collect();
        for &k in &stable {
            cache.insert(k, k).expect("unbounded");
        }
        // Churn keys interleaved with the stable ones, so freed slots sit among them.
        let mut churn: Vec<u64> = (1_000_000..1_000_300).collect();
        for &k in &churn {
            cache.insert(k, k).expect("unbounded");
        }
        let mut next_key = 2_000_000;
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            cursor = cache.scan(cursor, count, |k, _| {
                seen.insert(*k);
            });
            calls += 1;
            // Between steps: first grow the slabs well past a segment, then keep freeing and
            // refilling slots (net zero, so that the scan can finish).
            let (add, drop) = if calls <= 60 {
                (30 * count.max(10), 10)
            } else {
                (5, 5)
            };
            for _ in 0..add {
                cache.insert(next_key, next_key).expect("unbounded");
                churn.push(next_key);
                next_key += 1;
            }
            for _ in 0..drop {
                let i = rng.gen_range(0..churn.len());
                let k = churn.swap_remove(i);
                assert_eq!(cache.remove(&k), Some(k));
            }
            if cursor == 0 {
                break;
            }
            assert!(calls < 100_000, "scan does not terminate");
        }
        assert!(
            cache.len() > 1_500 * shards as u64,
            "the slabs did not grow"
        );
        let missing: Vec<_> = stable.difference(&seen).collect();
        assert!(
            missing.is_empty(),
            "shards={shards} count={count}: missing {missing:?}"
        );
    }
}

#[test]
fn the_cursor_encodes_position_and_shard() {
    let cache: Cache<u64, u64> = Cache::builder().shards(4).build().expect("valid");
    for k in 0..100 {
        cache.insert(k, k).expect("unbounded");
    }
    let mut visited = 0;
    let cursor = cache.scan(0, 1, |_, _| visited += 1);
    // One position visited in shard 0: next is position 1 of shard 0.
    assert_eq!(cursor, 1 << 2);
    assert_eq!(visited, 1);
    // A cursor past the end of the last shard completes the scan.
    assert_eq!(cache.scan((u64::from(u32::MAX) << 2) | 3, 10, |_, _| {}), 0);
}

#[test]
fn scanning_removes_expired_entries_instead_of_returning_them() {
    let clock = Arc::new(ManualClock::new(1_000));
    let cache: Cache<u64, u64> = Cache::builder()
        .shards(2)
        .clock(clock.clone())
        .build()
        .expect("valid");
    for k in 0..100 {
        if k % 2 == 0 {
            cache
                .insert_with_ttl(k, k, Duration::from_millis(5))
                .expect("unbounded");
        } else {
            cache.insert(k, k).expect("unbounded");
        }
    }
    clock.advance(Duration::from_millis(5));
    let seen = full_scan(&cache, 10);
    assert!(seen.keys().all(|k| k % 2 == 1));
    assert_eq!(seen.len(), 50);
    assert_eq!(cache.len(), 50);
    assert_eq!(cache.stats().expirations, 50);
}
