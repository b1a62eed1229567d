//! The `cache_aside` example against a Cachalot cluster (or a single node, or Redis) at
//! 127.0.0.1:6379: the same code as over the embedded engine, a different constructor.
//!
//! ```text
//! cargo run -p cachalot-server -- --port 6379 &
//! cargo run -p cachalot-client --example cache_aside_cluster
//! ```

use cachalot_client::{CacheAside, Client, Error};

#[path = "cache_aside.rs"]
#[allow(dead_code)]
mod embedded_example;

use embedded_example::{serve, Database};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let cache = CacheAside::new(Client::connect(["127.0.0.1:6379"]).await?);
    serve(cache, Database::default()).await
}
