//! What a cluster node shares between its connections, the raft thread and the
//! migrator: the current [`Topology`] (swapped whole when the configuration changes, read
//! without a lock by every keyed command), the slots paused while their keys move, and
//! migration counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use cachalot_protocol::{SlotId, SLOT_COUNT};
use tokio::sync::{watch, Notify};

use super::raft_node::RaftHandle;
use super::topology::Topology;

/// Longest a command waits for a paused slot before it is answered `TRYAGAIN`.
pub const FROZEN_WAIT: Duration = Duration::from_secs(2);

/// One node's cluster state.
pub struct Cluster {
    topology: ArcSwap<Topology>,
    changes: watch::Sender<u64>,
    /// Slots whose keys are being handed to another node: commands on them wait.
    pub frozen: FrozenSlots,
    /// Migration counters for `CLUSTER INFO`.
    pub migration: MigrationStats,
    /// Read-held by a keyed command while it runs (dynamic clusters only), write-taken
    /// once by the migrator after pausing a slot so every command already running on it
    /// has finished. Striped by slot, padded so stripes do not share cache lines.
    stripes: Box<[Stripe]>,
    /// The raft node, for a cluster whose membership is replicated (unset when static).
    pub raft: OnceLock<RaftHandle>,
    /// When each node was last heard from (dynamic clusters).
    pub liveness: super::failover::Liveness,
    /// Until when this node may take writes, in [`clock_millis`]: the last evidence that
    /// it is on the majority side (see [`super::failover`]) plus the node timeout, so it
    /// expires by itself when that evidence stops, however late the task that renews it
    /// runs. `u64::MAX` in a static cluster.
    pub writable_until: AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("epoch", &self.topology.load().current_epoch())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A cluster state starting at `topology`.
    pub fn new(topology: Topology) -> Cluster {
        let (changes, _) = watch::channel(topology.current_epoch());
        Cluster {
            topology: ArcSwap::from_pointee(topology),
            changes,
            frozen: FrozenSlots::new(),
            migration: MigrationStats::default(),
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            raft: OnceLock::new(),
            liveness: super::failover::Liveness::default(),
            writable_until: AtomicU64::new(u64::MAX),
        }
    }

    /// The current topology.
    pub fn topology(&self) -> Arc<Topology> {
        self.topology.load_full()
    }

    /// A cheap guard on the current topology, for the request path.
    pub fn topology_guard(&self) -> arc_swap::Guard<Arc<Topology>> {
        self.topology.load()
    }

    /// Installs a new topology and wakes whoever watches for changes.
    pub fn set_topology(&self, topology: Topology) {
        let epoch = topology.current_epoch();
        self.topology.store(Arc::new(topology));
        self.changes.send_replace(epoch);
    }

    /// The lock stripe of `slot`.
    pub fn stripe(&self, slot: SlotId) -> &parking_lot::RwLock<()> {
        &self.stripes[usize::from(slot.get()) % STRIPES].0
    }

    /// Takes every lock stripe for writing once, in turn: when it returns, every keyed
    /// command that was running when it was called has finished. Each wait lasts as long
    /// as the commands running on one stripe (microseconds).
    pub fn drain_stripes(&self) {
        for s in self.stripes.iter() {
            drop(s.0.write());
        }
    }

    /// Whether membership is replicated (slots can migrate), as opposed to static.
    pub fn is_dynamic(&self) -> bool {
        self.raft.get().is_some()
    }

    /// Whether this node may take writes now.
    pub fn writable(&self) -> bool {
        clock_millis() < self.writable_until.load(Ordering::Relaxed)
    }

    /// A receiver that sees every topology change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// Milliseconds on a monotonic clock that starts with the process.
pub fn clock_millis() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Lock stripes over the slots.
const STRIPES: usize = 256;

/// One stripe, alone on its cache line.
#[derive(Default)]
#[repr(align(64))]
struct Stripe(parking_lot::RwLock<()>);

/// Slots paused while the migrator moves their keys: a bitmap read on the request path
/// (one relaxed load of a counter when nothing is paused) and a [`Notify`] to wake waiters.
pub struct FrozenSlots {
    bits: Vec<AtomicU64>,
    count: AtomicUsize,
    thawed: Notify,
}

impl FrozenSlots {
    fn new() -> FrozenSlots {
        FrozenSlots {
            bits: (0..usize::from(SLOT_COUNT) / 64)
                .map(|_| AtomicU64::new(0))
                .collect(),
            count: AtomicUsize::new(0),
            thawed: Notify::new(),
        }
    }

    /// Whether any slot is paused.
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Whether `slot` is paused.
    pub fn contains(&self, slot: SlotId) -> bool {
        let i = usize::from(slot.get());
        self.bits[i / 64].load(Ordering::Acquire) & (1 << (i % 64)) != 0
    }

    /// Pauses `slot`.
    pub fn freeze(&self, slot: SlotId) {
        let i = usize::from(slot.get());
        let old = self.bits[i / 64].fetch_or(1 << (i % 64), Ordering::AcqRel);
        if old & (1 << (i % 64)) == 0 {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Resumes `slot` and wakes the commands waiting on any slot.
    pub fn thaw(&self, slot: SlotId) {
        let i = usize::from(slot.get());
        let old = self.bits[i / 64].fetch_and(!(1 << (i % 64)), Ordering::AcqRel);
        if old & (1 << (i % 64)) != 0 {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        self.thawed.notify_waiters();
    }

    /// Waits until `slot` is not paused, at most [`FROZEN_WAIT`]; `false` on time-out.
    pub async fn wait(&self, slot: SlotId) -> bool {
        let deadline = tokio::time::Instant::now() + FROZEN_WAIT;
        loop {
            let thawed = self.thawed.notified();
            tokio::pin!(thawed);
            thawed.as_mut().enable();
            if !self.contains(slot) {
                return true;
            }
            if tokio::time::timeout_at(deadline, thawed).await.is_err() {
                return !self.contains(slot);
            }
        }
    }
}

/// Counters of the migrations this node ran as the source.
#[derive(Debug, Default)]
pub struct MigrationStats {
    /// Keys streamed to targets.
    pub keys_sent: AtomicU64,
    /// Bytes of keys and values streamed.
    pub bytes_sent: AtomicU64,
    /// Slots streamed (committed or waiting to be).
    pub slots_sent: AtomicU64,
    /// Keys received from sources.
    pub keys_received: AtomicU64,
    /// When the running migration started and the bytes sent then, for the rate.
    pub running: parking_lot::Mutex<Option<(Instant, u64)>>,
}

impl MigrationStats {
    /// Bytes per second of the running migration, 0 when none runs.
    pub fn bytes_per_sec(&self) -> u64 {
        let Some((started, base)) = *self.running.lock() else {
            return 0;
        };
        let secs = started.elapsed().as_secs_f64();
        if secs <= 0.0 {
            return 0;
        }
        let sent = self.bytes_sent.load(Ordering::Relaxed).saturating_sub(base);
        (sent as f64 / secs) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_paused_slot_holds_its_waiters_until_it_is_thawed() {
        let frozen = Arc::new(FrozenSlots::new());
        let slot = SlotId::new(700).expect("slot");
        let other = SlotId::new(701).expect("slot");
        assert!(!frozen.any());
        frozen.freeze(slot);
        frozen.freeze(slot);
        assert!(frozen.any() && frozen.contains(slot) && !frozen.contains(other));
        assert!(frozen.wait(other).await);
        let waiter = tokio::spawn({
            let frozen = Arc::clone(&frozen);
            async move { frozen.wait(slot).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        frozen.thaw(slot);
        assert!(waiter.await.expect("joins"));
        assert!(!frozen.any());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_that_stays_paused_times_out() {
        let frozen = FrozenSlots::new();
        let slot = SlotId::new(3).expect("slot");
        frozen.freeze(slot);
        assert!(!frozen.wait(slot).await);
    }
}
