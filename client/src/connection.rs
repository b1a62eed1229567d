//! [`Connection`]: one multiplexed, pipelined connection to one node, shared by every
//! caller.
//!
//! A caller encodes its command, takes an in-flight permit and hands the bytes to the
//! connection's writer task, which registers the reply slot with the reader task before
//! it writes, and writes whatever has queued up meanwhile in one syscall. The reader task
//! decodes replies as they arrive and hands each to the oldest registered slot: the node
//! answers in order, so replies match requests without ids. Nobody waits on another
//! caller's reply beyond the bytes in front of it on the wire.
//!
//! Bounds: at most [`MAX_IN_FLIGHT`] requests are outstanding per connection (callers wait
//! for a permit: backpressure, not buffering), and the writer's batch is cut at
//! [`WRITE_BATCH_BYTES`]. Reader and writer are separate tasks, so a node that answers a
//! long pipeline while it is still being written never deadlocks against us.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cachalot_protocol::{Frame, FrameDecoder, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// Requests one connection may have outstanding (written or queued, reply not yet read).
/// Enough to keep a loopback link busy with 64+ concurrent callers pipelining; a caller
/// past it waits for a permit.
pub const MAX_IN_FLIGHT: usize = 4096;
/// The writer stops gathering queued requests into one write at this many bytes.
const WRITE_BATCH_BYTES: usize = 64 * 1024;
/// Bytes the reader asks the socket for at a time (it reserves this much spare room).
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Runs in the reader task on a request's replies before they are handed back, so that
/// whatever it records is ordered with the out-of-band frames around them (a near-cache
/// fill cannot land after the invalidation that follows its reply).
pub type ReplyHook = Box<dyn FnOnce(&[Frame]) + Send>;

/// Observes a connection's out-of-band traffic: RESP3 pushes (invalidations) and its end.
pub trait ConnectionObserver: Send + Sync {
    /// A push frame arrived (in order with the replies around it).
    fn on_push(&self, frame: Frame);
    /// The connection ended; nothing more will arrive on it.
    fn on_close(&self);
}

/// What one request waits for: the replies to the `count` commands it wrote.
struct Pending {
    count: usize,
    frames: Vec<Frame>,
    hook: Option<ReplyHook>,
    reply: oneshot::Sender<Result<Vec<Frame>, Error>>,
    /// Released when the reply is delivered (or the connection fails).
    _permit: OwnedSemaphorePermit,
}

/// One queued request: encoded bytes plus where its replies go.
struct Request {
    bytes: Bytes,
    pending: Pending,
}

/// A handle to one node connection; cheap to clone, all clones share the socket.
#[derive(Clone)]
pub struct Connection {
    /// Unique per connection made in this process (never 0).
    id: u64,
    requests: mpsc::Sender<Request>,
    permits: Arc<Semaphore>,
    /// Set once either task has ended: the connection will not carry another request.
    broken: Arc<AtomicBool>,
    /// Cancels both tasks: [`Connection::abort`], or one task's failure ending the other.
    stop: CancellationToken,
}

/// Source of [`Connection`] ids.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// Why the writer ended, for the reader to hand to the requests it still holds; written
/// once by whichever task fails first.
type Failure = Arc<parking_lot::Mutex<Option<Error>>>;

impl Connection {
    /// Connects to `addr` within `timeout`, runs `init` (for example `AUTH`, `READONLY`)
    /// and starts the connection's reader and writer tasks on the current runtime.
    ///
    /// # Errors
    /// [`Error::Io`] if the connection cannot be made or answered within `timeout` (kind
    /// `TimedOut`), or the error an `init` command answered with.
    pub async fn connect(
        addr: SocketAddr,
        timeout: Duration,
        init: &[Bytes],
        observer: Option<Arc<dyn ConnectionObserver>>,
    ) -> Result<Connection, Error> {
        let timed_out = || Error::io(addr, std::io::ErrorKind::TimedOut.into());
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| Error::io(addr, e))?;
        stream.set_nodelay(true).map_err(|e| Error::io(addr, e))?;
        let (read_half, write_half) = stream.into_split();
        let (requests, queued) = mpsc::channel(MAX_IN_FLIGHT);
        let (registered_tx, registered_rx) = mpsc::channel(MAX_IN_FLIGHT);
        let broken = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let failure: Failure = Arc::default();
        tokio::spawn(write_loop(
            addr,
            write_half,
            queued,
            registered_tx,
            Arc::clone(&broken),
            stop.clone(),
            Arc::clone(&failure),
        ));
        tokio::spawn(read_loop(
            addr,
            read_half,
            registered_rx,
            Arc::clone(&broken),
            stop.clone(),
            failure,
            observer,
        ));
        let conn = Connection {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            requests,
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            broken,
            stop,
        };
        for command in init {
            let reply = tokio::time::timeout(timeout, conn.send(command.clone(), 1, None))
                .await
                .map_err(|_| {
                    conn.abort();
                    timed_out()
                })??;
            if let Some(Frame::Error(text)) = reply.first() {
                return Err(Error::from_reply(text));
            }
        }
        Ok(conn)
    }

    /// This connection's process-unique id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Closes the connection: every request still waiting fails with an I/O error
    /// (`ConnectionAborted`), and the tasks end. For a node that stopped answering.
    pub fn abort(&self) {
        self.broken.store(true, Ordering::Release);
        self.stop.cancel();
    }

    /// Whether the connection has failed or closed; a broken connection refuses requests.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire) || self.requests.is_closed()
    }

    /// Writes `bytes` (`count` encoded commands) and waits for their `count` replies, in
    /// order. Error replies come back as [`Frame::Error`]s, not as `Err`.
    ///
    /// # Errors
    /// [`Error::Io`]/[`Error::Protocol`] if the connection fails before all replies have
    /// arrived (the commands may or may not have run); [`Error::Closed`] only when the
    /// request was never handed to the writer, so it did not run.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the replies, not the connection: they are read and
    /// discarded when they arrive, so later requests still get their own.
    pub async fn send(
        &self,
        bytes: Bytes,
        count: usize,
        hook: Option<ReplyHook>,
    ) -> Result<Vec<Frame>, Error> {
        if self.is_broken() {
            return Err(Error::Closed);
        }
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            count: count.max(1),
            frames: Vec::new(),
            hook,
            reply,
            _permit: permit,
        };
        self.requests
            .send(Request { bytes, pending })
            .await
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

/// Takes queued requests, registers their reply slots with the reader, then writes them,
/// batching whatever queued up meanwhile. Ends when every handle is gone (shutting the
/// write side down, which makes the node close the connection once it has answered) or
/// when a write fails.
async fn write_loop(
    addr: SocketAddr,
    mut socket: OwnedWriteHalf,
    mut queued: mpsc::Receiver<Request>,
    registered: mpsc::Sender<Pending>,
    broken: Arc<AtomicBool>,
    stop: CancellationToken,
    failure: Failure,
) {
    let mut batch = BytesMut::with_capacity(WRITE_BATCH_BYTES);
    loop {
        let first = tokio::select! {
            r = queued.recv() => r,
            () = stop.cancelled() => None,
        };
        let Some(first) = first else { break };
        let mut next = Some(first);
        // Gather twice: what is queued now, then, after letting the callers that are
        // ready run (the runtime tends to run this task right after the caller that woke
        // it, before the others have queued theirs), what they queued. One write then
        // carries many callers' commands: fewer syscalls here and on the node.
        for round in 0..2 {
            if round == 1 {
                if batch.len() >= WRITE_BATCH_BYTES {
                    break;
                }
                tokio::task::yield_now().await;
                next = queued.try_recv().ok();
            }
            while let Some(request) = next.take() {
                batch.extend_from_slice(&request.bytes);
                // The reader holds at most MAX_IN_FLIGHT slots, as many as there are
                // permits, so this never waits; it fails only if the reader has ended.
                if registered.send(request.pending).await.is_err() {
                    broken.store(true, Ordering::Release);
                    return;
                }
                if batch.len() < WRITE_BATCH_BYTES {
                    next = queued.try_recv().ok();
                }
            }
        }
        if let Err(e) = socket.write_all(&batch).await {
            tracing::debug!(%addr, error = %e, "write failed");
            broken.store(true, Ordering::Release);
            failure.lock().get_or_insert(Error::io(addr, e));
            stop.cancel();
            return;
        }
        batch.clear();
    }
    broken.store(true, Ordering::Release);
    let _ = socket.shutdown().await;
}

/// Reads replies and delivers each to the oldest registered slot. On a read error, an
/// unexpected end of stream or a malformed reply, fails every slot still registered.
async fn read_loop(
    addr: SocketAddr,
    mut socket: OwnedReadHalf,
    mut registered: mpsc::Receiver<Pending>,
    broken: Arc<AtomicBool>,
    stop: CancellationToken,
    failure: Failure,
    observer: Option<Arc<dyn ConnectionObserver>>,
) {
    let mut decoder = FrameDecoder::new(Limits::default());
    let mut buf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut waiting: VecDeque<Pending> = VecDeque::new();
    let failure = 'read: loop {
        buf.reserve(READ_CHUNK_BYTES);
        let read = tokio::select! {
            r = socket.read_buf(&mut buf) => r,
            () = stop.cancelled() => {
                // The writer failed (its error is in `failure`), or abort() was called:
                // these requests were written, so they may have run.
                let aborted = Error::io(addr, std::io::ErrorKind::ConnectionAborted.into());
                break 'read failure.lock().take().unwrap_or(aborted);
            }
        };
        match read {
            Ok(0) => {
                break 'read Error::io(addr, std::io::ErrorKind::UnexpectedEof.into());
            }
            Ok(_) => {}
            Err(e) => break 'read Error::io(addr, e),
        }
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(source) => break 'read Error::Protocol { addr, source },
            };
            if matches!(frame, Frame::Push(_)) {
                // Out-of-band data (RESP3) answers no request.
                if let Some(o) = &observer {
                    o.on_push(frame);
                }
                continue;
            }
            while let Ok(p) = registered.try_recv() {
                waiting.push_back(p);
            }
            let Some(front) = waiting.front_mut() else {
                break 'read Error::UnexpectedReply {
                    command: "(none)",
                    reply: "a reply arrived with no request waiting".into(),
                };
            };
            front.frames.push(frame);
            if front.frames.len() == front.count {
                if let Some(mut done) = waiting.pop_front() {
                    if let Some(hook) = done.hook.take() {
                        hook(&done.frames);
                    }
                    let _ = done.reply.send(Ok(done.frames));
                }
            }
        }
    };
    broken.store(true, Ordering::Release);
    stop.cancel();
    if let Some(o) = &observer {
        o.on_close();
    }
    registered.close();
    while let Ok(p) = registered.try_recv() {
        waiting.push_back(p);
    }
    for p in waiting {
        let _ = p.reply.send(Err(failure.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A fake node that answers every complete line-count of requests with `:n\r\n`,
    /// numbering replies from 0 in arrival order.
    async fn counting_node() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut decoder = cachalot_protocol::RequestDecoder::new(Limits::default());
                    let mut buf = BytesMut::new();
                    let mut n = 0i64;
                    loop {
                        if sock.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut out = BytesMut::new();
                        while let Ok(Some(args)) = decoder.decode(&mut buf) {
                            if args.first().map(|a| a.as_ref()) == Some(b"QUIT") {
                                return;
                            }
                            cachalot_protocol::encode::write_integer(&mut out, n);
                            n += 1;
                        }
                        if sock.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn ping() -> Bytes {
        Bytes::from_static(b"*1\r\n$4\r\nPING\r\n")
    }

    #[tokio::test]
    async fn concurrent_callers_get_their_own_replies_in_order() {
        let addr = counting_node().await;
        let conn = Connection::connect(addr, Duration::from_secs(2), &[], None)
            .await
            .expect("connect");
        // Each caller sends two commands in one request; its replies must be consecutive.
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let conn = conn.clone();
            tasks.push(tokio::spawn(async move {
                let two = Bytes::from_static(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n");
                conn.send(two, 2, None).await.expect("reply")
            }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            let frames = t.await.expect("task");
            let [Frame::Integer(a), Frame::Integer(b)] = frames[..] else {
                panic!("two integers, got {frames:?}");
            };
            assert_eq!(b, a + 1, "a request's replies are consecutive");
            seen.push(a);
        }
        seen.sort_unstable();
        let expected: Vec<i64> = (0..200).map(|i| i * 2).collect();
        assert_eq!(seen, expected, "every reply delivered exactly once");
    }

    #[tokio::test]
    async fn a_dropped_caller_does_not_shift_later_replies() {
        let addr = counting_node().await;
        let conn = Connection::connect(addr, Duration::from_secs(2), &[], None)
            .await
            .expect("connect");
        // Start a request and abandon it before its reply is read.
        let abandoned = conn.send(ping(), 1, None);
        drop(tokio::time::timeout(Duration::from_millis(0), abandoned).await);
        let after = conn.send(ping(), 1, None).await.expect("reply");
        assert!(matches!(after[..], [Frame::Integer(_)]), "{after:?}");
    }

    #[tokio::test]
    async fn a_closed_connection_fails_its_waiters_and_refuses_more() {
        let addr = counting_node().await;
        let conn = Connection::connect(addr, Duration::from_secs(2), &[], None)
            .await
            .expect("connect");
        let quit = Bytes::from_static(b"*1\r\n$4\r\nQUIT\r\n");
        let err = conn
            .send(quit, 1, None)
            .await
            .expect_err("the node hung up");
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(conn.is_broken());
        let err = conn.send(ping(), 1, None).await.expect_err("broken");
        assert!(matches!(err, Error::Closed), "{err:?}");
    }

    #[tokio::test]
    async fn a_refused_connect_is_an_io_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let err = Connection::connect(addr, Duration::from_secs(2), &[], None)
            .await
            .err()
            .expect("nothing listens");
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
    }
}
