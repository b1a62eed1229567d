//! The primary's side of a link: after `PSYNC`, a snapshot (full sync) and then the stream,
//! read from the backlog at the replica's own pace.
//!
//! A replica that falls so far behind that its next byte has left the backlog is
//! disconnected (it then resynchronises): the backlog is the only buffer a link has, so a
//! slow replica costs the primary no memory beyond it.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::effect::{self, Ack, FrameKind, LinkFrame};
use super::Attached;
use crate::node::{unix_millis, Node};

/// Stream bytes per frame at most.
const STREAM_CHUNK_BYTES: usize = 256 * 1024;
/// Snapshot bytes per frame, about (one entry may take a frame past it).
const SNAPSHOT_FRAME_BYTES: usize = 256 * 1024;
/// Slab positions per snapshot scan step (one shard lock hold each).
const SNAPSHOT_SCAN_STEP: usize = 256;
/// A ping when nothing else was sent for this long, so the replica sees a live link.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// Largest frame read from a replica (acknowledgements are about ten bytes).
const MAX_ACK_FRAME_BYTES: usize = 1024;
/// Scan steps per snapshot frame at most, so a sparse keyspace still yields often.
const SNAPSHOT_STEPS_PER_FRAME: usize = 64;
/// How often a link checks that its replica still has its next byte in the backlog.
const WATCHDOG_INTERVAL: Duration = Duration::from_millis(100);
/// A replica that sends nothing (no acknowledgement) for this long is dropped.
const REPLICA_TIMEOUT: Duration = Duration::from_secs(60);

/// How a link starts, decided by `PSYNC`.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// Stream from this offset.
    Continue(u64),
    /// Snapshot, then stream from this offset.
    Full(u64),
}

/// What `PSYNC` hands to the connection: how to start, and the replica's listening port.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// How the link starts.
    pub start: Start,
    /// The port the replica said it serves clients on.
    pub listening_port: u16,
    /// The stream's generation when `PSYNC` was answered: a reset after it makes the
    /// link stale.
    pub generation: u64,
}

/// Detaches the replica however the link ends (the task may be dropped mid-send when the
/// client is killed).
struct Detach<'a>(&'a Node, Arc<Attached>);

impl Drop for Detach<'_> {
    fn drop(&mut self) {
        self.0.repl.detach(&self.1);
    }
}

/// Serves a replica on `socket` until it leaves, falls behind, or the node stops.
/// `input` holds whatever the replica sent after `PSYNC`.
pub async fn serve(
    node: &Arc<Node>,
    socket: TcpStream,
    input: BytesMut,
    plan: Plan,
    addr: SocketAddr,
    stop: CancellationToken,
) {
    let (read_half, write_half) = socket.into_split();
    // Acknowledgements are a few bytes: a replica may not make this side buffer more.
    let mut rx = FramedRead::new(
        read_half,
        LengthDelimitedCodec::builder()
            .max_frame_length(MAX_ACK_FRAME_BYTES)
            .new_codec(),
    );
    rx.read_buffer_mut().extend_from_slice(&input);
    let mut tx = FramedWrite::new(write_half, crate::cluster::bus::codec());
    let start_offset = match plan.start {
        Start::Continue(o) | Start::Full(o) => o,
    };
    let attached = Arc::new(Attached {
        addr,
        listening_port: plan.listening_port,
        ack: std::sync::atomic::AtomicU64::new(match plan.start {
            Start::Continue(o) => o,
            Start::Full(_) => 0,
        }),
        sent: std::sync::atomic::AtomicU64::new(start_offset),
        last_ack_millis: std::sync::atomic::AtomicU64::new(unix_millis()),
        online: std::sync::atomic::AtomicBool::new(matches!(plan.start, Start::Continue(_))),
    });
    node.repl.attach(Arc::clone(&attached));
    let _detach = Detach(node, Arc::clone(&attached));
    info!(%addr, ?plan, "replica attached");
    let reader = {
        let attached = Arc::clone(&attached);
        let node = Arc::clone(node);
        async move {
            loop {
                let frame = match tokio::time::timeout(REPLICA_TIMEOUT, rx.next()).await {
                    Ok(Some(Ok(f))) => f,
                    Ok(Some(Err(e))) => return format!("read failed: {e}"),
                    Ok(None) => return "closed by the replica".to_owned(),
                    Err(_) => return "no acknowledgement for 60 s".to_owned(),
                };
                let Ok(ack) = Ack::decode(frame) else {
                    return "malformed acknowledgement".to_owned();
                };
                attached.ack.fetch_max(ack.offset, Ordering::AcqRel);
                attached
                    .last_ack_millis
                    .store(unix_millis(), Ordering::Relaxed);
                node.repl.acked.notify_waiters();
            }
        }
    };
    let writer = async {
        let mut offset = start_offset;
        if let Start::Full(_) = plan.start {
            node.repl.full_syncs.fetch_add(1, Ordering::Relaxed);
            snapshot(node, &mut tx, &mut offset, &attached).await?;
            attached.online.store(true, Ordering::Relaxed);
            info!(%addr, "snapshot sent; streaming");
        }
        stream(node, &mut tx, &mut offset, &attached).await
    };
    // A replica that stopped reading blocks the writer in a send; this notices when what
    // it still needs has left the backlog.
    let watchdog = async {
        let mut tick = tokio::time::interval(WATCHDOG_INTERVAL);
        loop {
            tick.tick().await;
            let sent = attached.sent.load(Ordering::Relaxed);
            let (first, ..) = node.repl.backlog_info();
            if sent < first {
                return format!("offset {sent} left the backlog: the replica is too slow");
            }
            if node.repl.generation() != plan.generation {
                return "the stream started over".to_owned();
            }
        }
    };
    let why = tokio::select! {
        why = reader => why,
        r = writer => match r { Err(why) => why, Ok(()) => "stopped".to_owned() },
        why = watchdog => why,
        _ = stop.cancelled() => "node stopping".to_owned(),
    };
    info!(%addr, reason = %why, "replica detached");
}

type Tx = FramedWrite<tokio::net::tcp::OwnedWriteHalf, LengthDelimitedCodec>;

async fn send(tx: &mut Tx, kind: FrameKind, offset: u64, data: Bytes) -> Result<(), String> {
    let frame = LinkFrame {
        kind: kind as i32,
        offset,
        data,
    };
    tx.send(Bytes::from(frame.encode_to_vec()))
        .await
        .map_err(|e| format!("write failed: {e}"))
}

/// Sends every stream byte from `offset` to the current end.
async fn catch_up(
    node: &Node,
    tx: &mut Tx,
    offset: &mut u64,
    attached: &Attached,
) -> Result<bool, String> {
    let mut sent = false;
    loop {
        let Some(chunk) = node.repl.read(*offset, STREAM_CHUNK_BYTES) else {
            return Err(format!(
                "offset {} left the backlog: the replica is too slow",
                offset
            ));
        };
        if chunk.is_empty() {
            return Ok(sent);
        }
        let len = chunk.len() as u64;
        send(tx, FrameKind::Stream, *offset, chunk).await?;
        *offset += len;
        attached.sent.store(*offset, Ordering::Relaxed);
        sent = true;
    }
}

/// Streams the keyspace, interleaved with the stream so far (which the replica holds
/// until the snapshot is complete), then marks the end.
async fn snapshot(
    node: &Node,
    tx: &mut Tx,
    offset: &mut u64,
    attached: &Attached,
) -> Result<(), String> {
    let mut cursor = 0u64;
    let mut batch = Vec::with_capacity(SNAPSHOT_FRAME_BYTES + 4096);
    let mut keys = 0u64;
    loop {
        // The stream first, so the backlog never runs ahead of this link while the
        // snapshot is long.
        catch_up(node, tx, offset, attached).await?;
        let mut steps = 0;
        while batch.len() < SNAPSHOT_FRAME_BYTES && steps < SNAPSHOT_STEPS_PER_FRAME {
            steps += 1;
            cursor = node
                .store
                .scan_entries(cursor, SNAPSHOT_SCAN_STEP, |k, v, at| {
                    effect::encode(k.as_bytes(), Some((v, at)), &mut batch);
                    keys += 1;
                });
            if cursor == 0 {
                break;
            }
        }
        if !batch.is_empty() {
            // An entry larger than a frame goes out over several; the replica joins them.
            let data = Bytes::from(std::mem::take(&mut batch));
            let mut at = 0;
            while at < data.len() {
                let end = (at + SNAPSHOT_FRAME_BYTES).min(data.len());
                send(tx, FrameKind::Snapshot, 0, data.slice(at..end)).await?;
                at = end;
            }
            batch.reserve(SNAPSHOT_FRAME_BYTES + 4096);
        }
        if cursor == 0 {
            catch_up(node, tx, offset, attached).await?;
            send(tx, FrameKind::SnapshotEnd, *offset, Bytes::new()).await?;
            debug!(keys, "snapshot complete");
            return Ok(());
        }
        tokio::task::yield_now().await;
    }
}

/// Streams until the link fails.
async fn stream(
    node: &Node,
    tx: &mut Tx,
    offset: &mut u64,
    attached: &Attached,
) -> Result<(), String> {
    let mut end = node.repl.watch_end();
    loop {
        let sent = catch_up(node, tx, offset, attached).await?;
        if !sent {
            tokio::select! {
                r = end.changed() => if r.is_err() { return Ok(()) },
                _ = tokio::time::sleep(PING_INTERVAL) => {
                    send(tx, FrameKind::Ping, *offset, Bytes::new()).await?;
                }
            }
        }
    }
}
