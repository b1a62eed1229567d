//! Replication commands: `REPLICAOF`/`SLAVEOF`, `ROLE`, `WAIT`, and the link handshake
//! (`REPLCONF`, `PSYNC`).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cachalot_protocol::encode;

use super::{int_arg, is, CommandResult, Ctx};
use crate::error::CommandError;
use crate::net::session::Deferred;
use crate::replication::primary::{Plan, Start};
use crate::replication::Role;

/// `REPLICAOF host port` / `REPLICAOF NO ONE` (and its old name `SLAVEOF`).
pub fn replicaof(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    if ctx.node.cluster.is_some() {
        return Err(CommandError::Other(
            "ERR REPLICAOF not allowed in cluster mode.".into(),
        ));
    }
    if is(&args[1], "no") && is(&args[2], "one") {
        if ctx.node.repl.is_replica() {
            ctx.node.repl.promote();
            tracing::info!("MASTER MODE enabled (REPLICAOF NO ONE)");
        }
        return ctx.ok();
    }
    let port = int_arg(&args[2])
        .ok()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| CommandError::Other("ERR Invalid master port".into()))?;
    let host = std::str::from_utf8(&args[1]).unwrap_or("");
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().map_err(|_| {
            CommandError::Other(
                "ERR Invalid master host: give an IP address (host names are not resolved)".into(),
            )
        })?
    };
    let primary = SocketAddr::new(ip, port);
    if ctx.node.repl.role() == Role::Replica(primary) {
        return ctx.simple(b"OK Already connected to specified master");
    }
    ctx.node.repl.follow(primary);
    tracing::info!(%primary, "REPLICAOF: following");
    ctx.ok()
}

/// `ROLE`, in Redis's shape.
pub fn role(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CommandResult {
    let repl = Arc::clone(&ctx.node.repl);
    match repl.role() {
        Role::Primary => {
            if repl.is_active() {
                // Every write made so far counts in the offset (a manual failover reads it).
                repl.drain();
            }
            // Redis lists the replicas that are online (past their snapshot).
            let attached: Vec<_> = repl
                .attached()
                .into_iter()
                .filter(|a| a.online.load(Ordering::Relaxed))
                .collect();
            ctx.array(3);
            ctx.bulk(b"master")?;
            ctx.int(i64::try_from(repl.offset()).unwrap_or(i64::MAX))?;
            ctx.array(attached.len());
            for a in attached {
                ctx.array(3);
                ctx.bulk(a.addr.ip().to_string().as_bytes())?;
                ctx.bulk(a.listening_port.to_string().as_bytes())?;
                ctx.bulk(a.ack.load(Ordering::Relaxed).to_string().as_bytes())?;
            }
            Ok(())
        }
        Role::Replica(primary) => {
            ctx.array(5);
            ctx.bulk(b"slave")?;
            ctx.bulk(primary.ip().to_string().as_bytes())?;
            ctx.int(i64::from(primary.port()))?;
            let link = repl.link().0;
            ctx.bulk(link.word().as_bytes())?;
            let offset = if link == crate::replication::LinkState::Connected {
                i64::try_from(repl.offset()).unwrap_or(i64::MAX)
            } else {
                -1
            };
            ctx.int(offset)
        }
    }
}

/// `WAIT numreplicas timeout`: how many replicas have acknowledged this client's writes,
/// waiting up to `timeout` ms (0 = forever) for `numreplicas` of them. As in Redis, a
/// client that wrote nothing counts every replica.
pub fn wait(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let repl = Arc::clone(&ctx.node.repl);
    if repl.is_replica() {
        return Err(CommandError::Other(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.".into(),
        ));
    }
    let wanted = int_arg(&args[1])?;
    let timeout = timeout_arg(&args[2])?;
    if !repl.is_active() {
        // Never a replica, so no write was ever recorded: nothing to wait for.
        return ctx.int(0);
    }
    let target = repl.wait_target(ctx.session.last_write_pass);
    // Every pass so far has run: "everything" is no later than the latest one now.
    ctx.session.last_write_pass = ctx.session.last_write_pass.min(repl.passes());
    let wanted = usize::try_from(wanted).unwrap_or(0);
    let now = repl.acked_at_least(target);
    if now >= wanted {
        return ctx.int(i64::try_from(now).unwrap_or(i64::MAX));
    }
    let shutdown = ctx.node.shutdown.clone();
    ctx.session.deferred = Some(Deferred(Box::pin(async move {
        let deadline =
            (timeout > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(timeout));
        let count = loop {
            let notified = repl.acked.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let count = repl.acked_at_least(target);
            if count >= wanted {
                break count;
            }
            let expired = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = notified => {}
                _ = expired => break repl.acked_at_least(target),
                _ = shutdown.cancelled() => break repl.acked_at_least(target),
            }
        };
        let mut out = BytesMut::new();
        encode::write_integer(&mut out, i64::try_from(count).unwrap_or(i64::MAX));
        out.freeze()
    })));
    Ok(())
}

/// Redis's timeout argument: milliseconds, not negative.
fn timeout_arg(arg: &[u8]) -> Result<u64, CommandError> {
    let t = int_arg(arg)
        .map_err(|_| CommandError::Other("ERR timeout is not an integer or out of range".into()))?;
    u64::try_from(t).map_err(|_| CommandError::Other("ERR timeout is negative".into()))
}

/// `REPLCONF option value ...`: what a replica tells its primary before `PSYNC`.
pub fn replconf(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    if args.len() % 2 == 0 {
        return Err(CommandError::Syntax);
    }
    for pair in args[1..].chunks_exact(2) {
        let (option, value) = (&pair[0], &pair[1]);
        if is(option, "listening-port") {
            let port = int_arg(value)
                .ok()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or(CommandError::NotInteger)?;
            ctx.session.listening_port = port;
        } else if is(option, "capa") || is(option, "ip-address") {
            // Capabilities and an announced address: nothing Cachalot needs.
        } else {
            return Err(CommandError::Other(format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(option)
            )));
        }
    }
    ctx.ok()
}

/// `PSYNC replid offset`: the connection becomes a replication link. Answers
/// `+CONTINUE <replid>` when the backlog still holds the stream from `offset`, otherwise
/// `+FULLRESYNC <replid> <offset>` (a snapshot follows).
pub fn psync(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let repl = Arc::clone(&ctx.node.repl);
    if repl.is_loading() {
        return Err(CommandError::Other(
            "NOMASTERLINK Can't SYNC while not connected with my master".into(),
        ));
    }
    let replid = String::from_utf8_lossy(&args[1]).into_owned();
    let offset = int_arg(&args[2])?;
    let asked_partial = replid != "?" && offset >= 0;
    let resumable = u64::try_from(offset)
        .ok()
        .filter(|&o| asked_partial && repl.can_continue(&replid, o));
    let start = match resumable {
        Some(o) => {
            repl.partial_ok.fetch_add(1, Ordering::Relaxed);
            let line = format!("CONTINUE {}", repl.ids().replid);
            ctx.simple(line.as_bytes())?;
            Start::Continue(o)
        }
        None => {
            if asked_partial {
                repl.partial_err.fetch_add(1, Ordering::Relaxed);
            }
            let (id, o) = repl.begin_full_sync();
            let line = format!("FULLRESYNC {id} {o}");
            ctx.simple(line.as_bytes())?;
            Start::Full(o)
        }
    };
    ctx.session.replica_link = Some(Plan {
        start,
        listening_port: ctx.session.listening_port,
        generation: repl.generation(),
    });
    Ok(())
}
