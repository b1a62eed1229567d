//! `cachalot-server`: a cache node that speaks the Redis protocol.
//!
//! One node serves RESP2 and RESP3 clients (redis-cli, redis-benchmark, any Redis client
//! library) for strings, keys with expiry, and hashes, keeping its data in
//! [`cachalot_store`]. The binary only parses arguments, sets up logging and turns signals
//! into cancellation; everything else is here so tests can run nodes in-process.
//!
//! # Module map
//! - [`net`]: accept loop ([`net::listener::run`]), one task per connection, sessions, the
//!   client registry.
//! - [`cluster`]: slot placement: the consistent-hash ring with bounded loads, the
//!   slot map it computes from the shard set, and the static topology cluster mode
//!   routes keys with (`command::cluster` answers `MOVED`, `CROSSSLOT` and `CLUSTER`).
//! - [`command`]: the command table ([`command::table`]) and one file per family.
//! - [`node`]: the state connections share; [`key`] and [`value`]: what the keyspace stores.
//! - [`replication`]: the effect stream, its backlog, primary and replica links;
//!   [`cluster::failover`]: heartbeats, failure detection and promotion.
//! - [`config`]: defaults, TOML file, environment and flags; [`cron`]: active expiry.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), cachalot_server::error::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! cachalot_server::net::listener::run(listener, cachalot_server::config::Config::default(), shutdown).await
//! # }
//! ```
//!
//! # Concurrency model
//! Each connection is one task that reads, decodes every complete command, runs them in
//! order against the sharded store (short per-shard locks, never held across `.await`),
//! and writes all replies in one batch. Commands of one connection run in order; commands
//! of different connections interleave per key like Redis's do, except that multi-key
//! commands (`MSET`, `MSETNX`, `RENAME`, `COPY`) are not atomic across keys.
//!
//! # Not here yet
//! Sharded pub/sub, transactions, scripting, lists, sets and sorted sets: those commands
//! answer `-ERR unknown command`.

#![warn(missing_docs)]

pub mod cluster;
pub mod command;
pub mod config;
pub mod cron;
pub mod error;
pub mod hotkeys;
pub mod key;
pub mod metrics;
pub mod net;
pub mod node;
pub mod pattern;
pub mod pubsub;
pub mod replication;
pub mod slowlog;
pub mod tracking;
pub mod value;
