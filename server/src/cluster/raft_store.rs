//! Raft's storage for the cluster configuration: the hard state, the conf state, a
//! snapshot of the configuration at the applied index, and the log entries after it, kept
//! in memory and written to one file in the data directory after every change.
//!
//! The configuration is small (a few tens of kilobytes, most of it the slot owners) and
//! changes rarely, so the whole state is rewritten each time: write a temporary file, sync
//! it, rename it over the old one, so a crash leaves either the old state or the new one.
//! The log is compacted into the snapshot as entries are applied, so the file stays small.
//!
//! Only the raft thread uses it: the file writes are blocking I/O and must stay off the
//! async workers.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use prost::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

/// The file name in the data directory.
pub const STATE_FILE: &str = "cluster-raft.state";

/// What the state file holds.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Persisted {
    /// This node's raft id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Term, vote, commit.
    #[prost(message, optional, tag = "2")]
    pub hard_state: Option<HardState>,
    /// The snapshot: the configuration at its index, and the conf state there.
    #[prost(message, optional, tag = "3")]
    pub snapshot: Option<Snapshot>,
    /// Entries after the snapshot.
    #[prost(message, repeated, tag = "4")]
    pub entries: Vec<Entry>,
    /// The latest conf state (may be newer than the snapshot's).
    #[prost(message, optional, tag = "5")]
    pub conf_state: Option<ConfState>,
}

/// Raft storage backed by one file.
#[derive(Debug)]
pub struct DiskStorage {
    path: PathBuf,
    state: Persisted,
}

impl DiskStorage {
    /// Loads the state in `dir`, if there is one.
    ///
    /// # Errors
    /// I/O errors, or a file that does not decode.
    pub fn open(dir: &Path) -> std::io::Result<Option<DiskStorage>> {
        let path = dir.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let state = Persisted::decode(bytes.as_slice()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        Ok(Some(DiskStorage { path, state }))
    }

    /// A new, empty storage for node `id` in `dir` (written at the first change).
    pub fn new(dir: &Path, id: u64) -> DiskStorage {
        DiskStorage {
            path: dir.join(STATE_FILE),
            state: Persisted {
                id,
                ..Persisted::default()
            },
        }
    }

    /// This node's raft id.
    pub fn id(&self) -> u64 {
        self.state.id
    }

    /// The snapshot (the configuration at `snapshot_index`).
    pub fn snapshot_ref(&self) -> Option<&Snapshot> {
        self.state.snapshot.as_ref()
    }

    fn snapshot_meta(&self) -> SnapshotMetadata {
        self.state
            .snapshot
            .as_ref()
            .and_then(|s| s.metadata.clone())
            .unwrap_or_default()
    }

    /// Installs a snapshot: the log before it is dropped.
    pub fn apply_snapshot(&mut self, snap: Snapshot) {
        let meta = snap.metadata.clone().unwrap_or_default();
        self.state.entries.retain(|e| e.index > meta.index);
        if self
            .state
            .entries
            .first()
            .is_some_and(|e| e.index != meta.index + 1)
        {
            self.state.entries.clear();
        }
        let hs = self.state.hard_state.get_or_insert_with(HardState::default);
        hs.commit = hs.commit.max(meta.index);
        hs.term = hs.term.max(meta.term);
        self.state.conf_state = meta.conf_state.clone();
        self.state.snapshot = Some(snap);
    }

    /// Appends entries from raft, replacing any conflicting tail.
    pub fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        let snap_index = self.snapshot_meta().index;
        self.state.entries.retain(|e| e.index < first.index);
        self.state
            .entries
            .extend(entries.iter().filter(|e| e.index > snap_index).cloned());
    }

    /// Sets the hard state.
    pub fn set_hard_state(&mut self, hs: HardState) {
        self.state.hard_state = Some(hs);
    }

    /// Sets the commit index.
    pub fn set_commit(&mut self, commit: u64) {
        self.state
            .hard_state
            .get_or_insert_with(HardState::default)
            .commit = commit;
    }

    /// Sets the conf state after a conf change was applied.
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.state.conf_state = Some(cs);
    }

    /// Records the configuration `data` as applied up to `index`, and drops the log
    /// entries up to it.
    pub fn set_applied(&mut self, index: u64, data: Vec<u8>) {
        let term = self.term(index).unwrap_or(0);
        self.state.snapshot = Some(Snapshot {
            data,
            metadata: Some(SnapshotMetadata {
                conf_state: self.state.conf_state.clone(),
                index,
                term,
            }),
        });
        // A follower behind the snapshot gets the snapshot: it is small.
        self.state.entries.retain(|e| e.index > index);
    }

    /// Writes the state to its file: temporary file, sync, rename.
    ///
    /// # Errors
    /// I/O errors.
    pub fn persist(&self) -> std::io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&self.state.encode_to_vec())?;
        f.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            // The rename itself must reach the disk.
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn first_index_inner(&self) -> u64 {
        self.state
            .entries
            .first()
            .map_or(self.snapshot_meta().index + 1, |e| e.index)
    }

    fn last_index_inner(&self) -> u64 {
        self.state
            .entries
            .last()
            .map_or(self.snapshot_meta().index, |e| e.index)
    }
}

impl Storage for DiskStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.state.hard_state.clone().unwrap_or_default(),
            self.state.conf_state.clone().unwrap_or_default(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first_index_inner() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last_index_inner() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max = max_size.into().unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut size = 0u64;
        for e in self
            .state
            .entries
            .iter()
            .filter(|e| e.index >= low && e.index < high)
        {
            size = size.saturating_add(e.encoded_len() as u64);
            if !out.is_empty() && size > max {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let meta = self.snapshot_meta();
        if idx == meta.index {
            return Ok(meta.term);
        }
        if idx < self.first_index_inner() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.state
            .entries
            .iter()
            .find(|e| e.index == idx)
            .map(|e| e.term)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first_index_inner())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_index_inner())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // Always the configuration at the applied index, the newest there is.
        self.state.snapshot.clone().ok_or(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Entry::default()
        }
    }

    #[test]
    fn state_survives_a_reopen_and_the_log_follows_the_snapshot() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(DiskStorage::open(dir.path()).expect("reads").is_none());
        let mut s = DiskStorage::new(dir.path(), 42);
        s.set_conf_state(ConfState {
            voters: vec![42],
            ..ConfState::default()
        });
        s.apply_snapshot(Snapshot {
            data: b"config-1".to_vec(),
            metadata: Some(SnapshotMetadata {
                conf_state: Some(ConfState {
                    voters: vec![42],
                    ..ConfState::default()
                }),
                index: 1,
                term: 1,
            }),
        });
        s.append(&[entry(2, 1), entry(3, 1), entry(4, 2)]);
        // A conflicting tail from a new leader replaces the old one.
        s.append(&[entry(4, 3), entry(5, 3)]);
        s.set_hard_state(HardState {
            term: 3,
            vote: 42,
            commit: 4,
        });
        s.set_applied(3, b"config-3".to_vec());
        s.persist().expect("writes");

        let r = DiskStorage::open(dir.path())
            .expect("reads")
            .expect("exists");
        assert_eq!(r.id(), 42);
        assert_eq!(r.first_index().expect("first"), 4);
        assert_eq!(r.last_index().expect("last"), 5);
        assert_eq!(r.term(3).expect("snapshot term"), 1);
        assert_eq!(r.term(4).expect("term"), 3);
        assert!(matches!(
            r.term(2),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
        let got = r
            .entries(4, 6, None, GetEntriesContext::empty(false))
            .expect("entries");
        assert_eq!(got.iter().map(|e| e.index).collect::<Vec<_>>(), [4, 5]);
        let snap = r.snapshot(0, 0).expect("snapshot");
        assert_eq!(snap.data, b"config-3");
        let state = r.initial_state().expect("state");
        assert_eq!(state.hard_state.commit, 4);
        assert_eq!(state.conf_state.voters, [42]);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_state() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join(STATE_FILE), b"\xff\xff\xff\xff").expect("writes");
        assert!(DiskStorage::open(dir.path()).is_err());
    }
}
