//! The node's side of hot-key detection: the live settings, the bounded channel the
//! connections' samplers send batches into, the background task that owns the
//! [`HotKeyDetector`], and the rates it publishes for `HOTKEYS` and `INFO hotkeys`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::sampler::SampleBatch;
use super::{HotKeyDetector, KeyRate, Rates};
use crate::config::Config;
use crate::node::Node;

/// Batches the channel holds. The task drains it every tick, so this is about 16k samples
/// per 100 ms (160k sampled keys a second) before batches are dropped and counted; at
/// most 256 × 64 × 256 bytes (4 MiB) of keys, typically a few hundred KiB.
pub const SAMPLE_CHANNEL_BATCHES: usize = 256;
/// How often the task drains the channel, applies decay and publishes rates. Bounds how
/// stale `HOTKEYS` is and, with the samplers' epoch check, how long a sample waits.
pub const TICK_MILLIS: u64 = 100;
/// Weight each tick keeps of the previous ticks' sample counts when correcting rates for
/// dropped samples (a moving average over about ten ticks, one second).
const DROP_AVERAGE_KEEP: f64 = 0.9;
/// Batches processed between yields to the runtime, so a full channel (a few ms of
/// sketch work) does not hold a worker thread in one go.
const BATCHES_PER_YIELD: usize = 16;

/// Settings, channel and published rates. Lives in [`Node`]; the settings are atomics read
/// by samplers (only when they sample) and written by `CONFIG SET`.
#[derive(Debug)]
pub struct HotKeyMonitor {
    enabled: AtomicBool,
    /// `hotkeys-min-share` as `f64` bits.
    min_share_bits: AtomicU64,
    min_rate: AtomicU64,
    sample: AtomicU32,
    /// `hotkeys-top-k`, fixed at start (the sketch is sized by it).
    top_k: usize,
    tx: mpsc::Sender<SampleBatch>,
    /// Taken once by [`run`].
    rx: Mutex<Option<mpsc::Receiver<SampleBatch>>>,
    /// Bumped by the task every tick; samplers send a partial batch once it moved.
    epoch: AtomicU64,
    /// Samples dropped because the channel was full; written by samplers.
    dropped: AtomicU64,
    /// Sampled keys too long to track; written by the task.
    long_keys: AtomicU64,
    /// Latest rates; written by the task every tick, read by `HOTKEYS` and `INFO`.
    rates: RwLock<Arc<Rates>>,
}

impl HotKeyMonitor {
    /// A monitor with the configured settings.
    pub fn new(config: &Config) -> HotKeyMonitor {
        let (tx, rx) = mpsc::channel(SAMPLE_CHANNEL_BATCHES);
        HotKeyMonitor {
            enabled: AtomicBool::new(config.hotkeys_enabled),
            min_share_bits: AtomicU64::new(config.hotkeys_min_share.to_bits()),
            min_rate: AtomicU64::new(config.hotkeys_min_rate),
            sample: AtomicU32::new(config.hotkeys_sample),
            top_k: config.hotkeys_top_k,
            tx,
            rx: Mutex::new(Some(rx)),
            epoch: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            long_keys: AtomicU64::new(0),
            rates: RwLock::new(Arc::new(Rates::default())),
        }
    }

    /// `hotkeys-enabled`.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }
    /// Sets `hotkeys-enabled`.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }
    /// `hotkeys-min-share`.
    pub fn min_share(&self) -> f64 {
        f64::from_bits(self.min_share_bits.load(Ordering::Relaxed))
    }
    /// Sets `hotkeys-min-share` (checked by the caller to be within 0..=1).
    pub fn set_min_share(&self, share: f64) {
        self.min_share_bits
            .store(share.to_bits(), Ordering::Relaxed);
    }
    /// `hotkeys-min-rate`.
    pub fn min_rate(&self) -> u64 {
        self.min_rate.load(Ordering::Relaxed)
    }
    /// Sets `hotkeys-min-rate`.
    pub fn set_min_rate(&self, rate: u64) {
        self.min_rate.store(rate, Ordering::Relaxed);
    }
    /// `hotkeys-sample`: one keyed command in this many is sampled, on average.
    pub fn sample_interval(&self) -> u32 {
        self.sample.load(Ordering::Relaxed)
    }
    /// Sets `hotkeys-sample` (checked by the caller to be at least 1).
    pub fn set_sample_interval(&self, n: u32) {
        self.sample.store(n.max(1), Ordering::Relaxed);
    }
    /// `hotkeys-top-k`.
    pub fn top_k(&self) -> usize {
        self.top_k
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }
    pub(super) fn sender(&self) -> mpsc::Sender<SampleBatch> {
        self.tx.clone()
    }
    pub(super) fn count_dropped(&self, samples: u64) {
        self.dropped.fetch_add(samples, Ordering::Relaxed);
    }

    /// Samples dropped because the detector's channel was full.
    pub fn dropped_samples(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The latest published rates (at most one tick old).
    pub fn rates(&self) -> Arc<Rates> {
        Arc::clone(&self.rates.read())
    }

    /// The hot keys under the current thresholds, hottest first, at most `limit`.
    pub fn hot(&self, limit: usize) -> Vec<KeyRate> {
        let rates = self.rates();
        rates
            .hot(self.min_share(), self.min_rate())
            .take(limit)
            .cloned()
            .collect()
    }
}

/// Owns the detector: every tick, drains the samplers' batches into it, applies decay and
/// publishes its rates. Runs until `shutdown` is cancelled; a second call returns at once.
pub async fn run(node: Arc<Node>, shutdown: CancellationToken) {
    let monitor = &node.hotkeys;
    let Some(mut rx) = monitor.rx.lock().take() else {
        return;
    };
    let started = Instant::now();
    let mut detector = HotKeyDetector::new(monitor.top_k, 0);
    // Recent samples received and dropped, to scale rates up by what the full channel
    // dropped (drops are spread over keys like samples, so shares need no correction).
    let (mut received, mut lost, mut dropped_before) = (0.0, 0.0, 0);
    // The hot set last announced on HOT_KEYS_CHANNEL.
    let mut announced: std::collections::BTreeSet<bytes::Bytes> = Default::default();
    let mut timer = tokio::time::interval(Duration::from_millis(TICK_MILLIS));
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = timer.tick() => {}
        }
        let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // At most one channel's worth per tick, so the tick ends even under a flood.
        let mut got = 0;
        for n in 1..=SAMPLE_CHANNEL_BATCHES {
            let Ok(batch) = rx.try_recv() else { break };
            got += batch.len();
            for key in batch.keys() {
                detector.record(key, now);
            }
            let long = u64::from(batch.long_keys());
            if long > 0 {
                detector.record_untracked(long, now);
                monitor.long_keys.fetch_add(long, Ordering::Relaxed);
            }
            if n % BATCHES_PER_YIELD == 0 {
                tokio::task::yield_now().await;
            }
        }
        let dropped = monitor.dropped_samples();
        received = received * DROP_AVERAGE_KEEP + got as f64;
        lost = lost * DROP_AVERAGE_KEEP + dropped.saturating_sub(dropped_before) as f64;
        dropped_before = dropped;
        let correction = if received > 0.0 {
            (received + lost) / received
        } else {
            1.0
        };
        let scale = f64::from(monitor.sample_interval()) * correction;
        let rates = detector.rates(now, scale);
        *monitor.rates.write() = Arc::new(rates);
        monitor.epoch.fetch_add(1, Ordering::Relaxed);
        announce_changes(&node, &mut announced);
    }
}

/// The pub/sub channel on which hot-key changes are published: subscribers (RESP3
/// pushes, or RESP2 messages) get `hot:<key>` when a key turns hot and `cool:<key>` when
/// it stops being hot.
pub const HOT_KEYS_CHANNEL: &[u8] = b"__cachalot__:hotkeys";

/// Publishes the difference between the hot set now and the one last announced.
fn announce_changes(node: &Node, announced: &mut std::collections::BTreeSet<bytes::Bytes>) {
    let monitor = &node.hotkeys;
    let now: std::collections::BTreeSet<bytes::Bytes> = monitor
        .hot(monitor.top_k())
        .into_iter()
        .map(|k| k.key)
        .collect();
    if now == *announced {
        return;
    }
    let mut origin = crate::tracking::Origin::node();
    let overflows = &node.tracking.overflow_disconnects;
    let mut send = |prefix: &[u8], key: &[u8]| {
        let mut message = Vec::with_capacity(prefix.len() + key.len());
        message.extend_from_slice(prefix);
        message.extend_from_slice(key);
        node.pubsub
            .publish(HOT_KEYS_CHANNEL, &message, &mut origin, overflows);
    };
    for key in now.difference(announced) {
        send(b"hot:", key);
    }
    for key in announced.difference(&now) {
        send(b"cool:", key);
    }
    *announced = now;
}

/// The `# Hotkeys` section of `INFO`.
pub fn info(node: &Node, out: &mut String) {
    let m = &node.hotkeys;
    let rates = m.rates();
    out.push_str("# Hotkeys\r\n");
    let _ = write!(
        out,
        "hotkeys_enabled:{}\r\nhotkeys_tracked:{}\r\nhotkeys_top_k:{}\r\n\
         hotkeys_sample:{}\r\nhotkeys_key_rate:{}\r\nhotkeys_dropped_samples:{}\r\n\
         hotkeys_long_keys_skipped:{}\r\n",
        u8::from(m.enabled()),
        rates.keys.len(),
        m.top_k,
        m.sample_interval(),
        rates.total,
        m.dropped_samples(),
        m.long_keys.load(Ordering::Relaxed),
    );
    for (i, k) in rates.hot(m.min_share(), m.min_rate()).enumerate() {
        let _ = write!(
            out,
            "hotkey_{i}:key={},rate={}\r\n",
            escaped(&k.key),
            k.rate
        );
    }
}

/// A key as `INFO` can show it on one `field:value` line: printable ASCII other than the
/// separators of `key=...,rate=...` (`,` `=` and the escape `\`) as is, every other byte
/// as `\xHH`.
fn escaped(key: &[u8]) -> String {
    let mut s = String::with_capacity(key.len());
    for &b in key {
        if b.is_ascii_graphic() && !matches!(b, b',' | b'=' | b'\\') {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::escaped;

    #[test]
    fn keys_in_info_stay_on_one_line() {
        assert_eq!(escaped(b"user:1,x=y"), "user:1\\x2cx\\x3dy");
        assert_eq!(escaped(b"a b\r\n"), "a\\x20b\\x0d\\x0a");
        assert_eq!(escaped(b"plain-key_9"), "plain-key_9");
    }
}
