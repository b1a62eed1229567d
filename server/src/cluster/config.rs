//! The replicated cluster configuration: nodes, shards, weights, each slot's committed
//! owner, and the epoch. Raft orders [`Proposal`]s; every node applies them to its own
//! [`ClusterConfig`] with [`ClusterConfig::apply`], a pure function, so all nodes that
//! applied the same log hold the same configuration.
//!
//! Slot ownership has two layers:
//! - `owners`: the committed owner of each slot, which serves it;
//! - the *target*: the ring's map of the shards that are not leaving
//!   ([`ClusterConfig::target_map`]). Where the two differ, the slot is migrating from its
//!   owner to its target; the owner commits the move ([`Op::SlotsMoved`]) once it has
//!   streamed the slot's keys.
//!
//! A change of the shard set (join, re-weight, remove) is refused while any slot is still
//! migrating, so a slot's target never changes under a running migration.

use std::net::SocketAddr;

use cachalot_protocol::{SlotId, SLOT_COUNT};

use super::ring::{all_slots, HashRing, RingConfig};
use super::shard::{Shard, ShardId, ShardSet, MAX_SHARDS, MAX_WEIGHT};
use super::slot_map::SlotMap;

/// One node of the cluster.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct NodeEntry {
    /// Raft id, chosen at random by the node when it first starts; never 0.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Client address (`ip:port`), as `MOVED` and `CLUSTER SLOTS` report it.
    #[prost(string, tag = "2")]
    pub addr: String,
    /// Cluster bus port on the same IP.
    #[prost(uint32, tag = "3")]
    pub bus_port: u32,
    /// The shard it belongs to.
    #[prost(uint64, tag = "4")]
    pub shard: u64,
    /// A replica of its shard rather than the primary.
    #[prost(bool, tag = "5")]
    pub replica: bool,
    /// The configuration epoch when it joined (unique per node).
    #[prost(uint64, tag = "6")]
    pub epoch: u64,
}

impl NodeEntry {
    /// The client address, if it parses.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.addr.parse().ok()
    }

    /// The bus address: the client IP with the bus port.
    pub fn bus_addr(&self) -> Option<SocketAddr> {
        let mut a = self.client_addr()?;
        a.set_port(u16::try_from(self.bus_port).ok()?);
        Some(a)
    }
}

/// One shard: a weight on the ring, and whether it is draining away.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ShardEntry {
    /// Shard id, never 0.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Ring weight, `1..=MAX_WEIGHT`.
    #[prost(uint32, tag = "2")]
    pub weight: u32,
    /// Being removed: out of the target map; dropped with its nodes once it owns nothing.
    #[prost(bool, tag = "3")]
    pub leaving: bool,
}

/// The whole configuration, as snapshots carry it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClusterConfig {
    /// Bumped by every change that is applied.
    #[prost(uint64, tag = "1")]
    pub epoch: u64,
    /// The next shard id to hand out.
    #[prost(uint64, tag = "2")]
    pub next_shard: u64,
    /// Nodes in id order.
    #[prost(message, repeated, tag = "3")]
    pub nodes: Vec<NodeEntry>,
    /// Shards in id order.
    #[prost(message, repeated, tag = "4")]
    pub shards: Vec<ShardEntry>,
    /// Each slot's committed owner (shard id), `SLOT_COUNT` entries once bootstrapped.
    #[prost(uint64, repeated, tag = "5")]
    pub owners: Vec<u64>,
    /// Keys moved by committed migrations, for status output.
    #[prost(uint64, tag = "6")]
    pub keys_moved: u64,
}

/// A change to the configuration, as raft entries carry it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Proposal {
    /// The change.
    #[prost(oneof = "Op", tags = "1, 2, 3, 4, 5, 6")]
    pub op: Option<Op>,
}

/// The changes.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Op {
    /// A node joins: as the primary of a new shard (`weight` > 0), or as a replica of
    /// `replica_of`.
    #[prost(message, tag = "1")]
    Join(Join),
    /// A shard's weight changes.
    #[prost(message, tag = "2")]
    Reweight(Reweight),
    /// A shard starts draining; it and its nodes leave once it owns no slot.
    #[prost(message, tag = "3")]
    RemoveShard(RemoveShard),
    /// A node that serves no slot leaves.
    #[prost(message, tag = "4")]
    Forget(Forget),
    /// Slots whose keys have all been streamed change owner.
    #[prost(message, tag = "5")]
    SlotsMoved(SlotsMoved),
    /// A replica becomes its shard's primary; the primary becomes a replica.
    #[prost(message, tag = "6")]
    Failover(Failover),
}

/// See [`Op::Failover`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Failover {
    /// The shard.
    #[prost(uint64, tag = "1")]
    pub shard: u64,
    /// The primary being replaced: the change applies only while it still is the
    /// primary, so a late or repeated proposal changes nothing.
    #[prost(uint64, tag = "2")]
    pub from: u64,
    /// The replica promoted.
    #[prost(uint64, tag = "3")]
    pub to: u64,
}

/// See [`Op::Join`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Join {
    /// The node (its `shard` and `epoch` are assigned here).
    #[prost(message, optional, tag = "1")]
    pub node: Option<NodeEntry>,
    /// Weight of the new shard; 0 with `replica_of`.
    #[prost(uint32, tag = "2")]
    pub weight: u32,
    /// The shard to replicate, or 0.
    #[prost(uint64, tag = "3")]
    pub replica_of: u64,
}

/// See [`Op::Reweight`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Reweight {
    /// The shard.
    #[prost(uint64, tag = "1")]
    pub shard: u64,
    /// Its new weight.
    #[prost(uint32, tag = "2")]
    pub weight: u32,
}

/// See [`Op::RemoveShard`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveShard {
    /// The shard.
    #[prost(uint64, tag = "1")]
    pub shard: u64,
}

/// See [`Op::Forget`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct Forget {
    /// The node's raft id.
    #[prost(uint64, tag = "1")]
    pub node: u64,
}

/// See [`Op::SlotsMoved`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct SlotsMoved {
    /// The shard the slots leave.
    #[prost(uint64, tag = "1")]
    pub from: u64,
    /// The shard that now holds their keys.
    #[prost(uint64, tag = "2")]
    pub to: u64,
    /// The slots.
    #[prost(uint32, repeated, tag = "3")]
    pub slots: Vec<u32>,
    /// Keys streamed for them.
    #[prost(uint64, tag = "4")]
    pub keys: u64,
}

/// Why a change was refused; the text is the client's error reply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A shard-set change while slots still migrate.
    #[error("resharding in progress: {0} slots still migrating, try again when it ends")]
    Migrating(usize),
    /// No such shard.
    #[error("no shard {0}")]
    NoShard(u64),
    /// No such node.
    #[error("no node {0}")]
    NoNode(u64),
    /// The node's id or address is taken.
    #[error("node {0} is already a member")]
    Duplicate(String),
    /// A weight outside `1..=MAX_WEIGHT`.
    #[error("weight must be between 1 and {MAX_WEIGHT}")]
    BadWeight,
    /// Removing the last shard.
    #[error("cannot remove the last shard")]
    LastShard,
    /// Forgetting a primary (it leaves with its shard).
    #[error("node {0} is a shard's primary and still serves slots; remove its shard (CLUSTER REMOVESHARD) instead")]
    StillServing(u64),
    /// A join past the shard limit.
    #[error("the cluster has the most shards it can have ({MAX_SHARDS})")]
    TooManyShards,
    /// A failover whose primary is not the shard's primary any more.
    #[error("shard {0} has another primary now")]
    StaleFailover(u64),
    /// A failover to a node that is not a replica of the shard.
    #[error("node {0} is not a replica of shard {1}")]
    NotAReplica(u64, u64),
    /// A malformed entry (missing fields, bad address).
    #[error("malformed change: {0}")]
    Malformed(&'static str),
}

impl ClusterConfig {
    /// The configuration of a new cluster: `node` as the primary of shard 1, owning every
    /// slot.
    pub fn bootstrap(mut node: NodeEntry) -> ClusterConfig {
        node.shard = 1;
        node.replica = false;
        node.epoch = 1;
        ClusterConfig {
            epoch: 1,
            next_shard: 2,
            nodes: vec![node],
            shards: vec![ShardEntry {
                id: 1,
                weight: 1,
                leaving: false,
            }],
            owners: vec![1; usize::from(SLOT_COUNT)],
            keys_moved: 0,
        }
    }

    /// The node with raft id `id`.
    pub fn node(&self, id: u64) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The shard with id `id`.
    pub fn shard(&self, id: u64) -> Option<&ShardEntry> {
        self.shards.iter().find(|s| s.id == id)
    }

    /// The primary node of shard `id`.
    pub fn primary_of(&self, shard: u64) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.shard == shard && !n.replica)
    }

    /// The committed owner of each slot.
    pub fn owner_map(&self) -> SlotMap {
        map_of(&self.owners)
    }

    /// The map the ring gives the shards that are not leaving: where every slot should be.
    pub fn target_map(&self) -> SlotMap {
        let shards: Vec<Shard> = self
            .shards
            .iter()
            .filter(|s| !s.leaving)
            .map(|s| Shard::weighted(ShardId::new(s.id), s.weight))
            .collect();
        match ShardSet::new(shards)
            .and_then(|set| HashRing::new(&set, RingConfig::default()))
            .map(|ring| ring.slot_map())
        {
            Ok(map) => map,
            // Only reachable with no shard left in the ring, which `apply` refuses.
            Err(_) => self.owner_map(),
        }
    }

    /// Slots whose owner differs from their target.
    pub fn migrating(&self) -> usize {
        let target = self.target_map();
        all_slots()
            .filter(|&s| self.owners.get(usize::from(s.get())) != Some(&target.owner(s).get()))
            .count()
    }

    /// Applies one change, or refuses it and leaves the configuration as it was.
    ///
    /// # Errors
    /// [`ConfigError`] naming why.
    pub fn apply(&mut self, op: &Op) -> Result<(), ConfigError> {
        match op {
            Op::Join(j) => self.join(j)?,
            Op::Reweight(r) => {
                check_weight(r.weight)?;
                self.check_not_migrating()?;
                let shard = self.shard_mut(r.shard)?;
                shard.weight = r.weight;
            }
            Op::RemoveShard(r) => {
                self.check_not_migrating()?;
                let staying = self
                    .shards
                    .iter()
                    .filter(|s| !s.leaving && s.id != r.shard)
                    .count();
                let shard = self.shard_mut(r.shard)?;
                if staying == 0 {
                    return Err(ConfigError::LastShard);
                }
                shard.leaving = true;
                self.drop_empty_leaving_shards();
            }
            Op::Forget(f) => {
                let node = self.node(f.node).ok_or(ConfigError::NoNode(f.node))?;
                // A primary goes with its shard (REMOVESHARD), never alone: its shard may
                // own slots, or be about to receive some.
                if !node.replica {
                    return Err(ConfigError::StillServing(f.node));
                }
                let shard = node.shard;
                self.nodes.retain(|n| n.id != f.node);
                if !self.nodes.iter().any(|n| n.shard == shard) {
                    self.shards.retain(|s| s.id != shard);
                }
            }
            Op::Failover(f) => {
                let primary = self.primary_of(f.shard).map(|n| n.id);
                if primary != Some(f.from) {
                    return Err(ConfigError::StaleFailover(f.shard));
                }
                let ok = self
                    .node(f.to)
                    .is_some_and(|n| n.shard == f.shard && n.replica);
                if !ok {
                    return Err(ConfigError::NotAReplica(f.to, f.shard));
                }
                let epoch = self.epoch + 1;
                for n in self.nodes.iter_mut().filter(|n| n.shard == f.shard) {
                    n.replica = n.id != f.to;
                    if n.id == f.to {
                        // A new config epoch, as Redis Cluster gives a promoted replica.
                        n.epoch = epoch;
                    }
                }
            }
            Op::SlotsMoved(m) => {
                self.shard(m.to).ok_or(ConfigError::NoShard(m.to))?;
                let target = self.target_map();
                for &n in &m.slots {
                    let Some(s) = slot(n) else { continue };
                    if target.owner(s).get() != m.to {
                        continue;
                    }
                    if let Some(owner) = self.owners.get_mut(usize::from(s.get())) {
                        if *owner == m.from {
                            *owner = m.to;
                        }
                    }
                }
                self.keys_moved = self.keys_moved.saturating_add(m.keys);
                self.drop_empty_leaving_shards();
            }
        }
        self.epoch += 1;
        Ok(())
    }

    fn join(&mut self, j: &Join) -> Result<(), ConfigError> {
        let mut node = j
            .node
            .clone()
            .ok_or(ConfigError::Malformed("join without a node"))?;
        if node.id == 0 || node.client_addr().is_none() || node.bus_addr().is_none() {
            return Err(ConfigError::Malformed(
                "join needs an id, ip:port and bus port",
            ));
        }
        if self
            .nodes
            .iter()
            .any(|n| n.id == node.id && n.addr == node.addr)
        {
            // A node asking again (it restarted before it heard back): already in.
            return Ok(());
        }
        if let Some(old) = self
            .nodes
            .iter()
            .find(|n| n.id == node.id || n.addr == node.addr)
        {
            return Err(ConfigError::Duplicate(old.addr.clone()));
        }
        if j.replica_of != 0 {
            let shard = self
                .shard(j.replica_of)
                .ok_or(ConfigError::NoShard(j.replica_of))?;
            node.shard = shard.id;
            node.replica = true;
        } else {
            check_weight(j.weight)?;
            self.check_not_migrating()?;
            if self.shards.len() >= MAX_SHARDS {
                return Err(ConfigError::TooManyShards);
            }
            node.shard = self.next_shard;
            node.replica = false;
            self.shards.push(ShardEntry {
                id: self.next_shard,
                weight: j.weight,
                leaving: false,
            });
            self.next_shard += 1;
        }
        node.epoch = self.epoch + 1;
        let at = self.nodes.partition_point(|n| n.id < node.id);
        self.nodes.insert(at, node);
        Ok(())
    }

    fn shard_mut(&mut self, id: u64) -> Result<&mut ShardEntry, ConfigError> {
        self.shards
            .iter_mut()
            .find(|s| s.id == id && !s.leaving)
            .ok_or(ConfigError::NoShard(id))
    }

    fn check_not_migrating(&self) -> Result<(), ConfigError> {
        match self.migrating() {
            0 => Ok(()),
            n => Err(ConfigError::Migrating(n)),
        }
    }

    /// Leaving shards that own no slot are dropped, with their nodes.
    fn drop_empty_leaving_shards(&mut self) {
        let owners = &self.owners;
        let gone: Vec<u64> = self
            .shards
            .iter()
            .filter(|s| s.leaving && !owners.contains(&s.id))
            .map(|s| s.id)
            .collect();
        self.shards.retain(|s| !gone.contains(&s.id));
        self.nodes.retain(|n| !gone.contains(&n.shard));
    }
}

fn check_weight(w: u32) -> Result<(), ConfigError> {
    if (1..=MAX_WEIGHT).contains(&w) {
        Ok(())
    } else {
        Err(ConfigError::BadWeight)
    }
}

/// A [`SlotMap`] from an owner per slot (missing slots go to the first shard).
fn map_of(owners: &[u64]) -> SlotMap {
    let mut shards: Vec<ShardId> = owners.iter().map(|&o| ShardId::new(o)).collect();
    shards.sort_unstable();
    shards.dedup();
    if shards.is_empty() {
        shards.push(ShardId::new(0));
    }
    let index: Vec<u16> = all_slots()
        .map(|s| {
            let o = owners.get(usize::from(s.get())).copied().unwrap_or(0);
            let i = shards.binary_search(&ShardId::new(o)).unwrap_or(0);
            u16::try_from(i).unwrap_or(0)
        })
        .collect();
    SlotMap::from_owners(shards, index)
}

/// The slot numbered `n`, when it is one.
pub fn slot(n: u32) -> Option<SlotId> {
    u16::try_from(n).ok().and_then(SlotId::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, port: u16) -> NodeEntry {
        NodeEntry {
            id,
            addr: format!("127.0.0.1:{port}"),
            bus_port: u32::from(port) + 10_000,
            ..NodeEntry::default()
        }
    }

    fn join(id: u64, port: u16) -> Op {
        Op::Join(Join {
            node: Some(node(id, port)),
            weight: 1,
            replica_of: 0,
        })
    }

    /// Commits every pending slot move, as the owners would after streaming.
    fn finish_migrations(c: &mut ClusterConfig) {
        let target = c.target_map();
        let mut moves: std::collections::BTreeMap<(u64, u64), Vec<u32>> = Default::default();
        for s in all_slots() {
            let from = c.owners[usize::from(s.get())];
            let to = target.owner(s).get();
            if from != to {
                moves
                    .entry((from, to))
                    .or_default()
                    .push(u32::from(s.get()));
            }
        }
        for ((from, to), slots) in moves {
            let keys = slots.len() as u64;
            c.apply(&Op::SlotsMoved(SlotsMoved {
                from,
                to,
                slots,
                keys,
            }))
            .expect("move applies");
        }
        assert_eq!(c.migrating(), 0);
    }

    #[test]
    fn a_joining_shard_gets_its_share_only_after_the_moves_commit() {
        let mut c = ClusterConfig::bootstrap(node(7, 7000));
        assert_eq!(c.migrating(), 0);
        c.apply(&join(9, 7001)).expect("joins");
        assert_eq!(c.node(9).map(|n| n.shard), Some(2));
        let pending = c.migrating();
        assert!((7000..9000).contains(&pending), "{pending}");
        // Until moves commit, shard 1 still owns everything.
        assert_eq!(c.owner_map().slot_count(ShardId::new(1)), 16384);
        // A second join waits for the first to finish.
        assert_eq!(
            c.apply(&join(11, 7002)),
            Err(ConfigError::Migrating(pending))
        );
        finish_migrations(&mut c);
        assert_eq!(c.owner_map(), c.target_map());
        assert_eq!(c.keys_moved, pending as u64);
        c.apply(&join(11, 7002)).expect("joins now");
    }

    #[test]
    fn a_failover_swaps_roles_within_the_shard_once() {
        let mut c = ClusterConfig::bootstrap(node(1, 7000));
        for (id, port) in [(2, 7001), (3, 7002)] {
            c.apply(&Op::Join(Join {
                node: Some(node(id, port)),
                weight: 0,
                replica_of: 1,
            }))
            .expect("replica joins");
        }
        let owners = c.owners.clone();
        let f = Op::Failover(Failover {
            shard: 1,
            from: 1,
            to: 3,
        });
        c.apply(&f).expect("fails over");
        assert_eq!(c.primary_of(1).map(|n| n.id), Some(3));
        assert!(
            c.node(1).is_some_and(|n| n.replica),
            "the old primary stays, a replica"
        );
        assert!(c.node(2).is_some_and(|n| n.replica));
        assert_eq!(c.owners, owners, "failover moves no slot");
        let epoch = c.node(3).map(|n| n.epoch);
        assert_eq!(epoch, Some(c.epoch));
        // The same proposal again (a leader retrying) is refused: 1 is no longer primary.
        assert_eq!(c.apply(&f), Err(ConfigError::StaleFailover(1)));
        // Only a replica of the shard can be promoted.
        let bad = Op::Failover(Failover {
            shard: 1,
            from: 3,
            to: 3,
        });
        assert_eq!(c.apply(&bad), Err(ConfigError::NotAReplica(3, 1)));
    }

    #[test]
    fn a_removed_shard_drains_then_leaves_with_its_nodes() {
        let mut c = ClusterConfig::bootstrap(node(1, 7000));
        c.apply(&join(2, 7001)).expect("joins");
        finish_migrations(&mut c);
        c.apply(&Op::RemoveShard(RemoveShard { shard: 1 }))
            .expect("drains");
        assert!(c.node(1).is_some(), "still serving while draining");
        assert_eq!(c.target_map().slot_count(ShardId::new(2)), 16384);
        finish_migrations(&mut c);
        assert!(c.node(1).is_none() && c.shard(1).is_none());
        assert_eq!(
            c.apply(&Op::RemoveShard(RemoveShard { shard: 2 })),
            Err(ConfigError::LastShard)
        );
    }

    #[test]
    fn bad_changes_are_refused_and_change_nothing() {
        let mut c = ClusterConfig::bootstrap(node(1, 7000));
        let before = c.clone();
        assert!(matches!(
            c.apply(&join(1, 7005)),
            Err(ConfigError::Duplicate(_))
        ));
        // The same node asking again is not a change (beyond the epoch).
        c.apply(&join(1, 7000)).expect("idempotent");
        c.epoch = before.epoch;
        assert!(matches!(
            c.apply(&join(5, 7000)),
            Err(ConfigError::Duplicate(_))
        ));
        assert_eq!(
            c.apply(&Op::Reweight(Reweight {
                shard: 1,
                weight: 0
            })),
            Err(ConfigError::BadWeight)
        );
        assert_eq!(
            c.apply(&Op::Reweight(Reweight {
                shard: 4,
                weight: 2
            })),
            Err(ConfigError::NoShard(4))
        );
        assert_eq!(
            c.apply(&Op::Forget(Forget { node: 1 })),
            Err(ConfigError::StillServing(1))
        );
        let mut bad = node(3, 7003);
        bad.addr = "nowhere".into();
        assert!(matches!(
            c.apply(&Op::Join(Join {
                node: Some(bad),
                weight: 1,
                replica_of: 0
            })),
            Err(ConfigError::Malformed(_))
        ));
        assert_eq!(c, before);
    }

    #[test]
    fn a_move_only_commits_slots_headed_for_that_shard_and_primaries_are_not_forgotten() {
        let mut c = ClusterConfig::bootstrap(node(1, 7000));
        c.apply(&join(2, 7001)).expect("joins");
        let target = c.target_map();
        let (to_two, stays): (Vec<u32>, Vec<u32>) = all_slots()
            .map(|s| u32::from(s.get()))
            .partition(|&s| slot(s).is_some_and(|s| target.owner(s) == ShardId::new(2)));
        c.apply(&Op::SlotsMoved(SlotsMoved {
            from: 1,
            to: 2,
            slots: vec![to_two[0], stays[0], 99_999],
            keys: 0,
        }))
        .expect("applies");
        let owners = c.owner_map();
        assert_eq!(
            owners.slot_count(ShardId::new(2)),
            1,
            "only the targeted slot moved"
        );
        assert_eq!(c.owners[to_two[0] as usize], 2);
        assert_eq!(c.owners[stays[0] as usize], 1);
        // The joining shard's primary owns almost nothing yet, but cannot be forgotten.
        assert_eq!(
            c.apply(&Op::Forget(Forget { node: 2 })),
            Err(ConfigError::StillServing(2))
        );
    }

    #[test]
    fn replicas_join_a_shard_without_moving_slots_and_can_be_forgotten() {
        let mut c = ClusterConfig::bootstrap(node(1, 7000));
        c.apply(&Op::Join(Join {
            node: Some(node(2, 7001)),
            weight: 0,
            replica_of: 1,
        }))
        .expect("replica joins");
        assert_eq!(c.migrating(), 0);
        assert!(c.node(2).is_some_and(|n| n.replica && n.shard == 1));
        c.apply(&Op::Forget(Forget { node: 2 })).expect("forgotten");
        assert!(c.node(2).is_none());
    }

    #[test]
    fn reweighting_moves_slots_toward_the_heavier_shard() {
        let mut c = ClusterConfig::bootstrap(node(1, 7000));
        c.apply(&join(2, 7001)).expect("joins");
        finish_migrations(&mut c);
        c.apply(&Op::Reweight(Reweight {
            shard: 2,
            weight: 3,
        }))
        .expect("reweights");
        finish_migrations(&mut c);
        let two = c.owner_map().slot_count(ShardId::new(2));
        assert!((11_500..13_000).contains(&two), "{two}");
    }

    #[test]
    fn configurations_round_trip_through_their_encoding() {
        use prost::Message as _;
        let mut c = ClusterConfig::bootstrap(node(1, 7000));
        c.apply(&join(2, 7001)).expect("joins");
        let bytes = c.encode_to_vec();
        assert_eq!(ClusterConfig::decode(bytes.as_slice()).expect("decodes"), c);
        let p = Proposal {
            op: Some(join(3, 7002)),
        };
        assert_eq!(
            Proposal::decode(p.encode_to_vec().as_slice()).expect("decodes"),
            p
        );
    }
}
