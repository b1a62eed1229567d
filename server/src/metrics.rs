//! Prometheus metrics: `GET /metrics` on `--metrics-port`, in the text exposition format.
//!
//! Every numeric `INFO` field becomes a gauge named `cachalot_<field>` (so the metrics and
//! `INFO` never disagree), `CLUSTER INFO`'s numeric fields become `cachalot_cluster_<field>`
//! on a cluster node, and the lines that carry several values get labels:
//! - `cachalot_hotkey_ops_per_second{key="..."}`: each key hot now, its estimated rate;
//! - `cachalot_replica_offset{ip,port,state}` and `cachalot_replica_lag_seconds{...}`: each
//!   attached replica;
//! - `cachalot_keyspace_keys{db}` / `_expires{db}`.
//!
//! The server is a few lines of HTTP/1.1 over tokio rather than a web framework: one route,
//! one reply, `Connection: close`. Requests are read into a buffer of at most
//! [`MAX_REQUEST_BYTES`] with a deadline, and at most [`MAX_CONNECTIONS`] are served at
//! once, so a scraper that misbehaves costs nothing beyond that.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::node::Node;

/// Largest request head read.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Scrapes served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 16;
/// Longest a scraper may take to send its request, and to read the reply.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `/metrics` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, node: Arc<Node>, shutdown: CancellationToken) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "metrics at http://{addr}/metrics");
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let socket = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let node = Arc::clone(&node);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = answer(socket, &node).await {
                debug!(error = %e, "metrics request failed");
            }
        });
    }
}

async fn answer(mut socket: TcpStream, node: &Node) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            if head.len() >= MAX_REQUEST_BYTES {
                return Err(std::io::Error::other("request head too large"));
            }
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Ok(())
    };
    let (status, body) = match tokio::time::timeout(IO_TIMEOUT, read).await {
        Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
        Ok(Err(e)) if e.to_string() == "request head too large" => {
            ("431 Request Header Fields Too Large", String::new())
        }
        Ok(Err(e)) => return Err(e),
        Ok(Ok(())) => {
            let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
            let mut words = line.split(|&b| b == b' ');
            let (method, path) = (words.next(), words.next());
            match (method, path) {
                (Some(b"GET"), Some(b"/metrics")) => ("200 OK", render(node)),
                (Some(b"GET"), Some(_)) => ("404 Not Found", "see /metrics\n".to_owned()),
                _ => ("405 Method Not Allowed", String::new()),
            }
        }
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::time::timeout(IO_TIMEOUT, socket.write_all(reply.as_bytes()))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let _ = socket.shutdown().await;
    Ok(())
}

/// The metrics page.
pub fn render(node: &Node) -> String {
    let info = crate::command::info::render(node, |_| true);
    let mut out = String::with_capacity(info.len() * 2);
    convert(&info, "cachalot_", &mut out);
    if let Some(cluster) = &node.cluster {
        let topology = cluster.topology();
        let text = crate::command::cluster::info_text(&topology, Some(cluster));
        convert(&text, "cachalot_cluster_", &mut out);
    }
    out
}

/// Turns `field:value` lines into gauges under `prefix`.
fn convert(info: &str, prefix: &str, out: &mut String) {
    for line in info.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = if prefix == "cachalot_cluster_" {
            name.strip_prefix("cluster_").unwrap_or(name)
        } else {
            name
        };
        if name
            .strip_prefix("hotkey_")
            .is_some_and(|r| r.parse::<u32>().is_ok())
        {
            let fields = pairs(value);
            if let (Some(key), Some(rate)) = (fields.get("key"), fields.get("rate")) {
                let key = unescape_info_key(key);
                let _ = writeln!(
                    out,
                    "cachalot_hotkey_ops_per_second{{key=\"{}\"}} {rate}",
                    label(&key)
                );
            }
            continue;
        }
        if name.starts_with("slave") && name[5..].parse::<u32>().is_ok() {
            let f = pairs(value);
            let labels = format!(
                "ip=\"{}\",port=\"{}\",state=\"{}\"",
                label(f.get("ip").copied().unwrap_or("")),
                label(f.get("port").copied().unwrap_or("")),
                label(f.get("state").copied().unwrap_or(""))
            );
            if let Some(o) = f.get("offset") {
                let _ = writeln!(out, "cachalot_replica_offset{{{labels}}} {o}");
            }
            if let Some(l) = f.get("lag") {
                let _ = writeln!(out, "cachalot_replica_lag_seconds{{{labels}}} {l}");
            }
            continue;
        }
        if name.starts_with("db") && name[2..].parse::<u32>().is_ok() {
            let f = pairs(value);
            for (field, metric) in [("keys", "keys"), ("expires", "expires")] {
                if let Some(v) = f.get(field) {
                    let _ = writeln!(
                        out,
                        "cachalot_keyspace_{metric}{{db=\"{}\"}} {v}",
                        &name[2..]
                    );
                }
            }
            continue;
        }
        let value = value.trim();
        if value.parse::<f64>().is_ok() && valid_name(name) {
            let _ = writeln!(out, "# TYPE {prefix}{name} gauge\n{prefix}{name} {value}");
        }
    }
}

/// `a=1,b=2` as a map.
fn pairs(text: &str) -> std::collections::HashMap<&str, &str> {
    text.trim()
        .split(',')
        .filter_map(|p| p.split_once('='))
        .collect()
}

/// Whether `name` is a valid Prometheus metric name part.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

/// A label value escaped as the exposition format requires (`\`, `"`, newline).
fn label(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Undoes `INFO hotkeys`'s `\xHH` escapes (bytes that are not UTF-8 come out lossily).
fn unescape_info_key(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1] == b'x' {
            if let Some(v) = std::str::from_utf8(&b[i + 2..i + 4])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lines_become_gauges_and_labelled_series() {
        let info = "# Clients\r\nconnected_clients:3\r\nredis_version:7.2.4\r\n\
                    slave0:ip=127.0.0.1,port=7002,state=online,offset=45,lag=0\r\n\
                    hotkey_0:key=user\\x2c1\\x22,rate=1200\r\n\
                    db0:keys=10,expires=2,avg_ttl=0\r\nused_memory:1.5\r\n";
        let mut out = String::new();
        convert(info, "cachalot_", &mut out);
        assert!(
            out.contains("# TYPE cachalot_connected_clients gauge\ncachalot_connected_clients 3\n")
        );
        assert!(!out.contains("redis_version"), "text fields are left out");
        assert!(out.contains(
            "cachalot_replica_offset{ip=\"127.0.0.1\",port=\"7002\",state=\"online\"} 45\n"
        ));
        assert!(out.contains("cachalot_hotkey_ops_per_second{key=\"user,1\\\"\"} 1200\n"));
        assert!(out.contains("cachalot_keyspace_keys{db=\"0\"} 10\n"));
        assert!(out.contains("cachalot_used_memory 1.5\n"));
    }
}
