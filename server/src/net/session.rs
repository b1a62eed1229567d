//! Per-connection state that only the connection's own task touches.

use std::sync::Arc;

use bytes::Bytes;
use cachalot_protocol::ProtocolVersion;
use indexmap::IndexSet;

use super::registry::ClientHandle;
use crate::hotkeys::sampler::Sampler;

/// What one connection has negotiated and asked for.
#[derive(Debug)]
pub struct Session {
    /// The shared part (name, counters, kill switch).
    pub handle: Arc<ClientHandle>,
    /// RESP2 until `HELLO 3`.
    pub version: ProtocolVersion,
    /// Whether the client has authenticated (always true without `requirepass`).
    pub authenticated: bool,
    /// Close the connection once the current replies are written (`QUIT`, `CLIENT KILL`
    /// of oneself).
    pub close_after_reply: bool,
    /// Samples this connection's keyed commands for hot-key detection.
    pub hotkeys: Sampler,
    /// `CLIENT TRACKING` settings while tracking is on.
    pub tracking: Option<TrackingMode>,
    /// `CLIENT CACHING` was given for the next command (Redis's `CLIENT_TRACKING_CACHING`).
    pub caching_given: bool,
    /// Channels subscribed to, in subscription order.
    pub channels: IndexSet<Bytes>,
    /// Patterns subscribed to, in subscription order.
    pub patterns: IndexSet<Bytes>,
    /// `ASKING` was sent: the next command may use a slot importing here.
    pub asking: bool,
    /// `READONLY` was sent: reads of this replica's slots are served here.
    pub readonly: bool,
    /// A reply the last command left to be awaited (a cluster change waiting to commit);
    /// the connection writes it before it runs the next command.
    pub deferred: Option<Deferred>,
    /// `PSYNC` was accepted: the connection becomes a replication link once its reply
    /// is written.
    pub replica_link: Option<crate::replication::primary::Plan>,
    /// The port a replica said it serves clients on (`REPLCONF listening-port`).
    pub listening_port: u16,
    /// The replication drain pass that carries this client's last write (`WAIT`).
    pub last_write_pass: u64,
}

/// A reply that is not ready yet: the encoded reply, once it is.
pub struct Deferred(pub std::pin::Pin<Box<dyn std::future::Future<Output = Bytes> + Send>>);

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deferred")
    }
}

/// The options of `CLIENT TRACKING ON`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackingMode {
    /// `BCAST`.
    pub bcast: bool,
    /// `OPTIN`: only keys read right after `CLIENT CACHING YES` are remembered.
    pub optin: bool,
    /// `OPTOUT`: keys read right after `CLIENT CACHING NO` are not remembered.
    pub optout: bool,
    /// `NOLOOP`.
    pub noloop: bool,
    /// `REDIRECT` target.
    pub redirect: Option<super::registry::ClientId>,
    /// `BCAST` prefixes, in the order given.
    pub prefixes: Vec<Bytes>,
}

impl Session {
    /// A fresh session for a new connection.
    pub fn new(handle: Arc<ClientHandle>, authenticated: bool) -> Session {
        let handle_seed = handle.id.0;
        Session {
            handle,
            version: ProtocolVersion::Resp2,
            authenticated,
            close_after_reply: false,
            hotkeys: Sampler::new(handle_seed),
            tracking: None,
            caching_given: false,
            channels: IndexSet::new(),
            patterns: IndexSet::new(),
            asking: false,
            readonly: false,
            deferred: None,
            replica_link: None,
            listening_port: 0,
            last_write_pass: 0,
        }
    }

    /// Subscriptions, channels and patterns together (Redis's subscription count).
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Switches the protocol version (`HELLO`, `RESET`).
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.version = version;
        let n = match version {
            ProtocolVersion::Resp2 => 2,
            ProtocolVersion::Resp3 => 3,
        };
        self.handle
            .resp
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }
}
