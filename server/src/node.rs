//! The state one node shares between its connections: the keyspace, live settings,
//! the client registry, the slow log and counters.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use std::collections::VecDeque;

use cachalot_store::{Cache, CacheStats, SystemClock, WeakCache};
use parking_lot::{Mutex, RwLock};
use std::sync::OnceLock;
use tokio_util::sync::CancellationToken;

use crate::cluster::config::ClusterConfig;
use crate::cluster::{Cluster, Topology};
use crate::config::Config;
use crate::error::Error;
use crate::hotkeys::monitor::HotKeyMonitor;
use crate::key::Key;
use crate::net::registry::ClientRegistry;
use crate::pubsub::PubSub;
use crate::replication::Replication;
use crate::slowlog::Slowlog;
use crate::tracking::Tracking;
use crate::value::{weigh, Value};

/// The keyspace: compact keys to typed values.
pub type Keyspace = Cache<Key, Value>;

/// Settings that `CONFIG SET` may change while the node runs. The keyspace's own knobs
/// (`maxmemory`, `maxmemory-policy`) live in the store; everything here is read on the
/// request path without locks except `requirepass`, which only `AUTH` and new connections read.
#[derive(Debug)]
pub struct Settings {
    /// `maxclients`; read by the listener on every accept.
    pub maxclients: AtomicU32,
    /// `timeout` in seconds; read by each connection when it waits for input.
    pub timeout_secs: AtomicU64,
    /// `slowlog-log-slower-than` in microseconds.
    pub slowlog_slower_than: AtomicI64,
    /// `slowlog-max-len`.
    pub slowlog_max_len: AtomicU64,
    /// `proto-max-bulk-len`; new connections pick it up.
    pub proto_max_bulk_len: AtomicU64,
    /// `requirepass`; written by `CONFIG SET`, read by `AUTH`/`HELLO` and at connect.
    pub requirepass: RwLock<Option<Bytes>>,
}

/// Counters for `INFO stats`; each is written from many connections, so the hot ones are
/// kept per client (see [`crate::net::registry::ClientHandle`]) and only folded in here
/// when a client leaves.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections_received: AtomicU64,
    /// Connections refused for `maxclients`.
    pub rejected_connections: AtomicU64,
    /// Commands run by clients that have disconnected.
    pub commands_of_closed_clients: AtomicU64,
    /// Bytes read from clients that have disconnected.
    pub input_bytes_of_closed_clients: AtomicU64,
    /// Bytes written to clients that have disconnected.
    pub output_bytes_of_closed_clients: AtomicU64,
    /// Malformed requests that closed their connection.
    pub protocol_errors: AtomicU64,
    /// Error replies sent.
    pub error_replies: AtomicU64,
}

/// One node's shared state; connections hold it through an `Arc`.
pub struct Node {
    /// The keyspace.
    pub store: Keyspace,
    /// Live settings.
    pub settings: Settings,
    /// Connected clients.
    pub clients: ClientRegistry,
    /// The slow log.
    pub slowlog: Slowlog,
    /// Counters.
    pub stats: Stats,
    /// The configuration the node started with (port, bind, hz, ...).
    pub config: Config,
    /// The port actually bound (differs from `config.port` when that was 0).
    pub port: AtomicU32,
    /// When the node started, for `uptime_in_seconds`.
    pub started: Instant,
    /// A random 40-hex-digit id for this run (`run_id`).
    pub run_id: String,
    /// Cancelled to shut the node down (signal or `SHUTDOWN`).
    pub shutdown: CancellationToken,
    /// Store counters at the last `CONFIG RESETSTAT`, subtracted in `INFO`.
    pub stats_baseline: Mutex<CacheStats>,
    /// The cluster this node belongs to (`cluster-enabled yes`): static, or with its
    /// membership replicated by raft.
    pub cluster: Option<Cluster>,
    /// Hot-key detection: settings, the samplers' channel and the published rates.
    pub hotkeys: HotKeyMonitor,
    /// Client-side caching: who read what, who broadcasts (`CLIENT TRACKING`). Shared with
    /// the keyspace's removal listener, which announces expired and evicted keys.
    pub tracking: Arc<Tracking>,
    /// Pub/sub subscribers.
    pub pubsub: PubSub,
    /// Replication: the stream of effects, its backlog, the role and the links.
    pub repl: Arc<Replication>,
    /// `CLIENT PAUSE`.
    pub pause: crate::net::pause::ClientPause,
    /// Recent (time, total commands) samples taken by the cron, for
    /// `instantaneous_ops_per_sec`; written by the cron only.
    ops_samples: Mutex<VecDeque<(Instant, u64)>>,
}

/// Samples kept for `instantaneous_ops_per_sec` (1.6 s at the default `hz`).
const OPS_SAMPLES: usize = 16;

impl Node {
    /// Builds a node's state from a validated configuration.
    ///
    /// # Errors
    /// [`Error::Store`] if the engine refuses the configuration, [`Error::Config`] for
    /// invalid cluster settings.
    pub fn new(config: Config, shutdown: CancellationToken) -> Result<Arc<Node>, Error> {
        let tracking = Arc::new(Tracking::new(config.tracking_table_max_keys));
        let listener = Arc::clone(&tracking);
        let repl = Arc::new(Replication::new(config.repl_backlog_size));
        // The listener reads the keyspace it belongs to (the state of a key it is told of),
        // through a handle that does not keep the keyspace alive.
        let weak_store: Arc<OnceLock<WeakCache<Key, Value>>> = Arc::default();
        let (listener_repl, listener_store) = (Arc::clone(&repl), Arc::clone(&weak_store));
        let mut builder = Cache::<Key, Value>::builder()
            .weigher(weigh)
            // Runs after the shard lock is released. Writes announce their own keys from
            // dispatch, so only what the keyspace removes by itself is announced here.
            .removal_listener(move |key: &Key, _: &Value, cause| {
                if cause.was_automatic() {
                    listener.invalidate_removed(key.as_bytes());
                }
                if listener_repl.records_removal(cause) {
                    if let Some(store) = listener_store.get().and_then(WeakCache::upgrade) {
                        listener_repl.record(&store, key.as_bytes());
                    }
                }
            })
            .policy(config.maxmemory_policy)
            .clock(Arc::new(SystemClock))
            .lfu_log_factor(config.lfu_log_factor)
            .lfu_decay_minutes(config.lfu_decay_time);
        if config.maxmemory > 0 {
            builder = builder.max_weight(config.maxmemory);
        }
        if let Some(n) = config.shards {
            builder = builder.shards(n);
        }
        let store = builder.build()?;
        let _ = weak_store.set(store.downgrade());
        if let Some(primary) = config.replicaof {
            repl.follow(primary);
        }
        let cluster = if config.cluster_dynamic() {
            // Unknown until the raft state is loaded (`cluster::membership::start`).
            let addr = std::net::SocketAddr::new(config.bind, config.port);
            Some(Cluster::new(Topology::from_config(
                &ClusterConfig::default(),
                0,
                addr,
                0,
            )))
        } else {
            config.cluster_topology()?.map(Cluster::new)
        };
        let settings = Settings {
            maxclients: AtomicU32::new(config.maxclients),
            timeout_secs: AtomicU64::new(config.timeout_secs),
            slowlog_slower_than: AtomicI64::new(config.slowlog_log_slower_than),
            slowlog_max_len: AtomicU64::new(config.slowlog_max_len),
            proto_max_bulk_len: AtomicU64::new(config.proto_max_bulk_len),
            requirepass: RwLock::new(config.requirepass.clone().map(Bytes::from)),
        };
        let hotkeys = HotKeyMonitor::new(&config);
        Ok(Arc::new(Node {
            store,
            settings,
            clients: ClientRegistry::default(),
            slowlog: Slowlog::default(),
            stats: Stats::default(),
            port: AtomicU32::new(u32::from(config.port)),
            config,
            started: Instant::now(),
            run_id: random_run_id(),
            shutdown,
            stats_baseline: Mutex::new(CacheStats::default()),
            cluster,
            hotkeys,
            tracking,
            pubsub: PubSub::default(),
            repl,
            pause: crate::net::pause::ClientPause::default(),
            ops_samples: Mutex::new(VecDeque::with_capacity(OPS_SAMPLES)),
        }))
    }

    /// Wall-clock time in unix milliseconds (expiry times are absolute, like Redis's).
    pub fn now_millis(&self) -> u64 {
        unix_millis()
    }

    /// Whether a password is configured.
    pub fn requires_auth(&self) -> bool {
        self.settings.requirepass.read().is_some()
    }

    /// Records the command total now (called by the cron).
    pub fn sample_ops(&self) {
        let (commands, _, _) = crate::command::info::client_totals(self);
        let mut samples = self.ops_samples.lock();
        if samples.len() == OPS_SAMPLES {
            samples.pop_front();
        }
        samples.push_back((Instant::now(), commands));
    }

    /// Commands per second over the recent samples.
    pub fn ops_per_sec(&self) -> u64 {
        let samples = self.ops_samples.lock();
        match (samples.front(), samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let secs = (b.0 - a.0).as_secs_f64();
                ((b.1.saturating_sub(a.1)) as f64 / secs) as u64
            }
            _ => 0,
        }
    }

    /// The port the node listens on.
    pub fn port(&self) -> u16 {
        u16::try_from(self.port.load(Ordering::Relaxed)).unwrap_or(0)
    }
}

/// Wall-clock time in unix milliseconds.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn random_run_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}
