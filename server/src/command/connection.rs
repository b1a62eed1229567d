//! Connection commands: PING, ECHO, HELLO, AUTH, QUIT, RESET, SELECT.

use bytes::Bytes;
use cachalot_protocol::{encode, ProtocolVersion};

use super::client::valid_name;
use super::{int_arg, is, CommandResult, Ctx};
use crate::error::CommandError;

/// The server name `HELLO` reports: clients check it to pick Redis behaviour.
pub const HELLO_SERVER: &str = "redis";
/// The Redis version whose commands, replies and errors this node follows.
pub const REDIS_COMPAT_VERSION: &str = "7.2.4";

/// `PING`: see the command table for syntax.
pub fn ping(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    if args.len() <= 2 && super::pubsub::subscribed_ping(ctx, args) {
        return Ok(());
    }
    match args.len() {
        1 => ctx.simple(b"PONG"),
        2 => ctx.bulk(&args[1]),
        _ => Err(CommandError::WrongArity("ping".into())),
    }
}

/// `ECHO`: see the command table for syntax.
pub fn echo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    ctx.bulk(&args[1])
}

/// Checks credentials for the default user; `Ok` means they are right.
fn check_credentials(ctx: &Ctx<'_>, user: Option<&[u8]>, pass: &[u8]) -> Result<(), CommandError> {
    if let Some(u) = user {
        if u != b"default" {
            return Err(CommandError::WrongPass);
        }
    }
    match ctx.node.settings.requirepass.read().as_ref() {
        // The default user has no password: anything goes, as in Redis.
        None => Ok(()),
        Some(expected) if constant_time_eq(expected, pass) => Ok(()),
        Some(_) => Err(CommandError::WrongPass),
    }
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `AUTH`: see the command table for syntax.
pub fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let (user, pass) = match args.len() {
        2 => (None, &args[1]),
        3 => (Some(&args[1][..]), &args[2]),
        _ => return Err(CommandError::Syntax),
    };
    if user.is_none() && !ctx.node.requires_auth() {
        return Err(CommandError::Other("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".into()));
    }
    check_credentials(ctx, user, pass)?;
    ctx.session.authenticated = true;
    ctx.ok()
}

/// `HELLO`: see the command table for syntax.
pub fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    let mut version = ctx.session.version;
    let mut i = 1;
    if let Some(v) = args.get(1) {
        let v = int_arg(v).map_err(|_| {
            CommandError::Other("ERR Protocol version is not an integer or out of range".into())
        })?;
        version = match v {
            2 => ProtocolVersion::Resp2,
            3 => ProtocolVersion::Resp3,
            _ => {
                return Err(CommandError::Other(
                    "NOPROTO unsupported protocol version".into(),
                ))
            }
        };
        i = 2;
    }
    let mut creds: Option<(&Bytes, &Bytes)> = None;
    let mut name: Option<&Bytes> = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(&args[i], "auth") && more >= 2 {
            creds = Some((&args[i + 1], &args[i + 2]));
            i += 3;
        } else if is(&args[i], "setname") && more >= 1 {
            name = Some(&args[i + 1]);
            i += 2;
        } else {
            return Err(CommandError::Other(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    if let Some((user, pass)) = creds {
        check_credentials(ctx, Some(user), pass)?;
        ctx.session.authenticated = true;
    }
    if !ctx.session.authenticated {
        return Err(CommandError::Other("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into()));
    }
    if let Some(n) = name {
        if !valid_name(n) {
            return Err(CommandError::Other(
                "ERR Client names cannot contain spaces, newlines or special characters.".into(),
            ));
        }
        *ctx.session.handle.name.lock() = Bytes::copy_from_slice(n);
    }
    ctx.session.set_version(version);
    let proto = match version {
        ProtocolVersion::Resp2 => 2,
        ProtocolVersion::Resp3 => 3,
    };
    ctx.map(7);
    let out = &mut *ctx.out;
    encode::write_bulk(out, b"server");
    encode::write_bulk(out, HELLO_SERVER.as_bytes());
    encode::write_bulk(out, b"version");
    encode::write_bulk(out, REDIS_COMPAT_VERSION.as_bytes());
    encode::write_bulk(out, b"proto");
    encode::write_integer(out, proto);
    encode::write_bulk(out, b"id");
    encode::write_integer(
        out,
        i64::try_from(ctx.session.handle.id.0).unwrap_or(i64::MAX),
    );
    encode::write_bulk(out, b"mode");
    encode::write_bulk(out, b"standalone");
    encode::write_bulk(out, b"role");
    encode::write_bulk(out, b"master");
    encode::write_bulk(out, b"modules");
    encode::write_array_header(out, 0);
    Ok(())
}

/// `QUIT`: see the command table for syntax.
pub fn quit(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CommandResult {
    ctx.session.close_after_reply = true;
    ctx.ok()
}

/// `RESET`: see the command table for syntax.
pub fn reset(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CommandResult {
    // Redis's RESET also turns tracking off and drops every subscription.
    super::tracking::disable(ctx);
    super::pubsub::unsubscribe_all(ctx.node, ctx.session);
    ctx.session.set_version(ProtocolVersion::Resp2);
    ctx.session.authenticated = !ctx.node.requires_auth();
    *ctx.session.handle.name.lock() = Bytes::new();
    ctx.simple(b"RESET")
}

/// `SELECT`: see the command table for syntax.
pub fn select(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CommandResult {
    if int_arg(&args[1])? != 0 {
        if ctx.node.cluster.is_some() {
            return Err(CommandError::Other(
                "ERR SELECT is not allowed in cluster mode".into(),
            ));
        }
        return Err(CommandError::DbIndexOutOfRange);
    }
    ctx.ok()
}
