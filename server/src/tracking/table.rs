//! The tracking table: which clients read which keys, sharded by key hash.
//!
//! Sans-IO: it only remembers and forgets; [`super::Tracking`] decides whom to tell. Each
//! shard is a `parking_lot` mutex held for one map operation, so tracking clients on
//! different keys rarely meet, and a write of an untracked key costs one short lock hold.

use std::sync::atomic::{AtomicUsize, Ordering};

use indexmap::IndexMap;
use parking_lot::Mutex;
use rand::Rng;

use crate::key::Key;
use crate::net::registry::ClientId;

/// Shards of the table: a power of two, well above the core counts the node runs on, so
/// two connections tracking different keys seldom share a lock.
pub const TABLE_SHARDS: usize = 64;

/// One shard: key → tracking clients, in an `IndexMap` so a random key can be taken out
/// in O(1) when the table is over its bound.
type Shard = Mutex<IndexMap<Key, Vec<ClientId>>>;

/// Key → ids of the clients that may hold it in their caches.
#[derive(Debug)]
pub struct TrackingTable {
    /// The shards; a key lives in shard `hash(key) % TABLE_SHARDS`.
    shards: Box<[Shard]>,
    /// Keys in all shards (`tracking_total_keys`); updated under the shard lock.
    keys: AtomicUsize,
    /// (key, client) pairs in all shards (`tracking_total_items`).
    items: AtomicUsize,
    /// The shard the next [`TrackingTable::take_any`] starts from.
    cursor: AtomicUsize,
}

impl Default for TrackingTable {
    fn default() -> Self {
        TrackingTable {
            shards: (0..TABLE_SHARDS)
                .map(|_| Mutex::new(IndexMap::new()))
                .collect(),
            keys: AtomicUsize::new(0),
            items: AtomicUsize::new(0),
            cursor: AtomicUsize::new(0),
        }
    }
}

impl TrackingTable {
    fn shard(&self, key: &[u8]) -> &Shard {
        let h = xxhash_rust::xxh3::xxh3_64(key);
        // TABLE_SHARDS is a power of two; the low bits pick the shard.
        &self.shards[(h as usize) & (TABLE_SHARDS - 1)]
    }

    /// Records that client `id` read `key`; returns whether the key was new to the table.
    pub fn remember(&self, key: &[u8], id: ClientId) -> bool {
        let mut shard = self.shard(key).lock();
        if let Some(ids) = shard.get_mut(key) {
            if !ids.contains(&id) {
                ids.push(id);
                self.items.fetch_add(1, Ordering::Relaxed);
            }
            return false;
        }
        shard.insert(Key::from_slice(key), vec![id]);
        self.keys.fetch_add(1, Ordering::Relaxed);
        self.items.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Forgets `key`, returning the clients that were tracking it.
    pub fn take(&self, key: &[u8]) -> Option<Vec<ClientId>> {
        let ids = self.shard(key).lock().swap_remove(key)?;
        self.forgot(ids.len());
        Some(ids)
    }

    /// Forgets some key (a random one of the first non-empty shard from a rotating start,
    /// as Redis evicts random keys when the table is over its bound).
    pub fn take_any(&self) -> Option<(Key, Vec<ClientId>)> {
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        for i in 0..TABLE_SHARDS {
            let mut shard = self.shards[(start + i) & (TABLE_SHARDS - 1)].lock();
            if shard.is_empty() {
                continue;
            }
            let at = rand::thread_rng().gen_range(0..shard.len());
            let taken = shard.swap_remove_index(at);
            drop(shard);
            if let Some((key, ids)) = taken {
                self.forgot(ids.len());
                return Some((key, ids));
            }
        }
        None
    }

    /// Forgets every key (`FLUSHALL`).
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let items: usize = shard.values().map(Vec::len).sum();
            let keys = shard.len();
            shard.clear();
            self.keys.fetch_sub(keys, Ordering::Relaxed);
            self.items.fetch_sub(items, Ordering::Relaxed);
        }
    }

    fn forgot(&self, items: usize) {
        self.keys.fetch_sub(1, Ordering::Relaxed);
        self.items.fetch_sub(items, Ordering::Relaxed);
    }

    /// Keys tracked.
    pub fn keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// (key, client) pairs tracked.
    pub fn items(&self) -> usize {
        self.items.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_read_by_two_clients_is_one_key_and_two_items() {
        let t = TrackingTable::default();
        assert!(t.remember(b"k", ClientId(1)));
        assert!(!t.remember(b"k", ClientId(2)));
        assert!(!t.remember(b"k", ClientId(2)));
        assert_eq!((t.keys(), t.items()), (1, 2));
        assert_eq!(t.take(b"k"), Some(vec![ClientId(1), ClientId(2)]));
        assert_eq!((t.keys(), t.items()), (0, 0));
        assert_eq!(t.take(b"k"), None);
    }

    #[test]
    fn take_any_drains_every_key_once() {
        let t = TrackingTable::default();
        for i in 0..500 {
            t.remember(format!("key:{i}").as_bytes(), ClientId(7));
        }
        let mut seen = std::collections::HashSet::new();
        while let Some((k, ids)) = t.take_any() {
            assert_eq!(ids, vec![ClientId(7)]);
            assert!(seen.insert(k.as_bytes().to_vec()));
        }
        assert_eq!(seen.len(), 500);
        assert_eq!((t.keys(), t.items()), (0, 0));
    }

    #[test]
    fn clear_forgets_everything_and_resets_the_counts() {
        let t = TrackingTable::default();
        for i in 0..100 {
            t.remember(format!("k{i}").as_bytes(), ClientId(1));
            t.remember(format!("k{i}").as_bytes(), ClientId(2));
        }
        assert_eq!((t.keys(), t.items()), (100, 200));
        t.clear();
        assert_eq!((t.keys(), t.items()), (0, 0));
        assert!(t.take(b"k1").is_none());
    }

    #[test]
    fn long_and_short_keys_are_found_by_their_bytes() {
        let t = TrackingTable::default();
        let long = vec![b'x'; 100];
        t.remember(&long, ClientId(3));
        t.remember(b"", ClientId(3));
        assert_eq!(t.take(&long), Some(vec![ClientId(3)]));
        assert_eq!(t.take(b""), Some(vec![ClientId(3)]));
    }

    #[test]
    fn concurrent_remembers_count_exactly() {
        let t = std::sync::Arc::new(TrackingTable::default());
        let threads: Vec<_> = (0..4u64)
            .map(|c| {
                let t = std::sync::Arc::clone(&t);
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        t.remember(format!("k{i}").as_bytes(), ClientId(c));
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().expect("thread");
        }
        assert_eq!((t.keys(), t.items()), (1000, 4000));
    }
}
