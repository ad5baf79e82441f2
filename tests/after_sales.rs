//! Issue 21, part B, end to end over a real socket and a real database
//! (SQLite, and PostgreSQL when `FLEETCARE_TEST_POSTGRES_URL` is set):
//! warranty decided at intake from the store's meters and claimed at
//! closing (`report claims` in the API and the CLI), the outlets register
//! and dispatch, recall campaigns from a batch defect, and the KPI report
//! over the hand-computed fixture of `tests/data/kpi_fixture.csv` (which
//! the browser test in `web.rs` shows too).

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Months, TimeDelta, Utc};
use fleetcare::catalog::Catalog;
use fleetcare::config::Config;
use fleetcare::db::Db;
use fleetcare::http::api::{self, ApiState, Role};
use fleetcare::runtime::LiveMetrics;
use fleetcare::store::{Store, StoreReader};
use fleetcare::tickets::{
    NewAlert, Outcome, Priority, StoreMeters, TicketKind, TicketState, Tickets, Transition,
};
use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::pipeline::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::POSTGRES_ENV;

/// A data directory, its database and catalogue.
pub(crate) struct Setup {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: Config,
    pub(crate) db: Db,
    pub(crate) catalog: Arc<Catalog>,
}

/// A PostgreSQL database of its own for one test, or `None` (SQLite).
async fn postgres_database(name: &str) -> Option<String> {
    crate::api::fresh_postgres_database("fcas", name).await
}

/// Stores `messages` (topic, telemetry JSON) in the store under `data`.
fn store(data: &Path, config: &Config, messages: &[(String, String)]) {
    let mut store = Store::open(data, config.pipeline()).unwrap();
    let received = Timestamp::from_micros(Utc::now().timestamp_micros());
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

pub(crate) async fn setup(database_url: Option<String>, messages: Vec<(String, String)>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().join("data"),
        models_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
        ..Config::default()
    };
    config.database.url = database_url;
    let (data, c) = (config.data_dir.clone(), config.clone());
    tokio::task::spawn_blocking(move || store(&data, &c, &messages))
        .await
        .unwrap();
    let db = Db::connect(&config).await.unwrap();
    let catalog = Arc::new(Catalog::load(&config.models_dir).unwrap());
    Setup {
        dir,
        config,
        db,
        catalog,
    }
}

impl Setup {
    fn file(&self, name: &str, text: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `vehicle_id,fleet_id,model_id,vin,commissioned_on,depot` rows.
    pub(crate) async fn vehicles(&self, rows: &str) {
        let path = self.file(
            "vehicles.csv",
            &format!("vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\n{rows}"),
        );
        fleetcare::registry::import_vehicles(&self.db, &self.catalog, &path)
            .await
            .unwrap();
    }

    pub(crate) async fn outlets(&self) {
        let path = self.file(
            "outlets.csv",
            "outlet_id,name,kind,zone,depots,phone\n\
             OUT-N,North workshop,own,city,north east,+86 755 1234 5678\n\
             OUT-S,South partner garage,partner,rural,south north,\n",
        );
        let summary = fleetcare::registry::import_outlets(&self.db, &path)
            .await
            .unwrap();
        assert_eq!(summary.rows(), 2);
    }

    /// Tickets with the catalogue and the store's meters, as `fleetcare run` has them.
    pub(crate) fn tickets(&self) -> Tickets {
        Tickets::new(self.db.clone(), self.config.sla.clone())
            .with_meters(Arc::new(StoreMeters {
                store: Arc::new(StoreReader::new(
                    &self.config.data_dir,
                    self.config.pipeline(),
                )),
            }))
            .with_catalog(self.catalog.clone())
    }

    /// Serves the API and the web UI; the base address and a stop handle.
    pub(crate) async fn serve(&self) -> (String, tokio::sync::oneshot::Sender<()>) {
        let state = ApiState::new(
            self.db.clone(),
            self.tickets(),
            self.config.clone(),
            Arc::new(LiveMetrics::default()),
        )
        .unwrap();
        let web = fleetcare::http::WebState::new(
            state,
            fleetcare::http::IngestSources {
                broker: fleetcare::http::Broker::External("mqtt://broker.test".to_owned()),
                devices: Vec::new(),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(fleetcare::http::serve(listener, web, async {
            let _ = rx.await;
        }));
        (base, tx)
    }

    pub(crate) async fn token(&self, role: Role, fleets: &[&str]) -> String {
        let fleets: Vec<FleetId> = fleets.iter().map(|f| FleetId::new(f).unwrap()).collect();
        api::create_token(&self.db, role, &fleets).await.unwrap()
    }
}

/// A small client of the API.
pub(crate) struct Client {
    pub(crate) base: String,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: fleetcare::runtime::tls::https_client().unwrap(),
        }
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let bytes = r.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub(crate) async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let bytes = r.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Moves ticket `id` through `moves` (each a transition body); every
    /// move must succeed.
    async fn walk(&self, id: i64, token: &str, moves: &[Value]) -> Value {
        let mut last = Value::Null;
        for m in moves {
            let (status, body) = self
                .post(
                    &format!("/api/v1/tickets/{id}/transitions"),
                    token,
                    m.clone(),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{m}: {body}");
            last = body;
        }
        last
    }
}

fn telemetry(vehicle: &str, ts: &str, engine_hours: f64, dtcs: &str) -> (String, String) {
    (
        format!("fleet/acme/{vehicle}/telemetry"),
        format!(
            r#"{{"ts": "{ts}", "engine_hours": {engine_hours}, "odometer_km": {km}, "dtcs": [{dtcs}]}}"#,
            km = engine_hours * 12.0
        ),
    )
}

/// Issue 21 acceptance: a vehicle commissioned 20 months ago with 3,900
/// engine hours is in warranty, at 4,100 out (basis engine_hours); an
/// excluded wear part on the in-warranty ticket is not claimed, the
/// covered part and the labour are (API and CLI). Dispatch names a
/// registered outlet, the depot's one proposed.
async fn warranty_and_claims(database_url: Option<String>) {
    let now = Utc::now();
    let ts = (now - TimeDelta::hours(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let s = setup(
        database_url,
        vec![
            telemetry("WIN-1", &ts, 3900.0, ""),
            telemetry("WOUT-1", &ts, 4100.0, ""),
        ],
    )
    .await;
    let commissioned = now
        .date_naive()
        .checked_sub_months(Months::new(20))
        .unwrap();
    s.vehicles(&format!(
        "WIN-1,acme,compactor-c12,LZZAELND5JN123456,{commissioned},north\n\
         WOUT-1,acme,compactor-c12,,{commissioned},north\n"
    ))
    .await;
    s.outlets().await;
    let (base, _stop) = s.serve().await;
    let c = Client::new(&base);
    let support = s.token(Role::Support, &[]).await;

    let complaint =
        |v: &str| json!({"vehicle": v, "kind": "complaint", "title": "Packer leaks oil"});
    let (status, inside) = c
        .post("/api/v1/tickets", &support, complaint("WIN-1"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{inside}");
    let until = commissioned.checked_add_months(Months::new(24)).unwrap();
    assert_eq!(
        inside["warranty"],
        json!({"status": "in", "until": until.to_string(), "basis": "engine_hours"})
    );
    let (_, outside) = c
        .post("/api/v1/tickets", &support, complaint("WOUT-1"))
        .await;
    assert_eq!(
        outside["warranty"],
        json!({"status": "out", "until": null, "basis": "engine_hours"})
    );
    let id = inside["id"].as_i64().unwrap();

    // The outlet serving the depot (north: the own workshop before the
    // partner) is proposed; a name not in the register is refused.
    let (_, shown) = c.get(&format!("/api/v1/tickets/{id}"), &support).await;
    assert_eq!(shown["warranty"]["status"], "in");
    assert_eq!(shown["outlet_proposed"]["outlet_id"], "OUT-N");
    assert_eq!(shown["outlet_proposed"]["zone"], "city");
    let (status, body) = c
        .post(
            &format!("/api/v1/tickets/{id}/transitions"),
            &support,
            json!({"to": "dispatched", "assignee": "Wang Lei", "outlet": "north workshop"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a registered outlet"),
        "{body}"
    );
    let closed = c
        .walk(
            id,
            &support,
            &[
                json!({"to": "dispatched", "assignee": "Wang Lei", "outlet": "OUT-N"}),
                json!({"to": "diagnosing"}),
                json!({"to": "in_repair", "parts_used": [["FLT-HYD-RET-01", 1], ["SOLENOID-VALVE-01", 2]]}),
                json!({"to": "quality_check"}),
                json!({"to": "delivered", "labour_hours": 2.5}),
                json!({"to": "closed", "satisfaction": 5, "outcome": "part_replaced"}),
            ],
        )
        .await;
    assert_eq!(
        closed["parts_used"],
        json!([
            {"part": "FLT-HYD-RET-01", "qty": 1, "covered": false},
            {"part": "SOLENOID-VALVE-01", "qty": 2, "covered": true},
        ])
    );
    assert_eq!(closed["labour_covered"], true);
    let (status, claims) = c.get("/api/v1/reports/claims", &support).await;
    assert_eq!(status, StatusCode::OK);
    let rows = claims.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{claims}");
    assert_eq!(rows[0]["part"], "SOLENOID-VALVE-01");
    assert_eq!(rows[0]["qty"], 2);
    assert_eq!(rows[0]["vin"], "LZZAELND5JN123456");
    assert_eq!(rows[0]["outlet"], "OUT-N");
    assert_eq!(rows[0]["labour_hours"], Value::Null);
    assert_eq!(
        (rows[1]["part"].clone(), rows[1]["labour_hours"].clone()),
        (Value::Null, json!(2.5))
    );
    // A period without the closing has nothing to claim.
    let (_, none) = c
        .get(
            "/api/v1/reports/claims?from=2020-01-01&to=2020-12-31",
            &support,
        )
        .await;
    assert_eq!(none, json!([]));
    let (status, _) = c
        .get("/api/v1/reports/claims?from=tomorrow", &support)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The register, a page at a time.
    let r = fleetcare::runtime::tls::https_client()
        .unwrap()
        .get(format!("{base}/api/v1/outlets?limit=1"))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_some());
    let page: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(page[0]["outlet_id"], "OUT-N");
    assert_eq!(page[0]["depots"], json!(["east", "north"]));

    if s.config.database.url.is_none() {
        // The CLI prints the same claim.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fleetcare"))
            .arg("--data")
            .arg(&s.config.data_dir)
            .args(["report", "claims", "--format", "csv"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ticket,fleet,vehicle,vin,model,closed_at,spn,fmi,part,qty,labour_hours,outlet"
        );
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].contains(",SOLENOID-VALVE-01,2,,OUT-N"), "{text}");
        assert!(lines[2].ends_with(",,,2.5,OUT-N"), "{text}");
    }
    s.db.close().await;
}

/// Issue 21 acceptance: a batch defect → a campaign → one recall ticket
/// per affected vehicle of that model; closing them moves the progress.
async fn batch_defect_to_recall_campaign(database_url: Option<String>) {
    // SPN 110 FMI 0 comes and goes on three of five compactors: a batch
    // defect of the model (3 vehicles, 60 %). Sweepers are not affected.
    let mut messages = Vec::new();
    let day = |d: i64| {
        (Utc::now() - TimeDelta::days(d))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    for (i, v) in ["RC-1", "RC-2", "RC-3", "RC-4", "RC-5", "RS-1"]
        .iter()
        .enumerate()
    {
        let hours = 100.0 + i as f64;
        let faulty = i < 3;
        for d in [5, 4] {
            let dtc = if faulty && d == 5 {
                r#"{"spn": 110, "fmi": 0, "oc": 1}"#
            } else {
                ""
            };
            messages.push(telemetry(v, &day(d), hours + (6 - d) as f64, dtc));
        }
    }
    let s = setup(database_url, messages).await;
    s.vehicles(
        "RC-1,acme,compactor-c12,,2024-01-10,north\n\
         RC-2,acme,compactor-c12,,2024-02-10,north\n\
         RC-3,acme,compactor-c12,,2024-03-10,north\n\
         RC-4,acme,compactor-c12,,2024-04-10,north\n\
         RC-5,acme,compactor-c12,,2025-06-10,north\n\
         RS-1,acme,sweeper-s8,,2024-01-10,north\n",
    )
    .await;
    let (base, _stop) = s.serve().await;
    let c = Client::new(&base);
    let support = s.token(Role::Support, &[]).await;
    let operator = s.token(Role::Operator, &["acme"]).await;

    let (_, recurring) = c.get("/api/v1/reports/recurring", &support).await;
    let defect = recurring
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "batch_defect")
        .unwrap_or_else(|| panic!("no batch defect in {recurring}"))
        .clone();
    assert_eq!(
        (
            defect["model"].clone(),
            defect["spn"].clone(),
            defect["fmi"].clone()
        ),
        (json!("compactor-c12"), json!(110), json!(0))
    );
    let body = json!({
        "model": defect["model"], "spn": defect["spn"], "fmi": defect["fmi"],
        "title": "Replace the thermostat housing", "commissioned_to": "2025-01-01",
    });
    let (status, _) = c.post("/api/v1/campaigns", &operator, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, campaign) = c.post("/api/v1/campaigns", &support, body).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    // RC-5 was commissioned after the range; the sweeper is another model.
    assert_eq!(
        (
            campaign["vehicles"].clone(),
            campaign["open"].clone(),
            campaign["closed"].clone()
        ),
        (json!(4), json!(4), json!(0))
    );
    let id = campaign["id"].as_i64().unwrap();
    let tickets: Vec<i64> = campaign["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ticket"].as_i64().unwrap())
        .collect();
    let (_, recalls) = c.get("/api/v1/tickets?kind=recall", &support).await;
    let mut vehicles: Vec<&str> = recalls
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["vehicle"].as_str().unwrap())
        .collect();
    vehicles.sort_unstable();
    assert_eq!(vehicles, ["RC-1", "RC-2", "RC-3", "RC-4"]);
    assert!(
        recalls
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["campaign"] == id && t["key"] == "110:0")
    );

    for t in &tickets[..2] {
        c.walk(
            *t,
            &support,
            &[
                json!({"to": "dispatched", "assignee": "Li", "outlet": "north"}),
                json!({"to": "diagnosing"}),
                json!({"to": "in_repair"}),
                json!({"to": "quality_check"}),
                json!({"to": "delivered"}),
                json!({"to": "closed", "satisfaction": 4, "outcome": "part_replaced"}),
            ],
        )
        .await;
    }
    let (_, progress) = c.get(&format!("/api/v1/campaigns/{id}"), &support).await;
    assert_eq!(
        (
            progress["vehicles"].clone(),
            progress["closed"].clone(),
            progress["open"].clone()
        ),
        (json!(4), json!(2), json!(2))
    );
    let (status, _) = c.get(&format!("/api/v1/campaigns/{id}"), &operator).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = c.get("/api/v1/campaigns/999", &support).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = c.get("/api/v1/campaigns", &support).await;
    assert_eq!(list[0]["id"], id);
    s.db.close().await;
}

/// The KPI fixture's time 0.
pub(crate) const KPI_BASE: &str = "2026-03-02T00:00:00Z";

/// Builds the tickets of `tests/data/kpi_fixture.csv` through the ticket
/// store, each moved at the fixture's hours: opened, dispatched (the
/// response), diagnosing (on site), in repair, quality check, delivered,
/// closed with its outcome and score.
pub(crate) async fn kpi_fixture(s: &Setup) {
    let base = DateTime::parse_from_rfc3339(KPI_BASE)
        .unwrap()
        .with_timezone(&Utc);
    let at = |h: &str| -> Option<DateTime<Utc>> {
        let h: f64 = h.parse().ok()?;
        Some(base + TimeDelta::milliseconds((h * 3_600_000.0) as i64))
    };
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kpi_fixture.csv"),
    )
    .unwrap();
    let mut vehicles = String::new();
    for i in 1..=8 {
        let model = if i <= 4 {
            "compactor-c12"
        } else {
            "sweeper-s8"
        };
        vehicles.push_str(&format!("V{i},acme,{model},,2025-01-01,north\n"));
    }
    s.vehicles(&vehicles).await;
    s.outlets().await;
    let tickets = s.tickets();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let kind: TicketKind = f[2].parse().unwrap();
        let priority: Priority = f[4].parse().unwrap();
        let created = at(f[7]).unwrap();
        let ticket = tickets
            .raise(NewAlert {
                kind,
                fleet: Some(FleetId::new("acme").unwrap()),
                vehicle: Some(VehicleId::new(f[0]).unwrap()),
                model: Some(fleetcare::catalog::ModelId::new(f[1]).unwrap()),
                key: f[3].to_owned(),
                priority,
                title: format!("{} {}", f[2], f[3]),
                details: String::new(),
                at: created,
            })
            .await
            .unwrap()
            .into_ticket();
        assert_eq!(ticket.state, TicketState::Open, "{line}: a new ticket");
        let go = |t: Transition, when: DateTime<Utc>| {
            let tickets = tickets.clone();
            async move {
                tickets
                    .transition(ticket.id, t, "support", when)
                    .await
                    .unwrap()
            }
        };
        let responded = at(f[8]).unwrap();
        go(
            Transition {
                assignee: Some(f[6].to_owned()),
                outlet: Some(f[5].to_owned()),
                ..Transition::to(TicketState::Dispatched)
            },
            responded,
        )
        .await;
        let last = at(f[11]).unwrap();
        if f[12] == "cancelled" {
            go(Transition::to(TicketState::Cancelled), last).await;
            continue;
        }
        let (on_site, delivered) = (at(f[9]).unwrap(), at(f[10]).unwrap());
        let step = (delivered - on_site) / 3;
        go(Transition::to(TicketState::Diagnosing), on_site).await;
        go(Transition::to(TicketState::InRepair), on_site + step).await;
        go(
            Transition::to(TicketState::QualityCheck),
            on_site + step * 2,
        )
        .await;
        go(Transition::to(TicketState::Delivered), delivered).await;
        go(
            Transition {
                satisfaction: Some(f[13].parse().unwrap()),
                outcome: Some(f[12].parse::<Outcome>().unwrap()),
                ..Transition::to(TicketState::Closed)
            },
            last,
        )
        .await;
    }
}

/// The figures of the fixture for March 2026, worked out by hand
/// (docs/decisions.md, "KPIs").
pub(crate) fn kpi_expected() -> Value {
    json!({
        "by": "all", "group": "all", "tickets_closed": 21,
        "first_time_fix_share": 0.7895,
        "respond_h_median": 2.0, "respond_h_p90": 10.0,
        "on_site_h_median": 6.0, "on_site_h_p90": 30.0,
        "deliver_h_median": 30.0, "deliver_h_p90": 50.0,
        "downtime_h": 370.0, "sla_met_share": 0.9048, "satisfaction_mean": 3.86,
        "no_fault_found_share": 0.0952, "follow_up_on_time_share": 0.9048,
    })
}

/// Issue 21 acceptance: the KPI report of the API gives the hand-computed
/// figures of the fixture (21 tickets closed in March, 23 in all).
async fn kpis_match_the_hand_computed_fixture(database_url: Option<String>) {
    let s = setup(database_url, Vec::new()).await;
    kpi_fixture(&s).await;
    let (base, _stop) = s.serve().await;
    let c = Client::new(&base);
    let planner = s.token(Role::Planner, &[]).await;
    let (status, rows) = c
        .get(
            "/api/v1/reports/kpis?from=2026-03-01&to=2026-03-31",
            &planner,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rows}");
    assert_eq!(rows, json!([kpi_expected()]));
    let (_, by_outlet) = c
        .get(
            "/api/v1/reports/kpis?from=2026-03-01&to=2026-03-31&by=outlet",
            &planner,
        )
        .await;
    let pick = |g: &str| {
        by_outlet
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["group"] == g)
            .unwrap()
            .clone()
    };
    let (n, south) = (pick("OUT-N"), pick("OUT-S"));
    assert_eq!(
        (n["tickets_closed"].clone(), south["tickets_closed"].clone()),
        (json!(10), json!(11))
    );
    assert_eq!(
        (
            n["satisfaction_mean"].clone(),
            south["satisfaction_mean"].clone()
        ),
        (json!(4.0), json!(3.73))
    );
    assert_eq!(
        (
            n["first_time_fix_share"].clone(),
            south["first_time_fix_share"].clone()
        ),
        (json!(0.7778), json!(0.8))
    );
    let (status, _) = c.get("/api/v1/reports/kpis?by=fleet", &planner).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    s.db.close().await;
}

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$case(None).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match super::postgres_database(stringify!($case)).await {
                    Some(url) => super::$case(Some(url)).await,
                    None => eprintln!("skipped: {} is not set", super::POSTGRES_ENV),
                }
            }
        }
    )*};
}

on_both!(
    warranty_and_claims,
    batch_defect_to_recall_campaign,
    kpis_match_the_hand_computed_fixture,
);

/// `fleetcare outlets import`: bad rows are refused with FILE:LINE and
/// nothing is imported; a good file then is, and again changes nothing.
#[test]
fn outlets_import_refuses_bad_rows_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |file: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_fleetcare"))
            .arg("--data")
            .arg(&data)
            .args(["outlets", "import"])
            .arg(file)
            .output()
            .unwrap()
    };
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "outlet_id,name,kind,zone,depots,phone\n\
         OUT-N,North workshop,own,city,north,\n\
         OUT-X,Somewhere,shop,city,north,\n\
         OUT-Y,Nowhere,partner,rural,,\n\
         OUT-N,North again,own,city,north,\n",
    )
    .unwrap();
    let out = run(&bad);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let b = bad.display();
    assert!(
        err.contains(&format!(
            "{b}:3: kind \"shop\" is not own or partner; use one of those"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{b}:4: depots is empty; fill it in")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{b}:5: outlet \"OUT-N\" is already on line 2; list each outlet once"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");

    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "name,outlet_id,kind,zone,depots,phone\n\
         North workshop,OUT-N,own,city,north east,+86 755 1234 5678\n\
         South partner,OUT-S,partner,rural,south,\n",
    )
    .unwrap();
    let out = run(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!(
            "imported 2 outlets (2 new, 0 updated, 0 unchanged) from {}",
            good.display()
        )
    );
    let out = run(&good);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("(0 new, 0 updated, 2 unchanged)")
    );
}
