//! `fleetcare services import FILE`: the service history of registered
//! trucks, maintenance done and repairs made.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use fleetcare_ingest::ids::VehicleId;

use super::table::{self, Problems, Row};
use super::{FIRST_YEAR, ImportSummary, Kind, id_list, name_id, parse_date, required};
use crate::catalog::Catalog;
use crate::db::Db;
use crate::registry::error::{Result, RowProblem};
use crate::registry::queries;
use crate::registry::types::{ServiceRecord, ServiceSource, ServiceTask, time_text};

/// The contract's columns (C4).
pub const COLUMNS: [&str; 6] = [
    "vehicle_id",
    "task",
    "performed_on",
    "engine_hours",
    "pto_hours",
    "odometer_km",
];

/// A date-only `performed_on` is midnight UTC, which is up to 14 hours
/// ahead of a user east of Greenwich who types today's date.
const FUTURE_SLACK: Duration = Duration::days(1);

/// Imports `path` into the service history. `now` bounds `performed_on`:
/// a service cannot have been done in the future.
pub async fn import_services(
    db: &Db,
    catalog: &Catalog,
    path: &Path,
    now: DateTime<Utc>,
) -> Result<ImportSummary> {
    let mut problems = Problems::default();
    let rows = table::read(path, COLUMNS, &mut problems)?;

    let mut records: Vec<(u64, ServiceRecord)> = Vec::with_capacity(rows.len());
    let mut line_of: HashMap<(VehicleId, ServiceTask, DateTime<Utc>), u64> = HashMap::new();
    for row in &rows {
        match parse_row(row, now) {
            Ok(record) => {
                let key = (
                    record.vehicle.clone(),
                    record.task.clone(),
                    record.performed_at,
                );
                if let Some(&first_line) = line_of.get(&key) {
                    problems.push(
                        row.line,
                        RowProblem::DuplicateService {
                            vehicle: record.vehicle.to_string(),
                            task: record.task.to_string(),
                            performed_on: time_text(record.performed_at),
                            first_line,
                        },
                    );
                } else {
                    line_of.insert(key, row.line);
                    records.push((row.line, record));
                }
            }
            Err(problem) => problems.push(row.line, problem),
        }
    }

    let mut tx = db.pool().begin().await?;
    let mut stored: HashMap<(VehicleId, ServiceTask, DateTime<Utc>), ServiceRecord> =
        HashMap::new();
    let mut checked: HashSet<VehicleId> = HashSet::new();
    for (line, record) in &records {
        let Some(vehicle) = queries::vehicle(&mut *tx, &record.vehicle).await? else {
            problems.push(
                *line,
                RowProblem::UnknownVehicle {
                    vehicle: record.vehicle.to_string(),
                },
            );
            continue;
        };
        if let ServiceTask::Maintenance(task) = &record.task {
            let model = catalog.model(&vehicle.model);
            if model.and_then(|m| m.task(task)).is_none() {
                problems.push(
                    *line,
                    RowProblem::UnknownTask {
                        task: task.to_string(),
                        model: vehicle.model.to_string(),
                        known: model.map_or_else(
                            || "none (the model is not in the catalogue)".to_owned(),
                            |m| id_list(m.maintenance.iter().map(|t| t.id.as_str())),
                        ),
                    },
                );
            }
        }
        if checked.insert(record.vehicle.clone()) {
            for old in queries::vehicle_services(&mut *tx, &record.vehicle).await? {
                stored.insert(
                    (old.vehicle.clone(), old.task.clone(), old.performed_at),
                    old,
                );
            }
        }
    }
    problems.check(path)?;

    let mut summary = ImportSummary {
        kind: Kind::Services,
        path: path.to_path_buf(),
        new: 0,
        updated: 0,
        unchanged: 0,
    };
    for (_, record) in &records {
        let key = (
            record.vehicle.clone(),
            record.task.clone(),
            record.performed_at,
        );
        match stored.get(&key) {
            Some(old) if same_meters(old, record) => {
                summary.unchanged += 1;
                continue;
            }
            Some(_) => summary.updated += 1,
            None => summary.new += 1,
        }
        queries::upsert_service(&mut *tx, record).await?;
    }
    tx.commit().await?;
    Ok(summary)
}

fn same_meters(a: &ServiceRecord, b: &ServiceRecord) -> bool {
    a.engine_hours == b.engine_hours && a.pto_hours == b.pto_hours && a.odometer_km == b.odometer_km
}

fn parse_row(row: &Row<6>, now: DateTime<Utc>) -> Result<ServiceRecord, RowProblem> {
    let [
        vehicle_id,
        task,
        performed_on,
        engine_hours,
        pto_hours,
        odometer_km,
    ] = &row.fields;
    Ok(ServiceRecord {
        vehicle: name_id("vehicle_id", vehicle_id, VehicleId::new)?,
        task: ServiceTask::parse(required("task", task)?)?,
        performed_at: parse_time(required("performed_on", performed_on)?, now)?,
        engine_hours: parse_meter("engine_hours", engine_hours)?,
        pto_hours: parse_meter("pto_hours", pto_hours)?,
        odometer_km: parse_meter("odometer_km", odometer_km)?,
        source: ServiceSource::Import,
    })
}

/// A date (midnight UTC) or an RFC 3339 time with its offset, to the
/// second: service records do not need more, and one precision keeps one
/// key per service.
fn parse_time(value: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, RowProblem> {
    let time = if value.len() == 10 {
        match parse_date("performed_on", value) {
            Ok(date) => date.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
            // Said as "a date or time", since a time is welcome here too.
            Err(RowProblem::BadDate { .. }) => None,
            Err(problem) => return Err(problem),
        }
    } else {
        DateTime::parse_from_rfc3339(value)
            .ok()
            .and_then(|t| t.with_timezone(&Utc).with_nanosecond(0))
    };
    let time = time.ok_or_else(|| RowProblem::BadTime {
        value: value.to_owned(),
    })?;
    if time.year() < FIRST_YEAR {
        return Err(RowProblem::OldDate {
            column: "performed_on",
            value: value.to_owned(),
        });
    }
    if time > now + FUTURE_SLACK {
        return Err(RowProblem::FutureTime {
            value: value.to_owned(),
        });
    }
    Ok(time)
}

/// Empty is "not read at the service"; otherwise a finite number ≥ 0.
fn parse_meter(column: &'static str, value: &str) -> Result<Option<f64>, RowProblem> {
    if value.is_empty() {
        return Ok(None);
    }
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        _ => Err(RowProblem::BadMeter {
            column,
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn dates_are_midnight_utc_and_times_keep_their_offset() {
        assert_eq!(
            time_text(parse_time("2025-03-01", now()).unwrap()),
            "2025-03-01T00:00:00Z"
        );
        assert_eq!(
            time_text(parse_time("2025-03-01T08:30:15.9+08:00", now()).unwrap()),
            "2025-03-01T00:30:15Z"
        );
        assert_eq!(
            time_text(parse_time("2025-03-01 08:30:00Z", now()).unwrap()),
            "2025-03-01T08:30:00Z"
        );
    }

    #[test]
    fn loose_or_implausible_times_are_refused() {
        for bad in [
            "2025-3-1",
            "01/03/2025",
            "2025-03-01T08:30:00",
            "2025-02-30",
            "x",
        ] {
            assert!(
                matches!(parse_time(bad, now()), Err(RowProblem::BadTime { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_time("2026-03-03", now()),
            Err(RowProblem::FutureTime { .. })
        ));
        // Today in Beijing is still accepted.
        assert!(parse_time("2026-03-02", now()).is_ok());
        assert!(matches!(
            parse_time("1899-12-31", now()),
            Err(RowProblem::OldDate { .. })
        ));
    }

    #[test]
    fn meters_are_empty_or_non_negative_numbers() {
        assert_eq!(parse_meter("engine_hours", ""), Ok(None));
        assert_eq!(parse_meter("engine_hours", "1234.5"), Ok(Some(1234.5)));
        for bad in ["-1", "NaN", "inf", "1,5", "12h"] {
            assert!(parse_meter("engine_hours", bad).is_err(), "{bad}");
        }
    }
}
