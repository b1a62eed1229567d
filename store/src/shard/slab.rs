//! A segmented slab: entries live at stable `u32` positions that never move.
//!
//! Stability is what SCAN's guarantee and the intrusive LRU list rest on. Segments (rather
//! than one `Vec`) keep growth cheap: a full shard gains a new fixed-size segment instead of
//! copying every entry under its lock.

/// Positions per segment after the first (the first grows by doubling up to this size, so a
/// small cache does not pay for a whole segment per shard). The last segment is half empty
/// on average, so this is a trade: 256 slots keep that slack near 0.2 bytes per entry for
/// shards of 100k entries (1024 cost up to 0.9), at one 24-byte segment header per 256
/// entries.
const SEGMENT_SLOTS: usize = 256;

/// The "no position" marker for free and LRU lists.
pub(crate) const NIL: u32 = u32::MAX;

/// Positions a slab can hand out; `NIL` is reserved.
pub(crate) const MAX_POSITIONS: u32 = u32::MAX - 1;

/// One position: an entry, or a link in the free list.
enum Slot<T> {
    Occupied(T),
    Vacant { next_free: u32 },
}

/// Stable-position storage with a LIFO free list.
pub(crate) struct Slab<T> {
    segments: Vec<Vec<Slot<T>>>,
    /// Most recently freed position, or `NIL`.
    free_head: u32,
    /// Occupied positions.
    len: u32,
    /// Positions ever handed out: every position below it is occupied or vacant.
    positions: u32,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Self {
            segments: Vec::new(),
            free_head: NIL,
            len: 0,
            positions: 0,
        }
    }

    /// Bytes one position takes, whether occupied or not.
    pub(crate) const fn slot_bytes() -> usize {
        std::mem::size_of::<Slot<T>>()
    }

    /// Occupied positions.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// One past the highest position ever handed out.
    pub(crate) fn positions(&self) -> u32 {
        self.positions
    }

    fn slot(&self, pos: u32) -> Option<&Slot<T>> {
        let (seg, off) = split(pos);
        self.segments.get(seg)?.get(off)
    }

    fn slot_mut(&mut self, pos: u32) -> Option<&mut Slot<T>> {
        let (seg, off) = split(pos);
        self.segments.get_mut(seg)?.get_mut(off)
    }

    pub(crate) fn get(&self, pos: u32) -> Option<&T> {
        match self.slot(pos)? {
            Slot::Occupied(t) => Some(t),
            Slot::Vacant { .. } => None,
        }
    }

    pub(crate) fn get_mut(&mut self, pos: u32) -> Option<&mut T> {
        match self.slot_mut(pos)? {
            Slot::Occupied(t) => Some(t),
            Slot::Vacant { .. } => None,
        }
    }

    /// Every occupied position with its entry, in position order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.segments
            .iter()
            .flat_map(|segment| segment.iter())
            .zip(0u32..)
            .filter_map(|(slot, pos)| match slot {
                Slot::Occupied(t) => Some((pos, t)),
                Slot::Vacant { .. } => None,
            })
    }

    /// Every occupied position's entry, in position order, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.segments
            .iter_mut()
            .flat_map(|segment| segment.iter_mut())
            .zip(0u32..)
            .filter_map(|(slot, pos)| match slot {
                Slot::Occupied(t) => Some((pos, t)),
                Slot::Vacant { .. } => None,
            })
    }

    /// Stores `value` at a free position (the most recently freed first).
    ///
    /// # Errors
    /// Gives `value` back when all [`MAX_POSITIONS`] positions are occupied.
    pub(crate) fn insert(&mut self, value: T) -> Result<u32, T> {
        let head = self.free_head;
        if let Some(slot) = self.slot_mut(head) {
            if let Slot::Vacant { next_free } = *slot {
                *slot = Slot::Occupied(value);
                self.free_head = next_free;
                self.len += 1;
                return Ok(head);
            }
        }
        if self.positions >= MAX_POSITIONS {
            return Err(value);
        }
        let pos = self.positions;
        let (seg, _) = split(pos);
        if seg == self.segments.len() {
            let fresh = if seg == 0 {
                Vec::new()
            } else {
                Vec::with_capacity(SEGMENT_SLOTS)
            };
            self.segments.push(fresh);
        }
        let Some(segment) = self.segments.get_mut(seg) else {
            return Err(value);
        };
        segment.push(Slot::Occupied(value));
        self.positions += 1;
        self.len += 1;
        Ok(pos)
    }

    /// Empties position `pos`, returning what it held.
    pub(crate) fn remove(&mut self, pos: u32) -> Option<T> {
        let free_head = self.free_head;
        let slot = self.slot_mut(pos)?;
        if matches!(slot, Slot::Vacant { .. }) {
            return None;
        }
        let Slot::Occupied(value) = std::mem::replace(
            slot,
            Slot::Vacant {
                next_free: free_head,
            },
        ) else {
            return None;
        };
        self.free_head = pos;
        self.len -= 1;
        Some(value)
    }

    /// Removes everything, releasing the segments, and returns the entries.
    pub(crate) fn take_all(&mut self) -> Vec<T> {
        let segments = std::mem::take(&mut self.segments);
        let mut out = Vec::with_capacity(self.len as usize);
        for slot in segments.into_iter().flatten() {
            if let Slot::Occupied(t) = slot {
                out.push(t);
            }
        }
        *self = Self::new();
        out
    }
}

/// Segment and offset of a position.
fn split(pos: u32) -> (usize, usize) {
    let pos = pos as usize;
    (pos / SEGMENT_SLOTS, pos % SEGMENT_SLOTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_stay_put_while_the_slab_grows() {
        let mut slab = Slab::new();
        let positions: Vec<u32> = (0..3000u32)
            .map(|i| slab.insert(i).unwrap_or(NIL))
            .collect();
        assert_eq!(slab.len(), 3000);
        assert_eq!(slab.positions(), 3000);
        for (i, pos) in positions.iter().enumerate() {
            assert_eq!(slab.get(*pos), Some(&(i as u32)));
        }
    }

    #[test]
    fn freed_positions_are_reused_most_recent_first() {
        let mut slab = Slab::new();
        for i in 0..10u32 {
            assert_eq!(slab.insert(i), Ok(i));
        }
        assert_eq!(slab.remove(3), Some(3));
        assert_eq!(slab.remove(7), Some(7));
        assert_eq!(slab.remove(7), None);
        assert_eq!(slab.get(3), None);
        assert_eq!(slab.insert(70), Ok(7));
        assert_eq!(slab.insert(30), Ok(3));
        assert_eq!(slab.insert(10), Ok(10));
        assert_eq!(slab.len(), 11);
    }

    #[test]
    fn iteration_yields_occupied_positions_in_order() {
        let mut slab = Slab::new();
        for i in 0..1500u32 {
            let _ = slab.insert(i * 10);
        }
        for i in (0..1500u32).filter(|i| i % 7 != 0) {
            let _ = slab.remove(i);
        }
        let seen: Vec<(u32, u32)> = slab.iter().map(|(p, v)| (p, *v)).collect();
        let expected: Vec<(u32, u32)> = (0..1500u32).step_by(7).map(|i| (i, i * 10)).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn out_of_range_positions_are_absent() {
        let mut slab: Slab<u8> = Slab::new();
        assert_eq!(slab.get(5), None);
        assert_eq!(slab.get_mut(NIL), None);
        assert_eq!(slab.remove(NIL), None);
    }

    #[test]
    fn take_all_returns_every_entry_and_resets() {
        let mut slab = Slab::new();
        for i in 0..2000u32 {
            let _ = slab.insert(i);
        }
        for i in (0..2000u32).step_by(2) {
            let _ = slab.remove(i);
        }
        let mut all = slab.take_all();
        all.sort_unstable();
        assert_eq!(all, (1..2000).step_by(2).collect::<Vec<u32>>());
        assert_eq!(slab.len(), 0);
        assert_eq!(slab.positions(), 0);
        assert_eq!(slab.insert(5), Ok(0));
    }
}
