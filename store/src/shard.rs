//! One shard: a slab of entries, a hash index over it, an LRU list and an expiring index,
//! all owned by the shard and guarded by its one lock.
//!
//! Layout (per shard):
//! - `slab`: entries at stable `u32` positions ([`slab`]).
//! - `table`: a SwissTable of `u32` slab positions, hashed by the upper 30 bits of the key's
//!   hash, which each entry keeps in its `tag` (growth rehashes from there, never from the
//!   key). A lookup's control-byte match leads to the entry, whose tag and key it compares.
//! - `lru`: an intrusive doubly linked LRU list through the entries (`prev`/`next`
//!   positions), most recent at the head: exact LRU order per shard for `allkeys-lru`, kept
//!   only under that policy ([`lru_list`]).
//! - `tiny`: under `allkeys-tinylfu` only, the W-TinyLFU window, probation and protected
//!   lists (through the same links as the LRU list, never kept at the same time) and the
//!   shard's frequency sketch ([`tiny_lfu`]).
//! - `expiring`: the positions of entries with an expiry (Redis's `expires` dict), each entry
//!   knowing its place in it, for O(1) add/remove, counting and sampling; each position
//!   comes with a lower bound of the entry's expiry second, for the sweep.

pub(crate) mod lru_list;
mod removal;
pub(crate) mod slab;
pub(crate) mod tiny_lfu;

use std::borrow::Borrow;
use std::num::NonZeroU32;
use std::sync::Arc;

use hashbrown::{HashMap, HashTable};
use rand::rngs::StdRng;
use rand::Rng;

use crate::expiry::{ExpiringSlot, NO_EXPIRY};
use crate::memory::Usage;
use crate::stats::{Access, LfuConfig, ShardStats, SketchGate, Tracking};
use lru_list::LruList;
pub(crate) use removal::Removals;
use slab::{Slab, NIL};
use tiny_lfu::{Segment, TinyLfu};

/// Spreads the 32 stored hash bits over a 64-bit table hash (Knuth's multiplicative
/// hashing), so both the table's bucket bits (low) and control-byte bits (high) vary.
const TABLE_HASH_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// Low bits of an entry's `tag` that hold its W-TinyLFU segment instead of hash bits.
const SEGMENT_BITS: u32 = 0b11;

/// A bit of every entry's `tag` that is always set, so a tag is never zero: the slab's
/// vacant slots use that niche for their discriminant, which saves 8 bytes per slot.
const TAG_SET_BIT: u32 = 0b100;

/// The low bits of a tag that are not hash bits.
const TAG_LOW_BITS: u32 = SEGMENT_BITS | TAG_SET_BIT;

/// Low bits of an entry's `weight_stamp` that hold its weight; the 8 above them hold its
/// W-TinyLFU segment stamp (`TinyLfu::stays_put`).
const WEIGHT_BITS: u32 = 24;

/// The weight bits of `weight_stamp`.
const WEIGHT_MASK: u32 = (1 << WEIGHT_BITS) - 1;

/// An entry's weight bits when the weight does not fit in them (2^24 − 1 bytes, about 16 MiB, or more; see
/// `Shard::heavy`).
const HEAVY: u32 = WEIGHT_MASK;

/// The upper half of a key hash with its three lowest bits cleared (the entry's tag uses
/// them); the lower half picks the shard.
pub(crate) fn hash32(hash: u64) -> u32 {
    ((hash >> 32) as u32) & !TAG_LOW_BITS
}

/// The table's hash of a stored [`hash32`]. Its three low bits are always zero, and a
/// multiplication keeps trailing zeros, so they are shifted out first: otherwise only one
/// bucket in eight would start a probe (the table picks buckets by the low bits).
fn table_hash(hash32: u32) -> u64 {
    u64::from(hash32 >> TAG_LOW_BITS.count_ones()).wrapping_mul(TABLE_HASH_MULTIPLIER)
}

/// The table hash of the entry at `pos` (0 for a vacant position, which the table never
/// holds).
fn stored_hash<K, V>(slab: &Slab<Node<K, V>>, pos: u32) -> u64 {
    table_hash(slab.get(pos).map_or(0, Node::hash32))
}

/// A stored entry with its bookkeeping: 32 bytes besides the key and value.
///
/// The fields keep their declared order (`repr(C)`) so that the ones a list move writes in
/// its two neighbours, `tag`, `prev` and `next`, open the slot: one cache line of a
/// neighbour then holds all three. In the compiler's order they followed the key and value
/// and straddled a line boundary in one slot in four (`docs/benchmarks.md`).
#[repr(C)]
pub(crate) struct Node<K, V> {
    /// [`hash32`] of the key, with [`TAG_SET_BIT`] and the W-TinyLFU segment in the low bits.
    tag: NonZeroU32,
    /// LRU neighbours (towards the head / towards the tail), or `NIL`.
    prev: u32,
    next: u32,
    /// Place in `Shard::expiring`, or `NIL` when the entry has no expiry.
    expiring_pos: u32,
    /// Low [`WEIGHT_BITS`]: weigher's number plus the per-entry overhead, as last computed,
    /// or [`HEAVY`] when it does not fit (the shard's `heavy` map holds it then). High 8
    /// bits: the W-TinyLFU segment stamp.
    weight_stamp: u32,
    pub(crate) access: Access,
    /// Stored expiry ([`crate::expiry::encode`]).
    pub(crate) expire_at: u64,
    pub(crate) key: K,
    pub(crate) value: V,
}

impl<K, V> Node<K, V> {
    /// An entry not yet stored: [`Shard::insert`] sets its weight and access record.
    pub(crate) fn new(key: K, value: V, hash: u64, expire_at: u64) -> Self {
        Self {
            key,
            value,
            expire_at,
            weight_stamp: 0,
            access: Access::new(0, false),
            prev: NIL,
            next: NIL,
            expiring_pos: NIL,
            tag: tag(hash32(hash), Segment::Window),
        }
    }

    /// The key's [`hash32`].
    pub(crate) fn hash32(&self) -> u32 {
        self.tag.get() & !TAG_LOW_BITS
    }

    /// The W-TinyLFU segment (meaningful only under `allkeys-tinylfu`).
    pub(crate) fn segment(&self) -> Segment {
        Segment::from_bits(self.tag.get() & SEGMENT_BITS)
    }

    pub(crate) fn set_segment(&mut self, segment: Segment) {
        self.tag = tag(self.hash32(), segment);
    }

    /// The stamp `TinyLfu` gave the entry when it last linked it at a segment's head.
    pub(crate) fn stamp(&self) -> u8 {
        (self.weight_stamp >> WEIGHT_BITS) as u8
    }

    pub(crate) fn set_stamp(&mut self, stamp: u8) {
        self.weight_stamp = (self.weight_stamp & WEIGHT_MASK) | (u32::from(stamp) << WEIGHT_BITS);
    }

    fn weight_bits(&self) -> u32 {
        self.weight_stamp & WEIGHT_MASK
    }

    fn set_weight_bits(&mut self, bits: u32) {
        self.weight_stamp = (self.weight_stamp & !WEIGHT_MASK) | (bits & WEIGHT_MASK);
    }
}

fn tag(hash32: u32, segment: Segment) -> NonZeroU32 {
    // Never zero: TAG_SET_BIT is set.
    NonZeroU32::new(hash32 | TAG_SET_BIT | segment.bits()).unwrap_or(NonZeroU32::MIN)
}

/// A shard's state. Everything here is guarded by the shard's lock (`Inner::shards[i]`);
/// `usage` and `stats` are shared atomics this shard writes while holding it.
pub(crate) struct Shard<K, V> {
    slab: Slab<Node<K, V>>,
    table: HashTable<u32>,
    /// The LRU order, kept while the policy evicts from it.
    lru: LruList,
    /// Whether accesses count in the entries' LFU counters (an LFU policy is in force).
    count_frequency: bool,
    /// The W-TinyLFU segments and sketch, kept while `allkeys-tinylfu` is in force.
    tiny: Option<TinyLfu>,
    /// Entries this shard is meant to hold (the cache's entry bound over its shards), if
    /// the cache has an entry bound: sizes the W-TinyLFU sketch and segments.
    entry_capacity: Option<u32>,
    /// The entries that have an expiry, in no particular order: their positions, each
    /// with a lower bound of its expiry second.
    expiring: Vec<ExpiringSlot>,
    /// Where the active sweep resumes in `expiring`.
    pub(crate) sweep_cursor: usize,
    /// Where the eviction sampler's slab walk resumes (see `policy::walk`).
    walk_cursor: u32,
    /// Sum of this shard's entry weights.
    weight: u64,
    /// Weights of the entries whose weight does not fit their 24-bit field (2^24 − 1 bytes or
    /// more), by position: almost always empty.
    heavy: HashMap<u32, u64>,
    /// Reads that found a live entry, and reads that did not. Kept here rather than in
    /// `stats` (read without the lock): a read then writes no cache line besides the
    /// shard's own, which matters when two cores take turns on a shard.
    hits: u64,
    misses: u64,
    /// Randomness for LFU increments and eviction sampling.
    rng: StdRng,
    usage: Arc<Usage>,
    stats: Arc<ShardStats>,
    /// Whether W-TinyLFU accesses are counted in the sketch (shared with the cache).
    sketching: Arc<SketchGate>,
}

impl<K, V> Shard<K, V> {
    pub(crate) fn new(
        usage: Arc<Usage>,
        stats: Arc<ShardStats>,
        rng: StdRng,
        tracking: Tracking,
    ) -> Self {
        Self {
            slab: Slab::new(),
            table: HashTable::new(),
            lru: LruList::new(tracking.lru_list),
            count_frequency: tracking.frequency,
            tiny: tracking.tiny_lfu.then(|| TinyLfu::new(None)),
            entry_capacity: None,
            expiring: Vec::new(),
            sweep_cursor: 0,
            walk_cursor: 0,
            weight: 0,
            heavy: HashMap::new(),
            hits: 0,
            misses: 0,
            rng,
            usage,
            stats,
            sketching: Arc::new(SketchGate::new(true)),
        }
    }

    /// Counts W-TinyLFU accesses in the sketch only while `gate` is open (a new shard
    /// always counts).
    pub(crate) fn share_sketch_gate(&mut self, gate: Arc<SketchGate>) {
        self.sketching = gate;
    }

    /// Bytes of index structures per entry beyond its slab slot: one table slot, one control
    /// byte, one expiring-index slot.
    pub(crate) const INDEX_BYTES_PER_ENTRY: usize =
        std::mem::size_of::<u32>() + 1 + std::mem::size_of::<ExpiringSlot>();

    /// Bytes of one slab position.
    pub(crate) const fn slot_bytes() -> usize {
        Slab::<Node<K, V>>::slot_bytes()
    }

    pub(crate) fn len(&self) -> u32 {
        self.slab.len()
    }

    #[cfg(test)]
    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    /// One past the highest slab position in use or free (SCAN's per-shard bound).
    pub(crate) fn positions(&self) -> u32 {
        self.slab.positions()
    }

    pub(crate) fn expiring_len(&self) -> usize {
        self.expiring.len()
    }

    /// The position held at `i` in the expiring index.
    pub(crate) fn expiring_at(&self, i: usize) -> Option<u32> {
        self.expiring.get(i).map(|slot| slot.pos)
    }

    /// The slot at `i` in the expiring index.
    pub(crate) fn expiring_slot(&self, i: usize) -> Option<ExpiringSlot> {
        self.expiring.get(i).copied()
    }

    /// Makes the bound of the slot at `i` exact again for its entry's expiry `raw`.
    pub(crate) fn refresh_expiring(&mut self, i: usize, raw: u64) {
        if let Some(slot) = self.expiring.get_mut(i) {
            slot.refresh(raw);
        }
    }

    pub(crate) fn stats(&self) -> &ShardStats {
        &self.stats
    }

    pub(crate) fn record_hit(&mut self) {
        self.hits = self.hits.wrapping_add(1);
    }

    /// Whether accesses count in the entries' LFU counters.
    pub(crate) fn counts_frequency(&self) -> bool {
        self.count_frequency
    }

    pub(crate) fn record_miss(&mut self) {
        self.misses = self.misses.wrapping_add(1);
    }

    /// Reads so far that found a live entry, and that did not.
    pub(crate) fn reads(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    pub(crate) fn node(&self, pos: u32) -> Option<&Node<K, V>> {
        self.slab.get(pos)
    }

    pub(crate) fn node_mut(&mut self, pos: u32) -> Option<&mut Node<K, V>> {
        self.slab.get_mut(pos)
    }

    /// The weight of the entry at `pos` (0 for a vacant position).
    pub(crate) fn weight_of(&self, pos: u32) -> u64 {
        match self.node(pos).map(Node::weight_bits) {
            None => 0,
            Some(HEAVY) => self.heavy.get(&pos).copied().unwrap_or(u64::from(HEAVY)),
            Some(w) => u64::from(w),
        }
    }

    /// Stores `weight` for the entry at `pos` and returns the weight it replaces.
    fn store_weight(&mut self, pos: u32, weight: u64) -> u64 {
        let old = self.weight_of(pos);
        let Some(node) = self.slab.get_mut(pos) else {
            return 0;
        };
        match u32::try_from(weight) {
            Ok(w) if w < HEAVY => {
                node.set_weight_bits(w);
                self.heavy.remove(&pos);
            }
            _ => {
                node.set_weight_bits(HEAVY);
                self.heavy.insert(pos, weight);
            }
        }
        old
    }

    /// Which access statistics this shard keeps up to date.
    #[cfg(test)]
    pub(crate) fn tracking(&self) -> Tracking {
        Tracking {
            lru_list: self.lru.is_enabled(),
            frequency: self.count_frequency,
            tiny_lfu: self.tiny.is_some(),
        }
    }

    /// Sets the entries this shard is meant to hold (see `entry_capacity`).
    pub(crate) fn set_entry_capacity(&mut self, capacity: u32) {
        self.entry_capacity = Some(capacity);
        if let Some(tiny) = self.tiny.as_mut() {
            tiny.set_capacity(capacity);
        }
    }

    /// Switches the access statistics kept (for a new policy). Switching between counting
    /// frequency and recording recency resets every entry's access record to `now_millis`
    /// (O(n)). Turning the LRU list or the W-TinyLFU segments on rebuilds them from the
    /// entries' last-access times: O(n log n) in the shard's entries, under the shard's
    /// lock. Turning them off is O(1). (Both thread the same links, so one is dropped before
    /// the other is built.)
    pub(crate) fn set_tracking(&mut self, tracking: Tracking, now_millis: u64) {
        if self.count_frequency != tracking.frequency {
            for (_, node) in self.slab.iter_mut() {
                node.access = Access::new(now_millis, tracking.frequency);
            }
        }
        self.count_frequency = tracking.frequency;
        if !tracking.tiny_lfu {
            self.tiny = None;
        }
        if tracking.tiny_lfu && self.tiny.is_none() {
            self.lru.disable();
            self.tiny = Some(TinyLfu::rebuild(self.entry_capacity, &mut self.slab));
        }
        match (self.lru.is_enabled(), tracking.lru_list) {
            (false, true) => self.lru.rebuild(&mut self.slab),
            (true, false) => self.lru.disable(),
            _ => {}
        }
    }

    /// Whether the LRU list is kept, so [`lru_tail`](Self::lru_tail) is exact.
    pub(crate) fn lru_listed(&self) -> bool {
        self.lru.is_enabled()
    }

    /// Whether the W-TinyLFU segments are kept (`allkeys-tinylfu`, once switched in).
    pub(crate) fn tiny_listed(&self) -> bool {
        self.tiny.is_some()
    }

    /// The least recently used position (`None` when empty or the list is not kept).
    pub(crate) fn lru_tail(&self) -> Option<u32> {
        self.lru.tail()
    }

    /// The next more recently used position after `pos` (only meaningful while the list is
    /// kept).
    pub(crate) fn more_recent(&self, pos: u32) -> Option<u32> {
        self.node(pos).map(|n| n.prev).filter(|&p| p != NIL)
    }

    /// The next position of the eviction sampler's slab walk, cycling over every position
    /// (occupied or not); `None` when the slab has none.
    pub(crate) fn walk_step(&mut self) -> Option<u32> {
        let positions = self.slab.positions();
        if positions == 0 {
            return None;
        }
        if self.walk_cursor >= positions {
            self.walk_cursor = 0;
        }
        let pos = self.walk_cursor;
        self.walk_cursor += 1;
        Some(pos)
    }

    /// Position of `key`, found with its full `hash`.
    pub(crate) fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let h32 = hash32(hash);
        let slab = &self.slab;
        self.table
            .find(table_hash(h32), |&pos| {
                slab.get(pos)
                    .is_some_and(|n| n.hash32() == h32 && n.key.borrow() == key)
            })
            .copied()
    }

    /// Stores a new entry (its key must not be present) of `weight`, written at
    /// `now_millis`, as the most recently used.
    ///
    /// # Errors
    /// Gives the node back when the shard's slab has no position left.
    pub(crate) fn insert(
        &mut self,
        mut node: Node<K, V>,
        weight: u64,
        now_millis: u64,
    ) -> Result<u32, Node<K, V>> {
        let h32 = node.hash32();
        node.access = Access::new(now_millis, self.count_frequency);
        let expiring = node.expire_at != NO_EXPIRY;
        let pos = self.slab.insert(node)?;
        self.store_weight(pos, weight);
        let slab = &self.slab;
        self.table
            .insert_unique(table_hash(h32), pos, |&p| stored_hash(slab, p));
        self.lru.insert(&mut self.slab, pos);
        let len = self.slab.len();
        if let Some(tiny) = self.tiny.as_mut() {
            tiny.insert(&mut self.slab, pos, len, self.sketching.is_open());
        }
        if expiring {
            self.expiring_add(pos);
        }
        self.weight = self.weight.saturating_add(weight);
        self.usage.add(weight, 1);
        self.publish();
        Ok(pos)
    }

    /// Removes the entry at `pos` from every structure and returns it.
    pub(crate) fn remove(&mut self, pos: u32) -> Option<Node<K, V>> {
        let h32 = self.node(pos)?.hash32();
        if let Ok(found) = self.table.find_entry(table_hash(h32), |&p| p == pos) {
            found.remove();
        }
        let weight = self.weight_of(pos);
        if weight >= u64::from(HEAVY) {
            self.heavy.remove(&pos);
        }
        self.lru.remove(&mut self.slab, pos);
        if let Some(tiny) = self.tiny.as_mut() {
            tiny.remove(&mut self.slab, pos);
        }
        self.expiring_remove(pos);
        let node = self.slab.remove(pos)?;
        self.weight = self.weight.saturating_sub(weight);
        self.usage.sub(weight, 1);
        self.publish();
        Some(node)
    }

    /// Removes every entry, releasing the shard's memory, and returns them.
    pub(crate) fn take_all(&mut self) -> Vec<Node<K, V>> {
        let nodes = self.slab.take_all();
        self.table = HashTable::new();
        self.heavy = HashMap::new();
        self.expiring = Vec::new();
        self.lru.clear();
        if let Some(tiny) = self.tiny.as_mut() {
            tiny.clear();
        }
        self.sweep_cursor = 0;
        self.walk_cursor = 0;
        self.usage.sub(self.weight, nodes.len() as u64);
        self.weight = 0;
        self.publish();
        nodes
    }

    /// Records an access: the LFU counter under an LFU policy, else the access time; the LRU
    /// list and the W-TinyLFU segments and sketch only while the policy uses them.
    pub(crate) fn touch(&mut self, pos: u32, now: u64, lfu: LfuConfig) {
        let Some(node) = self.slab.get_mut(pos) else {
            return;
        };
        if self.count_frequency {
            node.access.record_frequency(now, lfu, &mut self.rng);
        } else {
            node.access.record_recency(now);
        }
        self.lru.touch(&mut self.slab, pos);
        let len = self.slab.len();
        if let Some(tiny) = self.tiny.as_mut() {
            tiny.touch(&mut self.slab, pos, len, self.sketching.is_open());
        }
    }

    /// Changes the stored expiry of the entry at `pos` (`NO_EXPIRY` to persist it).
    pub(crate) fn set_expiry(&mut self, pos: u32, raw: u64) {
        let Some(node) = self.slab.get_mut(pos) else {
            return;
        };
        let old = std::mem::replace(&mut node.expire_at, raw);
        let was = old != NO_EXPIRY;
        let is = raw != NO_EXPIRY;
        if was && is && raw < old {
            // Only an earlier expiry can break the slot's lower bound; a renewed TTL leaves
            // the index untouched.
            let i = node.expiring_pos as usize;
            if let Some(slot) = self.expiring.get_mut(i) {
                slot.lower_to(raw);
            }
        }
        if was != is {
            if was {
                self.expiring_remove(pos);
            } else {
                self.expiring_add(pos);
            }
            self.publish();
        }
    }

    /// Replaces the weight of the entry at `pos`, keeping the totals in step.
    pub(crate) fn set_weight(&mut self, pos: u32, weight: u64) {
        if self.node(pos).is_none() {
            return;
        }
        let old = self.store_weight(pos, weight);
        // An overwrite with a same-sized value (the common `SET`) touches no shared atomic.
        if weight > old {
            self.weight = self.weight.saturating_add(weight - old);
            self.usage.add(weight - old, 0);
        } else if weight < old {
            self.weight = self.weight.saturating_sub(old - weight);
            self.usage.sub(old - weight, 0);
        }
    }

    /// A uniformly random slab position (occupied or not), if the slab has any.
    pub(crate) fn random_position(&mut self) -> Option<u32> {
        let positions = self.slab.positions();
        (positions > 0).then(|| self.rng.gen_range(0..positions))
    }

    /// A uniformly random occupied position of the expiring index.
    pub(crate) fn random_expiring(&mut self) -> Option<u32> {
        let n = self.expiring.len();
        if n == 0 {
            return None;
        }
        let i = self.rng.gen_range(0..n);
        self.expiring_at(i)
    }

    fn publish(&self) {
        self.stats
            .publish_sizes(u64::from(self.slab.len()), self.expiring.len() as u64);
    }

    fn expiring_add(&mut self, pos: u32) {
        let Ok(i) = u32::try_from(self.expiring.len()) else {
            return;
        };
        if let Some(node) = self.slab.get_mut(pos) {
            node.expiring_pos = i;
            self.expiring.push(ExpiringSlot::new(pos, node.expire_at));
        }
    }

    fn expiring_remove(&mut self, pos: u32) {
        let Some(node) = self.slab.get_mut(pos) else {
            return;
        };
        let i = std::mem::replace(&mut node.expiring_pos, NIL) as usize;
        if i >= self.expiring.len() {
            return;
        }
        self.expiring.swap_remove(i);
        if let Some(moved) = self.expiring.get(i) {
            if let Some(m) = self.slab.get_mut(moved.pos) {
                m.expiring_pos = i as u32;
            }
        }
    }

    /// Positions from least to most recently used (tests and invariant checks).
    #[cfg(test)]
    pub(crate) fn lru_order(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = self.lru_tail();
        while let Some(pos) = cur {
            out.push(pos);
            cur = self.more_recent(pos);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;

    fn shard() -> (Shard<String, u32>, Arc<Usage>) {
        let usage = Arc::new(Usage::default());
        let s = Shard::new(
            Arc::clone(&usage),
            Arc::new(ShardStats::default()),
            StdRng::seed_from_u64(1),
            Tracking::ALL,
        );
        (s, usage)
    }

    fn put(s: &mut Shard<String, u32>, h: &RandomState, key: &str, v: u32, exp: u64) -> u32 {
        let hash = h.hash_one(key);
        let node = Node::new(key.to_owned(), v, hash, exp);
        s.insert(node, 10, 0).unwrap_or(NIL)
    }

    #[test]
    fn inserted_entries_are_found_by_key_and_counted() {
        let h = RandomState::new();
        let (mut s, usage) = shard();
        let a = put(&mut s, &h, "a", 1, 0);
        let b = put(&mut s, &h, "b", 2, 0);
        assert_eq!(s.find(h.hash_one("a"), "a"), Some(a));
        assert_eq!(s.find(h.hash_one("b"), "b"), Some(b));
        assert_eq!(s.find(h.hash_one("c"), "c"), None);
        assert_eq!((s.len(), s.weight()), (2, 20));
        assert_eq!((usage.len(), usage.weight()), (2, 20));
    }

    #[test]
    fn removal_unlinks_the_entry_everywhere() {
        let h = RandomState::new();
        let (mut s, usage) = shard();
        let a = put(&mut s, &h, "a", 1, 50);
        let b = put(&mut s, &h, "b", 2, 60);
        let c = put(&mut s, &h, "c", 3, 0);
        assert_eq!(s.expiring_len(), 2);
        let node = s.remove(a).map(|n| n.value);
        assert_eq!(node, Some(1));
        assert_eq!(s.find(h.hash_one("a"), "a"), None);
        assert_eq!(s.lru_order(), vec![b, c]);
        assert_eq!(s.expiring_len(), 1);
        assert_eq!(s.expiring_at(0), Some(b));
        assert_eq!((usage.len(), usage.weight()), (2, 20));
        assert!(s.remove(a).is_none());
    }

    #[test]
    fn touching_moves_an_entry_to_the_most_recent_end() {
        let h = RandomState::new();
        let (mut s, _) = shard();
        let a = put(&mut s, &h, "a", 1, 0);
        let b = put(&mut s, &h, "b", 2, 0);
        let c = put(&mut s, &h, "c", 3, 0);
        assert_eq!(s.lru_order(), vec![a, b, c]);
        s.touch(a, 5, LfuConfig::default());
        assert_eq!(s.lru_order(), vec![b, c, a]);
        s.touch(c, 6, LfuConfig::default());
        assert_eq!(s.lru_order(), vec![b, a, c]);
    }

    #[test]
    fn without_the_list_accesses_record_only_the_time() {
        let h = RandomState::new();
        let (mut s, _) = shard();
        s.set_tracking(
            Tracking {
                lru_list: false,
                frequency: false,
                tiny_lfu: false,
            },
            0,
        );
        let a = put(&mut s, &h, "a", 1, 0);
        let b = put(&mut s, &h, "b", 2, 0);
        s.touch(a, 7_000, LfuConfig::default());
        assert_eq!(s.lru_tail(), None);
        assert!(s.lru_order().is_empty());
        assert_eq!(s.node(a).map(|n| n.access.last_second()), Some(7));
        assert!(s.remove(b).is_some());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn turning_the_list_on_orders_it_by_last_access_then_position() {
        let h = RandomState::new();
        let (mut s, _) = shard();
        let off = Tracking {
            lru_list: false,
            frequency: false,
            tiny_lfu: false,
        };
        const LRU: Tracking = Tracking {
            lru_list: true,
            frequency: false,
            tiny_lfu: false,
        };
        s.set_tracking(off, 0);
        let keys = ["a", "b", "c", "d", "e"];
        let pos: Vec<u32> = keys.iter().map(|k| put(&mut s, &h, k, 0, 0)).collect();
        // Last access seconds: a 30, b 10, c 20, d 10, e 0 (never touched).
        for (i, t) in [(0, 30_000), (1, 10_000), (2, 20_000), (3, 10_000)] {
            s.touch(pos[i], t, LfuConfig::default());
        }
        s.set_tracking(LRU, 0);
        assert_eq!(s.tracking(), LRU);
        assert_eq!(s.lru_order(), vec![pos[4], pos[1], pos[3], pos[2], pos[0]]);
        // The rebuilt list is live: accesses, inserts and removals keep it exact.
        s.touch(pos[4], 40_000, LfuConfig::default());
        let f = put(&mut s, &h, "f", 0, 0);
        let _ = s.remove(pos[3]);
        assert_eq!(s.lru_order(), vec![pos[1], pos[2], pos[0], pos[4], f]);
        // Off and on again, with no accesses in between: same order by time.
        s.set_tracking(off, 0);
        s.set_tracking(LRU, 0);
        assert_eq!(s.lru_order(), vec![f, pos[1], pos[2], pos[0], pos[4]]);
    }

    #[test]
    fn expiry_changes_keep_the_expiring_index_exact() {
        let h = RandomState::new();
        let (mut s, _) = shard();
        let a = put(&mut s, &h, "a", 1, 0);
        let b = put(&mut s, &h, "b", 2, 0);
        s.set_expiry(a, 100);
        s.set_expiry(b, 200);
        s.set_expiry(a, 150);
        assert_eq!(s.expiring_len(), 2);
        s.set_expiry(a, 0);
        assert_eq!(s.expiring_len(), 1);
        assert_eq!(s.random_expiring(), Some(b));
        assert_eq!(s.stats().expiring(), 1);
    }

    #[test]
    fn weights_can_change_in_place() {
        let h = RandomState::new();
        let (mut s, usage) = shard();
        let a = put(&mut s, &h, "a", 1, 0);
        s.set_weight(a, 35);
        assert_eq!(s.weight(), 35);
        assert_eq!(usage.weight(), 35);
    }

    #[test]
    fn every_bucket_can_start_a_probe() {
        // Stored hashes have their low tag bits cleared; the table hash must still vary in
        // its low bits, which pick the bucket.
        let low: std::collections::HashSet<u64> = (0..64u64)
            .map(|i| table_hash(hash32(i << 35)) & 7)
            .collect();
        assert_eq!(low.len(), 8);
    }

    #[test]
    fn bookkeeping_is_32_bytes_per_entry() {
        assert_eq!(Shard::<[u8; 16], [u8; 64]>::slot_bytes(), 16 + 64 + 32);
        assert_eq!(Shard::<u64, u64>::slot_bytes(), 8 + 8 + 32);
    }

    #[test]
    fn the_stamp_and_the_weight_share_a_word_without_mixing() {
        let h = RandomState::new();
        let (mut s, usage) = shard();
        let a = put(&mut s, &h, "a", 1, 0);
        for weight in [
            0,
            1,
            u64::from(HEAVY) - 1,
            u64::from(HEAVY),
            1 << 24,
            5 << 30,
            7,
        ] {
            if let Some(n) = s.node_mut(a) {
                n.set_stamp(0xA5);
            }
            s.set_weight(a, weight);
            assert_eq!(s.node(a).map(Node::stamp), Some(0xA5), "weight {weight}");
            assert_eq!((s.weight_of(a), usage.weight()), (weight, weight));
            if let Some(n) = s.node_mut(a) {
                n.set_stamp(0xFF);
            }
            assert_eq!(s.weight_of(a), weight, "weight {weight} after a stamp");
        }
        // Weights of 2^24 − 1 bytes or more go to the side map, and leave it with the entry.
        s.set_weight(a, 20 << 20);
        assert_eq!(s.heavy.len(), 1);
        assert!(s.remove(a).is_some());
        assert!(s.heavy.is_empty());
        assert_eq!(usage.weight(), 0);
    }

    #[test]
    fn a_neighbours_link_fields_lead_its_slot() {
        // A list move writes `prev`/`next` of two neighbours and reads their `tag`: all
        // three in the first 12 bytes of a node, whatever the key and value types.
        type N = Node<Box<[u8]>, String>;
        assert_eq!(std::mem::offset_of!(N, tag), 0);
        assert_eq!(std::mem::offset_of!(N, prev), 4);
        assert_eq!(std::mem::offset_of!(N, next), 8);
        assert_eq!(std::mem::offset_of!(Node<[u8; 16], [u8; 64]>, next), 8);
    }

    #[test]
    fn weights_too_big_for_their_field_are_kept_exactly() {
        let h = RandomState::new();
        let (mut s, usage) = shard();
        let a = put(&mut s, &h, "a", 1, 0);
        let huge = 5 << 30;
        s.set_weight(a, huge);
        assert_eq!(
            (s.weight_of(a), s.weight(), usage.weight()),
            (huge, huge, huge)
        );
        s.set_weight(a, u64::from(u32::MAX));
        assert_eq!(s.weight_of(a), u64::from(u32::MAX));
        s.set_weight(a, 12);
        assert_eq!((s.weight_of(a), usage.weight()), (12, 12));
        assert!(s.heavy.is_empty());
        s.set_weight(a, huge);
        assert!(s.remove(a).is_some());
        assert_eq!((s.weight(), usage.weight()), (0, 0));
        assert!(s.heavy.is_empty());
        // A position reused after a heavy entry left starts light.
        let b = put(&mut s, &h, "b", 2, 0);
        assert_eq!(s.weight_of(b), 10);
    }

    #[test]
    fn the_table_survives_growth_and_churn() {
        let h = RandomState::new();
        let (mut s, _) = shard();
        for i in 0..5_000u32 {
            put(&mut s, &h, &i.to_string(), i, 0);
        }
        for i in (0..5_000u32).filter(|i| i % 3 == 0) {
            let k = i.to_string();
            let pos = s.find(h.hash_one(&k), k.as_str());
            assert!(pos.and_then(|p| s.remove(p)).is_some());
        }
        for i in 0..5_000u32 {
            let k = i.to_string();
            let found = s.find(h.hash_one(&k), k.as_str()).and_then(|p| s.node(p));
            assert_eq!(found.map(|n| n.value), (i % 3 != 0).then_some(i));
        }
        let taken = s.take_all();
        assert_eq!(taken.len(), 5_000 - 1_667);
        assert_eq!((s.len(), s.weight(), s.expiring_len()), (0, 0, 0));
    }
}
