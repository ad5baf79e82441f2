//! The API tests' fixture, shared with examples/api_fixture.rs (which
//! serves it for schemathesis): two fleets, `fa` and `fb`, built through
//! the library — stored messages, imported registry rows, tickets raised
//! and created, alert rows and one token per role.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fleetcare::catalog::{Catalog, ModelId};
use fleetcare::config::Config;
use fleetcare::db::Db;
use fleetcare::http::api::{self, ApiState, Role};
use fleetcare::runtime::LiveMetrics;
use fleetcare::store::Store;
use fleetcare::tickets::{NewAlert, Priority, TicketKind, Tickets};
use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::pipeline::Message;
use serde_json::json;

/// The reports' as-of time: a week after the stored messages.
pub(crate) const AS_OF: &str = "2026-03-10T00:00:00Z";

/// Fleet A's and fleet B's vehicles (all compactor-c12).
pub(crate) const A_VEHICLES: [&str; 2] = ["A1", "A2"];
pub(crate) const B_VEHICLES: [&str; 2] = ["B1", "B2"];

/// The fixture's ids, as the tests look them up.
#[derive(Debug)]
pub(crate) struct Fixture {
    /// Holds the data directory for as long as the fixture lives.
    pub(crate) _dir: tempfile::TempDir,
    /// The `--data` directory (store and SQLite database).
    pub(crate) data: std::path::PathBuf,
    pub(crate) a_tickets: Vec<i64>,
    pub(crate) b_tickets: Vec<i64>,
    /// The batch defect across fleets (fleet null).
    pub(crate) cross_ticket: i64,
    pub(crate) admin: String,
    pub(crate) support: String,
    pub(crate) planner: String,
    pub(crate) operator_a: String,
}

fn ts(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn telemetry(day: u32, hour: u32, hours: f64, dtcs: &str) -> String {
    format!(
        r#"{{"ts": "2026-03-{day:02}T{hour:02}:00:00Z", "engine_hours": {hours}, "odometer_km": {km}, "dtcs": [{dtcs}]}}"#,
        km = hours * 30.0
    )
}

/// Messages for every vehicle: meters, and SPN 110 FMI 0 coming and going
/// three times on A1, A2 and B1 (recurring on each; a batch defect of
/// compactor-c12 across both fleets), plus dead letters of each fleet and
/// one whose topic names no fleet.
fn store_messages(dir: &Path, config: &Config) {
    let mut messages: Vec<(String, String)> = Vec::new();
    for (i, v) in A_VEHICLES.iter().chain(&B_VEHICLES).enumerate() {
        let fleet = if v.starts_with('A') { "fa" } else { "fb" };
        let topic = format!("fleet/{fleet}/{v}/telemetry");
        let faulty = *v != "B2";
        let base = 1000.0 + 100.0 * i as f64;
        for day in 1..=3u32 {
            let h = base + f64::from(day) * 8.0;
            let dtc = if faulty {
                r#"{"spn": 110, "fmi": 0, "oc": 1}"#
            } else {
                ""
            };
            messages.push((topic.clone(), telemetry(day, 8, h, dtc)));
            messages.push((topic.clone(), telemetry(day, 12, h + 4.0, "")));
            if *v == "B2" {
                // The body's PTO hours and hydraulic oil: hot in the
                // morning hour, cool at noon (duty, C12).
                for (hour, temp) in [(8u32, 85.0), (12, 60.0)] {
                    let pto = 100.0 + f64::from(day) * 4.0 + f64::from(hour - 8) / 4.0;
                    messages.push((
                        topic.clone(),
                        format!(
                            r#"{{"ts": "2026-03-{day:02}T{hour:02}:30:00Z", "pto_hours": {pto}, "signals": {{"hydraulic_oil_temp_c": {temp}}}}}"#
                        ),
                    ));
                }
            }
        }
        messages.push((topic, format!("not json from {v}")));
    }
    messages.push(("junk".to_owned(), "no fleet here".to_owned()));
    let mut store = Store::open(dir, config.pipeline()).unwrap();
    let received = Timestamp::from_micros(ts("2026-03-04T00:00:00Z").timestamp_micros());
    let batch: Vec<Message<'_>> = messages
        .iter()
        .map(|(topic, payload)| Message {
            topic,
            payload: payload.as_bytes(),
            received,
        })
        .collect();
    let mut records = Vec::new();
    store.ingest(&batch, &mut records).unwrap();
    store.close().unwrap();
}

async fn insert_alert(db: &Db, id: &str, at: &str, fleet: Option<&str>, vehicle: Option<&str>) {
    sqlx::query(
        "INSERT INTO alerts (alert_id, at, fleet_id, vehicle_id, kind, ticket_id, title, body) \
         VALUES ($1, $2, $3, $4, 'critical_fault', NULL, $5, $6)",
    )
    .bind(id)
    .bind(at)
    .bind(fleet)
    .bind(vehicle)
    .bind(format!("alert {id}"))
    .bind(json!({"id": id}).to_string())
    .execute(db.pool())
    .await
    .unwrap();
}

fn fault(fleet: Option<&str>, vehicle: Option<&str>, kind: TicketKind, at: &str) -> NewAlert {
    NewAlert {
        kind,
        fleet: fleet.map(|f| FleetId::new(f).unwrap()),
        vehicle: vehicle.map(|v| VehicleId::new(v).unwrap()),
        model: Some(ModelId::new("compactor-c12").unwrap()),
        key: "110:0".to_owned(),
        priority: Priority::P1,
        title: "Coolant temperature high".to_owned(),
        details: "SPN 110 FMI 0".to_owned(),
        at: ts(at),
    }
}

/// The data directory, the database and the API state of two fleets; the
/// database is SQLite under the data directory, or the (empty) PostgreSQL
/// database `database_url` names.
pub(crate) async fn fixture(database_url: Option<String>) -> (Fixture, ApiState) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        models_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
        ..Config::default()
    };
    config.database.url = database_url;
    let data = config.data_dir.clone();
    let c = config.clone();
    tokio::task::spawn_blocking(move || store_messages(&data, &c))
        .await
        .unwrap();
    let db = Db::connect(&config).await.unwrap();
    let catalog = Catalog::load(&config.models_dir).unwrap();
    let csv = dir.path().join("vehicles.csv");
    let mut rows = String::from("vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\n");
    for v in A_VEHICLES.iter().chain(&B_VEHICLES) {
        let fleet = if v.starts_with('A') { "fa" } else { "fb" };
        rows.push_str(&format!("{v},{fleet},compactor-c12,,2024-01-01,north\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    fleetcare::registry::import_vehicles(&db, &catalog, &csv)
        .await
        .unwrap();
    let services = dir.path().join("services.csv");
    std::fs::write(
        &services,
        "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km\n\
         A1,engine-oil,2025-06-01,500,,15000\nB1,engine-oil,2025-06-01,500,,15000\n",
    )
    .unwrap();
    fleetcare::registry::import_services(&db, &catalog, &services, Utc::now())
        .await
        .unwrap();

    let tickets = Tickets::new(db.clone(), config.sla.clone());
    let mut a_tickets = Vec::new();
    let mut b_tickets = Vec::new();
    for (fleet, vehicle) in [("fa", "A1"), ("fb", "B1"), ("fb", "B2")] {
        let t = tickets
            .raise(fault(
                Some(fleet),
                Some(vehicle),
                TicketKind::Fault,
                "2026-03-02T08:00:00Z",
            ))
            .await
            .unwrap();
        let out = if fleet == "fa" {
            &mut a_tickets
        } else {
            &mut b_tickets
        };
        out.push(t.ticket().id.0);
    }
    let complaint = tickets
        .create(
            TicketKind::Complaint,
            FleetId::new("fb").unwrap(),
            VehicleId::new("B1").unwrap(),
            Some(ModelId::new("compactor-c12").unwrap()),
            "Driver reports noise".to_owned(),
            "By phone".to_owned(),
            "test",
            ts("2026-03-03T09:00:00Z"),
        )
        .await
        .unwrap();
    b_tickets.push(complaint.id.0);
    let cross = tickets
        .raise(fault(
            None,
            None,
            TicketKind::BatchDefect,
            "2026-03-04T08:00:00Z",
        ))
        .await
        .unwrap();
    let cross_ticket = cross.ticket().id.0;

    insert_alert(
        &db,
        "a-1",
        "2026-03-02T08:00:00.000000Z",
        Some("fa"),
        Some("A1"),
    )
    .await;
    insert_alert(
        &db,
        "b-1",
        "2026-03-02T08:00:01.000000Z",
        Some("fb"),
        Some("B1"),
    )
    .await;
    insert_alert(
        &db,
        "b-2",
        "2026-03-02T08:00:02.000000Z",
        Some("fb"),
        Some("B2"),
    )
    .await;
    insert_alert(&db, "x-1", "2026-03-04T08:00:00.000000Z", None, None).await;

    let fa = FleetId::new("fa").unwrap();
    let fixture = Fixture {
        admin: api::create_token(&db, Role::Admin, &[]).await.unwrap(),
        support: api::create_token(&db, Role::Support, &[]).await.unwrap(),
        planner: api::create_token(&db, Role::Planner, &[]).await.unwrap(),
        operator_a: api::create_token(&db, Role::Operator, &[fa]).await.unwrap(),
        data: config.data_dir.clone(),
        _dir: dir,
        a_tickets,
        b_tickets,
        cross_ticket,
    };
    let state = ApiState::new(db, tickets, config, Arc::new(LiveMetrics::default())).unwrap();
    (fixture, state)
}
