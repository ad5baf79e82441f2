//! `report trends`: per truck model and fault code, episodes and affected
//! vehicles per week, and episodes per 1000 engine hours that the model's
//! registered vehicles ran that week — so a model that works more does not
//! look worse for it.
//!
//! Weeks are ISO weeks (Monday 00:00 UTC), named by their Monday; the
//! report covers `trend_weeks` weeks up to and including the as-of week
//! (which is partial). Only registered vehicles count (a model is needed).

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate, TimeDelta};
use fleetcare_ingest::j1939::{Fmi, Spn};
use polars::prelude::*;
use serde::Serialize;

use super::history::{self, Columns};
use super::output::{Row, date};
use super::usage::{VehicleKey, vehicle_key};
use super::{Context, ReportError, Result, US_PER_DAY, round_to};
use crate::catalog::ModelId;
use crate::store::Snapshot;

const REPORT: &str = "trends";
const US_PER_WEEK: i64 = 7 * US_PER_DAY;

/// One row of `report trends` (C6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendRow {
    pub model: ModelId,
    pub spn: Spn,
    pub fmi: Fmi,
    /// The Monday the week starts on.
    #[serde(serialize_with = "date")]
    pub week: NaiveDate,
    /// Episodes starting that week.
    pub episodes: u32,
    /// Vehicles with at least one of them.
    pub vehicles: u32,
    /// `None` when the model's vehicles sent no engine hours that week.
    pub per_1000_engine_hours: Option<f64>,
}

impl Row for TrendRow {
    const FIELDS: &'static [&'static str] = &[
        "model",
        "spn",
        "fmi",
        "week",
        "episodes",
        "vehicles",
        "per_1000_engine_hours",
    ];
}

/// The Monday of the week `d` is in.
pub(crate) fn monday_of(d: NaiveDate) -> NaiveDate {
    d - TimeDelta::days(i64::from(d.weekday().num_days_from_monday()))
}

fn midnight_us(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_micros())
}

/// `ts` as the number of whole weeks since `origin` (µs).
fn week_index(origin: i64) -> Expr {
    weeks_since(col("ts"), origin)
}

/// A time in µs as the number of whole weeks since `origin` (µs).
fn weeks_since(us: Expr, origin: i64) -> Expr {
    (us - lit(origin)).floor_div(lit(US_PER_WEEK))
}

/// The trends over `weeks` weeks (the configured `trend_weeks` if `None`).
pub fn trends(store: &Snapshot, ctx: &Context<'_>, weeks: Option<u32>) -> Result<Vec<TrendRow>> {
    let weeks = weeks.unwrap_or(ctx.detect.trend_weeks).max(1);
    let first = monday_of(ctx.as_of_date()) - TimeDelta::weeks(i64::from(weeks) - 1);
    let origin = midnight_us(first);
    let as_of = ctx.as_of_us();
    let Some(starts) = history::episode_starts(store, Some(origin - 1), as_of)? else {
        return Ok(Vec::new());
    };
    let registry = history::build(REPORT, history::registry_frame(ctx))?;
    let keys = [col("fleet"), col("vehicle")];
    let q = starts
        .join(
            registry.lazy(),
            keys.clone(),
            keys,
            JoinArgs::new(JoinType::Inner),
        )
        .with_columns([week_index(origin).alias("week")])
        .group_by([col("model"), col("spn"), col("fmi"), col("week")])
        .agg([
            len().alias("episodes"),
            col("vehicle").n_unique().alias("vehicles"),
        ]);
    let df = history::collect(REPORT, q)?;
    let hours = engine_hours(store, ctx, origin)?;
    let c = Columns {
        table: "faults",
        df: &df,
    };
    let (model, spn, fmi) = (c.str("model")?, c.u32("spn")?, c.u32("fmi")?);
    let (week, episodes, vehicles) = (c.i64("week")?, c.u32("episodes")?, c.u32("vehicles")?);
    let mut rows = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let m = c.required("model", model.get(i))?;
        let w = c.required("week", week.get(i))?;
        let n = c.required("episodes", episodes.get(i))?;
        let spn_raw = c.required("spn", spn.get(i))?;
        let fmi_raw = c.required("fmi", fmi.get(i))?;
        let bad = |what: String| ReportError::Corrupt {
            table: "faults",
            what,
        };
        let run = hours.get(&(m.to_owned(), w)).copied().unwrap_or(0.0);
        rows.push(TrendRow {
            model: ModelId::new(m).map_err(|e| bad(e.to_string()))?,
            spn: Spn::new(spn_raw).ok_or_else(|| bad(format!("SPN {spn_raw}")))?,
            fmi: u8::try_from(fmi_raw)
                .ok()
                .and_then(Fmi::new)
                .ok_or_else(|| bad(format!("FMI {fmi_raw}")))?,
            week: first + TimeDelta::weeks(w),
            episodes: n,
            vehicles: c.required("vehicles", vehicles.get(i))?,
            per_1000_engine_hours: (run > 0.0).then(|| round_to(f64::from(n) * 1000.0 / run, 3)),
        });
    }
    rows.sort_by(|a, b| (&a.model, a.spn, a.fmi, a.week).cmp(&(&b.model, b.spn, b.fmi, b.week)));
    Ok(rows)
}

/// Engine hours run per (model, week index): for each registered vehicle,
/// the week's highest reading minus the highest of its previous week with
/// data (one week before the range is read for that), or its lowest
/// reading when there is none. The meter is continuous over ECU swaps, so
/// the highest reading is the latest.
fn engine_hours(
    store: &Snapshot,
    ctx: &Context<'_>,
    origin: i64,
) -> Result<HashMap<(String, i64), f64>> {
    let mut out = HashMap::new();
    let meters =
        history::meter_history(store, REPORT, origin - US_PER_WEEK - 1, ctx.as_of_us(), &[])?;
    // Weeks start at midnight, so a summarised day lies in one week.
    let engine = || col("meter").eq(lit("engine_hours"));
    let mut parts = Vec::new();
    if let Some(lf) = meters.readings {
        parts.push(lf.filter(engine()).select([
            col("fleet"),
            col("vehicle"),
            week_index(origin).alias("week"),
            col("value").alias("high"),
            col("value").alias("low"),
        ]));
    }
    if let Some(lf) = meters.days {
        parts.push(lf.filter(engine()).select([
            col("fleet"),
            col("vehicle"),
            weeks_since(col("first_ts"), origin).alias("week"),
            col("high"),
            col("low"),
        ]));
    }
    let Some(lf) = history::union(REPORT, parts)? else {
        return Ok(out);
    };
    let q = lf
        .group_by([col("fleet"), col("vehicle"), col("week")])
        .agg([col("high").max(), col("low").min()]);
    let df = history::collect(REPORT, q)?;
    let c = Columns {
        table: "meters",
        df: &df,
    };
    let (fleet, vehicle, week) = (c.str("fleet")?, c.str("vehicle")?, c.i64("week")?);
    let (high, low) = (c.f64("high")?, c.f64("low")?);
    let mut per_vehicle: HashMap<VehicleKey, BTreeMap<i64, (f64, f64)>> = HashMap::new();
    for i in 0..df.height() {
        let key = vehicle_key(&c, fleet.get(i), vehicle.get(i))?;
        let (Some(w), Some(h), Some(l)) = (week.get(i), high.get(i), low.get(i)) else {
            continue;
        };
        per_vehicle.entry(key).or_default().insert(w, (h, l));
    }
    let models: HashMap<VehicleKey, &ModelId> = ctx
        .registry
        .vehicles
        .iter()
        .map(|v| ((v.fleet.clone(), v.id.clone()), &v.model))
        .collect();
    for (key, weeks) in per_vehicle {
        let Some(model) = models.get(&key) else {
            continue;
        };
        let mut previous: Option<f64> = None;
        for (w, (high, low)) in weeks {
            let run = (high - previous.unwrap_or(low)).max(0.0);
            previous = Some(high);
            if w >= 0 {
                *out.entry((model.as_str().to_owned(), w)).or_insert(0.0) += run;
            }
        }
    }
    Ok(out)
}
