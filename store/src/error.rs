//! The store's error type.

/// Why a store operation was refused.
///
/// Refused writes change nothing, apart from evictions already made on their behalf (see
/// [`Cache::insert`](crate::Cache::insert)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The write would take the cache above its weight bound and the policy could not
    /// (or may not) evict enough. `needed` is how many bytes above `max` the write would end.
    #[error("out of memory: needed {needed} bytes above the {max}-byte bound")]
    OutOfMemory {
        /// Bytes above the bound the write would have ended at.
        needed: u64,
        /// The weight bound in bytes.
        max: u64,
    },
    /// The write would take the cache above its entry-count bound and the policy could not
    /// (or may not) evict. Also returned when one shard has used up its slot index space
    /// (2^32 - 1 entries), in which case `max` is that per-shard limit.
    #[error("too many entries: the bound is {max}")]
    TooManyEntries {
        /// The entry-count bound.
        max: u64,
    },
    /// The builder was given settings that cannot work together.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_like_redis_would_say_them() {
        let e = Error::OutOfMemory {
            needed: 10,
            max: 100,
        };
        assert_eq!(
            e.to_string(),
            "out of memory: needed 10 bytes above the 100-byte bound"
        );
        assert_eq!(
            Error::InvalidConfig("shards must be a power of two").to_string(),
            "invalid configuration: shards must be a power of two"
        );
    }
}
