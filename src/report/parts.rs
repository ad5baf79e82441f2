//! `report parts`: weekly spare-part demand over the next weeks, against
//! stock.
//!
//! - Planned: every maintenance task falls due on its forecast date (an
//!   overdue task in the first week) and again every interval after that
//!   at the vehicle's current pace; each service takes the task's parts.
//! - Corrective: each model's observed failure rate per (SPN, FMI) — episode
//!   starts over the last `failure_rate_days` per registered vehicle and
//!   day — times the model's vehicles, times the catalogue's parts for that
//!   fault. These are expected values, hence fractional.
//!
//! Weeks are the 7-day periods from the as-of date on (the first starts on
//! it). `on_hand` is the stock expected at the start of the week (the parts
//! ledger's stock less the demand of the weeks before) and `shortfall` the
//! part of the week's demand it cannot cover; both are `None` when the
//! ledger has no movement at all (or, per depot, for a depot without any).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{NaiveDate, TimeDelta};
use fleetcare_ingest::j1939::{Fmi, Spn};
use polars::prelude::*;
use serde::{Serialize, Serializer};

use super::due::{self, TaskDue};
use super::history::{self, Columns};
use super::output::{Row, date};
use super::{Context, Result, US_PER_DAY, round_to};
use crate::catalog::{IntervalMeter, PartId};
use crate::registry::Depot;
use crate::store::Snapshot;

const REPORT: &str = "parts";

fn opt_depot<S: Serializer>(d: &Option<Depot>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(d.as_str()),
        None => s.serialize_none(),
    }
}

/// One row of `report parts` (C6); `depot` only with `--by-depot`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartsRow {
    pub part: PartId,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "opt_depot")]
    pub depot: Option<Depot>,
    /// The first day of the 7-day period.
    #[serde(serialize_with = "date")]
    pub week: NaiveDate,
    pub planned_qty: f64,
    pub corrective_qty: f64,
    pub total_qty: f64,
    pub on_hand: Option<f64>,
    pub shortfall: Option<f64>,
}

impl Row for PartsRow {
    const FIELDS: &'static [&'static str] = &[
        "part",
        "week",
        "planned_qty",
        "corrective_qty",
        "total_qty",
        "on_hand",
        "shortfall",
    ];
}

/// Planned and corrective quantity of one part (at one depot) per week.
type Demand = BTreeMap<(PartId, Option<Depot>), Vec<(f64, f64)>>;

/// Days between two services of a task at the vehicle's pace: the
/// shortest interval in days (meter intervals at their usage per day).
fn period_days(t: &TaskDue<'_>) -> Option<f64> {
    t.intervals
        .iter()
        .filter_map(|i| match i.meter {
            IntervalMeter::Days => Some(i.every),
            _ => i.per_day.filter(|u| *u > 0.0).map(|u| i.every / u),
        })
        .filter(|d| d.is_finite() && *d >= 1.0)
        .reduce(f64::min)
}

/// The weekly demand and stock of every part with demand in the next
/// `weeks` weeks (the configured `parts_weeks` if `None`), per depot with
/// `by_depot`. Sorted by part (and depot), then week.
pub fn parts_demand(
    store: &Snapshot,
    ctx: &Context<'_>,
    weeks: Option<u32>,
    by_depot: bool,
) -> Result<Vec<PartsRow>> {
    parts_demand_of(store, ctx, &due::assess(store, ctx)?, weeks, by_depot)
}

/// [`parts_demand`] with the tasks already judged.
pub(crate) fn parts_demand_of(
    store: &Snapshot,
    ctx: &Context<'_>,
    tasks: &[TaskDue<'_>],
    weeks: Option<u32>,
    by_depot: bool,
) -> Result<Vec<PartsRow>> {
    let weeks = weeks.unwrap_or(ctx.detect.parts_weeks).max(1) as usize;
    let mut demand: Demand = BTreeMap::new();
    let key = |part: &PartId, depot: &Depot| (part.clone(), by_depot.then(|| depot.clone()));
    let empty = || vec![(0.0, 0.0); weeks];
    planned(ctx, tasks, weeks, |part, depot, week, qty| {
        let v = demand.entry(key(part, depot)).or_insert_with(empty);
        if let Some(w) = v.get_mut(week) {
            w.0 += qty;
        }
    });
    corrective(store, ctx, |part, depot, per_week| {
        let v = demand.entry(key(part, depot)).or_insert_with(empty);
        for w in v {
            w.1 += per_week;
        }
    })?;
    Ok(rows(ctx, demand, by_depot))
}

/// Calls `add(part, depot, week, qty)` for every service forecast.
fn planned(
    ctx: &Context<'_>,
    tasks: &[TaskDue<'_>],
    weeks: usize,
    mut add: impl FnMut(&PartId, &Depot, usize, f64),
) {
    let as_of = ctx.as_of_date();
    let horizon = 7.0 * weeks as f64;
    for t in tasks.iter().filter(|t| !t.task.parts.is_empty()) {
        let Some(first) = t.expected_on(as_of) else {
            continue;
        };
        let mut day = (first - as_of).num_days().max(0) as f64;
        let period = period_days(t);
        while day < horizon {
            let week = (day / 7.0).floor() as usize;
            for p in &t.task.parts {
                add(&p.part, &t.vehicle.depot, week, p.qty);
            }
            match period {
                Some(p) => day += p,
                None => break,
            }
        }
    }
}

/// Calls `add(part, depot, qty per week)` for the expected failures of
/// each model's vehicles at each depot.
fn corrective(
    store: &Snapshot,
    ctx: &Context<'_>,
    mut add: impl FnMut(&PartId, &Depot, f64),
) -> Result<()> {
    let days = ctx.detect.failure_rate_days.max(1);
    let as_of = ctx.as_of_us();
    let from = as_of - i64::from(days) * US_PER_DAY;
    let Some(starts) = history::episode_starts(store, Some(from), as_of)? else {
        return Ok(());
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
        .group_by([col("model"), col("spn"), col("fmi")])
        .agg([len().alias("episodes")]);
    let df = history::collect(REPORT, q)?;
    let c = Columns {
        table: "faults",
        df: &df,
    };
    let (model, spn, fmi, episodes) = (
        c.str("model")?,
        c.u32("spn")?,
        c.u32("fmi")?,
        c.u32("episodes")?,
    );
    // Registered vehicles per model, and per model and depot.
    let mut fleet_size: HashMap<&str, f64> = HashMap::new();
    let mut at_depot: HashMap<&str, BTreeMap<&Depot, f64>> = HashMap::new();
    for v in &ctx.registry.vehicles {
        *fleet_size.entry(v.model.as_str()).or_default() += 1.0;
        *at_depot
            .entry(v.model.as_str())
            .or_default()
            .entry(&v.depot)
            .or_default() += 1.0;
    }
    for i in 0..df.height() {
        let (Some(m), Some(s), Some(f), Some(n)) =
            (model.get(i), spn.get(i), fmi.get(i), episodes.get(i))
        else {
            continue;
        };
        let (Some(s), Some(f)) = (Spn::new(s), u8::try_from(f).ok().and_then(Fmi::new)) else {
            continue;
        };
        let Some(entry) = ctx.catalog.fault(m, s, f) else {
            continue;
        };
        let Some(size) = fleet_size.get(m).copied().filter(|n| *n > 0.0) else {
            continue;
        };
        // Episodes per vehicle and week.
        let rate = f64::from(n) / size / f64::from(days) * 7.0;
        for (depot, vehicles) in at_depot.get(m).into_iter().flatten() {
            for p in &entry.parts {
                add(&p.part, depot, rate * vehicles * p.qty);
            }
        }
    }
    Ok(())
}

/// Rows with stock applied week by week.
fn rows(ctx: &Context<'_>, demand: Demand, by_depot: bool) -> Vec<PartsRow> {
    let stock = &ctx.registry.stock;
    let depots: BTreeSet<&Depot> = stock.iter().map(|s| &s.depot).collect();
    let mut on_hand: HashMap<(&PartId, Option<&Depot>), f64> = HashMap::new();
    for s in stock {
        *on_hand
            .entry((&s.part, by_depot.then_some(&s.depot)))
            .or_default() += s.on_hand as f64;
    }
    let as_of = ctx.as_of_date();
    let mut out = Vec::new();
    for ((part, depot), weeks) in &demand {
        let known = match depot {
            Some(d) => depots.contains(d),
            None => !stock.is_empty(),
        };
        let mut left = known.then(|| on_hand.get(&(part, depot.as_ref())).copied().unwrap_or(0.0));
        for (k, (planned, corrective)) in weeks.iter().enumerate() {
            let total = planned + corrective;
            let shortfall = left.map(|l| (total - l).max(0.0));
            out.push(PartsRow {
                part: part.clone(),
                depot: depot.clone(),
                week: as_of + TimeDelta::weeks(k as i64),
                planned_qty: round_to(*planned, 2),
                corrective_qty: round_to(*corrective, 2),
                total_qty: round_to(total, 2),
                on_hand: left.map(|l| round_to(l, 2)),
                shortfall: shortfall.map(|s| round_to(s, 2)),
            });
            left = left.map(|l| (l - total).max(0.0));
        }
    }
    out
}
