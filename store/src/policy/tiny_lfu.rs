//! W-TinyLFU victim selection (`allkeys-tinylfu`), after Caffeine's W-TinyLFU and Einziger,
//! Friedman & Manes, "TinyLFU: A Highly Efficient Cache Admission Policy". The segments and
//! the sketch live in the shard (`crate::shard::tiny_lfu`); this is only the choice.

use super::{lru, Scope};
use crate::shard::tiny_lfu::Segment;
use crate::shard::Shard;

/// The entry to evict from `shard`, never `protect` (the key being written, which must read
/// back after its write: admission decides what is evicted later, not whether a write
/// happens).
///
/// 1. Window entries beyond the window's target plus one went in while the shard had room;
///    they pass to probation unfiltered, oldest first (Caffeine does the same while its
///    cache is not yet full).
/// 2. If the window is still over its target, its oldest entry (the *candidate*) competes
///    with the main region's oldest (the *victim*: probation's tail, or protected's when
///    probation is empty) by sketch frequency. A candidate seen strictly more often is
///    admitted to probation and the victim evicted; otherwise the candidate is evicted.
/// 3. Otherwise the main region's victim goes (the window's oldest if main is empty).
///
/// Caffeine also admits a warm candidate at random now and then, against attackers who
/// pin victims with hash collisions; that is not done here.
///
/// A shard whose segments are not built yet (a `set_policy` switch in progress) samples by
/// last-access time, as `allkeys-lru` does then.
pub(super) fn victim<K, V>(shard: &mut Shard<K, V>, protect: Option<u32>) -> Option<u32> {
    if !shard.tiny_listed() {
        return lru::sampled(shard, Scope::AllKeys, protect);
    }
    let window_max = shard.window_max();
    while shard.segment_len(Segment::Window) > window_max.saturating_add(1) {
        let Some(pos) = oldest(shard, Segment::Window, protect) else {
            break;
        };
        shard.move_to_segment(pos, Segment::Probation);
    }
    let candidate = if shard.segment_len(Segment::Window) > window_max {
        oldest(shard, Segment::Window, protect)
    } else {
        None
    };
    let victim = oldest(shard, Segment::Probation, protect)
        .or_else(|| oldest(shard, Segment::Protected, protect));
    match (candidate, victim) {
        (Some(c), Some(v)) => {
            if shard.sketch_frequency(c) > shard.sketch_frequency(v) {
                shard.move_to_segment(c, Segment::Probation);
                Some(v)
            } else {
                Some(c)
            }
        }
        (None, Some(v)) => Some(v),
        (Some(c), None) => Some(c),
        (None, None) => oldest(shard, Segment::Window, protect),
    }
}

/// The least recently used entry of `segment` other than `protect`.
fn oldest<K, V>(shard: &Shard<K, V>, segment: Segment, protect: Option<u32>) -> Option<u32> {
    let tail = shard.segment_tail(segment)?;
    if Some(tail) == protect {
        shard.more_recent(tail)
    } else {
        Some(tail)
    }
}
