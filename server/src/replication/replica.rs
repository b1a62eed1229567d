//! The replica's side of a link: connect to the primary, handshake, load a snapshot or
//! continue, apply the stream, acknowledge.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::effect::{Ack, Applier, FrameKind, LinkFrame};
use super::{LinkState, Role};
use crate::node::Node;

/// Longest wait for the primary's connection and each handshake reply.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between failed attempts.
const RETRY_DELAY: Duration = Duration::from_millis(100);
/// The primary pings every second; this much silence means the link is dead.
const LINK_TIMEOUT: Duration = Duration::from_secs(5);
/// An acknowledgement at least this often, even without new bytes.
const ACK_INTERVAL: Duration = Duration::from_millis(500);
/// Longest handshake reply line.
const MAX_LINE_BYTES: usize = 1024;
/// What one held frame counts for beyond its bytes.
const HELD_FRAME_OVERHEAD_BYTES: usize = 64;
/// Stream bytes a replica holds while it loads a snapshot; past it the sync restarts
/// (Redis bounds the same buffer on the primary with `client-output-buffer-limit replica`).
const SYNC_BUFFER_LIMIT_BYTES: usize = 512 * 1024 * 1024;

/// Follows the primary the role names, reconnecting as needed, until the node stops.
pub async fn run(node: Arc<Node>, shutdown: CancellationToken) {
    let mut role = node.repl.watch_role();
    loop {
        let current = role.borrow_and_update().clone();
        let Role::Replica(primary) = current else {
            node.repl.restore_maxmemory(&node.store);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = role.changed() => if r.is_err() { return },
            }
            continue;
        };
        // A replica holds what its primary holds: it never evicts by itself.
        node.repl.set_aside_maxmemory(&node.store);
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = role.changed() => {
                node.repl.set_loading(false);
                continue;
            }
            r = follow(&node, primary) => r,
        };
        if let Err(e) = result {
            warn!(%primary, error = %e, "replication link down");
        }
        node.repl.set_link(LinkState::Connect);
        node.repl.set_loading(false);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETRY_DELAY) => {}
        }
    }
}

/// One connection to the primary, until it fails.
async fn follow(node: &Arc<Node>, primary: SocketAddr) -> Result<(), String> {
    node.repl.set_link(LinkState::Connecting);
    let mut socket = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(primary))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = socket.set_nodelay(true);
    let mut input = BytesMut::with_capacity(4096);
    // In a cluster every node shares one password, so it is the primary's too.
    let password = node
        .config
        .masterauth
        .as_ref()
        .or(node.cluster.as_ref().and(node.config.requirepass.as_ref()));
    if let Some(pass) = password {
        send_command(&mut socket, &[b"AUTH", pass.as_bytes()]).await?;
        expect_ok(&mut socket, &mut input, "AUTH").await?;
    }
    let port = node.port.load(Ordering::Relaxed).to_string();
    send_command(
        &mut socket,
        &[b"REPLCONF", b"listening-port", port.as_bytes()],
    )
    .await?;
    expect_ok(&mut socket, &mut input, "REPLCONF").await?;
    let ids = node.repl.ids();
    let have = node.repl.offset();
    let have_text = have.to_string();
    send_command(
        &mut socket,
        &[b"PSYNC", ids.replid.as_bytes(), have_text.as_bytes()],
    )
    .await?;
    let line = read_line(&mut socket, &mut input).await?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let full = match words.as_slice() {
        ["+FULLRESYNC", replid, offset] => {
            let offset: u64 = offset.parse().map_err(|_| format!("bad reply {line}"))?;
            info!(%primary, replid, offset, "full resync");
            Some(((*replid).to_owned(), offset))
        }
        ["+CONTINUE", replid] => {
            info!(%primary, replid, from = have, "partial resync");
            node.repl.continue_as(replid);
            None
        }
        _ => return Err(format!("PSYNC refused: {line}")),
    };
    let mut parts = FramedParts::new::<Bytes>(socket, crate::cluster::bus::codec());
    parts.read_buf = input;
    let mut framed = Framed::from_parts(parts);
    let mut applier = Applier::default();
    let mut offset = have;
    if let Some((replid, at)) = full {
        node.repl.set_link(LinkState::Sync);
        node.repl.set_loading(true);
        offset = load_snapshot(node, &mut framed, &mut applier, &replid, at).await?;
        node.repl.set_loading(false);
        info!(%primary, offset, keys = node.store.len(), "snapshot loaded");
    }
    node.repl.set_link(LinkState::Connected);
    let mut last_ack = std::time::Instant::now();
    let mut last_heard = std::time::Instant::now();
    ack(&mut framed, offset).await?;
    loop {
        let frame = match tokio::time::timeout(ACK_INTERVAL, framed.next()).await {
            Ok(Some(Ok(b))) => Some(decode(b)?),
            Ok(Some(Err(e))) => return Err(format!("read: {e}")),
            Ok(None) => return Err("closed by the primary".into()),
            Err(_) => None,
        };
        if let Some(frame) = &frame {
            last_heard = std::time::Instant::now();
            node.repl.heard_from_primary();
            if frame.kind == FrameKind::Stream as i32 {
                offset = apply_stream(node, &mut applier, offset, frame)?;
            }
        } else if last_heard.elapsed() > LINK_TIMEOUT {
            // It pings every second: this long without a frame, the link is dead.
            return Err("the primary went silent".into());
        }
        if frame.is_some() || last_ack.elapsed() >= ACK_INTERVAL {
            ack(&mut framed, offset).await?;
            last_ack = std::time::Instant::now();
        }
    }
}

type Link = Framed<TcpStream, tokio_util::codec::LengthDelimitedCodec>;

/// Loads a snapshot and the stream that arrived meanwhile; returns the offset reached.
async fn load_snapshot(
    node: &Arc<Node>,
    framed: &mut Link,
    applier: &mut Applier,
    replid: &str,
    at: u64,
) -> Result<u64, String> {
    // The old data goes (off the async workers: it may be millions of entries); nothing
    // of it is recorded, a replica records nothing. Until the snapshot is complete the
    // replica holds no id it could resume under: an interrupted load starts over.
    let store = node.store.clone();
    tokio::task::spawn_blocking(move || store.clear())
        .await
        .map_err(|e| format!("clearing the keyspace failed: {e}"))?;
    node.repl.reset_to(&super::random_id(), at);
    let mut held: Vec<LinkFrame> = Vec::new();
    let mut held_bytes = 0usize;
    let mut snapshot = Applier::default();
    let mut last_ack = std::time::Instant::now();
    loop {
        let frame = match tokio::time::timeout(LINK_TIMEOUT, framed.next()).await {
            Ok(Some(Ok(b))) => decode(b)?,
            Ok(Some(Err(e))) => return Err(format!("read: {e}")),
            Ok(None) => return Err("closed by the primary during the snapshot".into()),
            Err(_) => return Err("the primary went silent during the snapshot".into()),
        };
        match FrameKind::from_i32(frame.kind) {
            Some(FrameKind::Snapshot) => {
                // An entry larger than a frame spans several.
                snapshot.apply(node, &frame.data)?;
            }
            Some(FrameKind::Stream) => {
                // Counted with a per-frame overhead, so empty frames count too.
                held_bytes += frame.data.len() + HELD_FRAME_OVERHEAD_BYTES;
                if held_bytes > SYNC_BUFFER_LIMIT_BYTES {
                    return Err("too many writes while loading the snapshot".into());
                }
                held.push(frame);
            }
            Some(FrameKind::SnapshotEnd) => {
                if snapshot.pending() > 0 {
                    return Err("the snapshot ended inside an entry".into());
                }
                break;
            }
            Some(FrameKind::Ping) | None => {}
        }
        // Keep the primary's view of this link alive while a long snapshot loads.
        if last_ack.elapsed() >= ACK_INTERVAL {
            ack(framed, 0).await?;
            last_ack = std::time::Instant::now();
        }
        tokio::task::yield_now().await;
    }
    let mut offset = at;
    for (i, frame) in held.iter().enumerate() {
        offset = apply_stream(node, applier, offset, frame)?;
        if i % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    node.repl.synced_as(replid);
    Ok(offset)
}

/// Applies a stream frame that starts at `offset`; returns the offset after it (counted
/// to the last complete effect, which is where a resync would start).
fn apply_stream(
    node: &Node,
    applier: &mut Applier,
    offset: u64,
    frame: &LinkFrame,
) -> Result<u64, String> {
    if !node.repl.is_replica() {
        // Promoted meanwhile: the old primary's stream is not ours to apply any more.
        return Err("promoted".into());
    }
    let expected = offset + applier.pending() as u64;
    if frame.offset != expected {
        return Err(format!(
            "stream gap: expected offset {expected}, got {}",
            frame.offset
        ));
    }
    let used = applier.apply(node, &frame.data)?;
    // The replica's backlog holds exactly the effects it applied, at the primary's
    // offsets, so its end is where a resync starts.
    Ok(node.repl.append_applied(&used))
}

fn decode(b: BytesMut) -> Result<LinkFrame, String> {
    LinkFrame::decode(b.freeze()).map_err(|e| format!("malformed frame: {e}"))
}

async fn ack(framed: &mut Link, offset: u64) -> Result<(), String> {
    framed
        .send(Bytes::from(Ack { offset }.encode_to_vec()))
        .await
        .map_err(|e| format!("write: {e}"))
}

async fn send_command(socket: &mut TcpStream, args: &[&[u8]]) -> Result<(), String> {
    let mut out = BytesMut::new();
    cachalot_protocol::encode::write_array_header(&mut out, args.len());
    for a in args {
        cachalot_protocol::encode::write_bulk(&mut out, a);
    }
    socket
        .write_all(&out)
        .await
        .map_err(|e| format!("write: {e}"))
}

async fn read_line(socket: &mut TcpStream, input: &mut BytesMut) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    loop {
        if let Some(pos) = input.windows(2).position(|w| w == b"\r\n") {
            let line = input.split_to(pos + 2);
            return Ok(String::from_utf8_lossy(&line[..pos]).into_owned());
        }
        if input.len() > MAX_LINE_BYTES {
            return Err("handshake reply too long".into());
        }
        match tokio::time::timeout_at(deadline, socket.read_buf(input)).await {
            Ok(Ok(0)) => return Err("closed during the handshake".into()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("read: {e}")),
            Err(_) => return Err("handshake timed out".into()),
        }
    }
}

async fn expect_ok(socket: &mut TcpStream, input: &mut BytesMut, what: &str) -> Result<(), String> {
    let line = read_line(socket, input).await?;
    if line.starts_with("+OK") {
        Ok(())
    } else {
        Err(format!("{what} refused: {line}"))
    }
}
