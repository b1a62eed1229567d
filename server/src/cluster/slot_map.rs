//! The slot map: which shard owns each of the 16384 slots, and what changes between two.

use cachalot_protocol::{SlotId, SLOT_COUNT};

use super::ring::all_slots;
use super::shard::ShardId;

/// Which shard owns each slot. Built by [`HashRing::slot_map`](super::ring::HashRing::slot_map)
/// (every slot has exactly one owner, and every owner is a member).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SlotMap {
    /// The members in id order, including those that own no slot.
    shards: Vec<ShardId>,
    /// `SLOT_COUNT` indexes into `shards`.
    owners: Box<[u16]>,
    /// Slots owned, same order as `shards`.
    counts: Vec<u32>,
}

/// One contiguous run of slots with the same owner, as `CLUSTER SLOTS` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotRange {
    /// The first slot.
    pub start: SlotId,
    /// The last slot (inclusive, as Redis reports ranges).
    pub end: SlotId,
    /// Their owner.
    pub owner: ShardId,
}

/// A slot whose owner differs between two maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotMove {
    /// The slot.
    pub slot: SlotId,
    /// Its owner in the old map.
    pub from: ShardId,
    /// Its owner in the new map.
    pub to: ShardId,
}

impl SlotMap {
    /// A map from `shards` (in id order) and one owner index per slot. The ring is the
    /// only caller and upholds both.
    pub(crate) fn from_owners(shards: Vec<ShardId>, owners: Vec<u16>) -> SlotMap {
        let mut counts = vec![0u32; shards.len()];
        for &o in &owners {
            if let Some(c) = counts.get_mut(usize::from(o)) {
                *c += 1;
            }
        }
        SlotMap {
            shards,
            owners: owners.into_boxed_slice(),
            counts,
        }
    }

    /// The shard that owns `slot`.
    pub fn owner(&self, slot: SlotId) -> ShardId {
        let index = self.owners.get(usize::from(slot.get())).copied();
        self.shards[usize::from(index.unwrap_or(0))]
    }

    /// The members, in id order (including any that own no slot).
    pub fn shards(&self) -> &[ShardId] {
        &self.shards
    }

    /// How many slots `shard` owns (0 if it is not a member).
    pub fn slot_count(&self, shard: ShardId) -> u32 {
        self.shards
            .binary_search(&shard)
            .ok()
            .and_then(|i| self.counts.get(i).copied())
            .unwrap_or(0)
    }

    /// Every member with its slot count, in id order.
    pub fn slot_counts(&self) -> impl ExactSizeIterator<Item = (ShardId, u32)> + '_ {
        self.shards.iter().copied().zip(self.counts.iter().copied())
    }

    /// The slots `shard` owns, in slot order.
    pub fn slots_of(&self, shard: ShardId) -> impl Iterator<Item = SlotId> + '_ {
        all_slots().filter(move |&s| self.owner(s) == shard)
    }

    /// The map as runs of consecutive slots with one owner, in slot order.
    pub fn ranges(&self) -> Vec<SlotRange> {
        let mut ranges: Vec<SlotRange> = Vec::new();
        for slot in all_slots() {
            let owner = self.owner(slot);
            match ranges.last_mut() {
                Some(r) if r.owner == owner => r.end = slot,
                _ => ranges.push(SlotRange {
                    start: slot,
                    end: slot,
                    owner,
                }),
            }
        }
        ranges
    }

    /// The slots whose owner differs in `next`, in slot order: the migrations that take
    /// the cluster from this map to `next`.
    pub fn moves_to(&self, next: &SlotMap) -> Vec<SlotMove> {
        all_slots()
            .filter_map(|slot| {
                let (from, to) = (self.owner(slot), next.owner(slot));
                (from != to).then_some(SlotMove { slot, from, to })
            })
            .collect()
    }
}

/// The number of slots, as a `usize` for sizing.
const _: () = assert!(SLOT_COUNT as usize == 16384);
