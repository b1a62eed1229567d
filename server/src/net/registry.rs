//! The registry of connected clients, for `CLIENT LIST`, `CLIENT KILL` and `INFO clients`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering,
};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::push::{self, PushReceiver, PushSender};

/// A connection's id (`CLIENT ID`): unique for the life of the node, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// The part of a connection that other connections may read (`CLIENT LIST`) or act on
/// (`CLIENT KILL`). The connection's own task is the only writer of every field.
#[derive(Debug)]
pub struct ClientHandle {
    /// The id.
    pub id: ClientId,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// When it connected.
    pub created: Instant,
    /// `CLIENT SETNAME`; written by the owning connection.
    pub name: Mutex<Bytes>,
    /// `CLIENT SETINFO LIB-NAME` / `LIB-VER`; written by the owning connection.
    pub lib: Mutex<(Bytes, Bytes)>,
    /// Milliseconds after `created` of the last command.
    pub last_interaction_millis: AtomicU64,
    /// Index of the last command in the command table (`u16::MAX` for none).
    pub last_command: AtomicU16,
    /// Index of the last command's subcommand in its table (`u8::MAX` for none), so
    /// `CLIENT LIST` can show `cmd=client|list` as Redis 7 does.
    pub last_subcommand: AtomicU8,
    /// Protocol version in use (2 or 3).
    pub resp: AtomicU8,
    /// Commands this client has run.
    pub commands: AtomicU64,
    /// Bytes read from this client.
    pub input_bytes: AtomicU64,
    /// Bytes written to this client.
    pub output_bytes: AtomicU64,
    /// Bytes waiting in its query buffer at the last read.
    pub query_buffer: AtomicU64,
    /// Cancelled by `CLIENT KILL`, or when the client's push queue overflowed.
    pub kill: CancellationToken,
    /// The connection's queue of out-of-band messages (invalidations, pub/sub).
    pub push: PushSender,
    /// `CLIENT TRACKING` state for `CLIENT LIST`: [`TRACKING_ON`], [`TRACKING_BCAST`],
    /// [`TRACKING_BROKEN_REDIRECT`]. Written by the owning connection, except the broken
    /// bit, which whoever finds the redirect target gone sets.
    pub tracking: AtomicU8,
    /// `redir=` of `CLIENT LIST`: -1 without tracking, 0 without a redirect, else the id.
    pub redirect: AtomicI64,
    /// Channels subscribed to (`sub=`); written by the owning connection.
    pub channels: AtomicU32,
    /// Patterns subscribed to (`psub=`); written by the owning connection.
    pub patterns: AtomicU32,
    /// Set by the first sender that found the push queue full, so the client is counted
    /// and disconnected once.
    pub push_overflowed: AtomicBool,
    /// The connection is a replica's replication link (`flags=S`, `TYPE replica`).
    pub replica: AtomicBool,
}

/// [`ClientHandle::tracking`] bit: tracking is on (`t`).
pub const TRACKING_ON: u8 = 1;
/// [`ClientHandle::tracking`] bit: broadcasting mode (`B`).
pub const TRACKING_BCAST: u8 = 2;
/// [`ClientHandle::tracking`] bit: the redirect target is gone (`R`).
pub const TRACKING_BROKEN_REDIRECT: u8 = 4;

impl ClientHandle {
    /// Seconds since the last command.
    pub fn idle_secs(&self) -> u64 {
        let age = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        age.saturating_sub(self.last_interaction_millis.load(Ordering::Relaxed)) / 1000
    }

    /// Whether the client speaks RESP3 (and so takes push frames on its own connection).
    pub fn is_resp3(&self) -> bool {
        self.resp.load(Ordering::Relaxed) == 3
    }

    /// Whether the client is subscribed to any channel or pattern (Redis's `CLIENT_PUBSUB`).
    pub fn is_subscribed(&self) -> bool {
        self.channels.load(Ordering::Relaxed) + self.patterns.load(Ordering::Relaxed) > 0
    }

    /// Whether the connection has ended or is about to (killed, queue closed).
    pub fn is_gone(&self) -> bool {
        self.kill.is_cancelled() || self.push.is_closed()
    }

    /// Queues an out-of-band message without waiting. A client already on its way out
    /// gets nothing; the first sender to find its queue full disconnects it and counts it
    /// in `overflows` (STYLE.md: a full channel of a client that stopped reading means
    /// disconnect).
    pub fn try_push(&self, msg: Bytes, overflows: &AtomicU64) {
        if self.kill.is_cancelled() {
            return;
        }
        if push::try_push(&self.push, msg) == push::Delivery::Full
            && !self.push_overflowed.swap(true, Ordering::Relaxed)
        {
            overflows.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                client = self.id.0,
                "push queue full; disconnecting the client"
            );
            self.kill.cancel();
        }
    }

    /// Records activity now.
    pub fn touch(&self) {
        let age = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_interaction_millis.store(age, Ordering::Relaxed);
    }
}

/// Connected clients by id. The lock is taken on connect, disconnect and by the client
/// admin commands, never per request.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    /// The clients and the next id to hand out.
    inner: Mutex<(HashMap<ClientId, Arc<ClientHandle>>, u64)>,
}

impl ClientRegistry {
    /// Registers a new connection and returns its handle and the receiving end of its
    /// push queue.
    pub fn register(
        &self,
        addr: SocketAddr,
        laddr: SocketAddr,
    ) -> (Arc<ClientHandle>, PushReceiver) {
        let (push, pushes) = push::queue();
        let mut guard = self.inner.lock();
        guard.1 += 1;
        let handle = Arc::new(ClientHandle {
            id: ClientId(guard.1),
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(Bytes::new()),
            lib: Mutex::new((Bytes::new(), Bytes::new())),
            last_interaction_millis: AtomicU64::new(0),
            last_command: AtomicU16::new(u16::MAX),
            last_subcommand: AtomicU8::new(u8::MAX),
            resp: AtomicU8::new(2),
            commands: AtomicU64::new(0),
            input_bytes: AtomicU64::new(0),
            output_bytes: AtomicU64::new(0),
            query_buffer: AtomicU64::new(0),
            kill: CancellationToken::new(),
            push,
            tracking: AtomicU8::new(0),
            redirect: AtomicI64::new(-1),
            channels: AtomicU32::new(0),
            patterns: AtomicU32::new(0),
            push_overflowed: AtomicBool::new(false),
            replica: AtomicBool::new(false),
        });
        guard.0.insert(handle.id, Arc::clone(&handle));
        (handle, pushes)
    }

    /// The connected client with this id (`CLIENT TRACKING ... REDIRECT`).
    pub fn get(&self, id: ClientId) -> Option<Arc<ClientHandle>> {
        self.inner.lock().0.get(&id).cloned()
    }

    /// Removes a connection.
    pub fn unregister(&self, id: ClientId) -> Option<Arc<ClientHandle>> {
        self.inner.lock().0.remove(&id)
    }

    /// Connected clients, ordered by id.
    pub fn snapshot(&self) -> Vec<Arc<ClientHandle>> {
        let mut v: Vec<_> = self.inner.lock().0.values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// How many clients are connected.
    pub fn len(&self) -> usize {
        self.inner.lock().0.len()
    }

    /// Whether no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
