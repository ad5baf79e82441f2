//! What each vehicle's meters read at the as-of time and how fast they
//! grow: the `current` and `usage_per_day` of the maintenance report, and
//! the pace the parts forecast plans services with.
//!
//! Usage per day is the rise of the meter over the last
//! `detect.usage_window_days` calendar days divided by those days:
//! - idle days, weekends and days off count as days without use, so a
//!   truck that rests on Sundays is forecast at its weekly pace (the default
//!   window, 28 days, is whole weeks, so the as-of weekday does not matter);
//! - a gap in data (a gateway offline while the truck works) costs
//!   nothing: the meters are cumulative, the first reading after the gap
//!   carries the usage;
//! - meter resets (an ECU swap) cannot fake usage: the store's `value` is
//!   continuous over swaps and a reset row keeps the value before it, so
//!   the highest value is the latest.
//!
//! The rise starts from the last reading at or before the window's start
//! (the meter does not move while nothing is sent). A vehicle whose data
//! begins inside the window is measured from its first reading, if that
//! covers at least [`MIN_SPAN_DAYS`]; shorter histories give no usage.

use std::collections::HashMap;

use fleetcare_ingest::ids::{FleetId, VehicleId};
use polars::prelude::*;

use super::history::{self, Columns};
use super::status::MeterValues;
use super::{Context, Result, US_PER_DAY};
use crate::catalog::IntervalMeter;
use crate::store::Snapshot;

/// How far before the window a reading is looked for to start from.
const BASELINE_LOOKBACK_DAYS: i64 = 14;
/// The shortest history a usage rate is estimated from: a week, so that a
/// weekly rest day weighs as it will.
pub(crate) const MIN_SPAN_DAYS: f64 = 7.0;

/// A vehicle as the store names it.
pub(crate) type VehicleKey = (FleetId, VehicleId);

/// The meters of one vehicle at the as-of time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct VehicleMeters {
    /// The latest value at or before the as-of time.
    pub(crate) current: MeterValues,
    /// Usage per calendar day; `None` where it cannot be estimated.
    pub(crate) per_day: MeterValues,
}

fn meter_of(name: &str) -> Option<IntervalMeter> {
    IntervalMeter::ALL
        .into_iter()
        .find(|m| *m != IntervalMeter::Days && m.as_str() == name)
}

/// Current values and usage per day of every vehicle with readings, for
/// the `report` named in errors.
pub(crate) fn vehicle_meters(
    store: &Snapshot,
    ctx: &Context<'_>,
    report: &'static str,
) -> Result<HashMap<VehicleKey, VehicleMeters>> {
    let as_of = ctx.as_of_us();
    let window_days = i64::from(ctx.detect.usage_window_days.max(1));
    let window_start = as_of - window_days * US_PER_DAY;
    let from = window_start - BASELINE_LOOKBACK_DAYS * US_PER_DAY;
    let mut out: HashMap<VehicleKey, VehicleMeters> = HashMap::new();
    let meters = history::meter_history(store, report, from, as_of, &[window_start])?;
    // A reading (or a summarised day: it lies on one side of the window
    // start, as its first reading does) as the columns grouped below.
    let split = |lf: LazyFrame, ts: &str, low: &str, high: &str| {
        let before = col(ts).lt_eq(lit(window_start));
        let null = || lit(NULL).cast(DataType::Float64);
        // Masked columns before grouping: plain max/min aggregations take
        // polars' fast path, where a `filter` inside `agg` is evaluated
        // group by group.
        lf.select([
            col("fleet"),
            col("vehicle"),
            col("meter"),
            col(high).alias("current"),
            when(before.clone())
                .then(col(high))
                .otherwise(null())
                .alias("base"),
            when(before.clone())
                .then(null())
                .otherwise(col(low))
                .alias("first"),
            when(before)
                .then(lit(NULL).cast(DataType::Int64))
                .otherwise(col(ts))
                .alias("first_ts"),
        ])
    };
    let parts: Vec<LazyFrame> = meters
        .readings
        .map(|lf| split(lf, "ts", "value", "value"))
        .into_iter()
        .chain(meters.days.map(|lf| split(lf, "first_ts", "low", "high")))
        .collect();
    if let Some(lf) = history::union(report, parts)? {
        let q = lf
            .group_by([col("fleet"), col("vehicle"), col("meter")])
            .agg([
                col("current").max(),
                col("base").max(),
                col("first").min(),
                col("first_ts").min(),
            ]);
        let df = history::collect(report, q)?;
        let c = Columns {
            table: "meters",
            df: &df,
        };
        let (fleet, vehicle, meter) = (c.str("fleet")?, c.str("vehicle")?, c.str("meter")?);
        let (current, base) = (c.f64("current")?, c.f64("base")?);
        let (first, first_ts) = (c.f64("first")?, c.i64("first_ts")?);
        for i in 0..df.height() {
            let key = vehicle_key(&c, fleet.get(i), vehicle.get(i))?;
            let Some(m) = meter.get(i).and_then(meter_of) else {
                continue;
            };
            let now = c.required("current", current.get(i))?;
            let per_day = match (base.get(i), first.get(i), first_ts.get(i)) {
                (Some(b), _, _) => Some((now - b) / window_days as f64),
                (None, Some(f), Some(t)) => {
                    let span = (as_of - t) as f64 / US_PER_DAY as f64;
                    (span >= MIN_SPAN_DAYS).then(|| (now - f) / span)
                }
                _ => None,
            };
            let entry = out.entry(key).or_default();
            entry.current.set(m, now);
            if let Some(u) = per_day.filter(|u| u.is_finite() && *u >= 0.0) {
                entry.per_day.set(m, u);
            }
        }
    }
    older_readings(store, ctx, report, from, &mut out)?;
    Ok(out)
}

/// Registered vehicles that sent data once but nothing lately: their
/// latest values come from the whole history (no usage: they are not in
/// use). Skipped when there is none, which is the usual case.
fn older_readings(
    store: &Snapshot,
    ctx: &Context<'_>,
    report: &'static str,
    before: i64,
    out: &mut HashMap<VehicleKey, VehicleMeters>,
) -> Result<()> {
    let seen: std::collections::HashSet<VehicleKey> = store
        .seen_vehicles()
        .into_iter()
        .map(|s| (s.fleet, s.vehicle))
        .collect();
    let silent = ctx.registry.vehicles.iter().any(|v| {
        let key = (v.fleet.clone(), v.id.clone());
        seen.contains(&key) && !out.contains_key(&key)
    });
    if !silent {
        return Ok(());
    }
    let Some(lf) = history::scan(store, "meters", None, before)? else {
        return Ok(());
    };
    let q = lf
        .select([col("fleet"), col("vehicle"), col("meter"), col("value")])
        .group_by([col("fleet"), col("vehicle"), col("meter")])
        .agg([col("value").max().alias("current")]);
    let df = history::collect(report, q)?;
    let c = Columns {
        table: "meters",
        df: &df,
    };
    let (fleet, vehicle, meter) = (c.str("fleet")?, c.str("vehicle")?, c.str("meter")?);
    let current = c.f64("current")?;
    for i in 0..df.height() {
        let key = vehicle_key(&c, fleet.get(i), vehicle.get(i))?;
        let (Some(m), Some(v)) = (meter.get(i).and_then(meter_of), current.get(i)) else {
            continue;
        };
        let entry = out.entry(key).or_default();
        if entry.current.get(m).is_none() {
            entry.current.set(m, v);
            entry.per_day.set(m, 0.0);
        }
    }
    Ok(())
}

/// The checked ids of a stored row.
pub(crate) fn vehicle_key(
    c: &Columns<'_>,
    fleet: Option<&str>,
    vehicle: Option<&str>,
) -> Result<VehicleKey> {
    let fleet = c.required("fleet", fleet)?;
    let vehicle = c.required("vehicle", vehicle)?;
    let corrupt = |what: String| super::ReportError::Corrupt {
        table: c.table,
        what,
    };
    Ok((
        FleetId::new(fleet).map_err(|e| corrupt(format!("fleet {fleet:?}: {e}")))?,
        VehicleId::new(vehicle).map_err(|e| corrupt(format!("vehicle {vehicle:?}: {e}")))?,
    ))
}
