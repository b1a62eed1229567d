//! [`ProtocolError`]: everything that can be wrong with bytes off the wire.

use std::fmt;

/// A malformed or over-limit RESP stream.
///
/// Every variant means the stream can no longer be trusted: the server answers with
/// `-ERR <Display text>` and closes the connection, as Redis does. The `Display` texts are
/// Redis's own (the part after `ERR `), so clients that match on them keep working.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A `*` count that is not a number.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// An aggregate count above [`Limits::max_array_len`](crate::Limits::max_array_len).
    #[error("Protocol error: invalid multibulk length")]
    ArrayTooLong {
        /// The declared element count.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// A bulk length that is not a number or is negative.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A bulk length above [`Limits::max_bulk_len`](crate::Limits::max_bulk_len).
    #[error("Protocol error: invalid bulk length")]
    BulkTooLarge {
        /// The declared length in bytes.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// A multibulk request element that does not start with `$`.
    #[error("Protocol error: expected '$', got '{}'", ByteChar(*got))]
    ExpectedBulk {
        /// The byte found instead.
        got: u8,
    },
    /// An inline request longer than [`Limits::max_inline_len`](crate::Limits::max_inline_len).
    #[error("Protocol error: too big inline request")]
    InlineTooLong {
        /// The limit in force.
        max: usize,
    },
    /// An aggregate count line longer than the inline limit.
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooLong {
        /// The limit in force.
        max: usize,
    },
    /// A bulk length line longer than the inline limit.
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooLong {
        /// The limit in force.
        max: usize,
    },
    /// Any other RESP line (simple string, error, number) longer than the inline limit.
    #[error("Protocol error: too big line")]
    LineTooLong {
        /// The limit in force.
        max: usize,
    },
    /// An inline request whose quotes do not close, or close in the middle of a word.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A bulk payload not followed by CRLF.
    #[error("Protocol error: expected CRLF after bulk")]
    BulkNotTerminated,
    /// A CR inside a line that is not followed by LF.
    #[error("Protocol error: expected LF after CR")]
    LineNotTerminated,
    /// Aggregates nested deeper than [`Limits::max_depth`](crate::Limits::max_depth).
    #[error("Protocol error: nesting too deep")]
    NestingTooDeep {
        /// The limit in force.
        max: usize,
    },
    /// A frame starting with a byte that is no RESP type.
    #[error("Protocol error: unknown type byte '{}'", ByteChar(*byte))]
    UnknownType {
        /// The byte found.
        byte: u8,
    },
    /// A `:` integer that is not a 64-bit signed integer.
    #[error("Protocol error: invalid integer")]
    InvalidInteger,
    /// A `,` double that is not a number, `inf`, `-inf` or `nan`.
    #[error("Protocol error: invalid double")]
    InvalidDouble,
    /// A `#` boolean other than `t` or `f`.
    #[error("Protocol error: invalid boolean")]
    InvalidBoolean,
    /// A `(` big number that is not a signed decimal integer.
    #[error("Protocol error: invalid big number")]
    InvalidBigNumber,
    /// A `_` null with something between `_` and CRLF.
    #[error("Protocol error: invalid null")]
    InvalidNull,
    /// A `=` verbatim string shorter than 4 bytes or without `:` after its format.
    #[error("Protocol error: invalid verbatim string")]
    InvalidVerbatim,
}

/// Shows a byte the way an error reply can carry it: printable ASCII as itself, CR and LF as a
/// space (as Redis does, so the reply stays one line), anything else as `\xHH`.
struct ByteChar(u8);

impl fmt::Display for ByteChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b'\r' | b'\n' => f.write_str(" "),
            b @ 0x20..=0x7e => write!(f, "{}", char::from(b)),
            b => write!(f, "\\x{b:02x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_redis() {
        let cases: &[(ProtocolError, &str)] = &[
            (
                ProtocolError::BulkTooLarge {
                    len: 1 << 40,
                    max: 10,
                },
                "Protocol error: invalid bulk length",
            ),
            (
                ProtocolError::ArrayTooLong { len: 5, max: 1 },
                "Protocol error: invalid multibulk length",
            ),
            (
                ProtocolError::ExpectedBulk { got: b'x' },
                "Protocol error: expected '$', got 'x'",
            ),
            (
                ProtocolError::ExpectedBulk { got: b'\n' },
                "Protocol error: expected '$', got ' '",
            ),
            (
                ProtocolError::UnknownType { byte: 0xff },
                "Protocol error: unknown type byte '\\xff'",
            ),
            (
                ProtocolError::InlineTooLong { max: 1 },
                "Protocol error: too big inline request",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), *text);
        }
    }
}
