//! [`Breaker`]: a per-node circuit breaker, as a sans-IO state machine driven with the
//! current time.
//!
//! Closed, it counts consecutive failures (connection errors and timeouts; error replies
//! are answers, not failures). Once there have been [`BreakerSettings::failure_threshold`]
//! of them over at least [`BreakerSettings::min_failing_for`] (so a node restarting in a
//! moment does not trip it), it opens: calls to the node fail fast with
//! [`Error::CircuitOpen`](crate::Error::CircuitOpen) instead of each waiting for a connect
//! timeout. After [`BreakerSettings::open_for`] it half-opens and lets exactly one probe
//! through; the probe's success closes it, its failure opens it again for another period.
//! (The pattern as Nygard's *Release It!* names it.)
//!
//! Every admission carries the breaker's generation, which moves on each state change, and
//! an outcome reported for an older generation is ignored: a slow success from before the
//! circuit opened cannot close it, and only the probe decides a half-open circuit.

use std::time::{Duration, Instant};

/// When a breaker opens and how long it stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long failures must have gone on (since the first of the run) before the
    /// circuit may open.
    pub min_failing_for: Duration,
    /// How long an open circuit fails fast before it lets a probe through.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            // Five in a row: one dropped connection (which fails every request in flight
            // at once, counted as one failure per attempt) does not open it.
            failure_threshold: 5,
            // A node that restarts comes back within about a second; callers retry
            // through that instead of being failed fast.
            min_failing_for: Duration::from_secs(1),
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
    /// When the current run of failures began.
    failing_since: Option<Instant>,
    /// Moves on every state change; outcomes of older admissions are ignored.
    generation: u64,
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
    /// Closed: go ahead, and report the outcome with this generation.
    Allowed(u64),
    /// Half-open: go ahead as the one probe; report its outcome with this generation.
    Probe(u64),
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
            failing_since: None,
            generation: 0,
            opened_at: None,
            probing: false,
            opened_count: 0,
        }
    }

    /// Moves to `state`, starting a new generation.
    fn enter(&mut self, state: BreakerState) {
        self.state = state;
        self.generation += 1;
    }

    /// Whether a call may go to the node now.
    pub fn try_acquire(&mut self, now: Instant) -> Admission {
        match self.state {
            BreakerState::Closed => Admission::Allowed(self.generation),
            BreakerState::Open => {
                let due = self
                    .opened_at
                    .is_none_or(|at| now.saturating_duration_since(at) >= self.settings.open_for);
                if due {
                    self.enter(BreakerState::HalfOpen);
                    self.probing = true;
                    Admission::Probe(self.generation)
                } else {
                    Admission::Rejected
                }
            }
            BreakerState::HalfOpen if !self.probing => {
                self.probing = true;
                Admission::Probe(self.generation)
            }
            BreakerState::HalfOpen => Admission::Rejected,
        }
    }

    /// The node answered a call admitted in `generation`.
    pub fn on_success(&mut self, generation: u64) {
        if generation != self.generation {
            return;
        }
        if self.state != BreakerState::Closed {
            self.enter(BreakerState::Closed);
        }
        self.consecutive_failures = 0;
        self.failing_since = None;
        self.probing = false;
        self.opened_at = None;
    }

    /// A call admitted in `generation` failed (connection error or timeout).
    pub fn on_failure(&mut self, generation: u64, now: Instant) {
        if generation != self.generation {
            return;
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let since = *self.failing_since.get_or_insert(now);
        let open = match self.state {
            BreakerState::Closed => {
                self.consecutive_failures >= self.settings.failure_threshold
                    && now.saturating_duration_since(since) >= self.settings.min_failing_for
            }
            BreakerState::HalfOpen => true,
            BreakerState::Open => false,
        };
        if open {
            self.enter(BreakerState::Open);
            self.opened_at = Some(now);
            self.probing = false;
            self.opened_count += 1;
        }
    }

    /// The probe of `generation` ended without telling anything (its caller gave up): let
    /// another through.
    pub fn on_abandoned_probe(&mut self, generation: u64) {
        if generation == self.generation {
            self.probing = false;
        }
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
            min_failing_for: Duration::ZERO,
            open_for: Duration::from_secs(1),
        })
    }

    /// The generation a closed breaker admits calls in.
    fn admitted(b: &mut Breaker, now: Instant) -> u64 {
        match b.try_acquire(now) {
            Admission::Allowed(g) | Admission::Probe(g) => g,
            Admission::Rejected => panic!("rejected"),
        }
    }

    #[test]
    fn it_opens_after_the_threshold_of_consecutive_failures() {
        let mut b = breaker();
        let t = Instant::now();
        let g = admitted(&mut b, t);
        b.on_failure(g, t);
        b.on_failure(g, t);
        b.on_success(g);
        b.on_failure(g, t);
        b.on_failure(g, t);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "a success resets the count"
        );
        b.on_failure(g, t);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.try_acquire(t + Duration::from_millis(999)),
            Admission::Rejected
        );
        assert_eq!(b.opened_count(), 1);
    }

    #[test]
    fn failures_must_last_the_minimum_time_before_it_opens() {
        let mut b = Breaker::new(BreakerSettings {
            failure_threshold: 3,
            min_failing_for: Duration::from_secs(1),
            open_for: Duration::from_secs(1),
        });
        let t = Instant::now();
        let g = admitted(&mut b, t);
        (0..10).for_each(|_| b.on_failure(g, t + Duration::from_millis(500)));
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "a short outage does not trip it"
        );
        b.on_failure(g, t + Duration::from_millis(1600));
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn it_half_opens_for_exactly_one_probe() {
        let mut b = breaker();
        let t = Instant::now();
        let g = admitted(&mut b, t);
        (0..3).for_each(|_| b.on_failure(g, t));
        let later = t + Duration::from_secs(1);
        let Admission::Probe(p) = b.try_acquire(later) else {
            panic!("a probe is due");
        };
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(
            b.try_acquire(later),
            Admission::Rejected,
            "one probe at a time"
        );
        b.on_success(p);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(matches!(b.try_acquire(later), Admission::Allowed(_)));
    }

    #[test]
    fn a_failed_probe_opens_it_for_another_period() {
        let mut b = breaker();
        let t = Instant::now();
        let g = admitted(&mut b, t);
        (0..3).for_each(|_| b.on_failure(g, t));
        let probe_at = t + Duration::from_secs(1);
        let p = admitted(&mut b, probe_at);
        b.on_failure(p, probe_at);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(
            b.try_acquire(probe_at + Duration::from_millis(500)),
            Admission::Rejected
        );
        assert!(matches!(
            b.try_acquire(probe_at + Duration::from_secs(1)),
            Admission::Probe(_)
        ));
        assert_eq!(b.opened_count(), 2);
    }

    #[test]
    fn late_outcomes_of_older_calls_change_nothing() {
        let mut b = breaker();
        let t = Instant::now();
        let old = admitted(&mut b, t);
        (0..3).for_each(|_| b.on_failure(old, t));
        b.on_success(old);
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "a slow success does not close it"
        );
        let probe = admitted(&mut b, t + Duration::from_secs(1));
        b.on_failure(old, t + Duration::from_secs(1));
        assert_eq!(b.state(), BreakerState::HalfOpen, "only the probe decides");
        b.on_success(probe);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_caller_probe() {
        let mut b = breaker();
        let t = Instant::now();
        let g = admitted(&mut b, t);
        (0..3).for_each(|_| b.on_failure(g, t));
        let later = t + Duration::from_secs(2);
        let p = admitted(&mut b, later);
        b.on_abandoned_probe(p);
        assert!(matches!(b.try_acquire(later), Admission::Probe(_)));
    }
}
