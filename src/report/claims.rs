//! `report claims` (C10): what to claim from the maker for tickets closed
//! in a period — one row per covered part and one per covered labour
//! line, for tickets whose outcome is not `no_fault_found` or `misuse`.
//! Coverage is decided when the ticket closes (see `tickets::warranty`);
//! this report only lists it.

use chrono::{DateTime, NaiveDate, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use serde::Serialize;

use super::output::Row;
use crate::catalog::ModelId;
use crate::registry::ServiceTask;
use crate::tickets::{Outcome, Ticket, TicketError, TicketFilter, TicketId, TicketState, Tickets};

/// Days closed tickets are counted in, both ends included; `None`: open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Period {
    /// Whether `t` falls on a day of the period (UTC days).
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let day = t.date_naive();
        self.from.is_none_or(|f| day >= f) && self.to.is_none_or(|to| day <= to)
    }
}

/// One line of a warranty claim (C10 field names).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimRow {
    pub ticket: TicketId,
    pub fleet: Option<FleetId>,
    pub vehicle: Option<VehicleId>,
    pub vin: Option<String>,
    pub model: Option<ModelId>,
    pub closed_at: DateTime<Utc>,
    /// The fault code of fault-like tickets (`SPN:FMI` keys).
    pub spn: Option<u32>,
    pub fmi: Option<u8>,
    /// A part line: the part and its quantity; null on the labour line.
    pub part: Option<String>,
    pub qty: Option<u32>,
    /// The labour line: the ticket's labour hours; null on part lines.
    pub labour_hours: Option<f64>,
    pub outlet: Option<String>,
}

impl Row for ClaimRow {
    const FIELDS: &'static [&'static str] = &[
        "ticket",
        "fleet",
        "vehicle",
        "vin",
        "model",
        "closed_at",
        "spn",
        "fmi",
        "part",
        "qty",
        "labour_hours",
        "outlet",
    ];
}

/// The claim lines of one closed ticket, parts first in the order used.
pub fn claim_rows(ticket: &Ticket, vin: Option<&str>) -> Vec<ClaimRow> {
    if ticket.state != TicketState::Closed
        || matches!(
            ticket.outcome,
            Some(Outcome::NoFaultFound | Outcome::Misuse)
        )
    {
        return Vec::new();
    }
    let Some(closed_at) = ticket.closed_at else {
        return Vec::new();
    };
    let (spn, fmi) =
        match ServiceTask::parse(&format!("{}{}", crate::registry::REPAIR_PREFIX, ticket.key)) {
            Ok(ServiceTask::Repair { spn, fmi }) => (Some(spn.raw()), Some(fmi.raw())),
            _ => (None, None),
        };
    let line = |part: Option<String>, qty: Option<u32>, labour_hours: Option<f64>| ClaimRow {
        ticket: ticket.id,
        fleet: ticket.fleet.clone(),
        vehicle: ticket.vehicle.clone(),
        vin: vin.map(str::to_owned),
        model: ticket.model.clone(),
        closed_at,
        spn,
        fmi,
        part,
        qty,
        labour_hours,
        outlet: ticket.outlet.clone(),
    };
    let mut rows: Vec<ClaimRow> = ticket
        .parts_used
        .iter()
        .filter(|p| p.covered == Some(true))
        .map(|p| line(Some(p.part.clone()), Some(p.qty), None))
        .collect();
    if ticket.labour_covered == Some(true) {
        rows.push(line(None, None, ticket.labour_hours));
    }
    rows
}

/// The claim lines of the tickets closed in `period` among those of
/// `fleets_visible` (`None`: every fleet), oldest ticket first.
pub async fn claims(
    tickets: &Tickets,
    period: Period,
    fleets_visible: Option<Vec<FleetId>>,
) -> Result<Vec<ClaimRow>, TicketError> {
    let filter = TicketFilter {
        state: Some(TicketState::Closed),
        fleets_visible,
        ..TicketFilter::default()
    };
    let mut closed = tickets.list(&filter).await?;
    closed.retain(|t| t.closed_at.is_some_and(|c| period.contains(c)));
    closed.sort_by_key(|t| t.id);
    let vins: std::collections::HashMap<VehicleId, String> =
        crate::registry::vehicles(tickets.db())
            .await?
            .into_iter()
            .filter_map(|v| Some((v.id, v.vin?.as_str().to_owned())))
            .collect();
    Ok(closed
        .iter()
        .flat_map(|t| {
            let vin = t.vehicle.as_ref().and_then(|v| vins.get(v));
            claim_rows(t, vin.map(String::as_str))
        })
        .collect())
}
