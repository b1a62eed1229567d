//! One connection: read what the client sent, run every complete command in order, write
//! all their replies in one batch.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use cachalot_protocol::{Limits, ProtocolError, RequestDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::command;
use crate::net::push::PushReceiver;
use crate::net::registry::ClientHandle;
use crate::net::session::Session;
use crate::node::Node;

/// Free space made in the read buffer before each read.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Most bytes one client may have buffered while its requests are incomplete (Redis's
/// `client-query-buffer-limit` default): past it the client is disconnected, whatever the
/// per-argument limits allowed, so one client cannot hold more memory than this.
const MAX_QUERY_BUFFER_BYTES: usize = 1024 * 1024 * 1024;
/// Replies queued past this size are written out before more commands run, so a client
/// that pipelines many large reads cannot make its output buffer grow without bound.
const OUTPUT_HIGH_WATER_BYTES: usize = 64 * 1024;
/// A write that makes no progress for this long means the client stopped reading; the
/// connection is closed.
const WRITE_STALL_TIMEOUT_MILLIS: u64 = 30_000;
/// Largest multibulk element count accepted (Redis accepts up to `INT_MAX`; we bound it).
const MAX_MULTIBULK_LEN: usize = 1 << 20;
/// Largest nesting depth; requests never nest, so this only guards the decoder.
const MAX_DEPTH: usize = 32;
/// Out-of-band messages (invalidations, pub/sub) written per wake-up before the loop
/// looks at the socket again, so a stream of them cannot starve the client's requests.
const PUSH_BATCH_MESSAGES: usize = 64;
/// Largest inline request, as Redis's `PROTO_INLINE_MAX_SIZE`.
const MAX_INLINE_BYTES: usize = 64 * 1024;
/// Most arguments a client may send before it authenticates, as Redis 7 allows, so a
/// client without the password cannot make the node hold large requests.
const UNAUTHENTICATED_MAX_ARGS: usize = 10;
/// Largest bulk string a client may send before it authenticates, as Redis 7 allows.
const UNAUTHENTICATED_MAX_BULK_BYTES: usize = 16 * 1024;

/// Why the read loop ended.
enum Close {
    /// The client closed, quit, was killed, timed out, or the node is shutting down.
    Normal,
    /// The socket failed.
    Io(std::io::Error),
    /// `PSYNC` made this connection a replication link.
    Replica(crate::replication::primary::Plan),
}

/// Serves one client until it leaves, is killed, or the node shuts down.
pub async fn serve(
    node: &Arc<Node>,
    mut socket: TcpStream,
    handle: Arc<ClientHandle>,
    mut pushes: PushReceiver,
    shutdown: CancellationToken,
) {
    let _ = socket.set_nodelay(true);
    let authenticated = !node.requires_auth();
    let mut session = Session::new(Arc::clone(&handle), authenticated);
    let mut decoder = RequestDecoder::new(limits_for(node, authenticated));
    let mut input = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut output = BytesMut::with_capacity(READ_CHUNK_BYTES);
    match read_loop(
        node,
        &mut socket,
        &mut session,
        &mut decoder,
        &mut input,
        &mut output,
        &mut pushes,
        &shutdown,
    )
    .await
    {
        Close::Normal => debug!("connection closed"),
        Close::Io(e) => debug!(error = %e, "connection failed"),
        Close::Replica(plan) => {
            handle.replica.store(true, Ordering::Relaxed);
            let stop = shutdown.clone();
            let killed = handle.kill.clone();
            tokio::select! {
                () = crate::replication::primary::serve(
                    node,
                    socket,
                    std::mem::take(&mut input),
                    plan,
                    handle.addr,
                    stop,
                ) => {}
                () = killed.cancelled() => {}
            }
            return finish(node, &mut session, &handle, pushes);
        }
    }
    finish(node, &mut session, &handle, pushes);
    let _ = socket.shutdown().await;
}

/// Forgets a connection that ended.
fn finish(
    node: &Arc<Node>,
    session: &mut Session,
    handle: &ClientHandle,
    mut pushes: PushReceiver,
) {
    // Nobody may queue for this connection any more; then drop what it asked for.
    pushes.close();
    command::tracking::forget_session(node, session);
    // Forget the client before it can see the close, so that once it has, `CLIENT LIST`
    // and `CLIENT KILL` no longer find it.
    if let Some(h) = node.clients.unregister(handle.id) {
        let stats = &node.stats;
        stats
            .commands_of_closed_clients
            .fetch_add(h.commands.load(Ordering::Relaxed), Ordering::Relaxed);
        stats
            .input_bytes_of_closed_clients
            .fetch_add(h.input_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
        stats
            .output_bytes_of_closed_clients
            .fetch_add(h.output_bytes.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

// The connection's parts are separate borrows so the select can poll two at once.
#[allow(clippy::too_many_arguments)]
async fn read_loop(
    node: &Arc<Node>,
    socket: &mut TcpStream,
    session: &mut Session,
    decoder: &mut RequestDecoder,
    input: &mut BytesMut,
    output: &mut BytesMut,
    pushes: &mut PushReceiver,
    shutdown: &CancellationToken,
) -> Close {
    let handle = Arc::clone(&session.handle);
    loop {
        input.reserve(READ_CHUNK_BYTES);
        let idle = node.settings.timeout_secs.load(Ordering::Relaxed);
        let read = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Close::Normal,
            _ = handle.kill.cancelled() => return Close::Normal,
            // Cancel safety: `recv` loses nothing when the read wins instead.
            Some(msg) = pushes.recv() => {
                output.extend_from_slice(&msg);
                for _ in 1..PUSH_BATCH_MESSAGES {
                    match pushes.try_recv() {
                        Ok(msg) => output.extend_from_slice(&msg),
                        Err(_) => break,
                    }
                }
                if let Err(e) = write_out(socket, output, &handle).await {
                    return Close::Io(e);
                }
                continue;
            }
            r = read_with_idle_timeout(socket, input, idle) => r,
        };
        let n = match read {
            Ok(Some(0)) | Ok(None) => return Close::Normal,
            Ok(Some(n)) => n,
            Err(e) => return Close::Io(e),
        };
        handle.input_bytes.fetch_add(n as u64, Ordering::Relaxed);
        if input.len() > MAX_QUERY_BUFFER_BYTES {
            tracing::warn!(
                buffered = input.len(),
                limit = MAX_QUERY_BUFFER_BYTES,
                "closing client that reached the query buffer limit"
            );
            return Close::Normal;
        }
        handle.touch();
        loop {
            match decoder.decode(input) {
                Ok(Some(args)) => {
                    if let Some(cluster) = &node.cluster {
                        // A slot whose keys are being handed over: wait until it is done,
                        // with the replies so far sent.
                        let paused = cluster.frozen.any()
                            && command::first_key_slot(&args)
                                .is_some_and(|slot| cluster.frozen.contains(slot));
                        if paused {
                            if let Err(e) = write_out(socket, output, &handle).await {
                                return Close::Io(e);
                            }
                            if let Some(slot) = command::first_key_slot(&args) {
                                tokio::select! {
                                    _ = cluster.frozen.wait(slot) => {}
                                    _ = shutdown.cancelled() => return Close::Normal,
                                    _ = handle.kill.cancelled() => return Close::Normal,
                                }
                            }
                        }
                    }
                    // After any wait for a paused slot, so nothing slips past a pause.
                    if node.pause.is_active() {
                        if let Err(e) = write_out(socket, output, &handle).await {
                            return Close::Io(e);
                        }
                        tokio::select! {
                            () = node.pause.wait(&args) => {}
                            _ = shutdown.cancelled() => return Close::Normal,
                            _ = handle.kill.cancelled() => return Close::Normal,
                        }
                    }
                    command::dispatch(node, session, args, output);
                    if let Some(plan) = session.replica_link.take() {
                        if let Err(e) = write_out(socket, output, &handle).await {
                            return Close::Io(e);
                        }
                        return Close::Replica(plan);
                    }
                    if let Some(deferred) = session.deferred.take() {
                        // A cluster change waiting to commit: send what is ready first.
                        if let Err(e) = write_out(socket, output, &handle).await {
                            return Close::Io(e);
                        }
                        tokio::select! {
                            reply = deferred.0 => output.extend_from_slice(&reply),
                            _ = shutdown.cancelled() => return Close::Normal,
                            _ = handle.kill.cancelled() => return Close::Normal,
                        }
                    }
                    // Between requests the decoder holds no state: swap it when the
                    // limits changed (AUTH, RESET, CONFIG SET proto-max-bulk-len).
                    let limits = limits_for(node, session.authenticated);
                    if *decoder.limits() != limits {
                        *decoder = RequestDecoder::new(limits);
                    }
                    if session.close_after_reply {
                        let _ = write_out(socket, output, &handle).await;
                        return Close::Normal;
                    }
                    if output.len() >= OUTPUT_HIGH_WATER_BYTES {
                        // The write may wait on a slow reader: show what is still queued.
                        handle
                            .query_buffer
                            .store(input.len() as u64, Ordering::Relaxed);
                        if let Err(e) = write_out(socket, output, &handle).await {
                            return Close::Io(e);
                        }
                    }
                    if shutdown.is_cancelled() || handle.kill.is_cancelled() {
                        let _ = write_out(socket, output, &handle).await;
                        return Close::Normal;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    node.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    debug!(error = %e, "protocol error; closing");
                    output.extend_from_slice(b"-ERR ");
                    output
                        .extend_from_slice(error_text(&e, node, session.authenticated).as_bytes());
                    output.extend_from_slice(b"\r\n");
                    let _ = write_out(socket, output, &handle).await;
                    return Close::Normal;
                }
            }
        }
        handle
            .query_buffer
            .store(input.len() as u64, Ordering::Relaxed);
        if let Err(e) = write_out(socket, output, &handle).await {
            return Close::Io(e);
        }
    }
}

/// The decoder limits for a connection: the configured ones, or Redis's smaller ones
/// before the client has authenticated.
fn limits_for(node: &Node, authenticated: bool) -> Limits {
    let max_bulk = node.settings.proto_max_bulk_len.load(Ordering::Relaxed);
    let limits = Limits {
        max_bulk_len: usize::try_from(max_bulk).unwrap_or(usize::MAX),
        max_array_len: MAX_MULTIBULK_LEN,
        max_depth: MAX_DEPTH,
        max_inline_len: MAX_INLINE_BYTES,
    };
    if authenticated {
        return limits;
    }
    Limits {
        max_bulk_len: limits.max_bulk_len.min(UNAUTHENTICATED_MAX_BULK_BYTES),
        max_array_len: UNAUTHENTICATED_MAX_ARGS,
        ..limits
    }
}

/// The reply text for a protocol error. A request within the configured limits but over
/// the unauthenticated ones gets Redis's `unauthenticated ... length` wording.
fn error_text(e: &ProtocolError, node: &Node, authenticated: bool) -> String {
    let configured = limits_for(node, true);
    let within = |len: u64, max: usize| u64::try_from(max).map_or(true, |max| len <= max);
    match e {
        ProtocolError::ArrayTooLong { len, .. }
            if !authenticated && within(*len, configured.max_array_len) =>
        {
            "Protocol error: unauthenticated multibulk length".to_owned()
        }
        ProtocolError::BulkTooLarge { len, .. }
            if !authenticated && within(*len, configured.max_bulk_len) =>
        {
            "Protocol error: unauthenticated bulk length".to_owned()
        }
        other => other.to_string(),
    }
}

/// Reads into `input`; `Ok(None)` when the client was idle for `idle_secs` (0 = forever).
async fn read_with_idle_timeout(
    socket: &mut TcpStream,
    input: &mut BytesMut,
    idle_secs: u64,
) -> std::io::Result<Option<usize>> {
    if idle_secs == 0 {
        return socket.read_buf(input).await.map(Some);
    }
    match tokio::time::timeout(Duration::from_secs(idle_secs), socket.read_buf(input)).await {
        Ok(r) => r.map(Some),
        Err(_) => {
            debug!(idle_secs, "closing idle client");
            Ok(None)
        }
    }
}

/// Writes and clears `output`, failing if the client takes nothing for the stall timeout.
async fn write_out(
    socket: &mut TcpStream,
    output: &mut BytesMut,
    handle: &ClientHandle,
) -> std::io::Result<()> {
    let stall = Duration::from_millis(WRITE_STALL_TIMEOUT_MILLIS);
    let total = output.len();
    let mut written = 0;
    while written < total {
        match tokio::time::timeout(stall, socket.write(&output[written..])).await {
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => written += n,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
        }
    }
    handle
        .output_bytes
        .fetch_add(total as u64, Ordering::Relaxed);
    output.clear();
    Ok(())
}
