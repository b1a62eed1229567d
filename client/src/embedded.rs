//! [`Embedded`]: the [`Backend`] over an in-process `cachalot-store` engine, with no
//! network at all.

use std::time::Duration;

use bytes::Bytes;
use cachalot_store::Cache;

use crate::backend::Backend;
use crate::error::Error;

/// An in-process cache with the same eviction and expiry as a Cachalot node, usable
/// wherever a [`Backend`] is expected.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use cachalot_client::{Backend, Embedded};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let cache = Embedded::with_max_bytes(64 << 20)?;
/// cache.set(b"user:1", Bytes::from_static(b"ada"), Some(Duration::from_secs(60))).await?;
/// assert_eq!(cache.get(b"user:1").await?, Some(Bytes::from_static(b"ada")));
/// # Ok::<(), cachalot_client::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Embedded {
    cache: Cache<Bytes, Bytes>,
}

impl Embedded {
    /// Wraps an engine built by the caller (any policy, bound, clock or listener).
    pub fn new(cache: Cache<Bytes, Bytes>) -> Embedded {
        Embedded { cache }
    }

    /// An engine bounded to `max_bytes` of keys, values and per-entry overhead, with the
    /// engine's default policy (W-TinyLFU).
    ///
    /// # Errors
    /// [`Error::Store`] if the bound is unusable.
    pub fn with_max_bytes(max_bytes: u64) -> Result<Embedded, Error> {
        let cache = Cache::builder()
            .max_weight(max_bytes)
            .weigher(|k: &Bytes, v: &Bytes| (k.len() + v.len()) as u64)
            .build()?;
        Ok(Embedded { cache })
    }

    /// The engine itself, for statistics or operations the [`Backend`] does not cover.
    pub fn cache(&self) -> &Cache<Bytes, Bytes> {
        &self.cache
    }
}

impl Backend for Embedded {
    async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        Ok(self.cache.get(key))
    }

    async fn set(&self, key: &[u8], value: Bytes, ttl: Option<Duration>) -> Result<(), Error> {
        let key = Bytes::copy_from_slice(key);
        match ttl {
            Some(ttl) => self.cache.insert_with_ttl(key, value, ttl)?,
            None => self.cache.insert_with_expiry(key, value, None)?,
        };
        Ok(())
    }

    async fn delete(&self, key: &[u8]) -> Result<bool, Error> {
        Ok(self.cache.remove(key).is_some())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cachalot_store::ManualClock;

    use super::*;

    #[tokio::test]
    async fn values_expire_after_their_ttl() {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let cache = Cache::builder()
            .max_entries(100)
            .clock(clock.clone())
            .build()
            .expect("valid");
        let backend = Embedded::new(cache);
        backend
            .set(b"k", Bytes::from_static(b"v"), Some(Duration::from_secs(2)))
            .await
            .expect("set");
        assert_eq!(
            backend.get(b"k").await.expect("get").as_deref(),
            Some(&b"v"[..])
        );
        clock.advance(Duration::from_secs(3));
        assert_eq!(backend.get(b"k").await.expect("get"), None);
        assert!(!backend.delete(b"k").await.expect("delete"));
    }
}
