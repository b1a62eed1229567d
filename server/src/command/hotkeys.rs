//! `HOTKEYS [COUNT n]`: Cachalot's own command (Redis has none) listing the keys the
//! hot-key detector ([`crate::hotkeys`]) finds hot now, hottest first.

use bytes::Bytes;
use cachalot_protocol::encode;

use super::{int_arg, is, CommandResult, Ctx};
use crate::error::CommandError;

/// `HOTKEYS [COUNT n]`: an array of `[key, estimated ops/s]` pairs, hottest first; at most
/// `n` (default: every hot key, at most `hotkeys-top-k`).
///
/// # Errors
/// `ERR syntax error` for other arguments, `ERR value is not an integer or out of range`
/// for a count that is not an integer, and `ERR value is out of range, must be positive`
/// for a count of zero or less.
pub fn hotkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let limit = match &args[1..] {
        [] => usize::MAX,
        [word, n] if is(word, "count") => {
            let n = int_arg(n)?;
            if n <= 0 {
                return Err(CommandError::NotPositive);
            }
            usize::try_from(n).unwrap_or(usize::MAX)
        }
        _ => return Err(CommandError::Syntax),
    };
    let hot = ctx.node.hotkeys.hot(limit);
    ctx.array(hot.len());
    for k in &hot {
        ctx.array(2);
        encode::write_bulk(ctx.out, &k.key);
        encode::write_integer(ctx.out, i64::try_from(k.rate).unwrap_or(i64::MAX));
    }
    Ok(())
}
