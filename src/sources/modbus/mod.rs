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
//! Sans-IO pieces, each tested beside its code: [`target`] (which devices
//! are polled, with what plan and schedule: when the next poll or
//! reconnect is due), [`health`] (the status the health page shows and
//! what to log when a device's health changes) and [`error`] (why a poll
//! failed and whether that drops the link). This file is the IO: one task
//! per device that connects, reads and hands the telemetry on. Register
//! planning, decoding and what a poll's values become in C1 terms are the
//! sans-IO [`fleetcare_ingest::modbus`].
//!
//! tokio-modbus has one outstanding request per connection and no
//! reconnect of its own; its `Result<Result<_, ExceptionCode>, Error>` keeps
//! "the device refused" (an exception response, the link is fine) apart
//! from "the link failed" (drop it).

pub mod error;
pub mod health;
pub mod target;

pub use error::PollError;
pub use health::{DeviceLabel, DeviceState, DeviceStatus};
pub use target::{PollTarget, RECONNECT, TargetError, resolve_targets};

use std::io;
use std::time::Duration;

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::modbus::{ReadRequest, Register, RegisterKind, meter_telemetry};
use fleetcare_ingest::topic::{Channel, data_topic};
use tokio::time::Instant;
use tokio_modbus::Slave;
use tokio_modbus::client::{Client as _, Context, Reader as _};

use crate::runtime::Shutdown;
use crate::store::{Incoming, IngestHandle};
use health::{Health, LogChange, log_change, log_failure};

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
    let polls = handle.metrics().modbus_polls(&label.address);
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
                polls.ok.inc();
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
                next_poll = target.next_poll_at(started, Instant::now(), None);
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
                polls.failed.inc();
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
                next_poll = target.next_poll_at(started, now, dropped.then_some(link_failures));
                let retry_in = next_poll.saturating_duration_since(now);
                let class = Health::of(&error);
                log_failure(label, &error, log_change(health, class), retry_in);
                health = Some(class);
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
