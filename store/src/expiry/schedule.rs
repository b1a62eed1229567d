//! [`ExpirySchedule`]: when, and how much, the owner of a cache runs the active sweep.
//!
//! The idea is Redis's active expire cycle (`activeExpireCycle`): a timer fires `hz` times a
//! second, and each firing (a *tick*) runs sweep *steps* of a fixed number of checks. A tick
//! goes on while more than a tenth of the last step's checks found an expired entry, and
//! stops once its steps have spent a quarter of the tick period, so the sweep spends at
//! most 25% of a core however far behind it is. Each step is short (a pause of well under a
//! millisecond); the owner may yield between steps.
//!
//! Why this keeps expired entries under a tenth of memory: the sweep walks each shard's
//! expiring index in passes, and the share of expired entries just ahead of its cursor is
//! the highest anywhere (those entries were checked longest ago). A tick stops only once
//! that share is 10% or less, so the share over the whole index, which grows from zero just
//! behind the cursor to that value just ahead of it, averages about half of it — as long as
//! the time budget allows the checks that takes, i.e. the expiry rate is not beyond the
//! sweep's speed.
//!
//! The schedule is pure: it says how many checks the next step gets and learns how the last
//! one went and how long it took; the owner runs
//! [`Cache::sweep_expired`](crate::Cache::sweep_expired), times it and owns the timer, so
//! the server's cron and the benchmarks drive the sweep the same way.

use std::time::Duration;

/// Checks per step: a check costs about 0.1 µs (a cache miss on the entry), a removal a
/// few times that, so a step stays far below a millisecond, the longest pause the sweep may
/// cause, even when every check removes.
pub(crate) const CHECKS_PER_STEP: usize = 1_000;

/// A tick goes on while more than this percentage of the last step's checks were expired
/// (Redis's `ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE` at the default effort).
const ACCEPTABLE_EXPIRED_PERCENT: usize = 10;

/// Percentage of the tick period a tick's steps may spend (Redis's
/// `ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`): 25 ms per tick at the default `hz` of 10.
const TICK_BUDGET_PERCENT: u32 = 25;

/// The least a step can cost (1,000 checks at 20 ns, less than one cache miss each): a
/// tick runs at most its budget over this many steps, whatever durations are reported, a
/// backstop for owners whose timer reads zero.
const MIN_STEP_MICROS: u128 = 20;

/// Milliseconds per second, to turn `hz` into a period.
const MILLIS_PER_SECOND: u64 = 1_000;

/// The active expiry cadence: `hz` ticks a second, each running steps while many checked
/// entries were expired, within a time budget of a quarter of the period.
///
/// ```
/// use std::time::Instant;
/// use cachalot_store::{Cache, ExpirySchedule};
///
/// let cache: Cache<u32, u32> = Cache::builder().build()?;
/// let schedule = ExpirySchedule::new(10);
/// assert_eq!(schedule.period().as_millis(), 100);
/// // Every `schedule.period()`:
/// let mut tick = schedule.tick();
/// while let Some(checks) = tick.next_step() {
///     let started = Instant::now();
///     let removed = cache.sweep_expired(checks);
///     tick.record(removed, started.elapsed());
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

    /// The time one tick's steps may spend: a quarter of the period.
    pub fn tick_budget(self) -> Duration {
        self.period() * TICK_BUDGET_PERCENT / 100
    }

    /// The plan for one tick.
    pub fn tick(self) -> ExpiryTick {
        let budget = self.tick_budget();
        let max_steps = (budget.as_micros() / MIN_STEP_MICROS).max(1);
        ExpiryTick {
            budget,
            max_steps: usize::try_from(max_steps).unwrap_or(usize::MAX),
            spent: Duration::ZERO,
            steps: 0,
            last_removed: None,
        }
    }
}

/// One tick of an [`ExpirySchedule`]: hands out steps until the tick is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryTick {
    /// Time the tick's steps may spend.
    budget: Duration,
    /// Steps the tick may run at most (see [`MIN_STEP_MICROS`]).
    max_steps: usize,
    /// Time its steps have spent so far, as reported.
    spent: Duration,
    /// Steps recorded so far.
    steps: usize,
    /// Entries the last recorded step removed; `None` before the first.
    last_removed: Option<usize>,
}

impl ExpiryTick {
    /// The checks to give the next [`Cache::sweep_expired`](crate::Cache::sweep_expired)
    /// call, or `None` when the tick is over: the last step found few expired entries, or
    /// the time budget is spent.
    pub fn next_step(&self) -> Option<usize> {
        if self.steps >= self.max_steps || self.spent >= self.budget {
            return None;
        }
        match self.last_removed {
            Some(removed) if removed * 100 <= CHECKS_PER_STEP * ACCEPTABLE_EXPIRED_PERCENT => None,
            _ => Some(CHECKS_PER_STEP),
        }
    }

    /// Records how many entries the step just run removed and how long it took.
    pub fn record(&mut self, removed: usize, took: Duration) {
        self.steps += 1;
        self.spent = self.spent.saturating_add(took);
        self.last_removed = Some(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step that found this many expired entries among its checks.
    const BUSY: usize = CHECKS_PER_STEP * ACCEPTABLE_EXPIRED_PERCENT / 100 + 1;
    const QUIET: usize = CHECKS_PER_STEP * ACCEPTABLE_EXPIRED_PERCENT / 100;

    /// Runs a tick where the `i`-th step removes `removed(i)` entries and takes `took`;
    /// returns the steps run.
    fn run_tick(hz: u32, took: Duration, removed: impl Fn(usize) -> usize) -> usize {
        let mut tick = ExpirySchedule::new(hz).tick();
        let mut steps = 0;
        while let Some(checks) = tick.next_step() {
            assert_eq!(checks, CHECKS_PER_STEP);
            tick.record(removed(steps), took);
            steps += 1;
        }
        steps
    }

    #[test]
    fn the_period_is_a_second_over_hz_and_a_quarter_of_it_is_the_budget() {
        let cases = [(10, 100, 25), (500, 2, 0), (0, 1_000, 250), (4, 250, 62)];
        for (hz, period_ms, budget_ms) in cases {
            let schedule = ExpirySchedule::new(hz);
            assert_eq!(schedule.period(), Duration::from_millis(period_ms), "{hz}");
            assert_eq!(schedule.tick_budget().as_millis(), budget_ms, "{hz}");
        }
    }

    #[test]
    fn a_tick_with_few_expired_entries_runs_one_step() {
        let step = Duration::from_micros(100);
        assert_eq!(run_tick(10, step, |_| 0), 1);
        assert_eq!(run_tick(10, step, |_| QUIET), 1);
    }

    #[test]
    fn a_tick_goes_on_while_more_than_a_tenth_of_the_checks_were_expired() {
        let step = Duration::from_micros(100);
        assert_eq!(run_tick(10, step, |i| if i < 3 { BUSY } else { QUIET }), 4);
        assert_eq!(
            run_tick(10, step, |i| if i < 7 { CHECKS_PER_STEP } else { 0 }),
            8
        );
    }

    #[test]
    fn a_busy_tick_stops_when_its_time_budget_is_spent() {
        // 25 ms at hz 10: 250 steps of 100 µs, 25 steps of 1 ms, one step of 30 ms.
        assert_eq!(run_tick(10, Duration::from_micros(100), |_| BUSY), 250);
        assert_eq!(
            run_tick(10, Duration::from_millis(1), |_| CHECKS_PER_STEP),
            25
        );
        assert_eq!(run_tick(10, Duration::from_millis(30), |_| BUSY), 1);
        // At hz 1 the budget is 250 ms.
        assert_eq!(run_tick(1, Duration::from_millis(1), |_| BUSY), 250);
    }

    #[test]
    fn a_tick_whose_steps_take_no_time_still_ends() {
        // 25 ms over 20 µs.
        assert_eq!(run_tick(10, Duration::ZERO, |_| BUSY), 1_250);
        // 0.5 ms over 20 µs at hz 500.
        assert_eq!(run_tick(500, Duration::ZERO, |_| BUSY), 25);
    }
}
