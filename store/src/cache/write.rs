//! Writes: insert, remove, expiry changes and `compute`, with bound enforcement.

use std::borrow::Borrow;
use std::hash::Hash;
use std::time::Duration;

use parking_lot::MutexGuard;

use super::Cache;
use crate::entry::{Computation, Entry};
use crate::error::Error;
use crate::expiry;
use crate::memory::{Change, MAX_ROOM_ROUNDS};
use crate::policy::RemovalCause;
use crate::shard::slab::MAX_POSITIONS;
use crate::shard::{Node, Removals, Shard};

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// Stores `value` for `key` with the default TTL (or none), returning the previous value,
    /// which is also reported to the listener as [`RemovalCause::Replaced`].
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] / [`Error::TooManyEntries`] when the entry cannot fit: it is
    /// larger than the bound on its own, or the policy may not evict (`noeviction`) or finds
    /// nothing to evict (`volatile-*` with no expiring entry left). Nothing is written then;
    /// a `volatile-*` policy may already have evicted what it could.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>, Error> {
        let now = self.inner.now();
        let at = self.inner.default_ttl.map(|ttl| expiry::deadline(now, ttl));
        self.write(key, value, at, now)
    }

    /// Like [`insert`](Self::insert) with an absolute expiry (unix ms; `None`: never).
    /// A time at or before now deletes the key: the previous value is reported `Replaced`
    /// and `value` is reported `Expired` right away (Redis's `SET ... PXAT <past>`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn insert_with_expiry(
        &self,
        key: K,
        value: V,
        expire_at_millis: Option<u64>,
    ) -> Result<Option<V>, Error> {
        let now = self.inner.now();
        self.write(key, value, expire_at_millis, now)
    }

    /// Like [`insert_with_expiry`](Self::insert_with_expiry), but takes the key by
    /// reference and builds an owned key (with `to_owned`) only when it is needed: an
    /// overwrite of a live key keeps the stored key, saving a copy per overwrite (a
    /// server's `SET` on an existing key). With a removal listener, the replaced value is
    /// reported with a freshly built key.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn insert_with_expiry_ref<Q>(
        &self,
        key: &Q,
        to_owned: impl FnOnce(&Q) -> K,
        value: V,
        expire_at_millis: Option<u64>,
    ) -> Result<Option<V>, Error>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &*self.inner;
        let now = inner.now();
        if expiry::is_past(expire_at_millis, now) {
            return self.write(to_owned(key), value, expire_at_millis, now);
        }
        let (hash, home) = self.locate(key);
        let mut out = Removals::new();
        let mut shard = inner.lock(home);
        let pos = self.find_live(&mut shard, hash, key, now, &mut out);
        // The fast path: the key is live and the new value fits without evicting.
        let fits = pos
            .and_then(|p| Some((shard.node(p)?, shard.weight_of(p))))
            .and_then(|(node, old_weight)| {
                let weight = inner.weigh(&node.key, &value);
                let change = Change {
                    add_weight: weight,
                    free_weight: old_weight,
                    add_entries: 0,
                };
                let ok = inner.limits.admit(weight).is_ok()
                    && inner.limits.check(&inner.usage, change).is_ok();
                ok.then_some(weight)
            });
        let (Some(p), Some(weight)) = (pos, fits) else {
            drop(shard);
            inner.notify(&mut out);
            return self.write(to_owned(key), value, expire_at_millis, now);
        };
        let old = match shard.replace(p, value, weight, expiry::encode(expire_at_millis)) {
            Ok(old) => old,
            Err(value) => {
                drop(shard);
                inner.notify(&mut out);
                return self.write(to_owned(key), value, expire_at_millis, now);
            }
        };
        shard.touch(p, now, inner.lfu);
        shard.stats().record_insert();
        self.settle(shard, home, Some(p), now, &mut out);
        if inner.listener.is_some() {
            inner.report(&to_owned(key), &old, RemovalCause::Replaced);
        }
        Ok(Some(old))
    }

    /// Like [`insert`](Self::insert) with a TTL from now (rounded up to whole ms). A zero TTL
    /// deletes the key, as a past time does for [`insert_with_expiry`](Self::insert_with_expiry).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) -> Result<Option<V>, Error> {
        let now = self.inner.now();
        self.write(key, value, Some(expiry::deadline(now, ttl)), now)
    }

    fn write(&self, key: K, value: V, at: Option<u64>, now: u64) -> Result<Option<V>, Error> {
        let inner = &*self.inner;
        let (hash, home) = self.locate(&key);
        let mut out = Removals::new();
        if expiry::is_past(at, now) {
            let old = {
                let mut shard = inner.lock(home);
                let old = self
                    .find_live(&mut shard, hash, &key, now, &mut out)
                    .and_then(|p| shard.remove(p));
                shard.stats().record_insert();
                shard.stats().record_expiration();
                old
            };
            inner.notify(&mut out);
            if let Some(old) = &old {
                inner.report(&old.key, &old.value, RemovalCause::Replaced);
            }
            inner.report(&key, &value, RemovalCause::Expired);
            return Ok(old.map(|n| n.value));
        }

        let weight = inner.weigh(&key, &value);
        inner.limits.admit(weight)?;
        let change = |shard: &Shard<K, V>, pos: Option<u32>| Change {
            add_weight: weight,
            free_weight: pos.map_or(0, |p| shard.weight_of(p)),
            add_entries: u64::from(pos.is_none()),
        };
        let (mut shard, pos) = match self.lock_with_room(home, hash, &key, now, &mut out, change) {
            Ok(locked) => locked,
            Err(e) => {
                inner.notify(&mut out);
                return Err(e);
            }
        };
        let raw_expiry = expiry::encode(at);
        let replaced = match pos {
            Some(p) => shard
                .replace(p, value, weight, raw_expiry)
                .map(|old| (p, old)),
            None => Err(value),
        };
        let (pos, replaced) = match replaced {
            Ok((p, old)) => {
                shard.touch(p, now, inner.lfu);
                (p, Some((key, old)))
            }
            Err(value) => {
                match shard.insert(Node::new(key, value, hash, raw_expiry), weight, now) {
                    Ok(p) => (p, None),
                    Err(_node) => {
                        drop(shard);
                        inner.notify(&mut out);
                        return Err(Error::TooManyEntries {
                            max: u64::from(MAX_POSITIONS),
                        });
                    }
                }
            }
        };
        shard.stats().record_insert();
        self.settle(shard, home, Some(pos), now, &mut out);
        Ok(replaced.map(|(key, old)| {
            inner.report(&key, &old, RemovalCause::Replaced);
            old
        }))
    }

    /// Locks shard `home` once the cache has room for the write described by `change`
    /// (given the shard and the key's live position), evicting if the policy allows.
    /// Returns the locked shard and the key's live position.
    #[allow(clippy::type_complexity)]
    fn lock_with_room<Q>(
        &self,
        home: usize,
        hash: u64,
        key: &Q,
        now: u64,
        out: &mut Removals<K, V>,
        change: impl Fn(&Shard<K, V>, Option<u32>) -> Change,
    ) -> Result<(MutexGuard<'_, Shard<K, V>>, Option<u32>), Error>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let inner = &*self.inner;
        let mut rounds = 0;
        loop {
            let mut shard = inner.lock(home);
            let pos = self.find_live(&mut shard, hash, key, now, out);
            let wanted = change(&shard, pos);
            let Err(refusal) = inner.limits.check(&inner.usage, wanted) else {
                return Ok((shard, pos));
            };
            let policy = inner.policy();
            if !policy.evicts() {
                return Err(refusal);
            }
            if rounds == MAX_ROOM_ROUNDS || inner.evict_local(&mut shard, wanted, pos, now, out) {
                return Ok((shard, pos));
            }
            let own = pos.and_then(|p| shard.node(p)).map(|n| n.expire_at);
            drop(shard);
            inner.notify(out);
            // A pass that evicted nothing either found nothing evictable, or lost races
            // with writers moving entries into shards it had already visited.
            if !inner.evict_across(home, pos, wanted, now)
                && inner.limits.check(&inner.usage, wanted).is_err()
                && inner.nothing_evictable(policy, own)
            {
                return Err(refusal);
            }
            rounds += 1;
        }
    }

    /// After a write: evicts (never `protect`) until the bounds hold again, then unlocks and
    /// reports. Catches concurrent writers that only made room for themselves.
    fn settle(
        &self,
        mut shard: MutexGuard<'_, Shard<K, V>>,
        home: usize,
        protect: Option<u32>,
        now: u64,
        out: &mut Removals<K, V>,
    ) {
        let inner = &*self.inner;
        let fits = !inner.policy().evicts()
            || inner.evict_local(&mut shard, Change::NONE, protect, now, out);
        drop(shard);
        inner.notify(out);
        if !fits {
            inner.evict_across(home, protect, Change::NONE, now);
        }
    }

    /// Removes `key`, returning its value, also reported as [`RemovalCause::Removed`].
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let node = self.with_located(key, |shard, pos, _, _| pos.and_then(|p| shard.remove(p)));
        node.map(|n| {
            self.inner.report(&n.key, &n.value, RemovalCause::Removed);
            n.value
        })
    }

    /// Sets (`Some`) or clears (`None`) the expiry of `key`. Returns false if absent.
    /// A time at or before now removes the key, reported as [`RemovalCause::Expired`].
    pub fn set_expire_at<Q>(&self, key: &Q, at: Option<u64>) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with_located(key, |shard, pos, now, out| {
            if let Some(p) = pos {
                if expiry::is_past(at, now) {
                    if let Some(node) = shard.remove(p) {
                        shard.stats().record_expiration();
                        out.push((node.key, node.value, RemovalCause::Expired));
                    }
                } else {
                    shard.set_expiry(p, expiry::encode(at));
                }
            }
            pos.is_some()
        })
    }

    /// Runs `f` on the entry for `key` atomically, under the key's shard lock
    /// (read-modify-write: `INCR`, `APPEND`, `HSET`). Records an access if the key is present.
    ///
    /// See [`Entry`] for which removals are reported to the listener.
    ///
    /// # Errors
    /// When the cache is over a bound already and the policy cannot evict enough, returns
    /// [`Error::OutOfMemory`] / [`Error::TooManyEntries`] without running `f` (Redis denies
    /// writes when over `maxmemory`). Otherwise `f` runs, and the bound may then be exceeded
    /// by the entry it wrote alone, under policies that cannot evict other entries.
    pub fn compute<R>(&self, key: K, f: impl FnOnce(&mut Entry<'_, V>) -> R) -> Result<R, Error> {
        self.compute_inner(key, f, true)
    }

    /// Like [`compute`](Self::compute), but never refused because the cache is over its
    /// bound: for changes that do not grow it (deletes, expiry changes, shrinking updates),
    /// or whose caller has already decided to admit them (a server enforcing Redis's
    /// rule that only commands flagged `denyoom` are refused at `maxmemory`). Evicting
    /// policies still evict after the change, as for every write.
    ///
    /// # Errors
    /// [`Error::TooManyEntries`] if a new entry does not fit in its shard's slab.
    pub fn modify<R>(&self, key: K, f: impl FnOnce(&mut Entry<'_, V>) -> R) -> Result<R, Error> {
        self.compute_inner(key, f, false)
    }

    fn compute_inner<R>(
        &self,
        key: K,
        f: impl FnOnce(&mut Entry<'_, V>) -> R,
        admit: bool,
    ) -> Result<R, Error> {
        let inner = &*self.inner;
        let now = inner.now();
        let (hash, home) = self.locate(&key);
        let mut out = Removals::new();
        let locked = if admit {
            self.lock_with_room(home, hash, &key, now, &mut out, |_, _| Change::NONE)
        } else {
            let mut shard = inner.lock(home);
            let pos = self.find_live(&mut shard, hash, &key, now, &mut out);
            Ok((shard, pos))
        };
        let (mut shard, pos) = match locked {
            Ok(locked) => locked,
            Err(e) => {
                inner.notify(&mut out);
                return Err(e);
            }
        };
        if pos.is_none() && shard.len() >= MAX_POSITIONS {
            drop(shard);
            inner.notify(&mut out);
            return Err(Error::TooManyEntries {
                max: u64::from(MAX_POSITIONS),
            });
        }
        if let Some(p) = pos {
            shard.touch(p, now, inner.lfu);
        }
        let default_expiry =
            expiry::encode(inner.default_ttl.map(|ttl| expiry::deadline(now, ttl)));
        let (result, pos) = {
            let mut comp =
                Computation::new(&mut shard, key, hash, pos, now, default_expiry, &mut out);
            let result = f(&mut Entry::new(&mut comp));
            (result, comp.finish(|k, v| inner.weigh(k, v)))
        };
        self.settle(shard, home, pos, now, &mut out);
        Ok(result)
    }
}

impl<K, V> Shard<K, V> {
    /// Swaps in a new value, weight and expiry at `pos`; gives `value` back if `pos` is vacant.
    fn replace(&mut self, pos: u32, value: V, weight: u64, raw_expiry: u64) -> Result<V, V> {
        let Some(node) = self.node_mut(pos) else {
            return Err(value);
        };
        let old = std::mem::replace(&mut node.value, value);
        self.set_weight(pos, weight);
        self.set_expiry(pos, raw_expiry);
        Ok(old)
    }
}

#[cfg(test)]
mod tests {
    use crate::Cache;

    /// Position of `key` in its shard, for checking that writes never move entries.
    fn position(cache: &Cache<u32, u32>, key: u32) -> Option<u32> {
        let (hash, i) = cache.locate(&key);
        cache.inner.lock(i).find(hash, &key)
    }

    #[test]
    fn updates_keep_an_entry_at_its_slab_position() {
        let cache: Cache<u32, u32> = Cache::builder().shards(1).build().expect("valid");
        for k in 0..10 {
            cache.insert(k, k).expect("unbounded");
        }
        let before = position(&cache, 5);
        cache.insert(5, 50).expect("unbounded");
        cache
            .compute(5, |e| e.get_mut().map(|v| *v += 1))
            .expect("unbounded");
        cache.set_expire_at(&5, Some(u64::MAX));
        assert_eq!(position(&cache, 5), before);
        assert_eq!(cache.get(&5), Some(51));
    }
}
