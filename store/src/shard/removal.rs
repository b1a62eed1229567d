//! [`Removals`]: the entries one operation took out of a shard, waiting for the lock to be
//! released so the removal listener may run.

use crate::policy::RemovalCause;

/// An entry leaving the cache, on its way to the removal listener (called after unlock).
pub(crate) type Removal<K, V> = (K, V, RemovalCause);

/// Bytes a [`Removals::batch`] buffer takes at most, well under the smallest request that
/// glibc's malloc serves as a large one (1,008 bytes). A large request, or a free that
/// merges into a 64 KiB chunk, first makes glibc merge every small chunk freed since its
/// last merge (`malloc_consolidate`): work no caller bounds, measured at up to 6 ms inside
/// one sweep step once the sweep had freed tens of thousands of values. The sweep's buffer
/// used to grow past that size and pay it.
const BATCH_BYTES: usize = 512;

/// The entries one operation removed under a shard lock, held until the lock is released
/// and the listener may run. The first is kept inline, so the common write that evicts or
/// expires exactly one entry allocates nothing; more go to a `Vec`.
pub(crate) struct Removals<K, V> {
    first: Option<Removal<K, V>>,
    more: Vec<Removal<K, V>>,
    /// Removals after which [`is_full`](Self::is_full) says so.
    limit: usize,
}

impl<K, V> Removals<K, V> {
    /// Room for any number of removals.
    pub(crate) fn new() -> Self {
        Self {
            first: None,
            more: Vec::new(),
            limit: usize::MAX,
        }
    }

    /// Room for as many removals as fit in [`BATCH_BYTES`] (at least 2), allocated at
    /// once, for loops that remove many entries and stop under their lock when
    /// [`is_full`](Self::is_full): its buffer never grows, so it is never a large request.
    pub(crate) fn batch() -> Self {
        let limit = (BATCH_BYTES / std::mem::size_of::<Removal<K, V>>().max(1)).max(2);
        Self {
            first: None,
            more: Vec::with_capacity(limit - 1),
            limit,
        }
    }

    /// Whether the removals held reached the limit: a batch's buffer is full.
    pub(crate) fn is_full(&self) -> bool {
        usize::from(self.first.is_some()) + self.more.len() >= self.limit
    }

    pub(crate) fn push(&mut self, removal: Removal<K, V>) {
        if self.first.is_none() && self.more.is_empty() {
            self.first = Some(removal);
        } else {
            self.more.push(removal);
        }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.is_empty()
    }

    /// Takes the removals out in the order they were pushed, leaving none.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Removal<K, V>> + '_ {
        self.first.take().into_iter().chain(self.more.drain(..))
    }

    /// Drops every removal (no listener to tell).
    pub(crate) fn clear(&mut self) {
        self.first = None;
        self.more.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_come_out_in_order_and_leave_none() {
        let mut out: Removals<u32, u32> = Removals::new();
        assert!(out.is_empty());
        for k in 0..3 {
            out.push((k, k * 10, RemovalCause::Evicted));
        }
        let keys: Vec<u32> = out.drain().map(|(k, _, _)| k).collect();
        assert_eq!(keys, [0, 1, 2]);
        assert!(out.is_empty());
        out.push((7, 70, RemovalCause::Expired));
        assert_eq!(out.drain().map(|(k, _, _)| k).collect::<Vec<_>>(), [7]);
        out.push((8, 80, RemovalCause::Removed));
        out.clear();
        assert!(out.is_empty());
    }

    #[test]
    fn a_batch_is_full_at_its_byte_bound_and_empty_after_a_drain() {
        let mut out: Removals<u64, Box<[u8]>> = Removals::batch();
        // 32 bytes per removal.
        let room = BATCH_BYTES / 32;
        for k in 0..room as u64 {
            assert!(!out.is_full(), "{k}");
            out.push((k, Box::default(), RemovalCause::Expired));
        }
        assert!(out.is_full());
        assert_eq!(out.more.capacity(), room - 1, "the buffer never grew");
        assert_eq!(out.drain().count(), room);
        assert!(!out.is_full());
        let big: Removals<[u8; 4096], ()> = Removals::batch();
        assert_eq!(big.limit, 2);
        assert!(!Removals::<u64, u64>::new().is_full());
    }
}
