//! Per-connection state that only the connection's own task touches.

use std::sync::Arc;

use cachalot_protocol::ProtocolVersion;

use super::registry::ClientHandle;

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
}

impl Session {
    /// A fresh session for a new connection.
    pub fn new(handle: Arc<ClientHandle>, authenticated: bool) -> Session {
        Session {
            handle,
            version: ProtocolVersion::Resp2,
            authenticated,
            close_after_reply: false,
        }
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
