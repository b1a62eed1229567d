//! Cachalot's storage engine, usable on its own as an embedded cache: a sharded, concurrent,
//! memory-bounded map with Redis's eviction policies, TTLs and access statistics.
//!
//! The Cachalot server keeps its keyspace in a [`Cache`]; an application can use the same
//! engine in-process, with the same eviction and expiry behaviour and no network.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use cachalot_store::{Cache, ManualClock, Policy, RemovalCause};
//!
//! // A cache of at most ~1 MiB, evicting the least frequently used entries, where entries
//! // live for a minute unless told otherwise. The clock is manual so this example is
//! // deterministic; by default the cache uses the system clock.
//! let clock = Arc::new(ManualClock::new(1_700_000_000_000));
//! let cache: Cache<String, String> = Cache::builder()
//!     .max_weight(1 << 20)
//!     .weigher(|k: &String, v: &String| (k.len() + v.len()) as u64)
//!     .policy(Policy::from_redis_name("allkeys-lfu").expect("a Redis policy name"))
//!     .default_ttl(Duration::from_secs(60))
//!     .clock(clock.clone())
//!     .removal_listener(|key, _value, cause| {
//!         if cause == RemovalCause::Evicted {
//!             eprintln!("evicted {key}");
//!         }
//!     })
//!     .build()?;
//!
//! cache.insert("greeting".to_owned(), "hello".to_owned())?;
//! cache.insert_with_ttl("session".to_owned(), "abc".to_owned(), Duration::from_secs(5))?;
//! assert_eq!(cache.get("greeting").as_deref(), Some("hello"));
//! assert_eq!(cache.ttl("session"), Some(Some(Duration::from_secs(5))));
//!
//! // Atomic read-modify-write, like APPEND.
//! cache.compute("greeting".to_owned(), |entry| {
//!     if let Some(v) = entry.get_mut() {
//!         v.push_str(", world");
//!     }
//! })?;
//!
//! // Time passes: the session expires; the active sweep (or any access) removes it.
//! clock.advance(Duration::from_secs(10));
//! cache.sweep_expired(1_000);
//! assert!(!cache.contains("session"));
//!
//! // Each entry weighs what the weigher says plus the engine's own per-entry overhead.
//! assert_eq!(cache.len(), 1);
//! assert_eq!(
//!     cache.weighted_size(),
//!     "greeting".len() as u64 + "hello, world".len() as u64 + cache.entry_overhead_bytes()
//! );
//!
//! let stats = cache.stats();
//! assert_eq!((stats.hits, stats.misses, stats.expirations), (1, 0, 1));
//! # Ok::<(), cachalot_store::Error>(())
//! ```
//!
//! # Modules
//!
//! - `cache`: the [`Cache`] handle and its [`CacheBuilder`]; whole-keyspace operations
//!   (SCAN, active expiry, random key, clear).
//! - `shard`: one shard's slab of entries, hash index, LRU list (kept only under
//!   `allkeys-lru`), W-TinyLFU segments and frequency sketch (kept only under
//!   `allkeys-tinylfu`) and expiring index.
//! - `entry`: [`Entry`] (the `compute` view) and [`EntryInfo`].
//! - `policy`: [`Policy`], [`RemovalCause`] and victim selection, one file per family.
//! - `memory`: weights, totals and the bound-enforcing eviction loop.
//! - `expiry`: expiry times, the incremental sweep and [`ExpirySchedule`], the cadence to
//!   run it at.
//! - `stats`: per-entry recency and Redis's LFU counter, the TinyLFU frequency sketch, and
//!   which of them each policy keeps up to date; per-shard counters, [`CacheStats`].
//! - `clock`: [`Clock`], [`SystemClock`], [`ManualClock`].
//!
//! # Consistency and concurrency
//!
//! - Keys are hashed once per operation, outside any lock, with foldhash under secret
//!   random seeds: no precomputed list of keys collides in every process, but foldhash does
//!   not claim to withstand an attacker who works out the seeds by timing (SipHash would).
//! - Keys are spread over a power-of-two number of shards by hash. Each shard is one
//!   `parking_lot::Mutex` over its own map and eviction metadata, held for one short
//!   operation; there is no global lock. Reads lock their shard too (a read records an
//!   access), so they contend only with operations on the same shard.
//! - Every operation on one key is atomic and linearizable; [`Cache::compute`] gives atomic
//!   read-modify-write. Operations over several keys or the whole cache (`len`, `stats`,
//!   `scan`, `clear`) are not snapshots.
//! - Cache-wide weight and length are atomics updated once per write; statistics are
//!   per-shard counters, summed when read (hits and misses live inside the shard and are
//!   read under its lock, so a read writes no cache line outside its shard).
//! - Bounds: see the `memory` module notes. In short, `max_weight`/`max_entries` hold after
//!   every operation, up to the entries being written concurrently at that instant, and a
//!   key just written is never the one evicted to make room for itself.
//! - Eviction is exact LRU per shard for `allkeys-lru` and W-TinyLFU per shard for
//!   `allkeys-tinylfu` (Caffeine's design, after Einziger, Friedman & Manes's TinyLFU: an
//!   admission window, a segmented LRU main region and a per-shard Count-Min frequency
//!   sketch; it decides what is evicted, never whether a write happens; a hit's sketch
//!   count is buffered in the shard and counted 32 at a time, and before every eviction, so
//!   the estimates are those of counting each at once; a hit on an entry still in about
//!   the front quarter of the protected segment, or of an unbounded cache's window, leaves
//!   it in place, so the order there is approximate); the other policies
//!   compare a sample of 10 entries of the shard (all of them in small shards). A write
//!   evicts from its own shard first, and from the other shards only if its shard has
//!   nothing evictable, so the cache-wide order is approximate, as in Redis.
//! - An access records only what the policy in force uses, in one 32-bit word per entry as
//!   Redis does: the LFU counter under the LFU policies, the last-access second under the
//!   others; plus the LRU list under `allkeys-lru`, the segments and sketch under
//!   `allkeys-tinylfu` (the builder's default). [`Cache::set_policy`] rebuilds the LRU lists when
//!   switching into `allkeys-lru`, and the segments (with an empty sketch) when switching
//!   into `allkeys-tinylfu`.
//! - Expiry is lazy (any access to an expired entry removes it) plus
//!   [`Cache::sweep_expired`], a bounded incremental sweep the owner calls periodically,
//!   steered by random samples ([`Cache::sample_expired`]) at the cadence an
//!   [`ExpirySchedule`] gives.
//! - The removal listener is called once per entry that leaves the cache, after the shard
//!   lock is released. Closures passed to reads, `compute` and `scan`, and the weigher, run
//!   under the shard lock and must not call back into the cache.
//!
//! # What it does not do
//!
//! No threads, timers or async: the owner drives active expiry by calling
//! [`Cache::sweep_expired`]. No persistence, replication or networking. No loader or
//! single-flight (that is the client crate's cache-aside). Memory is accounted through the
//! weigher, not measured from the allocator: the spare capacity of hash tables and slabs is
//! not counted, and the slab does not shrink after mass removals (only `clear` releases it).

mod cache;
mod clock;
mod entry;
mod error;
mod expiry;
mod memory;
mod policy;
mod shard;
mod stats;

#[doc(hidden)]
pub use cache::ExpiredUsage;
pub use cache::{Cache, CacheBuilder, WeakCache};
pub use clock::{Clock, ManualClock, SystemClock};
pub use entry::{Entry, EntryInfo};
pub use error::Error;
pub use expiry::{ExpirySchedule, ExpiryStep, ExpiryTick};
pub use policy::{Policy, RemovalCause};
pub use stats::CacheStats;
