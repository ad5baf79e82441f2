//! Starting the Modbus pollers of `[[modbus.devices]]`.

use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinHandle;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::Db;
use crate::runtime::Shutdown;
use crate::sources::modbus::{self, DeviceStatus};
use crate::store::IngestHandle;

/// The pollers' tasks and each polled device's live status (for the web
/// UI's health page).
type Pollers = (Vec<JoinHandle<()>>, Vec<Arc<DeviceStatus>>);

/// Starts a poller per configured Modbus device. A device that cannot be
/// polled (unknown vehicle, model without a register map) is reported and
/// skipped; the others run.
pub(super) async fn start(
    config: &Config,
    catalog: &Catalog,
    db: &Db,
    handle: &IngestHandle,
    stop: &Shutdown,
) -> anyhow::Result<Pollers> {
    let devices = &config.modbus.devices;
    if devices.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    // The registry only matters for devices that do not name their model.
    let registry = if devices.iter().any(|d| d.model.is_none()) {
        crate::registry::vehicles(db)
            .await
            .context("cannot read the fleet registry for the Modbus devices")?
    } else {
        Vec::new()
    };
    let (targets, errors) = modbus::resolve_targets(devices, catalog, |fleet, vehicle| {
        registry
            .iter()
            .find(|v| &v.fleet == fleet && &v.id == vehicle)
            .map(|v| v.model.clone())
    });
    for e in &errors {
        tracing::error!(error = %e, "this Modbus device is not polled");
    }
    let statuses = targets.iter().map(|t| t.status().clone()).collect();
    let tasks = modbus::spawn_pollers(
        targets,
        &config.mqtt.topic_prefix,
        handle.clone(),
        stop.clone(),
    );
    Ok((tasks, statuses))
}
