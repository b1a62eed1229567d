//! Cluster placement: which shard owns each of Redis Cluster's 16384 slots.
//!
//! - [`shard`]: [`ShardId`], [`Shard`] (id and weight) and [`ShardSet`], the validated
//!   membership that is the ring's only input.
//! - [`ring`]: [`HashRing`], the consistent-hash ring with virtual nodes and bounded
//!   loads, and the exact encoding every node must share.
//! - [`slot_map`]: [`SlotMap`], the result: each slot's owner, per-shard counts, runs of
//!   slots, and the moves between two maps.
//! - [`topology`]: [`Topology`], a static cluster (the shard list every node was started
//!   with) and the routing of keys to their owner (`MOVED`, `CROSSSLOT`).
//!
//! Everything here is pure and sans-IO: the same shard set and [`RingConfig`] give the
//! same map on every node, whatever order the shards were listed in.
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

pub mod ring;
pub mod shard;
pub mod slot_map;
pub mod topology;

pub use ring::{HashRing, RingConfig, RingError};
pub use shard::{Shard, ShardId, ShardSet};
pub use slot_map::{SlotMap, SlotMove, SlotRange};
pub use topology::{
    node_id, parse_shard_list, ClusterPeer, PeerInfo, Redirect, Topology, TopologyError,
};
