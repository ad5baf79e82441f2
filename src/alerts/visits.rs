//! Maintenance findings as service visits (C10): a truck comes in once,
//! not once per task. A vehicle with any task due soon or overdue gets one
//! visit request listing those tasks and every other task that falls due
//! within the pull-in window: within `visits.pull_in_days` by the vehicle's
//! usage, or within `visits.pull_in_share` of the task's interval.
//!
//! Priority: P2 when a task is overdue, else P3 (as per-task maintenance
//! tickets had it).

use chrono::{DateTime, Utc};

use crate::config::VisitsConfig;
use crate::report::due::TaskDue;
use crate::report::status::{IntervalDue, Status, deciding};
use crate::tickets::{NewAlert, Priority, TicketKind, VISIT_KEY, VisitReason};

/// One vehicle's visit: the ticket request and the tasks on it.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitRequest {
    pub alert: NewAlert,
    pub tasks: Vec<(crate::catalog::TaskId, VisitReason)>,
}

/// An interval falls within the pull-in window.
fn pulled_in(i: &IntervalDue, rules: &VisitsConfig) -> bool {
    let by_share = i.remaining <= rules.pull_in_share * i.every;
    let by_days = i.forecast_days().is_some_and(|d| d <= rules.pull_in_days);
    by_share || by_days
}

/// The visit of each vehicle among `tasks` (as `report::due::assess`
/// gives them, grouped by vehicle) that has a task due soon or overdue.
pub fn visits(tasks: &[TaskDue<'_>], rules: &VisitsConfig, at: DateTime<Utc>) -> Vec<VisitRequest> {
    let mut out = Vec::new();
    let mut rest = tasks;
    while let Some(first) = rest.first() {
        let n = rest
            .iter()
            .take_while(|t| {
                t.vehicle.id == first.vehicle.id && t.vehicle.fleet == first.vehicle.fleet
            })
            .count();
        let (vehicle_tasks, tail) = rest.split_at(n);
        rest = tail;
        if let Some(v) = visit(vehicle_tasks, rules, at) {
            out.push(v);
        }
    }
    out
}

/// One vehicle's visit, if any of its tasks is due.
fn visit(tasks: &[TaskDue<'_>], rules: &VisitsConfig, at: DateTime<Utc>) -> Option<VisitRequest> {
    let mut on: Vec<(&TaskDue<'_>, VisitReason, String)> = Vec::new();
    for t in tasks {
        let Some(d) = deciding(&t.intervals) else {
            continue;
        };
        let reason = match d.status {
            Status::Overdue => VisitReason::Overdue,
            Status::DueSoon => VisitReason::DueSoon,
            Status::Ok if t.intervals.iter().any(|i| pulled_in(i, rules)) => VisitReason::PullIn,
            Status::Ok => continue,
        };
        let line = format!(
            "{} ({}): {} by {}, {:.1} remaining",
            t.task.name,
            t.task.id,
            reason.as_str().replace('_', " "),
            d.meter,
            d.remaining
        );
        on.push((t, reason, line));
    }
    if !on
        .iter()
        .any(|(_, r, _)| matches!(r, VisitReason::DueSoon | VisitReason::Overdue))
    {
        return None;
    }
    let first = on.first()?.0;
    let overdue = on.iter().any(|(_, r, _)| *r == VisitReason::Overdue);
    let lines: Vec<&str> = on.iter().map(|(_, _, l)| l.as_str()).collect();
    let alert = NewAlert {
        kind: TicketKind::Maintenance,
        fleet: Some(first.vehicle.fleet.clone()),
        vehicle: Some(first.vehicle.id.clone()),
        model: Some(first.model.id.clone()),
        key: VISIT_KEY.to_owned(),
        priority: if overdue { Priority::P2 } else { Priority::P3 },
        title: format!(
            "{}: service visit, {} task{}{}",
            first.vehicle.id,
            on.len(),
            if on.len() == 1 { "" } else { "s" },
            if overdue { ", overdue" } else { "" }
        ),
        details: format!("{}.", lines.join("; ")),
        at,
    };
    let tasks = on
        .into_iter()
        .map(|(t, r, _)| (t.task.id.clone(), r))
        .collect();
    Some(VisitRequest { alert, tasks })
}
