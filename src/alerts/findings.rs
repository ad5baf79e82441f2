//! Findings of the periodic jobs as ticket requests (maintenance due is a
//! service visit per vehicle: `super::visits`).
//!
//! Priorities (C8 fixes only P1, for critical faults): a repeat repair and a batch
//! defect (the repair did not hold; a recall candidate) are P2; a
//! recurring failure is P2 when the catalogue rates the fault high or
//! critical, else P3; a condition drift (C12) is P3, one ticket per
//! vehicle and signal.

use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, Severity};
use crate::report::{ConditionRow, RecurringKind, RecurringRow};
use crate::tickets::{NewAlert, Priority, TicketKind};

/// A recurring-failure, repeat-repair or batch-defect ticket request.
pub fn recurring(row: &RecurringRow, catalog: &Catalog, at: DateTime<Utc>) -> NewAlert {
    let entry = row
        .model
        .as_ref()
        .and_then(|m| catalog.fault(m, row.spn, row.fmi));
    let name = entry.map_or_else(
        || format!("SPN {} FMI {}", row.spn.raw(), row.fmi.raw()),
        |e| e.name.clone(),
    );
    let serious = entry.is_some_and(|e| e.severity >= Severity::High);
    let (kind, priority, what) = match row.kind {
        RecurringKind::Recurring => (
            TicketKind::Recurring,
            if serious { Priority::P2 } else { Priority::P3 },
            format!("{} episodes in the window", row.episodes),
        ),
        RecurringKind::RepeatRepair => (
            TicketKind::RepeatRepair,
            Priority::P2,
            format!("{} episodes after the last repair", row.episodes),
        ),
        RecurringKind::BatchDefect => (
            TicketKind::BatchDefect,
            Priority::P2,
            format!("{} episodes on {} vehicles", row.episodes, row.vehicles),
        ),
    };
    let subject = match (&row.vehicle, &row.model) {
        (Some(v), _) => v.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => "fleet".to_owned(),
    };
    NewAlert {
        kind,
        // A batch defect is per model across fleets: its fleet only when
        // every affected vehicle is in one.
        fleet: row.fleet.clone(),
        vehicle: row.vehicle.clone(),
        model: row.model.clone(),
        key: format!("{}:{}", row.spn.raw(), row.fmi.raw()),
        priority,
        title: format!("{subject}: {name} ({})", kind_label(row.kind)),
        details: format!(
            "{what}, first {} last {}.",
            row.first_seen.to_rfc3339(),
            row.last_seen.to_rfc3339()
        ),
        at,
    }
}

/// A condition ticket request (C12): P3, keyed by the signal, naming the
/// fault the drift leads to and its parts.
pub fn condition(row: &ConditionRow, catalog: &Catalog, at: DateTime<Utc>) -> NewAlert {
    let fault = catalog.fault(&row.model, row.spn, row.fmi).map_or_else(
        || format!("SPN {} FMI {}", row.spn.raw(), row.fmi.raw()),
        |e| e.name.clone(),
    );
    let parts: Vec<String> = catalog
        .model(&row.model)
        .and_then(|m| m.conditions.iter().find(|c| c.signal == row.signal))
        .map(|c| {
            c.parts
                .iter()
                .map(|p| format!("{} × {}", p.qty, p.part))
                .collect()
        })
        .unwrap_or_default();
    let parts = if parts.is_empty() {
        String::new()
    } else {
        format!(" Parts: {}.", parts.join(", "))
    };
    NewAlert {
        kind: TicketKind::Condition,
        fleet: Some(row.fleet.clone()),
        vehicle: Some(row.vehicle.clone()),
        model: Some(row.model.clone()),
        key: row.signal.clone(),
        priority: Priority::P3,
        title: format!(
            "{}: {} drifting {} toward {fault}",
            row.vehicle, row.signal, row.direction
        ),
        details: format!(
            "{} is {} where {} is expected under the same load, speed and ambient (drift score {}, since {}); it leads to {fault} (SPN {} FMI {}).{parts}",
            row.signal,
            row.current,
            row.baseline,
            row.score,
            row.started.to_rfc3339(),
            row.spn.raw(),
            row.fmi.raw(),
        ),
        at,
    }
}

fn kind_label(k: RecurringKind) -> &'static str {
    match k {
        RecurringKind::Recurring => "recurring failure",
        RecurringKind::RepeatRepair => "repeat repair",
        RecurringKind::BatchDefect => "batch defect",
    }
}

#[cfg(test)]
mod tests {
    use fleetcare_ingest::Timestamp;
    use fleetcare_ingest::ids::{FleetId, VehicleId};
    use fleetcare_ingest::j1939::{Fmi, Spn};

    use super::*;
    use crate::catalog::{Direction, ModelId};

    // Issue 23: a condition finding is a P3 `condition` ticket per vehicle
    // and signal that names the fault the drift leads to and its parts.
    #[test]
    fn a_condition_finding_names_its_fault_and_parts() {
        let catalog =
            Catalog::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
                .unwrap();
        let row = ConditionRow {
            fleet: FleetId::new("acme").unwrap(),
            vehicle: VehicleId::new("TRK-7").unwrap(),
            model: ModelId::new("compactor-c12").unwrap(),
            signal: "hydraulic_oil_temp_c".to_owned(),
            direction: Direction::Up,
            started: Timestamp::from_micros(1_772_323_200_000_000),
            score: 9.5,
            baseline: 61.2,
            current: 68.4,
            spn: Spn::new(520_192).unwrap(),
            fmi: Fmi::new(0).unwrap(),
        };
        let at = chrono::Utc::now();
        let a = condition(&row, &catalog, at);
        assert_eq!((a.kind, a.priority), (TicketKind::Condition, Priority::P3));
        assert_eq!(a.key, "hydraulic_oil_temp_c");
        assert_eq!(a.vehicle.as_ref().map(|v| v.as_str()), Some("TRK-7"));
        assert!(
            a.title.contains("Hydraulic oil temperature above normal"),
            "{}",
            a.title
        );
        assert!(a.details.contains("1 × FLT-HYD-RET-01"), "{}", a.details);
        assert!(a.details.contains("68.4") && a.details.contains("61.2"));
    }
}
