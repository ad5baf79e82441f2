//! The store's part of repair verification (C10, `tickets::verification`):
//! for each delivered repair still watched, when its code first started
//! again after delivery and how many engine hours the vehicle ran from
//! delivery until then (or until the latest reading).
//!
//! Engine hours at a time are the highest continuous `engine_hours` value
//! read at or before it (the store's value is continuous over ECU swaps,
//! so the highest is the latest); a vehicle whose readings begin after the
//! delivery counts from its first reading, which can only under-count.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use polars::prelude::*;

use super::history::{self, Columns};
use super::{Result, US_PER_DAY};
use crate::store::Snapshot;
use crate::tickets::{Observed, Watched};

const REPORT: &str = "verification";
/// How far before the earliest delivery a reading is looked for, to know
/// the engine hours at delivery.
const LOOKBACK_DAYS: i64 = 14;

/// (fleet, vehicle) → its engine-hours readings (µs, value; a summarised
/// day as its first time and highest value).
type Readings = HashMap<(String, String), Vec<(i64, f64)>>;
/// (fleet, vehicle, SPN, FMI) → the code's episode starts (µs).
type Starts = HashMap<(String, String, u32, u32), Vec<i64>>;

/// What the store saw of each watched repair, in the order given.
pub fn observe(store: &Snapshot, watched: &[Watched], now: DateTime<Utc>) -> Result<Vec<Observed>> {
    let Some(first) = watched.iter().map(|w| w.delivered_at).min() else {
        return Ok(Vec::new());
    };
    let to = now.timestamp_micros();
    let from = first.timestamp_micros();
    let vehicles: HashSet<(&str, &str)> = watched
        .iter()
        .map(|w| (w.fleet.as_str(), w.vehicle.as_str()))
        .collect();
    let starts = code_starts(store, from, to, &vehicles)?;
    let back: Vec<Option<i64>> = watched
        .iter()
        .map(|w| {
            let d = w.delivered_at.timestamp_micros();
            starts
                .get(&(
                    w.fleet.as_str().to_owned(),
                    w.vehicle.as_str().to_owned(),
                    w.spn.raw(),
                    u32::from(w.fmi.raw()),
                ))
                .and_then(|ts| ts.iter().copied().filter(|&t| t > d).min())
        })
        .collect();
    let mut splits: Vec<i64> = watched
        .iter()
        .map(|w| w.delivered_at.timestamp_micros())
        .chain(back.iter().flatten().copied())
        .collect();
    splits.sort_unstable();
    splits.dedup();
    let readings = engine_hours(
        store,
        from - LOOKBACK_DAYS * US_PER_DAY,
        to,
        &splits,
        &vehicles,
    )?;
    Ok(watched
        .iter()
        .zip(back)
        .map(|(w, back)| {
            let key = (w.fleet.as_str().to_owned(), w.vehicle.as_str().to_owned());
            let d = w.delivered_at.timestamp_micros();
            let run = readings.get(&key).and_then(|r| {
                let at = |t: i64| {
                    r.iter()
                        .filter(|(ts, _)| *ts <= t)
                        .map(|(_, v)| *v)
                        .reduce(f64::max)
                };
                let start = at(d).or_else(|| {
                    r.iter()
                        .filter(|(ts, _)| *ts > d)
                        .map(|(_, v)| *v)
                        .reduce(f64::min)
                })?;
                let end = at(back.unwrap_or(to))?;
                Some((end - start).max(0.0))
            });
            Observed {
                back_at: back.and_then(DateTime::from_timestamp_micros),
                engine_hours_run: run,
            }
        })
        .collect())
}

/// Episode starts after `from` of the vehicles asked: (fleet, vehicle,
/// SPN, FMI) → start times (µs).
fn code_starts(
    store: &Snapshot,
    from: i64,
    to: i64,
    vehicles: &HashSet<(&str, &str)>,
) -> Result<Starts> {
    let mut out = Starts::new();
    let Some(lf) = history::episode_starts(store, Some(from), to)? else {
        return Ok(out);
    };
    let df = history::collect(REPORT, lf)?;
    let c = Columns {
        table: "faults",
        df: &df,
    };
    let (fleet, vehicle) = (c.str("fleet")?, c.str("vehicle")?);
    let (spn, fmi, ts) = (c.u32("spn")?, c.u32("fmi")?, c.i64("ts")?);
    for i in 0..df.height() {
        let (f, v) = (
            c.required("fleet", fleet.get(i))?,
            c.required("vehicle", vehicle.get(i))?,
        );
        if !vehicles.contains(&(f, v)) {
            continue;
        }
        out.entry((
            f.to_owned(),
            v.to_owned(),
            c.required("spn", spn.get(i))?,
            c.required("fmi", fmi.get(i))?,
        ))
        .or_default()
        .push(c.required("ts", ts.get(i))?);
    }
    Ok(out)
}

/// The `engine_hours` readings of the vehicles asked with `from < ts <=
/// to`: single readings, and whole days (on one side of every split) as
/// their first time and highest value.
fn engine_hours(
    store: &Snapshot,
    from: i64,
    to: i64,
    splits: &[i64],
    vehicles: &HashSet<(&str, &str)>,
) -> Result<Readings> {
    let meters = history::meter_history(store, REPORT, from, to, splits)?;
    let mut out: Readings = HashMap::new();
    let frames = [
        meters.readings.map(|lf| (lf, "ts", "value")),
        meters
            .days
            .map(|lf| (lf.rename(["first_ts"], ["ts"], true), "ts", "high")),
    ];
    for (lf, ts_col, value_col) in frames.into_iter().flatten() {
        let df = history::collect(
            REPORT,
            lf.filter(col("meter").eq(lit("engine_hours"))).select([
                col("fleet"),
                col("vehicle"),
                col(ts_col),
                col(value_col).alias("v"),
            ]),
        )?;
        let c = Columns {
            table: "meters",
            df: &df,
        };
        let (fleet, vehicle) = (c.str("fleet")?, c.str("vehicle")?);
        let (ts, v) = (c.i64(ts_col)?, c.f64("v")?);
        for i in 0..df.height() {
            let (f, veh) = (
                c.required("fleet", fleet.get(i))?,
                c.required("vehicle", vehicle.get(i))?,
            );
            if !vehicles.contains(&(f, veh)) {
                continue;
            }
            let (Some(t), Some(value)) = (ts.get(i), v.get(i)) else {
                continue;
            };
            out.entry((f.to_owned(), veh.to_owned()))
                .or_default()
                .push((t, value));
        }
    }
    Ok(out)
}
