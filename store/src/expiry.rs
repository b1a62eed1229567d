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

pub use schedule::{ExpirySchedule, ExpiryTick};

/// The stored form of "no expiry". Unambiguous because an expiry time `<= now` is never
/// stored (the entry is removed instead) and `now >= 0`.
pub(crate) const NO_EXPIRY: u64 = 0;

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

/// How one sweep step in a shard went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SweepStep {
    /// Entries looked at.
    pub(crate) checked: usize,
    /// Entries removed as expired.
    pub(crate) removed: usize,
}

impl<K, V> Shard<K, V> {
    /// Checks up to `limit` entries of the expiring index from the saved cursor, removing
    /// the expired ones into `out`.
    ///
    /// A pass walks the index from its end down to its start. A removal moves the index's
    /// last entry into the freed place (swap-remove): walking down, that entry was already
    /// checked in this pass (or added since), so every entry is checked once per pass and
    /// the share of checks that find an expired entry is the share of expired entries in
    /// the part not yet walked. Entries added during a pass wait for the next one; entries
    /// moved below the cursor by removals elsewhere are checked twice.
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
        while step.checked < limit && cursor > 0 {
            cursor -= 1;
            step.checked += 1;
            let Some(pos) = self.expiring_at(cursor) else {
                continue;
            };
            if self.node(pos).is_some_and(|n| is_expired(n.expire_at, now)) {
                if let Some(node) = self.remove(pos) {
                    self.stats().record_expiration();
                    out.push((node.key, node.value, RemovalCause::Expired));
                    step.removed += 1;
                }
            }
        }
        self.sweep_cursor = cursor;
        step
    }

    /// Count and total weight of the entries expired at `now` but still stored, found by
    /// walking the whole expiring index without removing anything.
    pub(crate) fn expired_usage(&self, now: u64) -> (u64, u64) {
        let mut entries = 0;
        let mut weight = 0u64;
        for i in 0..self.expiring_len() {
            let node = self.expiring_at(i).and_then(|pos| self.node(pos));
            if let Some(n) = node.filter(|n| is_expired(n.expire_at, now)) {
                entries += 1;
                weight = weight.saturating_add(n.weight);
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
            let node = Node::new(key, (), u64::from(key) << 32, at, 1, 0);
            assert!(shard.insert(node).is_ok());
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
        let late = Node::new(9, (), 9 << 32, 5, 1, 0);
        assert!(shard.insert(late).is_ok());
        let rest = shard.sweep(10, 10, &mut out);
        assert_eq!((rest.checked, rest.removed, shard.sweep_cursor), (2, 2, 0));
        assert_eq!(shard.sweep(10, 10, &mut out).removed, 1);
    }

    #[test]
    fn expired_usage_counts_without_removing() {
        let shard = shard_with(&[5, 50, NO_EXPIRY, 5]);
        assert_eq!(shard.expired_usage(10), (2, 2));
        assert_eq!(shard.expired_usage(4), (0, 0));
        assert_eq!(shard.expiring_len(), 3);
    }
}
