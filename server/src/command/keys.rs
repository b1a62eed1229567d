//! Keyspace commands: DEL, EXISTS, expiry, KEYS/SCAN, RENAME/COPY, FLUSH, OBJECT, MEMORY.

use bytes::Bytes;
use cachalot_protocol::encode;

use super::table::{Subcommand, HELP_SUBCOMMAND};
use super::{int_arg, is, key, unknown_subcommand, CommandResult, Ctx};
use crate::error::CommandError;
use crate::key::Key;
use crate::pattern::glob_match;
use crate::value::{parse_strtoul, Value};

/// Default `COUNT` hint for `SCAN`, as in Redis.
const SCAN_DEFAULT_COUNT: usize = 10;
/// Slots visited per store scan step while collecting `KEYS`.
const KEYS_SCAN_STEP: usize = 1024;

/// `DEL`: see the command table for syntax.
pub fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let n = args[1..]
        .iter()
        .filter(|k| ctx.node.store.remove(&k[..]).is_some())
        .count();
    ctx.int(n as i64)
}

/// `EXISTS`: see the command table for syntax.
pub fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let n = args[1..]
        .iter()
        .filter(|k| ctx.node.store.contains(&k[..]))
        .count();
    ctx.int(n as i64)
}

/// `TOUCH`: see the command table for syntax.
pub fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let n = args[1..]
        .iter()
        .filter(|k| ctx.node.store.get_with(&k[..], |_| ()).is_some())
        .count();
    ctx.int(n as i64)
}

/// `TYPE`: see the command table for syntax.
pub fn type_(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let name = ctx
        .node
        .store
        .peek_with(&args[1][..], Value::type_name)
        .unwrap_or("none");
    ctx.simple(name.as_bytes())
}

/// `EXPIRE` family conditions.
#[derive(Clone, Copy, Default)]
struct Conditions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_conditions(args: &[Bytes]) -> Result<Conditions, CommandError> {
    let mut c = Conditions::default();
    for a in args {
        if is(a, "nx") {
            c.nx = true;
        } else if is(a, "xx") {
            c.xx = true;
        } else if is(a, "gt") {
            c.gt = true;
        } else if is(a, "lt") {
            c.lt = true;
        } else {
            return Err(CommandError::Other(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(a)
            )));
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(CommandError::Other(
            "ERR NX and XX, GT or LT options at the same time are not compatible".into(),
        ));
    }
    if c.gt && c.lt {
        return Err(CommandError::Other(
            "ERR GT and LT options at the same time are not compatible".into(),
        ));
    }
    Ok(c)
}

fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    unit: i64,
    absolute: bool,
    command: &'static str,
) -> CommandResult {
    let cond = parse_conditions(&args[3..])?;
    // Redis's arithmetic: negative times are allowed (the key is deleted), only overflow
    // in the unit conversion or the addition of the base time is refused.
    let n = int_arg(&args[2])?;
    let when = n
        .checked_mul(unit)
        .ok_or(CommandError::InvalidExpire(command))?;
    let now = i64::try_from(ctx.node.now_millis()).unwrap_or(i64::MAX);
    let base = if absolute { 0 } else { now };
    let at = when
        .checked_add(base)
        .ok_or(CommandError::InvalidExpire(command))?;
    let changed = ctx.node.store.modify(key(&args[1]), |e| {
        if !e.is_occupied() {
            return false;
        }
        let current = e.expire_at();
        // A key without expiry counts as an infinite TTL for GT/LT.
        let allowed = match current {
            None => !cond.xx && !cond.gt,
            Some(cur) => {
                let cur = i64::try_from(cur).unwrap_or(i64::MAX);
                !cond.nx && (!cond.gt || at > cur) && (!cond.lt || at < cur)
            }
        };
        if !allowed {
            return false;
        }
        if at <= now {
            e.remove();
        } else {
            e.set_expire_at(u64::try_from(at).ok());
        }
        true
    })?;
    ctx.int(i64::from(changed))
}

/// `EXPIRE`: see the command table for syntax.
pub fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    expire_generic(ctx, args, 1000, false, "expire")
}

/// `PEXPIRE`: see the command table for syntax.
pub fn pexpire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    expire_generic(ctx, args, 1, false, "pexpire")
}

/// `EXPIREAT`: see the command table for syntax.
pub fn expireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    expire_generic(ctx, args, 1000, true, "expireat")
}

/// `PEXPIREAT`: see the command table for syntax.
pub fn pexpireat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

/// TTL-style replies: -2 missing, -1 no expiry, else `f(expire_at, now)`.
fn ttl_generic(ctx: &mut Ctx<'_>, key: &[u8], f: impl Fn(u64, u64) -> u64) -> CommandResult {
    let now = ctx.node.now_millis();
    let reply = match ctx.node.store.expire_at(key) {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => i64::try_from(f(at, now)).unwrap_or(i64::MAX),
    };
    ctx.int(reply)
}

/// `TTL`: see the command table for syntax.
pub fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    ttl_generic(ctx, &args[1], |at, now| {
        (at.saturating_sub(now) + 500) / 1000
    })
}

/// `PTTL`: see the command table for syntax.
pub fn pttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    ttl_generic(ctx, &args[1], |at, now| at.saturating_sub(now))
}

/// `EXPIRETIME`: see the command table for syntax. Rounded to the nearest second, as
/// Redis rounds it.
pub fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    ttl_generic(ctx, &args[1], |at, _| at.saturating_add(500) / 1000)
}

/// `PEXPIRETIME`: see the command table for syntax.
pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    ttl_generic(ctx, &args[1], |at, _| at)
}

/// `PERSIST`: see the command table for syntax.
pub fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let changed = ctx.node.store.modify(key(&args[1]), |e| {
        if e.is_occupied() && e.expire_at().is_some() {
            e.set_expire_at(None);
            true
        } else {
            false
        }
    })?;
    ctx.int(i64::from(changed))
}

/// `KEYS`: see the command table for syntax.
pub fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let pattern = &args[1];
    let all = pattern.as_ref() == b"*";
    let mut found: Vec<Key> = Vec::new();
    let mut cursor = 0;
    loop {
        cursor = ctx.node.store.scan(cursor, KEYS_SCAN_STEP, |k, _| {
            if all || glob_match(pattern, k, false) {
                found.push(k.clone());
            }
        });
        if cursor == 0 {
            break;
        }
    }
    ctx.bulk_array(found.iter())
}

/// `SCAN`-style options shared by `SCAN` and `HSCAN`.
pub struct ScanOptions {
    /// `MATCH` pattern.
    pub pattern: Option<Bytes>,
    /// `COUNT` hint.
    pub count: usize,
    /// `TYPE` filter (SCAN only).
    pub type_name: Option<String>,
    /// `NOVALUES` (HSCAN only).
    pub novalues: bool,
}

/// Parses `[MATCH p] [COUNT n] [TYPE t] [NOVALUES]`; `allow_type`/`allow_novalues` say
/// which of the last two the command takes.
pub fn parse_scan_options(
    args: &[Bytes],
    allow_type: bool,
    allow_novalues: bool,
) -> Result<ScanOptions, CommandError> {
    let mut o = ScanOptions {
        pattern: None,
        count: SCAN_DEFAULT_COUNT,
        type_name: None,
        novalues: false,
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let next = args.get(i + 1);
        if is(a, "match") && next.is_some() {
            o.pattern = next.cloned();
            i += 2;
        } else if is(a, "count") && next.is_some() {
            let n = int_arg(next.map_or(&b""[..], |b| &b[..]))?;
            if n < 1 {
                return Err(CommandError::Syntax);
            }
            o.count = usize::try_from(n).unwrap_or(usize::MAX);
            i += 2;
        } else if allow_type && is(a, "type") && next.is_some() {
            o.type_name = next.map(|t| String::from_utf8_lossy(t).to_ascii_lowercase());
            i += 2;
        } else if allow_novalues && is(a, "novalues") {
            o.novalues = true;
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    Ok(o)
}

/// Parses a cursor argument the way Redis does (see [`parse_strtoul`]).
pub fn parse_cursor(arg: &[u8]) -> Result<u64, CommandError> {
    parse_strtoul(arg).ok_or(CommandError::InvalidCursor)
}

/// `SCAN`: see the command table for syntax.
pub fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let cursor = parse_cursor(&args[1])?;
    let opts = parse_scan_options(&args[2..], true, false)?;
    let mut found: Vec<Key> = Vec::new();
    let next = ctx.node.store.scan(cursor, opts.count, |k, v| {
        let pattern_ok = opts
            .pattern
            .as_ref()
            .is_none_or(|p| glob_match(p, k, false));
        let type_ok = opts.type_name.as_deref().is_none_or(|t| t == v.type_name());
        if pattern_ok && type_ok {
            found.push(k.clone());
        }
    });
    ctx.array(2);
    encode::write_bulk(ctx.out, itoa::Buffer::new().format(next).as_bytes());
    ctx.bulk_array(found.iter())
}

/// `RANDOMKEY`: see the command table for syntax.
pub fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CommandResult {
    match ctx.node.store.random_key() {
        Some(k) => ctx.bulk(&k),
        None => ctx.null(),
    }
}

/// Takes the value and expiry out of `src`; `None` if it does not exist.
fn take(ctx: &Ctx<'_>, src: &Bytes) -> Result<Option<(Value, Option<u64>)>, CommandError> {
    Ok(ctx.node.store.modify(key(src), |e| {
        let at = e.expire_at();
        e.remove().map(|v| (v, at))
    })?)
}

/// Moves `src` to `dst`. Not atomic across the two keys' shards: a concurrent reader may
/// briefly see neither (documented in docs/commands.md).
fn rename_generic(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> CommandResult {
    let (src, dst) = (&args[1], &args[2]);
    if !ctx.node.store.contains(&src[..]) {
        return Err(CommandError::NoSuchKey);
    }
    if src == dst {
        return if nx { ctx.int(0) } else { ctx.ok() };
    }
    if nx && ctx.node.store.contains(&dst[..]) {
        return ctx.int(0);
    }
    let Some((value, at)) = take(ctx, src)? else {
        return Err(CommandError::NoSuchKey);
    };
    // RENAME moves memory rather than adding it, so, like Redis (it is not `denyoom`),
    // it is never refused at maxmemory: `modify` skips the admission check.
    let put = |name: &Bytes, value: Value| {
        ctx.node.store.modify(key(name), |e| {
            e.insert(value);
            e.set_expire_at(at);
        })
    };
    if let Err(e) = put(dst, value.clone()) {
        // Only a full slab can refuse; put the source back rather than lose it.
        if put(src, value).is_err() {
            tracing::error!("RENAME could not restore its source key after a failed write");
        }
        return Err(e.into());
    }
    if nx {
        ctx.int(1)
    } else {
        ctx.ok()
    }
}

/// `RENAME`: see the command table for syntax.
pub fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    rename_generic(ctx, args, false)
}

/// `RENAMENX`: see the command table for syntax.
pub fn renamenx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    rename_generic(ctx, args, true)
}

/// `COPY`: see the command table for syntax.
pub fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "replace") {
            replace = true;
            i += 1;
        } else if is(&args[i], "db") && i + 1 < args.len() {
            // Redis reads the index as a C int, then checks it against its databases.
            let db = int_arg(&args[i + 1])?;
            if i32::try_from(db).is_err() {
                return Err(CommandError::NotInteger);
            }
            if db != 0 {
                return Err(CommandError::DbIndexOutOfRange);
            }
            i += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let (src, dst) = (&args[1], &args[2]);
    if src == dst {
        return Err(CommandError::Other(
            "ERR source and destination objects are the same".into(),
        ));
    }
    let store = &ctx.node.store;
    let Some((value, at)) = store.peek_with(&src[..], |v| v.clone()).map(|v| {
        let at = store.expire_at(&src[..]).flatten();
        (v, at)
    }) else {
        return ctx.int(0);
    };
    let copied = store.modify(key(dst), |e| {
        if e.is_occupied() && !replace {
            return false;
        }
        e.insert(value);
        e.set_expire_at(at);
        true
    })?;
    ctx.int(i64::from(copied))
}

/// `DBSIZE`: see the command table for syntax.
pub fn dbsize(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CommandResult {
    ctx.int(i64::try_from(ctx.node.store.len()).unwrap_or(i64::MAX))
}

/// `FLUSHALL`: see the command table for syntax.
pub fn flushall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    match args.get(1) {
        None => {}
        Some(a) if is(a, "async") || is(a, "sync") => {}
        Some(_) => return Err(CommandError::Syntax),
    }
    if args.len() > 2 {
        return Err(CommandError::Syntax);
    }
    let store = &ctx.node.store;
    ctx.node.repl.flush(|| store.clear());
    ctx.ok()
}

/// `OBJECT` subcommands.
pub static OBJECT_SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "encoding",
        arity: 3,
        key: 2,
        summary: "Returns the internal encoding of a Redis object.",
        syntax: "key",
    },
    Subcommand {
        name: "freq",
        arity: 3,
        key: 2,
        summary: "Returns the logarithmic access frequency counter of a Redis object.",
        syntax: "key",
    },
    Subcommand {
        name: "idletime",
        arity: 3,
        key: 2,
        summary: "Returns the time since the last access to a Redis object.",
        syntax: "key",
    },
    Subcommand {
        name: "refcount",
        arity: 3,
        key: 2,
        summary: "Returns the reference count of a value of a key.",
        syntax: "key",
    },
    HELP_SUBCOMMAND,
];

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Writes a HELP reply (an array of status lines, as Redis does).
pub fn help_reply(ctx: &mut Ctx<'_>, lines: &[&str]) -> CommandResult {
    ctx.array(lines.len());
    for l in lines {
        encode::write_simple(ctx.out, l.as_bytes());
    }
    Ok(())
}

/// Checks a container command's subcommand name and arity with Redis's errors.
pub fn check_subcommand(args: &[Bytes], subs: &[Subcommand], container: &str) -> CommandResult {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    match subs.iter().find(|s| s.name == sub) {
        None => Err(unknown_subcommand(container, &args[1])),
        Some(s) => {
            let ok = if s.arity >= 0 {
                args.len() == s.arity as usize
            } else {
                args.len() >= s.arity.unsigned_abs() as usize
            };
            if ok {
                Ok(())
            } else {
                Err(CommandError::Other(format!(
                    "ERR wrong number of arguments for '{container}|{sub}' command"
                )))
            }
        }
    }
}

/// `OBJECT`: see the command table for syntax.
pub fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    check_subcommand(args, OBJECT_SUBCOMMANDS, "object")?;
    let sub = &args[1];
    if is(sub, "help") {
        return help_reply(ctx, OBJECT_HELP);
    }
    let key = &args[2][..];
    let store = &ctx.node.store;
    if is(sub, "encoding") {
        return match store.peek_with(key, Value::encoding) {
            Some(enc) => ctx.bulk(enc.as_bytes()),
            None => ctx.null(),
        };
    }
    if is(sub, "refcount") {
        let shared = shares_integers(ctx);
        return match store.peek_with(key, |v| v.refcount(shared)) {
            Some(n) => ctx.int(n),
            None => ctx.null(),
        };
    }
    let Some(info) = store.entry_info(key) else {
        return ctx.null();
    };
    // The store records either frequency (LFU policies) or idle time (the others), as Redis.
    if is(sub, "freq") {
        let Some(frequency) = info.frequency else {
            return Err(CommandError::Other("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.".into()));
        };
        return ctx.int(i64::from(frequency));
    }
    // idletime
    let Some(idle) = info.idle_seconds else {
        return Err(CommandError::Other("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.".into()));
    };
    ctx.int(i64::try_from(idle).unwrap_or(i64::MAX))
}

/// Whether Redis would share small integers: not when an LRU or LFU policy must track
/// each key's own access time.
fn shares_integers(ctx: &Ctx<'_>) -> bool {
    let store = &ctx.node.store;
    let policy = store.policy().redis_name();
    store.max_weight().is_none() || !(policy.ends_with("-lru") || policy.ends_with("-lfu"))
}

/// `MEMORY` subcommands.
pub static MEMORY_SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "usage",
        arity: -3,
        key: 2,
        summary: "Estimates the memory usage of a key.",
        syntax: "key [SAMPLES count]",
    },
    HELP_SUBCOMMAND,
];

const MEMORY_HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// `MEMORY`: see the command table for syntax.
pub fn memory(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    check_subcommand(args, MEMORY_SUBCOMMANDS, "memory")?;
    if is(&args[1], "help") {
        return help_reply(ctx, MEMORY_HELP);
    }
    match args.len() {
        3 => {}
        5 if is(&args[3], "samples") => {
            if int_arg(&args[4])? < 0 {
                return Err(CommandError::OutOfRange);
            }
        }
        _ => return Err(CommandError::Syntax),
    }
    match ctx.node.store.entry_info(&args[2][..]) {
        Some(info) => ctx.int(i64::try_from(info.weight).unwrap_or(i64::MAX)),
        None => ctx.null(),
    }
}
