//! What a ticket is (C7's JSON fields, C8's kinds and priorities) and what
//! callers hand in: alerts, filters.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use serde::{Deserialize, Serialize};

use super::state::TicketState;
use crate::catalog::{ModelId, TaskId, WarrantyDecision};
pub use crate::config::Zone;

/// A ticket number: small and readable (1, 2, 3…), given in order of
/// opening; JSON carries it as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TicketId(pub i64);

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for TicketId {
    type Err = UnknownName;

    /// A positive number; `#42` is read as 42, the way people write it.
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        let digits = s.strip_prefix('#').unwrap_or(s);
        match digits.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Self(n)),
            _ => Err(UnknownName {
                what: "ticket number",
                value: s.to_owned(),
                expected: "a positive whole number such as 42".to_owned(),
            }),
        }
    }
}

/// A name that is not one of the names a field takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not known; use {expected}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
    pub expected: String,
}

impl UnknownName {
    pub(crate) fn new<const N: usize>(what: &'static str, value: &str, names: [&str; N]) -> Self {
        Self {
            what,
            value: value.to_owned(),
            expected: names.join(", "),
        }
    }
}

/// Generates `as_str`, `Display`, `FromStr` and `ALL` for an enum whose
/// text form is fixed, so the database, the CLI and JSON spell it alike.
macro_rules! named_enum {
    ($name:ident, $what:literal, { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName::new($what, s, [$($text),*]))
            }
        }
    };
}

/// What a ticket is about (C8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketKind {
    /// A critical fault seen live (red stop lamp or a critical catalogue severity); key `SPN:FMI`.
    Fault,
    /// A maintenance task falling due; key the task id.
    Maintenance,
    /// A fault recurring on one vehicle; key `SPN:FMI`.
    Recurring,
    /// A fault back soon after its repair; key `SPN:FMI`.
    RepeatRepair,
    /// One fault on many vehicles of a model, across fleets; key `SPN:FMI`.
    BatchDefect,
    /// A customer's report by phone or email.
    Complaint,
    /// A report entered by staff.
    Manual,
    /// One vehicle's share of a recall campaign (C10); key `SPN:FMI`.
    Recall,
    /// A condition signal drifting toward a catalogued fault (C12); key
    /// the signal name, one ticket per vehicle and signal.
    Condition,
}

named_enum!(TicketKind, "kind", {
    Fault => "fault",
    Maintenance => "maintenance",
    Recurring => "recurring",
    RepeatRepair => "repeat_repair",
    BatchDefect => "batch_defect",
    Complaint => "complaint",
    Manual => "manual",
    Recall => "recall",
    Condition => "condition",
});

/// Urgency, P1 the most urgent (C8: P1 for a red stop lamp or a critical
/// fault). The order of the variants is the order of urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

named_enum!(Priority, "priority", { P1 => "P1", P2 => "P2", P3 => "P3", P4 => "P4" });

impl Priority {
    /// One step more urgent; P1 stays P1.
    pub fn raised(self) -> Self {
        match self {
            Self::P1 | Self::P2 => Self::P1,
            Self::P3 => Self::P2,
            Self::P4 => Self::P3,
        }
    }
}

/// How a closed repair ended (C8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Repaired,
    PartReplaced,
    NoFaultFound,
    Misuse,
}

named_enum!(Outcome, "outcome", {
    Repaired => "repaired",
    PartReplaced => "part_replaced",
    NoFaultFound => "no_fault_found",
    Misuse => "misuse",
});

/// The service commitment of a ticket: deadlines fixed when it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sla {
    /// Leave `open` by then.
    pub respond_by: DateTime<Utc>,
    /// Reach `delivered` by then.
    pub resolve_by: DateTime<Utc>,
    /// A deadline was missed (recorded once by `check_slas`).
    pub breached: bool,
    /// Customer reports (C10): a technician on site by then (end of the
    /// 1st working day after the report in a city zone, the 2nd in a
    /// rural one); None for other kinds.
    pub on_site_by: Option<DateTime<Utc>>,
    /// When a technician was on site (a move with `on_site: true`, or to
    /// `diagnosing`).
    pub on_site_at: Option<DateTime<Utc>>,
    /// Set at `delivered`: the follow-up call (the close with the
    /// customer's score) is due by then.
    pub follow_up_by: Option<DateTime<Utc>>,
    /// The follow-up was overdue and support was alerted (once).
    pub follow_up_overdue: bool,
}

/// How a complaint came in (C10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Phone,
    Email,
    Visit,
    Web,
}

named_enum!(Channel, "channel", {
    Phone => "phone",
    Email => "email",
    Visit => "visit",
    Web => "web",
});

/// Who complained and how to call them back (C10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Complainant {
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// A complaint or manual report as filed ([`super::Tickets::file_report`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerReport {
    /// `complaint` or `manual`.
    pub kind: TicketKind,
    pub fleet: FleetId,
    /// None: about the service or the fleet as a whole, not one truck.
    pub vehicle: Option<VehicleId>,
    pub model: Option<ModelId>,
    pub title: String,
    pub details: String,
    pub complainant: Option<Complainant>,
    pub channel: Option<Channel>,
    /// The zone of the outlet that will go on site; None: `sla.default_zone`.
    pub zone: Option<Zone>,
}

/// Why a task is on a service visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitReason {
    /// Joined while falling due within the visit's pull-in window.
    PullIn,
    DueSoon,
    Overdue,
}

named_enum!(VisitReason, "visit reason", {
    PullIn => "pull_in",
    DueSoon => "due_soon",
    Overdue => "overdue",
});

/// One task of a service visit (a maintenance ticket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisitTask {
    pub task: TaskId,
    /// Why it is on the visit (as when it joined).
    pub status: VisitReason,
    pub added_at: DateTime<Utc>,
    /// Set at closing: performed (a service record) or left for later.
    pub done: Option<bool>,
}

/// A part used in a repair, and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartUsed {
    pub part: String,
    pub qty: u32,
    /// Claimed under warranty; decided when the ticket closes (C10),
    /// null before.
    #[serde(default)]
    pub covered: Option<bool>,
}

/// A ticket as the API shows it (C7 field names).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ticket {
    pub id: TicketId,
    /// None only for a batch defect across fleets.
    pub fleet: Option<FleetId>,
    pub vehicle: Option<VehicleId>,
    pub model: Option<ModelId>,
    pub kind: TicketKind,
    /// `SPN:FMI`, a task id, or the ticket number for complaints and manual reports.
    pub key: String,
    pub state: TicketState,
    pub priority: Priority,
    /// In the fleet's language where the API and the CLI answer (C10);
    /// as stored (English) elsewhere.
    pub title: String,
    /// The English title, as the ticket was opened with.
    pub title_en: String,
    pub details: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Alerts folded into this ticket, the first included.
    pub occurrences: u32,
    pub sla: Sla,
    /// The technician doing the work (set when dispatched).
    pub assignee: Option<String>,
    /// The service outlet: own workshop or contracted partner.
    pub outlet: Option<String>,
    /// Set when the ticket reached `closed` or `cancelled`.
    pub closed_at: Option<DateTime<Utc>>,
    pub escalated: bool,
    pub outcome: Option<Outcome>,
    pub satisfaction: Option<u8>,
    pub labour_hours: Option<f64>,
    pub parts_used: Vec<PartUsed>,
    /// Decided when the ticket opened (C10): `{status, until, basis}`.
    pub warranty: WarrantyDecision,
    /// What support said at closing: false declines every claim, true
    /// accepts an `unknown` warranty (papers checked by hand); null: not
    /// said.
    pub warranty_claim: Option<bool>,
    /// Whether the labour was claimed; decided when the ticket closes.
    pub labour_covered: Option<bool>,
    /// The recall campaign of a `recall` ticket.
    pub campaign: Option<i64>,
    /// Complaints: who complained.
    pub complainant: Option<Complainant>,
    /// Complaints: how the complaint came in.
    pub channel: Option<Channel>,
    /// The zone of the outlet going on site (customer reports).
    pub zone: Option<Zone>,
    /// A delivered repair's verification (C10): `{status: watching |
    /// verified | repeated | returned, at}`; null for tickets not watched.
    pub verification: Option<super::verification::Verification>,
    /// On a repeat repair: the earlier ticket, its technician and outlet.
    pub repeat_of: Option<super::verification::RepeatOf>,
}

/// One line of a ticket's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketEvent {
    pub at: DateTime<Utc>,
    /// Who made the change: a user or token name, or `fleetcare` for the
    /// alert path and the SLA check.
    pub actor: String,
    /// `opened`, `occurrence`, `moved`, `breach`, `escalated` or `note`.
    pub kind: String,
    pub from: Option<TicketState>,
    pub to: Option<TicketState>,
    pub note: Option<String>,
}

/// A ticket with its history, as `GET /tickets/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketWithEvents {
    #[serde(flatten)]
    pub ticket: Ticket,
    pub events: Vec<TicketEvent>,
    /// Before dispatch: the registered outlet serving the vehicle's depot,
    /// proposed for the dispatch (C10); absent when none is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlet_proposed: Option<crate::registry::Outlet>,
    /// A service visit's tasks (maintenance tickets only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<VisitTask>,
}

/// What an alert asks a ticket for. `key` is `SPN:FMI` for faults,
/// recurring failures, repeat repairs and batch defects, the task id for
/// maintenance.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub kind: TicketKind,
    /// None only for a batch defect across fleets.
    pub fleet: Option<FleetId>,
    /// None only for a batch defect.
    pub vehicle: Option<VehicleId>,
    /// Needed for a batch defect (its tickets are per model).
    pub model: Option<ModelId>,
    pub key: String,
    pub priority: Priority,
    pub title: String,
    pub details: String,
    pub at: DateTime<Utc>,
}

/// What `raise` did with an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Raised {
    /// No ticket was active for the key: this one was opened.
    Opened(Ticket),
    /// The active ticket for the key counted one more occurrence.
    Occurrence(Ticket),
}

impl Raised {
    pub fn ticket(&self) -> &Ticket {
        match self {
            Self::Opened(t) | Self::Occurrence(t) => t,
        }
    }

    pub fn into_ticket(self) -> Ticket {
        match self {
            Self::Opened(t) | Self::Occurrence(t) => t,
        }
    }
}

/// Which tickets `list` returns; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketFilter {
    pub state: Option<TicketState>,
    pub kind: Option<TicketKind>,
    pub fleet: Option<FleetId>,
    pub vehicle: Option<VehicleId>,
    /// None: all fleets. Some: only these fleets (an operator's), and then
    /// tickets without a fleet (cross-fleet batch defects) are hidden.
    pub fleets_visible: Option<Vec<FleetId>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip_and_match_serde() {
        for kind in TicketKind::ALL {
            assert_eq!(kind.as_str().parse::<TicketKind>().unwrap(), *kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), *p);
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        for o in Outcome::ALL {
            assert_eq!(o.as_str().parse::<Outcome>().unwrap(), *o);
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        let e = "warranty".parse::<TicketKind>().unwrap_err().to_string();
        assert_eq!(
            e,
            "kind \"warranty\" is not known; use fault, maintenance, recurring, repeat_repair, batch_defect, complaint, manual, recall, condition"
        );
    }

    #[test]
    fn ticket_ids_are_plain_numbers() {
        assert_eq!(TicketId(42).to_string(), "42");
        assert_eq!(serde_json::to_string(&TicketId(42)).unwrap(), "42");
        assert_eq!("#7".parse::<TicketId>().unwrap(), TicketId(7));
        assert!("0".parse::<TicketId>().is_err());
        assert!("x1".parse::<TicketId>().is_err());
    }

    #[test]
    fn priorities_order_by_urgency_and_rise_one_step() {
        assert!(Priority::P1 < Priority::P4);
        assert_eq!(Priority::P4.raised(), Priority::P3);
        assert_eq!(Priority::P2.raised(), Priority::P1);
        assert_eq!(Priority::P1.raised(), Priority::P1);
    }
}
