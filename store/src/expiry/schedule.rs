//! [`ExpirySchedule`]: when, and how much, the owner of a cache runs the active sweep.
//!
//! The idea is Redis's active expire cycle (`activeExpireCycle`): a timer fires `hz` times a
//! second, and each firing (a *tick*) samples entries that have an expiry at random and,
//! while more than an acceptable share of them turn out expired, runs sweep *steps* of a
//! fixed number of checks, within a time budget of a quarter of the tick period (half of it
//! after a tick that ran out of time while behind), so the sweep spends at most 50% of a
//! core however far behind it is. Each step is short (a pause
//! well under a millisecond); the owner may yield between steps.
//!
//! Why sample rather than judge by what the sweep finds (as Redis can): Redis walks a hash
//! table, where old and new keys are mixed, but each shard's expiring index here keeps its
//! newest entries at its end, where a pass starts. A rule that stops as soon as a step finds
//! few expired entries stalls at the start of every pass while older entries pile up
//! expired. A random sample sees the whole cache whatever the cursor's place.
//!
//! With the acceptable share at 5%, the expired entries stay about 5% of the entries that
//! have an expiry (so at most about 5% of memory), as long as the budget allows the
//! removals. A removal, with its share of the walking and sampling, costs about 1.2 µs
//! (mostly the hash table's cache misses), so a quarter of a core keeps up with about
//! 200,000 expiries a second. A tick that spent its whole budget and was still behind
//! gives the next tick half the period instead (Redis likewise adds fast cycles between
//! its slow ones while the last slow cycle ran out of time), which keeps up with about
//! 400,000 a second; faster than that, the share grows until steps remove enough per
//! check to keep up.
//!
//! The schedule is pure: it says what the next step is and learns what it found and how
//! long it took; the owner runs [`Cache::sample_expired`](crate::Cache::sample_expired) or
//! [`Cache::sweep_expired`](crate::Cache::sweep_expired), times it and owns the timer, so
//! the server's cron and the benchmarks drive the sweep the same way.

use std::time::Duration;

/// Checks per sweep step. A check that the expiring index's bound rules out costs a few
/// nanoseconds, one that must read the entry a cache miss, and a removal about a
/// microsecond (mostly the hash table's cache misses), so a step stays well under a
/// millisecond, the longest pause the sweep may cause, even when every check removes (a
/// bulk load expiring at once).
pub(crate) const CHECKS_PER_STEP: usize = 256;

/// Entries sampled to judge whether the sweep is behind: at a true share of 5%, the
/// estimate's standard deviation is 1.4 points. Each sample costs a cache miss or two.
pub(crate) const SAMPLES_PER_STEP: usize = 256;

/// Sweep steps between two samples while behind (4,096 checks), so a tick stops soon after
/// it has caught up without sampling more than it sweeps.
const SWEEPS_PER_SAMPLE: usize = 16;

/// Samples, the latest of a tick, whose findings are added up to judge whether the sweep is
/// behind (1,024 entries: a standard deviation of 0.7 points at a true share of 5%).
/// Judging by each sample alone, a tick re-sampling every 16 steps soon met one noisy low
/// sample and stopped: measured, the expired share settled at 8% with half the budget
/// unused.
const SAMPLES_JUDGED: usize = 4;

/// The sweep is behind while more than this percentage of a sample is expired: half the
/// issue's target of 10% of memory, leaving room for the sample's noise.
const ACCEPTABLE_EXPIRED_PERCENT: usize = 5;

/// Percentage of the tick period a tick's steps may spend (Redis's
/// `ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`): 25 ms per tick at the default `hz` of 10.
const TICK_BUDGET_PERCENT: u32 = 25;

/// Percentage points of the period added to the budget of a tick that follows one that
/// ran out of budget while behind: 50 ms per tick at hz 10. Redis's fast cycles (1 ms at
/// most every 2 ms while the last slow cycle hit its time limit) can take up to half of
/// the event loop's time likewise. Measured at 200,000 expiries a second with every key
/// having a TTL (where the fixed 25% was all used): ticks after such a tick then take up to
/// 50 ms (the 99th percentile of a tick's sweep time), and the expired share peaks at 7.7%
/// instead of 9.3–11.6%, with [`SAMPLES_JUDGED`] doing most of that.
const BEHIND_EXTRA_PERCENT: u32 = 25;

/// The least a step can cost (256 checks the index's bound rules out): a tick runs at most
/// its budget over this many steps, whatever durations are reported, a backstop for owners
/// whose timer reads zero.
const MIN_STEP_MICROS: u128 = 1;

/// The active expiry cadence: `hz` ticks a second, each sampling, then sweeping while the
/// samples say the sweep is behind, within a time budget of a quarter of the period (half
/// after a tick that ran out of time while behind).
///
/// ```
/// use std::time::Instant;
/// use cachalot_store::{Cache, ExpirySchedule, ExpiryStep};
///
/// let cache: Cache<u32, u32> = Cache::builder().build()?;
/// let schedule = ExpirySchedule::new(10);
/// assert_eq!(schedule.period().as_millis(), 100);
/// let mut tick = schedule.tick();
/// # for _ in 0..2 {
/// // Every `schedule.period()`:
/// while let Some(step) = tick.next_step() {
///     let started = Instant::now();
///     let removed = match step {
///         ExpiryStep::Sample(samples) => cache.sample_expired(samples),
///         ExpiryStep::Sweep(checks) => cache.sweep_expired(checks),
///     };
///     tick.record(removed, started.elapsed());
///     // (an async owner yields here, so one tick never blocks its thread for long)
/// }
/// // The next tick's budget depends on how this one ended.
/// tick = schedule.next_tick(&tick);
/// # }
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
        Duration::from_millis(super::MILLIS_PER_SECOND / u64::from(self.hz))
    }

    /// The time one tick's steps may spend: a quarter of the period.
    pub fn tick_budget(self) -> Duration {
        self.period() * TICK_BUDGET_PERCENT / 100
    }

    /// The time the steps of a tick that follows one that ran out of budget while behind
    /// may spend: half the period.
    pub fn behind_budget(self) -> Duration {
        self.period() * (TICK_BUDGET_PERCENT + BEHIND_EXTRA_PERCENT) / 100
    }

    /// The plan for a first tick (the budget of [`tick_budget`](Self::tick_budget)).
    pub fn tick(self) -> ExpiryTick {
        self.tick_with(self.tick_budget())
    }

    /// The plan for the tick after `previous`: its budget is
    /// [`behind_budget`](Self::behind_budget) when `previous`
    /// [ran out while behind](ExpiryTick::ran_out_behind), else
    /// [`tick_budget`](Self::tick_budget).
    pub fn next_tick(self, previous: &ExpiryTick) -> ExpiryTick {
        if previous.ran_out_behind() {
            self.tick_with(self.behind_budget())
        } else {
            self.tick()
        }
    }

    fn tick_with(self, budget: Duration) -> ExpiryTick {
        let max_steps = (budget.as_micros() / MIN_STEP_MICROS).max(2);
        ExpiryTick {
            budget,
            max_steps: usize::try_from(max_steps).unwrap_or(usize::MAX),
            spent: Duration::ZERO,
            steps: 0,
            behind: false,
            sweeps_since_sample: 0,
            judged: [(0, 0); SAMPLES_JUDGED],
            samples_taken: 0,
            pending: None,
        }
    }
}

/// What the owner runs for one step of an [`ExpiryTick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryStep {
    /// [`Cache::sample_expired`](crate::Cache::sample_expired) with this many samples.
    Sample(usize),
    /// [`Cache::sweep_expired`](crate::Cache::sweep_expired) with this many checks.
    Sweep(usize),
}

/// One tick of an [`ExpirySchedule`]: hands out steps until the tick is over.
///
/// A tick starts with a sample. If at most 5% of it was expired, one sweep step follows
/// (so every entry is checked now and then) and the tick ends. Otherwise sweep steps
/// follow, with a new sample every 16 of them, until the tick's latest 4 samples together
/// find 5% or less or the time budget is spent; in the latter case the tick [ran out while
/// behind](Self::ran_out_behind) and the next one gets a larger budget.
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
    /// Whether the last sample found more than the acceptable share expired.
    behind: bool,
    /// Sweep steps recorded since the last sample.
    sweeps_since_sample: usize,
    /// Entries looked at and found expired by the tick's latest samples, the most recent at
    /// `samples_taken % SAMPLES_JUDGED`.
    judged: [(usize, usize); SAMPLES_JUDGED],
    /// Samples recorded so far.
    samples_taken: usize,
    /// The step handed out and not recorded yet.
    pending: Option<ExpiryStep>,
}

impl ExpiryTick {
    /// The next step to run, or `None` when the tick is over. Record each step before
    /// asking for the next; asking again without recording hands out the same step.
    pub fn next_step(&mut self) -> Option<ExpiryStep> {
        if self.pending.is_none() {
            self.pending = self.plan();
        }
        self.pending
    }

    /// Whether the tick is over for lack of time (its budget or step cap reached) while its
    /// last sample said the sweep was behind.
    pub fn ran_out_behind(&self) -> bool {
        self.behind && (self.spent >= self.budget || self.steps >= self.max_steps)
    }

    /// Records what the step just run removed and how long it took.
    pub fn record(&mut self, removed: usize, took: Duration) {
        self.steps += 1;
        self.spent = self.spent.saturating_add(took);
        match self.pending.take() {
            Some(ExpiryStep::Sample(samples)) => {
                if let Some(slot) = self.judged.get_mut(self.samples_taken % SAMPLES_JUDGED) {
                    *slot = (samples, removed);
                }
                self.samples_taken += 1;
                let (looked, expired) = self
                    .judged
                    .iter()
                    .fold((0, 0), |(l, e), &(sl, se)| (l + sl, e + se));
                self.behind = expired * 100 > looked * ACCEPTABLE_EXPIRED_PERCENT;
                self.sweeps_since_sample = 0;
            }
            Some(ExpiryStep::Sweep(_)) => self.sweeps_since_sample += 1,
            None => {}
        }
    }

    fn plan(&self) -> Option<ExpiryStep> {
        if self.steps == 0 {
            return Some(ExpiryStep::Sample(SAMPLES_PER_STEP));
        }
        if self.steps >= self.max_steps || self.spent >= self.budget {
            return None;
        }
        if !self.behind {
            return (self.steps == 1).then_some(ExpiryStep::Sweep(CHECKS_PER_STEP));
        }
        if self.sweeps_since_sample >= SWEEPS_PER_SAMPLE {
            Some(ExpiryStep::Sample(SAMPLES_PER_STEP))
        } else {
            Some(ExpiryStep::Sweep(CHECKS_PER_STEP))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expired entries in a sample that says the sweep is behind, and in one that doesn't.
    const BEHIND: usize = SAMPLES_PER_STEP * ACCEPTABLE_EXPIRED_PERCENT / 100 + 1;
    const ON_TRACK: usize = SAMPLES_PER_STEP * ACCEPTABLE_EXPIRED_PERCENT / 100;

    /// Runs a tick where the `i`-th sample finds `sampled(i)` expired entries, sweep steps
    /// remove nothing and every step takes `took`; returns the steps run, as `S` (sample)
    /// and `W` (sweep).
    fn run_tick(hz: u32, took: Duration, sampled: impl Fn(usize) -> usize) -> String {
        let mut tick = ExpirySchedule::new(hz).tick();
        run(&mut tick, took, sampled)
    }

    /// Runs `tick` as [`run_tick`] does.
    fn run(tick: &mut ExpiryTick, took: Duration, sampled: impl Fn(usize) -> usize) -> String {
        let mut steps = String::new();
        let mut samples = 0;
        while let Some(step) = tick.next_step() {
            match step {
                ExpiryStep::Sample(n) => {
                    assert_eq!(n, SAMPLES_PER_STEP);
                    steps.push('S');
                    tick.record(sampled(samples), took);
                    samples += 1;
                }
                ExpiryStep::Sweep(n) => {
                    assert_eq!(n, CHECKS_PER_STEP);
                    steps.push('W');
                    tick.record(0, took);
                }
            }
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
    fn a_tick_on_track_samples_then_sweeps_one_step() {
        let step = Duration::from_micros(50);
        assert_eq!(run_tick(10, step, |_| 0), "SW");
        assert_eq!(run_tick(10, step, |_| ON_TRACK), "SW");
    }

    #[test]
    fn a_tick_behind_sweeps_until_a_sample_is_on_track() {
        let step = Duration::from_micros(50);
        let sweeps = "W".repeat(SWEEPS_PER_SAMPLE);
        assert_eq!(
            run_tick(10, step, |i| if i < 2 { BEHIND } else { ON_TRACK }),
            format!("S{sweeps}S{sweeps}S")
        );
    }

    #[test]
    fn one_low_sample_does_not_end_a_tick_far_behind() {
        // 12% expired, then samples at 4.7% each: the latest four together reach 5% or
        // less only once the first has left them.
        let step = Duration::from_micros(50);
        let far = SAMPLES_PER_STEP * 12 / 100;
        let ran = run_tick(10, step, |i| if i == 0 { far } else { ON_TRACK });
        assert_eq!(ran.matches('S').count(), SAMPLES_JUDGED + 1, "{ran}");
    }

    #[test]
    fn a_tick_behind_stops_when_its_time_budget_is_spent() {
        // 25 ms at hz 10: 250 steps of 100 µs, 25 of 1 ms, one of 30 ms (a sample).
        let behind = |_| BEHIND;
        assert_eq!(run_tick(10, Duration::from_micros(100), behind).len(), 250);
        assert_eq!(run_tick(10, Duration::from_millis(1), behind).len(), 25);
        assert_eq!(run_tick(10, Duration::from_millis(30), behind), "S");
        // At hz 1 the budget is 250 ms.
        assert_eq!(run_tick(1, Duration::from_millis(1), behind).len(), 250);
    }

    #[test]
    fn a_tick_whose_steps_take_no_time_still_ends() {
        // 25 ms over 1 µs.
        assert_eq!(run_tick(10, Duration::ZERO, |_| BEHIND).len(), 25_000);
        // 0.5 ms over 1 µs at hz 500.
        assert_eq!(run_tick(500, Duration::ZERO, |_| BEHIND).len(), 500);
    }

    #[test]
    fn a_tick_after_one_that_ran_out_behind_gets_half_the_period() {
        let schedule = ExpirySchedule::new(10);
        assert_eq!(schedule.behind_budget(), Duration::from_millis(50));
        let step = Duration::from_micros(100);
        let mut first = schedule.tick();
        assert_eq!(run(&mut first, step, |_| BEHIND).len(), 250);
        assert!(first.ran_out_behind());
        let mut second = schedule.next_tick(&first);
        assert_eq!(run(&mut second, step, |_| BEHIND).len(), 500);
        // Caught up within the larger budget: the next tick is back to a quarter.
        let mut third = schedule.next_tick(&second);
        assert_eq!(
            run(&mut third, step, |i| if i < 2 { BEHIND } else { ON_TRACK }).len(),
            35
        );
        assert!(!third.ran_out_behind());
        let mut fourth = schedule.next_tick(&third);
        assert_eq!(run(&mut fourth, step, |_| BEHIND).len(), 250);
    }

    #[test]
    fn only_a_tick_out_of_time_while_behind_raises_the_next_budget() {
        let schedule = ExpirySchedule::new(10);
        // One sample that alone takes the whole budget.
        let slow = Duration::from_millis(30);
        let mut on_track = schedule.tick();
        assert_eq!(run(&mut on_track, slow, |_| ON_TRACK), "S");
        assert!(!on_track.ran_out_behind());
        let mut behind = schedule.tick();
        assert_eq!(run(&mut behind, slow, |_| BEHIND), "S");
        assert!(behind.ran_out_behind());
        let step = Duration::from_millis(1);
        let mut after_on_track = schedule.next_tick(&on_track);
        assert_eq!(run(&mut after_on_track, step, |_| BEHIND).len(), 25);
        let mut after_behind = schedule.next_tick(&behind);
        assert_eq!(run(&mut after_behind, step, |_| BEHIND).len(), 50);
    }

    #[test]
    fn asking_again_without_recording_hands_out_the_same_step() {
        let mut tick = ExpirySchedule::new(10).tick();
        let first = tick.next_step();
        assert_eq!(tick.next_step(), first);
        tick.record(BEHIND, Duration::from_micros(10));
        assert_eq!(tick.next_step(), Some(ExpiryStep::Sweep(CHECKS_PER_STEP)));
    }
}
