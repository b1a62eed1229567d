//! The time source: unix-epoch milliseconds behind a trait, so tests can drive time.
//!
//! Every expiry in the store is an absolute unix time in milliseconds, the same unit as
//! Redis's `PEXPIREAT`, so a primary can ship absolute times to its replicas unchanged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time in unix-epoch milliseconds.
///
/// Writes read `now_millis` once per operation, outside the shard locks. Reads (`get`,
/// `peek_with`, `contains`, `ttl`, ...) take [`coarse_millis`](Self::coarse_millis) before
/// locking, and read `now_millis` under the lock only when the entry found has an expiry to
/// judge.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the unix epoch.
    fn now_millis(&self) -> u64;

    /// Milliseconds since the unix epoch, a little behind [`now_millis`](Self::now_millis)
    /// and never ahead of it. An implementation must stay less than a minute behind: an LFU
    /// stamp at most a minute ahead of the judging time reads as not idle
    /// (`Access::frequency`), and one further ahead as a wrapped clock. Used only to record
    /// accesses (last-access seconds, LFU minutes), never to judge an expiry. Defaults to
    /// `now_millis`.
    fn coarse_millis(&self) -> u64 {
        self.now_millis()
    }
}

/// The wall clock ([`SystemTime`]).
///
/// A clock set before 1970 reads as 0; a clock stepped backwards makes entries live a little
/// longer, never shorter, than their TTL would say (expiry compares absolute times).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, duration_to_millis)
    }

    /// Linux's `CLOCK_REALTIME_COARSE`: the time of the last timer tick (one tick is 1–10 ms,
    /// by the kernel's HZ), which the vDSO reads from memory without reading the hardware
    /// clock; elsewhere `now_millis`.
    fn coarse_millis(&self) -> u64 {
        coarse_realtime_millis().unwrap_or_else(|| self.now_millis())
    }
}

#[cfg(target_os = "linux")]
fn coarse_realtime_millis() -> Option<u64> {
    use nix::time::{clock_gettime, ClockId};
    let t = clock_gettime(ClockId::CLOCK_REALTIME_COARSE).ok()?;
    let secs = u64::try_from(t.tv_sec()).ok()?;
    let millis = u64::try_from(t.tv_nsec()).ok()? / 1_000_000;
    Some(secs.saturating_mul(1_000).saturating_add(millis))
}

#[cfg(not(target_os = "linux"))]
fn coarse_realtime_millis() -> Option<u64> {
    None
}

/// A clock that only moves when told to, for deterministic TTL and idle-time tests.
///
/// Share it with the cache through an `Arc` and keep a clone to move time:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cachalot_store::{Clock, ManualClock};
///
/// let clock = Arc::new(ManualClock::new(1_000));
/// clock.advance(Duration::from_millis(500));
/// assert_eq!(clock.now_millis(), 1_500);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    /// Current time; written by `set`/`advance`, read by the cache.
    now_millis: AtomicU64,
}

impl ManualClock {
    /// A clock that reads `start_millis` until moved.
    pub fn new(start_millis: u64) -> Self {
        Self {
            now_millis: AtomicU64::new(start_millis),
        }
    }

    /// Jumps to `millis` (backwards too).
    pub fn set(&self, millis: u64) {
        self.now_millis.store(millis, Ordering::SeqCst);
    }

    /// Moves forward by `by`, rounded up to whole milliseconds, saturating at `u64::MAX`.
    pub fn advance(&self, by: Duration) {
        let by = duration_to_millis(by);
        // `fetch_update` with a closure that always returns `Some` cannot fail.
        let _ = self
            .now_millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.now_millis.load(Ordering::SeqCst)
    }
}

/// Whole milliseconds in `d`, rounded up (a 1 µs TTL is 1 ms, not 0), saturating.
/// In 64- and 32-bit arithmetic: this runs on every clock read, and a 128-bit division
/// (`as_nanos`) costs more than the rest of the conversion.
pub(crate) fn duration_to_millis(d: Duration) -> u64 {
    let whole = d.as_secs().saturating_mul(1_000);
    whole.saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(42);
        assert_eq!(clock.now_millis(), 42);
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now_millis(), 1_042);
        clock.set(7);
        assert_eq!(clock.now_millis(), 7);
    }

    #[test]
    fn the_coarse_system_clock_is_close_behind_the_precise_one() {
        let before = SystemClock.now_millis();
        let coarse = SystemClock.coarse_millis();
        let after = SystemClock.now_millis();
        assert!(coarse <= after, "{coarse} > {after}");
        // A tick is at most 10 ms; a loose bound, since a VM's timekeeping can stall.
        assert!(coarse + 1_000 >= before, "{coarse} far behind {before}");
        assert_eq!(ManualClock::new(5).coarse_millis(), 5);
    }

    #[test]
    fn manual_clock_saturates_instead_of_wrapping() {
        let clock = ManualClock::new(u64::MAX - 1);
        clock.advance(Duration::from_secs(10));
        assert_eq!(clock.now_millis(), u64::MAX);
    }

    #[test]
    fn durations_round_up_to_whole_milliseconds() {
        assert_eq!(duration_to_millis(Duration::ZERO), 0);
        assert_eq!(duration_to_millis(Duration::from_micros(1)), 1);
        assert_eq!(duration_to_millis(Duration::from_millis(1500)), 1500);
        assert_eq!(duration_to_millis(Duration::MAX), u64::MAX);
        assert_eq!(duration_to_millis(Duration::new(2, 999_999_999)), 3_000);
        assert_eq!(duration_to_millis(Duration::new(2, 1)), 2_001);
        assert_eq!(
            duration_to_millis(Duration::new(u64::MAX / 1_000, 0)),
            u64::MAX / 1_000 * 1_000
        );
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_millis() > 1_577_836_800_000);
    }
}
