//! [`Node`]: one node's connections (a small pool of multiplexed ones), its circuit
//! breaker and its counters.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use cachalot_protocol::Frame;
use parking_lot::Mutex;
use tokio::time::timeout_at;

use super::Settings;
use crate::breaker::{Admission, Breaker, BreakerState};
use crate::connection::{Connection, ConnectionObserver, ReplyHook};
use crate::error::Error;

/// One pooled connection, replaced when it breaks.
struct PoolSlot {
    /// The live connection, if one has been made; read lock-free by every call.
    conn: ArcSwapOption<Connection>,
    /// Held while (re)connecting, so concurrent callers wait for one attempt instead of
    /// each opening a socket. Guards the attempt, not data: the connection itself is in
    /// `conn`.
    connecting: tokio::sync::Mutex<()>,
    /// The last connect attempt's failure; written under `connecting`.
    last_failure: Mutex<Option<ConnectFailure>>,
}

/// One node as the client sees it.
pub(crate) struct Node {
    addr: SocketAddr,
    /// Commands every new connection sends first (`AUTH`, `HELLO 3`, `READONLY`, ...).
    init: Vec<Bytes>,
    /// Told of every connection's pushes and its end (the near-cache), if any.
    observer: Option<Arc<dyn ConnectionObserver>>,
    pool: Vec<PoolSlot>,
    next: AtomicUsize,
    /// Guarded by its own short lock; taken once before and once after each call.
    breaker: Mutex<Breaker>,
    requests: AtomicU64,
    failures: AtomicU64,
    /// The id of the last connection whose failure was counted by the breaker.
    last_failed_conn: AtomicU64,
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
    /// Calls that failed with a connection error or timeout (every waiter on a broken
    /// connection counts; the breaker counts the connection once).
    pub failures: u64,
    /// Smoothed round-trip time in microseconds, 0 before the first reply.
    pub rtt_micros: u64,
}

/// A failed call, and whether its bytes may have reached the node (so a command that is
/// not safe to repeat must not be retried).
#[derive(Debug)]
pub(crate) struct CallError {
    pub error: Error,
    pub written: bool,
}

impl CallError {
    fn unsent(error: Error) -> CallError {
        CallError {
            error,
            written: false,
        }
    }
}

/// A connect attempt's failure, shared with callers that were waiting for that attempt.
struct ConnectFailure {
    at: Instant,
    error: Error,
}

/// How long a failed connect attempt answers for the callers queued behind it, so that a
/// dead node costs one connect attempt per window, not one per waiting caller.
const CONNECT_FAILURE_SHARED_MILLIS: u64 = 50;

/// Records the outcome of a call on the breaker, and frees the probe if the call's
/// future is dropped before it reports.
struct Outcome<'a> {
    node: &'a Node,
    generation: u64,
    probe: bool,
    reported: bool,
}

impl Outcome<'_> {
    /// Reports the outcome. A failure counts once per broken connection (`conn`: its id;
    /// 0 for a failed connect, which always counts): every request pending on a connection
    /// that breaks fails together, and that is one failure of the node, not many.
    fn report(&mut self, failed: bool, conn: u64) {
        self.reported = true;
        if failed {
            self.node.failures.fetch_add(1, Ordering::Relaxed);
            let first =
                conn == 0 || self.node.last_failed_conn.swap(conn, Ordering::AcqRel) != conn;
            if first {
                self.node
                    .breaker
                    .lock()
                    .on_failure(self.generation, Instant::now());
            } else if self.probe {
                self.node.breaker.lock().on_abandoned_probe(self.generation);
            }
        } else {
            self.node.breaker.lock().on_success(self.generation);
        }
    }
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        if self.probe && !self.reported {
            self.node.breaker.lock().on_abandoned_probe(self.generation);
        }
    }
}

impl Node {
    pub(crate) fn new(
        addr: SocketAddr,
        init: Vec<Bytes>,
        observer: Option<Arc<dyn ConnectionObserver>>,
        settings: &Settings,
    ) -> Node {
        let pool = (0..settings.pool_size.max(1))
            .map(|_| PoolSlot {
                conn: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(()),
                last_failure: Mutex::new(None),
            })
            .collect();
        Node {
            addr,
            init,
            observer,
            pool,
            next: AtomicUsize::new(0),
            breaker: Mutex::new(Breaker::new(settings.breaker)),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_failed_conn: AtomicU64::new(0),
            rtt_micros: AtomicU64::new(0),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the node's circuit is closed (reads may prefer other nodes otherwise).
    pub(crate) fn is_available(&self) -> bool {
        self.breaker.lock().state() == crate::breaker::BreakerState::Closed
    }

    pub(crate) fn rtt_micros(&self) -> u64 {
        self.rtt_micros.load(Ordering::Relaxed)
    }

    /// Sends `bytes` (`count` commands) and returns their replies, error replies
    /// included, within `deadline`.
    ///
    /// # Errors
    /// [`Error::CircuitOpen`] without trying when the breaker says so; connection errors
    /// and [`Error::Timeout`] (counted as failures by the breaker). A timeout closes the
    /// connection it waited on: a node that stopped answering gets a fresh connection (and
    /// its breaker a fresh probe) instead of a queue behind a dead socket.
    pub(crate) async fn call(
        &self,
        bytes: Bytes,
        count: usize,
        hook: Option<ReplyHook>,
        deadline: tokio::time::Instant,
        settings: &Settings,
    ) -> Result<Vec<Frame>, CallError> {
        let (generation, probe) = match self.breaker.lock().try_acquire(Instant::now()) {
            Admission::Rejected => {
                return Err(CallError::unsent(Error::CircuitOpen { addr: self.addr }))
            }
            Admission::Allowed(g) => (g, false),
            Admission::Probe(g) => (g, true),
        };
        let mut outcome = Outcome {
            node: self,
            generation,
            probe,
            reported: false,
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let started = tokio::time::Instant::now();
        let conn = match timeout_at(deadline, self.connection(settings)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                outcome.report(true, 0);
                return Err(CallError::unsent(e));
            }
            Err(_) => {
                outcome.report(true, 0);
                let after = deadline.saturating_duration_since(started);
                return Err(CallError::unsent(Error::Timeout { after }));
            }
        };
        let result = match timeout_at(deadline, conn.send(bytes, count, hook)).await {
            Ok(r) => r,
            Err(_) => {
                conn.abort();
                Err(Error::Timeout {
                    after: deadline.saturating_duration_since(started),
                })
            }
        };
        match result {
            Ok(frames) => {
                self.observe_rtt(started.elapsed().as_micros());
                outcome.report(false, conn.id());
                Ok(frames)
            }
            Err(Error::Closed) => {
                // Never handed to the writer: the connection had just broken.
                outcome.report(true, conn.id());
                Err(CallError::unsent(Error::Closed))
            }
            Err(error) => {
                outcome.report(true, conn.id());
                Err(CallError {
                    error,
                    written: true,
                })
            }
        }
    }

    /// A live pooled connection, connecting one first if needed. Callers arriving while a
    /// connect is under way wait for it; if it failed moments ago, they get its error.
    async fn connection(&self, settings: &Settings) -> Result<Arc<Connection>, Error> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        let slot = self.pool.get(i).ok_or(Error::Closed)?;
        if let Some(c) = slot.conn.load_full().filter(|c| !c.is_broken()) {
            return Ok(c);
        }
        let _attempt = slot.connecting.lock().await;
        if let Some(c) = slot.conn.load_full().filter(|c| !c.is_broken()) {
            return Ok(c);
        }
        if let Some(f) = &*slot.last_failure.lock() {
            if f.at.elapsed() < Duration::from_millis(CONNECT_FAILURE_SHARED_MILLIS) {
                return Err(f.error.clone());
            }
        }
        let made = Connection::connect(
            self.addr,
            settings.connect_timeout,
            &self.init,
            self.observer.clone(),
        )
        .await;
        match made {
            Ok(c) => {
                let c = Arc::new(c);
                slot.conn.store(Some(Arc::clone(&c)));
                *slot.last_failure.lock() = None;
                Ok(c)
            }
            Err(error) => {
                *slot.last_failure.lock() = Some(ConnectFailure {
                    at: Instant::now(),
                    error: error.clone(),
                });
                Err(error)
            }
        }
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
