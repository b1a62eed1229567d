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
use super::table::{CommandSpec, Subcommand, HELP_SUBCOMMAND};
use super::{int_arg, is, CommandResult, Ctx};
use crate::cluster::{PeerInfo, Redirect, SlotRange, Topology};
use crate::error::CommandError;
use crate::key::Key;
use crate::node::Keyspace;

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
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MYID",
    "    Return the node id.",
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
///
/// # Errors
/// [`CommandError::CrossSlot`] or [`CommandError::Moved`].
pub fn route(topology: &Topology, spec: &CommandSpec, args: &[Bytes]) -> CommandResult {
    topology
        .route(key_spec::keys(spec, args).map(|k| k.as_ref()))
        .map_err(|r| match r {
            Redirect::CrossSlot => CommandError::CrossSlot,
            Redirect::Moved { slot, addr } => CommandError::Moved {
                slot: slot.get(),
                ip: addr.ip(),
                port: addr.port(),
            },
        })
}

/// The node's topology, or Redis's error for a node without cluster mode.
fn topology<'a>(ctx: &Ctx<'a>) -> Result<&'a Topology, CommandError> {
    ctx.node
        .cluster
        .as_ref()
        .ok_or(CommandError::ClusterDisabled)
}

/// `CLUSTER`: see the command table for syntax.
pub fn cluster(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let topology = topology(ctx)?;
    check_subcommand(args, SUBCOMMANDS, "cluster")?;
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
        ctx.verbatim(info_text(topology).as_bytes())
    } else if is(sub, "slots") {
        slots(ctx, topology)
    } else if is(sub, "shards") {
        shards(ctx, topology)
    } else if is(sub, "nodes") {
        ctx.verbatim(nodes_text(topology).as_bytes())
    } else {
        help_reply(ctx, CLUSTER_HELP)
    }
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

/// `READONLY`, `READWRITE` and `ASKING`: accepted in cluster mode, and nothing changes:
/// there are no replicas to read from yet, and no slot migrates in a static cluster.
pub fn accept(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CommandResult {
    topology(ctx)?;
    ctx.ok()
}

/// `CLUSTER INFO`'s `field:value` lines. Every slot always has an owner in a static
/// cluster, so the state is `ok` and no slot is failing.
pub fn info_text(topology: &Topology) -> String {
    let map = topology.slot_map();
    let size = map.slot_counts().filter(|&(_, n)| n > 0).count();
    let mut out = String::with_capacity(512);
    let fields: [(&str, u64); 11] = [
        ("cluster_slots_assigned", u64::from(SLOT_COUNT)),
        ("cluster_slots_ok", u64::from(SLOT_COUNT)),
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
    out.push_str("cluster_state:ok\r\n");
    for (name, value) in &fields {
        let _ = write!(out, "{name}:{value}\r\n");
    }
    out
}

/// `CLUSTER SLOTS`: each run of slots with its primary as `[ip, port, id, {}]` (Redis 7
/// adds the map of extra endpoints; there are none).
fn slots(ctx: &mut Ctx<'_>, topology: &Topology) -> CommandResult {
    let ranges = topology.slot_map().ranges();
    ctx.array(ranges.len());
    for range in &ranges {
        ctx.array(3);
        encode::write_integer(ctx.out, i64::from(range.start.get()));
        encode::write_integer(ctx.out, i64::from(range.end.get()));
        let Some(peer) = topology.peer(range.owner) else {
            // The map only names members; an empty node entry keeps the reply well formed.
            ctx.array(0);
            continue;
        };
        ctx.array(4);
        encode::write_bulk(ctx.out, peer.peer.addr.ip().to_string().as_bytes());
        encode::write_integer(ctx.out, i64::from(peer.peer.addr.port()));
        encode::write_bulk(ctx.out, peer.node_id.as_bytes());
        ctx.map(0);
    }
    Ok(())
}

/// The runs of slots `peer` owns, in slot order.
fn ranges_of<'r>(
    ranges: &'r [SlotRange],
    peer: &'r PeerInfo,
) -> impl Iterator<Item = &'r SlotRange> {
    ranges.iter().filter(move |r| r.owner == peer.peer.id)
}

/// `CLUSTER SHARDS`: one map per shard with its slot pairs and its one node.
fn shards(ctx: &mut Ctx<'_>, topology: &Topology) -> CommandResult {
    let ranges = topology.slot_map().ranges();
    ctx.array(topology.peers().len());
    for peer in topology.peers() {
        ctx.map(2);
        encode::write_bulk(ctx.out, b"slots");
        let owned: Vec<&SlotRange> = ranges_of(&ranges, peer).collect();
        ctx.array(owned.len() * 2);
        for r in owned {
            encode::write_integer(ctx.out, i64::from(r.start.get()));
            encode::write_integer(ctx.out, i64::from(r.end.get()));
        }
        encode::write_bulk(ctx.out, b"nodes");
        ctx.array(1);
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
        encode::write_bulk(ctx.out, b"role");
        encode::write_bulk(ctx.out, b"master");
        encode::write_bulk(ctx.out, b"replication-offset");
        encode::write_integer(ctx.out, 0);
        encode::write_bulk(ctx.out, b"health");
        encode::write_bulk(ctx.out, b"online");
    }
    Ok(())
}

/// `CLUSTER NODES`: one line per node, `<id> <ip:port@cport> <flags> <master> <ping-sent>
/// <pong-recv> <config-epoch> <link-state> <slot> ...`. There is no cluster bus yet, so
/// no pings are sent and none are received: both times are 0.
pub fn nodes_text(topology: &Topology) -> String {
    let ranges = topology.slot_map().ranges();
    let me = topology.myself().peer.id;
    let mut out = String::with_capacity(128 * topology.peers().len());
    for peer in topology.peers() {
        let flags = if peer.peer.id == me {
            "myself,master"
        } else {
            "master"
        };
        let _ = write!(
            out,
            "{} {}:{}@{} {flags} - 0 0 {} connected",
            peer.node_id,
            peer.peer.addr.ip(),
            peer.peer.addr.port(),
            peer.bus_port(),
            peer.epoch
        );
        for r in ranges_of(&ranges, peer) {
            if r.start == r.end {
                let _ = write!(out, " {}", r.start.get());
            } else {
                let _ = write!(out, " {}-{}", r.start.get(), r.end.get());
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
        let info = info_text(&topo);
        assert!(info.starts_with("cluster_state:ok\r\n"));
        assert!(info.contains("cluster_known_nodes:2\r\n"));
        assert!(info.contains("cluster_my_epoch:2\r\n"));
    }
}
