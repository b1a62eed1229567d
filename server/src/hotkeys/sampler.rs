//! The per-connection side of hot-key detection: pick about one keyed command in
//! `hotkeys-sample`, copy its keys into a small batch, and hand full batches to the
//! detector task. Only the connection's own task touches its [`Sampler`].

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::monitor::HotKeyMonitor;
use super::top_k::MAX_TRACKED_KEY_BYTES;
use crate::command::key_spec;
use crate::command::table::CommandSpec;

/// Keys per batch. A batch costs one channel send; 64 makes that a small share of the
/// sampled commands' cost while a busy connection still fills one within milliseconds.
pub const SAMPLE_BATCH_KEYS: usize = 64;
/// Bytes reserved for a fresh batch's keys (64 keys of up to 16 bytes fit without growing).
const BATCH_RESERVE_BYTES: usize = SAMPLE_BATCH_KEYS * 16;

/// Sampled keys on their way to the detector, stored back to back in one buffer. At most
/// [`SAMPLE_BATCH_KEYS`] keys, each at most [`MAX_TRACKED_KEY_BYTES`] long.
#[derive(Debug, Default)]
pub struct SampleBatch {
    bytes: Vec<u8>,
    /// End offset of each key in `bytes`.
    ends: Vec<u32>,
    /// Sampled keys too long to track: counted, not copied.
    long_keys: u32,
}

impl SampleBatch {
    fn new() -> SampleBatch {
        SampleBatch {
            bytes: Vec::with_capacity(BATCH_RESERVE_BYTES),
            ends: Vec::with_capacity(SAMPLE_BATCH_KEYS),
            long_keys: 0,
        }
    }

    /// Samples in the batch, long keys included.
    pub fn len(&self) -> usize {
        self.ends.len() + self.long_keys as usize
    }

    /// Whether the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sampled keys too long to track.
    pub fn long_keys(&self) -> u32 {
        self.long_keys
    }

    /// The sampled keys that are short enough to track, in order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let key = &self.bytes[start..end as usize];
            start = end as usize;
            key
        })
    }

    fn push(&mut self, key: &[u8]) {
        if key.len() > MAX_TRACKED_KEY_BYTES {
            self.long_keys += 1;
            return;
        }
        self.bytes.extend_from_slice(key);
        // At most 64 × 256 bytes: always fits in u32.
        self.ends
            .push(u32::try_from(self.bytes.len()).unwrap_or(u32::MAX));
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.long_keys = 0;
    }
}

/// One connection's sampler.
#[derive(Debug)]
pub struct Sampler {
    /// Keyed commands until the next sample; 1 means the next one is sampled.
    countdown: u32,
    /// xorshift32 state for the random gaps between samples.
    rng: u32,
    batch: SampleBatch,
    /// The monitor's epoch when the batch got its first key: a batch older than one
    /// detector tick is sent even if not full, so a slow connection's samples arrive.
    batch_epoch: u64,
    /// The detector's channel, cloned from the monitor at the first send.
    tx: Option<mpsc::Sender<SampleBatch>>,
}

impl Sampler {
    /// A sampler whose gaps are drawn from `seed` (the connection id, so connections do
    /// not sample in lock step); the first keyed command is sampled.
    pub fn new(seed: u64) -> Sampler {
        Sampler {
            countdown: 1,
            rng: (seed as u32 ^ (seed >> 32) as u32) | 1,
            batch: SampleBatch::default(),
            batch_epoch: 0,
            tx: None,
        }
    }

    /// Counts one keyed command and, if it is the one to sample, records its keys. The
    /// common case is one decrement; the monitor's settings are read only when sampling.
    #[inline]
    pub fn observe(&mut self, monitor: &HotKeyMonitor, spec: &CommandSpec, args: &[Bytes]) {
        if self.countdown > 1 {
            self.countdown -= 1;
            return;
        }
        self.countdown = self.next_gap(monitor.sample_interval());
        if !monitor.enabled() {
            return;
        }
        self.record(monitor, key_spec::keys(spec, args));
    }

    fn record<'a>(&mut self, monitor: &HotKeyMonitor, keys: impl Iterator<Item = &'a Bytes>) {
        for key in keys {
            if self.batch.is_empty() {
                self.batch_epoch = monitor.epoch();
            }
            self.batch.push(key);
            if self.batch.len() >= SAMPLE_BATCH_KEYS {
                self.flush(monitor);
            }
        }
        if !self.batch.is_empty() && monitor.epoch() != self.batch_epoch {
            self.flush(monitor);
        }
    }

    /// Sends the batch to the detector; when the channel is full (or the detector gone)
    /// the samples are dropped and counted, and the buffer is kept for the next batch.
    fn flush(&mut self, monitor: &HotKeyMonitor) {
        let tx = self.tx.get_or_insert_with(|| monitor.sender());
        let batch = std::mem::replace(&mut self.batch, SampleBatch::new());
        match tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(mut batch) | TrySendError::Closed(mut batch)) => {
                monitor.count_dropped(batch.len() as u64);
                batch.clear();
                self.batch = batch;
            }
        }
    }

    /// A gap uniform in `1..=2n-1` (mean `n`): random, so a client alternating between
    /// keys is not seen through one phase only.
    fn next_gap(&mut self, n: u32) -> u32 {
        if n <= 1 {
            return 1;
        }
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        1 + x % (2 * n.min(u32::MAX / 2) - 1)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // A closing connection hands over what it sampled; if the channel is full the
        // samples are lost uncounted (the monitor is out of reach here).
        if let (Some(tx), false) = (&self.tx, self.batch.is_empty()) {
            let _ = tx.try_send(std::mem::take(&mut self.batch));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_keys_in_order_and_count_long_ones() {
        let mut b = SampleBatch::new();
        b.push(b"a");
        b.push(&[b'x'; MAX_TRACKED_KEY_BYTES + 1]);
        b.push(b"bc");
        assert_eq!(b.len(), 3);
        assert_eq!(b.long_keys(), 1);
        assert_eq!(b.keys().collect::<Vec<_>>(), [&b"a"[..], &b"bc"[..]]);
    }

    #[test]
    fn gaps_average_the_sampling_interval() {
        let mut s = Sampler::new(3);
        assert_eq!(s.next_gap(1), 1);
        let n = 100_000u64;
        let total: u64 = (0..n).map(|_| u64::from(s.next_gap(16))).sum();
        let mean = total as f64 / n as f64;
        assert!((15.5..16.5).contains(&mean), "{mean}");
    }
}
