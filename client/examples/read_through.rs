//! Read-through with negative caching, and write-through, over the embedded engine.
//!
//! ```text
//! cargo run -p cachalot-client --example read_through
//! ```
//!
//! Swap `Embedded::with_max_bytes(..)` for `Client::connect(["127.0.0.1:6379"]).await?` to run
//! it against a cluster; nothing else changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cachalot_client::{Embedded, Loader, ReadThrough, WriteThroughError, Writer};
use parking_lot::Mutex;

/// How long loaded and written values stay cached.
const TTL_SECS: u64 = 300;

/// How long "no such user" is remembered.
const NEGATIVE_TTL_SECS: u64 = 10;

/// A stand-in store of record.
#[derive(Clone, Default)]
struct Users {
    rows: Arc<Mutex<HashMap<Vec<u8>, Bytes>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("users table unavailable")]
struct Unavailable;

impl Loader for Users {
    type Error = Unavailable;

    async fn load(&self, key: &[u8]) -> Result<Option<Bytes>, Unavailable> {
        tracing::info!(key = %String::from_utf8_lossy(key), "loading from the store of record");
        Ok(self.rows.lock().get(key).cloned())
    }
}

impl Writer for Users {
    type Error = Unavailable;

    async fn write(&self, key: &[u8], value: Bytes) -> Result<(), Unavailable> {
        self.rows.lock().insert(key.to_vec(), value);
        Ok(())
    }

    async fn delete(&self, key: &[u8]) -> Result<(), Unavailable> {
        self.rows.lock().remove(key);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let users = Users::default();
    let cache = ReadThrough::builder(
        Embedded::with_max_bytes(64 << 20)?,
        users.clone(),
        Duration::from_secs(TTL_SECS),
    )
    .negative_ttl(Duration::from_secs(NEGATIVE_TTL_SECS))
    .build()
    .with_writer(users);

    // A missing user is loaded once, then answered by its tombstone.
    for _ in 0..3 {
        let user = cache.get(b"user:1").await?;
        tracing::info!(found = user.is_some(), "read user:1");
    }

    // A write goes to the store of record, then replaces the tombstone.
    match cache.put(b"user:1", Bytes::from_static(b"ada")).await {
        Ok(()) => {}
        Err(WriteThroughError::Store(e)) => return Err(e.into()),
        Err(WriteThroughError::Cache {
            source,
            invalidation,
        }) => {
            // The store of record has the new value; the cache may lag until its TTL
            // only if the invalidation failed too.
            tracing::warn!(%source, stale = invalidation.is_some(), "cache not updated");
        }
    }
    let user = cache.get(b"user:1").await?;
    tracing::info!(user = ?user, "read user:1 after the write, from the cache");
    Ok(())
}
