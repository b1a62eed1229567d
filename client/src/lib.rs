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

mod backend;
mod breaker;
mod client;
mod cmd;
mod command;
mod connection;
mod embedded;
mod error;
mod router;

pub use backend::Backend;
pub use breaker::{BreakerSettings, BreakerState};
pub use client::{Client, ClientBuilder, ClientMetrics, NodeMetrics, ReadFrom};
pub use cmd::{Cmd, ToArg};
pub use command::Ttl;
pub use embedded::Embedded;
pub use error::Error;
