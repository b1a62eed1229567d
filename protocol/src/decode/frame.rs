//! [`FrameDecoder`]: any RESP2/RESP3 frame, incrementally.

use bytes::BytesMut;

use super::tape::{build, Kind, Token};
use super::{find_line_end, parse_integer, parse_length, Limits, LineError, Span};
use crate::error::ProtocolError;
use crate::frame::Frame;

/// Token tapes longer than this are freed after their frame, not kept for the next one.
const MAX_RETAINED_TAPE_TOKENS: usize = 64 * 1024;

/// Decodes RESP2 and RESP3 frames of every type: replies on the client side, and any value
/// elsewhere. `$-1` decodes to [`Frame::Null`], `*-1` to [`Frame::NullArray`] and `_` to
/// [`Frame::Null`].
///
/// The decoder scans a frame as its bytes arrive, keeping only its offset, the counts of the
/// aggregates still open and a compact record of the elements seen (each string as a byte
/// range). When the frame is complete its bytes are split off the buffer and every string in
/// the returned frame is a slice of them.
///
/// See the [module docs](crate::decode) for the `Ok(None)` / zero-copy / limits contract.
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use cachalot_protocol::{Frame, FrameDecoder, Limits};
///
/// let mut decoder = FrameDecoder::new(Limits::default());
/// let mut buf = BytesMut::from(&b"*2\r\n:1\r\n$3\r\nfo"[..]);
/// assert_eq!(decoder.decode(&mut buf).unwrap(), None);
/// buf.extend_from_slice(b"o\r\n");
/// let frame = decoder.decode(&mut buf).unwrap();
/// assert_eq!(frame, Some(Frame::Array(vec![Frame::Integer(1), Frame::bulk("foo")])));
/// assert!(buf.is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    limits: Limits,
    /// Offset of the next element's type byte (or of the awaited payload, see `payload`).
    pos: usize,
    /// How far the line at `pos` has been searched for its CR.
    scanned: usize,
    /// A bulk-like header already read whose payload starts at `pos`.
    payload: Option<Payload>,
    /// Elements still expected by each open aggregate, outermost first.
    open: Vec<usize>,
    /// The elements of the frame scanned so far.
    tape: Vec<Token>,
}

/// A length-prefixed payload being awaited.
#[derive(Clone, Copy, Debug)]
struct Payload {
    type_byte: u8,
    len: usize,
}

impl FrameDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        FrameDecoder {
            limits,
            pos: 0,
            scanned: 0,
            payload: None,
            open: Vec::new(),
            tape: Vec::new(),
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forgets any partly read frame, for a caller that discards its buffer.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.scanned = 0;
        self.payload = None;
        self.open.clear();
        self.tape.clear();
        if self.tape.capacity() > MAX_RETAINED_TAPE_TOKENS {
            self.tape = Vec::new();
        }
    }

    /// Reads the next frame from `buf`, or `None` if it is not complete yet.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] for a malformed frame or one that breaks the limits; the stream
    /// cannot be trusted after it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if self.pos > buf.len() || self.scanned > buf.len() {
            // The caller replaced the buffer without calling reset(): start over.
            self.reset();
        }
        loop {
            match self.step(buf) {
                Ok(None) => return Ok(None),
                Ok(Some(false)) => {}
                Ok(Some(true)) => {
                    let bytes = buf.split_to(self.pos).freeze();
                    let frame = build(&self.tape, &bytes);
                    self.reset();
                    return Ok(Some(frame));
                }
                Err(err) => {
                    self.reset();
                    return Err(err);
                }
            }
        }
    }

    /// Reads one element header or payload. `Some(true)` when that completed the frame.
    fn step(&mut self, buf: &[u8]) -> Result<Option<bool>, ProtocolError> {
        if let Some(payload) = self.payload {
            return self.payload(buf, payload);
        }
        let Some(&type_byte) = buf.get(self.pos) else {
            return Ok(None);
        };
        let max_line = self.limits.max_inline_len;
        let too_long = match type_byte {
            b'+' | b'-' | b':' | b',' | b'#' | b'(' | b'_' => {
                ProtocolError::LineTooLong { max: max_line }
            }
            b'$' | b'=' | b'!' => ProtocolError::BulkCountTooLong { max: max_line },
            b'*' | b'%' | b'~' | b'>' | b'|' => {
                ProtocolError::MultibulkCountTooLong { max: max_line }
            }
            byte => return Err(ProtocolError::UnknownType { byte }),
        };
        let cr = match find_line_end(buf, self.pos, &mut self.scanned, max_line) {
            Ok(Some(cr)) => cr,
            Ok(None) => return Ok(None),
            Err(LineError::TooLong) => return Err(too_long),
            Err(LineError::NoLf) => return Err(ProtocolError::LineNotTerminated),
        };
        let span = Span {
            start: self.pos + 1,
            end: cr,
        };
        let line = buf.get(span.start..span.end).unwrap_or_default();
        self.pos = cr + 2;
        self.scanned = self.pos;
        let token = match type_byte {
            b'+' => Token::Simple(span),
            b'-' => Token::Error(span),
            b':' => Token::Integer(parse_integer(line).ok_or(ProtocolError::InvalidInteger)?),
            b',' => Token::Double(parse_double(line).ok_or(ProtocolError::InvalidDouble)?),
            b'#' => match line {
                b"t" => Token::Boolean(true),
                b"f" => Token::Boolean(false),
                _ => return Err(ProtocolError::InvalidBoolean),
            },
            b'(' => match is_big_number(line) {
                true => Token::BigNumber(span),
                false => return Err(ProtocolError::InvalidBigNumber),
            },
            b'_' => match line.is_empty() {
                true => Token::Null,
                false => return Err(ProtocolError::InvalidNull),
            },
            b'$' | b'=' | b'!' => {
                match parse_length(line).ok_or(ProtocolError::InvalidBulkLength)? {
                    -1 if type_byte == b'$' => Token::Null,
                    len => {
                        let len = self.check_bulk_len(len)?;
                        if type_byte == b'=' && len < 4 {
                            return Err(ProtocolError::InvalidVerbatim);
                        }
                        self.payload = Some(Payload { type_byte, len });
                        return Ok(Some(false));
                    }
                }
            }
            _ => match parse_length(line).ok_or(ProtocolError::InvalidMultibulkLength)? {
                -1 if type_byte == b'*' => Token::NullArray,
                count => return self.open_aggregate(type_byte, count).map(Some),
            },
        };
        self.tape.push(token);
        Ok(Some(self.close_element()))
    }

    /// Waits for a bulk-like payload at `pos`, then records it.
    fn payload(&mut self, buf: &[u8], payload: Payload) -> Result<Option<bool>, ProtocolError> {
        let end = self.pos.saturating_add(payload.len);
        // Reject a bad terminator as soon as its first byte shows, not when it completes.
        match (buf.get(end), buf.get(end.saturating_add(1))) {
            (None, _) | (Some(b'\r'), None) => return Ok(None),
            (Some(b'\r'), Some(b'\n')) => {}
            _ => return Err(ProtocolError::BulkNotTerminated),
        }
        let span = Span {
            start: self.pos,
            end,
        };
        let token = match payload.type_byte {
            b'=' => match buf.get(span.start..span.end) {
                Some([a, b, c, b':', ..]) => Token::Verbatim {
                    format: [*a, *b, *c],
                    text: Span {
                        start: span.start + 4,
                        end,
                    },
                },
                _ => return Err(ProtocolError::InvalidVerbatim),
            },
            b'!' => Token::BulkError(span),
            _ => Token::Bulk(span),
        };
        self.payload = None;
        self.pos = end + 2;
        self.scanned = self.pos;
        self.tape.push(token);
        Ok(Some(self.close_element()))
    }

    fn check_bulk_len(&self, len: i64) -> Result<usize, ProtocolError> {
        let len = u64::try_from(len).map_err(|_| ProtocolError::InvalidBulkLength)?;
        let max = self.limits.max_bulk_len;
        usize::try_from(len)
            .ok()
            .filter(|&n| n <= max)
            .ok_or(ProtocolError::BulkTooLarge { len, max })
    }

    /// Records an aggregate header of `count` entries. `true` when that completed the frame.
    fn open_aggregate(&mut self, type_byte: u8, count: i64) -> Result<bool, ProtocolError> {
        let (kind, per_entry, extra) = match type_byte {
            b'*' => (Kind::Array, 1, 0),
            b'~' => (Kind::Set, 1, 0),
            b'>' => (Kind::Push, 1, 0),
            b'%' => (Kind::Map, 2, 0),
            _ => (Kind::Attribute, 2, 1),
        };
        let count = u64::try_from(count).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
        let max = self.limits.max_array_len;
        let too_long = ProtocolError::ArrayTooLong { len: count, max };
        let children = usize::try_from(count)
            .ok()
            .filter(|&n| n <= max)
            .and_then(|n| n.checked_mul(per_entry))
            .and_then(|n| n.checked_add(extra))
            .ok_or(too_long)?;
        if self.open.len() >= self.limits.max_depth {
            return Err(ProtocolError::NestingTooDeep {
                max: self.limits.max_depth,
            });
        }
        self.tape.push(Token::Aggregate { kind, children });
        if children == 0 {
            return Ok(self.close_element());
        }
        self.open.push(children);
        Ok(false)
    }

    /// Counts one finished element against the open aggregates, closing those it completes.
    /// `true` when no aggregate is left open, i.e. the frame is complete.
    fn close_element(&mut self) -> bool {
        while let Some(remaining) = self.open.last_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining > 0 {
                return false;
            }
            self.open.pop();
        }
        true
    }
}

/// Parses a RESP3 double: a decimal or exponent number, `inf`, `-inf` or `nan`.
fn parse_double(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    // Rust also accepts "infinity" and a leading '+'; being lenient on input costs nothing.
    text.parse().ok()
}

/// `[+-]?[0-9]+`.
fn is_big_number(text: &[u8]) -> bool {
    let digits = match text.split_first() {
        Some((b'-' | b'+', rest)) => rest,
        _ => text,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn small_limits() -> Limits {
        Limits {
            max_bulk_len: 8,
            max_array_len: 4,
            max_depth: 2,
            max_inline_len: 16,
        }
    }

    fn decode_one(limits: Limits, input: &[u8]) -> Result<Option<Frame>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        FrameDecoder::new(limits).decode(&mut buf)
    }

    fn b(text: &'static str) -> Bytes {
        Bytes::from_static(text.as_bytes())
    }

    #[test]
    fn every_type_decodes() {
        let cases: Vec<(&str, Frame)> = vec![
            ("+OK\r\n", Frame::simple("OK")),
            ("-ERR x\r\n", Frame::error("ERR x")),
            (":-12\r\n", Frame::Integer(-12)),
            ("$3\r\nfoo\r\n", Frame::bulk("foo")),
            ("$0\r\n\r\n", Frame::bulk("")),
            ("$-1\r\n", Frame::Null),
            ("*-1\r\n", Frame::NullArray),
            ("_\r\n", Frame::Null),
            ("*0\r\n", Frame::Array(vec![])),
            (
                "*2\r\n:1\r\n*1\r\n+a\r\n",
                Frame::Array(vec![
                    Frame::Integer(1),
                    Frame::Array(vec![Frame::simple("a")]),
                ]),
            ),
            (
                "%1\r\n+k\r\n:1\r\n",
                Frame::Map(vec![(Frame::simple("k"), Frame::Integer(1))]),
            ),
            ("~1\r\n#t\r\n", Frame::Set(vec![Frame::Boolean(true)])),
            (">1\r\n#f\r\n", Frame::Push(vec![Frame::Boolean(false)])),
            (",1.5\r\n", Frame::Double(1.5)),
            (",-inf\r\n", Frame::Double(f64::NEG_INFINITY)),
            (",3\r\n", Frame::Double(3.0)),
            ("(-123\r\n", Frame::BigNumber(b("-123"))),
            (
                "=6\r\ntxt:hi\r\n",
                Frame::Verbatim {
                    format: *b"txt",
                    text: b("hi"),
                },
            ),
            ("!3\r\nERR\r\n", Frame::BulkError(b("ERR"))),
            (
                "|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
                Frame::Attribute {
                    attributes: vec![(Frame::simple("ttl"), Frame::Integer(3))],
                    data: Box::new(Frame::bulk("v")),
                },
            ),
            (
                "|0\r\n:1\r\n",
                Frame::Attribute {
                    attributes: vec![],
                    data: Box::new(Frame::Integer(1)),
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                decode_one(Limits::default(), input.as_bytes()),
                Ok(Some(want)),
                "{input:?}"
            );
        }
        let nan = decode_one(Limits::default(), b",nan\r\n");
        assert!(matches!(nan, Ok(Some(Frame::Double(x))) if x.is_nan()));
    }

    #[test]
    fn malformed_frames_get_protocol_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"?x\r\n", "unknown type byte '?'"),
            (b":1x\r\n", "invalid integer"),
            (b":\r\n", "invalid integer"),
            (b",x\r\n", "invalid double"),
            (b"#x\r\n", "invalid boolean"),
            (b"(1.5\r\n", "invalid big number"),
            (b"_x\r\n", "invalid null"),
            (b"=3\r\ntxt\r\n", "invalid verbatim string"),
            (b"=4\r\ntxt;\r\n", "invalid verbatim string"),
            (b"$-2\r\n", "invalid bulk length"),
            (b"$9\r\n", "invalid bulk length"),
            (b"!-1\r\n", "invalid bulk length"),
            (b"$1\r\nab\r\n", "expected CRLF after bulk"),
            (b"*-2\r\n", "invalid multibulk length"),
            (b"~-1\r\n", "invalid multibulk length"),
            (b"*5\r\n", "invalid multibulk length"),
            (b"%5\r\n", "invalid multibulk length"),
            (b"*1\r\n*1\r\n*1\r\n", "nesting too deep"),
            (b"+OK\rx", "expected LF after CR"),
            (b"+0123456789abcdef", "too big line"),
            (b"$0123456789abcdef", "too big bulk count string"),
            (b"*0123456789abcdef", "too big mbulk count string"),
        ];
        for (input, text) in cases {
            let err = decode_one(small_limits(), input)
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
    fn strings_share_the_input_buffer() {
        let mut buf = BytesMut::from(&b"*1\r\n$5\r\nhello\r\n+next\r\n"[..]);
        let start = buf.as_ptr() as usize;
        let frame = FrameDecoder::new(Limits::default()).decode(&mut buf);
        let Ok(Some(Frame::Array(items))) = frame else {
            panic!("{frame:?}")
        };
        let Some(Frame::Bulk(hello)) = items.first() else {
            panic!("{items:?}")
        };
        assert_eq!(hello.as_ptr() as usize, start + 8);
        assert_eq!(&buf[..], b"+next\r\n");
    }

    #[test]
    fn an_oversized_bulk_header_fails_before_its_payload() {
        let got = decode_one(Limits::default(), b"$999999999999\r\n");
        assert_eq!(
            got,
            Err(ProtocolError::BulkTooLarge {
                len: 999_999_999_999,
                max: 512 << 20
            })
        );
    }

    #[test]
    fn a_decoder_is_reusable_after_an_error() {
        let mut decoder = FrameDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"*2\r\n:1\r\n:x\r\n"[..]);
        assert_eq!(decoder.decode(&mut buf), Err(ProtocolError::InvalidInteger));
        let mut buf = BytesMut::from(&b":2\r\n"[..]);
        assert_eq!(decoder.decode(&mut buf), Ok(Some(Frame::Integer(2))));
    }
}
