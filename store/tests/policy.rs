//! Eviction policies on a single shard, where their choices are exact and observable.
//!
//! Access times are kept in whole seconds (as Redis's LRU clock is), so tests that order
//! accesses advance the clock by a second between them.

use std::sync::Arc;
use std::time::Duration;

use cachalot_store::{Cache, Error, ManualClock, Policy, RemovalCause};
use parking_lot::Mutex;

const START_MILLIS: u64 = 10_000_000;

type Evicted = Arc<Mutex<Vec<u32>>>;

/// A one-shard cache of at most `max` entries under `policy`, recording evicted keys.
fn bounded(policy: Policy, max: u64) -> (Cache<u32, u32>, Arc<ManualClock>, Evicted) {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let evicted: Evicted = Arc::default();
    let sink = Arc::clone(&evicted);
    let cache = Cache::builder()
        .shards(1)
        .max_entries(max)
        .policy(policy)
        .clock(clock.clone())
        .removal_listener(move |k: &u32, _: &u32, cause| {
            if cause == RemovalCause::Evicted {
                sink.lock().push(*k);
            }
        })
        .build()
        .expect("valid configuration");
    (cache, clock, evicted)
}

fn ttl(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[test]
fn lru_evicts_the_least_recently_used() {
    let (cache, clock, evicted) = bounded(Policy::allkeys_lru(), 3);
    for k in 1..=3 {
        cache.insert(k, k).expect("fits");
        clock.advance(Duration::from_secs(1));
    }
    cache.get(&1);
    cache.insert(4, 4).expect("evicts");
    assert_eq!(*evicted.lock(), vec![2]);
    cache.peek_with(&3, |_| ());
    cache.insert(5, 5).expect("evicts");
    assert_eq!(*evicted.lock(), vec![2, 3], "peeking records no access");
    assert!(cache.contains(&1) && cache.contains(&4) && cache.contains(&5));
}

#[test]
fn switching_into_lru_orders_eviction_by_last_access_time() {
    let (cache, clock, evicted) = bounded(Policy::no_eviction(), 4);
    for k in 1..=4 {
        cache.insert(k, k).expect("fits");
        clock.advance(Duration::from_secs(1));
    }
    for k in [3, 1, 4, 2] {
        cache.get(&k);
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(cache.insert(5, 5), Err(Error::TooManyEntries { max: 4 }));
    cache.set_policy(Policy::allkeys_lru());
    for k in 5..=8 {
        cache.insert(k, k).expect("evicts");
    }
    assert_eq!(*evicted.lock(), vec![3, 1, 4, 2]);
}

#[test]
fn accesses_while_the_list_is_off_count_after_switching_back() {
    let (cache, clock, evicted) = bounded(Policy::allkeys_lru(), 5);
    for k in 1..=5 {
        cache.insert(k, k).expect("fits");
        clock.advance(Duration::from_secs(1));
    }
    cache.set_policy(Policy::allkeys_random());
    // Reads, an overwrite, a removal and a new key, none of them seen by a list.
    cache.get(&1);
    clock.advance(Duration::from_secs(1));
    cache.insert(3, 30).expect("fits");
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.remove(&2), Some(2));
    cache.insert(6, 6).expect("fits");
    clock.advance(Duration::from_secs(1));
    cache.peek_with(&4, |_| ());
    cache.set_policy(Policy::allkeys_lru());
    for k in 7..=11 {
        cache.insert(k, k).expect("evicts");
    }
    assert_eq!(
        *evicted.lock(),
        vec![4, 5, 1, 3, 6],
        "last access order; peeking is no access"
    );
}

#[test]
fn lfu_keeps_the_frequently_read() {
    let (cache, clock, _) = bounded(Policy::allkeys_lfu(), 10);
    for k in 0..10 {
        cache.insert(k, k).expect("fits");
    }
    for _ in 0..50 {
        for k in 0..5 {
            cache.get(&k);
        }
    }
    clock.advance(Duration::from_secs(1));
    for k in 100..120 {
        cache.insert(k, k).expect("evicts");
    }
    for k in 0..5 {
        assert!(cache.contains(&k), "frequent key {k} was evicted");
    }
    assert_eq!(cache.len(), 10);
}

#[test]
fn lfu_counters_decay_so_old_favourites_can_go() {
    let (cache, clock, evicted) = bounded(Policy::allkeys_lfu(), 2);
    cache.insert(1, 1).expect("fits");
    for _ in 0..20 {
        cache.get(&1);
    }
    clock.advance(Duration::from_secs(60 * 60));
    cache.insert(2, 2).expect("fits");
    cache.get(&2);
    cache.insert(3, 3).expect("evicts");
    assert_eq!(*evicted.lock(), vec![1]);
}

#[test]
fn volatile_ttl_evicts_the_soonest_expiring() {
    let (cache, _, evicted) = bounded(Policy::volatile_ttl(), 4);
    cache.insert_with_ttl(1, 1, ttl(30)).expect("fits");
    cache.insert_with_ttl(2, 2, ttl(10)).expect("fits");
    cache.insert(3, 3).expect("fits");
    cache.insert_with_ttl(4, 4, ttl(20)).expect("fits");
    cache.insert(5, 5).expect("evicts");
    cache.insert(6, 6).expect("evicts");
    assert_eq!(*evicted.lock(), vec![2, 4]);
}

#[test]
fn volatile_lru_evicts_the_least_recently_used_expiring_key() {
    let (cache, clock, evicted) = bounded(Policy::volatile_lru(), 4);
    cache.insert(1, 1).expect("fits");
    for k in 2..=4 {
        clock.advance(Duration::from_secs(1));
        cache.insert_with_ttl(k, k, ttl(60)).expect("fits");
    }
    clock.advance(Duration::from_secs(1));
    cache.get(&2);
    cache.insert_with_ttl(5, 5, ttl(60)).expect("evicts");
    assert_eq!(*evicted.lock(), vec![3]);
}

#[test]
fn volatile_policies_never_evict_persistent_keys() {
    for policy in Policy::all().filter(|p| p.is_volatile_only()) {
        let (cache, _, evicted) = bounded(policy, 10);
        for k in 0..5 {
            cache.insert(k, k).expect("fits");
        }
        for k in 5..10 {
            cache
                .insert_with_ttl(k, k, ttl(60 + u64::from(k)))
                .expect("fits");
        }
        for k in 10..15 {
            cache
                .insert_with_ttl(k, k, ttl(600))
                .expect("evicts a volatile key");
        }
        for k in 0..5 {
            assert!(
                cache.contains(&k),
                "{} evicted persistent {k}",
                policy.redis_name()
            );
        }
        assert_eq!(evicted.lock().len(), 5);
        // Only persistent keys and the protected ones left to choose from: refuse.
        for k in 15..20 {
            cache.insert(k, k).expect("evicts a volatile key");
        }
        let refused = cache.insert(99, 99);
        assert_eq!(
            refused,
            Err(Error::TooManyEntries { max: 10 }),
            "{}",
            policy.redis_name()
        );
        assert!(!cache.contains(&99));
        assert_eq!(cache.len(), 10);
    }
}

#[test]
fn noeviction_returns_out_of_memory_and_keeps_the_old_data() {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let cache: Cache<u32, Vec<u8>> = Cache::builder()
        .shards(1)
        .policy(Policy::no_eviction())
        .weigher(|_, v: &Vec<u8>| v.len() as u64)
        .clock(clock)
        .build()
        .expect("valid");
    let overhead = cache.entry_overhead_bytes();
    cache.set_max_weight(Some(3 * (100 + overhead)));
    for k in 0..3 {
        cache.insert(k, vec![1; 100]).expect("fits");
    }
    assert_eq!(
        cache.insert(3, vec![2; 100]),
        Err(Error::OutOfMemory {
            needed: 100 + overhead,
            max: 3 * (100 + overhead)
        })
    );
    assert_eq!(
        cache.insert(0, vec![2; 101]),
        Err(Error::OutOfMemory {
            needed: 1,
            max: 3 * (100 + overhead)
        })
    );
    assert_eq!(cache.get(&0), Some(vec![1; 100]));
    assert!(!cache.contains(&3));
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.stats().evictions, 0);
    // Replacing with something no larger still works.
    assert!(cache.insert(0, vec![3; 100]).is_ok());
}

#[test]
fn a_key_just_inserted_reads_back_under_every_policy() {
    for policy in Policy::all().filter(|p| *p != Policy::no_eviction()) {
        let clock = Arc::new(ManualClock::new(START_MILLIS));
        let cache: Cache<u32, Vec<u8>> = Cache::builder()
            .shards(1)
            .policy(policy)
            .weigher(|_, v: &Vec<u8>| v.len() as u64)
            .clock(clock)
            .build()
            .expect("valid");
        let overhead = cache.entry_overhead_bytes();
        let bound = 10 * (100 + overhead);
        cache.set_max_weight(Some(bound));
        for k in 0..200u32 {
            let size = 1 + (k as usize * 37) % 400;
            let written = if policy.is_volatile_only() {
                cache.insert_with_ttl(k, vec![0; size], ttl(60))
            } else {
                cache.insert(k, vec![0; size])
            };
            assert!(written.is_ok(), "{}: {written:?}", policy.redis_name());
            assert_eq!(
                cache.get_with(&k, Vec::len),
                Some(size),
                "{} lost the key it just wrote",
                policy.redis_name()
            );
            assert!(cache.weighted_size() <= bound, "{}", policy.redis_name());
            // Replacing the only entry with something bigger must not evict it either.
            let grown = cache.compute(k, |e| {
                if let Some(v) = e.get_mut() {
                    v.push(1);
                }
            });
            assert!(grown.is_ok());
            assert_eq!(cache.get_with(&k, Vec::len), Some(size + 1));
        }
    }
}

#[test]
fn allkeys_random_keeps_the_bound() {
    let (cache, _, evicted) = bounded(Policy::allkeys_random(), 50);
    for k in 0..500 {
        cache.insert(k, k).expect("evicts");
        assert!(cache.contains(&k));
    }
    assert_eq!(cache.len(), 50);
    assert_eq!(evicted.lock().len(), 450);
}

#[test]
fn the_policy_can_change_at_runtime() {
    let (cache, _, evicted) = bounded(Policy::no_eviction(), 2);
    cache.insert(1, 1).expect("fits");
    cache.insert(2, 2).expect("fits");
    assert!(cache.insert(3, 3).is_err());
    cache.set_policy(Policy::allkeys_lru());
    assert_eq!(cache.policy(), Policy::allkeys_lru());
    cache.insert(3, 3).expect("evicts");
    assert_eq!(*evicted.lock(), vec![1]);
}

#[test]
fn lowering_max_weight_evicts_at_once() {
    let cache: Cache<u32, u32> = Cache::builder().shards(4).build().expect("valid");
    for k in 0..100 {
        cache.insert(k, k).expect("unbounded");
    }
    let per_entry = cache.entry_overhead_bytes();
    cache.set_max_weight(Some(10 * per_entry));
    assert_eq!(cache.len(), 10);
    assert_eq!(cache.stats().evictions, 90);
    cache.set_max_weight(None);
    assert_eq!(cache.max_weight(), None);
}

#[test]
fn a_full_shard_borrows_room_from_the_others() {
    // Many shards and a bound of a few entries: most writes land in a shard holding nothing
    // else, so room must come from other shards.
    let cache: Cache<u32, u32> = Cache::builder()
        .shards(64)
        .max_entries(4)
        .build()
        .expect("valid");
    for k in 0..1_000 {
        cache.insert(k, k).expect("evicts elsewhere");
        assert!(cache.contains(&k));
        assert!(cache.len() <= 4);
    }
}

#[test]
fn expired_victims_are_reported_as_expired() {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let causes = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&causes);
    let cache: Cache<u32, u32> = Cache::builder()
        .shards(1)
        .max_entries(1)
        .clock(clock.clone())
        .removal_listener(move |_, _, cause| sink.lock().push(cause))
        .build()
        .expect("valid");
    cache.insert_with_ttl(1, 1, ttl(1)).expect("fits");
    clock.advance(ttl(1));
    cache.insert(2, 2).expect("fits");
    assert_eq!(*causes.lock(), vec![RemovalCause::Expired]);
    assert_eq!(cache.stats().evictions, 0);
}

#[test]
fn modify_runs_over_the_bound_where_compute_is_refused() {
    let cache = cachalot_store::Cache::<u32, Vec<u8>>::builder()
        .shards(1)
        .policy(cachalot_store::Policy::no_eviction())
        .weigher(|_, v| v.len() as u64)
        .max_weight(10_000)
        .build()
        .expect("valid");
    cache.insert(1, vec![0; 100]).expect("fits");
    // Grow past the bound through compute (allowed: it was under the bound before).
    cache
        .compute(1, |e| {
            if let Some(v) = e.get_mut() {
                v.resize(20_000, 0);
            }
        })
        .expect("admitted while under the bound");
    assert!(cache.weighted_size() > 10_000);
    assert!(
        cache.compute(1, |_| ()).is_err(),
        "compute refuses over the bound"
    );
    let shrunk = cache.modify(1, |e| {
        if let Some(v) = e.get_mut() {
            v.truncate(10);
        }
    });
    assert!(shrunk.is_ok(), "modify is never refused for memory");
    assert!(cache.weighted_size() <= 10_000);
}

#[test]
fn tinylfu_keeps_frequent_keys_through_a_scan_that_flushes_lru() {
    let survivors = |policy: Policy| {
        let (cache, _, _) = bounded(policy, 100);
        for k in 0..50 {
            cache.insert(k, k).expect("fits");
        }
        for _ in 0..5 {
            for k in 0..50 {
                assert_eq!(cache.get(&k), Some(k));
            }
        }
        // A scan of one-hit wonders, ten times the cache.
        for k in 1_000..2_000 {
            cache.insert(k, k).expect("evicts");
            assert_eq!(cache.get(&k), Some(k), "a key just inserted reads back");
        }
        assert_eq!(cache.len(), 100);
        (0..50).filter(|k| cache.contains(k)).count()
    };
    assert_eq!(survivors(Policy::allkeys_lru()), 0);
    assert_eq!(survivors(Policy::tiny_lfu()), 50);
}

#[test]
fn tinylfu_lets_a_new_favourite_in() {
    let (cache, _, _) = bounded(Policy::tiny_lfu(), 100);
    for k in 0..100 {
        cache.insert(k, k).expect("fits");
    }
    // A new key read often: each miss inserts it again (cache-aside), until admitted.
    let mut admitted = false;
    for _ in 0..20 {
        if cache.get(&500).is_none() {
            cache.insert(500, 500).expect("evicts");
        }
        // Other new keys push it out of the window.
        for k in 1_000..1_002 {
            cache.insert(k, k).expect("evicts");
        }
        admitted = cache.contains(&500);
    }
    assert!(admitted, "a frequently requested key never got in");
    assert_eq!(cache.len(), 100);
}

#[test]
fn tinylfu_under_a_weight_bound_keeps_the_bound() {
    let cache: Cache<u32, Vec<u8>> = Cache::builder()
        .shards(2)
        .policy(Policy::from_redis_name("allkeys-tinylfu").expect("known"))
        .weigher(|_, v: &Vec<u8>| v.len() as u64)
        .max_weight(20_000)
        .build()
        .expect("valid");
    for k in 0..5_000u32 {
        let size = 1 + (k as usize * 31) % 200;
        cache.insert(k % 700, vec![0; size]).expect("evicts");
        assert_eq!(cache.get_with(&(k % 700), Vec::len), Some(size));
        assert!(cache.weighted_size() <= 20_000);
    }
    assert_eq!(cache.policy(), Policy::tiny_lfu());
}
