//! The envelope cache-aside and read-through wrap around every value they store: what XFetch
//! needs at read time (the value's expiry and its recompute time) without a second round
//! trip. The format is documented on [`CacheAside`](crate::CacheAside).

use bytes::{BufMut, Bytes, BytesMut};

/// First two bytes of every envelope. `0xF8` never starts valid UTF-8, so text and JSON
/// values cannot be mistaken for envelopes.
const MAGIC: [u8; 2] = [0xF8, b'C'];

/// The only envelope version this crate writes and understands.
const VERSION: u8 = 1;

/// Kind byte of an envelope holding a value.
const KIND_VALUE: u8 = 0;

/// Kind byte of a tombstone: the store of record said the key does not exist.
const KIND_TOMBSTONE: u8 = 1;

/// Bytes before the payload: magic (2), version (1), kind (1), delta (4), expiry (8).
pub(crate) const HEADER_BYTES: usize = 16;

/// What a cached value turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A valid envelope around a value.
    Value {
        /// The value itself (a slice of the stored bytes, no copy).
        payload: Bytes,
        /// Milliseconds the value took to load.
        delta_millis: u32,
        /// Absolute expiry, unix milliseconds; 0 for none.
        expires_at_millis: u64,
    },
    /// A valid tombstone envelope: the store of record said the key does not exist.
    Tombstone {
        /// Milliseconds the load that found nothing took.
        delta_millis: u32,
        /// Absolute expiry, unix milliseconds; 0 for none.
        expires_at_millis: u64,
    },
    /// An envelope of a version this crate does not know (written by a newer client):
    /// read as a miss, so the value is reloaded rather than handed out with its header.
    Foreign,
    /// Anything else, returned as it is.
    Plain(Bytes),
}

/// Wraps `payload` in a value envelope.
pub(crate) fn encode_value(payload: &[u8], delta_millis: u32, expires_at_millis: u64) -> Bytes {
    encode(KIND_VALUE, payload, delta_millis, expires_at_millis)
}

/// A tombstone envelope.
pub(crate) fn encode_tombstone(delta_millis: u32, expires_at_millis: u64) -> Bytes {
    encode(KIND_TOMBSTONE, &[], delta_millis, expires_at_millis)
}

fn encode(kind: u8, payload: &[u8], delta_millis: u32, expires_at_millis: u64) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_BYTES + payload.len());
    out.put_slice(&MAGIC);
    out.put_u8(VERSION);
    out.put_u8(kind);
    out.put_u32(delta_millis);
    out.put_u64(expires_at_millis);
    out.put_slice(payload);
    out.freeze()
}

/// Reads what the cache returned. Never fails: the cache's content is untrusted input, and
/// whatever is not a valid envelope is a plain value.
pub(crate) fn decode(raw: Bytes) -> Decoded {
    let Some(header) = raw.first_chunk::<HEADER_BYTES>() else {
        return Decoded::Plain(raw);
    };
    let [m0, m1, version, kind, d0, d1, d2, d3, e0, e1, e2, e3, e4, e5, e6, e7] = *header;
    if [m0, m1] != MAGIC {
        return Decoded::Plain(raw);
    }
    if version != VERSION {
        return Decoded::Foreign;
    }
    let delta_millis = u32::from_be_bytes([d0, d1, d2, d3]);
    let expires_at_millis = u64::from_be_bytes([e0, e1, e2, e3, e4, e5, e6, e7]);
    match kind {
        KIND_VALUE => Decoded::Value {
            payload: raw.slice(HEADER_BYTES..),
            delta_millis,
            expires_at_millis,
        },
        KIND_TOMBSTONE if raw.len() == HEADER_BYTES => Decoded::Tombstone {
            delta_millis,
            expires_at_millis,
        },
        _ => Decoded::Plain(raw),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_value_envelope_round_trips() {
        let raw = encode_value(b"payload", 42, 1_700_000_000_123);
        assert_eq!(raw.len(), HEADER_BYTES + 7);
        assert_eq!(
            decode(raw),
            Decoded::Value {
                payload: Bytes::from_static(b"payload"),
                delta_millis: 42,
                expires_at_millis: 1_700_000_000_123,
            }
        );
    }

    #[test]
    fn a_tombstone_round_trips() {
        assert_eq!(
            decode(encode_tombstone(3, 5)),
            Decoded::Tombstone {
                delta_millis: 3,
                expires_at_millis: 5
            }
        );
    }

    #[test]
    fn the_header_layout_is_the_documented_one() {
        let raw = encode_value(b"v", 0x0102_0304, 0x1112_1314_1516_1718);
        assert_eq!(
            &raw[..],
            &[0xF8, b'C', 1, 0, 1, 2, 3, 4, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, b'v'][..]
        );
    }

    #[test]
    fn anything_else_is_a_plain_value() {
        let valid = encode_value(b"x", 1, 2);
        let mut bad_kind = valid.to_vec();
        bad_kind[3] = 9;
        let mut tombstone_with_payload = encode_tombstone(1, 1).to_vec();
        tombstone_with_payload.push(b'!');
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"plain text".to_vec(),
            b"{\"json\": true, \"longer\": \"than a header\"}".to_vec(),
            valid[..HEADER_BYTES - 1].to_vec(),
            bad_kind,
            tombstone_with_payload,
        ];
        for case in cases {
            let raw = Bytes::from(case.clone());
            assert_eq!(decode(raw.clone()), Decoded::Plain(raw), "{case:?}");
        }
    }

    #[test]
    fn an_unknown_version_reads_as_foreign() {
        let mut raw = encode_value(b"x", 1, 2).to_vec();
        raw[2] = 2;
        assert_eq!(decode(Bytes::from(raw)), Decoded::Foreign);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_decode_without_panicking(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(Bytes::from(raw));
        }

        #[test]
        fn any_payload_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..64), delta: u32, expiry: u64) {
            let decoded = decode(encode_value(&payload, delta, expiry));
            prop_assert_eq!(decoded, Decoded::Value {
                payload: Bytes::from(payload),
                delta_millis: delta,
                expires_at_millis: expiry,
            });
        }
    }
}
