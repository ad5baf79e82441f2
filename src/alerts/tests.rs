//! The real-time path against real databases (SQLite, and PostgreSQL when
//! `FLEETCARE_TEST_POSTGRES_URL` is set): tickets only for registered
//! vehicles, at most `alerts.max_tickets_per_message` per message, and one
//! support alert per unknown vehicle, also across restarts (issue 20).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::{Address, Dtc, Fmi, LampStatus, Lamps, OccurrenceCount, Spn};
use fleetcare_ingest::pipeline::episodes::FaultSource;
use fleetcare_ingest::pipeline::{Record, VehicleKey};
use tokio::sync::mpsc;

use super::notify::{NotifyConfig, spawn_notifier};
use super::service::{AlertContext, LiveBatch, critical_faults};
use super::webhook::Retry;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::db::Db;
use crate::db::testing::db_tests;
use crate::runtime::{Backoff, LiveMetrics};
use crate::tickets::{TicketFilter, Tickets};

db_tests!(
    tickets_only_for_registered_vehicles_and_a_bounded_number_per_message,
    an_unknown_vehicle_is_alerted_to_support_once_across_restarts,
);

fn key(fleet: &str, vehicle: &str) -> Arc<VehicleKey> {
    Arc::new(VehicleKey {
        fleet: FleetId::new(fleet).unwrap(),
        vehicle: VehicleId::new(vehicle).unwrap(),
    })
}

/// A fault start of SPN `spn` FMI 1 with the red stop lamp on.
fn red_start(vehicle: &Arc<VehicleKey>, spn: u32) -> Record {
    Record::FaultStarted {
        vehicle: vehicle.clone(),
        ts: Timestamp::from_micros(1_772_323_200_000_000),
        source: FaultSource::Ecu(Address(0)),
        ecu: Address(0),
        dtc: Dtc::new(
            Spn::new(spn).unwrap(),
            Fmi::new(1).unwrap(),
            OccurrenceCount::new(1).unwrap(),
        ),
        lamps: Lamps {
            red_stop: LampStatus::On,
            ..Lamps::ALL_OFF
        },
    }
}

/// Registers acme/TRK-001.
async fn register(db: &Db, catalog: &Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vehicles.csv");
    std::fs::write(
        &path,
        "vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\nTRK-001,acme,compactor-c12,,2024-03-15,north\n",
    )
    .unwrap();
    crate::registry::import_vehicles(db, catalog, &path)
        .await
        .unwrap();
}

/// Runs the real-time path over `batches` as one run of the service;
/// returns its metrics once every alert is delivered. `stale`: its model
/// map is empty, as when vehicles were imported after the jobs last ran.
async fn run(db: &Db, batches: Vec<LiveBatch>) -> Arc<LiveMetrics> {
    run_with(db, batches, false).await
}

/// Alerts delivered at once, one attempt per webhook, 3 per vehicle and
/// 10 minutes: what the alert tests of every module use.
pub(super) fn notify_config() -> NotifyConfig {
    NotifyConfig {
        topic_prefix: "fleet".into(),
        webhooks: HashMap::new(),
        retry: Retry {
            attempts: 1,
            backoff: Backoff::new(Duration::from_millis(1), Duration::from_millis(1)),
        },
        max_per_vehicle: 3,
        window: Duration::from_secs(600),
    }
}

async fn run_with(db: &Db, batches: Vec<LiveBatch>, stale: bool) -> Arc<LiveMetrics> {
    let catalog =
        Arc::new(Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap());
    let config = Arc::new(Config::default());
    let metrics = Arc::new(LiveMetrics::default());
    let (notifier, delivered) = spawn_notifier(db.clone(), None, notify_config(), metrics.clone());
    let vehicles = if stale {
        Vec::new()
    } else {
        crate::registry::vehicles(db).await.unwrap()
    };
    let store = Arc::new(crate::store::StoreReader::new(
        &config.data_dir,
        config.pipeline(),
    ));
    let ctx = AlertContext {
        db: db.clone(),
        tickets: Tickets::new(db.clone(), config.sla.clone()),
        catalog,
        config,
        notifier,
        metrics: metrics.clone(),
        models: Arc::new(RwLock::new(crate::registry::model_map(&vehicles))),
        store,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    for b in batches {
        tx.send(b).unwrap();
    }
    drop(tx);
    critical_faults(ctx, rx).await;
    delivered.await.unwrap();
    metrics
}

async fn alerts_of(db: &Db, kind: &str) -> Vec<(Option<String>, Option<String>)> {
    sqlx::query_as("SELECT fleet_id, vehicle_id FROM alerts WHERE kind = $1 ORDER BY at")
        .bind(kind)
        .fetch_all(db.pool())
        .await
        .unwrap()
}

/// Issue 20, finding 4: one message with 5,000 DTCs and the red stop lamp,
/// for a made-up vehicle, opened 5,000 P1 tickets.
async fn tickets_only_for_registered_vehicles_and_a_bounded_number_per_message(db: Db) {
    let catalog = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap();
    register(&db, &catalog).await;
    let known = key("acme", "TRK-001");
    let unknown = key("madeup", "X-1");
    // One message each (a batch holds whole messages): twelve critical
    // starts of the registered truck, twelve of the made-up one.
    let batch = LiveBatch {
        starts: (0..12)
            .map(|i| red_start(&known, 100 + i))
            .chain((0..12).map(|i| red_start(&unknown, 100 + i)))
            .collect(),
        vehicles: vec![known.clone(), unknown.clone()],
    };
    let metrics = run(&db, vec![batch]).await;
    let tickets = Tickets::new(db.clone(), Default::default())
        .list(&TicketFilter::default())
        .await
        .unwrap();
    assert_eq!(tickets.len(), 8, "{tickets:?}");
    assert!(
        tickets
            .iter()
            .all(|t| t.vehicle.as_ref() == Some(&known.vehicle))
    );
    let text = metrics.render();
    for line in [
        r#"fleetcare_tickets_opened_total{kind="fault",priority="P1"} 8"#,
        r#"fleetcare_tickets_skipped_total{reason="message_limit"} 4"#,
        r#"fleetcare_tickets_skipped_total{reason="unregistered_vehicle"} 12"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    // Support heard of the made-up vehicle once; the fleet of neither got
    // an unknown-vehicle alert for the registered one.
    assert_eq!(
        alerts_of(&db, "unknown_vehicle").await,
        [(Some("madeup".to_owned()), Some("X-1".to_owned()))]
    );
}

async fn an_unknown_vehicle_is_alerted_to_support_once_across_restarts(db: Db) {
    let unknown = key("madeup", "X-2");
    let only_data = |v: &Arc<VehicleKey>| LiveBatch {
        starts: Vec::new(),
        vehicles: vec![v.clone(), v.clone()],
    };
    // Data of any kind makes the alert; three batches, one alert.
    run(
        &db,
        vec![
            only_data(&unknown),
            only_data(&unknown),
            only_data(&unknown),
        ],
    )
    .await;
    assert_eq!(alerts_of(&db, "unknown_vehicle").await.len(), 1);
    // A restart: the database remembers.
    run(
        &db,
        vec![LiveBatch {
            starts: vec![red_start(&unknown, 110)],
            vehicles: vec![unknown.clone()],
        }],
    )
    .await;
    assert_eq!(alerts_of(&db, "unknown_vehicle").await.len(), 1);
    let tickets = Tickets::new(db.clone(), Default::default())
        .list(&TicketFilter::default())
        .await
        .unwrap();
    assert!(tickets.is_empty(), "{tickets:?}");
    // Once registered, its critical faults open tickets at once, before
    // the jobs refresh the registry.
    let catalog = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap();
    register(&db, &catalog).await;
    let known = key("acme", "TRK-001");
    run_with(
        &db,
        vec![LiveBatch {
            starts: vec![red_start(&known, 110)],
            vehicles: vec![known.clone()],
        }],
        true,
    )
    .await;
    let tickets = Tickets::new(db.clone(), Default::default())
        .list(&TicketFilter::default())
        .await
        .unwrap();
    assert_eq!(tickets.len(), 1);
}
