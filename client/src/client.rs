//! [`Client`]: the cluster-aware client. Routes each command to its slot's node, follows
//! `-MOVED`/`-ASK`, retries what is retryable within a per-call deadline, and refreshes
//! the slot map periodically and after connection errors.

mod node;
mod topology;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use cachalot_protocol::{key_slot, Frame};
use parking_lot::{Mutex, RwLock};
use rand::Rng;
use tokio::sync::Notify;
use tokio::time::Instant;

use self::node::Node;
pub use self::node::NodeMetrics;
use self::topology::Topology;
use crate::breaker::BreakerSettings;
use crate::cmd::Cmd;
use crate::error::Error;
use crate::router::SlotTable;

/// Redirects one call follows before giving up (a slot bouncing between nodes means the
/// map is changing faster than we can follow).
const MAX_REDIRECTS: u32 = 16;
/// The shortest time between two topology refreshes set off by errors or redirects.
const MIN_REFRESH_INTERVAL_MILLIS: u64 = 100;

/// Where reads may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadFrom(ReadFromKind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadFromKind {
    Primary,
    RoundRobin,
    Nearest,
}

impl ReadFrom {
    /// Every command goes to its shard's primary (the default).
    pub fn primary() -> ReadFrom {
        ReadFrom(ReadFromKind::Primary)
    }

    /// Read-only commands rotate over the shard's replicas (their connections send
    /// `READONLY`); writes, and shards without replicas, use the primary.
    pub fn replicas_round_robin() -> ReadFrom {
        ReadFrom(ReadFromKind::RoundRobin)
    }

    /// Read-only commands go to whichever of the shard's nodes has the lowest smoothed
    /// round-trip time.
    pub fn nearest() -> ReadFrom {
        ReadFrom(ReadFromKind::Nearest)
    }
}

/// The client's settings; see [`ClientBuilder`] for each one's meaning and default.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub connect_timeout: Duration,
    pub call_timeout: Duration,
    pub pool_size: usize,
    pub read_from: ReadFromKind,
    pub breaker: BreakerSettings,
    pub password: Option<(Option<String>, String)>,
    pub refresh_interval: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            // A loopback or LAN connect takes well under a millisecond; a second means the
            // node is not there.
            connect_timeout: Duration::from_secs(1),
            // Long enough to ride out a node restart or a failover with retries.
            call_timeout: Duration::from_secs(5),
            pool_size: 1,
            read_from: ReadFromKind::Primary,
            breaker: BreakerSettings::default(),
            password: None,
            refresh_interval: Duration::from_secs(10),
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(500),
        }
    }
}

/// Builds a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    seeds: Vec<String>,
    settings: Settings,
}

impl ClientBuilder {
    /// The deadline of one call, retries included (default 5 s).
    #[must_use]
    pub fn call_timeout(mut self, t: Duration) -> Self {
        self.settings.call_timeout = t;
        self
    }

    /// How long one connection attempt may take (default 1 s).
    #[must_use]
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.settings.connect_timeout = t;
        self
    }

    /// Connections per node, used round-robin (default 1: one multiplexed connection
    /// carries any number of concurrent callers).
    #[must_use]
    pub fn pool_size(mut self, n: usize) -> Self {
        self.settings.pool_size = n.max(1);
        self
    }

    /// Where reads may go (default: primaries only).
    #[must_use]
    pub fn read_from(mut self, r: ReadFrom) -> Self {
        self.settings.read_from = r.0;
        self
    }

    /// Circuit breaker settings for every node.
    #[must_use]
    pub fn breaker(mut self, b: BreakerSettings) -> Self {
        self.settings.breaker = b;
        self
    }

    /// `AUTH password` (or `AUTH user password`) on every connection.
    #[must_use]
    pub fn password(mut self, user: Option<&str>, password: &str) -> Self {
        self.settings.password = Some((user.map(str::to_owned), password.to_owned()));
        self
    }

    /// How often the slot map is fetched again without a reason (default 10 s).
    #[must_use]
    pub fn refresh_interval(mut self, t: Duration) -> Self {
        self.settings.refresh_interval = t;
        self
    }

    /// Retry backoff: the first wait's upper bound and the cap; each wait is uniform in
    /// `[0, min(max, base·2^attempt)]` ("full jitter"). Defaults 5 ms and 500 ms.
    #[must_use]
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.settings.backoff_base = base;
        self.settings.backoff_max = max.max(base);
        self
    }

    /// Connects: resolves the seeds, asks them for the slot map (`CLUSTER SLOTS`), and
    /// falls back to a single-node client if the node has no cluster mode.
    ///
    /// # Errors
    /// [`Error::Topology`] if no seed resolves or answers within the connect timeout.
    pub async fn connect(self) -> Result<Client, Error> {
        let mut seeds = Vec::new();
        for s in &self.seeds {
            match tokio::net::lookup_host(s.as_str()).await {
                Ok(addrs) => seeds.extend(addrs),
                Err(e) => tracing::debug!(seed = %s, error = %e, "seed does not resolve"),
            }
        }
        let Some(&first) = seeds.first() else {
            return Err(Error::Topology(format!(
                "no seed resolves: {:?}",
                self.seeds
            )));
        };
        let empty = SlotTable::single(first);
        let inner = Arc::new(Inner {
            topology: ArcSwap::from_pointee(Topology::new(
                empty,
                false,
                &HashMap::new(),
                |a, _| {
                    Arc::new(Node::new(
                        a,
                        init_commands(&self.settings, false, false),
                        &self.settings,
                    ))
                },
            )),
            settings: self.settings,
            seeds,
            nodes: RwLock::new(HashMap::new()),
            refreshing: AtomicBool::new(false),
            last_refresh: Mutex::new(None),
            refresh_wanted: Arc::new(Notify::new()),
            counters: Counters::default(),
        });
        inner.refresh().await?;
        tokio::spawn(refresh_loop(
            Arc::downgrade(&inner),
            Arc::clone(&inner.refresh_wanted),
        ));
        Ok(Client { inner })
    }
}

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
    /// The current slot map; swapped whole by refreshes, read by every call.
    topology: ArcSwap<Topology>,
    /// Every node ever routed to, by (address, replica role), so a refresh or a redirect
    /// reuses its connections. Written on refresh and on redirects to new addresses.
    nodes: RwLock<HashMap<(SocketAddr, bool), Arc<Node>>>,
    /// A refresh is running.
    refreshing: AtomicBool,
    /// When the last refresh started.
    last_refresh: Mutex<Option<Instant>>,
    /// Wakes the refresh task: a call saw a redirect or a connection error.
    refresh_wanted: Arc<Notify>,
    counters: Counters,
}

/// Client-wide counters.
#[derive(Debug, Default)]
struct Counters {
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

impl Inner {
    /// Runs `cmd` for `slot` (`None`: any primary) with redirects and retries until
    /// `deadline`.
    pub(crate) async fn execute(
        &self,
        cmd: &Cmd,
        slot: Option<u16>,
        deadline: Instant,
    ) -> Result<Frame, Error> {
        if cmd.args().is_empty() {
            return Err(Error::InvalidCommand("a command needs a name"));
        }
        let bytes = cmd.to_bytes();
        let replica_ok = cmd.is_readonly();
        let mut redirect: Option<(SocketAddr, bool)> = None;
        let mut redirects = 0u32;
        let mut attempt = 0u32;
        loop {
            let node = match redirect {
                Some((addr, _)) => self.node_at(addr),
                None => self.route(slot, replica_ok)?,
            };
            let asking = matches!(redirect, Some((_, true)));
            let result = self.send_once(&node, &bytes, asking, deadline).await;
            let err = match result {
                Ok(Frame::Error(text)) => Error::from_reply(&text),
                Ok(frame) => return Ok(frame),
                Err(e) => e,
            };
            redirect = None;
            match &err {
                Error::Moved { addr, .. } | Error::Ask { addr, .. } => {
                    redirects += 1;
                    self.counters.redirects.fetch_add(1, Ordering::Relaxed);
                    if redirects > MAX_REDIRECTS {
                        return Err(err);
                    }
                    let ask = matches!(err, Error::Ask { .. });
                    if !ask {
                        self.schedule_refresh();
                    }
                    redirect = Some((*addr, ask));
                    continue;
                }
                Error::Io { .. } | Error::Protocol { .. } | Error::Closed => {
                    self.schedule_refresh();
                }
                _ if !err.is_retryable() => return Err(err),
                _ => {}
            }
            // Retryable: wait with jitter, unless that would pass the deadline.
            let wait = self.backoff(attempt);
            attempt = attempt.saturating_add(1);
            if Instant::now() + wait >= deadline {
                return Err(err);
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    /// One try of `cmd` on `node`, with no retries; error replies come back as `Err`.
    async fn call_node(&self, node: &Node, cmd: &Cmd, deadline: Instant) -> Result<Frame, Error> {
        match self
            .send_once(node, &cmd.to_bytes(), false, deadline)
            .await?
        {
            Frame::Error(text) => Err(Error::from_reply(&text)),
            frame => Ok(frame),
        }
    }

    /// Sends the encoded command, preceded by `ASKING` when following an `-ASK`, and
    /// returns the command's own reply.
    async fn send_once(
        &self,
        node: &Node,
        bytes: &Bytes,
        asking: bool,
        deadline: Instant,
    ) -> Result<Frame, Error> {
        let (payload, count) = if asking {
            let mut b = BytesMut::with_capacity(bytes.len() + 20);
            b.extend_from_slice(b"*1\r\n$6\r\nASKING\r\n");
            b.extend_from_slice(bytes);
            (b.freeze(), 2)
        } else {
            (bytes.clone(), 1)
        };
        let mut frames = node.call(payload, count, deadline, &self.settings).await?;
        frames.pop().ok_or(Error::Closed)
    }

    /// The node for `slot` in the current map.
    fn route(&self, slot: Option<u16>, replica_ok: bool) -> Result<Arc<Node>, Error> {
        let topology = self.topology.load();
        let node = match slot {
            Some(s) => topology.node_for(s, replica_ok, self.settings.read_from),
            None => topology.any_primary(),
        };
        match node {
            Some(n) => Ok(Arc::clone(n)),
            None => {
                self.schedule_refresh();
                Err(Error::ClusterDown(format!(
                    "CLUSTERDOWN Hash slot not served (slot {})",
                    slot.unwrap_or(0)
                )))
            }
        }
    }

    /// The primary-role node at `addr`, made (and remembered) if new: a redirect target.
    fn node_at(&self, addr: SocketAddr) -> Arc<Node> {
        if let Some(n) = self.nodes.read().get(&(addr, false)) {
            return Arc::clone(n);
        }
        let mut nodes = self.nodes.write();
        Arc::clone(nodes.entry((addr, false)).or_insert_with(|| {
            let init = init_commands(&self.settings, false, true);
            Arc::new(Node::new(addr, init, &self.settings))
        }))
    }

    /// The wait before retry number `attempt`: full jitter over an exponential cap.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.settings.backoff_base;
        let cap = base
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.settings.backoff_max);
        let micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::thread_rng().gen_range(0..=micros))
    }

    /// Asks the background task for a refresh. Bursts coalesce: the task holds at most
    /// one wake-up, and waits until [`MIN_REFRESH_INTERVAL_MILLIS`] after the previous
    /// refresh before it runs the next.
    fn schedule_refresh(&self) {
        if !self.refreshing.load(Ordering::Acquire) {
            self.refresh_wanted.notify_one();
        }
    }

    /// Asks the cluster for its slot map and swaps it in: tries the current primaries,
    /// then the seeds, and uses the first usable answer.
    async fn refresh(&self) -> Result<(), Error> {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        *self.last_refresh.lock() = Some(Instant::now());
        let result = self.fetch_topology().await;
        self.refreshing.store(false, Ordering::Release);
        let (table, cluster) = result?;
        let known = self.nodes.read().clone();
        let mut made = Vec::new();
        let topology = Topology::new(table, cluster, &known, |addr, replica| {
            let n = Arc::new(Node::new(
                addr,
                init_commands(&self.settings, replica, cluster),
                &self.settings,
            ));
            made.push(((addr, replica), Arc::clone(&n)));
            n
        });
        self.nodes.write().extend(made);
        self.topology.store(Arc::new(topology));
        self.counters.refreshes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The slot map from the first node that answers `CLUSTER SLOTS`.
    async fn fetch_topology(&self) -> Result<(SlotTable, bool), Error> {
        let current = self.topology.load_full();
        let mut candidates: Vec<SocketAddr> = current.nodes().map(|(n, _)| n.addr()).collect();
        for s in &self.seeds {
            if !candidates.contains(s) {
                candidates.push(*s);
            }
        }
        let ask = Cmd::new("CLUSTER").arg("SLOTS");
        let mut last = String::from("no node to ask");
        for addr in candidates {
            let node = self.node_at(addr);
            let deadline = Instant::now() + self.settings.connect_timeout;
            match self.call_node(&node, &ask, deadline).await {
                Ok(reply) => match SlotTable::from_cluster_slots(&reply, addr.ip()) {
                    Ok(table) if table.shards().is_empty() => {
                        last = format!("{addr}: no slots served")
                    }
                    Ok(table) => return Ok((table, true)),
                    Err(e) => last = e.to_string(),
                },
                Err(Error::Server(text)) if text.contains("cluster support disabled") => {
                    return Ok((SlotTable::single(addr), false));
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(Error::Topology(last))
    }
}

/// What a new connection sends first: `AUTH`, and `READONLY` for replicas.
fn init_commands(settings: &Settings, replica: bool, cluster: bool) -> Vec<Bytes> {
    let mut init = Vec::new();
    if let Some((user, password)) = &settings.password {
        let mut auth = Cmd::new("AUTH");
        if let Some(u) = user {
            auth.push(u.as_str());
        }
        auth.push(password.as_str());
        init.push(auth.to_bytes());
    }
    if replica && cluster {
        init.push(Cmd::new("READONLY").to_bytes());
    }
    init
}

/// Refreshes the slot map every `refresh_interval`, and at once when a call asks for it;
/// ends when the client is dropped (its `Drop` wakes the loop to notice).
async fn refresh_loop(inner: Weak<Inner>, wanted: Arc<Notify>) {
    let Some(interval) = inner.upgrade().map(|i| i.settings.refresh_interval) else {
        return;
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = wanted.notified() => {
                let since = inner.upgrade().and_then(|i| *i.last_refresh.lock());
                if let Some(since) = since {
                    let min = Duration::from_millis(MIN_REFRESH_INTERVAL_MILLIS);
                    tokio::time::sleep_until(since + min).await;
                }
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        if let Err(e) = inner.refresh().await {
            tracing::debug!(error = %e, "topology refresh failed");
        }
    }
}
