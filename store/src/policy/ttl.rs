//! Soonest expiry first, among a sample of entries with an expiry (`volatile-ttl`).

use super::{lowest, sample, Scope};
use crate::shard::Shard;

/// The entry expiring soonest in a sample of expiring entries.
pub(super) fn soonest<K, V>(shard: &mut Shard<K, V>, protect: Option<u32>) -> Option<u32> {
    let candidates = sample(shard, Scope::Volatile, protect);
    lowest(shard, &candidates, |n| n.expire_at)
}
