//! Expiry: the encoding of expiry times, and the incremental active sweep.
//!
//! Expiry is enforced two ways, as in Redis: lazily, by every operation that finds an expired
//! entry (it removes it and reports [`RemovalCause::Expired`]), and actively, by
//! [`Cache::sweep_expired`](crate::Cache::sweep_expired), which walks each shard's index of
//! entries that have an expiry, a bounded number of checks per call, resuming where the
//! previous call stopped. [`ExpirySchedule`] says how often, and how much, to call it.

mod schedule;

use std::time::Duration;

use crate::clock::duration_to_millis;
use crate::policy::RemovalCause;
use crate::shard::{Removals, Shard};
use crate::stats::seconds;

pub use schedule::{ExpirySchedule, ExpiryStep, ExpiryTick};

/// The stored form of "no expiry". Unambiguous because an expiry time `<= now` is never
/// stored (the entry is removed instead) and `now >= 0`.
pub(crate) const NO_EXPIRY: u64 = 0;

/// Milliseconds per second, for the whole-second expiry bounds of [`ExpiringSlot`].
const MILLIS_PER_SECOND: u64 = 1_000;

/// Random samples taken under one lock acquisition by
/// [`Cache::sample_expired`](crate::Cache::sample_expired): each costs a cache miss or
/// two, so 32 take a few microseconds, and a sample of a few hundred spreads over the
/// shards.
pub(crate) const SAMPLES_PER_LOCK: usize = 32;

/// Checks done under one lock acquisition by the sweep, so a large `max_checks` does not hold
/// one shard for long. 128 checks take a few microseconds.
pub(crate) const SWEEP_CHECKS_PER_LOCK: usize = 128;

/// The stored form of an optional expiry time.
pub(crate) fn encode(at: Option<u64>) -> u64 {
    // `Some(0)` is always in the past and never stored; `max(1)` keeps it distinct anyway.
    at.map_or(NO_EXPIRY, |t| t.max(1))
}

/// The public form of a stored expiry time.
pub(crate) fn decode(raw: u64) -> Option<u64> {
    (raw != NO_EXPIRY).then_some(raw)
}

/// Whether an entry with stored expiry `raw` is dead at `now`. An entry expires at its
/// expiry time exactly, so a live entry always has a TTL of at least 1 ms.
pub(crate) fn is_expired(raw: u64, now: u64) -> bool {
    raw != NO_EXPIRY && raw <= now
}

/// Whether an explicit expiry time means "remove now".
pub(crate) fn is_past(at: Option<u64>, now: u64) -> bool {
    at.is_some_and(|t| t <= now)
}

/// The absolute expiry for a TTL starting at `now`.
pub(crate) fn deadline(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(duration_to_millis(ttl))
}

/// The time left before a stored expiry, for `TTL`/`PTTL`.
pub(crate) fn remaining(raw: u64, now: u64) -> Option<Duration> {
    decode(raw).map(|at| Duration::from_millis(at.saturating_sub(now)))
}

/// One slot of a shard's expiring index: an entry's slab position and a lower bound of its
/// expiry time in whole unix seconds. Kept next to the position, the bound lets the sweep
/// pass over an entry that expires in a later second without reading the entry, which
/// would cost a cache miss: the bulk of a sweep's work when most entries are live.
///
/// The bound is exact (the expiry's second, saturating at `u32::MAX`) when the slot is
/// made. A later expiry leaves it as it is, still a lower bound, so an overwrite that renews
/// a TTL does not touch the index; an earlier expiry lowers it. The sweep catches up the
/// bound of a live entry it had to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExpiringSlot {
    pub(crate) pos: u32,
    /// At most the entry's expiry second.
    expire_secs: u32,
}

impl ExpiringSlot {
    /// The slot of the entry at `pos`, whose stored expiry is `raw`.
    pub(crate) fn new(pos: u32, raw: u64) -> Self {
        Self {
            pos,
            expire_secs: seconds(raw),
        }
    }

    /// Whether the entry is certainly live at `now`: it expires in a later second. When
    /// not, only the entry itself can tell.
    pub(crate) fn is_live_at(self, now: u64) -> bool {
        now / MILLIS_PER_SECOND < u64::from(self.expire_secs)
    }

    /// Keeps the bound valid for the entry's new, earlier expiry `raw`.
    pub(crate) fn lower_to(&mut self, raw: u64) {
        self.expire_secs = self.expire_secs.min(seconds(raw));
    }

    /// Makes the bound exact again for the entry's expiry `raw`.
    pub(crate) fn refresh(&mut self, raw: u64) {
        self.expire_secs = seconds(raw);
    }
}

/// How one sweep (or sample) step in a shard went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SweepStep {
    /// Entries looked at.
    pub(crate) checked: usize,
    /// Entries removed as expired.
    pub(crate) removed: usize,
}

impl<K, V> Shard<K, V> {
    /// Checks up to `limit` entries of the expiring index from the saved cursor, removing
    /// the expired ones into `out`, and stops early when `out` is full.
    ///
    /// A pass walks the index from its end down to its start. A removal moves the index's
    /// last entry into the freed place (swap-remove): walking down, that entry was already
    /// checked in this pass (or added since), so every entry is checked once per pass and
    /// the share of checks that find an expired entry is the share of expired entries in
    /// the part not yet walked. Entries added during a pass wait for the next one; entries
    /// moved below the cursor by removals elsewhere are checked twice. A check reads the
    /// entry only when its slot's bound (see [`ExpiringSlot`]) says it may have expired.
    pub(crate) fn sweep(&mut self, now: u64, limit: usize, out: &mut Removals<K, V>) -> SweepStep {
        let mut step = SweepStep {
            checked: 0,
            removed: 0,
        };
        // The cursor is the number of entries left to check in this pass; 0 starts a new
        // one. Removals elsewhere may have shortened the index since the last step.
        let len = self.expiring_len();
        let mut cursor = match self.sweep_cursor {
            0 => len,
            c => c.min(len),
        };
        while step.checked < limit && cursor > 0 && !out.is_full() {
            cursor -= 1;
            step.checked += 1;
            let Some(slot) = self.expiring_slot(cursor) else {
                continue;
            };
            if slot.is_live_at(now) {
                continue;
            }
            let raw = self.node(slot.pos).map_or(NO_EXPIRY, |n| n.expire_at);
            if !is_expired(raw, now) {
                // Its TTL was renewed since the bound was set.
                self.refresh_expiring(cursor, raw);
            } else if let Some(node) = self.remove(slot.pos) {
                self.stats().record_expiration();
                out.push((node.key, node.value, RemovalCause::Expired));
                step.removed += 1;
            }
        }
        self.sweep_cursor = cursor;
        step
    }

    /// Looks at up to `samples` entries of the expiring index picked at random (repeats
    /// possible), removing the expired ones into `out`, and stops early when `out` is full;
    /// returns how many it looked at and how many it removed. An empty index counts every
    /// sample as looked at and live.
    pub(crate) fn sample_expired(
        &mut self,
        now: u64,
        samples: usize,
        out: &mut Removals<K, V>,
    ) -> SweepStep {
        let mut step = SweepStep {
            checked: 0,
            removed: 0,
        };
        if self.expiring_len() == 0 {
            step.checked = samples;
            return step;
        }
        while step.checked < samples && !out.is_full() {
            step.checked += 1;
            let Some(pos) = self.random_expiring() else {
                break;
            };
            if self.node(pos).is_some_and(|n| is_expired(n.expire_at, now)) {
                if let Some(node) = self.remove(pos) {
                    self.stats().record_expiration();
                    out.push((node.key, node.value, RemovalCause::Expired));
                    step.removed += 1;
                }
            }
        }
        step
    }

    /// Count and total weight of the entries expired at `now` but still stored, found by
    /// walking the whole expiring index without removing anything.
    pub(crate) fn expired_usage(&self, now: u64) -> (u64, u64) {
        let mut entries = 0;
        let mut weight = 0u64;
        for i in 0..self.expiring_len() {
            let pos = self
                .expiring_slot(i)
                .filter(|slot| !slot.is_live_at(now))
                .map(|slot| slot.pos)
                .filter(|&p| self.node(p).is_some_and(|n| is_expired(n.expire_at, now)));
            if let Some(p) = pos {
                entries += 1;
                weight = weight.saturating_add(self.weight_of(p));
            }
        }
        (entries, weight)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::memory::Usage;
    use crate::shard::Node;
    use crate::stats::{ShardStats, Tracking};

    /// A shard holding one entry per expiry time in `expiries` (keys 0, 1, ...).
    fn shard_with(expiries: &[u64]) -> Shard<u32, ()> {
        let mut shard = Shard::new(
            Arc::new(Usage::default()),
            Arc::new(ShardStats::default()),
            StdRng::seed_from_u64(1),
            Tracking::ALL,
        );
        for (key, &at) in (0u32..).zip(expiries) {
            let node = Node::new(key, (), u64::from(key) << 35, at);
            assert!(shard.insert(node, 1, 0).is_ok());
        }
        shard
    }

    #[test]
    fn no_expiry_round_trips() {
        assert_eq!(decode(encode(None)), None);
        assert_eq!(decode(encode(Some(5))), Some(5));
        assert_eq!(decode(encode(Some(0))), Some(1));
    }

    #[test]
    fn an_entry_expires_at_its_expiry_time_exactly() {
        assert!(!is_expired(NO_EXPIRY, u64::MAX));
        assert!(!is_expired(10, 9));
        assert!(is_expired(10, 10));
        assert!(is_past(Some(10), 10));
        assert!(!is_past(None, 10));
    }

    #[test]
    fn deadlines_saturate_and_remaining_time_counts_down() {
        assert_eq!(deadline(u64::MAX - 1, Duration::from_secs(1)), u64::MAX);
        assert_eq!(deadline(100, Duration::from_millis(50)), 150);
        assert_eq!(remaining(150, 100), Some(Duration::from_millis(50)));
        assert_eq!(remaining(NO_EXPIRY, 100), None);
    }

    #[test]
    fn a_pass_checks_each_entry_once_however_many_it_removes() {
        // Expired and live entries alternate; every removal moves a live one into its place.
        let mut shard = shard_with(&[5, 50, 5, 50, 5, 50, 5, 50]);
        let mut out = Removals::new();
        let step = shard.sweep(10, 8, &mut out);
        assert_eq!(
            step,
            SweepStep {
                checked: 8,
                removed: 4
            }
        );
        assert_eq!(shard.sweep_cursor, 0, "the pass is over");
        assert_eq!(shard.expiring_len(), 4);
        let mut removed: Vec<u32> = out.drain().map(|(k, _, _)| k).collect();
        removed.sort_unstable();
        assert_eq!(removed, [0, 2, 4, 6]);
    }

    #[test]
    fn a_pass_resumes_where_the_last_step_stopped() {
        let mut shard = shard_with(&[5, 5, 50, 5, 50, 5]);
        let mut out = Removals::new();
        let first = shard.sweep(10, 4, &mut out);
        assert_eq!(
            (first.checked, first.removed, shard.sweep_cursor),
            (4, 2, 2)
        );
        // Two entries left in this pass, one of them expired; then the pass is over.
        let second = shard.sweep(10, 4, &mut out);
        assert_eq!(
            (second.checked, second.removed, shard.sweep_cursor),
            (2, 2, 0)
        );
        assert_eq!(shard.expiring_len(), 2);
        // The next step starts a new pass over what is left.
        let third = shard.sweep(100, 4, &mut out);
        assert_eq!(
            (third.checked, third.removed, shard.sweep_cursor),
            (2, 2, 0)
        );
        assert_eq!(shard.expiring_len(), 0);
    }

    #[test]
    fn entries_added_during_a_pass_wait_for_the_next_one() {
        let mut shard = shard_with(&[5, 5, 5, 5]);
        let mut out = Removals::new();
        assert_eq!(shard.sweep(10, 2, &mut out).removed, 2);
        let late = Node::new(9, (), 9 << 35, 5);
        assert!(shard.insert(late, 1, 0).is_ok());
        let rest = shard.sweep(10, 10, &mut out);
        assert_eq!((rest.checked, rest.removed, shard.sweep_cursor), (2, 2, 0));
        assert_eq!(shard.sweep(10, 10, &mut out).removed, 1);
    }

    #[test]
    fn samples_remove_the_expired_entries_they_meet() {
        let mut shard = shard_with(&[5, 5, 5, 5]);
        let mut out = Removals::new();
        let live = shard.sample_expired(4, 100, &mut out);
        assert_eq!((live.checked, live.removed), (100, 0));
        assert_eq!(shard.sample_expired(10, 100, &mut out).removed, 4);
        assert_eq!(shard.expiring_len(), 0);
        let empty = shard.sample_expired(10, 100, &mut out);
        assert_eq!((empty.checked, empty.removed), (100, 0));
    }

    #[test]
    fn sweeps_and_samples_stop_when_the_batch_is_full() {
        let expiries = [5; 200];
        let mut shard = shard_with(&expiries);
        let mut out = Removals::batch();
        let step = shard.sweep(10, 100, &mut out);
        assert!(out.is_full());
        assert!(step.removed < 100, "{}", step.removed);
        assert_eq!(step.checked, step.removed);
        let taken = out.drain().count();
        assert_eq!(taken, step.removed);
        // The next step resumes the pass.
        assert_eq!(shard.sweep(10, 100, &mut out).removed, taken);
        out.clear();
        let sampled = shard.sample_expired(10, 1_000, &mut out);
        assert!(out.is_full());
        assert!(sampled.checked < 1_000);
        assert_eq!(shard.expiring_len(), 200 - 2 * taken - sampled.removed);
    }

    #[test]
    fn expired_usage_counts_without_removing() {
        let shard = shard_with(&[5, 50, NO_EXPIRY, 5]);
        assert_eq!(shard.expired_usage(10), (2, 2));
        assert_eq!(shard.expired_usage(4), (0, 0));
        assert_eq!(shard.expiring_len(), 3);
    }

    #[test]
    fn a_slot_passes_over_entries_that_expire_in_a_later_second() {
        // (expiry, now, certainly live)
        let cases = [
            (5_000, 4_999, true),
            (5_000, 5_000, false),
            (5_999, 5_000, false),
            (6_000, 5_999, true),
            (u64::MAX, 1_700_000_000_000, true),
            (u64::MAX, u64::MAX, false),
        ];
        for (raw, now, live) in cases {
            assert_eq!(
                ExpiringSlot::new(1, raw).is_live_at(now),
                live,
                "{raw} {now}"
            );
        }
        let mut slot = ExpiringSlot::new(1, 9_000);
        slot.lower_to(20_000);
        assert!(!slot.is_live_at(9_500), "a later expiry keeps the bound");
        slot.lower_to(3_000);
        assert!(!slot.is_live_at(3_000), "an earlier one lowers it");
        slot.refresh(20_000);
        assert!(slot.is_live_at(19_999));
    }

    #[test]
    fn the_sweep_finds_entries_whose_expiry_moved_either_way() {
        let mut shard = shard_with(&[5_000, 5_000, 9_000]);
        let pos = |shard: &Shard<u32, ()>, key: u32| shard.find(u64::from(key) << 35, &key);
        // Renewed: the bound stays at second 5, the entry lives until 20 s.
        if let Some(p) = pos(&shard, 0) {
            shard.set_expiry(p, 20_000);
        }
        // Shortened: the bound drops to second 1.
        if let Some(p) = pos(&shard, 2) {
            shard.set_expiry(p, 1_500);
        }
        let mut out = Removals::new();
        assert_eq!(shard.sweep(2_000, 10, &mut out).removed, 1);
        assert_eq!(out.drain().map(|(k, _, _)| k).collect::<Vec<_>>(), [2]);
        assert_eq!(shard.sweep(6_000, 10, &mut out).removed, 1);
        assert_eq!(out.drain().map(|(k, _, _)| k).collect::<Vec<_>>(), [1]);
        assert_eq!(shard.expiring_len(), 1);
        assert_eq!(shard.sweep(20_000, 10, &mut out).removed, 1);
    }
}
