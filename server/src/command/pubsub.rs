//! `SUBSCRIBE`, `UNSUBSCRIBE`, `PSUBSCRIBE`, `PUNSUBSCRIBE`, `PUBLISH`, in Redis 7's reply
//! formats; the subscriber table is [`crate::pubsub`].

use std::sync::atomic::Ordering;

use bytes::Bytes;
use cachalot_protocol::{encode, ProtocolVersion};

use super::{CommandResult, Ctx};
use crate::net::session::Session;
use crate::node::Node;
use crate::pubsub::Kind;
use crate::tracking::Origin;

/// Whether a RESP2 client in subscribed mode may run `name` (Redis's list; `ssubscribe`
/// and `sunsubscribe` are not implemented here).
pub fn allowed_while_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
    )
}

/// One `subscribe`/`unsubscribe` confirmation: `[kind, name or null, count]`.
fn confirm(ctx: &mut Ctx<'_>, what: &[u8], name: Option<&[u8]>) {
    let count = ctx.session.subscriptions();
    encode::write_push_header(ctx.out, 3, ctx.session.version);
    encode::write_bulk(ctx.out, what);
    match name {
        Some(n) => encode::write_bulk(ctx.out, n),
        None => encode::write_null(ctx.out, ctx.session.version),
    }
    encode::write_integer(ctx.out, i64::try_from(count).unwrap_or(i64::MAX));
}

fn subscribe_to(ctx: &mut Ctx<'_>, args: &[Bytes], kind: Kind) -> CommandResult {
    for name in &args[1..] {
        let name = Bytes::copy_from_slice(name);
        let set = match kind {
            Kind::Channel => &mut ctx.session.channels,
            Kind::Pattern => &mut ctx.session.patterns,
        };
        if set.insert(name.clone()) {
            ctx.node
                .pubsub
                .subscribe(kind, name.clone(), &ctx.session.handle);
            counter(ctx.session, kind).fetch_add(1, Ordering::Relaxed);
        }
        let what: &[u8] = match kind {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
        };
        confirm(ctx, what, Some(&name));
    }
    Ok(())
}

fn counter(session: &Session, kind: Kind) -> &std::sync::atomic::AtomicU32 {
    match kind {
        Kind::Channel => &session.handle.channels,
        Kind::Pattern => &session.handle.patterns,
    }
}

fn unsubscribe_from(ctx: &mut Ctx<'_>, args: &[Bytes], kind: Kind) -> CommandResult {
    let what: &[u8] = match kind {
        Kind::Channel => b"unsubscribe",
        Kind::Pattern => b"punsubscribe",
    };
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        match kind {
            Kind::Channel => ctx.session.channels.iter().cloned().collect(),
            Kind::Pattern => ctx.session.patterns.iter().cloned().collect(),
        }
    };
    if names.is_empty() {
        confirm(ctx, what, None);
        return Ok(());
    }
    for name in &names {
        drop_one(ctx.node, ctx.session, kind, name);
        confirm(ctx, what, Some(name));
    }
    Ok(())
}

fn drop_one(node: &Node, session: &mut Session, kind: Kind, name: &[u8]) {
    let set = match kind {
        Kind::Channel => &mut session.channels,
        Kind::Pattern => &mut session.patterns,
    };
    if set.shift_remove(name) {
        node.pubsub.unsubscribe(kind, name, session.handle.id);
        counter(session, kind).fetch_sub(1, Ordering::Relaxed);
    }
}

/// Drops every subscription without replies (`RESET`, disconnect).
pub fn unsubscribe_all(node: &Node, session: &mut Session) {
    for kind in [Kind::Channel, Kind::Pattern] {
        let names: Vec<Bytes> = match kind {
            Kind::Channel => session.channels.iter().cloned().collect(),
            Kind::Pattern => session.patterns.iter().cloned().collect(),
        };
        for name in &names {
            drop_one(node, session, kind, name);
        }
    }
}

/// `SUBSCRIBE channel [channel ...]`.
pub fn subscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    subscribe_to(ctx, args, Kind::Channel)
}

/// `UNSUBSCRIBE [channel ...]`.
pub fn unsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    unsubscribe_from(ctx, args, Kind::Channel)
}

/// `PSUBSCRIBE pattern [pattern ...]`.
pub fn psubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    subscribe_to(ctx, args, Kind::Pattern)
}

/// `PUNSUBSCRIBE [pattern ...]`.
pub fn punsubscribe(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    unsubscribe_from(ctx, args, Kind::Pattern)
}

/// `PUBLISH channel message`: the number of receptions.
pub fn publish(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let node = ctx.node;
    let mut origin = Origin {
        writer: Some(ctx.session.handle.id),
        out: Some(&mut *ctx.out),
    };
    let n = node.pubsub.publish(
        &args[1],
        &args[2],
        &mut origin,
        &node.tracking.overflow_disconnects,
    );
    ctx.int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `PING` in RESP2 subscribed mode: `["pong", message or ""]`, as Redis answers it.
pub fn subscribed_ping(ctx: &mut Ctx<'_>, args: &[Bytes]) -> bool {
    if ctx.session.version != ProtocolVersion::Resp2 || ctx.session.subscriptions() == 0 {
        return false;
    }
    ctx.array(2);
    encode::write_bulk(ctx.out, b"pong");
    encode::write_bulk(ctx.out, args.get(1).map_or(&b""[..], |a| &a[..]));
    true
}
