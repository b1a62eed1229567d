//! [`WriteThrough`]: writes go to the store of record through a [`Writer`], then to the
//! cache, and a failure says which of the two failed.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use super::{Loader, ReadThrough};
use crate::backend::Backend;
use crate::error::Error;

/// Writes the store of record for a write-through cache.
pub trait Writer: Send + Sync + 'static {
    /// What a failed write reports.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Stores `value` at `key` in the store of record.
    ///
    /// # Errors
    /// Whatever writing the store of record failed with; the cache is then left alone.
    fn write(
        &self,
        key: &[u8],
        value: Bytes,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Removes `key` from the store of record (succeeding if it was not there).
    ///
    /// # Errors
    /// Whatever writing the store of record failed with; the cache is then left alone.
    fn delete(&self, key: &[u8]) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Which step of a write-through failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteThroughError<E> {
    /// The store of record refused the write. Nothing changed, in it or in the cache.
    #[error("writing the store of record failed: {0}")]
    Store(#[source] E),
    /// The store of record was written, but updating the cache failed. The key was then
    /// deleted from the cache (best effort), so the next read loads the new value.
    #[error("the store of record was written, but updating the cache failed: {source}")]
    Cache {
        /// Why the cache update failed.
        source: Error,
        /// `None` if the key was then deleted from the cache; the deletion's error if that
        /// failed too, in which case the cache may serve the previous value until its TTL.
        invalidation: Option<Error>,
    },
}

/// A [`ReadThrough`] cache whose writes go through a [`Writer`] to the store of record,
/// then to the cache, so readers see a write without waiting for a TTL.
///
/// Values written here are cached with no load time in their envelope, so they expire
/// normally instead of being refreshed early; after expiry the next load measures one.
///
/// A cheap handle: clones share the loader, the writer and the single-flight table.
pub struct WriteThrough<B, L, W> {
    reads: ReadThrough<B, L>,
    writer: Arc<W>,
}

impl<B, L, W> Clone for WriteThrough<B, L, W> {
    fn clone(&self) -> Self {
        WriteThrough {
            reads: self.reads.clone(),
            writer: Arc::clone(&self.writer),
        }
    }
}

impl<B: Backend, L: Loader, W: Writer> WriteThrough<B, L, W> {
    pub(super) fn new(reads: ReadThrough<B, L>, writer: W) -> Self {
        WriteThrough {
            reads,
            writer: Arc::new(writer),
        }
    }

    /// The value at `key`, loaded on a miss; see [`ReadThrough::get`].
    ///
    /// # Errors
    /// As [`ReadThrough::get`].
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        self.reads.get(key).await
    }

    /// Writes `value` at `key` to the store of record, then to the cache.
    ///
    /// # Errors
    /// [`WriteThroughError::Store`] if the store of record refused it (the cache is left
    /// alone); [`WriteThroughError::Cache`] if only the cache update failed (the key is then
    /// deleted from the cache, best effort, and the error says whether that worked).
    pub async fn put(&self, key: &[u8], value: Bytes) -> Result<(), WriteThroughError<W::Error>> {
        self.writer
            .write(key, value.clone())
            .await
            .map_err(WriteThroughError::Store)?;
        self.update_cache(key, Some(value)).await
    }

    /// Removes `key` from the store of record, then from the cache (leaving a tombstone if
    /// negative caching is on).
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub async fn remove(&self, key: &[u8]) -> Result<(), WriteThroughError<W::Error>> {
        self.writer
            .delete(key)
            .await
            .map_err(WriteThroughError::Store)?;
        self.update_cache(key, None).await
    }

    /// Removes `key` from the cache only; `true` if it was there.
    ///
    /// # Errors
    /// Whatever reaching the cache failed with.
    pub async fn invalidate(&self, key: &[u8]) -> Result<bool, Error> {
        self.reads.invalidate(key).await
    }

    /// The read-through half.
    pub fn reads(&self) -> &ReadThrough<B, L> {
        &self.reads
    }

    async fn update_cache(
        &self,
        key: &[u8],
        value: Option<Bytes>,
    ) -> Result<(), WriteThroughError<W::Error>> {
        let Err(source) = self.reads.store_written(key, value).await else {
            return Ok(());
        };
        let invalidation = self.reads.invalidate(key).await.err();
        Err(WriteThroughError::Cache {
            source,
            invalidation,
        })
    }
}
