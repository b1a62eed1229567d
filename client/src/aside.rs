//! [`CacheAside`]: `get_or_load` over any [`Backend`], with single-flight loads, early
//! refresh of hot entries and TTL jitter.
//!
//! The behaviour, the envelope format and the consistency model are documented on
//! [`CacheAside`].

mod envelope;
mod flight;
mod timing;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cachalot_store::{Clock, SystemClock};

use crate::backend::Backend;
use crate::error::Error;
use envelope::Decoded;
use flight::{FlightTable, Role};
use timing::Timing;

/// XFetch's `beta` by default: the paper's choice, optimal for expected stampede cost.
pub const DEFAULT_BETA: f64 = 1.0;

/// The largest fraction cut from each TTL by default: 10% spreads keys written together
/// over a tenth of their lifetime while keeping the TTL close to what was asked.
pub const DEFAULT_TTL_JITTER: f64 = 0.1;

/// How many abandoned flights (leaders cancelled mid-load) one caller sits through before
/// giving up with an error instead of waiting on yet another leader. A healthy process
/// sees one at most; 8 means every caller keeps being cancelled.
const MAX_ABANDONED_FLIGHTS: u32 = 8;

/// What a load's waiters receive: the value, `None` if the store of record has no such key,
/// or the loader's error.
type LoadResult = Result<Option<Bytes>, Error>;

/// Cache-aside over a [`Backend`]: read the cache, on a miss load from the store of record
/// and fill the cache, with single-flight loads, early refresh and TTL jitter (see the
/// [type docs](CacheAside)).
///
/// A cheap handle: clones share the single-flight table.
///
/// # What it does
///
/// - **Single-flight.** Concurrent misses for one key in this process run the loader once;
///   every caller gets its result, including its error (then nothing is cached). The idea
///   is Go's `golang.org/x/sync/singleflight`. If the caller running the load is cancelled
///   (its future dropped), the waiting callers start over and one of them loads.
/// - **Early refresh (XFetch).** Each cached value carries its expiry and how long it took
///   to load (`delta`). A reader refreshes it before it expires with probability rising as
///   expiry nears: when `now - delta * beta * ln(rand()) >= expiry`, after Vattani,
///   Chierichetti & Lowenstein, "Optimal Probabilistic Cache Stampede Prevention" (VLDB
///   2015). That reader runs the loader (single-flight again) while every other reader keeps
///   getting the current value at once, so a hot key's expiry never sends a burst of loads
///   to the store of record. A failed early refresh is not an error: its caller gets the
///   current value, which has not expired.
/// - **TTL jitter.** Each TTL is shortened by a random fraction (up to 10% by default), so
///   keys written together do not expire together.
///
/// # The envelope
///
/// To decide on early refresh without a second round trip, every value written by
/// cache-aside (and [`ReadThrough`](crate::ReadThrough)) is stored wrapped in a 16-byte
/// header, integers big-endian:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 2 | magic `0xF8 0x43` (`0xF8` never starts valid UTF-8) |
/// | 2 | 1 | version, `1` |
/// | 3 | 1 | kind: `0` value, `1` tombstone (the store of record has no such key) |
/// | 4 | 4 | `delta`: the load's duration in milliseconds, saturating; `0` disables early refresh |
/// | 8 | 8 | absolute expiry in unix milliseconds by the writer's clock; `0` for none |
/// | 16 | rest | the value (empty for a tombstone) |
///
/// So **values written by cache-aside are not plain bytes to other readers**: a `GET` from
/// another client sees the header. Readers here accept the other way round: the cache's
/// content is untrusted input, and anything that is not a valid envelope (too short, other
/// magic, unknown kind, a tombstone with a payload) is returned as a plain value with no
/// early refresh, never an error. An envelope with our magic but a newer version (from a
/// newer client) reads as a miss, so it is reloaded rather than handed out with a header
/// this version cannot strip.
///
/// # Consistency
///
/// The cache can serve a value up to its TTL after the store of record changed; call
/// [`CacheAside::invalidate`] after writing the store of record to shorten that. Single
/// flight is per process: `n` processes missing a key together run up to `n` loads. The
/// envelope's expiry comes from the writing client's clock and early refresh compares it
/// with the reader's; clock skew between clients only moves the refresh window.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use cachalot_client::{CacheAside, Embedded};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let cache = CacheAside::new(Embedded::with_max_bytes(64 << 20)?);
/// let user = cache
///     .get_or_load(b"user:1", Duration::from_secs(60), || async {
///         // Read the store of record here.
///         Ok::<_, std::io::Error>(Bytes::from_static(b"ada"))
///     })
///     .await?;
/// assert_eq!(user, Bytes::from_static(b"ada"));
/// # Ok::<(), cachalot_client::Error>(())
/// # }).unwrap();
/// ```
pub struct CacheAside<B> {
    inner: Arc<Inner<B>>,
}

struct Inner<B> {
    backend: B,
    /// Loads in flight; entries are added and removed by their leaders.
    flights: FlightTable<LoadResult>,
    timing: Timing,
}

impl<B> Clone for CacheAside<B> {
    fn clone(&self) -> Self {
        CacheAside {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// Settings for a [`CacheAside`] (also used by [`ReadThrough`](crate::ReadThrough)).
pub struct CacheAsideBuilder<B> {
    backend: B,
    beta: f64,
    ttl_jitter: f64,
    clock: Arc<dyn Clock>,
    seed: Option<u64>,
}

impl<B: Backend> CacheAsideBuilder<B> {
    /// XFetch's `beta`: above 1 refreshes earlier, below 1 later, 0 never (default
    /// [`DEFAULT_BETA`]). Clamped to `[0, 100]`; a NaN reads as 0.
    pub fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// The largest fraction cut from each TTL at random (default [`DEFAULT_TTL_JITTER`]);
    /// 0 keeps TTLs exact. Clamped to `[0, 0.5]`; a NaN reads as 0.
    pub fn ttl_jitter(mut self, fraction: f64) -> Self {
        self.ttl_jitter = fraction;
        self
    }

    /// The wall clock for the absolute expiry in each envelope (default the system clock);
    /// share a [`ManualClock`](cachalot_store::ManualClock) with an
    /// [`Embedded`](crate::Embedded) engine for deterministic tests.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Draws jitter and early-refresh decisions from one generator seeded with `seed`
    /// instead of the thread-local one, for reproducible tests.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The cache-aside handle.
    pub fn build(self) -> CacheAside<B> {
        CacheAside {
            inner: Arc::new(Inner {
                backend: self.backend,
                flights: FlightTable::new(),
                timing: Timing::new(self.clock, self.beta, self.ttl_jitter, self.seed),
            }),
        }
    }
}

/// What one cache read found.
enum Lookup {
    /// Use this (`None`: a tombstone).
    Hit(Option<Bytes>),
    /// Still valid, but this reader was picked to refresh it.
    Stale(Option<Bytes>),
    /// Nothing usable.
    Miss,
}

impl<B: Backend> CacheAside<B> {
    /// Cache-aside over `backend` with the default settings.
    pub fn new(backend: B) -> Self {
        Self::builder(backend).build()
    }

    /// Settings for a cache-aside over `backend`.
    pub fn builder(backend: B) -> CacheAsideBuilder<B> {
        CacheAsideBuilder {
            backend,
            beta: DEFAULT_BETA,
            ttl_jitter: DEFAULT_TTL_JITTER,
            clock: Arc::new(SystemClock),
            seed: None,
        }
    }

    /// The value at `key`; on a miss, the result of `loader`, which is then cached for
    /// `ttl` (less the jitter, at least 1 ms).
    ///
    /// Concurrent misses for `key` in this process call one loader and share its result.
    /// A value near its expiry may be refreshed by this call (see the [type docs](CacheAside)).
    /// A loaded value is returned even if caching it fails (that failure is logged).
    ///
    /// # Errors
    /// [`Error::Load`] with the loader's error, for this caller and every caller that
    /// waited on the same load; nothing is cached. An error from reading the cache is
    /// returned as it is (no load is attempted, so an unreachable cache does not turn into
    /// a stampede on the store of record). [`Error::Load`] also if this caller's loads kept
    /// being abandoned (their leaders cancelled) more than a few times in a row.
    ///
    /// # Cancel safety
    /// Cancel-safe: if this call is running the load and is dropped, the callers waiting
    /// on it start over and one of them loads.
    pub async fn get_or_load<F, Fut, E>(
        &self,
        key: &[u8],
        ttl: Duration,
        loader: F,
    ) -> Result<Bytes, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let loaded = self
            .fetch(key, ttl, None, || async { loader().await.map(Some) })
            .await?;
        // Without negative caching tombstones read as misses and the loader always yields
        // a value, so there is always one here.
        loaded.ok_or_else(|| Error::load(FlightError::NoValue))
    }

    /// The value at `key`, without loading; a tombstone or an unknown envelope reads as
    /// `None`, and a value that is not an envelope as itself.
    ///
    /// # Errors
    /// Whatever reading the cache failed with.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        let raw = self.inner.backend.get(key).await?;
        Ok(match raw.map(envelope::decode) {
            Some(Decoded::Value { payload, .. }) => Some(payload),
            Some(Decoded::Plain(raw)) => Some(raw),
            Some(Decoded::Tombstone { .. } | Decoded::Foreign) | None => None,
        })
    }

    /// Caches `value` at `key` for `ttl` (less the jitter), in an envelope with no load time,
    /// so it expires normally rather than being refreshed early.
    ///
    /// # Errors
    /// Whatever writing the cache failed with.
    pub async fn set(&self, key: &[u8], value: Bytes, ttl: Duration) -> Result<(), Error> {
        self.store(key, Some(value), ttl, None, 0).await
    }

    /// Removes `key` from the cache; `true` if it was there. Call it after changing the
    /// store of record.
    ///
    /// # Errors
    /// Whatever reaching the cache failed with.
    pub async fn invalidate(&self, key: &[u8]) -> Result<bool, Error> {
        self.inner.backend.delete(key).await
    }

    /// Loads running right now (each with any number of callers waiting on it).
    pub fn loads_in_flight(&self) -> usize {
        self.inner.flights.len()
    }

    /// The backend underneath.
    pub fn backend(&self) -> &B {
        &self.inner.backend
    }

    /// The engine under [`get_or_load`](Self::get_or_load) and read-through: `None` means
    /// the store of record has no such key, which is cached as a tombstone for
    /// `negative_ttl` if that is set (and only then are tombstones read as hits).
    pub(crate) async fn fetch<F, Fut, E>(
        &self,
        key: &[u8],
        ttl: Duration,
        negative_ttl: Option<Duration>,
        loader: F,
    ) -> LoadResult
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Bytes>, E>>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let flights = &self.inner.flights;
        let mut abandoned = 0;
        loop {
            let finishes = flights.finishes(key);
            let raw = self.inner.backend.get(key).await?;
            match self.classify(raw, negative_ttl.is_some()) {
                Lookup::Hit(value) => return Ok(value),
                Lookup::Stale(current) => {
                    // Someone is refreshing it already: keep the current value.
                    let Some(leader) = flights.try_lead(key) else {
                        return Ok(current);
                    };
                    let result = self.load(key, ttl, negative_ttl, loader).await;
                    leader.finish(result.clone());
                    return Ok(result.unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "early refresh failed; serving the current value");
                        current
                    }));
                }
                Lookup::Miss => {}
            }
            match flights.join(key) {
                Role::Leader(leader) if flights.finishes(key) != finishes => {
                    // A load finished between our read and our joining and may have just
                    // filled the cache (its flight is gone, so we lead a new one): look
                    // again before loading. Only then: no extra round trip otherwise.
                    let again = self.inner.backend.get(key).await;
                    match again.map(|raw| self.classify(raw, negative_ttl.is_some())) {
                        Ok(Lookup::Hit(value)) => {
                            leader.finish(Ok(value.clone()));
                            return Ok(value);
                        }
                        Err(e) => {
                            leader.finish(Err(e.clone()));
                            return Err(e);
                        }
                        Ok(Lookup::Stale(_) | Lookup::Miss) => {}
                    }
                    let result = self.load(key, ttl, negative_ttl, loader).await;
                    leader.finish(result.clone());
                    return result;
                }
                Role::Leader(leader) => {
                    let result = self.load(key, ttl, negative_ttl, loader).await;
                    leader.finish(result.clone());
                    return result;
                }
                Role::Waiter(waiter) => match waiter.wait().await {
                    Some(result) => return result,
                    None => {
                        abandoned += 1;
                        if abandoned >= MAX_ABANDONED_FLIGHTS {
                            return Err(Error::load(FlightError::Abandoned { times: abandoned }));
                        }
                    }
                },
            }
        }
    }

    fn classify(&self, raw: Option<Bytes>, tombstones_hit: bool) -> Lookup {
        let Some(raw) = raw else {
            return Lookup::Miss;
        };
        let (value, delta_millis, expires_at) = match envelope::decode(raw) {
            Decoded::Plain(raw) => return Lookup::Hit(Some(raw)),
            Decoded::Foreign => return Lookup::Miss,
            Decoded::Tombstone { .. } if !tombstones_hit => return Lookup::Miss,
            Decoded::Tombstone {
                delta_millis,
                expires_at_millis,
            } => (None, delta_millis, expires_at_millis),
            Decoded::Value {
                payload,
                delta_millis,
                expires_at_millis,
            } => (Some(payload), delta_millis, expires_at_millis),
        };
        let timing = &self.inner.timing;
        if timing.should_refresh(timing.now_millis(), delta_millis, expires_at) {
            Lookup::Stale(value)
        } else {
            Lookup::Hit(value)
        }
    }

    /// Runs `loader`, timing it, and caches what it returns. A failure to cache is logged,
    /// not returned: the loaded value is still right.
    async fn load<F, Fut, E>(
        &self,
        key: &[u8],
        ttl: Duration,
        negative_ttl: Option<Duration>,
        loader: F,
    ) -> LoadResult
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Bytes>, E>>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let started = tokio::time::Instant::now();
        let loaded = loader().await.map_err(Error::load)?;
        // At least 1 ms, so even a fast load's entries get a (short) early-refresh window.
        let delta_millis = u32::try_from(started.elapsed().as_millis())
            .unwrap_or(u32::MAX)
            .max(1);
        let stored = self
            .store(key, loaded.clone(), ttl, negative_ttl, delta_millis)
            .await;
        if let Err(e) = stored {
            tracing::warn!(error = %e, "caching a loaded value failed");
        }
        Ok(loaded)
    }

    /// Writes `value` (or, for `None`, a tombstone if `negative_ttl` is set, else removes
    /// the key) in its envelope.
    pub(crate) async fn store(
        &self,
        key: &[u8],
        value: Option<Bytes>,
        ttl: Duration,
        negative_ttl: Option<Duration>,
        delta_millis: u32,
    ) -> Result<(), Error> {
        let timing = &self.inner.timing;
        let (raw, ttl_millis) = match (value, negative_ttl) {
            (Some(value), _) => {
                let ttl_millis = timing.jittered_ttl_millis(ttl);
                let expires_at = timing.now_millis().saturating_add(ttl_millis);
                let raw = envelope::encode_value(&value, delta_millis, expires_at);
                (raw, ttl_millis)
            }
            (None, Some(negative_ttl)) => {
                let ttl_millis = timing.jittered_ttl_millis(negative_ttl);
                let expires_at = timing.now_millis().saturating_add(ttl_millis);
                (
                    envelope::encode_tombstone(delta_millis, expires_at),
                    ttl_millis,
                )
            }
            (None, None) => return self.inner.backend.delete(key).await.map(drop),
        };
        let ttl = Duration::from_millis(ttl_millis);
        self.inner.backend.set(key, raw, Some(ttl)).await
    }
}

/// Why a coalesced load produced no value.
#[derive(Debug, thiserror::Error)]
enum FlightError {
    /// The callers running this caller's loads kept being cancelled.
    #[error("load abandoned by {times} cancelled callers in a row")]
    Abandoned {
        /// How many.
        times: u32,
    },
    /// A cache-aside load produced nothing (cannot happen without negative caching).
    #[error("load produced no value")]
    NoValue,
}

#[cfg(test)]
mod tests;
