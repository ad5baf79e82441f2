//! A consistent view of the stored history: the Parquet parts committed
//! by one checkpoint plus the rows of the log records read after it. A
//! [`Snapshot`] is immutable and cheap to clone; the reports, the API and
//! the web UI read through it ([`super::StoreReader::snapshot`] in the
//! service, [`super::Store::snapshot`] in commands and tests).
//!
//! Consistent because a compaction never deletes a part: the parts it
//! writes are numbered from the checkpoint's `next_part` on, which a view
//! made before it leaves out, and the log records they hold are the ones
//! the view has as rows.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::pipeline::VehicleKey;
use polars::prelude::{DataFrame, IntoLazy, LazyFrame};

use super::tables::{self, LogFrames};
use super::{IoContext, Result, SeenVehicle, StoreError, Totals, dedupe};

/// Every vehicle that sent data, by its key.
pub(crate) type SeenMap = HashMap<Arc<VehicleKey>, SeenVehicle>;

/// The history as of one point of the log; see the module documentation.
#[derive(Debug, Clone)]
pub struct Snapshot {
    dir: PathBuf,
    /// Parts numbered from here on are not in this view.
    next_part: u64,
    /// The rows of the log records in this view.
    log: Arc<LogFrames>,
    seen: Arc<SeenMap>,
    totals: Totals,
}

impl Snapshot {
    pub(crate) fn new(
        dir: PathBuf,
        next_part: u64,
        log: Arc<LogFrames>,
        seen: Arc<SeenMap>,
        totals: Totals,
    ) -> Self {
        Self {
            dir,
            next_part,
            log,
            seen,
            totals,
        }
    }

    /// Counts over the whole history.
    pub fn totals(&self) -> &Totals {
        &self.totals
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

    /// Like [`Snapshot::scan`], limited to the day partitions that can hold
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
        let pending = self.log.frame(table, days).map_err(err)?;
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

    /// Like [`Snapshot::scan_between`], but read at once, file by file, and
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
        if let Some(pending) = self.log.frame(table, days).map_err(err(&table_dir))? {
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
}
