//! The replication backlog: the newest bytes of the replication stream, kept so a replica
//! that was away briefly can resume where it stopped (a partial resync).

use std::collections::VecDeque;

use bytes::Bytes;

/// A bounded window of the stream, addressed by stream offset.
#[derive(Debug)]
pub struct Backlog {
    buf: VecDeque<u8>,
    capacity: usize,
    /// Stream offset of `buf[0]`.
    start: u64,
}

impl Backlog {
    /// An empty backlog of `capacity` bytes whose next byte has offset `start`.
    pub fn new(capacity: usize, start: u64) -> Backlog {
        Backlog {
            buf: VecDeque::new(),
            capacity: capacity.max(1),
            start,
        }
    }

    /// The offset of the oldest byte kept.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The offset the next appended byte gets (the stream's length so far).
    pub fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    /// Bytes kept.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets everything kept; the next byte gets offset `start`.
    pub fn reset(&mut self, start: u64) {
        self.buf.clear();
        self.start = start;
    }

    /// Appends bytes, dropping the oldest past the capacity.
    pub fn append(&mut self, data: &[u8]) {
        if data.len() >= self.capacity {
            let end = self.end() + data.len() as u64;
            self.buf.clear();
            self.buf.extend(&data[data.len() - self.capacity..]);
            self.start = end - self.capacity as u64;
            return;
        }
        let over = (self.buf.len() + data.len()).saturating_sub(self.capacity);
        if over > 0 {
            self.buf.drain(..over);
            self.start += over as u64;
        }
        self.buf.extend(data);
    }

    /// Whether the bytes from `offset` on are all still here (`offset == end()` included).
    pub fn has(&self, offset: u64) -> bool {
        offset >= self.start && offset <= self.end()
    }

    /// Up to `max` bytes from `offset`; `None` when `offset` is no longer (or not yet)
    /// in the window.
    pub fn read(&self, offset: u64, max: usize) -> Option<Bytes> {
        if !self.has(offset) {
            return None;
        }
        let from = usize::try_from(offset - self.start).ok()?;
        let to = self.buf.len().min(from.saturating_add(max));
        let (a, b) = self.buf.as_slices();
        let mut out = Vec::with_capacity(to - from);
        if from < a.len() {
            out.extend_from_slice(&a[from..to.min(a.len())]);
        }
        if to > a.len() {
            out.extend_from_slice(&b[from.saturating_sub(a.len())..to - a.len()]);
        }
        Some(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_and_their_offsets() {
        let mut b = Backlog::new(8, 100);
        b.append(b"abcde");
        assert_eq!((b.start(), b.end()), (100, 105));
        assert_eq!(b.read(101, 3).as_deref(), Some(&b"bcd"[..]));
        b.append(b"fghij");
        assert_eq!((b.start(), b.end()), (102, 110));
        assert_eq!(b.read(101, 3), None, "dropped from the window");
        assert_eq!(b.read(102, 100).as_deref(), Some(&b"cdefghij"[..]));
        assert_eq!(b.read(110, 10).as_deref(), Some(&b""[..]));
        assert_eq!(b.read(111, 10), None, "not written yet");
    }

    #[test]
    fn an_append_larger_than_the_window_keeps_its_tail() {
        let mut b = Backlog::new(4, 0);
        b.append(b"xy");
        b.append(b"0123456789");
        assert_eq!((b.start(), b.end()), (8, 12));
        assert_eq!(b.read(8, 10).as_deref(), Some(&b"6789"[..]));
    }

    #[test]
    fn reads_across_the_ring_seam() {
        let mut b = Backlog::new(6, 0);
        for chunk in [&b"abcd"[..], b"ef", b"gh", b"ij"] {
            b.append(chunk);
        }
        assert_eq!(b.read(4, 6).as_deref(), Some(&b"efghij"[..]));
        assert_eq!(b.read(5, 3).as_deref(), Some(&b"fgh"[..]));
    }
}
