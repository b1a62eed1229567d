//! [`Node`]: one node's connections (a small pool of multiplexed ones), its circuit
//! breaker and its counters.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use cachalot_protocol::Frame;
use parking_lot::Mutex;
use tokio::time::timeout_at;

use super::Settings;
use crate::breaker::{Admission, Breaker, BreakerState};
use crate::connection::Connection;
use crate::error::Error;

/// One pooled connection, replaced when it breaks.
struct PoolSlot {
    /// The live connection, if one has been made; read lock-free by every call.
    conn: ArcSwapOption<Connection>,
    /// Held while (re)connecting, so concurrent callers wait for one attempt instead of
    /// each opening a socket. Guards the attempt, not data: the connection itself is in
    /// `conn`.
    connecting: tokio::sync::Mutex<()>,
}

/// One node as the client sees it.
pub(crate) struct Node {
    addr: SocketAddr,
    /// Commands every new connection sends first (`AUTH`, `READONLY`).
    init: Vec<Bytes>,
    pool: Vec<PoolSlot>,
    next: AtomicUsize,
    /// Guarded by its own short lock; taken once before and once after each call.
    breaker: Mutex<Breaker>,
    requests: AtomicU64,
    failures: AtomicU64,
    /// Smoothed round-trip time in microseconds (for nearest-replica reads); 0 = unknown.
    rtt_micros: AtomicU64,
}

/// A node's counters, as [`ClientMetrics`](crate::ClientMetrics) reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeMetrics {
    /// The node.
    pub addr: SocketAddr,
    /// Its circuit breaker's state.
    pub breaker: BreakerState,
    /// Times its circuit has opened.
    pub circuit_opened: u64,
    /// Calls sent to it (each try counts).
    pub requests: u64,
    /// Calls that failed with a connection error or timeout.
    pub failures: u64,
    /// Smoothed round-trip time in microseconds, 0 before the first reply.
    pub rtt_micros: u64,
}

/// Records the outcome of a call on the breaker, and frees the probe if the call's
/// future is dropped before it reports.
struct Outcome<'a> {
    node: &'a Node,
    probe: bool,
    reported: bool,
}

impl Outcome<'_> {
    fn report(&mut self, failed: bool) {
        self.reported = true;
        let mut breaker = self.node.breaker.lock();
        if failed {
            breaker.on_failure(Instant::now());
        } else {
            breaker.on_success();
        }
    }
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.node.breaker.lock().on_abandoned_probe();
        }
    }
}

impl Node {
    pub(crate) fn new(addr: SocketAddr, init: Vec<Bytes>, settings: &Settings) -> Node {
        let pool = (0..settings.pool_size.max(1))
            .map(|_| PoolSlot {
                conn: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(()),
            })
            .collect();
        Node {
            addr,
            init,
            pool,
            next: AtomicUsize::new(0),
            breaker: Mutex::new(Breaker::new(settings.breaker)),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            rtt_micros: AtomicU64::new(0),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn rtt_micros(&self) -> u64 {
        self.rtt_micros.load(Ordering::Relaxed)
    }

    /// Sends `bytes` (`count` commands) and returns their replies, error replies
    /// included, within `deadline`.
    ///
    /// # Errors
    /// [`Error::CircuitOpen`] without trying when the breaker says so; connection errors
    /// and [`Error::Timeout`] (both counted as failures by the breaker).
    pub(crate) async fn call(
        &self,
        bytes: Bytes,
        count: usize,
        deadline: tokio::time::Instant,
        settings: &Settings,
    ) -> Result<Vec<Frame>, Error> {
        let admission = self.breaker.lock().try_acquire(Instant::now());
        if admission == Admission::Rejected {
            return Err(Error::CircuitOpen { addr: self.addr });
        }
        let mut outcome = Outcome {
            node: self,
            probe: admission == Admission::Probe,
            reported: false,
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = match timeout_at(deadline, self.send(bytes, count, settings)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                after: settings.call_timeout,
            }),
        };
        match &result {
            Ok(_) => {
                self.observe_rtt(started.elapsed().as_micros());
                outcome.report(false);
            }
            Err(
                Error::Io { .. } | Error::Protocol { .. } | Error::Timeout { .. } | Error::Closed,
            ) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                outcome.report(true);
            }
            Err(_) => outcome.report(false),
        }
        result
    }

    /// One try on one pooled connection, connecting it first if needed.
    async fn send(
        &self,
        bytes: Bytes,
        count: usize,
        settings: &Settings,
    ) -> Result<Vec<Frame>, Error> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        let slot = self.pool.get(i).ok_or(Error::Closed)?;
        let conn = match slot.conn.load_full() {
            Some(c) if !c.is_broken() => c,
            _ => {
                let _attempt = slot.connecting.lock().await;
                match slot.conn.load_full() {
                    Some(c) if !c.is_broken() => c,
                    _ => {
                        let c = Arc::new(
                            Connection::connect(self.addr, settings.connect_timeout, &self.init)
                                .await?,
                        );
                        slot.conn.store(Some(Arc::clone(&c)));
                        c
                    }
                }
            }
        };
        conn.send(bytes, count).await
    }

    /// Folds one round trip into the smoothed RTT (weight 1/8, as TCP's SRTT).
    fn observe_rtt(&self, micros: u128) {
        let sample = u64::try_from(micros).unwrap_or(u64::MAX).max(1);
        let old = self.rtt_micros.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.rtt_micros.store(new, Ordering::Relaxed);
    }

    /// Drops every pooled connection (the client is closing, or the node left).
    pub(crate) fn disconnect(&self) {
        for slot in &self.pool {
            slot.conn.store(None);
        }
    }

    pub(crate) fn metrics(&self) -> NodeMetrics {
        let breaker = self.breaker.lock();
        NodeMetrics {
            addr: self.addr,
            breaker: breaker.state(),
            circuit_opened: breaker.opened_count(),
            requests: self.requests.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            rtt_micros: self.rtt_micros(),
        }
    }
}
