//! The consistent-hash ring with bounded loads: the slot map as a pure function of the
//! shard set.
//!
//! # The wire contract
//! Every node computes the slot map itself, so everything below is part of the cluster's
//! contract: change any of it and nodes of two versions disagree on owners.
//!
//! - **Hash**: XXH3-64 (`xxh3_64`, seed 0) over the byte string below. Integers are
//!   big-endian.
//! - **Virtual nodes**: a shard of weight `w` places `w × vnodes_per_weight` virtual
//!   nodes, with replica indexes `0..w × vnodes_per_weight`. Replica `r` of shard `id`
//!   sits at `xxh3_64(b"cachalot-vnode" ‖ id as u64 ‖ r as u32)` (26 bytes). Raising a
//!   weight only adds virtual nodes; the existing ones stay where they are.
//! - **Slots**: slot `s` sits at `s × 2⁵⁰`: the 16384 slots evenly spaced around the
//!   ring, in order. (Hashed slot positions were measured too, below; spacing them evenly
//!   takes away the slot-count noise of random positions, about 1/√(S/n), so fewer shards
//!   reach their bound, and keeps a shard's slots in runs, so `CLUSTER SLOTS` lists fewer
//!   ranges.)
//! - **Clockwise**: the first virtual node clockwise of position `p` is the one with the
//!   smallest position `≥ p`, or the smallest position overall if none is `≥ p`. Virtual
//!   nodes at equal positions are ordered by shard id.
//! - **Capacity** (bounded loads): with `S = 16384` slots, total weight `W` and
//!   `ε = epsilon_ppm / 10⁶`, shard `i` of weight `wᵢ` has the share `S·wᵢ/W` and may own
//!   at most `max(⌊(1+ε)·S·wᵢ/W⌋, ⌈S·wᵢ/W⌉)` slots, computed exactly in integers. The
//!   `⌈share⌉` floor only matters when `ε·share < 1` and keeps the capacities summing to
//!   at least `S`.
//! - **Assignment** (consistent hashing with bounded loads, Mirrokni, Thorup and
//!   Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018): slots are taken in
//!   slot-number order; each goes to the first virtual node clockwise of its position whose
//!   shard still has room.
//!
//! # Movement
//! A join or leave moves the joiner's or leaver's slots, and also some slots between two
//! other shards: every capacity changes with the mean, so the excess a full shard sheds
//! clockwise changes too. Over 2..=64 shards (`docs/benchmarks.md`, "Cluster placement")
//! those collateral moves were at most 65 slots, and a join or leave moved 1.04× the ideal
//! `16384/(n+1)` on average, 1.11× at worst averaged per n, 1.21× at worst for one id set
//! (with hashed slot positions: 84 slots, 1.07×, 1.17×, 1.30×). Assignment in ring-position
//! order, nearest-first, or natural owners before overflow measured the same within noise;
//! slot-number order is the simplest and fastest.
//!
//! Defaults: 1024 virtual nodes per unit of weight, ε = 0.05.

use cachalot_protocol::{SlotId, SLOT_COUNT};
use xxhash_rust::xxh3::xxh3_64;

use super::shard::{ShardId, ShardSet};
use super::slot_map::SlotMap;

/// Virtual nodes per unit of weight by default. The ring's own imbalance (a shard's arcs
/// vary by about 1/√V) is what the load bound has to correct, and every join or leave
/// reshuffles part of that correction. With 128 a join moved 1.21× the ideal on average;
/// with 1024, 1.04× (2048 and 4096: no better), measured with evenly spaced slots
/// (`docs/benchmarks.md`, "Cluster placement"), for a map built in a few ms at 64 shards, on
/// membership changes only.
pub const DEFAULT_VNODES_PER_WEIGHT: u32 = 1024;

/// The most virtual nodes per unit of weight: past this the ring's own balance no longer
/// improves measurably while its build time keeps growing.
pub const MAX_VNODES_PER_WEIGHT: u32 = 4096;

/// The most virtual nodes one ring may hold (16 bytes each, so 32 MiB and a sort of two
/// million entries at most): a total weight of 2048 at the default virtual node count.
pub const MAX_VNODES: u64 = 1 << 21;

/// ε by default, in millionths: no shard owns more than 1.05 times its weighted share.
pub const DEFAULT_EPSILON_PPM: u32 = 50_000;

/// The largest ε, in millionths (ε = 1: up to twice the share).
pub const MAX_EPSILON_PPM: u32 = 1_000_000;

/// The domain prefix of a virtual node's encoding.
const VNODE_DOMAIN: &[u8] = b"cachalot-vnode";

/// One millionth, the unit of `epsilon_ppm`.
const PPM: u128 = 1_000_000;

/// Why a shard set or a ring configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// There are no shards, so no slot has an owner.
    #[error("the cluster has no shards")]
    NoShards,
    /// A shard was given weight 0.
    #[error("shard {0} has weight 0")]
    ZeroWeight(ShardId),
    /// A shard's weight is above the limit.
    #[error("shard {shard} has weight {weight}, above the maximum {max}")]
    WeightTooLarge {
        /// The shard.
        shard: ShardId,
        /// Its weight.
        weight: u32,
        /// The limit.
        max: u32,
    },
    /// The same shard id was given twice.
    #[error("shard {0} is listed twice")]
    DuplicateShard(ShardId),
    /// More shards than the limit.
    #[error("more than {max} shards")]
    TooManyShards {
        /// The limit.
        max: usize,
    },
    /// The shards would place more virtual nodes than the limit.
    #[error("{vnodes} virtual nodes, above the maximum {max}")]
    TooManyVnodes {
        /// How many the shards would place.
        vnodes: u64,
        /// The limit.
        max: u64,
    },
    /// `vnodes_per_weight` is outside `1..=MAX_VNODES_PER_WEIGHT`.
    #[error("vnodes per weight {0} is outside 1..={max}", max = MAX_VNODES_PER_WEIGHT)]
    VnodesPerWeight(u32),
    /// `epsilon_ppm` is above `MAX_EPSILON_PPM`.
    #[error("epsilon {0} ppm is above {max} ppm", max = MAX_EPSILON_PPM)]
    Epsilon(u32),
}

/// How the ring is built: virtual nodes per unit of weight and the load bound ε. Every
/// node of a cluster must use the same configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RingConfig {
    vnodes_per_weight: u32,
    epsilon_ppm: u32,
}

impl Default for RingConfig {
    fn default() -> RingConfig {
        RingConfig {
            vnodes_per_weight: DEFAULT_VNODES_PER_WEIGHT,
            epsilon_ppm: DEFAULT_EPSILON_PPM,
        }
    }
}

impl RingConfig {
    /// A configuration with `vnodes_per_weight` virtual nodes per unit of weight and
    /// ε = `epsilon_ppm` / 10⁶.
    ///
    /// # Errors
    /// [`RingError::VnodesPerWeight`] outside `1..=MAX_VNODES_PER_WEIGHT`,
    /// [`RingError::Epsilon`] above [`MAX_EPSILON_PPM`].
    pub fn new(vnodes_per_weight: u32, epsilon_ppm: u32) -> Result<RingConfig, RingError> {
        if !(1..=MAX_VNODES_PER_WEIGHT).contains(&vnodes_per_weight) {
            return Err(RingError::VnodesPerWeight(vnodes_per_weight));
        }
        if epsilon_ppm > MAX_EPSILON_PPM {
            return Err(RingError::Epsilon(epsilon_ppm));
        }
        Ok(RingConfig {
            vnodes_per_weight,
            epsilon_ppm,
        })
    }

    /// Virtual nodes per unit of weight.
    pub fn vnodes_per_weight(&self) -> u32 {
        self.vnodes_per_weight
    }

    /// ε in millionths.
    pub fn epsilon_ppm(&self) -> u32 {
        self.epsilon_ppm
    }
}

/// The ring position of replica `replica` of shard `shard` (see the module docs).
pub fn vnode_position(shard: ShardId, replica: u32) -> u64 {
    let mut buf = [0u8; VNODE_DOMAIN.len() + 8 + 4];
    let (domain, rest) = buf.split_at_mut(VNODE_DOMAIN.len());
    domain.copy_from_slice(VNODE_DOMAIN);
    let (id, index) = rest.split_at_mut(8);
    id.copy_from_slice(&shard.get().to_be_bytes());
    index.copy_from_slice(&replica.to_be_bytes());
    xxh3_64(&buf)
}

/// The ring position of slot `slot` (see the module docs).
pub fn slot_position(slot: SlotId) -> u64 {
    u64::from(slot.get()) << SLOT_SPACING_BITS
}

/// `log2(2⁶⁴ / 16384)`: slots are this many bits apart on the ring.
const SLOT_SPACING_BITS: u32 = u64::BITS - SLOT_COUNT.trailing_zeros();

/// All slots, in slot-number order.
pub(crate) fn all_slots() -> impl Iterator<Item = SlotId> {
    (0..SLOT_COUNT).filter_map(SlotId::new)
}

/// One virtual node: where it sits and whose it is. Ordered by position, then by shard
/// index, which is id order: the contract's tie-break (two replicas of one shard at one
/// position are interchangeable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Vnode {
    position: u64,
    /// The shard's index in the set's id order.
    index: u16,
}

/// A built ring: the shards' virtual nodes in clockwise order and each shard's capacity.
#[derive(Clone, Debug)]
pub struct HashRing {
    /// The members in id order; `Vnode::index` and `capacities` index into this.
    shards: Vec<ShardId>,
    /// Sorted clockwise; every shard has at least one.
    vnodes: Vec<Vnode>,
    /// Each shard's most slots, same order as `shards`; they sum to at least `SLOT_COUNT`.
    capacities: Vec<u32>,
}

impl HashRing {
    /// Places the virtual nodes of `shards` and computes their capacities.
    ///
    /// # Errors
    /// [`RingError::NoShards`] for an empty set, [`RingError::TooManyVnodes`] past
    /// [`MAX_VNODES`].
    pub fn new(shards: &ShardSet, config: RingConfig) -> Result<HashRing, RingError> {
        if shards.is_empty() {
            return Err(RingError::NoShards);
        }
        let per_weight = u64::from(config.vnodes_per_weight);
        let vnodes = shards.total_weight().saturating_mul(per_weight);
        if vnodes > MAX_VNODES {
            return Err(RingError::TooManyVnodes {
                vnodes,
                max: MAX_VNODES,
            });
        }
        let mut ring = Vec::with_capacity(usize::try_from(vnodes).unwrap_or(0));
        for (index, shard) in shards.iter().enumerate() {
            // MAX_SHARDS keeps every index within u16.
            let index = u16::try_from(index).map_err(|_| RingError::TooManyShards {
                max: super::shard::MAX_SHARDS,
            })?;
            let count = shard.weight.saturating_mul(config.vnodes_per_weight);
            ring.extend((0..count).map(|replica| Vnode {
                position: vnode_position(shard.id, replica),
                index,
            }));
        }
        ring.sort_unstable();
        let total = u128::from(shards.total_weight());
        let capacities = shards
            .iter()
            .map(|s| capacity(u128::from(s.weight), total, config.epsilon_ppm))
            .collect();
        Ok(HashRing {
            shards: shards.iter().map(|s| s.id).collect(),
            vnodes: ring,
            capacities,
        })
    }

    /// The most slots `shard` may own, or `None` if it is not a member.
    pub fn capacity(&self, shard: ShardId) -> Option<u32> {
        let i = self.shards.binary_search(&shard).ok()?;
        self.capacities.get(i).copied()
    }

    /// The shard of the first virtual node clockwise of `slot`'s position: its owner
    /// were there no load bound.
    pub fn natural_owner(&self, slot: SlotId) -> ShardId {
        let first = self.first_clockwise(slot_position(slot));
        let index = self.vnodes.get(first).map_or(0, |v| v.index);
        self.shards[usize::from(index)]
    }

    /// The index of the first virtual node clockwise of `position`.
    fn first_clockwise(&self, position: u64) -> usize {
        let i = self.vnodes.partition_point(|v| v.position < position);
        if i == self.vnodes.len() {
            0
        } else {
            i
        }
    }

    /// The slot map: every slot assigned, in slot-number order, to the first virtual node
    /// clockwise of it whose shard has room.
    pub fn slot_map(&self) -> SlotMap {
        let mut free = FreeVnodes::new(self);
        let mut owners = vec![0u16; usize::from(SLOT_COUNT)];
        let mut load = vec![0u32; self.shards.len()];
        for slot in all_slots() {
            // The capacities sum to at least SLOT_COUNT, so while a slot is unassigned some
            // shard has room, and every shard has a virtual node.
            let at = free
                .next_open(self.first_clockwise(slot_position(slot)))
                .expect("invariant: a shard has room while a slot is unassigned");
            let owner = self.vnodes[at].index;
            owners[usize::from(slot.get())] = owner;
            let i = usize::from(owner);
            load[i] += 1;
            if load[i] >= self.capacities[i] {
                free.close_shard(owner);
            }
        }
        SlotMap::from_owners(self.shards.clone(), owners)
    }
}

/// `max(⌊(1+ε)·S·w/W⌋, ⌈S·w/W⌉)` in exact integer arithmetic.
fn capacity(weight: u128, total_weight: u128, epsilon_ppm: u32) -> u32 {
    let slots = u128::from(SLOT_COUNT);
    let bounded = (PPM + u128::from(epsilon_ppm)) * slots * weight / (PPM * total_weight);
    let share_ceil = (slots * weight).div_ceil(total_weight);
    // Both are at most 2·SLOT_COUNT, since ε ≤ 1 and w ≤ W.
    u32::try_from(bounded.max(share_ceil)).unwrap_or(u32::MAX)
}

/// The virtual nodes whose shard still has room, as "next open index at or after i"
/// pointers with path halving (a union-find that only ever merges forward).
struct FreeVnodes {
    /// `next[i] == i` while vnode `i`'s shard has room; otherwise a later index to try.
    /// `next[len]` stands for "wrap to 0".
    next: Vec<u32>,
    /// Each shard's vnode indexes.
    by_shard: Vec<Vec<u32>>,
}

impl FreeVnodes {
    fn new(ring: &HashRing) -> FreeVnodes {
        let len = ring.vnodes.len();
        let mut by_shard = vec![Vec::new(); ring.shards.len()];
        for (i, v) in ring.vnodes.iter().enumerate() {
            by_shard[usize::from(v.index)].push(i as u32);
        }
        FreeVnodes {
            next: (0..=len as u32).collect(),
            by_shard,
        }
    }

    fn close_shard(&mut self, shard: u16) {
        for &i in &self.by_shard[usize::from(shard)] {
            self.next[i as usize] = i + 1;
        }
    }

    /// The first open vnode at or after `start`, wrapping around once; `None` if every
    /// shard is full.
    fn next_open(&mut self, start: usize) -> Option<usize> {
        let len = self.next.len() - 1;
        [start, 0]
            .into_iter()
            .map(|i| self.find(i))
            .find(|&i| i < len)
    }

    fn find(&mut self, mut i: usize) -> usize {
        let len = self.next.len() - 1;
        while i < len && self.next[i] as usize != i {
            let next = self.next[i] as usize;
            let skip = self.next.get(next).copied().unwrap_or(len as u32);
            self.next[i] = skip;
            i = next;
        }
        i
    }
}

#[cfg(test)]
mod tests;
