//! The node's periodic work, `hz` times a second (like Redis's `serverCron`): the active
//! expiry cycle that reclaims keys nobody reads again, and the ops/sec sample for `INFO`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::node::Node;

/// Keys examined per expiry cycle before yielding; each check costs well under a
/// microsecond, so a cycle stays under a millisecond.
const CHECKS_PER_CYCLE: usize = 1_000;
/// Expiry cycles run back to back (yielding in between) while many checked keys were
/// expired, so a burst of expiries is reclaimed within one tick.
const MAX_CYCLES_PER_TICK: usize = 16;

/// Runs until `shutdown` is cancelled.
pub async fn run(node: Arc<Node>, hz: u32, shutdown: CancellationToken) {
    let period = Duration::from_millis(1000 / u64::from(hz.max(1)));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        node.sample_ops();
        for _ in 0..MAX_CYCLES_PER_TICK {
            let removed = node.store.sweep_expired(CHECKS_PER_CYCLE);
            // Like Redis: keep going only while a quarter or more of the checked keys
            // were expired; otherwise wait for the next tick.
            if removed < CHECKS_PER_CYCLE / 4 {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
}
