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

use super::ring::{HashRing, RingConfig, RingError};
use super::shard::{ShardId, ShardSet};
use super::slot_map::SlotMap;

/// The domain prefix of a node id's hash input.
const NODE_ID_DOMAIN: &[u8] = b"cachalot-node-id";

/// Added to a client port to name the cluster bus port, as Redis does (nothing listens
/// there yet; `CLUSTER NODES` reports it because its format requires one).
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
    /// The shard id and address.
    pub peer: ClusterPeer,
    /// Its 40-hex-digit node id.
    pub node_id: String,
    /// Its configuration epoch: its 1-based position in id order, unique as Redis requires.
    pub epoch: u64,
}

impl PeerInfo {
    /// The cluster bus port Redis's formats report (client port + 10000, or 0 past 65535).
    pub fn bus_port(&self) -> u16 {
        self.peer
            .addr
            .port()
            .checked_add(CLUSTER_BUS_PORT_OFFSET)
            .unwrap_or(0)
    }
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
}

/// The cluster as one node sees it: every member, which one it is, and the slot map.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Members in shard id order.
    peers: Vec<PeerInfo>,
    /// Index of this node in `peers`.
    me: usize,
    /// Each slot's owner.
    map: SlotMap,
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
        let peers = sorted
            .into_iter()
            .zip(1u64..)
            .map(|(peer, epoch)| PeerInfo {
                node_id: node_id(peer.id),
                peer,
                epoch,
            })
            .collect();
        Ok(Topology { peers, me, map })
    }

    /// Every member, in shard id order.
    pub fn peers(&self) -> &[PeerInfo] {
        &self.peers
    }

    /// This node.
    pub fn myself(&self) -> &PeerInfo {
        &self.peers[self.me]
    }

    /// The slot map.
    pub fn slot_map(&self) -> &SlotMap {
        &self.map
    }

    /// The member with shard id `id`.
    pub fn peer(&self, id: ShardId) -> Option<&PeerInfo> {
        self.peers
            .binary_search_by_key(&id, |p| p.peer.id)
            .ok()
            .and_then(|i| self.peers.get(i))
    }

    /// The highest configuration epoch (`cluster_current_epoch`).
    pub fn current_epoch(&self) -> u64 {
        self.peers.iter().map(|p| p.epoch).max().unwrap_or(0)
    }

    /// Checks that `keys` all hash to one slot and that this node owns it, as Redis does
    /// before running a keyed command: `CROSSSLOT` first, then `MOVED`. No keys: served here.
    ///
    /// # Errors
    /// The [`Redirect`] to reply with.
    pub fn route<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> Result<(), Redirect> {
        let mut slot = None;
        for key in keys {
            let s = key_slot(key);
            match slot {
                None => slot = Some(s),
                Some(first) if first != s => return Err(Redirect::CrossSlot),
                Some(_) => {}
            }
        }
        let Some(slot) = slot else { return Ok(()) };
        let owner = self.map.owner(slot);
        if owner == self.myself().peer.id {
            return Ok(());
        }
        match self.peer(owner) {
            Some(p) => Err(Redirect::Moved {
                slot,
                addr: p.peer.addr,
            }),
            // The map only names members; serving here is the only answer left.
            None => Ok(()),
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
                Err(Redirect::CrossSlot) => panic!("one key cannot cross slots"),
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
    fn epochs_are_unique_and_the_current_one_is_the_highest() {
        let topo = Topology::new(&three(), ShardId::new(3)).expect("valid");
        let epochs: Vec<u64> = topo.peers().iter().map(|p| p.epoch).collect();
        assert_eq!(epochs, [1, 2, 3]);
        assert_eq!(topo.current_epoch(), 3);
        assert_eq!(topo.myself().peer.id, ShardId::new(3));
    }
}
