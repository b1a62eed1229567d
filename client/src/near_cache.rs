//! [`NearCache`]: a bounded in-process copy of hot keys' values (moka), kept coherent by
//! the server's client-side caching protocol.
//!
//! With a near-cache on, every connection speaks RESP3 and turns on `CLIENT TRACKING ON
//! OPTIN`; a `GET` the near-cache wants to keep is sent right behind `CLIENT CACHING YES`
//! (in the same write, so nothing can come between them), which makes the node track that
//! key for this connection. The node then pushes `invalidate` when the key changes, and
//! the reader task drops the entry. The fill itself also happens in the reader task, on
//! the reply, so an invalidation that follows the reply can never be overtaken by it.
//!
//! Staleness is bounded three ways: an invalidation drops the entry (normally within one
//! round trip of the write); if one is lost, the entry's maximum age (1 s by default)
//! drops it; a lost connection empties the whole near-cache.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use cachalot_protocol::Frame;

use crate::connection::{ConnectionObserver, ReplyHook};

/// Which keys the near-cache keeps, and how much and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NearCacheSettings {
    scope: Scope,
    max_entries: u64,
    max_age: Duration,
    hot_key_poll: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Keys the nodes report hot (`HOTKEYS`).
    HotKeys,
    /// Every key read with `GET`.
    AllKeys,
}

impl NearCacheSettings {
    /// Keep the keys the nodes report as hot (polled with `HOTKEYS`), the default.
    pub fn hot_keys() -> NearCacheSettings {
        NearCacheSettings {
            scope: Scope::HotKeys,
            // Hot keys are few; this bounds memory if a node reports many.
            max_entries: 10_000,
            // The staleness bound if an invalidation is lost.
            max_age: Duration::from_secs(1),
            // Fast enough that a key is near-cached within a second of turning hot.
            hot_key_poll: Duration::from_millis(250),
        }
    }

    /// Keep every key read with `GET`, up to the entry bound.
    pub fn all_keys() -> NearCacheSettings {
        NearCacheSettings {
            scope: Scope::AllKeys,
            max_entries: 100_000,
            ..NearCacheSettings::hot_keys()
        }
    }

    /// The most entries kept (least recently and frequently used go first).
    #[must_use]
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// How long an entry may be served without being read from the node again.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// How often the hot-key list is asked of the nodes.
    #[must_use]
    pub fn hot_key_poll(mut self, every: Duration) -> Self {
        self.hot_key_poll = every.max(Duration::from_millis(10));
        self
    }

    pub(crate) fn poll_interval(&self) -> Option<Duration> {
        (self.scope == Scope::HotKeys).then_some(self.hot_key_poll)
    }
}

/// Near-cache counters, as [`ClientMetrics`](crate::ClientMetrics) reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NearCacheMetrics {
    /// Reads answered from the near-cache.
    pub hits: u64,
    /// Reads of near-cacheable keys that went to the node.
    pub misses: u64,
    /// Entries dropped by an `invalidate` push.
    pub invalidations: u64,
    /// Times the whole near-cache was emptied (connection lost, flush).
    pub clears: u64,
    /// Entries now.
    pub entries: u64,
    /// Keys the nodes last reported hot.
    pub hot_keys: u64,
}

/// The near-cache shared by all of a client's connections.
pub(crate) struct NearCache {
    /// `None` caches a key's absence (a `GET` that returned nil is tracked too).
    entries: moka::sync::Cache<Bytes, Option<Bytes>>,
    /// The keys the nodes report hot; swapped whole by the poller.
    hot: ArcSwap<HashSet<Bytes>>,
    scope: Scope,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    clears: AtomicU64,
}

impl NearCache {
    pub(crate) fn new(settings: &NearCacheSettings) -> NearCache {
        NearCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(settings.max_entries)
                .time_to_live(settings.max_age)
                .build(),
            hot: ArcSwap::from_pointee(HashSet::new()),
            scope: settings.scope,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            clears: AtomicU64::new(0),
        }
    }

    /// The kept value (`Some(None)`: kept as missing), counting a hit.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Option<Bytes>> {
        let found = self.entries.get(key);
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Whether a read of `key` should be tracked and kept; counts a miss if so.
    pub(crate) fn wants(&self, key: &[u8]) -> bool {
        let wanted = self.scope == Scope::AllKeys || self.hot.load().contains(key);
        if wanted {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        wanted
    }

    /// A reply hook that keeps the `GET` reply (the last frame) under `key`.
    pub(crate) fn fill_hook(self: &Arc<Self>, key: Bytes) -> ReplyHook {
        let cache = Arc::clone(self);
        Box::new(move |frames: &[Frame]| match frames.last() {
            Some(Frame::Bulk(v)) => cache.entries.insert(key, Some(v.clone())),
            Some(Frame::Null) => cache.entries.insert(key, None),
            _ => {}
        })
    }

    /// Replaces the hot-key list.
    pub(crate) fn set_hot(&self, keys: HashSet<Bytes>) {
        self.hot.store(Arc::new(keys));
    }

    pub(crate) fn clear(&self) {
        self.entries.invalidate_all();
        self.clears.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn metrics(&self) -> NearCacheMetrics {
        self.entries.run_pending_tasks();
        NearCacheMetrics {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            clears: self.clears.load(Ordering::Relaxed),
            entries: self.entries.entry_count(),
            hot_keys: u64::try_from(self.hot.load().len()).unwrap_or(u64::MAX),
        }
    }
}

impl ConnectionObserver for NearCache {
    /// `invalidate` pushes: `[invalidate, [key...]]`, or `[invalidate, nil]` for a flush.
    fn on_push(&self, frame: Frame) {
        let Frame::Push(items) = frame else { return };
        let mut items = items.into_iter();
        let is_invalidate = matches!(items.next(), Some(Frame::Bulk(kind) | Frame::Simple(kind)) if kind.as_ref() == b"invalidate");
        if !is_invalidate {
            return;
        }
        match items.next() {
            Some(Frame::Array(keys)) => {
                for k in keys {
                    if let Frame::Bulk(k) = k {
                        self.entries.invalidate(&k);
                        self.invalidations.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ => self.clear(),
        }
    }

    fn on_close(&self) {
        self.clear();
    }
}

/// The hot keys named in `HOTKEYS` replies: arrays of `[key, rate]`.
pub(crate) fn hot_keys_of(reply: Frame, into: &mut HashSet<Bytes>) {
    let (Frame::Array(rows) | Frame::Set(rows)) = reply else {
        return;
    };
    for row in rows {
        if let Frame::Array(fields) = row {
            if let Some(Frame::Bulk(k)) = fields.into_iter().next() {
                into.insert(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(items: Vec<Frame>) -> Frame {
        Frame::Push(items)
    }

    #[test]
    fn an_invalidation_drops_only_its_keys() {
        let nc = Arc::new(NearCache::new(&NearCacheSettings::all_keys()));
        nc.fill_hook(Bytes::from_static(b"a"))(&[Frame::bulk("1")]);
        nc.fill_hook(Bytes::from_static(b"b"))(&[Frame::Simple("OK".into()), Frame::bulk("2")]);
        nc.fill_hook(Bytes::from_static(b"c"))(&[Frame::Null]);
        assert_eq!(nc.get(b"c"), Some(None), "absence is kept too");
        nc.on_push(push(vec![
            Frame::bulk("invalidate"),
            Frame::Array(vec![Frame::bulk("a")]),
        ]));
        assert_eq!(nc.get(b"a"), None);
        assert_eq!(nc.get(b"b"), Some(Some(Bytes::from_static(b"2"))));
        assert_eq!(nc.metrics().invalidations, 1);
    }

    #[test]
    fn a_null_invalidation_or_a_closed_connection_empties_it() {
        let nc = Arc::new(NearCache::new(&NearCacheSettings::all_keys()));
        nc.fill_hook(Bytes::from_static(b"a"))(&[Frame::bulk("1")]);
        nc.on_push(push(vec![Frame::bulk("invalidate"), Frame::Null]));
        assert_eq!(nc.get(b"a"), None);
        nc.fill_hook(Bytes::from_static(b"a"))(&[Frame::bulk("1")]);
        nc.on_close();
        assert_eq!(nc.get(b"a"), None);
        assert_eq!(nc.metrics().clears, 2);
    }

    #[test]
    fn other_pushes_and_error_replies_change_nothing() {
        let nc = Arc::new(NearCache::new(&NearCacheSettings::all_keys()));
        nc.fill_hook(Bytes::from_static(b"a"))(&[Frame::bulk("1")]);
        nc.fill_hook(Bytes::from_static(b"e"))(&[Frame::error("ERR no")]);
        nc.on_push(push(vec![Frame::bulk("message"), Frame::bulk("x")]));
        nc.on_push(Frame::Integer(3));
        assert_eq!(nc.get(b"a"), Some(Some(Bytes::from_static(b"1"))));
        assert_eq!(nc.get(b"e"), None);
    }

    #[test]
    fn only_hot_keys_are_wanted_in_hot_key_scope() {
        let nc = NearCache::new(&NearCacheSettings::hot_keys());
        assert!(!nc.wants(b"k"));
        let mut hot = HashSet::new();
        hot_keys_of(
            Frame::Array(vec![Frame::Array(vec![
                Frame::bulk("k"),
                Frame::Integer(900),
            ])]),
            &mut hot,
        );
        nc.set_hot(hot);
        assert!(nc.wants(b"k"));
        assert!(!nc.wants(b"other"));
        assert_eq!(nc.metrics().hot_keys, 1);
    }

    #[test]
    fn entries_older_than_the_max_age_are_gone() {
        let max_age = Duration::from_millis(30);
        let nc = Arc::new(NearCache::new(
            &NearCacheSettings::all_keys().max_age(max_age),
        ));
        let filled = std::time::Instant::now();
        nc.fill_hook(Bytes::from_static(b"a"))(&[Frame::bulk("1")]);
        assert!(nc.get(b"a").is_some());
        // moka keeps its own clock, so wait for the expiry itself, with a deadline.
        let deadline = filled + Duration::from_secs(5);
        while nc.get(b"a").is_some() {
            assert!(std::time::Instant::now() < deadline, "never expired");
            std::thread::yield_now();
        }
        assert!(filled.elapsed() >= max_age, "gone only after its max age");
    }
}
