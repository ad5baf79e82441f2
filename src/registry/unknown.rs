//! `fleetcare vehicles unknown`: trucks that send data but are not in the
//! registry. Their data is stored all the same (C4); the list tells the
//! operator whom to register. No ticket is opened for them (C14); support
//! is alerted once per vehicle, which [`first_unknown_alert`] records.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};

use super::queries;
use super::types::Vehicle;
use crate::db::{Db, Result};

/// A vehicle the store has data from, under the fleet of its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenVehicle {
    pub fleet: FleetId,
    pub vehicle: VehicleId,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
}

/// A seen vehicle the registry does not have as (fleet, vehicle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVehicle {
    pub seen: SeenVehicle,
    /// The fleet the registry has this vehicle id in, when that is another
    /// fleet than the one its data came under: a gateway configured with
    /// the wrong fleet, or a truck moved without a registry update.
    pub registered_fleet: Option<FleetId>,
}

/// The seen vehicles that are not registered under the fleet they sent
/// data as, in (fleet, vehicle) order.
pub fn unregistered(seen: &[SeenVehicle], registry: &[Vehicle]) -> Vec<UnknownVehicle> {
    let fleet_of: HashMap<&VehicleId, &FleetId> =
        registry.iter().map(|v| (&v.id, &v.fleet)).collect();
    let mut unknown: Vec<UnknownVehicle> = seen
        .iter()
        .filter_map(|s| match fleet_of.get(&s.vehicle) {
            Some(&fleet) if *fleet == s.fleet => None,
            registered => Some(UnknownVehicle {
                seen: s.clone(),
                registered_fleet: registered.map(|&f| f.clone()),
            }),
        })
        .collect();
    unknown.sort_by(|a, b| (&a.seen.fleet, &a.seen.vehicle).cmp(&(&b.seen.fleet, &b.seen.vehicle)));
    unknown
}

/// [`unregistered`] against the registry in `db`.
pub async fn unknown_vehicles(db: &Db, seen: &[SeenVehicle]) -> Result<Vec<UnknownVehicle>> {
    Ok(unregistered(seen, &queries::vehicles(db.pool()).await?))
}

/// Records that support is being alerted about `fleet`/`vehicle` sending
/// data while not registered. True the first time, when the caller sends
/// the alert; false when it was recorded before, by this process or another
/// sharing the database, even before a restart.
pub async fn first_unknown_alert(
    db: &Db,
    fleet: &FleetId,
    vehicle: &VehicleId,
    at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO unknown_vehicle_alerts (fleet_id, vehicle_id, alerted_at) \
         VALUES ($1, $2, $3) ON CONFLICT (fleet_id, vehicle_id) DO NOTHING",
    )
    .bind(fleet.as_str())
    .bind(vehicle.as_str())
    .bind(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}
