//! [`Key`]: a keyspace key in 16 bytes, short ones without any allocation.
//!
//! Every entry's key sits inline in the store's slab slot, so its size is paid once per key
//! whether the key is short or long. A `Bytes` handle takes 32 bytes there plus a separate
//! allocation; most cache keys are short (`user:1042`, `key:381977`), so a key of up to
//! [`INLINE_MAX_BYTES`] bytes is kept in the 16 bytes themselves. A longer one lives in a
//! boxed `Box<[u8]>`: two allocations, a price only long keys pay, and one that keeps the
//! type (and so every slot) at 16 bytes, which a `Box<[u8]>` beside an inline variant
//! could not (that pair needs 24).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use crate::value::malloc_bytes;

/// Longest key kept inline: 16 bytes minus the length byte and the variant tag.
pub const INLINE_MAX_BYTES: usize = 14;

/// A binary-safe key. Hashes, compares and borrows exactly as the `[u8]` it holds, so the
/// keyspace can be searched with a `&[u8]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Repr);

/// Each byte string has exactly one representation (inline if and only if it fits, unused
/// inline bytes zero), so the derived equality is the bytes' equality.
#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// Up to [`INLINE_MAX_BYTES`] bytes; `len` of `bytes` are used, the rest are zero.
    Inline {
        len: u8,
        bytes: [u8; INLINE_MAX_BYTES],
    },
    /// A longer key.
    Heap(Box<Box<[u8]>>),
}

impl Key {
    /// Copies `b` into a key.
    pub fn from_slice(b: &[u8]) -> Key {
        match u8::try_from(b.len()) {
            Ok(len) if b.len() <= INLINE_MAX_BYTES => {
                let mut bytes = [0; INLINE_MAX_BYTES];
                bytes[..b.len()].copy_from_slice(b);
                Key(Repr::Inline { len, bytes })
            }
            _ => Key(Repr::Heap(Box::new(Box::from(b)))),
        }
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(b) => b,
        }
    }

    /// Heap bytes the key holds beyond its 16 bytes, as the allocator charges them.
    pub fn heap_bytes(&self) -> u64 {
        match &self.0 {
            Repr::Inline { .. } => 0,
            Repr::Heap(b) => malloc_bytes(std::mem::size_of::<Box<[u8]>>()) + malloc_bytes(b.len()),
        }
    }
}

impl Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&bytes::Bytes::copy_from_slice(self.as_bytes()), f)
    }
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Key {
        Key::from_slice(b)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;

    use super::*;

    fn hash_of<T: Hash + ?Sized>(t: &T) -> u64 {
        let mut h = DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    }

    #[test]
    fn a_key_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Key>(), 16);
        assert_eq!(std::mem::size_of::<Option<Key>>(), 16);
    }

    #[test]
    fn keys_hash_compare_and_borrow_like_their_bytes() {
        let long = [b'k'; 200];
        for b in [
            &b""[..],
            b"a",
            b"key:381977",
            &[0u8, 255, 0][..],
            &[b'x'; INLINE_MAX_BYTES][..],
            &[b'y'; INLINE_MAX_BYTES + 1][..],
            &long[..],
        ] {
            let k = Key::from_slice(b);
            assert_eq!(k.as_bytes(), b);
            assert_eq!(Borrow::<[u8]>::borrow(&k), b);
            assert_eq!(hash_of(&k), hash_of(b));
            assert_eq!(k, Key::from_slice(b));
            assert_eq!(k.clone(), k);
        }
        assert_ne!(Key::from_slice(b"a"), Key::from_slice(b"a\0"));
    }

    #[test]
    fn only_long_keys_use_the_heap() {
        assert_eq!(Key::from_slice(&[b'x'; INLINE_MAX_BYTES]).heap_bytes(), 0);
        assert!(matches!(
            Key::from_slice(&[b'x'; INLINE_MAX_BYTES + 1]).0,
            Repr::Heap(_)
        ));
        assert_eq!(Key::from_slice(&[b'x'; 20]).heap_bytes(), 64);
    }
}
