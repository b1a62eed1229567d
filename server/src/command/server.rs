//! Server commands: CONFIG, TIME, SLOWLOG, SHUTDOWN.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use cachalot_protocol::encode;
use cachalot_store::Policy;

use super::keys::{check_subcommand, help_reply};
use super::table::{Subcommand, HELP_SUBCOMMAND};
use super::{int_arg, is, CommandResult, Ctx};
use crate::config::{parse_memory, parse_yes_no, valid_hotkeys_min_share, valid_hotkeys_sample};
use crate::error::CommandError;
use crate::node::{unix_millis, Node};
use crate::pattern::glob_match;

/// Largest `timeout` Redis accepts (`INT_MAX` seconds).
const MAX_TIMEOUT_SECS: u64 = i32::MAX as u64;
/// Entries `SLOWLOG GET` returns without a count, as in Redis.
const SLOWLOG_DEFAULT_GET: usize = 10;

/// `CONFIG` subcommands.
pub static CONFIG_SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "get",
        arity: -3,
        key: 0,
        summary: "Returns the effective values of configuration parameters.",
        syntax: "parameter [parameter ...]",
    },
    Subcommand {
        name: "set",
        arity: -4,
        key: 0,
        summary: "Sets configuration parameters in-flight.",
        syntax: "parameter value [parameter value ...]",
    },
    Subcommand {
        name: "resetstat",
        arity: 2,
        key: 0,
        summary: "Resets the server's statistics.",
        syntax: "",
    },
    HELP_SUBCOMMAND,
];

const CONFIG_HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "HELP",
    "    Prints this help.",
];

/// Checks a value for a parameter (`apply == false`) or checks and applies it; the error
/// is Redis's reason text.
type Setter = fn(&Node, &str, bool) -> Result<(), &'static str>;

/// One configuration parameter as `CONFIG GET`/`SET` see it.
struct Param {
    name: &'static str,
    get: fn(&Node) -> String,
    /// Checks and applies a value; `None` for parameters fixed at startup.
    set: Option<Setter>,
}

fn set_u64(
    v: &str,
    apply: bool,
    target: &std::sync::atomic::AtomicU64,
) -> Result<(), &'static str> {
    let n: u64 = v
        .parse()
        .map_err(|_| "argument couldn't be parsed into an integer")?;
    if apply {
        target.store(n, Ordering::Relaxed);
    }
    Ok(())
}

static PARAMS: &[Param] = &[
    Param {
        name: "maxmemory",
        get: |n| n.repl.maxmemory(&n.store).unwrap_or(0).to_string(),
        set: Some(|n, v, apply| {
            let bytes = parse_memory(v).ok_or("argument must be a memory value")?;
            if apply {
                n.repl.set_maxmemory(&n.store, (bytes > 0).then_some(bytes));
            }
            Ok(())
        }),
    },
    Param {
        name: "maxmemory-policy",
        get: |n| n.store.policy().redis_name().to_string(),
        set: Some(|n, v, apply| {
            let p = Policy::from_redis_name(v).ok_or("argument(s) must be one of the following: volatile-lru, allkeys-lru, volatile-lfu, allkeys-lfu, volatile-random, allkeys-random, volatile-ttl, noeviction")?;
            if apply {
                n.store.set_policy(p);
            }
            Ok(())
        }),
    },
    Param {
        name: "maxclients",
        get: |n| n.settings.maxclients.load(Ordering::Relaxed).to_string(),
        set: Some(|n, v, apply| {
            let m: u32 = v
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
            if m == 0 {
                return Err("argument must be between 1 and 4294967295 inclusive");
            }
            if apply {
                n.settings.maxclients.store(m, Ordering::Relaxed);
            }
            Ok(())
        }),
    },
    Param {
        name: "timeout",
        get: |n| n.settings.timeout_secs.load(Ordering::Relaxed).to_string(),
        set: Some(|n, v, apply| {
            let secs: i64 = v
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
            let secs = u64::try_from(secs)
                .ok()
                .filter(|&s| s <= MAX_TIMEOUT_SECS)
                .ok_or("argument must be between 0 and 2147483647 inclusive")?;
            if apply {
                n.settings.timeout_secs.store(secs, Ordering::Relaxed);
            }
            Ok(())
        }),
    },
    Param {
        name: "requirepass",
        get: |n| {
            n.settings
                .requirepass
                .read()
                .as_ref()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default()
        },
        set: Some(|n, v, apply| {
            if apply {
                *n.settings.requirepass.write() =
                    (!v.is_empty()).then(|| Bytes::copy_from_slice(v.as_bytes()));
            }
            Ok(())
        }),
    },
    Param {
        name: "proto-max-bulk-len",
        get: |n| {
            n.settings
                .proto_max_bulk_len
                .load(Ordering::Relaxed)
                .to_string()
        },
        set: Some(|n, v, apply| {
            let b = parse_memory(v).ok_or("argument must be a memory value")?;
            if b < 1024 {
                return Err("argument must be a memory value of at least 1kb");
            }
            if apply {
                n.settings.proto_max_bulk_len.store(b, Ordering::Relaxed);
            }
            Ok(())
        }),
    },
    Param {
        name: "slowlog-log-slower-than",
        get: |n| {
            n.settings
                .slowlog_slower_than
                .load(Ordering::Relaxed)
                .to_string()
        },
        set: Some(|n, v, apply| {
            let us: i64 = v
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
            if apply {
                n.settings.slowlog_slower_than.store(us, Ordering::Relaxed);
            }
            Ok(())
        }),
    },
    Param {
        name: "slowlog-max-len",
        get: |n| {
            n.settings
                .slowlog_max_len
                .load(Ordering::Relaxed)
                .to_string()
        },
        set: Some(|n, v, apply| set_u64(v, apply, &n.settings.slowlog_max_len)),
    },
    Param {
        name: "tracking-table-max-keys",
        get: |n| n.tracking.max_keys.load(Ordering::Relaxed).to_string(),
        set: Some(|n, v, apply| {
            let keys: i64 = v
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
            let keys = u64::try_from(keys)
                .map_err(|_| "argument must be between 0 and 9223372036854775807 inclusive")?;
            if apply {
                n.tracking.max_keys.store(keys, Ordering::Relaxed);
            }
            Ok(())
        }),
    },
    Param {
        name: "lfu-log-factor",
        get: |n| n.config.lfu_log_factor.to_string(),
        set: None,
    },
    Param {
        name: "lfu-decay-time",
        get: |n| n.config.lfu_decay_time.to_string(),
        set: None,
    },
    Param {
        name: "port",
        get: |n| n.port().to_string(),
        set: None,
    },
    Param {
        name: "bind",
        get: |n| n.config.bind.to_string(),
        set: None,
    },
    Param {
        name: "hz",
        get: |n| n.config.hz.to_string(),
        set: None,
    },
    Param {
        name: "databases",
        get: |_| "1".into(),
        set: None,
    },
    // Cachalot keeps nothing on disk; tools such as redis-benchmark read these two.
    Param {
        name: "save",
        get: |_| String::new(),
        set: None,
    },
    Param {
        name: "cluster-enabled",
        get: |n| if n.cluster.is_some() { "yes" } else { "no" }.into(),
        set: None,
    },
    Param {
        name: "appendonly",
        get: |_| "no".into(),
        set: None,
    },
    Param {
        name: "hotkeys-enabled",
        get: |n| if n.hotkeys.enabled() { "yes" } else { "no" }.into(),
        set: Some(|n, v, apply| {
            let on = parse_yes_no(v).ok_or("argument must be 'yes' or 'no'")?;
            if apply {
                n.hotkeys.set_enabled(on);
            }
            Ok(())
        }),
    },
    Param {
        name: "hotkeys-min-share",
        get: |n| n.hotkeys.min_share().to_string(),
        set: Some(|n, v, apply| {
            let share = v
                .parse::<f64>()
                .ok()
                .filter(|&s| valid_hotkeys_min_share(s))
                .ok_or("argument must be a number between 0 and 1")?;
            if apply {
                n.hotkeys.set_min_share(share);
            }
            Ok(())
        }),
    },
    Param {
        name: "hotkeys-min-rate",
        get: |n| n.hotkeys.min_rate().to_string(),
        set: Some(|n, v, apply| {
            let rate: u64 = v
                .parse()
                .map_err(|_| "argument couldn't be parsed into an integer")?;
            if apply {
                n.hotkeys.set_min_rate(rate);
            }
            Ok(())
        }),
    },
    Param {
        name: "hotkeys-top-k",
        get: |n| n.hotkeys.top_k().to_string(),
        set: None,
    },
    Param {
        name: "hotkeys-sample",
        get: |n| n.hotkeys.sample_interval().to_string(),
        set: Some(|n, v, apply| {
            let every = v
                .parse::<u32>()
                .ok()
                .filter(|&s| valid_hotkeys_sample(s))
                .ok_or("argument must be between 1 and 1000000 inclusive")?;
            if apply {
                n.hotkeys.set_sample_interval(every);
            }
            Ok(())
        }),
    },
];

/// `CONFIG`: see the command table for syntax.
pub fn config(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    check_subcommand(args, CONFIG_SUBCOMMANDS, "config")?;
    let sub = &args[1];
    if is(sub, "get") {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for p in PARAMS {
            if args[2..]
                .iter()
                .any(|pat| glob_match(pat, p.name.as_bytes(), true))
            {
                pairs.push((p.name, (p.get)(ctx.node)));
            }
        }
        ctx.map(pairs.len());
        for (name, value) in &pairs {
            encode::write_bulk(ctx.out, name.as_bytes());
            encode::write_bulk(ctx.out, value.as_bytes());
        }
        Ok(())
    } else if is(sub, "set") {
        config_set(ctx, &args[2..])
    } else if is(sub, "resetstat") {
        let node = ctx.node;
        *node.stats_baseline.lock() = node.store.stats();
        for counter in [
            &node.stats.error_replies,
            &node.stats.protocol_errors,
            &node.stats.rejected_connections,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        node.slowlog.reset();
        ctx.ok()
    } else {
        help_reply(ctx, CONFIG_HELP)
    }
}

/// Validates every pair first, then applies them all, so a bad value changes nothing
/// (Redis 7's atomic multi-parameter `CONFIG SET`).
fn config_set(ctx: &mut Ctx<'_>, pairs: &[Bytes]) -> CommandResult {
    if pairs.len() % 2 != 0 {
        // The table's arity caught fewer than one pair; a dangling name is a syntax error.
        return Err(CommandError::Syntax);
    }
    let mut plan = Vec::with_capacity(pairs.len() / 2);
    let mut seen: Vec<&str> = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks_exact(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        let Some(param) = PARAMS.iter().find(|p| p.name == name) else {
            return Err(CommandError::Other(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
        };
        if seen.contains(&param.name) {
            return Err(CommandError::Other(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
            )));
        }
        seen.push(param.name);
        let Some(set) = param.set else {
            return Err(CommandError::Other(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
            )));
        };
        set(ctx.node, &value, false).map_err(|reason| {
            CommandError::Other(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
            ))
        })?;
        plan.push((set, value));
    }
    for (set, value) in plan {
        // Checked above; applying cannot fail for a value that validated.
        let _ = set(ctx.node, &value, true);
    }
    ctx.ok()
}

/// `TIME`: see the command table for syntax.
pub fn time(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CommandResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.array(2);
    encode::write_bulk(
        ctx.out,
        itoa::Buffer::new().format(now.as_secs()).as_bytes(),
    );
    encode::write_bulk(
        ctx.out,
        itoa::Buffer::new().format(now.subsec_micros()).as_bytes(),
    );
    Ok(())
}

/// `SLOWLOG` subcommands.
pub static SLOWLOG_SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "get",
        arity: -2,
        key: 0,
        summary: "Returns the slow log's entries.",
        syntax: "[count]",
    },
    Subcommand {
        name: "len",
        arity: 2,
        key: 0,
        summary: "Returns the number of entries in the slow log.",
        syntax: "",
    },
    Subcommand {
        name: "reset",
        arity: 2,
        key: 0,
        summary: "Clears all entries from the slow log.",
        syntax: "",
    },
    Subcommand {
        name: "help",
        arity: 2,
        key: 0,
        summary: "Show helpful text about the different subcommands",
        syntax: "",
    },
];

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// `SLOWLOG`: see the command table for syntax.
pub fn slowlog(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    check_subcommand(args, SLOWLOG_SUBCOMMANDS, "slowlog")?;
    let sub = &args[1];
    if is(sub, "len") {
        return ctx.int(i64::try_from(ctx.node.slowlog.len()).unwrap_or(i64::MAX));
    }
    if is(sub, "reset") {
        ctx.node.slowlog.reset();
        return ctx.ok();
    }
    if is(sub, "help") {
        return help_reply(ctx, SLOWLOG_HELP);
    }
    if args.len() > 3 {
        return Err(CommandError::Syntax);
    }
    let count = match args.get(2) {
        None => Some(SLOWLOG_DEFAULT_GET),
        Some(c) => match int_arg(c) {
            Ok(-1) => None,
            Ok(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => {
                return Err(CommandError::Other(
                    "ERR count should be greater than or equal to -1".into(),
                ))
            }
        },
    };
    let entries = ctx.node.slowlog.get(count);
    ctx.array(entries.len());
    for e in entries {
        ctx.array(6);
        encode::write_integer(ctx.out, i64::try_from(e.id).unwrap_or(i64::MAX));
        encode::write_integer(ctx.out, i64::try_from(e.timestamp).unwrap_or(i64::MAX));
        encode::write_integer(
            ctx.out,
            i64::try_from(e.duration_micros).unwrap_or(i64::MAX),
        );
        ctx.bulk_array(e.args.iter())?;
        encode::write_bulk(ctx.out, e.addr.as_bytes());
        encode::write_bulk(ctx.out, &e.name);
    }
    Ok(())
}

/// `SHUTDOWN`: see the command table for syntax.
pub fn shutdown(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    for a in &args[1..] {
        if is(a, "abort") {
            return Err(CommandError::Other("ERR No shutdown in progress.".into()));
        } else if is(a, "save") {
            return Err(CommandError::Other(
                "ERR SAVE is not supported: Cachalot keeps no data on disk (use NOSAVE)".into(),
            ));
        } else if !(is(a, "nosave") || is(a, "now") || is(a, "force")) {
            return Err(CommandError::Syntax);
        }
    }
    tracing::warn!(
        at_unix_ms = unix_millis(),
        "user requested shutdown; finishing in-flight commands"
    );
    ctx.node.shutdown.cancel();
    // Like Redis, a successful SHUTDOWN closes the connection without a reply.
    ctx.session.close_after_reply = true;
    Ok(())
}
