//! `CLIENT` subcommands.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::keys::{check_subcommand, help_reply};
use super::table::{Subcommand, COMMANDS, HELP_SUBCOMMAND};
use super::{int_arg, is, CommandResult, Ctx};
use crate::error::CommandError;
use crate::net::registry::{ClientHandle, TRACKING_BCAST, TRACKING_BROKEN_REDIRECT, TRACKING_ON};

/// `CLIENT` subcommands.
pub static SUBCOMMANDS: &[Subcommand] = &[
    Subcommand { name: "id", arity: 2, key: 0, summary: "Returns the unique client ID of the connection.", syntax: "" },
    Subcommand { name: "setname", arity: 3, key: 0, summary: "Sets the connection name.", syntax: "connection-name" },
    Subcommand { name: "getname", arity: 2, key: 0, summary: "Returns the name of the connection.", syntax: "" },
    Subcommand { name: "list", arity: -2, key: 0, summary: "Lists open connections.", syntax: "[TYPE NORMAL | MASTER | REPLICA | PUBSUB] [ID client-id [client-id ...]]" },
    Subcommand { name: "info", arity: 2, key: 0, summary: "Returns information about the connection.", syntax: "" },
    Subcommand { name: "kill", arity: -3, key: 0, summary: "Terminates open connections.", syntax: "ip:port | [ID client-id] [TYPE NORMAL | MASTER | REPLICA | PUBSUB] [USER username] [ADDR ip:port] [LADDR ip:port] [SKIPME YES | NO] [MAXAGE maxage]" },
    Subcommand { name: "setinfo", arity: 4, key: 0, summary: "Sets information specific to the client or connection.", syntax: "LIB-NAME libname | LIB-VER libver" },
    Subcommand { name: "tracking", arity: -3, key: 0, summary: "Controls server-assisted client-side caching for the connection.", syntax: "ON | OFF [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]" },
    Subcommand { name: "caching", arity: 3, key: 0, summary: "Instructs the server whether to track the keys in the next request.", syntax: "YES | NO" },
    Subcommand { name: "trackinginfo", arity: 2, key: 0, summary: "Returns information about server-assisted client-side caching for the connection.", syntax: "" },
    Subcommand { name: "getredir", arity: 2, key: 0, summary: "Returns the client ID to which the connection's tracking notifications are redirected.", syntax: "" },
    Subcommand { name: "pause", arity: -3, key: 0, summary: "Suspends commands processing.", syntax: "timeout [WRITE | ALL]" },
    Subcommand { name: "unpause", arity: 2, key: 0, summary: "Resumes processing commands from paused clients.", syntax: "" },
    HELP_SUBCOMMAND,
];

const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "    * MAXAGE <maxage>",
    "      Kill connections older than the specified age.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Return clients of specified IDs only.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "HELP",
    "    Prints this help.",
];

/// Whether a client name or library attribute is acceptable (printable, no spaces), as
/// Redis requires so that `CLIENT LIST` stays parseable.
pub fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

/// `CLIENT`: see the command table for syntax.
pub fn client(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    check_subcommand(args, SUBCOMMANDS, "client")?;
    let sub = &args[1];
    let handle = Arc::clone(&ctx.session.handle);
    if is(sub, "id") {
        ctx.int(i64::try_from(handle.id.0).unwrap_or(i64::MAX))
    } else if is(sub, "setname") {
        if !valid_name(&args[2]) {
            return Err(CommandError::Other(
                "ERR Client names cannot contain spaces, newlines or special characters.".into(),
            ));
        }
        *handle.name.lock() = Bytes::copy_from_slice(&args[2]);
        ctx.ok()
    } else if is(sub, "getname") {
        let name = handle.name.lock().clone();
        if name.is_empty() {
            ctx.null()
        } else {
            ctx.bulk(&name)
        }
    } else if is(sub, "list") {
        list(ctx, &args[2..])
    } else if is(sub, "info") {
        let mut line = describe(&handle);
        line.push('\n');
        ctx.verbatim(line.as_bytes())
    } else if is(sub, "kill") {
        kill(ctx, &args[2..])
    } else if is(sub, "pause") {
        let timeout = int_arg(&args[2]).map_err(|_| {
            CommandError::Other("ERR timeout is not an integer or out of range".into())
        })?;
        let timeout = u64::try_from(timeout)
            .map_err(|_| CommandError::Other("ERR timeout is negative".into()))?;
        let writes_only = match args.get(3) {
            None => false,
            Some(a) if is(a, "all") && args.len() == 4 => false,
            Some(a) if is(a, "write") && args.len() == 4 => true,
            Some(_) => return Err(CommandError::Syntax),
        };
        ctx.node
            .pause
            .pause(std::time::Duration::from_millis(timeout), writes_only);
        if let Some(cluster) = ctx.node.cluster.as_ref().filter(|c| c.is_dynamic()) {
            // Every keyed command holds its slot's stripe while it runs: once each was
            // free, every write that started before the pause has finished (and been
            // recorded), so the offset read next is final.
            cluster.drain_stripes();
        }
        ctx.ok()
    } else if is(sub, "unpause") {
        ctx.node.pause.unpause();
        ctx.ok()
    } else if is(sub, "setinfo") {
        setinfo(ctx, &args[2], &args[3])
    } else if is(sub, "tracking") {
        super::tracking::tracking(ctx, args)
    } else if is(sub, "caching") {
        super::tracking::caching(ctx, args)
    } else if is(sub, "trackinginfo") {
        super::tracking::trackinginfo(ctx)
    } else if is(sub, "getredir") {
        super::tracking::getredir(ctx)
    } else {
        help_reply(ctx, HELP)
    }
}

fn list(ctx: &mut Ctx<'_>, opts: &[Bytes]) -> CommandResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 0;
    while i < opts.len() {
        if is(&opts[i], "type") && i + 1 < opts.len() {
            let t = &opts[i + 1];
            let kind = client_type(t)?;
            let matching = ctx
                .node
                .clients
                .snapshot()
                .iter()
                .filter(|c| kind.matches(c))
                .map(|c| c.id.0)
                .collect();
            ids = Some(matching);
            i += 2;
        } else if is(&opts[i], "id") && i + 1 < opts.len() {
            let mut v = Vec::new();
            for a in &opts[i + 1..] {
                let id = int_arg(a)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| CommandError::Other("ERR Invalid client ID".into()))?;
                v.push(id.unsigned_abs());
            }
            ids = Some(v);
            i = opts.len();
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let mut text = String::new();
    for c in ctx.node.clients.snapshot() {
        if ids.as_ref().is_none_or(|ids| ids.contains(&c.id.0)) {
            text.push_str(&describe(&c));
            text.push('\n');
        }
    }
    ctx.verbatim(text.as_bytes())
}

/// One `CLIENT LIST` line in Redis 7's field order.
fn describe(c: &ClientHandle) -> String {
    let name = String::from_utf8_lossy(&c.name.lock()).into_owned();
    let (lib_name, lib_ver) = {
        let lib = c.lib.lock();
        (
            String::from_utf8_lossy(&lib.0).into_owned(),
            String::from_utf8_lossy(&lib.1).into_owned(),
        )
    };
    let spec = COMMANDS.get(usize::from(c.last_command.load(Ordering::Relaxed)));
    let sub = spec.and_then(|s| {
        s.subcommands
            .get(usize::from(c.last_subcommand.load(Ordering::Relaxed)))
    });
    let cmd = match (spec, sub) {
        (Some(spec), Some(sub)) => format!("{}|{}", spec.name, sub.name),
        (Some(spec), None) => spec.name.to_owned(),
        (None, _) => "NULL".to_owned(),
    };
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db=0 sub={} psub={} ssub=0 \
         multi=-1 watch=0 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 \
         omem=0 tot-mem=0 events=r cmd={} user=default redir={} resp={} lib-name={} lib-ver={}",
        c.id.0,
        c.addr,
        c.laddr,
        name,
        c.created.elapsed().as_secs(),
        c.idle_secs(),
        flags_of(c),
        c.channels.load(Ordering::Relaxed),
        c.patterns.load(Ordering::Relaxed),
        c.query_buffer.load(Ordering::Relaxed),
        cmd,
        c.redirect.load(Ordering::Relaxed),
        c.resp.load(Ordering::Relaxed),
        lib_name,
        lib_ver,
    );
    s
}

/// A `TYPE` of `CLIENT LIST` / `CLIENT KILL`.
#[derive(Clone, Copy)]
enum ClientType {
    Normal,
    Replica,
    Master,
    Pubsub,
}

impl ClientType {
    fn matches(self, c: &ClientHandle) -> bool {
        let replica = c.replica.load(Ordering::Relaxed);
        match self {
            ClientType::Normal => !replica && !c.is_subscribed(),
            ClientType::Replica => replica,
            // The link to this node's own primary is not a client connection.
            ClientType::Master => false,
            ClientType::Pubsub => c.is_subscribed(),
        }
    }
}

fn client_type(t: &[u8]) -> Result<ClientType, CommandError> {
    if is(t, "normal") {
        Ok(ClientType::Normal)
    } else if is(t, "replica") || is(t, "slave") {
        Ok(ClientType::Replica)
    } else if is(t, "master") {
        Ok(ClientType::Master)
    } else if is(t, "pubsub") {
        Ok(ClientType::Pubsub)
    } else {
        Err(CommandError::Other(format!(
            "ERR Unknown client type '{}'",
            String::from_utf8_lossy(t)
        )))
    }
}

/// `flags=` of `CLIENT LIST`, in Redis's order: `P` subscribed, `t` tracking, `R` broken
/// redirect, `B` broadcasting; `N` for none.
fn flags_of(c: &ClientHandle) -> String {
    let tracking = c.tracking.load(Ordering::Relaxed);
    let mut f = String::new();
    if c.replica.load(Ordering::Relaxed) {
        f.push('S');
    }
    if c.is_subscribed() {
        f.push('P');
    }
    for (bit, letter) in [
        (TRACKING_ON, 't'),
        (TRACKING_BROKEN_REDIRECT, 'R'),
        (TRACKING_BCAST, 'B'),
    ] {
        if tracking & bit != 0 {
            f.push(letter);
        }
    }
    if f.is_empty() {
        f.push('N');
    }
    f
}

/// One `CLIENT KILL` filter: whether a client matches.
type ClientFilter = Box<dyn Fn(&ClientHandle) -> bool>;

fn kill(ctx: &mut Ctx<'_>, opts: &[Bytes]) -> CommandResult {
    let me = ctx.session.handle.id;
    let clients = ctx.node.clients.snapshot();
    if opts.len() == 1 {
        // Old form: CLIENT KILL ip:port.
        let addr = String::from_utf8_lossy(&opts[0]);
        let found = clients
            .iter()
            .find(|c| !c.kill.is_cancelled() && c.addr.to_string() == addr);
        let Some(c) = found else {
            return Err(CommandError::Other("ERR No such client".into()));
        };
        c.kill.cancel();
        if c.id == me {
            ctx.session.close_after_reply = true;
        }
        return ctx.ok();
    }
    if opts.len() % 2 != 0 {
        return Err(CommandError::Syntax);
    }
    let mut skipme = true;
    let mut filters: Vec<ClientFilter> = Vec::new();
    for pair in opts.chunks_exact(2) {
        let (opt, val) = (&pair[0], pair[1].clone());
        if is(opt, "id") {
            let id = int_arg(&val).ok().filter(|n| *n > 0).ok_or_else(|| {
                CommandError::Other("ERR client-id should be greater than 0".into())
            })?;
            filters.push(Box::new(move |c| c.id.0 == id.unsigned_abs()));
        } else if is(opt, "addr") {
            filters.push(Box::new(move |c| c.addr.to_string().as_bytes() == &val[..]));
        } else if is(opt, "laddr") {
            filters.push(Box::new(move |c| {
                c.laddr.to_string().as_bytes() == &val[..]
            }));
        } else if is(opt, "type") {
            let kind = client_type(&val)?;
            filters.push(Box::new(move |c| kind.matches(c)));
        } else if is(opt, "user") {
            filters.push(Box::new(move |_| &val[..] == b"default"));
        } else if is(opt, "skipme") {
            skipme = if is(&val, "yes") {
                true
            } else if is(&val, "no") {
                false
            } else {
                return Err(CommandError::Syntax);
            };
        } else if is(opt, "maxage") {
            let age = int_arg(&val)?;
            filters.push(Box::new(move |c| {
                i64::try_from(c.created.elapsed().as_secs()).unwrap_or(i64::MAX) >= age
            }));
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let mut killed = 0;
    for c in &clients {
        // A client already killed is on its way out; Redis no longer counts it.
        let gone = c.kill.is_cancelled();
        if gone || (skipme && c.id == me) || !filters.iter().all(|f| f(c)) {
            continue;
        }
        c.kill.cancel();
        if c.id == me {
            ctx.session.close_after_reply = true;
        }
        killed += 1;
    }
    ctx.int(killed)
}

fn setinfo(ctx: &mut Ctx<'_>, attr: &Bytes, value: &Bytes) -> CommandResult {
    let lib_name = is(attr, "lib-name");
    if !lib_name && !is(attr, "lib-ver") {
        return Err(CommandError::Other(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        )));
    }
    if !valid_name(value) {
        let what = if lib_name { "lib-name" } else { "lib-ver" };
        return Err(CommandError::Other(format!(
            "ERR {what} cannot contain spaces, newlines or special characters."
        )));
    }
    let mut lib = ctx.session.handle.lib.lock();
    if lib_name {
        lib.0 = Bytes::copy_from_slice(value);
    } else {
        lib.1 = Bytes::copy_from_slice(value);
    }
    drop(lib);
    ctx.ok()
}
