//! Scenario tests for cache-aside over the embedded engine, on paused tokio time and
//! mockable wall clocks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cachalot_store::{Cache, Clock, ManualClock};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, Instant};

use super::envelope::{self, Decoded};
use super::*;
use crate::Embedded;

/// Unix milliseconds at the start of every test.
const START_MILLIS: u64 = 1_700_000_000_000;

#[derive(Debug, thiserror::Error)]
#[error("database down")]
struct DbDown;

/// Wall-clock time driven by tokio's (paused) clock, so the engine's expiry, the envelope's
/// expiry and the loaders' sleeps all move together.
struct TokioClock {
    started: Instant,
}

impl Clock for TokioClock {
    fn now_millis(&self) -> u64 {
        START_MILLIS + self.started.elapsed().as_millis() as u64
    }
}

fn embedded(clock: Arc<dyn Clock>) -> Embedded {
    let cache = Cache::builder()
        .max_entries(100_000)
        .clock(clock)
        .build()
        .expect("valid engine");
    Embedded::new(cache)
}

/// A backend that counts the reads that found nothing.
#[derive(Clone)]
struct Counting {
    inner: Embedded,
    misses: Arc<AtomicUsize>,
}

impl Backend for Counting {
    async fn get(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        let found = self.inner.get(key).await?;
        if found.is_none() {
            self.misses.fetch_add(1, Ordering::SeqCst);
        }
        Ok(found)
    }

    async fn set(&self, key: &[u8], value: Bytes, ttl: Option<Duration>) -> Result<(), Error> {
        self.inner.set(key, value, ttl).await
    }

    async fn delete(&self, key: &[u8]) -> Result<bool, Error> {
        self.inner.delete(key).await
    }
}

fn tokio_timed() -> CacheAside<Embedded> {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock {
        started: Instant::now(),
    });
    CacheAside::builder(embedded(clock.clone()))
        .clock(clock)
        .seed(1)
        .build()
}

const TTL: Duration = Duration::from_secs(60);

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_misses_call_the_loader_once_and_all_get_its_value() {
    let cache = tokio_timed();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..1_000 {
        let (cache, calls) = (cache.clone(), calls.clone());
        tasks.spawn(async move {
            cache
                .get_or_load(b"k", TTL, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_millis(50)).await;
                    Ok::<_, DbDown>(Bytes::from_static(b"v"))
                })
                .await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        assert_eq!(joined.expect("task").expect("value"), &b"v"[..]);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.loads_in_flight(), 0);
    assert_eq!(
        cache.get(b"k").await.expect("get"),
        Some(Bytes::from_static(b"v"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_loader_error_reaches_every_waiter_and_nothing_is_cached() {
    let cache = tokio_timed();
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..100 {
        let (cache, calls) = (cache.clone(), calls.clone());
        tasks.spawn(async move {
            cache
                .get_or_load(b"k", TTL, move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_millis(50)).await;
                    Err::<Bytes, _>(DbDown)
                })
                .await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let result = joined.expect("task");
        assert!(
            matches!(&result, Err(Error::Load(e)) if e.to_string() == "database down"),
            "{result:?}"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.backend().get(b"k").await.expect("get"), None);
    assert_eq!(cache.loads_in_flight(), 0);

    let value = cache
        .get_or_load(b"k", TTL, || async {
            Ok::<_, DbDown>(Bytes::from_static(b"v"))
        })
        .await;
    assert_eq!(value.expect("the next load succeeds"), &b"v"[..]);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_leaders_future_mid_load_does_not_hang_waiters() {
    let cache = tokio_timed();
    let leader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_load(b"k", TTL, || async {
                    sleep(Duration::from_secs(3_600)).await;
                    Ok::<_, DbDown>(Bytes::from_static(b"never"))
                })
                .await
        })
    };
    sleep(Duration::from_millis(1)).await;
    let takeovers = Arc::new(AtomicUsize::new(0));
    let mut waiters = JoinSet::new();
    for _ in 0..10 {
        let (cache, takeovers) = (cache.clone(), takeovers.clone());
        waiters.spawn(async move {
            cache
                .get_or_load(b"k", TTL, move || async move {
                    takeovers.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_millis(10)).await;
                    Ok::<_, DbDown>(Bytes::from_static(b"v"))
                })
                .await
        });
    }
    sleep(Duration::from_millis(1)).await;
    assert_eq!(cache.loads_in_flight(), 1);
    assert_eq!(takeovers.load(Ordering::SeqCst), 0, "all ten are waiting");

    leader.abort();
    let finished = timeout(Duration::from_secs(10), async {
        while let Some(joined) = waiters.join_next().await {
            assert_eq!(joined.expect("task").expect("value"), &b"v"[..]);
        }
    })
    .await;
    assert!(
        finished.is_ok(),
        "waiters hung after the leader was dropped"
    );
    assert_eq!(takeovers.load(Ordering::SeqCst), 1, "one waiter took over");
    assert_eq!(cache.loads_in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn under_steady_load_a_short_ttl_key_loads_about_once_per_ttl_and_never_misses() {
    const TTL: Duration = Duration::from_secs(10);
    const RUN: Duration = Duration::from_secs(55);
    const READERS: u64 = 10;
    const READ_EVERY: Duration = Duration::from_millis(10);

    let clock: Arc<dyn Clock> = Arc::new(TokioClock {
        started: Instant::now(),
    });
    let misses = Arc::new(AtomicUsize::new(0));
    let backend = Counting {
        inner: embedded(clock.clone()),
        misses: misses.clone(),
    };
    let cache = CacheAside::builder(backend)
        .clock(clock)
        .ttl_jitter(0.0)
        .seed(7)
        .build();
    let loads = Arc::new(AtomicUsize::new(0));
    let read = {
        let (cache, loads) = (cache.clone(), loads.clone());
        move || {
            let (cache, loads) = (cache.clone(), loads.clone());
            async move {
                cache
                    .get_or_load(b"hot", TTL, move || async move {
                        let n = loads.fetch_add(1, Ordering::SeqCst);
                        sleep(Duration::from_millis(50)).await;
                        Ok::<_, DbDown>(Bytes::from(format!("v{n}")))
                    })
                    .await
            }
        }
    };

    let started = Instant::now();
    read().await.expect("the first load");
    let cold_misses = misses.load(Ordering::SeqCst);
    let mut readers = JoinSet::new();
    for i in 0..READERS {
        let read = read.clone();
        readers.spawn(async move {
            // Spread the readers so the key is read about once a millisecond.
            sleep(Duration::from_millis(i)).await;
            while started.elapsed() < RUN {
                let value = read().await.expect("a value");
                assert!(value.starts_with(b"v"));
                sleep(READ_EVERY).await;
            }
        });
    }
    while let Some(joined) = readers.join_next().await {
        joined.expect("reader");
    }

    let elapsed = started.elapsed();
    let loads = loads.load(Ordering::SeqCst) as u64;
    let most = elapsed.as_millis().div_ceil(TTL.as_millis()) as u64 + 1;
    assert!((2..=most).contains(&loads), "{loads} loads in {elapsed:?}");
    assert_eq!(
        misses.load(Ordering::SeqCst),
        cold_misses,
        "a reader saw a miss"
    );
}

#[tokio::test(start_paused = true)]
async fn an_early_refresh_runs_once_while_others_keep_the_current_value() {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let cache = CacheAside::builder(embedded(clock.clone()))
        .clock(clock.clone())
        .ttl_jitter(0.0)
        .beta(100.0)
        .seed(3)
        .build();
    let slow = |value: &'static [u8]| {
        move || async move {
            sleep(Duration::from_millis(100)).await;
            Ok::<_, DbDown>(Bytes::from_static(value))
        }
    };
    cache
        .get_or_load(b"k", TTL, slow(b"old"))
        .await
        .expect("load");
    // 10 ms before expiry, with delta * beta = 10 s: refresh is all but certain.
    clock.advance(TTL - Duration::from_millis(10));

    let refresher = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get_or_load(b"k", TTL, slow(b"new")).await })
    };
    sleep(Duration::from_millis(1)).await;
    assert_eq!(cache.loads_in_flight(), 1, "one reader is refreshing");
    for _ in 0..100 {
        let read = cache
            .get_or_load(b"k", TTL, || async { Err::<Bytes, _>(DbDown) })
            .await;
        assert_eq!(read.expect("the current value, at once"), &b"old"[..]);
    }
    assert_eq!(
        refresher.await.expect("task").expect("refreshed"),
        &b"new"[..]
    );
    assert_eq!(
        cache.get(b"k").await.expect("get"),
        Some(Bytes::from_static(b"new"))
    );
    assert_eq!(cache.loads_in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_early_refresh_serves_the_current_value() {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let cache = CacheAside::builder(embedded(clock.clone()))
        .clock(clock.clone())
        .ttl_jitter(0.0)
        .beta(100.0)
        .seed(3)
        .build();
    cache
        .get_or_load(b"k", TTL, || async {
            sleep(Duration::from_millis(100)).await;
            Ok::<_, DbDown>(Bytes::from_static(b"old"))
        })
        .await
        .expect("load");
    clock.advance(TTL - Duration::from_millis(10));
    let read = cache
        .get_or_load(b"k", TTL, || async { Err::<Bytes, _>(DbDown) })
        .await;
    assert_eq!(read.expect("the current value"), &b"old"[..]);
}

#[tokio::test]
async fn ttl_jitter_keeps_each_expiry_within_bounds() {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let cache = CacheAside::builder(embedded(clock.clone()))
        .clock(clock.clone())
        .seed(11)
        .build();
    let ttl = Duration::from_secs(100);
    let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("k{i}").into_bytes()).collect();
    let mut expiries = Vec::new();
    for key in &keys {
        cache
            .get_or_load(key, ttl, || async {
                Ok::<_, DbDown>(Bytes::from_static(b"v"))
            })
            .await
            .expect("load");
        let raw = cache
            .backend()
            .get(key)
            .await
            .expect("get")
            .expect("cached");
        let Decoded::Value {
            expires_at_millis, ..
        } = envelope::decode(raw)
        else {
            panic!("not an envelope");
        };
        expiries.push(expires_at_millis - START_MILLIS);
    }
    assert!(
        expiries.iter().all(|e| (90_000..=100_000).contains(e)),
        "{expiries:?}"
    );
    assert!(
        expiries.iter().any(|e| *e != expiries[0]),
        "no jitter at all"
    );

    // The engine's TTL is the same jittered one.
    clock.advance(Duration::from_millis(89_999));
    for key in &keys {
        assert!(cache.get(key).await.expect("get").is_some());
    }
    clock.advance(Duration::from_millis(10_002));
    for key in &keys {
        assert_eq!(cache.get(key).await.expect("get"), None);
    }
}

#[tokio::test]
async fn a_corrupt_envelope_reads_as_a_plain_value() {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let cache = CacheAside::builder(embedded(clock.clone()))
        .clock(clock)
        .build();
    let valid = envelope::encode_value(b"x", 5, START_MILLIS + 1_000);
    let mut bad_kind = valid.to_vec();
    bad_kind[3] = 0xEE;
    let cases: Vec<Vec<u8>> = vec![
        b"plain".to_vec(),
        valid[..envelope::HEADER_BYTES - 3].to_vec(),
        bad_kind,
        vec![0xF8, b'C'],
        Vec::new(),
    ];
    for case in cases {
        let raw = Bytes::from(case);
        cache
            .backend()
            .set(b"k", raw.clone(), Some(TTL))
            .await
            .expect("set");
        let read = cache
            .get_or_load(b"k", TTL, || async { Err::<Bytes, _>(DbDown) })
            .await;
        assert_eq!(read.expect("the raw bytes"), raw);
        assert_eq!(cache.get(b"k").await.expect("get"), Some(raw));
    }
}

#[tokio::test]
async fn an_envelope_from_a_newer_version_is_reloaded() {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let cache = CacheAside::builder(embedded(clock.clone()))
        .clock(clock)
        .build();
    let mut newer = envelope::encode_value(b"x", 5, START_MILLIS + 1_000).to_vec();
    newer[2] = 2;
    cache
        .backend()
        .set(b"k", Bytes::from(newer), Some(TTL))
        .await
        .expect("set");
    assert_eq!(cache.get(b"k").await.expect("get"), None);
    let read = cache
        .get_or_load(b"k", TTL, || async {
            Ok::<_, DbDown>(Bytes::from_static(b"v"))
        })
        .await;
    assert_eq!(read.expect("reloaded"), &b"v"[..]);
}

#[tokio::test]
async fn set_wraps_the_value_and_invalidate_removes_it() {
    let clock = Arc::new(ManualClock::new(START_MILLIS));
    let cache = CacheAside::builder(embedded(clock.clone()))
        .clock(clock)
        .build();
    cache
        .set(b"k", Bytes::from_static(b"v"), TTL)
        .await
        .expect("set");
    let raw = cache
        .backend()
        .get(b"k")
        .await
        .expect("get")
        .expect("there");
    assert_eq!(
        raw.len(),
        envelope::HEADER_BYTES + 1,
        "other readers see the header"
    );
    assert_eq!(
        cache.get(b"k").await.expect("get"),
        Some(Bytes::from_static(b"v"))
    );
    assert!(cache.invalidate(b"k").await.expect("invalidate"));
    assert_eq!(cache.get(b"k").await.expect("get"), None);
}
