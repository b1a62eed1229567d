//! `SLOWLOG`: a bounded log of commands that took longer than `slowlog-log-slower-than`.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;

/// Arguments kept per entry, like Redis's `SLOWLOG_ENTRY_MAX_ARGC`.
const MAX_ARGS: usize = 32;
/// Bytes kept per argument, like Redis's `SLOWLOG_ENTRY_MAX_STRING`.
const MAX_ARG_BYTES: usize = 128;

/// One slow command.
#[derive(Clone, Debug)]
pub struct SlowlogEntry {
    /// Increasing id.
    pub id: u64,
    /// Unix time in seconds when it ran.
    pub timestamp: u64,
    /// How long it ran, in microseconds.
    pub duration_micros: u64,
    /// The command and its arguments, trimmed like Redis trims them.
    pub args: Vec<Bytes>,
    /// The client's address.
    pub addr: String,
    /// The client's name.
    pub name: Bytes,
}

/// The log. Its lock is taken only when a command was slow or by `SLOWLOG` itself, never
/// on the ordinary request path.
#[derive(Debug, Default)]
pub struct Slowlog {
    /// Entries, newest first, and the next id; guarded together.
    inner: Mutex<(VecDeque<SlowlogEntry>, u64)>,
}

impl Slowlog {
    /// Records a slow command, dropping the oldest entries beyond `max_len`.
    pub fn push(
        &self,
        args: &[Bytes],
        duration_micros: u64,
        timestamp: u64,
        addr: String,
        name: Bytes,
        max_len: usize,
    ) {
        let mut kept: Vec<Bytes> = Vec::with_capacity(args.len().min(MAX_ARGS));
        for (i, a) in args.iter().enumerate() {
            if i == MAX_ARGS - 1 && args.len() > MAX_ARGS {
                let more = args.len() - MAX_ARGS + 1;
                kept.push(Bytes::from(format!("... ({more} more arguments)")));
                break;
            }
            if a.len() > MAX_ARG_BYTES {
                let more = a.len() - MAX_ARG_BYTES;
                let mut s = a[..MAX_ARG_BYTES].to_vec();
                s.extend_from_slice(format!("... ({more} more bytes)").as_bytes());
                kept.push(Bytes::from(s));
            } else {
                kept.push(a.clone());
            }
        }
        let mut guard = self.inner.lock();
        let (entries, next_id) = &mut *guard;
        entries.push_front(SlowlogEntry {
            id: *next_id,
            timestamp,
            duration_micros,
            args: kept,
            addr,
            name,
        });
        *next_id += 1;
        entries.truncate(max_len);
    }

    /// The newest `count` entries (all of them for `None`).
    pub fn get(&self, count: Option<usize>) -> Vec<SlowlogEntry> {
        let guard = self.inner.lock();
        let n = count.unwrap_or(guard.0.len()).min(guard.0.len());
        guard.0.iter().take(n).cloned().collect()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.inner.lock().0.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry.
    pub fn reset(&self) {
        self.inner.lock().0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_newest_entries_up_to_its_length() {
        let log = Slowlog::default();
        for i in 0..5u64 {
            log.push(
                &[Bytes::from(format!("cmd{i}"))],
                i,
                0,
                String::new(),
                Bytes::new(),
                3,
            );
        }
        let got = log.get(None);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].id, 4);
        assert_eq!(got[0].args[0], Bytes::from_static(b"cmd4"));
        assert_eq!(log.get(Some(1)).len(), 1);
        log.reset();
        assert!(log.is_empty());
    }

    #[test]
    fn long_arguments_and_argument_lists_are_trimmed() {
        let log = Slowlog::default();
        let mut args: Vec<Bytes> = (0..40).map(|i| Bytes::from(format!("a{i}"))).collect();
        args[1] = Bytes::from(vec![b'x'; 200]);
        log.push(&args, 1, 0, String::new(), Bytes::new(), 10);
        let e = &log.get(None)[0];
        assert_eq!(e.args.len(), MAX_ARGS);
        assert_eq!(e.args[31], Bytes::from_static(b"... (9 more arguments)"));
        assert!(e.args[1].ends_with(b"... (72 more bytes)"));
    }
}
