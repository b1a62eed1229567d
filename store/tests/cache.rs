//! Behaviour of single-key operations, expiry, `compute`, listener causes and statistics.

use std::sync::Arc;
use std::time::Duration;

use cachalot_store::{Cache, CacheStats, Error, ManualClock, Policy, RemovalCause};
use parking_lot::Mutex;

type Log = Arc<Mutex<Vec<(String, String, RemovalCause)>>>;

const START_MILLIS: u64 = 1_000_000;

fn cache_with(
    configure: impl FnOnce(
        cachalot_store::CacheBuilder<String, String>,
    ) -> cachalot_store::CacheBuilder<String, String>,
) -> (Cache<String, String>, Arc<ManualClock>, Log) {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let builder = Cache::builder()
        .clock(clock.clone())
        .weigher(|k: &String, v: &String| (k.len() + v.len()) as u64)
        .removal_listener(move |k: &String, v: &String, cause| {
            sink.lock().push((k.clone(), v.clone(), cause));
        });
    let cache = configure(builder).build().expect("valid configuration");
    (cache, clock, log)
}

fn plain() -> (Cache<String, String>, Arc<ManualClock>, Log) {
    cache_with(|b| b)
}

fn s(x: &str) -> String {
    x.to_owned()
}

fn taken(log: &Log) -> Vec<(String, String, RemovalCause)> {
    std::mem::take(&mut *log.lock())
}

#[test]
fn an_inserted_value_reads_back_through_a_borrowed_key() {
    let (cache, _, log) = plain();
    assert_eq!(cache.insert(s("k"), s("v")), Ok(None));
    assert_eq!(cache.get("k"), Some(s("v")));
    assert_eq!(cache.get_with("k", String::len), Some(1));
    assert_eq!(cache.peek_with("k", |v| v.clone()), Some(s("v")));
    assert!(cache.contains("k"));
    assert!(!cache.contains("other"));
    assert_eq!(cache.len(), 1);
    assert!(taken(&log).is_empty());
}

#[test]
fn replacing_a_value_returns_and_reports_the_old_one() {
    let (cache, _, log) = plain();
    cache.insert(s("k"), s("one")).expect("fits");
    assert_eq!(cache.insert(s("k"), s("two")), Ok(Some(s("one"))));
    assert_eq!(cache.get("k"), Some(s("two")));
    assert_eq!(
        taken(&log),
        vec![(s("k"), s("one"), RemovalCause::Replaced)]
    );
    assert_eq!(cache.len(), 1);
}

#[test]
fn removing_returns_the_value_and_reports_it_once() {
    let (cache, _, log) = plain();
    cache.insert(s("k"), s("v")).expect("fits");
    assert_eq!(cache.remove("k"), Some(s("v")));
    assert_eq!(cache.remove("k"), None);
    assert_eq!(taken(&log), vec![(s("k"), s("v"), RemovalCause::Removed)]);
    assert!(cache.is_empty());
    assert_eq!(cache.weighted_size(), 0);
}

#[test]
fn the_weighted_size_is_the_weigher_plus_the_overhead() {
    let (cache, _, _) = plain();
    cache.insert(s("ab"), s("cde")).expect("fits");
    cache.insert(s("f"), s("")).expect("fits");
    let overhead = cache.entry_overhead_bytes();
    assert!(overhead > 0);
    assert_eq!(cache.weighted_size(), 5 + 1 + 2 * overhead);
    assert_eq!(cache.entry_info("ab").map(|i| i.weight), Some(5 + overhead));
}

#[test]
fn an_expired_key_never_reads_back_and_is_reported_expired() {
    let (cache, clock, log) = plain();
    cache
        .insert_with_ttl(s("k"), s("v"), Duration::from_millis(100))
        .expect("fits");
    clock.advance(Duration::from_millis(99));
    assert_eq!(cache.get("k"), Some(s("v")));
    clock.advance(Duration::from_millis(1));
    assert_eq!(cache.get("k"), None);
    assert_eq!(cache.len(), 0);
    assert_eq!(taken(&log), vec![(s("k"), s("v"), RemovalCause::Expired)]);
    assert_eq!(cache.stats().expirations, 1);
}

#[test]
fn ttl_and_expiry_queries_distinguish_absent_from_persistent() {
    let (cache, clock, _) = plain();
    cache.insert(s("p"), s("v")).expect("fits");
    cache
        .insert_with_expiry(s("e"), s("v"), Some(START_MILLIS + 5_000))
        .expect("fits");
    assert_eq!(cache.expire_at("p"), Some(None));
    assert_eq!(cache.ttl("p"), Some(None));
    assert_eq!(cache.expire_at("e"), Some(Some(START_MILLIS + 5_000)));
    clock.advance(Duration::from_secs(2));
    assert_eq!(cache.ttl("e"), Some(Some(Duration::from_secs(3))));
    assert_eq!(cache.ttl("missing"), None);
    assert_eq!(cache.expire_at("missing"), None);
    assert_eq!(cache.expiring_len(), 1);
}

#[test]
fn set_expire_at_persists_extends_or_removes() {
    let (cache, clock, log) = plain();
    cache
        .insert_with_ttl(s("k"), s("v"), Duration::from_secs(1))
        .expect("fits");
    assert!(cache.set_expire_at("k", None));
    assert_eq!(cache.expiring_len(), 0);
    clock.advance(Duration::from_secs(5));
    assert!(cache.contains("k"));
    let later = clock_now(&clock) + 10;
    assert!(cache.set_expire_at("k", Some(later)));
    assert_eq!(cache.expire_at("k"), Some(Some(later)));
    assert!(cache.set_expire_at("k", Some(clock_now(&clock))));
    assert!(!cache.contains("k"));
    assert!(!cache.set_expire_at("k", None));
    assert_eq!(taken(&log), vec![(s("k"), s("v"), RemovalCause::Expired)]);
}

fn clock_now(clock: &ManualClock) -> u64 {
    use cachalot_store::Clock;
    clock.now_millis()
}

#[test]
fn writing_with_a_past_expiry_deletes_the_key() {
    let (cache, _, log) = plain();
    cache.insert(s("k"), s("old")).expect("fits");
    let old = cache.insert_with_expiry(s("k"), s("new"), Some(START_MILLIS - 1));
    assert_eq!(old, Ok(Some(s("old"))));
    assert!(!cache.contains("k"));
    assert_eq!(
        taken(&log),
        vec![
            (s("k"), s("old"), RemovalCause::Replaced),
            (s("k"), s("new"), RemovalCause::Expired)
        ]
    );
    assert_eq!(cache.len(), 0);
}

#[test]
fn the_default_ttl_applies_to_insert_only() {
    let (cache, clock, _) = cache_with(|b| b.default_ttl(Duration::from_secs(10)));
    cache.insert(s("ttl"), s("v")).expect("fits");
    cache
        .insert_with_expiry(s("forever"), s("v"), None)
        .expect("fits");
    cache
        .compute(s("computed"), |e| e.insert(s("v")))
        .expect("fits");
    assert_eq!(cache.expire_at("ttl"), Some(Some(START_MILLIS + 10_000)));
    assert_eq!(cache.expire_at("forever"), Some(None));
    assert_eq!(
        cache.expire_at("computed"),
        Some(Some(START_MILLIS + 10_000))
    );
    clock.advance(Duration::from_secs(10));
    assert!(!cache.contains("ttl"));
    assert!(!cache.contains("computed"));
    assert!(cache.contains("forever"));
}

#[test]
fn compute_reads_modifies_and_reweighs_atomically() {
    let (cache, _, log) = plain();
    let appended = cache.compute(s("k"), |e| {
        assert!(!e.is_occupied());
        e.insert(s("ab"));
        e.get().map(String::len)
    });
    assert_eq!(appended, Ok(Some(2)));
    let overhead = cache.entry_overhead_bytes();
    assert_eq!(cache.weighted_size(), 3 + overhead);
    cache
        .compute(s("k"), |e| {
            if let Some(v) = e.get_mut() {
                v.push_str("cdef");
            }
        })
        .expect("fits");
    assert_eq!(cache.get("k"), Some(s("abcdef")));
    assert_eq!(cache.weighted_size(), 7 + overhead);
    assert!(taken(&log).is_empty());
    assert_eq!(cache.stats().inserts, 1);
}

#[test]
fn compute_insert_keeps_the_expiry_and_does_not_report_the_old_value() {
    let (cache, _, log) = plain();
    cache
        .insert_with_expiry(s("k"), s("v1"), Some(START_MILLIS + 50))
        .expect("fits");
    let old = cache.compute(s("k"), |e| e.insert(s("v2")));
    assert_eq!(old, Ok(Some(s("v1"))));
    assert_eq!(cache.expire_at("k"), Some(Some(START_MILLIS + 50)));
    assert!(taken(&log).is_empty());
}

#[test]
fn compute_remove_hands_the_value_over_and_discard_reports_it() {
    let (cache, _, log) = plain();
    cache.insert(s("a"), s("1")).expect("fits");
    cache.insert(s("b"), s("2")).expect("fits");
    assert_eq!(cache.compute(s("a"), |e| e.remove()), Ok(Some(s("1"))));
    assert_eq!(cache.compute(s("b"), |e| e.discard()), Ok(true));
    assert_eq!(cache.compute(s("c"), |e| e.discard()), Ok(false));
    assert_eq!(taken(&log), vec![(s("b"), s("2"), RemovalCause::Removed)]);
    assert!(cache.is_empty());
    assert_eq!(cache.weighted_size(), 0);
}

#[test]
fn compute_can_remove_and_reinsert_within_one_call() {
    let (cache, _, log) = plain();
    cache.insert(s("k"), s("old")).expect("fits");
    cache
        .compute(s("k"), |e| {
            assert!(e.discard());
            assert_eq!(e.insert(s("new")), None);
            assert_eq!(e.remove(), Some(s("new")));
            assert_eq!(e.insert(s("newer")), None);
        })
        .expect("fits");
    assert_eq!(cache.get("k"), Some(s("newer")));
    assert_eq!(taken(&log), vec![(s("k"), s("old"), RemovalCause::Removed)]);
    assert_eq!(cache.len(), 1);
}

#[test]
fn compute_sees_an_expired_entry_as_vacant() {
    let (cache, clock, log) = plain();
    cache
        .insert_with_ttl(s("k"), s("v"), Duration::from_millis(10))
        .expect("fits");
    clock.advance(Duration::from_millis(10));
    let seen = cache.compute(s("k"), |e| e.get().cloned());
    assert_eq!(seen, Ok(None));
    assert_eq!(taken(&log), vec![(s("k"), s("v"), RemovalCause::Expired)]);
}

#[test]
fn compute_can_set_and_clear_expiry() {
    let (cache, _, log) = plain();
    cache.insert(s("k"), s("v")).expect("fits");
    cache
        .compute(s("k"), |e| e.set_expire_at(Some(START_MILLIS + 7)))
        .expect("fits");
    assert_eq!(cache.expire_at("k"), Some(Some(START_MILLIS + 7)));
    assert_eq!(
        cache.compute(s("k"), |e| e.expire_at()),
        Ok(Some(START_MILLIS + 7))
    );
    cache
        .compute(s("k"), |e| e.set_expire_at(Some(START_MILLIS)))
        .expect("fits");
    assert!(!cache.contains("k"));
    assert_eq!(taken(&log), vec![(s("k"), s("v"), RemovalCause::Expired)]);
    // Setting an expiry on a vacant entry does nothing.
    cache
        .compute(s("k"), |e| e.set_expire_at(Some(START_MILLIS + 7)))
        .expect("fits");
    assert!(!cache.contains("k"));
}

#[test]
fn a_value_larger_than_the_bound_is_refused_and_changes_nothing() {
    let (cache, _, log) = cache_with(|b| b.max_weight(1_000));
    let overhead = cache.entry_overhead_bytes();
    cache.insert(s("k"), s("v")).expect("fits");
    let huge = "x".repeat(1_000);
    let refused = cache.insert(s("k"), huge);
    assert_eq!(
        refused,
        Err(Error::OutOfMemory {
            needed: 1 + 1_000 + overhead - 1_000,
            max: 1_000
        })
    );
    assert_eq!(cache.get("k"), Some(s("v")));
    assert!(taken(&log).is_empty());
}

#[test]
fn compute_is_refused_without_running_when_over_the_bound_under_noeviction() {
    let (cache, _, _) = cache_with(|b| b.policy(Policy::no_eviction()));
    for i in 0..10 {
        cache.insert(format!("k{i}"), s("v")).expect("unbounded");
    }
    cache.set_max_weight(Some(cache.weighted_size() - 1));
    assert_eq!(cache.len(), 10, "noeviction never evicts");
    let mut ran = false;
    let result = cache.compute(s("k0"), |_| ran = true);
    assert!(matches!(result, Err(Error::OutOfMemory { needed: 1, .. })));
    assert!(!ran);
    // Growing writes are refused; a write that ends within the bound is fine.
    assert!(cache.insert(s("k0"), s("vv")).is_err());
    assert_eq!(cache.insert(s("k0"), s("")), Ok(Some(s("v"))));
    assert!(cache.compute(s("k0"), |e| e.insert(s("w"))).is_ok());
}

#[test]
fn a_compute_may_exceed_the_bound_by_its_own_entry_only() {
    let (cache, _, _) = cache_with(|b| b.policy(Policy::no_eviction()).max_weight(1_000));
    let overhead = cache.entry_overhead_bytes();
    cache.insert(s("a"), s("1")).expect("fits");
    cache
        .compute(s("b"), |e| e.insert("x".repeat(1_000)))
        .expect("the cache was within its bound");
    assert_eq!(cache.weighted_size(), 2 + 1_001 + 2 * overhead);
    assert!(cache.insert(s("c"), s("1")).is_err());
}

#[test]
fn the_entry_bound_counts_entries() {
    let (cache, _, _) = cache_with(|b| b.max_entries(3));
    for i in 0..10 {
        cache.insert(format!("k{i}"), s("v")).expect("evicts");
        assert!(cache.len() <= 3);
    }
    assert_eq!(cache.stats().evictions, 7);
    let (none, _, _) = cache_with(|b| b.max_entries(0));
    assert_eq!(
        none.insert(s("k"), s("v")),
        Err(Error::TooManyEntries { max: 0 })
    );
}

#[test]
fn entry_info_reports_idle_time_or_frequency_and_weight_without_touching() {
    let (cache, clock, _) = cache_with(|b| b.policy(Policy::allkeys_lfu()));
    cache
        .insert_with_expiry(s("k"), s("v"), Some(START_MILLIS + 60_000))
        .expect("fits");
    clock.advance(Duration::from_millis(1_500));
    let info = cache.entry_info("k").expect("present");
    assert_eq!((info.idle_seconds, info.frequency), (None, Some(5)));
    assert_eq!(info.expire_at, Some(START_MILLIS + 60_000));
    assert_eq!(
        info.weight,
        cache.entry_overhead_bytes() + 2,
        "\"k\" + \"v\" + overhead"
    );
    cache.get("k");
    assert_eq!(cache.entry_info("k").and_then(|i| i.frequency), Some(6));
    assert_eq!(cache.entry_info("missing"), None);

    let (lru, clock, _) = plain();
    lru.insert(s("k"), s("v")).expect("fits");
    clock.advance(Duration::from_millis(2_500));
    let info = lru.entry_info("k").expect("present");
    assert_eq!((info.idle_seconds, info.frequency), (Some(2), None));
    assert_eq!(lru.entry_info("k").and_then(|i| i.idle_seconds), Some(2));
    lru.get("k");
    assert_eq!(lru.entry_info("k").and_then(|i| i.idle_seconds), Some(0));
}

#[test]
fn switching_between_lru_and_lfu_policies_restarts_the_access_record() {
    let (cache, clock, _) = plain();
    cache.insert(s("k"), s("v")).expect("fits");
    clock.advance(Duration::from_secs(30));
    assert_eq!(cache.entry_info("k").and_then(|i| i.idle_seconds), Some(30));

    cache.set_policy(Policy::volatile_lfu());
    assert_eq!(
        cache.entry_info("k").and_then(|i| i.frequency),
        Some(5),
        "a fresh counter"
    );
    cache.get("k");
    assert_eq!(cache.entry_info("k").and_then(|i| i.frequency), Some(6));
    clock.advance(Duration::from_secs(120));
    assert_eq!(
        cache.entry_info("k").and_then(|i| i.frequency),
        Some(4),
        "decays one point per idle minute"
    );

    cache.set_policy(Policy::no_eviction());
    clock.advance(Duration::from_secs(7));
    let info = cache.entry_info("k").expect("present");
    assert_eq!(
        (info.idle_seconds, info.frequency),
        (Some(7), None),
        "idle since the switch"
    );
}

#[test]
fn stats_count_hits_misses_inserts_evictions_and_expirations() {
    let (cache, clock, _) = cache_with(|b| b.max_entries(2));
    cache.insert(s("a"), s("1")).expect("fits");
    cache.insert(s("b"), s("2")).expect("fits");
    cache.get("a");
    cache.get("zzz");
    cache.insert(s("c"), s("3")).expect("evicts b");
    cache
        .insert_with_ttl(s("d"), s("4"), Duration::from_millis(5))
        .expect("evicts");
    clock.advance(Duration::from_millis(5));
    cache.get("d");
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 1,
            misses: 2,
            inserts: 4,
            evictions: 2,
            expirations: 1
        }
    );
}

#[test]
fn clear_reports_every_entry_and_zeroes_the_totals() {
    let (cache, _, log) = plain();
    for i in 0..100 {
        cache
            .insert_with_ttl(format!("k{i}"), s("v"), Duration::from_secs(60))
            .expect("fits");
    }
    cache.clear();
    assert_eq!(
        (cache.len(), cache.weighted_size(), cache.expiring_len()),
        (0, 0, 0)
    );
    let log = taken(&log);
    assert_eq!(log.len(), 100);
    assert!(log.iter().all(|(_, _, c)| *c == RemovalCause::Removed));
    cache.insert(s("again"), s("v")).expect("fits");
    assert_eq!(cache.get("again"), Some(s("v")));
}

#[test]
fn random_key_returns_live_keys_only() {
    let (cache, clock, _) = plain();
    assert_eq!(cache.random_key(), None);
    cache
        .insert_with_ttl(s("dies"), s("v"), Duration::from_millis(1))
        .expect("fits");
    cache.insert(s("lives"), s("v")).expect("fits");
    clock.advance(Duration::from_millis(1));
    for _ in 0..20 {
        assert_eq!(cache.random_key(), Some(s("lives")));
    }
}

#[test]
fn random_key_reaches_every_key() {
    let (cache, _, _) = cache_with(|b| b.shards(4));
    for i in 0..8 {
        cache.insert(format!("k{i}"), s("v")).expect("fits");
    }
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2_000 {
        seen.extend(cache.random_key());
    }
    assert_eq!(seen.len(), 8);
}

#[test]
fn the_sweep_removes_expired_keys_in_bounded_steps() {
    let (cache, clock, log) = cache_with(|b| b.shards(4));
    for i in 0..1_000 {
        let ttl = Duration::from_millis(if i % 2 == 0 { 10 } else { 10_000 });
        cache
            .insert_with_ttl(format!("k{i}"), s("v"), ttl)
            .expect("fits");
    }
    for i in 0..100 {
        cache.insert(format!("p{i}"), s("v")).expect("fits");
    }
    clock.advance(Duration::from_millis(10));
    let first = cache.sweep_expired(100);
    assert!(first <= 100);
    let mut removed = first;
    for _ in 0..100 {
        removed += cache.sweep_expired(100);
    }
    assert_eq!(removed, 500);
    assert_eq!(cache.len(), 600);
    assert_eq!(cache.expiring_len(), 500);
    let log = taken(&log);
    assert_eq!(log.len(), 500);
    assert!(log.iter().all(|(_, _, c)| *c == RemovalCause::Expired));
    assert_eq!(cache.sweep_expired(0), 0);
}

#[test]
fn expired_usage_counts_expired_entries_without_removing_them() {
    let (cache, clock, log) = cache_with(|b| b.shards(4));
    for i in 0..10 {
        let ttl = Duration::from_millis(if i < 4 { 10 } else { 20 });
        cache
            .insert_with_ttl(format!("k{i}"), s("v"), ttl)
            .expect("fits");
    }
    cache.insert(s("forever"), s("v")).expect("fits");
    let per_entry = 3 + cache.entry_overhead_bytes();
    assert_eq!(cache.expired_usage().entries, 0);
    clock.advance(Duration::from_millis(10));
    let usage = cache.expired_usage();
    assert_eq!((usage.entries, usage.weight), (4, 4 * per_entry));
    clock.advance(Duration::from_millis(10));
    assert_eq!(cache.expired_usage().entries, 10);
    assert_eq!(cache.len(), 11);
    assert!(taken(&log).is_empty());
    assert_eq!(cache.sweep_expired(1_000), 10);
    assert_eq!(cache.expired_usage().entries, 0);
}

#[test]
fn sampling_removes_the_expired_entries_it_meets() {
    let (cache, clock, log) = cache_with(|b| b.shards(4));
    for i in 0..100 {
        cache
            .insert_with_ttl(format!("k{i}"), s("v"), Duration::from_millis(10))
            .expect("fits");
    }
    cache.insert(s("forever"), s("v")).expect("fits");
    assert_eq!(cache.sample_expired(1_000), 0);
    clock.advance(Duration::from_millis(10));
    let removed = cache.sample_expired(64);
    assert!((1..=64).contains(&removed), "{removed}");
    assert_eq!(cache.len(), 101 - removed as u64);
    let log = taken(&log);
    assert_eq!(log.len(), removed);
    assert!(log.iter().all(|(_, _, c)| *c == RemovalCause::Expired));
    assert_eq!(cache.sample_expired(0), 0);
}

#[test]
fn the_sweep_is_fast_for_a_thousand_checks() {
    let (cache, clock, _) = plain();
    for i in 0..20_000 {
        cache
            .insert_with_ttl(format!("k{i}"), s("v"), Duration::from_millis(1 + i % 3))
            .expect("fits");
    }
    clock.advance(Duration::from_millis(2));
    let started = std::time::Instant::now();
    let removed = cache.sweep_expired(1_000);
    let took = started.elapsed();
    assert!(removed > 0);
    // Generous for debug builds on a loaded machine; release builds take ~100 µs.
    assert!(took < Duration::from_millis(50), "{took:?}");
}

#[test]
fn the_listener_may_call_back_into_the_cache() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let slot: Arc<Mutex<Option<Cache<u32, u32>>>> = Arc::default();
    let slot_in = Arc::clone(&slot);
    let cache: Cache<u32, u32> = Cache::builder()
        .max_entries(1)
        .removal_listener(move |k, _, cause| {
            // Runs after the shard lock is released: calling back in does not deadlock.
            let handle = slot_in.lock().clone();
            let present = handle.map(|c| c.contains(k));
            sink.lock().push((*k, cause, present));
        })
        .build()
        .expect("valid");
    *slot.lock() = Some(cache.clone());
    cache.insert(1, 1).expect("fits");
    cache.insert(2, 2).expect("evicts 1");
    assert_eq!(*seen.lock(), vec![(1, RemovalCause::Evicted, Some(false))]);
    *slot.lock() = None;
}

#[test]
fn insert_by_reference_builds_a_key_only_for_new_entries() {
    use std::cell::Cell;
    let cache = cachalot_store::Cache::<String, u32>::builder()
        .build()
        .expect("valid");
    let built = Cell::new(0);
    let to_owned = |k: &str| {
        built.set(built.get() + 1);
        k.to_string()
    };
    assert_eq!(
        cache.insert_with_expiry_ref("k", to_owned, 1, None),
        Ok(None)
    );
    assert_eq!(built.get(), 1, "a new key is built once");
    let at = Some(u64::MAX / 2);
    assert_eq!(
        cache.insert_with_expiry_ref("k", to_owned, 2, at),
        Ok(Some(1))
    );
    assert_eq!(built.get(), 1, "an overwrite keeps the stored key");
    assert_eq!(cache.get("k"), Some(2));
    assert_eq!(cache.expire_at("k"), Some(at));
    assert_eq!(cache.len(), 1);
}

#[test]
fn insert_by_reference_reports_replacements_and_respects_the_bound() {
    type Seen = Vec<(String, Vec<u8>, RemovalCause)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let log = Arc::clone(&seen);
    let cache = cachalot_store::Cache::<String, Vec<u8>>::builder()
        .shards(1)
        .policy(cachalot_store::Policy::no_eviction())
        .weigher(|_, v| v.len() as u64)
        .max_weight(2_000)
        .removal_listener(move |k, v, cause| log.lock().push((k.clone(), v.clone(), cause)))
        .build()
        .expect("valid");
    cache
        .insert_with_expiry_ref("k", str::to_string, vec![1; 10], None)
        .expect("fits");
    cache
        .insert_with_expiry_ref("k", str::to_string, vec![2; 20], None)
        .expect("fits");
    assert_eq!(
        seen.lock().as_slice(),
        [("k".to_string(), vec![1; 10], RemovalCause::Replaced)]
    );
    // Too big for the bound under noeviction: refused, the old value stays.
    assert!(cache
        .insert_with_expiry_ref("k", str::to_string, vec![3; 5_000], None)
        .is_err());
    assert_eq!(cache.get("k"), Some(vec![2; 20]));
}

#[test]
fn inspect_sees_the_live_state_with_its_expiry_and_records_no_access() {
    let clock = Arc::new(ManualClock::new(1_000));
    let cache: Cache<String, u32> = Cache::builder()
        .clock(clock.clone())
        .build()
        .expect("cache");
    cache.insert("a".into(), 1).expect("insert");
    cache
        .insert_with_ttl("t".into(), 2, Duration::from_millis(500))
        .expect("insert");
    assert_eq!(
        cache.inspect("a", |s| s.map(|(v, at)| (*v, at))),
        Some((1, None))
    );
    assert_eq!(
        cache.inspect("t", |s| s.map(|(v, at)| (*v, at))),
        Some((2, Some(1_500)))
    );
    assert!(cache.inspect("missing", |s| s.is_none()));
    assert_eq!(
        cache.stats().hits + cache.stats().misses,
        0,
        "no access recorded"
    );
    clock.advance(Duration::from_millis(600));
    assert!(
        cache.inspect("t", |s| s.is_none()),
        "an expired entry is not live"
    );
}

#[test]
fn scan_entries_gives_each_expiry_and_a_weak_handle_does_not_keep_the_cache() {
    let cache: Cache<u32, u32> = Cache::builder().build().expect("cache");
    cache.insert(1, 10).expect("insert");
    cache
        .insert_with_ttl(2, 20, Duration::from_secs(60))
        .expect("insert");
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = cache.scan_entries(cursor, 16, |k, v, at| seen.push((*k, *v, at.is_some())));
        if cursor == 0 {
            break;
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, [(1, 10, false), (2, 20, true)]);
    let weak = cache.downgrade();
    assert!(weak.upgrade().is_some_and(|c| c.len() == 2));
    drop(cache);
    assert!(weak.upgrade().is_none());
}
