//! [`Backend`]: the few cache operations the cache patterns need, implemented over a
//! Cachalot cluster ([`Client`](crate::Client)) and over the embedded engine
//! ([`Embedded`](crate::Embedded)), so code written against it moves between the two by
//! changing its constructor.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use crate::error::Error;

/// A byte-keyed, byte-valued cache with TTLs: what cache-aside, read-through and
/// write-through are built on.
///
/// Implementations are cheap handles (`Clone`) shared between tasks.
pub trait Backend: Clone + Send + Sync + 'static {
    /// The value stored at `key`, or `None` if it is missing or expired.
    ///
    /// # Errors
    /// Whatever reaching the cache failed with; never an error for a plain miss.
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Option<Bytes>, Error>> + Send;

    /// Stores `value` at `key`, replacing what was there, expiring after `ttl` (or never,
    /// with `None`).
    ///
    /// # Errors
    /// Whatever reaching the cache failed with, or its refusal (for example out of memory
    /// under `noeviction`).
    fn set(
        &self,
        key: &[u8],
        value: Bytes,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Removes `key`; `true` if it was there.
    ///
    /// # Errors
    /// Whatever reaching the cache failed with.
    fn delete(&self, key: &[u8]) -> impl Future<Output = Result<bool, Error>> + Send;
}
