//! The Modbus TCP source: one task per body controller, polling the
//! registers of the vehicle model's map (contract C3) and handing the meters
//! to the same pipeline as MQTT (contract C1 telemetry).
//!
//! ```text
//!            ┌──────────── interval ────────────┐
//!            ▼                                  │
//! connect ─▶ read each ReadRequest ─▶ ok ───────┴─▶ telemetry JSON ─▶ IngestHandle
//!   ▲   │        │ (timeout per read)
//!   │   │        ├─ exception: the device refused; keep the link, next interval
//!   │   ▼        └─ timeout / link error: drop the link (a late reply would
//!   └─ back-off ◀───  poison it), reconnect after back-off
//! ```
//!
//! The decisions (how long to wait, what to log) are plain functions tested
//! beside this file; the tasks only do IO. Register planning, decoding and
//! what a poll's values become in C1 terms are the sans-IO
//! [`fleetcare_ingest::modbus`].
//!
//! tokio-modbus has one outstanding request per connection and no
//! reconnect of its own; its `Result<Result<_, ExceptionCode>, Error>` keeps
//! "the device refused" (an exception response, the link is fine) apart
//! from "the link failed" (drop it).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::modbus::{
    DecodeError, ReadRequest, Register, RegisterKind, RegisterMapError, meter_telemetry,
};
use fleetcare_ingest::topic::{Channel, data_topic};
use tokio::time::Instant;
use tokio_modbus::client::{Client as _, Context, Reader as _};
use tokio_modbus::{ExceptionCode, Slave};

use crate::catalog::{Catalog, ModelId};
use crate::config::ModbusDevice;
use crate::runtime::{Backoff, LiveMetrics, Shutdown};
use crate::store::{Incoming, IngestHandle};

/// How long to wait before reconnecting to a device whose link failed:
/// doubling from 1 s up to a minute, so a controller that is switched off
/// (the truck is parked) costs one attempt a minute, while a blip is
/// retried within a second.
pub const RECONNECT: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

/// A device as people name it in logs and errors: its address and the
/// vehicle it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLabel {
    pub address: String,
    pub fleet: FleetId,
    pub vehicle: VehicleId,
}

impl fmt::Display for DeviceLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "modbus device {} ({}/{})",
            self.address, self.fleet, self.vehicle
        )
    }
}

impl From<&ModbusDevice> for DeviceLabel {
    fn from(d: &ModbusDevice) -> Self {
        Self {
            address: d.address.clone(),
            fleet: d.fleet.clone(),
            vehicle: d.vehicle.clone(),
        }
    }
}

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
    label: DeviceLabel,
    unit: u8,
    model: ModelId,
    interval: Duration,
    timeout: Duration,
    backoff: Backoff,
    plan: Vec<ReadRequest>,
    status: Arc<DeviceStatus>,
}

impl PollTarget {
    /// A target for `device` reading `model`'s map (already planned) as
    /// unit `unit`.
    fn new(device: &ModbusDevice, model: ModelId, unit: u8, plan: Vec<ReadRequest>) -> Self {
        let label = DeviceLabel::from(device);
        let status = Arc::new(DeviceStatus {
            label: label.clone(),
            unit,
            model: model.clone(),
            state: Mutex::default(),
        });
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
    /// the target is handed to [`spawn_pollers`].
    pub fn status(&self) -> &Arc<DeviceStatus> {
        &self.status
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

/// What the health page shows about one device, shared between its poller
/// (which writes) and readers. A plain mutex: it is held for a few field
/// updates, never across an `.await`.
#[derive(Debug)]
pub struct DeviceStatus {
    pub label: DeviceLabel,
    pub unit: u8,
    pub model: ModelId,
    state: Mutex<DeviceState>,
}

impl DeviceStatus {
    /// A copy of the current state.
    pub fn snapshot(&self) -> DeviceState {
        self.lock().clone()
    }

    fn update(&self, f: impl FnOnce(&mut DeviceState)) {
        f(&mut self.lock());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DeviceState> {
        // A panic while holding it cannot leave the counters half-written in
        // a way that matters more than losing the health page.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The state of one device at some instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceState {
    /// Whether a TCP connection to the device is open.
    pub connected: bool,
    /// When the last poll read every register.
    pub last_ok: Option<Timestamp>,
    /// When the last poll failed, and why.
    pub last_error: Option<(Timestamp, String)>,
    /// Failed polls since the last successful one.
    pub consecutive_failures: u32,
    pub polls_ok: u64,
    pub polls_failed: u64,
    /// Exception responses among the failed polls.
    pub exceptions: u64,
    /// TCP connections made (the first one and every reconnect).
    pub connections: u64,
    /// The latest value of every register read, by register name: body
    /// state such as hydraulic temperatures lives only here.
    pub values: BTreeMap<String, f64>,
}

impl DeviceState {
    fn record_ok(&mut self, at: Timestamp, values: &[(&Register, f64)]) {
        self.last_ok = Some(at);
        self.consecutive_failures = 0;
        self.polls_ok += 1;
        for (register, value) in values {
            self.values.insert(register.name.clone(), *value);
        }
    }

    fn record_failure(&mut self, at: Timestamp, error: &PollError) {
        self.last_error = Some((at, error.to_string()));
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.polls_failed += 1;
        if matches!(error, PollError::Exception { .. }) {
            self.exceptions += 1;
        }
    }
}

/// Why one poll of one device failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("no connection within {0:?}")]
    ConnectTimeout(Duration),
    #[error("{kind} registers {start}+{count}: no answer within {timeout:?}")]
    Timeout {
        kind: RegisterKind,
        start: u16,
        count: u16,
        timeout: Duration,
    },
    #[error("{kind} registers {start}+{count}: exception {:#04x} ({exception})", u8::from(*exception))]
    Exception {
        kind: RegisterKind,
        start: u16,
        count: u16,
        exception: ExceptionCode,
    },
    #[error("{kind} registers {start}+{count}: {source}")]
    Link {
        kind: RegisterKind,
        start: u16,
        count: u16,
        source: tokio_modbus::Error,
    },
    #[error("{kind} registers {start}+{count}: {source}")]
    Decode {
        kind: RegisterKind,
        start: u16,
        count: u16,
        source: DecodeError,
    },
}

impl PollError {
    /// Whether the connection must be dropped: after a timeout the reply
    /// may still arrive and would be taken for the next request's, and a
    /// link error leaves the stream in an unknown place. An exception or an
    /// undecodable but well-framed answer leaves it usable.
    pub fn drops_connection(&self) -> bool {
        !matches!(self, Self::Exception { .. } | Self::Decode { .. })
    }

    /// The kind of failure, for logging changes rather than repeats.
    fn class(&self) -> Health {
        match self {
            Self::Connect(_) | Self::ConnectTimeout(_) => Health::Unreachable,
            Self::Timeout { .. } => Health::NotAnswering,
            Self::Link { .. } => Health::LinkError,
            Self::Exception {
                kind,
                start,
                exception,
                ..
            } => Health::Exception {
                kind: *kind,
                start: *start,
                code: u8::from(*exception),
            },
            Self::Decode { .. } => Health::BadResponse,
        }
    }
}

/// A device's health as far as logging goes: a log line is written when it
/// changes, not on every poll, so a controller that is off for a weekend
/// writes two lines, not thousands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Ok,
    Unreachable,
    NotAnswering,
    LinkError,
    Exception {
        kind: RegisterKind,
        start: u16,
        code: u8,
    },
    BadResponse,
}

/// What to log after a poll whose outcome is `now`, given the outcome of
/// the poll before (`None` at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogChange {
    /// Same as before: debug level only.
    Repeat,
    /// The first successful poll, or the first after failures.
    Up,
    /// A new kind of failure.
    Down,
}

fn log_change(before: Option<Health>, now: Health) -> LogChange {
    match (before, now) {
        (Some(b), n) if b == n => LogChange::Repeat,
        (_, Health::Ok) => LogChange::Up,
        _ => LogChange::Down,
    }
}

/// Starts one polling task per target on the current tokio runtime. Each
/// runs until `shutdown` turns true (or its sender is dropped) or the writer
/// stops; a device that fails never affects the others.
pub fn spawn_pollers(
    targets: Vec<PollTarget>,
    prefix: &str,
    handle: IngestHandle,
    shutdown: Shutdown,
) -> Vec<tokio::task::JoinHandle<()>> {
    targets
        .into_iter()
        .map(|target| {
            let (fleet, vehicle) = (&target.label.fleet, &target.label.vehicle);
            let topic = data_topic(prefix, fleet, vehicle, Channel::Telemetry);
            tokio::spawn(run_device(target, topic, handle.clone(), shutdown.clone()))
        })
        .collect()
}

fn now() -> Timestamp {
    Timestamp::from_datetime(&chrono::Utc::now())
}

/// Resolves once shutdown has begun. A dropped sender counts as shutdown:
/// nobody could stop the task any more.
async fn stopped(shutdown: &mut Shutdown) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn run_device(
    target: PollTarget,
    topic: String,
    handle: IngestHandle,
    mut shutdown: Shutdown,
) {
    let label = &target.label;
    let metrics = Arc::clone(handle.metrics());
    let mut link: Option<Context> = None;
    // Failed polls since the last good one, and those among them that lost
    // the connection (they set the back-off).
    let mut failures: u32 = 0;
    let mut link_failures: u32 = 0;
    let mut health: Option<Health> = None;
    let mut next_poll = Instant::now();
    tracing::info!(
        fleet = %label.fleet, vehicle = %label.vehicle, device = %label.address,
        unit = target.unit, model = %target.model, interval = ?target.interval,
        reads = target.plan.len(),
        "Polling Modbus device."
    );
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            () = tokio::time::sleep_until(next_poll) => {}
        }
        let started = Instant::now();
        let outcome = tokio::select! {
            biased;
            () = stopped(&mut shutdown) => break,
            outcome = poll(&mut link, &target) => outcome,
        };
        let at = now();
        match outcome {
            Ok(values) => {
                LiveMetrics::add(&metrics.modbus_polls_ok, 1);
                target.status.update(|s| {
                    s.connected = true;
                    s.record_ok(at, &values);
                });
                if log_change(health, Health::Ok) == LogChange::Up {
                    tracing::info!(
                        fleet = %label.fleet, vehicle = %label.vehicle, device = %label.address,
                        failed_polls = failures,
                        "Modbus device answers."
                    );
                }
                health = Some(Health::Ok);
                failures = 0;
                link_failures = 0;
                next_poll = next_poll_at(started, Instant::now(), &target, None);
                tracing::debug!(
                    fleet = %label.fleet, vehicle = %label.vehicle, device = %label.address,
                    values = ?values.iter().map(|(r, v)| (r.name.as_str(), *v)).collect::<Vec<_>>(),
                    "Polled Modbus device."
                );
                let telemetry =
                    meter_telemetry(at, values.iter().map(|(r, v)| (r.name.as_str(), *v)));
                if let Some(telemetry) = telemetry {
                    let message = Incoming {
                        topic: topic.clone(),
                        payload: telemetry.to_json().into_bytes(),
                        received: at,
                        on_stored: None,
                    };
                    let sent = tokio::select! {
                        biased;
                        () = stopped(&mut shutdown) => break,
                        sent = handle.send(message) => sent,
                    };
                    if sent.is_err() {
                        tracing::warn!(
                            fleet = %label.fleet, vehicle = %label.vehicle, device = %label.address,
                            "The store writer stopped; Modbus polling stops."
                        );
                        break;
                    }
                }
            }
            Err(error) => {
                LiveMetrics::add(&metrics.modbus_polls_failed, 1);
                failures = failures.saturating_add(1);
                let dropped = error.drops_connection();
                if dropped {
                    link = None;
                    link_failures = link_failures.saturating_add(1);
                }
                target.status.update(|s| {
                    s.connected = link.is_some();
                    s.record_failure(at, &error);
                });
                let now = Instant::now();
                next_poll = next_poll_at(started, now, &target, dropped.then_some(link_failures));
                let retry_in = next_poll.saturating_duration_since(now);
                log_failure(label, &error, log_change(health, error.class()), retry_in);
                health = Some(error.class());
            }
        }
    }
    if let Some(mut context) = link.take() {
        // Best effort: the device sees a clean close rather than a reset.
        let _ = tokio::time::timeout(target.timeout, context.disconnect()).await;
    }
    target.status.update(|s| s.connected = false);
    tracing::debug!(
        fleet = %label.fleet, vehicle = %label.vehicle, device = %label.address,
        "Modbus poller stopped."
    );
}

/// When the poll after one that started at `started` and ended at `now`
/// begins. `lost_link`: the consecutive link failures, if this poll lost the
/// connection. A poll that kept the link is followed `interval` after it
/// started, so the cadence does not drift by the poll's own duration; one
/// that lost it is followed by the back-off, from now.
fn next_poll_at(
    started: Instant,
    now: Instant,
    target: &PollTarget,
    lost_link: Option<u32>,
) -> Instant {
    match lost_link {
        None => started + target.interval,
        Some(failures) => now + target.backoff.delay(failures),
    }
}

fn log_failure(label: &DeviceLabel, error: &PollError, change: LogChange, retry_in: Duration) {
    let (fleet, vehicle, device) = (&label.fleet, &label.vehicle, &label.address);
    if change != LogChange::Down {
        tracing::debug!(%fleet, %vehicle, %device, %error, ?retry_in, "Modbus poll failed again.");
        return;
    }
    match error {
        PollError::Exception {
            kind,
            start,
            count,
            exception,
        } => tracing::warn!(
            %fleet, %vehicle, %device, %kind, start, count,
            exception = u8::from(*exception), %error,
            "Modbus device answered with an exception; polling it on schedule."
        ),
        PollError::Connect(_) | PollError::ConnectTimeout(_) => tracing::warn!(
            %fleet, %vehicle, %device, %error, ?retry_in,
            "Modbus device unreachable; retrying with back-off (logged again when it changes)."
        ),
        PollError::Timeout { .. } | PollError::Link { .. } => tracing::warn!(
            %fleet, %vehicle, %device, %error, ?retry_in,
            "Modbus device stopped answering; reconnecting with back-off."
        ),
        PollError::Decode { .. } => tracing::warn!(
            %fleet, %vehicle, %device, %error,
            "Modbus device sent a response that does not fit the register map."
        ),
    }
}

/// One poll: connect if needed, then every read of the plan in order.
/// Returns the scaled value of every register.
async fn poll<'a>(
    link: &mut Option<Context>,
    target: &'a PollTarget,
) -> Result<Vec<(&'a Register, f64)>, PollError> {
    let context = match link {
        Some(context) => context,
        None => {
            let context = connect(&target.label.address, target.unit, target.timeout).await?;
            target.status.update(|s| {
                s.connected = true;
                s.connections += 1;
            });
            link.insert(context)
        }
    };
    let mut values = Vec::new();
    for request in &target.plan {
        let words = read(context, request, target.timeout).await?;
        let decoded = request.decode(&words).map_err(|source| PollError::Decode {
            kind: request.kind(),
            start: request.start(),
            count: request.count(),
            source,
        })?;
        values.extend(decoded);
    }
    Ok(values)
}

async fn connect(address: &str, unit: u8, timeout: Duration) -> Result<Context, PollError> {
    let attempt = async {
        let mut last = None;
        for socket in tokio::net::lookup_host(address).await? {
            match tokio_modbus::client::tcp::connect_slave(socket, Slave(unit)).await {
                Ok(context) => return Ok(context),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "the host name has no address")
        }))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| PollError::ConnectTimeout(timeout))?
        .map_err(PollError::Connect)
}

async fn read(
    context: &mut Context,
    request: &ReadRequest,
    timeout: Duration,
) -> Result<Vec<u16>, PollError> {
    let (kind, start, count) = (request.kind(), request.start(), request.count());
    let reply = match kind {
        RegisterKind::Input => {
            tokio::time::timeout(timeout, context.read_input_registers(start, count)).await
        }
        RegisterKind::Holding => {
            tokio::time::timeout(timeout, context.read_holding_registers(start, count)).await
        }
    };
    match reply {
        Err(_) => Err(PollError::Timeout {
            kind,
            start,
            count,
            timeout,
        }),
        Ok(Err(source)) => Err(PollError::Link {
            kind,
            start,
            count,
            source,
        }),
        Ok(Ok(Err(exception))) => Err(PollError::Exception {
            kind,
            start,
            count,
            exception,
        }),
        Ok(Ok(Ok(words))) => Ok(words),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

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
        let at = |lost| next_poll_at(started, now, &target, lost) - started;
        // Interval 10 s from the start of the poll, however long it took.
        assert_eq!(at(None), Duration::from_secs(10));
        // 1 s, 2 s, 4 s … after the end of the failed attempt.
        assert_eq!(at(Some(1)), Duration::from_millis(1_300));
        assert_eq!(at(Some(3)), Duration::from_millis(4_300));
        assert_eq!(at(Some(30)), Duration::from_millis(60_300));
    }

    #[test]
    fn only_changes_are_logged() {
        use Health::*;
        assert_eq!(log_change(None, Ok), LogChange::Up);
        assert_eq!(log_change(Some(Ok), Ok), LogChange::Repeat);
        assert_eq!(log_change(None, Unreachable), LogChange::Down);
        assert_eq!(
            log_change(Some(Unreachable), Unreachable),
            LogChange::Repeat
        );
        assert_eq!(log_change(Some(Unreachable), Ok), LogChange::Up);
        assert_eq!(log_change(Some(Unreachable), NotAnswering), LogChange::Down);
        let refused = |code| Exception {
            kind: RegisterKind::Input,
            start: 0,
            code,
        };
        assert_eq!(log_change(Some(refused(2)), refused(2)), LogChange::Repeat);
        assert_eq!(log_change(Some(refused(2)), refused(4)), LogChange::Down);
    }

    #[test]
    fn only_link_failures_drop_the_connection() {
        let (kind, start, count) = (RegisterKind::Input, 0, 2);
        let exception = PollError::Exception {
            kind,
            start,
            count,
            exception: ExceptionCode::IllegalDataAddress,
        };
        assert!(!exception.drops_connection());
        assert_eq!(
            exception.to_string(),
            "input registers 0+2: exception 0x02 (Illegal data address)"
        );
        let timeout = PollError::Timeout {
            kind,
            start,
            count,
            timeout: Duration::from_secs(2),
        };
        assert!(timeout.drops_connection());
        assert!(PollError::ConnectTimeout(Duration::from_secs(2)).drops_connection());
        let decode = PollError::Decode {
            kind,
            start,
            count,
            source: DecodeError::ResponseLength {
                expected: 2,
                got: 1,
            },
        };
        assert!(!decode.drops_connection());
    }

    #[test]
    fn status_counts_polls() {
        let register = Register {
            name: "pto_hours".to_owned(),
            kind: RegisterKind::Input,
            address: 0,
            value_type: fleetcare_ingest::modbus::ValueType::U32,
            word_order: fleetcare_ingest::modbus::WordOrder::HighFirst,
            scale: 0.1,
        };
        let mut state = DeviceState::default();
        let t = Timestamp::from_micros(1);
        state.record_failure(t, &PollError::ConnectTimeout(Duration::from_secs(1)));
        state.record_failure(
            t,
            &PollError::Exception {
                kind: RegisterKind::Input,
                start: 0,
                count: 2,
                exception: ExceptionCode::ServerDeviceBusy,
            },
        );
        assert_eq!(
            (
                state.consecutive_failures,
                state.polls_failed,
                state.exceptions
            ),
            (2, 2, 1)
        );
        state.record_ok(t, &[(&register, 1.5)]);
        assert_eq!((state.consecutive_failures, state.polls_ok), (0, 1));
        assert_eq!(state.values.get("pto_hours"), Some(&1.5));
        assert!(state.last_error.is_some());
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
