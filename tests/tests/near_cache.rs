//! The client's near-cache against a real `cachalot-server`: a write elsewhere removes
//! the entry within one round trip of the writer's reply, an entry past its maximum age
//! is fetched again, a lost connection empties the near-cache, and hot keys are kept
//! without being asked for.

use std::time::Duration;

use cachalot_client::{Client, Cmd, NearCacheSettings};
use cachalot_tests::ServerProcess;

/// A client whose near-cache keeps every key it reads.
async fn caching_client(server: &ServerProcess, max_age: Duration) -> Client {
    Client::builder([server.addr().to_string()])
        .near_cache(NearCacheSettings::all_keys().max_age(max_age))
        .connect()
        .await
        .expect("connect with a near-cache")
}

fn near(client: &Client) -> cachalot_client::NearCacheMetrics {
    client.metrics().near_cache.expect("near-cache on")
}

#[tokio::test]
async fn a_write_elsewhere_removes_the_entry_within_one_round_trip() {
    let server = ServerProcess::start();
    let reader = caching_client(&server, Duration::from_secs(60)).await;
    let writer = Client::connect([server.addr().to_string()])
        .await
        .expect("connect");
    writer.set("k", "old").await.expect("set");
    assert_eq!(
        reader.get("k").await.expect("get").as_deref(),
        Some(&b"old"[..])
    );
    assert_eq!(
        reader.get("k").await.expect("get").as_deref(),
        Some(&b"old"[..])
    );
    let before = near(&reader);
    assert_eq!(before.hits, 1, "the second read came from the near-cache");

    writer.set("k", "new").await.expect("set");
    // One round trip on the reader's connection: the node queued the invalidation before
    // it answered the writer, so it arrives before this reply.
    reader
        .cmd_for_key(b"k", &Cmd::new("PING"))
        .await
        .expect("ping");
    assert!(near(&reader).invalidations > before.invalidations);
    assert_eq!(
        reader.get("k").await.expect("get").as_deref(),
        Some(&b"new"[..])
    );
}

#[tokio::test]
async fn the_readers_own_write_invalidates_its_entry() {
    let server = ServerProcess::start();
    let client = caching_client(&server, Duration::from_secs(60)).await;
    client.set("k", "1").await.expect("set");
    assert_eq!(
        client.get("k").await.expect("get").as_deref(),
        Some(&b"1"[..])
    );
    client.set("k", "2").await.expect("set");
    assert_eq!(
        client.get("k").await.expect("get").as_deref(),
        Some(&b"2"[..])
    );
}

#[tokio::test]
async fn an_entry_past_its_max_age_is_fetched_again() {
    let server = ServerProcess::start();
    let client = caching_client(&server, Duration::from_millis(200)).await;
    client.set("k", "v").await.expect("set");
    client.get("k").await.expect("get");
    client.get("k").await.expect("get");
    let fresh = near(&client);
    assert_eq!((fresh.hits, fresh.misses), (1, 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        client.get("k").await.expect("get").as_deref(),
        Some(&b"v"[..])
    );
    let aged = near(&client);
    assert_eq!(
        aged.misses, 2,
        "past its max age the entry was read from the node"
    );
    assert_eq!(aged.hits, 1);
}

#[tokio::test]
async fn a_lost_connection_empties_the_near_cache() {
    let server = ServerProcess::start();
    let client = caching_client(&server, Duration::from_secs(60)).await;
    client.set("k", "v").await.expect("set");
    client.get("k").await.expect("get");
    assert_eq!(near(&client).entries, 1);
    let killer = Client::connect([server.addr().to_string()])
        .await
        .expect("connect");
    killer
        .cmd(&Cmd::from_args(["CLIENT", "KILL", "SKIPME", "yes"]))
        .await
        .expect("kill the other clients");
    let mut cleared = false;
    for _ in 0..100 {
        let m = near(&client);
        if m.clears >= 1 && m.entries == 0 {
            cleared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(cleared, "the near-cache was emptied: {:?}", near(&client));
    // And it works again on a new connection.
    assert_eq!(
        client.get("k").await.expect("get").as_deref(),
        Some(&b"v"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_keys_are_near_cached_without_being_asked_for() {
    let server = ServerProcess::start();
    let client = Client::builder([server.addr().to_string()])
        .near_cache(NearCacheSettings::hot_keys().hot_key_poll(Duration::from_millis(50)))
        .connect()
        .await
        .expect("connect");
    client.set("celebrity", "v").await.expect("set");
    for i in 0..100 {
        client.set(format!("fan:{i}"), "v").await.expect("set");
    }
    // Hammer one key among others until the node reports it and the client keeps it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut i = 0u64;
    while near(&client).hits == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the celebrity was never near-cached: {:?}",
            near(&client)
        );
        client.get("celebrity").await.expect("get");
        if i.is_multiple_of(4) {
            client.get(format!("fan:{}", i % 100)).await.expect("get");
        }
        i += 1;
    }
    let m = near(&client);
    assert!(m.hot_keys >= 1, "{m:?}");
    assert!(m.entries >= 1, "{m:?}");
}
