//! Replication: a primary streams the effect of every write to its replicas, in order,
//! with a byte offset; replicas apply it, acknowledge offsets and serve reads.
//!
//! # How effects are ordered without a global lock
//! After a write command runs, [`Replication::record`] reads each key it touched **under
//! the keyspace's shard lock** ([`cachalot_store::Cache::inspect`]) and, still under it,
//! appends the key's state to one of [`STRIPES`] buffers chosen by the key's slot. Every
//! write to a key takes the same shard lock, so the states of one key enter its buffer in
//! the order they were written, and the last one entered is the key's current state. A
//! drain task moves the buffers into the [`Backlog`] every millisecond, which gives each
//! byte its offset. Keys the keyspace expires or evicts by itself are recorded the same way
//! from the removal listener, so replicas never expire or evict on their own judgement.
//!
//! # Links
//! A replica connects to its primary's client port and sends `PSYNC <replid> <offset>`
//! (after `AUTH` with `masterauth`). The primary answers `+CONTINUE <replid>` when it still
//! has the bytes from `offset` in its backlog, or `+FULLRESYNC <replid> <offset>` and a
//! snapshot of the keyspace. From then on the connection carries [`effect::LinkFrame`]s
//! one way and [`effect::Ack`]s the other (length-delimited prost, Cachalot's own format
//! after the Redis-style handshake). See [`primary`] and [`replica`].

pub mod backlog;
pub mod effect;
pub mod primary;
pub mod replica;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::node::{unix_millis, Keyspace};
use backlog::Backlog;

/// Buffers effects are spread over (by slot), so writers on different keys rarely meet.
pub const STRIPES: usize = 64;
/// Bytes one stripe may hold between two drains. Past it the stream has lost an effect:
/// every replica must resynchronise from scratch (a new replication id).
const STRIPE_LIMIT_BYTES: usize = 8 * 1024 * 1024;
/// How often the drain task moves effects into the backlog.
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(1);
/// How often an idle drain task checks whether recording started. `WAIT` and new links
/// drain by themselves, so this only bounds how long effects wait before the first link.
const IDLE_DRAIN_CHECK: Duration = Duration::from_millis(20);

/// One stripe's pending effects.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Stripe {
    pending: Mutex<StripeBuf>,
}

#[derive(Debug, Default)]
struct StripeBuf {
    bytes: Vec<u8>,
    overflowed: bool,
    /// The drain pass that last emptied this stripe: what is appended now goes out in
    /// the next one.
    drained_in: u64,
}

/// Drain passes whose end offsets are kept for `WAIT` (about 4 s at one pass a
/// millisecond); a client whose last write is older waits for a later, larger offset,
/// which is never wrong, only stricter.
const PASS_ENDS_KEPT: usize = 4096;

/// This node's place in replication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepts writes and streams them.
    Primary,
    /// Follows the primary at this address.
    Replica(SocketAddr),
}

/// Where a replica's link stands (Redis's `master_link_status` and `ROLE` state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected; will try.
    Connect,
    /// Connecting and handshaking.
    Connecting,
    /// Receiving a snapshot.
    Sync,
    /// Streaming.
    Connected,
}

impl LinkState {
    /// The word `ROLE` uses.
    pub fn word(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Sync => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// The identity of the stream this node holds (Redis's replication ids).
#[derive(Clone, Debug)]
pub struct StreamId {
    /// The current replication id.
    pub replid: String,
    /// The id this stream continued from (after a promotion), or forty zeros.
    pub replid2: String,
    /// The offset up to which `replid2`'s history is shared; -1 without one.
    pub second_offset: i64,
}

/// A replica attached to this primary, as `INFO` and `WAIT` see it.
#[derive(Debug)]
pub struct Attached {
    /// Where it connected from.
    pub addr: SocketAddr,
    /// The port it serves clients on (`REPLCONF listening-port`).
    pub listening_port: u16,
    /// Offset it acknowledged.
    pub ack: AtomicU64,
    /// Offset sent to it so far.
    pub sent: AtomicU64,
    /// Unix milliseconds of its last acknowledgement.
    pub last_ack_millis: AtomicU64,
    /// Whether its snapshot is done (`online`) or still going (`wait_bgsave`).
    pub online: AtomicBool,
}

/// A node's replication state, shared by connections, the drain task and the links.
pub struct Replication {
    /// Effects are recorded: set on a primary once a replica has attached (as Redis
    /// creates its backlog then), and from the start in a cluster.
    active: AtomicBool,
    /// This node is a replica: clients may not write.
    replica: AtomicBool,
    /// A full sync is being loaded: clients get `-LOADING`.
    loading: AtomicBool,
    stripes: Box<[Stripe]>,
    backlog: Mutex<Backlog>,
    /// The backlog's end after each drain (or each applied chunk on a replica).
    end: watch::Sender<u64>,
    ids: Mutex<StreamId>,
    role: watch::Sender<Role>,
    link: Mutex<(LinkState, Instant)>,
    attached: Mutex<Vec<Arc<Attached>>>,
    /// Woken whenever a replica acknowledges.
    pub acked: Notify,
    /// Full syncs served.
    pub full_syncs: AtomicU64,
    /// Partial resyncs accepted.
    pub partial_ok: AtomicU64,
    /// Partial resyncs refused (a full sync instead).
    pub partial_err: AtomicU64,
    /// Times the stream was reset because a stripe overflowed.
    pub resets: AtomicU64,
    generation: AtomicU64,
    last_io_millis: AtomicU64,
    holds_data: AtomicBool,
    /// Drain passes completed.
    passes: AtomicU64,
    /// `(pass, stream end after it)` for the latest passes.
    pass_ends: Mutex<std::collections::VecDeque<(u64, u64)>>,
    /// The keyspace's `maxmemory` while it is set aside (on a replica).
    maxmemory_set_aside: Mutex<Option<Option<u64>>>,
}

impl Replication {
    /// A primary with no replicas yet; `backlog_bytes` is `repl-backlog-size`.
    pub fn new(backlog_bytes: u64) -> Replication {
        let capacity = usize::try_from(backlog_bytes).unwrap_or(usize::MAX);
        Replication {
            active: AtomicBool::new(false),
            replica: AtomicBool::new(false),
            loading: AtomicBool::new(false),
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            backlog: Mutex::new(Backlog::new(capacity, 0)),
            end: watch::Sender::new(0),
            ids: Mutex::new(StreamId {
                replid: random_id(),
                replid2: NO_ID.to_owned(),
                second_offset: -1,
            }),
            role: watch::Sender::new(Role::Primary),
            link: Mutex::new((LinkState::Connect, Instant::now())),
            attached: Mutex::new(Vec::new()),
            acked: Notify::new(),
            full_syncs: AtomicU64::new(0),
            partial_ok: AtomicU64::new(0),
            partial_err: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            last_io_millis: AtomicU64::new(0),
            holds_data: AtomicBool::new(true),
            passes: AtomicU64::new(0),
            pass_ends: Mutex::new(std::collections::VecDeque::with_capacity(PASS_ENDS_KEPT)),
            maxmemory_set_aside: Mutex::new(None),
        }
    }

    /// Whether writes are recorded.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// Starts recording writes (a replica attached, or this node became a primary in a
    /// cluster, where replicas may attach at any time).
    pub fn activate(&self) {
        self.active.store(true, Ordering::SeqCst);
    }

    /// Whether this node is a replica.
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    /// Whether a full sync is being loaded.
    pub fn is_loading(&self) -> bool {
        self.loading.load(Ordering::Relaxed)
    }

    pub(crate) fn set_loading(&self, on: bool) {
        self.loading.store(on, Ordering::Relaxed);
    }

    /// The role now.
    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// Follows role changes.
    pub fn watch_role(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// Follows the stream's end.
    pub fn watch_end(&self) -> watch::Receiver<u64> {
        self.end.subscribe()
    }

    /// The stream's ids.
    pub fn ids(&self) -> StreamId {
        self.ids.lock().clone()
    }

    /// Replicas attached now.
    pub fn attached(&self) -> Vec<Arc<Attached>> {
        self.attached.lock().clone()
    }

    pub(crate) fn attach(&self, a: Arc<Attached>) {
        self.attached.lock().push(a);
    }

    pub(crate) fn detach(&self, a: &Arc<Attached>) {
        self.attached.lock().retain(|x| !Arc::ptr_eq(x, a));
    }

    /// Notes a frame from the primary (`master_last_io_seconds_ago`).
    pub(crate) fn heard_from_primary(&self) {
        self.last_io_millis.store(unix_millis(), Ordering::Relaxed);
    }

    /// Seconds since the last frame from the primary.
    pub fn last_io_seconds(&self) -> u64 {
        millis_since(self.last_io_millis.load(Ordering::Relaxed)) / 1000
    }

    /// The replica link's state and since when.
    pub fn link(&self) -> (LinkState, Instant) {
        *self.link.lock()
    }

    pub(crate) fn set_link(&self, state: LinkState) {
        *self.link.lock() = (state, Instant::now());
    }

    /// (first offset kept, end offset, bytes kept, capacity) of the backlog.
    pub fn backlog_info(&self) -> (u64, u64, usize, usize) {
        let b = self.backlog.lock();
        (b.start(), b.end(), b.len(), b.capacity())
    }

    /// The stream's end: `master_repl_offset` (on a replica, what it has applied).
    pub fn offset(&self) -> u64 {
        self.backlog.lock().end()
    }

    /// Records the current state of `key` (after a write to it, or its removal by the
    /// keyspace) when writes are being recorded. Returns the drain pass that will give the
    /// effect its offset (see [`wait_target`](Self::wait_target)), 0 when nothing was
    /// recorded.
    pub fn record(&self, store: &Keyspace, key: &[u8]) -> u64 {
        if !self.is_active() || self.is_replica() {
            return 0;
        }
        let stripe = &self.stripes[stripe_of(key)];
        store.inspect(key, |live| {
            let mut s = stripe.pending.lock();
            // Past the limit the drain is not keeping up: the stream has to start over.
            // One effect larger than the limit is taken into a stripe under it (the value
            // exists in memory anyway). Encoded straight into the stripe: no copy.
            if s.bytes.len() >= STRIPE_LIMIT_BYTES {
                s.overflowed = true;
                s.bytes.clear();
            } else if !s.overflowed {
                effect::encode(key, live, &mut s.bytes);
            }
            // Drain passes run one at a time and each empties every stripe under its
            // lock: the next pass after the one that last emptied this stripe takes it.
            s.drained_in + 1
        })
    }

    /// The offset a client's writes are acknowledged at: the end of the stream after
    /// drain pass `pass` (from [`record`](Self::record)), once that pass has run. 0 for
    /// a client that wrote nothing.
    pub fn wait_target(&self, pass: u64) -> u64 {
        if pass == 0 {
            return 0;
        }
        if pass == EVERYTHING {
            // A write without keys (FLUSHALL): everything recorded so far.
            return self.drain();
        }
        if self.passes.load(Ordering::SeqCst) < pass {
            self.drain();
        }
        let ends = self.pass_ends.lock();
        match ends.iter().find(|(p, _)| *p >= pass) {
            Some(&(_, end)) => end,
            // Not run yet (a drain raced with a reset): the current end is later still.
            None => ends.back().map_or(0, |&(_, end)| end),
        }
    }

    /// Whether the removal listener should record a removal of this cause: expiry and
    /// eviction (the keyspace's own decisions), not removals a command made and records.
    pub fn records_removal(&self, cause: cachalot_store::RemovalCause) -> bool {
        self.is_active() && cause.was_automatic()
    }

    /// `FLUSHALL`: runs `clear` (emptying the keyspace), then, when writes are recorded,
    /// starts the stream over, so every replica resyncs from a snapshot of the emptied
    /// keyspace instead of receiving a deletion per key.
    ///
    /// Effects still in the stripes are dropped with the old stream: each is the state of
    /// a key after a write that happened before the restart, which the snapshot that
    /// every replica takes next reads anyway (or a later effect replaces).
    pub fn flush(&self, clear: impl FnOnce()) {
        clear();
        if !self.is_active() || self.is_replica() {
            return;
        }
        let mut backlog = self.backlog.lock();
        for stripe in self.stripes.iter() {
            let mut s = stripe.pending.lock();
            s.bytes.clear();
            s.overflowed = false;
        }
        self.start_over(&mut backlog);
    }

    /// Starts the stream over, with the backlog locked: a new id, offsets past the old
    /// end (no acknowledgement of the old stream reaches the new one's, so WAIT counts
    /// only replicas that resynced), and a new generation, on which every link closes and
    /// its replica resyncs from scratch.
    fn start_over(&self, backlog: &mut Backlog) {
        let end = backlog.end();
        backlog.reset(end + 1);
        *self.ids.lock() = StreamId {
            replid: random_id(),
            replid2: NO_ID.to_owned(),
            second_offset: -1,
        };
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Moves every stripe's effects into the backlog and returns the stream's end. After
    /// it returns, every effect recorded before the call has an offset below the end.
    pub fn drain(&self) -> u64 {
        let mut spare = Vec::new();
        let mut lost = false;
        let mut backlog = self.backlog.lock();
        let pass = self.passes.load(Ordering::SeqCst) + 1;
        for stripe in self.stripes.iter() {
            {
                let mut s = stripe.pending.lock();
                s.drained_in = pass;
                if s.overflowed {
                    s.overflowed = false;
                    lost = true;
                }
                if s.bytes.is_empty() {
                    continue;
                }
                std::mem::swap(&mut s.bytes, &mut spare);
            }
            backlog.append(&spare);
            spare.clear();
        }
        if lost {
            // Replicas would miss an effect.
            self.start_over(&mut backlog);
            self.resets.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("replication stream reset: an effect buffer overflowed");
        }
        let end = backlog.end();
        {
            let mut ends = self.pass_ends.lock();
            if ends.len() == PASS_ENDS_KEPT {
                ends.pop_front();
            }
            ends.push_back((pass, end));
        }
        self.passes.store(pass, Ordering::SeqCst);
        drop(backlog);
        self.end.send_if_modified(|e| {
            let changed = *e != end;
            *e = end;
            changed
        });
        end
    }

    /// Up to `max` stream bytes from `offset`; `None` when they left the backlog.
    pub fn read(&self, offset: u64, max: usize) -> Option<bytes::Bytes> {
        self.backlog.lock().read(offset, max)
    }

    /// Whether a replica asking for `replid` from `offset` can continue from the backlog.
    pub fn can_continue(&self, replid: &str, offset: u64) -> bool {
        // Lock order everywhere: backlog, then ids.
        let backlog = self.backlog.lock();
        let ids = self.ids.lock();
        let same = replid == ids.replid
            || (replid == ids.replid2
                && i64::try_from(offset).is_ok_and(|o| o <= ids.second_offset));
        same && backlog.has(offset)
    }

    /// Starts a full sync: writes are recorded from now on, and the snapshot that follows
    /// is completed by the stream from the returned offset.
    pub fn begin_full_sync(&self) -> (String, u64) {
        if !self.is_replica() {
            // A replica serving its own replicas records nothing: its stream is its
            // primary's, appended as it applies it.
            self.activate();
        }
        let end = self.drain();
        (self.ids.lock().replid.clone(), end)
    }

    /// Bumped whenever the stream starts over; a link started under another value is
    /// stale and closes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Becomes a replica of `primary` (`REPLICAOF host port`, or the cluster's choice).
    pub fn follow(&self, primary: SocketAddr) {
        let was_primary = !self.replica.swap(true, Ordering::SeqCst);
        // A replica records nothing of its own: its stream is its primary's.
        self.active.store(false, Ordering::SeqCst);
        if was_primary {
            // Effects recorded but not drained belong to a stream this node no longer
            // serves, and a write that was running as the role changed may be in the
            // data but in no stream: under a new id, the next sync is a full one. (A
            // replica moving to another primary keeps its id and may continue.)
            for stripe in self.stripes.iter() {
                let mut s = stripe.pending.lock();
                s.bytes.clear();
                s.overflowed = false;
            }
            *self.ids.lock() = StreamId {
                replid: random_id(),
                replid2: NO_ID.to_owned(),
                second_offset: -1,
            };
            self.holds_data.store(false, Ordering::SeqCst);
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.set_link(LinkState::Connect);
        self.role.send_if_modified(|r| {
            let changed = *r != Role::Replica(primary);
            *r = Role::Replica(primary);
            changed
        });
    }

    /// Becomes a primary (`REPLICAOF NO ONE`, or a promotion): the stream goes on under a
    /// new id, and replicas of the old one can continue from where it was.
    pub fn promote(&self) {
        if !self.is_replica() {
            return;
        }
        let end = self.backlog.lock().end();
        {
            let mut ids = self.ids.lock();
            ids.replid2 = std::mem::replace(&mut ids.replid, random_id());
            ids.second_offset = i64::try_from(end).unwrap_or(i64::MAX);
        }
        self.replica.store(false, Ordering::SeqCst);
        self.loading.store(false, Ordering::Relaxed);
        self.activate();
        self.role.send_replace(Role::Primary);
    }

    /// A replica starts over from a snapshot of `replid` at `offset`.
    pub(crate) fn reset_to(&self, replid: &str, offset: u64) {
        self.holds_data.store(false, Ordering::SeqCst);
        self.backlog.lock().reset(offset);
        *self.ids.lock() = StreamId {
            replid: replid.to_owned(),
            replid2: NO_ID.to_owned(),
            second_offset: -1,
        };
        self.end.send_replace(offset);
    }

    /// A replica whose snapshot (and the stream held meanwhile) is loaded takes its
    /// primary's id: only from now on can it resume from `offset` on.
    pub(crate) fn synced_as(&self, replid: &str) {
        *self.ids.lock() = StreamId {
            replid: replid.to_owned(),
            replid2: NO_ID.to_owned(),
            second_offset: -1,
        };
        self.holds_data.store(true, Ordering::SeqCst);
    }

    /// Sets the keyspace's `maxmemory` aside while this node is a replica (Redis's
    /// `replica-ignore-maxmemory yes`): it holds what its primary holds and never evicts
    /// by itself.
    pub fn set_aside_maxmemory(&self, store: &Keyspace) {
        let mut saved = self.maxmemory_set_aside.lock();
        if saved.is_none() {
            *saved = Some(store.max_weight());
            store.set_max_weight(None);
        }
    }

    /// Puts a set-aside `maxmemory` back (on promotion).
    pub fn restore_maxmemory(&self, store: &Keyspace) {
        if let Some(max) = self.maxmemory_set_aside.lock().take() {
            store.set_max_weight(max);
        }
    }

    /// `maxmemory` as configured: the set-aside value on a replica.
    pub fn maxmemory(&self, store: &Keyspace) -> Option<u64> {
        match *self.maxmemory_set_aside.lock() {
            Some(saved) => saved,
            None => store.max_weight(),
        }
    }

    /// `CONFIG SET maxmemory`: on a replica it takes effect on promotion.
    pub fn set_maxmemory(&self, store: &Keyspace, max: Option<u64>) {
        let mut saved = self.maxmemory_set_aside.lock();
        match saved.as_mut() {
            Some(s) => *s = max,
            None => store.set_max_weight(max),
        }
    }

    /// Drain passes completed so far.
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::SeqCst)
    }

    /// Whether this node holds its shard's data: a primary, or a replica that completed a
    /// sync (its link may be down since: its primary may just have failed). A replica
    /// loading a snapshot, or a former primary not yet resynced, does not.
    pub fn holds_data(&self) -> bool {
        !self.is_replica() || self.holds_data.load(Ordering::SeqCst)
    }

    /// A replica continues under its primary's (possibly new) id.
    pub(crate) fn continue_as(&self, replid: &str) {
        self.holds_data.store(true, Ordering::SeqCst);
        let end = self.backlog.lock().end();
        let mut ids = self.ids.lock();
        if ids.replid != replid {
            ids.replid2 = std::mem::replace(&mut ids.replid, replid.to_owned());
            ids.second_offset = i64::try_from(end).unwrap_or(i64::MAX);
        }
    }

    /// A replica appends what it applied to its own backlog, keeping the primary's
    /// offsets (so its own replicas, or the others after a promotion, can continue).
    pub(crate) fn append_applied(&self, data: &[u8]) -> u64 {
        let end = {
            let mut b = self.backlog.lock();
            b.append(data);
            b.end()
        };
        self.end.send_replace(end);
        end
    }

    /// How many attached replicas have acknowledged `offset`.
    pub fn acked_at_least(&self, offset: u64) -> usize {
        self.attached
            .lock()
            .iter()
            .filter(|a| a.ack.load(Ordering::Acquire) >= offset)
            .count()
    }
}

/// The pass [`wait_target`](Replication::wait_target) reads as "everything recorded so
/// far", for writes whose effects are not known one by one (`FLUSHALL`).
pub const EVERYTHING: u64 = u64::MAX;

/// Forty zeros: no id (Redis's `master_replid2` without one).
pub const NO_ID: &str = "0000000000000000000000000000000000000000";

/// The stripe of a key: by slot, so one slot's keys share one.
fn stripe_of(key: &[u8]) -> usize {
    usize::from(cachalot_protocol::key_slot(key).get()) % STRIPES
}

/// A random 40-hex-digit id.
pub fn random_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// Moves recorded effects into the backlog every [`DRAIN_INTERVAL`] while recording.
pub async fn run_drain(
    node: Arc<crate::node::Node>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(DRAIN_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if node.repl.is_active() {
            node.repl.drain();
        } else {
            // Nothing is recorded: look again now and then, not every millisecond.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(IDLE_DRAIN_CHECK) => {}
            }
        }
    }
}

/// Milliseconds since `at_millis` (unix), for lag figures.
pub fn millis_since(at_millis: u64) -> u64 {
    unix_millis().saturating_sub(at_millis)
}
