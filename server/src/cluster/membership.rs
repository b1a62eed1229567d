//! Starting a dynamic cluster node: open (or create) its raft state in the data
//! directory, bind the bus, start raft, the bus server and the migrator, and, for a new
//! node with `cluster-join`, ask the cluster to take it in.
//!
//! - No state and no `cluster-join`: a new cluster of one, this node the primary of
//!   shard 1 with every slot.
//! - No state and `cluster-join <seed>`: a fresh raft id is saved, then `CLUSTER JOIN` is
//!   sent to the seed (any member; raft forwards the change to the leader) until it is
//!   applied. The leader adds the node to raft, which sends it the configuration.
//! - State: the node restarts with its identity and rejoins on its own; if it never
//!   finished joining, it asks again.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use raft::eraftpb::{ConfState, HardState, Snapshot, SnapshotMetadata};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::bus::{self, Peers};
use super::config::{ClusterConfig, NodeEntry};
use super::raft_node;
use super::raft_store::DiskStorage;
use super::topology::{default_bus_port, Topology};
use crate::error::Error;
use crate::node::Node;

/// Pause between join attempts.
const JOIN_RETRY: Duration = Duration::from_millis(500);
/// Longest wait for a seed's reply to `CLUSTER JOIN`.
const JOIN_REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest `CLUSTER JOIN` reply line read.
const MAX_REPLY_BYTES: u64 = 4096;

/// The IP this node announces: `cluster-announce-ip`, else the bind address.
pub fn announce_ip(node: &Node) -> IpAddr {
    node.config.cluster_announce_ip.unwrap_or(node.config.bind)
}

/// Starts the cluster side of a dynamic cluster node (see the module docs).
///
/// # Errors
/// [`Error::Io`] when the data directory or bus port cannot be used or the raft state
/// does not load.
pub async fn start(
    node: &Arc<Node>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let Some(cluster) = node.cluster.as_ref() else {
        return Ok(());
    };
    let io = |context: String| move |source| Error::Io { context, source };
    let config = &node.config;
    let port = node.port();
    let bus_port = config
        .cluster_bus_port
        .unwrap_or_else(|| default_bus_port(port));
    let bus_listener = TcpListener::bind(SocketAddr::new(config.bind, bus_port))
        .await
        .map_err(io(format!("bind cluster bus port {bus_port}")))?;
    let bus_port = bus_listener
        .local_addr()
        .map_err(io("cluster bus address".into()))?
        .port();
    let ip = announce_ip(node);
    let client_addr = SocketAddr::new(ip, port);
    let bus_addr = SocketAddr::new(ip, bus_port);
    std::fs::create_dir_all(&config.dir).map_err(io(format!(
        "create data directory {}",
        config.dir.display()
    )))?;
    let dir = config.dir.clone();
    let loaded = tokio::task::spawn_blocking(move || DiskStorage::open(&dir))
        .await
        .map_err(|e| Error::Io {
            context: "load raft state".into(),
            source: std::io::Error::other(e),
        })?
        .map_err(io("load raft state".into()))?;
    let me = NodeEntry {
        id: 0,
        addr: client_addr.to_string(),
        bus_port: u32::from(bus_port),
        ..NodeEntry::default()
    };
    let (storage, applied) = match loaded {
        Some(s) => {
            let cfg = s
                .snapshot_ref()
                .and_then(|snap| ClusterConfig::decode(snap.data.as_slice()).ok())
                .unwrap_or_default();
            info!(
                id = s.id(),
                epoch = cfg.epoch,
                "restarting with saved cluster state"
            );
            (s, cfg)
        }
        None if config.cluster_join.is_some() => {
            let id = fresh_id();
            info!(id, "new node; joining the cluster");
            (DiskStorage::new(&config.dir, id), ClusterConfig::default())
        }
        None => {
            let id = fresh_id();
            let mut entry = me.clone();
            entry.id = id;
            let cfg = ClusterConfig::bootstrap(entry);
            let mut s = DiskStorage::new(&config.dir, id);
            let voters = ConfState {
                voters: vec![id],
                ..ConfState::default()
            };
            s.set_conf_state(voters.clone());
            s.apply_snapshot(Snapshot {
                data: cfg.encode_to_vec(),
                metadata: Some(SnapshotMetadata {
                    conf_state: Some(voters),
                    index: 1,
                    term: 1,
                }),
            });
            s.set_hard_state(HardState {
                term: 1,
                vote: 0,
                commit: 1,
            });
            info!(id, "new cluster; this node holds every slot");
            (s, cfg)
        }
    };
    let storage = tokio::task::spawn_blocking(move || storage.persist().map(|()| storage))
        .await
        .map_err(|e| Error::Io {
            context: "save raft state".into(),
            source: std::io::Error::other(e),
        })?
        .map_err(io("save raft state".into()))?;
    let my_id = storage.id();
    let needs_join = applied.node(my_id).is_none();
    let peers = Arc::new(Peers::new(
        bus::Hello {
            id: my_id,
            bus_addr: bus_addr.to_string(),
            password: config.requirepass.clone().unwrap_or_default(),
        },
        tokio::runtime::Handle::current(),
        shutdown.child_token(),
    ));
    let weak = Arc::downgrade(node);
    let on_config = Box::new(move |cfg: &ClusterConfig| {
        if let Some(node) = weak.upgrade() {
            if let Some(c) = &node.cluster {
                let was_member = c.topology().myself().epoch > 0;
                let topo = Topology::from_config(cfg, my_id, client_addr, bus_port);
                if was_member && topo.myself().epoch == 0 {
                    warn!("this node was removed from the cluster configuration");
                }
                c.set_topology(topo);
            }
        }
    });
    let handle = raft_node::start(
        storage,
        applied,
        Arc::clone(&peers),
        on_config,
        shutdown.clone(),
    )
    .map_err(io("start raft".into()))?;
    if cluster.raft.set(handle).is_err() {
        warn!("raft already started");
    }
    // Writes wait until this node knows it is in touch with the leader.
    cluster
        .writable_until
        .store(0, std::sync::atomic::Ordering::Relaxed);
    tracker.spawn(super::failover::run(
        Arc::clone(node),
        Arc::clone(&peers),
        shutdown.child_token(),
    ));
    tracker.spawn(bus::serve(
        bus_listener,
        Arc::clone(node),
        peers,
        shutdown.child_token(),
    ));
    tracker.spawn(super::migrate::run(
        Arc::clone(node),
        shutdown.child_token(),
    ));
    if needs_join {
        if let Some(seed) = config.cluster_join {
            let mut entry = me;
            entry.id = my_id;
            tracker.spawn(join(
                seed,
                entry,
                (config.cluster_weight, config.cluster_replica_of),
                config.requirepass.clone(),
                shutdown.clone(),
            ));
        } else {
            warn!("this node is not in its saved cluster configuration and has no cluster-join");
        }
    }
    Ok(())
}

/// A random raft id: never 0, and below 2^63 so it is a Redis integer in commands.
fn fresh_id() -> u64 {
    use rand::Rng;
    rand::thread_rng().gen_range(1..(1u64 << 63))
}

/// Sends `CLUSTER JOIN` to `seed` until it is applied; a refusal that retrying cannot fix
/// stops the node. With a password, the node authenticates with its own (every node of a
/// cluster shares one).
async fn join(
    seed: SocketAddr,
    me: NodeEntry,
    (weight, replica_of): (u32, Option<u64>),
    password: Option<String>,
    shutdown: CancellationToken,
) {
    let mut args = vec![
        "CLUSTER".to_string(),
        "JOIN".to_string(),
        me.id.to_string(),
        me.addr.clone(),
        me.bus_port.to_string(),
    ];
    match replica_of {
        Some(shard) => args.extend(["REPLICAOF".to_string(), shard.to_string()]),
        None => args.extend(["WEIGHT".to_string(), weight.to_string()]),
    }
    loop {
        let reply = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(JOIN_REPLY_TIMEOUT, request(seed, password.as_deref(), &args)) => r,
        };
        match reply {
            Ok(Ok(line)) if line == "+OK" => {
                info!(%seed, "joined the cluster");
                return;
            }
            Ok(Ok(line)) if retryable(&line) => {
                info!(%seed, reply = %line, "join not taken yet; retrying");
            }
            Ok(Ok(line)) => {
                error!(%seed, reply = %line, "the cluster refused this node; shutting down");
                shutdown.cancel();
                return;
            }
            Ok(Err(e)) => warn!(%seed, error = %e, "cannot reach the seed; retrying"),
            Err(_) => warn!(%seed, "the seed did not answer in time; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(JOIN_RETRY) => {}
        }
    }
}

/// Refusals that go away by themselves: a resharding that ends, a leader being elected.
fn retryable(line: &str) -> bool {
    [
        "resharding in progress",
        "no leader",
        "did not commit",
        "busy",
        "dropped",
        "LOADING",
    ]
    .iter()
    .any(|s| line.contains(s))
}

/// Sends one command to `addr` (after `AUTH password`, if given) and reads its one-line
/// reply (or the `AUTH` error).
pub(crate) async fn request(
    addr: SocketAddr,
    password: Option<&str>,
    args: &[String],
) -> std::io::Result<String> {
    Ok(request_lines(addr, password, args, 1).await?.join("\n"))
}

/// Like [`request`], reading `lines` reply lines (a short array reply, line by line).
pub(crate) async fn request_lines(
    addr: SocketAddr,
    password: Option<&str>,
    args: &[String],
    lines: usize,
) -> std::io::Result<Vec<String>> {
    let encode = |args: &[&str]| {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        out
    };
    let mut out = String::new();
    if let Some(p) = password {
        out.push_str(&encode(&["AUTH", p]));
    }
    out.push_str(&encode(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let mut socket = TcpStream::connect(addr).await?;
    socket.write_all(out.as_bytes()).await?;
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(socket, MAX_REPLY_BYTES));
    let mut line = String::new();
    if password.is_some() {
        reader.read_line(&mut line).await?;
        if !line.starts_with("+OK") {
            return Ok(vec![line.trim_end().to_string()]);
        }
        line.clear();
    }
    let mut out = Vec::with_capacity(lines);
    for _ in 0..lines {
        line.clear();
        reader.read_line(&mut line).await?;
        out.push(line.trim_end().to_string());
        if out.len() == 1 && line.starts_with('-') {
            break;
        }
    }
    Ok(out)
}
