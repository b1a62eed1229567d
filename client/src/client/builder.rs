//! [`ClientBuilder`] and the settings it fills in; connecting a new [`Client`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use super::node::Node;
use super::refresh::{hot_key_loop, refresh_loop, MIN_REFRESH_INTERVAL_MILLIS};
use super::topology::Topology;
use super::{Client, Counters, Inner};
use crate::breaker::BreakerSettings;
use crate::cmd::Cmd;
use crate::connection::ConnectionObserver;
use crate::error::Error;
use crate::near_cache::{NearCache, NearCacheSettings};
use crate::router::SlotTable;

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
    pub near_cache: Option<NearCacheSettings>,
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
            near_cache: None,
        }
    }
}

/// Builds a [`Client`].
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    pub(super) seeds: Vec<String>,
    pub(super) settings: Settings,
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

    /// How often the slot map is fetched again without a reason (default 10 s; at
    /// least 100 ms).
    #[must_use]
    pub fn refresh_interval(mut self, t: Duration) -> Self {
        self.settings.refresh_interval = t.max(Duration::from_millis(MIN_REFRESH_INTERVAL_MILLIS));
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

    /// Keeps hot keys (or every key read, see [`NearCacheSettings`]) in a local
    /// near-cache kept coherent by the nodes' client-side caching (`CLIENT TRACKING`):
    /// every connection then speaks RESP3. Off by default.
    #[must_use]
    pub fn near_cache(mut self, settings: NearCacheSettings) -> Self {
        self.settings.near_cache = Some(settings);
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
        let near = self
            .settings
            .near_cache
            .as_ref()
            .map(|s| Arc::new(NearCache::new(s)));
        let inner = Arc::new(Inner {
            topology: ArcSwap::from_pointee(Topology::new(
                empty,
                false,
                &HashMap::new(),
                |a, _| new_node(&self.settings, near.as_ref(), a, false, false),
            )),
            near,
            settings: self.settings,
            seeds,
            nodes: RwLock::new(HashMap::new()),
            refreshing: AtomicBool::new(false),
            refresh_gate: tokio::sync::Mutex::new(()),
            last_refresh: Mutex::new(None),
            refresh_wanted: Arc::new(Notify::new()),
            counters: Counters::default(),
        });
        inner.refresh().await?;
        tokio::spawn(refresh_loop(
            Arc::downgrade(&inner),
            Arc::clone(&inner.refresh_wanted),
        ));
        if let Some(every) = inner
            .settings
            .near_cache
            .as_ref()
            .and_then(NearCacheSettings::poll_interval)
        {
            tokio::spawn(hot_key_loop(Arc::downgrade(&inner), every));
        }
        Ok(Client { inner })
    }
}

/// What a new connection sends first: `AUTH`; `HELLO 3` and `CLIENT TRACKING ON OPTIN`
/// with a near-cache; `READONLY` for replicas.
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
    if settings.near_cache.is_some() {
        init.push(Cmd::new("HELLO").arg("3").to_bytes());
        init.push(Cmd::from_args(["CLIENT", "TRACKING", "ON", "OPTIN"]).to_bytes());
    }
    if replica && cluster {
        init.push(Cmd::new("READONLY").to_bytes());
    }
    init
}

/// A node handle with its connections' first commands and the near-cache as observer.
pub(crate) fn new_node(
    settings: &Settings,
    near: Option<&Arc<NearCache>>,
    addr: SocketAddr,
    replica: bool,
    cluster: bool,
) -> Arc<Node> {
    let observer = near.map(|n| Arc::clone(n) as Arc<dyn ConnectionObserver>);
    Arc::new(Node::new(
        addr,
        init_commands(settings, replica, cluster),
        observer,
        settings,
    ))
}
