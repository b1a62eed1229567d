//! Cluster mode: routing keyed commands to their slot's owner (`MOVED`, `CROSSSLOT`), the
//! `CLUSTER` container, and `READONLY`, `READWRITE` and `ASKING`, in Redis 7's formats.

use std::fmt::Write as _;

use bytes::Bytes;
use cachalot_protocol::{encode, key_slot, SLOT_COUNT};

use super::keys::{check_subcommand, help_reply};
use super::table::{CommandSpec, Subcommand, HELP_SUBCOMMAND};
use super::{is, CommandResult, Ctx};
use crate::cluster::{PeerInfo, Redirect, SlotRange, Topology};
use crate::error::CommandError;

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
        .route(key_args(spec, args).map(|k| k.as_ref()))
        .map_err(|r| match r {
            Redirect::CrossSlot => CommandError::CrossSlot,
            Redirect::Moved { slot, addr } => CommandError::Moved {
                slot: slot.get(),
                ip: addr.ip(),
                port: addr.port(),
            },
        })
}

/// The key arguments of `args`: a container's subcommand's key when `args[1]` names one
/// that takes a key (`OBJECT ENCODING key`, `MEMORY USAGE key`), otherwise the spec's
/// first key, last key (negative: from the end) and step; none for commands without keys
/// or arguments too short to hold one.
fn key_args<'a>(spec: &CommandSpec, args: &'a [Bytes]) -> impl Iterator<Item = &'a Bytes> {
    let len = i64::try_from(args.len()).unwrap_or(i64::MAX);
    let sub_key = args
        .get(1)
        .and_then(|sub| spec.subcommands.iter().find(|s| is(sub, s.name)))
        .map(|s| i64::from(s.key));
    let (first, last, step) = match sub_key {
        Some(k) => (k, k, 1),
        None => (
            i64::from(spec.first_key),
            match i64::from(spec.last_key) {
                l if l < 0 => len + l,
                l => l,
            },
            spec.step,
        ),
    };
    let last = last.min(len - 1);
    let step = usize::try_from(step.max(1)).unwrap_or(1);
    let range = if first > 0 && last >= first {
        usize::try_from(first).unwrap_or(0)..usize::try_from(last + 1).unwrap_or(0)
    } else {
        0..0
    };
    args.get(range).into_iter().flatten().step_by(step)
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

    fn keys_of(args: &[&str]) -> Vec<String> {
        let (_, spec) = lookup(args[0].as_bytes()).expect("known command");
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
        key_args(spec, &args)
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
