//! A `redis-server` and a `cachalot-server` side by side, driven over plain TCP with the
//! same commands, with their reply bytes compared.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cachalot_tests::ServerProcess;

/// How long `redis-server` may take to accept connections.
const REDIS_START_TIMEOUT_MILLIS: u64 = 10_000;
/// How long one reply may take before the test gives up on it. Generous: a `SETRANGE`
/// at offset 512 MiB allocates and zeroes that much in both servers (debug build), and
/// the whole suite shares two cores with the cluster and replication tests; once that
/// took more than 10 s.
const REPLY_TIMEOUT_SECS: u64 = 30;
/// Ports tried before giving up on starting `redis-server` (another process may grab the
/// free port between our probe and its bind).
const REDIS_START_ATTEMPTS: usize = 5;

/// A `redis-server` process, killed when dropped.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` without persistence on a free loopback port.
    pub fn start() -> RedisServer {
        for _ in 0..REDIS_START_ATTEMPTS {
            if let Some(server) = RedisServer::try_start(cachalot_tests::free_port()) {
                return server;
            }
        }
        panic!("redis-server did not start after {REDIS_START_ATTEMPTS} attempts");
    }

    fn try_start(port: u16) -> Option<RedisServer> {
        let mut child = Command::new(cachalot_tests::redis_tool("redis-server"))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (Debian package redis-server)");
        // Redis logs "Ready to accept connections" once it listens; its stdout closes
        // without that line if it exits (most likely: the port was taken). A thread reads the
        // log so the wait can have a deadline.
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let ready = BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .any(|line| line.contains("Ready to accept connections"));
            let _ = ready_tx.send(ready);
        });
        let mut server = RedisServer { child, port };
        let timeout = Duration::from_millis(REDIS_START_TIMEOUT_MILLIS);
        if ready_rx.recv_timeout(timeout) == Ok(true) {
            return Some(server);
        }
        let _ = server.child.kill();
        None
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One reply, kept as its raw bytes and, for aggregates, its elements.
#[derive(Debug)]
pub struct Reply {
    /// The header line (the whole frame for simple types).
    head: Vec<u8>,
    /// Elements of an aggregate (map entries flattened: key, value, key, value, ...).
    items: Vec<Reply>,
}

impl Reply {
    fn kind(&self) -> u8 {
        self.head.first().copied().unwrap_or(b'?')
    }

    fn raw(&self) -> Vec<u8> {
        let mut out = self.head.clone();
        for item in &self.items {
            out.extend(item.raw());
        }
        out
    }

    fn is_null(&self) -> bool {
        matches!(&self.head[..], b"$-1\r\n" | b"*-1\r\n" | b"_\r\n")
    }

    fn int(&self) -> Option<i64> {
        let text = std::str::from_utf8(self.head.strip_prefix(b":")?).ok()?;
        text.trim_end().parse().ok()
    }

    /// The same reply with the elements of the top aggregate sorted in groups of `group`.
    fn sorted(&self, group: usize) -> Vec<u8> {
        let mut chunks: Vec<Vec<u8>> = self
            .items
            .chunks(group)
            .map(|c| c.iter().flat_map(Reply::raw).collect())
            .collect();
        chunks.sort();
        let mut out = self.head.clone();
        chunks.iter().for_each(|c| out.extend(c));
        out
    }

    /// Types and lengths only, for random replies; errors and nulls stay exact.
    fn shape(&self) -> Vec<u8> {
        match self.kind() {
            b'-' | b'!' => self.raw(),
            _ if self.is_null() => self.raw(),
            b'*' | b'%' | b'~' => {
                let mut out = self.head.clone();
                self.items.iter().for_each(|i| out.extend(i.shape()));
                out
            }
            k => vec![k],
        }
    }
}

fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let mut head = Vec::new();
    r.read_until(b'\n', &mut head)?;
    if !head.ends_with(b"\r\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated reply",
        ));
    }
    let len = || -> io::Result<i64> {
        std::str::from_utf8(&head[1..head.len() - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad length"))
    };
    let mut items = Vec::new();
    match head[0] {
        b'$' | b'=' | b'!' => {
            let n = len()?;
            if n >= 0 {
                let mut body = vec![0; usize::try_from(n).unwrap_or(0) + 2];
                r.read_exact(&mut body)?;
                head.extend(body);
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = len()?;
            let per = if matches!(head[0], b'%' | b'|') { 2 } else { 1 };
            for _ in 0..n.max(0) * per {
                items.push(read_reply(r)?);
            }
        }
        _ => {}
    }
    Ok(Reply { head, items })
}

/// A plain TCP connection speaking RESP.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn connect(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(REPLY_TIMEOUT_SECS)))
            .expect("set timeout");
        let writer = stream.try_clone().expect("clone stream");
        Conn {
            reader: BufReader::new(stream),
            writer,
        }
    }

    fn call(&mut self, args: &[Vec<u8>]) -> Reply {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend(format!("${}\r\n", a.len()).as_bytes());
            req.extend(a);
            req.extend(b"\r\n");
        }
        self.writer.write_all(&req).expect("send command");
        read_reply(&mut self.reader).unwrap_or_else(|e| {
            panic!("no reply to {}: {e}", show_args(args));
        })
    }
}

/// How two replies are compared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Byte for byte.
    Exact,
    /// Elements of the top aggregate in any order (`HKEYS`, `KEYS`).
    Sorted,
    /// Field-value pairs in any order (`HGETALL`).
    Pairs,
    /// A cursor reply: cursor exact, elements in any order (in pairs for `HSCAN`).
    Scan { pairs: bool },
    /// Types and lengths only (random replies).
    Shape,
    /// The same reply, or both integers within `[lo, hi]` (clock-dependent TTLs and idle
    /// times).
    Range(i64, i64),
    /// `HELLO`: same fields and values except `version` and `id`.
    Hello,
}

impl Mode {
    /// The comparison a command needs by default.
    pub fn for_command(args: &[Vec<u8>]) -> Mode {
        let name = args
            .first()
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .unwrap_or_default();
        let novalues = args.iter().any(|a| a.eq_ignore_ascii_case(b"novalues"));
        // Idle times are whole seconds since the access second, in Redis as here: a
        // second may tick between the write and the read on one server and not the other.
        let idletime = args
            .get(1)
            .is_some_and(|a| a.eq_ignore_ascii_case(b"idletime"));
        match name.as_str() {
            "keys" | "hkeys" | "hvals" => Mode::Sorted,
            "hgetall" => Mode::Pairs,
            "scan" => Mode::Scan { pairs: false },
            "hscan" => Mode::Scan { pairs: !novalues },
            "randomkey" | "hrandfield" | "memory" => Mode::Shape,
            "hello" => Mode::Hello,
            "object" if idletime => Mode::Range(0, 1),
            _ => Mode::Exact,
        }
    }

    fn parse(word: &str) -> Option<Mode> {
        let mut parts = word.strip_suffix(':')?.split(':');
        Some(match parts.next()? {
            "exact" => Mode::Exact,
            "sort" => Mode::Sorted,
            "pairs" => Mode::Pairs,
            "scan" => Mode::Scan { pairs: false },
            "shape" => Mode::Shape,
            "hello" => Mode::Hello,
            "range" => Mode::Range(parts.next()?.parse().ok()?, parts.next()?.parse().ok()?),
            _ => return None,
        })
    }

    /// Whether the two replies agree under this mode.
    fn agree(self, redis: &Reply, cachalot: &Reply) -> bool {
        let both_errors = redis.kind() == b'-' || cachalot.kind() == b'-';
        match self {
            _ if both_errors => redis.raw() == cachalot.raw(),
            Mode::Exact => redis.raw() == cachalot.raw(),
            Mode::Sorted => redis.sorted(1) == cachalot.sorted(1),
            Mode::Pairs => redis.sorted(2) == cachalot.sorted(2),
            Mode::Scan { pairs } => {
                let group = if pairs { 2 } else { 1 };
                redis.kind() == cachalot.kind()
                    && redis.items.len() == 2
                    && cachalot.items.len() == 2
                    && redis.items[0].raw() == cachalot.items[0].raw()
                    && redis.items[1].sorted(group) == cachalot.items[1].sorted(group)
            }
            Mode::Shape => redis.shape() == cachalot.shape(),
            Mode::Range(lo, hi) => {
                redis.raw() == cachalot.raw()
                    || [redis, cachalot]
                        .iter()
                        .all(|r| r.int().is_some_and(|n| (lo..=hi).contains(&n)))
            }
            Mode::Hello => {
                redis.head == cachalot.head
                    && redis.items.len() == cachalot.items.len()
                    && redis
                        .items
                        .chunks(2)
                        .zip(cachalot.items.chunks(2))
                        .all(|(a, b)| {
                            let key = a[0].raw();
                            let skip = key.ends_with(b"version\r\n") || key.ends_with(b"\nid\r\n");
                            key == b[0].raw()
                                && (if skip {
                                    a[1].kind() == b[1].kind()
                                } else {
                                    a[1].raw() == b[1].raw()
                                })
                        })
            }
        }
    }
}

/// A Redis server and a Cachalot node with one connection to each.
pub struct Pair {
    redis: Conn,
    cachalot: Conn,
    mismatches: Vec<String>,
    compared: usize,
    _redis_server: RedisServer,
    _cachalot_server: ServerProcess,
}

impl Pair {
    /// Starts both servers and connects to each.
    pub fn start() -> Pair {
        let redis_server = RedisServer::start();
        let cachalot_server = ServerProcess::start();
        Pair {
            redis: Conn::connect(redis_server.port),
            cachalot: Conn::connect(cachalot_server.port()),
            mismatches: Vec::new(),
            compared: 0,
            _redis_server: redis_server,
            _cachalot_server: cachalot_server,
        }
    }

    /// Sends `args` to both and records a mismatch under `mode`.
    pub fn check(&mut self, mode: Mode, args: &[Vec<u8>]) {
        let redis = self.redis.call(args);
        let cachalot = self.cachalot.call(args);
        self.compared += 1;
        if !mode.agree(&redis, &cachalot) {
            let mut text = format!("command:  {}   ({mode:?})\n", show_args(args));
            let _ = writeln!(text, "redis:    {}", show_bytes(&redis.raw()));
            let _ = writeln!(text, "cachalot: {}", show_bytes(&cachalot.raw()));
            self.mismatches.push(text);
        }
    }

    /// Sends `args` to both without comparing (setup steps whose timing may differ).
    pub fn run(&mut self, args: &[Vec<u8>]) {
        self.redis.call(args);
        self.cachalot.call(args);
    }

    /// Panics with every mismatch seen so far, if any.
    pub fn assert_agreed(&self) {
        assert!(
            self.mismatches.is_empty(),
            "{} of {} replies differ from Redis:\n\n{}",
            self.mismatches.len(),
            self.compared,
            self.mismatches.join("\n")
        );
    }

    /// Sends every string, key and hash command with 0 to 6 arguments, against a missing
    /// key, a string and a hash, and compares the replies: arity errors, WRONGTYPE, parse
    /// errors and results alike.
    pub fn sweep_arguments(&mut self) {
        const SETUPS: [&[&str]; 3] = [
            &["DEL", "sw:k"],
            &["SET", "sw:k", "5"],
            &["HSET", "sw:k", "f", "1", "g", "2"],
        ];
        for name in SWEPT_COMMANDS {
            let pools: &[&[&str]] = match *name {
                "object" => &[
                    &["encoding", "sw:k", "x"],
                    &["refcount", "sw:k"],
                    &["freq", "sw:k"],
                    &["idletime", "sw:k"],
                    &["help", "x"],
                ],
                // MEMORY HELP lists only what Cachalot implements.
                "memory" => &[&["usage", "sw:k", "samples", "5", "x"]],
                "scan" => &[
                    &["0", "MATCH", "*", "COUNT", "1000", "TYPE"],
                    &["0", "COUNT", "1000", "TYPE", "hash"],
                ],
                _ => &[
                    &["sw:k", "1", "f", "2", "g", "3"],
                    &["sw:k", "f", "-1", "x", "NX", "GET"],
                ],
            };
            for pool in pools {
                for n in 0..=pool.len() {
                    for setup in SETUPS {
                        self.run(&words(&["DEL", "sw:k"]));
                        self.run(&words(setup));
                        let mut args = vec![name.as_bytes().to_vec()];
                        args.extend(pool[..n].iter().map(|a| a.as_bytes().to_vec()));
                        self.check(Mode::for_command(&args), &args);
                    }
                }
            }
        }
        self.assert_agreed();
    }
}

/// Commands the sweep sends (the string, key and hash families plus the safe connection
/// ones; `QUIT`, `RESET` and the server commands are covered elsewhere).
const SWEPT_COMMANDS: &[&str] = &[
    "get",
    "set",
    "setnx",
    "setex",
    "psetex",
    "getset",
    "getex",
    "getdel",
    "mget",
    "mset",
    "msetnx",
    "incr",
    "decr",
    "incrby",
    "decrby",
    "incrbyfloat",
    "append",
    "strlen",
    "getrange",
    "setrange",
    "del",
    "unlink",
    "exists",
    "touch",
    "type",
    "expire",
    "pexpire",
    "expireat",
    "pexpireat",
    "ttl",
    "pttl",
    "expiretime",
    "pexpiretime",
    "persist",
    "keys",
    "scan",
    "randomkey",
    "rename",
    "renamenx",
    "copy",
    "dbsize",
    "object",
    "memory",
    "hset",
    "hsetnx",
    "hmset",
    "hget",
    "hmget",
    "hgetall",
    "hdel",
    "hexists",
    "hlen",
    "hkeys",
    "hvals",
    "hincrby",
    "hincrbyfloat",
    "hstrlen",
    "hscan",
    "hrandfield",
    "ping",
    "echo",
    "select",
    "auth",
    "flushdb",
    "flushall",
];

fn words(ws: &[&str]) -> Vec<Vec<u8>> {
    ws.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// Runs a script: one command per line in redis-cli syntax (double quotes with `\x00`,
/// `\r`, `\n`, `\"`, `\\` escapes; single quotes verbatim), `#` comments, and an optional
/// leading mode word (`sort:`, `pairs:`, `scan:`, `shape:`, `hello:`, `range:LO:HI:`).
pub fn run_script(pair: &mut Pair, script: &str) {
    for line in script.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (mode, rest) = match line.split_once(' ') {
            Some((first, rest)) => match Mode::parse(first) {
                Some(mode) => (Some(mode), rest),
                None => (None, line),
            },
            None => (None, line),
        };
        let args = tokenize(rest);
        let mode = match mode {
            // `scan:` marks a cursor reply; whether it holds pairs depends on the command.
            Some(Mode::Scan { .. }) | None => Mode::for_command(&args),
            Some(mode) => mode,
        };
        pair.check(mode, &args);
    }
    pair.assert_agreed();
}

fn tokenize(line: &str) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let mut arg = Vec::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => arg.push(b'\n'),
                        Some('r') => arg.push(b'\r'),
                        Some('t') => arg.push(b'\t'),
                        Some('x') => {
                            let hex: String = chars.by_ref().take(2).collect();
                            arg.push(u8::from_str_radix(&hex, 16).expect("\\xHH escape"));
                        }
                        Some(other) => arg.extend(other.to_string().as_bytes()),
                        None => break,
                    },
                    c => arg.extend(c.to_string().as_bytes()),
                }
            }
        } else if first == '\'' {
            chars.next();
            for c in chars.by_ref().take_while(|&c| c != '\'') {
                arg.extend(c.to_string().as_bytes());
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                arg.extend(c.to_string().as_bytes());
            }
        }
        args.push(arg);
    }
    args
}

fn show_args(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| format!("\"{}\"", show_bytes(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn show_bytes(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}
