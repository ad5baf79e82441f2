//! Service visits (C8, C10): a truck comes in once, not once per task.
//! Maintenance due for one vehicle is one ticket, key [`VISIT_KEY`], that
//! lists every task due soon or overdue and the tasks falling due within
//! the pull-in window; tasks join it while it is open. Closing it records
//! the tasks done — all by default, or the ones the close names — each a
//! service record of its own, so each task's interval restarts.

use chrono::{DateTime, Utc};
use sqlx::{Any, AnyConnection, Executor, Row};

use super::MeterReadings;
use super::error::{Result, TicketError};
use super::store;
use super::types::{Ticket, TicketId, VisitReason, VisitTask};
use crate::catalog::TaskId;
use crate::registry::{self, ServiceRecord, ServiceSource, ServiceTask};

/// The key of a service visit: one open per vehicle.
pub const VISIT_KEY: &str = "service";

/// Adds `tasks` to visit `id`: a task not yet on it joins (with a line in
/// the history when `note` is set, i.e. the visit was open before), one on
/// it takes the new reason (due soon becoming overdue).
pub(super) async fn add_tasks(
    conn: &mut AnyConnection,
    id: TicketId,
    tasks: &[(TaskId, VisitReason)],
    at: DateTime<Utc>,
    note: bool,
) -> Result<()> {
    let at_text = store::time_text(at);
    let mut joined = Vec::new();
    for (task, reason) in tasks {
        let added = sqlx::query(
            "INSERT INTO visit_tasks (ticket_id, task, status, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (ticket_id, task) DO NOTHING",
        )
        .bind(id.0)
        .bind(task.as_str())
        .bind(reason.as_str())
        .bind(&at_text)
        .execute(&mut *conn)
        .await?;
        if added.rows_affected() == 1 {
            joined.push(format!("{task} ({})", reason.as_str().replace('_', " ")));
        } else {
            sqlx::query(
                "UPDATE visit_tasks SET status = $1 WHERE ticket_id = $2 AND task = $3 \
                 AND status <> $4",
            )
            .bind(reason.as_str())
            .bind(id.0)
            .bind(task.as_str())
            .bind(reason.as_str())
            .execute(&mut *conn)
            .await?;
        }
    }
    if note && !joined.is_empty() {
        let text = format!("joined the visit: {}", joined.join(", "));
        store::add_event(
            conn,
            id,
            at,
            store::SYSTEM_ACTOR,
            "note",
            None,
            None,
            Some(&text),
        )
        .await?;
    }
    Ok(())
}

/// The tasks of visit `id`, in task order (none for other tickets).
pub(super) async fn tasks<'e, E>(e: E, id: TicketId) -> Result<Vec<VisitTask>>
where
    E: Executor<'e, Database = Any>,
{
    let rows = sqlx::query(
        "SELECT task, status, added_at, done FROM visit_tasks WHERE ticket_id = $1 ORDER BY task",
    )
    .bind(id.0)
    .fetch_all(e)
    .await?;
    rows.iter()
        .map(|row| {
            let task: String = row.try_get("task")?;
            let status: String = row.try_get("status")?;
            let added: String = row.try_get("added_at")?;
            let done: Option<i64> = row.try_get("done")?;
            Ok(VisitTask {
                task: TaskId::new(task.as_str())
                    .map_err(|e| store::corrupt("visit_tasks", "task", &task, e))?,
                status: status
                    .parse()
                    .map_err(|e| store::corrupt("visit_tasks", "status", &status, e))?,
                added_at: store::parse_time("visit_tasks", "added_at", &added)?,
                done: done.map(|d| d != 0),
            })
        })
        .collect()
}

/// The tasks a close says were done: all of the visit's when `named` is
/// None, else the named ones, each of which must be on the visit.
pub(super) fn done_tasks(on_visit: &[VisitTask], named: Option<&[String]>) -> Result<Vec<TaskId>> {
    let Some(named) = named else {
        return Ok(on_visit.iter().map(|t| t.task.clone()).collect());
    };
    let listed = || {
        let names: Vec<&str> = on_visit.iter().map(|t| t.task.as_str()).collect();
        names.join(", ")
    };
    let mut done: Vec<TaskId> = Vec::new();
    for name in named {
        let Some(t) = on_visit.iter().find(|t| t.task.as_str() == name.trim()) else {
            return Err(TicketError::InvalidInput {
                field: "tasks_done",
                value: name.clone(),
                reason: format!("the visit lists {}", listed()),
            });
        };
        if !done.contains(&t.task) {
            done.push(t.task.clone());
        }
    }
    Ok(done)
}

/// Closing visit `ticket`: a service record per task done (at the close
/// time, with the vehicle's meters then), the tasks marked done or left.
/// Returns what the history says.
pub(super) async fn record(
    conn: &mut AnyConnection,
    ticket: &Ticket,
    named: Option<&[String]>,
    at: DateTime<Utc>,
    readings: MeterReadings,
) -> Result<String> {
    let on_visit = tasks(&mut *conn, ticket.id).await?;
    let done = done_tasks(&on_visit, named)?;
    let Some(vehicle) = &ticket.vehicle else {
        return Ok("no service recorded: the visit names no vehicle".to_owned());
    };
    if registry::vehicle_in(&mut *conn, vehicle).await?.is_none() {
        return Ok(format!(
            "no service recorded: vehicle {vehicle} is not in the registry"
        ));
    }
    for task in &done {
        let record = ServiceRecord {
            vehicle: vehicle.clone(),
            task: ServiceTask::Maintenance(task.clone()),
            performed_at: at,
            engine_hours: readings.engine_hours,
            pto_hours: readings.pto_hours,
            odometer_km: readings.odometer_km,
            source: ServiceSource::Ticket,
        };
        registry::record_service_in(&mut *conn, &record).await?;
    }
    for t in &on_visit {
        sqlx::query("UPDATE visit_tasks SET done = $1 WHERE ticket_id = $2 AND task = $3")
            .bind(i64::from(done.contains(&t.task)))
            .bind(ticket.id.0)
            .bind(t.task.as_str())
            .execute(&mut *conn)
            .await?;
    }
    let names: Vec<&str> = done.iter().map(TaskId::as_str).collect();
    let left: Vec<&str> = on_visit
        .iter()
        .filter(|t| !done.contains(&t.task))
        .map(|t| t.task.as_str())
        .collect();
    let mut said = if names.is_empty() {
        "no task done".to_owned()
    } else {
        format!("services recorded: {}", names.join(", "))
    };
    if !left.is_empty() {
        said.push_str(&format!("; left for a later visit: {}", left.join(", ")));
    }
    Ok(said)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> VisitTask {
        VisitTask {
            task: TaskId::new(id).unwrap(),
            status: VisitReason::DueSoon,
            added_at: DateTime::<Utc>::MIN_UTC,
            done: None,
        }
    }

    #[test]
    fn a_close_does_all_tasks_or_the_named_ones() {
        let visit = [
            task("engine-oil"),
            task("hydraulic-filter"),
            task("brushes"),
        ];
        let all = done_tasks(&visit, None).unwrap();
        assert_eq!(all.len(), 3);
        let named = [
            "brushes".to_owned(),
            " engine-oil".to_owned(),
            "brushes".to_owned(),
        ];
        let some = done_tasks(&visit, Some(&named)).unwrap();
        let some: Vec<&str> = some.iter().map(TaskId::as_str).collect();
        assert_eq!(some, ["brushes", "engine-oil"]);
        let e = done_tasks(&visit, Some(&["tyres".to_owned()]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "tasks_done \"tyres\" is not valid: the visit lists engine-oil, hydraulic-filter, brushes"
        );
        assert!(done_tasks(&visit, Some(&[])).unwrap().is_empty());
    }
}
