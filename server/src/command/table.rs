//! The command table: name, arity, flags, key positions, documentation and handler of
//! every command the node implements. `COMMAND`, `COMMAND INFO` and `COMMAND DOCS` are
//! answered from it, so what the node advertises is exactly what it runs.

use super::{
    client, cluster, connection, hash, hotkeys, info, introspect, keys, pubsub, replication,
    server, string, Handler,
};

/// Command flags, as `COMMAND INFO` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    /// Modifies the keyspace.
    pub const WRITE: Flags = Flags(1);
    /// Only reads.
    pub const READONLY: Flags = Flags(1 << 1);
    /// May grow memory; refused when over `maxmemory` and nothing can be evicted.
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// Administrative.
    pub const ADMIN: Flags = Flags(1 << 3);
    /// Constant or logarithmic time.
    pub const FAST: Flags = Flags(1 << 4);
    /// Allowed before authentication.
    pub const NO_AUTH: Flags = Flags(1 << 5);
    /// Allowed while loading.
    pub const LOADING: Flags = Flags(1 << 6);
    /// Allowed on a stale replica.
    pub const STALE: Flags = Flags(1 << 7);
    /// Not allowed in scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 8);
    /// Not recorded in the slow log (internal; not reported).
    pub const NO_SLOWLOG: Flags = Flags(1 << 9);
    /// Non-deterministic output.
    pub const RANDOM: Flags = Flags(1 << 10);

    /// Both sets of flags.
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// The names `COMMAND INFO` lists.
    pub fn names(self) -> Vec<&'static str> {
        const NAMES: [(Flags, &str); 10] = [
            (Flags::WRITE, "write"),
            (Flags::READONLY, "readonly"),
            (Flags::DENYOOM, "denyoom"),
            (Flags::ADMIN, "admin"),
            (Flags::NOSCRIPT, "noscript"),
            (Flags::RANDOM, "random"),
            (Flags::LOADING, "loading"),
            (Flags::STALE, "stale"),
            (Flags::FAST, "fast"),
            (Flags::NO_AUTH, "no_auth"),
        ];
        NAMES
            .iter()
            .filter(|(f, _)| self.contains(*f))
            .map(|(_, n)| *n)
            .collect()
    }
}

/// One subcommand of a container command (`CLIENT LIST`), for `COMMAND INFO`/`DOCS`.
#[derive(Debug)]
pub struct Subcommand {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity, counting the container and the subcommand.
    pub arity: i32,
    /// Position of the subcommand's one key (0 if it takes none), as Redis's key specs
    /// for subcommands give it: `OBJECT ENCODING key` and `MEMORY USAGE key` have 2.
    pub key: i32,
    /// One-line summary.
    pub summary: &'static str,
    /// Argument syntax after the subcommand, in Redis's documentation notation.
    pub syntax: &'static str,
}

/// The `HELP` subcommand every container command has.
pub const HELP_SUBCOMMAND: Subcommand = Subcommand {
    name: "help",
    arity: 2,
    key: 0,
    summary: "Returns helpful text about the different subcommands.",
    syntax: "",
};

/// One command.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: exact argument count including the name, or `-n` for "at least n".
    pub arity: i32,
    /// Flags.
    pub flags: Flags,
    /// Position of the first key (0 if none).
    pub first_key: i32,
    /// Position of the last key (-1 = the last argument).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
    /// Documentation group (`string`, `generic`, `hash`, `connection`, `server`).
    pub group: &'static str,
    /// Redis version that introduced it.
    pub since: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Argument syntax in Redis's documentation notation, parsed for `COMMAND DOCS`.
    pub syntax: &'static str,
    /// Subcommands of container commands.
    pub subcommands: &'static [Subcommand],
    /// The implementation.
    pub handler: Handler,
}

impl CommandSpec {
    /// Whether `argc` arguments (including the name) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }
}

const R: Flags = Flags::READONLY;
const RF: Flags = Flags::READONLY.with(Flags::FAST);
const W: Flags = Flags::WRITE;
const WD: Flags = Flags::WRITE.with(Flags::DENYOOM);
const WDF: Flags = WD.with(Flags::FAST);
const WF: Flags = Flags::WRITE.with(Flags::FAST);
const CONN: Flags = Flags::NOSCRIPT
    .with(Flags::LOADING)
    .with(Flags::STALE)
    .with(Flags::FAST)
    .with(Flags::NO_AUTH);
const PUBSUB: Flags = Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE);
const ADMIN: Flags = Flags::ADMIN
    .with(Flags::NOSCRIPT)
    .with(Flags::LOADING)
    .with(Flags::STALE);

macro_rules! cmd {
    ($name:literal, $arity:expr, $flags:expr, ($f:expr, $l:expr, $s:expr), $group:literal, $since:literal,
     $summary:literal, $syntax:literal, $handler:expr) => {
        cmd!(
            $name,
            $arity,
            $flags,
            ($f, $l, $s),
            $group,
            $since,
            $summary,
            $syntax,
            $handler,
            &[]
        )
    };
    ($name:literal, $arity:expr, $flags:expr, ($f:expr, $l:expr, $s:expr), $group:literal, $since:literal,
     $summary:literal, $syntax:literal, $handler:expr, $subs:expr) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $f,
            last_key: $l,
            step: $s,
            group: $group,
            since: $since,
            summary: $summary,
            syntax: $syntax,
            subcommands: $subs,
            handler: $handler,
        }
    };
}

/// Every command, in no particular order.
pub static COMMANDS: &[CommandSpec] = &[
    // connection
    cmd!("ping", -1, Flags::FAST, (0, 0, 0), "connection", "1.0.0", "Returns the server's liveliness response.", "[message]", connection::ping),
    cmd!("echo", 2, Flags::FAST, (0, 0, 0), "connection", "1.0.0", "Returns the given string.", "message", connection::echo),
    cmd!("hello", -1, CONN, (0, 0, 0), "connection", "6.0.0", "Handshakes with the Redis server.", "[protover [AUTH username password] [SETNAME clientname]]", connection::hello),
    cmd!("auth", -2, CONN.with(Flags::NO_SLOWLOG), (0, 0, 0), "connection", "1.0.0", "Authenticates the connection.", "[username] password", connection::auth),
    cmd!("quit", -1, CONN, (0, 0, 0), "connection", "1.0.0", "Closes the connection.", "", connection::quit),
    cmd!("reset", 1, CONN, (0, 0, 0), "connection", "6.2.0", "Resets the connection.", "", connection::reset),
    cmd!("select", 2, Flags::LOADING.with(Flags::STALE).with(Flags::FAST), (0, 0, 0), "connection", "1.0.0", "Changes the selected database.", "index", connection::select),
    cmd!("client", -2, Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE), (0, 0, 0), "connection", "2.4.0", "A container for client connection commands.", "", client::client, client::SUBCOMMANDS),
    // pub/sub
    cmd!("subscribe", -2, PUBSUB, (0, 0, 0), "pubsub", "2.0.0", "Listens for messages published to channels.", "channel [channel ...]", pubsub::subscribe),
    cmd!("unsubscribe", -1, PUBSUB, (0, 0, 0), "pubsub", "2.0.0", "Stops listening to messages posted to channels.", "[channel [channel ...]]", pubsub::unsubscribe),
    cmd!("psubscribe", -2, PUBSUB, (0, 0, 0), "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns.", "pattern [pattern ...]", pubsub::psubscribe),
    cmd!("punsubscribe", -1, PUBSUB, (0, 0, 0), "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns.", "[pattern [pattern ...]]", pubsub::punsubscribe),
    cmd!("publish", 3, Flags::LOADING.with(Flags::STALE).with(Flags::FAST), (0, 0, 0), "pubsub", "2.0.0", "Posts a message to a channel.", "channel message", pubsub::publish),
    // strings
    cmd!("get", 2, RF, (1, 1, 1), "string", "1.0.0", "Returns the string value of a key.", "key", string::get),
    cmd!("set", -3, WD, (1, 1, 1), "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]", string::set),
    cmd!("setnx", 3, WDF, (1, 1, 1), "string", "1.0.0", "Set the string value of a key only when the key doesn't exist.", "key value", string::setnx),
    cmd!("setex", 4, WD, (1, 1, 1), "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", "key seconds value", string::setex),
    cmd!("psetex", 4, WD, (1, 1, 1), "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", "key milliseconds value", string::psetex),
    cmd!("getset", 3, WDF, (1, 1, 1), "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value.", "key value", string::getset),
    cmd!("getex", -2, WF, (1, 1, 1), "string", "6.2.0", "Returns the string value of a key after setting its expiration time.", "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]", string::getex),
    cmd!("getdel", 2, WF, (1, 1, 1), "string", "6.2.0", "Returns the string value of a key after deleting the key.", "key", string::getdel),
    cmd!("mget", -2, RF, (1, -1, 1), "string", "1.0.0", "Atomically returns the string values of one or more keys.", "key [key ...]", string::mget),
    cmd!("mset", -3, WD, (1, -1, 2), "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys.", "key value [key value ...]", string::mset),
    cmd!("msetnx", -3, WD, (1, -1, 2), "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist.", "key value [key value ...]", string::msetnx),
    cmd!("incr", 2, WDF, (1, 1, 1), "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "key", string::incr),
    cmd!("decr", 2, WDF, (1, 1, 1), "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "key", string::decr),
    cmd!("incrby", 3, WDF, (1, 1, 1), "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "key increment", string::incrby),
    cmd!("decrby", 3, WDF, (1, 1, 1), "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "key decrement", string::decrby),
    cmd!("incrbyfloat", 3, WDF, (1, 1, 1), "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "key increment", string::incrbyfloat),
    cmd!("append", 3, WDF, (1, 1, 1), "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist.", "key value", string::append),
    cmd!("strlen", 2, RF, (1, 1, 1), "string", "2.2.0", "Returns the length of a string value.", "key", string::strlen),
    cmd!("getrange", 4, R, (1, 1, 1), "string", "2.4.0", "Returns a substring of the string stored at a key.", "key start end", string::getrange),
    cmd!("setrange", 4, WD, (1, 1, 1), "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", "key offset value", string::setrange),
    // generic keyspace
    cmd!("del", -2, W, (1, -1, 1), "generic", "1.0.0", "Deletes one or more keys.", "key [key ...]", keys::del),
    cmd!("unlink", -2, WF, (1, -1, 1), "generic", "4.0.0", "Asynchronously deletes one or more keys.", "key [key ...]", keys::del),
    cmd!("exists", -2, RF, (1, -1, 1), "generic", "1.0.0", "Determines whether one or more keys exist.", "key [key ...]", keys::exists),
    cmd!("touch", -2, RF, (1, -1, 1), "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", "key [key ...]", keys::touch),
    cmd!("type", 2, RF, (1, 1, 1), "generic", "1.0.0", "Determines the type of value stored at a key.", "key", keys::type_),
    cmd!("expire", -3, WF, (1, 1, 1), "generic", "1.0.0", "Sets the expiration time of a key in seconds.", "key seconds [NX | XX | GT | LT]", keys::expire),
    cmd!("pexpire", -3, WF, (1, 1, 1), "generic", "2.6.0", "Sets the expiration time of a key in milliseconds.", "key milliseconds [NX | XX | GT | LT]", keys::pexpire),
    cmd!("expireat", -3, WF, (1, 1, 1), "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp.", "key unix-time-seconds [NX | XX | GT | LT]", keys::expireat),
    cmd!("pexpireat", -3, WF, (1, 1, 1), "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp.", "key unix-time-milliseconds [NX | XX | GT | LT]", keys::pexpireat),
    cmd!("ttl", 2, RF.with(Flags::RANDOM), (1, 1, 1), "generic", "1.0.0", "Returns the expiration time in seconds of a key.", "key", keys::ttl),
    cmd!("pttl", 2, RF.with(Flags::RANDOM), (1, 1, 1), "generic", "2.6.0", "Returns the expiration time in milliseconds of a key.", "key", keys::pttl),
    cmd!("expiretime", 2, RF, (1, 1, 1), "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp.", "key", keys::expiretime),
    cmd!("pexpiretime", 2, RF, (1, 1, 1), "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp.", "key", keys::pexpiretime),
    cmd!("persist", 2, WF, (1, 1, 1), "generic", "2.2.0", "Removes the expiration time of a key.", "key", keys::persist),
    cmd!("keys", 2, R, (0, 0, 0), "generic", "1.0.0", "Returns all key names that match a pattern.", "pattern", keys::keys),
    cmd!("scan", -2, R.with(Flags::RANDOM), (0, 0, 0), "generic", "2.8.0", "Iterates over the key names in the database.", "cursor [MATCH pattern] [COUNT count] [TYPE type]", keys::scan),
    cmd!("randomkey", 1, R.with(Flags::RANDOM), (0, 0, 0), "generic", "1.0.0", "Returns a random key name from the database.", "", keys::randomkey),
    cmd!("rename", 3, W, (1, 2, 1), "generic", "1.0.0", "Renames a key and overwrites the destination.", "key newkey", keys::rename),
    cmd!("renamenx", 3, WF, (1, 2, 1), "generic", "1.0.0", "Renames a key only when the target key name doesn't exist.", "key newkey", keys::renamenx),
    cmd!("copy", -3, WD, (1, 2, 1), "generic", "6.2.0", "Copies the value of a key to a new key.", "source destination [DB destination-db] [REPLACE]", keys::copy),
    cmd!("dbsize", 1, RF, (0, 0, 0), "server", "1.0.0", "Returns the number of keys in the database.", "", keys::dbsize),
    cmd!("flushdb", -1, W, (0, 0, 0), "server", "1.0.0", "Remove all keys from the current database.", "[ASYNC | SYNC]", keys::flushall),
    cmd!("flushall", -1, W, (0, 0, 0), "server", "1.0.0", "Removes all keys from all databases.", "[ASYNC | SYNC]", keys::flushall),
    cmd!("object", -2, R, (0, 0, 0), "generic", "2.2.3", "A container for object introspection commands.", "", keys::object, keys::OBJECT_SUBCOMMANDS),
    cmd!("memory", -2, R, (0, 0, 0), "server", "4.0.0", "A container for memory diagnostics commands.", "", keys::memory, keys::MEMORY_SUBCOMMANDS),
    // hashes
    cmd!("hset", -4, WDF, (1, 1, 1), "hash", "2.0.0", "Creates or modifies the value of a field in a hash.", "key field value [field value ...]", hash::hset),
    cmd!("hsetnx", 4, WDF, (1, 1, 1), "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist.", "key field value", hash::hsetnx),
    cmd!("hmset", -4, WDF, (1, 1, 1), "hash", "2.0.0", "Sets the values of multiple fields.", "key field value [field value ...]", hash::hmset),
    cmd!("hget", 3, RF, (1, 1, 1), "hash", "2.0.0", "Returns the value of a field in a hash.", "key field", hash::hget),
    cmd!("hmget", -3, RF, (1, 1, 1), "hash", "2.0.0", "Returns the values of all fields in a hash.", "key field [field ...]", hash::hmget),
    cmd!("hgetall", 2, R, (1, 1, 1), "hash", "2.0.0", "Returns all fields and values in a hash.", "key", hash::hgetall),
    cmd!("hdel", -3, WF, (1, 1, 1), "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", "key field [field ...]", hash::hdel),
    cmd!("hexists", 3, RF, (1, 1, 1), "hash", "2.0.0", "Determines whether a field exists in a hash.", "key field", hash::hexists),
    cmd!("hlen", 2, RF, (1, 1, 1), "hash", "2.0.0", "Returns the number of fields in a hash.", "key", hash::hlen),
    cmd!("hkeys", 2, R, (1, 1, 1), "hash", "2.0.0", "Returns all fields in a hash.", "key", hash::hkeys),
    cmd!("hvals", 2, R, (1, 1, 1), "hash", "2.0.0", "Returns all values in a hash.", "key", hash::hvals),
    cmd!("hincrby", 4, WDF, (1, 1, 1), "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", "key field increment", hash::hincrby),
    cmd!("hincrbyfloat", 4, WDF, (1, 1, 1), "hash", "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", "key field increment", hash::hincrbyfloat),
    cmd!("hstrlen", 3, RF, (1, 1, 1), "hash", "3.2.0", "Returns the length of the value of a field.", "key field", hash::hstrlen),
    cmd!("hscan", -3, R.with(Flags::RANDOM), (1, 1, 1), "hash", "2.8.0", "Iterates over fields and values of a hash.", "key cursor [MATCH pattern] [COUNT count] [NOVALUES]", hash::hscan),
    cmd!("hrandfield", -2, R.with(Flags::RANDOM), (1, 1, 1), "hash", "6.2.0", "Returns one or more random fields from a hash.", "key [count [WITHVALUES]]", hash::hrandfield),
    // server
    cmd!("info", -1, Flags::LOADING.with(Flags::STALE), (0, 0, 0), "server", "1.0.0", "Returns information and statistics about the server.", "[section [section ...]]", info::info),
    cmd!("config", -2, ADMIN, (0, 0, 0), "server", "2.0.0", "A container for server configuration commands.", "", server::config, server::CONFIG_SUBCOMMANDS),
    cmd!("time", 1, Flags::LOADING.with(Flags::STALE).with(Flags::FAST).with(Flags::RANDOM), (0, 0, 0), "server", "2.6.0", "Returns the server time.", "", server::time),
    cmd!("slowlog", -2, ADMIN, (0, 0, 0), "server", "2.2.12", "A container for slow log commands.", "", server::slowlog, server::SLOWLOG_SUBCOMMANDS),
    cmd!("shutdown", -1, ADMIN, (0, 0, 0), "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.", "[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]", server::shutdown),
    // cluster
    cmd!("cluster", -2, Flags::LOADING.with(Flags::STALE), (0, 0, 0), "cluster", "3.0.0", "A container for Redis Cluster commands.", "", cluster::cluster, cluster::SUBCOMMANDS),
    cmd!("readonly", 1, Flags::LOADING.with(Flags::STALE).with(Flags::FAST), (0, 0, 0), "cluster", "3.0.0", "Enables read-only queries for a connection to a Redis Cluster replica node.", "", cluster::accept),
    cmd!("readwrite", 1, Flags::LOADING.with(Flags::STALE).with(Flags::FAST), (0, 0, 0), "cluster", "3.0.0", "Enables read-write queries for a connection to a Redis Cluster replica node.", "", cluster::accept),
    cmd!("asking", 1, Flags::FAST, (0, 0, 0), "cluster", "3.0.0", "Signals that a cluster client is following an -ASK redirect.", "", cluster::asking),
    cmd!("replicaof", 3, ADMIN.with(Flags::STALE), (0, 0, 0), "server", "5.0.0", "Configures a server as replica of another, or promotes it to a master.", "args", replication::replicaof),
cmd!("slaveof", 3, ADMIN.with(Flags::STALE), (0, 0, 0), "server", "1.0.0", "Sets a Redis server as a replica of another, or promotes it to being a master.", "args", replication::replicaof),
cmd!("role", 1, Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE).with(Flags::FAST), (0, 0, 0), "server", "2.8.12", "Returns the replication role.", "", replication::role),
cmd!("wait", 3, Flags::NOSCRIPT, (0, 0, 0), "generic", "3.0.0", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", "numreplicas timeout", replication::wait),
cmd!("replconf", -1, ADMIN.with(Flags::LOADING).with(Flags::STALE), (0, 0, 0), "server", "3.0.0", "An internal command for configuring the replication stream.", "", replication::replconf),
cmd!("psync", -3, ADMIN, (0, 0, 0), "server", "2.8.0", "An internal command used in replication.", "replicationid offset", replication::psync),
cmd!("hotkeys", -1, Flags::LOADING.with(Flags::STALE).with(Flags::RANDOM), (0, 0, 0), "server", "0.1.0", "Returns the keys this node finds hot now, with their estimated operations per second, hottest first (Cachalot only).", "[COUNT count]", hotkeys::hotkeys),
    cmd!("command", -1, Flags::LOADING.with(Flags::STALE), (0, 0, 0), "server", "2.8.13", "Returns detailed information about all commands.", "", introspect::command, introspect::SUBCOMMANDS),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_names_are_unique_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for c in COMMANDS {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(seen.insert(c.name), "duplicate {}", c.name);
        }
    }

    #[test]
    fn arity_follows_redis_rules() {
        let get = COMMANDS.iter().find(|c| c.name == "get").expect("get");
        assert!(get.arity_ok(2));
        assert!(!get.arity_ok(1) && !get.arity_ok(3));
        let del = COMMANDS.iter().find(|c| c.name == "del").expect("del");
        assert!(del.arity_ok(2) && del.arity_ok(10));
        assert!(!del.arity_ok(1));
    }
}
