//! Least recently used: exact from the shard's LRU list, or sampled by last-access time.

use super::{lowest, sample, Scope};
use crate::shard::Shard;

/// The least recently used entry other than `protect` (`allkeys-lru`).
pub(super) fn least_recent<K, V>(shard: &Shard<K, V>, protect: Option<u32>) -> Option<u32> {
    let tail = shard.lru_tail()?;
    if Some(tail) == protect {
        shard.more_recent(tail)
    } else {
        Some(tail)
    }
}

/// The least recently used of a sample from `scope`, by last-access time (`volatile-lru`;
/// `allkeys-lru` in a shard whose list is not built yet).
pub(super) fn sampled<K, V>(
    shard: &mut Shard<K, V>,
    scope: Scope,
    protect: Option<u32>,
) -> Option<u32> {
    let candidates = sample(shard, scope, protect);
    lowest(shard, &candidates, |n| n.access.last_second())
}
