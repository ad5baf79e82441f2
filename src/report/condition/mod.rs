//! `report condition` (C12): vehicles whose condition signal has drifted
//! from what that vehicle and its model's peers show under the same
//! operating conditions, before the fault code the catalogue says the
//! drift leads to.
//!
//! The job reads the store's hourly `signal_windows` of the catalogued
//! signals over `history_days` up to the as-of time (windows of the same
//! hour written by two compactions are merged), joins each vehicle to its
//! model, and runs [`detector`] per model and signal. A (vehicle, signal)
//! whose CUSUM is above the decision interval at the as-of time is a
//! finding. Episodes of the condition's fault code restart the sum (the
//! failure happened; a fault ticket has it).

pub mod detector;

use std::collections::HashMap;

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::{Fmi, Spn};
use polars::prelude::*;
use serde::Serialize;

use super::history::{self, Columns};
use super::output::{Row, rfc3339};
use super::{Context, Result, US_PER_DAY, round_to};
use crate::catalog::{ConditionEntry, Direction, ModelId};
use crate::store::Snapshot;
use detector::{Params, VehicleWindows, Window};

const REPORT: &str = "condition";
const TABLE: &str = "signal_windows";

/// Days of windows the detector reads: the learning period and the
/// watched days after it.
pub const HISTORY_DAYS: i64 = 180;

/// One row of `report condition` (C12).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionRow {
    pub fleet: FleetId,
    pub vehicle: VehicleId,
    pub model: ModelId,
    pub signal: String,
    pub direction: Direction,
    /// The first day of the drift's current run (00:00 UTC).
    #[serde(serialize_with = "rfc3339")]
    pub started: Timestamp,
    /// The CUSUM in day standard deviations; a finding above `h` (6).
    pub score: f64,
    /// What the vehicle should show under the last day's conditions.
    pub baseline: f64,
    /// What it showed that day.
    pub current: f64,
    pub spn: Spn,
    pub fmi: Fmi,
}

impl Row for ConditionRow {
    const FIELDS: &'static [&'static str] = &[
        "fleet",
        "vehicle",
        "model",
        "signal",
        "direction",
        "started",
        "score",
        "baseline",
        "current",
        "spn",
        "fmi",
    ];
}

/// One vehicle's daily series of one signal, for the vehicle page's chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalChart {
    pub signal: String,
    pub direction: Direction,
    /// Days since the epoch, mean, expected value.
    pub days: Vec<(i64, f64, f64)>,
    /// Half-width of the baseline band (2 day standard deviations).
    pub band: f64,
    /// Whether the vehicle is being watched (enough learning history).
    pub watched: bool,
}

/// The windows of catalogued signals of registered vehicles with
/// `from < window <= to`, merged per hour: `(fleet, vehicle, model,
/// signal) → windows`.
type Grouped = HashMap<Key, VehicleWindows>;

/// `(fleet, vehicle, model, signal)`.
type Key = (String, String, String, String);

fn read_windows(store: &Snapshot, ctx: &Context<'_>, from: i64, to: i64) -> Result<Grouped> {
    let Some(lf) = store.scan_between(
        TABLE,
        Some(Timestamp::from_micros(from)),
        Some(Timestamp::from_micros(to)),
    )?
    else {
        return Ok(Grouped::new());
    };
    // Which signals each model watches.
    let mut watched: Vec<(&str, &str)> = Vec::new();
    for m in ctx.catalog.models() {
        for c in &m.conditions {
            watched.push((m.id.as_str(), c.signal.as_str()));
        }
    }
    let signals: Vec<&str> = {
        let mut s: Vec<&str> = watched.iter().map(|(_, s)| *s).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let registry = history::build(REPORT, history::registry_frame(ctx))?;
    let lf = lf
        .filter(
            col("window")
                .gt(history::ts_lit(from))
                .and(col("window").lt_eq(history::ts_lit(to)))
                .and(
                    signals
                        .iter()
                        .map(|s| col("signal").eq(lit(*s)))
                        .reduce(Expr::or)
                        .unwrap_or(lit(false)),
                ),
        )
        .with_columns([
            col("count").cast(DataType::Float64).alias("n"),
            col("mean").cast(DataType::Float64),
            col("m2").cast(DataType::Float64),
        ]);
    let weighted = |c: &str| {
        (col(c).cast(DataType::Float64) * col("n"))
            .sum()
            .alias(c.to_owned())
            / col("n").filter(col(c).is_not_null()).sum()
    };
    let merged = lf
        .group_by([col("fleet"), col("vehicle"), col("signal"), col("window")])
        .agg([
            col("n").sum().alias("n_total"),
            (col("mean") * col("n")).sum().alias("sum"),
            (col("m2") + col("mean") * col("mean") * col("n"))
                .sum()
                .alias("sum_sq"),
            weighted("load_pct").alias("load_pct"),
            weighted("speed_rpm").alias("speed_rpm"),
            weighted("ambient_c").alias("ambient_c"),
        ])
        .with_columns([(col("sum") / col("n_total")).alias("mean")])
        .with_columns([(col("sum_sq") - col("mean") * col("mean") * col("n_total")).alias("m2")])
        .join(
            registry.lazy(),
            [col("fleet"), col("vehicle")],
            [col("fleet"), col("vehicle")],
            JoinArgs::new(JoinType::Inner),
        )
        .select([
            col("fleet"),
            col("vehicle"),
            col("model"),
            col("signal"),
            col("window").cast(DataType::Int64),
            col("n_total"),
            col("mean"),
            col("m2"),
            col("load_pct"),
            col("speed_rpm"),
            col("ambient_c"),
        ]);
    let df = history::collect(REPORT, merged)?;
    let c = Columns {
        table: TABLE,
        df: &df,
    };
    let (fleet, vehicle, model, signal) = (
        c.str("fleet")?,
        c.str("vehicle")?,
        c.str("model")?,
        c.str("signal")?,
    );
    let window = c.i64("window")?;
    let (n, mean, m2) = (c.f64("n_total")?, c.f64("mean")?, c.f64("m2")?);
    let (load, speed, ambient) = (c.f64("load_pct")?, c.f64("speed_rpm")?, c.f64("ambient_c")?);
    let mut rows = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let model_id = c.required("model", model.get(i))?;
        let signal_name = c.required("signal", signal.get(i))?;
        if !watched.contains(&(model_id, signal_name)) {
            continue;
        }
        let key = (
            c.required("fleet", fleet.get(i))?.to_owned(),
            c.required("vehicle", vehicle.get(i))?.to_owned(),
            model_id.to_owned(),
            signal_name.to_owned(),
        );
        let w = Window {
            start_us: c.required("window", window.get(i))?,
            count: c.required("n_total", n.get(i))? as u32,
            mean: c.required("mean", mean.get(i))?,
            m2: m2.get(i).unwrap_or(0.0),
            load_pct: load.get(i).filter(|x| x.is_finite()),
            speed_rpm: speed.get(i).filter(|x| x.is_finite()),
            ambient_c: ambient.get(i).filter(|x| x.is_finite()),
        };
        rows.push((key, w));
    }
    Ok(detector::group(rows))
}

/// Adds the days on which the condition's fault code started an episode
/// (the failure happened) as resets.
fn add_resets(
    store: &Snapshot,
    ctx: &Context<'_>,
    from: i64,
    to: i64,
    g: &mut Grouped,
) -> Result<()> {
    let Some(starts) = history::episode_starts(store, Some(from), to)? else {
        return Ok(());
    };
    let df = history::collect(REPORT, starts)?;
    let c = Columns {
        table: "faults",
        df: &df,
    };
    let (fleet, vehicle, spn, fmi, ts) = (
        c.str("fleet")?,
        c.str("vehicle")?,
        c.u32("spn")?,
        c.u32("fmi")?,
        c.i64("ts")?,
    );
    let mut by_code: HashMap<(&str, &str, u32, u32), Vec<i64>> = HashMap::new();
    for i in 0..df.height() {
        if let (Some(f), Some(v), Some(s), Some(m), Some(t)) = (
            fleet.get(i),
            vehicle.get(i),
            spn.get(i),
            fmi.get(i),
            ts.get(i),
        ) {
            by_code
                .entry((f, v, s, m))
                .or_default()
                .push(t.div_euclid(US_PER_DAY));
        }
    }
    for ((fl, ve, model, signal), vw) in g.iter_mut() {
        let Some(cond) = condition_of(ctx, model, signal) else {
            continue;
        };
        let key = (
            fl.as_str(),
            ve.as_str(),
            cond.spn.raw(),
            u32::from(cond.fmi.raw()),
        );
        if let Some(days) = by_code.get(&key) {
            vw.resets = days.clone();
            vw.resets.sort_unstable();
        }
    }
    Ok(())
}

fn condition_of<'a>(ctx: &Context<'a>, model: &str, signal: &str) -> Option<&'a ConditionEntry> {
    ctx.catalog
        .model(model)?
        .conditions
        .iter()
        .find(|c| c.signal == signal)
}

/// Runs the detector per model and signal over `g`; calls `each` with
/// the key, its catalogue entry and its series.
fn run_all<'a>(
    ctx: &Context<'a>,
    g: &Grouped,
    p: &Params,
    mut each: impl FnMut(&Key, &'a ConditionEntry, &detector::Series),
) {
    let mut by_model: HashMap<(&str, &str), Vec<(&Key, &VehicleWindows)>> = HashMap::new();
    for (key, vw) in g {
        by_model
            .entry((key.2.as_str(), key.3.as_str()))
            .or_default()
            .push((key, vw));
    }
    let mut groups: Vec<_> = by_model.into_iter().collect();
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    for ((model, signal), mut members) in groups {
        let Some(cond) = condition_of(ctx, model, signal) else {
            continue;
        };
        members.sort_by(|a, b| a.0.cmp(b.0));
        let refs: Vec<&VehicleWindows> = members.iter().map(|(_, v)| *v).collect();
        for ((key, _), series) in
            members
                .iter()
                .zip(detector::run_model(&refs, cond.direction.sign(), p))
        {
            each(key, cond, &series);
        }
    }
}

/// Every finding at the as-of time, sorted by fleet, vehicle and signal.
pub fn condition(store: &Snapshot, ctx: &Context<'_>) -> Result<Vec<ConditionRow>> {
    let to = ctx.as_of_us();
    let from = to - HISTORY_DAYS * US_PER_DAY;
    let mut g = read_windows(store, ctx, from, to)?;
    add_resets(store, ctx, from, to, &mut g)?;
    let p = Params::default();
    let mut rows = Vec::new();
    let mut bad: Option<String> = None;
    run_all(
        ctx,
        &g,
        &p,
        |(fleet, vehicle, model, signal), cond, series| {
            let Some(since) = detector::active_since(series, &p) else {
                return;
            };
            let Some(last) = series.days.last() else {
                return;
            };
            let ids = (
                FleetId::new(fleet),
                VehicleId::new(vehicle),
                ModelId::new(model),
            );
            let (Ok(fleet), Ok(vehicle), Ok(model)) = ids else {
                bad.get_or_insert_with(|| format!("ids {fleet:?}/{vehicle:?}/{model:?}"));
                return;
            };
            rows.push(ConditionRow {
                fleet,
                vehicle,
                model,
                signal: signal.clone(),
                direction: cond.direction,
                started: Timestamp::from_micros(since * US_PER_DAY),
                score: round_to(last.cusum, 2),
                baseline: round_to(last.expected, 2),
                current: round_to(last.mean, 2),
                spn: cond.spn,
                fmi: cond.fmi,
            });
        },
    );
    if let Some(what) = bad {
        return Err(super::ReportError::Corrupt { table: TABLE, what });
    }
    rows.sort_by(|a, b| (&a.fleet, &a.vehicle, &a.signal).cmp(&(&b.fleet, &b.vehicle, &b.signal)));
    Ok(rows)
}

/// One vehicle's catalogued signals as daily series with their expected
/// values, for the vehicle page's chart.
pub fn vehicle_charts(
    store: &Snapshot,
    ctx: &Context<'_>,
    fleet: &FleetId,
    vehicle: &VehicleId,
) -> Result<Vec<SignalChart>> {
    let to = ctx.as_of_us();
    let from = to - HISTORY_DAYS * US_PER_DAY;
    // The model's peers make the slopes: read them all, keep one vehicle.
    let mut g = read_windows(store, ctx, from, to)?;
    add_resets(store, ctx, from, to, &mut g)?;
    let p = Params::default();
    let mut out = Vec::new();
    run_all(ctx, &g, &p, |(f, v, _, signal), cond, series| {
        if f != fleet.as_str() || v != vehicle.as_str() {
            return;
        }
        out.push(SignalChart {
            signal: signal.clone(),
            direction: cond.direction,
            days: series
                .days
                .iter()
                .map(|d| (d.day, round_to(d.mean, 2), round_to(d.expected, 2)))
                .collect(),
            band: round_to(2.0 * series.sigma, 2),
            watched: series.watched,
        });
    });
    out.sort_by(|a, b| a.signal.cmp(&b.signal));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate, Utc};
    use fleetcare_ingest::j1939::SignalName;
    use fleetcare_ingest::pipeline::{Message, PipelineConfig};
    use fleetcare_ingest::telemetry::Telemetry;

    use super::*;
    use crate::catalog::Catalog;
    use crate::config::DetectConfig;
    use crate::registry::{Depot, Vehicle};
    use crate::report::Registry;
    use crate::store::Store;

    /// 2026-01-05T00:00Z in days since the epoch.
    const DAY0: i64 = 20_458;

    fn noise(v: u64, d: i64, h: i64) -> f64 {
        let mut x = v.wrapping_mul(0xA24B_AED4_963E_E407)
            ^ (d as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (h as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 31;
        x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 29;
        (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }

    // Issue 23: telemetry signals go through the store as hourly windows;
    // `report condition` finds the one truck whose hydraulic oil runs
    // hotter and hotter, not the one at a hotter depot, and names the
    // catalogue's fault.
    #[test]
    fn finds_the_drifting_truck_through_the_store() {
        let catalog =
            Catalog::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
                .unwrap();
        let model = ModelId::new("compactor-c12").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
        let mut batch: Vec<(String, String, fleetcare_ingest::Timestamp)> = Vec::new();
        for v in 0..6u64 {
            for d in 0..60i64 {
                for h in 6..14i64 {
                    for m in [10i64, 40] {
                        let ts = fleetcare_ingest::Timestamp::from_micros(
                            ((DAY0 + d) * 24 + h) * 3_600_000_000 + m * 60_000_000,
                        );
                        let load = 40.0 + 30.0 * noise(v + 10, d, h);
                        // Truck 4 stands at a depot 8 °C warmer.
                        let ambient = 10.0 + (d % 9) as f64 + if v == 4 { 8.0 } else { 0.0 };
                        let drift = if v == 5 && d >= 45 {
                            0.8 * (d - 44) as f64
                        } else {
                            0.0
                        };
                        let oil = 35.0 + 0.3 * load + 0.6 * ambient + 2.0 * noise(v, d, h) + drift;
                        let t = Telemetry {
                            ts,
                            engine_hours: None,
                            pto_hours: None,
                            odometer_km: None,
                            dtcs: None,
                            lamps: None,
                            signals: vec![
                                (SignalName::new("ambient_temp_c").unwrap(), ambient),
                                (SignalName::new("engine_load_pct").unwrap(), load),
                                (SignalName::new("hydraulic_oil_temp_c").unwrap(), oil),
                            ],
                        };
                        batch.push((format!("fleet/acme/V-{v}/telemetry"), t.to_json(), ts));
                    }
                }
            }
        }
        let msgs: Vec<Message<'_>> = batch
            .iter()
            .map(|(topic, payload, ts)| Message {
                topic,
                payload: payload.as_bytes(),
                received: *ts,
            })
            .collect();
        let mut records = Vec::new();
        for chunk in msgs.chunks(2_000) {
            store.ingest(chunk, &mut records).unwrap();
        }
        store.compact().unwrap();
        let registry = Registry {
            vehicles: (0..6)
                .map(|v| Vehicle {
                    id: VehicleId::new(&format!("V-{v}")).unwrap(),
                    fleet: FleetId::new("acme").unwrap(),
                    model: model.clone(),
                    vin: None,
                    commissioned_on: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
                    depot: Depot::new("north").unwrap(),
                })
                .collect(),
            ..Registry::default()
        };
        let detect = DetectConfig::default();
        let as_of = DateTime::<Utc>::from_timestamp((DAY0 + 60) * 86_400, 0).unwrap();
        let ctx = Context {
            catalog: &catalog,
            registry: &registry,
            detect: &detect,
            as_of,
        };
        let snapshot = store.snapshot().unwrap();
        let rows = condition(&snapshot, &ctx).unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        let r = &rows[0];
        assert_eq!(
            (r.vehicle.as_str(), r.signal.as_str(), r.direction),
            ("V-5", "hydraulic_oil_temp_c", Direction::Up)
        );
        assert_eq!((r.spn.raw(), r.fmi.raw()), (520_192, 0));
        let started = r.started.as_micros() / US_PER_DAY - DAY0;
        assert!((44..=52).contains(&started), "started day {started}");
        assert!(r.current > r.baseline + 5.0, "{r:?}");
        // The chart of the drifting truck: 60 days, its baseline below.
        let fleet = FleetId::new("acme").unwrap();
        let charts =
            vehicle_charts(&snapshot, &ctx, &fleet, &VehicleId::new("V-5").unwrap()).unwrap();
        assert_eq!(charts.len(), 1);
        assert_eq!(charts[0].days.len(), 60);
        assert!(charts[0].watched && charts[0].band > 0.0);
        store.close().unwrap();
    }
}
