//! Request traces for the hit-ratio harness (`src/bin/hitratio.rs`): seeded generators, a
//! reader for trace files, and Belady's offline optimal policy (OPT) as the yardstick.
//!
//! A trace is a sequence of `u64` keys. Generated keys pass through [`scramble`], a bijection,
//! so popular keys are spread over the key space instead of being `0, 1, 2, ...`; keys from
//! different families (Zipf ranks, scan keys, one-hit wonders) come from disjoint ranges
//! before scrambling, so they never collide.
//!
//! Everything here is deterministic: the same workload, length and seed give the same trace.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read as _};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Keys in the Zipf universes of the generated traces (the issue asks for 1M).
pub const ZIPF_KEYS: usize = 1_000_000;

/// Zipf exponent of the mixed workloads (scans, shifting hot set, one-hit wonders): the
/// middle of the three pure Zipf traces.
const MIXED_ALPHA: f64 = 1.0;

/// Requests per scan period in [`Workload::ZipfWithScans`]: each period ends with a scan.
const SCAN_PERIOD_REQUESTS: usize = 100_000;

/// Length of each scan: fresh keys requested once each, in sequence (a fifth of a period,
/// enough to flush an LRU cache of up to 20k entries).
const SCAN_KEYS: usize = 20_000;

/// Requests between two moves of the hot set in [`Workload::ShiftingHotSet`].
const SHIFT_PERIOD_REQUESTS: usize = 1_000_000;

/// How far the popularity ranking moves at each shift: rank `r` moves to the key that had
/// rank `r + SHIFT_RANKS`, so the new hot set was lukewarm and the old one becomes coldest.
const SHIFT_RANKS: usize = 100_000;

/// Share of requests in [`Workload::OneHitWonders`] that go to a key never seen again.
const ONE_HIT_SHARE: f64 = 0.5;

/// Start of the range that fresh (scan or one-hit) keys are numbered from, far above any
/// Zipf rank, before scrambling.
const FRESH_KEY_BASE: u64 = 1 << 40;

/// Longest line [`read_keys`] accepts, so a file without newlines cannot make it buffer
/// the whole file as one key.
pub const MAX_LINE_BYTES: u64 = 1 << 20;

/// A named sequence of requested keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Shown in result tables.
    pub name: String,
    /// The requests, in order.
    pub keys: Vec<u64>,
}

impl Trace {
    /// Number of different keys requested.
    pub fn distinct_keys(&self) -> usize {
        self.keys.iter().collect::<HashSet<_>>().len()
    }
}

/// A generated workload; see [`Workload::standard`] for the set the harness replays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Workload {
    /// Independent requests, key of rank `r` (from 1) drawn with probability ∝ `1 / r^alpha`
    /// over [`ZIPF_KEYS`] keys.
    Zipf {
        /// The skew: higher concentrates more requests on the top keys.
        alpha: f64,
    },
    /// Zipf(1.0), except that the last 20k of every 100k requests are a sequential scan of
    /// keys never requested before or after (a backup job, a batch export).
    ZipfWithScans,
    /// Zipf(1.0) whose popularity ranking moves by 100k ranks every 1M requests, so the
    /// hot set changes over time.
    ShiftingHotSet,
    /// Half the requests go to keys requested only once; the other half are Zipf(1.0).
    OneHitWonders,
}

impl Workload {
    /// The generated traces the issue lists: Zipf α = 0.8, 1.0 and 1.2, Zipf with scans,
    /// a shifting hot set, and one-hit wonders.
    pub fn standard() -> [Workload; 6] {
        [
            Workload::Zipf { alpha: 0.8 },
            Workload::Zipf { alpha: 1.0 },
            Workload::Zipf { alpha: 1.2 },
            Workload::ZipfWithScans,
            Workload::ShiftingHotSet,
            Workload::OneHitWonders,
        ]
    }

    /// The name used on the command line and in tables.
    pub fn name(&self) -> String {
        match self {
            Workload::Zipf { alpha } => format!("zipf-{alpha:.1}"),
            Workload::ZipfWithScans => "zipf-scans".to_owned(),
            Workload::ShiftingHotSet => "shifting-hot-set".to_owned(),
            Workload::OneHitWonders => "one-hit-wonders".to_owned(),
        }
    }

    /// The standard workload called `name`.
    pub fn from_name(name: &str) -> Option<Workload> {
        Self::standard().into_iter().find(|w| w.name() == name)
    }

    /// `requests` keys of this workload, drawn from a generator seeded with `seed`.
    pub fn generate(&self, requests: usize, seed: u64) -> Trace {
        let mut rng = StdRng::seed_from_u64(seed);
        let alpha = match self {
            Workload::Zipf { alpha } => *alpha,
            _ => MIXED_ALPHA,
        };
        let zipf = Zipf::new(ZIPF_KEYS, alpha);
        let mut fresh = FRESH_KEY_BASE;
        let mut next_fresh = || {
            fresh += 1;
            scramble(fresh)
        };
        let keys = (0..requests)
            .map(|i| match self {
                Workload::Zipf { .. } => scramble(zipf.sample(&mut rng) as u64),
                Workload::ZipfWithScans if i % SCAN_PERIOD_REQUESTS >= scan_start() => next_fresh(),
                Workload::ZipfWithScans => scramble(zipf.sample(&mut rng) as u64),
                Workload::ShiftingHotSet => {
                    let shift = (i / SHIFT_PERIOD_REQUESTS) * SHIFT_RANKS;
                    scramble(((zipf.sample(&mut rng) + shift) % ZIPF_KEYS) as u64)
                }
                Workload::OneHitWonders if rng.gen_bool(ONE_HIT_SHARE) => next_fresh(),
                Workload::OneHitWonders => scramble(zipf.sample(&mut rng) as u64),
            })
            .collect();
        Trace {
            name: self.name(),
            keys,
        }
    }
}

/// Offset within a scan period where the scan begins.
fn scan_start() -> usize {
    SCAN_PERIOD_REQUESTS - SCAN_KEYS
}

/// A Zipf sampler over ranks `0..n` (rank 0 is the most popular): the cumulative
/// distribution is computed once, and each sample is a binary search for a uniform draw.
#[derive(Clone, Debug)]
pub struct Zipf {
    /// `cdf[r]`: probability of drawing a rank `<= r`; the last entry is 1.
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution with `P(rank r) ∝ 1 / (r + 1)^alpha` over `keys` ranks (at least 1).
    pub fn new(keys: usize, alpha: f64) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=keys.max(1))
            .map(|r| {
                total += (r as f64).powf(-alpha);
                total
            })
            .collect();
        for c in &mut cdf {
            *c /= total;
        }
        Self { cdf }
    }

    /// Probability of drawing `rank`.
    pub fn share(&self, rank: usize) -> f64 {
        let below = rank
            .checked_sub(1)
            .and_then(|r| self.cdf.get(r))
            .copied()
            .unwrap_or(0.0);
        self.cdf.get(rank).map_or(0.0, |c| c - below)
    }

    /// A rank drawn from the distribution.
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.gen();
        // Rounding can leave the last entry a hair below 1: clamp to the last rank.
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

/// A bijection on `u64` that spreads nearby inputs over the whole range (the finalizer of
/// Vigna's SplitMix64; each step is invertible, so distinct inputs stay distinct).
pub fn scramble(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Reads a trace file, named after its file name. See [`read_keys`].
///
/// # Errors
/// Any I/O error, or a line longer than [`MAX_LINE_BYTES`].
pub fn read_file(path: &Path, max_keys: usize) -> io::Result<Trace> {
    let keys = read_keys(BufReader::new(File::open(path)?), max_keys)?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Trace { name, keys })
}

/// Reads up to `max_keys` keys, one per line. A key is any byte string (the line without
/// its `\n` or `\r\n`), hashed to a `u64` with [`hash_key`]; blank and whitespace-only
/// lines are skipped.
///
/// # Errors
/// Any I/O error, or a line longer than [`MAX_LINE_BYTES`] (`InvalidData`).
pub fn read_keys(mut reader: impl BufRead, max_keys: usize) -> io::Result<Vec<u64>> {
    let mut keys = Vec::new();
    let mut line = Vec::new();
    while keys.len() < max_keys {
        line.clear();
        let read = reader
            .by_ref()
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if line.len() as u64 > MAX_LINE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a trace line is longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            keys.push(hash_key(&line));
        }
    }
    Ok(keys)
}

/// A key's bytes as a `u64`: 64-bit FNV-1a (Fowler, Noll and Vo), then [`scramble`] to mix
/// the low bits. Deterministic across runs and platforms; distinct keys collide with
/// probability about `n² / 2^65`, negligible for traces of millions of keys.
pub fn hash_key(bytes: &[u8]) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let h = bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    });
    scramble(h)
}

/// Marks a request whose key is never requested again, in [`next_uses`].
pub const NEVER: usize = usize::MAX;

/// For each request `i`, the position of the next request for the same key, or [`NEVER`].
pub fn next_uses(keys: &[u64]) -> Vec<usize> {
    let mut next = vec![NEVER; keys.len()];
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, &key) in keys.iter().enumerate().rev() {
        if let Some(later) = seen.insert(key, i) {
            next[i] = later;
        }
    }
    next
}

/// How far the lazily cleaned heap of [`opt_misses`] may grow, as a multiple of the
/// capacity, before it is rebuilt from the live entries (keeps memory `O(capacity)` and
/// the rebuild cost amortized `O(1)` per request).
const OPT_HEAP_SLACK: usize = 4;

/// Misses of the best *static* cache in hindsight: one that admits only the `capacity` keys
/// requested most often over the whole trace and never evicts (each misses once, on its
/// first request; every other key always misses).
///
/// When requests are drawn independently from fixed popularities (the generated Zipf
/// traces), holding the most popular keys is the best any online policy can do in the long
/// run (the independent reference model's optimum), so this column shows how much of the
/// gap to OPT is left for a policy to close: OPT also knows *when* each key comes next, which
/// no online policy can. On traces whose popularity moves, an online policy can beat it.
pub fn static_top_misses(keys: &[u64], capacity: usize) -> u64 {
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for &k in keys {
        *counts.entry(k).or_insert(0) += 1;
    }
    let mut by_count: Vec<u64> = counts.into_values().collect();
    by_count.sort_unstable_by(|a, b| b.cmp(a));
    let kept_hits: u64 = by_count.iter().take(capacity).map(|c| c - 1).sum();
    keys.len() as u64 - kept_hits
}

/// Misses of Belady's offline optimal policy (MIN, Belady 1966) replaying `keys` through a
/// cache of `capacity` entries; `next` is [`next_uses`] of `keys`.
///
/// On a miss with the cache full, of the cached keys and the requested one, the key
/// requested again farthest in the future is left out: a cached key is evicted, or the
/// requested key is not cached at all (bypass). Allowing bypass makes this the bound for
/// policies with admission (moka's TinyLFU) too, not only for demand caching; no online
/// policy misses less. Keys are ordered by next use in a max-heap; an entry is stale (lazy
/// deletion) when the key is no longer cached or has been requested since.
pub fn opt_misses(keys: &[u64], next: &[usize], capacity: usize) -> u64 {
    if capacity == 0 {
        return keys.len() as u64;
    }
    // key -> position of its next request; only for cached keys.
    let mut cached: HashMap<u64, usize> = HashMap::with_capacity(capacity + 1);
    let mut heap: BinaryHeap<(usize, u64)> = BinaryHeap::with_capacity(capacity + 1);
    let mut misses = 0;
    for (&key, &next_use) in keys.iter().zip(next) {
        if let Some(slot) = cached.get_mut(&key) {
            *slot = next_use;
            heap.push((next_use, key));
        } else {
            misses += 1;
            if cached.len() >= capacity {
                while let Some(&(at, k)) = heap.peek() {
                    if cached.get(&k) == Some(&at) {
                        break;
                    }
                    heap.pop();
                }
                match heap.peek() {
                    // Every cached key is needed sooner than the requested one.
                    Some(&(farthest, _)) if farthest <= next_use => continue,
                    Some(&(_, victim)) => {
                        cached.remove(&victim);
                        heap.pop();
                    }
                    None => {}
                }
            }
            cached.insert(key, next_use);
            heap.push((next_use, key));
        }
        if heap.len() > OPT_HEAP_SLACK * capacity + 64 {
            heap = cached.iter().map(|(&k, &at)| (at, k)).collect();
        }
    }
    misses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_top_keeps_the_most_requested_keys() {
        // Counts: 1 -> 3, 2 -> 2, 3 -> 1. Keeping one key: 1's two repeats hit.
        let keys = [1, 2, 1, 3, 2, 1];
        assert_eq!(static_top_misses(&keys, 1), 4);
        assert_eq!(static_top_misses(&keys, 2), 3);
        assert_eq!(static_top_misses(&keys, 10), 3, "only first requests miss");
        assert_eq!(static_top_misses(&keys, 0), 6);
    }
    use std::collections::VecDeque;

    fn opt(keys: &[u64], capacity: usize) -> u64 {
        opt_misses(keys, &next_uses(keys), capacity)
    }

    /// Misses of exact LRU, the simplest possible model.
    fn lru(keys: &[u64], capacity: usize) -> u64 {
        let mut order: VecDeque<u64> = VecDeque::new();
        let mut misses = 0;
        for &k in keys {
            if let Some(i) = order.iter().position(|&c| c == k) {
                order.remove(i);
            } else {
                misses += 1;
                if order.len() == capacity {
                    order.pop_front();
                }
            }
            order.push_back(k);
        }
        misses
    }

    /// The fewest misses any policy (with bypass) can get, by trying every choice.
    fn brute_force(keys: &[u64], capacity: usize, cached: &mut Vec<u64>) -> u64 {
        let Some((&key, rest)) = keys.split_first() else {
            return 0;
        };
        if cached.contains(&key) {
            return brute_force(rest, capacity, cached);
        }
        let mut best = brute_force(rest, capacity, cached);
        for slot in 0..capacity {
            let mut after = cached.clone();
            if slot < after.len() {
                after[slot] = key;
            } else if slot == after.len() {
                after.push(key);
            } else {
                break;
            }
            best = best.min(brute_force(rest, capacity, &mut after));
        }
        best + 1
    }

    fn random_trace(seed: u64, len: usize, keys: u64) -> Vec<u64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..len).map(|_| rng.gen_range(0..keys)).collect()
    }

    #[test]
    fn opt_gets_the_known_optimum_on_a_hand_made_trace() {
        // Capacity 2, a b c cycling: keep a and b, never cache c. Misses: a, b and each c.
        let keys = [1, 2, 3, 1, 2, 3, 1, 2, 3];
        assert_eq!(opt(&keys, 2), 5);
        assert_eq!(brute_force(&keys, 2, &mut Vec::new()), 5);
        assert_eq!(lru(&keys, 2), 9);
        // Everything fits: compulsory misses only. Nothing fits: every request misses.
        assert_eq!(opt(&keys, 3), 3);
        assert_eq!(opt(&keys, 0), 9);
    }

    #[test]
    fn opt_matches_exhaustive_search_on_tiny_traces() {
        for seed in 0..40 {
            let keys = random_trace(seed, 12, 5);
            for capacity in 1..=3 {
                let best = brute_force(&keys, capacity, &mut Vec::new());
                assert_eq!(opt(&keys, capacity), best, "seed {seed} cap {capacity}");
            }
        }
    }

    #[test]
    fn opt_beats_or_ties_lru_on_random_traces() {
        for seed in 0..20 {
            let keys = random_trace(seed, 2_000, 100);
            for capacity in [1, 5, 20, 60, 100] {
                let (o, l) = (opt(&keys, capacity), lru(&keys, capacity));
                assert!(o <= l, "seed {seed} cap {capacity}: opt {o} > lru {l}");
            }
            assert_eq!(
                opt(&keys, 100),
                Trace {
                    name: String::new(),
                    keys
                }
                .distinct_keys() as u64
            );
        }
    }

    #[test]
    fn opt_heap_rebuild_keeps_the_result() {
        // Long and hit-heavy, so the lazily cleaned heap is rebuilt many times.
        let keys = random_trace(7, 50_000, 12);
        assert_eq!(opt(&keys, 10), brute_force_greedy_check(&keys, 10));
    }

    /// OPT by a direct O(n · capacity) scan, to check the heap version.
    fn brute_force_greedy_check(keys: &[u64], capacity: usize) -> u64 {
        let next = next_uses(keys);
        let mut cached: Vec<(u64, usize)> = Vec::new();
        let mut misses = 0;
        for (&k, &n) in keys.iter().zip(&next) {
            if let Some(c) = cached.iter_mut().find(|c| c.0 == k) {
                c.1 = n;
                continue;
            }
            misses += 1;
            if cached.len() < capacity {
                cached.push((k, n));
            } else if let Some(far) = cached.iter_mut().max_by_key(|c| c.1) {
                if far.1 > n {
                    *far = (k, n);
                }
            }
        }
        misses
    }

    #[test]
    fn zipf_top_key_frequency_is_near_its_theoretical_share() {
        const SAMPLES: usize = 400_000;
        for alpha in [0.8, 1.0, 1.2] {
            let zipf = Zipf::new(ZIPF_KEYS, alpha);
            // The top share is 1 / H(n, alpha), the generalized harmonic number.
            let harmonic: f64 = (1..=ZIPF_KEYS).map(|r| (r as f64).powf(-alpha)).sum();
            let expected = 1.0 / harmonic;
            assert!((zipf.share(0) - expected).abs() < 1e-9);
            assert!((zipf.share(1) / zipf.share(0) - 0.5f64.powf(alpha)).abs() < 1e-9);
            let mut rng = StdRng::seed_from_u64(11);
            let top = (0..SAMPLES).filter(|_| zipf.sample(&mut rng) == 0).count();
            let observed = top as f64 / SAMPLES as f64;
            assert!(
                (observed / expected - 1.0).abs() < 0.05,
                "alpha {alpha}: top share {observed:.5}, expected {expected:.5}"
            );
        }
    }

    #[test]
    fn zipf_samples_stay_in_range() {
        let zipf = Zipf::new(3, 1.0);
        let mut rng = StdRng::seed_from_u64(1);
        assert!((0..10_000).all(|_| zipf.sample(&mut rng) < 3));
        assert_eq!(Zipf::new(0, 1.0).sample(&mut rng), 0);
    }

    #[test]
    fn file_reader_skips_blank_lines_and_strips_line_ends() {
        let text = b"alpha\n\n   \nbeta\r\nalpha\n\t\ngamma delta\n\nlast";
        let keys = read_keys(&text[..], usize::MAX).expect("in-memory read");
        let h = |s: &str| hash_key(s.as_bytes());
        assert_eq!(
            keys,
            [
                h("alpha"),
                h("beta"),
                h("alpha"),
                h("gamma delta"),
                h("last")
            ]
        );
        assert_eq!(read_keys(&text[..], 2).expect("in-memory read").len(), 2);
        assert_eq!(read_keys(&b"\n\n"[..], 10).expect("in-memory read"), []);
    }

    #[test]
    fn file_reader_refuses_overlong_lines() {
        let long = vec![b'x'; MAX_LINE_BYTES as usize + 1];
        let err = read_keys(&long[..], 10).expect_err("line too long");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let fits = vec![b'x'; MAX_LINE_BYTES as usize];
        assert_eq!(read_keys(&fits[..], 10).expect("fits").len(), 1);
    }

    #[test]
    fn generators_are_deterministic_and_named() {
        for w in Workload::standard() {
            let a = w.generate(5_000, 3);
            assert_eq!(a, w.generate(5_000, 3), "{}", w.name());
            assert_ne!(a.keys, w.generate(5_000, 4).keys, "{}", w.name());
            assert_eq!(a.keys.len(), 5_000);
            assert_eq!(Workload::from_name(&w.name()), Some(w));
        }
    }

    #[test]
    fn scans_and_one_hit_wonders_bring_never_repeated_keys() {
        let count_once = |t: &Trace| {
            let mut counts: HashMap<u64, u32> = HashMap::new();
            for &k in &t.keys {
                *counts.entry(k).or_default() += 1;
            }
            counts.values().filter(|&&c| c == 1).count()
        };
        let scans = Workload::ZipfWithScans.generate(2 * SCAN_PERIOD_REQUESTS, 5);
        assert!(count_once(&scans) >= 2 * SCAN_KEYS);
        let tail = &scans.keys[scan_start()..SCAN_PERIOD_REQUESTS];
        assert_eq!(tail.iter().collect::<HashSet<_>>().len(), SCAN_KEYS);
        // Half the requests are one-hit wonders; of the Zipf half, the tail keys drawn once
        // count too, as often as in a pure Zipf trace of that length.
        let wonders = Workload::OneHitWonders.generate(100_000, 5);
        let zipf = Workload::Zipf { alpha: MIXED_ALPHA }.generate(50_000, 5);
        let zipf_once = count_once(&zipf) as f64 / 50_000.0;
        let share = count_once(&wonders) as f64 / 100_000.0;
        let expected = ONE_HIT_SHARE + (1.0 - ONE_HIT_SHARE) * zipf_once;
        assert!(
            (share - expected).abs() < 0.03,
            "once-only share {share}, expected {expected}"
        );
    }

    #[test]
    fn the_hot_set_moves_at_each_shift() {
        let trace = Workload::ShiftingHotSet.generate(SHIFT_PERIOD_REQUESTS + 100_000, 9);
        let top = |keys: &[u64]| {
            let mut counts: HashMap<u64, u32> = HashMap::new();
            for &k in keys {
                *counts.entry(k).or_default() += 1;
            }
            counts.into_iter().max_by_key(|&(_, c)| c).map(|(k, _)| k)
        };
        let before = top(&trace.keys[SHIFT_PERIOD_REQUESTS - 100_000..SHIFT_PERIOD_REQUESTS]);
        let after = top(&trace.keys[SHIFT_PERIOD_REQUESTS..]);
        assert_eq!(before, Some(scramble(0)));
        assert_eq!(after, Some(scramble(SHIFT_RANKS as u64)));
    }
}
