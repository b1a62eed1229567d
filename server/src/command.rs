//! The command table and dispatch. From a command name to its handler is one lookup in
//! [`table`] and one file per family: `string`, `keys`, `hash`, `connection`, `server`, `cluster`.

pub mod client;
pub mod cluster;
pub mod connection;
pub mod hash;
pub mod hotkeys;
pub mod info;
pub mod introspect;
pub mod key_spec;
pub mod keys;
pub mod pubsub;
pub mod replication;
pub mod server;
pub mod string;
pub mod table;
pub mod tracking;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use cachalot_protocol::encode;
use cachalot_protocol::ProtocolVersion;

use crate::error::CommandError;
use crate::key::Key;
use crate::net::session::Session;
use crate::node::Node;
use table::{CommandSpec, Flags, COMMANDS};

/// What a handler returns; `Ok` means it wrote its reply into the context.
pub type CommandResult = Result<(), CommandError>;

/// A command's implementation. `args[0]` is the command name as sent.
pub type Handler = fn(&mut Ctx<'_>, &[Bytes]) -> CommandResult;

/// Longest command name looked up (longer ones are unknown).
const MAX_COMMAND_NAME_BYTES: usize = 32;
/// Bytes of each argument quoted in an unknown-command error, as Redis does.
const UNKNOWN_COMMAND_ARGS_BYTES: usize = 128;

/// What a handler may touch: the node, its own session, and the reply buffer.
pub struct Ctx<'a> {
    /// Shared node state.
    pub node: &'a Arc<Node>,
    /// This connection's state.
    pub session: &'a mut Session,
    /// Replies queued for this connection.
    pub out: &'a mut BytesMut,
}

impl Ctx<'_> {
    /// The connection's protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.session.version
    }
    /// `+OK`.
    pub fn ok(&mut self) -> CommandResult {
        encode::write_ok(self.out);
        Ok(())
    }
    /// A simple string.
    pub fn simple(&mut self, s: &[u8]) -> CommandResult {
        encode::write_simple(self.out, s);
        Ok(())
    }
    /// A bulk string.
    pub fn bulk(&mut self, b: &[u8]) -> CommandResult {
        encode::write_bulk(self.out, b);
        Ok(())
    }
    /// A null bulk string (RESP3 null).
    pub fn null(&mut self) -> CommandResult {
        encode::write_null(self.out, self.session.version);
        Ok(())
    }
    /// A null array (RESP3 null).
    pub fn null_array(&mut self) -> CommandResult {
        encode::write_null_array(self.out, self.session.version);
        Ok(())
    }
    /// An integer.
    pub fn int(&mut self, n: i64) -> CommandResult {
        encode::write_integer(self.out, n);
        Ok(())
    }
    /// An array header; the caller writes `len` elements next.
    pub fn array(&mut self, len: usize) {
        encode::write_array_header(self.out, len);
    }
    /// A map header (an array of 2·len in RESP2); the caller writes `len` pairs next.
    pub fn map(&mut self, len: usize) {
        encode::write_map_header(self.out, len, self.session.version);
    }
    /// A set header (an array in RESP2).
    pub fn set(&mut self, len: usize) {
        encode::write_set_header(self.out, len, self.session.version);
    }
    /// A double (a bulk string in RESP2).
    pub fn double(&mut self, v: f64) -> CommandResult {
        encode::write_double(self.out, v, self.session.version);
        Ok(())
    }
    /// A verbatim text (a bulk string in RESP2), as `INFO` and `CLIENT LIST` reply.
    pub fn verbatim(&mut self, text: &[u8]) -> CommandResult {
        encode::write_verbatim(self.out, b"txt", text, self.session.version);
        Ok(())
    }
    /// An array of bulk strings.
    pub fn bulk_array<I, B>(&mut self, items: I) -> CommandResult
    where
        I: ExactSizeIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        self.array(items.len());
        for item in items {
            encode::write_bulk(self.out, item.as_ref());
        }
        Ok(())
    }
    /// An error reply built from an error value.
    pub fn error(&mut self, e: &CommandError) {
        encode::write_error(self.out, e.to_string().as_bytes());
    }
}

fn lookup_map() -> &'static HashMap<&'static str, (u16, &'static CommandSpec)> {
    static MAP: OnceLock<HashMap<&'static str, (u16, &'static CommandSpec)>> = OnceLock::new();
    MAP.get_or_init(|| {
        COMMANDS
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name, (u16::try_from(i).unwrap_or(u16::MAX), c)))
            .collect()
    })
}

/// Finds a command by name, ignoring ASCII case, with no allocation.
pub fn lookup(name: &[u8]) -> Option<(u16, &'static CommandSpec)> {
    if name.len() > MAX_COMMAND_NAME_BYTES {
        return None;
    }
    let mut buf = [0u8; MAX_COMMAND_NAME_BYTES];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let s = std::str::from_utf8(lower).ok()?;
    lookup_map().get(s).copied()
}

/// The slot of a request's first key, if the command takes keys.
pub fn first_key_slot(args: &[Bytes]) -> Option<cachalot_protocol::SlotId> {
    let (_, spec) = lookup(args.first()?)?;
    if !spec.arity_ok(args.len()) {
        return None;
    }
    key_spec::keys(spec, args)
        .next()
        .map(|k| cachalot_protocol::key_slot(k))
}

/// Runs one command and queues its reply.
pub fn dispatch(node: &Arc<Node>, session: &mut Session, args: Vec<Bytes>, out: &mut BytesMut) {
    let Some(name) = args.first() else { return };
    let found = lookup(name);
    let handle = &session.handle;
    handle.commands.fetch_add(1, Ordering::Relaxed);
    if let Some((index, spec)) = found {
        handle.last_command.store(index, Ordering::Relaxed);
        handle
            .last_subcommand
            .store(subcommand_index(spec, &args), Ordering::Relaxed);
    }
    let mut ctx = Ctx { node, session, out };
    let Some((_, spec)) = found else {
        let e = unknown_command(&args);
        node.stats.error_replies.fetch_add(1, Ordering::Relaxed);
        ctx.error(&e);
        return;
    };
    // Redis's order: unknown command, then arity, then authentication, then cluster
    // redirection, then memory.
    if !spec.arity_ok(args.len()) {
        node.stats.error_replies.fetch_add(1, Ordering::Relaxed);
        ctx.error(&CommandError::WrongArity(spec.name.to_string()));
        return;
    }
    if !ctx.session.authenticated && !spec.flags.contains(Flags::NO_AUTH) {
        // A password removed at runtime (`CONFIG SET requirepass ""`) frees everyone.
        if node.requires_auth() {
            node.stats.error_replies.fetch_add(1, Ordering::Relaxed);
            ctx.error(&CommandError::NoAuth);
            return;
        }
        ctx.session.authenticated = true;
    }
    // Held while the command runs, so a slot migration can wait for it to finish.
    let mut _slot_guard = None;
    if let Some(c) = &node.cluster {
        let asking = std::mem::take(&mut ctx.session.asking);
        let replica_read = ctx.session.readonly && spec.flags.contains(Flags::READONLY);
        match cluster::route(node, c, asking, replica_read, spec, &args) {
            Ok(guard) => _slot_guard = guard,
            Err(e) => {
                node.stats.error_replies.fetch_add(1, Ordering::Relaxed);
                ctx.error(&e);
                return;
            }
        }
    }
    if let Some(e) = replication_refusal(node, spec) {
        node.stats.error_replies.fetch_add(1, Ordering::Relaxed);
        ctx.error(&e);
        return;
    }
    if spec.flags.contains(Flags::DENYOOM) && out_of_memory(node) {
        node.stats.error_replies.fetch_add(1, Ordering::Relaxed);
        ctx.error(&CommandError::OutOfMemory);
        return;
    }
    if ctx.session.subscriptions() > 0
        && ctx.session.version == ProtocolVersion::Resp2
        && !pubsub::allowed_while_subscribed(spec.name)
    {
        node.stats.error_replies.fetch_add(1, Ordering::Relaxed);
        ctx.error(&not_while_subscribed(spec, &args));
        return;
    }
    let tracked = tracking::before_command(&ctx, spec, &args);
    // Keyed commands feed hot-key detection: one decrement unless this one is sampled.
    if spec.first_key > 0 || !spec.subcommands.is_empty() {
        ctx.session.hotkeys.observe(&node.hotkeys, spec, &args);
    }
    let slower_than = node.settings.slowlog_slower_than.load(Ordering::Relaxed);
    let started = (slower_than >= 0).then(Instant::now);
    let result = (spec.handler)(&mut ctx, &args);
    let ok = result.is_ok();
    if let Err(e) = result {
        node.stats.error_replies.fetch_add(1, Ordering::Relaxed);
        ctx.error(&e);
    }
    // Failed writes too: a command may have changed a key before it failed, and
    // recording a key's state twice changes nothing.
    if spec.flags.contains(Flags::WRITE) && node.repl.is_active() {
        let mut keyed = false;
        for k in key_spec::keys(spec, &args) {
            keyed = true;
            let pass = node.repl.record(&node.store, k);
            ctx.session.last_write_pass = ctx.session.last_write_pass.max(pass);
        }
        if !keyed {
            // FLUSHALL: its effects were recorded key by key by the removal listener.
            ctx.session.last_write_pass = crate::replication::EVERYTHING;
        }
    }
    if tracked {
        tracking::after_command(&mut ctx, spec, &args, ok);
    }
    if let Some(started) = started {
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if micros >= slower_than.unsigned_abs() && !spec.flags.contains(Flags::NO_SLOWLOG) {
            let max_len = node.settings.slowlog_max_len.load(Ordering::Relaxed);
            node.slowlog.push(
                &redacted(spec, &args),
                micros,
                crate::node::unix_millis() / 1000,
                ctx.session.handle.addr.to_string(),
                ctx.session.handle.name.lock().clone(),
                usize::try_from(max_len).unwrap_or(usize::MAX),
            );
        }
    }
}

/// Why a replica refuses a command now: loading a snapshot (`-LOADING`), or a write from a
/// client (`-READONLY`; in a cluster the routing answers `-MOVED` first).
fn replication_refusal(node: &Node, spec: &CommandSpec) -> Option<CommandError> {
    let repl = &node.repl;
    if !repl.is_replica() {
        return None;
    }
    if repl.is_loading() && !spec.flags.contains(Flags::LOADING) {
        return Some(CommandError::Other(
            "LOADING Redis is loading the dataset in memory".into(),
        ));
    }
    if spec.flags.contains(Flags::WRITE) {
        return Some(CommandError::Other(
            "READONLY You can't write against a read only replica.".into(),
        ));
    }
    None
}

/// The arguments as the slow log may keep them: passwords replaced, as Redis does.
fn redacted(spec: &CommandSpec, args: &[Bytes]) -> Vec<Bytes> {
    let mut kept = args.to_vec();
    let secret_follows = |word: &[u8]| match spec.name {
        "config" => is(word, "requirepass"),
        "hello" => is(word, "auth"),
        _ => false,
    };
    let mut i = 1;
    while i < kept.len() {
        if secret_follows(&kept[i]) {
            // HELLO ... AUTH <user> <password>; CONFIG SET requirepass <password>.
            let at = if spec.name == "hello" { i + 2 } else { i + 1 };
            if let Some(a) = kept.get_mut(at) {
                *a = Bytes::from_static(b"(redacted)");
            }
            i = at;
        }
        i += 1;
    }
    kept
}

/// Whether commands that may grow memory (`denyoom`) must be refused: the keyspace is
/// over `maxmemory` and the policy has nothing it may evict. Other commands always run,
/// as in Redis, so a full node can still be read, shrunk and given expiries.
fn out_of_memory(node: &Node) -> bool {
    let store = &node.store;
    let Some(max) = store.max_weight() else {
        return false;
    };
    if store.weighted_size() <= max {
        return false;
    }
    let policy = store.policy();
    policy == cachalot_store::Policy::no_eviction()
        || (policy.is_volatile_only() && store.expiring_len() == 0)
}

/// Redis's refusal of a command a RESP2 client in subscribed mode may not run.
fn not_while_subscribed(spec: &CommandSpec, args: &[Bytes]) -> CommandError {
    let sub = spec
        .subcommands
        .get(usize::from(subcommand_index(spec, args)));
    let name = match sub {
        Some(sub) => format!("{}|{}", spec.name, sub.name),
        None => spec.name.to_owned(),
    };
    CommandError::Other(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

/// The position of `args[1]` in a container command's subcommand table, or `u8::MAX`.
fn subcommand_index(spec: &CommandSpec, args: &[Bytes]) -> u8 {
    let Some(sub) = args.get(1).filter(|_| !spec.subcommands.is_empty()) else {
        return u8::MAX;
    };
    spec.subcommands
        .iter()
        .position(|s| is(sub, s.name))
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(u8::MAX)
}

/// Redis's text for an unknown command, quoting the start of its arguments.
fn unknown_command(args: &[Bytes]) -> CommandError {
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(UNKNOWN_COMMAND_ARGS_BYTES)]);
    let mut msg = format!("ERR unknown command '{name}', with args beginning with: ");
    let mut budget = UNKNOWN_COMMAND_ARGS_BYTES;
    for a in &args[1..] {
        if budget == 0 {
            break;
        }
        let take = a.len().min(budget);
        budget -= take;
        msg.push('\'');
        msg.push_str(&String::from_utf8_lossy(&a[..take]));
        msg.push_str("' ");
    }
    CommandError::Other(msg)
}

/// Whether `arg` equals `word`, ignoring ASCII case (option parsing).
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Parses an integer argument.
pub fn int_arg(arg: &[u8]) -> Result<i64, CommandError> {
    crate::value::parse_i64(arg).ok_or(CommandError::NotInteger)
}

/// Copies an argument that will be stored, so the stored bytes do not keep the whole
/// read buffer they were sliced from alive.
pub fn owned(arg: &Bytes) -> Bytes {
    Bytes::copy_from_slice(arg)
}

/// Copies a key argument into the keyspace's key type.
pub fn key(arg: &[u8]) -> Key {
    Key::from_slice(arg)
}

/// The unknown-subcommand error for container commands (`CLIENT`, `CONFIG`, ...).
pub fn unknown_subcommand(command: &str, sub: &[u8]) -> CommandError {
    CommandError::UnknownSubcommand {
        sub: String::from_utf8_lossy(sub).into_owned(),
        command: command.to_ascii_uppercase(),
    }
}
