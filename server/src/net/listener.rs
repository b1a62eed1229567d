//! The accept loop: connection limits, accept back-off, and the graceful drain.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn, Instrument};

use crate::config::Config;
use crate::error::Error;
use crate::node::Node;

/// The reply Redis sends a connection over `maxclients` before closing it.
const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";
/// First pause after a failed `accept` (for example EMFILE); doubles up to the maximum.
const ACCEPT_BACKOFF_START_MILLIS: u64 = 5;
/// Longest pause between failed `accept`s.
const ACCEPT_BACKOFF_MAX_MILLIS: u64 = 1_000;

/// Runs a node on `listener` until `shutdown` is cancelled (by the caller, a signal handler,
/// or the `SHUTDOWN` command), then stops accepting, lets every connection finish the
/// commands it has read, and returns once they have closed or `config.shutdown_timeout`
/// has passed.
///
/// # Errors
/// [`Error::Store`] or [`Error::Config`] if the configuration is refused.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    config.validate()?;
    let drain = config.shutdown_timeout;
    let hz = config.hz;
    let mut config = config;
    if let Ok(addr) = listener.local_addr() {
        config.port = addr.port();
    }
    let node = Node::new(config, shutdown.clone())?;
    if let Ok(addr) = listener.local_addr() {
        node.port.store(u32::from(addr.port()), Ordering::Relaxed);
    }
    let tracker = TaskTracker::new();
    if node.config.cluster_dynamic() {
        crate::cluster::membership::start(&node, &tracker, &shutdown).await?;
    }
    if let Some(port) = node.config.metrics_port {
        let addr = std::net::SocketAddr::new(node.config.bind, port);
        let metrics = TcpListener::bind(addr).await.map_err(|source| Error::Io {
            context: format!("bind metrics port {addr}"),
            source,
        })?;
        tracker.spawn(crate::metrics::serve(
            metrics,
            Arc::clone(&node),
            shutdown.child_token(),
        ));
    }
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "cachalot-server ready to accept connections");
    }
    tracker.spawn(crate::cron::run(
        Arc::clone(&node),
        hz,
        shutdown.child_token(),
    ));
    tracker.spawn(crate::replication::run_drain(
        Arc::clone(&node),
        shutdown.child_token(),
    ));
    tracker.spawn(crate::replication::replica::run(
        Arc::clone(&node),
        shutdown.child_token(),
    ));
    tracker.spawn(crate::hotkeys::monitor::run(
        Arc::clone(&node),
        shutdown.child_token(),
    ));
    accept_loop(&listener, &node, &tracker, &shutdown).await;
    drop(listener);
    tracker.close();
    info!("shutting down: waiting for connections to finish");
    if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
        warn!(
            ?drain,
            "connections still open at the shutdown deadline; closing them"
        );
    }
    if let Some(raft) = node.cluster.as_ref().and_then(|c| c.raft.get()) {
        raft.stop();
    }
    info!("cachalot-server is now ready to exit, bye bye");
    Ok(())
}

async fn accept_loop(
    listener: &TcpListener,
    node: &Arc<Node>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut backoff = ACCEPT_BACKOFF_START_MILLIS;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let (socket, addr) = match accepted {
            Ok(pair) => {
                backoff = ACCEPT_BACKOFF_START_MILLIS;
                pair
            }
            Err(e) => {
                warn!(error = %e, backoff_ms = backoff, "accept failed");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(backoff)) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX_MILLIS);
                continue;
            }
        };
        node.stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        let max = node.settings.maxclients.load(Ordering::Relaxed) as usize;
        if active.fetch_add(1, Ordering::AcqRel) >= max {
            active.fetch_sub(1, Ordering::AcqRel);
            node.stats
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            // One non-blocking attempt: a client that cannot take 37 bytes right away
            // just sees the close.
            let _ = socket.try_write(MAX_CLIENTS_REPLY);
            continue;
        }
        let laddr = socket.local_addr().unwrap_or(addr);
        let (handle, pushes) = node.clients.register(addr, laddr);
        let span = tracing::info_span!("conn", id = handle.id.0, peer = %addr);
        let node = Arc::clone(node);
        let active = Arc::clone(&active);
        let token = shutdown.child_token();
        tracker.spawn(
            async move {
                // Frees the maxclients slot and the registry entry however the task ends,
                // a panic included.
                let _slot = Slot {
                    active,
                    node: Arc::clone(&node),
                    id: handle.id,
                };
                crate::net::connection::serve(&node, socket, handle, pushes, token).await;
            }
            .instrument(span),
        );
    }
}

/// A connection's place among `maxclients`, given back on drop.
struct Slot {
    active: Arc<AtomicUsize>,
    node: Arc<Node>,
    id: crate::net::registry::ClientId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // `serve` unregisters on a normal exit; this covers a panic.
        self.node.clients.unregister(self.id);
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}
