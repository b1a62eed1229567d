//! Server-assisted client-side caching (`CLIENT TRACKING`), as Redis 7 does it.
//!
//! - Default mode: [`TrackingTable`] remembers which clients read which keys; the first
//!   change of a key sends each of them one `invalidate` message and forgets the key.
//! - Broadcasting mode (`BCAST`): every changed key that starts with a registered prefix
//!   (the empty prefix matches every key) is sent to the prefix's clients, one message per
//!   prefix and command listing its keys in byte order (Redis batches per event-loop turn).
//! - Messages go to the client itself as RESP3 pushes, or to its `REDIRECT` target: a
//!   push if the target speaks RESP3, a `message` on `__redis__:invalidate` if it is a
//!   RESP2 client in subscribed mode, nothing otherwise (as Redis).
//!
//! A message for the connection that is running the command goes straight into its reply
//! buffer after the reply; others go into the target's bounded push queue
//! ([`crate::net::push`]), and a full queue disconnects that target. Who calls in:
//! `command::tracking` after each command (reads remember, writes invalidate, flushes send
//! the null invalidation), and the keyspace's removal listener for expiry and eviction.

pub mod table;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;

use crate::net::registry::{ClientHandle, ClientId, TRACKING_BROKEN_REDIRECT};
pub use table::TrackingTable;

/// Shards of the tracking-client directory (by client id); a power of two.
const DIRECTORY_SHARDS: usize = 16;
/// Most keys one call evicts from an over-full table (Redis's effort per cycle starts at
/// 100 keys); the rest go on the next call, so no command pays for a large `CONFIG SET`.
const MAX_EVICTIONS_PER_CALL: usize = 100;
/// Redis's default `tracking-table-max-keys`.
pub const DEFAULT_MAX_KEYS: u64 = 1_000_000;
/// The pub/sub channel RESP2 clients subscribe to for redirected invalidations.
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// One tracking client, as other connections see it. Replaced whenever the client runs
/// `CLIENT TRACKING ON` again; removed on `OFF`, `RESET` and disconnect.
#[derive(Debug)]
pub struct Tracker {
    /// The tracking client.
    pub handle: Arc<ClientHandle>,
    /// `BCAST`: it gets prefix broadcasts, never default-mode messages.
    pub bcast: bool,
    /// `NOLOOP`: nothing about its own writes.
    pub noloop: bool,
    /// `REDIRECT`: the connection that takes its messages.
    pub redirect: Option<Arc<ClientHandle>>,
}

/// Where a change came from: the connection running the command (its reply buffer takes
/// its own messages) or the node itself (expiry, eviction).
pub struct Origin<'a> {
    /// The writer's id, for `NOLOOP`.
    pub writer: Option<ClientId>,
    /// The writer's reply buffer.
    pub out: Option<&'a mut BytesMut>,
}

impl Origin<'_> {
    /// A change the node made on its own.
    pub fn node() -> Origin<'static> {
        Origin {
            writer: None,
            out: None,
        }
    }
}

thread_local! {
    /// The keys of the write command this thread is running: the removal listener leaves
    /// them to the command's own invalidation, so no key is announced twice.
    static WRITING: RefCell<Vec<Bytes>> = const { RefCell::new(Vec::new()) };
}

/// One shard of the tracking-client directory.
type DirectoryShard = RwLock<HashMap<ClientId, Arc<Tracker>>>;

/// The node's tracking state.
#[derive(Debug)]
pub struct Tracking {
    /// Key → clients, for default mode.
    pub table: TrackingTable,
    /// Tracking clients by id; read to deliver, written on `CLIENT TRACKING`.
    directory: Box<[DirectoryShard]>,
    /// `BCAST` prefix → its clients; read on writes while any client broadcasts.
    prefixes: RwLock<BTreeMap<Bytes, Vec<Arc<Tracker>>>>,
    /// Clients with tracking on (`tracking_clients`).
    clients: AtomicUsize,
    /// `tracking-table-max-keys` (0: no bound).
    pub max_keys: AtomicU64,
    /// Clients disconnected because their push queue was full.
    pub overflow_disconnects: AtomicU64,
}

impl Tracking {
    /// Empty state with a table bound (0 for none).
    pub fn new(max_keys: u64) -> Tracking {
        Tracking {
            table: TrackingTable::default(),
            directory: (0..DIRECTORY_SHARDS)
                .map(|_| RwLock::new(HashMap::new()))
                .collect(),
            prefixes: RwLock::new(BTreeMap::new()),
            clients: AtomicUsize::new(0),
            max_keys: AtomicU64::new(max_keys),
            overflow_disconnects: AtomicU64::new(0),
        }
    }

    fn directory(&self, id: ClientId) -> &DirectoryShard {
        &self.directory[(id.0 as usize) & (DIRECTORY_SHARDS - 1)]
    }

    /// Whether a write must look for clients to tell: someone tracks, or keys read by
    /// clients that have since turned tracking off are still remembered (Redis forgets
    /// them lazily too). Two relaxed loads.
    pub fn has_work(&self) -> bool {
        self.clients.load(Ordering::Relaxed) > 0 || self.table.keys() > 0
    }

    /// Clients with tracking on.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// `BCAST` prefixes registered (`tracking_total_prefixes`).
    pub fn prefixes(&self) -> usize {
        self.prefixes.read().len()
    }

    /// Turns tracking on (or replaces the settings of) `tracker`'s client, with its
    /// `BCAST` prefixes (the empty prefix when none is given).
    pub fn enable(&self, tracker: Tracker, prefixes: &[Bytes]) {
        let id = tracker.handle.id;
        let tracker = Arc::new(tracker);
        if tracker.bcast {
            let mut map = self.prefixes.write();
            for p in prefixes {
                let list = map.entry(p.clone()).or_default();
                list.retain(|t| t.handle.id != id);
                list.push(Arc::clone(&tracker));
            }
            // Settings changed (NOLOOP, REDIRECT): refresh the older prefixes too.
            for list in map.values_mut() {
                for t in list.iter_mut().filter(|t| t.handle.id == id) {
                    *t = Arc::clone(&tracker);
                }
            }
        }
        let old = self.directory(id).write().insert(id, tracker);
        if old.is_none() {
            self.clients.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Turns tracking off for `id` (`CLIENT TRACKING OFF`, `RESET`, disconnect). Keys it
    /// read stay in the table until they change, as in Redis.
    pub fn disable(&self, id: ClientId) {
        let Some(old) = self.directory(id).write().remove(&id) else {
            return;
        };
        self.clients.fetch_sub(1, Ordering::Relaxed);
        if old.bcast {
            let mut map = self.prefixes.write();
            map.retain(|_, list| {
                list.retain(|t| t.handle.id != id);
                !list.is_empty()
            });
        }
    }

    /// Remembers that `id` read `keys`, then brings the table back under its bound,
    /// invalidating the keys it drops.
    pub fn remember<'k>(
        &self,
        id: ClientId,
        keys: impl Iterator<Item = &'k Bytes>,
        origin: &mut Origin<'_>,
    ) {
        let mut grew = false;
        for key in keys {
            grew |= self.table.remember(key, id);
        }
        if grew {
            self.enforce_bound(origin);
        }
    }

    /// Drops keys (with their invalidations) while the table is over its bound.
    pub fn enforce_bound(&self, origin: &mut Origin<'_>) {
        let max = self.max_keys.load(Ordering::Relaxed);
        if max == 0 {
            return;
        }
        for _ in 0..MAX_EVICTIONS_PER_CALL {
            if u64::try_from(self.table.keys()).unwrap_or(u64::MAX) <= max {
                return;
            }
            let Some((key, ids)) = self.table.take_any() else {
                return;
            };
            // Redis's table eviction ignores NOLOOP: the client did not change the key.
            self.send_default(key.as_bytes(), &ids, origin, None);
        }
    }

    /// Announces changed keys: default-mode clients that read them, then broadcasts.
    pub fn invalidate<'k>(
        &self,
        keys: impl Iterator<Item = &'k [u8]> + Clone,
        origin: &mut Origin<'_>,
    ) {
        if self.table.keys() > 0 {
            let me = origin.writer;
            for key in keys.clone() {
                if let Some(ids) = self.table.take(key) {
                    self.send_default(key, &ids, origin, me);
                }
            }
        }
        self.broadcast(keys, origin);
    }

    /// Announces one key the keyspace expired or evicted (the removal listener). Keys of
    /// the write command running on this thread are left to that command.
    pub fn invalidate_removed(&self, key: &[u8]) {
        if !self.has_work() {
            return;
        }
        let own = WRITING.with(|w| w.borrow().iter().any(|k| k.as_ref() == key));
        if !own {
            self.invalidate(std::iter::once(key), &mut Origin::node());
        }
    }

    /// Marks `keys` as being written by this thread until [`Tracking::end_write`].
    pub fn begin_write<'k>(keys: impl Iterator<Item = &'k Bytes>) {
        WRITING.with(|w| w.borrow_mut().extend(keys.cloned()));
    }

    /// Ends [`Tracking::begin_write`].
    pub fn end_write() {
        WRITING.with(|w| w.borrow_mut().clear());
    }

    /// `FLUSHALL`/`FLUSHDB`: every tracking client gets the null invalidation (whatever
    /// its mode, `NOLOOP` included, as in Redis) and the table is emptied.
    pub fn flush(&self, origin: &mut Origin<'_>) {
        let trackers: Vec<Arc<Tracker>> = self
            .directory
            .iter()
            .flat_map(|d| d.read().values().cloned().collect::<Vec<_>>())
            .collect();
        for t in &trackers {
            self.deliver(t, None, origin);
        }
        self.table.clear();
    }

    fn send_default(
        &self,
        key: &[u8],
        ids: &[ClientId],
        origin: &mut Origin<'_>,
        writer: Option<ClientId>,
    ) {
        for &id in ids {
            let Some(t) = self.directory(id).read().get(&id).cloned() else {
                continue;
            };
            // A client that switched to BCAST no longer takes default-mode messages.
            if t.bcast || (t.noloop && writer == Some(id)) {
                continue;
            }
            self.deliver(&t, Some(&[key]), origin);
        }
    }

    fn broadcast<'k>(&self, keys: impl Iterator<Item = &'k [u8]> + Clone, origin: &mut Origin<'_>) {
        let map = self.prefixes.read();
        if map.is_empty() {
            return;
        }
        let mut matching: Vec<&[u8]> = Vec::new();
        for (prefix, trackers) in map.iter() {
            matching.clear();
            matching.extend(keys.clone().filter(|k| k.starts_with(prefix)));
            if matching.is_empty() {
                continue;
            }
            matching.sort_unstable();
            matching.dedup();
            for t in trackers {
                if t.noloop && origin.writer == Some(t.handle.id) {
                    continue;
                }
                self.deliver(t, Some(&matching), origin);
            }
        }
    }

    /// Sends one invalidation (`None`: the flush's null) to `t`'s client or its redirect.
    fn deliver(&self, t: &Tracker, keys: Option<&[&[u8]]>, origin: &mut Origin<'_>) {
        let target = match &t.redirect {
            None => &t.handle,
            Some(r) if r.is_gone() => {
                t.handle
                    .tracking
                    .fetch_or(TRACKING_BROKEN_REDIRECT, Ordering::Relaxed);
                if t.handle.is_resp3() {
                    let msg = redirect_broken(r.id);
                    self.send(&t.handle, msg, origin);
                }
                return;
            }
            Some(r) => r,
        };
        let msg = if target.is_resp3() {
            invalidation(true, keys)
        } else if t.redirect.is_some() && target.is_subscribed() {
            invalidation(false, keys)
        } else {
            // RESP2 without a redirect has no way to take the message.
            return;
        };
        self.send(target, msg, origin);
    }

    fn send(&self, target: &ClientHandle, msg: Bytes, origin: &mut Origin<'_>) {
        if Some(target.id) == origin.writer {
            if let Some(out) = origin.out.as_deref_mut() {
                out.extend_from_slice(&msg);
                return;
            }
        }
        target.try_push(msg, &self.overflow_disconnects);
    }
}

/// An invalidation in RESP3 push form, or as a RESP2 `message` on
/// `__redis__:invalidate`; `None` is the flush's null.
pub fn invalidation(resp3: bool, keys: Option<&[&[u8]]>) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    if resp3 {
        b.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    } else {
        b.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    }
    match keys {
        Some(keys) => {
            cachalot_protocol::encode::write_array_header(&mut b, keys.len());
            for k in keys {
                cachalot_protocol::encode::write_bulk(&mut b, k);
            }
        }
        None if resp3 => b.extend_from_slice(b"_\r\n"),
        None => b.extend_from_slice(b"$-1\r\n"),
    }
    b.freeze()
}

/// The push Redis sends a RESP3 client whose redirect target has gone.
fn redirect_broken(target: ClientId) -> Bytes {
    let mut b = BytesMut::with_capacity(48);
    b.extend_from_slice(b">2\r\n$21\r\ntracking-redir-broken\r\n");
    cachalot_protocol::encode::write_integer(&mut b, i64::try_from(target.0).unwrap_or(i64::MAX));
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidations_are_encoded_as_redis_sends_them() {
        assert_eq!(
            &invalidation(true, Some(&[b"k1"]))[..],
            b">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\nk1\r\n"
        );
        assert_eq!(
            &invalidation(true, None)[..],
            b">2\r\n$10\r\ninvalidate\r\n_\r\n"
        );
        assert_eq!(
            &invalidation(false, Some(&[b"a", b"bc"]))[..],
            &b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*2\r\n$1\r\na\r\n$2\r\nbc\r\n"
                [..]
        );
        assert_eq!(
            &invalidation(false, None)[..],
            b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"
        );
        assert_eq!(
            &redirect_broken(ClientId(15))[..],
            b">2\r\n$21\r\ntracking-redir-broken\r\n:15\r\n"
        );
    }
}
