//! The alert tasks of `fleetcare run`: the real-time critical-fault path
//! and the periodic jobs.

use std::sync::{Arc, RwLock};

use chrono::Utc;
use fleetcare_ingest::pipeline::Record;
use tokio::sync::mpsc;

use super::critical;
use super::findings;
use super::notify::Notifier;
use super::{Alert, AlertKind};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::Db;
use crate::registry::ModelMap;
use crate::registry::ServiceHistory;
use crate::report::{self, Context, Registry};
use crate::runtime::{LiveMetrics, Shutdown};
use crate::store::RecordSink;
use crate::store::StoreReader;
use crate::tickets::{NewAlert, Raised, TicketKind, Tickets};

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

/// The writer's record sink for the real-time path: forwards fault starts
/// (the only records that can be critical) without waiting.
pub fn fault_start_sink(tx: mpsc::UnboundedSender<Record>) -> RecordSink {
    Box::new(move |records: &[Record]| {
        for r in records {
            if matches!(r, Record::FaultStarted { .. }) {
                let _ = tx.send(r.clone());
            }
        }
    })
}

/// Raises a ticket and alerts when it was newly opened.
async fn raise(ctx: &AlertContext, request: NewAlert, kind: AlertKind) {
    let (fleet, vehicle) = (request.fleet.clone(), request.vehicle.clone());
    match ctx.tickets.raise(request).await {
        Ok(Raised::Opened(ticket)) => {
            ctx.metrics
                .ticket_opened(ticket.kind.as_str(), ticket.priority.as_str());
            tracing::info!(ticket = %ticket.id, kind = kind.as_str(), "ticket opened");
            ctx.notifier
                .send(Alert::for_ticket(kind, &ticket, Utc::now()));
        }
        Ok(Raised::Occurrence(_)) => {}
        Err(e) => tracing::error!(
            error = %e,
            fleet = fleet.as_ref().map(|f| f.as_str()),
            vehicle = vehicle.as_ref().map(|v| v.as_str()),
            "cannot raise a ticket"
        ),
    }
}

/// The real-time path: a critical fault start becomes a P1 ticket at once.
pub async fn critical_faults(ctx: AlertContext, mut rx: mpsc::UnboundedReceiver<Record>) {
    while let Some(record) = rx.recv().await {
        let request = {
            let models = ctx.models.read().unwrap_or_else(|e| e.into_inner());
            critical::assess(&record, &ctx.catalog, &models)
        };
        if let Some(request) = request {
            raise(&ctx, request, AlertKind::CriticalFault).await;
        }
    }
}

/// The periodic jobs: maintenance due and recurring findings become
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

/// One run of the periodic jobs.
pub async fn run_jobs(ctx: &AlertContext) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let now = Utc::now();
    let registry = Registry::load(&ctx.db, now, ServiceHistory::LastServicesAndRepairs).await?;
    {
        let map = crate::registry::model_map(&registry.vehicles);
        *ctx.models.write().unwrap_or_else(|e| e.into_inner()) = map;
    }
    let (catalog, config, reader) = (ctx.catalog.clone(), ctx.config.clone(), ctx.store.clone());
    // polars work is CPU-bound: off the async workers.
    let requests =
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(NewAlert, AlertKind)>> {
            let store = reader.snapshot()?;
            let rctx = Context {
                catalog: &catalog,
                registry: &registry,
                detect: &config.detect,
                as_of: now,
            };
            let mut out = Vec::new();
            for row in report::due::maintenance_due(&store, &rctx, false)? {
                if let Some(r) = findings::maintenance(&row, &catalog, now) {
                    out.push((r, AlertKind::Maintenance));
                }
            }
            for row in report::recurring::recurring(&store, &rctx)? {
                let r = findings::recurring(&row, &catalog, now);
                let kind = match r.kind {
                    TicketKind::RepeatRepair => AlertKind::RepeatRepair,
                    TicketKind::BatchDefect => AlertKind::BatchDefect,
                    _ => AlertKind::Recurring,
                };
                out.push((r, kind));
            }
            Ok(out)
        })
        .await??;
    let findings = requests.len();
    for (request, kind) in requests {
        raise(ctx, request, kind).await;
    }
    for ticket in ctx.tickets.check_slas(Utc::now()).await? {
        let kind = if ticket.kind == TicketKind::Complaint && !ticket.sla.breached {
            AlertKind::ComplaintEscalated
        } else {
            AlertKind::SlaBreach
        };
        ctx.notifier
            .send(Alert::for_ticket(kind, &ticket, Utc::now()));
    }
    tracing::info!(
        findings,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "periodic jobs done"
    );
    Ok(())
}
