//! The detector against exact counts: Zipf accuracy, reaction time, constant memory.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// Keys in the Zipf workloads.
const ZIPF_KEYS: usize = 100_000;
/// Accesses per Zipf workload.
const ZIPF_ACCESSES: usize = 1_000_000;
/// Top-k size used by the accuracy tests (the server's default).
const TOP_K: usize = 32;

fn key_name(i: usize) -> Vec<u8> {
    format!("key:{i}").into_bytes()
}

/// Draws ranks 0..n with probability proportional to `1/(rank+1)^alpha`.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, alpha: f64) -> Zipf {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|r| {
                acc += 1.0 / (r as f64).powf(alpha);
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.gen();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// Runs one Zipf workload (ranks shuffled onto key ids), recording one access in `sample`
/// at random, and returns (precision, recall) of the detector's top 10 against the exact
/// top 10 of all accesses.
fn zipf_top10(alpha: f64, seed: u64, sample: u32) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(ZIPF_KEYS, alpha);
    // Rank r is key id perm[r], so popularity is unrelated to the key's name.
    let mut perm: Vec<usize> = (0..ZIPF_KEYS).collect();
    for i in (1..perm.len()).rev() {
        perm.swap(i, rng.gen_range(0..=i));
    }
    let names: Vec<Vec<u8>> = (0..ZIPF_KEYS).map(key_name).collect();
    let mut exact = vec![0u64; ZIPF_KEYS];
    let mut d = HotKeyDetector::new(TOP_K, 0);
    for _ in 0..ZIPF_ACCESSES {
        let id = perm[zipf.sample(&mut rng)];
        exact[id] += 1;
        // All accesses inside one decay period: this measures the sketch, not the decay.
        if sample == 1 || rng.gen_ratio(1, sample) {
            d.record(&names[id], 0);
        }
    }
    let mut order: Vec<usize> = (0..ZIPF_KEYS).collect();
    order.sort_by(|&a, &b| exact[b].cmp(&exact[a]));
    let truth: HashSet<&[u8]> = order[..10].iter().map(|&i| &names[i][..]).collect();
    let rates = d.rates(0, 1.0);
    let found: Vec<&[u8]> = rates.keys.iter().take(10).map(|k| &k.key[..]).collect();
    let hits = found.iter().filter(|k| truth.contains(*k)).count() as f64;
    (hits / found.len().max(1) as f64, hits / truth.len() as f64)
}

#[test]
fn zipf_top10_is_found_with_precision_and_recall_of_at_least_095() {
    for (alpha, seed) in [(0.8, 1), (1.0, 2), (1.2, 3), (0.8, 4), (1.0, 5), (1.2, 6)] {
        for sample in [1, 8] {
            let (precision, recall) = zipf_top10(alpha, seed, sample);
            eprintln!(
                "zipf alpha={alpha} seed={seed} keys={ZIPF_KEYS} accesses={ZIPF_ACCESSES} \
                 sample=1/{sample}: top-10 precision={precision:.2} recall={recall:.2}"
            );
            assert!(
                precision >= 0.95 && recall >= 0.95,
                "alpha {alpha} sample {sample}"
            );
        }
    }
}

/// Drives `ms` milliseconds of traffic at `per_ms` accesses a millisecond: a `hot_share`
/// of them (when `hot` is set) go to `b"hot"`, the rest uniformly over 100k keys.
fn drive(
    d: &mut HotKeyDetector,
    rng: &mut StdRng,
    from_ms: u64,
    ms: u64,
    per_ms: u32,
    hot: Option<f64>,
) {
    for t in from_ms..from_ms + ms {
        for _ in 0..per_ms {
            match hot {
                Some(share) if rng.gen_bool(share) => d.record(b"hot", t),
                _ => d.record(&key_name(rng.gen_range(0..ZIPF_KEYS)), t),
            }
        }
    }
}

fn hot_rate(d: &mut HotKeyDetector, now: u64) -> Option<u64> {
    let rates = d.rates(now, 1.0);
    let rate = rates
        .hot(0.01, 100)
        .find(|k| &k.key[..] == b"hot")
        .map(|k| k.rate);
    rate
}

#[test]
fn a_key_that_becomes_hot_is_reported_within_a_second_and_cools_off() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut d = HotKeyDetector::new(TOP_K, 0);
    // 100k accesses a second, uniform, for five seconds: nothing is hot.
    drive(&mut d, &mut rng, 0, 5_000, 100, None);
    assert!(d.rates(5_000, 1.0).hot(0.01, 100).next().is_none());
    // From t = 5 s, 10% of the traffic goes to one key.
    let mut t = 5_000;
    let found_after = loop {
        drive(&mut d, &mut rng, t, 50, 100, Some(0.10));
        t += 50;
        if hot_rate(&mut d, t).is_some() {
            break t - 5_000;
        }
        assert!(t - 5_000 <= 1_000, "not hot within 1 s of driven time");
    };
    eprintln!("hot key reported {found_after} ms after it became hot");
    // In steady state the rate estimate is close to the true 10k/s.
    drive(&mut d, &mut rng, t, 9_000 - t, 100, Some(0.10));
    let rate = hot_rate(&mut d, 9_000).expect("still hot");
    eprintln!("steady-state estimate {rate}/s for a true 10000/s");
    assert!((9_000..=11_000).contains(&rate), "{rate}");
    // The key cools: within five seconds it is no longer hot.
    let mut t = 9_000;
    let cooled_after = loop {
        drive(&mut d, &mut rng, t, 100, 100, None);
        t += 100;
        if hot_rate(&mut d, t).is_none() {
            break t - 9_000;
        }
        assert!(
            t - 9_000 <= 5_000,
            "still hot 5 s after its traffic stopped"
        );
    };
    eprintln!("cooled key stopped being hot {cooled_after} ms after its traffic stopped");
}

#[test]
fn memory_stays_at_its_configured_size() {
    let mut d = HotKeyDetector::new(8, 0);
    let buckets = d.sketch_buckets();
    let mut rng = StdRng::seed_from_u64(11);
    for i in 0..1_000_000u64 {
        let key = format!("k{}", rng.gen::<u64>());
        d.record(key.as_bytes(), i / 1000);
        assert!(d.tracked() <= 8);
    }
    d.record(&vec![b'x'; 10_000], 1_000);
    assert_eq!(d.sketch_buckets(), buckets);
    assert_eq!(d.capacity(), 8);
    assert!(d
        .rates(1_000, 1.0)
        .keys
        .iter()
        .all(|k| k.key.len() <= MAX_TRACKED_KEY_BYTES));
}

#[test]
fn rates_scale_by_the_sampling_interval_and_decay_with_time() {
    let mut d = HotKeyDetector::new(4, 0);
    for t in 0..5_000 {
        d.record(b"a", t);
    }
    // One access per ms for 5 s (past the warm-up), sampled 1 in 10: 10,000 accesses/s.
    let r = d.rates(5_000, 10.0);
    assert_eq!(r.keys[0].key, Bytes::from_static(b"a"));
    assert!((9_000..=10_000).contains(&r.keys[0].rate), "{r:?}");
    // Half a period later the estimate still holds.
    let r = d.rates(5_500, 10.0);
    assert!((6_000..=10_000).contains(&r.keys[0].rate), "{r:?}");
    // Long after, everything has decayed away.
    assert_eq!(d.rates(60_000, 10.0).keys, Vec::new());
    assert!(is_hot(200, 1_000, 0.1, 100));
    assert!(!is_hot(99, 100, 0.1, 100));
    assert!(!is_hot(200, 10_000, 0.1, 100));
}
