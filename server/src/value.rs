//! The typed values a node keeps in the store, and what each one weighs.
//!
//! Besides the data, a value remembers what Redis would report as its encoding
//! (`OBJECT ENCODING`), because Redis's answer depends on history: a string changed in
//! place stays `raw`, and a hash that once outgrew a listpack stays a `hashtable`.

mod long_double;

use bytes::Bytes;

use crate::key::Key;

pub use long_double::LongDouble;

/// Longest string Redis keeps in the `embstr` encoding; longer ones report `raw`.
const EMBSTR_MAX_BYTES: usize = 44;
/// A hash stays `listpack` (as Redis reports it) up to this many fields (Redis's default
/// `hash-max-listpack-entries`)...
const LISTPACK_MAX_ENTRIES: usize = 512;
/// ...and while every field and value is at most this long.
const LISTPACK_MAX_VALUE_BYTES: usize = 64;
/// Integers below this are one shared object in Redis (its `OBJ_SHARED_INTEGERS`).
const SHARED_INTEGERS: i64 = 10_000;
/// The reference count Redis reports for a shared object (`OBJ_SHARED_REFCOUNT`).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// glibc malloc's chunk header (`SIZE_SZ`), paid by every allocation.
const MALLOC_HEADER_BYTES: usize = 8;
/// glibc malloc's chunk alignment: chunk sizes are multiples of it.
const MALLOC_ALIGN_BYTES: usize = 16;
/// glibc malloc's smallest chunk (`MINSIZE`).
const MALLOC_MIN_CHUNK_BYTES: usize = 32;
/// Per-field cost of a hash entry: two `Bytes` handles plus the table slot and control byte.
/// The field and value bytes are estimated at their length, not their malloc chunk.
const HASH_FIELD_OVERHEAD: u64 = 72;

/// A hash's fields: field to value, in insertion order (what Redis's listpack encoding
/// shows clients for small hashes, and what many of them rely on).
pub type HashValue = indexmap::IndexMap<Bytes, Bytes>;

/// A hash value: its fields, and whether Redis would have converted it to a hash table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hash {
    /// Field to value.
    pub fields: HashValue,
    /// Set once the hash outgrows the listpack limits; like Redis, never cleared.
    pub hashtable: bool,
}

impl Hash {
    /// Sets a field, returning the old value. Like Redis, writing a field or value longer
    /// than the listpack limit converts the hash to a hash table.
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> Option<Bytes> {
        if field.len() > LISTPACK_MAX_VALUE_BYTES || value.len() > LISTPACK_MAX_VALUE_BYTES {
            self.hashtable = true;
        }
        self.fields.insert(field, value)
    }

    /// Removes a field. A `listpack` hash keeps the order of the others, as Redis's listpack
    /// does (O(n), n ≤ 512); a `hashtable` one moves the last field into the gap (O(1)).
    pub fn remove(&mut self, field: &[u8]) -> Option<Bytes> {
        if self.hashtable {
            self.fields.swap_remove(field)
        } else {
            self.fields.shift_remove(field)
        }
    }

    /// Notes the field count after a write: more than the listpack limit converts.
    pub fn note_len(&mut self) {
        if self.fields.len() > LISTPACK_MAX_ENTRIES {
            self.hashtable = true;
        }
    }

    /// Redis's encoding name.
    pub fn encoding(&self) -> &'static str {
        if self.hashtable {
            "hashtable"
        } else {
            "listpack"
        }
    }
}

/// One value in the keyspace, in 16 bytes.
///
/// The value sits inline in the store's slab slot next to the key, so its size is paid
/// by every key. The common case, a string as `SET` stores it, is a `Box<[u8]>`: one
/// allocation of exactly the string's length, and nothing else. The other kinds are boxed
/// once more ([`Other`]); an integer therefore costs one small allocation, and a hash one
/// more indirection. Read values through [`Value::view`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string as a `SET`-like command stores it (binary-safe): Redis reports `embstr` up
    /// to 44 bytes and `raw` beyond.
    Str(Box<[u8]>),
    /// Any other kind.
    Other(Box<Other>),
}

/// The kinds of value that are not a plain string.
#[derive(Clone, Debug, PartialEq)]
pub enum Other {
    /// A string modified in place (`APPEND`, `SETRANGE`): Redis reports `raw` whatever
    /// its length.
    RawStr(Box<[u8]>),
    /// A string that is the canonical decimal form of an `i64` (`SET k 10`, `INCR`), kept
    /// as a number so `INCR` does not reparse it.
    Int(i64),
    /// A hash of fields to values.
    Hash(Box<Hash>),
}

/// A borrowed look at a [`Value`], flat, for matching.
#[derive(Clone, Copy, Debug)]
pub enum View<'a> {
    /// [`Value::Str`].
    Str(&'a [u8]),
    /// [`Other::RawStr`].
    RawStr(&'a [u8]),
    /// [`Other::Int`].
    Int(i64),
    /// [`Other::Hash`].
    Hash(&'a Hash),
}

impl Value {
    /// Builds a string value as `SET` does, keeping canonical integers in their compact
    /// form like Redis.
    pub fn from_bytes(b: &[u8]) -> Value {
        match parse_canonical_i64(b) {
            Some(n) => Value::int(n),
            None => Value::Str(Box::from(b)),
        }
    }

    /// An integer value.
    pub fn int(n: i64) -> Value {
        Value::Other(Box::new(Other::Int(n)))
    }

    /// A string changed in place (`raw` whatever its length).
    pub fn raw(b: Vec<u8>) -> Value {
        Value::Other(Box::new(Other::RawStr(b.into_boxed_slice())))
    }

    /// An empty hash.
    pub fn empty_hash() -> Value {
        Value::Other(Box::new(Other::Hash(Box::default())))
    }

    /// The value, flat.
    pub fn view(&self) -> View<'_> {
        match self {
            Value::Str(b) => View::Str(b),
            Value::Other(o) => match &**o {
                Other::RawStr(b) => View::RawStr(b),
                Other::Int(n) => View::Int(*n),
                Other::Hash(h) => View::Hash(h),
            },
        }
    }

    /// The hash, if the value is one.
    pub fn as_hash(&self) -> Option<&Hash> {
        match self.view() {
            View::Hash(h) => Some(h),
            _ => None,
        }
    }

    /// The hash, mutably, if the value is one.
    pub fn as_hash_mut(&mut self) -> Option<&mut Hash> {
        match self {
            Value::Other(o) => match &mut **o {
                Other::Hash(h) => Some(h),
                _ => None,
            },
            Value::Str(_) => None,
        }
    }

    /// Redis's type name (`TYPE`, `SCAN ... TYPE`).
    pub fn type_name(&self) -> &'static str {
        match self.view() {
            View::Str(_) | View::RawStr(_) | View::Int(_) => "string",
            View::Hash(_) => "hash",
        }
    }

    /// Redis's encoding name (`OBJECT ENCODING`).
    pub fn encoding(&self) -> &'static str {
        match self.view() {
            View::Int(_) => "int",
            View::Str(b) if b.len() <= EMBSTR_MAX_BYTES => "embstr",
            View::Str(_) | View::RawStr(_) => "raw",
            View::Hash(h) => h.encoding(),
        }
    }

    /// What `OBJECT REFCOUNT` reports: 1, except for the small integers Redis shares
    /// (when `shared`, i.e. its eviction policy allows sharing). A `COPY` of a shared
    /// integer is not shared in Redis; that corner is not followed.
    pub fn refcount(&self, shared: bool) -> i64 {
        match self.view() {
            View::Int(n) if shared && (0..SHARED_INTEGERS).contains(&n) => SHARED_REFCOUNT,
            _ => 1,
        }
    }

    /// Heap bytes the value holds beyond its 16 bytes, as malloc charges them (chunks, not
    /// payloads); a hash's fields are estimated.
    pub fn weight(&self) -> u64 {
        match self {
            Value::Str(b) => malloc_bytes(b.len()),
            Value::Other(o) => {
                let inner = match &**o {
                    Other::RawStr(b) => malloc_bytes(b.len()),
                    Other::Int(_) => 0,
                    Other::Hash(h) => {
                        let fields: u64 = h
                            .fields
                            .iter()
                            .map(|(f, v)| HASH_FIELD_OVERHEAD + f.len() as u64 + v.len() as u64)
                            .sum();
                        malloc_bytes(std::mem::size_of::<Hash>()) + fields
                    }
                };
                malloc_bytes(std::mem::size_of::<Other>()) + inner
            }
        }
    }

    /// Calls `f` with the string form of a string value (an integer formatted on the
    /// stack); `None` for other types.
    pub fn with_string_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        match self.view() {
            View::Str(b) | View::RawStr(b) => Some(f(b)),
            View::Int(n) => Some(f(itoa::Buffer::new().format(n).as_bytes())),
            View::Hash(_) => None,
        }
    }
}

/// Bytes glibc malloc takes for an allocation of `n` bytes: its chunk, header included,
/// rounded up to the alignment, at least the minimum chunk; 0 for `n == 0`, which Rust
/// does not allocate.
pub fn malloc_bytes(n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    let chunk = (n + MALLOC_HEADER_BYTES).next_multiple_of(MALLOC_ALIGN_BYTES);
    chunk.max(MALLOC_MIN_CHUNK_BYTES) as u64
}

/// The store's weigher for the server's keyspace: what the key and value hold on the heap.
/// Their inline 16 bytes each are part of the store's per-entry overhead.
pub fn weigh(key: &Key, value: &Value) -> u64 {
    key.heap_bytes() + value.weight()
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

/// Parses a number the way C's `strtoul` does in Redis's `SCAN` cursors: an optional
/// sign (`-1` wraps to the largest value), decimal digits, and the empty string reads as 0;
/// leading spaces, trailing bytes and overflow are refused.
pub fn parse_strtoul(b: &[u8]) -> Option<u64> {
    let (negative, digits) = match b.first() {
        None => return Some(0),
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        Some(_) => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    Some(if negative { n.wrapping_neg() } else { n })
}

/// Parses a Redis integer argument (`string2ll` rules: what `parse_canonical_i64` accepts,
/// plus a leading `+` is refused and `0` is fine).
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    if b == b"0" {
        return Some(0);
    }
    parse_canonical_i64(b)
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
    fn cursors_parse_like_strtoul() {
        for (input, want) in [
            (&b"0"[..], Some(0)),
            (b"", Some(0)),
            (b"+7", Some(7)),
            (b"-1", Some(u64::MAX)),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"18446744073709551616", None),
            (b" 1", None),
            (b"1 ", None),
            (b"-", None),
            (b"abc", None),
        ] {
            assert_eq!(parse_strtoul(input), want, "{input:?}");
        }
    }

    #[test]
    fn only_small_integers_are_shared() {
        assert_eq!(Value::int(9_999).refcount(true), i64::from(i32::MAX));
        assert_eq!(Value::int(10_000).refcount(true), 1);
        assert_eq!(Value::int(-1).refcount(true), 1);
        assert_eq!(Value::int(5).refcount(false), 1);
    }

    #[test]
    fn encodings_follow_redis_thresholds() {
        assert_eq!(Value::from_bytes(b"12").encoding(), "int");
        assert_eq!(Value::from_bytes(b"hello").encoding(), "embstr");
        assert_eq!(Value::from_bytes(&[b'x'; 45]).encoding(), "raw");
        assert_eq!(Value::raw(b"ab".to_vec()).encoding(), "raw");
        assert_eq!(Value::empty_hash().encoding(), "listpack");
    }

    #[test]
    fn a_value_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
        assert_eq!(std::mem::size_of::<Other>(), 24);
    }

    #[test]
    fn weights_count_malloc_chunks() {
        for (n, chunk) in [
            (0, 0),
            (1, 32),
            (24, 32),
            (25, 48),
            (100, 112),
            (104, 112),
            (105, 128),
        ] {
            assert_eq!(malloc_bytes(n), chunk, "{n}");
        }
        assert_eq!(Value::from_bytes(&[b'v'; 100]).weight(), 112);
        assert_eq!(Value::from_bytes(b"").weight(), 0);
        assert_eq!(Value::int(7).weight(), 32);
        assert_eq!(Value::raw(vec![b'v'; 100]).weight(), 32 + 112);
    }

    #[test]
    fn string_forms_include_integers() {
        let len = |v: &Value| v.with_string_bytes(<[u8]>::len);
        assert_eq!(len(&Value::from_bytes(b"-1234")), Some(5));
        assert_eq!(len(&Value::from_bytes(b"abc")), Some(3));
        assert_eq!(len(&Value::empty_hash()), None);
    }

    #[test]
    fn a_hash_stays_a_hashtable_once_converted() {
        let mut h = Hash::default();
        h.insert(Bytes::from_static(b"f"), Bytes::from(vec![b'x'; 64]));
        assert_eq!(h.encoding(), "listpack");
        h.insert(Bytes::from(vec![b'x'; 65]), Bytes::new());
        assert_eq!(h.encoding(), "hashtable");
        h.fields.clear();
        h.note_len();
        assert_eq!(h.encoding(), "hashtable");
        let mut many = Hash::default();
        for i in 0..=LISTPACK_MAX_ENTRIES {
            many.fields.insert(Bytes::from(i.to_string()), Bytes::new());
        }
        many.note_len();
        assert_eq!(many.encoding(), "hashtable");
    }
}
