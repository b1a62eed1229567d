//! Encoding [`Frame`]s, and the writer functions the server calls directly on its hot path.
//!
//! Everything writes straight into a [`BytesMut`]: numbers are formatted with `itoa` and
//! `ryu` on stack buffers, so encoding allocates nothing besides growing `dst`.
//!
//! In RESP2 the RESP3-only types are downgraded the way Redis does it: maps become flat
//! arrays of `2n` elements, sets and pushes become arrays, doubles and big numbers become bulk
//! strings, booleans become the integers 1 and 0, verbatim strings become a bulk string of
//! their text, bulk errors become simple errors and attributes are dropped.

use bytes::{BufMut, BytesMut};

use crate::frame::{Frame, ProtocolVersion};

const CRLF: &[u8] = b"\r\n";

/// Appends the encoding of `frame` in dialect `version` to `dst`.
///
/// Nested frames are encoded recursively, so the nesting depth of `frame` uses stack; frames
/// that came out of the decoder are bounded by [`Limits::max_depth`](crate::Limits::max_depth).
///
/// # Examples
///
/// ```
/// use bytes::BytesMut;
/// use cachalot_protocol::{encode::encode, Frame, ProtocolVersion};
///
/// let mut out = BytesMut::new();
/// encode(&Frame::Boolean(true), ProtocolVersion::Resp2, &mut out);
/// encode(&Frame::Boolean(true), ProtocolVersion::Resp3, &mut out);
/// assert_eq!(&out[..], b":1\r\n#t\r\n");
/// ```
pub fn encode(frame: &Frame, version: ProtocolVersion, dst: &mut BytesMut) {
    let resp3 = version == ProtocolVersion::Resp3;
    match frame {
        Frame::Simple(text) => write_simple(dst, text),
        Frame::Error(text) => write_error(dst, text),
        Frame::Integer(n) => write_integer(dst, *n),
        Frame::Bulk(data) => write_bulk(dst, data),
        Frame::Null => write_null(dst, version),
        Frame::NullArray => write_null_array(dst, version),
        Frame::Array(items) => {
            write_array_header(dst, items.len());
            items.iter().for_each(|item| encode(item, version, dst));
        }
        Frame::Set(items) => {
            write_set_header(dst, items.len(), version);
            items.iter().for_each(|item| encode(item, version, dst));
        }
        Frame::Push(items) => {
            write_push_header(dst, items.len(), version);
            items.iter().for_each(|item| encode(item, version, dst));
        }
        Frame::Map(pairs) => {
            write_map_header(dst, pairs.len(), version);
            encode_pairs(pairs, version, dst);
        }
        Frame::Double(value) => write_double(dst, *value, version),
        Frame::Boolean(value) => write_boolean(dst, *value, version),
        Frame::BigNumber(digits) => write_big_number(dst, digits, version),
        Frame::Verbatim { format, text } => write_verbatim(dst, format, text, version),
        Frame::BulkError(text) => write_bulk_error(dst, text, version),
        Frame::Attribute { attributes, data } => {
            if resp3 {
                write_header(dst, b'|', attributes.len());
                encode_pairs(attributes, version, dst);
            }
            encode(data, version, dst);
        }
    }
}

fn encode_pairs(pairs: &[(Frame, Frame)], version: ProtocolVersion, dst: &mut BytesMut) {
    for (key, value) in pairs {
        encode(key, version, dst);
        encode(value, version, dst);
    }
}

/// Writes `prefix`, the decimal `n` and CRLF: every length and integer line.
fn write_header(dst: &mut BytesMut, prefix: u8, n: impl itoa::Integer) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    dst.reserve(1 + digits.len() + CRLF.len());
    dst.put_u8(prefix);
    dst.extend_from_slice(digits);
    dst.extend_from_slice(CRLF);
}

/// Writes a one-line frame; CR and LF in `text` become spaces so the line cannot break the
/// stream (Redis sanitizes error texts the same way).
fn write_line(dst: &mut BytesMut, prefix: u8, text: &[u8]) {
    dst.reserve(1 + text.len() + CRLF.len());
    dst.put_u8(prefix);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        dst.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        dst.extend_from_slice(text);
    }
    dst.extend_from_slice(CRLF);
}

/// Writes a length-prefixed payload: `$`, `=`, `!`.
fn write_blob(dst: &mut BytesMut, prefix: u8, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(len).as_bytes();
    dst.reserve(1 + digits.len() + len + 2 * CRLF.len());
    dst.put_u8(prefix);
    dst.extend_from_slice(digits);
    dst.extend_from_slice(CRLF);
    parts.iter().for_each(|part| dst.extend_from_slice(part));
    dst.extend_from_slice(CRLF);
}

/// Writes the simple string `+text`. CR and LF in `text` are replaced by spaces.
pub fn write_simple(dst: &mut BytesMut, text: &[u8]) {
    write_line(dst, b'+', text);
}

/// Writes `+OK`.
pub fn write_ok(dst: &mut BytesMut) {
    dst.extend_from_slice(b"+OK\r\n");
}

/// Writes the simple error `-text`; pass the whole text, such as `b"ERR unknown command"`.
/// CR and LF in `text` are replaced by spaces.
pub fn write_error(dst: &mut BytesMut, text: &[u8]) {
    write_line(dst, b'-', text);
}

/// Writes the integer `:n`.
pub fn write_integer(dst: &mut BytesMut, n: i64) {
    write_header(dst, b':', n);
}

/// Writes the bulk string `$len` + `data`.
pub fn write_bulk(dst: &mut BytesMut, data: &[u8]) {
    write_blob(dst, b'$', &[data]);
}

/// Writes the null bulk string: RESP2 `$-1`, RESP3 `_`.
pub fn write_null(dst: &mut BytesMut, version: ProtocolVersion) {
    dst.extend_from_slice(match version {
        ProtocolVersion::Resp2 => b"$-1\r\n",
        ProtocolVersion::Resp3 => b"_\r\n",
    });
}

/// Writes the null array: RESP2 `*-1`, RESP3 `_`.
pub fn write_null_array(dst: &mut BytesMut, version: ProtocolVersion) {
    dst.extend_from_slice(match version {
        ProtocolVersion::Resp2 => b"*-1\r\n",
        ProtocolVersion::Resp3 => b"_\r\n",
    });
}

/// Writes the header of an array of `len` frames; the caller writes the frames.
pub fn write_array_header(dst: &mut BytesMut, len: usize) {
    write_header(dst, b'*', len);
}

/// Writes the header of a map of `len` pairs: RESP3 `%len`, RESP2 an array of `2 * len`.
/// The caller writes each key followed by its value.
pub fn write_map_header(dst: &mut BytesMut, len: usize, version: ProtocolVersion) {
    match version {
        ProtocolVersion::Resp2 => write_header(dst, b'*', len.saturating_mul(2)),
        ProtocolVersion::Resp3 => write_header(dst, b'%', len),
    }
}

/// Writes the header of a set of `len` frames: RESP3 `~len`, RESP2 `*len`.
pub fn write_set_header(dst: &mut BytesMut, len: usize, version: ProtocolVersion) {
    match version {
        ProtocolVersion::Resp2 => write_header(dst, b'*', len),
        ProtocolVersion::Resp3 => write_header(dst, b'~', len),
    }
}

/// Writes the header of a push of `len` frames: RESP3 `>len`, RESP2 `*len`.
pub fn write_push_header(dst: &mut BytesMut, len: usize, version: ProtocolVersion) {
    match version {
        ProtocolVersion::Resp2 => write_header(dst, b'*', len),
        ProtocolVersion::Resp3 => write_header(dst, b'>', len),
    }
}

/// Writes a double: RESP3 `,text`, RESP2 a bulk string of the same text.
///
/// The text is the shortest one that parses back to the same value (`1.5`, `3`, `1e300`),
/// and `inf`, `-inf`, `nan` for the special values, as Redis 7 spells them.
pub fn write_double(dst: &mut BytesMut, value: f64, version: ProtocolVersion) {
    let mut buf = ryu::Buffer::new();
    let text: &[u8] = if value.is_nan() {
        b"nan"
    } else if value.is_infinite() {
        if value > 0.0 {
            b"inf"
        } else {
            b"-inf"
        }
    } else {
        let text = buf.format_finite(value).as_bytes();
        text.strip_suffix(b".0").unwrap_or(text)
    };
    match version {
        ProtocolVersion::Resp2 => write_bulk(dst, text),
        ProtocolVersion::Resp3 => write_line(dst, b',', text),
    }
}

/// Writes a boolean: RESP3 `#t`/`#f`, RESP2 the integer 1 or 0.
pub fn write_boolean(dst: &mut BytesMut, value: bool, version: ProtocolVersion) {
    dst.extend_from_slice(match (version, value) {
        (ProtocolVersion::Resp2, true) => b":1\r\n",
        (ProtocolVersion::Resp2, false) => b":0\r\n",
        (ProtocolVersion::Resp3, true) => b"#t\r\n",
        (ProtocolVersion::Resp3, false) => b"#f\r\n",
    });
}

/// Writes a verbatim string: RESP3 `=len` + `fmt:text`, RESP2 a bulk string of `text` alone.
pub fn write_verbatim(dst: &mut BytesMut, format: &[u8; 3], text: &[u8], version: ProtocolVersion) {
    match version {
        ProtocolVersion::Resp2 => write_bulk(dst, text),
        ProtocolVersion::Resp3 => write_blob(dst, b'=', &[format, b":", text]),
    }
}

/// Writes a big number given as decimal digits: RESP3 `(digits`, RESP2 a bulk string.
pub fn write_big_number(dst: &mut BytesMut, digits: &[u8], version: ProtocolVersion) {
    match version {
        ProtocolVersion::Resp2 => write_bulk(dst, digits),
        ProtocolVersion::Resp3 => write_line(dst, b'(', digits),
    }
}

/// Writes a bulk error: RESP3 `!len` + `text`, RESP2 the simple error `-text` (with CR and LF
/// replaced by spaces).
pub fn write_bulk_error(dst: &mut BytesMut, text: &[u8], version: ProtocolVersion) {
    match version {
        ProtocolVersion::Resp2 => write_error(dst, text),
        ProtocolVersion::Resp3 => write_blob(dst, b'!', &[text]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ProtocolVersion::{Resp2, Resp3};

    fn enc(frame: &Frame, version: ProtocolVersion) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(frame, version, &mut out);
        out.to_vec()
    }

    fn b(text: &'static str) -> Bytes {
        Bytes::from_static(text.as_bytes())
    }

    #[test]
    fn frames_encode_like_redis_in_both_dialects() {
        let map = Frame::Map(vec![(Frame::bulk("k"), Frame::Integer(1))]);
        let verbatim = Frame::Verbatim {
            format: *b"txt",
            text: b("hi"),
        };
        let attr = Frame::Attribute {
            attributes: vec![(Frame::simple("ttl"), Frame::Integer(3))],
            data: Box::new(Frame::Integer(7)),
        };
        let cases: Vec<(Frame, &str, &str)> = vec![
            (Frame::simple("OK"), "+OK\r\n", "+OK\r\n"),
            (Frame::error("ERR x"), "-ERR x\r\n", "-ERR x\r\n"),
            (Frame::Integer(-42), ":-42\r\n", ":-42\r\n"),
            (Frame::bulk("foo"), "$3\r\nfoo\r\n", "$3\r\nfoo\r\n"),
            (Frame::bulk(""), "$0\r\n\r\n", "$0\r\n\r\n"),
            (Frame::Null, "$-1\r\n", "_\r\n"),
            (Frame::NullArray, "*-1\r\n", "_\r\n"),
            (Frame::Array(vec![]), "*0\r\n", "*0\r\n"),
            (map, "*2\r\n$1\r\nk\r\n:1\r\n", "%1\r\n$1\r\nk\r\n:1\r\n"),
            (
                Frame::Set(vec![Frame::Integer(1)]),
                "*1\r\n:1\r\n",
                "~1\r\n:1\r\n",
            ),
            (
                Frame::Push(vec![Frame::Integer(1)]),
                "*1\r\n:1\r\n",
                ">1\r\n:1\r\n",
            ),
            (Frame::Double(1.5), "$3\r\n1.5\r\n", ",1.5\r\n"),
            (Frame::Boolean(false), ":0\r\n", "#f\r\n"),
            (Frame::BigNumber(b("123")), "$3\r\n123\r\n", "(123\r\n"),
            (verbatim, "$2\r\nhi\r\n", "=6\r\ntxt:hi\r\n"),
            (
                Frame::BulkError(b("ERR a")),
                "-ERR a\r\n",
                "!5\r\nERR a\r\n",
            ),
            (attr, ":7\r\n", "|1\r\n+ttl\r\n:3\r\n:7\r\n"),
        ];
        for (frame, resp2, resp3) in cases {
            assert_eq!(enc(&frame, Resp2), resp2.as_bytes(), "{frame:?} in RESP2");
            assert_eq!(enc(&frame, Resp3), resp3.as_bytes(), "{frame:?} in RESP3");
        }
    }

    #[test]
    fn doubles_use_the_shortest_round_trip_text() {
        let cases: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (3.0, "3"),
            (-0.25, "-0.25"),
            (0.1, "0.1"),
            (1e300, "1e300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (value, text) in cases {
            assert_eq!(
                enc(&Frame::Double(*value), Resp3),
                format!(",{text}\r\n").as_bytes()
            );
        }
    }

    #[test]
    fn line_breaks_in_simple_strings_become_spaces() {
        let mut out = BytesMut::new();
        write_error(&mut out, b"ERR bad\r\nthing");
        write_simple(&mut out, b"a\nb");
        assert_eq!(&out[..], b"-ERR bad  thing\r\n+a b\r\n");
    }

    #[test]
    fn writers_match_their_frames() {
        let mut out = BytesMut::new();
        write_ok(&mut out);
        write_map_header(&mut out, 2, Resp2);
        write_map_header(&mut out, 2, Resp3);
        write_null(&mut out, Resp2);
        write_null_array(&mut out, Resp3);
        write_verbatim(&mut out, b"mkd", b"# x", Resp3);
        assert_eq!(
            &out[..],
            b"+OK\r\n*4\r\n%2\r\n$-1\r\n_\r\n=7\r\nmkd:# x\r\n"
        );
    }
}
