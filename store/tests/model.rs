//! Model-based test: random operation sequences against a `HashMap` reference.
//!
//! The model holds exactly what the cache holds, expired-but-not-yet-removed entries
//! included: an entry leaves the model only when the removal listener reports it, after the
//! report is checked against the model (right value, right cause, reported once). Then the
//! cache's length and weight must equal the model's, every live model entry must read back,
//! no expired entry may read back, and the weight bound must hold.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cachalot_store::{Cache, Clock, Error, ManualClock, Policy, RemovalCause};
use parking_lot::Mutex;
use proptest::prelude::*;

const KEYS: u32 = 12;
const START_MILLIS: u64 = 1_000_000;
/// Bytes the weigher charges for the key itself.
const KEY_BYTES: u64 = 4;

#[derive(Clone, Debug)]
enum Op {
    Insert {
        key: u32,
        len: usize,
    },
    InsertTtl {
        key: u32,
        len: usize,
        ttl_millis: u64,
    },
    /// Absolute expiry relative to now; `<= 0` is in the past.
    InsertAt {
        key: u32,
        len: usize,
        offset: i64,
    },
    Get {
        key: u32,
    },
    Remove {
        key: u32,
    },
    Append {
        key: u32,
        len: usize,
    },
    SetExpireAt {
        key: u32,
        offset: Option<i64>,
    },
    Advance {
        millis: u64,
    },
    Sweep {
        checks: usize,
    },
    /// Switches to `Policy::all()`'s policy at this index (`CONFIG SET maxmemory-policy`).
    SetPolicy {
        index: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    prop_oneof![
        4 => (key.clone(), 0..60usize).prop_map(|(key, len)| Op::Insert { key, len }),
        3 => (key.clone(), 0..60usize, 1..50u64)
            .prop_map(|(key, len, ttl_millis)| Op::InsertTtl { key, len, ttl_millis }),
        1 => (key.clone(), 0..60usize, -5..50i64)
            .prop_map(|(key, len, offset)| Op::InsertAt { key, len, offset }),
        4 => key.clone().prop_map(|key| Op::Get { key }),
        2 => key.clone().prop_map(|key| Op::Remove { key }),
        3 => (key.clone(), 0..30usize).prop_map(|(key, len)| Op::Append { key, len }),
        2 => (key.clone(), proptest::option::of(-5..50i64))
            .prop_map(|(key, offset)| Op::SetExpireAt { key, offset }),
        2 => (0..30u64).prop_map(|millis| Op::Advance { millis }),
        1 => (0..20usize).prop_map(|checks| Op::Sweep { checks }),
        1 => (0..Policy::all().count()).prop_map(|index| Op::SetPolicy { index }),
    ]
}

type Events = Arc<Mutex<Vec<(u32, Vec<u8>, RemovalCause)>>>;

#[derive(Clone, Debug, PartialEq)]
struct Stored {
    value: Vec<u8>,
    expire_at: Option<u64>,
}

struct Harness {
    cache: Cache<u32, Vec<u8>>,
    clock: Arc<ManualClock>,
    events: Events,
    model: HashMap<u32, Stored>,
    policy: Policy,
    max_weight: u64,
    overhead: u64,
    /// The key of the last successful write.
    last_write: Option<u32>,
}

impl Harness {
    fn new(policy: Policy, shards: usize, entries_worth: u64) -> Self {
        let clock = Arc::new(ManualClock::new(START_MILLIS));
        let events: Events = Arc::default();
        let sink = Arc::clone(&events);
        let cache = Cache::builder()
            .shards(shards)
            .policy(policy)
            .clock(clock.clone())
            .weigher(|_, v: &Vec<u8>| KEY_BYTES + v.len() as u64)
            .removal_listener(move |k: &u32, v: &Vec<u8>, cause| {
                sink.lock().push((*k, v.clone(), cause));
            })
            .build()
            .expect("valid configuration");
        let overhead = cache.entry_overhead_bytes();
        let max_weight = entries_worth * (overhead + KEY_BYTES + 20);
        cache.set_max_weight(Some(max_weight));
        Self {
            cache,
            clock,
            events,
            model: HashMap::new(),
            policy,
            max_weight,
            overhead,
            last_write: None,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_millis()
    }

    fn weight_of(&self, value: &[u8]) -> u64 {
        KEY_BYTES + value.len() as u64 + self.overhead
    }

    fn model_weight(&self) -> u64 {
        self.model.values().map(|s| self.weight_of(&s.value)).sum()
    }

    fn is_live(&self, s: &Stored) -> bool {
        s.expire_at.is_none_or(|t| t > self.now())
    }

    /// Checks and applies the listener's reports. `own` is the key the operation wrote or
    /// removed, with the causes the operation itself may report for it.
    fn absorb(&mut self, own: Option<(u32, &[RemovalCause])>) {
        let events = std::mem::take(&mut *self.events.lock());
        for (key, value, cause) in events {
            let own_causes = own.filter(|(k, _)| *k == key).map_or(&[][..], |(_, c)| c);
            if own_causes.contains(&cause) {
                continue; // Checked by the operation itself.
            }
            let stored = self.model.remove(&key);
            let stored = stored.unwrap_or_else(|| {
                panic!("{cause:?} reported for {key}, which the cache does not hold")
            });
            assert_eq!(
                stored.value, value,
                "{cause:?} of {key} reported a wrong value"
            );
            match cause {
                RemovalCause::Expired => assert!(
                    !self.is_live(&stored),
                    "{key} reported expired while live: {stored:?} at {}",
                    self.now()
                ),
                RemovalCause::Evicted => {
                    assert!(
                        own.is_none_or(|(k, _)| k != key),
                        "the key just written ({key}) was evicted"
                    );
                    assert_ne!(self.policy, Policy::no_eviction());
                    if self.policy.is_volatile_only() {
                        assert!(stored.expire_at.is_some(), "persistent {key} evicted");
                    }
                }
                other => panic!("unexpected {other:?} for {key}"),
            }
        }
    }

    /// The one report `own` causes an operation must produce for its key.
    fn take_own(&mut self, key: u32, cause: RemovalCause) -> Vec<Vec<u8>> {
        let mut events = self.events.lock();
        let mut found = Vec::new();
        events.retain(|(k, v, c)| {
            if *k == key && *c == cause {
                found.push(v.clone());
                false
            } else {
                true
            }
        });
        found
    }

    /// Whether a refused write was justified: nothing evictable and no room.
    fn assert_refusal_justified(&self, key: u32, new_weight: u64, err: &Error) {
        let evictable = match self.policy {
            p if p == Policy::no_eviction() => false,
            p if p.is_volatile_only() => self
                .model
                .iter()
                .any(|(k, s)| *k != key && s.expire_at.is_some()),
            _ => self.model.keys().any(|k| *k != key),
        };
        let old = self.model.get(&key).map_or(0, |s| self.weight_of(&s.value));
        let after = self.model_weight() + new_weight - old;
        assert!(
            new_weight > self.max_weight || (!evictable && after > self.max_weight),
            "{err} refused with evictable={evictable} after={after} max={}",
            self.max_weight
        );
    }

    fn write(&mut self, key: u32, value: Vec<u8>, expire_at: Option<u64>, ttl_call: bool) {
        let result = if ttl_call {
            let ttl = expire_at.map_or(1, |t| t - self.now());
            self.cache
                .insert_with_ttl(key, value.clone(), Duration::from_millis(ttl))
        } else {
            self.cache.insert_with_expiry(key, value.clone(), expire_at)
        };
        let past = expire_at.is_some_and(|t| t <= self.now());
        let replaced = self.take_own(key, RemovalCause::Replaced);
        let dead_on_arrival = if past {
            self.take_own(key, RemovalCause::Expired)
                .into_iter()
                .filter(|v| *v == value)
                .count()
        } else {
            0
        };
        self.absorb(Some((key, &[])));
        match result {
            Ok(old) => {
                let before = self.model.remove(&key);
                match &before {
                    Some(s) => {
                        assert!(self.is_live(s), "an expired entry was replaced");
                        assert_eq!(old.as_ref(), Some(&s.value));
                        assert_eq!(replaced, vec![s.value.clone()]);
                    }
                    None => {
                        assert_eq!(old, None);
                        assert!(replaced.is_empty());
                    }
                }
                if past {
                    assert_eq!(dead_on_arrival, 1);
                } else {
                    self.last_write = Some(key);
                    self.model.insert(key, Stored { value, expire_at });
                    assert!(self.cache.contains(&key), "a fresh write did not read back");
                }
            }
            Err(err) => {
                assert!(replaced.is_empty());
                self.assert_refusal_justified(key, self.weight_of(&value), &err);
            }
        }
    }

    fn apply(&mut self, op: &Op, tag: u8) {
        let now = self.now();
        match *op {
            Op::Insert { key, len } => self.write(key, vec![tag; len], None, false),
            Op::InsertTtl {
                key,
                len,
                ttl_millis,
            } => self.write(key, vec![tag; len], Some(now + ttl_millis), true),
            Op::InsertAt { key, len, offset } => {
                let at = now.saturating_add_signed(offset);
                self.write(key, vec![tag; len], Some(at), false);
            }
            Op::Get { key } => {
                let got = self.cache.get(&key);
                self.absorb(None);
                assert_eq!(got, self.model.get(&key).map(|s| s.value.clone()));
            }
            Op::Remove { key } => {
                let got = self.cache.remove(&key);
                let removed = self.take_own(key, RemovalCause::Removed);
                self.absorb(None);
                let before = self.model.remove(&key);
                assert_eq!(got, before.as_ref().map(|s| s.value.clone()));
                assert_eq!(removed, got.into_iter().collect::<Vec<_>>());
            }
            Op::Append { key, len } => {
                let result = self.cache.compute(key, |e| match e.get_mut() {
                    Some(v) => v.extend(std::iter::repeat_n(tag, len)),
                    None => {
                        e.insert(vec![tag; len]);
                    }
                });
                self.absorb(Some((key, &[])));
                match result {
                    Ok(()) => {
                        self.last_write = Some(key);
                        let entry = self.model.entry(key).or_insert(Stored {
                            value: Vec::new(),
                            expire_at: None,
                        });
                        entry.value.extend(std::iter::repeat_n(tag, len));
                        assert!(self.cache.contains(&key));
                    }
                    Err(err) => {
                        let over = self.model_weight() > self.max_weight;
                        assert!(over, "compute refused within the bound: {err}");
                    }
                }
            }
            Op::SetExpireAt { key, offset } => {
                let at = offset.map(|o| now.saturating_add_signed(o));
                let found = self.cache.set_expire_at(&key, at);
                let expired = self.take_own(key, RemovalCause::Expired);
                self.absorb(None);
                assert_eq!(found, self.model.contains_key(&key));
                if found {
                    if at.is_some_and(|t| t <= now) {
                        let before = self.model.remove(&key).map(|s| s.value);
                        assert_eq!(expired, before.into_iter().collect::<Vec<_>>());
                    } else if let Some(s) = self.model.get_mut(&key) {
                        s.expire_at = at;
                    }
                } else {
                    assert!(expired.is_empty());
                }
            }
            Op::Advance { millis } => self.clock.advance(Duration::from_millis(millis)),
            Op::Sweep { checks } => {
                let removed = self.cache.sweep_expired(checks);
                let reported = self.events.lock().len();
                assert_eq!(removed, reported);
                assert!(removed <= checks);
                self.absorb(None);
            }
            Op::SetPolicy { index } => {
                if let Some(policy) = Policy::all().nth(index) {
                    self.cache.set_policy(policy);
                    self.policy = policy;
                    assert_eq!(self.cache.policy(), policy);
                }
            }
        }
    }

    fn check_invariants(&mut self, last_written: u64) {
        assert_eq!(self.cache.len(), self.model.len() as u64);
        assert_eq!(self.cache.weighted_size(), self.model_weight());
        let expiring = self
            .model
            .values()
            .filter(|s| s.expire_at.is_some())
            .count();
        assert_eq!(self.cache.expiring_len(), expiring as u64);
        assert!(
            self.cache.weighted_size() <= self.max_weight + last_written,
            "weight {} above bound {} + {last_written}",
            self.cache.weighted_size(),
            self.max_weight
        );
        for key in 0..KEYS {
            let model = self.model.get(&key).cloned();
            let live = model.as_ref().filter(|s| self.is_live(s));
            let read = self.cache.peek_with(&key, Clone::clone);
            assert_eq!(read.as_ref(), live.map(|s| &s.value), "key {key}");
            if live.is_some() {
                assert_eq!(
                    self.cache.expire_at(&key),
                    Some(live.and_then(|s| s.expire_at))
                );
            }
            self.absorb(None);
        }
        assert!(self.model.values().all(|s| self.is_live(s)));
    }
}

fn policy() -> impl Strategy<Value = Policy> {
    proptest::sample::select(Policy::all().collect::<Vec<_>>())
}

proptest! {
    #[test]
    fn the_cache_behaves_like_a_bounded_map(
        policy in policy(),
        shards in proptest::sample::select(vec![1usize, 2, 8]),
        entries_worth in 2..8u64,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut h = Harness::new(policy, shards, entries_worth);
        for (i, op) in ops.iter().enumerate() {
            let tag = (i % 251) as u8;
            h.apply(op, tag);
            // A compute under a policy that cannot evict may leave the cache above its bound
            // by the entry it wrote, until that entry shrinks or goes.
            let last_written = h.last_write
                .and_then(|k| h.model.get(&k))
                .map_or(0, |s| h.weight_of(&s.value));
            h.check_invariants(last_written);
        }
    }
}
