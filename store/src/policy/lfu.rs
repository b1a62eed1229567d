//! Least frequently used, by Redis's decayed logarithmic counter
//! ([`Access`](crate::stats::Access)), among a sample; ties go to the first sampled (LFU
//! form keeps no access time).

use super::{lowest, sample, Scope};
use crate::shard::Shard;
use crate::stats::LfuConfig;

/// The least frequently used of a sample from `scope` (`allkeys-lfu`, `volatile-lfu`).
pub(super) fn sampled<K, V>(
    shard: &mut Shard<K, V>,
    scope: Scope,
    protect: Option<u32>,
    now: u64,
    lfu: LfuConfig,
) -> Option<u32> {
    let candidates = sample(shard, scope, protect);
    lowest(shard, &candidates, |n| n.access.frequency(now, lfu))
}
