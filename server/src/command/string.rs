//! String commands: GET, SET and its variants, counters, APPEND, ranges.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use cachalot_protocol::encode;

use super::{int_arg, is, key, CommandResult, Ctx};
use crate::error::CommandError;
use crate::key::Key;
use crate::value::{parse_i64, LongDouble, Other, Value, View};

/// A string value read out of the store (copied out before the lock is released).
pub enum Got {
    /// No such key.
    Missing,
    /// A string.
    Str(Bytes),
    /// A string kept as an integer.
    Int(i64),
    /// Another type.
    WrongType,
}

impl Got {
    /// Reads a stored value.
    pub fn of(v: &Value) -> Got {
        match v.view() {
            View::Str(b) | View::RawStr(b) => Got::Str(Bytes::copy_from_slice(b)),
            View::Int(n) => Got::Int(n),
            View::Hash(_) => Got::WrongType,
        }
    }

    /// Writes it as a reply: bulk, null, or WRONGTYPE.
    pub fn reply(self, ctx: &mut Ctx<'_>) -> CommandResult {
        match self {
            Got::Missing => ctx.null(),
            Got::Str(b) => ctx.bulk(&b),
            Got::Int(n) => ctx.bulk(itoa::Buffer::new().format(n).as_bytes()),
            Got::WrongType => Err(CommandError::WrongType),
        }
    }
}

/// What reading a string straight into the reply found.
enum Read {
    Missing,
    Written,
    WrongType,
}

/// Writes the string at `key` as a bulk reply straight from the stored bytes, under the
/// shard's lock: no copy of the value besides the one into the reply buffer. Anything but a
/// string is left for the caller to answer.
fn write_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Read {
    let out = &mut *ctx.out;
    ctx.node
        .store
        .get_with(key, |v| {
            v.with_string_bytes(|b| encode::write_bulk(out, b))
                .map_or(Read::WrongType, |()| Read::Written)
        })
        .unwrap_or(Read::Missing)
}

/// `GET`: see the command table for syntax.
pub fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    match write_string(ctx, &args[1]) {
        Read::Written => Ok(()),
        Read::Missing => ctx.null(),
        Read::WrongType => Err(CommandError::WrongType),
    }
}

/// How a write sets the key's expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryArg {
    /// Remove any expiry (plain SET).
    Clear,
    /// Keep the current expiry (`KEEPTTL`).
    Keep,
    /// Expire at this unix time in milliseconds.
    At(u64),
}

/// Turns a relative or absolute expiry argument into absolute unix milliseconds, with
/// Redis's checks: not an integer → not-an-integer error; ≤ 0 or overflowing → invalid
/// expire time for `command`.
fn expiry_millis(
    ctx: &Ctx<'_>,
    arg: &[u8],
    unit_millis: i64,
    absolute: bool,
    command: &'static str,
) -> Result<u64, CommandError> {
    let n = int_arg(arg)?;
    if n <= 0 {
        return Err(CommandError::InvalidExpire(command));
    }
    let ms = n
        .checked_mul(unit_millis)
        .ok_or(CommandError::InvalidExpire(command))?;
    let at = if absolute {
        ms
    } else {
        i64::try_from(ctx.node.now_millis())
            .ok()
            .and_then(|now| now.checked_add(ms))
            .ok_or(CommandError::InvalidExpire(command))?
    };
    u64::try_from(at).map_err(|_| CommandError::InvalidExpire(command))
}

/// Which expiry option a `SET`/`GETEX` carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl ExpireKind {
    fn parse(arg: &[u8]) -> Option<ExpireKind> {
        [
            ("ex", ExpireKind::Ex),
            ("px", ExpireKind::Px),
            ("exat", ExpireKind::ExAt),
            ("pxat", ExpireKind::PxAt),
        ]
        .into_iter()
        .find(|(word, _)| is(arg, word))
        .map(|(_, kind)| kind)
    }

    fn is_absolute(self) -> bool {
        matches!(self, ExpireKind::ExAt | ExpireKind::PxAt)
    }
}

/// The options of `SET` and `GETEX`, parsed with Redis's rules: an option may be repeated
/// (the last expiry wins), conflicting options are a syntax error, and the expiry's value
/// is only read after every option parsed, so a syntax error wins over a bad number.
#[derive(Default)]
struct StringOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, &'a Bytes)>,
}

impl<'a> StringOptions<'a> {
    /// Parses `args[start..]`; `set` selects `SET`'s options, otherwise `GETEX`'s.
    fn parse(args: &'a [Bytes], start: usize, set: bool) -> Result<Self, CommandError> {
        let mut o = StringOptions::default();
        let mut j = start;
        while j < args.len() {
            let a = &args[j];
            let next = args.get(j + 1);
            let expire_kind = ExpireKind::parse(a);
            if set && is(a, "nx") && !o.xx {
                o.nx = true;
            } else if set && is(a, "xx") && !o.nx {
                o.xx = true;
            } else if set && is(a, "get") {
                o.get = true;
            } else if set && is(a, "keepttl") && !o.persist && o.expire.is_none() {
                o.keepttl = true;
            } else if !set && is(a, "persist") && o.expire.is_none() && !o.keepttl {
                o.persist = true;
            } else if let (Some(kind), Some(value)) = (expire_kind, next) {
                let same_kind = o.expire.is_none_or(|(k, _)| k == kind);
                if o.keepttl || o.persist || !same_kind {
                    return Err(CommandError::Syntax);
                }
                o.expire = Some((kind, value));
                j += 1;
            } else {
                return Err(CommandError::Syntax);
            }
            j += 1;
        }
        Ok(o)
    }

    /// The expiry as absolute unix milliseconds, with Redis's checks.
    fn expire_at(&self, ctx: &Ctx<'_>, command: &'static str) -> Result<Option<u64>, CommandError> {
        let Some((kind, value)) = self.expire else {
            return Ok(None);
        };
        let unit = match kind {
            ExpireKind::Ex | ExpireKind::ExAt => 1000,
            ExpireKind::Px | ExpireKind::PxAt => 1,
        };
        expiry_millis(ctx, value, unit, kind.is_absolute(), command).map(Some)
    }
}

/// `SET`: see the command table for syntax.
pub fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let opts = StringOptions::parse(args, 3, true)?;
    let at = opts.expire_at(ctx, "set")?;
    let expiry = match at {
        Some(at) => ExpiryArg::At(at),
        None if opts.keepttl => ExpiryArg::Keep,
        None => ExpiryArg::Clear,
    };
    let (nx, xx, get) = (opts.nx, opts.xx, opts.get);
    let value = Value::from_bytes(&args[2]);
    let store = &ctx.node.store;
    if !nx && !xx && !get && expiry != ExpiryArg::Keep {
        store.insert_with_expiry_ref(&args[1][..], Key::from_slice, value, at)?;
        return ctx.ok();
    }
    let outcome = store.modify(key(&args[1]), |e| {
        // Only `GET` replies with the old value: without it, copying it out would be waste.
        let old = if get {
            e.get().map_or(Got::Missing, Got::of)
        } else {
            Got::Missing
        };
        if matches!(old, Got::WrongType) {
            return Err(CommandError::WrongType);
        }
        let exists = e.is_occupied();
        if (nx && exists) || (xx && !exists) {
            return Ok((false, old));
        }
        e.insert(value);
        match expiry {
            ExpiryArg::Clear => e.set_expire_at(None),
            ExpiryArg::At(at) => e.set_expire_at(Some(at)),
            ExpiryArg::Keep => {}
        }
        Ok((true, old))
    })??;
    match (get, outcome) {
        (true, (_, old)) => old.reply(ctx),
        (false, (true, _)) => ctx.ok(),
        (false, (false, _)) => ctx.null(),
    }
}

/// `SETNX`: see the command table for syntax.
pub fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let value = Value::from_bytes(&args[2]);
    let set = ctx.node.store.modify(key(&args[1]), |e| {
        if e.is_occupied() {
            false
        } else {
            e.insert(value);
            e.set_expire_at(None);
            true
        }
    })?;
    ctx.int(i64::from(set))
}

fn set_with_expiry(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    unit: i64,
    command: &'static str,
) -> CommandResult {
    let at = expiry_millis(ctx, &args[2], unit, false, command)?;
    let value = Value::from_bytes(&args[3]);
    ctx.node
        .store
        .insert_with_expiry_ref(&args[1][..], Key::from_slice, value, Some(at))?;
    ctx.ok()
}

/// `SETEX`: see the command table for syntax.
pub fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    set_with_expiry(ctx, args, 1000, "setex")
}

/// `PSETEX`: see the command table for syntax.
pub fn psetex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    set_with_expiry(ctx, args, 1, "psetex")
}

/// `GETSET`: see the command table for syntax.
pub fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let value = Value::from_bytes(&args[2]);
    let old = ctx.node.store.modify(key(&args[1]), |e| {
        if e.get()
            .is_some_and(|v| v.with_string_bytes(|_| ()).is_none())
        {
            return Err(CommandError::WrongType);
        }
        // The old value comes out by move and is written after the lock is released.
        let old = e.insert(value);
        e.set_expire_at(None);
        Ok(old)
    })??;
    reply_owned(ctx, old)
}

/// Replies with a string value taken out of the store (bulk, or null when there was none).
fn reply_owned(ctx: &mut Ctx<'_>, value: Option<Value>) -> CommandResult {
    match value {
        Some(v) => v
            .with_string_bytes(|b| ctx.bulk(b))
            .unwrap_or(Err(CommandError::WrongType)),
        None => ctx.null(),
    }
}

/// `GETEX`: see the command table for syntax.
pub fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let opts = StringOptions::parse(args, 2, false)?;
    if opts.expire.is_none() && !opts.persist {
        return get(ctx, args);
    }
    // Redis reads the expiry only once it knows the key is a string: a missing key or
    // another type answers first, so the error waits until then.
    let at = opts.expire_at(ctx, "getex");
    let now = ctx.node.now_millis();
    let got = ctx.node.store.modify(key(&args[1]), |e| {
        let got = e.get().map_or(Got::Missing, Got::of);
        if matches!(got, Got::Str(_) | Got::Int(_)) {
            match at.clone()? {
                Some(at) if at <= now => {
                    e.remove();
                }
                Some(at) => e.set_expire_at(Some(at)),
                None => e.set_expire_at(None),
            }
        }
        Ok::<_, CommandError>(got)
    })??;
    got.reply(ctx)
}

/// `GETDEL`: see the command table for syntax.
pub fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let taken = ctx.node.store.modify(key(&args[1]), |e| {
        if e.get()
            .is_some_and(|v| v.with_string_bytes(|_| ()).is_none())
        {
            return Err(CommandError::WrongType);
        }
        Ok(e.remove())
    })??;
    reply_owned(ctx, taken)
}

/// `MGET`: see the command table for syntax.
pub fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    ctx.array(args.len() - 1);
    for key in &args[1..] {
        if !matches!(write_string(ctx, key), Read::Written) {
            encode::write_null(ctx.out, ctx.session.version);
        }
    }
    Ok(())
}

fn check_pairs(args: &[Bytes]) -> Result<(), CommandError> {
    if args.len() % 2 == 0 {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        return Err(CommandError::WrongArity(name));
    }
    Ok(())
}

/// `MSET`: see the command table for syntax.
pub fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    check_pairs(args)?;
    for pair in args[1..].chunks_exact(2) {
        let value = Value::from_bytes(&pair[1]);
        ctx.node
            .store
            .insert_with_expiry_ref(&pair[0][..], Key::from_slice, value, None)?;
    }
    ctx.ok()
}

/// `MSETNX`: see the command table for syntax.
pub fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    check_pairs(args)?;
    let pairs = || args[1..].chunks_exact(2);
    if pairs().any(|p| ctx.node.store.contains(&p[0][..])) {
        return ctx.int(0);
    }
    for pair in pairs() {
        let value = Value::from_bytes(&pair[1]);
        ctx.node
            .store
            .insert_with_expiry_ref(&pair[0][..], Key::from_slice, value, None)?;
    }
    ctx.int(1)
}

/// Adds `delta` to the integer at `key` (0 if missing), keeping its expiry.
fn incr_by(ctx: &mut Ctx<'_>, name: &Bytes, delta: i64) -> CommandResult {
    let n = ctx.node.store.modify(key(name), |e| {
        let current = match e.get().map(Value::view) {
            None => 0,
            Some(View::Int(n)) => n,
            Some(View::Str(b) | View::RawStr(b)) => parse_i64(b).ok_or(CommandError::NotInteger)?,
            Some(View::Hash(_)) => return Err(CommandError::WrongType),
        };
        let next = current.checked_add(delta).ok_or(CommandError::Overflow)?;
        match e.get_mut() {
            Some(Value::Other(o)) => **o = Other::Int(next),
            Some(v) => *v = Value::int(next),
            None => {
                e.insert(Value::int(next));
            }
        }
        Ok(next)
    })??;
    ctx.int(n)
}

/// `INCR`: see the command table for syntax.
pub fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    incr_by(ctx, &args[1], 1)
}

/// `DECR`: see the command table for syntax.
pub fn decr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    incr_by(ctx, &args[1], -1)
}

/// `INCRBY`: see the command table for syntax.
pub fn incrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let delta = int_arg(&args[2])?;
    incr_by(ctx, &args[1], delta)
}

/// `DECRBY`: see the command table for syntax.
pub fn decrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let delta = int_arg(&args[2])?;
    let delta = delta
        .checked_neg()
        .ok_or_else(|| CommandError::Other("ERR decrement would overflow".into()))?;
    incr_by(ctx, &args[1], delta)
}

/// `INCRBYFLOAT`: see the command table for syntax. Computed in emulated `long double`,
/// like Redis, so the digits match (see [`LongDouble`]).
pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    // Redis checks the type and the stored value before the increment.
    let delta = LongDouble::parse(&args[2]);
    let text = ctx.node.store.modify(key(&args[1]), |e| {
        let current = match e.get().map(Value::view) {
            None => LongDouble::from_i64(0),
            Some(View::Int(n)) => LongDouble::from_i64(n),
            Some(View::Str(b) | View::RawStr(b)) => {
                LongDouble::parse(b).ok_or(CommandError::NotFloat)?
            }
            Some(View::Hash(_)) => return Err(CommandError::WrongType),
        };
        let delta = delta.ok_or(CommandError::NotFloat)?;
        let next = current
            .checked_add(delta)
            .ok_or(CommandError::NanOrInfinity)?;
        let text = next.to_redis_string();
        let value = Value::Str(Box::from(text.as_bytes()));
        match e.get_mut() {
            Some(v) => *v = value,
            None => {
                e.insert(value);
            }
        }
        Ok(text)
    })??;
    ctx.bulk(text.as_bytes())
}

fn max_string_len(ctx: &Ctx<'_>) -> u64 {
    ctx.node.settings.proto_max_bulk_len.load(Ordering::Relaxed)
}

/// `APPEND`: see the command table for syntax.
pub fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let max = max_string_len(ctx);
    let suffix = &args[2];
    let len = ctx.node.store.modify(key(&args[1]), |e| {
        let Some(v) = e.get() else {
            // A new key is stored as SET would store it; an existing one is changed in
            // place and becomes raw.
            e.insert(Value::from_bytes(suffix));
            return Ok::<_, CommandError>(suffix.len());
        };
        let joined = v
            .with_string_bytes(|current| {
                if (current.len() + suffix.len()) as u64 > max {
                    return Err(CommandError::StringTooLong);
                }
                let mut joined = Vec::with_capacity(current.len() + suffix.len());
                joined.extend_from_slice(current);
                joined.extend_from_slice(suffix);
                Ok(joined)
            })
            .ok_or(CommandError::WrongType)??;
        let len = joined.len();
        if let Some(v) = e.get_mut() {
            *v = Value::raw(joined);
        }
        Ok(len)
    })??;
    ctx.int(i64::try_from(len).unwrap_or(i64::MAX))
}

/// `STRLEN`: see the command table for syntax.
pub fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let len = match ctx
        .node
        .store
        .get_with(&args[1][..], |v| v.with_string_bytes(<[u8]>::len))
    {
        None => 0,
        Some(Some(len)) => len,
        Some(None) => return Err(CommandError::WrongType),
    };
    ctx.int(i64::try_from(len).unwrap_or(i64::MAX))
}

/// Redis's clamping of `start`/`end` for `GETRANGE` over a string of `len` bytes; `None`
/// for an empty range.
pub fn clamp_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    if (start < 0 && end < 0 && start > end) || len == 0 {
        return None;
    }
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0).min(len - 1);
    if start > end {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(end).ok()?))
}

/// `GETRANGE`: see the command table for syntax.
pub fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let start = int_arg(&args[2])?;
    let end = int_arg(&args[3])?;
    let out = &mut *ctx.out;
    let write_range = |s: &[u8]| match clamp_range(start, end, s.len()) {
        Some((a, b)) => encode::write_bulk(out, &s[a..=b]),
        None => encode::write_bulk(out, b""),
    };
    match ctx
        .node
        .store
        .get_with(&args[1][..], |v| v.with_string_bytes(write_range))
    {
        Some(Some(())) => Ok(()),
        None => ctx.bulk(b""),
        Some(None) => Err(CommandError::WrongType),
    }
}

/// `SETRANGE`: see the command table for syntax.
pub fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let offset = int_arg(&args[2])?;
    let offset = usize::try_from(offset).map_err(|_| CommandError::OffsetOutOfRange)?;
    let patch = &args[3];
    let max = max_string_len(ctx);
    let needed = offset
        .checked_add(patch.len())
        .filter(|&n| n as u64 <= max)
        .ok_or(CommandError::StringTooLong);
    let len = ctx.node.store.modify(key(&args[1]), |e| {
        // Redis's order: an empty patch reports the length without writing, then the
        // type, then the size limit.
        let current = match e.get() {
            None if patch.is_empty() => return Ok::<_, CommandError>(0),
            None => Vec::new(),
            Some(v) => v
                .with_string_bytes(<[u8]>::to_vec)
                .ok_or(CommandError::WrongType)?,
        };
        if patch.is_empty() {
            return Ok(current.len());
        }
        let needed = needed.clone()?;
        let mut buf = current;
        if buf.len() < needed {
            buf.resize(needed, 0);
        }
        buf[offset..needed].copy_from_slice(patch);
        let len = buf.len();
        match e.get_mut() {
            Some(v) => *v = Value::raw(buf),
            None => {
                e.insert(Value::raw(buf));
            }
        }
        Ok(len)
    })??;
    ctx.int(i64::try_from(len).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::clamp_range;

    #[test]
    fn ranges_clamp_like_redis() {
        // "This is a string" has 16 bytes.
        assert_eq!(clamp_range(0, 3, 16), Some((0, 3)));
        assert_eq!(clamp_range(-3, -1, 16), Some((13, 15)));
        assert_eq!(clamp_range(0, -1, 16), Some((0, 15)));
        assert_eq!(clamp_range(10, 100, 16), Some((10, 15)));
        assert_eq!(clamp_range(5, 3, 16), None);
        assert_eq!(clamp_range(-1, -5, 16), None);
        assert_eq!(clamp_range(0, 0, 0), None);
        assert_eq!(clamp_range(-100, 2, 16), Some((0, 2)));
    }
}
