//! Cluster placement: which shard owns each of Redis Cluster's 16384 slots.
//!
//! - [`shard`]: [`ShardId`], [`Shard`] (id and weight) and [`ShardSet`], the validated
//!   membership that is the ring's only input.
//! - [`ring`]: [`HashRing`], the consistent-hash ring with virtual nodes and bounded
//!   loads, and the exact encoding every node must share.
//! - [`slot_map`]: [`SlotMap`], the result: each slot's owner, per-shard counts, runs of
//!   slots, and the moves between two maps.
//! - [`topology`]: [`Topology`], one node's view of the members and slots, and the routing
//!   of keys to their owner (`MOVED`, `ASK`, `CROSSSLOT`, `TRYAGAIN`).
//! - [`config`]: the replicated configuration and its changes, a pure state machine.
//! - [`raft_store`], [`raft_node`], [`bus`]: raft (raft-rs) replicating that configuration
//!   over the cluster bus, persisted in the data directory.
//! - [`migrate`]: streaming a slot's keys to its new owner, then committing the move.
//! - [`membership`]: starting a node's cluster side: bootstrap, join, restart.
//! - [`state`]: [`Cluster`], what connections share: the topology, paused slots, counters.
//!
//! Placement is pure and sans-IO: the same shard set and [`RingConfig`] give the same map
//! on every node, whatever order the shards were listed in. A static cluster (every node
//! started with the same `cluster-shards`) uses only that; a dynamic one replicates its
//! membership with raft.
//!
//! # Example
//! ```
//! use cachalot_protocol::key_slot;
//! use cachalot_server::cluster::{HashRing, RingConfig, ShardId, ShardSet};
//!
//! let shards = ShardSet::uniform([1, 2, 3].map(ShardId::new)).expect("valid shards");
//! let map = HashRing::new(&shards, RingConfig::default()).expect("non-empty").slot_map();
//! let owner = map.owner(key_slot(b"user:1000"));
//! assert!(shards.get(owner).is_some());
//! ```

pub mod bus;
pub mod config;
pub mod failover;
pub mod membership;
pub mod migrate;
pub mod raft_node;
pub mod raft_store;
pub mod ring;
pub mod shard;
pub mod slot_map;
pub mod state;
pub mod topology;

pub use ring::{HashRing, RingConfig, RingError};
pub use shard::{Shard, ShardId, ShardSet};
pub use slot_map::{SlotMap, SlotMove, SlotRange};
pub use state::Cluster;
pub use topology::{
    default_bus_port, node_id, parse_shard_list, ClusterPeer, PeerInfo, Redirect, Topology,
    TopologyError,
};
