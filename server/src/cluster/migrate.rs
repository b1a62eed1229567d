//! Slot migration: the primary that owns a slot whose target is another shard streams
//! the slot's keys (values and remaining TTLs) to the target's primary over the bus, then
//! commits the new owner through raft.
//!
//! While a slot migrates, the source serves the keys it still has and answers `-ASK` for
//! the rest, so keys created meanwhile are created on the target (see
//! [`Topology::route_with`](super::Topology::route_with)).
//!
//! The keyspace is walked once per wave for the keys of all outgoing slots, after every
//! command that routed with the previous topology has finished, so no key appears in an
//! outgoing slot after the walk. Slots are then handed over in groups of about 4096
//! keys, each atomic for clients:
//! 1. the group's slots are paused ([`FrozenSlots`](super::state::FrozenSlots)): new
//!    commands on them wait;
//! 2. their lock stripes are taken for writing once, so every command that was already
//!    running on them has finished;
//! 3. their keys are read, sent in batches (pipelined) and acknowledged, then deleted
//!    here;
//! 4. the slots resume, and their commands find the keys gone and are sent to the target.
//!
//! Moved slots commit through raft in batches as the wave goes.
//!
//! The target takes every key it is sent, replacing a copy it may have from an earlier
//! attempt that failed before the source deleted its keys: while the source holds a key,
//! no client writes it on the target (`-ASK` only sends keys missing on the source).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cachalot_protocol::{key_slot, SlotId, SLOT_COUNT};
use futures_util::SinkExt;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::bus::{self, Frame};
use super::config::{Op, SlotsMoved};
use super::shard::ShardId;
use super::topology::Topology;
use crate::key::Key;
use crate::node::{unix_millis, Node};
use crate::value::{Hash, Other, Value, View};

/// Payload bytes per import batch (one entry may take a batch past it).
pub const BATCH_BYTES: usize = 1024 * 1024;
/// Keys per import batch.
const BATCH_KEYS: usize = 1024;
/// Keys of the slots paused and moved together (a group is one pause, one round trip).
const GROUP_KEYS: usize = 4096;
/// Slots moved together at most.
const GROUP_SLOTS: usize = 256;
/// Bytes sent before waiting for their acknowledgements.
const GROUP_BYTES: usize = 4 * 1024 * 1024;
/// Moved slots committed together at most.
const COMMIT_SLOTS: usize = 1024;
/// Longest a moved slot waits for its commit.
const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
/// Attempts at committing moved slots (they keep answering -ASK until it applies).
const COMMIT_TRIES: u32 = 50;
/// Longest wait for a batch's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed wave before the next attempt.
const RETRY_DELAY: Duration = Duration::from_millis(300);
/// Slab positions per store scan step of the key walk (one shard lock hold each).
const WALK_STEP: usize = 1024;

/// Keys of one slot on their way to another node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImportBatch {
    /// The slot.
    #[prost(uint32, tag = "1")]
    pub slot: u32,
    /// The entries.
    #[prost(message, repeated, tag = "2")]
    pub items: Vec<Item>,
}

/// One key, its value and its remaining time to live.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Item {
    /// The key.
    #[prost(bytes = "bytes", tag = "1")]
    pub key: Bytes,
    /// 0 string, 1 string modified in place, 2 integer, 3 hash.
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    /// The string's bytes.
    #[prost(bytes = "bytes", tag = "3")]
    pub data: Bytes,
    /// The integer.
    #[prost(sint64, tag = "4")]
    pub int: i64,
    /// A hash's fields and values, alternating, in order.
    #[prost(bytes = "bytes", repeated, tag = "5")]
    pub fields: Vec<Bytes>,
    /// A hash past the listpack limits.
    #[prost(bool, tag = "6")]
    pub hashtable: bool,
    /// Milliseconds left to live; 0 for a key without expiry.
    #[prost(uint64, tag = "7")]
    pub ttl_ms: u64,
}

/// The answer to an [`ImportBatch`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImportAck {
    /// Empty when every entry was taken.
    #[prost(string, tag = "1")]
    pub error: String,
    /// Entries inserted (the others were already there).
    #[prost(uint32, tag = "2")]
    pub inserted: u32,
}

/// The wire form of a key and its value.
pub fn encode_item(key: &[u8], value: &Value, ttl_ms: u64) -> Item {
    let mut item = Item {
        key: Bytes::copy_from_slice(key),
        ttl_ms,
        ..Item::default()
    };
    match value.view() {
        View::Str(b) => item.data = Bytes::copy_from_slice(b),
        View::RawStr(b) => {
            item.kind = 1;
            item.data = Bytes::copy_from_slice(b);
        }
        View::Int(n) => {
            item.kind = 2;
            item.int = n;
        }
        View::Hash(h) => {
            item.kind = 3;
            item.hashtable = h.hashtable;
            for (f, v) in &h.fields {
                item.fields.push(f.clone());
                item.fields.push(v.clone());
            }
        }
    }
    item
}

/// A value from its wire form.
///
/// # Errors
/// An unknown kind or an odd number of hash elements.
pub fn decode_value(item: &Item) -> Result<Value, &'static str> {
    match item.kind {
        0 => Ok(Value::Str(Box::from(&item.data[..]))),
        1 => Ok(Value::raw(item.data.to_vec())),
        2 => Ok(Value::int(item.int)),
        3 => {
            if item.fields.len() % 2 != 0 {
                return Err("odd hash field list");
            }
            let mut hash = Hash {
                hashtable: item.hashtable,
                ..Hash::default()
            };
            for pair in item.fields.chunks_exact(2) {
                hash.fields.insert(pair[0].clone(), pair[1].clone());
            }
            Ok(Value::Other(Box::new(Other::Hash(Box::new(hash)))))
        }
        _ => Err("unknown value kind"),
    }
}

/// Applies an import on the target: the slot must be migrating to this node.
pub fn import(node: &Node, batch: ImportBatch) -> ImportAck {
    let refuse = |error: String| ImportAck { error, inserted: 0 };
    let Some(cluster) = &node.cluster else {
        return refuse("not a cluster node".into());
    };
    let Some(slot) = super::config::slot(batch.slot) else {
        return refuse(format!("bad slot {}", batch.slot));
    };
    let topo = cluster.topology_guard();
    let mine = topo.myself().peer.id;
    if topo.myself().replica || topo.target_map().owner(slot) != mine || topo.owns(slot) {
        return refuse(format!("slot {} is not importing here", slot.get()));
    }
    let mut inserted = 0u32;
    let now = unix_millis();
    for item in &batch.items {
        if key_slot(&item.key) != slot {
            return refuse("key outside the slot".into());
        }
        let value = match decode_value(item) {
            Ok(v) => v,
            Err(e) => return refuse(e.into()),
        };
        let expire_at = (item.ttl_ms > 0).then(|| now.saturating_add(item.ttl_ms));
        // The source's copy wins: while the source holds a key, no client writes it here
        // (it is sent here by -ASK only once missing there), so a copy already here is
        // one from an earlier attempt that failed before the source deleted its keys.
        let done = node.store.modify(Key::from_slice(&item.key), |e| {
            e.insert(value);
            e.set_expire_at(expire_at);
            true
        });
        node.repl.record(&node.store, &item.key);
        match done {
            Ok(true) => inserted += 1,
            Ok(false) => {}
            Err(e) => return refuse(e.to_string()),
        }
    }
    cluster
        .migration
        .keys_received
        .fetch_add(u64::from(inserted), Ordering::Relaxed);
    ImportAck {
        error: String::new(),
        inserted,
    }
}

/// Slots this node must hand over, by target shard: those its shard owns whose target is
/// another shard (only a primary migrates).
pub fn outgoing(topo: &Topology) -> BTreeMap<ShardId, Vec<SlotId>> {
    let mut out: BTreeMap<ShardId, Vec<SlotId>> = BTreeMap::new();
    if topo.migrating() == 0 || topo.myself().replica {
        return out;
    }
    for slot in (0..SLOT_COUNT).filter_map(SlotId::new) {
        let to = topo.target_map().owner(slot);
        if topo.owns(slot) && to != topo.myself().peer.id {
            out.entry(to).or_default().push(slot);
        }
    }
    out
}

/// Runs migrations whenever this node's topology has slots to hand over, until
/// shutdown.
pub async fn run(node: Arc<Node>, shutdown: CancellationToken) {
    let Some(cluster) = &node.cluster else { return };
    let mut changes = cluster.watch();
    loop {
        let topo = cluster.topology();
        let work = outgoing(&topo);
        if !work.is_empty() {
            let total: usize = work.values().map(Vec::len).sum();
            info!(slots = total, "migrating slots");
            let started = Instant::now();
            *cluster.migration.running.lock() = Some((
                started,
                cluster.migration.bytes_sent.load(Ordering::Relaxed),
            ));
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = wave(&node, &topo, work) => r,
            };
            *cluster.migration.running.lock() = None;
            match result {
                Ok(keys) => info!(
                    slots = total,
                    keys,
                    secs = started.elapsed().as_secs_f64(),
                    "slots handed over"
                ),
                Err(e) => {
                    warn!(error = %e, "migration failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(RETRY_DELAY) => {}
                    }
                    continue;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = changes.changed() => if r.is_err() { return },
            // Also look again now and then: a commit may have applied before the watch.
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One wave: every outgoing slot streamed and its move committed; the keys moved.
async fn wave(
    node: &Arc<Node>,
    topo: &Topology,
    work: BTreeMap<ShardId, Vec<SlotId>>,
) -> Result<u64, String> {
    let cluster = node.cluster.as_ref().ok_or("not a cluster node")?;
    let mut outgoing = vec![false; usize::from(SLOT_COUNT)];
    for s in work.values().flatten() {
        outgoing[usize::from(s.get())] = true;
    }
    // A command that routed with the topology before this one may still be creating a
    // key in an outgoing slot. Every keyed command holds its slot's stripe while it runs
    // and loads the topology after taking it, so once each stripe has been taken for
    // writing, every later command sees the migration: no key appears in an outgoing slot
    // here after the walk below.
    cluster.drain_stripes();
    let by_slot = collect(node, Arc::new(outgoing)).await?;
    let mut keys_moved = 0u64;
    for (to, slots) in work {
        let addr = target_bus(topo, to)?;
        let socket = tokio::time::timeout(ACK_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))?
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = socket.set_nodelay(true);
        let mut conn = Framed::new(socket, bus::codec());
        conn.send(bus::encode(Frame::Hello(hello(node, topo))))
            .await
            .map_err(|e| format!("greeting {addr}: {e}"))?;
        // Slots move in groups of about GROUP_KEYS keys: one pause and one round trip per
        // group rather than per slot. Moved slots commit every COMMIT_SLOTS slots or
        // COMMIT_INTERVAL, so progress shows and -ASK redirects end early.
        let mut group: Vec<(SlotId, Vec<Key>)> = Vec::new();
        let mut group_keys = 0;
        let mut done: Vec<SlotId> = Vec::new();
        let mut done_keys = 0u64;
        let mut last_commit = Instant::now();
        let count = slots.len();
        for (i, slot) in slots.into_iter().enumerate() {
            let keys = by_slot.get(&slot).cloned().unwrap_or_default();
            group_keys += keys.len();
            group.push((slot, keys));
            let last = i + 1 == count;
            if group_keys >= GROUP_KEYS || group.len() >= GROUP_SLOTS || last {
                let moved = hand_over(node, &mut conn, &group).await?;
                keys_moved += moved;
                done_keys += moved;
                done.extend(group.drain(..).map(|(s, _)| s));
                group_keys = 0;
            }
            if !done.is_empty()
                && (done.len() >= COMMIT_SLOTS || last_commit.elapsed() >= COMMIT_INTERVAL || last)
            {
                commit(node, topo, to, std::mem::take(&mut done), done_keys).await?;
                done_keys = 0;
                last_commit = Instant::now();
            }
        }
    }
    Ok(keys_moved)
}

/// Commits slots whose keys are all on `to` now; retried until it applies (the keys are
/// there already).
async fn commit(
    node: &Node,
    topo: &Topology,
    to: ShardId,
    slots: Vec<SlotId>,
    keys: u64,
) -> Result<(), String> {
    let cluster = node.cluster.as_ref().ok_or("not a cluster node")?;
    let raft = cluster.raft.get().ok_or("no raft node")?;
    let n = slots.len() as u64;
    let op = Op::SlotsMoved(SlotsMoved {
        from: topo.myself().peer.id.get(),
        to: to.get(),
        slots: slots.iter().map(|s| u32::from(s.get())).collect(),
        keys,
    });
    let mut tries = 0;
    loop {
        match raft.propose(op.clone()).await {
            Ok(()) => {
                cluster.migration.slots_sent.fetch_add(n, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) if tries < COMMIT_TRIES => {
                tries += 1;
                warn!(error = %e, "slot commit not applied; retrying");
                tokio::time::sleep(RETRY_DELAY).await;
            }
            Err(e) => return Err(format!("slot commit failed: {e}")),
        }
    }
}

/// What this node says first on a migration connection.
fn hello(node: &Node, topo: &Topology) -> bus::Hello {
    let me = topo.myself();
    let mut bus_addr = me.peer.addr;
    bus_addr.set_port(me.bus_port());
    bus::Hello {
        id: me.raft_id,
        bus_addr: bus_addr.to_string(),
        password: node.config.requirepass.clone().unwrap_or_default(),
    }
}

fn target_bus(topo: &Topology, to: ShardId) -> Result<SocketAddr, String> {
    let peer = topo
        .peer(to)
        .ok_or_else(|| format!("shard {} has no primary", to.get()))?;
    let mut addr = peer.peer.addr;
    addr.set_port(peer.bus_port());
    Ok(addr)
}

/// The live keys of the outgoing slots, grouped by slot: one walk of the keyspace, on a
/// blocking thread.
async fn collect(
    node: &Arc<Node>,
    outgoing: Arc<Vec<bool>>,
) -> Result<BTreeMap<SlotId, Vec<Key>>, String> {
    let node = Arc::clone(node);
    tokio::task::spawn_blocking(move || {
        let mut by_slot: BTreeMap<SlotId, Vec<Key>> = BTreeMap::new();
        let mut cursor = 0;
        loop {
            cursor = node.store.scan(cursor, WALK_STEP, |k, _| {
                let slot = key_slot(k.as_bytes());
                if outgoing[usize::from(slot.get())] {
                    by_slot.entry(slot).or_default().push(k.clone());
                }
            });
            if cursor == 0 {
                return by_slot;
            }
        }
    })
    .await
    .map_err(|e| format!("key walk failed: {e}"))
}

/// Moves a group of slots' keys: pause the slots, send, acknowledge, delete, resume. The
/// keys moved.
async fn hand_over(
    node: &Arc<Node>,
    conn: &mut Framed<TcpStream, LengthDelimitedCodec>,
    group: &[(SlotId, Vec<Key>)],
) -> Result<u64, String> {
    let cluster = node.cluster.as_ref().ok_or("not a cluster node")?;
    for (slot, _) in group {
        cluster.frozen.freeze(*slot);
    }
    // Every command already running on these slots holds their stripes for reading.
    for (slot, _) in group {
        drop(cluster.stripe(*slot).write());
    }
    let result = send_group(node, conn, group).await;
    if result.is_ok() {
        for k in group.iter().flat_map(|(_, keys)| keys) {
            if node.store.remove(k).is_some() {
                node.tracking.invalidate_removed(k.as_bytes());
                node.repl.record(&node.store, k.as_bytes());
            }
        }
    }
    for (slot, _) in group {
        cluster.frozen.thaw(*slot);
    }
    result
}

/// Sends a group's keys, a batch per slot (or more, for a slot past a batch's bounds),
/// without waiting between batches; then waits for every acknowledgement. Past
/// [`GROUP_BYTES`] sent and not yet acknowledged, it waits before sending more.
async fn send_group(
    node: &Node,
    conn: &mut Framed<TcpStream, LengthDelimitedCodec>,
    group: &[(SlotId, Vec<Key>)],
) -> Result<u64, String> {
    let cluster = node.cluster.as_ref().ok_or("not a cluster node")?;
    let mut pending = Pending::default();
    for (slot, keys) in group {
        let mut items = Vec::new();
        let mut bytes = 0usize;
        for (i, key) in keys.iter().enumerate() {
            let ttl = node.store.ttl(key);
            let item = node.store.peek_with(key, |v| {
                let ttl_ms = match ttl {
                    Some(Some(d)) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1),
                    _ => 0,
                };
                encode_item(key.as_bytes(), v, ttl_ms)
            });
            if let Some(item) = item {
                bytes += item.key.len()
                    + item.data.len()
                    + item.fields.iter().map(Bytes::len).sum::<usize>();
                items.push(item);
            }
            let last = i + 1 == keys.len();
            if items.len() >= BATCH_KEYS || bytes >= BATCH_BYTES || (last && !items.is_empty()) {
                pending.frames += 1;
                pending.keys += items.len() as u64;
                pending.bytes += bytes as u64;
                let frame = bus::encode(Frame::Import(ImportBatch {
                    slot: u32::from(slot.get()),
                    items: std::mem::take(&mut items),
                }));
                conn.feed(frame)
                    .await
                    .map_err(|e| format!("sending slot {}: {e}", slot.get()))?;
                bytes = 0;
                if pending.bytes >= GROUP_BYTES as u64 {
                    pending.settle(conn, cluster).await?;
                }
            }
        }
    }
    pending.settle(conn, cluster).await?;
    Ok(pending.sent)
}

/// Batches sent and not yet acknowledged.
#[derive(Default)]
struct Pending {
    frames: usize,
    keys: u64,
    bytes: u64,
    sent: u64,
}

impl Pending {
    /// Flushes and waits for every outstanding acknowledgement.
    async fn settle(
        &mut self,
        conn: &mut Framed<TcpStream, LengthDelimitedCodec>,
        cluster: &super::Cluster,
    ) -> Result<(), String> {
        SinkExt::<Bytes>::flush(conn)
            .await
            .map_err(|e| format!("sending keys: {e}"))?;
        for _ in 0..self.frames {
            match tokio::time::timeout(ACK_TIMEOUT, bus::next_frame(conn)).await {
                Ok(Some(Frame::Ack(ack))) if ack.error.is_empty() => {}
                Ok(Some(Frame::Ack(ack))) => {
                    return Err(format!("target refused keys: {}", ack.error))
                }
                Ok(_) => return Err("no acknowledgement for sent keys".into()),
                Err(_) => return Err("acknowledgement timed out".into()),
            }
        }
        cluster
            .migration
            .keys_sent
            .fetch_add(self.keys, Ordering::Relaxed);
        cluster
            .migration
            .bytes_sent
            .fetch_add(self.bytes, Ordering::Relaxed);
        self.sent += self.keys;
        (self.frames, self.keys, self.bytes) = (0, 0, 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_kind_survives_the_wire_form() {
        let mut hash = Hash::default();
        hash.insert(Bytes::from_static(b"f1"), Bytes::from_static(b"v1"));
        hash.insert(Bytes::from_static(b"f0"), Bytes::from_static(b"v0"));
        let values = [
            Value::from_bytes(b"plain"),
            Value::raw(b"appended".to_vec()),
            Value::int(-42),
            Value::Other(Box::new(Other::Hash(Box::new(hash)))),
        ];
        for v in values {
            let item = encode_item(b"k", &v, 1500);
            use prost::Message as _;
            let wire = Item::decode(item.encode_to_vec().as_slice()).expect("decodes");
            assert_eq!(wire.ttl_ms, 1500);
            assert_eq!(decode_value(&wire).expect("valid"), v);
        }
        let bad = Item {
            kind: 9,
            ..Item::default()
        };
        assert!(decode_value(&bad).is_err());
        let odd = Item {
            kind: 3,
            fields: vec![Bytes::from_static(b"f")],
            ..Item::default()
        };
        assert!(decode_value(&odd).is_err());
    }
}
