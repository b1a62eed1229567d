//! Cache-aside and read-through through `cachalot-client` against a real `cachalot-server`:
//! single-flight of concurrent misses, early refresh under steady load, and the same code
//! running over the embedded engine.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cachalot_client::{Backend, CacheAside, Client, Embedded};
use cachalot_tests::ServerProcess;

/// Concurrent callers of one missing key.
const CALLERS: usize = 1_000;

/// The server's `keyspace_misses` counter.
async fn keyspace_misses(server: &ServerProcess) -> u64 {
    let mut conn = redis::Client::open(server.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("keyspace_misses:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("keyspace_misses in INFO stats")
}

/// Runs the single-flight scenario on any backend: `CALLERS` concurrent misses of one key.
async fn thousand_misses_load_once<B: Backend>(backend: B) {
    let aside = CacheAside::new(backend);
    let loads = Arc::new(AtomicU64::new(0));
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (aside, loads) = (aside.clone(), Arc::clone(&loads));
        callers.push(tokio::spawn(async move {
            aside
                .get_or_load(b"celebrity", Duration::from_secs(60), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    // Slow enough that every caller arrives while it runs.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok::<_, std::io::Error>(Bytes::from_static(b"loaded once"))
                })
                .await
        }));
    }
    for c in callers {
        let value = c.await.expect("caller task").expect("value");
        assert_eq!(&value[..], b"loaded once");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for all callers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_misses_call_the_loader_once_through_the_server() {
    let server = ServerProcess::start();
    let client = Client::connect([server.addr().to_string()])
        .await
        .expect("connect");
    thousand_misses_load_once(client.clone()).await;
    // The value is in the server, wrapped in cache-aside's envelope.
    let stored = client.get("celebrity").await.expect("get").expect("stored");
    assert!(stored.ends_with(b"loaded once"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_code_runs_over_the_embedded_engine() {
    thousand_misses_load_once(Embedded::with_max_bytes(1 << 20).expect("engine")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_steady_load_a_short_ttl_key_loads_about_once_per_ttl_and_never_misses() {
    let server = ServerProcess::start();
    let client = Client::connect([server.addr().to_string()])
        .await
        .expect("connect");
    let aside = CacheAside::new(client);
    let loads = Arc::new(AtomicU64::new(0));
    let ttl = Duration::from_millis(400);
    let run_for = Duration::from_secs(3);
    let read = move |aside: CacheAside<Client>, loads: Arc<AtomicU64>| async move {
        aside
            .get_or_load(b"hot", ttl, || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, std::io::Error>(Bytes::from_static(b"fresh"))
            })
            .await
    };
    // The first read misses and loads.
    read(aside.clone(), Arc::clone(&loads))
        .await
        .expect("first load");
    let misses_after_first = keyspace_misses(&server).await;
    let started = tokio::time::Instant::now();
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (aside, loads) = (aside.clone(), Arc::clone(&loads));
        readers.push(tokio::spawn(async move {
            let mut reads = 0u64;
            while started.elapsed() < run_for {
                read(aside.clone(), Arc::clone(&loads)).await?;
                reads += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok::<u64, cachalot_client::Error>(reads)
        }));
    }
    let mut reads = 0;
    for r in readers {
        reads += r.await.expect("reader").expect("every read got a value");
    }
    let loads = loads.load(Ordering::SeqCst);
    let periods = run_for.as_millis().div_ceil(ttl.as_millis());
    assert!(reads > 500, "steady load: {reads} reads");
    assert!(loads >= 2, "refreshed during the run: {loads} loads");
    // XFetch refreshes a little before expiry (about delta·ln(reads per delta)), and the
    // TTL is jittered down by up to 10%: a load per TTL, with room for that, never two.
    assert!(
        u128::from(loads) <= 2 * periods,
        "about one load per TTL: {loads} loads in {periods} TTLs"
    );
    assert_eq!(
        keyspace_misses(&server).await,
        misses_after_first,
        "refreshed before expiry: no read found the key missing"
    );
}
