//! The in-process store workload shared by `benches/store.rs` (criterion) and
//! `src/bin/getratio.rs`: 16-byte `Box<[u8]>` keys spelled on the stack, 64-byte `Bytes`
//! values, a pre-drawn Zipf sequence of key numbers, and the operations each contender
//! offers.

use std::hint::black_box;

use bytes::Bytes;
use cachalot_store::Cache;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::trace::Zipf;

/// Keys in the read keyspace: redis-benchmark's `-r 100000`.
pub const KEYS: usize = 100_000;
/// Key and value sizes: a short key, a small cached value.
pub const KEY_BYTES: usize = 16;
pub const VALUE_BYTES: usize = 64;
/// Zipf exponent: the classic web-cache skew.
pub const ZIPF_ALPHA: f64 = 1.0;
/// Pre-drawn key numbers, cycled through by every thread from its own offset (a power of
/// two, so the index wraps with a mask).
pub const SEQUENCE_LEN: usize = 1 << 20;
/// Seed of the key sequence, so every run and every store sees the same keys.
pub const SEED: u64 = 0x5EED_CAC4_A107;

/// The operations each contender offers.
pub trait Store: Sync {
    fn get(&self, key: &[u8]) -> Option<Bytes>;
    fn insert(&self, key: Box<[u8]>, value: Bytes);
}

impl Store for Cache<Box<[u8]>, Bytes> {
    fn get(&self, key: &[u8]) -> Option<Bytes> {
        Cache::get(self, key)
    }
    fn insert(&self, key: Box<[u8]>, value: Bytes) {
        let _ = black_box(Cache::insert(self, key, value));
    }
}

impl Store for moka::sync::Cache<Box<[u8]>, Bytes> {
    fn get(&self, key: &[u8]) -> Option<Bytes> {
        moka::sync::Cache::get(self, key)
    }
    fn insert(&self, key: Box<[u8]>, value: Bytes) {
        moka::sync::Cache::insert(self, key, value);
    }
}

/// Key number `i`: `key:` and `i` in 12 hex digits, on the stack as a key arrives in a
/// just-read request buffer, so a bench's own key lookups add no cache misses.
#[inline]
pub fn key(i: u32) -> [u8; KEY_BYTES] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = *b"key:000000000000";
    for (j, byte) in out[4..].iter_mut().rev().enumerate() {
        *byte = HEX[((u64::from(i) >> (4 * j)) & 0xF) as usize];
    }
    out
}

/// A bound with room for all [`KEYS`] at `per_entry` bytes each, with 5% to spare: a
/// bounded cache keeps all its policy bookkeeping but evicts nothing.
pub fn room_for_all_keys(per_entry: u64) -> u64 {
    KEYS as u64 * per_entry * 21 / 20
}

/// A fresh value (its own allocation, as the server's decoder hands one over).
pub fn value() -> Bytes {
    Bytes::copy_from_slice(&[b'v'; VALUE_BYTES])
}

/// A keyspace of `keys` keys and a pre-drawn Zipf sequence of key numbers. Rank 0 (the
/// hottest) maps to a random key, so hot keys are spread over shards and hash buckets.
pub struct Workload {
    pub keys: u32,
    pub sequence: Vec<u32>,
}

impl Workload {
    pub fn new(n: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(SEED);
        let mut rank_to_key: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            rank_to_key.swap(i, rng.gen_range(0..=i));
        }
        let zipf = Zipf::new(n, ZIPF_ALPHA);
        let sequence = (0..SEQUENCE_LEN)
            .map(|_| rank_to_key[zipf.sample(&mut rng)])
            .collect();
        Self {
            keys: n as u32,
            sequence,
        }
    }

    /// The `i`th key of the sequence.
    #[inline]
    pub fn key(&self, i: usize) -> [u8; KEY_BYTES] {
        key(self.sequence[i & (SEQUENCE_LEN - 1)])
    }
}
