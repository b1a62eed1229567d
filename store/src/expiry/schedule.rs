//! [`ExpirySchedule`]: when, and how much, the owner of a cache runs the active sweep.
//!
//! The idea is Redis's active expire cycle (`activeExpireCycle`): a timer fires `hz` times a
//! second, and each firing (a *tick*) runs sweep *steps* of a fixed number of checks,
//! continuing while a good share of the checked keys turned out expired. The schedule is
//! pure: it says how many checks the next step gets and learns how the last one went; the
//! owner runs [`Cache::sweep_expired`](crate::Cache::sweep_expired) and owns the timer, so the
//! server's cron and the benchmarks drive the sweep the same way.

use std::time::Duration;

/// Checks per step: each check costs well under a microsecond, so a step stays well under
/// a millisecond, the longest pause the sweep may cause.
pub(crate) const CHECKS_PER_STEP: usize = 1_000;

/// Steps per tick at most, so a burst of expiries is reclaimed within one tick without the
/// tick running unbounded.
const MAX_STEPS_PER_TICK: usize = 16;

/// Another step follows only if at least `1 / CONTINUE_DIVISOR` of the last step's checks
/// were expired (Redis's historical 25%).
const CONTINUE_DIVISOR: usize = 4;

/// Milliseconds per second, to turn `hz` into a period.
const MILLIS_PER_SECOND: u64 = 1_000;

/// The active expiry cadence: `hz` ticks a second, each running up to
/// [`MAX_STEPS_PER_TICK`] steps.
///
/// ```
/// use cachalot_store::{Cache, ExpirySchedule};
///
/// let cache: Cache<u32, u32> = Cache::builder().build()?;
/// let schedule = ExpirySchedule::new(10);
/// assert_eq!(schedule.period().as_millis(), 100);
/// // Every `schedule.period()`:
/// let mut tick = schedule.tick();
/// while let Some(checks) = tick.next_step() {
///     let removed = cache.sweep_expired(checks);
///     tick.record(removed);
///     // (an async owner yields here, so one tick never blocks its thread for long)
/// }
/// # Ok::<(), cachalot_store::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpirySchedule {
    /// Ticks per second, at least 1.
    hz: u32,
}

impl ExpirySchedule {
    /// A schedule of `hz` ticks a second (Redis's `hz`; 0 counts as 1).
    pub fn new(hz: u32) -> Self {
        Self { hz: hz.max(1) }
    }

    /// Time between ticks: a second over `hz`, in whole milliseconds.
    pub fn period(self) -> Duration {
        Duration::from_millis(MILLIS_PER_SECOND / u64::from(self.hz))
    }

    /// The plan for one tick.
    pub fn tick(self) -> ExpiryTick {
        ExpiryTick {
            steps: 0,
            last_removed: None,
        }
    }
}

/// One tick of an [`ExpirySchedule`]: hands out steps until the tick is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryTick {
    /// Steps recorded so far.
    steps: usize,
    /// Entries the last recorded step removed; `None` before the first.
    last_removed: Option<usize>,
}

impl ExpiryTick {
    /// The checks to give the next [`Cache::sweep_expired`](crate::Cache::sweep_expired)
    /// call, or `None` when the tick is over.
    pub fn next_step(&self) -> Option<usize> {
        if self.steps >= MAX_STEPS_PER_TICK {
            return None;
        }
        match self.last_removed {
            Some(removed) if removed < CHECKS_PER_STEP / CONTINUE_DIVISOR => None,
            _ => Some(CHECKS_PER_STEP),
        }
    }

    /// Records how many entries the step just run removed.
    pub fn record(&mut self, removed: usize) {
        self.steps += 1;
        self.last_removed = Some(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a tick where the `i`-th step removes `removed(i)` entries; returns the steps run.
    fn run_tick(removed: impl Fn(usize) -> usize) -> usize {
        let mut tick = ExpirySchedule::new(10).tick();
        let mut steps = 0;
        while let Some(checks) = tick.next_step() {
            assert_eq!(checks, CHECKS_PER_STEP);
            tick.record(removed(steps));
            steps += 1;
        }
        steps
    }

    #[test]
    fn the_period_is_a_second_over_hz() {
        assert_eq!(ExpirySchedule::new(10).period(), Duration::from_millis(100));
        assert_eq!(ExpirySchedule::new(500).period(), Duration::from_millis(2));
        assert_eq!(ExpirySchedule::new(0).period(), Duration::from_secs(1));
    }

    #[test]
    fn a_tick_with_few_expired_keys_runs_one_step() {
        assert_eq!(run_tick(|_| 0), 1);
        assert_eq!(run_tick(|_| CHECKS_PER_STEP / CONTINUE_DIVISOR - 1), 1);
    }

    #[test]
    fn a_tick_continues_while_many_checked_keys_were_expired() {
        let busy = CHECKS_PER_STEP / CONTINUE_DIVISOR;
        assert_eq!(run_tick(|i| if i < 3 { busy } else { 0 }), 4);
        assert_eq!(run_tick(|_| CHECKS_PER_STEP), MAX_STEPS_PER_TICK);
    }
}
