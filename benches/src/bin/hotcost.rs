//! The cost of hot-key detection on the GET path, measured where it is paid: `GET`s run
//! through `command::dispatch` (lookup, routing, sampling, the handler, the reply) on one
//! node, in batches of 1000, alternating detection on and off batch by batch so that the
//! machine's drift hits both alike; the detector task runs on another thread. Socket I/O
//! and parsing are left out, so the share measured here is an upper bound on the share of
//! a real GET's cost.
//!
//! `cargo build --release -p cachalot-benches && target/release/hotcost --batches 20000`

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use cachalot_server::command;
use cachalot_server::config::Config;
use cachalot_server::net::session::Session;
use cachalot_server::node::Node;
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Keys read, Zipf-like: key `i` is read in proportion to 1/(i+1).
const KEYS: usize = 1000;
/// GETs per batch.
const BATCH: usize = 1000;

#[derive(Parser)]
#[command(about = "Hot-key detection's cost per GET, through dispatch")]
struct Args {
    /// Batches of each kind (on and off).
    #[arg(long, default_value_t = 20_000)]
    batches: usize,
}

/// A fixed, skewed sequence of `BATCH` GETs: the hottest key takes about an eighth.
fn requests() -> Vec<Vec<Bytes>> {
    let weights: Vec<f64> = (0..KEYS).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    let total: f64 = weights.iter().sum();
    let mut seq = Vec::with_capacity(BATCH);
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w / total * BATCH as f64;
        while (seq.len() as f64) < acc && seq.len() < BATCH {
            seq.push(i);
        }
    }
    seq.resize(BATCH, KEYS - 1);
    // Spread the hot key through the batch (7919 is prime, so this is a permutation).
    (0..BATCH)
        .map(|j| {
            vec![
                Bytes::from_static(b"GET"),
                Bytes::from(format!("key:{}", seq[(j * 7919) % BATCH])),
            ]
        })
        .collect()
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let shutdown = CancellationToken::new();
    let node = Node::new(Config::default(), shutdown.clone()).expect("node");
    runtime.spawn(cachalot_server::hotkeys::monitor::run(
        Arc::clone(&node),
        shutdown.child_token(),
    ));
    let (handle, _pushes) = node.clients.register(
        "127.0.0.1:1".parse().expect("addr"),
        "127.0.0.1:6379".parse().expect("addr"),
    );
    let mut session = Session::new(handle, true);
    let mut out = BytesMut::with_capacity(64 * 1024);
    for i in 0..KEYS {
        let set = vec![
            Bytes::from_static(b"SET"),
            Bytes::from(format!("key:{i}")),
            Bytes::from_static(b"a cached value of some sixty-four bytes, as caches hold them"),
        ];
        command::dispatch(&node, &mut session, set, &mut out);
    }
    out.clear();
    let reqs = requests();
    let mut run = |on: bool| -> f64 {
        node.hotkeys.set_enabled(on);
        let started = Instant::now();
        for r in &reqs {
            command::dispatch(&node, &mut session, r.clone(), &mut out);
        }
        out.clear();
        started.elapsed().as_secs_f64() * 1e9 / BATCH as f64
    };
    // Warm up both paths.
    for i in 0..2000 {
        run(i % 2 == 0);
    }
    let (mut on, mut off, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.batches {
        // Alternate which goes first, so neither always follows the other.
        let (a, b) = if i % 2 == 0 {
            let a = run(true);
            (a, run(false))
        } else {
            let b = run(false);
            (run(true), b)
        };
        on.push(a);
        off.push(b);
        ratios.push(a / b);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m_on, m_off, m_ratio) = (median(&mut on), median(&mut off), median(&mut ratios));
    println!(
        "{} batches of {BATCH} GETs each way: detection on {m_on:.1} ns/GET, off {m_off:.1} \
         ns/GET (medians); on/off {:+.2}% (median of per-pair ratios {:+.2}%); {} samples \
         dropped; hottest key reported: {:?}",
        args.batches,
        (m_on / m_off - 1.0) * 100.0,
        (m_ratio - 1.0) * 100.0,
        node.hotkeys.dropped_samples(),
        node.hotkeys
            .hot(1)
            .first()
            .map(|k| String::from_utf8_lossy(&k.key).into_owned()),
    );
    shutdown.cancel();
}
