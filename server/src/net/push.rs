//! Out-of-band messages for one connection: invalidations (`CLIENT TRACKING`) and pub/sub
//! messages that other connections, the expiry cycle or the eviction policy produce.
//!
//! Every connection owns one bounded queue; its read loop selects on it next to the socket
//! and writes what arrives. Senders never wait: a queue that is full means the client has
//! stopped reading (Redis would hit its pub/sub output-buffer limit), so the client is
//! disconnected and counted in `client_output_buffer_limit_disconnections`.

use bytes::Bytes;
use tokio::sync::mpsc;

/// Messages one connection may have waiting before it is disconnected. Each message is
/// one already-encoded frame (an invalidation of a few keys, a published message), so
/// this bounds the memory a client that does not read can hold at about this many frames.
pub const PUSH_QUEUE_CAPACITY: usize = 4096;

/// The sending side of a connection's queue; cloned into the tracking and pub/sub tables.
pub type PushSender = mpsc::Sender<Bytes>;
/// The receiving side, owned by the connection's read loop.
pub type PushReceiver = mpsc::Receiver<Bytes>;

/// A new queue for one connection.
pub fn queue() -> (PushSender, PushReceiver) {
    mpsc::channel(PUSH_QUEUE_CAPACITY)
}

/// What became of one message ([`crate::net::registry::ClientHandle::try_push`] acts on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for the connection.
    Queued,
    /// The queue was full: the caller must disconnect the client (and it was counted).
    Full,
    /// The connection has ended.
    Gone,
}

/// Queues `msg` without waiting.
pub fn try_push(sender: &PushSender, msg: Bytes) -> Delivery {
    match sender.try_send(msg) {
        Ok(()) => Delivery::Queued,
        Err(mpsc::error::TrySendError::Full(_)) => Delivery::Full,
        Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_is_reported() {
        let (tx, _rx) = mpsc::channel(1);
        assert_eq!(try_push(&tx, Bytes::from_static(b"a")), Delivery::Queued);
        assert_eq!(try_push(&tx, Bytes::from_static(b"b")), Delivery::Full);
    }

    #[test]
    fn a_closed_queue_is_gone() {
        let (tx, rx) = queue();
        drop(rx);
        assert_eq!(try_push(&tx, Bytes::from_static(b"a")), Delivery::Gone);
    }
}
