//! Hash commands.

use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::Bytes;
use cachalot_protocol::{encode, ProtocolVersion};
use rand::seq::IteratorRandom;
use rand::Rng;

use super::keys::{parse_cursor, parse_scan_options};
use super::{int_arg, is, owned, CommandResult, Ctx};
use crate::error::CommandError;
use crate::pattern::glob_match;
use crate::value::{format_f64, parse_f64, parse_i64, HashValue, Value};

/// Largest |count| `HRANDFIELD` accepts for a negative count (fields may repeat, so the
/// reply's size is the count itself): bounds the reply a single command can build.
const HRANDFIELD_MAX_REPEATS: i64 = 1 << 24;

/// Runs `f` on the hash at `key`: `Ok(None)` if missing, WRONGTYPE for other types.
fn read_hash<R>(
    ctx: &Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&HashValue) -> R,
) -> Result<Option<R>, CommandError> {
    match ctx.node.store.get_with(key, |v| match v {
        Value::Hash(h) => Ok(f(h)),
        _ => Err(CommandError::WrongType),
    }) {
        None => Ok(None),
        Some(r) => r.map(Some),
    }
}

/// Runs `f` on the hash at `key`, creating an empty one if missing. A hash left empty is
/// deleted, as Redis never keeps empty hashes.
fn write_hash<R>(
    ctx: &Ctx<'_>,
    key: &Bytes,
    create: bool,
    f: impl FnOnce(&mut HashValue) -> Result<R, CommandError>,
) -> Result<Option<R>, CommandError> {
    ctx.node.store.compute(owned(key), |e| {
        if e.get().is_none() {
            if !create {
                return Ok(None);
            }
            e.insert(Value::Hash(Box::default()));
        }
        let Some(Value::Hash(h)) = e.get_mut() else {
            return Err(CommandError::WrongType);
        };
        let r = f(h);
        if h.is_empty() {
            e.remove();
        }
        r.map(Some)
    })?
}

fn check_pairs(args: &[Bytes]) -> Result<(), CommandError> {
    if (args.len() - 2) % 2 != 0 {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        return Err(CommandError::WrongArity(name));
    }
    Ok(())
}

fn set_fields(ctx: &Ctx<'_>, args: &[Bytes]) -> Result<i64, CommandError> {
    check_pairs(args)?;
    let added = write_hash(ctx, &args[1], true, |h| {
        let mut added = 0;
        for pair in args[2..].chunks_exact(2) {
            if h.insert(owned(&pair[0]), owned(&pair[1])).is_none() {
                added += 1;
            }
        }
        Ok(added)
    })?;
    Ok(added.unwrap_or(0))
}

/// `HSET`: see the command table for syntax.
pub fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let n = set_fields(ctx, args)?;
    ctx.int(n)
}

/// `HMSET`: see the command table for syntax.
pub fn hmset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    set_fields(ctx, args)?;
    ctx.ok()
}

/// `HSETNX`: see the command table for syntax.
pub fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let set = write_hash(ctx, &args[1], true, |h| {
        if h.contains_key(&args[2][..]) {
            Ok(false)
        } else {
            h.insert(owned(&args[2]), owned(&args[3]));
            Ok(true)
        }
    })?;
    ctx.int(i64::from(set.unwrap_or(false)))
}

/// `HGET`: see the command table for syntax.
pub fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    match read_hash(ctx, &args[1], |h| h.get(&args[2][..]).cloned())? {
        Some(Some(v)) => ctx.bulk(&v),
        _ => ctx.null(),
    }
}

/// `HMGET`: see the command table for syntax.
pub fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let fields = &args[2..];
    let values = read_hash(ctx, &args[1], |h| {
        fields
            .iter()
            .map(|f| h.get(&f[..]).cloned())
            .collect::<Vec<_>>()
    })?
    .unwrap_or_else(|| vec![None; fields.len()]);
    ctx.array(values.len());
    for v in values {
        match v {
            Some(v) => encode::write_bulk(ctx.out, &v),
            None => encode::write_null(ctx.out, ctx.session.version),
        }
    }
    Ok(())
}

/// `HGETALL`: see the command table for syntax.
pub fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let pairs: Vec<(Bytes, Bytes)> = read_hash(ctx, &args[1], |h| {
        h.iter().map(|(f, v)| (f.clone(), v.clone())).collect()
    })?
    .unwrap_or_default();
    ctx.map(pairs.len());
    for (f, v) in &pairs {
        encode::write_bulk(ctx.out, f);
        encode::write_bulk(ctx.out, v);
    }
    Ok(())
}

/// `HDEL`: see the command table for syntax.
pub fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let n = write_hash(ctx, &args[1], false, |h| {
        Ok(args[2..]
            .iter()
            .filter(|f| h.remove(&f[..]).is_some())
            .count())
    })?;
    ctx.int(i64::try_from(n.unwrap_or(0)).unwrap_or(i64::MAX))
}

/// `HEXISTS`: see the command table for syntax.
pub fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let found = read_hash(ctx, &args[1], |h| h.contains_key(&args[2][..]))?;
    ctx.int(i64::from(found.unwrap_or(false)))
}

/// `HLEN`: see the command table for syntax.
pub fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let n = read_hash(ctx, &args[1], |h| h.len())?.unwrap_or(0);
    ctx.int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `HKEYS`: see the command table for syntax.
pub fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let keys: Vec<Bytes> =
        read_hash(ctx, &args[1], |h| h.keys().cloned().collect())?.unwrap_or_default();
    ctx.bulk_array(keys.iter())
}

/// `HVALS`: see the command table for syntax.
pub fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let vals: Vec<Bytes> =
        read_hash(ctx, &args[1], |h| h.values().cloned().collect())?.unwrap_or_default();
    ctx.bulk_array(vals.iter())
}

/// `HINCRBY`: see the command table for syntax.
pub fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let delta = int_arg(&args[3])?;
    let n = write_hash(ctx, &args[1], true, |h| {
        let current = match h.get(&args[2][..]) {
            None => 0,
            Some(v) => parse_i64(v).ok_or(CommandError::HashNotInteger)?,
        };
        let next = current.checked_add(delta).ok_or(CommandError::Overflow)?;
        h.insert(
            owned(&args[2]),
            Bytes::copy_from_slice(itoa::Buffer::new().format(next).as_bytes()),
        );
        Ok(next)
    })?;
    ctx.int(n.unwrap_or(0))
}

/// `HINCRBYFLOAT`: see the command table for syntax.
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let delta = parse_f64(&args[3]).ok_or(CommandError::NotFloat)?;
    let text = write_hash(ctx, &args[1], true, |h| {
        let current = match h.get(&args[2][..]) {
            None => 0.0,
            Some(v) => parse_f64(v).ok_or(CommandError::HashNotFloat)?,
        };
        let next = current + delta;
        if !next.is_finite() {
            return Err(CommandError::NanOrInfinity);
        }
        let text = Bytes::from(format_f64(next));
        h.insert(owned(&args[2]), text.clone());
        Ok(text)
    })?;
    ctx.bulk(&text.unwrap_or_default())
}

/// `HSTRLEN`: see the command table for syntax.
pub fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let n = read_hash(ctx, &args[1], |h| h.get(&args[2][..]).map_or(0, Bytes::len))?.unwrap_or(0);
    ctx.int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The position of a field in `HSCAN` order: a hash with fixed keys, so the order does not
/// change while the hash is modified and a field present for the whole scan is returned.
fn scan_position(field: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    field.hash(&mut h);
    h.finish()
}

/// `HSCAN`: see the command table for syntax.
pub fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let cursor = parse_cursor(&args[2])?;
    let opts = parse_scan_options(&args[3..], false, true)?;
    let page = read_hash(ctx, &args[1], |h| {
        let mut candidates: Vec<(u64, &Bytes, &Bytes)> = h
            .iter()
            .map(|(f, v)| (scan_position(f), f, v))
            .filter(|(p, _, _)| *p >= cursor)
            .collect();
        candidates.sort_unstable_by_key(|c| c.0);
        let mut end = candidates.len().min(opts.count);
        // Keep fields sharing a position together so none is skipped.
        while end > 0 && end < candidates.len() && candidates[end].0 == candidates[end - 1].0 {
            end += 1;
        }
        let next = if end < candidates.len() {
            candidates[end].0
        } else {
            0
        };
        let items: Vec<(Bytes, Bytes)> = candidates[..end]
            .iter()
            .filter(|(_, f, _)| {
                opts.pattern
                    .as_ref()
                    .is_none_or(|p| glob_match(p, f, false))
            })
            .map(|(_, f, v)| ((*f).clone(), (*v).clone()))
            .collect();
        (next, items)
    })?;
    let (next, items) = page.unwrap_or((0, Vec::new()));
    ctx.array(2);
    encode::write_bulk(ctx.out, itoa::Buffer::new().format(next).as_bytes());
    let per = if opts.novalues { 1 } else { 2 };
    ctx.array(items.len() * per);
    for (f, v) in &items {
        encode::write_bulk(ctx.out, f);
        if !opts.novalues {
            encode::write_bulk(ctx.out, v);
        }
    }
    Ok(())
}

/// `HRANDFIELD`: see the command table for syntax.
pub fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let count = match args.get(2) {
        None => None,
        Some(c) => Some(int_arg(c)?),
    };
    let with_values = match args.get(3) {
        None => false,
        Some(a) if is(a, "withvalues") && args.len() == 4 => true,
        Some(_) => return Err(CommandError::Syntax),
    };
    if count.is_some_and(|c| c < -HRANDFIELD_MAX_REPEATS) {
        return Err(CommandError::OutOfRange);
    }
    let picked: Option<Vec<(Bytes, Bytes)>> = read_hash(ctx, &args[1], |h| {
        let mut rng = rand::thread_rng();
        let pair = |(f, v): (&Bytes, &Bytes)| (f.clone(), v.clone());
        match count {
            None => h.iter().choose(&mut rng).map(pair).into_iter().collect(),
            Some(c) if c >= 0 => {
                let n = usize::try_from(c).unwrap_or(usize::MAX).min(h.len());
                h.iter()
                    .choose_multiple(&mut rng, n)
                    .into_iter()
                    .map(pair)
                    .collect()
            }
            Some(c) => {
                let n = usize::try_from(c.unsigned_abs()).unwrap_or(usize::MAX);
                let all: Vec<(&Bytes, &Bytes)> = h.iter().collect();
                if all.is_empty() {
                    return Vec::new();
                }
                (0..n)
                    .map(|_| pair(all[rng.gen_range(0..all.len())]))
                    .collect()
            }
        }
    })?;
    if count.is_none() {
        return match picked.and_then(|p| p.into_iter().next()) {
            Some((f, _)) => ctx.bulk(&f),
            None => ctx.null(),
        };
    }
    let picked = picked.unwrap_or_default();
    if with_values && ctx.version() == ProtocolVersion::Resp3 {
        ctx.array(picked.len());
        for (f, v) in &picked {
            ctx.array(2);
            encode::write_bulk(ctx.out, f);
            encode::write_bulk(ctx.out, v);
        }
        return Ok(());
    }
    ctx.array(picked.len() * if with_values { 2 } else { 1 });
    for (f, v) in &picked {
        encode::write_bulk(ctx.out, f);
        if with_values {
            encode::write_bulk(ctx.out, v);
        }
    }
    Ok(())
}
