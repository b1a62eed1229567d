//! The shard's exact LRU order: an intrusive doubly linked list through the entries' `prev`
//! and `next` positions, most recently used at the head.
//!
//! The list is kept only while the policy evicts from it (`allkeys-lru`): moving an entry
//! to the head touches its two neighbours, two likely cache misses per access, which the
//! other policies should not pay. While it is off, `head`/`tail` are `NIL` and the entries'
//! links are stale and never read; [`LruList::rebuild`] relinks every entry when it is
//! turned back on.

use super::slab::{Slab, NIL};
use super::Node;

/// Head and tail of the list, and whether it is being kept. Guarded by the shard's lock.
pub(crate) struct LruList {
    /// Most and least recently used positions, or `NIL`.
    head: u32,
    tail: u32,
    /// Whether accesses, inserts and removals update the list.
    enabled: bool,
}

impl LruList {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            head: NIL,
            tail: NIL,
            enabled,
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The most recently used position (`None` when empty or not kept).
    pub(crate) fn head(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// The least recently used position (`None` when empty or not kept).
    pub(crate) fn tail(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Links a newly stored entry as the most recently used.
    pub(crate) fn insert<K, V>(&mut self, slab: &mut Slab<Node<K, V>>, pos: u32) {
        if self.enabled {
            self.push_front(slab, pos);
        }
    }

    /// Unlinks an entry about to leave the slab.
    pub(crate) fn remove<K, V>(&mut self, slab: &mut Slab<Node<K, V>>, pos: u32) {
        if self.enabled {
            self.unlink(slab, pos);
        }
    }

    /// Moves an accessed entry to the most recent end.
    pub(crate) fn touch<K, V>(&mut self, slab: &mut Slab<Node<K, V>>, pos: u32) {
        if self.enabled && self.head != pos {
            self.unlink(slab, pos);
            self.push_front(slab, pos);
        }
    }

    /// Forgets every entry (the slab is being emptied); stays enabled or not.
    pub(crate) fn clear(&mut self) {
        self.head = NIL;
        self.tail = NIL;
    }

    /// Stops keeping the list. O(1): the entries' links are left stale.
    pub(crate) fn disable(&mut self) {
        self.clear();
        self.enabled = false;
    }

    /// Starts keeping the list, relinking every entry of `slab` in order of last access
    /// time (ties by position), the oldest at the tail. O(n log n) in the shard's entries,
    /// with a temporary 8 bytes per entry.
    pub(crate) fn rebuild<K, V>(&mut self, slab: &mut Slab<Node<K, V>>) {
        let mut order: Vec<(u32, u32)> = slab
            .iter()
            .map(|(pos, node)| (node.access.last_second(), pos))
            .collect();
        order.sort_unstable();
        self.clear();
        self.enabled = true;
        for (_, pos) in order {
            self.push_front(slab, pos);
        }
    }

    fn unlink<K, V>(&mut self, slab: &mut Slab<Node<K, V>>, pos: u32) {
        let Some(node) = slab.get_mut(pos) else {
            return;
        };
        let (prev, next) = (node.prev, node.next);
        node.prev = NIL;
        node.next = NIL;
        match slab.get_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match slab.get_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_front<K, V>(&mut self, slab: &mut Slab<Node<K, V>>, pos: u32) {
        let old_head = self.head;
        let Some(node) = slab.get_mut(pos) else {
            return;
        };
        node.prev = NIL;
        node.next = old_head;
        match slab.get_mut(old_head) {
            Some(h) => h.prev = pos,
            None => self.tail = pos,
        }
        self.head = pos;
    }
}
