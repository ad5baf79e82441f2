//! The store as the [`MeterSource`] of closed maintenance tickets.

use std::path::PathBuf;

use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::pipeline::PipelineConfig;
use polars::prelude::*;

use super::{MeterReadings, MeterSource};
use crate::store::Store;

/// Reads a vehicle's latest meters from the store under `data_dir` (read
/// only, beside the running writer). The values are the continuous ones
/// (over ECU swaps), as the due report compares.
#[derive(Debug, Clone)]
pub struct StoreMeters {
    pub data_dir: PathBuf,
    pub pipeline: PipelineConfig,
}

impl StoreMeters {
    fn read(&self, fleet: &FleetId, vehicle: &VehicleId) -> Result<MeterReadings, String> {
        let store = Store::open_read_only(&self.data_dir, self.pipeline.clone())
            .map_err(|e| e.to_string())?;
        let Some(lf) = store.scan("meters").map_err(|e| e.to_string())? else {
            return Ok(MeterReadings::default());
        };
        let df = lf
            .filter(
                col("fleet")
                    .eq(lit(fleet.as_str()))
                    .and(col("vehicle").eq(lit(vehicle.as_str()))),
            )
            .group_by([col("meter")])
            .agg([col("value").max()])
            .collect()
            .map_err(|e| e.to_string())?;
        let meters = df.column("meter").and_then(|c| c.str().cloned());
        let values = df.column("value").and_then(|c| c.f64().cloned());
        let (Ok(meters), Ok(values)) = (meters, values) else {
            return Err("the meters table lacks its meter or value column".to_owned());
        };
        let mut r = MeterReadings::default();
        for (m, v) in meters.iter().zip(values.iter()) {
            match m {
                Some("engine_hours") => r.engine_hours = v,
                Some("pto_hours") => r.pto_hours = v,
                Some("odometer_km") => r.odometer_km = v,
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
