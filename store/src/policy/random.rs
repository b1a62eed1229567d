//! Random eviction: any entry, or any entry with an expiry.

use super::{walk_fallback, Scope, EVICTION_SAMPLES, PROBES_PER_SAMPLE};
use crate::shard::Shard;

/// A random entry of `scope` other than `protect` (`allkeys-random`, `volatile-random`).
pub(super) fn any<K, V>(
    shard: &mut Shard<K, V>,
    scope: Scope,
    protect: Option<u32>,
) -> Option<u32> {
    for _ in 0..EVICTION_SAMPLES * PROBES_PER_SAMPLE {
        let pos = match scope {
            Scope::AllKeys => shard.random_position(),
            Scope::Volatile => shard.random_expiring(),
        }?;
        if Some(pos) != protect && shard.node(pos).is_some() {
            return Some(pos);
        }
    }
    // Probes keep missing: a sparse slab, or a scope holding only `protect`.
    match scope {
        Scope::AllKeys => walk_fallback(shard, protect),
        Scope::Volatile => (0..shard.expiring_len())
            .filter_map(|i| shard.expiring_at(i))
            .find(|&pos| Some(pos) != protect),
    }
}
