//! A static cluster topology: the shard list every node was started with, this node's
//! place in it, and the slot map the ring computes from it.
//!
//! Until membership is replicated (raft, a later step), every node of a cluster is started
//! with the same `cluster-shards` list; since the slot map is a pure function of the shard
//! set, they all agree on every slot's owner without talking to each other.

use std::fmt;
use std::net::SocketAddr;

use cachalot_protocol::{key_slot, SlotId};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

use super::config::ClusterConfig;
use super::ring::{HashRing, RingConfig, RingError};
use super::shard::{ShardId, ShardSet};
use super::slot_map::SlotMap;

/// The domain prefix of a node id's hash input.
const NODE_ID_DOMAIN: &[u8] = b"cachalot-node-id";

/// Added to a client port to name the cluster bus port, as Redis does.
const CLUSTER_BUS_PORT_OFFSET: u16 = 10_000;

/// One entry of the shard list: a shard id and the address clients reach it at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClusterPeer {
    /// The shard's id (the only thing the ring hashes).
    pub id: ShardId,
    /// Its client address, as `MOVED` and `CLUSTER SLOTS` report it.
    pub addr: SocketAddr,
}

/// Why a shard list was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// An entry is not `<id>@<ip>:<port>`.
    #[error("cluster-shards entry '{0}' is not <id>@<ip>:<port> (id a number, ip an IP address)")]
    BadEntry(String),
    /// The list is empty.
    #[error("cluster-shards is empty")]
    Empty,
    /// Two entries share an address.
    #[error("cluster-shards lists the address {0} twice")]
    DuplicateAddress(SocketAddr),
    /// This node's id is not in the list.
    #[error("cluster-id {0} is not one of the ids in cluster-shards")]
    UnknownSelf(u64),
    /// The ring refused the shard set (duplicate id, too many shards).
    #[error("cluster-shards: {0}")]
    Ring(#[from] RingError),
}

/// Parses `<id>@<ip>:<port>[,...]` (spaces around entries allowed).
///
/// # Errors
/// [`TopologyError::BadEntry`] for the first entry that does not parse.
pub fn parse_shard_list(text: &str) -> Result<Vec<ClusterPeer>, TopologyError> {
    text.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let bad = || TopologyError::BadEntry(entry.to_string());
            let (id, addr) = entry.split_once('@').ok_or_else(bad)?;
            let id: u64 = id.trim().parse().map_err(|_| bad())?;
            let addr: SocketAddr = addr.trim().parse().map_err(|_| bad())?;
            if addr.port() == 0 {
                return Err(bad());
            }
            Ok(ClusterPeer {
                id: ShardId::new(id),
                addr,
            })
        })
        .collect()
}

/// The 40-hex-digit node id Redis clients expect, derived from the shard id so every node
/// reports the same id for the same shard: XXH3-128 then the high half of XXH3-64, both
/// over `"cachalot-node-id" ‖ id` (big-endian).
pub fn node_id(id: ShardId) -> String {
    let mut input = NODE_ID_DOMAIN.to_vec();
    input.extend_from_slice(&id.get().to_be_bytes());
    format!("{:032x}{:08x}", xxh3_128(&input), xxh3_64(&input) >> 32)
}

/// One node as the cluster commands report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The shard it serves and its client address.
    pub peer: ClusterPeer,
    /// Its 40-hex-digit node id.
    pub node_id: String,
    /// Its configuration epoch, unique as Redis requires.
    pub epoch: u64,
    /// Its raft id (the shard id in a static cluster).
    pub raft_id: u64,
    /// Its cluster bus port (client port + 10000 unless configured).
    pub bus: u16,
    /// A replica of its shard rather than the primary.
    pub replica: bool,
}

impl PeerInfo {
    /// The cluster bus port Redis's formats report.
    pub fn bus_port(&self) -> u16 {
        self.bus
    }
}

/// The default bus port for a client port: +10000, as Redis; 0 past 65535.
pub fn default_bus_port(port: u16) -> u16 {
    port.checked_add(CLUSTER_BUS_PORT_OFFSET).unwrap_or(0)
}

/// Where a command's keys must go, when not here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// The keys hash to different slots.
    CrossSlot,
    /// The slot belongs to another node.
    Moved {
        /// The keys' slot.
        slot: SlotId,
        /// The owner's client address.
        addr: SocketAddr,
    },
    /// The slot is migrating and the keys are not here (any more): ask the target.
    Ask {
        /// The keys' slot.
        slot: SlotId,
        /// The target's client address.
        addr: SocketAddr,
    },
    /// Some of a multi-key command's keys moved already and some did not, or the slot is
    /// briefly paused while its keys are moved.
    TryAgain,
    /// The node does not know the slot map yet (a node still joining).
    Down,
}

/// The cluster as one node sees it: every member, which one it is, the committed slot
/// map, and where migrating slots are going.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Members ordered by shard, primary first, then raft id.
    peers: Vec<PeerInfo>,
    /// This node, a member or not (yet).
    me: PeerInfo,
    /// Each slot's committed owner.
    map: SlotMap,
    /// Where each slot is going: equal to `map` when nothing migrates.
    target: SlotMap,
    /// Slots whose target is not their owner.
    migrating: usize,
    /// The configuration epoch.
    epoch: u64,
    /// Whether the node has a slot map at all.
    known: bool,
}

impl Topology {
    /// Builds the topology of the shards `peers`, this node being `me`, with the default
    /// ring configuration.
    ///
    /// # Errors
    /// [`TopologyError`] for an empty list, a duplicate id or address, or `me` missing.
    pub fn new(peers: &[ClusterPeer], me: ShardId) -> Result<Topology, TopologyError> {
        if peers.is_empty() {
            return Err(TopologyError::Empty);
        }
        let set = ShardSet::uniform(peers.iter().map(|p| p.id))?;
        let mut sorted = peers.to_vec();
        sorted.sort_unstable_by_key(|p| p.id);
        let mut addrs: Vec<SocketAddr> = sorted.iter().map(|p| p.addr).collect();
        addrs.sort_unstable();
        if let Some(pair) = addrs.windows(2).find(|w| w[0] == w[1]) {
            return Err(TopologyError::DuplicateAddress(pair[0]));
        }
        let me = sorted
            .iter()
            .position(|p| p.id == me)
            .ok_or(TopologyError::UnknownSelf(me.get()))?;
        let map = HashRing::new(&set, RingConfig::default())?.slot_map();
        let peers: Vec<PeerInfo> = sorted
            .into_iter()
            .zip(1u64..)
            .map(|(peer, epoch)| PeerInfo {
                node_id: node_id(peer.id),
                raft_id: peer.id.get(),
                bus: default_bus_port(peer.addr.port()),
                replica: false,
                peer,
                epoch,
            })
            .collect();
        let epoch = peers.iter().map(|p| p.epoch).max().unwrap_or(0);
        Ok(Topology {
            me: peers[me].clone(),
            peers,
            target: map.clone(),
            map,
            migrating: 0,
            epoch,
            known: true,
        })
    }

    /// The topology a replicated configuration gives node `me` (its raft id), whose own
    /// addresses are `addr` and `bus` if it is not a member (yet).
    pub fn from_config(config: &ClusterConfig, me: u64, addr: SocketAddr, bus: u16) -> Topology {
        let mut peers: Vec<PeerInfo> = config
            .nodes
            .iter()
            .filter_map(|n| {
                Some(PeerInfo {
                    peer: ClusterPeer {
                        id: ShardId::new(n.shard),
                        addr: n.client_addr()?,
                    },
                    node_id: node_id(ShardId::new(n.id)),
                    epoch: n.epoch,
                    raft_id: n.id,
                    bus: u16::try_from(n.bus_port).unwrap_or(0),
                    replica: n.replica,
                })
            })
            .collect();
        peers.sort_by_key(|p| (p.peer.id, p.replica, p.raft_id));
        let me = peers
            .iter()
            .find(|p| p.raft_id == me)
            .cloned()
            .unwrap_or_else(|| PeerInfo {
                peer: ClusterPeer {
                    id: ShardId::new(0),
                    addr,
                },
                node_id: node_id(ShardId::new(me)),
                epoch: 0,
                raft_id: me,
                bus,
                replica: false,
            });
        let known = config.owners.len() == usize::from(cachalot_protocol::SLOT_COUNT);
        let map = config.owner_map();
        let target = if known {
            config.target_map()
        } else {
            map.clone()
        };
        let migrating = map.moves_to(&target).len();
        Topology {
            peers,
            me,
            map,
            target,
            migrating,
            epoch: config.epoch,
            known,
        }
    }

    /// Every member, ordered by shard, primary first.
    pub fn peers(&self) -> &[PeerInfo] {
        &self.peers
    }

    /// This node.
    pub fn myself(&self) -> &PeerInfo {
        &self.me
    }

    /// The committed slot map.
    pub fn slot_map(&self) -> &SlotMap {
        &self.map
    }

    /// Where every slot is going (the committed map when nothing migrates).
    pub fn target_map(&self) -> &SlotMap {
        &self.target
    }

    /// Slots still migrating.
    pub fn migrating(&self) -> usize {
        self.migrating
    }

    /// Whether this node has a slot map (false while it joins).
    pub fn is_known(&self) -> bool {
        self.known
    }

    /// The primary of shard `id`.
    pub fn peer(&self, id: ShardId) -> Option<&PeerInfo> {
        self.peers.iter().find(|p| p.peer.id == id && !p.replica)
    }

    /// The configuration epoch (`cluster_current_epoch`).
    pub fn current_epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether this node is the primary of the shard that owns `slot`.
    pub fn owns(&self, slot: SlotId) -> bool {
        !self.me.replica && self.map.owner(slot) == self.me.peer.id
    }

    /// Checks that `keys` all hash to one slot and that this node owns it, as Redis does
    /// before running a keyed command: `CROSSSLOT` first, then `MOVED`. No keys: served here.
    ///
    /// # Errors
    /// The [`Redirect`] to reply with.
    pub fn route<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> Result<(), Redirect> {
        self.route_with(keys, false, |_| true)
    }

    /// [`route`](Self::route) during resharding: `asking` is the client's `ASKING` flag,
    /// `exists` tells whether a key is here. A migrating slot is served here only when all
    /// its keys are (`ASK` when none are, `TRYAGAIN` when some are); an importing one only
    /// after `ASKING`.
    ///
    /// # Errors
    /// The [`Redirect`] to reply with.
    pub fn route_with<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        asking: bool,
        mut exists: impl FnMut(&[u8]) -> bool,
    ) -> Result<(), Redirect> {
        let mut slot = None;
        let (mut here, mut total) = (0usize, 0usize);
        let mut keys_seen: Vec<&[u8]> = Vec::new();
        for key in keys {
            let s = key_slot(key);
            match slot {
                None => slot = Some(s),
                Some(first) if first != s => return Err(Redirect::CrossSlot),
                Some(_) => {}
            }
            keys_seen.push(key);
        }
        let Some(slot) = slot else { return Ok(()) };
        if !self.known {
            return Err(Redirect::Down);
        }
        let owner = self.map.owner(slot);
        let target = self.target.owner(slot);
        let mine = self.me.peer.id;
        if owner == mine && !self.me.replica {
            if target == mine {
                return Ok(());
            }
            for key in keys_seen {
                total += 1;
                here += usize::from(exists(key));
            }
            return match (here, self.peer(target)) {
                (h, _) if h == total => Ok(()),
                (0, Some(p)) => Err(Redirect::Ask {
                    slot,
                    addr: p.peer.addr,
                }),
                (0, None) => Ok(()),
                _ => Err(Redirect::TryAgain),
            };
        }
        if asking && target == mine && !self.me.replica {
            return Ok(());
        }
        match self.peer(owner) {
            Some(p) => Err(Redirect::Moved {
                slot,
                addr: p.peer.addr,
            }),
            None => Err(Redirect::Down),
        }
    }
}

impl fmt::Display for ClusterPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id.get(), self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Vec<ClusterPeer> {
        parse_shard_list("1@127.0.0.1:7001, 2@127.0.0.1:7002,3@127.0.0.1:7003").expect("valid")
    }

    #[test]
    fn shard_lists_parse_and_bad_entries_are_named() {
        let peers = three();
        assert_eq!(peers.len(), 3);
        assert_eq!(peers[1].to_string(), "2@127.0.0.1:7002");
        for bad in [
            "1@127.0.0.1",
            "x@127.0.0.1:7001",
            "1-127.0.0.1:7001",
            "1@localhost:7001",
            "1@127.0.0.1:0",
            "1@127.0.0.1:70000",
        ] {
            let err = parse_shard_list(bad).expect_err(bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn duplicates_and_a_missing_self_are_refused() {
        let peers = three();
        assert!(Topology::new(&peers, ShardId::new(2)).is_ok());
        assert_eq!(
            Topology::new(&peers, ShardId::new(9)).expect_err("not a member"),
            TopologyError::UnknownSelf(9)
        );
        let dup_id = parse_shard_list("1@127.0.0.1:7001,1@127.0.0.1:7002").expect("parses");
        assert!(matches!(
            Topology::new(&dup_id, ShardId::new(1)),
            Err(TopologyError::Ring(RingError::DuplicateShard(_)))
        ));
        let dup_addr = parse_shard_list("1@127.0.0.1:7001,2@127.0.0.1:7001").expect("parses");
        assert!(matches!(
            Topology::new(&dup_addr, ShardId::new(1)),
            Err(TopologyError::DuplicateAddress(_))
        ));
        assert_eq!(
            Topology::new(&[], ShardId::new(1)).expect_err("empty"),
            TopologyError::Empty
        );
    }

    #[test]
    fn node_ids_are_forty_hex_digits_stable_and_distinct() {
        let a = node_id(ShardId::new(1));
        assert_eq!(a.len(), 40);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(a, node_id(ShardId::new(1)));
        assert_ne!(a, node_id(ShardId::new(2)));
    }

    #[test]
    fn keys_route_to_their_owner_or_redirect() {
        let peers = three();
        let topo = Topology::new(&peers, ShardId::new(1)).expect("valid");
        assert_eq!(topo.route(std::iter::empty()), Ok(()));
        let mut saw_local = false;
        let mut saw_moved = false;
        for i in 0..200 {
            let key = format!("key:{i}");
            let slot = key_slot(key.as_bytes());
            let owner = topo.slot_map().owner(slot);
            match topo.route([key.as_bytes()]) {
                Ok(()) => {
                    assert_eq!(owner, ShardId::new(1));
                    saw_local = true;
                }
                Err(Redirect::Moved { slot: s, addr }) => {
                    assert_eq!(s, slot);
                    assert_eq!(Some(addr), topo.peer(owner).map(|p| p.peer.addr));
                    saw_moved = true;
                }
                Err(other) => panic!("one key of a static cluster: {other:?}"),
            }
        }
        assert!(saw_local && saw_moved);
        assert_eq!(
            topo.route([b"{user}a".as_slice(), b"{user}b".as_slice()])
                .map_err(|e| matches!(e, Redirect::CrossSlot)),
            topo.route([b"{user}a".as_slice()])
                .map_err(|e| matches!(e, Redirect::CrossSlot))
        );
        assert_eq!(
            topo.route([b"a".as_slice(), b"b".as_slice()]),
            Err(Redirect::CrossSlot)
        );
    }

    #[test]
    fn a_migrating_slot_serves_present_keys_asks_for_missing_ones_and_imports_after_asking() {
        use crate::cluster::config::{Join, NodeEntry, Op};
        let entry = |id: u64, port: u16| NodeEntry {
            id,
            addr: format!("127.0.0.1:{port}"),
            bus_port: u32::from(port) + 10_000,
            ..NodeEntry::default()
        };
        let mut cfg = ClusterConfig::bootstrap(entry(10, 7000));
        cfg.apply(&Op::Join(Join {
            node: Some(entry(20, 7001)),
            weight: 1,
            replica_of: 0,
        }))
        .expect("joins");
        let addr = "127.0.0.1:7000".parse().expect("addr");
        let source = Topology::from_config(&cfg, 10, addr, 17000);
        let target = Topology::from_config(&cfg, 20, addr, 17001);
        assert!(source.migrating() > 0);
        // A key whose slot is on its way to shard 2.
        let key = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| source.target_map().owner(key_slot(k.as_bytes())) == ShardId::new(2))
            .expect("some key moves");
        let k = key.as_bytes();
        let slot = key_slot(k);
        let to: SocketAddr = "127.0.0.1:7001".parse().expect("addr");
        assert_eq!(source.route_with([k], false, |_| true), Ok(()));
        assert_eq!(
            source.route_with([k], false, |_| false),
            Err(Redirect::Ask { slot, addr: to })
        );
        let other = format!("{{{key}}}x");
        assert_eq!(
            source.route_with([k, other.as_bytes()], false, |x| x == k),
            Err(Redirect::TryAgain)
        );
        // The target serves the slot only after ASKING; before, it points at the owner.
        assert_eq!(target.route_with([k], true, |_| false), Ok(()));
        assert_eq!(
            target.route_with([k], false, |_| true),
            Err(Redirect::Moved { slot, addr })
        );
        // A node without a slot map yet says the cluster is down.
        let joining = Topology::from_config(&ClusterConfig::default(), 30, addr, 1);
        assert_eq!(
            joining.route_with([k], false, |_| true),
            Err(Redirect::Down)
        );
        assert_eq!(joining.route(std::iter::empty()), Ok(()));
    }

    #[test]
    fn epochs_are_unique_and_the_current_one_is_the_highest() {
        let topo = Topology::new(&three(), ShardId::new(3)).expect("valid");
        let epochs: Vec<u64> = topo.peers().iter().map(|p| p.epoch).collect();
        assert_eq!(epochs, [1, 2, 3]);
        assert_eq!(topo.current_epoch(), 3);
        assert_eq!(topo.myself().peer.id, ShardId::new(3));
    }
}
