//! `CLIENT TRACKING`, `CLIENT CACHING`, `CLIENT TRACKINGINFO`, `CLIENT GETREDIR`, and the
//! hooks `dispatch` calls around every command while tracking has work: reads remember
//! their keys, writes and flushes invalidate. The state itself is [`crate::tracking`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use cachalot_protocol::encode;

use super::key_spec;
use super::table::{CommandSpec, Flags};
use super::{int_arg, is, CommandResult, Ctx};
use crate::error::CommandError;
use crate::net::registry::{ClientId, TRACKING_BCAST, TRACKING_BROKEN_REDIRECT, TRACKING_ON};
use crate::net::session::{Session, TrackingMode};
use crate::node::Node;
use crate::tracking::{Origin, Tracker, Tracking};

/// Whether [`after_command`] must run for this command: the session tracks (its reads
/// are remembered, its `CLIENT CACHING` flag expires), or it is a write while anyone
/// tracks. A connection that does not track pays these two checks on a read.
pub fn before_command(ctx: &Ctx<'_>, spec: &CommandSpec, args: &[Bytes]) -> bool {
    let write = spec.flags.contains(Flags::WRITE) && ctx.node.tracking.has_work();
    if write {
        Tracking::begin_write(key_spec::keys(spec, args));
    }
    write || ctx.session.tracking.is_some()
}

/// After a command ran (`ok`: it did not fail): invalidates what a write changed,
/// remembers what a tracked read fetched, and expires `CLIENT CACHING`.
pub fn after_command(ctx: &mut Ctx<'_>, spec: &CommandSpec, args: &[Bytes], ok: bool) {
    let tracking = &ctx.node.tracking;
    let id = ctx.session.handle.id;
    let mut origin = Origin {
        writer: Some(id),
        out: Some(&mut *ctx.out),
    };
    if spec.flags.contains(Flags::WRITE) {
        if ok {
            if spec.name == "flushall" || spec.name == "flushdb" {
                tracking.flush(&mut origin);
            } else {
                tracking.invalidate(key_spec::keys(spec, args).map(|k| &k[..]), &mut origin);
            }
        }
        Tracking::end_write();
    } else if let Some(mode) = &ctx.session.tracking {
        let caching = ctx.session.caching_given;
        let wanted = !((mode.optin && !caching) || (mode.optout && caching));
        if spec.flags.contains(Flags::READONLY) && !mode.bcast && wanted {
            tracking.remember(id, key_spec::keys(spec, args), &mut origin);
        }
    }
    // Redis keeps the flag across CLIENT commands only (so CACHING can precede them).
    if spec.name != "client" {
        ctx.session.caching_given = false;
    }
}

fn err(text: &str) -> CommandError {
    CommandError::Other(format!("ERR {text}"))
}

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP]`,
/// with Redis 7's checks in Redis's order.
pub fn tracking(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let mut new = TrackingMode::default();
    let mut redirect: Option<Arc<crate::net::registry::ClientHandle>> = None;
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        let a = &args[i];
        if is(a, "redirect") && more {
            i += 1;
            if redirect.is_some() {
                return Err(err("A client can only redirect to a single other client"));
            }
            let id = int_arg(&args[i])?;
            let target = u64::try_from(id)
                .ok()
                .filter(|&id| id > 0)
                .and_then(|id| ctx.node.clients.get(ClientId(id)))
                .ok_or_else(|| err("The client ID you want redirect to does not exist"))?;
            new.redirect = Some(target.id);
            redirect = Some(target);
        } else if is(a, "bcast") {
            new.bcast = true;
        } else if is(a, "optin") {
            new.optin = true;
        } else if is(a, "optout") {
            new.optout = true;
        } else if is(a, "noloop") {
            new.noloop = true;
        } else if is(a, "prefix") && more {
            i += 1;
            new.prefixes.push(Bytes::copy_from_slice(&args[i]));
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    let handle = Arc::clone(&ctx.session.handle);
    if is(&args[2], "off") {
        disable(ctx);
        return ctx.ok();
    }
    if !is(&args[2], "on") {
        return Err(CommandError::Syntax);
    }
    if !new.bcast && !new.prefixes.is_empty() {
        return Err(err("PREFIX option requires BCAST mode to be enabled"));
    }
    let old = ctx.session.tracking.as_ref();
    if old.is_some_and(|o| o.bcast != new.bcast) {
        return Err(err("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if new.bcast && (new.optin || new.optout) {
        return Err(err("OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if new.optin && new.optout {
        return Err(err("You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if old.is_some_and(|o| (new.optin && o.optout) || (new.optout && o.optin)) {
        return Err(err("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if new.bcast {
        check_prefixes(old.map_or(&[][..], |o| &o.prefixes[..]), &new.prefixes)?;
    }
    // Prefixes accumulate over repeated ONs; everything else is replaced, as in Redis.
    let mut prefixes = old.map(|o| o.prefixes.clone()).unwrap_or_default();
    let added = if new.bcast && new.prefixes.is_empty() {
        vec![Bytes::new()]
    } else {
        new.prefixes.clone()
    };
    for p in &added {
        if !prefixes.contains(p) {
            prefixes.push(p.clone());
        }
    }
    ctx.node.tracking.enable(
        Tracker {
            handle: Arc::clone(&handle),
            bcast: new.bcast,
            noloop: new.noloop,
            redirect,
        },
        &added,
    );
    let mut flags = TRACKING_ON;
    if new.bcast {
        flags |= TRACKING_BCAST;
    }
    handle.tracking.store(flags, Ordering::Relaxed);
    handle.redirect.store(
        new.redirect
            .map_or(0, |id| i64::try_from(id.0).unwrap_or(i64::MAX)),
        Ordering::Relaxed,
    );
    new.prefixes = prefixes;
    ctx.session.tracking = Some(new);
    ctx.ok()
}

/// Turns tracking off for the session (`CLIENT TRACKING OFF`, `RESET`).
pub fn disable(ctx: &mut Ctx<'_>) {
    disable_session(ctx.node, ctx.session);
}

fn disable_session(node: &Node, session: &mut Session) {
    if session.tracking.take().is_some() {
        node.tracking.disable(session.handle.id);
    }
    session.caching_given = false;
    session.handle.tracking.store(0, Ordering::Relaxed);
    session.handle.redirect.store(-1, Ordering::Relaxed);
}

/// Drops a closed connection's tracking registration and subscriptions.
pub fn forget_session(node: &Node, session: &mut Session) {
    disable_session(node, session);
    super::pubsub::unsubscribe_all(node, session);
}

/// Redis's rule: no prefix of a client may be a prefix of another of its prefixes.
fn check_prefixes(existing: &[Bytes], given: &[Bytes]) -> CommandResult {
    let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    let mut sorted_existing = existing.to_vec();
    sorted_existing.sort();
    for (i, p) in given.iter().enumerate() {
        if let Some(e) = sorted_existing.iter().find(|e| overlap(e, p)) {
            return Err(err(&format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(e)
            )));
        }
        if let Some(q) = given[i + 1..].iter().find(|q| overlap(p, q)) {
            return Err(err(&format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(q)
            )));
        }
    }
    Ok(())
}

/// `CLIENT CACHING YES|NO`.
pub fn caching(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let Some(mode) = &ctx.session.tracking else {
        return Err(err("CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    };
    let opt = &args[2];
    if is(opt, "yes") {
        if !mode.optin {
            return Err(err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(opt, "no") {
        if !mode.optout {
            return Err(err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CommandError::Syntax);
    }
    ctx.session.caching_given = true;
    ctx.ok()
}

/// `CLIENT GETREDIR`: -1 without tracking, 0 without a redirect, else the target's id.
pub fn getredir(ctx: &mut Ctx<'_>) -> CommandResult {
    let redirect = redirect_reply(ctx);
    ctx.int(redirect)
}

fn redirect_reply(ctx: &Ctx<'_>) -> i64 {
    match &ctx.session.tracking {
        None => -1,
        Some(m) => m
            .redirect
            .map_or(0, |id| i64::try_from(id.0).unwrap_or(i64::MAX)),
    }
}

/// `CLIENT TRACKINGINFO`: flags (a set), redirect and prefixes, as Redis 7 orders them.
pub fn trackinginfo(ctx: &mut Ctx<'_>) -> CommandResult {
    let mut flags: Vec<&str> = Vec::new();
    let mut prefixes: Vec<Bytes> = Vec::new();
    match &ctx.session.tracking {
        None => flags.push("off"),
        Some(m) => {
            flags.push("on");
            let caching = ctx.session.caching_given;
            if m.bcast {
                flags.push("bcast");
            }
            if m.optin {
                flags.push("optin");
                if caching {
                    flags.push("caching-yes");
                }
            }
            if m.optout {
                flags.push("optout");
                if caching {
                    flags.push("caching-no");
                }
            }
            if m.noloop {
                flags.push("noloop");
            }
            let broken =
                ctx.session.handle.tracking.load(Ordering::Relaxed) & TRACKING_BROKEN_REDIRECT != 0;
            if broken {
                flags.push("broken_redirect");
            }
            prefixes = m.prefixes.clone();
            prefixes.sort();
        }
    }
    let redirect = redirect_reply(ctx);
    ctx.map(3);
    encode::write_bulk(ctx.out, b"flags");
    ctx.set(flags.len());
    for f in &flags {
        encode::write_bulk(ctx.out, f.as_bytes());
    }
    encode::write_bulk(ctx.out, b"redirect");
    encode::write_integer(ctx.out, redirect);
    encode::write_bulk(ctx.out, b"prefixes");
    ctx.bulk_array(prefixes.iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::lookup;

    fn keys_of(args: &[&str]) -> Vec<String> {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
        let (_, spec) = lookup(&args[0]).expect("known command");
        key_spec::keys(spec, &args)
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn keys_come_from_the_command_table() {
        assert_eq!(keys_of(&["get", "a"]), ["a"]);
        assert_eq!(keys_of(&["mget", "a", "b", "c"]), ["a", "b", "c"]);
        assert_eq!(keys_of(&["mset", "a", "1", "b", "2"]), ["a", "b"]);
        assert_eq!(keys_of(&["rename", "a", "b"]), ["a", "b"]);
        assert_eq!(keys_of(&["object", "encoding", "k"]), ["k"]);
        assert!(keys_of(&["flushall"]).is_empty());
        assert!(keys_of(&["keys", "*"]).is_empty());
    }

    #[test]
    fn overlapping_prefixes_are_refused_with_redis_text() {
        let b = |s: &str| Bytes::from(s.to_string());
        assert!(check_prefixes(&[], &[b("ab"), b("cd")]).is_ok());
        let e = check_prefixes(&[], &[b("ab"), b("abc")]).expect_err("overlap");
        assert_eq!(e.to_string(), "ERR Prefix 'ab' overlaps with another provided prefix 'abc'. Prefixes for a single client must not overlap.");
        let e = check_prefixes(&[b("ab"), b("cd")], &[b("a")]).expect_err("overlap");
        assert_eq!(e.to_string(), "ERR Prefix 'a' overlaps with an existing prefix 'ab'. Prefixes for a single client must not overlap.");
    }
}
