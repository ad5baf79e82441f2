//! Reading the stored history for the jobs: lazy scans limited to a time
//! range (whole day partitions skipped, the `ts` predicate pushed down to
//! the Parquet row groups), frames of the registry to join with, and the
//! checked conversion of result columns into Rust values.

use fleetcare_ingest::Timestamp;
use polars::prelude::*;

use super::{ReportError, Result, US_PER_DAY};
use crate::store::Snapshot;

/// A `Datetime(µs)` literal, the type of the store's `ts` columns, so the
/// comparison needs no cast and can be pushed down to the scan.
pub(crate) fn ts_lit(us: i64) -> Expr {
    lit(Scalar::new_datetime(us, TimeUnit::Microseconds, None))
}

/// Rows of `table` with `from < ts <= to` (`from`: `None` for the whole
/// past); `None` when the store has no part in that range.
pub(crate) fn scan(
    store: &Snapshot,
    table: &'static str,
    from: Option<i64>,
    to: i64,
) -> Result<Option<LazyFrame>> {
    let Some(lf) = store.scan_between(
        table,
        from.map(Timestamp::from_micros),
        Some(Timestamp::from_micros(to)),
    )?
    else {
        return Ok(None);
    };
    Ok(Some(lf.filter(ts_between(from, to))))
}

/// `from < ts <= to` (`from`: `None` for the whole past).
fn ts_between(from: Option<i64>, to: i64) -> Expr {
    let upper = col("ts").lt_eq(ts_lit(to));
    match from {
        Some(f) => col("ts").gt(ts_lit(f)).and(upper),
        None => upper,
    }
}

/// Meter history with `from < ts <= to`, in two frames that together hold
/// every reading once: whole days that lie on one side of each of
/// `splits` come from the store's `meter_days` summary, the rest (the
/// edge days, and days a store without summaries holds) as readings.
pub(crate) struct MeterHistory {
    /// `fleet, vehicle, meter, ts` (µs, Int64) and `value`.
    pub(crate) readings: Option<LazyFrame>,
    /// `fleet, vehicle, meter, first_ts` (µs, Int64; every reading of the
    /// row's day lies on the same side of each split as it does), `low` and
    /// `high`.
    pub(crate) days: Option<LazyFrame>,
}

/// Reads [`MeterHistory`] from the store for `report`.
pub(crate) fn meter_history(
    store: &Snapshot,
    report: &'static str,
    from: i64,
    to: i64,
    splits: &[i64],
) -> Result<MeterHistory> {
    let day_of = |us: i64| i32::try_from(us.div_euclid(US_PER_DAY)).unwrap_or(i32::MAX);
    let (first_day, last_day) = (day_of(from), day_of(to));
    let summarised = store.summarised_meter_days(first_day, last_day)?;
    let whole = |day: i32| {
        let (start, end) = (
            i64::from(day) * US_PER_DAY,
            i64::from(day + 1) * US_PER_DAY - 1,
        );
        start > from && end <= to && splits.iter().all(|&s| end <= s || start > s)
    };
    // Consecutive days read the same way become one scan.
    let mut runs: Vec<(bool, i32, i32)> = Vec::new();
    for day in first_day..=last_day {
        let summary = whole(day) && summarised.binary_search(&day).is_ok();
        match runs.last_mut() {
            Some((s, _, end)) if *s == summary && *end + 1 == day => *end = day,
            _ => runs.push((summary, day, day)),
        }
    }
    let mut readings = Vec::new();
    let mut days = Vec::new();
    for (summary, start, end) in runs {
        let (a, b) = (
            Timestamp::from_micros(i64::from(start) * US_PER_DAY),
            Timestamp::from_micros(i64::from(end + 1) * US_PER_DAY - 1),
        );
        let table = if summary { "meter_days" } else { "meters" };
        if let Some(lf) = store.scan_between(table, Some(a), Some(b))? {
            if summary {
                days.push(lf.select([
                    col("fleet"),
                    col("vehicle"),
                    col("meter"),
                    col("first_ts").cast(DataType::Int64),
                    col("low"),
                    col("high"),
                ]));
            } else {
                readings.push(lf.filter(ts_between(Some(from), to)).select([
                    col("fleet"),
                    col("vehicle"),
                    col("meter"),
                    col("ts").cast(DataType::Int64),
                    col("value"),
                ]));
            }
        }
    }
    Ok(MeterHistory {
        readings: union(report, readings)?,
        days: union(report, days)?,
    })
}

/// `frames` one after the other; `None` for none.
pub(crate) fn union(report: &'static str, frames: Vec<LazyFrame>) -> Result<Option<LazyFrame>> {
    if frames.len() < 2 {
        return Ok(frames.into_iter().next());
    }
    concat(frames, UnionArgs::default())
        .map(Some)
        .map_err(|source| ReportError::Query { report, source })
}

/// Fault episode starts (C5) with `from < ts <= to`: `fleet, vehicle, spn,
/// fmi` and `ts` in µs (Int64). A start is all the reports need: an
/// episode counts where it starts, and a gap in data never ends one.
pub(crate) fn episode_starts(
    store: &Snapshot,
    from: Option<i64>,
    to: i64,
) -> Result<Option<LazyFrame>> {
    let Some(df) = store.read_between(
        "faults",
        from.map(Timestamp::from_micros),
        Some(Timestamp::from_micros(to)),
        &["fleet", "vehicle", "ts", "event", "spn", "fmi"],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(
        df.lazy()
            .filter(ts_between(from, to).and(col("event").eq(lit("start"))))
            .select([
                col("fleet"),
                col("vehicle"),
                col("spn"),
                col("fmi"),
                col("ts").cast(DataType::Int64),
            ]),
    ))
}

/// Runs `lf`, naming the report on failure.
pub(crate) fn collect(report: &'static str, lf: LazyFrame) -> Result<DataFrame> {
    lf.collect()
        .map_err(|source| ReportError::Query { report, source })
}

/// Checked column access on a collected frame.
#[derive(Debug)]
pub(crate) struct Columns<'a> {
    pub(crate) table: &'static str,
    pub(crate) df: &'a DataFrame,
}

impl<'a> Columns<'a> {
    fn column(&self, name: &str) -> Result<&'a Column> {
        self.df.column(name).map_err(|e| self.corrupt(name, &e))
    }

    fn corrupt(&self, name: &str, e: &dyn std::fmt::Display) -> ReportError {
        ReportError::Corrupt {
            table: self.table,
            what: format!("column {name}: {e}"),
        }
    }

    pub(crate) fn str(&self, name: &str) -> Result<&'a StringChunked> {
        self.column(name)?.str().map_err(|e| self.corrupt(name, &e))
    }

    pub(crate) fn f64(&self, name: &str) -> Result<&'a Float64Chunked> {
        self.column(name)?.f64().map_err(|e| self.corrupt(name, &e))
    }

    pub(crate) fn i64(&self, name: &str) -> Result<&'a Int64Chunked> {
        self.column(name)?.i64().map_err(|e| self.corrupt(name, &e))
    }

    pub(crate) fn u32(&self, name: &str) -> Result<&'a UInt32Chunked> {
        self.column(name)?.u32().map_err(|e| self.corrupt(name, &e))
    }

    /// A value that the query guarantees (a key column, an aggregate);
    /// missing means the store held a null where it never writes one.
    pub(crate) fn required<T>(&self, name: &str, v: Option<T>) -> Result<T> {
        v.ok_or_else(|| ReportError::Corrupt {
            table: self.table,
            what: format!("a null in column {name}"),
        })
    }
}

/// The registered vehicles as a frame to join with: `fleet, vehicle,
/// model, depot` (only those whose model is in the catalogue).
pub(crate) fn registry_frame(ctx: &super::Context<'_>) -> PolarsResult<DataFrame> {
    let vehicles: Vec<_> = ctx
        .registry
        .vehicles
        .iter()
        .filter(|v| ctx.catalog.model(&v.model).is_some())
        .collect();
    df! {
        "fleet" => vehicles.iter().map(|v| v.fleet.as_str()).collect::<Vec<_>>(),
        "vehicle" => vehicles.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        "model" => vehicles.iter().map(|v| v.model.as_str()).collect::<Vec<_>>(),
        "depot" => vehicles.iter().map(|v| v.depot.as_str()).collect::<Vec<_>>(),
    }
}

/// Runs a frame-building step, naming the report on failure.
pub(crate) fn build<T>(report: &'static str, r: PolarsResult<T>) -> Result<T> {
    r.map_err(|source| ReportError::Query { report, source })
}
