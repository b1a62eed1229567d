//! The typed values a node keeps in the store, and what each one weighs.

use std::collections::HashMap;

use bytes::Bytes;

/// Longest string Redis keeps in the `embstr` encoding; longer ones report `raw`.
const EMBSTR_MAX_BYTES: usize = 44;
/// A hash stays `listpack` (as Redis reports it) up to this many fields...
const LISTPACK_MAX_ENTRIES: usize = 128;
/// ...and while every field and value is at most this long.
const LISTPACK_MAX_VALUE_BYTES: usize = 64;
/// Bytes a `Bytes` handle and its shared header cost beyond the payload (pointer, length,
/// vtable, data pointer, and the allocator's rounding on average).
const BYTES_OVERHEAD: u64 = 48;
/// Per-field cost of a hash entry: two `Bytes` handles plus the table slot and control byte.
const HASH_FIELD_OVERHEAD: u64 = 72;

/// A hash value: field to value.
pub type HashValue = HashMap<Bytes, Bytes>;

/// One value in the keyspace.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string (binary-safe).
    Str(Bytes),
    /// A string that is the canonical decimal form of an `i64` (`SET k 10`, `INCR`), kept
    /// as a number so `INCR` does not reparse it.
    Int(i64),
    /// A hash of fields to values.
    Hash(Box<HashValue>),
}

impl Value {
    /// Builds a string value, keeping canonical integers in their compact form like Redis.
    pub fn from_bytes(b: Bytes) -> Value {
        match parse_canonical_i64(&b) {
            Some(n) => Value::Int(n),
            None => Value::Str(b),
        }
    }

    /// Redis's type name (`TYPE`, `SCAN ... TYPE`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) | Value::Int(_) => "string",
            Value::Hash(_) => "hash",
        }
    }

    /// Redis's encoding name (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str(b) if b.len() <= EMBSTR_MAX_BYTES => "embstr",
            Value::Str(_) => "raw",
            Value::Hash(h) => {
                let small = h.len() <= LISTPACK_MAX_ENTRIES
                    && h.iter().all(|(f, v)| {
                        f.len() <= LISTPACK_MAX_VALUE_BYTES && v.len() <= LISTPACK_MAX_VALUE_BYTES
                    });
                if small {
                    "listpack"
                } else {
                    "hashtable"
                }
            }
        }
    }

    /// Estimated bytes the value holds in memory (payload plus container overhead).
    pub fn weight(&self) -> u64 {
        match self {
            Value::Str(b) => BYTES_OVERHEAD + b.len() as u64,
            Value::Int(_) => 8,
            Value::Hash(h) => {
                let fields: u64 = h
                    .iter()
                    .map(|(f, v)| HASH_FIELD_OVERHEAD + f.len() as u64 + v.len() as u64)
                    .sum();
                BYTES_OVERHEAD + fields
            }
        }
    }

    /// The string form of a string value, or `None` for other types.
    pub fn to_string_bytes(&self) -> Option<Bytes> {
        match self {
            Value::Str(b) => Some(b.clone()),
            Value::Int(n) => Some(Bytes::copy_from_slice(
                itoa::Buffer::new().format(*n).as_bytes(),
            )),
            Value::Hash(_) => None,
        }
    }
}

/// The store's weigher for the server's keyspace.
pub fn weigh(key: &Bytes, value: &Value) -> u64 {
    BYTES_OVERHEAD + key.len() as u64 + value.weight()
}

/// Parses `b` as an `i64` only if it is exactly the canonical decimal form (no sign but `-`,
/// no leading zeros, no spaces), so that turning it back into a string gives the same bytes.
pub fn parse_canonical_i64(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut acc: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        let d = i64::from(c - b'0');
        acc = if neg {
            acc.checked_mul(10)?.checked_sub(d)?
        } else {
            acc.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(acc)
}

/// Parses a Redis integer argument (`string2ll` rules: what `parse_canonical_i64` accepts,
/// plus a leading `+` is refused and `0` is fine).
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    if b == b"0" {
        return Some(0);
    }
    parse_canonical_i64(b)
}

/// Parses a Redis float argument (`strtold` rules: decimal or exponent form, `inf`,
/// `-inf`; no NaN, no spaces).
pub fn parse_f64(b: &[u8]) -> Option<f64> {
    if b.is_empty() || b.len() > 5120 {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    if s.starts_with(|c: char| c.is_whitespace()) || s.ends_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => s.parse().ok()?,
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// Formats a float the way Redis replies to `INCRBYFLOAT`/`HINCRBYFLOAT`: the shortest
/// decimal that reads back the same, never in exponent form, integral values without a
/// fraction ("3", not "3.0").
pub fn format_f64(v: f64) -> String {
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_integers_are_recognised_and_others_are_not() {
        for (input, want) in [
            (&b"0"[..], Some(0)),
            (b"-1", Some(-1)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"01", None),
            (b"-0", None),
            (b"+1", None),
            (b" 1", None),
            (b"1a", None),
            (b"", None),
            (b"-", None),
        ] {
            assert_eq!(parse_canonical_i64(input), want, "{input:?}");
        }
    }

    #[test]
    fn floats_parse_like_redis() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"abc"), None);
    }

    #[test]
    fn floats_format_like_redis() {
        assert_eq!(format_f64(10.5), "10.5");
        assert_eq!(format_f64(3.0), "3");
        assert_eq!(format_f64(5000.0), "5000");
        assert_eq!(format_f64(-0.1), "-0.1");
    }

    #[test]
    fn encodings_follow_redis_thresholds() {
        assert_eq!(
            Value::from_bytes(Bytes::from_static(b"12")).encoding(),
            "int"
        );
        assert_eq!(
            Value::from_bytes(Bytes::from_static(b"hello")).encoding(),
            "embstr"
        );
        assert_eq!(Value::Str(Bytes::from(vec![b'x'; 45])).encoding(), "raw");
        let mut h = HashValue::new();
        h.insert(Bytes::from_static(b"f"), Bytes::from_static(b"v"));
        assert_eq!(Value::Hash(Box::new(h.clone())).encoding(), "listpack");
        h.insert(Bytes::from_static(b"big"), Bytes::from(vec![b'x'; 65]));
        assert_eq!(Value::Hash(Box::new(h)).encoding(), "hashtable");
    }
}
