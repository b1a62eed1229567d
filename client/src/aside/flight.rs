//! The single-flight table: at most one load per key in flight in this process, its result
//! handed to every caller that asked meanwhile. The idea is Go's
//! `golang.org/x/sync/singleflight`; this version adds a hand-over when the leading caller is
//! cancelled.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::sync::watch;

/// Identifies one flight, so a finished leader never removes its successor's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlightId(u64);

/// Where a flight is.
enum State<T> {
    /// The leader is loading.
    Running,
    /// The leader finished; every waiter gets a clone.
    Done(T),
    /// The leader's future was dropped before it finished; waiters start over.
    Abandoned,
}

/// One load in flight.
struct Flight<T> {
    id: FlightId,
    /// Cloned by each waiter; the sender is the leader's.
    state: watch::Receiver<State<T>>,
}

/// Loads in flight, by cache key.
///
/// An entry lives exactly as long as its leader: it is inserted when a caller becomes
/// leader and removed when the leader finishes or is dropped, so the table never holds more
/// entries than there are loads running.
pub(crate) struct FlightTable<T> {
    /// Sharded locks inside `DashMap`, each held only for one insert, lookup or removal,
    /// never across an `.await`.
    flights: DashMap<Bytes, Flight<T>>,
    next_id: AtomicU64,
    /// Finished flights, counted per bucket of keys: a caller that sees its bucket move
    /// between its cache read and becoming leader knows a load may have just filled the
    /// cache, and looks again (see [`FlightTable::finishes`]).
    finished: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
}

/// Buckets of [`FlightTable::finished`]: a caller re-reads needlessly only when another
/// key of its bucket finished a load in the same moment.
const FINISH_BUCKETS: usize = 1024;

/// A caller's part in a flight.
pub(crate) enum Role<'a, T> {
    /// This caller loads and must [`finish`](Leader::finish).
    Leader(Leader<'a, T>),
    /// Another caller is loading; [`wait`](Waiter::wait) for it.
    Waiter(Waiter<T>),
}

impl<T: Clone> FlightTable<T> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        FlightTable {
            flights: DashMap::new(),
            next_id: AtomicU64::new(0),
            finished: (0..FINISH_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Loads in flight right now.
    pub(crate) fn len(&self) -> usize {
        self.flights.len()
    }

    /// Joins the flight for `key`, starting one (as its leader) if there is none.
    pub(crate) fn join(&self, key: &[u8]) -> Role<'_, T> {
        match self.flights.entry(Bytes::copy_from_slice(key)) {
            Entry::Occupied(e) => Role::Waiter(Waiter {
                state: e.get().state.clone(),
            }),
            Entry::Vacant(e) => {
                let (leader, flight) = self.start(e.key().clone());
                e.insert(flight);
                Role::Leader(leader)
            }
        }
    }

    /// Starts a flight for `key` only if none is running: the early refresh, whose callers
    /// keep the value they have rather than wait.
    pub(crate) fn try_lead(&self, key: &[u8]) -> Option<Leader<'_, T>> {
        match self.flights.entry(Bytes::copy_from_slice(key)) {
            Entry::Occupied(_) => None,
            Entry::Vacant(e) => {
                let (leader, flight) = self.start(e.key().clone());
                e.insert(flight);
                Some(leader)
            }
        }
    }

    fn start(&self, key: Bytes) -> (Leader<'_, T>, Flight<T>) {
        let id = FlightId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = watch::channel(State::Running);
        let leader = Leader {
            table: self,
            key,
            id,
            tx,
            finished: false,
        };
        (leader, Flight { id, state: rx })
    }
}

impl<T> FlightTable<T> {
    /// How many loads of `key`'s bucket have finished. Read it before the cache read; if
    /// it moved by the time the caller becomes leader, a load may have filled the cache
    /// in between (its flight already gone), so the cache is worth reading again.
    pub(crate) fn finishes(&self, key: &[u8]) -> u64 {
        self.bucket(key).load(Ordering::Acquire)
    }

    fn bucket(&self, key: &[u8]) -> &AtomicU64 {
        use std::hash::BuildHasher;
        let h = self.hasher.hash_one(key);
        let i = usize::try_from(h % FINISH_BUCKETS as u64).unwrap_or(0);
        // `i` is below the length by construction; the fallback is never taken.
        self.finished.get(i).unwrap_or(&self.next_id)
    }

    fn remove(&self, key: &Bytes, id: FlightId) {
        self.flights.remove_if(key, |_, flight| flight.id == id);
    }
}

/// The caller running a flight's load.
///
/// Dropping it unfinished (the caller's future was cancelled) marks the flight abandoned,
/// which wakes the waiters so one of them takes over, and removes the table entry.
pub(crate) struct Leader<'a, T> {
    table: &'a FlightTable<T>,
    key: Bytes,
    id: FlightId,
    tx: watch::Sender<State<T>>,
    finished: bool,
}

impl<T> Leader<'_, T> {
    /// Hands `result` to every waiter and ends the flight.
    ///
    /// The result is published before the entry is removed, so a caller that joins in
    /// between still gets it instead of starting a second load.
    pub(crate) fn finish(mut self, result: T) {
        self.tx.send_replace(State::Done(result));
        self.finished = true;
        self.table.bucket(&self.key).fetch_add(1, Ordering::AcqRel);
    }
}

impl<T> Drop for Leader<'_, T> {
    fn drop(&mut self) {
        if !self.finished {
            self.tx.send_replace(State::Abandoned);
        }
        self.table.remove(&self.key, self.id);
    }
}

/// A caller waiting for another's load.
pub(crate) struct Waiter<T> {
    state: watch::Receiver<State<T>>,
}

impl<T: Clone> Waiter<T> {
    /// The leader's result, or `None` if the leader was dropped before finishing.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping a waiter affects no one else.
    pub(crate) async fn wait(mut self) -> Option<T> {
        let state = self
            .state
            .wait_for(|s| !matches!(s, State::Running))
            .await
            .ok()?;
        match &*state {
            State::Done(result) => Some(result.clone()),
            State::Running | State::Abandoned => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_caller_waits_for_the_first() {
        let table = FlightTable::<u32>::new();
        let Role::Leader(leader) = table.join(b"k") else {
            panic!("first caller must lead");
        };
        let Role::Waiter(waiter) = table.join(b"k") else {
            panic!("second caller must wait");
        };
        assert!(table.try_lead(b"k").is_none());
        leader.finish(7);
        assert_eq!(waiter.wait().await, Some(7));
        assert_eq!(table.len(), 0);
    }

    #[tokio::test]
    async fn a_dropped_leader_abandons_its_flight_and_its_entry() {
        let table = FlightTable::<u32>::new();
        let leader = table.try_lead(b"k").expect("no flight yet");
        let Role::Waiter(waiter) = table.join(b"k") else {
            panic!("second caller must wait");
        };
        drop(leader);
        assert_eq!(waiter.wait().await, None);
        assert_eq!(table.len(), 0);
        assert!(matches!(table.join(b"k"), Role::Leader(_)));
    }

    #[test]
    fn a_finished_leader_never_removes_its_successor() {
        let table = FlightTable::<u32>::new();
        let first = table.try_lead(b"k").expect("no flight yet");
        table.remove(&Bytes::from_static(b"k"), first.id);
        let second = table.try_lead(b"k").expect("first was removed");
        first.finish(1);
        assert_eq!(table.len(), 1);
        drop(second);
        assert_eq!(table.len(), 0);
    }
}
