//! A raw TCP client for byte-exact wire tests: it sends exactly the bytes it is given and
//! splits what comes back into whole RESP replies with its own small scanner, so the
//! assertions never go through the code under test.
//!
//! Included with `#[path]` by several test binaries; each uses a different subset.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long any single wait for the server may take before the test fails.
pub const REPLY_TIMEOUT_SECS: u64 = 15;
/// How long one blocking read waits before the reader checks its deadline again.
pub const READ_SLICE_MILLIS: u64 = 100;

/// One client connection.
pub struct Raw {
    stream: TcpStream,
    /// Bytes read but not yet handed out.
    pending: Vec<u8>,
}

/// How a connection ended when it was read to the end.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// An orderly close (FIN).
    Eof,
    /// The server reset the connection (it closed with unread input); still a close.
    Reset,
}

impl Raw {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect to the server");
        stream
            .set_read_timeout(Some(Duration::from_millis(READ_SLICE_MILLIS)))
            .expect("set read timeout");
        stream.set_nodelay(true).expect("set nodelay");
        Raw {
            stream,
            pending: Vec::new(),
        }
    }

    /// This end's address, as the server sees it in `CLIENT LIST`.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local address")
    }

    /// A second handle on the same socket, for writing from another thread.
    pub fn writer(&self) -> TcpStream {
        self.stream.try_clone().expect("clone the socket")
    }

    /// Sends `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the server");
    }

    /// Reads more bytes into `pending`; `Ok(false)` on a timeout tick, `Err` on close.
    fn fill(&mut self) -> Result<bool, End> {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(End::Eof),
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Err(End::Reset),
            Err(e) => panic!("read from the server: {e}"),
        }
    }

    /// Reads exactly `n` bytes.
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(REPLY_TIMEOUT_SECS);
        while self.pending.len() < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} bytes; got {:?}",
                shown(&self.pending)
            );
            if let Err(end) = self.fill() {
                panic!(
                    "connection closed ({end:?}) after {:?}, wanted {n} bytes",
                    shown(&self.pending)
                );
            }
        }
        self.pending.drain(..n).collect()
    }

    /// Reads one whole reply, as the bytes that were sent.
    pub fn reply(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(REPLY_TIMEOUT_SECS);
        loop {
            if let Some(n) = reply_len(&self.pending) {
                return self.pending.drain(..n).collect();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for a reply; got {:?}",
                shown(&self.pending)
            );
            if let Err(end) = self.fill() {
                panic!(
                    "connection closed ({end:?}) in the middle of {:?}",
                    shown(&self.pending)
                );
            }
        }
    }

    /// Reads one reply and returns it as text (lossy).
    pub fn reply_text(&mut self) -> String {
        String::from_utf8_lossy(&self.reply()).into_owned()
    }

    /// Sends `request` and checks that the next reply is exactly `want`.
    pub fn exchange(&mut self, request: &[u8], want: &[u8]) {
        self.send(request);
        self.expect(want);
    }

    /// Checks that the next bytes are exactly `want`.
    pub fn expect(&mut self, want: &[u8]) {
        let got = self.read_bytes(want.len());
        assert_eq!(
            shown(&got),
            shown(want),
            "after {:?} were already queued",
            shown(&self.pending)
        );
    }

    /// Sends a command as a multibulk request and returns its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&multibulk(args));
        self.reply()
    }

    /// [`Raw::call`] with string arguments, returning the reply as text.
    pub fn call_str(&mut self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        String::from_utf8_lossy(&self.call(&args)).into_owned()
    }

    /// Reads until the server closes the connection; returns everything that came first.
    pub fn read_to_close(&mut self) -> (Vec<u8>, End) {
        let deadline = Instant::now() + Duration::from_secs(REPLY_TIMEOUT_SECS);
        loop {
            assert!(
                Instant::now() < deadline,
                "the server did not close the connection; got {:?}",
                shown(&self.pending)
            );
            if let Err(end) = self.fill() {
                return (std::mem::take(&mut self.pending), end);
            }
        }
    }

    /// Checks that the server sends exactly `want` and then closes the connection.
    pub fn expect_then_close(&mut self, want: &[u8]) {
        let (got, _) = self.read_to_close();
        assert_eq!(shown(&got), shown(want));
    }

    /// Whether the server has closed the connection, waiting up to `within` to see it.
    /// Bytes that arrive meanwhile are kept for later reads.
    pub fn closes_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.fill().is_err() {
                return true;
            }
        }
        false
    }
}

/// Encodes a request as a RESP multibulk array of bulk strings.
pub fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// [`multibulk`] for string arguments.
pub fn request(args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    multibulk(&args)
}

/// The encoded bulk string reply for `s`.
pub fn bulk(s: &str) -> Vec<u8> {
    format!("${}\r\n{s}\r\n", s.len()).into_bytes()
}

/// Bytes shown readably in assertion messages (control bytes escaped).
pub fn shown(bytes: &[u8]) -> String {
    const SHOWN_BYTES: usize = 2000;
    let mut s: String = bytes
        .iter()
        .take(SHOWN_BYTES)
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    if bytes.len() > SHOWN_BYTES {
        s.push_str(&format!("... ({} bytes in all)", bytes.len()));
    }
    s
}

/// The length of the first whole RESP2/RESP3 reply in `buf`, if it has all arrived.
pub fn reply_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(&buf[1..line_end]).ok();
    let after = line_end + 2;
    let count = || header.and_then(|h| h.parse::<i64>().ok());
    let elements = match buf.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => return Some(after),
        b'$' | b'=' | b'!' => {
            let n = count()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + usize::try_from(n).ok()? + 2;
            return (buf.len() >= end).then_some(end);
        }
        b'*' | b'~' | b'>' => count()?,
        b'%' | b'|' => count()?.checked_mul(2)?,
        _ => return Some(after),
    };
    let mut at = after;
    for _ in 0..elements.max(0) {
        at += reply_len(&buf[at..])?;
    }
    // An attribute (`|`) precedes the reply it describes.
    if buf[0] == b'|' {
        at += reply_len(&buf[at..])?;
    }
    Some(at)
}

/// Splits a whole reply into its elements' encodings (for arrays, sets, maps).
pub fn elements(reply: &[u8]) -> Vec<Vec<u8>> {
    let line_end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a reply has a header line");
    let mut at = line_end + 2;
    let mut out = Vec::new();
    while at < reply.len() {
        let n = reply_len(&reply[at..]).expect("whole reply");
        out.push(reply[at..at + n].to_vec());
        at += n;
    }
    out
}

/// The payload of a bulk string or verbatim reply (without a verbatim's `txt:` prefix).
pub fn bulk_payload(reply: &[u8]) -> Vec<u8> {
    let line_end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a reply has a header line");
    let body = &reply[line_end + 2..reply.len() - 2];
    match reply.first() {
        Some(b'$') => body.to_vec(),
        Some(b'=') => body[4..].to_vec(),
        _ => panic!("not a bulk reply: {:?}", shown(reply)),
    }
}

/// The value of an integer reply.
pub fn int_of(reply: &[u8]) -> i64 {
    let text = std::str::from_utf8(reply).expect("ascii integer reply");
    text.strip_prefix(':')
        .and_then(|t| t.strip_suffix("\r\n"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("not an integer reply: {text:?}"))
}

/// The resident set size of process `pid` in bytes, from `/proc/<pid>/status`.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line");
    kib * 1024
}

/// Checks `check` until it returns `Some`, failing the test after `timeout`. Every check
/// asks the server something (a round trip), which paces the loop without a sleep.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}
