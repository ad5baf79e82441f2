//! Reading and writing registry rows. Each statement is written once for
//! SQLite and PostgreSQL (see [`crate::db`]); values read back are checked
//! into their types, so a hand-edited database is reported, not trusted.

use chrono::{DateTime, NaiveDate, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use sqlx::{Any, Executor};

use super::types::{
    Depot, ServiceHistory, ServiceRecord, ServiceSource, ServiceTask, Vehicle, Vin, date_text,
    time_text,
};
use crate::catalog::ModelId;
use crate::db::{DbError, Result};

type VehicleRow = (String, String, String, Option<String>, String, String);

pub(crate) async fn vehicles<'e, E>(e: E) -> Result<Vec<Vehicle>>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<VehicleRow> = sqlx::query_as(
        "SELECT vehicle_id, fleet_id, model_id, vin, commissioned_on, depot \
         FROM vehicles ORDER BY fleet_id, vehicle_id",
    )
    .fetch_all(e)
    .await?;
    rows.into_iter().map(vehicle_from_row).collect()
}

/// At most `limit` vehicles of `fleets` (`None`: every fleet) after
/// `after` in the order fleet, then id.
pub(crate) async fn vehicles_page<'e, E>(
    e: E,
    fleets: Option<&[FleetId]>,
    after: Option<(&FleetId, &VehicleId)>,
    limit: usize,
) -> Result<Vec<Vehicle>>
where
    E: Executor<'e, Database = Any>,
{
    let mut clauses = Vec::new();
    let mut values: Vec<&str> = Vec::new();
    if let Some(fleets) = fleets {
        if fleets.is_empty() {
            return Ok(Vec::new());
        }
        let first = values.len() + 1;
        values.extend(fleets.iter().map(FleetId::as_str));
        let marks: Vec<String> = (first..=values.len()).map(|n| format!("${n}")).collect();
        clauses.push(format!("fleet_id IN ({})", marks.join(", ")));
    }
    if let Some((fleet, vehicle)) = after {
        values.push(fleet.as_str());
        values.push(vehicle.as_str());
        let (f, v) = (values.len() - 1, values.len());
        clauses.push(format!(
            "(fleet_id > ${f} OR (fleet_id = ${f} AND vehicle_id > ${v}))"
        ));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    // Fixed fragments and numbered placeholders only; every value is bound.
    let sql = format!(
        "SELECT vehicle_id, fleet_id, model_id, vin, commissioned_on, depot FROM vehicles{filter} \
         ORDER BY fleet_id, vehicle_id LIMIT ${}",
        values.len() + 1
    );
    let mut query = sqlx::query_as::<_, VehicleRow>(sqlx::AssertSqlSafe(sql));
    for v in values {
        query = query.bind(v);
    }
    let rows = query
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(e)
        .await?;
    rows.into_iter().map(vehicle_from_row).collect()
}

pub(crate) async fn fleet_vehicles<'e, E>(e: E, fleet: &FleetId) -> Result<Vec<Vehicle>>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<VehicleRow> = sqlx::query_as(
        "SELECT vehicle_id, fleet_id, model_id, vin, commissioned_on, depot \
         FROM vehicles WHERE fleet_id = $1 ORDER BY vehicle_id",
    )
    .bind(fleet.as_str())
    .fetch_all(e)
    .await?;
    rows.into_iter().map(vehicle_from_row).collect()
}

pub(crate) async fn vehicle<'e, E>(e: E, id: &VehicleId) -> Result<Option<Vehicle>>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<VehicleRow> = sqlx::query_as(
        "SELECT vehicle_id, fleet_id, model_id, vin, commissioned_on, depot \
         FROM vehicles WHERE vehicle_id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(e)
    .await?;
    row.map(vehicle_from_row).transpose()
}

/// Inserts `vehicle`, or replaces every field of the one with its id.
pub(crate) async fn upsert_vehicle<'e, E>(e: E, vehicle: &Vehicle) -> Result<()>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO vehicles (vehicle_id, fleet_id, model_id, vin, commissioned_on, depot) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (vehicle_id) DO UPDATE SET \
         fleet_id = excluded.fleet_id, model_id = excluded.model_id, vin = excluded.vin, \
         commissioned_on = excluded.commissioned_on, depot = excluded.depot",
    )
    .bind(vehicle.id.as_str())
    .bind(vehicle.fleet.as_str())
    .bind(vehicle.model.as_str())
    .bind(vehicle.vin.as_ref().map(Vin::as_str))
    .bind(date_text(vehicle.commissioned_on))
    .bind(vehicle.depot.as_str())
    .execute(e)
    .await?;
    Ok(())
}

fn vehicle_from_row(row: VehicleRow) -> Result<Vehicle> {
    let (id, fleet, model, vin, commissioned_on, depot) = row;
    Ok(Vehicle {
        id: VehicleId::new(&id).map_err(|e| corrupt("vehicles", "vehicle_id", &id, e))?,
        fleet: FleetId::new(&fleet).map_err(|e| corrupt("vehicles", "fleet_id", &fleet, e))?,
        model: ModelId::new(model.as_str())
            .map_err(|e| corrupt("vehicles", "model_id", &model, e))?,
        vin: vin
            .map(|v| Vin::new(&v).map_err(|e| corrupt("vehicles", "vin", &v, e)))
            .transpose()?,
        commissioned_on: NaiveDate::parse_from_str(&commissioned_on, "%Y-%m-%d")
            .map_err(|e| corrupt("vehicles", "commissioned_on", &commissioned_on, e))?,
        depot: Depot::new(&depot).map_err(|e| corrupt("vehicles", "depot", &depot, e))?,
    })
}

type ServiceRow = (
    String,
    String,
    String,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    String,
);

pub(crate) async fn services<'e, E>(e: E) -> Result<Vec<ServiceRecord>>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<ServiceRow> = sqlx::query_as(
        "SELECT vehicle_id, task, performed_on, engine_hours, pto_hours, odometer_km, source \
         FROM services ORDER BY vehicle_id, performed_on, task",
    )
    .fetch_all(e)
    .await?;
    rows.into_iter().map(service_from_row).collect()
}

/// The service records of `history` up to `as_of`, by vehicle, then time,
/// then task. A year of a large fleet holds tens of thousands of services;
/// the reports need a fraction of them, and rows are what the driver
/// spends its time on.
pub(crate) async fn services_for_reports<'e, E>(
    e: E,
    as_of: DateTime<Utc>,
    history: ServiceHistory,
) -> Result<Vec<ServiceRecord>>
where
    E: Executor<'e, Database = Any>,
{
    // Times are fixed-width UTC text to the second (services have no
    // fractions), so text order is time order and truncating `as_of`
    // keeps exactly the services at or before it.
    macro_rules! repairs {
        () => {
            "SELECT vehicle_id, task, performed_on, engine_hours, pto_hours, odometer_km, source \
             FROM services WHERE performed_on <= $1 AND task LIKE 'repair:%'"
        };
    }
    let sql = match history {
        ServiceHistory::Nothing => return Ok(Vec::new()),
        ServiceHistory::Repairs => concat!(repairs!(), " ORDER BY 1, 3, 2"),
        ServiceHistory::LastServicesAndRepairs => concat!(
            repairs!(),
            " UNION ALL \
             SELECT s.vehicle_id, s.task, s.performed_on, s.engine_hours, s.pto_hours, \
             s.odometer_km, s.source \
             FROM services s \
             JOIN (SELECT vehicle_id, task, MAX(performed_on) AS last FROM services \
                   WHERE performed_on <= $2 AND task NOT LIKE 'repair:%' \
                   GROUP BY vehicle_id, task) l \
             ON s.vehicle_id = l.vehicle_id AND s.task = l.task AND s.performed_on = l.last \
             ORDER BY 1, 3, 2"
        ),
    };
    let mut query = sqlx::query_as::<_, ServiceRow>(sql).bind(time_text(as_of));
    if history == ServiceHistory::LastServicesAndRepairs {
        query = query.bind(time_text(as_of));
    }
    let rows: Vec<ServiceRow> = query.fetch_all(e).await?;
    rows.into_iter().map(service_from_row).collect()
}

pub(crate) async fn vehicle_services<'e, E>(e: E, id: &VehicleId) -> Result<Vec<ServiceRecord>>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<ServiceRow> = sqlx::query_as(
        "SELECT vehicle_id, task, performed_on, engine_hours, pto_hours, odometer_km, source \
         FROM services WHERE vehicle_id = $1 ORDER BY performed_on, task",
    )
    .bind(id.as_str())
    .fetch_all(e)
    .await?;
    rows.into_iter().map(service_from_row).collect()
}

/// Inserts `record`, or replaces the meters of the service with its
/// (vehicle, task, time); the first source is kept, so a re-import does
/// not hide that a ticket recorded the service.
pub(crate) async fn upsert_service<'e, E>(e: E, record: &ServiceRecord) -> Result<()>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO services \
         (vehicle_id, task, performed_on, engine_hours, pto_hours, odometer_km, source) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (vehicle_id, task, performed_on) DO UPDATE SET \
         engine_hours = excluded.engine_hours, pto_hours = excluded.pto_hours, \
         odometer_km = excluded.odometer_km",
    )
    .bind(record.vehicle.as_str())
    .bind(record.task.to_string())
    .bind(time_text(record.performed_at))
    .bind(record.engine_hours)
    .bind(record.pto_hours)
    .bind(record.odometer_km)
    .bind(record.source.as_str())
    // sqlx 0.9.0's Any driver declares a NULL f64 as float4 to PostgreSQL
    // (sqlx issue #4284): a statement prepared once with an empty meter
    // would then refuse a reading ("incorrect binary data format"). An
    // unnamed statement is prepared for the values it gets each time.
    .persistent(false)
    .execute(e)
    .await?;
    Ok(())
}

fn service_from_row(row: ServiceRow) -> Result<ServiceRecord> {
    let (vehicle, task, performed_on, engine_hours, pto_hours, odometer_km, source) = row;
    Ok(ServiceRecord {
        vehicle: VehicleId::new(&vehicle)
            .map_err(|e| corrupt("services", "vehicle_id", &vehicle, e))?,
        task: ServiceTask::parse(&task).map_err(|e| corrupt("services", "task", &task, e))?,
        performed_at: DateTime::parse_from_rfc3339(&performed_on)
            .map_err(|e| corrupt("services", "performed_on", &performed_on, e))?
            .with_timezone(&Utc),
        engine_hours,
        pto_hours,
        odometer_km,
        source: ServiceSource::parse(&source)
            .ok_or_else(|| corrupt("services", "source", &source, "neither import nor ticket"))?,
    })
}

fn corrupt(
    table: &'static str,
    column: &'static str,
    value: &str,
    reason: impl std::fmt::Display,
) -> DbError {
    DbError::Corrupt {
        table,
        column,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}
