//! Eviction policies (Redis's `maxmemory-policy` names and meanings) and removal causes.
//!
//! Victims are chosen per shard, by one function per policy family:
//! - [`lru`]: `allkeys-lru` takes the exact least recently used entry from the shard's LRU
//!   list; `volatile-lru` takes the least recently used among a sample of entries with an
//!   expiry, by last-access time. (While `set_policy` is still rebuilding a shard's list,
//!   `allkeys-lru` samples that shard by last-access time too.)
//! - [`lfu`]: the lowest decayed Redis LFU counter among a sample (ties: least recent).
//! - [`random`]: any entry, or any entry with an expiry.
//! - [`ttl`]: `volatile-ttl`, the soonest expiry among a sample.
//! - [`tiny_lfu`]: `allkeys-tinylfu`, W-TinyLFU (Caffeine's design, after Einziger, Friedman
//!   & Manes's TinyLFU): the admission window's oldest entry against the main region's
//!   oldest, by a per-shard frequency sketch; exact per shard, no sampling.
//!
//! Samples hold [`EVICTION_SAMPLES`] entries; a shard (or its expiring index) no larger than
//! that is examined whole, so small caches evict exactly. Samples are drawn by random
//! probes of the slab; when those keep missing (a slab left sparse by mass removals), by a
//! walk over the slab that resumes where the shard's previous walk stopped, so repeated
//! evictions from a sparse shard cost one pass over its positions in total, not one each.
//! The policy also decides which access statistics are kept at all ([`Policy::tracking`]).

mod lfu;
mod lru;
mod random;
mod tiny_lfu;
mod ttl;

use crate::shard::{Node, Shard};
use crate::stats::{LfuConfig, Tracking};

/// Entries compared per eviction by the sampling policies. Redis's `maxmemory-samples`
/// defaults to 5 and its docs note 10 comes very close to true LRU; we take 10, since our
/// samples cost one lock hold in one shard.
pub(crate) const EVICTION_SAMPLES: usize = 10;

/// Random probes per wanted sample before falling back to walking the slab (a slab left
/// sparse by mass removals makes probes miss).
const PROBES_PER_SAMPLE: usize = 4;

/// Which entries an eviction policy, and whether it may evict at all.
///
/// An opaque knob over Redis's `maxmemory-policy` values, so variants can be added without
/// breaking callers.
///
/// ```
/// use cachalot_store::Policy;
/// let p = Policy::from_redis_name("Volatile-TTL").unwrap();
/// assert_eq!(p, Policy::volatile_ttl());
/// assert_eq!(p.redis_name(), "volatile-ttl");
/// assert!(p.is_volatile_only());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllKeysTinyLfu,
}

/// Redis's policies in its documentation order, then ours (appended, so the `to_u8`
/// numbers of the others never change).
const ALL: [(Kind, &str); 9] = [
    (Kind::NoEviction, "noeviction"),
    (Kind::AllKeysLru, "allkeys-lru"),
    (Kind::AllKeysLfu, "allkeys-lfu"),
    (Kind::AllKeysRandom, "allkeys-random"),
    (Kind::VolatileLru, "volatile-lru"),
    (Kind::VolatileLfu, "volatile-lfu"),
    (Kind::VolatileRandom, "volatile-random"),
    (Kind::VolatileTtl, "volatile-ttl"),
    (Kind::AllKeysTinyLfu, "allkeys-tinylfu"),
];

impl Policy {
    /// Never evict: writes that would exceed a bound fail with an error.
    pub fn no_eviction() -> Self {
        Self(Kind::NoEviction)
    }
    /// Evict the least recently used entry (exact per shard).
    pub fn allkeys_lru() -> Self {
        Self(Kind::AllKeysLru)
    }
    /// Evict the least frequently used entry (sampled, Redis's logarithmic counter).
    pub fn allkeys_lfu() -> Self {
        Self(Kind::AllKeysLfu)
    }
    /// Evict a random entry.
    pub fn allkeys_random() -> Self {
        Self(Kind::AllKeysRandom)
    }
    /// Evict the least recently used entry among those with an expiry (sampled).
    pub fn volatile_lru() -> Self {
        Self(Kind::VolatileLru)
    }
    /// Evict the least frequently used entry among those with an expiry (sampled).
    pub fn volatile_lfu() -> Self {
        Self(Kind::VolatileLfu)
    }
    /// Evict a random entry among those with an expiry.
    pub fn volatile_random() -> Self {
        Self(Kind::VolatileRandom)
    }
    /// Evict the entry with the soonest expiry (sampled).
    pub fn volatile_ttl() -> Self {
        Self(Kind::VolatileTtl)
    }

    /// W-TinyLFU (not a Redis policy; the default of [`CacheBuilder`](crate::CacheBuilder)):
    /// new entries pass through a small LRU window, then must be estimated more frequent
    /// than the least frequent of the main region's few oldest entries to stay; frequencies
    /// come from a per-shard 4-bit Count-Min sketch that halves itself every 10 × capacity
    /// accesses. Keeps frequently read keys through scans of one-hit
    /// wonders that flush LRU. A key just written always reads back. Design: Caffeine's
    /// W-TinyLFU, after Einziger, Friedman & Manes, "TinyLFU: A Highly Efficient Cache
    /// Admission Policy"; Redis-style name `allkeys-tinylfu`.
    pub fn tiny_lfu() -> Self {
        Self(Kind::AllKeysTinyLfu)
    }

    /// Every policy: Redis's, in its documentation order, then `allkeys-tinylfu`.
    pub fn all() -> impl Iterator<Item = Policy> {
        ALL.iter().map(|&(k, _)| Policy(k))
    }

    /// Parses a Redis `maxmemory-policy` value, ignoring ASCII case.
    pub fn from_redis_name(name: &str) -> Option<Policy> {
        ALL.iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|&(k, _)| Policy(k))
    }

    /// The Redis `maxmemory-policy` value.
    pub fn redis_name(self) -> &'static str {
        ALL.iter()
            .find(|(k, _)| *k == self.0)
            .map_or("noeviction", |(_, n)| n)
    }

    /// Whether only entries with an expiry may be evicted (`volatile-*`).
    pub fn is_volatile_only(self) -> bool {
        matches!(
            self.0,
            Kind::VolatileLru | Kind::VolatileLfu | Kind::VolatileRandom | Kind::VolatileTtl
        )
    }

    /// Whether the policy may evict at all.
    pub(crate) fn evicts(self) -> bool {
        self.0 != Kind::NoEviction
    }

    /// The access statistics this policy needs kept up to date (see the `stats` module):
    /// the LRU list for `allkeys-lru` only (`volatile-lru` samples by last-access time),
    /// the frequency counter for the LFU policies only, the W-TinyLFU segments and sketch
    /// for `allkeys-tinylfu` only.
    pub(crate) fn tracking(self) -> Tracking {
        Tracking {
            lru_list: self.0 == Kind::AllKeysLru,
            frequency: matches!(self.0, Kind::AllKeysLfu | Kind::VolatileLfu),
            tiny_lfu: self.0 == Kind::AllKeysTinyLfu,
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        ALL.iter().position(|(k, _)| *k == self.0).unwrap_or(0) as u8
    }

    pub(crate) fn from_u8(n: u8) -> Self {
        ALL.get(usize::from(n))
            .map_or(Self::no_eviction(), |&(k, _)| Policy(k))
    }
}

/// Why an entry left the cache, as told to the removal listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Its expiry time passed (found lazily, by the sweep, or set in the past).
    Expired,
    /// Removed to respect a bound, by the eviction policy.
    Evicted,
    /// Removed by an explicit call (`remove`, `clear`, [`Entry::discard`](crate::Entry::discard)).
    Removed,
    /// Its value was overwritten by `insert`/`insert_with_*`.
    Replaced,
}

impl RemovalCause {
    /// Whether the cache dropped the entry on its own (expiry or eviction), as opposed to a
    /// caller's request.
    pub fn was_automatic(self) -> bool {
        matches!(self, Self::Expired | Self::Evicted)
    }
}

/// Which entries a sampling policy draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    AllKeys,
    Volatile,
}

/// Picks the entry `policy` would evict from `shard`, never `protect` (the key being
/// written). `None` when the policy may not evict or finds nothing evictable.
pub(crate) fn select_victim<K, V>(
    shard: &mut Shard<K, V>,
    policy: Policy,
    protect: Option<u32>,
    now: u64,
    lfu: LfuConfig,
) -> Option<u32> {
    match policy.0 {
        Kind::NoEviction => None,
        Kind::AllKeysLru if shard.lru_listed() => lru::least_recent(shard, protect),
        Kind::AllKeysLru => lru::sampled(shard, Scope::AllKeys, protect),
        Kind::VolatileLru => lru::sampled(shard, Scope::Volatile, protect),
        Kind::AllKeysLfu => lfu::sampled(shard, Scope::AllKeys, protect, now, lfu),
        Kind::VolatileLfu => lfu::sampled(shard, Scope::Volatile, protect, now, lfu),
        Kind::AllKeysRandom => random::any(shard, Scope::AllKeys, protect),
        Kind::VolatileRandom => random::any(shard, Scope::Volatile, protect),
        Kind::VolatileTtl => ttl::soonest(shard, protect),
        Kind::AllKeysTinyLfu => tiny_lfu::victim(shard, protect),
    }
}

/// Most candidates a sample holds: [`EVICTION_SAMPLES`], or a whole scope of one more
/// (examined whole when `protect` is not in it).
const SAMPLE_CAPACITY: usize = EVICTION_SAMPLES + 1;

/// Candidate positions, on the stack: drawing a sample allocates nothing.
pub(crate) struct Sample {
    positions: [u32; SAMPLE_CAPACITY],
    len: usize,
}

impl Sample {
    fn new() -> Self {
        Self {
            positions: [0; SAMPLE_CAPACITY],
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_full(&self) -> bool {
        self.len == SAMPLE_CAPACITY
    }

    /// Adds `pos`; ignored when full.
    fn push(&mut self, pos: u32) {
        if let Some(slot) = self.positions.get_mut(self.len) {
            *slot = pos;
            self.len += 1;
        }
    }

    pub(crate) fn as_slice(&self) -> &[u32] {
        self.positions.get(..self.len).unwrap_or_default()
    }
}

/// Up to [`EVICTION_SAMPLES`] candidate positions from `scope`, excluding `protect`;
/// every candidate when the scope is that small. May repeat a position.
fn sample<K, V>(shard: &mut Shard<K, V>, scope: Scope, protect: Option<u32>) -> Sample {
    let mut out = Sample::new();
    let keep = |pos: &u32| Some(*pos) != protect;
    match scope {
        Scope::Volatile if shard.expiring_len() <= SAMPLE_CAPACITY => {
            for pos in (0..shard.expiring_len()).filter_map(|i| shard.expiring_at(i)) {
                if keep(&pos) {
                    out.push(pos);
                }
            }
        }
        Scope::Volatile => {
            for _ in 0..EVICTION_SAMPLES * PROBES_PER_SAMPLE {
                if out.len() == EVICTION_SAMPLES {
                    break;
                }
                if let Some(pos) = shard.random_expiring().filter(keep) {
                    out.push(pos);
                }
            }
        }
        Scope::AllKeys => {
            if shard.len() as usize > SAMPLE_CAPACITY {
                for _ in 0..EVICTION_SAMPLES * PROBES_PER_SAMPLE {
                    if out.len() == EVICTION_SAMPLES {
                        break;
                    }
                    match shard.random_position().filter(keep) {
                        Some(pos) if shard.node(pos).is_some() => out.push(pos),
                        _ => {}
                    }
                }
            }
            if out.len() == 0 {
                walk(shard, protect, |pos| {
                    out.push(pos);
                    !out.is_full()
                });
            }
        }
    }
    out
}

/// Visits occupied positions other than `protect` along the shard's slab walk, until
/// `visit` returns false, every entry was seen, or every position was passed once.
fn walk<K, V>(shard: &mut Shard<K, V>, protect: Option<u32>, mut visit: impl FnMut(u32) -> bool) {
    let entries = shard.len();
    let mut seen = 0;
    for _ in 0..shard.positions() {
        if seen == entries {
            return;
        }
        let Some(pos) = shard.walk_step() else {
            return;
        };
        if shard.node(pos).is_none() {
            continue;
        }
        seen += 1;
        if Some(pos) != protect && !visit(pos) {
            return;
        }
    }
}

/// Some entry other than `protect`, found by walking the slab, for when random probes miss.
fn walk_fallback<K, V>(shard: &mut Shard<K, V>, protect: Option<u32>) -> Option<u32> {
    let mut found = None;
    walk(shard, protect, |pos| {
        found = Some(pos);
        false
    });
    found
}

/// The sampled position whose node has the smallest `score`.
fn lowest<K, V, S: Ord>(
    shard: &Shard<K, V>,
    candidates: &Sample,
    score: impl Fn(&Node<K, V>) -> S,
) -> Option<u32> {
    candidates
        .as_slice()
        .iter()
        .filter_map(|&pos| shard.node(pos).map(|n| (score(n), pos)))
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, pos)| pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_names_round_trip_case_insensitively() {
        for p in Policy::all() {
            assert_eq!(Policy::from_redis_name(p.redis_name()), Some(p));
            let upper = p.redis_name().to_ascii_uppercase();
            assert_eq!(Policy::from_redis_name(&upper), Some(p));
            assert_eq!(Policy::from_u8(p.to_u8()), p);
        }
        assert_eq!(Policy::from_redis_name("allkeys-lru "), None);
        assert_eq!(Policy::from_redis_name("lru"), None);
        assert_eq!(Policy::all().count(), 9);
        assert_eq!(
            Policy::from_redis_name("allkeys-tinylfu"),
            Some(Policy::tiny_lfu())
        );
        assert!(!Policy::tiny_lfu().is_volatile_only());
    }

    #[test]
    fn only_volatile_policies_are_volatile_only() {
        let volatile: Vec<&str> = Policy::all()
            .filter(|p| p.is_volatile_only())
            .map(|p| p.redis_name())
            .collect();
        assert_eq!(
            volatile,
            [
                "volatile-lru",
                "volatile-lfu",
                "volatile-random",
                "volatile-ttl"
            ]
        );
        assert!(!Policy::no_eviction().evicts());
        assert!(Policy::allkeys_random().evicts());
    }

    #[test]
    fn automatic_causes_are_expiry_and_eviction() {
        assert!(RemovalCause::Expired.was_automatic());
        assert!(RemovalCause::Evicted.was_automatic());
        assert!(!RemovalCause::Removed.was_automatic());
        assert!(!RemovalCause::Replaced.was_automatic());
    }
}

#[cfg(test)]
mod victim_tests {
    use super::*;
    use crate::memory::Usage;
    use crate::shard::tiny_lfu::Segment;
    use crate::stats::ShardStats;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::sync::Arc;

    /// A shard holding keys `0..n` inserted at times `0..n`, key `k` expiring at
    /// `expiry(k)` (0: never).
    fn shard(n: u32, expiry: impl Fn(u32) -> u64) -> Shard<u32, u32> {
        let mut s = Shard::new(
            Arc::new(Usage::default()),
            Arc::new(ShardStats::default()),
            StdRng::seed_from_u64(3),
            Tracking::ALL,
        );
        for k in 0..n {
            let node = Node::new(k, k, u64::from(k) << 35, expiry(k));
            assert_eq!(s.insert(node, 1, u64::from(k) * 1_000).ok(), Some(k));
        }
        s
    }

    fn victim(s: &mut Shard<u32, u32>, p: Policy, protect: Option<u32>) -> Option<u32> {
        select_victim(s, p, protect, 100, LfuConfig::default())
    }

    #[test]
    fn lru_takes_the_tail_unless_it_is_protected() {
        let mut s = shard(3, |_| 0);
        assert_eq!(victim(&mut s, Policy::allkeys_lru(), None), Some(0));
        assert_eq!(victim(&mut s, Policy::allkeys_lru(), Some(0)), Some(1));
        let mut one = shard(1, |_| 0);
        assert_eq!(victim(&mut one, Policy::allkeys_lru(), Some(0)), None);
    }

    #[test]
    fn lru_samples_by_access_time_until_the_list_is_rebuilt() {
        let mut s = shard(5, |_| 0);
        s.set_tracking(
            Tracking {
                lru_list: false,
                frequency: false,
                tiny_lfu: false,
            },
            0,
        );
        for (pos, t) in [(0, 50_000), (1, 40_000), (3, 60_000), (4, 70_000)] {
            s.touch(pos, t, LfuConfig::default());
        }
        assert_eq!(victim(&mut s, Policy::allkeys_lru(), None), Some(2));
        assert_eq!(victim(&mut s, Policy::allkeys_lru(), Some(2)), Some(1));
    }

    #[test]
    fn tracking_follows_the_policy() {
        let tracked: Vec<(&str, bool, bool, bool)> = Policy::all()
            .map(|p| {
                (
                    p.redis_name(),
                    p.tracking().lru_list,
                    p.tracking().frequency,
                    p.tracking().tiny_lfu,
                )
            })
            .filter(|(_, list, freq, tiny)| *list || *freq || *tiny)
            .collect();
        assert_eq!(
            tracked,
            [
                ("allkeys-lru", true, false, false),
                ("allkeys-lfu", false, true, false),
                ("volatile-lfu", false, true, false),
                ("allkeys-tinylfu", false, false, true)
            ]
        );
    }

    #[test]
    fn lfu_takes_the_lowest_counter_then_the_oldest() {
        let mut s = shard(4, |_| 0);
        for pos in [0, 2] {
            s.touch(pos, 50, LfuConfig::default());
        }
        assert_eq!(victim(&mut s, Policy::allkeys_lfu(), None), Some(1));
        assert_eq!(victim(&mut s, Policy::allkeys_lfu(), Some(1)), Some(3));
    }

    #[test]
    fn volatile_ttl_takes_the_soonest_expiry() {
        let mut s = shard(5, |k| if k == 2 { 0 } else { 1_000 - u64::from(k) });
        assert_eq!(victim(&mut s, Policy::volatile_ttl(), None), Some(4));
        assert_eq!(victim(&mut s, Policy::volatile_ttl(), Some(4)), Some(3));
    }

    #[test]
    fn volatile_policies_see_only_expiring_entries() {
        for p in Policy::all().filter(|p| p.is_volatile_only()) {
            let mut s = shard(20, |k| if k == 7 { 500 } else { 0 });
            for _ in 0..20 {
                assert_eq!(victim(&mut s, p, None), Some(7), "{}", p.redis_name());
            }
            assert_eq!(victim(&mut s, p, Some(7)), None, "{}", p.redis_name());
        }
    }

    #[test]
    fn random_eviction_reaches_every_entry_but_the_protected_one() {
        let mut s = shard(30, |_| 0);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2_000 {
            seen.extend(victim(&mut s, Policy::allkeys_random(), Some(5)));
        }
        assert_eq!(seen.len(), 29);
        assert!(!seen.contains(&5));
    }

    #[test]
    fn sampling_finds_entries_in_a_sparse_slab() {
        let mut s = shard(2_000, |_| 0);
        for pos in 0..1_999 {
            let _ = s.remove(pos);
        }
        assert_eq!(victim(&mut s, Policy::allkeys_lfu(), None), Some(1_999));
        assert_eq!(victim(&mut s, Policy::allkeys_random(), None), Some(1_999));
    }

    /// A one-shard W-TinyLFU shard sized for `capacity`, holding keys `0..n` in the window.
    fn tiny(capacity: u32, n: u32) -> Shard<u32, u32> {
        let mut s = Shard::new(
            Arc::new(Usage::default()),
            Arc::new(ShardStats::default()),
            StdRng::seed_from_u64(3),
            Policy::tiny_lfu().tracking(),
        );
        s.set_entry_capacity(capacity);
        for k in 0..n {
            let node = Node::new(k, k, u64::from(k) << 35, 0);
            assert_eq!(s.insert(node, 1, 0).ok(), Some(k));
        }
        s
    }

    #[test]
    fn tinylfu_evicts_a_candidate_no_more_frequent_than_the_main_victim() {
        let mut s = tiny(10, 10);
        // The first eviction passes the window's excess to probation (0..=7 there, oldest
        // first); 8 and 9 stay in the window. 8 is the candidate, 0 the victim, tied: 8 goes.
        assert_eq!(victim(&mut s, Policy::tiny_lfu(), None), Some(8));
        // Protecting the candidate makes the next window entry the candidate.
        assert_eq!(victim(&mut s, Policy::tiny_lfu(), Some(8)), Some(9));
    }

    #[test]
    fn tinylfu_admits_a_more_frequent_candidate_and_evicts_the_victim() {
        let mut s = tiny(10, 10);
        assert_eq!(victim(&mut s, Policy::tiny_lfu(), None), Some(8));
        // Both window entries read once (8 first, so it stays the oldest): 8 now beats 0.
        s.touch(8, 1, LfuConfig::default());
        s.touch(9, 1, LfuConfig::default());
        assert_eq!(victim(&mut s, Policy::tiny_lfu(), None), Some(0));
        assert_eq!(s.node(8).map(Node::segment), Some(Segment::Probation));
        // A victim that is protected is passed over for the next oldest.
        assert_eq!(victim(&mut s, Policy::tiny_lfu(), Some(0)), Some(1));
    }

    #[test]
    fn tinylfu_victim_is_the_least_frequent_of_probations_oldest() {
        let mut s = tiny(10, 10);
        assert_eq!(victim(&mut s, Policy::tiny_lfu(), None), Some(8));
        // Probation holds 0..=7, oldest first; 0 and 1 are estimated more frequent.
        for pos in [0, 0, 1] {
            s.count_in_sketch(pos);
        }
        s.touch(9, 1, LfuConfig::default());
        s.touch(8, 1, LfuConfig::default());
        // Candidate 9 (seen twice) beats 2, the oldest of the least frequent; the oldest
        // entry, 0, seen three times, would have kept it out.
        assert_eq!(victim(&mut s, Policy::tiny_lfu(), None), Some(2));
        assert_eq!(s.node(9).map(Node::segment), Some(Segment::Probation));
    }

    #[test]
    fn tinylfu_never_picks_the_only_protected_entry() {
        let mut s = tiny(1, 1);
        assert_eq!(victim(&mut s, Policy::tiny_lfu(), Some(0)), None);
        assert_eq!(victim(&mut s, Policy::tiny_lfu(), None), Some(0));
    }

    #[test]
    fn noeviction_never_picks() {
        let mut s = shard(3, |_| 0);
        assert_eq!(victim(&mut s, Policy::no_eviction(), None), None);
    }
}
