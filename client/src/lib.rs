//! Cachalot's client: a cluster-aware async client for Cachalot (and Redis) nodes, and the
//! cache patterns built on it.
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
mod command;
mod connection;
mod embedded;
mod error;
mod read_through;
mod router;

pub use aside::{CacheAside, CacheAsideBuilder, DEFAULT_BETA, DEFAULT_TTL_JITTER};
pub use backend::Backend;
pub use breaker::{BreakerSettings, BreakerState};
pub use client::{Client, ClientBuilder, ClientMetrics, NodeMetrics, ReadFrom};
pub use cmd::{Cmd, ToArg};
pub use command::Ttl;
pub use embedded::Embedded;
pub use error::Error;
pub use read_through::{
    Loader, ReadThrough, ReadThroughBuilder, WriteThrough, WriteThroughError, Writer,
};
