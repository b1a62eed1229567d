//! Whole-keyspace operations: SCAN, the active expiry sweep, a random key, clear.

use std::hash::Hash;
use std::sync::atomic::Ordering;

use rand::Rng;

use super::Cache;
use crate::expiry::{self, SAMPLES_PER_LOCK, SWEEP_CHECKS_PER_LOCK};
use crate::policy::{select_victim, Policy, RemovalCause};
use crate::shard::Removals;

/// What [`Cache::expired_usage`] found.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpiredUsage {
    /// Entries past their expiry time, still stored.
    pub entries: u64,
    /// Their weights' sum (weigher's numbers plus per-entry overhead).
    pub weight: u64,
}

/// Shards tried by [`Cache::random_key`] before giving up on a keyspace of expired keys.
const RANDOM_KEY_ATTEMPTS: usize = 16;

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// One SCAN step: visits the live entries at the next `count` slab positions (at least
    /// one; a hint, as in Redis) from `cursor`, and returns the cursor to continue from,
    /// 0 when the scan is complete. Start with cursor 0.
    ///
    /// **Guarantee:** every key present for the whole scan is visited at least once, however
    /// many other keys are inserted or removed between steps. Keys added or removed during
    /// the scan may or may not be visited; a key may be visited twice only if it was removed
    /// and re-inserted meanwhile.
    ///
    /// **Cursor encoding:** `(slab position << log2(shards)) | shard`. Shards are walked in
    /// ascending order and, within a shard, slab positions in ascending order. An entry keeps
    /// its slab position for its whole life (slabs grow by adding segments, never moving
    /// entries), which is what the guarantee rests on. Cursors are only meaningful for the
    /// cache that produced them.
    ///
    /// `visit` runs with the shard locked (don't call into the cache from it). Expired
    /// entries met on the way are removed (reported `Expired`) instead of visited.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(&K, &V)) -> u64 {
        self.scan_entries(cursor, count, |k, v, _| visit(k, v))
    }

    /// [`scan`](Self::scan) that also gives each entry's absolute expiry (unix
    /// milliseconds, `None` for none), read under the same lock as the value.
    pub fn scan_entries(
        &self,
        cursor: u64,
        count: usize,
        mut visit: impl FnMut(&K, &V, Option<u64>),
    ) -> u64 {
        let inner = &*self.inner;
        let bits = inner.shard_bits;
        let shards = inner.shards.len();
        let mut shard_i = (cursor & inner.shard_mask) as usize;
        let mut pos = cursor >> bits;
        let mut budget = count.max(1);
        let now = inner.now();
        let mut out = Removals::new();
        loop {
            {
                let mut shard = inner.lock(shard_i);
                let end = u64::from(shard.positions());
                while budget > 0 && pos < end {
                    // `pos < end <= u32::MAX`.
                    let p = pos as u32;
                    match shard.node(p).map(|n| expiry::is_expired(n.expire_at, now)) {
                        Some(true) => {
                            if let Some(node) = shard.remove(p) {
                                shard.stats().record_expiration();
                                out.push((node.key, node.value, RemovalCause::Expired));
                            }
                        }
                        Some(false) => {
                            if let Some(n) = shard.node(p) {
                                visit(&n.key, &n.value, expiry::decode(n.expire_at));
                            }
                        }
                        None => {}
                    }
                    pos += 1;
                    budget -= 1;
                }
                if pos >= end {
                    shard_i += 1;
                    pos = 0;
                }
            }
            inner.notify(&mut out);
            if shard_i >= shards {
                return 0;
            }
            if budget == 0 {
                return (pos << bits) | shard_i as u64;
            }
        }
    }

    /// One bounded step of active expiry: checks up to `max_checks` entries that have an
    /// expiry, removing the expired ones (reported `Expired`), and returns how many it
    /// removed. Successive calls resume where the last one stopped, so repeated calls
    /// eventually check every expiring entry; [`ExpirySchedule`](crate::ExpirySchedule)
    /// says how often and how much to call it.
    ///
    /// Work is bounded by `max_checks` (an empty shard counts as one check). A lock is held
    /// for at most 128 checks, fewer once it removed as many entries as a 512-byte buffer
    /// holds (`Removals::batch`: the step then never asks the allocator for a large block),
    /// and each lock hold moves on to the next shard, so every shard's pass over its entries
    /// advances at about the same pace. A check costs a few
    /// nanoseconds when the index shows the entry expires in a later second, and a removal
    /// about a microsecond, so `max_checks = 256` takes well under a millisecond.
    ///
    /// The share of a step's checks that removed says little about the whole cache: each
    /// shard's index holds its newest entries at its end, where a pass starts, so a pass
    /// meets few expired entries first and many last. [`sample_expired`](Self::sample_expired)
    /// tells how far behind the sweep is.
    pub fn sweep_expired(&self, max_checks: usize) -> usize {
        let inner = &*self.inner;
        let now = inner.now();
        let mut budget = max_checks;
        let mut removed = 0;
        let mut out = Removals::batch();
        while budget > 0 {
            // Concurrent sweepers take different shards.
            let shard_i = inner.sweep_shard.fetch_add(1, Ordering::Relaxed);
            let step = {
                let mut shard = inner.lock(shard_i);
                shard.sweep(now, budget.min(SWEEP_CHECKS_PER_LOCK), &mut out)
            };
            inner.notify(&mut out);
            removed += step.removed;
            budget = budget.saturating_sub(step.checked.max(1));
        }
        removed
    }

    /// Looks at `samples` entries that have an expiry, picked at random, removes the expired
    /// ones (reported `Expired`) and returns how many it removed: over `samples`, an
    /// unbiased estimate of the share of entries with an expiry that are expired, which is
    /// what [`ExpirySchedule`](crate::ExpirySchedule) acts on (Redis's active expire cycle
    /// samples likewise). Shards are visited in turn, 32 samples per lock hold (fewer once
    /// it filled a 512-byte buffer of removals), from where the previous call's visits
    /// meant to end, so successive calls cover every shard alike; within a shard, entries
    /// are drawn uniformly (with repeats). An empty shard counts its samples as live.
    pub fn sample_expired(&self, samples: usize) -> usize {
        let inner = &*self.inner;
        let now = inner.now();
        let mut left = samples;
        let mut removed = 0;
        let mut out = Removals::batch();
        let mut shard_i = inner
            .sample_shard
            .fetch_add(samples.div_ceil(SAMPLES_PER_LOCK), Ordering::Relaxed);
        while left > 0 {
            let take = left.min(SAMPLES_PER_LOCK);
            let step = inner.lock(shard_i).sample_expired(now, take, &mut out);
            inner.notify(&mut out);
            removed += step.removed;
            left -= step.checked.clamp(1, take);
            shard_i += 1;
        }
        removed
    }

    /// Entries that are expired but not removed yet, and their total weight: what the
    /// active sweep has still to reclaim. For benchmarks and diagnostics, not the request
    /// path: it walks every shard's whole expiring index, holding each shard's lock for its
    /// walk, and removes nothing. Not a snapshot when other threads write meanwhile.
    #[doc(hidden)]
    pub fn expired_usage(&self) -> ExpiredUsage {
        let inner = &*self.inner;
        let now = inner.now();
        let mut total = ExpiredUsage::default();
        for i in 0..inner.shards.len() {
            let (entries, weight) = inner.lock(i).expired_usage(now);
            total.entries += entries;
            total.weight = total.weight.saturating_add(weight);
        }
        total
    }

    /// A random live key (Redis's `RANDOMKEY`): a shard picked with probability proportional
    /// to its size, then a random entry in it. Expired entries met are removed.
    pub fn random_key(&self) -> Option<K>
    where
        K: Clone,
    {
        let inner = &*self.inner;
        let now = inner.now();
        let mut rng = rand::thread_rng();
        let mut out = Removals::new();
        for _ in 0..RANDOM_KEY_ATTEMPTS {
            let total: u64 = inner.stats.iter().map(|s| s.len()).sum();
            if total == 0 {
                return None;
            }
            let mut ticket = rng.gen_range(0..total);
            let mut chosen = 0;
            for (i, s) in inner.stats.iter().enumerate() {
                chosen = i;
                if ticket < s.len() {
                    break;
                }
                ticket -= s.len();
            }
            let found = {
                let mut shard = inner.lock(chosen);
                match select_victim(&mut shard, Policy::allkeys_random(), None, now, inner.lfu) {
                    Some(p)
                        if shard
                            .node(p)
                            .is_some_and(|n| expiry::is_expired(n.expire_at, now)) =>
                    {
                        if let Some(node) = shard.remove(p) {
                            shard.stats().record_expiration();
                            out.push((node.key, node.value, RemovalCause::Expired));
                        }
                        None
                    }
                    Some(p) => shard.node(p).map(|n| n.key.clone()),
                    None => None,
                }
            };
            inner.notify(&mut out);
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Removes every entry, each reported as [`RemovalCause::Removed`]. Shards are emptied
    /// one at a time: writes racing with `clear` may survive it.
    pub fn clear(&self) {
        let inner = &*self.inner;
        for i in 0..inner.shards.len() {
            let nodes = inner.lock(i).take_all();
            for node in nodes {
                inner.report(&node.key, &node.value, RemovalCause::Removed);
            }
        }
    }
}
