//! Alerts: what turns findings into tickets and tells people about them.
//!
//! ```text
//! writer ──records──▶ critical ──NewAlert──┐
//! periodic jobs ──rows──▶ findings ────────┼─▶ Tickets::raise ──Opened──▶ notify
//! Tickets::check_slas ──breaches───────────┘                              │
//!                                   alert log ◀── limit (per vehicle) ◀───┘
//!                                   MQTT fleet/{fleet}/alerts, webhooks
//! ```
//!
//! - `critical`: the real-time path — a fault start with the red stop lamp
//!   on, or of a fault the catalogue calls critical, is a P1 fault ticket.
//! - `findings`: maintenance due and recurring/repeat/batch findings of the
//!   periodic jobs as ticket requests.
//! - `limit`: per-vehicle rate limit, the excess sent as one digest.
//! - `webhook`: HMAC-SHA256 signing and delivery with back-off.
//! - `notify`: the alert log, the MQTT alerts topic and the webhooks, off
//!   the ingest path.
//! - `visits`: maintenance due as one service visit per vehicle.
//! - `support`: the support team's channel (MQTT topic and webhooks).
//! - `service`: the tasks that tie these together in `fleetcare run`.
//!
//! Only a newly opened ticket (and an SLA breach or escalation) is alerted:
//! a repeat of an open problem adds an occurrence to its ticket silently.
//! Tickets are opened only for registered vehicles (C14): a vehicle the
//! registry does not have is alerted to support once instead
//! ([`AlertKind::UnknownVehicle`]); and one message's fault starts raise at
//! most `alerts.max_tickets_per_message` tickets.

pub mod critical;
pub mod findings;
pub mod limit;
pub mod notify;
pub mod service;
pub mod support;
pub mod visits;
pub mod webhook;

#[cfg(test)]
mod parts_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod visit_tests;

use chrono::{DateTime, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::pipeline::VehicleKey;
use serde::Serialize;

use crate::catalog::ModelId;
use crate::tickets::{Priority, Ticket, TicketId};

/// Why an alert was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    CriticalFault,
    Maintenance,
    Recurring,
    RepeatRepair,
    BatchDefect,
    /// A condition signal drifting toward a fault (C12).
    Condition,
    Complaint,
    SlaBreach,
    ComplaintEscalated,
    /// Alerts held back by the per-vehicle rate limit, sent as one.
    Digest,
    /// To support: a vehicle sends data but is not in the fleet registry,
    /// so no ticket is opened for it. Once per vehicle.
    UnknownVehicle,
    /// To support: a ticket has waited in `awaiting_parts` longer than
    /// `parts::WAIT_ALERT_DAYS` (C11). Once per ticket.
    PartsOverdue,
    /// To support: a delivered ticket's follow-up call is overdue. Once
    /// per ticket.
    FollowUpOverdue,
    /// To support: more of a recall campaign's tickets are finished.
    RecallProgress,
}

impl AlertKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CriticalFault => "critical_fault",
            Self::Maintenance => "maintenance",
            Self::Recurring => "recurring",
            Self::RepeatRepair => "repeat_repair",
            Self::BatchDefect => "batch_defect",
            Self::Condition => "condition",
            Self::Complaint => "complaint",
            Self::SlaBreach => "sla_breach",
            Self::ComplaintEscalated => "complaint_escalated",
            Self::Digest => "digest",
            Self::UnknownVehicle => "unknown_vehicle",
            Self::PartsOverdue => "parts_overdue",
            Self::FollowUpOverdue => "follow_up_overdue",
            Self::RecallProgress => "recall_progress",
        }
    }

    /// Alerts for support alone: not published on the fleet's topic nor
    /// sent to its webhooks (an unknown vehicle's fleet is only what a
    /// topic claimed; a follow-up is support's own call), and not held by
    /// the per-vehicle limit (there is one per vehicle or ticket).
    pub const fn for_support(self) -> bool {
        matches!(
            self,
            Self::UnknownVehicle
                | Self::PartsOverdue
                | Self::FollowUpOverdue
                | Self::RecallProgress
        )
    }

    /// Alerts that reach the support channel (C10): escalations, SLA
    /// breaches, batch defects and the support-only ones; at once, never
    /// held by the per-vehicle limit.
    pub const fn to_support(self) -> bool {
        matches!(
            self,
            Self::SlaBreach | Self::ComplaintEscalated | Self::BatchDefect
        ) || self.for_support()
    }
}

/// One alert, as published on `fleet/{fleet}/alerts` and to webhooks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub id: String,
    pub at: DateTime<Utc>,
    pub kind: AlertKind,
    pub fleet: Option<FleetId>,
    pub vehicle: Option<VehicleId>,
    pub model: Option<ModelId>,
    pub ticket: Option<TicketId>,
    pub priority: Option<Priority>,
    /// In the fleet's language (`fleets import`; C10).
    pub title: String,
    /// The English title, beside `title` whatever the fleet's language.
    pub title_en: String,
    pub details: String,
    /// For a digest: the alerts it stands for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Alert>,
}

impl Alert {
    /// The alert for a ticket that was just opened (or breached, escalated).
    pub fn for_ticket(kind: AlertKind, ticket: &Ticket, at: DateTime<Utc>) -> Self {
        Self {
            title_en: ticket.title.clone(),
            id: new_id(),
            at,
            kind,
            fleet: ticket.fleet.clone(),
            vehicle: ticket.vehicle.clone(),
            model: ticket.model.clone(),
            ticket: Some(ticket.id),
            priority: Some(ticket.priority),
            title: ticket.title.clone(),
            details: ticket.details.clone(),
            held: Vec::new(),
        }
    }

    /// [`Alert::for_ticket`] with the title in `lang`, rendered from the
    /// ticket's facts (`title_en` keeps the English one).
    pub fn for_ticket_in(
        kind: AlertKind,
        ticket: &Ticket,
        at: DateTime<Utc>,
        catalog: &crate::catalog::Catalog,
        lang: crate::tickets::Language,
    ) -> Self {
        Self {
            title: crate::tickets::title_in(ticket, catalog, lang),
            ..Self::for_ticket(kind, ticket, at)
        }
    }
}

impl Alert {
    /// To support: `vehicle` sends data under its fleet but is not in the
    /// registry (or is, under `registered_fleet`).
    pub fn unknown_vehicle(
        vehicle: &VehicleKey,
        registered_fleet: Option<&FleetId>,
        at: DateTime<Utc>,
    ) -> Self {
        let why = match registered_fleet {
            Some(f) => format!("is registered under fleet {f}, not {}", vehicle.fleet),
            None => "is not in the fleet registry".to_owned(),
        };
        Self {
            id: new_id(),
            at,
            kind: AlertKind::UnknownVehicle,
            fleet: Some(vehicle.fleet.clone()),
            vehicle: Some(vehicle.vehicle.clone()),
            model: None,
            ticket: None,
            priority: None,
            title_en: format!("{}: not in the fleet registry", vehicle.vehicle),
            title: format!("{}: not in the fleet registry", vehicle.vehicle),
            details: format!(
                "Vehicle {} sends data under fleet {} but {why}: its data is stored and listed by `fleetcare vehicles unknown`, and no ticket is opened for it until it is imported with `fleetcare vehicles import`.",
                vehicle.vehicle, vehicle.fleet
            ),
            held: Vec::new(),
        }
    }
}

impl Alert {
    /// To support: `ticket` has waited for parts since `since` (C11).
    pub fn parts_overdue(ticket: &Ticket, since: DateTime<Utc>, at: DateTime<Utc>) -> Self {
        let days = (at - since).num_days();
        Self {
            title: format!(
                "#{} waiting for parts for {days} days: {}",
                ticket.id, ticket.title
            ),
            details: format!(
                "Ticket {} has been in awaiting_parts since {} ({days} days, more than {}); check the order and the depot's stock (fleetcare report parts --reorder).",
                ticket.id,
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                crate::parts::WAIT_ALERT_DAYS
            ),
            ..Self::for_ticket(AlertKind::PartsOverdue, ticket, at)
        }
    }

    /// To support: the progress of recall campaign `c`.
    pub fn recall_progress(c: &crate::tickets::Campaign, at: DateTime<Utc>) -> Self {
        let title = format!(
            "Recall campaign {}: {} of {} vehicles done",
            c.id, c.closed, c.vehicles
        );
        Self {
            id: new_id(),
            at,
            kind: AlertKind::RecallProgress,
            fleet: None,
            vehicle: None,
            model: Some(c.model.clone()),
            ticket: None,
            priority: None,
            // To support, in English.
            title_en: title.clone(),
            title,
            details: format!(
                "{} (SPN {} FMI {}): {} closed, {} cancelled, {} open.",
                c.title, c.spn, c.fmi, c.closed, c.cancelled, c.open
            ),
            held: Vec::new(),
        }
    }
}

/// A random alert id (hex). Falls back to the time when the operating
/// system has no randomness to give, which only risks a collision.
pub(crate) fn new_id() -> String {
    crate::runtime::secret::random_hex(8).unwrap_or_else(|_| {
        format!(
            "{:016x}",
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        )
    })
}
