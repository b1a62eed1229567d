//! Cachalot's client: a cluster-aware async client for Cachalot (and Redis Cluster) nodes,
//! and the cache patterns built on it, which run unchanged over the embedded engine.
//!
//! # Modules
//!
//! | module | what it holds |
//! |---|---|
//! | `client` | [`Client`], [`ClientBuilder`], [`ReadFrom`], [`ClientMetrics`]: `client/execute.rs` (routing, redirects, retries), `client/refresh.rs` (slot map refresh, hot-key poll), `client/node.rs` (a node's pooled connections, breaker, counters), `client/topology.rs` (the slot map snapshot), `client/typed.rs` (the typed API: strings, keys and expiry, hashes; multi-key split by slot; [`Ttl`]) |
//! | `near_cache` | [`NearCacheSettings`], [`NearCacheMetrics`]: hot keys kept in-process, invalidated by the nodes |
//! | `cmd` | [`Cmd`], [`ToArg`]: a raw command and the key positions the router reads |
//! | `connection` | one multiplexed, pipelined connection (a writer and a reader task) |
//! | `router` | the slot table parsed from `CLUSTER SLOTS` (sans-IO) |
//! | `breaker` | [`BreakerSettings`], [`BreakerState`]: the per-node circuit breaker (sans-IO) |
//! | `backend` | [`Backend`]: the cache operations the patterns need; implemented by [`Client`] and [`Embedded`] |
//! | `embedded` | [`Embedded`]: the in-process engine (`cachalot-store`) as a [`Backend`] |
//! | `aside` | [`CacheAside`]: `get_or_load` with single-flight, XFetch early refresh, TTL jitter |
//! | `read_through` | [`ReadThrough`] with a [`Loader`], [`WriteThrough`] with a [`Writer`] |
//! | [`blocking`] | a blocking wrapper owning its runtime |
//! | `error` | [`Error`] and [`Error::is_retryable`] |
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use bytes::Bytes;
//! use cachalot_client::{CacheAside, Client, Embedded};
//!
//! # async fn demo() -> Result<(), cachalot_client::Error> {
//! // Any node of a cluster (or a single node) as the seed: the client learns the slot map.
//! let client = Client::connect(["127.0.0.1:7001"]).await?;
//! client.set("user:1", "ada").await?;
//! let all = client.mget(&["user:1", "user:2"]).await?; // split by slot, merged in order
//! assert_eq!(all[0].as_deref(), Some(&b"ada"[..]));
//!
//! // Cache-aside: concurrent misses of one key load once; hot keys refresh before expiry.
//! let users = CacheAside::new(client);
//! let profile = users
//!     .get_or_load(b"profile:1", Duration::from_secs(60), || async {
//!         Ok::<_, std::io::Error>(Bytes::from_static(b"{\"name\":\"ada\"}"))
//!     })
//!     .await?;
//!
//! // The same code in-process: only the constructor changes.
//! let local = CacheAside::new(Embedded::with_max_bytes(64 << 20)?);
//! # let _ = (profile, local);
//! # Ok(()) }
//! ```
//!
//! # Consistency and concurrency
//!
//! - Every call goes to the node that owns its key's slot (CRC16 with hash tags, as Redis
//!   Cluster). The slot map is an immutable snapshot behind an atomic pointer swap: calls
//!   read it without a lock; refreshes (periodic, after `-MOVED`, after connection errors)
//!   build a new one and swap it in.
//! - One connection per node (or a small pool) carries every caller's commands; replies are
//!   matched to requests by order. At most 4096 requests are outstanding per connection;
//!   beyond that callers wait (backpressure, no unbounded queue).
//! - `-MOVED` is followed at once and sets off a refresh; `-ASK` is followed once with
//!   `ASKING` and leaves the map alone. I/O errors, `-TRYAGAIN`, `-CLUSTERDOWN`, `-LOADING`
//!   and an open circuit are retried with exponential backoff and full jitter until the
//!   call's deadline (5 s by default). A write that failed with an I/O error may still have
//!   run on the node; retrying it can apply it twice (as with any Redis client).
//! - Multi-key commands (`MGET`, `MSET`, `DEL`, `UNLINK`, `EXISTS`, `TOUCH`) are split by
//!   slot and run concurrently: each slot's part is atomic on its node, the whole is not.
//! - Cache-aside single-flight is per process (per [`CacheAside`] handle and its clones):
//!   two processes missing the same key both load it.
//!
//! # What it does not do
//!
//! - No RESP3, pub/sub, transactions (`MULTI`/`EXEC`) or scripting; no client-side caching
//!   (tracking) yet.
//! - Node addresses in `CLUSTER SLOTS` must be IP addresses (hostnames are not resolved).
//! - No TLS.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod aside;
mod backend;
pub mod blocking;
mod breaker;
mod client;
mod cmd;
mod connection;
mod embedded;
mod error;
mod near_cache;
mod read_through;
mod router;

pub use aside::{CacheAside, CacheAsideBuilder, DEFAULT_BETA, DEFAULT_TTL_JITTER};
pub use backend::Backend;
pub use breaker::{BreakerSettings, BreakerState};
pub use client::{Client, ClientBuilder, ClientMetrics, NodeMetrics, ReadFrom, Ttl};
pub use cmd::{Cmd, ToArg};
pub use embedded::Embedded;
pub use error::Error;
pub use near_cache::{NearCacheMetrics, NearCacheSettings};
pub use read_through::{
    Loader, ReadThrough, ReadThroughBuilder, WriteThrough, WriteThroughError, Writer,
};
