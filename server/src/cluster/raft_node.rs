//! The raft node that replicates the cluster configuration: one thread that owns the
//! raft state machine and its storage, fed by a bounded channel.
//!
//! A thread rather than a task because persisting is blocking file I/O (write, fsync,
//! rename); nothing on the request path waits for it. Connections propose changes with
//! [`RaftHandle::propose`] (raft forwards a follower's proposal to the leader) and are
//! answered when the change has been applied here.
//!
//! The leader also keeps raft's membership in line with the configuration, one change at
//! a time: nodes in the configuration join raft as learners, learners that have caught up
//! are promoted until there are 3 voters (5 from 5 nodes on; 1 below 3 nodes), and nodes
//! that left the configuration leave raft.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prost::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, Entry, EntryType, Message};
use raft::{RawNode, StateRole, Storage as _};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::bus::Peers;
use super::config::{ClusterConfig, Op, Proposal};
use super::raft_store::DiskStorage;

/// One raft tick.
const TICK: Duration = Duration::from_millis(100);
/// Ticks without a leader before a follower campaigns (randomised up to twice this).
const ELECTION_TICKS: usize = 10;
/// Ticks between the leader's heartbeats.
const HEARTBEAT_TICKS: usize = 2;
/// Inputs queued for the raft thread before new ones are refused.
const INPUT_QUEUE: usize = 4096;
/// Proposals waiting for their entry to apply.
const MAX_PENDING: usize = 1024;
/// How a proposal raft would not take starts its error.
const NO_LEADER: &str = "no leader to take the change";
/// Pause before proposing again a change raft would not take.
const PROPOSE_RETRY: Duration = Duration::from_millis(100);
/// How long a caller waits for its change to apply.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the raft thread is asked to do.
enum Input {
    Step(Box<Message>),
    Propose {
        op: Op,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Stop,
}

/// Where a proposal's result goes.
type Reply = oneshot::Sender<Result<(), String>>;

/// Raft's view, for `CLUSTER INFO`.
#[derive(Clone, Debug, Default)]
pub struct RaftStatus {
    /// The leader's raft id, 0 when unknown.
    pub leader: u64,
    /// The current term.
    pub term: u64,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: &'static str,
    /// Voter ids.
    pub voters: Vec<u64>,
    /// Learner ids.
    pub learners: Vec<u64>,
    /// The last applied index.
    pub applied: u64,
}

/// A handle on the raft thread.
#[derive(Debug)]
pub struct RaftHandle {
    id: u64,
    tx: SyncSender<Input>,
    status: Arc<Mutex<RaftStatus>>,
}

impl RaftHandle {
    /// This node's raft id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Hands a message from a peer to raft; dropped if the thread is backed up.
    pub fn step(&self, m: Message) {
        let _ = self.tx.try_send(Input::Step(Box::new(m)));
    }

    /// Proposes a change and waits until it is applied here (or refused).
    ///
    /// # Errors
    /// The configuration's refusal, or why it could not be proposed or did not apply in
    /// [`PROPOSE_TIMEOUT`].
    pub async fn propose(&self, op: Op) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + PROPOSE_TIMEOUT;
        loop {
            let (reply, rx) = oneshot::channel();
            match self.tx.try_send(Input::Propose {
                op: op.clone(),
                reply,
            }) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Err("cluster configuration is busy".into()),
                Err(TrySendError::Disconnected(_)) => return Err("cluster node stopped".into()),
            }
            let result = match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err("the change was dropped (no leader?)".into()),
                Err(_) => Err("the change did not commit in time (no leader?)".into()),
            };
            // Raft refused to take it (no leader known right now, as during an election):
            // it was never appended, so asking again is safe.
            let dropped = result.as_ref().is_err_and(|e| e.starts_with(NO_LEADER));
            if !dropped || tokio::time::Instant::now() + PROPOSE_RETRY >= deadline {
                return result;
            }
            tokio::time::sleep(PROPOSE_RETRY).await;
        }
    }

    /// A copy of raft's status.
    pub fn status(&self) -> RaftStatus {
        self.status.lock().clone()
    }

    /// Stops the thread.
    pub fn stop(&self) {
        let _ = self.tx.try_send(Input::Stop);
    }
}

/// Starts the raft thread for node `storage.id()`, whose configuration (applied up to the
/// storage's snapshot) is `config`. `on_config` runs on the raft thread after every
/// change is applied.
///
/// # Errors
/// Raft refusing the stored state, or the thread not starting.
pub fn start(
    storage: DiskStorage,
    config: ClusterConfig,
    peers: Arc<Peers>,
    on_config: Box<dyn Fn(&ClusterConfig) + Send>,
    stop_node: tokio_util::sync::CancellationToken,
) -> std::io::Result<RaftHandle> {
    let id = storage.id();
    let applied = storage
        .snapshot_ref()
        .and_then(|s| s.metadata.as_ref())
        .map_or(0, |m| m.index);
    let raft_config = raft::Config {
        id,
        election_tick: ELECTION_TICKS,
        heartbeat_tick: HEARTBEAT_TICKS,
        applied,
        check_quorum: true,
        pre_vote: true,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        ..raft::Config::default()
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let alone = storage
        .initial_state()
        .is_ok_and(|s| s.conf_state.voters == [id]);
    let mut raw = RawNode::new(&raft_config, storage, &logger)
        .map_err(|e| std::io::Error::other(format!("raft: {e}")))?;
    if alone {
        // The only voter: lead now rather than after an election timeout.
        let _ = raw.campaign();
    }
    let (tx, rx) = mpsc::sync_channel(INPUT_QUEUE);
    let status = Arc::new(Mutex::new(RaftStatus::default()));
    let mut worker = Worker {
        raw,
        config,
        peers,
        on_config,
        pending: HashMap::new(),
        // Random, so an entry proposed before a restart cannot answer a new proposal.
        next_request: rand::random::<u64>() >> 1,
        answers: Vec::new(),
        stop_node,
        status: Arc::clone(&status),
    };
    worker.learn_peers();
    worker.publish_status();
    (worker.on_config)(&worker.config);
    std::thread::Builder::new()
        .name("cachalot-raft".into())
        .spawn(move || {
            let stop_node = worker.stop_node.clone();
            // raft-rs panics on messages that contradict its log (a peer gone wrong): stop
            // the node loudly rather than serve a configuration that no longer moves.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run(&rx)));
            if ran.is_err() {
                tracing::error!("the raft thread panicked; shutting the node down");
                stop_node.cancel();
            }
        })?;
    Ok(RaftHandle { id, tx, status })
}

struct Worker {
    raw: RawNode<DiskStorage>,
    config: ClusterConfig,
    peers: Arc<Peers>,
    on_config: Box<dyn Fn(&ClusterConfig) + Send>,
    pending: HashMap<u64, Reply>,
    next_request: u64,
    /// Results of applied proposals, sent once the new topology is installed.
    answers: Vec<(Reply, Result<(), String>)>,
    /// Cancelled if the raft thread dies, so the node does not go on with a frozen
    /// configuration.
    stop_node: tokio_util::sync::CancellationToken,
    status: Arc<Mutex<RaftStatus>>,
}

impl Worker {
    fn run(&mut self, rx: &Receiver<Input>) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(input) => {
                    self.handle(input);
                    while let Ok(more) = rx.try_recv() {
                        if matches!(more, Input::Stop) {
                            return;
                        }
                        self.handle(more);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= next_tick {
                self.raw.tick();
                next_tick = Instant::now() + TICK;
                if self.raw.raft.state == StateRole::Leader {
                    self.reconcile();
                }
                self.pending.retain(|_, tx| !tx.is_closed());
            }
            if let Err(e) = self.on_ready() {
                tracing::error!(error = %e, "raft state could not be saved; shutting the node down");
                self.stop_node.cancel();
                return;
            }
            self.publish_status();
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Step(m) => {
                let _ = self.raw.step(*m);
            }
            Input::Propose { op, reply } => {
                if self.pending.len() >= MAX_PENDING {
                    let _ = reply.send(Err("too many changes waiting".into()));
                    return;
                }
                let request = self.next_request;
                self.next_request += 1;
                let mut context = request.to_be_bytes().to_vec();
                context.extend_from_slice(&self.raw.raft.id.to_be_bytes());
                let data = Proposal { op: Some(op) }.encode_to_vec();
                match self.raw.propose(context, data) {
                    Ok(()) => {
                        self.pending.insert(request, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(format!("{NO_LEADER} ({e})")));
                    }
                }
            }
            Input::Stop => {}
        }
    }

    fn on_ready(&mut self) -> std::io::Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        let messages = ready.take_messages();
        self.send(messages);
        let mut changed = false;
        let mut dirty = false;
        if !ready.snapshot().is_empty() {
            let snap = ready.snapshot().clone();
            match ClusterConfig::decode(snap.data.as_slice()) {
                Ok(c) => {
                    self.config = c;
                    changed = true;
                }
                Err(e) => warn!(error = %e, "snapshot does not decode; ignored"),
            }
            self.raw.mut_store().apply_snapshot(snap);
            dirty = true;
        }
        changed |= self.apply(ready.take_committed_entries());
        if !ready.entries().is_empty() {
            self.raw.mut_store().append(ready.entries());
            dirty = true;
        }
        if let Some(hs) = ready.hs() {
            self.raw.mut_store().set_hard_state(hs.clone());
            dirty = true;
        }
        if changed || dirty {
            self.raw.mut_store().persist()?;
        }
        let messages = ready.take_persisted_messages();
        self.send(messages);
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.raw.mut_store().set_commit(commit);
        }
        let messages = light.take_messages();
        self.send(messages);
        let more = self.apply(light.take_committed_entries());
        self.raw.advance_apply();
        if more || light.commit_index().is_some() {
            self.raw.mut_store().persist()?;
        }
        if changed || more {
            self.learn_peers();
            (self.on_config)(&self.config);
        }
        // After the topology: a caller that hears "applied" sees the change.
        for (tx, result) in self.answers.drain(..) {
            let _ = tx.send(result);
        }
        Ok(())
    }

    /// Hands messages to the transport. A snapshot is reported delivered as soon as it is
    /// queued: raft then probes the follower with appends, and sends the snapshot again if
    /// it never arrived, instead of waiting for a report that may never come.
    fn send(&mut self, messages: Vec<Message>) {
        for m in messages {
            let snapshot_to =
                (m.msg_type() == raft::eraftpb::MessageType::MsgSnapshot).then_some(m.to);
            self.peers.send(m);
            if let Some(to) = snapshot_to {
                self.raw.report_snapshot(to, raft::SnapshotStatus::Finish);
            }
        }
    }

    /// Applies committed entries; whether the configuration changed.
    fn apply(&mut self, entries: Vec<Entry>) -> bool {
        let Some(last) = entries.last().map(|e| e.index) else {
            return false;
        };
        let mut changed = false;
        for entry in entries {
            match entry.entry_type() {
                EntryType::EntryNormal if !entry.data.is_empty() => {
                    let result = match Proposal::decode(entry.data.as_slice()) {
                        Ok(Proposal { op: Some(op) }) => {
                            self.config.apply(&op).map_err(|e| e.to_string())
                        }
                        _ => Err("malformed change".to_string()),
                    };
                    changed |= result.is_ok();
                    self.answer(&entry.context, result);
                }
                EntryType::EntryConfChange => {
                    if let Ok(cc) = ConfChange::decode(entry.data.as_slice()) {
                        match self.raw.apply_conf_change(&cc) {
                            Ok(cs) => {
                                info!(node = cc.node_id, change = ?cc.change_type(), "raft membership changed");
                                self.raw.mut_store().set_conf_state(cs);
                            }
                            Err(e) => warn!(error = %e, "conf change refused"),
                        }
                    }
                }
                _ => {}
            }
        }
        let data = self.config.encode_to_vec();
        self.raw.mut_store().set_applied(last, data);
        changed
    }

    fn answer(&mut self, context: &[u8], result: Result<(), String>) {
        if context.len() != 16 {
            return;
        }
        let (request, node) = context.split_at(8);
        let node = u64::from_be_bytes(node.try_into().unwrap_or([0; 8]));
        if node != self.raw.raft.id {
            return;
        }
        let request = u64::from_be_bytes(request.try_into().unwrap_or([0; 8]));
        if let Some(tx) = self.pending.remove(&request) {
            self.answers.push((tx, result));
        }
    }

    fn learn_peers(&self) {
        for n in &self.config.nodes {
            if let Some(addr) = n.bus_addr() {
                self.peers.learn(n.id, addr);
            }
        }
        // Keep raft members too: a node that left the configuration still has to take
        // part until raft has removed it.
        let conf = self.raw.raft.prs().conf().to_conf_state();
        self.peers.retain(|id| {
            self.config.nodes.iter().any(|n| n.id == id)
                || conf.voters.contains(&id)
                || conf.learners.contains(&id)
        });
    }

    /// The leader's membership upkeep: at most one conf change at a time.
    fn reconcile(&mut self) {
        if self.raw.raft.has_pending_conf() {
            return;
        }
        let me = self.raw.raft.id;
        let conf = self.raw.raft.prs().conf().to_conf_state();
        let members: Vec<u64> = self.config.nodes.iter().map(|n| n.id).collect();
        if !members.contains(&me) {
            // The leader left the configuration: hand over before leaving raft, first
            // making a member a voter if it is the only one.
            if let Some(&other) = conf.voters.iter().find(|&&v| v != me) {
                self.raw.transfer_leader(other);
            } else if let Some(&learner) = conf.learners.iter().find(|id| members.contains(id)) {
                let mut cc = ConfChange {
                    node_id: learner,
                    ..ConfChange::default()
                };
                cc.set_change_type(ConfChangeType::AddNode);
                if let Err(e) = self.raw.propose_conf_change(Vec::new(), cc) {
                    warn!(error = %e, "membership change not proposed");
                }
            }
            return;
        }
        let in_raft = |id: &u64| conf.voters.contains(id) || conf.learners.contains(id);
        let change = if let Some(&id) = members.iter().find(|id| !in_raft(id)) {
            Some((ConfChangeType::AddLearnerNode, id))
        } else if let Some(&id) = conf
            .voters
            .iter()
            .chain(conf.learners.iter())
            .find(|id| !members.contains(id))
        {
            Some((ConfChangeType::RemoveNode, id))
        } else {
            let target = match members.len() {
                n if n >= 5 => 5,
                n if n >= 3 => 3,
                _ => 1,
            };
            let committed = self.raw.raft.raft_log.committed;
            if conf.voters.len() < target {
                conf.learners
                    .iter()
                    .find(|id| {
                        self.raw
                            .raft
                            .prs()
                            .get(**id)
                            .is_some_and(|p| p.matched >= committed)
                    })
                    .map(|&id| (ConfChangeType::AddNode, id))
            } else if conf.voters.len() > target {
                conf.voters
                    .iter()
                    .find(|&&id| id != me)
                    .map(|&id| (ConfChangeType::AddLearnerNode, id))
            } else {
                None
            }
        };
        if let Some((kind, node_id)) = change {
            let mut cc = ConfChange {
                node_id,
                ..ConfChange::default()
            };
            cc.set_change_type(kind);
            if let Err(e) = self.raw.propose_conf_change(Vec::new(), cc) {
                warn!(error = %e, "membership change not proposed");
            }
        }
    }

    fn publish_status(&self) {
        let raft = &self.raw.raft;
        let conf = raft.prs().conf().to_conf_state();
        let role = match raft.state {
            StateRole::Leader => "leader",
            StateRole::Candidate | StateRole::PreCandidate => "candidate",
            StateRole::Follower if conf.learners.contains(&raft.id) => "learner",
            StateRole::Follower => "follower",
        };
        let mut s = self.status.lock();
        s.leader = raft.leader_id;
        s.term = raft.term;
        s.role = role;
        s.voters = conf.voters;
        s.learners = conf.learners;
        s.applied = raft.raft_log.applied;
    }
}
