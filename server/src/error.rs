//! Errors: the replies a command can fail with, and the node's own failures.

use std::io;

/// Why a command failed; each variant becomes one Redis error reply and the connection
/// stays open (failure tier 1 in STYLE.md).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Wrong number of arguments for the named command.
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    /// The key holds a value of another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// An argument or stored value is not a 64-bit integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// An argument or stored value is not a float.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// A hash field holds something that is not an integer (`HINCRBY`).
    #[error("ERR hash value is not an integer")]
    HashNotInteger,
    /// A hash field holds something that is not a float (`HINCRBYFLOAT`).
    #[error("ERR hash value is not a float")]
    HashNotFloat,
    /// The options do not parse.
    #[error("ERR syntax error")]
    Syntax,
    /// An increment would overflow `i64`.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// A float increment would give NaN or infinity.
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    /// An expire time is out of range for the named command.
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(&'static str),
    /// The key does not exist (`RENAME`).
    #[error("ERR no such key")]
    NoSuchKey,
    /// A value would grow past `proto-max-bulk-len`.
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    /// A `SETRANGE`/`GETRANGE` style offset is out of range.
    #[error("ERR offset is out of range")]
    OffsetOutOfRange,
    /// A numeric argument is out of its allowed range (Redis's generic wording).
    #[error("ERR value is out of range")]
    OutOfRange,
    /// A count that must be positive is zero or negative (Redis's wording).
    #[error("ERR value is out of range, must be positive")]
    NotPositive,
    /// A cursor argument is not a valid unsigned number.
    #[error("ERR invalid cursor")]
    InvalidCursor,
    /// The node is over `maxmemory` and cannot evict.
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    OutOfMemory,
    /// The connection must authenticate first.
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    /// `AUTH` with the wrong credentials.
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    /// A `SELECT`/`COPY ... DB` index other than 0.
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    /// An unknown subcommand of a container command.
    #[error("ERR unknown subcommand '{sub}'. Try {command} HELP.")]
    UnknownSubcommand {
        /// The subcommand as the client sent it.
        sub: String,
        /// The container command in upper case.
        command: String,
    },
    /// Cluster mode: the keys' slot belongs to the node at `ip:port`.
    #[error("MOVED {slot} {ip}:{port}")]
    Moved {
        /// The keys' slot.
        slot: u16,
        /// The owner's IP address.
        ip: std::net::IpAddr,
        /// The owner's client port.
        port: u16,
    },
    /// Cluster mode: the slot is migrating to `ip:port` and the keys are not here.
    #[error("ASK {slot} {ip}:{port}")]
    Ask {
        /// The keys' slot.
        slot: u16,
        /// The target's IP address.
        ip: std::net::IpAddr,
        /// The target's client port.
        port: u16,
    },
    /// Cluster mode: a multi-key command during a migration whose keys are split between
    /// the two nodes, or a slot paused while its keys move (Redis's wording).
    #[error("TRYAGAIN Multiple keys request during rehashing of slot")]
    TryAgain,
    /// Cluster mode: this node has no slot map (it is still joining).
    #[error("CLUSTERDOWN The cluster is down")]
    ClusterDown,
    /// Cluster mode: a multi-key command's keys hash to different slots.
    #[error("CROSSSLOT Keys in request don't hash to the same slot")]
    CrossSlot,
    /// `CLUSTER COUNTKEYSINSLOT` with a slot outside `0..16384`.
    #[error("ERR Invalid slot")]
    InvalidSlot,
    /// `CLUSTER GETKEYSINSLOT` with a slot outside `0..16384` or a negative count.
    #[error("ERR Invalid slot or number of keys")]
    InvalidSlotOrCount,
    /// A cluster command on a node without cluster mode.
    #[error("ERR This instance has cluster support disabled")]
    ClusterDisabled,
    /// Any other error, already in Redis's wording (including its prefix).
    #[error("{0}")]
    Other(String),
}

impl From<cachalot_store::Error> for CommandError {
    fn from(e: cachalot_store::Error) -> Self {
        match e {
            cachalot_store::Error::OutOfMemory { .. } => CommandError::OutOfMemory,
            other => CommandError::Other(format!("ERR {other}")),
        }
    }
}

/// A node failed to start or to run (failure tier 3: the process exits non-zero).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Binding or accepting failed.
    #[error("i/o error on {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The store refused its configuration.
    #[error("storage engine: {0}")]
    Store(#[from] cachalot_store::Error),
}
