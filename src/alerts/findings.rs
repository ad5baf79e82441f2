//! Findings of the periodic jobs as ticket requests (maintenance due is a
//! service visit per vehicle: `super::visits`).
//!
//! Priorities (C8 fixes only P1, for critical faults): a repeat repair and a batch
//! defect (the repair did not hold; a recall candidate) are P2; a
//! recurring failure is P2 when the catalogue rates the fault high or
//! critical, else P3.

use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, Severity};
use crate::report::{RecurringKind, RecurringRow};
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

fn kind_label(k: RecurringKind) -> &'static str {
    match k {
        RecurringKind::Recurring => "recurring failure",
        RecurringKind::RepeatRepair => "repeat repair",
        RecurringKind::BatchDefect => "batch defect",
    }
}
