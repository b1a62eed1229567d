//! The shard's W-TinyLFU state under `allkeys-tinylfu`: an admission window, a segmented
//! main region and a frequency sketch.
//!
//! The structure is Caffeine's W-TinyLFU (after Einziger, Friedman & Manes, "TinyLFU: A
//! Highly Efficient Cache Admission Policy"); the code is ours. New entries enter a small
//! LRU *window* (1% of the entries). The *main* region is a segmented LRU: entries leaving
//! the window enter its *probation* segment, and a hit in probation promotes an entry to the
//! *protected* segment (85% of the main region), whose overflow is demoted back to
//! probation. When room is needed, the window's oldest entry competes with the least
//! frequent of probation's oldest few by estimated frequency ([`FrequencySketch`]); the
//! loser is evicted (`policy::tiny_lfu`).
//!
//! The three segments are intrusive LRU lists through the same `prev`/`next` links as the
//! shard's `allkeys-lru` list, which is never kept at the same time; each entry's segment is
//! kept in two bits of its tag (`Node::segment`).

use super::lru_list::LruList;
use super::slab::{Slab, NIL};
use super::{Node, Shard};
use crate::stats::FrequencySketch;

/// The shard's W-TinyLFU view, for `policy::tiny_lfu`.
impl<K, V> Shard<K, V> {
    /// Entries in a W-TinyLFU segment (0 when the segments are not kept).
    pub(crate) fn segment_len(&self, segment: Segment) -> u32 {
        self.tiny.as_ref().map_or(0, |t| t.len(segment))
    }

    /// The least recently used position of a W-TinyLFU segment; walk towards the head with
    /// [`more_recent`](Self::more_recent).
    pub(crate) fn segment_tail(&self, segment: Segment) -> Option<u32> {
        self.tiny.as_ref().and_then(|t| t.tail(segment))
    }

    /// The W-TinyLFU window's target size for this shard (0 when not kept).
    pub(crate) fn window_max(&self) -> u32 {
        let len = self.len();
        self.tiny.as_ref().map_or(0, |t| t.window_max(len))
    }

    /// The sketch's estimate of how often the key at `pos` was seen recently (0 when the
    /// sketch is not kept), as of the last [`flush_sketch`](Self::flush_sketch).
    pub(crate) fn sketch_frequency(&self, pos: u32) -> u8 {
        match (self.tiny.as_ref(), self.node(pos)) {
            (Some(t), Some(n)) => t.frequency(n.hash32()),
            _ => 0,
        }
    }

    /// Counts the entry at `pos` in the sketch once more, without moving it (tests).
    #[cfg(test)]
    pub(crate) fn count_in_sketch(&mut self, pos: u32) {
        if let (Some(t), Some(n)) = (self.tiny.as_mut(), self.slab.get(pos)) {
            t.sketch.record(n.hash32());
        }
    }

    /// Counts the accesses the sketch has buffered, so that [`sketch_frequency`] includes
    /// every access so far. Eviction calls it before comparing frequencies.
    ///
    /// [`sketch_frequency`]: Self::sketch_frequency
    pub(crate) fn flush_sketch(&mut self) {
        if let Some(t) = self.tiny.as_mut() {
            t.sketch.flush();
        }
    }

    /// See [`TinyLfu::drain_window`].
    pub(crate) fn drain_window(&mut self, protect: Option<u32>, max_moves: u32) {
        let len = self.slab.len();
        if let Some(t) = self.tiny.as_mut() {
            t.drain_window(&mut self.slab, len, protect, max_moves);
        }
    }

    /// Moves the entry at `pos` to the head of a W-TinyLFU segment.
    pub(crate) fn move_to_segment(&mut self, pos: u32, segment: Segment) {
        if let Some(t) = self.tiny.as_mut() {
            t.move_to(&mut self.slab, pos, segment);
        }
    }
}

/// Which W-TinyLFU segment an entry is in (two bits of the entry's tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    /// The admission window, where new entries start.
    Window,
    /// The main region's segment for entries seen once since leaving the window.
    Probation,
    /// The main region's segment for entries hit again in probation.
    Protected,
}

impl Segment {
    pub(crate) fn bits(self) -> u32 {
        match self {
            Segment::Window => 0,
            Segment::Probation => 1,
            Segment::Protected => 2,
        }
    }

    pub(crate) fn from_bits(bits: u32) -> Self {
        match bits {
            1 => Segment::Probation,
            2 => Segment::Protected,
            _ => Segment::Window,
        }
    }
}

/// Share of the entries given to the admission window, in percent: Caffeine's starting
/// point, enough to absorb short bursts of recency without diluting the frequency filter.
const WINDOW_PERCENT: u64 = 1;

/// Share of the main region kept for the protected segment, in percent. Caffeine uses 80;
/// with the victim chosen among probation's oldest few (`policy::tiny_lfu`), more protection
/// did better on stationary traces (geometric mean of miss ÷ OPT at 2M requests: 80 gave
/// 1.152, 85 gave 1.150, 90 gave 1.148) but held on to the old hot set longer when it moves
/// (`shifting-hot-set` at 10M requests and 1%: 1.04× moka's misses at 90, 1.01× at 85).
const PROTECTED_PERCENT: u64 = 85;

/// Entries a shard's sketch is sized for when the cache has no entry bound (only a weight
/// bound, or none): small enough to cost 4 KiB, and the sketch grows with the shard.
const DEFAULT_SKETCH_ENTRIES: u32 = 1024;

/// Counts the entries linked at a segment's head, for the stamps that tell how far from
/// the head an entry may have drifted (`TinyLfu::stays_put`).
///
/// A stamp is 8 bits of `links >> shift`. The shift keeps a segment of `len` entries
/// within 64..256 steps (once it is 256 long): a quarter of it is then at most 64 steps,
/// well inside the stamp's 256. It changes only when the length has doubled past 256 steps
/// or halved below 64, since every change misreads the stamps already given.
#[derive(Default)]
struct StampClock {
    links: u32,
    shift: u32,
}

impl StampClock {
    /// Adjusts the step for a segment now `len` long.
    fn fit(&mut self, len: u32) {
        while self.shift < 24 && u64::from(len) >= 256 << self.shift {
            self.shift += 1;
        }
        while self.shift > 0 && u64::from(len) < 64 << self.shift {
            self.shift -= 1;
        }
    }

    /// The stamp an entry linked now gets.
    fn stamp(&self) -> u8 {
        (self.links >> self.shift) as u8
    }
}

/// Segment lists, their lengths and the frequency sketch. Guarded by the shard's lock.
pub(crate) struct TinyLfu {
    window: LruList,
    probation: LruList,
    protected: LruList,
    window_len: u32,
    probation_len: u32,
    protected_len: u32,
    /// The clocks of the window's and protected's entry stamps (see
    /// [`stays_put`](Self::stays_put)).
    window_clock: StampClock,
    protected_clock: StampClock,
    sketch: FrequencySketch,
    /// The shard's entry capacity, when the cache has an entry bound.
    capacity: Option<u32>,
}

impl TinyLfu {
    /// Empty segments and a sketch sized for `capacity` entries (or the default).
    pub(crate) fn new(capacity: Option<u32>) -> Self {
        Self {
            window: LruList::new(true),
            probation: LruList::new(true),
            protected: LruList::new(true),
            window_len: 0,
            probation_len: 0,
            protected_len: 0,
            window_clock: StampClock::default(),
            protected_clock: StampClock::default(),
            sketch: FrequencySketch::new(capacity.unwrap_or(DEFAULT_SKETCH_ENTRIES)),
            capacity,
        }
    }

    /// Segments rebuilt over every entry of `slab` (switching into `allkeys-tinylfu`): all in
    /// probation, ordered by last access time (the oldest at the tail), with an empty sketch.
    /// O(n log n) in the entries, with a temporary 8 bytes per entry.
    pub(crate) fn rebuild<K, V>(capacity: Option<u32>, slab: &mut Slab<Node<K, V>>) -> Self {
        let mut order: Vec<(u32, u32)> = slab
            .iter()
            .map(|(pos, node)| (node.access.last_second(), pos))
            .collect();
        order.sort_unstable();
        let mut state = Self::new(capacity);
        state.sketch.ensure_capacity(slab.len());
        for (_, pos) in order {
            state.link(slab, pos, Segment::Probation);
        }
        state
    }

    /// Sets the shard's entry capacity (the cache's entry bound over its shards).
    pub(crate) fn set_capacity(&mut self, capacity: u32) {
        self.capacity = Some(capacity);
        self.sketch.ensure_capacity(capacity);
    }

    /// Entries in `segment`.
    pub(crate) fn len(&self, segment: Segment) -> u32 {
        match segment {
            Segment::Window => self.window_len,
            Segment::Probation => self.probation_len,
            Segment::Protected => self.protected_len,
        }
    }

    /// The least recently used position of `segment`.
    pub(crate) fn tail(&self, segment: Segment) -> Option<u32> {
        self.list(segment).tail()
    }

    /// The window's target size for a shard of `len` entries: 1% of its capacity (its
    /// current size when that is larger or no entry bound is set), at least one.
    pub(crate) fn window_max(&self, len: u32) -> u32 {
        let share = u64::from(self.sized_for(len)) * WINDOW_PERCENT / 100;
        u32::try_from(share).unwrap_or(u32::MAX).max(1)
    }

    /// The protected segment's target size: [`PROTECTED_PERCENT`] of what the window leaves.
    fn protected_max(&self, len: u32) -> u32 {
        let main = self.sized_for(len).saturating_sub(self.window_max(len));
        u32::try_from(u64::from(main) * PROTECTED_PERCENT / 100).unwrap_or(u32::MAX)
    }

    fn sized_for(&self, len: u32) -> u32 {
        self.capacity.unwrap_or(0).max(len)
    }

    /// The estimated recent accesses of the key with stored hash `hash32`.
    pub(crate) fn frequency(&self, hash32: u32) -> u8 {
        self.sketch.frequency(hash32)
    }

    /// Records a new entry (the shard now holds `len`): counted in the sketch if `count`,
    /// linked at the head of the window.
    pub(crate) fn insert<K, V>(
        &mut self,
        slab: &mut Slab<Node<K, V>>,
        pos: u32,
        len: u32,
        count: bool,
    ) {
        let Some(hash32) = slab.get(pos).map(Node::hash32) else {
            return;
        };
        if count {
            if len > self.sketch.capacity() {
                self.sketch.ensure_capacity(len);
            }
            self.sketch.record(hash32);
        }
        self.link(slab, pos, Segment::Window);
        if count {
            // A bounded cache passes the window's overflow on to probation as it goes (one
            // entry per insert), as Caffeine does after each write. An unbounded cache never
            // evicts, so its window is left to grow; eviction drains it in bounded steps if
            // a bound is set later.
            self.drain_window(slab, len, None, 1);
        }
    }

    /// Passes the window's oldest entries other than `protect` on to probation while the
    /// window is over its target plus one (the shard holds `len`), at most `max_moves` of
    /// them: a caller drains a large window a bounded step at a time.
    pub(crate) fn drain_window<K, V>(
        &mut self,
        slab: &mut Slab<Node<K, V>>,
        len: u32,
        protect: Option<u32>,
        max_moves: u32,
    ) {
        let max = self.window_max(len).saturating_add(1);
        for _ in 0..max_moves {
            if self.window_len <= max {
                break;
            }
            let oldest = match self.window.tail() {
                Some(t) if Some(t) == protect => slab.get(t).map(|n| n.prev).filter(|&p| p != NIL),
                tail => tail,
            };
            let Some(oldest) = oldest else {
                break;
            };
            self.move_to(slab, oldest, Segment::Probation);
        }
    }

    /// Records an access (the shard holds `len`): counted in the sketch if `count`; in
    /// protected (or in the window of an unbounded cache, `count` off), moved to its head
    /// unless it is still in about the segment's front quarter
    /// ([`stays_put`](Self::stays_put)); in the window of a bounded cache, moved to its
    /// head; in probation, promoted to protected, demoting protected's oldest entries to
    /// probation while protected is over its target.
    pub(crate) fn touch<K, V>(
        &mut self,
        slab: &mut Slab<Node<K, V>>,
        pos: u32,
        len: u32,
        count: bool,
    ) {
        let Some((hash32, segment, stamp)) =
            slab.get(pos).map(|n| (n.hash32(), n.segment(), n.stamp()))
        else {
            return;
        };
        if count {
            self.sketch.record(hash32);
        }
        match segment {
            // The window's order decides which entry goes on to probation next, and
            // leaving its hits in place cost hit ratio (docs/benchmarks.md); an unbounded
            // cache (`count` off) keeps every entry in its window and evicts nothing, so
            // there the order only matters once a bound is set.
            Segment::Window if count => self.window.touch(slab, pos),
            Segment::Window | Segment::Protected => {
                if self.list(segment).head() != Some(pos) && !self.stays_put(segment, stamp) {
                    self.move_to(slab, pos, segment);
                }
            }
            Segment::Probation => {
                self.move_to(slab, pos, Segment::Protected);
                let max = self.protected_max(len);
                while self.protected_len > max {
                    let Some(oldest) = self.protected.tail() else {
                        break;
                    };
                    self.move_to(slab, oldest, Segment::Probation);
                }
            }
        }
    }

    /// Moves the entry at `pos` to the head of `segment`.
    pub(crate) fn move_to<K, V>(
        &mut self,
        slab: &mut Slab<Node<K, V>>,
        pos: u32,
        segment: Segment,
    ) {
        self.remove(slab, pos);
        self.link(slab, pos, segment);
    }

    /// Unlinks an entry about to leave the slab (or its segment).
    pub(crate) fn remove<K, V>(&mut self, slab: &mut Slab<Node<K, V>>, pos: u32) {
        let Some(segment) = slab.get(pos).map(Node::segment) else {
            return;
        };
        self.list_mut(segment).remove(slab, pos);
        let len = self.len_mut(segment);
        *len = len.saturating_sub(1);
        let len = *len;
        if let Some(clock) = self.clock_mut(segment) {
            clock.fit(len);
        }
    }

    /// Forgets every entry (the slab is being emptied); the sketch keeps its counts.
    pub(crate) fn clear(&mut self) {
        for segment in [Segment::Window, Segment::Probation, Segment::Protected] {
            self.list_mut(segment).clear();
            *self.len_mut(segment) = 0;
        }
        self.window_clock.fit(0);
        self.protected_clock.fit(0);
    }

    /// Whether a hit on an entry of the window or protected (`segment`) whose stamp is
    /// `stamp` leaves it where it is: fewer entries than a quarter of the segment's length have been linked
    /// ahead of it since it was last linked, so it is at most that far from the head
    /// (removals only bring it closer).
    ///
    /// Moving an entry to the head writes its two neighbours, which are whatever was read
    /// just before and after its last move: cold lines even when the entry is hot, 1.5 of
    /// the 5.3 cache misses of a bounded hit under cachegrind (`docs/benchmarks.md`). A hot
    /// entry in the front quarter is in no danger of leaving its segment, so the move buys
    /// nothing. (An unbounded cache keeps every entry in the window.)
    ///
    /// The test reads an 8-bit stamp per entry against the segment's [`StampClock`]. A
    /// stamp that wrapped (256 steps in a segment that lost entries to removals, which let
    /// the entry stay in it that long), or one taken before the clock changed its step,
    /// reads as any age: its entry may stay put for at most another quarter of the
    /// segment's links, then its next hit moves it and stamps it afresh.
    fn stays_put(&self, segment: Segment, stamp: u8) -> bool {
        let Some(clock) = self.clock(segment) else {
            return false;
        };
        let since = clock.stamp().wrapping_sub(stamp);
        (u32::from(since) << clock.shift) < self.len(segment) / 4
    }

    fn clock(&self, segment: Segment) -> Option<&StampClock> {
        match segment {
            Segment::Window => Some(&self.window_clock),
            Segment::Protected => Some(&self.protected_clock),
            Segment::Probation => None,
        }
    }

    fn clock_mut(&mut self, segment: Segment) -> Option<&mut StampClock> {
        match segment {
            Segment::Window => Some(&mut self.window_clock),
            Segment::Protected => Some(&mut self.protected_clock),
            Segment::Probation => None,
        }
    }

    fn link<K, V>(&mut self, slab: &mut Slab<Node<K, V>>, pos: u32, segment: Segment) {
        let Some(node) = slab.get_mut(pos) else {
            return;
        };
        node.set_segment(segment);
        let len = self.len(segment).saturating_add(1);
        if let Some(clock) = self.clock_mut(segment) {
            clock.fit(len);
            clock.links = clock.links.wrapping_add(1);
            node.set_stamp(clock.stamp());
        }
        self.list_mut(segment).insert(slab, pos);
        *self.len_mut(segment) = len;
    }

    fn list(&self, segment: Segment) -> &LruList {
        match segment {
            Segment::Window => &self.window,
            Segment::Probation => &self.probation,
            Segment::Protected => &self.protected,
        }
    }

    fn list_mut(&mut self, segment: Segment) -> &mut LruList {
        match segment {
            Segment::Window => &mut self.window,
            Segment::Probation => &mut self.probation,
            Segment::Protected => &mut self.protected,
        }
    }

    fn len_mut(&mut self, segment: Segment) -> &mut u32 {
        match segment {
            Segment::Window => &mut self.window_len,
            Segment::Probation => &mut self.probation_len,
            Segment::Protected => &mut self.protected_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Usage;
    use crate::stats::{LfuConfig, ShardStats, Tracking};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::sync::Arc;

    const TINY: Tracking = Tracking {
        lru_list: false,
        frequency: false,
        tiny_lfu: true,
    };

    fn shard(capacity: u32) -> Shard<u32, u32> {
        let mut s = Shard::new(
            Arc::new(Usage::default()),
            Arc::new(ShardStats::default()),
            StdRng::seed_from_u64(5),
            TINY,
        );
        s.set_entry_capacity(capacity);
        s
    }

    fn put(s: &mut Shard<u32, u32>, k: u32) -> u32 {
        let hash = u64::from(k.wrapping_mul(2_654_435_761)) << 32;
        s.insert(Node::new(k, k, hash, 0), 1, 0).unwrap_or(u32::MAX)
    }

    /// Positions of `segment` from least to most recently used.
    fn order(s: &Shard<u32, u32>, segment: Segment) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = s.segment_tail(segment);
        while let Some(pos) = cur {
            out.push(pos);
            cur = s.more_recent(pos);
        }
        out
    }

    #[test]
    fn new_entries_enter_the_window_and_hits_promote_from_probation() {
        let mut s = shard(200);
        let a = put(&mut s, 1);
        let b = put(&mut s, 2);
        assert_eq!(order(&s, Segment::Window), vec![a, b]);
        s.move_to_segment(a, Segment::Probation);
        assert_eq!(order(&s, Segment::Probation), vec![a]);
        s.touch(a, 1, LfuConfig::default());
        assert_eq!(order(&s, Segment::Protected), vec![a]);
        assert_eq!(s.segment_len(Segment::Probation), 0);
        assert!(s.remove(a).is_some());
        assert_eq!(s.segment_len(Segment::Protected), 0);
        assert_eq!(s.window_max(), 2);
    }

    #[test]
    fn a_bounded_window_passes_its_overflow_to_probation_as_entries_arrive() {
        // Capacity 200: the window's target is 2 entries, and it may hold one more.
        let mut s = shard(200);
        let pos: Vec<u32> = (0..6).map(|k| put(&mut s, k)).collect();
        assert_eq!(order(&s, Segment::Window), pos[3..].to_vec());
        assert_eq!(order(&s, Segment::Probation), pos[..3].to_vec());
        // Without a bound (the sketch gate closed) nothing is ever evicted: the window
        // keeps every entry and nothing moves.
        let mut unbounded = shard(200);
        unbounded.share_sketch_gate(Arc::new(crate::stats::SketchGate::new(false)));
        let pos: Vec<u32> = (0..6).map(|k| put(&mut unbounded, k)).collect();
        assert_eq!(order(&unbounded, Segment::Window), pos);
        assert_eq!(unbounded.segment_len(Segment::Probation), 0);
    }

    #[test]
    fn an_eviction_drains_a_grown_window_a_bounded_step_at_a_time() {
        // Grown without a bound: all 300 entries sit in the window.
        let mut s = shard(100);
        s.share_sketch_gate(Arc::new(crate::stats::SketchGate::new(false)));
        for k in 0..300 {
            put(&mut s, k);
        }
        assert_eq!(s.segment_len(Segment::Window), 300);
        let victim = crate::policy::select_victim(
            &mut s,
            crate::Policy::tiny_lfu(),
            None,
            1,
            LfuConfig::default(),
        );
        assert!(victim.is_some());
        assert_eq!(s.segment_len(Segment::Window), 300 - 64);
        assert_eq!(s.segment_len(Segment::Probation), 64);
    }

    /// Moves every entry of `pos` to probation, then hits each once in order, promoting it
    /// to protected (whose head ends up holding the last).
    fn promote_all(s: &mut Shard<u32, u32>, pos: &[u32]) {
        for &p in pos {
            s.move_to_segment(p, Segment::Probation);
        }
        for &p in pos {
            s.touch(p, 1, LfuConfig::default());
        }
    }

    #[test]
    fn a_protected_hit_near_the_head_stays_and_one_further_back_moves() {
        // 100 entries promoted into protected in order: the last promoted is at the head.
        let mut s = shard(1_000);
        let pos: Vec<u32> = (0..100).map(|k| put(&mut s, k)).collect();
        promote_all(&mut s, &pos);
        assert_eq!(order(&s, Segment::Protected), pos);
        // pos[90] has had 9 entries linked ahead of it, fewer than a quarter of 100: a hit
        // leaves the order as it was.
        s.touch(pos[90], 2, LfuConfig::default());
        assert_eq!(order(&s, Segment::Protected), pos);
        // pos[50] has had 49 linked ahead of it: a hit moves it to the head.
        s.touch(pos[50], 3, LfuConfig::default());
        let mut moved: Vec<u32> = pos.iter().copied().filter(|&p| p != pos[50]).collect();
        moved.push(pos[50]);
        assert_eq!(order(&s, Segment::Protected), moved);
        // Now at the head, a second hit leaves it there.
        s.touch(pos[50], 4, LfuConfig::default());
        assert_eq!(order(&s, Segment::Protected), moved);
        assert_eq!(s.segment_len(Segment::Protected), 100);
    }

    #[test]
    fn a_window_hit_near_the_head_stays_and_one_further_back_moves() {
        // Unbounded (the sketch gate closed): every entry stays in the window.
        let mut s = shard(1_000);
        s.share_sketch_gate(Arc::new(crate::stats::SketchGate::new(false)));
        let pos: Vec<u32> = (0..100).map(|k| put(&mut s, k)).collect();
        assert_eq!(order(&s, Segment::Window), pos);
        s.touch(pos[80], 1, LfuConfig::default());
        assert_eq!(order(&s, Segment::Window), pos);
        s.touch(pos[10], 2, LfuConfig::default());
        let mut moved: Vec<u32> = pos.iter().copied().filter(|&p| p != pos[10]).collect();
        moved.push(pos[10]);
        assert_eq!(order(&s, Segment::Window), moved);
    }

    #[test]
    fn a_bounded_windows_hits_all_move() {
        // Capacity 4,000: the window's target is 40, and it holds up to 41.
        let mut s = shard(4_000);
        let pos: Vec<u32> = (0..41).map(|k| put(&mut s, k)).collect();
        assert_eq!(order(&s, Segment::Window), pos);
        // Second from the head: within the front quarter, yet it moves.
        s.touch(pos[39], 1, LfuConfig::default());
        let mut moved = pos.clone();
        moved.swap(39, 40);
        assert_eq!(order(&s, Segment::Window), moved);
    }

    #[test]
    fn the_stamp_clock_changes_its_step_only_after_the_length_doubles_or_halves() {
        let mut clock = StampClock::default();
        clock.fit(255);
        assert_eq!(clock.shift, 0);
        clock.fit(256);
        assert_eq!(clock.shift, 1);
        // Back and forth around 256 keeps the step.
        clock.fit(255);
        clock.fit(128);
        assert_eq!(clock.shift, 1);
        clock.fit(127);
        assert_eq!(clock.shift, 0);
        clock.fit(1 << 20);
        assert_eq!(clock.shift, 13);
        assert!((64..256).contains(&((1 << 20) >> clock.shift)));
        clock.fit(u32::MAX);
        assert_eq!(clock.shift, 24);
        clock.fit(0);
        assert_eq!(clock.shift, 0);
    }

    #[test]
    fn a_small_protected_segment_moves_every_hit() {
        // Under four entries the front quarter is empty: every hit moves, exact LRU.
        let mut s = shard(1_000);
        let pos: Vec<u32> = (0..3).map(|k| put(&mut s, k)).collect();
        for &p in &pos {
            s.move_to_segment(p, Segment::Probation);
            s.touch(p, 1, LfuConfig::default());
        }
        s.touch(pos[1], 2, LfuConfig::default());
        assert_eq!(order(&s, Segment::Protected), vec![pos[0], pos[2], pos[1]]);
    }

    #[test]
    fn protected_overflow_is_demoted_to_probation() {
        let mut s = shard(5);
        let pos: Vec<u32> = (0..5).map(|k| put(&mut s, k)).collect();
        promote_all(&mut s, &pos);
        // Capacity 5: window 1, main 4, protected 85% of it, 3.
        assert_eq!(order(&s, Segment::Protected), pos[2..].to_vec());
        assert_eq!(order(&s, Segment::Probation), vec![pos[0], pos[1]]);
    }

    #[test]
    fn switching_in_and_out_rebuilds_by_last_access() {
        let mut s = shard(10);
        s.set_tracking(
            Tracking {
                lru_list: true,
                frequency: false,
                tiny_lfu: false,
            },
            0,
        );
        let pos: Vec<u32> = (0..4).map(|k| put(&mut s, k)).collect();
        s.touch(pos[0], 9_000, LfuConfig::default());
        s.set_tracking(TINY, 0);
        assert_eq!(
            order(&s, Segment::Probation),
            vec![pos[1], pos[2], pos[3], pos[0]]
        );
        assert_eq!(s.segment_len(Segment::Window), 0);
        s.set_tracking(crate::Policy::allkeys_lru().tracking(), 0);
        assert!(!s.tiny_listed());
        assert_eq!(s.lru_order(), vec![pos[1], pos[2], pos[3], pos[0]]);
    }
}
