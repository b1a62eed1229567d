//! [`ReadThrough`]: a cache that loads its own misses through a [`Loader`], optionally
//! caching "no such key" as a tombstone; and [`WriteThrough`], which also writes through a
//! [`Writer`] to the store of record before the cache.
//!
//! Both are built on [`CacheAside`]: the same single-flight loads, early refresh, TTL
//! jitter and [envelope](crate::CacheAside#the-envelope).
//!
//! # Consistency
//!
//! A write goes to the store of record first, then to the cache. A load of the old value
//! that was already running when the write landed can still fill the cache with that old
//! value afterwards; it then lives until its TTL (or the next write). Keep TTLs as short as
//! that staleness allows.

mod write_through;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cachalot_store::Clock;

use crate::aside::{CacheAside, CacheAsideBuilder};
use crate::backend::Backend;
use crate::error::Error;

pub use write_through::{WriteThrough, WriteThroughError, Writer};

/// Reads the store of record for a read-through cache.
pub trait Loader: Send + Sync + 'static {
    /// What a failed read reports.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The store of record's value for `key`, or `None` if it has no such key.
    ///
    /// # Errors
    /// Whatever reading the store of record failed with; the cache reports it as
    /// [`Error::Load`] to every caller waiting on this load.
    fn load(&self, key: &[u8]) -> impl Future<Output = Result<Option<Bytes>, Self::Error>> + Send;
}

/// A cache that loads its own misses through a [`Loader`].
///
/// A cheap handle: clones share the loader and the single-flight table.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use cachalot_client::{Embedded, Loader, ReadThrough};
///
/// struct Users;
///
/// impl Loader for Users {
///     type Error = std::io::Error;
///     async fn load(&self, key: &[u8]) -> Result<Option<Bytes>, std::io::Error> {
///         Ok((key == b"user:1").then(|| Bytes::from_static(b"ada")))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let users = ReadThrough::builder(Embedded::with_max_bytes(1 << 20)?, Users, Duration::from_secs(60))
///     .negative_ttl(Duration::from_secs(5))
///     .build();
/// assert_eq!(users.get(b"user:1").await?, Some(Bytes::from_static(b"ada")));
/// assert_eq!(users.get(b"user:2").await?, None);
/// # Ok::<(), cachalot_client::Error>(())
/// # }).unwrap();
/// ```
pub struct ReadThrough<B, L> {
    cache: CacheAside<B>,
    loader: Arc<L>,
    ttl: Duration,
    negative_ttl: Option<Duration>,
}

impl<B, L> Clone for ReadThrough<B, L> {
    fn clone(&self) -> Self {
        ReadThrough {
            cache: self.cache.clone(),
            loader: Arc::clone(&self.loader),
            ttl: self.ttl,
            negative_ttl: self.negative_ttl,
        }
    }
}

/// Settings for a [`ReadThrough`].
pub struct ReadThroughBuilder<B, L> {
    cache: CacheAsideBuilder<B>,
    loader: L,
    ttl: Duration,
    negative_ttl: Option<Duration>,
}

impl<B: Backend, L: Loader> ReadThroughBuilder<B, L> {
    /// Caches "no such key" answers for `ttl` (less the jitter) as tombstones, so repeated
    /// reads of a missing key do not each reach the store of record. Off by default.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// XFetch's `beta`; see [`CacheAsideBuilder::beta`].
    pub fn beta(mut self, beta: f64) -> Self {
        self.cache = self.cache.beta(beta);
        self
    }

    /// The TTL jitter; see [`CacheAsideBuilder::ttl_jitter`].
    pub fn ttl_jitter(mut self, fraction: f64) -> Self {
        self.cache = self.cache.ttl_jitter(fraction);
        self
    }

    /// The wall clock; see [`CacheAsideBuilder::clock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.cache = self.cache.clock(clock);
        self
    }

    /// A seeded random source; see [`CacheAsideBuilder::seed`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.cache = self.cache.seed(seed);
        self
    }

    /// The read-through cache.
    pub fn build(self) -> ReadThrough<B, L> {
        ReadThrough {
            cache: self.cache.build(),
            loader: Arc::new(self.loader),
            ttl: self.ttl,
            negative_ttl: self.negative_ttl,
        }
    }
}

impl<B: Backend, L: Loader> ReadThrough<B, L> {
    /// A read-through cache over `backend`, loading misses with `loader` and caching them for
    /// `ttl`, with the default settings and no negative caching.
    pub fn new(backend: B, loader: L, ttl: Duration) -> Self {
        Self::builder(backend, loader, ttl).build()
    }

    /// Settings for a read-through cache over `backend`, loading misses with `loader` and
    /// caching them for `ttl`.
    pub fn builder(backend: B, loader: L, ttl: Duration) -> ReadThroughBuilder<B, L> {
        ReadThroughBuilder {
            cache: CacheAside::builder(backend),
            loader,
            ttl,
            negative_ttl: None,
        }
    }

    /// The value at `key`, loaded on a miss; `None` only if the loader said the store of
    /// record has no such key (now, or when the tombstone was cached).
    ///
    /// # Errors
    /// [`Error::Load`] with the loader's error (shared by every caller waiting on the same
    /// load; nothing is cached), or whatever reading the cache failed with.
    ///
    /// # Cancel safety
    /// Cancel-safe, as [`CacheAside::get_or_load`].
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        let loader = &self.loader;
        self.cache
            .fetch(key, self.ttl, self.negative_ttl, || loader.load(key))
            .await
    }

    /// Removes `key` from the cache (not from the store of record); `true` if it was there.
    ///
    /// # Errors
    /// Whatever reaching the cache failed with.
    pub async fn invalidate(&self, key: &[u8]) -> Result<bool, Error> {
        self.cache.invalidate(key).await
    }

    /// The cache-aside handle underneath (its backend, loads in flight).
    pub fn cache(&self) -> &CacheAside<B> {
        &self.cache
    }

    /// Adds write-through: writes go to `writer` (the store of record), then the cache.
    pub fn with_writer<W: Writer>(self, writer: W) -> WriteThrough<B, L, W> {
        WriteThrough::new(self, writer)
    }

    /// Caches `value` (or, for `None`, a tombstone if negative caching is on, else nothing)
    /// at `key` after a write to the store of record.
    async fn store_written(&self, key: &[u8], value: Option<Bytes>) -> Result<(), Error> {
        self.cache
            .store(key, value, self.ttl, self.negative_ttl, 0)
            .await
    }
}

#[cfg(test)]
mod tests;
