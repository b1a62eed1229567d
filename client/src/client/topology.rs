//! [`Topology`]: an immutable snapshot of the slot map with the [`Node`] for every address
//! in it. The client swaps in a new snapshot on refresh; a call reads the current one
//! without a lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::node::Node;
use super::ReadFromKind;
use crate::router::SlotTable;

/// One shard's nodes.
pub(crate) struct ShardNodes {
    pub primary: Arc<Node>,
    pub replicas: Vec<Arc<Node>>,
}

/// The slot map and its nodes.
pub(crate) struct Topology {
    pub table: SlotTable,
    pub shards: Vec<ShardNodes>,
    /// Whether the node(s) run in cluster mode (a single plain node does not).
    pub cluster: bool,
    /// Round-robin position for replica reads and keyless commands.
    next: AtomicUsize,
}

impl Topology {
    /// Builds a snapshot, taking each address's [`Node`] from `known` (so connections
    /// survive a refresh) or making it with `make` (primary: `false`, replica: `true`).
    pub(crate) fn new(
        table: SlotTable,
        cluster: bool,
        known: &HashMap<(SocketAddr, bool), Arc<Node>>,
        mut make: impl FnMut(SocketAddr, bool) -> Arc<Node>,
    ) -> Topology {
        let mut node = |addr: SocketAddr, replica: bool| {
            known
                .get(&(addr, replica))
                .cloned()
                .unwrap_or_else(|| make(addr, replica))
        };
        let shards = table
            .shards()
            .iter()
            .map(|s| ShardNodes {
                primary: node(s.primary, false),
                replicas: s.replicas.iter().map(|&r| node(r, true)).collect(),
            })
            .collect();
        Topology {
            table,
            shards,
            cluster,
            next: AtomicUsize::new(0),
        }
    }

    /// The node to send a command for `slot` to: the primary, or for reads allowed on
    /// replicas, a replica chosen by `read_from`. `None` if no shard serves the slot.
    pub(crate) fn node_for(
        &self,
        slot: u16,
        replica_ok: bool,
        read_from: ReadFromKind,
    ) -> Option<&Arc<Node>> {
        let shard = self.shards.get(self.table.shard_of(slot)?)?;
        if !replica_ok || shard.replicas.is_empty() {
            return Some(&shard.primary);
        }
        // Replicas whose circuit is not closed are skipped; with none left, the primary.
        let up: Vec<&Arc<Node>> = shard.replicas.iter().filter(|n| n.is_available()).collect();
        if up.is_empty() {
            return Some(&shard.primary);
        }
        match read_from {
            ReadFromKind::Primary => Some(&shard.primary),
            ReadFromKind::RoundRobin => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % up.len();
                up.get(i).copied()
            }
            ReadFromKind::Nearest => {
                // Unknown RTTs (0) sort first, so each node gets measured.
                std::iter::once(&shard.primary)
                    .filter(|n| n.is_available())
                    .chain(up)
                    .min_by_key(|n| n.rtt_micros())
            }
        }
    }

    /// Some primary, rotating: for commands without keys.
    pub(crate) fn any_primary(&self) -> Option<&Arc<Node>> {
        let n = self.shards.len();
        if n == 0 {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
        self.shards.get(i).map(|s| &s.primary)
    }

    /// Every primary once.
    pub(crate) fn primaries(&self) -> impl Iterator<Item = &Arc<Node>> {
        self.shards.iter().map(|s| &s.primary)
    }

    /// Every node with its role (`true`: replica).
    pub(crate) fn nodes(&self) -> impl Iterator<Item = (&Arc<Node>, bool)> {
        self.shards.iter().flat_map(|s| {
            std::iter::once((&s.primary, false)).chain(s.replicas.iter().map(|r| (r, true)))
        })
    }
}
