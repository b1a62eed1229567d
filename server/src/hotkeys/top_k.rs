//! The keys with the largest estimated counts, at most `capacity` of them, each stored with
//! at most [`MAX_TRACKED_KEY_BYTES`] bytes.

use bytes::Bytes;

/// Longest key the detector tracks. Keys are stored whole, so a reported key can be used
/// as is; longer keys are not tracked at all (the sampler skips them and counts them in
/// `hotkeys_long_keys_skipped`), which bounds the top-k's memory at
/// `capacity × MAX_TRACKED_KEY_BYTES` plus a few words per entry.
pub const MAX_TRACKED_KEY_BYTES: usize = 256;

/// One tracked key.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The key's 64-bit hash (what the sketch counts; two keys with the same hash are
    /// taken for one, a 2^-64 chance per pair).
    pub hash: u64,
    /// The key, at most [`MAX_TRACKED_KEY_BYTES`] long.
    pub key: Bytes,
    /// Its estimated count, in the same decayed units as the sketch.
    pub count: u32,
}

/// The top-k list of HeavyKeeper: a key enters when its estimate beats the smallest
/// tracked count (or there is room), and a tracked key's count only follows its estimate
/// upwards (time decay halves both together).
#[derive(Debug)]
pub struct TopK {
    capacity: usize,
    /// Unordered; `capacity` is small (tens), so a linear scan beats a heap plus an index.
    entries: Vec<Entry>,
}

impl TopK {
    /// An empty list holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> TopK {
        let capacity = capacity.max(1);
        TopK {
            capacity,
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Keys tracked now (at most the capacity).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most keys it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Offers a key with its latest estimate. Keys longer than [`MAX_TRACKED_KEY_BYTES`]
    /// are refused (the caller skips them before hashing; this is the backstop).
    pub fn offer(&mut self, hash: u64, key: &[u8], count: u32) {
        if key.len() > MAX_TRACKED_KEY_BYTES {
            return;
        }
        if let Some(e) = self.entries.iter_mut().find(|e| e.hash == hash) {
            e.count = e.count.max(count);
            return;
        }
        let entry = Entry {
            hash,
            key: Bytes::copy_from_slice(key),
            count,
        };
        if self.entries.len() < self.capacity {
            self.entries.push(entry);
            return;
        }
        if let Some(min) = self.entries.iter_mut().min_by_key(|e| e.count) {
            if count > min.count {
                *min = entry;
            }
        }
    }

    /// Halves every count (time decay), forgetting keys that reach zero.
    pub fn halve(&mut self) {
        for e in &mut self.entries {
            e.count >>= 1;
        }
        self.entries.retain(|e| e.count > 0);
    }

    /// The tracked keys, largest count first (ties by key, so the order is stable).
    pub fn sorted(&self) -> Vec<Entry> {
        let mut v = self.entries.clone();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_entry_gives_way_to_a_larger_one() {
        let mut t = TopK::new(2);
        t.offer(1, b"a", 5);
        t.offer(2, b"b", 3);
        t.offer(3, b"c", 3);
        assert_eq!(t.len(), 2);
        t.offer(3, b"c", 4);
        let keys: Vec<_> = t.sorted().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, [&b"a"[..], &b"c"[..]]);
    }

    #[test]
    fn counts_only_rise_and_halving_forgets_zeros() {
        let mut t = TopK::new(4);
        t.offer(1, b"a", 5);
        t.offer(1, b"a", 2);
        t.offer(2, b"b", 1);
        assert_eq!(t.sorted()[0].count, 5);
        t.halve();
        assert_eq!(t.len(), 1);
        assert_eq!(t.sorted()[0].count, 2);
    }

    #[test]
    fn long_keys_are_not_stored() {
        let mut t = TopK::new(4);
        t.offer(1, &[b'x'; MAX_TRACKED_KEY_BYTES + 1], 9);
        assert!(t.is_empty());
        t.offer(2, &[b'x'; MAX_TRACKED_KEY_BYTES], 9);
        assert_eq!(t.len(), 1);
    }
}
