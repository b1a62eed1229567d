//! Read-through and write-through over the embedded engine with a manual clock, against an
//! in-memory "store of record".

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cachalot_store::{Cache, ManualClock};
use parking_lot::Mutex;

use super::*;
use crate::Embedded;

const START_MILLIS: u64 = 1_700_000_000_000;
const TTL: Duration = Duration::from_secs(60);
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("database down")]
struct DbDown;

/// The store of record: a map, a read counter and a switch that makes it fail.
#[derive(Clone, Default)]
struct Db {
    rows: Arc<Mutex<HashMap<Vec<u8>, Bytes>>>,
    reads: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

impl Db {
    fn with(key: &[u8], value: &'static [u8]) -> Db {
        let db = Db::default();
        db.rows
            .lock()
            .insert(key.to_vec(), Bytes::from_static(value));
        db
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), DbDown> {
        if self.down.load(Ordering::SeqCst) {
            Err(DbDown)
        } else {
            Ok(())
        }
    }
}

impl Loader for Db {
    type Error = DbDown;

    async fn load(&self, key: &[u8]) -> Result<Option<Bytes>, DbDown> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        Ok(self.rows.lock().get(key).cloned())
    }
}

impl Writer for Db {
    type Error = DbDown;

    async fn write(&self, key: &[u8], value: Bytes) -> Result<(), DbDown> {
        self.check()?;
        self.rows.lock().insert(key.to_vec(), value);
        Ok(())
    }

    async fn delete(&self, key: &[u8]) -> Result<(), DbDown> {
        self.check()?;
        self.rows.lock().remove(key);
        Ok(())
    }
}

/// The embedded engine with switches that make its writes or deletes fail.
#[derive(Clone)]
struct Faulty {
    inner: Embedded,
    fail_sets: Arc<AtomicBool>,
    fail_deletes: Arc<AtomicBool>,
}

impl Backend for Faulty {
    async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        self.inner.get(key).await
    }

    async fn set(&self, key: &[u8], value: Bytes, ttl: Option<Duration>) -> Result<(), Error> {
        if self.fail_sets.load(Ordering::SeqCst) {
            return Err(Error::Server("ERR injected set failure".into()));
        }
        self.inner.set(key, value, ttl).await
    }

    async fn delete(&self, key: &[u8]) -> Result<bool, Error> {
        if self.fail_deletes.load(Ordering::SeqCst) {
            return Err(Error::Server("ERR injected delete failure".into()));
        }
        self.inner.delete(key).await
    }
}

fn backend(clock: &Arc<ManualClock>) -> Faulty {
    let cache = Cache::builder()
        .max_entries(1_000)
        .clock(clock.clone())
        .build()
        .expect("valid engine");
    Faulty {
        inner: Embedded::new(cache),
        fail_sets: Arc::default(),
        fail_deletes: Arc::default(),
    }
}

fn read_through(db: &Db, negative: bool) -> (ReadThrough<Faulty, Db>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let mut builder = ReadThrough::builder(backend(&clock), db.clone(), TTL)
        .clock(clock.clone())
        .ttl_jitter(0.0)
        .seed(5);
    if negative {
        builder = builder.negative_ttl(NEGATIVE_TTL);
    }
    (builder.build(), clock)
}

#[tokio::test]
async fn a_read_through_cache_loads_its_own_misses_once() {
    let db = Db::with(b"user:1", b"ada");
    let (cache, _) = read_through(&db, false);
    for _ in 0..3 {
        let value = cache.get(b"user:1").await.expect("get");
        assert_eq!(value, Some(Bytes::from_static(b"ada")));
    }
    assert_eq!(db.reads(), 1);
    assert!(cache.invalidate(b"user:1").await.expect("invalidate"));
    cache.get(b"user:1").await.expect("get");
    assert_eq!(db.reads(), 2);
}

#[tokio::test]
async fn a_missing_key_is_cached_as_a_tombstone_for_the_negative_ttl() {
    let db = Db::default();
    let (cache, clock) = read_through(&db, true);
    assert_eq!(cache.get(b"ghost").await.expect("get"), None);
    assert_eq!(cache.get(b"ghost").await.expect("get"), None);
    assert_eq!(db.reads(), 1, "the second read hit the tombstone");

    db.rows
        .lock()
        .insert(b"ghost".to_vec(), Bytes::from_static(b"boo"));
    clock.advance(NEGATIVE_TTL + Duration::from_millis(1));
    assert_eq!(
        cache.get(b"ghost").await.expect("get"),
        Some(Bytes::from_static(b"boo"))
    );
    assert_eq!(db.reads(), 2);
}

#[tokio::test]
async fn without_negative_caching_every_read_of_a_missing_key_asks_the_loader() {
    let db = Db::default();
    let (cache, _) = read_through(&db, false);
    for _ in 0..3 {
        assert_eq!(cache.get(b"ghost").await.expect("get"), None);
    }
    assert_eq!(db.reads(), 3);
}

#[tokio::test]
async fn a_read_through_loader_error_is_returned_and_not_cached() {
    let db = Db::with(b"k", b"v");
    let (cache, _) = read_through(&db, true);
    db.down.store(true, Ordering::SeqCst);
    let failed = cache.get(b"k").await;
    assert!(matches!(failed, Err(Error::Load(_))), "{failed:?}");
    assert_eq!(cache.cache().backend().get(b"k").await.expect("get"), None);
    db.down.store(false, Ordering::SeqCst);
    assert_eq!(
        cache.get(b"k").await.expect("get"),
        Some(Bytes::from_static(b"v"))
    );
}

#[tokio::test]
async fn a_write_reaches_the_store_of_record_then_the_cache() {
    let db = Db::with(b"k", b"old");
    let (cache, _) = read_through(&db, false);
    let cache = cache.with_writer(db.clone());
    assert_eq!(
        cache.get(b"k").await.expect("get"),
        Some(Bytes::from_static(b"old"))
    );

    cache
        .put(b"k", Bytes::from_static(b"new"))
        .await
        .expect("put");
    assert_eq!(
        db.rows.lock().get(&b"k"[..]),
        Some(&Bytes::from_static(b"new"))
    );
    assert_eq!(
        cache.get(b"k").await.expect("get"),
        Some(Bytes::from_static(b"new"))
    );
    assert_eq!(db.reads(), 1, "the write filled the cache");
}

#[tokio::test]
async fn removing_a_key_leaves_a_tombstone_when_negative_caching_is_on() {
    let db = Db::with(b"k", b"v");
    let (cache, _) = read_through(&db, true);
    let cache = cache.with_writer(db.clone());
    cache.get(b"k").await.expect("get");
    cache.remove(b"k").await.expect("remove");
    assert!(db.rows.lock().is_empty());
    assert_eq!(cache.get(b"k").await.expect("get"), None);
    assert_eq!(db.reads(), 1, "the tombstone answered");
}

#[tokio::test]
async fn a_store_of_record_failure_leaves_the_cache_alone() {
    let db = Db::with(b"k", b"old");
    let (cache, _) = read_through(&db, false);
    let cache = cache.with_writer(db.clone());
    cache.get(b"k").await.expect("get");
    db.down.store(true, Ordering::SeqCst);

    let failed = cache.put(b"k", Bytes::from_static(b"new")).await;
    assert!(
        matches!(failed, Err(WriteThroughError::Store(DbDown))),
        "{failed:?}"
    );
    let failed = cache.remove(b"k").await;
    assert!(
        matches!(failed, Err(WriteThroughError::Store(DbDown))),
        "{failed:?}"
    );
    assert_eq!(
        cache.get(b"k").await.expect("get"),
        Some(Bytes::from_static(b"old"))
    );
}

#[tokio::test]
async fn a_cache_failure_after_the_write_is_reported_and_the_key_invalidated() {
    let db = Db::with(b"k", b"old");
    let (cache, _) = read_through(&db, false);
    let cache = cache.with_writer(db.clone());
    cache.get(b"k").await.expect("get");
    cache
        .reads()
        .cache()
        .backend()
        .fail_sets
        .store(true, Ordering::SeqCst);

    let failed = cache.put(b"k", Bytes::from_static(b"new")).await;
    assert!(
        matches!(
            &failed,
            Err(WriteThroughError::Cache {
                source: Error::Server(_),
                invalidation: None
            })
        ),
        "{failed:?}"
    );
    assert_eq!(
        db.rows.lock().get(&b"k"[..]),
        Some(&Bytes::from_static(b"new"))
    );
    let raw = cache
        .reads()
        .cache()
        .backend()
        .get(b"k")
        .await
        .expect("get");
    assert_eq!(raw, None, "the old value was invalidated");
}

#[tokio::test]
async fn a_failed_invalidation_is_reported_too() {
    let db = Db::with(b"k", b"old");
    let (cache, _) = read_through(&db, false);
    let cache = cache.with_writer(db.clone());
    cache.get(b"k").await.expect("get");
    let faulty = cache.reads().cache().backend();
    faulty.fail_sets.store(true, Ordering::SeqCst);
    faulty.fail_deletes.store(true, Ordering::SeqCst);

    let failed = cache.put(b"k", Bytes::from_static(b"new")).await;
    assert!(
        matches!(
            &failed,
            Err(WriteThroughError::Cache {
                invalidation: Some(Error::Server(_)),
                ..
            })
        ),
        "{failed:?}"
    );
    assert_eq!(
        db.rows.lock().get(&b"k"[..]),
        Some(&Bytes::from_static(b"new"))
    );
}
