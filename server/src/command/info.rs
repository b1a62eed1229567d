//! `INFO`: the node's state in Redis's sectioned `field:value` format.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::connection::REDIS_COMPAT_VERSION;
use super::{CommandResult, Ctx};
use crate::node::{unix_millis, Node};

/// Sections `INFO` with no argument (or `default`) returns.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "cluster",
    "hotkeys",
    "keyspace",
];

/// `INFO`: see the command table for syntax.
pub fn info(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "everything" || w == "default");
    let text = render(ctx.node, |section| {
        all || wanted.iter().any(|w| w == section)
    });
    ctx.verbatim(text.as_bytes())
}

/// Renders the sections `include` accepts.
pub fn render(node: &Node, include: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(2048);
    for &section in DEFAULT_SECTIONS {
        if !include(section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        match section {
            "server" => server(node, &mut out),
            "clients" => clients(node, &mut out),
            "memory" => memory(node, &mut out),
            "persistence" => persistence(&mut out),
            "stats" => stats(node, &mut out),
            "replication" => replication(node, &mut out),
            "cpu" => cpu(&mut out),
            "cluster" => cluster(node, &mut out),
            "hotkeys" => crate::hotkeys::monitor::info(node, &mut out),
            _ => keyspace(node, &mut out),
        }
    }
    out
}

macro_rules! field {
    ($out:expr, $name:expr, $value:expr) => {
        let _ = write!($out, "{}:{}\r\n", $name, $value);
    };
}

fn server(node: &Node, out: &mut String) {
    let uptime = node.started.elapsed().as_secs();
    out.push_str("# Server\r\n");
    field!(out, "redis_version", REDIS_COMPAT_VERSION);
    field!(out, "cachalot_version", env!("CARGO_PKG_VERSION"));
    field!(out, "redis_git_sha1", "00000000");
    field!(out, "redis_git_dirty", 0);
    field!(out, "redis_build_id", "0");
    field!(out, "redis_mode", "standalone");
    field!(
        out,
        "os",
        format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)
    );
    field!(out, "arch_bits", usize::BITS);
    field!(out, "multiplexing_api", "epoll");
    field!(out, "process_id", std::process::id());
    field!(out, "process_supervised", "no");
    field!(out, "run_id", node.run_id);
    field!(out, "tcp_port", node.port());
    field!(out, "server_time_usec", unix_millis() * 1000);
    field!(out, "uptime_in_seconds", uptime);
    field!(out, "uptime_in_days", uptime / 86_400);
    field!(out, "hz", node.config.hz);
    field!(out, "configured_hz", node.config.hz);
    field!(
        out,
        "executable",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    field!(out, "config_file", "");
    field!(out, "io_threads_active", 0);
}

fn clients(node: &Node, out: &mut String) {
    out.push_str("# Clients\r\n");
    field!(out, "connected_clients", node.clients.len());
    field!(out, "cluster_connections", 0);
    field!(
        out,
        "maxclients",
        node.settings.maxclients.load(Ordering::Relaxed)
    );
    field!(out, "blocked_clients", 0);
    field!(out, "tracking_clients", node.tracking.clients());
    let subscribed = node
        .clients
        .snapshot()
        .iter()
        .filter(|c| c.is_subscribed())
        .count();
    field!(out, "pubsub_clients", subscribed);
}

/// Formats bytes the way Redis's `bytesToHuman` does.
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    const K: f64 = 1024.0;
    if n < K {
        format!("{n}B")
    } else if n < K * K {
        format!("{:.2}K", n / K)
    } else if n < K * K * K {
        format!("{:.2}M", n / (K * K))
    } else if n < K * K * K * K {
        format!("{:.2}G", n / (K * K * K))
    } else {
        format!("{:.2}T", n / (K * K * K * K))
    }
}

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    // Pages are 4 KiB on every platform this runs on (x86_64, aarch64 Linux default).
    const PAGE_BYTES: u64 = 4096;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * PAGE_BYTES)
}

fn memory(node: &Node, out: &mut String) {
    let used = node.store.weighted_size();
    let rss = rss_bytes();
    let max = node.repl.maxmemory(&node.store).unwrap_or(0);
    out.push_str("# Memory\r\n");
    field!(out, "used_memory", used);
    field!(out, "used_memory_human", human_bytes(used));
    field!(out, "used_memory_rss", rss);
    field!(out, "used_memory_rss_human", human_bytes(rss));
    field!(out, "used_memory_dataset", used);
    field!(out, "maxmemory", max);
    field!(out, "maxmemory_human", human_bytes(max));
    field!(out, "maxmemory_policy", node.store.policy().redis_name());
    let ratio = if used > 0 {
        rss as f64 / used as f64
    } else {
        0.0
    };
    field!(out, "mem_fragmentation_ratio", format!("{ratio:.2}"));
    field!(out, "mem_allocator", "libc");
    field!(
        out,
        "cachalot_entry_overhead_bytes",
        node.store.entry_overhead_bytes()
    );
}

fn persistence(out: &mut String) {
    // Cachalot keeps nothing on disk; these fields say so to clients that wait for loading.
    out.push_str("# Persistence\r\n");
    field!(out, "loading", 0);
    field!(out, "async_loading", 0);
    field!(out, "rdb_bgsave_in_progress", 0);
    field!(out, "aof_enabled", 0);
    field!(out, "aof_rewrite_in_progress", 0);
}

/// Totals over live and departed clients: (commands, input bytes, output bytes).
pub fn client_totals(node: &Node) -> (u64, u64, u64) {
    let s = &node.stats;
    let mut totals = (
        s.commands_of_closed_clients.load(Ordering::Relaxed),
        s.input_bytes_of_closed_clients.load(Ordering::Relaxed),
        s.output_bytes_of_closed_clients.load(Ordering::Relaxed),
    );
    for c in node.clients.snapshot() {
        totals.0 += c.commands.load(Ordering::Relaxed);
        totals.1 += c.input_bytes.load(Ordering::Relaxed);
        totals.2 += c.output_bytes.load(Ordering::Relaxed);
    }
    totals
}

fn stats(node: &Node, out: &mut String) {
    let s = &node.stats;
    let (commands, input, output) = client_totals(node);
    let store = node.store.stats();
    let base = *node.stats_baseline.lock();
    out.push_str("# Stats\r\n");
    field!(
        out,
        "total_connections_received",
        s.connections_received.load(Ordering::Relaxed)
    );
    field!(out, "total_commands_processed", commands);
    field!(out, "instantaneous_ops_per_sec", node.ops_per_sec());
    field!(out, "total_net_input_bytes", input);
    field!(out, "total_net_output_bytes", output);
    field!(
        out,
        "rejected_connections",
        s.rejected_connections.load(Ordering::Relaxed)
    );
    field!(
        out,
        "expired_keys",
        store.expirations.saturating_sub(base.expirations)
    );
    field!(
        out,
        "evicted_keys",
        store.evictions.saturating_sub(base.evictions)
    );
    field!(out, "keyspace_hits", store.hits.saturating_sub(base.hits));
    field!(
        out,
        "keyspace_misses",
        store.misses.saturating_sub(base.misses)
    );
    field!(out, "pubsub_channels", node.pubsub.channels());
    field!(out, "pubsub_patterns", node.pubsub.patterns());
    field!(out, "tracking_total_keys", node.tracking.table.keys());
    field!(out, "tracking_total_items", node.tracking.table.items());
    field!(out, "tracking_total_prefixes", node.tracking.prefixes());
    field!(
        out,
        "total_error_replies",
        s.error_replies.load(Ordering::Relaxed)
    );
    field!(
        out,
        "total_protocol_errors",
        s.protocol_errors.load(Ordering::Relaxed)
    );
    field!(
        out,
        "client_output_buffer_limit_disconnections",
        node.tracking.overflow_disconnects.load(Ordering::Relaxed)
    );
}

fn replication(node: &Node, out: &mut String) {
    use crate::replication::{millis_since, LinkState, Role};
    let repl = &node.repl;
    let (first, end, histlen, size) = repl.backlog_info();
    out.push_str("# Replication\r\n");
    match repl.role() {
        Role::Primary => {
            field!(out, "role", "master");
        }
        Role::Replica(primary) => {
            let (link, since) = repl.link();
            field!(out, "role", "slave");
            field!(out, "master_host", primary.ip());
            field!(out, "master_port", primary.port());
            let up = link == LinkState::Connected;
            field!(out, "master_link_status", if up { "up" } else { "down" });
            let io = i64::try_from(repl.last_io_seconds()).unwrap_or(i64::MAX);
            field!(out, "master_last_io_seconds_ago", if up { io } else { -1 });
            field!(
                out,
                "master_sync_in_progress",
                u8::from(link == LinkState::Sync)
            );
            field!(out, "slave_read_repl_offset", end);
            field!(out, "slave_repl_offset", end);
            if !up {
                field!(
                    out,
                    "master_link_down_since_seconds",
                    since.elapsed().as_secs()
                );
            }
            field!(out, "slave_priority", 100);
            field!(out, "slave_read_only", 1);
            field!(out, "replica_announced", 1);
        }
    }
    let attached = repl.attached();
    field!(out, "connected_slaves", attached.len());
    for (i, a) in attached.iter().enumerate() {
        let online = a.online.load(Ordering::Relaxed);
        let lag = millis_since(a.last_ack_millis.load(Ordering::Relaxed)) / 1000;
        out.push_str(&format!(
            "slave{i}:ip={},port={},state={},offset={},lag={lag}\r\n",
            a.addr.ip(),
            a.listening_port,
            if online { "online" } else { "wait_bgsave" },
            a.ack.load(Ordering::Relaxed),
        ));
    }
    let ids = repl.ids();
    field!(out, "master_failover_state", "no-failover");
    field!(out, "master_replid", ids.replid);
    field!(out, "master_replid2", ids.replid2);
    field!(out, "master_repl_offset", end);
    field!(out, "second_repl_offset", ids.second_offset);
    let active = repl.is_active() || repl.is_replica();
    field!(out, "repl_backlog_active", u8::from(active));
    field!(out, "repl_backlog_size", size);
    field!(out, "repl_backlog_first_byte_offset", first);
    field!(out, "repl_backlog_histlen", histlen);
    field!(out, "sync_full", repl.full_syncs.load(Ordering::Relaxed));
    field!(
        out,
        "sync_partial_ok",
        repl.partial_ok.load(Ordering::Relaxed)
    );
    field!(
        out,
        "sync_partial_err",
        repl.partial_err.load(Ordering::Relaxed)
    );
}

/// (user, system) CPU seconds of this process, from `/proc/self/stat`.
pub fn cpu_seconds() -> (f64, f64) {
    // Linux reports these in clock ticks of USER_HZ, which is 100 on every common build.
    const TICKS_PER_SEC: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) / TICKS_PER_SEC, tick(12) / TICKS_PER_SEC)
}

fn cpu(out: &mut String) {
    let (user, sys) = cpu_seconds();
    out.push_str("# CPU\r\n");
    field!(out, "used_cpu_sys", format!("{sys:.6}"));
    field!(out, "used_cpu_user", format!("{user:.6}"));
    field!(out, "used_cpu_sys_children", "0.000000");
    field!(out, "used_cpu_user_children", "0.000000");
}

fn cluster(node: &Node, out: &mut String) {
    out.push_str("# Cluster\r\n");
    field!(out, "cluster_enabled", u8::from(node.cluster.is_some()));
}

fn keyspace(node: &Node, out: &mut String) {
    out.push_str("# Keyspace\r\n");
    let keys = node.store.len();
    if keys > 0 {
        let _ = write!(
            out,
            "db0:keys={keys},expires={},avg_ttl=0\r\n",
            node.store.expiring_len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn byte_counts_read_like_redis() {
        assert_eq!(human_bytes(100), "100B");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(3 << 20), "3.00M");
    }
}
