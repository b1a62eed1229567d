//! [`Breaker`]: a per-node circuit breaker, as a sans-IO state machine driven with the
//! current time.
//!
//! Closed, it counts consecutive failures (connection errors and timeouts; error replies
//! are answers, not failures). At [`BreakerSettings::failure_threshold`] it opens: calls
//! to the node fail fast with [`Error::CircuitOpen`](crate::Error::CircuitOpen) instead of
//! each waiting for a connect timeout. After [`BreakerSettings::open_for`] it half-opens
//! and lets exactly one probe through; the probe's success closes it, its failure opens it
//! again for another period. (The pattern as Nygard's *Release It!* names it.)

use std::time::{Duration, Instant};

/// When a breaker opens and how long it stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long an open circuit fails fast before it lets a probe through.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            // Five in a row: one dropped connection (which fails every request in flight
            // at once, counted as one failure per attempt) does not open it.
            failure_threshold: 5,
            // Short next to a call's default 5 s deadline, so a node that comes back is
            // probed while callers are still retrying.
            open_for: Duration::from_millis(500),
        }
    }
}

/// The state a breaker is in, as client metrics report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast until the probe time.
    Open,
    /// One probe is allowed (or in flight); its outcome decides.
    HalfOpen,
}

/// One node's breaker.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: BreakerState,
    consecutive_failures: u32,
    /// When the circuit last opened (meaningful while open).
    opened_at: Option<Instant>,
    /// A half-open probe is out and has not reported back.
    probing: bool,
    /// Times the circuit has opened, for metrics.
    opened_count: u64,
}

/// What [`Breaker::try_acquire`] allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go ahead.
    Allowed,
    /// Half-open: go ahead as the one probe; report its outcome.
    Probe,
    /// Open (or a probe is already out): fail fast.
    Rejected,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Breaker {
        Breaker {
            settings,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            opened_at: None,
            probing: false,
            opened_count: 0,
        }
    }

    /// Whether a call may go to the node now.
    pub fn try_acquire(&mut self, now: Instant) -> Admission {
        match self.state {
            BreakerState::Closed => Admission::Allowed,
            BreakerState::Open => {
                let due = self
                    .opened_at
                    .is_none_or(|at| now.saturating_duration_since(at) >= self.settings.open_for);
                if due {
                    self.state = BreakerState::HalfOpen;
                    self.probing = true;
                    Admission::Probe
                } else {
                    Admission::Rejected
                }
            }
            BreakerState::HalfOpen if !self.probing => {
                self.probing = true;
                Admission::Probe
            }
            BreakerState::HalfOpen => Admission::Rejected,
        }
    }

    /// The node answered.
    pub fn on_success(&mut self) {
        self.state = BreakerState::Closed;
        self.consecutive_failures = 0;
        self.probing = false;
        self.opened_at = None;
    }

    /// The node failed a call (connection error or timeout).
    pub fn on_failure(&mut self, now: Instant) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let open = match self.state {
            BreakerState::Closed => self.consecutive_failures >= self.settings.failure_threshold,
            BreakerState::HalfOpen => true,
            BreakerState::Open => false,
        };
        if open {
            self.state = BreakerState::Open;
            self.opened_at = Some(now);
            self.probing = false;
            self.opened_count += 1;
        }
    }

    /// A probe ended without telling anything (its caller gave up): let another through.
    pub fn on_abandoned_probe(&mut self) {
        self.probing = false;
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// How many times the circuit has opened.
    pub fn opened_count(&self) -> u64 {
        self.opened_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerSettings {
            failure_threshold: 3,
            open_for: Duration::from_secs(1),
        })
    }

    #[test]
    fn it_opens_after_the_threshold_of_consecutive_failures() {
        let mut b = breaker();
        let t = Instant::now();
        b.on_failure(t);
        b.on_failure(t);
        assert_eq!(b.try_acquire(t), Admission::Allowed);
        b.on_success();
        b.on_failure(t);
        b.on_failure(t);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "a success resets the count"
        );
        b.on_failure(t);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.try_acquire(t + Duration::from_millis(999)),
            Admission::Rejected
        );
        assert_eq!(b.opened_count(), 1);
    }

    #[test]
    fn it_half_opens_for_exactly_one_probe() {
        let mut b = breaker();
        let t = Instant::now();
        (0..3).for_each(|_| b.on_failure(t));
        let later = t + Duration::from_secs(1);
        assert_eq!(b.try_acquire(later), Admission::Probe);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(
            b.try_acquire(later),
            Admission::Rejected,
            "one probe at a time"
        );
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.try_acquire(later), Admission::Allowed);
    }

    #[test]
    fn a_failed_probe_opens_it_for_another_period() {
        let mut b = breaker();
        let t = Instant::now();
        (0..3).for_each(|_| b.on_failure(t));
        let probe_at = t + Duration::from_secs(1);
        assert_eq!(b.try_acquire(probe_at), Admission::Probe);
        b.on_failure(probe_at);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.try_acquire(probe_at + Duration::from_millis(500)),
            Admission::Rejected
        );
        assert_eq!(
            b.try_acquire(probe_at + Duration::from_secs(1)),
            Admission::Probe
        );
        assert_eq!(b.opened_count(), 2);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_caller_probe() {
        let mut b = breaker();
        let t = Instant::now();
        (0..3).for_each(|_| b.on_failure(t));
        let later = t + Duration::from_secs(2);
        assert_eq!(b.try_acquire(later), Admission::Probe);
        b.on_abandoned_probe();
        assert_eq!(b.try_acquire(later), Admission::Probe);
    }
}
