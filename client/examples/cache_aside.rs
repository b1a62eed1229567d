//! Cache-aside over the embedded engine: 100 concurrent requests for one missing key reach
//! the "database" once.
//!
//! ```text
//! cargo run -p cachalot-client --example cache_aside
//! ```
//!
//! `cache_aside_cluster.rs` runs the very same `serve` against a Cachalot cluster: only the
//! constructor differs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cachalot_client::{Backend, CacheAside, Embedded, Error};
use tokio::task::JoinSet;

/// How long profiles stay cached.
const PROFILE_TTL_SECS: u64 = 60;

/// Concurrent requests for the same profile.
const REQUESTS: usize = 100;

/// A stand-in for a slow store of record.
#[derive(Clone, Default)]
pub struct Database {
    queries: Arc<AtomicUsize>,
}

impl Database {
    async fn profile(&self, id: u32) -> Result<Bytes, std::io::Error> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(Bytes::from(format!("{{\"id\":{id},\"name\":\"ada\"}}")))
    }
}

/// Serves `REQUESTS` concurrent reads of one profile through `cache`, whatever its backend.
pub async fn serve<B: Backend>(cache: CacheAside<B>, db: Database) -> Result<(), Error> {
    let key = b"profile:1";
    cache.invalidate(key).await?;
    let mut requests = JoinSet::new();
    for _ in 0..REQUESTS {
        let (cache, db) = (cache.clone(), db.clone());
        requests.spawn(async move {
            let ttl = Duration::from_secs(PROFILE_TTL_SECS);
            cache.get_or_load(key, ttl, || db.profile(1)).await
        });
    }
    while let Some(joined) = requests.join_next().await {
        let profile = joined.map_err(|_| Error::Closed)??;
        tracing::debug!(profile = %String::from_utf8_lossy(&profile), "served");
    }
    tracing::info!(
        requests = REQUESTS,
        queries = db.queries.load(Ordering::SeqCst),
        "concurrent misses coalesced into one query"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let cache = CacheAside::new(Embedded::with_max_bytes(64 << 20)?);
    serve(cache, Database::default()).await
}
