//! The fleet registry and service history (contract C4), and the reading
//! of stock counts: what the jobs join telemetry with. Filled by CSV
//! imports and by closed tickets, read by the jobs, the API and `vehicles
//! unknown`. Stock itself is the parts ledger's (`crate::parts`).

mod error;
pub mod fleets;
pub mod import;
pub mod outlets;
mod queries;
mod types;
mod unknown;

#[cfg(test)]
mod tests;

use fleetcare_ingest::ids::{FleetId, VehicleId};

pub use error::{HeaderProblem, ImportError, MAX_REPORTED_ROWS, RowError, RowProblem};
pub use fleets::{Fleet, Language};
pub use import::{
    ImportSummary, import_fleets, import_outlets, import_services, import_vehicles, read_counts,
};
pub use outlets::{Outlet, OutletId, OutletKind, Zone, outlet_zone};
pub use types::{
    Depot, DepotError, MAX_DEPOT_LEN, REPAIR_PREFIX, ServiceHistory, ServiceRecord, ServiceSource,
    ServiceTask, StockLevel, TaskSyntaxError, Vehicle, Vin, VinError,
};
pub use unknown::{
    SeenVehicle, UnknownVehicle, first_unknown_alert, unknown_vehicles, unregistered,
};

use std::collections::HashMap;

use fleetcare_ingest::pipeline::VehicleKey;

use crate::catalog::ModelId;
use crate::db::{Db, Result};

/// Every registered vehicle, by fleet then id.
pub async fn vehicles(db: &Db) -> Result<Vec<Vehicle>> {
    queries::vehicles(db.pool()).await
}

/// A page of [`vehicles`]: at most `limit` vehicles of `fleets` (`None`:
/// every fleet) after `after`, by fleet then id.
pub async fn vehicles_page(
    db: &Db,
    fleets: Option<&[FleetId]>,
    after: Option<(&FleetId, &VehicleId)>,
    limit: usize,
) -> Result<Vec<Vehicle>> {
    queries::vehicles_page(db.pool(), fleets, after, limit).await
}

/// The vehicles of one fleet, by id.
pub async fn fleet_vehicles(db: &Db, fleet: &FleetId) -> Result<Vec<Vehicle>> {
    queries::fleet_vehicles(db.pool(), fleet).await
}

/// One vehicle, if registered.
pub async fn vehicle(db: &Db, id: &VehicleId) -> Result<Option<Vehicle>> {
    queries::vehicle(db.pool(), id).await
}

/// Every service record, by vehicle, then time, then task.
pub async fn services(db: &Db) -> Result<Vec<ServiceRecord>> {
    queries::services(db.pool()).await
}

/// The service records of `history` up to `as_of`, by vehicle, then time,
/// then task.
pub async fn services_for_reports(
    db: &Db,
    as_of: chrono::DateTime<chrono::Utc>,
    history: ServiceHistory,
) -> Result<Vec<ServiceRecord>> {
    queries::services_for_reports(db.pool(), as_of, history).await
}

/// One vehicle's service records, oldest first.
pub async fn vehicle_services(db: &Db, id: &VehicleId) -> Result<Vec<ServiceRecord>> {
    queries::vehicle_services(db.pool(), id).await
}

/// Records a service (a closed ticket's): inserted, or the meters of
/// the record with the same vehicle, task and time replaced. The vehicle
/// must be registered.
pub async fn record_service(db: &Db, record: &ServiceRecord) -> Result<()> {
    queries::upsert_service(db.pool(), record).await
}

/// [`vehicle`] inside a caller's transaction.
pub(crate) async fn vehicle_in(
    conn: &mut sqlx::AnyConnection,
    id: &VehicleId,
) -> Result<Option<Vehicle>> {
    queries::vehicle(conn, id).await
}

/// [`record_service`] inside a caller's transaction, so that closing a
/// ticket and the service it records commit together or not at all.
pub(crate) async fn record_service_in(
    conn: &mut sqlx::AnyConnection,
    record: &ServiceRecord,
) -> Result<()> {
    queries::upsert_service(conn, record).await
}

/// The vehicles' models, from the registry (refreshed by the service).
/// Keyed like records, so a lookup borrows the record's key.
pub type ModelMap = HashMap<VehicleKey, ModelId>;

/// The models of `vehicles`.
pub fn model_map(vehicles: &[Vehicle]) -> ModelMap {
    vehicles
        .iter()
        .map(|v| {
            let key = VehicleKey {
                fleet: v.fleet.clone(),
                vehicle: v.id.clone(),
            };
            (key, v.model.clone())
        })
        .collect()
}
