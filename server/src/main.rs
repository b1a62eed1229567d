//! The `cachalot-server` binary: flags and environment to a [`Config`], logging, signals.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use cachalot_server::config::Config;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// A Redis-protocol cache node. Every setting is optional; flags beat `CACHALOT_*`
/// environment variables, which beat the config file.
#[derive(Debug, Parser)]
#[command(name = "cachalot-server", version, about)]
struct Args {
    /// TOML config file (keys named like Redis settings: port, maxmemory, ...).
    #[arg(long, env = "CACHALOT_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "CACHALOT_BIND")]
    bind: Option<String>,
    /// TCP port (0 picks a free port and logs it).
    #[arg(long, env = "CACHALOT_PORT")]
    port: Option<String>,
    /// Memory bound for data, with Redis units (100mb, 1gb); 0 = none.
    #[arg(long, env = "CACHALOT_MAXMEMORY")]
    maxmemory: Option<String>,
    /// noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu,
    /// volatile-random, volatile-ttl, or allkeys-tinylfu (W-TinyLFU).
    #[arg(long = "maxmemory-policy", env = "CACHALOT_MAXMEMORY_POLICY")]
    maxmemory_policy: Option<String>,
    /// Maximum simultaneous clients.
    #[arg(long, env = "CACHALOT_MAXCLIENTS")]
    maxclients: Option<String>,
    /// Close clients idle for this many seconds (0 = never).
    #[arg(long, env = "CACHALOT_TIMEOUT")]
    timeout: Option<String>,
    /// Require AUTH with this password.
    #[arg(long, env = "CACHALOT_REQUIREPASS")]
    requirepass: Option<String>,
    /// Largest bulk string a client may send.
    #[arg(long = "proto-max-bulk-len", env = "CACHALOT_PROTO_MAX_BULK_LEN")]
    proto_max_bulk_len: Option<String>,
    /// Slow log threshold in microseconds (negative disables).
    #[arg(
        long = "slowlog-log-slower-than",
        env = "CACHALOT_SLOWLOG_LOG_SLOWER_THAN",
        allow_hyphen_values = true
    )]
    slowlog_log_slower_than: Option<String>,
    /// Slow log length.
    #[arg(long = "slowlog-max-len", env = "CACHALOT_SLOWLOG_MAX_LEN")]
    slowlog_max_len: Option<String>,
    /// Redis's lfu-log-factor.
    #[arg(long = "lfu-log-factor", env = "CACHALOT_LFU_LOG_FACTOR")]
    lfu_log_factor: Option<String>,
    /// Redis's lfu-decay-time (minutes).
    #[arg(long = "lfu-decay-time", env = "CACHALOT_LFU_DECAY_TIME")]
    lfu_decay_time: Option<String>,
    /// Background cycles per second (active expiry).
    #[arg(long, env = "CACHALOT_HZ")]
    hz: Option<String>,
    /// Storage shards (power of two); default from the core count.
    #[arg(long, env = "CACHALOT_SHARDS")]
    shards: Option<String>,
    /// Cluster mode: yes or no (default no).
    #[arg(long = "cluster-enabled", env = "CACHALOT_CLUSTER_ENABLED")]
    cluster_enabled: Option<String>,
    /// The static shard list, the same on every node: <id>@<ip>:<port>[,...].
    #[arg(long = "cluster-shards", env = "CACHALOT_CLUSTER_SHARDS")]
    cluster_shards: Option<String>,
    /// This node's shard id in --cluster-shards.
    #[arg(long = "cluster-id", env = "CACHALOT_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Data directory: a dynamic cluster node keeps its raft state here (default: .).
    #[arg(long, env = "CACHALOT_DIR")]
    dir: Option<String>,
    /// Join the dynamic cluster that the node at <ip:port> belongs to, as a new shard.
    #[arg(long = "cluster-join", env = "CACHALOT_CLUSTER_JOIN")]
    cluster_join: Option<String>,
    /// Cluster bus port (default: port + 10000; 0 picks a free one).
    #[arg(long = "cluster-bus-port", env = "CACHALOT_CLUSTER_BUS_PORT")]
    cluster_bus_port: Option<String>,
    /// Weight of the shard a joining node creates (1-64, default 1).
    #[arg(long = "cluster-weight", env = "CACHALOT_CLUSTER_WEIGHT")]
    cluster_weight: Option<String>,
    /// Join as a replica of this shard id instead of as a new shard.
    #[arg(long = "cluster-replica-of", env = "CACHALOT_CLUSTER_REPLICA_OF")]
    cluster_replica_of: Option<String>,
    /// The IP other nodes and clients reach this node at (default: the bind address).
    #[arg(long = "cluster-announce-ip", env = "CACHALOT_CLUSTER_ANNOUNCE_IP")]
    cluster_announce_ip: Option<String>,
    /// Hot-key detection: yes or no (default yes).
    #[arg(long = "hotkeys-enabled", env = "CACHALOT_HOTKEYS_ENABLED")]
    hotkeys_enabled: Option<String>,
    /// Share of the node's key accesses from which a key is hot (default 0.01).
    #[arg(long = "hotkeys-min-share", env = "CACHALOT_HOTKEYS_MIN_SHARE")]
    hotkeys_min_share: Option<String>,
    /// Accesses per second from which a key is hot (default 100).
    #[arg(long = "hotkeys-min-rate", env = "CACHALOT_HOTKEYS_MIN_RATE")]
    hotkeys_min_rate: Option<String>,
    /// Keys the hot-key detector tracks (default 32).
    #[arg(long = "hotkeys-top-k", env = "CACHALOT_HOTKEYS_TOP_K")]
    hotkeys_top_k: Option<String>,
    /// Sample one keyed command in this many for hot-key detection.
    #[arg(long = "hotkeys-sample", env = "CACHALOT_HOTKEYS_SAMPLE")]
    hotkeys_sample: Option<String>,
    /// Bytes of replication stream kept for partial resyncs (default 16mb).
    #[arg(long = "repl-backlog-size", env = "CACHALOT_REPL_BACKLOG_SIZE")]
    repl_backlog_size: Option<String>,
    /// Replicate from the primary at "<host> <port>" (or <host>:<port>).
    #[arg(long, env = "CACHALOT_REPLICAOF")]
    replicaof: Option<String>,
    /// The password this replica gives its primary.
    #[arg(long, env = "CACHALOT_MASTERAUTH")]
    masterauth: Option<String>,
    /// Milliseconds without heartbeats after which a cluster node is failed (default 2000).
    #[arg(long = "cluster-node-timeout", env = "CACHALOT_CLUSTER_NODE_TIMEOUT")]
    cluster_node_timeout: Option<String>,
    /// Serve Prometheus metrics (GET /metrics) on this port (default: off; 0 = any).
    #[arg(long = "metrics-port", env = "CACHALOT_METRICS_PORT")]
    metrics_port: Option<String>,
    /// Worker threads (default: one per available core).
    #[arg(long, env = "CACHALOT_THREADS")]
    threads: Option<usize>,
    /// Log filter, as RUST_LOG (error, warn, info, debug, trace).
    #[arg(long = "log-level", env = "CACHALOT_LOG_LEVEL", default_value = "info")]
    log_level: String,
}

impl Args {
    fn overrides(&self) -> Vec<(&'static str, &str)> {
        let pairs: [(&'static str, &Option<String>); 33] = [
            ("bind", &self.bind),
            ("port", &self.port),
            ("maxmemory", &self.maxmemory),
            ("maxmemory-policy", &self.maxmemory_policy),
            ("maxclients", &self.maxclients),
            ("timeout", &self.timeout),
            ("requirepass", &self.requirepass),
            ("proto-max-bulk-len", &self.proto_max_bulk_len),
            ("slowlog-log-slower-than", &self.slowlog_log_slower_than),
            ("slowlog-max-len", &self.slowlog_max_len),
            ("lfu-log-factor", &self.lfu_log_factor),
            ("lfu-decay-time", &self.lfu_decay_time),
            ("hz", &self.hz),
            ("shards", &self.shards),
            ("cluster-enabled", &self.cluster_enabled),
            ("cluster-shards", &self.cluster_shards),
            ("cluster-id", &self.cluster_id),
            ("dir", &self.dir),
            ("cluster-join", &self.cluster_join),
            ("cluster-bus-port", &self.cluster_bus_port),
            ("cluster-weight", &self.cluster_weight),
            ("cluster-replica-of", &self.cluster_replica_of),
            ("cluster-announce-ip", &self.cluster_announce_ip),
            ("hotkeys-enabled", &self.hotkeys_enabled),
            ("hotkeys-min-share", &self.hotkeys_min_share),
            ("hotkeys-min-rate", &self.hotkeys_min_rate),
            ("hotkeys-top-k", &self.hotkeys_top_k),
            ("hotkeys-sample", &self.hotkeys_sample),
            ("repl-backlog-size", &self.repl_backlog_size),
            ("replicaof", &self.replicaof),
            ("masterauth", &self.masterauth),
            ("cluster-node-timeout", &self.cluster_node_timeout),
            ("metrics-port", &self.metrics_port),
        ];
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
            .collect()
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = match Config::from_sources(args.config.as_deref(), &args.overrides()) {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "refusing to start");
            return ExitCode::from(2);
        }
    };
    // One core (or --threads 1): a current-thread runtime does the same work without the
    // work-stealing scheduler's synchronisation.
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let mut runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    runtime.enable_all();
    let runtime = match runtime.build() {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "exiting");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), cachalot_server::error::Error> {
    let addr = std::net::SocketAddr::new(config.bind, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| cachalot_server::error::Error::Io {
            context: format!("bind {addr}"),
            source,
        })?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    info!(pid = std::process::id(), "starting cachalot-server");
    cachalot_server::net::listener::run(listener, config, shutdown).await
}

/// Turns SIGINT or SIGTERM into cancellation of the node.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => info!("received SIGINT, shutting down"),
            _ = term.recv() => info!("received SIGTERM, shutting down"),
            _ = shutdown.cancelled() => {}
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = ctrl_c => info!("received Ctrl-C, shutting down"),
            _ = shutdown.cancelled() => {}
        }
    }
    shutdown.cancel();
}
