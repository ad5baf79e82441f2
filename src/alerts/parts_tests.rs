//! Issue 22: a ticket waiting in `awaiting_parts` longer than 14 days is
//! alerted to support once, across runs of the jobs (SQLite, and
//! PostgreSQL when `FLEETCARE_TEST_POSTGRES_URL` is set).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};

use super::notify::spawn_notifier;
use super::service::{AlertContext, alert_parts_waits};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::Db;
use crate::db::testing::db_tests;
use crate::runtime::LiveMetrics;
use crate::tickets::{TicketKind, TicketState, Tickets, Transition};

db_tests!(a_long_wait_for_parts_is_alerted_to_support_once);

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn a_long_wait_for_parts_is_alerted_to_support_once(db: Db) {
    sqlx::query(
        "INSERT INTO vehicles (vehicle_id, fleet_id, model_id, vin, commissioned_on, depot) \
         VALUES ('TRK-1', 'acme', 'compactor-c12', NULL, '2024-01-01', 'north')",
    )
    .execute(db.pool())
    .await
    .unwrap();
    let config = Arc::new(Config::default());
    let tickets = Tickets::new(db.clone(), config.sla.clone());
    let ticket = tickets
        .create(
            TicketKind::Complaint,
            FleetId::new("acme").unwrap(),
            VehicleId::new("TRK-1").unwrap(),
            None,
            "bin lift jerks".to_owned(),
            String::new(),
            "operator:1",
            t0(),
        )
        .await
        .unwrap();
    for to in [
        TicketState::Dispatched,
        TicketState::Diagnosing,
        TicketState::AwaitingParts,
    ] {
        let t = Transition {
            assignee: (to == TicketState::Dispatched).then(|| "Li Na".to_owned()),
            outlet: (to == TicketState::Dispatched).then(|| "north".to_owned()),
            ..Transition::to(to)
        };
        tickets
            .transition(ticket.id, t, "support:1", t0())
            .await
            .unwrap();
    }
    let metrics = Arc::new(LiveMetrics::default());
    let (notifier, delivered) = spawn_notifier(
        db.clone(),
        None,
        super::tests::notify_config(),
        metrics.clone(),
    );
    let ctx = AlertContext {
        db: db.clone(),
        tickets,
        catalog: Arc::new(
            Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap(),
        ),
        config: config.clone(),
        notifier,
        metrics,
        models: Arc::new(RwLock::new(HashMap::new())),
        store: Arc::new(crate::store::StoreReader::new(
            &config.data_dir,
            config.pipeline(),
        )),
    };
    let days = TimeDelta::days(crate::parts::WAIT_ALERT_DAYS);
    // Exactly 14 days is not longer than 14 days.
    assert_eq!(alert_parts_waits(&ctx, t0() + days).await.unwrap(), 0);
    let later = t0() + days + TimeDelta::hours(1);
    assert_eq!(alert_parts_waits(&ctx, later).await.unwrap(), 1);
    assert_eq!(alert_parts_waits(&ctx, later).await.unwrap(), 0);
    assert_eq!(
        alert_parts_waits(&ctx, later + TimeDelta::days(30))
            .await
            .unwrap(),
        0
    );
    drop(ctx);
    delivered.await.unwrap();
    let alerts: Vec<(Option<String>, Option<i64>, String)> = sqlx::query_as(
        "SELECT vehicle_id, ticket_id, title FROM alerts WHERE kind = 'parts_overdue'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].0.as_deref(), Some("TRK-1"));
    assert_eq!(alerts[0].1, Some(ticket.id.0));
    assert!(
        alerts[0]
            .2
            .starts_with(&format!("#{} waiting for parts for 14 days", ticket.id)),
        "{alerts:?}"
    );
}
