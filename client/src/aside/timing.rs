//! [`Timing`]: when a cached value expires (TTL jitter) and when a reader refreshes it early
//! (XFetch), with the wall clock and the random source both replaceable for tests.

use std::sync::Arc;
use std::time::Duration;

use cachalot_store::Clock;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The largest TTL jitter accepted: a TTL cut by more than half is no longer the TTL the
/// caller asked for. Larger settings are clamped to it.
pub(crate) const MAX_TTL_JITTER: f64 = 0.5;

/// The largest XFetch `beta` accepted; larger settings are clamped to it. At 100 a value
/// that took 1 ms to load is already refreshed up to ~3.7 s early, which is plenty.
pub(crate) const MAX_BETA: f64 = 100.0;

/// An upper bound on `-ln(r)` for the `r` we draw (in `(0, 1]` with 53 bits, so
/// `-ln(r) <= 53 ln 2 ≈ 36.7`): a value further than this many `delta * beta` from its
/// expiry can never be picked for refresh, so no number is drawn for it.
const MAX_XFETCH_DRAW: f64 = 37.0;

/// Where random numbers come from.
enum Randomness {
    /// The thread-local generator: no shared state on the read path.
    Thread,
    /// One seeded generator, for reproducible tests. The lock is held for one draw.
    Seeded(Box<Mutex<StdRng>>),
}

/// TTL jitter and early-refresh decisions.
pub(crate) struct Timing {
    /// Wall clock for the envelope's absolute expiry.
    clock: Arc<dyn Clock>,
    /// XFetch's `beta`, in `[0, MAX_BETA]`; 0 disables early refresh.
    beta: f64,
    /// Largest fraction cut from a TTL, in `[0, MAX_TTL_JITTER]`.
    jitter: f64,
    randomness: Randomness,
}

impl Timing {
    /// Clamps `beta` and `jitter` into their ranges (a NaN reads as 0).
    pub(crate) fn new(clock: Arc<dyn Clock>, beta: f64, jitter: f64, seed: Option<u64>) -> Self {
        Timing {
            clock,
            beta: clamp(beta, MAX_BETA),
            jitter: clamp(jitter, MAX_TTL_JITTER),
            randomness: match seed {
                Some(seed) => Randomness::Seeded(Box::new(Mutex::new(StdRng::seed_from_u64(seed)))),
                None => Randomness::Thread,
            },
        }
    }

    /// Now, in unix milliseconds.
    pub(crate) fn now_millis(&self) -> u64 {
        self.clock.now_millis()
    }

    /// `ttl` shortened by a random fraction of at most the configured jitter, in whole
    /// milliseconds, at least 1 ms.
    pub(crate) fn jittered_ttl_millis(&self, ttl: Duration) -> u64 {
        let ttl_millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        if self.jitter == 0.0 {
            return ttl_millis;
        }
        let fraction = self.jitter * self.draw_unit();
        // Float-to-int `as` saturates; the cut is at most half the TTL.
        let cut = (ttl_millis as f64 * fraction) as u64;
        ttl_millis.saturating_sub(cut).max(1)
    }

    /// XFetch (Vattani, Chierichetti & Lowenstein, "Optimal Probabilistic Cache Stampede
    /// Prevention", VLDB 2015): refresh when `now - delta * beta * ln(r) >= expiry`, `r`
    /// uniform in `(0, 1]`. The closer the expiry and the slower the load, the likelier a
    /// reader refreshes; with many readers one of them does so shortly before expiry.
    pub(crate) fn should_refresh(
        &self,
        now_millis: u64,
        delta_millis: u32,
        expires_at: u64,
    ) -> bool {
        if expires_at == 0 || delta_millis == 0 || self.beta == 0.0 {
            return false;
        }
        let Some(remaining) = expires_at.checked_sub(now_millis) else {
            return true;
        };
        let gap = f64::from(delta_millis) * self.beta;
        if remaining as f64 > gap * MAX_XFETCH_DRAW {
            return false;
        }
        // `1 - [0, 1)` is `(0, 1]`, so the logarithm is finite.
        let r = 1.0 - self.draw_unit();
        -gap * r.ln() >= remaining as f64
    }

    /// Uniform in `[0, 1)`.
    fn draw_unit(&self) -> f64 {
        match &self.randomness {
            Randomness::Thread => rand::thread_rng().gen(),
            Randomness::Seeded(rng) => rng.lock().gen(),
        }
    }
}

/// `x` in `[0, max]`; NaN reads as 0.
fn clamp(x: f64, max: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, max)
    }
}

#[cfg(test)]
mod tests {
    use cachalot_store::ManualClock;

    use super::*;

    fn timing(beta: f64, jitter: f64) -> Timing {
        Timing::new(Arc::new(ManualClock::new(0)), beta, jitter, Some(7))
    }

    #[test]
    fn ttl_jitter_stays_within_bounds() {
        let t = timing(1.0, 0.1);
        let (mut lowest, mut highest) = (u64::MAX, 0);
        for _ in 0..10_000 {
            let ttl = t.jittered_ttl_millis(Duration::from_secs(100));
            lowest = lowest.min(ttl);
            highest = highest.max(ttl);
        }
        assert!(lowest >= 90_000, "{lowest}");
        assert!(highest <= 100_000, "{highest}");
        // The draws spread over the range rather than sitting at one end.
        assert!(lowest < 91_000 && highest > 99_000, "{lowest}..{highest}");
    }

    #[test]
    fn ttl_jitter_settings_are_clamped() {
        let wild = timing(f64::NAN, 7.0);
        for _ in 0..1_000 {
            assert!(wild.jittered_ttl_millis(Duration::from_secs(10)) >= 5_000);
        }
        assert!(
            !wild.should_refresh(0, 1_000, 1),
            "NaN beta disables refresh"
        );
        let none = timing(1.0, 0.0);
        assert_eq!(none.jittered_ttl_millis(Duration::from_millis(1234)), 1234);
        assert_eq!(none.jittered_ttl_millis(Duration::ZERO), 1);
        assert_eq!(none.jittered_ttl_millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn refresh_is_never_picked_far_from_expiry_and_always_after_it() {
        let t = timing(1.0, 0.0);
        for _ in 0..1_000 {
            assert!(!t.should_refresh(0, 10, 1_000_000));
            assert!(t.should_refresh(2_000, 10, 1_000));
            assert!(!t.should_refresh(0, 0, 5), "no delta, no early refresh");
            assert!(!t.should_refresh(0, 10, 0), "no expiry, no early refresh");
        }
    }

    #[test]
    fn refresh_gets_likelier_as_expiry_nears() {
        let t = timing(1.0, 0.0);
        let picks = |remaining: u64| {
            (0..10_000)
                .filter(|_| t.should_refresh(0, 100, remaining))
                .count()
        };
        // P(refresh) = exp(-remaining / (delta * beta)).
        let (near, mid, far) = (picks(10), picks(100), picks(400));
        assert!(near > 8_500, "{near}");
        assert!((3_000..4_400).contains(&mid), "{mid}");
        assert!(far < 400, "{far}");
    }
}
