//! Repair tickets (contracts C7 and C8): one ticket per problem, moved
//! through the repair process against service commitments.
//!
//! Alerts become tickets through [`Tickets::raise`], which de-duplicates
//! per (vehicle, kind, key) — per (model, key) for batch defects — even
//! when alerts for one key arrive at once: the database's partial unique
//! index decides, not a lock in this process, so several fleetcare
//! processes sharing a PostgreSQL database still open one ticket.
//! Complaints and manual reports come through [`Tickets::create`]; people
//! move tickets with [`Tickets::transition`]; [`Tickets::check_slas`] runs
//! periodically and reports each missed deadline and each escalated
//! complaint once. Every change is an event in the ticket's history.

pub mod calendar;
mod campaign;
mod campaign_progress;
mod error;
mod follow_up;
mod meters;
mod raise;
mod sla;
mod state;
mod stock;
mod store;
mod transition;
mod types;
mod verification;
mod visit;
mod warranty;
mod wording;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};

pub use calendar::ServiceCalendar;
pub use campaign::{Campaign, CampaignTicket, NewCampaign, RECALL_PRIORITY};
pub use error::{Result, TicketError};
pub use meters::StoreMeters;
pub use sla::{SlaConfig, SlaFinding};
pub use state::TicketState;
pub use transition::{Transition, check as check_transition};
pub use types::{
    Channel, Complainant, CustomerReport, NewAlert, Outcome, PartUsed, Priority, Raised, Sla,
    Ticket, TicketEvent, TicketFilter, TicketId, TicketKind, TicketWithEvents, UnknownName,
    VisitReason, VisitTask, Zone,
};
pub use verification::{
    Observed, RepeatOf, Verdict, Verification, VerificationStatus, VerifyRules, WATCH_DAYS,
    WATCHED_KINDS, Watched, decide as decide_verification,
};
pub use visit::VISIT_KEY;
pub use wording::{Language, in_fleet_languages, title as title_in};

use crate::catalog::{Catalog, ModelId, TaskId};
use crate::db::Db;

/// A vehicle's meters when a maintenance ticket closes: the service record
/// carries them, so the task's meter intervals restart from there.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeterReadings {
    pub engine_hours: Option<f64>,
    pub pto_hours: Option<f64>,
    pub odometer_km: Option<f64>,
}

/// Where [`MeterReadings`] come from (the store, in `fleetcare run`).
/// Called off the async workers: it may block.
pub trait MeterSource: Send + Sync + std::fmt::Debug {
    fn readings(&self, fleet: &FleetId, vehicle: &VehicleId) -> MeterReadings;
}

/// The ticket store; cheap to clone (a pool handle and shared settings).
#[derive(Debug, Clone)]
pub struct Tickets {
    db: Db,
    sla: Arc<SlaConfig>,
    calendar: Arc<ServiceCalendar>,
    meters: Option<Arc<dyn MeterSource>>,
    catalog: Option<Arc<Catalog>>,
}

/// The on-site deadline of a customer report opened at `opened` for an
/// outlet in `zone` (C10): the end of the 1st (city) or 2nd (rural)
/// service day after the report is taken. The zone comes from the
/// dispatch (`zone`) or `sla.default_zone`; a register of outlets names it
/// instead.
pub fn on_site_deadline(
    sla: &SlaConfig,
    calendar: &ServiceCalendar,
    opened: DateTime<Utc>,
    zone: Zone,
) -> DateTime<Utc> {
    calendar.end_of_service_days(opened, sla.on_site_days(zone))
}

impl Tickets {
    pub fn new(db: Db, sla: SlaConfig) -> Self {
        Self {
            db,
            calendar: Arc::new(ServiceCalendar::new(&sla)),
            sla: Arc::new(sla),
            meters: None,
            catalog: None,
        }
    }

    /// The service calendar of `[sla]`.
    pub fn calendar(&self) -> &ServiceCalendar {
        &self.calendar
    }

    /// New tickets get their warranty from this catalogue's terms (C10);
    /// without one, every warranty is `unknown`.
    pub fn with_catalog(mut self, catalog: Arc<Catalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    fn warranty(&self) -> warranty::Lookup<'_> {
        warranty::Lookup {
            db: &self.db,
            catalog: self.catalog.as_ref(),
            meters: self.meters.as_ref(),
        }
    }

    /// The database the tickets live in, for reports over them.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Closing a maintenance ticket records the meters `source` gives;
    /// without one, only day intervals restart.
    pub fn with_meters(mut self, source: Arc<dyn MeterSource>) -> Self {
        self.meters = Some(source);
        self
    }

    pub fn sla(&self) -> &SlaConfig {
        &self.sla
    }

    /// Opens a ticket for the alert, or adds an occurrence (and an event)
    /// to the one already active for its key. Alerts are by `fleetcare`
    /// in the history.
    pub async fn raise(&self, alert: NewAlert) -> Result<Raised> {
        raise::raise(&self.db, &self.sla, alert, self.warranty(), None).await
    }

    /// A vehicle's `recall` ticket of campaign `campaign` (kind `recall`,
    /// key `SPN:FMI`), de-duplicated like an alert: a vehicle with a
    /// recall for the code still open counts an occurrence on it.
    pub async fn raise_recall(&self, alert: NewAlert, campaign: i64) -> Result<Raised> {
        if alert.kind != TicketKind::Recall {
            return Err(TicketError::InvalidAlert {
                kind: alert.kind,
                problem: "must be a recall to join a campaign",
            });
        }
        raise::raise(&self.db, &self.sla, alert, self.warranty(), Some(campaign)).await
    }

    /// Opens the vehicle's service visit (a maintenance ticket, key
    /// [`VISIT_KEY`]) or counts an occurrence on the open one, and adds
    /// `tasks` to it.
    pub async fn raise_visit(
        &self,
        alert: NewAlert,
        tasks: &[(TaskId, VisitReason)],
    ) -> Result<Raised> {
        let alert = NewAlert {
            kind: TicketKind::Maintenance,
            key: VISIT_KEY.to_owned(),
            ..alert
        };
        raise::raise_with_tasks(&self.db, &self.sla, alert, self.warranty(), None, tasks).await
    }

    /// A service visit's tasks (none for other tickets).
    pub async fn visit_tasks(&self, id: TicketId) -> Result<Vec<VisitTask>> {
        visit::tasks(self.db.pool(), id).await
    }

    /// A complaint or manual report with its complainant, channel and
    /// zone; deadlines on the service calendar (C10).
    pub async fn file_report(
        &self,
        mut report: CustomerReport,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Ticket> {
        // Not said: the zone of the registered outlet serving the
        // vehicle's depot, if the register has one.
        if report.zone.is_none() && report.vehicle.is_some() {
            report.zone =
                crate::registry::outlet_zone(&self.db, None, report.vehicle.as_ref()).await?;
        }
        raise::create(
            &self.db,
            &self.sla,
            &self.calendar,
            report,
            actor,
            at,
            self.warranty(),
        )
        .await
    }

    /// A complaint or manual report (`kind` must be one of those): its own
    /// ticket, never merged with another, priority P3.
    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        &self,
        kind: TicketKind,
        fleet: FleetId,
        vehicle: VehicleId,
        model: Option<ModelId>,
        title: String,
        details: String,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Ticket> {
        let report = CustomerReport {
            kind,
            fleet,
            vehicle: Some(vehicle),
            model,
            title,
            details,
            complainant: None,
            channel: None,
            zone: None,
        };
        self.file_report(report, actor, at).await
    }

    /// Moves ticket `id`; refused moves name the allowed ones. Closing a
    /// maintenance or fault ticket records the service or repair in the
    /// registry in the same transaction.
    pub async fn transition(
        &self,
        id: TicketId,
        mut t: Transition,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Ticket> {
        // A dispatch to a registered outlet counts the on-site deadline
        // with the outlet's zone, unless the move names one.
        if t.zone.is_none()
            && let Some(outlet) = t.outlet.as_deref().map(str::trim).filter(|o| !o.is_empty())
        {
            t.zone = crate::registry::outlet_zone(&self.db, Some(outlet), None).await?;
        }
        let readings = match (&self.meters, t.to) {
            (Some(source), TicketState::Closed) => self.readings_for(source, id).await?,
            _ => MeterReadings::default(),
        };
        transition::apply(
            &self.db,
            &self.sla,
            &self.calendar,
            id,
            t,
            actor,
            at,
            readings,
        )
        .await
    }

    /// The meters of a maintenance ticket's vehicle (none for other kinds).
    async fn readings_for(
        &self,
        source: &Arc<dyn MeterSource>,
        id: TicketId,
    ) -> Result<MeterReadings> {
        let Some(ticket) = store::load(self.db.pool(), id).await? else {
            return Ok(MeterReadings::default());
        };
        let (TicketKind::Maintenance, Some(fleet), Some(vehicle)) =
            (ticket.kind, ticket.fleet, ticket.vehicle)
        else {
            return Ok(MeterReadings::default());
        };
        let source = source.clone();
        Ok(
            tokio::task::spawn_blocking(move || source.readings(&fleet, &vehicle))
                .await
                .unwrap_or_default(),
        )
    }

    /// The zone (city or rural) of the outlet a ticket's on-site
    /// commitment depends on (C10): its registered outlet once dispatched,
    /// before that the one serving the vehicle's depot; `None` when the
    /// register has neither. For the service calendar's `sla.on_site_by`.
    pub async fn outlet_zone(&self, ticket: &Ticket) -> Result<Option<crate::registry::Zone>> {
        Ok(crate::registry::outlet_zone(
            &self.db,
            ticket.outlet.as_deref(),
            ticket.vehicle.as_ref(),
        )
        .await?)
    }

    /// One ticket and its history, oldest event first.
    pub async fn get(&self, id: TicketId) -> Result<Option<(Ticket, Vec<TicketEvent>)>> {
        let Some(ticket) = store::load(self.db.pool(), id).await? else {
            return Ok(None);
        };
        let events = store::events(self.db.pool(), id).await?;
        Ok(Some((ticket, events)))
    }

    /// The history of every closed ticket, oldest event first (for the
    /// KPI report).
    pub async fn events_of_closed(
        &self,
    ) -> Result<std::collections::HashMap<TicketId, Vec<TicketEvent>>> {
        store::events_of_closed(&self.db).await
    }

    /// The tickets `filter` lets through, newest first.
    pub async fn list(&self, filter: &TicketFilter) -> Result<Vec<Ticket>> {
        store::list(&self.db, filter, None, None).await
    }

    /// A page of [`Tickets::list`]: at most `limit` tickets numbered below
    /// `before` (none: from the newest). Tickets opened meanwhile have
    /// higher numbers, so walking pages neither repeats nor skips one.
    pub async fn list_page(
        &self,
        filter: &TicketFilter,
        before: Option<TicketId>,
        limit: usize,
    ) -> Result<Vec<Ticket>> {
        store::list(&self.db, filter, before, Some(limit)).await
    }

    /// How many tickets `filter` lets through in each state (states
    /// without any are left out).
    pub async fn count_by_state(&self, filter: &TicketFilter) -> Result<Vec<(TicketState, u64)>> {
        store::count_by_state(&self.db, filter).await
    }

    /// How many tickets each vehicle has that are neither closed nor
    /// cancelled, among those `filter` lets through (its state ignored).
    pub async fn open_per_vehicle(
        &self,
        filter: &TicketFilter,
    ) -> Result<Vec<(FleetId, VehicleId, u64)>> {
        store::open_per_vehicle(&self.db, filter).await
    }

    /// Records the deadlines missed by `now` and escalates complaints left
    /// open longer than `complaint_escalate_after`, and returns only the
    /// tickets newly breached or escalated, so each is alerted once.
    pub async fn check_slas(&self, now: DateTime<Utc>) -> Result<Vec<Ticket>> {
        Ok(self
            .check_slas_found(now)
            .await?
            .into_iter()
            .map(|(t, _)| t)
            .collect())
    }

    /// [`Tickets::check_slas`], saying of each ticket what was found: a
    /// breach, an escalation or both (each is alerted once).
    pub async fn check_slas_found(&self, now: DateTime<Utc>) -> Result<Vec<(Ticket, SlaFinding)>> {
        sla::check(&self.db, &self.sla, now).await
    }

    /// Delivered tickets whose follow-up call is overdue at `now` and not
    /// alerted before: recorded as alerted and returned, so each reaches
    /// support once.
    pub async fn check_follow_ups(&self, now: DateTime<Utc>) -> Result<Vec<Ticket>> {
        follow_up::check(&self.db, now).await
    }

    /// Delivered tickets among those `filter` lets through whose follow-up
    /// call is overdue at `now`, the longest overdue first.
    pub async fn overdue_follow_ups(
        &self,
        filter: &TicketFilter,
        now: DateTime<Utc>,
    ) -> Result<Vec<Ticket>> {
        follow_up::overdue(&self.db, filter, now).await
    }
}
