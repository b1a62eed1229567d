//! Keeping the slot map current: refreshes on request, periodically, and the hot-key poll
//! that feeds the near-cache.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::builder::new_node;
use super::topology::Topology;
use super::{Client, Inner};
use crate::cmd::Cmd;
use crate::error::Error;
use crate::near_cache::hot_keys_of;
use crate::router::SlotTable;

/// The shortest time between two topology refreshes set off by errors or redirects.
pub(crate) const MIN_REFRESH_INTERVAL_MILLIS: u64 = 100;
/// Hot keys asked of each node per poll.
const HOT_KEYS_ASKED: u64 = 64;

impl Inner {
    /// Asks the background task for a refresh. Bursts coalesce: the task holds at most
    /// one wake-up, and waits until [`MIN_REFRESH_INTERVAL_MILLIS`] after the previous
    /// refresh before it runs the next.
    pub(crate) fn schedule_refresh(&self) {
        if !self.refreshing.load(Ordering::Acquire) {
            self.refresh_wanted.notify_one();
        }
    }

    /// Asks the cluster for its slot map and swaps it in: tries the current nodes, then
    /// the seeds, and uses the first usable answer. Refreshes run one at a time (a second
    /// caller waits for the first and then fetches again, so it sees a map at least as new
    /// as its call). Nodes that left the map are disconnected and forgotten.
    pub(crate) async fn refresh(&self) -> Result<(), Error> {
        let _one_at_a_time = self.refresh_gate.lock().await;
        self.refreshing.store(true, Ordering::Release);
        *self.last_refresh.lock() = Some(Instant::now());
        let result = self.fetch_topology().await;
        let stored = result.map(|(table, cluster)| {
            let known = self.nodes.read().clone();
            let topology = Topology::new(table, cluster, &known, |addr, replica| {
                new_node(&self.settings, self.near.as_ref(), addr, replica, cluster)
            });
            let mut nodes = self.nodes.write();
            let live: HashSet<(SocketAddr, bool)> =
                topology.nodes().map(|(n, r)| (n.addr(), r)).collect();
            nodes.retain(|key, node| {
                let keep = live.contains(key);
                if !keep {
                    node.disconnect();
                }
                keep
            });
            for (node, replica) in topology.nodes() {
                nodes
                    .entry((node.addr(), replica))
                    .or_insert_with(|| Arc::clone(node));
            }
            drop(nodes);
            self.topology.store(Arc::new(topology));
            self.counters.refreshes.fetch_add(1, Ordering::Relaxed);
        });
        self.refreshing.store(false, Ordering::Release);
        stored
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
                        last = format!("{addr}: no slots served");
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

/// Refreshes the slot map every `refresh_interval`, and soon after a call asks for it;
/// ends when the client is dropped (its `Drop` wakes the loop to notice).
pub(crate) async fn refresh_loop(inner: Weak<Inner>, wanted: Arc<Notify>) {
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

/// Asks every primary for its hot keys (`HOTKEYS`) every `every` and hands the union to
/// the near-cache; stops when the client is dropped, or at once if the nodes do not know
/// the command.
pub(crate) async fn hot_key_loop(inner: Weak<Inner>, every: Duration) {
    let ask = Cmd::new("HOTKEYS").arg("COUNT").arg(HOT_KEYS_ASKED);
    loop {
        let Some(client) = inner.upgrade().map(|inner| Client { inner }) else {
            return;
        };
        let mut hot = HashSet::new();
        for (addr, reply) in client.cmd_on_primaries(&ask).await {
            match reply {
                Ok(frame) => hot_keys_of(frame, &mut hot),
                Err(Error::Server(text)) if text.starts_with("ERR unknown command") => {
                    tracing::warn!(%addr, "node has no HOTKEYS: the near-cache stays empty");
                    return;
                }
                Err(e) => tracing::debug!(%addr, error = %e, "HOTKEYS failed"),
            }
        }
        if let Some(near) = &client.inner.near {
            near.set_hot(hot);
        }
        drop(client);
        tokio::time::sleep(every).await;
    }
}
