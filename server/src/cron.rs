//! The node's periodic work, `hz` times a second (like Redis's `serverCron`): the active
//! expiry cycle that reclaims keys nobody reads again, and the ops/sec sample for `INFO`.

use std::sync::Arc;
use std::time::Instant;

use cachalot_store::{ExpirySchedule, ExpiryStep};
use tokio_util::sync::CancellationToken;

use crate::node::Node;

/// Runs until `shutdown` is cancelled.
pub async fn run(node: Arc<Node>, hz: u32, shutdown: CancellationToken) {
    // The store's schedule decides how much each tick samples and sweeps; this loop only
    // fires ticks, times the steps (the budget is the time the sweep itself takes, so
    // std's clock, not tokio's, which tests pause) and yields between them, so connections
    // run in between.
    let schedule = ExpirySchedule::new(hz);
    let mut timer = tokio::time::interval(schedule.period());
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A tick's budget depends on how the previous one ended.
    let mut previous = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = timer.tick() => {}
        }
        node.sample_ops();
        let mut tick = match &previous {
            Some(last) => schedule.next_tick(last),
            None => schedule.tick(),
        };
        if node.pause.writes_paused() {
            // A write pause (a manual failover) holds the data still, expiry included.
            previous = Some(tick);
            continue;
        }
        while let Some(step) = tick.next_step() {
            let started = Instant::now();
            let removed = match step {
                ExpiryStep::Sample(samples) => node.store.sample_expired(samples),
                ExpiryStep::Sweep(checks) => node.store.sweep_expired(checks),
            };
            tick.record(removed, started.elapsed());
            tokio::task::yield_now().await;
        }
        previous = Some(tick);
    }
}
