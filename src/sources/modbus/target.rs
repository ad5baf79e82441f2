//! Which configured devices are polled, and how: each device's address,
//! unit, model and register-read plan, resolved against the catalogue and
//! the fleet registry, and the schedule of its polls.

use std::sync::Arc;
use std::time::Duration;

use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::modbus::{ReadRequest, RegisterMapError};
use tokio::time::Instant;

use super::health::{DeviceLabel, DeviceStatus};
use crate::catalog::{Catalog, ModelId};
use crate::config::ModbusDevice;
use crate::runtime::Backoff;

/// How long to wait before reconnecting to a device whose link failed:
/// doubling from 1 s up to a minute, so a controller that is switched off
/// (the truck is parked) costs one attempt a minute, while a blip is
/// retried within a second.
pub const RECONNECT: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

/// Why a configured device is not polled. The other devices still are.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{device}: the address is not host:port")]
    BadAddress { device: DeviceLabel },
    #[error(
        "{device}: the vehicle is not in the fleet registry and the device names no `model`; import the vehicle or set `model`"
    )]
    UnknownVehicle { device: DeviceLabel },
    #[error("{device}: model \"{model}\" is not in the catalogue")]
    UnknownModel { device: DeviceLabel, model: ModelId },
    #[error("{device}: model \"{model}\" has no [modbus] register map in the catalogue")]
    NoRegisterMap { device: DeviceLabel, model: ModelId },
    #[error("{device}: the [modbus] map of model \"{model}\" cannot be read: {source}")]
    BadRegisterMap {
        device: DeviceLabel,
        model: ModelId,
        source: RegisterMapError,
    },
}

/// One device ready to poll: where it is, what to read, and where its
/// status is published.
#[derive(Debug)]
pub struct PollTarget {
    pub(super) label: DeviceLabel,
    pub(super) unit: u8,
    pub(super) model: ModelId,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    backoff: Backoff,
    pub(super) plan: Vec<ReadRequest>,
    pub(super) status: Arc<DeviceStatus>,
}

impl PollTarget {
    /// A target for `device` reading `model`'s map (already planned) as
    /// unit `unit`.
    fn new(device: &ModbusDevice, model: ModelId, unit: u8, plan: Vec<ReadRequest>) -> Self {
        let label = DeviceLabel::from(device);
        let status = Arc::new(DeviceStatus::new(label.clone(), unit, model.clone()));
        Self {
            label,
            unit,
            model,
            interval: device.interval,
            timeout: device.timeout,
            backoff: RECONNECT,
            plan,
            status,
        }
    }

    /// Replaces the reconnect back-off (tests use a short one).
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn label(&self) -> &DeviceLabel {
        &self.label
    }

    pub fn unit(&self) -> u8 {
        self.unit
    }

    pub fn model(&self) -> &ModelId {
        &self.model
    }

    /// The reads one poll makes.
    pub fn plan(&self) -> &[ReadRequest] {
        &self.plan
    }

    /// The device's live status; keep a clone for the health page before
    /// the target is handed to [`spawn_pollers`](super::spawn_pollers).
    pub fn status(&self) -> &Arc<DeviceStatus> {
        &self.status
    }

    /// When the poll after one that started at `started` and ended at `now`
    /// begins. `lost_link`: the consecutive link failures, if this poll lost the
    /// connection. A poll that kept the link is followed `interval` after it
    /// started, so the cadence does not drift by the poll's own duration; one
    /// that lost it is followed by the back-off, from now.
    pub(super) fn next_poll_at(
        &self,
        started: Instant,
        now: Instant,
        lost_link: Option<u32>,
    ) -> Instant {
        match lost_link {
            None => started + self.interval,
            Some(failures) => now + self.backoff.delay(failures),
        }
    }
}

/// The devices of the configuration that can be polled, and an error naming
/// each one that cannot. `model_of` gives a vehicle's model from the fleet
/// registry; a device's own `model` takes precedence.
pub fn resolve_targets(
    devices: &[ModbusDevice],
    catalog: &Catalog,
    model_of: impl Fn(&FleetId, &VehicleId) -> Option<ModelId>,
) -> (Vec<PollTarget>, Vec<TargetError>) {
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for device in devices {
        match resolve(device, catalog, &model_of) {
            Ok(target) => targets.push(target),
            Err(e) => errors.push(*e),
        }
    }
    (targets, errors)
}

fn resolve(
    device: &ModbusDevice,
    catalog: &Catalog,
    model_of: &impl Fn(&FleetId, &VehicleId) -> Option<ModelId>,
) -> Result<PollTarget, Box<TargetError>> {
    // Boxed: the error carries the device's label and the map's error, and
    // is rare; the success path stays small.
    let label = || DeviceLabel::from(device);
    let has_port = device
        .address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !has_port {
        return Err(Box::new(TargetError::BadAddress { device: label() }));
    }
    let model = match &device.model {
        Some(model) => model.clone(),
        None => model_of(&device.fleet, &device.vehicle)
            .ok_or_else(|| Box::new(TargetError::UnknownVehicle { device: label() }))?,
    };
    let Some(truck) = catalog.model(&model) else {
        return Err(Box::new(TargetError::UnknownModel {
            device: label(),
            model,
        }));
    };
    let Some(map) = &truck.modbus else {
        return Err(Box::new(TargetError::NoRegisterMap {
            device: label(),
            model,
        }));
    };
    let plan = match map.plan_reads() {
        Ok(plan) => plan,
        Err(source) => {
            return Err(Box::new(TargetError::BadRegisterMap {
                device: label(),
                model,
                source,
            }));
        }
    };
    let unit = device.unit.unwrap_or(map.unit);
    Ok(PollTarget::new(device, model, unit, plan))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use fleetcare_ingest::modbus::RegisterKind;

    use super::*;
    use crate::sources::modbus::DeviceState;

    fn device(address: &str) -> ModbusDevice {
        ModbusDevice {
            address: address.to_owned(),
            unit: None,
            fleet: FleetId::new("acme").unwrap(),
            vehicle: VehicleId::new("TRK-001").unwrap(),
            model: None,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
        }
    }

    fn catalog() -> Catalog {
        Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap()
    }

    fn model(id: &str) -> ModelId {
        ModelId::new(id).unwrap()
    }

    #[test]
    fn reconnects_double_up_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|n| RECONNECT.delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(RECONNECT.delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn polls_keep_their_cadence_and_back_off_after_a_lost_link() {
        let (targets, _) = resolve_targets(&[device("10.0.0.1:502")], &catalog(), |_, _| {
            Some(model("compactor-c12"))
        });
        let target = targets.into_iter().next().unwrap();
        let started = Instant::now();
        let now = started + Duration::from_millis(300);
        let at = |lost| target.next_poll_at(started, now, lost) - started;
        // Interval 10 s from the start of the poll, however long it took.
        assert_eq!(at(None), Duration::from_secs(10));
        // 1 s, 2 s, 4 s … after the end of the failed attempt.
        assert_eq!(at(Some(1)), Duration::from_millis(1_300));
        assert_eq!(at(Some(3)), Duration::from_millis(4_300));
        assert_eq!(at(Some(30)), Duration::from_millis(60_300));
    }

    #[test]
    fn resolves_unit_and_model_from_the_catalogue_and_the_registry() {
        let catalog = catalog();
        let registry = |_: &FleetId, vehicle: &VehicleId| {
            (vehicle.as_str() == "TRK-001").then(|| model("compactor-c12"))
        };
        let mut explicit = device("127.0.0.1:1502");
        explicit.unit = Some(7);
        explicit.vehicle = VehicleId::new("TRK-002").unwrap();
        explicit.model = Some(model("compactor-c12"));
        let (targets, errors) =
            resolve_targets(&[device("10.0.0.1:502"), explicit], &catalog, registry);
        assert!(errors.is_empty(), "{errors:?}");
        let compactor = catalog.model("compactor-c12").unwrap();
        let map_unit = compactor.modbus.as_ref().unwrap().unit;
        assert_eq!(targets[0].unit(), map_unit);
        assert_eq!(targets[0].model().as_str(), "compactor-c12");
        assert_eq!(targets[1].unit(), 7);
        // Input registers 0–13 in one read, holding 200–201 in another.
        let reads: Vec<(RegisterKind, u16, u16)> = targets[0]
            .plan()
            .iter()
            .map(|r| (r.kind(), r.start(), r.count()))
            .collect();
        assert_eq!(
            reads,
            [
                (RegisterKind::Holding, 200, 2),
                (RegisterKind::Input, 0, 14)
            ]
        );
        assert_eq!(targets[0].status().snapshot(), DeviceState::default());
    }

    #[test]
    fn a_device_that_cannot_be_polled_is_named_and_the_others_still_run() {
        // The compactor without its `[modbus]` section (the file's last).
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(models.join("parts.toml"), dir.path().join("parts.toml")).unwrap();
        let text = std::fs::read_to_string(models.join("compactor-c12.toml")).unwrap();
        let (without_modbus, _) = text.split_once("\n[modbus]").unwrap();
        let bare = without_modbus.replace("id = \"compactor-c12\"", "id = \"bare\"");
        std::fs::write(dir.path().join("bare.toml"), bare).unwrap();
        std::fs::write(dir.path().join("compactor-c12.toml"), text).unwrap();
        let catalog = Catalog::load(dir.path()).unwrap();
        let mut unknown_vehicle = device("10.0.0.2:502");
        unknown_vehicle.vehicle = VehicleId::new("TRK-404").unwrap();
        let mut unknown_model = device("10.0.0.3:502");
        unknown_model.model = Some(model("no-such-model"));
        let mut no_port = device("10.0.0.4");
        no_port.model = Some(model("compactor-c12"));
        let mut devices = vec![
            device("10.0.0.1:502"),
            unknown_vehicle,
            unknown_model,
            no_port,
        ];
        let mut without_map = device("10.0.0.5:502");
        without_map.model = Some(model("bare"));
        devices.push(without_map);
        let registry = |_: &FleetId, vehicle: &VehicleId| {
            (vehicle.as_str() == "TRK-001").then(|| model("compactor-c12"))
        };
        let (targets, errors) = resolve_targets(&devices, &catalog, registry);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].label().address, "10.0.0.1:502");
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(matches!(errors[0], TargetError::UnknownVehicle { .. }));
        assert!(
            messages[0].starts_with("modbus device 10.0.0.2:502 (acme/TRK-404):"),
            "{messages:?}"
        );
        assert!(messages[1].contains("\"no-such-model\" is not in the catalogue"));
        assert!(matches!(errors[2], TargetError::BadAddress { .. }));
        assert!(
            messages[3].contains("model \"bare\" has no [modbus] register map"),
            "{messages:?}"
        );
    }
}
