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
pub mod tables;
mod wal;
pub mod writer;

pub use writer::{
    Incoming, IngestHandle, OnStored, RecordSink, WriterConfig, WriterStopped, spawn_writer,
};

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::pipeline::{
    Message, Pipeline, PipelineCheckpoint, PipelineConfig, Record, VehicleKey,
};
use polars::prelude::{DataFrame, IntoLazy, LazyFrame, PolarsError};
use serde::{Deserialize, Serialize};

use dedupe::DigestIndex;
use tables::PendingRows;
use wal::{WalRecord, WalWriter};

/// Compact once the log holds this much.
const DEFAULT_COMPACT_BYTES: u64 = 64 << 20;
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
    let mut f = File::create(path)?;
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

/// The store of one `--data` directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    _lock: Option<File>,
    wal_dir: PathBuf,
    wal: Option<WalWriter>,
    digests: DigestIndex,
    pipeline: Pipeline,
    pending: PendingRows,
    seen: HashMap<Arc<VehicleKey>, SeenVehicle>,
    checkpoint_totals: Totals,
    stored: u64,
    duplicates: u64,
    next_part: u64,
    compact_bytes: u64,
    poisoned: bool,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` for writing, recovering
    /// from a crash if there was one.
    pub fn open(dir: &Path, config: PipelineConfig) -> Result<Self> {
        // For its owner only: it holds every fleet's history (issue 20).
        crate::runtime::secret::private_dir(dir).at(dir)?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path).at(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(dir.to_owned())),
            Err(fs::TryLockError::Error(e)) => return Err(e).at(&lock_path),
        }
        Self::recover(dir, config, Some(lock))
    }

    /// Opens the store to read it while another process may be writing:
    /// nothing on disk is changed.
    pub fn open_read_only(dir: &Path, config: PipelineConfig) -> Result<Self> {
        Self::recover(dir, config, None)
    }

    fn recover(dir: &Path, config: PipelineConfig, lock: Option<File>) -> Result<Self> {
        let writable = lock.is_some();
        let wal_dir = dir.join("wal");
        if writable {
            fs::create_dir_all(&wal_dir).at(&wal_dir)?;
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
            seen: checkpoint
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
            checkpoint_totals: checkpoint.totals,
            stored: 0,
            duplicates: 0,
            next_part: checkpoint.next_part,
            compact_bytes: DEFAULT_COMPACT_BYTES,
            poisoned: false,
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
        let mut records = Vec::new();
        let mut tail = (checkpoint.wal_start, 0u64);
        for (i, &seq) in live.iter().enumerate() {
            let path = wal::segment_path(&wal_dir, seq);
            let bytes = fs::read(&path).at(&path)?;
            let (logged, valid) = wal::read_segment(&bytes);
            let last = i + 1 == live.len();
            if !last && !wal::is_padding(bytes.get(valid..).unwrap_or_default()) {
                return Err(StoreError::Corrupt {
                    path,
                    what: format!("bad record at byte {valid} of a completed log segment"),
                });
            }
            for r in &logged {
                store.digests.insert(r.day, r.digest).at(&path)?;
                store.apply(r, &mut records);
            }
            store.stored += logged.len() as u64;
            tail = (seq, valid as u64);
        }
        if writable {
            // Segments before wal_start were compacted; a crash kept them.
            for &seq in segments.iter().filter(|&&s| s < checkpoint.wal_start) {
                let path = wal::segment_path(&wal_dir, seq);
                fs::remove_file(&path).at(&path)?;
            }
            store.wal = Some(WalWriter::open(&wal_dir, tail.0, tail.1).at(&wal_dir)?);
        }
        Ok(store)
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
        if let Some(key) = vehicle {
            let seen = self.seen.entry(key).or_insert_with_key(|k| SeenVehicle {
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

    /// A lazy scan of one table's whole history (`faults`, `lamps`,
    /// `meters`, `meter_days`, `dead_letters`): the compacted Parquet parts and the
    /// records of the log not yet compacted.
    pub fn scan(&self, table: &str) -> Result<Option<LazyFrame>> {
        self.scan_between(table, None, None)
    }

    /// Like [`Store::scan`], limited to the day partitions that can hold
    /// event times from `from` to `to` (both included; `None`: open), so a
    /// report over recent weeks does not open a year of files. Rows of the
    /// edge days outside the range are still in the frame: filter on `ts`.
    pub fn scan_between(
        &self,
        table: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Option<LazyFrame>> {
        let days = (from.map(dedupe::day_of_ts), to.map(dedupe::day_of_ts));
        let err = |source| StoreError::Parquet {
            path: self.dir.join(table),
            source,
        };
        let parts = tables::scan(&self.dir, table, self.next_part, days).map_err(err)?;
        // Records of the log, not yet compacted, are part of the history.
        let pending = self.pending.frame(table, days).map_err(err)?;
        Ok(match (parts, pending) {
            (Some(p), Some(df)) => Some(
                polars::prelude::concat([p, df.lazy()], polars::prelude::UnionArgs::default())
                    .map_err(err)?,
            ),
            (Some(p), None) => Some(p),
            (None, Some(df)) => Some(df.lazy()),
            (None, None) => None,
        })
    }

    /// Like [`Store::scan_between`], but read at once, file by file, and
    /// only `columns`: for the small tables (`faults`, `lamps`) whose year
    /// is hundreds of files of a few kilobytes, where a lazy multi-file
    /// scan costs more per file than reading the rows does.
    pub fn read_between(
        &self,
        table: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        columns: &[&str],
    ) -> Result<Option<DataFrame>> {
        use polars::prelude::SerReader;
        let days = (from.map(dedupe::day_of_ts), to.map(dedupe::day_of_ts));
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Parquet { path, source }
        };
        let table_dir = self.dir.join(table);
        let files = tables::part_files(&self.dir, table, self.next_part, days).at(&table_dir)?;
        let names: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        let mut frames = Vec::with_capacity(files.len() + 1);
        for path in &files {
            let file = File::open(path).at(path)?;
            frames.push(
                polars::prelude::ParquetReader::new(file)
                    .with_columns(Some(names.clone()))
                    .finish()
                    .map_err(err(path))?,
            );
        }
        if let Some(pending) = self.pending.frame(table, days).map_err(err(&table_dir))? {
            frames.push(
                pending
                    .select(columns.iter().copied())
                    .map_err(err(&table_dir))?,
            );
        }
        let mut frames = frames.into_iter();
        let Some(mut all) = frames.next() else {
            return Ok(None);
        };
        for f in frames {
            all.vstack_mut(&f).map_err(err(&table_dir))?;
        }
        all.rechunk_mut();
        Ok(Some(all))
    }

    /// The days from `from` to `to` (both included) whose meter readings
    /// can be read from the `meter_days` summary: those where every
    /// compacted `meters` part has its summary, and those only in the log.
    /// The others (written by a version before the summary) must be read
    /// from `meters`.
    pub fn summarised_meter_days(&self, from: i32, to: i32) -> Result<Vec<i32>> {
        let dir = self.dir.join("meter_days");
        let lacking = tables::unsummarised_days(&self.dir, self.next_part, (Some(from), Some(to)))
            .at(&dir)?;
        Ok((from..=to)
            .filter(|&day| !lacking.contains(&dedupe::day_dir_name(day)))
            .collect())
    }

    /// Each meter's latest stored reading for one vehicle, by meter name:
    /// `(meter, ts in µs, continuous value)`.
    pub fn latest_meters(
        &self,
        fleet: &FleetId,
        vehicle: &VehicleId,
    ) -> Result<Vec<(String, i64, f64)>> {
        use polars::prelude::{DataType, SortMultipleOptions, col, lit};
        let Some(lf) = self.scan("meters")? else {
            return Ok(Vec::new());
        };
        let err = |source| StoreError::Parquet {
            path: self.dir.join("meters"),
            source,
        };
        let ts = col("ts").cast(DataType::Int64);
        let df = lf
            .filter(
                col("fleet")
                    .eq(lit(fleet.as_str()))
                    .and(col("vehicle").eq(lit(vehicle.as_str()))),
            )
            .group_by([col("meter")])
            .agg([
                ts.clone().max().alias("ts"),
                col("value")
                    .sort_by([ts], SortMultipleOptions::default())
                    .last()
                    .alias("value"),
            ])
            .sort(["meter"], SortMultipleOptions::default())
            .collect()
            .map_err(err)?;
        let meter = df.column("meter").and_then(|c| c.str()).map_err(err)?;
        let ts = df.column("ts").and_then(|c| c.i64()).map_err(err)?;
        let value = df.column("value").and_then(|c| c.f64()).map_err(err)?;
        Ok((0..df.height())
            .filter_map(|i| Some((meter.get(i)?.to_owned(), ts.get(i)?, value.get(i)?)))
            .collect())
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
