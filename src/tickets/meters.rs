//! The store as the [`MeterSource`] of closed maintenance tickets.

use std::sync::Arc;

use fleetcare_ingest::ids::{FleetId, VehicleId};

use super::{MeterReadings, MeterSource};
use crate::store::StoreReader;

/// Reads a vehicle's latest meters through the process's store reader
/// (read only, beside the running writer). The values are the continuous
/// ones (over ECU swaps), as the due report compares.
#[derive(Debug, Clone)]
pub struct StoreMeters {
    pub store: Arc<StoreReader>,
}

impl StoreMeters {
    fn read(&self, fleet: &FleetId, vehicle: &VehicleId) -> crate::store::Result<MeterReadings> {
        let store = self.store.snapshot()?;
        let mut r = MeterReadings::default();
        for (meter, _, value) in store.latest_meters(fleet, vehicle)? {
            match meter.as_str() {
                "engine_hours" => r.engine_hours = Some(value),
                "pto_hours" => r.pto_hours = Some(value),
                "odometer_km" => r.odometer_km = Some(value),
                _ => {}
            }
        }
        Ok(r)
    }
}

impl MeterSource for StoreMeters {
    fn readings(&self, fleet: &FleetId, vehicle: &VehicleId) -> MeterReadings {
        self.read(fleet, vehicle).unwrap_or_else(|e| {
            tracing::warn!(fleet = %fleet, vehicle = %vehicle, error = %e,
                "cannot read the meters for the service record; only day intervals restart");
            MeterReadings::default()
        })
    }
}
