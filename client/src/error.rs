//! [`Error`]: everything a call through the client can fail with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cachalot_protocol::ProtocolError;

/// Why a call failed.
///
/// Errors are `Clone` (I/O errors are shared behind an `Arc`), because one failure may be
/// handed to many waiters: every request pending on a connection that broke, or every
/// caller coalesced onto one cache-aside load.
///
/// [`Error::is_retryable`] separates the errors the client retries by itself, within the
/// call's deadline, from the final ones.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connecting to, writing to or reading from a node failed, or it closed the connection.
    #[error("I/O error on {addr}: {source}")]
    Io {
        /// The node.
        addr: SocketAddr,
        /// What the OS said.
        source: Arc<std::io::Error>,
    },
    /// The node sent bytes that are not valid RESP; the connection was dropped.
    #[error("protocol error from {addr}: {source}")]
    Protocol {
        /// The node.
        addr: SocketAddr,
        /// What was wrong.
        source: ProtocolError,
    },
    /// The call's deadline passed before a reply arrived.
    #[error("timed out after {after:?}")]
    Timeout {
        /// The deadline the call had.
        after: Duration,
    },
    /// `-MOVED`: the slot belongs to another node (the client follows it by itself).
    #[error("MOVED {slot} {addr}")]
    Moved {
        /// The key's slot.
        slot: u16,
        /// The slot's owner.
        addr: SocketAddr,
    },
    /// `-ASK`: the slot is migrating and this key must be asked of `addr` once.
    #[error("ASK {slot} {addr}")]
    Ask {
        /// The key's slot.
        slot: u16,
        /// The node to ask.
        addr: SocketAddr,
    },
    /// `-TRYAGAIN`: a multi-key command hit a slot in the middle of a migration.
    #[error("{0}")]
    TryAgain(String),
    /// `-CLUSTERDOWN`: the cluster cannot serve the slot right now.
    #[error("{0}")]
    ClusterDown(String),
    /// `-LOADING`: the node is still loading its data set.
    #[error("{0}")]
    Loading(String),
    /// Any other error reply, such as `-ERR ...` or `-WRONGTYPE ...`, with its whole text.
    #[error("{0}")]
    Server(String),
    /// The node's circuit breaker is open: it failed repeatedly and is not tried until
    /// its probe time.
    #[error("circuit open for {addr}")]
    CircuitOpen {
        /// The node.
        addr: SocketAddr,
    },
    /// No seed node answered with a usable topology.
    #[error("no usable topology: {0}")]
    Topology(String),
    /// The reply had a type the call cannot turn into its result.
    #[error("unexpected reply to {command}: {reply}")]
    UnexpectedReply {
        /// The command sent.
        command: &'static str,
        /// A short rendering of what came back.
        reply: String,
    },
    /// The arguments cannot form a valid command (for example an empty command).
    #[error("invalid command: {0}")]
    InvalidCommand(&'static str),
    /// The embedded engine refused a write (out of memory under `noeviction`, ...).
    #[error("embedded cache: {0}")]
    Store(#[from] cachalot_store::Error),
    /// The connection closed before the request was written (so it did not run), or the
    /// client was shut down. Retried by the client like an I/O error.
    #[error("connection closed")]
    Closed,
    /// The blocking wrapper could not start its runtime.
    #[error("cannot start a runtime: {0}")]
    Runtime(Arc<std::io::Error>),
    /// A cache-aside or read-through loader failed; nothing was cached.
    #[error("loader failed: {0}")]
    Load(Arc<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Whether the client retries this error by itself (with backoff, within the call's
    /// deadline): I/O errors, redirects, `-TRYAGAIN`, `-CLUSTERDOWN`, `-LOADING`, and an
    /// open circuit (the slot may have a new owner by the next try, or the node may answer
    /// its probe). Timeouts are final: the deadline they report is the call's own.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Io { .. }
                | Error::Moved { .. }
                | Error::Ask { .. }
                | Error::TryAgain(_)
                | Error::ClusterDown(_)
                | Error::Loading(_)
                | Error::CircuitOpen { .. }
        )
    }

    /// Wraps a loader's error.
    pub fn load(e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Load(Arc::new(e))
    }

    /// Classifies an error reply's text (without the leading `-`): redirects and the
    /// retryable cluster states get their own variants, everything else is
    /// [`Error::Server`].
    pub fn from_reply(text: &[u8]) -> Error {
        let text = String::from_utf8_lossy(text).into_owned();
        let mut words = text.split(' ');
        match words.next() {
            Some("MOVED") | Some("ASK") => {
                let slot = words.next().and_then(|s| s.parse::<u16>().ok());
                let addr = words.next().and_then(|a| a.parse::<SocketAddr>().ok());
                match (slot, addr, text.starts_with('M')) {
                    (Some(slot), Some(addr), true) => Error::Moved { slot, addr },
                    (Some(slot), Some(addr), false) => Error::Ask { slot, addr },
                    _ => Error::Server(text),
                }
            }
            Some("TRYAGAIN") => Error::TryAgain(text),
            Some("CLUSTERDOWN") => Error::ClusterDown(text),
            Some("LOADING") => Error::Loading(text),
            _ => Error::Server(text),
        }
    }

    pub(crate) fn io(addr: SocketAddr, e: std::io::Error) -> Error {
        Error::Io {
            addr,
            source: Arc::new(e),
        }
    }

    pub(crate) fn unexpected(command: &'static str, reply: &cachalot_protocol::Frame) -> Error {
        let mut text = format!("{reply:?}");
        text.truncate(MAX_RENDERED_REPLY_BYTES);
        Error::UnexpectedReply {
            command,
            reply: text,
        }
    }
}

/// How much of an unexpected reply an error message keeps.
const MAX_RENDERED_REPLY_BYTES: usize = 120;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_and_cluster_states_are_classified() {
        let moved = Error::from_reply(b"MOVED 3999 127.0.0.1:6381");
        assert!(
            matches!(moved, Error::Moved { slot: 3999, addr } if addr.port() == 6381),
            "{moved:?}"
        );
        let ask = Error::from_reply(b"ASK 12 10.0.0.1:7000");
        assert!(matches!(ask, Error::Ask { slot: 12, .. }), "{ask:?}");
        assert!(matches!(
            Error::from_reply(b"TRYAGAIN Multiple keys request during rehashing of slot"),
            Error::TryAgain(_)
        ));
        assert!(matches!(
            Error::from_reply(b"CLUSTERDOWN The cluster is down"),
            Error::ClusterDown(_)
        ));
        assert!(matches!(
            Error::from_reply(b"LOADING Redis is loading the dataset in memory"),
            Error::Loading(_)
        ));
        let wrong =
            Error::from_reply(b"WRONGTYPE Operation against a key holding the wrong kind of value");
        assert!(matches!(&wrong, Error::Server(t) if t.starts_with("WRONGTYPE")));
        assert!(!wrong.is_retryable());
    }

    #[test]
    fn a_malformed_redirect_stays_a_server_error() {
        assert!(matches!(
            Error::from_reply(b"MOVED notaslot 127.0.0.1:1"),
            Error::Server(_)
        ));
        assert!(matches!(Error::from_reply(b"ASK 1"), Error::Server(_)));
    }

    #[test]
    fn retryable_errors_are_the_transient_ones() {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        assert!(Error::io(addr, std::io::ErrorKind::ConnectionReset.into()).is_retryable());
        assert!(Error::from_reply(b"MOVED 1 127.0.0.1:2").is_retryable());
        assert!(Error::CircuitOpen { addr }.is_retryable());
        assert!(!Error::Timeout {
            after: Duration::from_secs(1)
        }
        .is_retryable());
        assert!(!Error::Server("ERR syntax error".into()).is_retryable());
        assert!(!Error::Closed.is_retryable());
    }
}
