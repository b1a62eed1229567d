//! Cluster mode: routing keyed commands to their slot's owner (`MOVED`, `CROSSSLOT`), the
//! `CLUSTER` container, and `READONLY`, `READWRITE` and `ASKING`, in Redis 7's formats.
//!
//! `CLUSTER COUNTKEYSINSLOT` and `GETKEYSINSLOT` walk the whole keyspace (see
//! [`count_keys_in_slot`] for why there is no per-slot index).

use std::fmt::Write as _;

use bytes::Bytes;
use cachalot_protocol::{encode, key_slot, SlotId, SLOT_COUNT};
use tokio::runtime::{Handle, RuntimeFlavor};

use super::key_spec;
use super::keys::{check_subcommand, help_reply};
use super::table::{CommandSpec, Flags, Subcommand, HELP_SUBCOMMAND};
use super::{int_arg, is, CommandResult, Ctx};
use parking_lot::RwLockReadGuard;

use crate::cluster::config::{Forget, Join, NodeEntry, Op, RemoveShard, Reweight};
use crate::cluster::shard::MAX_WEIGHT;
use crate::cluster::{node_id, Cluster, PeerInfo, Redirect, ShardId, SlotRange, Topology};
use crate::error::CommandError;
use crate::key::Key;
use crate::net::session::Deferred;
use crate::node::Keyspace;
use crate::node::Node;

/// Slab positions one store scan step visits for `COUNTKEYSINSLOT`/`GETKEYSINSLOT`. A
/// step holds one shard's lock, so this bounds each hold (tens of microseconds) while
/// keeping the per-step cost of locking small; the same step `KEYS` uses.
const SLOT_SCAN_STEP: usize = 1024;

/// `CLUSTER`'s subcommands.
pub static SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "keyslot",
        arity: 3,
        key: 0,
        summary: "Returns the hash slot for a key.",
        syntax: "key",
    },
    Subcommand {
        name: "countkeysinslot",
        arity: 3,
        key: 0,
        summary: "Returns the number of keys in a hash slot.",
        syntax: "slot",
    },
    Subcommand {
        name: "getkeysinslot",
        arity: 4,
        key: 0,
        summary: "Returns the key names in a hash slot.",
        syntax: "slot count",
    },
    Subcommand {
        name: "myid",
        arity: 2,
        key: 0,
        summary: "Returns the ID of a node.",
        syntax: "",
    },
    Subcommand {
        name: "info",
        arity: 2,
        key: 0,
        summary: "Returns information about the state of a node.",
        syntax: "",
    },
    Subcommand {
        name: "slots",
        arity: 2,
        key: 0,
        summary: "Returns the mapping of cluster slots to nodes.",
        syntax: "",
    },
    Subcommand {
        name: "shards",
        arity: 2,
        key: 0,
        summary: "Returns the mapping of cluster slots to shards.",
        syntax: "",
    },
    Subcommand {
        name: "nodes",
        arity: 2,
        key: 0,
        summary: "Returns the cluster configuration for a node.",
        syntax: "",
    },
    Subcommand {
        name: "join",
        arity: -5,
        key: 0,
        summary: "Cachalot: adds a node to the cluster (sent by cachalot-server --cluster-join).",
        syntax: "raft-id ip:port bus-port [WEIGHT weight | REPLICAOF shard]",
    },
    Subcommand {
        name: "reweight",
        arity: 4,
        key: 0,
        summary: "Cachalot: changes a shard's weight on the ring; slots migrate.",
        syntax: "shard weight",
    },
    Subcommand {
        name: "removeshard",
        arity: 3,
        key: 0,
        summary: "Cachalot: drains a shard; it leaves with its nodes once it owns no slot.",
        syntax: "shard",
    },
    Subcommand {
        name: "failover",
        arity: -2,
        key: 0,
        summary: "Forces a replica to perform a manual failover of its master.",
        syntax: "[FORCE | TAKEOVER]",
    },
    Subcommand {
        name: "forget",
        arity: 3,
        key: 0,
        summary: "Removes a node that serves no slot from the cluster.",
        syntax: "node-id",
    },
    HELP_SUBCOMMAND,
];

const CLUSTER_HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "INFO",
    "    Return information about the cluster.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node that serves no slot from the cluster.",
    "JOIN <raft-id> <ip:port> <bus-port> [WEIGHT <weight> | REPLICAOF <shard>]",
    "    Add a node (what cachalot-server --cluster-join sends).",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
    "REMOVESHARD <shard>",
    "    Move a shard's slots to the others, then remove it and its nodes.",
    "REWEIGHT <shard> <weight>",
    "    Change a shard's weight (1-64); slots migrate to match.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "HELP",
    "    Prints this help.",
];

/// Checks a command's keys against the slot map: `Ok` to run it here, or the redirect
/// error. Keys are found from the table's key positions, as `COMMAND INFO` reports them.
/// In a dynamic cluster the returned guard holds the slot's lock stripe for reading while
/// the command runs, so a migration can wait for running commands (see
/// [`crate::cluster::migrate`]).
///
/// # Errors
/// `CROSSSLOT`, `MOVED`, `ASK`, `TRYAGAIN` or `CLUSTERDOWN`.
pub fn route<'a>(
    node: &'a Node,
    cluster: &'a Cluster,
    asking: bool,
    replica_read: bool,
    spec: &CommandSpec,
    args: &[Bytes],
) -> Result<Option<RwLockReadGuard<'a, ()>>, CommandError> {
    let mut keys = key_spec::keys(spec, args).peekable();
    let Some(first) = keys.peek() else {
        // Keyless writes (FLUSHALL) are refused with the rest when cut off.
        if spec.flags.contains(Flags::WRITE) && !cluster.writable() {
            return Err(CommandError::ClusterDown);
        }
        return Ok(None);
    };
    let guard = if cluster.is_dynamic() {
        let slot = key_slot(first);
        let guard = cluster.stripe(slot).read();
        if cluster.frozen.contains(slot) {
            return Err(CommandError::TryAgain);
        }
        Some(guard)
    } else {
        None
    };
    let topology = cluster.topology_guard();
    if replica_read && topology.myself().replica {
        // READONLY: a replica serves reads of its shard's slots.
        let slot = key_slot(first);
        let same_slot = key_spec::keys(spec, args).all(|k| key_slot(k) == slot);
        if same_slot && topology.slot_map().owner(slot) == topology.myself().peer.id {
            return Ok(guard);
        }
    }
    topology
        .route_with(keys.map(|k| k.as_ref()), asking, |k| node.store.contains(k))
        .map_err(redirect_error)?;
    if spec.flags.contains(Flags::WRITE) && !cluster.writable() {
        // Cut off from the majority: another node may be taking these slots over.
        return Err(CommandError::ClusterDown);
    }
    Ok(guard)
}

/// The error reply for a redirect.
fn redirect_error(r: Redirect) -> CommandError {
    match r {
        Redirect::CrossSlot => CommandError::CrossSlot,
        Redirect::Moved { slot, addr } => CommandError::Moved {
            slot: slot.get(),
            ip: addr.ip(),
            port: addr.port(),
        },
        Redirect::Ask { slot, addr } => CommandError::Ask {
            slot: slot.get(),
            ip: addr.ip(),
            port: addr.port(),
        },
        Redirect::TryAgain => CommandError::TryAgain,
        Redirect::Down => CommandError::ClusterDown,
    }
}

/// The node's cluster state, or Redis's error for a node without cluster mode.
fn cluster_of<'a>(ctx: &Ctx<'a>) -> Result<&'a Cluster, CommandError> {
    ctx.node
        .cluster
        .as_ref()
        .ok_or(CommandError::ClusterDisabled)
}

/// A node's `health` and replication offset as `CLUSTER SHARDS` reports them: this node
/// from its own state, others from their heartbeats (`fail` when silent past the node
/// timeout; a static cluster has no heartbeats and reports its peers `online`).
fn health_of(node: &Node, topology: &Topology, peer: &PeerInfo) -> (&'static [u8], u64) {
    use crate::replication::LinkState;
    if peer.raft_id == topology.myself().raft_id {
        let health: &[u8] = if node.repl.is_replica() && node.repl.link().0 != LinkState::Connected
        {
            b"loading"
        } else {
            b"online"
        };
        return (health, node.repl.offset());
    }
    let Some(cluster) = node.cluster.as_ref().filter(|c| c.is_dynamic()) else {
        return (b"online", 0);
    };
    match cluster.liveness.get(peer.raft_id) {
        Some(seen) if seen.at.elapsed() < node.config.cluster_node_timeout => {
            (b"online", seen.offset)
        }
        Some(seen) => (b"fail", seen.offset),
        None => (b"loading", 0),
    }
}

/// `CLUSTER`: see the command table for syntax.
pub fn cluster(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let state = cluster_of(ctx)?;
    check_subcommand(args, SUBCOMMANDS, "cluster")?;
    let topology = state.topology();
    let topology = &*topology;
    let sub = &args[1];
    if is(sub, "keyslot") {
        ctx.int(i64::from(key_slot(&args[2]).get()))
    } else if is(sub, "countkeysinslot") {
        let slot = slot_of(int_arg(&args[2])?).ok_or(CommandError::InvalidSlot)?;
        let store = &ctx.node.store;
        let n = off_the_worker(|| count_keys_in_slot(store, slot));
        ctx.int(i64::try_from(n).unwrap_or(i64::MAX))
    } else if is(sub, "getkeysinslot") {
        // Redis parses both integers before it checks either range.
        let (slot, max) = (int_arg(&args[2])?, int_arg(&args[3])?);
        let slot = slot_of(slot).ok_or(CommandError::InvalidSlotOrCount)?;
        let max = u64::try_from(max).map_err(|_| CommandError::InvalidSlotOrCount)?;
        let store = &ctx.node.store;
        let keys = off_the_worker(|| keys_in_slot(store, slot, max));
        ctx.bulk_array(keys.iter())
    } else if is(sub, "myid") {
        ctx.bulk(topology.myself().node_id.as_bytes())
    } else if is(sub, "info") {
        ctx.verbatim(info_text(topology, Some(state)).as_bytes())
    } else if is(sub, "slots") {
        slots(ctx, topology)
    } else if is(sub, "shards") {
        shards(ctx, topology)
    } else if is(sub, "nodes") {
        ctx.verbatim(nodes_text(topology).as_bytes())
    } else if is(sub, "failover") {
        let force = match args.get(2) {
            None => false,
            Some(a) if args.len() == 3 && (is(a, "force") || is(a, "takeover")) => true,
            Some(_) => return Err(CommandError::Syntax),
        };
        if state.raft.get().is_none() {
            return Err(CommandError::Other(
                "ERR this is a static cluster (cluster-shards); it has no replicas".into(),
            ));
        }
        if !topology.myself().replica {
            return Err(CommandError::Other(
                "ERR You should send CLUSTER FAILOVER to a replica".into(),
            ));
        }
        let node = std::sync::Arc::clone(ctx.node);
        ctx.session.deferred = Some(Deferred(Box::pin(async move {
            match crate::cluster::failover::manual(node, force).await {
                Ok(()) => Bytes::from_static(b"+OK\r\n"),
                Err(e) => Bytes::from(format!("-ERR {}\r\n", e.replace(['\r', '\n'], " "))),
            }
        })));
        Ok(())
    } else if is(sub, "join") || is(sub, "reweight") || is(sub, "removeshard") || is(sub, "forget")
    {
        let op = change_of(topology, args)?;
        let node = std::sync::Arc::clone(ctx.node);
        if state.raft.get().is_none() {
            return Err(CommandError::Other(
                "ERR this is a static cluster (cluster-shards); its membership cannot change"
                    .into(),
            ));
        }
        ctx.session.deferred = Some(Deferred(Box::pin(async move {
            let Some(raft) = node.cluster.as_ref().and_then(|c| c.raft.get()) else {
                return Bytes::from_static(b"-ERR cluster node stopped\r\n");
            };
            match raft.propose(op).await {
                Ok(()) => Bytes::from_static(b"+OK\r\n"),
                Err(e) => Bytes::from(format!("-ERR {}\r\n", e.replace(['\r', '\n'], " "))),
            }
        })));
        Ok(())
    } else {
        help_reply(ctx, CLUSTER_HELP)
    }
}

/// The configuration change a `CLUSTER JOIN/REWEIGHT/REMOVESHARD/FORGET` asks for.
fn change_of(topology: &Topology, args: &[Bytes]) -> Result<Op, CommandError> {
    let sub = &args[1];
    let positive = |a: &Bytes| -> Result<u64, CommandError> {
        u64::try_from(int_arg(a)?)
            .ok()
            .filter(|&n| n > 0)
            .ok_or(CommandError::Other(
                "ERR value is out of range, must be positive".into(),
            ))
    };
    let weight = |a: &Bytes| -> Result<u32, CommandError> {
        u32::try_from(int_arg(a)?)
            .ok()
            .filter(|w| (1..=MAX_WEIGHT).contains(w))
            .ok_or(CommandError::Other(format!(
                "ERR weight must be between 1 and {MAX_WEIGHT}"
            )))
    };
    if is(sub, "reweight") {
        return Ok(Op::Reweight(Reweight {
            shard: positive(&args[2])?,
            weight: weight(&args[3])?,
        }));
    }
    if is(sub, "removeshard") {
        return Ok(Op::RemoveShard(RemoveShard {
            shard: positive(&args[2])?,
        }));
    }
    if is(sub, "forget") {
        let id = std::str::from_utf8(&args[2]).unwrap_or("");
        let peer = topology
            .peers()
            .iter()
            .find(|p| p.node_id.eq_ignore_ascii_case(id))
            .ok_or_else(|| CommandError::Other(format!("ERR Unknown node {id}")))?;
        return Ok(Op::Forget(Forget { node: peer.raft_id }));
    }
    // JOIN raft-id ip:port bus-port [WEIGHT w | REPLICAOF shard]
    let id = positive(&args[2])?;
    let addr: std::net::SocketAddr = std::str::from_utf8(&args[3])
        .ok()
        .and_then(|a| a.parse().ok())
        .ok_or(CommandError::Other("ERR Invalid node address".into()))?;
    let bus = u16::try_from(positive(&args[4])?)
        .map_err(|_| CommandError::Other("ERR Invalid bus port".into()))?;
    let (mut join_weight, mut replica_of) = (1, 0);
    match &args[5..] {
        [] => {}
        [opt, v] if is(opt, "weight") => join_weight = weight(v)?,
        [opt, v] if is(opt, "replicaof") => {
            replica_of = positive(v)?;
            join_weight = 0;
        }
        _ => return Err(CommandError::Syntax),
    }
    Ok(Op::Join(Join {
        node: Some(NodeEntry {
            id,
            addr: addr.to_string(),
            bus_port: u32::from(bus),
            ..NodeEntry::default()
        }),
        weight: join_weight,
        replica_of,
    }))
}

/// The slot numbered `n`, if `n` is in `0..16384`.
fn slot_of(n: i64) -> Option<SlotId> {
    u16::try_from(n).ok().and_then(SlotId::new)
}

/// Calls `visit` with every live key of `slot` until it returns `false`; the walk stops
/// early then. Expired keys met on the way are removed, not visited.
///
/// A store [`scan`](cachalot_store::Cache::scan) from cursor 0 to the end,
/// [`SLOT_SCAN_STEP`] slab positions per shard lock hold, so other connections' commands
/// on the same shard wait at most one step. It is not a snapshot: a key written or deleted meanwhile may or may not
/// be seen, and one deleted and re-created meanwhile may be seen twice.
fn for_each_key_in_slot(store: &Keyspace, slot: SlotId, mut visit: impl FnMut(&Key) -> bool) {
    let mut more = true;
    let mut cursor = 0;
    loop {
        cursor = store.scan(cursor, SLOT_SCAN_STEP, |k, _| {
            if more && key_slot(k.as_bytes()) == slot {
                more = visit(k);
            }
        });
        if cursor == 0 || !more {
            return;
        }
    }
}

/// `CLUSTER COUNTKEYSINSLOT`'s answer: the live keys of `slot` on this node.
///
/// **O(N) in the node's keys**, where Redis is O(1): Redis keeps a per-slot index (7.0:
/// a linked list through every key's dict entry, 16 bytes per key; later versions: one
/// dict per slot). Here that would mean a second structure or wider entries, about a third
/// more memory per entry, plus slot hashing on every write and every removal path of the
/// store (eviction, expiry, clear), non-cluster nodes included; and per-slot counters
/// alone would count expired keys the sweep has not reached yet. The commands are
/// for operators and resharding tools, not the request path, so they pay instead: about
/// 30-40 ms per million keys (release build, `docs/commands.md`). The handler runs the
/// walk under `block_in_place`, so it does not stall the other connections on its worker.
pub fn count_keys_in_slot(store: &Keyspace, slot: SlotId) -> u64 {
    let mut n = 0u64;
    for_each_key_in_slot(store, slot, |_| {
        n += 1;
        true
    });
    n
}

/// `CLUSTER GETKEYSINSLOT`'s answer: up to `max` live keys of `slot`, in no particular
/// order. The walk stops at the `max`-th key, so it is O(N) in the node's keys at worst
/// (a slot with fewer than `max` keys), where Redis is O(max); see
/// [`count_keys_in_slot`]. `max` 0 walks nothing. Memory is bounded by the slot's keys,
/// never by `max`.
pub fn keys_in_slot(store: &Keyspace, slot: SlotId, max: u64) -> Vec<Key> {
    let mut keys = Vec::new();
    if max == 0 {
        return keys;
    }
    for_each_key_in_slot(store, slot, |k| {
        keys.push(k.clone());
        u64::try_from(keys.len()).unwrap_or(u64::MAX) < max
    });
    keys
}

/// Runs a keyspace-wide walk without stalling other connections: on a multi-thread
/// runtime the worker first hands its other tasks to the rest of the pool
/// (`block_in_place`), so only the calling connection waits. A current-thread runtime (one
/// core, `--threads 1`) has no other worker, and the walk runs inline, as it would on
/// Redis's one thread; so does a call outside any runtime (unit tests).
fn off_the_worker<R>(walk: impl FnOnce() -> R) -> R {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(walk),
        _ => walk(),
    }
}

/// `READONLY` and `READWRITE`: accepted in cluster mode, and nothing changes: replicas
/// serve no reads yet (replication is not built).
pub fn accept(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    cluster_of(ctx)?;
    // READONLY lets this connection read from a replica; READWRITE takes that back.
    ctx.session.readonly = is(&args[0], "readonly");
    ctx.ok()
}

/// `ASKING`: the next command may use a slot that is importing here.
pub fn asking(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CommandResult {
    cluster_of(ctx)?;
    ctx.session.asking = true;
    ctx.ok()
}

/// `CLUSTER INFO`'s `field:value` lines: Redis's, then Cachalot's resharding and raft
/// fields when `state` has them. Every slot always has an owner, so the state is `ok`
/// unless the node has no slot map yet (it is joining).
pub fn info_text(topology: &Topology, state: Option<&Cluster>) -> String {
    let map = topology.slot_map();
    let size = map.slot_counts().filter(|&(_, n)| n > 0).count();
    let known = topology.is_known();
    let assigned = if known { u64::from(SLOT_COUNT) } else { 0 };
    let mut out = String::with_capacity(768);
    let fields: [(&str, u64); 11] = [
        ("cluster_slots_assigned", assigned),
        ("cluster_slots_ok", assigned),
        ("cluster_slots_pfail", 0),
        ("cluster_slots_fail", 0),
        (
            "cluster_known_nodes",
            u64::try_from(topology.peers().len()).unwrap_or(u64::MAX),
        ),
        ("cluster_size", u64::try_from(size).unwrap_or(u64::MAX)),
        ("cluster_current_epoch", topology.current_epoch()),
        ("cluster_my_epoch", topology.myself().epoch),
        ("cluster_stats_messages_sent", 0),
        ("cluster_stats_messages_received", 0),
        ("total_cluster_links_buffer_limit_exceeded", 0),
    ];
    let writable = state.is_none_or(Cluster::writable);
    out.push_str(if known && writable {
        "cluster_state:ok\r\n"
    } else {
        "cluster_state:fail\r\n"
    });
    for (name, value) in &fields {
        let _ = write!(out, "{name}:{value}\r\n");
    }
    let _ = write!(out, "cluster_slots_migrating:{}\r\n", topology.migrating());
    if let Some(state) = state {
        use std::sync::atomic::Ordering::Relaxed;
        let m = &state.migration;
        let _ = write!(
            out,
            "cluster_migration_keys_sent:{}\r\ncluster_migration_keys_received:{}\r\n\
             cluster_migration_slots_sent:{}\r\ncluster_migration_bytes_per_sec:{}\r\n",
            m.keys_sent.load(Relaxed),
            m.keys_received.load(Relaxed),
            m.slots_sent.load(Relaxed),
            m.bytes_per_sec(),
        );
        if let Some(raft) = state.raft.get() {
            let st = raft.status();
            let join = |ids: &[u64]| {
                ids.iter()
                    .map(|id| node_id(ShardId::new(*id)))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let leader = if st.leader == 0 {
                String::new()
            } else {
                node_id(ShardId::new(st.leader))
            };
            let _ = write!(
                out,
                "cluster_raft_role:{}\r\ncluster_raft_term:{}\r\ncluster_raft_leader:{leader}\r\n\
                 cluster_raft_voters:{}\r\ncluster_raft_learners:{}\r\ncluster_raft_applied:{}\r\n",
                st.role,
                st.term,
                join(&st.voters),
                join(&st.learners),
                st.applied,
            );
        }
    }
    out
}

/// The replicas of `primary`'s shard.
fn replicas_of<'t>(
    topology: &'t Topology,
    primary: &'t PeerInfo,
) -> impl Iterator<Item = &'t PeerInfo> {
    topology
        .peers()
        .iter()
        .filter(move |p| p.replica && p.peer.id == primary.peer.id)
}

/// One node as `CLUSTER SLOTS` lists it: `[ip, port, id, {}]` (Redis 7 adds the map of
/// extra endpoints; there are none).
fn slot_node(ctx: &mut Ctx<'_>, peer: &PeerInfo) {
    ctx.array(4);
    encode::write_bulk(ctx.out, peer.peer.addr.ip().to_string().as_bytes());
    encode::write_integer(ctx.out, i64::from(peer.peer.addr.port()));
    encode::write_bulk(ctx.out, peer.node_id.as_bytes());
    ctx.map(0);
}

/// `CLUSTER SLOTS`: each run of slots with its primary, then its replicas.
fn slots(ctx: &mut Ctx<'_>, topology: &Topology) -> CommandResult {
    let ranges = topology.slot_map().ranges();
    ctx.array(ranges.len());
    for range in &ranges {
        let Some(primary) = topology.peer(range.owner) else {
            // The map only names members; an empty node entry keeps the reply well formed.
            ctx.array(3);
            encode::write_integer(ctx.out, i64::from(range.start.get()));
            encode::write_integer(ctx.out, i64::from(range.end.get()));
            ctx.array(0);
            continue;
        };
        let replicas: Vec<&PeerInfo> = replicas_of(topology, primary).collect();
        ctx.array(3 + replicas.len());
        encode::write_integer(ctx.out, i64::from(range.start.get()));
        encode::write_integer(ctx.out, i64::from(range.end.get()));
        slot_node(ctx, primary);
        for r in replicas {
            slot_node(ctx, r);
        }
    }
    Ok(())
}

/// The runs of slots shard `shard` owns, in slot order.
fn ranges_of(ranges: &[SlotRange], shard: ShardId) -> impl Iterator<Item = &SlotRange> {
    ranges.iter().filter(move |r| r.owner == shard)
}

/// `CLUSTER SHARDS`: one map per shard with its slot pairs and its nodes.
fn shards(ctx: &mut Ctx<'_>, topology: &Topology) -> CommandResult {
    let ranges = topology.slot_map().ranges();
    let primaries: Vec<&PeerInfo> = topology.peers().iter().filter(|p| !p.replica).collect();
    ctx.array(primaries.len());
    for primary in primaries {
        ctx.map(2);
        encode::write_bulk(ctx.out, b"slots");
        let owned: Vec<&SlotRange> = ranges_of(&ranges, primary.peer.id).collect();
        ctx.array(owned.len() * 2);
        for r in owned {
            encode::write_integer(ctx.out, i64::from(r.start.get()));
            encode::write_integer(ctx.out, i64::from(r.end.get()));
        }
        encode::write_bulk(ctx.out, b"nodes");
        let nodes: Vec<&PeerInfo> = std::iter::once(primary)
            .chain(replicas_of(topology, primary))
            .collect();
        ctx.array(nodes.len());
        for peer in nodes {
            ctx.map(7);
            let ip = peer.peer.addr.ip().to_string();
            encode::write_bulk(ctx.out, b"id");
            encode::write_bulk(ctx.out, peer.node_id.as_bytes());
            encode::write_bulk(ctx.out, b"port");
            encode::write_integer(ctx.out, i64::from(peer.peer.addr.port()));
            encode::write_bulk(ctx.out, b"ip");
            encode::write_bulk(ctx.out, ip.as_bytes());
            encode::write_bulk(ctx.out, b"endpoint");
            encode::write_bulk(ctx.out, ip.as_bytes());
            let (health, offset) = health_of(ctx.node, topology, peer);
            let role = if peer.replica {
                b"replica".as_slice()
            } else {
                b"master".as_slice()
            };
            encode::write_bulk(ctx.out, b"role");
            encode::write_bulk(ctx.out, role);
            encode::write_bulk(ctx.out, b"replication-offset");
            encode::write_integer(ctx.out, i64::try_from(offset).unwrap_or(i64::MAX));
            encode::write_bulk(ctx.out, b"health");
            encode::write_bulk(ctx.out, health);
        }
    }
    Ok(())
}

/// `CLUSTER NODES`: one line per node, `<id> <ip:port@cport> <flags> <master> <ping-sent>
/// <pong-recv> <config-epoch> <link-state> <slot> ...`. Liveness is not tracked per node
/// (raft's leader knows, nobody else), so ping and pong times are 0 and every link shows
/// `connected`. Slots migrating out are listed as `[slot->-target-id]`, as Redis does.
pub fn nodes_text(topology: &Topology) -> String {
    let ranges = topology.slot_map().ranges();
    let me = topology.myself().raft_id;
    let mut out = String::with_capacity(128 * topology.peers().len());
    for peer in topology.peers() {
        let role = if peer.replica { "slave" } else { "master" };
        let flags = if peer.raft_id == me {
            format!("myself,{role}")
        } else {
            role.to_string()
        };
        let master = if peer.replica {
            topology
                .peer(peer.peer.id)
                .map_or("-".to_string(), |p| p.node_id.clone())
        } else {
            "-".to_string()
        };
        let _ = write!(
            out,
            "{} {}:{}@{} {flags} {master} 0 0 {} connected",
            peer.node_id,
            peer.peer.addr.ip(),
            peer.peer.addr.port(),
            peer.bus_port(),
            peer.epoch
        );
        if !peer.replica {
            for r in ranges_of(&ranges, peer.peer.id) {
                if r.start == r.end {
                    let _ = write!(out, " {}", r.start.get());
                } else {
                    let _ = write!(out, " {}-{}", r.start.get(), r.end.get());
                }
            }
            if peer.raft_id == me && topology.migrating() > 0 {
                for slot in (0..SLOT_COUNT).filter_map(SlotId::new) {
                    let to = topology.target_map().owner(slot);
                    if topology.owns(slot) && to != peer.peer.id {
                        if let Some(t) = topology.peer(to) {
                            let _ = write!(out, " [{}->-{}]", slot.get(), t.node_id);
                        }
                    }
                }
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{parse_shard_list, ShardId};
    use crate::command::lookup;
    use crate::value::Value;
    use cachalot_store::{Cache, ManualClock};
    use std::sync::Arc;

    /// Start of the manual clock, in unix ms.
    const NOW_MILLIS: u64 = 1_000_000;

    /// A keyspace on a manual clock holding `live` and, expired already, `expired`.
    fn keyspace(live: &[&str], expired: &[&str]) -> (Keyspace, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(NOW_MILLIS));
        let store = Cache::<Key, Value>::builder()
            .shards(4)
            .clock(clock.clone())
            .build()
            .expect("valid");
        for k in live {
            store
                .insert(Key::from_slice(k.as_bytes()), Value::from_bytes(b"v"))
                .expect("unbounded");
        }
        for k in expired {
            let at = Some(NOW_MILLIS + 10);
            store
                .insert_with_expiry(Key::from_slice(k.as_bytes()), Value::from_bytes(b"v"), at)
                .expect("unbounded");
        }
        clock.advance(std::time::Duration::from_millis(20));
        (store, clock)
    }

    fn sorted(keys: Vec<Key>) -> Vec<String> {
        let mut out: Vec<String> = keys
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn slot_arguments_are_checked_against_the_slot_range() {
        for (n, want) in [
            (0, Some(0)),
            (16383, Some(16383)),
            (16384, None),
            (-1, None),
            (i64::MAX, None),
            (i64::MIN, None),
            (65536, None),
        ] {
            assert_eq!(slot_of(n).map(SlotId::get), want, "{n}");
        }
    }

    #[test]
    fn only_live_keys_of_the_slot_are_counted_and_listed() {
        let tagged = ["{t}a", "{t}b", "{t}c"];
        let (store, _clock) = keyspace(&[tagged[0], tagged[1], tagged[2], "other"], &["{t}gone"]);
        let slot = key_slot(b"t");
        assert_ne!(slot, key_slot(b"other"), "the test needs another slot");
        assert_eq!(count_keys_in_slot(&store, slot), 3);
        assert_eq!(sorted(keys_in_slot(&store, slot, 10)), tagged);
        assert_eq!(count_keys_in_slot(&store, key_slot(b"other")), 1);
        assert_eq!(count_keys_in_slot(&store, key_slot(b"t-no-such")), 0);
        assert!(keys_in_slot(&store, key_slot(b"t-no-such"), 10).is_empty());
        assert_eq!(store.len(), 4, "the expired key was removed on the way");
    }

    #[test]
    fn listing_stops_at_the_count_and_zero_lists_nothing() {
        let keys: Vec<String> = (0..3000).map(|i| format!("{{s}}{i}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let (store, _clock) = keyspace(&refs, &[]);
        let slot = key_slot(b"{s}");
        assert_eq!(count_keys_in_slot(&store, slot), 3000);
        assert!(keys_in_slot(&store, slot, 0).is_empty());
        let some = keys_in_slot(&store, slot, 5);
        assert_eq!(some.len(), 5);
        assert!(some.iter().all(|k| key_slot(k) == slot));
        let all = sorted(keys_in_slot(&store, slot, u64::MAX));
        let mut want = keys.clone();
        want.sort();
        assert_eq!(all, want, "every key once, none twice");
    }

    #[test]
    fn the_walk_runs_without_a_runtime_and_on_both_runtime_kinds() {
        assert_eq!(off_the_worker(|| 7), 7);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert_eq!(rt.block_on(async { off_the_worker(|| 8) }), 8);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime");
        let got = rt.block_on(async {
            tokio::spawn(async { off_the_worker(|| 9) })
                .await
                .expect("no panic")
        });
        assert_eq!(got, 9);
    }

    #[test]
    fn help_lists_the_slot_key_subcommands_as_redis_does() {
        let at = |line: &str| CLUSTER_HELP.iter().position(|l| *l == line);
        let count = at("COUNTKEYSINSLOT <slot>").expect("listed");
        let get = at("GETKEYSINSLOT <slot> <count>").expect("listed");
        assert!(count < get && get < at("INFO").expect("listed"));
        for sub in ["countkeysinslot", "getkeysinslot"] {
            assert!(SUBCOMMANDS.iter().any(|s| s.name == sub), "{sub}");
        }
    }

    fn keys_of(args: &[&str]) -> Vec<String> {
        let (_, spec) = lookup(args[0].as_bytes()).expect("known command");
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
        key_spec::keys(spec, &args)
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn key_positions_come_from_the_table() {
        assert_eq!(keys_of(&["get", "a"]), ["a"]);
        assert_eq!(keys_of(&["mset", "a", "1", "b", "2"]), ["a", "b"]);
        assert_eq!(keys_of(&["del", "a", "b", "c"]), ["a", "b", "c"]);
        assert_eq!(keys_of(&["copy", "a", "b", "REPLACE"]), ["a", "b"]);
        assert_eq!(keys_of(&["object", "encoding", "k"]), ["k"]);
        assert!(keys_of(&["object", "help"]).is_empty());
        assert_eq!(keys_of(&["memory", "usage", "k", "SAMPLES", "5"]), ["k"]);
        assert_eq!(keys_of(&["MEMORY", "USAGE", "k"]), ["k"]);
        assert!(keys_of(&["memory", "stats"]).is_empty());
        assert!(keys_of(&["ping"]).is_empty());
        assert!(keys_of(&["keys", "*"]).is_empty());
    }

    #[test]
    fn nodes_lines_list_every_node_and_its_ranges() {
        let peers = parse_shard_list("1@127.0.0.1:7001,2@127.0.0.1:7002").expect("valid");
        let topo = Topology::new(&peers, ShardId::new(2)).expect("valid");
        let text = nodes_text(&topo);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains(" 127.0.0.1:7001@17001 master - 0 0 1 connected "));
        assert!(lines[1].contains(" 127.0.0.1:7002@17002 myself,master - 0 0 2 connected "));
        assert!(text.ends_with('\n'));
        let info = info_text(&topo, None);
        assert!(info.starts_with("cluster_state:ok\r\n"));
        assert!(info.contains("cluster_known_nodes:2\r\n"));
        assert!(info.contains("cluster_my_epoch:2\r\n"));
    }
}
