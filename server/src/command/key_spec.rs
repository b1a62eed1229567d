//! Where a command's keys are among its arguments, from the command table's key positions
//! (Redis's `first_key`/`last_key`/`step`, and a subcommand's own key position). Anything
//! that looks at a request's keys without running it (hot-key sampling) asks here.

use bytes::Bytes;

use super::is;
use super::table::CommandSpec;

/// The key arguments of a request for `spec` (`args[0]` is the command name): for a
/// container whose `args[1]` names a subcommand, that subcommand's key if it has one;
/// otherwise every `step`-th argument from `first_key` to `last_key` (negative: counted
/// from the end). Arguments too short to hold a key give none.
pub fn keys<'a>(spec: &CommandSpec, args: &'a [Bytes]) -> impl Iterator<Item = &'a Bytes> + Clone {
    span(spec, args)
        .and_then(|(first, last, step)| args.get(first..=last).map(|a| a.iter().step_by(step)))
        .into_iter()
        .flatten()
}

/// `(first, last, step)` of the key positions, all within `args`, or `None` for no keys.
fn span(spec: &CommandSpec, args: &[Bytes]) -> Option<(usize, usize, usize)> {
    let argc = args.len();
    let named_sub = args
        .get(1)
        .and_then(|name| spec.subcommands.iter().find(|s| is(name, s.name)));
    if let Some(sub) = named_sub {
        let at = usize::try_from(sub.key)
            .ok()
            .filter(|&k| k > 0 && k < argc)?;
        return Some((at, at, 1));
    }
    let first = usize::try_from(spec.first_key).ok().filter(|&k| k > 0)?;
    let last = match usize::try_from(spec.last_key) {
        Ok(last) => last.min(argc.checked_sub(1)?),
        // -1 is the last argument, -2 the one before it, ...
        Err(_) => argc.checked_sub(usize::try_from(spec.last_key.unsigned_abs()).ok()?)?,
    };
    let step = usize::try_from(spec.step).unwrap_or(1).max(1);
    (first <= last).then_some((first, last, step))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::lookup;

    fn keys_of(line: &str) -> Vec<String> {
        let args: Vec<Bytes> = line
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let (_, spec) = lookup(&args[0]).expect("known command");
        keys(spec, &args)
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn key_positions_follow_the_command_table() {
        let cases: &[(&str, &[&str])] = &[
            ("get a", &["a"]),
            ("set a 1 EX 10", &["a"]),
            ("mget a b c", &["a", "b", "c"]),
            ("mset a 1 b 2", &["a", "b"]),
            ("mset a 1 b", &["a", "b"]),
            ("rename a b", &["a", "b"]),
            ("hget h f", &["h"]),
            ("object encoding a", &["a"]),
            ("memory usage a", &["a"]),
            ("object help", &[]),
            ("config get maxmemory", &[]),
            ("ping", &[]),
            ("get", &[]),
        ];
        for (line, want) in cases {
            assert_eq!(keys_of(line), *want, "{line}");
        }
    }
}
