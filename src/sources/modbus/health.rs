//! What each device's polls have done: the status the health page shows,
//! the log decisions (one line when a device's health changes, not one
//! per poll), and the [`DeviceLabel`] a device goes by in both.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::modbus::{Register, RegisterKind};

use super::error::PollError;
use crate::catalog::ModelId;
use crate::config::ModbusDevice;

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
    /// A device that has not been polled yet.
    pub(super) fn new(label: DeviceLabel, unit: u8, model: ModelId) -> Self {
        Self {
            label,
            unit,
            model,
            state: Mutex::default(),
        }
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> DeviceState {
        self.lock().clone()
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut DeviceState)) {
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
    pub(super) fn record_ok(&mut self, at: Timestamp, values: &[(&Register, f64)]) {
        self.last_ok = Some(at);
        self.consecutive_failures = 0;
        self.polls_ok += 1;
        for (register, value) in values {
            self.values.insert(register.name.clone(), *value);
        }
    }

    pub(super) fn record_failure(&mut self, at: Timestamp, error: &PollError) {
        self.last_error = Some((at, error.to_string()));
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.polls_failed += 1;
        if matches!(error, PollError::Exception { .. }) {
            self.exceptions += 1;
        }
    }
}

/// A device's health as far as logging goes: a log line is written when it
/// changes, not on every poll, so a controller that is off for a weekend
/// writes two lines, not thousands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
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

impl Health {
    /// The kind of failure `error` is, for logging changes rather than
    /// repeats.
    pub(super) fn of(error: &PollError) -> Self {
        match error {
            PollError::Connect(_) | PollError::ConnectTimeout(_) => Self::Unreachable,
            PollError::Timeout { .. } => Self::NotAnswering,
            PollError::Link { .. } => Self::LinkError,
            PollError::Exception {
                kind,
                start,
                exception,
                ..
            } => Self::Exception {
                kind: *kind,
                start: *start,
                code: u8::from(*exception),
            },
            PollError::Decode { .. } => Self::BadResponse,
        }
    }
}

/// What to log after a poll whose outcome is `now`, given the outcome of
/// the poll before (`None` at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LogChange {
    /// Same as before: debug level only.
    Repeat,
    /// The first successful poll, or the first after failures.
    Up,
    /// A new kind of failure.
    Down,
}

pub(super) fn log_change(before: Option<Health>, now: Health) -> LogChange {
    match (before, now) {
        (Some(b), n) if b == n => LogChange::Repeat,
        (_, Health::Ok) => LogChange::Up,
        _ => LogChange::Down,
    }
}

/// Logs a failed poll: a warning naming what went wrong when it is a new
/// kind of failure, at debug level when it repeats the last one.
pub(super) fn log_failure(
    label: &DeviceLabel,
    error: &PollError,
    change: LogChange,
    retry_in: Duration,
) {
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

#[cfg(test)]
mod tests {
    use tokio_modbus::ExceptionCode;

    use super::*;

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
}
