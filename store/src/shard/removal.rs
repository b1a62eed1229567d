//! [`Removals`]: the entries one operation took out of a shard, waiting for the lock to be
//! released so the removal listener may run.

use crate::policy::RemovalCause;

/// An entry leaving the cache, on its way to the removal listener (called after unlock).
pub(crate) type Removal<K, V> = (K, V, RemovalCause);

/// The entries one operation removed under a shard lock, held until the lock is released
/// and the listener may run. The first is kept inline, so the common write that evicts or
/// expires exactly one entry allocates nothing; more go to a `Vec`.
pub(crate) struct Removals<K, V> {
    first: Option<Removal<K, V>>,
    more: Vec<Removal<K, V>>,
}

impl<K, V> Removals<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            first: None,
            more: Vec::new(),
        }
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
}
