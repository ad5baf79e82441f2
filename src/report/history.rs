//! Reading the stored history for the jobs: lazy scans limited to a time
//! range (whole day partitions skipped, the `ts` predicate pushed down to
//! the Parquet row groups), frames of the registry to join with, and the
//! checked conversion of result columns into Rust values.

use fleetcare_ingest::Timestamp;
use polars::prelude::*;

use super::{ReportError, Result};
use crate::store::Store;

/// A `Datetime(µs)` literal, the type of the store's `ts` columns, so the
/// comparison needs no cast and can be pushed down to the scan.
pub(crate) fn ts_lit(us: i64) -> Expr {
    lit(Scalar::new_datetime(us, TimeUnit::Microseconds, None))
}

/// Rows of `table` with `from < ts <= to` (`from`: `None` for the whole
/// past); `None` when the store has no part in that range.
pub(crate) fn scan(
    store: &Store,
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
    let upper = col("ts").lt_eq(ts_lit(to));
    let predicate = match from {
        Some(f) => col("ts").gt(ts_lit(f)).and(upper),
        None => upper,
    };
    Ok(Some(lf.filter(predicate)))
}

/// Fault episode starts (C5) with `from < ts <= to`: `fleet, vehicle, spn,
/// fmi` and `ts` in µs (Int64). A start is all the reports need: an
/// episode counts where it starts, and a gap in data never ends one.
pub(crate) fn episode_starts(
    store: &Store,
    from: Option<i64>,
    to: i64,
) -> Result<Option<LazyFrame>> {
    Ok(scan(store, "faults", from, to)?.map(|lf| {
        lf.filter(col("event").eq(lit("start"))).select([
            col("fleet"),
            col("vehicle"),
            col("spn"),
            col("fmi"),
            col("ts").cast(DataType::Int64),
        ])
    }))
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
