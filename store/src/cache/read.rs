//! Reads: lookups that may record an access, and metadata queries.

use std::borrow::Borrow;
use std::hash::Hash;
use std::time::Duration;

use super::Cache;
use crate::entry::EntryInfo;
use crate::expiry::{self, NO_EXPIRY};
use crate::shard::Node;

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// Runs `f` on the live entry for `key` with its shard locked; `touch` records an access
    /// and a hit or miss.
    ///
    /// Reading the precise clock took 5.5% of a bounded hit's time (7.6% with its callers)
    /// in a `perf` profile of the 8-shard build (docs/benchmarks.md), so a read records its access at the coarse time
    /// ([`Clock::coarse_millis`](crate::Clock::coarse_millis)) and reads the precise one,
    /// under the lock, only for an entry with an expiry: to judge it, and as `f`'s `now`.
    /// (An LFU stamp a little ahead of a later coarse time reads as not idle, see
    /// `Access::frequency`.)
    fn with_live<Q, R>(
        &self,
        key: &Q,
        touch: bool,
        f: impl FnOnce(&Node<K, V>, u64) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let coarse = self.inner.coarse_now();
        self.with_shard(key, |shard, hash, out| {
            let mut now = coarse;
            let pos = match shard.find(hash, key) {
                Some(p) if shard.node(p).is_some_and(|n| n.expire_at != NO_EXPIRY) => {
                    now = self.inner.now();
                    Self::live_at(shard, p, now, out)
                }
                found => found,
            };
            if touch {
                match pos {
                    Some(p) => {
                        shard.record_hit();
                        shard.touch(p, now, self.inner.lfu);
                    }
                    None => shard.record_miss(),
                }
            }
            pos.and_then(|p| shard.node(p)).map(|n| f(n, now))
        })
    }

    /// A clone of the value for `key`, recording an access (recency and LFU counter).
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        V: Clone,
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_with(key, V::clone)
    }

    /// `f` applied to the value for `key`, recording an access, without cloning the value.
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with_live(key, true, |n, _| f(&n.value))
    }

    /// `f` applied to the value for `key`, without recording an access or a hit/miss.
    /// An expired entry is still hidden (and removed).
    pub fn peek_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with_live(key, false, |n, _| f(&n.value))
    }

    /// `f` applied to the live entry for `key` (its value and absolute expiry in unix
    /// milliseconds) or to `None` if there is none, with the key's shard locked and no
    /// access recorded. Because every write to the key takes the same lock, the calls for
    /// one key see its states in the order they were written: a caller that records each
    /// state from `f` (a replication stream) records them in that order.
    pub fn inspect<Q, R>(&self, key: &Q, f: impl FnOnce(Option<(&V, Option<u64>)>) -> R) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with_located(key, |shard, pos, _, _| {
            let live = pos
                .and_then(|p| shard.node(p))
                .map(|n| (&n.value, expiry::decode(n.expire_at)));
            f(live)
        })
    }

    /// Whether a live entry for `key` exists; no access recorded.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with_live(key, false, |_, _| ()).is_some()
    }

    /// The absolute expiry of `key`: `None` if absent, `Some(None)` if it never expires.
    pub fn expire_at<Q>(&self, key: &Q) -> Option<Option<u64>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with_live(key, false, |n, _| expiry::decode(n.expire_at))
    }

    /// The time `key` has left: `None` if absent, `Some(None)` if it never expires.
    pub fn ttl<Q>(&self, key: &Q) -> Option<Option<Duration>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with_live(key, false, |n, now| expiry::remaining(n.expire_at, now))
    }

    /// Metadata of `key` (expiry, idle time, LFU counter, weight); no access recorded.
    pub fn entry_info<Q>(&self, key: &Q) -> Option<EntryInfo>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let lfu = self.inner.lfu;
        self.with_located(key, |shard, pos, now, _| {
            // The shard's own form: a policy switch sets the cache's policy before it
            // converts each shard's access records.
            let counts_frequency = shard.counts_frequency();
            let p = pos?;
            let n = shard.node(p)?;
            Some(EntryInfo {
                expire_at: expiry::decode(n.expire_at),
                idle_seconds: (!counts_frequency).then(|| n.access.idle_seconds(now)),
                frequency: counts_frequency.then(|| n.access.frequency(now, lfu)),
                weight: shard.weight_of(p),
            })
        })
    }
}
