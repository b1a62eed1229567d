//! [`RequestDecoder`]: commands as a Redis server reads them.

use bytes::{Buf, Bytes, BytesMut};

use super::inline::split_inline;
use super::{find_line_end, parse_length, Limits, LineError, Span, MAX_PREALLOCATED_ELEMENTS};
use crate::error::ProtocolError;

/// Decodes client requests into argument lists, following Redis's request parser
/// (`processMultibulkBuffer` and `processInlineBuffer` in `networking.c`).
///
/// A request that starts with `*` is a multibulk array of bulk strings; anything else is an
/// inline command line ending in CRLF or a bare LF, split like Redis's `sdssplitargs`:
/// whitespace-separated words, `"double quotes"` with `\n \r \t \b \a \\ \"` and `\xHH`
/// escapes, `'single quotes'` with `\'`, and a closing quote must be followed by whitespace
/// or the end of the line. Empty requests (blank lines, `*0`, `*-1`) are skipped, as Redis
/// skips them.
///
/// See the [module docs](crate::decode) for the `Ok(None)` / zero-copy / limits contract.
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use cachalot_protocol::{Limits, RequestDecoder};
///
/// let mut decoder = RequestDecoder::new(Limits::default());
/// let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n"[..]);
/// assert_eq!(decoder.decode(&mut buf).unwrap().unwrap(), vec!["GET", "k"]);
/// assert_eq!(decoder.decode(&mut buf).unwrap().unwrap(), vec!["PING"]);
/// assert_eq!(decoder.decode(&mut buf).unwrap(), None);
/// ```
#[derive(Clone, Debug)]
pub struct RequestDecoder {
    limits: Limits,
    state: State,
    /// How far the line being read has been searched for its terminator.
    scanned: usize,
    /// Where the arguments read so far of the current multibulk request lie in the buffer.
    args: Vec<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a request (offset 0 of the buffer).
    Idle,
    /// Inside a multibulk request.
    Multibulk {
        /// Bulks still to read.
        remaining: usize,
        /// Offset of the next unread byte of the request.
        pos: usize,
        /// The length of the bulk whose payload starts at `pos`, once its header is read.
        bulk_len: Option<usize>,
    },
}

/// What one parsing step achieved.
enum Step {
    NeedMore,
    Progress,
    Request(Vec<Bytes>),
}

impl RequestDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        RequestDecoder {
            limits,
            state: State::Idle,
            scanned: 0,
            args: Vec::new(),
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forgets any partly read request, for a caller that discards its buffer.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.scanned = 0;
        self.args.clear();
        if self.args.capacity() > MAX_PREALLOCATED_ELEMENTS {
            self.args = Vec::new();
        }
    }

    /// Reads the next request from `buf`: its arguments, or `None` if it is not complete yet.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] with Redis's text for a malformed or over-limit request; the
    /// connection should be closed after replying with it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let result = self.decode_inner(buf);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.scanned > buf.len()
            || matches!(self.state, State::Multibulk { pos, .. } if pos > buf.len())
        {
            // The caller replaced the buffer without calling reset(): start over.
            self.reset();
        }
        loop {
            let step = match self.state {
                State::Idle => match buf.first() {
                    None => Step::NeedMore,
                    Some(b'*') => self.multibulk_header(buf)?,
                    Some(_) => self.inline(buf)?,
                },
                State::Multibulk {
                    remaining,
                    pos,
                    bulk_len,
                } => self.bulk(buf, remaining, pos, bulk_len)?,
            };
            match step {
                Step::NeedMore => return Ok(None),
                Step::Progress => {}
                Step::Request(args) => return Ok(Some(args)),
            }
        }
    }

    /// Reads one inline line; blank lines are consumed and skipped.
    fn inline(&mut self, buf: &mut BytesMut) -> Result<Step, ProtocolError> {
        let max = self.limits.max_inline_len;
        let found = buf
            .get(self.scanned..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'));
        let Some(offset) = found else {
            self.scanned = buf.len();
            // A trailing CR may be the start of the terminator: don't count it yet.
            let len = buf.len() - usize::from(buf.last() == Some(&b'\r'));
            return match len > max {
                true => Err(ProtocolError::InlineTooLong { max }),
                false => Ok(Step::NeedMore),
            };
        };
        let newline = self.scanned + offset;
        let end = match newline.checked_sub(1) {
            Some(before) if buf.get(before) == Some(&b'\r') => before,
            _ => newline,
        };
        if end > max {
            return Err(ProtocolError::InlineTooLong { max });
        }
        let mut line = buf.split_to(newline + 1).freeze();
        line.truncate(end);
        self.scanned = 0;
        let args = split_inline(&line)?;
        Ok(match args.is_empty() {
            true => Step::Progress,
            false => Step::Request(args),
        })
    }

    /// Reads the `*count` line of a multibulk request.
    fn multibulk_header(&mut self, buf: &mut BytesMut) -> Result<Step, ProtocolError> {
        let max_line = self.limits.max_inline_len;
        let cr = match find_line_end(buf, 0, &mut self.scanned, max_line) {
            Ok(Some(cr)) => cr,
            Ok(None) => return Ok(Step::NeedMore),
            Err(LineError::TooLong) => {
                return Err(ProtocolError::MultibulkCountTooLong { max: max_line })
            }
            Err(LineError::NoLf) => return Err(ProtocolError::InvalidMultibulkLength),
        };
        let count = buf
            .get(1..cr)
            .and_then(parse_length)
            .ok_or(ProtocolError::InvalidMultibulkLength)?;
        let next = cr + 2;
        let Ok(count) = u64::try_from(count) else {
            // Redis skips `*-1` and any other non-positive count.
            buf.advance(next);
            self.scanned = 0;
            return Ok(Step::Progress);
        };
        let max = self.limits.max_array_len;
        let remaining = usize::try_from(count)
            .ok()
            .filter(|&n| n <= max)
            .ok_or(ProtocolError::ArrayTooLong { len: count, max })?;
        if remaining == 0 {
            buf.advance(next);
            self.scanned = 0;
            return Ok(Step::Progress);
        }
        self.args.clear();
        self.args.reserve(remaining.min(MAX_PREALLOCATED_ELEMENTS));
        self.state = State::Multibulk {
            remaining,
            pos: next,
            bulk_len: None,
        };
        self.scanned = next;
        Ok(Step::Progress)
    }

    /// Reads the next bulk header or payload of a multibulk request.
    fn bulk(
        &mut self,
        buf: &mut BytesMut,
        remaining: usize,
        pos: usize,
        bulk_len: Option<usize>,
    ) -> Result<Step, ProtocolError> {
        let Some(len) = bulk_len else {
            return self.bulk_header(buf, remaining, pos);
        };
        let end = pos.saturating_add(len);
        // Reject a bad terminator as soon as its first byte shows, not when it completes.
        match (buf.get(end), buf.get(end.saturating_add(1))) {
            (None, _) | (Some(b'\r'), None) => return Ok(Step::NeedMore),
            (Some(b'\r'), Some(b'\n')) => {}
            _ => return Err(ProtocolError::BulkNotTerminated),
        }
        self.args.push(Span { start: pos, end });
        let next = end + 2;
        let remaining = remaining.saturating_sub(1);
        if remaining > 0 {
            self.state = State::Multibulk {
                remaining,
                pos: next,
                bulk_len: None,
            };
            self.scanned = next;
            return Ok(Step::Progress);
        }
        let frame = buf.split_to(next).freeze();
        let args = self.args.iter().map(|span| span.slice_of(&frame)).collect();
        self.reset();
        Ok(Step::Request(args))
    }

    /// Reads a `$len` line.
    fn bulk_header(
        &mut self,
        buf: &mut BytesMut,
        remaining: usize,
        pos: usize,
    ) -> Result<Step, ProtocolError> {
        match buf.get(pos) {
            None => return Ok(Step::NeedMore),
            Some(b'$') => {}
            Some(&got) => return Err(ProtocolError::ExpectedBulk { got }),
        }
        let max_line = self.limits.max_inline_len;
        let cr = match find_line_end(buf, pos, &mut self.scanned, max_line) {
            Ok(Some(cr)) => cr,
            Ok(None) => return Ok(Step::NeedMore),
            Err(LineError::TooLong) => {
                return Err(ProtocolError::BulkCountTooLong { max: max_line })
            }
            Err(LineError::NoLf) => return Err(ProtocolError::InvalidBulkLength),
        };
        let len = buf
            .get(pos + 1..cr)
            .and_then(parse_length)
            .and_then(|len| u64::try_from(len).ok())
            .ok_or(ProtocolError::InvalidBulkLength)?;
        let max = self.limits.max_bulk_len;
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= max)
            .ok_or(ProtocolError::BulkTooLarge { len, max })?;
        let next = cr + 2;
        self.state = State::Multibulk {
            remaining,
            pos: next,
            bulk_len: Some(len),
        };
        self.scanned = next;
        Ok(Step::Progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_limits() -> Limits {
        Limits {
            max_bulk_len: 8,
            max_array_len: 4,
            max_depth: 2,
            max_inline_len: 16,
        }
    }

    /// Decodes everything in `input` at once.
    fn decode_all(limits: Limits, input: &[u8]) -> Result<Vec<Vec<String>>, ProtocolError> {
        let mut decoder = RequestDecoder::new(limits);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(args) = decoder.decode(&mut buf)? {
            out.push(
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            );
        }
        Ok(out)
    }

    #[test]
    fn malformed_requests_get_redis_error_texts() {
        let cases: &[(&[u8], &str)] = &[
            (b"*x\r\n", "invalid multibulk length"),
            (b"*5\r\n", "invalid multibulk length"),
            (b"*1\rx", "invalid multibulk length"),
            (b"*1\r\n$x\r\n", "invalid bulk length"),
            (b"*1\r\n$-1\r\n", "invalid bulk length"),
            (b"*1\r\n$9\r\n", "invalid bulk length"),
            (b"*1\r\n$01\r\n", "invalid bulk length"),
            (b"*1\r\n:1\r\n", "expected '$', got ':'"),
            (b"*2\r\n$1\r\na\r\n\r\n", "expected '$', got ' '"),
            (b"*1\r\n$1\r\nabc", "expected CRLF after bulk"),
            (b"*1\r\n$1\r\na\rx", "expected CRLF after bulk"),
            (b"GET aaaaaaaaaaaaaaaaaaa", "too big inline request"),
            (b"*11111111111111111", "too big mbulk count string"),
            (b"*1\r\n$11111111111111111", "too big bulk count string"),
            (b"set \"a b\r\n", "unbalanced quotes in request"),
        ];
        for (input, text) in cases {
            let err = decode_all(small_limits(), input)
                .err()
                .map(|e| e.to_string());
            let want = format!("Protocol error: {text}");
            assert_eq!(
                err.as_deref(),
                Some(want.as_str()),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let input = b"*4\r\n$8\r\n12345678\r\n$0\r\n\r\n$1\r\na\r\n$1\r\nb\r\n0123456789abcdef\r\n";
        let got = decode_all(small_limits(), input).map(|r| r.len());
        assert_eq!(got, Ok(2));
    }

    #[test]
    fn empty_requests_are_skipped() {
        let input = b"\r\n\n   \r\n*0\r\n*-1\r\n*-7\r\nPING\r\n\n*1\r\n$4\r\nPING\r\n";
        assert_eq!(
            decode_all(Limits::default(), input),
            Ok(vec![vec!["PING".to_owned()]; 2])
        );
    }

    #[test]
    fn inline_lines_may_end_with_a_bare_newline() {
        let got = decode_all(Limits::default(), b"SET a b\nGET a\r\n");
        let want = vec![
            vec!["SET".to_owned(), "a".into(), "b".into()],
            vec!["GET".into(), "a".into()],
        ];
        assert_eq!(got, Ok(want));
    }

    #[test]
    fn an_oversized_bulk_header_fails_before_its_payload() {
        let mut decoder = RequestDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$999999999999\r\n"[..]);
        let err = decoder.decode(&mut buf);
        assert_eq!(
            err,
            Err(ProtocolError::BulkTooLarge {
                len: 999_999_999_999,
                max: 512 << 20
            })
        );
    }

    #[test]
    fn arguments_share_the_input_buffer() {
        let mut decoder = RequestDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$5\r\nhello\r\n"[..]);
        let start = buf.as_ptr() as usize;
        let args = decoder.decode(&mut buf).ok().flatten().unwrap_or_default();
        assert_eq!(args, vec!["hello"]);
        assert_eq!(args.first().map(|a| a.as_ptr() as usize), Some(start + 8));
    }

    #[test]
    fn a_replaced_buffer_does_not_confuse_the_decoder() {
        let mut decoder = RequestDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1"[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        let mut other = BytesMut::from(&b"PING\r\n"[..]);
        assert_eq!(
            decoder.decode(&mut other),
            Ok(Some(vec![Bytes::from_static(b"PING")]))
        );
    }
}
