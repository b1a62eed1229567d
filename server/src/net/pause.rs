//! `CLIENT PAUSE`: holds clients' commands (all, or writes only) until a deadline or
//! `CLIENT UNPAUSE`. A manual failover pauses writes on the old primary this way while
//! its replica catches up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::command::table::Flags;

/// The node's pause, checked by every connection before it runs a command.
#[derive(Debug, Default)]
pub struct ClientPause {
    /// Set while a pause may be in force (the fast path reads only this).
    active: AtomicBool,
    state: Mutex<Option<Paused>>,
    resumed: Notify,
}

#[derive(Debug, Clone, Copy)]
struct Paused {
    until: Instant,
    writes_only: bool,
}

impl ClientPause {
    /// Pauses for `timeout`; a longer pause already in force is kept, as in Redis.
    pub fn pause(&self, timeout: Duration, writes_only: bool) {
        let until = Instant::now() + timeout;
        let mut state = self.state.lock();
        let keep = state.is_some_and(|p| p.until > until && (!p.writes_only || writes_only));
        if !keep {
            *state = Some(Paused { until, writes_only });
        }
        self.active.store(true, Ordering::Release);
    }

    /// Ends the pause.
    pub fn unpause(&self) {
        *self.state.lock() = None;
        self.active.store(false, Ordering::Release);
        self.resumed.notify_waiters();
    }

    /// Whether a command must wait now: its deadline, if so.
    fn holds(&self, args: &[Bytes]) -> Option<Instant> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let p = {
            let mut state = self.state.lock();
            match *state {
                Some(p) if p.until > Instant::now() => p,
                _ => {
                    // Over: back to the lock-free fast path.
                    *state = None;
                    self.active.store(false, Ordering::Release);
                    return None;
                }
            }
        };
        let (_, spec) = crate::command::lookup(args.first()?)?;
        // CLIENT itself runs, so a paused node can be unpaused.
        if spec.name == "client" {
            return None;
        }
        (!p.writes_only || spec.flags.contains(Flags::WRITE)).then_some(p.until)
    }

    /// Waits while `args` is held by a pause.
    pub async fn wait(&self, args: &[Bytes]) {
        loop {
            let resumed = self.resumed.notified();
            tokio::pin!(resumed);
            resumed.as_mut().enable();
            let Some(until) = self.holds(args) else {
                return;
            };
            tokio::select! {
                () = resumed => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// Whether a pause may be in force (cheap).
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Whether writes are paused now (the active expiry holds off meanwhile, so a paused
    /// primary's stream stands still, as Redis's does).
    pub fn writes_paused(&self) -> bool {
        self.is_active() && self.state.lock().is_some_and(|p| p.until > Instant::now())
    }
}
