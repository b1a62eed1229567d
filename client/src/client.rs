//! [`Client`]: the cluster-aware client. Routes each command to its slot's node, follows
//! `-MOVED`/`-ASK`, retries what is retryable within a per-call deadline, and refreshes
//! the slot map periodically and after connection errors.
//!
//! `builder.rs` connects a client; `execute.rs` is one call's loop (routing, redirects,
//! retries); `refresh.rs` keeps the slot map current; `node.rs` is one node's pooled
//! connections and breaker; `topology.rs` the slot map snapshot; `typed.rs` the typed
//! commands.

mod builder;
mod execute;
mod node;
mod refresh;
mod topology;
mod typed;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use cachalot_protocol::{key_slot, Frame};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio::time::Instant;

pub use self::builder::{ClientBuilder, ReadFrom};
pub(crate) use self::builder::{ReadFromKind, Settings};
use self::node::Node;
pub use self::node::NodeMetrics;
use self::topology::Topology;
pub use self::typed::Ttl;
use crate::cmd::Cmd;
use crate::error::Error;
use crate::near_cache::{NearCache, NearCacheMetrics};

/// A cluster-aware client: cheap to clone, all clones share the connections.
///
/// # Examples
///
/// ```no_run
/// # async fn demo() -> Result<(), cachalot_client::Error> {
/// let client = cachalot_client::Client::connect(["127.0.0.1:7001"]).await?;
/// client.set("user:1", "ada").await?;
/// assert_eq!(client.get("user:1").await?.as_deref(), Some(&b"ada"[..]));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

/// What all clones of a client share.
pub(crate) struct Inner {
    pub(crate) settings: Settings,
    seeds: Vec<SocketAddr>,
    /// The near-cache, when on.
    pub(crate) near: Option<Arc<NearCache>>,
    /// The current slot map; swapped whole by refreshes, read by every call.
    topology: ArcSwap<Topology>,
    /// Every node ever routed to, by (address, replica role), so a refresh or a redirect
    /// reuses its connections. Written on refresh and on redirects to new addresses.
    nodes: RwLock<HashMap<(SocketAddr, bool), Arc<Node>>>,
    /// A refresh is running.
    refreshing: AtomicBool,
    /// Held by the refresh that is running (an action, not data: the map is in
    /// `topology`), so refreshes never overlap and an older map never replaces a newer.
    refresh_gate: tokio::sync::Mutex<()>,
    /// When the last refresh started.
    last_refresh: Mutex<Option<Instant>>,
    /// Wakes the refresh task: a call saw a redirect or a connection error.
    refresh_wanted: Arc<Notify>,
    counters: Counters,
}

/// Client-wide counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    redirects: AtomicU64,
    retries: AtomicU64,
    refreshes: AtomicU64,
}

/// A snapshot of the client's counters and every node's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientMetrics {
    /// Every node the client has routed to.
    pub nodes: Vec<NodeMetrics>,
    /// `-MOVED` and `-ASK` redirects followed.
    pub redirects: u64,
    /// Tries repeated after a retryable error.
    pub retries: u64,
    /// Slot map refreshes completed.
    pub refreshes: u64,
    /// The near-cache's counters, when it is on.
    pub near_cache: Option<NearCacheMetrics>,
}

impl Client {
    /// Connects with default settings to the cluster (or single node) that any of `seeds`
    /// (`host:port`) belongs to.
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`].
    pub async fn connect<I, S>(seeds: I) -> Result<Client, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Client::builder(seeds).connect().await
    }

    /// A builder for a client of `seeds`.
    pub fn builder<I, S>(seeds: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClientBuilder {
            seeds: seeds.into_iter().map(Into::into).collect(),
            settings: Settings::default(),
        }
    }

    /// Sends `cmd` to the node its key(s) belong to and returns the reply. Error replies
    /// are `Err`. Commands without keys go to some primary.
    ///
    /// # Errors
    /// The server's error reply, or the last retryable error when the deadline passed.
    pub async fn cmd(&self, cmd: &Cmd) -> Result<Frame, Error> {
        let deadline = Instant::now() + self.inner.settings.call_timeout;
        let slot = cmd.keys().next().map(|k| key_slot(k).get());
        self.inner.execute(cmd, slot, deadline).await
    }

    /// Sends `cmd` to the node that owns `key`, for commands the client does not know the
    /// key positions of.
    ///
    /// # Errors
    /// As [`cmd`](Self::cmd).
    pub async fn cmd_for_key(&self, key: &[u8], cmd: &Cmd) -> Result<Frame, Error> {
        let deadline = Instant::now() + self.inner.settings.call_timeout;
        self.inner
            .execute(cmd, Some(key_slot(key).get()), deadline)
            .await
    }

    /// Sends `cmd` to every primary, concurrently, and returns each reply (or error) with
    /// the node it came from: for `FLUSHALL`, `DBSIZE`, `INFO` and the like.
    pub async fn cmd_on_primaries(&self, cmd: &Cmd) -> Vec<(SocketAddr, Result<Frame, Error>)> {
        let deadline = Instant::now() + self.inner.settings.call_timeout;
        let topology = self.inner.topology.load_full();
        let calls = topology.primaries().map(|node| {
            let node = Arc::clone(node);
            async move {
                let r = self.inner.call_node(&node, cmd, deadline).await;
                (node.addr(), r)
            }
        });
        futures_util::future::join_all(calls).await
    }

    /// Whether the node(s) run in cluster mode.
    pub fn is_cluster(&self) -> bool {
        self.inner.topology.load().cluster
    }

    /// Fetches the slot map now.
    ///
    /// # Errors
    /// [`Error::Topology`] if no node answers.
    pub async fn refresh_topology(&self) -> Result<(), Error> {
        self.inner.refresh().await
    }

    /// The client's counters and every node's breaker state.
    pub fn metrics(&self) -> ClientMetrics {
        let mut nodes: Vec<NodeMetrics> = self
            .inner
            .nodes
            .read()
            .values()
            .map(|n| n.metrics())
            .collect();
        nodes.sort_by_key(|m| m.addr);
        let c = &self.inner.counters;
        ClientMetrics {
            nodes,
            redirects: c.redirects.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            refreshes: c.refreshes.load(Ordering::Relaxed),
            near_cache: self.inner.near.as_ref().map(|n| n.metrics()),
        }
    }

    /// The slot of `key` and the address of the primary serving it now.
    pub fn primary_for(&self, key: &[u8]) -> Option<SocketAddr> {
        let topology = self.inner.topology.load();
        topology
            .node_for(key_slot(key).get(), false, ReadFromKind::Primary)
            .map(|n| n.addr())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for node in self.nodes.get_mut().values() {
            node.disconnect();
        }
        self.refresh_wanted.notify_one();
    }
}
