//! The durable store under `--data`: every accepted message is in the
//! write-ahead log before it is acknowledged; compaction turns what the
//! pipeline made of it into day-partitioned Parquet and drops the log.
//!
//! ```text
//! {data}/
//!   LOCK                     one writer at a time
//!   checkpoint.json          where the Parquet history ends and the log begins
//!   wal/NNNNNNNNNNNN.wal     raw messages since the checkpoint (see wal.rs)
//!   dedupe/day=…/part-N.bin  digests of every stored message (see dedupe.rs)
//!   faults|lamps|meters|meter_days|dead_letters/day=YYYY-MM-DD/part-N.parquet
//! ```
//!
//! Recovery after a crash at any point: parts numbered at or above the
//! checkpoint's `next_part` belong to a compaction that did not finish and
//! are removed; the log segments from `wal_start` on are replayed through
//! the pipeline restored from the checkpoint; a torn record at the end of
//! the newest segment (never synced, so never acknowledged) is cut off.
//! Each message is thus stored once: digests make a redelivered or
//! replayed message a duplicate, and the Parquet history and the log never
//! overlap.

mod dedupe;
pub(crate) use dedupe::event_micros;
mod reader;
mod snapshot;
pub mod tables;
mod wal;
pub mod writer;

pub use reader::{ReaderStats, StoreReader};
pub use snapshot::Snapshot;

pub use writer::{
    Incoming, IngestHandle, OnStored, RecordSink, WriterConfig, WriterStopped, spawn_writer,
};

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::pipeline::{
    Message, Pipeline, PipelineCheckpoint, PipelineConfig, Record, VehicleKey,
};
use polars::prelude::PolarsError;
use serde::{Deserialize, Serialize};

use dedupe::DigestIndex;
use snapshot::SeenMap;
use tables::{LogFrames, PendingRows};
use wal::{WalRecord, WalWriter};

/// Compact once the log holds this much.
const DEFAULT_COMPACT_BYTES: u64 = 64 << 20;
/// How many times a read that met a compaction starts again.
const COMPACTED_RETRIES: u32 = 4;
/// Days of digests kept in memory after a compaction.
const KEEP_DIGEST_DAYS: usize = 4;
const CHECKPOINT: &str = "checkpoint.json";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{0} is in use by another fleetcare process; stop it or choose another --data directory"
    )]
    Locked(PathBuf),
    #[error("{path} is damaged ({what}); restore it from a backup or move it away")]
    Corrupt { path: PathBuf, what: String },
    #[error("writing Parquet under {path}: {source}")]
    Parquet { path: PathBuf, source: PolarsError },
    #[error("an earlier write failed; reopen the store to recover from the log")]
    Poisoned,
    #[error("the store was compacted while it was being read; read it again")]
    Compacted,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// In the log, durable.
    Stored,
    /// Already stored before (a redelivery or a replay).
    Duplicate,
}

/// A vehicle that sent data, known to the registry or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenVehicle {
    pub fleet: FleetId,
    pub vehicle: VehicleId,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub messages: u64,
}

/// Counts since the store was created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub messages_stored: u64,
    pub duplicates: u64,
    /// CAN frames in the stored `can` messages.
    #[serde(default)]
    pub can_frames: u64,
    pub dead_letters: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// Part number the next compaction writes.
    next_part: u64,
    /// First log segment not yet compacted.
    wal_start: u64,
    pipeline: PipelineCheckpoint,
    seen: Vec<SeenVehicle>,
    totals: Totals,
}

/// Writes `bytes` to `path` and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = crate::runtime::owner_only::create(path)?;
    io::Write::write_all(&mut f, bytes)?;
    f.sync_all()
}

/// The number in `part-NNNNNNNN.{ext}`.
fn part_seq(path: &Path, ext: &str) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("part-")?
        .strip_suffix(ext)?
        .strip_suffix('.')?
        .parse()
        .ok()
}

/// Removes `{dir}/day=*/part-N.{ext}` with N ≥ `first_orphan`.
fn remove_parts_from(dir: &Path, first_orphan: u64, ext: &str) -> io::Result<()> {
    let days = match fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for day in days {
        for part in fs::read_dir(day?.path())? {
            let path = part?.path();
            if part_seq(&path, ext).is_some_and(|s| s >= first_orphan) {
                fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

/// A place in the log: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogPosition {
    segment: u64,
    offset: u64,
}

/// What was read back from the log (by recovery, and by every refresh of
/// a [`StoreReader`]): records and their bytes on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Replayed {
    records: u64,
    bytes: u64,
}

/// The store of one `--data` directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    _lock: Option<File>,
    wal_dir: PathBuf,
    wal: Option<WalWriter>,
    /// Filled only when writable: a reader never checks for duplicates.
    digests: DigestIndex,
    pipeline: Pipeline,
    pending: PendingRows,
    /// Shared with the snapshots made since the last change.
    seen: Arc<SeenMap>,
    checkpoint_totals: Totals,
    stored: u64,
    duplicates: u64,
    next_part: u64,
    compact_bytes: u64,
    poisoned: bool,
    /// Where the records read from the log end: a writer appends there,
    /// a reader reads on from there.
    log_end: LogPosition,
    replayed: Replayed,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` for writing, recovering
    /// from a crash if there was one. The directory and what the store
    /// creates in it are the running user's only (`0700`, files `0600`); an
    /// existing directory that others can enter is closed to them.
    pub fn open(dir: &Path, config: PipelineConfig) -> Result<Self> {
        crate::runtime::owner_only::create_dir_all(dir).at(dir)?;
        match crate::runtime::owner_only::close_to_others(dir) {
            Ok(None) => {}
            Ok(Some(mode)) => tracing::warn!(
                dir = %dir.display(),
                was = format!("{mode:o}"),
                now = format!("{:o}", mode & !0o077),
                "Closed the data directory to other users."
            ),
            Err(e) => tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "Cannot close the data directory to other users; chmod 700 it."
            ),
        }
        let lock_path = dir.join("LOCK");
        let lock = crate::runtime::owner_only::create(&lock_path).at(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(dir.to_owned())),
            Err(fs::TryLockError::Error(e)) => return Err(e).at(&lock_path),
        }
        Self::recover(dir, config, Some(lock))
    }

    /// Opens the store to read it while another process may be writing:
    /// nothing on disk is changed. It reads the checkpoint and replays the
    /// whole log: for a command that reads once. The service reads through
    /// one [`StoreReader`], which replays only what is new.
    pub fn open_read_only(dir: &Path, config: PipelineConfig) -> Result<Self> {
        let mut attempts = 1;
        loop {
            match Self::recover(dir, config.clone(), None) {
                Err(StoreError::Compacted) if attempts < COMPACTED_RETRIES => attempts += 1,
                opened => return opened,
            }
        }
    }

    fn recover(dir: &Path, config: PipelineConfig, lock: Option<File>) -> Result<Self> {
        let writable = lock.is_some();
        let wal_dir = dir.join("wal");
        if writable {
            crate::runtime::owner_only::create_dir_all(&wal_dir).at(&wal_dir)?;
        }
        let cp_path = dir.join(CHECKPOINT);
        let checkpoint: Checkpoint = match fs::read(&cp_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: cp_path.clone(),
                what: e.to_string(),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Checkpoint {
                wal_start: 1,
                ..Checkpoint::default()
            },
            Err(e) => return Err(e).at(&cp_path),
        };
        if writable {
            for table in tables::TABLES {
                let t = dir.join(table);
                remove_parts_from(&t, checkpoint.next_part, "parquet").at(&t)?;
            }
            let d = dir.join("dedupe");
            remove_parts_from(&d, checkpoint.next_part, "bin").at(&d)?;
        }
        let mut store = Self {
            dir: dir.to_owned(),
            _lock: lock,
            wal_dir: wal_dir.clone(),
            wal: None,
            digests: DigestIndex::new(dir.join("dedupe")),
            pipeline: Pipeline::restore(config, checkpoint.pipeline),
            pending: PendingRows::default(),
            seen: Arc::new(
                checkpoint
                    .seen
                    .into_iter()
                    .map(|s| {
                        let key = VehicleKey {
                            fleet: s.fleet.clone(),
                            vehicle: s.vehicle.clone(),
                        };
                        (Arc::new(key), s)
                    })
                    .collect(),
            ),
            checkpoint_totals: checkpoint.totals,
            stored: 0,
            duplicates: 0,
            next_part: checkpoint.next_part,
            compact_bytes: DEFAULT_COMPACT_BYTES,
            poisoned: false,
            log_end: LogPosition {
                segment: checkpoint.wal_start,
                offset: 0,
            },
            replayed: Replayed::default(),
        };
        let segments = match wal::segments(&wal_dir) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !writable => Vec::new(),
            Err(e) => return Err(e).at(&wal_dir),
        };
        let live: Vec<u64> = segments
            .iter()
            .copied()
            .filter(|&s| s >= checkpoint.wal_start)
            .collect();
        // The checkpoint's first segment is created before the checkpoint
        // is written and deleted only after the next one is: a reader that
        // finds a later one first read a checkpoint that a compaction has
        // since replaced.
        if !writable && live.first().is_some_and(|&s| s != checkpoint.wal_start) {
            return Err(StoreError::Compacted);
        }
        for (i, &seq) in live.iter().enumerate() {
            let complete = i + 1 < live.len();
            store.replay_segment(seq, 0, complete, writable)?;
        }
        if writable {
            // Segments before wal_start were compacted; a crash kept them.
            for &seq in segments.iter().filter(|&&s| s < checkpoint.wal_start) {
                let path = wal::segment_path(&wal_dir, seq);
                fs::remove_file(&path).at(&path)?;
            }
            let tail = store.log_end;
            store.wal = Some(WalWriter::open(&wal_dir, tail.segment, tail.offset).at(&wal_dir)?);
        }
        Ok(store)
    }

    /// Feeds the records of log segment `seq` from byte `from` on to the
    /// pipeline, up to the first place that holds no whole record: the
    /// padding, or a torn record (never synced, never acknowledged; a
    /// writer cuts it off, a reader tries again from there next time). A
    /// `complete` segment (one with a later segment beside it) must hold
    /// nothing but padding after its records.
    fn replay_segment(
        &mut self,
        seq: u64,
        from: u64,
        complete: bool,
        writable: bool,
    ) -> Result<()> {
        let path = wal::segment_path(&self.wal_dir, seq);
        let file = match File::open(&path) {
            Ok(f) => f,
            // Deleted by a compaction since the listing.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !writable => {
                return Err(StoreError::Compacted);
            }
            Err(e) => return Err(e).at(&path),
        };
        let tail = wal::read_from(&file, from).at(&path)?;
        let end = from + tail.valid as u64;
        if complete && !wal::rest_is_padding(&file, end).at(&path)? {
            return Err(StoreError::Corrupt {
                path,
                what: format!("bad record at byte {end} of a completed log segment"),
            });
        }
        let logged = tail.records();
        let mut records = Vec::new();
        for r in &logged {
            if writable {
                self.digests.insert(r.day, r.digest).at(&path)?;
            }
            self.apply(r, &mut records);
            records.clear();
        }
        self.stored += logged.len() as u64;
        self.replayed.records += logged.len() as u64;
        self.replayed.bytes += tail.valid as u64;
        self.log_end = LogPosition {
            segment: seq,
            offset: end,
        };
        Ok(())
    }

    /// Read only: feeds the records logged since the last read to the
    /// pipeline — the rest of the segment it ended in and any segment
    /// after it. [`StoreError::Compacted`] when that segment is gone: a
    /// compaction took it into Parquet, and the store must be read again
    /// from the new checkpoint.
    fn follow_log(&mut self) -> Result<()> {
        let segments = match wal::segments(&self.wal_dir) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).at(&self.wal_dir),
        };
        // Listed before the segment is read: a later segment in the list
        // was created after this one was complete, so reading this one now
        // reads all of it.
        let at = self.log_end;
        let later: Vec<u64> = segments
            .iter()
            .copied()
            .filter(|&s| s > at.segment)
            .collect();
        if !segments.contains(&at.segment) {
            // No log yet (a store no writer has opened), or compacted.
            return match later.is_empty() {
                true => Ok(()),
                false => Err(StoreError::Compacted),
            };
        }
        self.replay_segment(at.segment, at.offset, !later.is_empty(), false)?;
        for (i, &seq) in later.iter().enumerate() {
            self.replay_segment(seq, 0, i + 1 < later.len(), false)?;
        }
        Ok(())
    }

    /// A view of the history as it is now (the log's rows are copied).
    pub fn snapshot(&self) -> Result<Snapshot> {
        let mut log = LogFrames::default();
        log.append(
            self.pending
                .frames()
                .map_err(|source| StoreError::Parquet {
                    path: self.dir.clone(),
                    source,
                })?,
        )
        .map_err(|source| StoreError::Parquet {
            path: self.dir.clone(),
            source,
        })?;
        Ok(self.view(Arc::new(log)))
    }

    /// A snapshot with `log` as the rows of the log.
    fn view(&self, log: Arc<LogFrames>) -> Snapshot {
        Snapshot::new(
            self.dir.clone(),
            self.next_part,
            log,
            self.seen.clone(),
            self.totals(),
        )
    }

    /// Sets the log size that triggers a compaction.
    pub fn set_compact_bytes(&mut self, bytes: u64) {
        self.compact_bytes = bytes;
    }

    /// Feeds one logged message to the pipeline.
    fn apply(&mut self, r: &WalRecord<'_>, records: &mut Vec<Record>) {
        let start = records.len();
        let vehicle = self.pipeline.handle(
            Message {
                topic: r.topic,
                payload: r.payload,
                received: r.received,
            },
            records,
        );
        for rec in records.get(start..).unwrap_or_default() {
            self.pending.push(rec);
        }
        // Bounded as the pipeline's states are: a vehicle whose messages
        // are all dead letters is listed too, up to the same number.
        let max = self.pipeline.config().max_tracked_vehicles;
        if let Some(key) = vehicle
            && (self.seen.len() < max || self.seen.contains_key(&key))
        {
            let seen = Arc::make_mut(&mut self.seen)
                .entry(key)
                .or_insert_with_key(|k| SeenVehicle {
                    fleet: k.fleet.clone(),
                    vehicle: k.vehicle.clone(),
                    first_seen: r.received,
                    last_seen: r.received,
                    messages: 0,
                });
            seen.messages += 1;
            seen.first_seen = seen.first_seen.min(r.received);
            seen.last_seen = seen.last_seen.max(r.received);
        }
    }

    /// Stores a batch: each new message is logged and synced before this
    /// returns (so it may be acknowledged), then decoded; the records it
    /// yields are pushed to `records` for the real-time path.
    pub fn ingest(
        &mut self,
        batch: &[Message<'_>],
        records: &mut Vec<Record>,
    ) -> Result<Vec<Outcome>> {
        self.ingest_acking(batch, records, |_| {})
    }

    /// [`Store::ingest`] that calls `durable` with the batch's outcomes as
    /// soon as the batch is synced, before it is decoded: acknowledgements
    /// sent from there reach the broker while the batch is decoded, and the
    /// broker's next messages arrive meanwhile. `durable` is not called when
    /// logging or syncing fails.
    pub fn ingest_acking(
        &mut self,
        batch: &[Message<'_>],
        records: &mut Vec<Record>,
        durable: impl FnOnce(&[Outcome]),
    ) -> Result<Vec<Outcome>> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        let result = self.ingest_inner(batch, records, durable);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn ingest_inner(
        &mut self,
        batch: &[Message<'_>],
        records: &mut Vec<Record>,
        durable: impl FnOnce(&[Outcome]),
    ) -> Result<Vec<Outcome>> {
        // Borrowed beside `wal`, not cloned: this runs once per batch.
        let wal_dir = &self.wal_dir;
        let Some(wal) = self.wal.as_mut() else {
            return Err(StoreError::Io {
                path: self.dir.clone(),
                source: io::Error::other("the store is open read-only"),
            });
        };
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut fresh = Vec::with_capacity(batch.len());
        for m in batch {
            let digest = dedupe::digest(m.topic, m.payload);
            let day = dedupe::event_day(m.topic, m.payload);
            if self.digests.insert(day, digest).at(wal_dir)? {
                let r = WalRecord {
                    received: m.received,
                    digest,
                    day,
                    topic: m.topic,
                    payload: m.payload,
                };
                wal.append(&r).at(wal_dir)?;
                fresh.push(r);
                outcomes.push(Outcome::Stored);
            } else {
                outcomes.push(Outcome::Duplicate);
            }
        }
        // Synced even when every message was a duplicate: its first copy
        // may be the unsynced tail a killed process left in the log, which
        // recovery read back but no sync has made durable.
        wal.sync().at(wal_dir)?;
        durable(&outcomes);
        let full = wal.len() >= self.compact_bytes;
        self.stored += fresh.len() as u64;
        self.duplicates += (batch.len() - fresh.len()) as u64;
        for r in &fresh {
            self.apply(r, records);
        }
        if full {
            self.compact()?;
        }
        Ok(outcomes)
    }

    /// Writes what the log holds as Parquet and starts a new log.
    pub fn compact(&mut self) -> Result<()> {
        let Some(wal) = self.wal.as_mut() else {
            return Ok(());
        };
        let wal_dir = self.wal_dir.clone();
        wal.sync().at(&wal_dir)?;
        let old = wal.seq();
        if wal.len() == 0 && self.pending.len() == 0 {
            return Ok(());
        }
        self.wal = Some(WalWriter::open(&wal_dir, old + 1, 0).at(&wal_dir)?);
        let part = self.next_part;
        let mut written =
            self.pending
                .write(&self.dir, part)
                .map_err(|source| StoreError::Parquet {
                    path: self.dir.clone(),
                    source,
                })?;
        let d = self.dir.join("dedupe");
        written.extend(self.digests.save(part).at(&d)?);
        // The new files' entries, and any day or table folder created for
        // them, must be durable before the checkpoint names this part.
        let mut dirs = std::collections::BTreeSet::new();
        for file in &written {
            let day = file.parent();
            dirs.extend(day);
            dirs.extend(day.and_then(Path::parent));
        }
        for dir in dirs {
            wal::sync_dir(dir).at(dir)?;
        }
        let totals = self.totals();
        let mut seen: Vec<SeenVehicle> = self.seen.values().cloned().collect();
        seen.sort_by(|a, b| (&a.fleet, &a.vehicle).cmp(&(&b.fleet, &b.vehicle)));
        let checkpoint = Checkpoint {
            next_part: part + 1,
            wal_start: old + 1,
            pipeline: self.pipeline.checkpoint(),
            seen,
            totals: totals.clone(),
        };
        let bytes = serde_json::to_vec(&checkpoint).map_err(|e| StoreError::Io {
            path: self.dir.join(CHECKPOINT),
            source: io::Error::other(e),
        })?;
        let tmp = self.dir.join("checkpoint.json.tmp");
        write_synced(&tmp, &bytes).at(&tmp)?;
        let cp = self.dir.join(CHECKPOINT);
        fs::rename(&tmp, &cp).at(&cp)?;
        wal::sync_dir(&self.dir).at(&self.dir)?;
        // From here the compacted log segments are garbage.
        for seq in wal::segments(&wal_dir)
            .at(&wal_dir)?
            .into_iter()
            .filter(|&s| s <= old)
        {
            let path = wal::segment_path(&wal_dir, seq);
            fs::remove_file(&path).at(&path)?;
        }
        self.next_part = part + 1;
        self.checkpoint_totals = totals;
        self.stored = 0;
        self.duplicates = 0;
        self.pipeline.reset_stats();
        self.digests.evict_saved(KEEP_DIGEST_DAYS);
        Ok(())
    }

    /// Counts over the whole history.
    pub fn totals(&self) -> Totals {
        let mut t = self.checkpoint_totals.clone();
        t.messages_stored += self.stored;
        t.duplicates += self.duplicates;
        t.can_frames += self.pipeline.stats().can_frames;
        for (reason, n) in &self.pipeline.stats().dead_letters {
            *t.dead_letters
                .entry(reason.as_str().to_owned())
                .or_default() += n;
        }
        t
    }

    /// Every vehicle that sent data, sorted by fleet and id.
    pub fn seen_vehicles(&self) -> Vec<SeenVehicle> {
        let mut v: Vec<SeenVehicle> = self.seen.values().cloned().collect();
        v.sort_by(|a, b| (&a.fleet, &a.vehicle).cmp(&(&b.fleet, &b.vehicle)));
        v
    }

    /// Compacts and releases the store.
    pub fn close(mut self) -> Result<()> {
        self.compact()
    }
}

/// The vehicles seen in the store under `dir`, read without disturbing a
/// running writer.
pub fn seen_vehicles(dir: &Path, config: PipelineConfig) -> Result<Vec<SeenVehicle>> {
    Ok(Store::open_read_only(dir, config)?.seen_vehicles())
}

#[cfg(test)]
mod tests;
