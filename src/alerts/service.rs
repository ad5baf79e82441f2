//! The alert tasks of `fleetcare run`: the real-time critical-fault path
//! and the periodic jobs. Both open tickets only for vehicles in the fleet
//! registry, and alert support once about each vehicle that is not.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::pipeline::{Record, VehicleKey};
use tokio::sync::mpsc;

use super::critical;
use super::findings;
use super::notify::Notifier;
use super::visits::{self, VisitRequest};
use super::{Alert, AlertKind};
use crate::catalog::{Catalog, ModelId};
use crate::config::Config;
use crate::db::Db;
use crate::registry::ModelMap;
use crate::registry::ServiceHistory;
use crate::report::{self, Context, RecurringKind, RecurringRow, Registry};
use crate::runtime::{LiveMetrics, Shutdown, TicketSkip};
use crate::store::RecordSink;
use crate::store::StoreReader;
use crate::tickets::{
    Language, NewAlert, Observed, Raised, SlaFinding, Ticket, TicketKind, Tickets,
    VerificationStatus, VerifyRules, WATCH_DAYS, Watched, decide_verification,
};

/// What the alert tasks share.
#[derive(Debug, Clone)]
pub struct AlertContext {
    pub db: Db,
    pub tickets: Tickets,
    pub catalog: Arc<Catalog>,
    pub config: Arc<Config>,
    pub notifier: Notifier,
    pub metrics: Arc<LiveMetrics>,
    /// (fleet, vehicle) → model, from the registry; refreshed by the jobs.
    pub models: Arc<RwLock<ModelMap>>,
    /// The process's reader of the store, for the jobs.
    pub store: Arc<StoreReader>,
}

/// What the real-time path takes from one durable batch of the writer.
#[derive(Debug, Default)]
pub struct LiveBatch {
    /// The fault starts (the only records that can be critical), in order.
    pub starts: Vec<Record>,
    /// The vehicles the batch's records are about (a vehicle may repeat):
    /// the ones not registered are alerted to support.
    pub vehicles: Vec<Arc<VehicleKey>>,
}

/// The vehicle a record is about.
fn vehicle_of(record: &Record) -> Option<&Arc<VehicleKey>> {
    match record {
        Record::FaultStarted { vehicle, .. }
        | Record::FaultEnded { vehicle, .. }
        | Record::LampsChanged { vehicle, .. }
        | Record::Meter { vehicle, .. }
        | Record::MeterReset { vehicle, .. }
        | Record::Signal { vehicle, .. } => Some(vehicle),
        Record::DeadLetter(d) => d.vehicle.as_ref(),
    }
}

/// The writer's record sink for the real-time path: forwards each batch's
/// fault starts and vehicles without waiting.
pub fn fault_start_sink(tx: mpsc::UnboundedSender<LiveBatch>) -> RecordSink {
    Box::new(move |records: &[Record]| {
        let mut batch = LiveBatch::default();
        for r in records {
            // A message's records are together and share its vehicle's key.
            if let Some(v) = vehicle_of(r)
                && !batch
                    .vehicles
                    .last()
                    .is_some_and(|last| Arc::ptr_eq(last, v))
            {
                batch.vehicles.push(v.clone());
            }
            if matches!(r, Record::FaultStarted { .. }) {
                batch.starts.push(r.clone());
            }
        }
        if !batch.vehicles.is_empty() {
            let _ = tx.send(batch);
        }
    })
}

/// Raises a ticket and alerts when it was newly opened; the ticket opened
/// or counted, `None` when it could not be raised (logged).
async fn raise(ctx: &AlertContext, request: NewAlert, kind: AlertKind) -> Option<Ticket> {
    raise_then(ctx, request, kind, None).await
}

/// [`raise`], and for a repeat repair that came back at `back_at`, the
/// link to the repair it brings back (C10) before the alert goes out, so
/// the alert names the earlier technician and outlet.
async fn raise_then(
    ctx: &AlertContext,
    request: NewAlert,
    kind: AlertKind,
    back_at: Option<DateTime<Utc>>,
) -> Option<Ticket> {
    let (fleet, vehicle) = (request.fleet.clone(), request.vehicle.clone());
    let link = |ticket: Ticket| async move {
        let Some(back) = back_at else {
            return ticket;
        };
        let window = repeat_window(&ctx.config);
        match ctx.tickets.link_repeat(ticket.id, back, window).await {
            Ok(Some(_)) => match ctx.tickets.get(ticket.id).await {
                Ok(Some((t, _))) => t,
                _ => ticket,
            },
            Ok(None) => ticket,
            Err(e) => {
                tracing::error!(error = %e, ticket = %ticket.id, "cannot link the repeat repair");
                ticket
            }
        }
    };
    match ctx.tickets.raise(request).await {
        Ok(Raised::Opened(ticket)) => {
            let ticket = link(ticket).await;
            ctx.metrics
                .ticket_opened(ticket.kind.as_str(), ticket.priority.as_str());
            tracing::info!(ticket = %ticket.id, kind = kind.as_str(), "ticket opened");
            ctx.notifier.send(ticket_alert(ctx, kind, &ticket).await);
            Some(ticket)
        }
        Ok(Raised::Occurrence(ticket)) => Some(link(ticket).await),
        Err(e) => {
            tracing::error!(
                error = %e,
                fleet = fleet.as_ref().map(|f| f.as_str()),
                vehicle = vehicle.as_ref().map(|v| v.as_str()),
                "cannot raise a ticket"
            );
            None
        }
    }
}

/// Opens or adds to a vehicle's service visit; alerts when it was opened.
async fn raise_visit(ctx: &AlertContext, visit: VisitRequest) {
    let (fleet, vehicle) = (visit.alert.fleet.clone(), visit.alert.vehicle.clone());
    match ctx.tickets.raise_visit(visit.alert, &visit.tasks).await {
        Ok(Raised::Opened(ticket)) => {
            ctx.metrics
                .ticket_opened(ticket.kind.as_str(), ticket.priority.as_str());
            tracing::info!(ticket = %ticket.id, tasks = visit.tasks.len(), "service visit opened");
            ctx.notifier
                .send(ticket_alert(ctx, AlertKind::Maintenance, &ticket).await);
        }
        Ok(Raised::Occurrence(_)) => {}
        Err(e) => tracing::error!(
            error = %e,
            fleet = fleet.as_ref().map(|f| f.as_str()),
            vehicle = vehicle.as_ref().map(|v| v.as_str()),
            "cannot raise a service visit"
        ),
    }
}

/// The alert for `ticket`, its title in the fleet's language (English
/// when the fleet is not registered or the register cannot be read).
async fn ticket_alert(ctx: &AlertContext, kind: AlertKind, ticket: &Ticket) -> Alert {
    let lang = match &ticket.fleet {
        Some(fleet) => crate::registry::fleets::language(&ctx.db, fleet)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(fleet = %fleet, error = %e, "cannot read the fleet's language; the alert is in English");
                Language::En
            }),
        None => Language::En,
    };
    Alert::for_ticket_in(kind, ticket, Utc::now(), &ctx.catalog, lang)
}

/// `detect.repeat_repair_days` as a duration.
fn repeat_window(config: &Config) -> TimeDelta {
    TimeDelta::days(i64::from(config.detect.repeat_repair_days))
}

/// Repair verification (C10): the verdicts the store allows on delivered
/// repairs are recorded; a code back within the repeat-repair window opens
/// (or counts on) a repeat-repair ticket linked to the repair.
async fn verify_repairs(
    ctx: &AlertContext,
    watched: Vec<Watched>,
    observed: Vec<Observed>,
    now: DateTime<Utc>,
) -> anyhow::Result<(usize, usize)> {
    let rules = VerifyRules {
        after_engine_hours: ctx.config.detect.verify_after_engine_hours,
        repeat_window: repeat_window(&ctx.config),
    };
    let (mut verified, mut repeated) = (0, 0);
    for (w, seen) in watched.into_iter().zip(observed) {
        let Some(verdict) = decide_verification(w.delivered_at, seen, rules, now) else {
            continue;
        };
        match verdict.status {
            VerificationStatus::Repeated => {
                let key = VehicleKey {
                    fleet: w.fleet.clone(),
                    vehicle: w.vehicle.clone(),
                };
                let model = ctx
                    .models
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key)
                    .cloned();
                let back = fleetcare_ingest::Timestamp::from_datetime(&verdict.at);
                let row = RecurringRow {
                    kind: RecurringKind::RepeatRepair,
                    fleet: Some(w.fleet),
                    vehicle: Some(w.vehicle),
                    model,
                    spn: w.spn,
                    fmi: w.fmi,
                    episodes: 1,
                    vehicles: 1,
                    first_seen: back,
                    last_seen: back,
                };
                let request = findings::recurring(&row, &ctx.catalog, now);
                if raise_then(ctx, request, AlertKind::RepeatRepair, Some(verdict.at))
                    .await
                    .is_some()
                {
                    repeated += 1;
                }
                // Linked above unless the repeat ticket was linked to an
                // earlier repair already: the verdict stands either way,
                // so the code is not raised again at the next run.
                ctx.tickets.record_verdict(w.id, verdict).await?;
            }
            _ => {
                if ctx.tickets.record_verdict(w.id, verdict).await? {
                    tracing::info!(ticket = %w.id, verdict = %verdict.status, "repair verification");
                    verified += usize::from(verdict.status == VerificationStatus::Verified);
                }
            }
        }
    }
    Ok((verified, repeated))
}

/// A vehicle in the registry or not, as the real-time path learns it.
#[derive(Debug, Clone)]
enum Registration {
    Registered(ModelId),
    /// Not in the registry under its fleet; perhaps under another.
    Unknown {
        registered_fleet: Option<FleetId>,
    },
}

/// Looks `key` up: in the model map the jobs refresh, then (for a vehicle
/// imported since) in the database, adding it to the map. `None` when the
/// database cannot be read.
async fn registration(ctx: &AlertContext, key: &VehicleKey) -> Option<Registration> {
    let known = {
        let models = ctx.models.read().unwrap_or_else(|e| e.into_inner());
        models.get(key).cloned()
    };
    if let Some(model) = known {
        return Some(Registration::Registered(model));
    }
    match crate::registry::vehicle(&ctx.db, &key.vehicle).await {
        Ok(Some(v)) if v.fleet == key.fleet => {
            let mut models = ctx.models.write().unwrap_or_else(|e| e.into_inner());
            models.insert(key.clone(), v.model.clone());
            Some(Registration::Registered(v.model))
        }
        Ok(other) => Some(Registration::Unknown {
            registered_fleet: other.map(|v| v.fleet),
        }),
        Err(e) => {
            tracing::warn!(error = %e, fleet = %key.fleet, vehicle = %key.vehicle, "cannot read the fleet registry");
            None
        }
    }
}

/// Alerts support about `key` unless it was alerted before (recorded in the
/// database, so once across restarts). False when the database failed.
async fn alert_unknown(
    ctx: &AlertContext,
    key: &VehicleKey,
    registered_fleet: Option<&FleetId>,
) -> bool {
    let now = Utc::now();
    match crate::registry::first_unknown_alert(&ctx.db, &key.fleet, &key.vehicle, now).await {
        Ok(true) => {
            tracing::info!(fleet = %key.fleet, vehicle = %key.vehicle, "A vehicle not in the fleet registry sends data; support is alerted once.");
            ctx.notifier
                .send(Alert::unknown_vehicle(key, registered_fleet, now));
            true
        }
        Ok(false) => true,
        Err(e) => {
            tracing::warn!(error = %e, fleet = %key.fleet, vehicle = %key.vehicle, "cannot record the unknown-vehicle alert; tried again with its next message");
            false
        }
    }
}

/// How long the real-time path takes a vehicle for unregistered before it
/// asks the database again (it may have been imported meanwhile).
const RECHECK_UNKNOWN: std::time::Duration = std::time::Duration::from_secs(60);
/// Most unregistered vehicles it remembers; the database keeps the truth,
/// this only spares it a query per message.
const REMEMBERED_UNKNOWN: usize = 100_000;

/// The real-time path's view of the registry.
#[derive(Debug, Default)]
struct Lookups {
    /// Vehicles found unregistered (and alerted to support), with when.
    unknown: HashMap<VehicleKey, (std::time::Instant, Option<FleetId>)>,
}

impl Lookups {
    /// Whether `key` is registered; alerts support the first time it is
    /// found not to be. `None` when the database cannot be read.
    async fn check(&mut self, ctx: &AlertContext, key: &VehicleKey) -> Option<Registration> {
        if let Some((at, registered_fleet)) = self.unknown.get(key)
            && at.elapsed() < RECHECK_UNKNOWN
            && !ctx
                .models
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(key)
        {
            let registered_fleet = registered_fleet.clone();
            return Some(Registration::Unknown { registered_fleet });
        }
        let found = registration(ctx, key).await;
        match &found {
            Some(Registration::Unknown { registered_fleet })
                if alert_unknown(ctx, key, registered_fleet.as_ref()).await =>
            {
                if self.unknown.len() >= REMEMBERED_UNKNOWN {
                    self.unknown.clear();
                }
                let entry = (std::time::Instant::now(), registered_fleet.clone());
                self.unknown.insert(key.clone(), entry);
            }
            Some(Registration::Registered(_)) => {
                self.unknown.remove(key);
            }
            _ => {}
        }
        found
    }
}

/// The real-time path: a critical fault start of a registered vehicle
/// becomes a P1 ticket at once, at most `alerts.max_tickets_per_message`
/// per message; a vehicle not in the registry gets no ticket, and support
/// one alert.
pub async fn critical_faults(ctx: AlertContext, mut rx: mpsc::UnboundedReceiver<LiveBatch>) {
    let max = ctx.config.alerts.max_tickets_per_message.max(1);
    let mut lookups = Lookups::default();
    while let Some(batch) = rx.recv().await {
        // This batch's lookups, each vehicle once.
        let mut looked_up: HashMap<Arc<VehicleKey>, Option<Registration>> = HashMap::new();
        for key in &batch.vehicles {
            if !looked_up.contains_key(key) {
                let found = lookups.check(&ctx, key).await;
                looked_up.insert(key.clone(), found);
            }
        }
        // Raises per vehicle in this batch: a batch holds whole messages
        // and a message is one vehicle's, so this bounds each message.
        let mut raised: HashMap<Arc<VehicleKey>, usize> = HashMap::new();
        let mut skipped: HashMap<(Arc<VehicleKey>, TicketSkip), u64> = HashMap::new();
        for record in &batch.starts {
            let Some(vehicle) = vehicle_of(record) else {
                continue;
            };
            // Every record's vehicle is among the batch's vehicles. A
            // vehicle whose registration could not be read (the database
            // is down, so a raise would fail too) counts as unregistered.
            let found = looked_up.get(vehicle).cloned().flatten();
            let model = match &found {
                Some(Registration::Registered(model)) => Some(model),
                _ => None,
            };
            let Some(request) = critical::assess(record, &ctx.catalog, model) else {
                continue;
            };
            if model.is_none() {
                *skipped
                    .entry((vehicle.clone(), TicketSkip::UnregisteredVehicle))
                    .or_default() += 1;
                continue;
            }
            let n = raised.entry(vehicle.clone()).or_default();
            if *n >= max {
                *skipped
                    .entry((vehicle.clone(), TicketSkip::MessageLimit))
                    .or_default() += 1;
                continue;
            }
            *n += 1;
            raise(&ctx, request, AlertKind::CriticalFault).await;
        }
        for ((vehicle, reason), n) in skipped {
            ctx.metrics.tickets_skipped(reason, n);
            match reason {
                TicketSkip::UnregisteredVehicle => tracing::debug!(
                    fleet = %vehicle.fleet, vehicle = %vehicle.vehicle, critical = n,
                    "Critical fault starts of a vehicle not in the registry opened no ticket."
                ),
                TicketSkip::MessageLimit => tracing::debug!(
                    fleet = %vehicle.fleet, vehicle = %vehicle.vehicle, critical = n, limit = max,
                    "Critical fault starts beyond the limit of one message raised no ticket."
                ),
            }
        }
    }
}

/// The periodic jobs: maintenance due, recurring and condition findings become
/// tickets; SLA breaches and unanswered complaints are alerted once. Runs
/// at once, then every `jobs.interval`, until shutdown.
pub async fn periodic_jobs(ctx: AlertContext, mut shutdown: Shutdown) {
    let mut every = tokio::time::interval(ctx.config.jobs.interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = run_jobs(&ctx).await {
            tracing::error!(error = %e, "the periodic jobs failed; they run again at the next interval");
        }
    }
}

/// Alerts support about every ticket that has waited in `awaiting_parts`
/// more than `parts::WAIT_ALERT_DAYS` by `now`, once per ticket (recorded
/// in the database, so across restarts and processes). Returns how many
/// were alerted.
pub async fn alert_parts_waits(
    ctx: &AlertContext,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<usize> {
    let moved_by = now - chrono::TimeDelta::days(crate::parts::WAIT_ALERT_DAYS);
    let mut sent = 0;
    for (ticket, since) in ctx.tickets.waiting_for_parts(moved_by).await? {
        if crate::parts::first_wait_alert(&ctx.db, ticket.id.0, now).await? {
            tracing::info!(ticket = %ticket.id, "A ticket waits for parts too long; support is alerted once.");
            ctx.notifier.send(Alert::parts_overdue(&ticket, since, now));
            sent += 1;
        }
    }
    Ok(sent)
}
/// Ticket requests of the periodic jobs; a repeat repair carries when its
/// code came back, to link it to the repair it brings back.
type Requests = Vec<(NewAlert, AlertKind, Option<DateTime<Utc>>)>;

/// One run of the periodic jobs.
pub async fn run_jobs(ctx: &AlertContext) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let now = Utc::now();
    let registry = Registry::load(&ctx.db, now, ServiceHistory::LastServicesAndRepairs).await?;
    {
        let map = crate::registry::model_map(&registry.vehicles);
        *ctx.models.write().unwrap_or_else(|e| e.into_inner()) = map;
    }
    // Each registered vehicle's fleet, to tell findings about others apart.
    let fleet_of: HashMap<VehicleId, FleetId> = registry
        .vehicles
        .iter()
        .map(|v| (v.id.clone(), v.fleet.clone()))
        .collect();
    let watched = ctx
        .tickets
        .watched(now - TimeDelta::days(WATCH_DAYS))
        .await?;
    let (catalog, config, reader) = (ctx.catalog.clone(), ctx.config.clone(), ctx.store.clone());
    // polars work is CPU-bound: off the async workers.
    type Found = (Requests, Vec<VisitRequest>, Vec<Watched>, Vec<Observed>);
    let (requests, visit_requests, watched, observed) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<Found> {
            let store = reader.snapshot()?;
            let observed = report::verification::observe(&store, &watched, now)?;
            let rctx = Context {
                catalog: &catalog,
                registry: &registry,
                detect: &config.detect,
                as_of: now,
            };
            let mut out = Vec::new();
            // Maintenance due: one service visit per vehicle (C10).
            let due = report::due::assess(&store, &rctx)?;
            let visit_requests = visits::visits(&due, &config.visits, now);
            for row in report::condition::condition(&store, &rctx)? {
                out.push((
                    findings::condition(&row, &catalog, now),
                    AlertKind::Condition,
                    None,
                ));
            }
            for row in report::recurring::recurring(&store, &rctx)? {
                let r = findings::recurring(&row, &catalog, now);
                let (kind, back_at) = match r.kind {
                    TicketKind::RepeatRepair => {
                        (AlertKind::RepeatRepair, row.first_seen.to_datetime())
                    }
                    TicketKind::BatchDefect => (AlertKind::BatchDefect, None),
                    _ => (AlertKind::Recurring, None),
                };
                out.push((r, kind, back_at));
            }
            Ok((out, visit_requests, watched, observed))
        })
        .await??;
    // Verdicts first: a repair whose code came back opens its repeat
    // repair linked to it before the recurring findings count on it.
    let (verified, repeated) = verify_repairs(ctx, watched, observed, now).await?;
    let findings = requests.len() + visit_requests.len();
    for v in visit_requests {
        raise_visit(ctx, v).await;
    }
    let mut unknown: HashSet<VehicleKey> = HashSet::new();
    for (request, kind, back_at) in requests {
        // A finding about one vehicle opens a ticket only if it is
        // registered; one about a model (a batch defect) always may.
        if let (Some(fleet), Some(vehicle)) = (&request.fleet, &request.vehicle)
            && fleet_of.get(vehicle) != Some(fleet)
        {
            ctx.metrics
                .tickets_skipped(TicketSkip::UnregisteredVehicle, 1);
            unknown.insert(VehicleKey {
                fleet: fleet.clone(),
                vehicle: vehicle.clone(),
            });
            continue;
        }
        raise_then(ctx, request, kind, back_at).await;
    }
    for key in &unknown {
        alert_unknown(ctx, key, fleet_of.get(&key.vehicle)).await;
    }
    for (ticket, found) in ctx.tickets.check_slas_found(Utc::now()).await? {
        let kinds: &[AlertKind] = match found {
            SlaFinding::Breached => &[AlertKind::SlaBreach],
            SlaFinding::Escalated => &[AlertKind::ComplaintEscalated],
            SlaFinding::BreachedAndEscalated => {
                &[AlertKind::SlaBreach, AlertKind::ComplaintEscalated]
            }
        };
        for kind in kinds {
            ctx.notifier.send(ticket_alert(ctx, *kind, &ticket).await);
        }
    }
    for campaign in ctx.tickets.check_campaign_progress(Utc::now()).await? {
        ctx.notifier
            .send(Alert::recall_progress(&campaign, Utc::now()));
    }
    for ticket in ctx.tickets.check_follow_ups(Utc::now()).await? {
        ctx.notifier
            .send(ticket_alert(ctx, AlertKind::FollowUpOverdue, &ticket).await);
    }
    alert_parts_waits(ctx, Utc::now()).await?;
    tracing::info!(
        findings,
        verified,
        repeated,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "periodic jobs done"
    );
    Ok(())
}
