//! Views of one entry: [`Entry`], the read-modify-write handle given to
//! [`Cache::compute`](crate::Cache::compute), and [`EntryInfo`], its metadata.

use crate::expiry;
use crate::policy::RemovalCause;
use crate::shard::{Node, Removals, Shard};

/// An entry's metadata, from [`Cache::entry_info`](crate::Cache::entry_info), without
/// recording an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryInfo {
    /// Absolute expiry in unix milliseconds, if any.
    pub expire_at: Option<u64>,
    /// Whole seconds since the last recorded access (`OBJECT IDLETIME`); `None` under an
    /// LFU policy, which records frequency instead (Redis refuses `OBJECT IDLETIME` then).
    pub idle_seconds: Option<u64>,
    /// The decayed logarithmic access counter (`OBJECT FREQ`); `None` unless an LFU policy
    /// is in force (Redis refuses `OBJECT FREQ` then).
    pub frequency: Option<u8>,
    /// The entry's weight: weigher's number plus the per-entry overhead.
    pub weight: u64,
}

/// One key inside [`Cache::compute`](crate::Cache::compute), under its shard's lock.
///
/// An entry that had expired when `compute` started looks vacant (and was reported to the
/// removal listener as [`RemovalCause::Expired`]).
///
/// Removal-listener rules inside `compute`: a value handed back to the closure
/// ([`insert`](Self::insert)'s old value, [`remove`](Self::remove)'s value) belongs to the
/// closure and is **not** reported; [`discard`](Self::discard) and a past
/// [`set_expire_at`](Self::set_expire_at) are reported (`Removed`, `Expired`) after the
/// lock is released. A value both created and dropped within one `compute` was never visible
/// to anyone and is not reported either.
pub struct Entry<'a, V> {
    ops: &'a mut dyn EntryOps<V>,
}

/// What an [`Entry`] can do; implemented by the shard-side [`Computation`].
pub(crate) trait EntryOps<V> {
    fn get(&self) -> Option<&V>;
    fn get_mut(&mut self) -> Option<&mut V>;
    fn insert(&mut self, value: V) -> Option<V>;
    fn take(&mut self) -> Option<V>;
    fn discard(&mut self, cause: RemovalCause) -> bool;
    fn expire_at(&self) -> Option<u64>;
    fn set_expire_at(&mut self, at: Option<u64>);
}

impl<'a, V> Entry<'a, V> {
    pub(crate) fn new(ops: &'a mut dyn EntryOps<V>) -> Self {
        Self { ops }
    }

    /// The current value, if the key is present.
    pub fn get(&self) -> Option<&V> {
        self.ops.get()
    }

    /// The current value for in-place changes; the entry is re-weighed after the closure.
    pub fn get_mut(&mut self) -> Option<&mut V> {
        self.ops.get_mut()
    }

    /// Stores `value`, returning the previous one (not reported to the listener).
    ///
    /// An occupied entry keeps its expiry; a vacant one gets the cache's default TTL, or none.
    pub fn insert(&mut self, value: V) -> Option<V> {
        self.ops.insert(value)
    }

    /// Removes the entry and hands its value to the closure (not reported to the listener).
    pub fn remove(&mut self) -> Option<V> {
        self.ops.take()
    }

    /// Removes the entry and lets the removal listener have the value
    /// ([`RemovalCause::Removed`]), after the lock is released. Returns whether there was one.
    pub fn discard(&mut self) -> bool {
        self.ops.discard(RemovalCause::Removed)
    }

    /// The entry's absolute expiry in unix milliseconds, if present and expiring.
    pub fn expire_at(&self) -> Option<u64> {
        self.ops.expire_at()
    }

    /// Sets or clears the expiry of a present entry (no-op when vacant). A time at or before
    /// now removes the entry, reported as [`RemovalCause::Expired`].
    pub fn set_expire_at(&mut self, at: Option<u64>) {
        self.ops.set_expire_at(at);
    }

    /// Whether the key is present.
    pub fn is_occupied(&self) -> bool {
        self.ops.get().is_some()
    }
}

/// A `compute` in progress on one locked shard.
///
/// The caller's key is held in `key` until a vacant entry is filled; from then on it is in
/// the node (and comes back if the closure removes the node). So `key` is `None` exactly when
/// the current node was created during this computation.
pub(crate) struct Computation<'s, K, V> {
    shard: &'s mut Shard<K, V>,
    key: Option<K>,
    hash: u64,
    pos: Option<u32>,
    now: u64,
    /// Stored expiry for a value put into a vacant entry.
    default_expiry: u64,
    /// The value at `pos` may have changed size: re-weigh it when done.
    dirty: bool,
    out: &'s mut Removals<K, V>,
}

impl<'s, K, V> Computation<'s, K, V> {
    pub(crate) fn new(
        shard: &'s mut Shard<K, V>,
        key: K,
        hash: u64,
        pos: Option<u32>,
        now: u64,
        default_expiry: u64,
        out: &'s mut Removals<K, V>,
    ) -> Self {
        Self {
            shard,
            key: Some(key),
            hash,
            pos,
            now,
            default_expiry,
            dirty: false,
            out,
        }
    }

    /// Re-weighs a changed value and returns the entry's final position.
    pub(crate) fn finish(self, weigh: impl Fn(&K, &V) -> u64) -> Option<u32> {
        let pos = self.pos?;
        if self.dirty {
            if let Some(node) = self.shard.node(pos) {
                let weight = weigh(&node.key, &node.value);
                self.shard.set_weight(pos, weight);
            }
        }
        Some(pos)
    }
}

impl<K, V> EntryOps<V> for Computation<'_, K, V> {
    fn get(&self) -> Option<&V> {
        self.shard.node(self.pos?).map(|n| &n.value)
    }

    fn get_mut(&mut self) -> Option<&mut V> {
        let pos = self.pos?;
        self.dirty = true;
        self.shard.node_mut(pos).map(|n| &mut n.value)
    }

    fn insert(&mut self, value: V) -> Option<V> {
        if let Some(node) = self.pos.and_then(|p| self.shard.node_mut(p)) {
            let old = std::mem::replace(&mut node.value, value);
            self.dirty = true;
            self.shard.stats().record_insert();
            return Some(old);
        }
        // Vacant, so the key is ours to move into a node.
        let Some(key) = self.key.take() else {
            return Some(value);
        };
        // Weight 0 until `finish` weighs it; `compute` checked the shard has a free position.
        let node = Node::new(key, value, self.hash, self.default_expiry);
        match self.shard.insert(node, 0, self.now) {
            Ok(pos) => {
                self.pos = Some(pos);
                self.dirty = true;
                self.shard.stats().record_insert();
                None
            }
            Err(node) => {
                self.key = Some(node.key);
                Some(node.value)
            }
        }
    }

    fn take(&mut self) -> Option<V> {
        let node = self.shard.remove(self.pos.take()?)?;
        self.dirty = false;
        if self.key.is_none() {
            self.key = Some(node.key);
        }
        Some(node.value)
    }

    fn discard(&mut self, cause: RemovalCause) -> bool {
        let Some(node) = self.pos.take().and_then(|p| self.shard.remove(p)) else {
            return false;
        };
        self.dirty = false;
        if cause == RemovalCause::Expired {
            self.shard.stats().record_expiration();
        }
        if self.key.is_none() {
            // Created by this computation: nobody else ever saw it.
            self.key = Some(node.key);
        } else {
            self.out.push((node.key, node.value, cause));
        }
        true
    }

    fn expire_at(&self) -> Option<u64> {
        self.shard
            .node(self.pos?)
            .and_then(|n| expiry::decode(n.expire_at))
    }

    fn set_expire_at(&mut self, at: Option<u64>) {
        let Some(pos) = self.pos else {
            return;
        };
        if expiry::is_past(at, self.now) {
            self.discard(RemovalCause::Expired);
        } else {
            self.shard.set_expiry(pos, expiry::encode(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Usage;
    use crate::stats::ShardStats;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::sync::Arc;

    fn shard() -> (Shard<&'static str, String>, Arc<Usage>) {
        let usage = Arc::new(Usage::default());
        let s = Shard::new(
            Arc::clone(&usage),
            Arc::new(ShardStats::default()),
            StdRng::seed_from_u64(9),
            crate::stats::Tracking::ALL,
        );
        (s, usage)
    }

    #[allow(clippy::ptr_arg)] // The weigher's signature is fixed by the cache's types.
    fn weigh(_: &&str, v: &String) -> u64 {
        v.len() as u64
    }

    #[test]
    fn filling_a_vacant_entry_stores_and_weighs_it() {
        let (mut s, usage) = shard();
        let mut out = Removals::new();
        let mut comp = Computation::new(&mut s, "k", 42, None, 10, 99, &mut out);
        {
            let mut e = Entry::new(&mut comp);
            assert!(!e.is_occupied());
            assert_eq!(e.insert("abc".to_owned()), None);
            assert_eq!(e.expire_at(), Some(99));
            if let Some(v) = e.get_mut() {
                v.push('d');
            }
        }
        let pos = comp.finish(weigh);
        assert!(pos.is_some());
        assert_eq!(usage.weight(), 4);
        assert_eq!(s.find(42, "k"), pos);
        assert!(out.is_empty());
    }

    #[test]
    fn removing_and_refilling_reuses_the_callers_key() {
        let (mut s, usage) = shard();
        let mut out = Removals::new();
        let mut comp = Computation::new(&mut s, "k", 1, None, 10, 0, &mut out);
        {
            let mut e = Entry::new(&mut comp);
            e.insert("a".to_owned());
            assert!(e.discard(), "created here, so dropped unreported");
            assert!(!e.discard());
            e.insert("bb".to_owned());
            e.set_expire_at(Some(10));
            assert!(!e.is_occupied());
            assert_eq!(e.remove(), None);
            e.insert("ccc".to_owned());
        }
        assert!(comp.finish(weigh).is_some());
        assert!(out.is_empty());
        assert_eq!((usage.len(), usage.weight()), (1, 3));
    }

    #[test]
    fn discarding_an_existing_entry_reports_it() {
        let (mut s, usage) = shard();
        let existing = s.insert(Node::new("k", "v".to_owned(), 5, 0), 1, 0).ok();
        let mut out = Removals::new();
        let mut comp = Computation::new(&mut s, "k", 5, existing, 10, 0, &mut out);
        {
            let mut e = Entry::new(&mut comp);
            assert_eq!(e.get().map(String::as_str), Some("v"));
            assert!(e.discard());
            assert_eq!(e.insert("w".to_owned()), None);
        }
        assert!(comp.finish(weigh).is_some());
        let causes: Vec<RemovalCause> = out.drain().map(|(_, _, cause)| cause).collect();
        assert_eq!(causes, [RemovalCause::Removed]);
        assert_eq!((usage.len(), usage.weight()), (1, 1));
    }
}
