//! Hard duty (C12): how much of a vehicle's meter progress since a task's
//! last service was made with the task's duty signal above its level, so
//! that [`super::due`] can count it `factor` times.
//!
//! The store keeps signals as hourly windows, not as samples, and meters
//! as readings that do not line up with those hours. The job therefore
//! counts, per vehicle, signal and day, the hours that have a window of the
//! signal (merged over compactions) and those whose mean is above the
//! level; the share of hot hours since the last service's day is taken as
//! the share of the meter's progress made hot. That assumes the meter
//! advances evenly over the hours the vehicle sends the signal (it sends
//! signals while it runs), which holds for engine and PTO hours and is a
//! fair approximation for km (`docs/decisions.md`, "Duty-adjusted
//! intervals"). The adjusted meter is
//!
//! `raw + (factor − 1) × share × (raw − last service's reading)`
//!
//! and its rate per day, for the forecast, the raw rate × `(1 + (factor −
//! 1) × share)`. A catalogue without `duty` reads nothing here.

use std::collections::HashMap;

use chrono::NaiveDate;
use fleetcare_ingest::Timestamp;
use polars::prelude::*;

use super::history::{self, Columns};
use super::usage::{VehicleKey, vehicle_key};
use super::{Context, Result, US_PER_DAY};
use crate::catalog::Duty;
use crate::store::Snapshot;

const TABLE: &str = "signal_windows";

/// A duty's signal and level (the level's bits, so that it can be a key).
type Level = (String, u64);

/// One day of a vehicle's duty signal: `(day since the epoch, hours above
/// the level, hours with a window)`.
type Day = (i64, f64, f64);

/// Per vehicle and duty level, its [`Day`]s.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DutyHours {
    days: HashMap<(VehicleKey, Level), Vec<Day>>,
}

fn level_of(duty: &Duty) -> Level {
    (duty.signal.clone(), duty.above.to_bits())
}

/// Days since 1970-01-01.
fn epoch_day(d: NaiveDate) -> i64 {
    d.signed_duration_since(NaiveDate::default()).num_days()
}

impl DutyHours {
    /// Adds `(day, above, windows)` for a vehicle and duty (tests and the
    /// reader).
    pub(crate) fn add(&mut self, vehicle: VehicleKey, duty: &Duty, day: i64, above: f64, all: f64) {
        self.days
            .entry((vehicle, level_of(duty)))
            .or_default()
            .push((day, above, all));
    }

    /// The share of the vehicle's hours with the duty signal that were
    /// above the level, from the day `since` on; `None` without any window
    /// (nothing to adjust by).
    pub(crate) fn share_since(
        &self,
        vehicle: &VehicleKey,
        duty: &Duty,
        since: NaiveDate,
    ) -> Option<f64> {
        let days = self.days.get(&(vehicle.clone(), level_of(duty)))?;
        let from = epoch_day(since);
        let (above, all) = days
            .iter()
            .filter(|d| d.0 >= from)
            .fold((0.0, 0.0), |(a, n), d| (a + d.1, n + d.2));
        (all > 0.0).then(|| (above / all).clamp(0.0, 1.0))
    }
}

/// The extra share a duty adds to the meter progress: `(factor − 1) ×
/// share`.
pub(crate) fn extra(duty: &Duty, share: f64) -> f64 {
    (duty.factor - 1.0) * share
}

/// Reads the hot hours of every duty level of the catalogue, for the
/// registered vehicles whose model has it, from the earliest commissioning
/// date of those vehicles up to the as-of time.
pub(crate) fn read(store: &Snapshot, ctx: &Context<'_>, report: &'static str) -> Result<DutyHours> {
    let mut out = DutyHours::default();
    // Which models carry which duties.
    let mut by_model: HashMap<&str, Vec<&Duty>> = HashMap::new();
    for m in ctx.catalog.models() {
        for t in &m.maintenance {
            if let Some(d) = &t.duty {
                by_model.entry(m.id.as_str()).or_default().push(d);
            }
        }
    }
    let vehicles: Vec<_> = ctx
        .registry
        .vehicles
        .iter()
        .filter(|v| by_model.contains_key(v.model.as_str()))
        .collect();
    let Some(first) = vehicles.iter().map(|v| v.commissioned_on).min() else {
        return Ok(out);
    };
    let from = (epoch_day(first) - 1) * US_PER_DAY;
    let to = ctx.as_of_us();
    let mut levels: Vec<&Duty> = by_model.values().flatten().copied().collect();
    levels.sort_by_key(|a| level_of(a));
    levels.dedup_by(|a, b| level_of(a) == level_of(b));
    let wanted: HashMap<VehicleKey, &str> = vehicles
        .iter()
        .map(|v| ((v.fleet.clone(), v.id.clone()), v.model.as_str()))
        .collect();
    for duty in levels {
        let Some(lf) = store.scan_between(
            TABLE,
            Some(Timestamp::from_micros(from)),
            Some(Timestamp::from_micros(to)),
        )?
        else {
            return Ok(out);
        };
        let q = lf
            .filter(
                col("window")
                    .gt(history::ts_lit(from))
                    .and(col("window").lt_eq(history::ts_lit(to)))
                    .and(col("signal").eq(lit(duty.signal.as_str()))),
            )
            .with_columns([col("count").cast(DataType::Float64).alias("n")])
            .group_by([col("fleet"), col("vehicle"), col("window")])
            .agg([
                ((col("mean").cast(DataType::Float64) * col("n")).sum() / col("n").sum())
                    .alias("mean"),
            ])
            .with_columns([
                (col("window").cast(DataType::Int64) / lit(US_PER_DAY)).alias("day"),
                col("mean")
                    .gt(lit(duty.above))
                    .cast(DataType::Float64)
                    .alias("hot"),
            ])
            .group_by([col("fleet"), col("vehicle"), col("day")])
            .agg([
                col("hot").sum().alias("above"),
                col("hot").count().cast(DataType::Float64).alias("all"),
            ]);
        let df = history::collect(report, q)?;
        let c = Columns {
            table: TABLE,
            df: &df,
        };
        let (fleet, vehicle, day) = (c.str("fleet")?, c.str("vehicle")?, c.i64("day")?);
        let (above, all) = (c.f64("above")?, c.f64("all")?);
        for i in 0..df.height() {
            let key = vehicle_key(&c, fleet.get(i), vehicle.get(i))?;
            let Some(model) = wanted.get(&key) else {
                continue;
            };
            let has = by_model
                .get(model)
                .is_some_and(|ds| ds.iter().any(|d| level_of(d) == level_of(duty)));
            if !has {
                continue;
            }
            out.add(
                key,
                duty,
                c.required("day", day.get(i))?,
                above.get(i).unwrap_or(0.0),
                c.required("all", all.get(i))?,
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetcare_ingest::ids::{FleetId, VehicleId};

    fn key() -> VehicleKey {
        (FleetId::new("f").unwrap(), VehicleId::new("v").unwrap())
    }

    #[test]
    fn share_counts_hours_from_the_service_day_on() {
        let duty = Duty {
            signal: "hydraulic_oil_temp_c".into(),
            above: 80.0,
            factor: 2.0,
        };
        let mut h = DutyHours::default();
        let d = |s: &str| epoch_day(s.parse().unwrap());
        h.add(key(), &duty, d("2026-03-01"), 8.0, 8.0);
        h.add(key(), &duty, d("2026-03-02"), 3.0, 10.0);
        h.add(key(), &duty, d("2026-03-03"), 0.0, 10.0);
        let since = |s: &str| h.share_since(&key(), &duty, s.parse().unwrap());
        assert_eq!(since("2026-03-01"), Some(11.0 / 28.0));
        assert_eq!(since("2026-03-02"), Some(3.0 / 20.0));
        assert_eq!(since("2026-03-04"), None);
        // Another level of the same signal is another duty.
        let hotter = Duty {
            above: 90.0,
            ..duty.clone()
        };
        assert_eq!(
            h.share_since(&key(), &hotter, "2026-03-01".parse().unwrap()),
            None
        );
        assert_eq!(extra(&duty, 0.3), 0.3);
    }
}
