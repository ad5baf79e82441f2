//! The service's one reader of the store, shared by the API, the web UI,
//! the periodic jobs and the ticket meters: it keeps the history as read
//! so far and, at each read, adds only what was logged since.
//!
//! ```text
//! writer thread ──append, fsync──▶ wal/N.wal ◀──read from the last offset── StoreReader
//!               ──compaction────▶ checkpoint.json ◀──stat; on change: read it, replay the new log
//! ```
//!
//! [`StoreReader::snapshot`] refreshes, then hands out an immutable
//! [`Snapshot`] that the read runs on without any lock held:
//!
//! - if `checkpoint.json` is the file seen last time (same inode, size and
//!   modification time), the log is read on from where the last refresh
//!   stopped: the rest of that segment, then any later segment; only those
//!   bytes are read and decoded;
//! - if it changed (a compaction), or the segment was deleted under the
//!   reader, the checkpoint is read again and the log replayed from its
//!   start — a log that a compaction has just emptied.
//!
//! Freshness: a snapshot holds every message whose batch the writer had
//! synced (so every message acknowledged) before [`StoreReader::snapshot`]
//! was called, and possibly some of a batch being synced at that moment;
//! never part of a record, whose checksum must match. It never waits for
//! the writer, and the writer never waits for it: they share no lock, the
//! reader only reads files (no `LOCK`, nothing written). Refreshes take
//! turns under a mutex, so readers arriving together wait at most for one
//! refresh each; the reads themselves run in parallel.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use fleetcare_ingest::pipeline::PipelineConfig;

use super::tables::LogFrames;
use super::{CHECKPOINT, COMPACTED_RETRIES, IoContext, Result, Snapshot, Store, StoreError};

/// The store under one `--data` directory, read by the whole process; see
/// the module documentation.
#[derive(Debug)]
pub struct StoreReader {
    dir: PathBuf,
    config: PipelineConfig,
    state: Mutex<Option<Following>>,
    records: AtomicU64,
    bytes: AtomicU64,
    rebuilds: AtomicU64,
}

/// The reader's state between refreshes.
#[derive(Debug)]
struct Following {
    /// A read-only store fed each refresh's new log records.
    store: Store,
    /// The checkpoint file it started from.
    checkpoint: Option<Stamp>,
    /// The log's rows read so far.
    log: Arc<LogFrames>,
    /// The view of the last refresh, dropped when the next one starts:
    /// if no read holds it any more, the rows and vehicles it shares are
    /// then extended in place instead of copied.
    last: Option<Arc<Snapshot>>,
}

/// Tells one version of `checkpoint.json` from another: a compaction
/// writes a new file and renames it over the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

/// What the reader has read from the log since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Log records decoded (each once, unless a compaction made the reader
    /// read the new log from its start).
    pub records: u64,
    /// Their bytes in the log.
    pub bytes: u64,
    /// Times the checkpoint was read (the first read, then once after each
    /// compaction).
    pub rebuilds: u64,
}

fn stamp(dir: &Path) -> Result<Option<Stamp>> {
    let path = dir.join(CHECKPOINT);
    match fs::metadata(&path) {
        Ok(m) => Ok(Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at(&path),
    }
}

impl StoreReader {
    /// A reader of the store in `dir`. Nothing is read before the first
    /// [`StoreReader::snapshot`]; the directory need not exist yet.
    pub fn new(dir: &Path, config: PipelineConfig) -> Self {
        Self {
            dir: dir.to_owned(),
            config,
            state: Mutex::new(None),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            rebuilds: AtomicU64::new(0),
        }
    }

    /// The history with everything synced before this call (see the
    /// module documentation). Blocking file IO: call it off the async
    /// threads.
    pub fn snapshot(&self) -> Result<Arc<Snapshot>> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| {
            // A refresh panicked half way: records may be applied whose
            // position was not kept. Start over from the checkpoint.
            let mut state = poisoned.into_inner();
            *state = None;
            self.state.clear_poison();
            state
        });
        let refreshed = self.refresh(&mut state);
        if refreshed.is_err() {
            // Whatever was half read is dropped: the next call starts over.
            *state = None;
        }
        refreshed
    }

    /// What was read from the log so far.
    pub fn stats(&self) -> ReaderStats {
        ReaderStats {
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            rebuilds: self.rebuilds.load(Ordering::Relaxed),
        }
    }

    fn refresh(&self, state: &mut Option<Following>) -> Result<Arc<Snapshot>> {
        let now = stamp(&self.dir)?;
        if let Some(f) = state.as_mut()
            && f.checkpoint == now
        {
            let before = f.store.replayed;
            f.last = None;
            match f.store.follow_log() {
                Ok(()) => {
                    let new = f.store.replayed;
                    self.count(new.records - before.records, new.bytes - before.bytes);
                    return f.publish();
                }
                Err(StoreError::Compacted) => {}
                Err(e) => return Err(e),
            }
        }
        *state = None;
        let mut attempts = 1;
        let (store, checkpoint) = loop {
            let before = stamp(&self.dir)?;
            match Store::recover(&self.dir, self.config.clone(), None) {
                // A checkpoint that changed while it was read may have
                // deleted log segments the replay had not reached yet.
                Ok(store) if stamp(&self.dir)? == before || attempts >= COMPACTED_RETRIES => {
                    break (store, before);
                }
                Ok(_) => {}
                Err(StoreError::Compacted) if attempts < COMPACTED_RETRIES => {}
                Err(e) => return Err(e),
            }
            attempts += 1;
        };
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        self.count(store.replayed.records, store.replayed.bytes);
        let following = state.insert(Following {
            store,
            // The stamp from before the read: if the file changed since,
            // the next refresh reads it again.
            checkpoint,
            log: Arc::default(),
            last: None,
        });
        following.publish()
    }

    fn count(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl Following {
    /// Moves the rows the store decoded since the last refresh into the
    /// shared frames and makes the view of now.
    fn publish(&mut self) -> Result<Arc<Snapshot>> {
        let pending = std::mem::take(&mut self.store.pending);
        if pending.len() > 0 {
            let err = |source| StoreError::Parquet {
                path: self.store.dir.clone(),
                source,
            };
            let frames = pending.into_frames().map_err(err)?;
            Arc::make_mut(&mut self.log).append(frames).map_err(err)?;
        }
        let view = Arc::new(self.store.view(self.log.clone()));
        self.last = Some(view.clone());
        Ok(view)
    }
}
