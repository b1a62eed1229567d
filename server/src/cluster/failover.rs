//! Failure detection and failover in a dynamic cluster.
//!
//! Every node sends every other node a [`Heartbeat`] every [`HEARTBEAT_INTERVAL`] over the
//! bus, with its replication offset, and remembers when it last heard from each
//! ([`Liveness`]). Three things follow from that table:
//! - **The raft leader fails primaries.** A primary it has not heard from for
//!   `cluster-node-timeout` (default 2 s) is replaced: the leader commits
//!   [`Op::Failover`] to the shard's live replica with the highest offset. The failover
//!   moves no slot; every node's topology changes, clients get `-MOVED` to the new primary.
//! - **A node cut off from the majority stops taking writes.** A node takes writes only
//!   while it is the raft leader or has heard from the leader within the node timeout (a
//!   leader that loses its quorum steps down: raft's `check_quorum`), so a primary on the
//!   minority side of a partition refuses writes (`-CLUSTERDOWN`) after the node timeout,
//!   about when the majority promotes its replica.
//! - **Roles follow the configuration.** A node the configuration makes a replica follows
//!   its shard's primary; one it makes a primary stops following
//!   ([`Replication::promote`](crate::replication::Replication::promote)).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::bus::{Frame, Heartbeat, Peers};
use super::config::{Failover, Op};
use super::raft_node::RaftStatus;
use super::state::clock_millis;
use super::topology::{PeerInfo, Topology};
use crate::node::Node;
use crate::replication::Role;

/// How often every node tells every other one it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);

/// When each node was last heard from, and the offset it reported.
#[derive(Debug, Default)]
pub struct Liveness {
    seen: Mutex<HashMap<u64, Seen>>,
}

/// One node's last heartbeat.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    /// When it arrived.
    pub at: Instant,
    /// The replication offset it carried.
    pub offset: u64,
    /// Its `sent_ms`, to echo back to it.
    pub their_sent_ms: u64,
    /// The newest of our heartbeats it has answered, on our clock.
    pub echo_ms: u64,
    /// Its raft leader.
    pub leader: u64,
    /// Whether it holds its shard's data (see [`Heartbeat::synced`]).
    pub synced: bool,
}

impl Liveness {
    /// Records a heartbeat.
    pub fn saw(&self, h: &Heartbeat) {
        let mut seen = self.seen.lock();
        let echo_ms = seen.get(&h.id).map_or(0, |s| s.echo_ms).max(h.echo_ms);
        seen.insert(
            h.id,
            Seen {
                at: Instant::now(),
                offset: h.offset,
                their_sent_ms: h.sent_ms,
                echo_ms,
                leader: h.leader,
                synced: h.synced,
            },
        );
    }

    /// The last heartbeat from `id`.
    pub fn get(&self, id: u64) -> Option<Seen> {
        self.seen.lock().get(&id).copied()
    }

    /// Whether `id` was heard from within `timeout`.
    pub fn fresh(&self, id: u64, timeout: Duration) -> bool {
        self.get(id).is_some_and(|s| s.at.elapsed() < timeout)
    }
}

/// Sends heartbeats, keeps `writable` and the replication role up to date, and (on the
/// raft leader) fails primaries that went silent. Runs until `shutdown`.
pub async fn run(node: Arc<Node>, peers: Arc<Peers>, shutdown: CancellationToken) {
    let Some(cluster) = node.cluster.as_ref() else {
        return;
    };
    let me = peers.hello.id;
    let timeout = node.config.cluster_node_timeout;
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changes = cluster.watch();
    let mut leading_since: Option<Instant> = None;
    let mut proposed: HashMap<u64, Instant> = HashMap::new();
    // Silence is only held against a node after this: the start, or the end of a stall
    // of this process (stopped, or starved), during which nobody could be heard.
    let mut floor = Instant::now();
    let mut last_tick = Instant::now();
    follow_role(&node);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
                follow_role(&node);
                continue;
            }
            _ = tick.tick() => {}
        }
        if last_tick.elapsed() > HEARTBEAT_INTERVAL * 5 {
            floor = Instant::now();
        }
        last_tick = Instant::now();
        let topo = cluster.topology();
        let Some(raft) = cluster.raft.get() else {
            continue;
        };
        let status = raft.status();
        let offset = node.repl.offset();
        let synced = synced(&node);
        for p in topo.peers().iter().filter(|p| p.raft_id != me) {
            let echo_ms = cluster
                .liveness
                .get(p.raft_id)
                .map_or(0, |s| s.their_sent_ms);
            let beat = Heartbeat {
                id: me,
                offset,
                sent_ms: clock_millis(),
                echo_ms,
                leader: status.leader,
                synced,
            };
            peers.send_frame(p.raft_id, Frame::Heartbeat(beat));
        }
        let leader = status.role == "leader";
        let was = cluster.writable();
        if let Some(at) = majority_evidence(cluster, me, &status) {
            let until = at.saturating_add(millis(timeout));
            cluster.writable_until.fetch_max(until, Ordering::Relaxed);
        }
        let in_majority = cluster.writable();
        if was != in_majority {
            if in_majority {
                info!("in touch with the cluster's majority again; taking writes");
            } else {
                warn!("cut off from the cluster's leader; refusing writes");
            }
        }
        if !leader {
            leading_since = None;
            continue;
        }
        let since = *leading_since.get_or_insert_with(Instant::now);
        for (shard, from, to) in failed_primaries(&node, &topo, me, (since, floor), timeout) {
            if proposed
                .get(&shard)
                .is_some_and(|at| at.elapsed() < timeout)
            {
                continue;
            }
            proposed.insert(shard, Instant::now());
            warn!(
                shard,
                failed = from,
                promoted = to,
                "primary failed; promoting a replica"
            );
            let node = Arc::clone(&node);
            tokio::spawn(async move {
                let Some(raft) = node.cluster.as_ref().and_then(|c| c.raft.get()) else {
                    return;
                };
                let op = Op::Failover(Failover { shard, from, to });
                if let Err(e) = raft.propose(op).await {
                    warn!(shard, error = %e, "failover not committed");
                }
            });
        }
    }
}

/// The latest time, on this node's clock ([`clock_millis`]), at which it is known to
/// have been on the majority side: for the leader, the time by which a majority of voters
/// (itself included) had answered a heartbeat of its own while taking it for the leader;
/// for the others, the time of the newest of their heartbeats the leader answered.
///
/// Answers are echoes of this node's own send times, so a heartbeat that waited in a
/// socket buffer (this process was stopped, or the network held it) proves nothing newer
/// than when it was really answered: a paused primary takes no write when it resumes.
fn majority_evidence(cluster: &super::Cluster, me: u64, status: &RaftStatus) -> Option<u64> {
    let now = clock_millis();
    let answered = |id: u64, leader: u64| -> Option<u64> {
        if id == me {
            return Some(now);
        }
        let seen = cluster.liveness.get(id)?;
        (seen.leader == leader && seen.echo_ms > 0).then_some(seen.echo_ms)
    };
    if status.role == "leader" {
        let mut times: Vec<u64> = status
            .voters
            .iter()
            .filter_map(|&v| answered(v, me))
            .collect();
        let quorum = status.voters.len() / 2 + 1;
        if times.len() < quorum {
            return None;
        }
        times.sort_unstable_by(|a, b| b.cmp(a));
        times.get(quorum - 1).copied()
    } else if status.leader != 0 {
        answered(status.leader, status.leader)
    } else {
        None
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `(shard, failed primary, replica to promote)` for every shard whose primary has not
/// been heard from for `timeout` and that has a live replica. A primary never heard from
/// counts from `since` (when this node became leader); none counts from before `floor`.
fn failed_primaries(
    node: &Node,
    topo: &Topology,
    me: u64,
    (since, floor): (Instant, Instant),
    timeout: Duration,
) -> Vec<(u64, u64, u64)> {
    let Some(cluster) = node.cluster.as_ref() else {
        return Vec::new();
    };
    let liveness = &cluster.liveness;
    // Only a live replica that holds the shard's data can take over.
    let offset_of = |p: &PeerInfo| {
        if p.raft_id == me {
            synced(node).then(|| node.repl.offset())
        } else {
            liveness
                .get(p.raft_id)
                .filter(|s| s.at.elapsed() < timeout && s.synced)
                .map(|s| s.offset)
        }
    };
    let mut out = Vec::new();
    for primary in topo
        .peers()
        .iter()
        .filter(|p| !p.replica && p.raft_id != me)
    {
        // Every node hears every other one, so a new leader's table is as good as the
        // old leader's; only a node it never heard from counts from its election.
        let last = liveness
            .get(primary.raft_id)
            .map_or(since, |s| s.at)
            .max(floor);
        if last.elapsed() < timeout {
            continue;
        }
        let shard = primary.peer.id;
        tracing::debug!(
            primary = primary.raft_id,
            silent_ms = last.elapsed().as_millis() as u64,
            "primary silent past the node timeout"
        );
        let best = topo
            .peers()
            .iter()
            .filter(|p| p.replica && p.peer.id == shard)
            .filter_map(|p| offset_of(p).map(|o| (o, p.raft_id)))
            .max();
        if let Some((_, to)) = best {
            out.push((shard.get(), primary.raft_id, to));
        }
    }
    out
}

/// Whether this node holds its shard's data (see
/// [`Replication::holds_data`](crate::replication::Replication::holds_data)).
fn synced(node: &Node) -> bool {
    node.repl.holds_data()
}

/// Makes the replication role match the topology: a replica follows its shard's primary,
/// a primary follows nobody.
pub fn follow_role(node: &Node) {
    let Some(cluster) = node.cluster.as_ref() else {
        return;
    };
    let topo = cluster.topology();
    let me = topo.myself();
    if me.epoch == 0 {
        // Not a member (yet, or any more).
        return;
    }
    if me.replica {
        if let Some(primary) = topo.peer(me.peer.id) {
            let addr = primary.peer.addr;
            if node.repl.role() != Role::Replica(addr) {
                info!(primary = %addr, "following the shard's primary");
                node.repl.follow(addr);
            }
        }
        // A manual failover paused this node's writes while it was the primary: they
        // resume now, and are redirected to the new primary.
        node.pause.unpause();
    } else if node.repl.is_replica() {
        info!("promoted: this node is its shard's primary now");
        node.repl.promote();
    }
}

/// Longest a manual failover waits for the replica to catch up with its paused primary.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);

/// `CLUSTER FAILOVER` on a replica: with `force`, promotes it at once (its primary may be
/// unreachable); otherwise a coordinated switchover that loses no write: the primary's
/// writes are paused (`CLIENT PAUSE ... WRITE`), this replica catches up to the primary's
/// final offset, and only then is the promotion committed. The old primary resumes when
/// it learns it is a replica (its held writes are then redirected to the new primary).
///
/// # Errors
/// Why the failover did not happen.
pub async fn manual(node: Arc<Node>, force: bool) -> Result<(), String> {
    let cluster = node.cluster.as_ref().ok_or("not a cluster node")?;
    let raft = cluster.raft.get().ok_or("this is a static cluster")?;
    let topo = cluster.topology();
    let me = topo.myself().clone();
    if !me.replica {
        return Err("You should send CLUSTER FAILOVER to a replica".into());
    }
    let primary = topo
        .peer(me.peer.id)
        .cloned()
        .ok_or("this replica's shard has no primary")?;
    if !force {
        let password = node.config.requirepass.clone();
        let pause_ms = (CATCH_UP_TIMEOUT.as_millis() * 2).to_string();
        let args = ["CLIENT", "PAUSE", pause_ms.as_str(), "WRITE"].map(str::to_owned);
        let reply = super::membership::request(primary.peer.addr, password.as_deref(), &args)
            .await
            .map_err(|e| format!("cannot reach the primary: {e}"))?;
        if reply != "+OK" {
            return Err(format!("the primary refused to pause: {reply}"));
        }
        // The primary waited for the writes that were running (its lock stripes) before
        // it answered; what they recorded is in its offset from now on.
        let caught_up = catch_up(&node, primary.peer.addr, password.as_deref()).await;
        match caught_up {
            Ok(true) => {}
            Ok(false) => {
                unpause(primary.peer.addr, password.as_deref()).await;
                return Err("the replica did not catch up with its primary in time".into());
            }
            Err(e) => {
                unpause(primary.peer.addr, password.as_deref()).await;
                return Err(e);
            }
        }
    }
    let result = raft
        .propose(Op::Failover(Failover {
            shard: me.peer.id.get(),
            from: primary.raft_id,
            to: me.raft_id,
        }))
        .await;
    if result.is_err() && !force {
        // The primary stays the primary: let its writes go on.
        unpause(primary.peer.addr, node.config.requirepass.as_deref()).await;
    }
    result
}

/// Waits until this replica has applied everything its paused primary holds (the
/// primary's offset, read twice to be sure it stands still); false after the timeout.
async fn catch_up(
    node: &Node,
    primary: std::net::SocketAddr,
    password: Option<&str>,
) -> Result<bool, String> {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    while Instant::now() < deadline {
        let theirs = primary_offset(primary, password).await?;
        if node.repl.offset() >= theirs {
            let again = primary_offset(primary, password).await?;
            if again == theirs {
                return Ok(true);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(false)
}

/// Lifts a primary's write pause (best effort: the pause ends by itself anyway).
async fn unpause(addr: std::net::SocketAddr, password: Option<&str>) {
    let args = ["CLIENT", "UNPAUSE"].map(str::to_owned);
    let _ = super::membership::request(addr, password, &args).await;
}

/// A primary's replication offset, from `ROLE` (which drains its effects first).
async fn primary_offset(addr: std::net::SocketAddr, password: Option<&str>) -> Result<u64, String> {
    let lines = super::membership::request_lines(addr, password, &["ROLE".to_owned()], 4)
        .await
        .map_err(|e| format!("cannot reach the primary: {e}"))?;
    lines
        .get(3)
        .and_then(|l| l.strip_prefix(':'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unexpected ROLE reply from the primary: {lines:?}"))
}
