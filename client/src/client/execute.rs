//! One call's loop: route, send, follow redirects, retry what is safe to retry with
//! jittered backoff until the deadline.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cachalot_protocol::Frame;
use rand::Rng;
use tokio::time::Instant;

use super::builder::new_node;
use super::node::{CallError, Node};
use super::Inner;
use crate::cmd::Cmd;
use crate::connection::ReplyHook;
use crate::error::Error;

/// `CLIENT CACHING YES`, sent right before a read the near-cache keeps (OPTIN tracking).
const CACHING_YES: &[u8] = b"*3\r\n$6\r\nCLIENT\r\n$7\r\nCACHING\r\n$3\r\nYES\r\n";
/// `ASKING`, sent right before a command that follows an `-ASK`.
const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

/// Redirects one call follows at once; past this many (a slot bouncing between nodes
/// that have not all applied a change yet), each redirect waits with backoff first, until
/// the call's deadline.
const MAX_REDIRECTS: u32 = 4;

impl Inner {
    /// Runs `cmd` for `slot` (`None`: any primary) with redirects and retries until
    /// `deadline`.
    pub(crate) async fn execute(
        &self,
        cmd: &Cmd,
        slot: Option<u16>,
        deadline: Instant,
    ) -> Result<Frame, Error> {
        self.execute_with(cmd, slot, deadline, None).await
    }

    /// [`execute`](Self::execute), and with `near_key`, sends the command right behind
    /// `CLIENT CACHING YES` and keeps its reply in the near-cache under that key.
    ///
    /// What is retried: redirects (at once), and with backoff `-TRYAGAIN`, `-CLUSTERDOWN`,
    /// `-LOADING`, a slot no shard serves, and connection failures: those before the
    /// command was written always, those after only for commands safe to run twice
    /// (reads, `SET`, `DEL`, ...; not `INCR` or `APPEND`). An open circuit is final unless
    /// the slot has meanwhile moved to another node: it exists to fail fast.
    pub(crate) async fn execute_with(
        &self,
        cmd: &Cmd,
        slot: Option<u16>,
        deadline: Instant,
        near_key: Option<&Bytes>,
    ) -> Result<Frame, Error> {
        if cmd.args().is_empty() {
            return Err(Error::InvalidCommand("a command needs a name"));
        }
        let bytes = cmd.to_bytes();
        let replica_ok = cmd.is_readonly();
        let repeatable = cmd.is_idempotent();
        let mut redirect: Option<(SocketAddr, bool)> = None;
        let mut redirects = 0u32;
        let mut attempt = 0u32;
        loop {
            let routed = match redirect {
                Some((addr, _)) => Ok(self.node_at(addr)),
                None => self.route(slot, replica_ok),
            };
            let err = match routed {
                Err(e) => e,
                Ok(node) => {
                    let asking = matches!(redirect, Some((_, true)));
                    let fill = match (&self.near, near_key) {
                        (Some(near), Some(key)) => Some(near.fill_hook(key.clone())),
                        _ => None,
                    };
                    match self.send_once(&node, &bytes, asking, fill, deadline).await {
                        Ok(Frame::Error(text)) => Error::from_reply(&text),
                        Ok(frame) => return Ok(frame),
                        Err(CallError { error, written }) => {
                            if matches!(error, Error::CircuitOpen { .. }) {
                                self.schedule_refresh();
                                let moved = self
                                    .route(slot, replica_ok)
                                    .is_ok_and(|n| !Arc::ptr_eq(&n, &node));
                                if !moved || redirect.is_some() {
                                    return Err(error);
                                }
                            }
                            if written && !repeatable && error.is_retryable() {
                                // It may have run: running it again could apply it twice.
                                return Err(error);
                            }
                            error
                        }
                    }
                }
            };
            redirect = None;
            match &err {
                Error::Moved { addr, .. } | Error::Ask { addr, .. } => {
                    redirects += 1;
                    self.counters.redirects.fetch_add(1, Ordering::Relaxed);
                    if redirects > MAX_REDIRECTS {
                        // Nodes sending the call back and forth: they disagree while a
                        // change applies on some before others. Wait, then follow again,
                        // until the deadline.
                        // Short waits: such a disagreement lasts milliseconds.
                        let wait = self.backoff(redirects.min(MAX_REDIRECTS + 2) - MAX_REDIRECTS);
                        if Instant::now() + wait >= deadline {
                            return Err(err);
                        }
                        tokio::time::sleep(wait).await;
                    }
                    let ask = matches!(err, Error::Ask { .. });
                    if !ask {
                        self.schedule_refresh();
                    }
                    redirect = Some((*addr, ask));
                    continue;
                }
                Error::Io { .. } | Error::Protocol { .. } | Error::Closed => {
                    self.schedule_refresh();
                }
                Error::CircuitOpen { .. } => {}
                _ if !err.is_retryable() => return Err(err),
                _ => {}
            }
            // Retryable: wait with jitter, unless that would pass the deadline.
            let wait = self.backoff(attempt);
            attempt = attempt.saturating_add(1);
            if Instant::now() + wait >= deadline {
                return Err(err);
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    /// One try of `cmd` on `node`, with no retries; error replies come back as `Err`.
    pub(crate) async fn call_node(
        &self,
        node: &Node,
        cmd: &Cmd,
        deadline: Instant,
    ) -> Result<Frame, Error> {
        let reply = self
            .send_once(node, &cmd.to_bytes(), false, None, deadline)
            .await
            .map_err(|e| e.error)?;
        match reply {
            Frame::Error(text) => Err(Error::from_reply(&text)),
            frame => Ok(frame),
        }
    }

    /// Sends the encoded command, preceded by `ASKING` when following an `-ASK` and by
    /// `CLIENT CACHING YES` when `fill` keeps the reply in the near-cache, and returns the
    /// command's own reply.
    async fn send_once(
        &self,
        node: &Node,
        bytes: &Bytes,
        asking: bool,
        fill: Option<ReplyHook>,
        deadline: Instant,
    ) -> Result<Frame, CallError> {
        let (payload, count) = if asking || fill.is_some() {
            let mut b = BytesMut::with_capacity(bytes.len() + 64);
            let mut count = 1;
            if asking {
                b.extend_from_slice(ASKING);
                count += 1;
            }
            if fill.is_some() {
                b.extend_from_slice(CACHING_YES);
                count += 1;
            }
            b.extend_from_slice(bytes);
            (b.freeze(), count)
        } else {
            (bytes.clone(), 1)
        };
        let mut frames = node
            .call(payload, count, fill, deadline, &self.settings)
            .await?;
        frames.pop().ok_or(CallError {
            error: Error::Closed,
            written: true,
        })
    }

    /// The node for `slot` in the current map.
    fn route(&self, slot: Option<u16>, replica_ok: bool) -> Result<Arc<Node>, Error> {
        let topology = self.topology.load();
        let node = match slot {
            Some(s) => topology.node_for(s, replica_ok, self.settings.read_from),
            None => topology.any_primary(),
        };
        match node {
            Some(n) => Ok(Arc::clone(n)),
            None => {
                self.schedule_refresh();
                Err(Error::ClusterDown(format!(
                    "CLUSTERDOWN Hash slot not served (slot {})",
                    slot.unwrap_or(0)
                )))
            }
        }
    }

    /// The primary-role node at `addr`, made (and remembered) if new: a redirect target.
    pub(crate) fn node_at(&self, addr: SocketAddr) -> Arc<Node> {
        if let Some(n) = self.nodes.read().get(&(addr, false)) {
            return Arc::clone(n);
        }
        let mut nodes = self.nodes.write();
        Arc::clone(
            nodes
                .entry((addr, false))
                .or_insert_with(|| new_node(&self.settings, self.near.as_ref(), addr, false, true)),
        )
    }

    /// The wait before retry number `attempt`: full jitter over an exponential cap.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.settings.backoff_base;
        let cap = base
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.settings.backoff_max);
        let micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::thread_rng().gen_range(0..=micros))
    }
}
