//! Incremental, zero-copy RESP decoding under [`Limits`].
//!
//! Two decoders share the same contract:
//!
//! - [`FrameDecoder`] reads any RESP2/RESP3 [`Frame`](crate::Frame): replies on the client
//!   side, values anywhere else.
//! - [`RequestDecoder`] reads commands on the server side, the way Redis's own parser does:
//!   multibulk requests (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline ones (`GET k\r\n`).
//!
//! # The contract
//!
//! - `Ok(None)` means "not enough bytes yet". Nothing has been consumed from the buffer
//!   except complete frames the decoder skipped (blank inline lines, `*0`). Append more
//!   bytes and call again.
//! - `Ok(Some(_))` consumes exactly the bytes of that one frame. The strings in the result
//!   are slices of those bytes (`split_to(n).freeze()`), not copies.
//! - The decoder remembers how far it has scanned, so a frame fed one byte at a time costs
//!   O(frame size) in total, and a frame split at any byte boundary decodes the same way.
//!   Between calls the caller may only append to the buffer; a caller that throws the buffer
//!   away must call `reset`.
//! - Every declared length is checked against [`Limits`] as soon as its header line is
//!   complete, before any payload is awaited; nothing is ever allocated or reserved by a
//!   declared size (element vectors start at most 1024 long and grow as elements arrive).
//! - `Err(_)` means the stream cannot be trusted any more: reply with the error and close
//!   the connection. The decoder resets itself; some bytes of the bad frame may already
//!   have been consumed.

mod frame;
mod inline;
mod request;
mod tape;

pub use frame::FrameDecoder;
pub use request::RequestDecoder;

use bytes::Bytes;

/// The most element slots reserved up front for a declared aggregate; beyond that vectors
/// grow as elements actually arrive, so a lying header cannot make us allocate.
const MAX_PREALLOCATED_ELEMENTS: usize = 1024;

/// Bounds on what a peer may make a decoder hold.
///
/// Reaching a limit is a protocol error: the frame is rejected as soon as the offending
/// header (or, for lines, the offending number of bytes) has arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest bulk string payload, in bytes.
    pub max_bulk_len: usize,
    /// The most elements one aggregate may declare (pairs, for maps and attributes).
    pub max_array_len: usize,
    /// The deepest nesting of aggregates (only [`FrameDecoder`] reads nested frames).
    pub max_depth: usize,
    /// The longest inline request or RESP line (including length headers), in bytes.
    pub max_inline_len: usize,
}

impl Limits {
    /// 512 MiB: Redis's default `proto-max-bulk-len`.
    pub const DEFAULT_MAX_BULK_BYTES: usize = 512 * 1024 * 1024;
    /// One million elements: far above any sane command, far below what would exhaust memory
    /// through per-element overhead.
    pub const DEFAULT_MAX_ARRAY_LEN: usize = 1_048_576;
    /// 128 levels: deeper than any Redis reply, shallow enough for recursive consumers.
    pub const DEFAULT_MAX_DEPTH: usize = 128;
    /// 64 KiB: Redis's `PROTO_INLINE_MAX_SIZE`.
    pub const DEFAULT_MAX_INLINE_BYTES: usize = 64 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: Limits::DEFAULT_MAX_BULK_BYTES,
            max_array_len: Limits::DEFAULT_MAX_ARRAY_LEN,
            max_depth: Limits::DEFAULT_MAX_DEPTH,
            max_inline_len: Limits::DEFAULT_MAX_INLINE_BYTES,
        }
    }
}

/// Why a line could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineError {
    /// More than the allowed bytes before the CR.
    TooLong,
    /// A CR followed by something other than LF.
    NoLf,
}

/// Finds the CRLF ending the line that starts at `start` (the type byte), resuming the
/// search at `*scanned`. Returns the index of the CR, or `None` if more bytes are needed.
///
/// A line is too long when more than `max` bytes precede its CR, checked the same way
/// whether or not the CR has arrived, so the outcome does not depend on chunking.
fn find_line_end(
    buf: &[u8],
    start: usize,
    scanned: &mut usize,
    max: usize,
) -> Result<Option<usize>, LineError> {
    let from = (*scanned).max(start.saturating_add(1));
    let found = buf
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\r'));
    let Some(offset) = found else {
        *scanned = buf.len().max(from);
        return match buf.len().saturating_sub(start) > max {
            true => Err(LineError::TooLong),
            false => Ok(None),
        };
    };
    let cr = from + offset;
    *scanned = cr;
    if cr - start > max {
        return Err(LineError::TooLong);
    }
    match buf.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(cr)),
        Some(_) => Err(LineError::NoLf),
    }
}

/// Parses a length the way Redis's `string2ll` does: an optional `-`, digits, no leading
/// zeros, no `+`, no spaces, no `-0`, and it must fit an `i64`.
fn parse_length(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    parse_digits(digits, negative)
}

/// Parses a `:` integer: an optional sign, then at least one digit; it must fit an `i64`.
fn parse_integer(text: &[u8]) -> Option<i64> {
    match text.split_first() {
        Some((b'-', rest)) => parse_digits(rest, true),
        Some((b'+', rest)) => parse_digits(rest, false),
        _ => parse_digits(text, false),
    }
}

/// Accumulates toward the sign so that `i64::MIN` parses without overflow.
fn parse_digits(digits: &[u8], negative: bool) -> Option<i64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0i64, |acc, &b| {
        let digit = i64::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        let acc = acc.checked_mul(10)?;
        match negative {
            true => acc.checked_sub(digit),
            false => acc.checked_add(digit),
        }
    })
}

/// A byte range inside the buffer a frame is being decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The bytes of this span in `frame`, without copying them.
    ///
    /// Spans are only ever recorded inside the frame they are cut from; an out-of-range span
    /// (a decoder bug) yields an empty string rather than a panic.
    fn slice_of(self, frame: &Bytes) -> Bytes {
        debug_assert!(self.start <= self.end && self.end <= frame.len());
        match self.start <= self.end && self.end <= frame.len() {
            true => frame.slice(self.start..self.end),
            false => Bytes::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_parse_like_string2ll() {
        let cases: &[(&str, Option<i64>)] = &[
            ("0", Some(0)),
            ("12", Some(12)),
            ("-1", Some(-1)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("", None),
            ("-", None),
            ("-0", None),
            ("01", None),
            ("+1", None),
            (" 1", None),
            ("1a", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_length(text.as_bytes()), *want, "{text:?}");
        }
    }

    #[test]
    fn integers_accept_a_plus_sign_and_leading_zeros() {
        assert_eq!(parse_integer(b"+7"), Some(7));
        assert_eq!(parse_integer(b"007"), Some(7));
        assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_integer(b"+"), None);
        assert_eq!(parse_integer(b"1.5"), None);
    }

    #[test]
    fn line_search_resumes_and_bounds_the_line() {
        let mut scanned = 0;
        assert_eq!(find_line_end(b"+OK", 0, &mut scanned, 10), Ok(None));
        assert_eq!(scanned, 3);
        assert_eq!(find_line_end(b"+OK\r", 0, &mut scanned, 10), Ok(None));
        assert_eq!(find_line_end(b"+OK\r\n", 0, &mut scanned, 10), Ok(Some(3)));
        let mut scanned = 0;
        assert_eq!(
            find_line_end(b"+OK\rx", 0, &mut scanned, 10),
            Err(LineError::NoLf)
        );
        let mut scanned = 0;
        assert_eq!(
            find_line_end(b"+0123", 0, &mut scanned, 4),
            Err(LineError::TooLong)
        );
        let mut scanned = 0;
        assert_eq!(find_line_end(b"+012\r\n", 0, &mut scanned, 4), Ok(Some(4)));
    }
}
