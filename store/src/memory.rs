//! Memory accounting and the bounds: what an entry weighs, the cache-wide totals, and the
//! eviction loop that keeps the totals within `max_weight` / `max_entries`.
//!
//! An entry weighs `weigher(key, value) + entry_overhead`, where the overhead is what the
//! engine itself spends per entry ([`entry_overhead`]). The cache-wide weight and count are
//! two atomics ([`Usage`]) updated once per change, by the holder of the changed shard's lock.
//!
//! Bound enforcement, for a write to shard `home`:
//! 1. Before the write, with `home` locked: if the write would exceed a bound, evict from
//!    `home` (never the key being written) until it fits.
//! 2. If `home` has nothing evictable, unlock it and evict from all shards round-robin
//!    ([`EVICTIONS_PER_VISIT`] per lock hold, starting at a random shard), then retry.
//! 3. If nothing anywhere is evictable (`noeviction`, or a `volatile-*` policy with no entry
//!    that has an expiry), the write fails with [`Error::OutOfMemory`] or
//!    [`Error::TooManyEntries`]. A pass that evicted nothing while candidates exist lost
//!    races with other writers; it is retried, and after [`MAX_ROOM_ROUNDS`] the write goes
//!    ahead and step 4 restores the bound.
//! 4. After the write, the same loop runs again (never evicting the key just written): it
//!    catches concurrent writers that each made room for themselves but not for each other.
//!
//! Single-threaded, the bounds therefore hold after every operation except a `compute` whose
//! new value alone is larger than the bound. Under concurrency a bound can be exceeded by the
//! entries being written at that instant, and holds again once writers quiesce.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use crate::cache::Inner;
use crate::error::Error;
use crate::expiry;
use crate::policy::{select_victim, Policy, RemovalCause};
use crate::shard::{Removals, Shard};

/// Victims taken from one shard per lock hold when evicting across shards: enough to make
/// room for a large value quickly, few enough to spread evictions across shards and to keep
/// lock holds short.
pub(crate) const EVICTIONS_PER_VISIT: usize = 8;

/// Rounds of "evict elsewhere, re-lock, re-check" a write makes before writing anyway; only
/// reached when concurrent writers keep refilling the space this one freed. The post-write
/// pass then restores the bound.
pub(crate) const MAX_ROOM_ROUNDS: usize = 8;

/// Stored bound meaning "no bound".
const UNBOUNDED: u64 = u64::MAX;

/// The per-entry overhead the engine adds to the weigher's number: the entry's slab slot
/// (key, value and bookkeeping, inline), its hash-table word and control byte, and its slot
/// in the expiring index (counted for every entry, so that changing an expiry never changes
/// a weight). Unused table and slab capacity is not counted.
pub(crate) fn entry_overhead<K, V>() -> u64 {
    (Shard::<K, V>::slot_bytes() + Shard::<K, V>::INDEX_BYTES_PER_ENTRY) as u64
}

/// Cache-wide weight and entry count. Written (by atomic add/sub) only while holding the lock
/// of the shard whose entries changed, read lock-free. On its own cache line, away from the
/// shards.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Usage {
    weight: AtomicU64,
    len: AtomicU64,
}

impl Usage {
    pub(crate) fn add(&self, weight: u64, entries: u64) {
        if weight != 0 {
            self.weight.fetch_add(weight, Ordering::Relaxed);
        }
        if entries != 0 {
            self.len.fetch_add(entries, Ordering::Relaxed);
        }
    }

    /// Every subtraction follows (under the same shard lock) the addition it undoes, so the
    /// totals never go below zero.
    pub(crate) fn sub(&self, weight: u64, entries: u64) {
        if weight != 0 {
            self.weight.fetch_sub(weight, Ordering::Relaxed);
        }
        if entries != 0 {
            self.len.fetch_sub(entries, Ordering::Relaxed);
        }
    }

    pub(crate) fn weight(&self) -> u64 {
        self.weight.load(Ordering::Relaxed)
    }

    pub(crate) fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }
}

/// What a pending write would do to the totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) add_weight: u64,
    pub(crate) free_weight: u64,
    pub(crate) add_entries: u64,
}

impl Change {
    /// No change: "is the cache within its bounds right now?".
    pub(crate) const NONE: Change = Change {
        add_weight: 0,
        free_weight: 0,
        add_entries: 0,
    };
}

/// The bounds, changeable at runtime (`CONFIG SET maxmemory`).
#[derive(Debug)]
pub(crate) struct Limits {
    max_weight: AtomicU64,
    max_entries: AtomicU64,
}

impl Limits {
    pub(crate) fn new(max_weight: Option<u64>, max_entries: Option<u64>) -> Self {
        Self {
            max_weight: AtomicU64::new(max_weight.unwrap_or(UNBOUNDED)),
            max_entries: AtomicU64::new(max_entries.unwrap_or(UNBOUNDED)),
        }
    }

    pub(crate) fn max_weight(&self) -> Option<u64> {
        Some(self.max_weight.load(Ordering::Relaxed)).filter(|&m| m != UNBOUNDED)
    }

    pub(crate) fn set_max_weight(&self, max: Option<u64>) {
        self.max_weight
            .store(max.unwrap_or(UNBOUNDED), Ordering::Relaxed);
    }

    pub(crate) fn max_entries(&self) -> Option<u64> {
        Some(self.max_entries.load(Ordering::Relaxed)).filter(|&m| m != UNBOUNDED)
    }

    /// Refuses an entry that could not fit even in an empty cache.
    pub(crate) fn admit(&self, weight: u64) -> Result<(), Error> {
        if let Some(max) = self.max_entries().filter(|&m| m == 0) {
            return Err(Error::TooManyEntries { max });
        }
        match self.max_weight() {
            Some(max) if weight > max => Err(Error::OutOfMemory {
                needed: weight - max,
                max,
            }),
            _ => Ok(()),
        }
    }

    /// Whether the totals, after `change`, are within the bounds; if not, by how much not.
    pub(crate) fn check(&self, usage: &Usage, change: Change) -> Result<(), Error> {
        if let Some(max) = self.max_entries() {
            if usage.len().saturating_add(change.add_entries) > max {
                return Err(Error::TooManyEntries { max });
            }
        }
        if let Some(max) = self.max_weight() {
            let after = usage
                .weight()
                .saturating_add(change.add_weight)
                .saturating_sub(change.free_weight);
            if after > max {
                return Err(Error::OutOfMemory {
                    needed: after - max,
                    max,
                });
            }
        }
        Ok(())
    }
}

impl<K, V> Inner<K, V> {
    fn fits(&self, change: Change) -> bool {
        self.limits.check(&self.usage, change).is_ok()
    }

    /// Evicts one victim of `policy` from `shard` into `out`; false if there is none.
    /// A victim that turns out to be expired is reported as expired.
    fn evict_one(
        &self,
        shard: &mut Shard<K, V>,
        policy: Policy,
        protect: Option<u32>,
        now: u64,
        out: &mut Removals<K, V>,
    ) -> bool {
        let Some(pos) = select_victim(shard, policy, protect, now, self.lfu) else {
            return false;
        };
        let Some(node) = shard.remove(pos) else {
            return false;
        };
        let cause = if expiry::is_expired(node.expire_at, now) {
            shard.stats().record_expiration();
            RemovalCause::Expired
        } else {
            shard.stats().record_eviction();
            RemovalCause::Evicted
        };
        out.push((node.key, node.value, cause));
        true
    }

    /// Evicts from the locked `shard` (never `protect`) until `change` fits. Returns whether
    /// it fits.
    pub(crate) fn evict_local(
        &self,
        shard: &mut Shard<K, V>,
        change: Change,
        protect: Option<u32>,
        now: u64,
        out: &mut Removals<K, V>,
    ) -> bool {
        let policy = self.policy();
        loop {
            if self.fits(change) {
                return true;
            }
            if !self.evict_one(shard, policy, protect, now, out) {
                return false;
            }
        }
    }

    /// Whether `policy` has no candidate left but the written key (stored expiry `own`, if
    /// present), judging by the lock-free totals.
    pub(crate) fn nothing_evictable(&self, policy: Policy, own: Option<u64>) -> bool {
        if !policy.evicts() {
            return true;
        }
        if policy.is_volatile_only() {
            let own_expiring = own.is_some_and(|raw| raw != expiry::NO_EXPIRY);
            let expiring: u64 = self.stats.iter().map(|s| s.expiring()).sum();
            expiring <= u64::from(own_expiring)
        } else {
            self.usage.len() <= u64::from(own.is_some())
        }
    }

    /// Evicts from every shard in turn until `change` fits, respecting `protect` in `home`.
    /// The caller must hold no shard lock. Returns whether anything was evicted.
    pub(crate) fn evict_across(
        &self,
        home: usize,
        protect: Option<u32>,
        change: Change,
        now: u64,
    ) -> bool {
        let policy = self.policy();
        if !policy.evicts() {
            return false;
        }
        let n = self.shards.len();
        let start = rand::thread_rng().gen_range(0..n);
        let mut out = Removals::new();
        let mut evicted_any = false;
        loop {
            let mut progress = false;
            for k in 0..n {
                if self.fits(change) {
                    return evicted_any;
                }
                let i = (start + k) % n;
                let Some(cell) = self.shards.get(i) else {
                    continue;
                };
                {
                    let mut shard = cell.lock.lock();
                    let protect = if i == home { protect } else { None };
                    for _ in 0..EVICTIONS_PER_VISIT {
                        if self.fits(change)
                            || !self.evict_one(&mut shard, policy, protect, now, &mut out)
                        {
                            break;
                        }
                        progress = true;
                    }
                }
                self.notify(&mut out);
            }
            evicted_any |= progress;
            if !progress {
                return evicted_any;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_adds_and_subtracts() {
        let u = Usage::default();
        u.add(100, 2);
        u.sub(30, 1);
        assert_eq!((u.weight(), u.len()), (70, 1));
    }

    #[test]
    fn limits_report_by_how_much_a_change_would_exceed_them() {
        let u = Usage::default();
        u.add(90, 9);
        let l = Limits::new(Some(100), Some(10));
        assert_eq!(l.check(&u, Change::NONE), Ok(()));
        let grow = Change {
            add_weight: 20,
            free_weight: 0,
            add_entries: 0,
        };
        assert_eq!(
            l.check(&u, grow),
            Err(Error::OutOfMemory {
                needed: 10,
                max: 100
            })
        );
        let replace = Change {
            add_weight: 20,
            free_weight: 15,
            add_entries: 0,
        };
        assert_eq!(l.check(&u, replace), Ok(()));
        let two_more = Change {
            add_entries: 2,
            ..Change::NONE
        };
        assert_eq!(
            l.check(&u, two_more),
            Err(Error::TooManyEntries { max: 10 })
        );
    }

    #[test]
    fn no_bound_means_everything_fits() {
        let u = Usage::default();
        u.add(u64::MAX - 1, u64::MAX - 1);
        let l = Limits::new(None, None);
        assert_eq!(l.max_weight(), None);
        assert_eq!(l.check(&u, Change::NONE), Ok(()));
        assert_eq!(l.admit(u64::MAX), Ok(()));
        l.set_max_weight(Some(5));
        assert_eq!(l.max_weight(), Some(5));
        assert_eq!(l.admit(6), Err(Error::OutOfMemory { needed: 1, max: 5 }));
    }

    #[test]
    fn a_zero_entry_bound_admits_nothing() {
        let l = Limits::new(None, Some(0));
        assert_eq!(l.admit(0), Err(Error::TooManyEntries { max: 0 }));
    }

    #[test]
    fn the_overhead_counts_the_slot_and_the_indexes() {
        let overhead = entry_overhead::<u64, u64>();
        assert!(overhead >= 16 + 8 + 1 + 4, "{overhead}");
    }
}
