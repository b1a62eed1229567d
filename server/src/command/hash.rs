//! Hash commands.

use std::hash::{DefaultHasher, Hash, Hasher};

use bytes::Bytes;
use cachalot_protocol::{encode, ProtocolVersion};
use rand::seq::IteratorRandom;
use rand::Rng;

use super::keys::{parse_cursor, parse_scan_options, ScanOptions};
use super::{int_arg, is, key, owned, CommandResult, Ctx};
use crate::error::CommandError;
use crate::pattern::glob_match;
use crate::value::{parse_i64, Hash as HashObject, HashValue, LongDouble, Value};

/// Largest |count| `HRANDFIELD` accepts for a negative count (fields may repeat, so the
/// reply's size is the count itself): bounds the reply a single command can build.
const HRANDFIELD_MAX_REPEATS: i64 = 1 << 24;
/// Largest reply a negative-count `HRANDFIELD` may build (estimated from the hash's mean
/// field and value size): a short request must not make the node build gigabytes.
const HRANDFIELD_MAX_REPLY_BYTES: u64 = 512 * 1024 * 1024;
/// RESP framing per bulk string in the estimate (`$<len>\r\n` ... `\r\n`).
const BULK_FRAMING_BYTES: u64 = 16;

/// Runs `f` on the hash at `key`: `Ok(None)` if missing, WRONGTYPE for other types.
fn read_hash<R>(
    ctx: &Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&HashValue) -> R,
) -> Result<Option<R>, CommandError> {
    match ctx.node.store.get_with(key, |v| match v.as_hash() {
        Some(h) => Ok(f(&h.fields)),
        None => Err(CommandError::WrongType),
    }) {
        None => Ok(None),
        Some(r) => r.map(Some),
    }
}

/// Runs `f` on the hash at `key`, creating an empty one if missing. A hash left empty is
/// deleted, as Redis never keeps empty hashes. `f` gets the whole hash object so it can
/// write through [`HashObject::insert`], which tracks the encoding; the field count is
/// noted here.
fn write_hash<R>(
    ctx: &Ctx<'_>,
    name: &Bytes,
    create: bool,
    f: impl FnOnce(&mut HashObject) -> Result<R, CommandError>,
) -> Result<Option<R>, CommandError> {
    ctx.node.store.modify(key(name), |e| {
        if e.get().is_none() {
            if !create {
                return Ok(None);
            }
            e.insert(Value::empty_hash());
        }
        let Some(h) = e.get_mut().and_then(Value::as_hash_mut) else {
            return Err(CommandError::WrongType);
        };
        let r = f(h);
        h.note_len();
        if h.fields.is_empty() {
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
        if h.fields.contains_key(&args[2][..]) {
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
        let current = match h.fields.get(&args[2][..]) {
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

/// `HINCRBYFLOAT`: see the command table for syntax. Computed in emulated `long double`,
/// like Redis (see [`LongDouble`]).
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let delta = LongDouble::parse(&args[3]).ok_or(CommandError::NotFloat)?;
    if delta.is_infinite() {
        return Err(CommandError::Other("ERR value is NaN or Infinity".into()));
    }
    let text = write_hash(ctx, &args[1], true, |h| {
        let current = match h.fields.get(&args[2][..]) {
            None => LongDouble::from_i64(0),
            Some(v) => LongDouble::parse(v).ok_or(CommandError::HashNotFloat)?,
        };
        let next = current
            .checked_add(delta)
            .ok_or(CommandError::NanOrInfinity)?;
        let text = Bytes::from(next.to_redis_string());
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

/// `HSCAN`: see the command table for syntax. Like Redis, a hash small enough to be a
/// listpack is returned whole in one reply (cursor 0), whatever the cursor and `COUNT`.
pub fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let cursor = parse_cursor(&args[2])?;
    // Redis answers a missing key or another type before it reads the options, so an
    // option error waits until the key is found.
    let opts = parse_scan_options(&args[3..], false, true);
    let page = ctx
        .node
        .store
        .get_with(&args[1][..], |v| match v.as_hash() {
            Some(h) => opts
                .as_ref()
                .map(|o| scan_page(h, cursor, o))
                .map_err(Clone::clone),
            None => Err(CommandError::WrongType),
        });
    let novalues = opts.as_ref().is_ok_and(|o| o.novalues);
    let (next, items) = page.transpose()?.unwrap_or((0, Vec::new()));
    ctx.array(2);
    encode::write_bulk(ctx.out, itoa::Buffer::new().format(next).as_bytes());
    let per = if novalues { 1 } else { 2 };
    ctx.array(items.len() * per);
    for (f, v) in &items {
        encode::write_bulk(ctx.out, f);
        if !novalues {
            encode::write_bulk(ctx.out, v);
        }
    }
    Ok(())
}

/// One `HSCAN` page: the next cursor and the matching fields.
fn scan_page(h: &HashObject, cursor: u64, opts: &ScanOptions) -> (u64, Vec<(Bytes, Bytes)>) {
    let matches = |f: &Bytes| {
        opts.pattern
            .as_ref()
            .is_none_or(|p| glob_match(p, f, false))
    };
    if !h.hashtable {
        let items = h
            .fields
            .iter()
            .filter(|(f, _)| matches(f))
            .map(|(f, v)| (f.clone(), v.clone()))
            .collect();
        return (0, items);
    }
    let mut candidates: Vec<(u64, &Bytes, &Bytes)> = h
        .fields
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
    let items = candidates[..end]
        .iter()
        .filter(|(_, f, _)| matches(f))
        .map(|(_, f, v)| ((*f).clone(), (*v).clone()))
        .collect();
    (next, items)
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
    if count == Some(i64::MIN) {
        return Err(CommandError::Other(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    if with_values && count.is_some_and(|c| !(-i64::MAX / 2..=i64::MAX / 2).contains(&c)) {
        return Err(CommandError::OutOfRange);
    }
    let picked: Option<Result<Vec<(Bytes, Bytes)>, CommandError>> =
        read_hash(ctx, &args[1], |h| {
            let mut rng = rand::thread_rng();
            let pair = |(f, v): (&Bytes, &Bytes)| (f.clone(), v.clone());
            Ok(match count {
                None => h.iter().choose(&mut rng).map(pair).into_iter().collect(),
                Some(c) if c >= 0 => {
                    let n = usize::try_from(c).unwrap_or(usize::MAX).min(h.len());
                    h.iter()
                        .choose_multiple(&mut rng, n)
                        .into_iter()
                        .map(pair)
                        .collect()
                }
                Some(c) if c < -HRANDFIELD_MAX_REPEATS => return Err(CommandError::OutOfRange),
                Some(c) => {
                    let n = usize::try_from(c.unsigned_abs()).unwrap_or(usize::MAX);
                    if h.is_empty() {
                        return Ok(Vec::new());
                    }
                    let payload: u64 = h.iter().map(|(f, v)| (f.len() + v.len()) as u64).sum();
                    let per_pair = payload / h.len() as u64 + 2 * BULK_FRAMING_BYTES;
                    if per_pair.saturating_mul(c.unsigned_abs()) > HRANDFIELD_MAX_REPLY_BYTES {
                        return Err(CommandError::OutOfRange);
                    }
                    (0..n)
                        .filter_map(|_| h.get_index(rng.gen_range(0..h.len())))
                        .map(pair)
                        .collect()
                }
            })
        })?;
    let picked = picked.transpose()?;
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
