//! `fleetcare vehicles import FILE`: add or update registered trucks.

use std::collections::HashMap;
use std::path::Path;

use fleetcare_ingest::ids::{FleetId, VehicleId};

use super::table::{self, Problems, Row};
use super::{ImportSummary, Kind, id_list, name_id, parse_date, required};
use crate::catalog::Catalog;
use crate::db::Db;
use crate::registry::error::{Result, RowProblem};
use crate::registry::queries;
use crate::registry::types::{Depot, Vehicle, Vin};

/// The contract's columns (C4).
pub const COLUMNS: [&str; 6] = [
    "vehicle_id",
    "fleet_id",
    "model_id",
    "vin",
    "commissioned_on",
    "depot",
];

/// Imports `path` into the registry: a vehicle already registered takes
/// the file's values (it may move to another fleet, depot or model).
pub async fn import_vehicles(db: &Db, catalog: &Catalog, path: &Path) -> Result<ImportSummary> {
    let mut problems = Problems::default();
    let rows = table::read(path, COLUMNS, &mut problems)?;

    let mut vehicles: Vec<(u64, Vehicle)> = Vec::with_capacity(rows.len());
    let mut line_of: HashMap<VehicleId, u64> = HashMap::new();
    for row in &rows {
        match parse_row(row, catalog) {
            Ok(vehicle) => {
                if let Some(&first_line) = line_of.get(&vehicle.id) {
                    problems.push(
                        row.line,
                        RowProblem::DuplicateVehicle {
                            vehicle: vehicle.id.to_string(),
                            first_line,
                        },
                    );
                } else {
                    line_of.insert(vehicle.id.clone(), row.line);
                    vehicles.push((row.line, vehicle));
                }
            }
            Err(problem) => problems.push(row.line, problem),
        }
    }

    let mut tx = db.pool().begin().await?;
    let stored: HashMap<VehicleId, Vehicle> = queries::vehicles(&mut *tx)
        .await?
        .into_iter()
        .map(|v| (v.id.clone(), v))
        .collect();
    check_vins(&vehicles, &stored, &line_of, &mut problems);
    problems.check(path)?;

    let mut summary = ImportSummary {
        kind: Kind::Vehicles,
        path: path.to_path_buf(),
        new: 0,
        updated: 0,
        unchanged: 0,
    };
    for (_, vehicle) in &vehicles {
        match stored.get(&vehicle.id) {
            Some(old) if old == vehicle => {
                summary.unchanged += 1;
                continue;
            }
            Some(_) => summary.updated += 1,
            None => summary.new += 1,
        }
        queries::upsert_vehicle(&mut *tx, vehicle).await?;
    }
    tx.commit().await?;
    Ok(summary)
}

fn parse_row(row: &Row<6>, catalog: &Catalog) -> Result<Vehicle, RowProblem> {
    let [vehicle_id, fleet_id, model_id, vin, commissioned_on, depot] = &row.fields;
    let id = name_id("vehicle_id", vehicle_id, VehicleId::new)?;
    let fleet = name_id("fleet_id", fleet_id, FleetId::new)?;
    let model = catalog
        .model(required("model_id", model_id)?)
        .ok_or_else(|| RowProblem::UnknownModel {
            model: model_id.clone(),
            known: id_list(catalog.models().map(|m| m.id.as_str())),
        })?
        .id
        .clone();
    let vin = if vin.is_empty() {
        None
    } else {
        Some(Vin::new(vin)?)
    };
    let commissioned_on = parse_date(
        "commissioned_on",
        required("commissioned_on", commissioned_on)?,
    )?;
    let depot = Depot::new(depot)?;
    Ok(Vehicle {
        id,
        fleet,
        model,
        vin,
        commissioned_on,
        depot,
    })
}

/// A VIN names one truck: refused when two rows give the same one, or a row
/// gives the VIN of a registered vehicle that the file does not change.
fn check_vins(
    vehicles: &[(u64, Vehicle)],
    stored: &HashMap<VehicleId, Vehicle>,
    in_file_ids: &HashMap<VehicleId, u64>,
    problems: &mut Problems,
) {
    let mut in_file: HashMap<&Vin, (&VehicleId, u64)> = HashMap::new();
    for (line, vehicle) in vehicles {
        let Some(vin) = &vehicle.vin else { continue };
        match in_file.get(vin) {
            Some(&(other, other_line)) => problems.push(
                *line,
                RowProblem::DuplicateVin {
                    vin: vin.to_string(),
                    other: other.to_string(),
                    other_line: Some(other_line),
                },
            ),
            None => {
                in_file.insert(vin, (&vehicle.id, *line));
            }
        }
    }
    let mut kept: Vec<&Vehicle> = stored
        .values()
        .filter(|v| !in_file_ids.contains_key(&v.id))
        .collect();
    kept.sort_by(|a, b| a.id.cmp(&b.id));
    for old in kept {
        let Some(vin) = &old.vin else { continue };
        if let Some(&(_, line)) = in_file.get(vin) {
            problems.push(
                line,
                RowProblem::DuplicateVin {
                    vin: vin.to_string(),
                    other: old.id.to_string(),
                    other_line: None,
                },
            );
        }
    }
}
