//! Redis Cluster key slots: CRC16 (XMODEM) of the key or of its `{hash tag}`, mod 16384.
//!
//! This is the routing contract with every cluster-aware Redis client, so it follows Redis
//! Cluster's specification bit for bit.

use std::fmt;

/// The number of key slots in a cluster.
pub const SLOT_COUNT: u16 = 16384;

/// A key slot, always below [`SLOT_COUNT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotId(u16);

impl SlotId {
    /// Returns the slot numbered `slot`, or `None` if it is not below [`SLOT_COUNT`].
    pub fn new(slot: u16) -> Option<SlotId> {
        (slot < SLOT_COUNT).then_some(SlotId(slot))
    }

    /// The slot number, in `0..16384`.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl From<SlotId> for u16 {
    fn from(slot: SlotId) -> u16 {
        slot.0
    }
}

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The part of `key` that decides its slot.
///
/// Redis's rule: if the key has a `{`, and a `}` somewhere after that first `{`, and at least
/// one byte between them, only those bytes are hashed; otherwise the whole key is.
///
/// # Examples
///
/// ```
/// use cachalot_protocol::hash_tag;
/// assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
/// assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
/// ```
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let rest = key.get(open + 1..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'}') {
        Some(close) if close > 0 => rest.get(..close).unwrap_or(key),
        _ => key,
    }
}

/// The cluster slot of `key`: CRC16/XMODEM of its [`hash_tag`], modulo [`SLOT_COUNT`].
///
/// # Examples
///
/// ```
/// use cachalot_protocol::key_slot;
/// assert_eq!(key_slot(b"foo").get(), 12182);
/// ```
pub fn key_slot(key: &[u8]) -> SlotId {
    let crc = crc16::State::<crc16::XMODEM>::calculate(hash_tag(key));
    // SLOT_COUNT is a power of two, so the mask is the modulo.
    SlotId(crc & (SLOT_COUNT - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_xmodem_check_value() {
        assert_eq!(
            crc16::State::<crc16::XMODEM>::calculate(b"123456789"),
            0x31C3
        );
    }

    #[test]
    fn known_keys_land_on_redis_slots() {
        let cases: &[(&[u8], u16)] = &[(b"foo", 12182), (b"bar", 5061), (b"hello", 866), (b"", 0)];
        for (key, slot) in cases {
            assert_eq!(
                key_slot(key).get(),
                *slot,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn hash_tags_follow_the_redis_rule() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"{user1000}.following", b"user1000"),
            (b"{user1000}.followers", b"user1000"),
            (b"foo{}{bar}", b"foo{}{bar}"),
            (b"foo{{bar}}zap", b"{bar"),
            (b"foo{bar}{zap}", b"bar"),
            (b"foo{bar", b"foo{bar"),
            (b"foo}bar{", b"foo}bar{"),
            (b"{}", b"{}"),
            (b"", b""),
        ];
        for (key, tag) in cases {
            assert_eq!(
                hash_tag(key),
                *tag,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn keys_sharing_a_tag_share_a_slot() {
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
    }

    #[test]
    fn slot_ids_stay_below_the_slot_count() {
        assert_eq!(SlotId::new(16383).map(SlotId::get), Some(16383));
        assert_eq!(SlotId::new(16384), None);
        assert!((0u32..5000).all(|i| key_slot(i.to_string().as_bytes()).get() < SLOT_COUNT));
    }
}
