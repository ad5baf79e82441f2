//! `report parts --reorder` (C11): per (part, depot) the stock, open
//! orders, the forecast's weekly demand, and the reorder point, order
//! quantity and order-by date of [`crate::parts::reorder`].
//!
//! The weekly demand is the mean of the parts forecast's weekly totals
//! ([`super::parts`], per depot, over `parts_weeks` or `--weeks`); the
//! order-by date walks the same weekly totals. Rows: every (part, depot)
//! with forecast demand, stock movements or open orders, for parts in the
//! catalogue (a part the catalogue does not list has no lead time).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Serialize, Serializer};

use super::due::{self, TaskDue};
use super::output::{Row, opt_date};
use super::parts::parts_demand_of;
use super::{Context, Result, round_to};
use crate::catalog::PartId;
use crate::parts::Balance;
use crate::parts::reorder::{ReorderInput, plan};
use crate::registry::Depot;
use crate::store::Snapshot;

fn depot_text<S: Serializer>(d: &Depot, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(d.as_str())
}

/// One row of `report parts --reorder`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReorderRow {
    pub part: PartId,
    #[serde(serialize_with = "depot_text")]
    pub depot: Depot,
    pub on_hand: i64,
    pub on_order: i64,
    pub weekly_demand: f64,
    pub lead_time_days: u32,
    pub safety_stock_weeks: f64,
    pub reorder_point: f64,
    pub order_qty: u64,
    #[serde(serialize_with = "opt_date")]
    pub order_by: Option<NaiveDate>,
}

impl Row for ReorderRow {
    const FIELDS: &'static [&'static str] = &[
        "part",
        "depot",
        "on_hand",
        "on_order",
        "weekly_demand",
        "lead_time_days",
        "safety_stock_weeks",
        "reorder_point",
        "order_qty",
        "order_by",
    ];
}

/// The reorder rows against `balances` (the ledger's stock and open
/// orders), by part then depot.
pub fn reorder(
    store: &Snapshot,
    ctx: &Context<'_>,
    balances: &[Balance],
    weeks: Option<u32>,
) -> Result<Vec<ReorderRow>> {
    reorder_of(store, ctx, &due::assess(store, ctx)?, balances, weeks)
}

/// [`reorder`] with the tasks already judged.
pub(crate) fn reorder_of(
    store: &Snapshot,
    ctx: &Context<'_>,
    tasks: &[TaskDue<'_>],
    balances: &[Balance],
    weeks: Option<u32>,
) -> Result<Vec<ReorderRow>> {
    let forecast = parts_demand_of(store, ctx, tasks, weeks, true)?;
    let horizon = weeks.unwrap_or(ctx.detect.parts_weeks).max(1) as usize;
    Ok(rows_of(
        ctx,
        forecast
            .into_iter()
            .filter_map(|r| Some((r.part, r.depot?, r.week, r.total_qty))),
        balances,
        horizon,
    ))
}

/// Per (part, depot): its weekly totals (in week order), stock and orders.
#[derive(Default)]
struct Pair {
    weekly: Vec<f64>,
    on_hand: i64,
    on_order: i64,
}

/// The rows of `weekly` demand (part, depot, week, total) and `balances`
/// over a forecast of `horizon` weeks.
pub(crate) fn rows_of(
    ctx: &Context<'_>,
    weekly: impl Iterator<Item = (PartId, Depot, NaiveDate, f64)>,
    balances: &[Balance],
    horizon: usize,
) -> Vec<ReorderRow> {
    let mut pairs: BTreeMap<(PartId, Depot), Pair> = BTreeMap::new();
    for (part, depot, _, total) in weekly {
        pairs.entry((part, depot)).or_default().weekly.push(total);
    }
    for b in balances {
        let p = pairs.entry((b.part.clone(), b.depot.clone())).or_default();
        p.on_hand = b.on_hand;
        p.on_order = b.on_order;
    }
    let as_of = ctx.as_of_date();
    let mut out = Vec::with_capacity(pairs.len());
    for ((part, depot), mut pair) in pairs {
        let Some(entry) = ctx.catalog.part(&part) else {
            continue;
        };
        // A pair with no demand has no weeks: zero demand over the horizon.
        pair.weekly.resize(horizon, 0.0);
        let p = plan(&ReorderInput {
            on_hand: pair.on_hand,
            on_order: pair.on_order,
            weekly: &pair.weekly,
            lead_time_days: entry.lead_time_days,
            safety_stock_weeks: entry.safety_stock_weeks,
            as_of,
        });
        out.push(ReorderRow {
            part,
            depot,
            on_hand: pair.on_hand,
            on_order: pair.on_order,
            weekly_demand: round_to(p.weekly_demand, 2),
            lead_time_days: entry.lead_time_days,
            safety_stock_weeks: entry.safety_stock_weeks,
            reorder_point: round_to(p.reorder_point, 2),
            order_qty: p.order_qty,
            order_by: p.order_by,
        });
    }
    out
}
