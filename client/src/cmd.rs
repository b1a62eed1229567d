//! [`Cmd`]: a command as its arguments, plus where its keys are and whether it only reads,
//! which is all the router needs.

use bytes::{Bytes, BytesMut};
use cachalot_protocol::encode;

/// One command: its name and arguments, binary-safe.
///
/// # Examples
///
/// ```
/// use cachalot_client::Cmd;
///
/// let cmd = Cmd::new("SET").arg("user:1").arg(b"ada".as_slice()).arg("EX").arg(60);
/// assert_eq!(cmd.args().len(), 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    args: Vec<Bytes>,
}

/// Anything that can be one command argument.
pub trait ToArg {
    /// The argument's bytes.
    fn to_arg(&self) -> Bytes;
}

impl ToArg for str {
    fn to_arg(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}
impl ToArg for [u8] {
    fn to_arg(&self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}
impl ToArg for String {
    fn to_arg(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}
impl ToArg for Vec<u8> {
    fn to_arg(&self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}
impl ToArg for Bytes {
    fn to_arg(&self) -> Bytes {
        self.clone()
    }
}
impl<const N: usize> ToArg for [u8; N] {
    fn to_arg(&self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}
impl<T: ToArg + ?Sized> ToArg for &T {
    fn to_arg(&self) -> Bytes {
        (**self).to_arg()
    }
}
macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn to_arg(&self) -> Bytes {
                Bytes::from(self.to_string())
            }
        }
    )*};
}
int_arg!(i32, i64, u32, u64, usize);

/// Where a command's keys are, as Redis's `COMMAND INFO` gives them: first, last (negative:
/// from the end) and step, counted from the command name at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeySpec {
    pub first: usize,
    pub last: isize,
    pub step: usize,
    /// The command never writes: it may go to a replica.
    pub readonly: bool,
    /// Running it twice leaves the same data and the same reply as once, so it may be
    /// retried after a connection failed with it in flight.
    pub idempotent: bool,
}

impl Cmd {
    /// A command with no arguments yet.
    pub fn new(name: &str) -> Cmd {
        Cmd {
            args: vec![name.to_arg()],
        }
    }

    /// A command from its whole argument list, name first.
    pub fn from_args<I, A>(args: I) -> Cmd
    where
        I: IntoIterator<Item = A>,
        A: ToArg,
    {
        Cmd {
            args: args.into_iter().map(|a| a.to_arg()).collect(),
        }
    }

    /// Appends one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl ToArg) -> Cmd {
        self.args.push(arg.to_arg());
        self
    }

    /// Appends one argument in place.
    pub fn push(&mut self, arg: impl ToArg) {
        self.args.push(arg.to_arg());
    }

    /// The arguments, name first.
    pub fn args(&self) -> &[Bytes] {
        &self.args
    }

    /// The command name as sent.
    pub fn name(&self) -> &[u8] {
        self.args.first().map_or(&[], |a| a.as_ref())
    }

    /// Appends the RESP encoding (an array of bulk strings) to `dst`.
    pub(crate) fn encode(&self, dst: &mut BytesMut) {
        encode::write_array_header(dst, self.args.len());
        for a in &self.args {
            encode::write_bulk(dst, a);
        }
    }

    /// The encoding as one buffer.
    pub(crate) fn to_bytes(&self) -> Bytes {
        let len: usize = self.args.iter().map(|a| a.len() + 24).sum();
        let mut dst = BytesMut::with_capacity(len + 16);
        self.encode(&mut dst);
        dst.freeze()
    }

    /// The keys, by the command's key spec; none for commands the client does not know.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &Bytes> {
        let spec = key_spec(self.name());
        let len = self.args.len();
        let (first, end, step) = match spec {
            Some(s) if s.first < len => {
                let last = if s.last < 0 {
                    len.saturating_sub(s.last.unsigned_abs())
                } else {
                    s.last.unsigned_abs().min(len - 1)
                };
                (s.first, last + 1, s.step.max(1))
            }
            _ => (0, 0, 1),
        };
        self.args
            .get(first..end.max(first))
            .into_iter()
            .flatten()
            .step_by(step)
    }

    /// Whether the command only reads, so that a replica may answer it.
    pub(crate) fn is_readonly(&self) -> bool {
        key_spec(self.name()).is_some_and(|s| s.readonly)
    }

    /// Whether running the command twice is the same as once (reads, `SET`, `DEL`,
    /// `HSET`, ...); commands the client does not know are assumed not to be.
    pub(crate) fn is_idempotent(&self) -> bool {
        let conditional = || {
            self.args.get(3..).unwrap_or_default().iter().any(|a| {
                a.eq_ignore_ascii_case(b"NX")
                    || a.eq_ignore_ascii_case(b"XX")
                    || a.eq_ignore_ascii_case(b"GET")
            })
        };
        (key_spec(self.name()).is_some_and(|s| s.idempotent) && !conditional())
            || matches!(
                self.name().to_ascii_uppercase().as_slice(),
                b"PING" | b"DBSIZE" | b"INFO" | b"CLUSTER" | b"HOTKEYS"
            )
    }
}

/// The key specs of the commands Cachalot serves (and Redis's for them).
pub(crate) fn key_spec(name: &[u8]) -> Option<KeySpec> {
    const fn spec(first: usize, last: isize, step: usize, readonly: bool) -> KeySpec {
        KeySpec {
            first,
            last,
            step,
            readonly,
            idempotent: readonly,
        }
    }
    /// A write whose repetition changes nothing.
    const fn repeatable(first: usize, last: isize, step: usize) -> KeySpec {
        KeySpec {
            idempotent: true,
            ..spec(first, last, step, false)
        }
    }
    let mut lower = [0u8; 16];
    let n = name.len();
    if n > lower.len() {
        return None;
    }
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = lower.get(..n)?;
    Some(match lower {
        b"get" | b"strlen" | b"getrange" | b"substr" | b"ttl" | b"pttl" | b"type"
        | b"expiretime" | b"pexpiretime" | b"hget" | b"hmget" | b"hgetall" | b"hkeys"
        | b"hvals" | b"hlen" | b"hexists" | b"hstrlen" | b"hrandfield" | b"hscan" | b"dump" => {
            spec(1, 1, 1, true)
        }
        b"mget" | b"exists" => spec(1, -1, 1, true),
        b"set" | b"setex" | b"psetex" | b"setrange" | b"expire" | b"pexpire" | b"expireat"
        | b"pexpireat" | b"hmset" => repeatable(1, 1, 1),
        // Writes whose second run differs: a counter moves again, an append doubles, a
        // conditional write or a delete answers differently.
        b"setnx" | b"getset" | b"getdel" | b"getex" | b"append" | b"incr" | b"decr" | b"incrby"
        | b"decrby" | b"incrbyfloat" | b"persist" | b"hset" | b"hsetnx" | b"hdel" | b"hincrby"
        | b"hincrbyfloat" => spec(1, 1, 1, false),
        b"del" | b"unlink" | b"touch" => spec(1, -1, 1, false),
        b"mset" => repeatable(1, -1, 2),
        b"msetnx" => spec(1, -1, 2, false),
        b"rename" | b"renamenx" | b"copy" => spec(1, 2, 1, false),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(cmd: &Cmd) -> Vec<&[u8]> {
        cmd.keys().map(|k| k.as_ref()).collect()
    }

    #[test]
    fn keys_follow_the_key_specs() {
        assert_eq!(keys(&Cmd::new("GET").arg("a")), [b"a"]);
        assert_eq!(keys(&Cmd::new("get").arg("a")), [b"a"]);
        assert_eq!(
            keys(&Cmd::from_args(["MSET", "a", "1", "b", "2"])),
            [b"a", b"b"]
        );
        assert_eq!(keys(&Cmd::from_args(["DEL", "a", "b", "c"])).len(), 3);
        assert_eq!(
            keys(&Cmd::from_args(["COPY", "a", "b", "REPLACE"])),
            [b"a", b"b"]
        );
        assert!(keys(&Cmd::new("GET")).is_empty(), "too short: no key");
        assert!(keys(&Cmd::new("PING")).is_empty());
        assert!(keys(&Cmd::new("AVERYLONGCOMMANDNAMEINDEED").arg("x")).is_empty());
    }

    #[test]
    fn only_commands_safe_to_repeat_are_idempotent() {
        assert!(Cmd::new("GET").arg("a").is_idempotent());
        assert!(Cmd::new("SET").arg("a").arg("b").is_idempotent());
        assert!(Cmd::from_args(["MSET", "a", "1"]).is_idempotent());
        assert!(!Cmd::from_args(["SET", "a", "1", "NX"]).is_idempotent());
        assert!(!Cmd::from_args(["SET", "a", "1", "EX", "9", "GET"]).is_idempotent());
        assert!(!Cmd::new("INCR").arg("a").is_idempotent());
        assert!(!Cmd::new("APPEND").arg("a").arg("b").is_idempotent());
        assert!(
            !Cmd::new("DEL").arg("a").is_idempotent(),
            "a second DEL answers 0"
        );
        assert!(
            !Cmd::new("FLUSHALL").is_idempotent(),
            "unknown: assumed not"
        );
        assert!(Cmd::new("PING").is_idempotent());
    }

    #[test]
    fn reads_and_writes_are_told_apart() {
        assert!(Cmd::new("GET").arg("a").is_readonly());
        assert!(Cmd::new("hgetall").arg("a").is_readonly());
        assert!(!Cmd::new("SET").arg("a").arg("b").is_readonly());
        assert!(!Cmd::new("FLUSHALL").is_readonly());
    }

    #[test]
    fn commands_encode_as_arrays_of_bulk_strings() {
        let bytes = Cmd::new("SET").arg("k").arg(12).to_bytes();
        assert_eq!(&bytes[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n");
    }
}
