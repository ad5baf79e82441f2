//! `report recurring`: faults that keep coming back (C5 recurring
//! failure), repairs that did not hold (repeat repair) and codes that hit
//! a share of a whole model across fleets (batch defect, a recall
//! candidate). All three count episode starts only.

use std::collections::HashMap;

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::{Fmi, Spn};
use polars::prelude::*;
use serde::Serialize;

use super::history::{self, Columns};
use super::output::{Row, rfc3339};
use super::usage::vehicle_key;
use super::{Context, ReportError, Result, US_PER_DAY};
use crate::catalog::ModelId;
use crate::registry::ServiceTask;
use crate::store::Snapshot;

const REPORT: &str = "recurring";

/// Which C5 finding a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecurringKind {
    Recurring,
    RepeatRepair,
    BatchDefect,
}

/// One row of `report recurring` (C6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecurringRow {
    pub kind: RecurringKind,
    /// For a batch defect: the fleet when every affected vehicle is in one,
    /// else `None` (the defect spans fleets).
    pub fleet: Option<FleetId>,
    /// `None` for a batch defect.
    pub vehicle: Option<VehicleId>,
    /// `None` for a vehicle that is not registered.
    pub model: Option<ModelId>,
    pub spn: Spn,
    pub fmi: Fmi,
    /// Episodes that make the finding: starts in the window (recurring,
    /// batch defect) or within the repair window after the repair.
    pub episodes: u32,
    /// Vehicles affected: 1, or the batch defect's count.
    pub vehicles: u32,
    #[serde(serialize_with = "rfc3339")]
    pub first_seen: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    pub last_seen: Timestamp,
}

impl Row for RecurringRow {
    const FIELDS: &'static [&'static str] = &[
        "kind",
        "fleet",
        "vehicle",
        "model",
        "spn",
        "fmi",
        "episodes",
        "vehicles",
        "first_seen",
        "last_seen",
    ];
}

/// A corrective repair: a `repair:SPN:FMI` service record, or a closed
/// fault ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub vehicle: VehicleId,
    pub spn: Spn,
    pub fmi: Fmi,
    pub at: Timestamp,
}

/// The repairs of the service history up to the as-of time.
pub fn repairs(ctx: &Context<'_>) -> Vec<Repair> {
    ctx.registry
        .services
        .iter()
        .filter(|s| s.performed_at <= ctx.as_of)
        .filter_map(|s| match s.task {
            ServiceTask::Repair { spn, fmi } => Some(Repair {
                vehicle: s.vehicle.clone(),
                spn,
                fmi,
                at: Timestamp::from_datetime(&s.performed_at),
            }),
            ServiceTask::Maintenance(_) => None,
        })
        .collect()
}

/// Every finding at the as-of time, sorted by kind, fleet, vehicle, model
/// and code.
pub fn recurring(store: &Snapshot, ctx: &Context<'_>) -> Result<Vec<RecurringRow>> {
    let d = ctx.detect;
    let as_of = ctx.as_of_us();
    let repairs = repairs(ctx);
    let window = |days: u32| as_of - i64::from(days) * US_PER_DAY;
    let detect_from = window(d.recurring_window_days).min(window(d.batch_window_days));
    let from = repairs
        .iter()
        .map(|r| r.at.as_micros())
        .min()
        .map_or(detect_from, |r| r.min(detect_from));
    let Some(starts) = history::episode_starts(store, Some(from), as_of)? else {
        return Ok(Vec::new());
    };
    let starts = history::collect(REPORT, starts)?;
    let mut rows = recurring_failures(ctx, &starts)?;
    rows.extend(repeat_repairs(ctx, &starts, &repairs)?);
    rows.extend(batch_defects(ctx, &starts)?);
    rows.sort_by(|a, b| {
        (
            a.kind,
            &a.fleet,
            &a.vehicle,
            &a.model,
            a.spn,
            a.fmi,
            a.first_seen,
        )
            .cmp(&(
                b.kind,
                &b.fleet,
                &b.vehicle,
                &b.model,
                b.spn,
                b.fmi,
                b.first_seen,
            ))
    });
    Ok(rows)
}

fn models(ctx: &Context<'_>) -> HashMap<(FleetId, VehicleId), ModelId> {
    ctx.registry
        .vehicles
        .iter()
        .map(|v| ((v.fleet.clone(), v.id.clone()), v.model.clone()))
        .collect()
}

fn code(c: &Columns<'_>, spn: Option<u32>, fmi: Option<u32>) -> Result<(Spn, Fmi)> {
    let spn = c.required("spn", spn)?;
    let fmi = c.required("fmi", fmi)?;
    let bad = |what: String| ReportError::Corrupt {
        table: c.table,
        what,
    };
    Ok((
        Spn::new(spn).ok_or_else(|| bad(format!("SPN {spn}")))?,
        u8::try_from(fmi)
            .ok()
            .and_then(Fmi::new)
            .ok_or_else(|| bad(format!("FMI {fmi}")))?,
    ))
}

/// The aggregates every finding carries.
fn counted() -> [Expr; 3] {
    [
        len().alias("episodes"),
        col("ts").min().alias("first"),
        col("ts").max().alias("last"),
    ]
}

/// ≥ `recurring_min_episodes` starts of one (vehicle, SPN, FMI) in the window.
fn recurring_failures(ctx: &Context<'_>, starts: &DataFrame) -> Result<Vec<RecurringRow>> {
    let d = ctx.detect;
    let from = ctx.as_of_us() - i64::from(d.recurring_window_days) * US_PER_DAY;
    let q = starts
        .clone()
        .lazy()
        .filter(col("ts").gt(lit(from)))
        .group_by([col("fleet"), col("vehicle"), col("spn"), col("fmi")])
        .agg(counted())
        .filter(col("episodes").gt_eq(lit(d.recurring_min_episodes)));
    let df = history::collect(REPORT, q)?;
    let models = models(ctx);
    findings(&df, |c, i| {
        let key = vehicle_key(c, c.str("fleet")?.get(i), c.str("vehicle")?.get(i))?;
        let model = models.get(&key).cloned();
        Ok((RecurringKind::Recurring, Some(key.0), Some(key.1), model, 1))
    })
}

/// Episodes starting within `repeat_repair_days` after a repair of the
/// same (vehicle, SPN, FMI): one row per repair that did not hold.
fn repeat_repairs(
    ctx: &Context<'_>,
    starts: &DataFrame,
    repairs: &[Repair],
) -> Result<Vec<RecurringRow>> {
    if repairs.is_empty() {
        return Ok(Vec::new());
    }
    let days = i64::from(ctx.detect.repeat_repair_days) * US_PER_DAY;
    let frame = df! {
        "vehicle" => repairs.iter().map(|r| r.vehicle.as_str()).collect::<Vec<_>>(),
        "spn" => repairs.iter().map(|r| r.spn.raw()).collect::<Vec<_>>(),
        "fmi" => repairs.iter().map(|r| u32::from(r.fmi.raw())).collect::<Vec<_>>(),
        "repaired_at" => repairs.iter().map(|r| r.at.as_micros()).collect::<Vec<_>>(),
    };
    let frame = history::build(REPORT, frame)?;
    let keys = [col("vehicle"), col("spn"), col("fmi")];
    let q = starts
        .clone()
        .lazy()
        .join(
            frame.lazy(),
            keys.clone(),
            keys,
            JoinArgs::new(JoinType::Inner),
        )
        .filter(
            col("ts")
                .gt(col("repaired_at"))
                .and(col("ts").lt_eq(col("repaired_at") + lit(days))),
        )
        .group_by([
            col("fleet"),
            col("vehicle"),
            col("spn"),
            col("fmi"),
            col("repaired_at"),
        ])
        .agg(counted());
    let df = history::collect(REPORT, q)?;
    let models = models(ctx);
    findings(&df, |c, i| {
        let key = vehicle_key(c, c.str("fleet")?.get(i), c.str("vehicle")?.get(i))?;
        let model = models.get(&key).cloned();
        Ok((
            RecurringKind::RepeatRepair,
            Some(key.0),
            Some(key.1),
            model,
            1,
        ))
    })
}

/// One (model, SPN, FMI) starting on ≥ `batch_min_vehicles` registered
/// vehicles and on ≥ `batch_min_share` of the model's registered vehicles
/// in the window, across fleets.
fn batch_defects(ctx: &Context<'_>, starts: &DataFrame) -> Result<Vec<RecurringRow>> {
    let d = ctx.detect;
    let from = ctx.as_of_us() - i64::from(d.batch_window_days) * US_PER_DAY;
    let registry = history::build(REPORT, history::registry_frame(ctx))?;
    let registered = registry
        .clone()
        .lazy()
        .group_by([col("model")])
        .agg([len().alias("registered")]);
    let fleet_keys = [col("fleet"), col("vehicle")];
    let q = starts
        .clone()
        .lazy()
        .filter(col("ts").gt(lit(from)))
        .join(
            registry.lazy(),
            fleet_keys.clone(),
            fleet_keys,
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col("model"), col("spn"), col("fmi")])
        .agg([
            len().alias("episodes"),
            col("ts").min().alias("first"),
            col("ts").max().alias("last"),
            col("vehicle").n_unique().alias("vehicles"),
            col("fleet").n_unique().alias("fleets"),
            col("fleet").first().alias("fleet"),
        ])
        .join(
            registered,
            [col("model")],
            [col("model")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("vehicles").gt_eq(lit(d.batch_min_vehicles)).and(
            col("vehicles").cast(DataType::Float64).gt_eq(
                col("registered").cast(DataType::Float64) * lit(d.batch_min_share) - lit(1e-9),
            ),
        ));
    let df = history::collect(REPORT, q)?;
    findings(&df, |c, i| {
        let model = c.required("model", c.str("model")?.get(i))?;
        let model = ModelId::new(model).map_err(|e| ReportError::Corrupt {
            table: "vehicles",
            what: e.to_string(),
        })?;
        let fleets = c.required("fleets", c.u32("fleets")?.get(i))?;
        let fleet = match c.str("fleet")?.get(i) {
            Some(f) if fleets == 1 => Some(FleetId::new(f).map_err(|e| ReportError::Corrupt {
                table: "faults",
                what: e.to_string(),
            })?),
            _ => None,
        };
        let vehicles = c.required("vehicles", c.u32("vehicles")?.get(i))?;
        Ok((
            RecurringKind::BatchDefect,
            fleet,
            None,
            Some(model),
            vehicles,
        ))
    })
}

type Identity = (
    RecurringKind,
    Option<FleetId>,
    Option<VehicleId>,
    Option<ModelId>,
    u32,
);

/// Rows of an aggregate with `spn, fmi, episodes, first, last`; `identity`
/// gives the rest of row `i`.
fn findings(
    df: &DataFrame,
    identity: impl Fn(&Columns<'_>, usize) -> Result<Identity>,
) -> Result<Vec<RecurringRow>> {
    let c = Columns {
        table: "faults",
        df,
    };
    let (spn, fmi) = (c.u32("spn")?, c.u32("fmi")?);
    let episodes = c.u32("episodes")?;
    let (first, last) = (c.i64("first")?, c.i64("last")?);
    let mut rows = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let (kind, fleet, vehicle, model, vehicles) = identity(&c, i)?;
        let (spn, fmi) = code(&c, spn.get(i), fmi.get(i))?;
        rows.push(RecurringRow {
            kind,
            fleet,
            vehicle,
            model,
            spn,
            fmi,
            episodes: c.required("episodes", episodes.get(i))?,
            vehicles,
            first_seen: Timestamp::from_micros(c.required("first", first.get(i))?),
            last_seen: Timestamp::from_micros(c.required("last", last.get(i))?),
        });
    }
    Ok(rows)
}
