//! The [`Frame`] value tree shared by the decoder and the encoder.

use bytes::Bytes;

/// One RESP value: everything RESP2 and RESP3 can put on the wire.
///
/// Strings are [`Bytes`], so they are binary-safe and, when a frame comes out of the
/// decoder, share the receive buffer instead of copying it. Integers are `i64`, as in Redis.
///
/// `PartialEq` is derived, so `Frame::Double(f64::NAN)` is not equal to itself; compare NaNs
/// with `f64::is_nan`.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A simple string, `+OK`. Must not contain CR or LF (the encoder replaces them).
    Simple(Bytes),
    /// A simple error, `-ERR msg`; the bytes exclude the `-` and the CRLF.
    Error(Bytes),
    /// An integer, `:1`.
    Integer(i64),
    /// A bulk string, `$3\r\nfoo\r\n`.
    Bulk(Bytes),
    /// The null bulk string: RESP2 `$-1`, RESP3 `_`.
    Null,
    /// The null array: RESP2 `*-1`, RESP3 `_`.
    NullArray,
    /// An array, `*N` followed by N frames.
    Array(Vec<Frame>),
    /// A RESP3 map, `%N` followed by N key/value pairs.
    Map(Vec<(Frame, Frame)>),
    /// A RESP3 set, `~N` followed by N frames.
    Set(Vec<Frame>),
    /// A RESP3 double, `,1.5`; infinities and NaN are spelled `inf`, `-inf` and `nan`.
    Double(f64),
    /// A RESP3 boolean, `#t` or `#f`.
    Boolean(bool),
    /// A RESP3 big number, `(12345678901234567890`; the bytes are the decimal digits.
    BigNumber(Bytes),
    /// A RESP3 verbatim string, `=8\r\ntxt:text\r\n`.
    Verbatim {
        /// The three-byte format, such as `txt` or `mkd`.
        format: [u8; 3],
        /// The text after the `xxx:` prefix.
        text: Bytes,
    },
    /// A RESP3 bulk error, `!len\r\nmsg\r\n`.
    BulkError(Bytes),
    /// A RESP3 out-of-band push, `>N` followed by N frames.
    Push(Vec<Frame>),
    /// A RESP3 attribute map, `|N` followed by N key/value pairs, annotating the frame after it.
    Attribute {
        /// The key/value pairs of the attribute map.
        attributes: Vec<(Frame, Frame)>,
        /// The frame the attributes annotate.
        data: Box<Frame>,
    },
}

/// Which RESP dialect a connection speaks: RESP2 until a client sends `HELLO 3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProtocolVersion {
    /// RESP2, the protocol every Redis client starts with.
    #[default]
    Resp2,
    /// RESP3, negotiated with `HELLO 3`.
    Resp3,
}

impl Frame {
    /// Builds a [`Frame::Bulk`] from anything that converts into [`Bytes`].
    pub fn bulk(data: impl Into<Bytes>) -> Frame {
        Frame::Bulk(data.into())
    }

    /// Builds a [`Frame::Simple`] from anything that converts into [`Bytes`].
    pub fn simple(text: impl Into<Bytes>) -> Frame {
        Frame::Simple(text.into())
    }

    /// Builds a [`Frame::Error`] from anything that converts into [`Bytes`], such as
    /// `"ERR unknown command"`.
    pub fn error(text: impl Into<Bytes>) -> Frame {
        Frame::Error(text.into())
    }

    /// Whether this frame is [`Frame::Null`] or [`Frame::NullArray`].
    pub fn is_null(&self) -> bool {
        matches!(self, Frame::Null | Frame::NullArray)
    }
}
