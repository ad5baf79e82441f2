//! `report due`: the maintenance status of every registered vehicle's
//! tasks (contract C5), the meter that decides it and when it falls due by
//! forecast; and, for the customer's invoice, the next service of each task
//! by date and by meter.

use std::collections::HashMap;

use chrono::NaiveDate;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use serde::{Serialize, Serializer};

use super::duty::{self, DutyHours};
use super::output::{Row, opt_date};
use super::status::{
    IntervalDue, LastService, MeterValues, Status, date_of_day_number, deciding, task_intervals,
};
use super::usage::{self, VehicleMeters};
use super::{Context, Result, round_to};
use crate::catalog::{IntervalMeter, MaintenanceTask, ModelId, TaskId, TruckModel};
use crate::registry::{ServiceTask, Vehicle};
use crate::store::Snapshot;

/// A meter reading or, for day intervals, a date.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MeterValue {
    Number(f64),
    Date(NaiveDate),
}

impl MeterValue {
    /// `v` of `meter` as printed: day numbers become dates.
    fn of(meter: IntervalMeter, v: f64) -> Option<Self> {
        match meter {
            IntervalMeter::Days => date_of_day_number(v).map(Self::Date),
            _ => Some(Self::Number(round_to(v, 3))),
        }
    }
}

impl Serialize for MeterValue {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => s.serialize_f64(*n),
            Self::Date(d) => s.collect_str(d),
        }
    }
}

/// One row of `report due` (C6): fields and order as the contract names them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DueRow {
    pub fleet: FleetId,
    pub vehicle: VehicleId,
    pub model: ModelId,
    pub task: TaskId,
    pub status: Status,
    pub meter: IntervalMeter,
    pub current: MeterValue,
    pub due_at: MeterValue,
    /// In the meter's unit; whole days for `days`.
    pub remaining: f64,
    /// `None` when the vehicle's usage of the meter is not known.
    pub usage_per_day: Option<f64>,
    #[serde(serialize_with = "opt_date")]
    pub forecast_due_on: Option<NaiveDate>,
}

impl Row for DueRow {
    const FIELDS: &'static [&'static str] = &[
        "fleet",
        "vehicle",
        "model",
        "task",
        "status",
        "meter",
        "current",
        "due_at",
        "remaining",
        "usage_per_day",
        "forecast_due_on",
    ];
}

/// The next service of one task as a dealer prints it: on this date or at
/// these meter readings, whichever comes first (`report due --next`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextServiceRow {
    pub fleet: FleetId,
    pub vehicle: VehicleId,
    pub model: ModelId,
    pub task: TaskId,
    /// By time: the due date of the task's day interval.
    #[serde(serialize_with = "opt_date")]
    pub due_on: Option<NaiveDate>,
    /// By meter: the reading each meter interval falls due at.
    pub engine_hours: Option<f64>,
    pub pto_hours: Option<f64>,
    pub odometer_km: Option<f64>,
    /// The earliest of the dates the intervals fall due by forecast.
    #[serde(serialize_with = "opt_date")]
    pub expected_on: Option<NaiveDate>,
}

impl Row for NextServiceRow {
    const FIELDS: &'static [&'static str] = &[
        "fleet",
        "vehicle",
        "model",
        "task",
        "due_on",
        "engine_hours",
        "pto_hours",
        "odometer_km",
        "expected_on",
    ];
}

/// One task of one registered vehicle, judged at the as-of time.
#[derive(Debug, Clone)]
pub struct TaskDue<'a> {
    pub vehicle: &'a Vehicle,
    pub model: &'a TruckModel,
    pub task: &'a MaintenanceTask,
    /// The intervals that could be judged (meters the vehicle never sent
    /// are left out).
    pub intervals: Vec<IntervalDue>,
}

impl TaskDue<'_> {
    /// The first date the task falls due by forecast, over all intervals
    /// (whichever comes first); `None` when no interval can be forecast.
    pub fn expected_on(&self, as_of: NaiveDate) -> Option<NaiveDate> {
        self.intervals
            .iter()
            .filter_map(|i| i.forecast_date(as_of))
            .min()
    }
}

/// What the store says of each vehicle's meters, for [`assess_with`]:
/// current values and usage per day, and the hours of hard duty (C12).
#[derive(Debug, Clone, Default)]
pub(crate) struct Meters {
    pub(crate) vehicles: HashMap<usage::VehicleKey, VehicleMeters>,
    pub(crate) duty: DutyHours,
}

/// Every task of every registered vehicle whose model is in the catalogue.
pub fn assess<'a>(store: &Snapshot, ctx: &Context<'a>) -> Result<Vec<TaskDue<'a>>> {
    Ok(assess_with(ctx, &read_meters(store, ctx)?))
}

/// The meters [`assess`] judges tasks on. It reads the registry's vehicles,
/// not its services, so it can run while those are being read.
pub(crate) fn read_meters(store: &Snapshot, ctx: &Context<'_>) -> Result<Meters> {
    Ok(Meters {
        vehicles: usage::vehicle_meters(store, ctx, "due")?,
        duty: duty::read(store, ctx, "due")?,
    })
}

/// [`assess`] on meters already read.
pub(crate) fn assess_with<'a>(ctx: &Context<'a>, meters: &Meters) -> Vec<TaskDue<'a>> {
    let as_of = ctx.as_of_date();
    let last = last_services(ctx);
    let mut out = Vec::new();
    for vehicle in &ctx.registry.vehicles {
        let Some(model) = ctx.catalog.model(&vehicle.model) else {
            tracing::warn!(vehicle = %vehicle.id, model = %vehicle.model, "Skipped a vehicle whose model is not in the catalogue.");
            continue;
        };
        let key = (vehicle.fleet.clone(), vehicle.id.clone());
        let m = meters.vehicles.get(&key).copied().unwrap_or_default();
        for task in &model.maintenance {
            let last = last.get(&(&vehicle.id, &task.id));
            let mut intervals = task_intervals(
                task,
                last,
                vehicle.commissioned_on,
                as_of,
                &m.current,
                &m.per_day,
            );
            if let Some(d) = &task.duty {
                let since = last.map_or(vehicle.commissioned_on, |l| l.date);
                if let Some(share) = meters.duty.share_since(&key, d, since) {
                    let extra = duty::extra(d, share);
                    intervals = intervals.into_iter().map(|i| i.with_duty(extra)).collect();
                }
            }
            out.push(TaskDue {
                vehicle,
                model,
                task,
                intervals,
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.vehicle.fleet, &a.vehicle.id, &a.task.id).cmp(&(
            &b.vehicle.fleet,
            &b.vehicle.id,
            &b.task.id,
        ))
    });
    out
}

/// The last service of each (vehicle, task) up to the as-of time.
fn last_services<'a>(ctx: &Context<'a>) -> HashMap<(&'a VehicleId, &'a TaskId), LastService> {
    let mut last: HashMap<(&VehicleId, &TaskId), (chrono::DateTime<chrono::Utc>, LastService)> =
        HashMap::new();
    for s in &ctx.registry.services {
        let ServiceTask::Maintenance(task) = &s.task else {
            continue;
        };
        if s.performed_at > ctx.as_of {
            continue;
        }
        let mut meters = MeterValues::default();
        for (m, v) in [
            (IntervalMeter::EngineHours, s.engine_hours),
            (IntervalMeter::PtoHours, s.pto_hours),
            (IntervalMeter::OdometerKm, s.odometer_km),
        ] {
            if let Some(v) = v {
                meters.set(m, v);
            }
        }
        let entry = LastService {
            date: s.performed_at.date_naive(),
            meters,
        };
        last.entry((&s.vehicle, task))
            .and_modify(|(at, l)| {
                if s.performed_at > *at {
                    (*at, *l) = (s.performed_at, entry);
                }
            })
            .or_insert((s.performed_at, entry));
    }
    last.into_iter().map(|(k, (_, l))| (k, l)).collect()
}

/// The C6 rows: `due_soon` and `overdue` tasks, `ok` too with `all`.
/// A task none of whose intervals can be judged (a meter-only task of a
/// vehicle that never sent that meter) has no row.
pub fn maintenance_due(store: &Snapshot, ctx: &Context<'_>, all: bool) -> Result<Vec<DueRow>> {
    Ok(due_rows(&assess(store, ctx)?, ctx.as_of_date(), all))
}

/// [`maintenance_due`] of tasks already judged.
pub fn due_rows(tasks: &[TaskDue<'_>], as_of: NaiveDate, all: bool) -> Vec<DueRow> {
    tasks
        .iter()
        .filter_map(|t| {
            let d = deciding(&t.intervals)?;
            if d.status == Status::Ok && !all {
                return None;
            }
            Some(DueRow {
                fleet: t.vehicle.fleet.clone(),
                vehicle: t.vehicle.id.clone(),
                model: t.model.id.clone(),
                task: t.task.id.clone(),
                status: d.status,
                meter: d.meter,
                current: MeterValue::of(d.meter, d.current)?,
                due_at: MeterValue::of(d.meter, d.due_at)?,
                remaining: round_to(d.remaining, 3),
                usage_per_day: d.per_day.map(|u| round_to(u, 3)),
                forecast_due_on: d.forecast_date(as_of),
            })
        })
        .collect()
}

/// A meter interval of a task with hard duty (C12), as the vehicle archive
/// shows it: the meter's reading beside the duty-adjusted meter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DutyMeterRow {
    pub task: TaskId,
    pub meter: IntervalMeter,
    pub signal: String,
    pub above: f64,
    pub factor: f64,
    /// The reading.
    pub raw: f64,
    /// What counts toward the interval.
    pub adjusted: f64,
}

/// The meter intervals of the tasks with duty among `tasks`.
pub fn duty_meter_rows(tasks: &[TaskDue<'_>]) -> Vec<DutyMeterRow> {
    let mut rows = Vec::new();
    for t in tasks {
        let Some(duty) = &t.task.duty else {
            continue;
        };
        for i in t
            .intervals
            .iter()
            .filter(|i| i.meter != IntervalMeter::Days)
        {
            rows.push(DutyMeterRow {
                task: t.task.id.clone(),
                meter: i.meter,
                signal: duty.signal.clone(),
                above: duty.above,
                factor: duty.factor,
                raw: round_to(i.raw_current, 3),
                adjusted: round_to(i.current, 3),
            });
        }
    }
    rows
}

/// The next service of every task of every registered vehicle.
pub fn next_services(store: &Snapshot, ctx: &Context<'_>) -> Result<Vec<NextServiceRow>> {
    Ok(next_service_rows(&assess(store, ctx)?, ctx.as_of_date()))
}

/// [`next_services`] of tasks already judged.
pub fn next_service_rows(tasks: &[TaskDue<'_>], as_of: NaiveDate) -> Vec<NextServiceRow> {
    tasks
        .iter()
        .map(|t| {
            // Readings a dealer can read off the truck: with hard duty,
            // where the raw meter stands when the adjusted one falls due.
            let at = |m: IntervalMeter| {
                t.intervals
                    .iter()
                    .find(|i| i.meter == m)
                    .map(IntervalDue::due_at_reading)
            };
            NextServiceRow {
                fleet: t.vehicle.fleet.clone(),
                vehicle: t.vehicle.id.clone(),
                model: t.model.id.clone(),
                task: t.task.id.clone(),
                due_on: at(IntervalMeter::Days).and_then(date_of_day_number),
                engine_hours: at(IntervalMeter::EngineHours).map(|v| round_to(v, 3)),
                pto_hours: at(IntervalMeter::PtoHours).map(|v| round_to(v, 3)),
                odometer_km: at(IntervalMeter::OdometerKm).map(|v| round_to(v, 3)),
                expected_on: t.expected_on(as_of),
            }
        })
        .collect()
}
