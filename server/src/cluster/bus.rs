//! The cluster bus: length-delimited prost frames over TCP, on the client port + 10000
//! unless configured.
//!
//! - Raft messages go one way over a connection per peer ([`Peers`]): each outbound
//!   connection opens with a [`Hello`] naming the sender, so a node that is just joining
//!   learns where to answer before it has the configuration.
//! - Slot migrations use their own connection from source to target: an
//!   [`ImportBatch`](super::migrate::ImportBatch) per request, an
//!   [`ImportAck`](super::migrate::ImportAck) per reply.
//!
//! Every queue here is bounded: raft tolerates lost messages, so a peer that cannot keep
//! up loses messages rather than growing a buffer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use prost::Message as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::migrate::{self, ImportAck, ImportBatch};
use crate::node::Node;

/// Largest frame accepted, checked before the frame's buffer is allocated. A migration
/// batch is at most [`migrate::BATCH_BYTES`] plus one entry, so a single value larger than
/// this cannot migrate (the slot's migration stops with an error in the log).
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;
/// Raft messages queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 1024;
/// Longest wait for a peer's connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a failed connection before the next attempt.
const RECONNECT_DELAY: Duration = Duration::from_millis(200);
/// Inbound bus connections served at once; more are closed on accept.
const MAX_INBOUND: usize = 256;
/// Longest wait for an inbound connection's hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// One bus frame.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BusFrame {
    /// What it carries.
    #[prost(oneof = "Frame", tags = "1, 2, 3, 4, 5")]
    pub frame: Option<Frame>,
}

/// What a frame carries.
// A frame is built, encoded and dropped; boxing the raft message would not save anything.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Frame {
    /// The first frame of a raft connection.
    #[prost(message, tag = "1")]
    Hello(Hello),
    /// A raft message.
    #[prost(message, tag = "2")]
    Raft(raft::eraftpb::Message),
    /// Keys of a migrating slot.
    #[prost(message, tag = "3")]
    Import(ImportBatch),
    /// The answer to an import.
    #[prost(message, tag = "4")]
    Ack(ImportAck),
    /// A node's periodic sign of life, with its replication offset.
    #[prost(message, tag = "5")]
    Heartbeat(Heartbeat),
}

/// What every node sends every other node every
/// [`HEARTBEAT_INTERVAL`](super::failover::HEARTBEAT_INTERVAL): the raft leader fails a
/// primary it has not heard from for `cluster-node-timeout`, and promotes the replica with
/// the highest offset.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Heartbeat {
    /// The sender's raft id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The replication offset it has (applied, on a replica).
    #[prost(uint64, tag = "2")]
    pub offset: u64,
    /// When it was sent, on the sender's monotonic clock (milliseconds).
    #[prost(uint64, tag = "3")]
    pub sent_ms: u64,
    /// The newest `sent_ms` the sender has received from the recipient: proof, on the
    /// recipient's own clock, that the sender was alive after that time.
    #[prost(uint64, tag = "4")]
    pub echo_ms: u64,
    /// Who the sender takes for the raft leader (0: nobody).
    #[prost(uint64, tag = "5")]
    pub leader: u64,
    /// Whether it holds its shard's data: a primary, or a replica that completed a sync
    /// (not one still loading a snapshot, which must not be promoted).
    #[prost(bool, tag = "6")]
    pub synced: bool,
}

/// The first frame of every bus connection: who is on the other end.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Hello {
    /// The sender's raft id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The sender's bus address.
    #[prost(string, tag = "2")]
    pub bus_addr: String,
    /// The cluster's `requirepass` (every node shares it); empty without one.
    #[prost(string, tag = "3")]
    pub password: String,
}

/// The codec every bus connection uses.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec()
}

/// Encodes a frame.
pub fn encode(frame: Frame) -> Bytes {
    Bytes::from(BusFrame { frame: Some(frame) }.encode_to_vec())
}

/// Reads the next frame; `None` at the end of the stream or on a malformed frame.
pub async fn next_frame(conn: &mut Framed<TcpStream, LengthDelimitedCodec>) -> Option<Frame> {
    match conn.next().await? {
        Ok(bytes) => match BusFrame::decode(bytes) {
            Ok(f) => f.frame,
            Err(e) => {
                debug!(error = %e, "malformed bus frame; closing");
                None
            }
        },
        Err(e) => {
            debug!(error = %e, "bus connection failed");
            None
        }
    }
}

/// Accepts bus connections until shutdown. Each must open with a [`Hello`] carrying the
/// node's password (when it has one); then raft messages go to the raft node, and imports
/// are applied to the keyspace and answered.
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    peers: Arc<Peers>,
    shutdown: CancellationToken,
) {
    let inbound = Arc::new(tokio::sync::Semaphore::new(MAX_INBOUND));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let (socket, from) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "bus accept failed");
                tokio::time::sleep(RECONNECT_DELAY).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&inbound).try_acquire_owned() else {
            warn!(%from, "too many bus connections; closing one");
            continue;
        };
        let _ = socket.set_nodelay(true);
        let (node, peers, shutdown) = (Arc::clone(&node), Arc::clone(&peers), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let mut conn = Framed::new(socket, codec());
            let hello = tokio::time::timeout(HELLO_TIMEOUT, next_frame(&mut conn)).await;
            let Ok(Some(Frame::Hello(h))) = hello else {
                debug!(%from, "bus connection without a hello; closing");
                return;
            };
            if h.password != peers.hello.password {
                warn!(%from, "bus connection with the wrong password; closing");
                return;
            }
            if let Ok(addr) = h.bus_addr.parse() {
                peers.learn(h.id, addr);
            }
            let hello_id = h.id;
            loop {
                let frame = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    f = next_frame(&mut conn) => f,
                };
                match frame {
                    Some(Frame::Heartbeat(h)) => {
                        // Only the node this connection said hello as may speak for itself.
                        if h.id == hello_id {
                            if let Some(c) = &node.cluster {
                                c.liveness.saw(&h);
                            }
                        }
                    }
                    Some(Frame::Raft(m)) => {
                        if let Some(r) = node.cluster.as_ref().and_then(|c| c.raft.get()) {
                            r.step(m);
                        }
                    }
                    Some(Frame::Import(batch)) => {
                        let ack = migrate::import(&node, batch);
                        if conn.send(encode(Frame::Ack(ack))).await.is_err() {
                            return;
                        }
                    }
                    Some(Frame::Hello(_) | Frame::Ack(_)) | None => return,
                }
            }
        });
    }
}

/// Outbound raft connections, one per peer, each fed by a bounded queue.
pub struct Peers {
    /// What this node says first on every connection.
    pub hello: Hello,
    addrs: Mutex<HashMap<u64, SocketAddr>>,
    queues: Mutex<HashMap<u64, (SocketAddr, mpsc::Sender<Frame>)>>,
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
}

impl Peers {
    /// The transport of the node `hello` names; connections run on `runtime`.
    pub fn new(
        hello: Hello,
        runtime: tokio::runtime::Handle,
        shutdown: CancellationToken,
    ) -> Peers {
        Peers {
            hello,
            addrs: Mutex::new(HashMap::new()),
            queues: Mutex::new(HashMap::new()),
            runtime,
            shutdown,
        }
    }

    /// Records where peer `id`'s bus is (from the configuration or a hello).
    pub fn learn(&self, id: u64, addr: SocketAddr) {
        if id != self.hello.id {
            self.addrs.lock().insert(id, addr);
        }
    }

    /// Forgets the peers `keep` says no (nodes that left); their connections close.
    pub fn retain(&self, keep: impl Fn(u64) -> bool) {
        self.addrs.lock().retain(|id, _| keep(*id));
        self.queues.lock().retain(|id, _| keep(*id));
    }

    /// Queues a raft message for its peer; dropped when the peer is unknown or its queue
    /// is full (raft sends again).
    pub fn send(&self, msg: raft::eraftpb::Message) {
        self.send_frame(msg.to, Frame::Raft(msg));
    }

    /// Queues a frame for peer `to`; dropped when the peer is unknown or its queue is full
    /// (everything sent this way is sent again).
    pub fn send_frame(&self, to: u64, msg: Frame) {
        let Some(addr) = self.addrs.lock().get(&to).copied() else {
            return;
        };
        let mut queues = self.queues.lock();
        let stale = queues
            .get(&to)
            .is_some_and(|(a, q)| *a != addr || q.is_closed());
        if stale {
            queues.remove(&to);
        }
        let (_, queue) = queues.entry(to).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            self.runtime.spawn(peer_loop(
                addr,
                self.hello.clone(),
                rx,
                self.shutdown.clone(),
            ));
            (addr, tx)
        });
        let _ = queue.try_send(msg);
    }
}

/// Keeps one connection to a peer and writes its queued messages.
async fn peer_loop(
    addr: SocketAddr,
    hello: Hello,
    mut queue: mpsc::Receiver<Frame>,
    shutdown: CancellationToken,
) {
    loop {
        let conn = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)) => c,
        };
        let socket = match conn {
            Ok(Ok(s)) => s,
            _ => {
                // Drop what queued meanwhile: raft resends what still matters. A peer
                // that was forgotten has no sender left: stop.
                while queue.try_recv().is_ok() {}
                if queue.is_closed() {
                    return;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RECONNECT_DELAY) => continue,
                }
            }
        };
        let _ = socket.set_nodelay(true);
        let mut conn = Framed::new(socket, codec());
        if conn
            .send(encode(Frame::Hello(hello.clone())))
            .await
            .is_err()
        {
            continue;
        }
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return,
                m = queue.recv() => m,
            };
            let Some(msg) = msg else { return };
            if conn.feed(encode(msg)).await.is_err() {
                break;
            }
            while let Ok(more) = queue.try_recv() {
                if conn.feed(encode(more)).await.is_err() {
                    break;
                }
            }
            if SinkExt::<Bytes>::flush(&mut conn).await.is_err() {
                break;
            }
        }
    }
}
