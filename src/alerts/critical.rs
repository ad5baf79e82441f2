//! The real-time path: which fault starts open a P1 ticket at once (C8).

use chrono::{DateTime, Utc};
use fleetcare_ingest::j1939::LampStatus;
use fleetcare_ingest::pipeline::Record;

use crate::catalog::{Catalog, ModelId, Severity};
use crate::tickets::{NewAlert, Priority, TicketKind};

/// The ticket a record asks for, if it is a critical fault start: the red
/// stop lamp on, or a fault the vehicle's model's catalogue calls critical.
/// `model`: the vehicle's, from the registry.
pub fn assess(record: &Record, catalog: &Catalog, model: Option<&ModelId>) -> Option<NewAlert> {
    let Record::FaultStarted {
        vehicle,
        ts,
        dtc,
        lamps,
        ..
    } = record
    else {
        return None;
    };
    let model = model.cloned();
    let entry = model
        .as_ref()
        .and_then(|m| catalog.fault(m, dtc.spn, dtc.fmi));
    let red = lamps.red_stop == LampStatus::On;
    let critical = entry.is_some_and(|e| e.severity == Severity::Critical);
    if !red && !critical {
        return None;
    }
    let name = entry.map_or_else(
        || format!("SPN {} FMI {}", dtc.spn.raw(), dtc.fmi.raw()),
        |e| e.name.clone(),
    );
    let why = match (red, critical) {
        (true, true) => "red stop lamp on; critical in the catalogue",
        (true, false) => "red stop lamp on",
        _ => "critical in the catalogue",
    };
    let at = DateTime::<Utc>::from_timestamp_micros(ts.as_micros()).unwrap_or_else(Utc::now);
    Some(NewAlert {
        kind: TicketKind::Fault,
        fleet: Some(vehicle.fleet.clone()),
        vehicle: Some(vehicle.vehicle.clone()),
        model,
        key: format!("{}:{}", dtc.spn.raw(), dtc.fmi.raw()),
        priority: Priority::P1,
        title: format!("{}: {name}", vehicle.vehicle),
        details: format!(
            "SPN {} FMI {} (occurrence count {}) started at {}; {why}.",
            dtc.spn.raw(),
            dtc.fmi.raw(),
            dtc.oc.raw(),
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        at,
    })
}
