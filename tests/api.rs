//! Issue 6, the HTTP API (C7) over a real socket: access (roles, fleet
//! scoping, 401s) on every endpoint, and a ticket's life through the API.
//!
//! The router runs in-process on 127.0.0.1:0 over a fixture of two fleets
//! (`fa` and `fb`) built through the library: stored messages, imported
//! registry rows, tickets raised and created, alert rows, tokens. The
//! client is reqwest (already a dependency for webhooks), plain HTTP.

mod fixture;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fleetcare::config::HttpConfig;
use fleetcare::http::api;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use fixture::{A_VEHICLES, AS_OF, B_VEHICLES, Fixture, fixture};

/// A running API and a client for it.
struct Api {
    base: String,
    client: reqwest::Client,
    fixture: Fixture,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Api {
    /// Over SQLite, or the PostgreSQL database `database_url` names.
    async fn start_on(database_url: Option<String>) -> Self {
        Self::start_with(database_url, HttpConfig::default()).await
    }

    /// With the listener's limits `http`.
    async fn start_with(database_url: Option<String>, http: HttpConfig) -> Self {
        let (fixture, mut state) = fixture(database_url).await;
        let mut config = (*state.config).clone();
        config.http = http;
        state.config = std::sync::Arc::new(config);
        Self::serve(fixture, state).await
    }

    /// Serves `state` over `fixture`.
    async fn serve(fixture: Fixture, state: api::ApiState) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(api::serve(listener, state, async {
            let _ = rx.await;
        }));
        Self {
            base,
            // The project's own builder: reqwest needs its rustls config even for plain HTTP.
            client: fleetcare::runtime::tls::https_client().unwrap(),
            fixture,
            _shutdown: tx,
        }
    }

    async fn start() -> Self {
        Self::start_on(None).await
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call("GET", path, Some(token), None).await
    }

    async fn get_ok(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.get(path, token).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }
}

fn rows(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

/// The `fleet` values of a list's rows (`null` as "null").
fn fleets(v: &Value) -> BTreeSet<String> {
    rows(v)
        .iter()
        .map(|r| match &r["fleet"] {
            Value::String(s) => s.clone(),
            _ => "null".to_owned(),
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Every operation of the OpenAPI document with its path parameters
/// filled in (`{id}` of vehicles: A1; of tickets: the first of fleet A).
fn operations(doc: &Value, ticket: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let filled = if path.starts_with("/api/v1/vehicles/") {
                path.replace("{id}", "A1")
            } else {
                path.replace("{id}", &ticket.to_string())
            };
            out.push((method.to_uppercase(), filled));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_is_401_everywhere_but_health_metrics_and_the_document() {
    let api = Api::start().await;
    let (status, doc) = api.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let ops = operations(&doc, api.fixture.a_tickets[0]);
    assert_eq!(ops.len(), 26, "{ops:?}");
    let public = set(&["/healthz", "/metrics", "/api/v1/openapi.json"]);
    for (method, path) in &ops {
        let body = (method == "POST").then(|| json!({}));
        let (status, answer) = api.call(method, path, None, body.clone()).await;
        if public.contains(path) {
            assert_eq!(status, StatusCode::OK, "{method} {path}");
            continue;
        }
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {answer}"
        );
        assert!(
            answer["error"].as_str().unwrap().contains("bearer token"),
            "{answer}"
        );
        let (status, _) = api.call(method, path, Some("fct_not-a-token"), body).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a bad token"
        );
    }
    let resp = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let metrics = resp.text().await.unwrap();
    assert!(
        metrics.contains("\nfleetcare_messages_stored_total 0\n"),
        "{metrics}"
    );
    assert!(metrics.ends_with("\n# EOF\n"), "{metrics}");
    // Every operation the document lists is served (an admin gets no
    // "no such endpoint" and no 405 on any of them).
    for (method, path) in &ops {
        let body = (method == "POST").then(|| json!({}));
        let (status, answer) = api.call(method, path, Some(&api.fixture.admin), body).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(answer["error"], "no endpoint of that id", "{method} {path}");
        assert!(
            !status.is_server_error(),
            "{method} {path}: {status} {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_of_fleet_a_never_sees_fleet_b() {
    operator_scoping(Api::start().await).await;
}

/// The PostgreSQL server of `FLEETCARE_TEST_POSTGRES_URL` (set by .ci/run).
pub(crate) const POSTGRES_ENV: &str = "FLEETCARE_TEST_POSTGRES_URL";

/// Runs `sql` on `server`'s own database (CREATE and DROP DATABASE).
pub(crate) async fn postgres_admin(server: &str, sql: String) {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(server).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// The URL of database `name` on `server`, keeping the server URL's query.
pub(crate) fn database_url(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').unwrap_or((server, ""));
    let (root, _) = base.rsplit_once('/').unwrap();
    if query.is_empty() {
        format!("{root}/{name}")
    } else {
        format!("{root}/{name}?{query}")
    }
}

/// A PostgreSQL database of its own for one test on the server of
/// [`POSTGRES_ENV`] (names are unique, so it is left behind), or `None`
/// when the variable is not set: the test then runs on SQLite.
pub(crate) async fn fresh_postgres_database(prefix: &str, test: &str) -> Option<String> {
    let server = std::env::var(POSTGRES_ENV).ok()?;
    let short: String = test
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    let name = format!(
        "{prefix}_{short}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros() % 1_000_000_000
    );
    postgres_admin(&server, format!("CREATE DATABASE {name}")).await;
    Some(database_url(&server, &name))
}

/// The same checks with tokens, tickets and alerts in PostgreSQL: one SQL
/// text for both (the alert query's `IN` list, the token tables).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_of_fleet_a_never_sees_fleet_b_on_postgres() {
    let Ok(server) = std::env::var(POSTGRES_ENV) else {
        eprintln!("skipped: {POSTGRES_ENV} is not set, so this test did not run on PostgreSQL");
        return;
    };
    let name = format!("fleetcare_api_{}", std::process::id());
    postgres_admin(&server, format!("CREATE DATABASE {name}")).await;
    let url = database_url(&server, &name);
    // In a task of its own, so the database is dropped even if it fails.
    let outcome =
        tokio::spawn(async move { operator_scoping(Api::start_on(Some(url)).await).await }).await;
    postgres_admin(&server, format!("DROP DATABASE {name} WITH (FORCE)")).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn operator_scoping(api: Api) {
    let f = &api.fixture;
    let op = f.operator_a.as_str();
    let as_of = format!("as_of={AS_OF}");

    // Single resources of fleet B, and the batch defect across fleets:
    // 404 on every endpoint that names one, as for an id that does not exist.
    let mut hidden = Vec::new();
    for v in B_VEHICLES {
        hidden.push(("GET", format!("/api/v1/vehicles/{v}"), None));
        hidden.push((
            "POST",
            "/api/v1/tickets".to_owned(),
            Some(json!({"vehicle": v, "kind": "complaint", "title": "t", "details": ""})),
        ));
    }
    for id in f.b_tickets.iter().chain([&f.cross_ticket]) {
        hidden.push(("GET", format!("/api/v1/tickets/{id}"), None));
        hidden.push((
            "POST",
            format!("/api/v1/tickets/{id}/transitions"),
            Some(json!({"to": "cancelled", "note": "not mine"})),
        ));
    }
    assert_eq!(hidden.len(), 2 * 2 + 2 * 4);
    for (method, path, body) in &hidden {
        let (status, answer) = api.call(method, path, Some(op), body.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        // The same answer as for an id that does not exist.
        let unknown = path.replace("/B1", "/Z9").replace("/B2", "/Z9");
        let unknown = f
            .b_tickets
            .iter()
            .chain([&f.cross_ticket])
            .fold(unknown, |p, id| p.replace(&format!("/{id}"), "/99999"));
        let body = body.clone().map(|mut b| {
            if b.get("vehicle").is_some() {
                b["vehicle"] = json!("Z9");
            }
            b
        });
        let (status, other) = api.call(method, &unknown, Some(op), body).await;
        assert_eq!(
            (status, &other),
            (StatusCode::NOT_FOUND, &answer),
            "{unknown}"
        );
    }
    // Nothing was changed by the refused transitions.
    let t = api
        .get_ok(&format!("/api/v1/tickets/{}", f.b_tickets[0]), &f.support)
        .await;
    assert_eq!(t["state"], "open");

    // Lists: fleet A's rows only, never B's nor those across fleets.
    let lists = [
        "/api/v1/vehicles".to_owned(),
        "/api/v1/tickets".to_owned(),
        "/api/v1/alerts".to_owned(),
        "/api/v1/dead-letters".to_owned(),
        format!("/api/v1/reports/due?{as_of}"),
        format!("/api/v1/reports/recurring?{as_of}"),
    ];
    for path in &lists {
        let mine = api.get_ok(path, op).await;
        assert_eq!(fleets(&mine), set(&["fa"]), "{path}: {mine}");
        let all = api.get_ok(path, &f.support).await;
        let expected: &[&str] = if path.contains("vehicles") || path.contains("due") {
            &["fa", "fb"]
        } else {
            &["fa", "fb", "null"]
        };
        assert_eq!(fleets(&all), set(expected), "support on {path}: {all}");
    }
    let ids = |v: &Value, key: &str| -> BTreeSet<String> {
        rows(v)
            .iter()
            .map(|r| r[key].to_string().trim_matches('"').to_owned())
            .collect()
    };
    let vehicles = api.get_ok("/api/v1/vehicles", op).await;
    assert_eq!(ids(&vehicles, "id"), set(&A_VEHICLES));
    let tickets = api.get_ok("/api/v1/tickets", op).await;
    let a_ids: Vec<String> = f.a_tickets.iter().map(ToString::to_string).collect();
    assert_eq!(
        ids(&tickets, "id"),
        a_ids
            .iter()
            .map(String::as_str)
            .map(str::to_owned)
            .collect()
    );
    // Filters only narrow: fleet B's tickets asked for by name are not there.
    for q in [
        "fleet=fb",
        "vehicle=B1",
        "kind=batch_defect",
        "kind=complaint",
    ] {
        let found = api.get_ok(&format!("/api/v1/tickets?{q}"), op).await;
        assert!(rows(&found).is_empty(), "?{q}: {found}");
        let support = api
            .get_ok(&format!("/api/v1/tickets?{q}"), &f.support)
            .await;
        assert!(!rows(&support).is_empty(), "support ?{q}: {support}");
    }
    let alerts = api.get_ok("/api/v1/alerts", op).await;
    assert_eq!(ids(&alerts, "id"), set(&["a-1"]));
    let dead = api.get_ok("/api/v1/dead-letters", op).await;
    assert_eq!(rows(&dead).len(), 2, "A1's and A2's bad payloads: {dead}");
    let dead_all = api.get_ok("/api/v1/dead-letters", &f.support).await;
    assert_eq!(rows(&dead_all).len(), 5, "{dead_all}");

    // Recurring: A1 and A2 for the operator; the batch defect spans both
    // fleets, so only support sees it.
    let recurring = api
        .get_ok(&format!("/api/v1/reports/recurring?{as_of}"), op)
        .await;
    assert_eq!(
        ids(&recurring, "vehicle"),
        set(&["A1", "A2"]),
        "{recurring}"
    );
    let all = api
        .get_ok(&format!("/api/v1/reports/recurring?{as_of}"), &f.support)
        .await;
    let batch: Vec<&Value> = rows(&all)
        .iter()
        .filter(|r| r["kind"] == "batch_defect")
        .collect();
    assert_eq!(batch.len(), 1, "{all}");
    assert_eq!(batch[0]["vehicles"], 3);

    // Trends have no fleet column: the operator's count its own trucks.
    let sum = |v: &Value| -> u64 {
        rows(v)
            .iter()
            .map(|r| r["episodes"].as_u64().unwrap())
            .sum()
    };
    let mine = api
        .get_ok(&format!("/api/v1/reports/trends?{as_of}"), op)
        .await;
    let all = api
        .get_ok(&format!("/api/v1/reports/trends?{as_of}"), &f.support)
        .await;
    assert_eq!((sum(&mine), sum(&all)), (6, 9), "{mine} {all}");

    // Parts demand is fleet-wide: not for operators.
    let (status, _) = api.get(&format!("/api/v1/reports/parts?{as_of}"), op).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The operator's own vehicle: the whole archive.
    let archive = api.get_ok("/api/v1/vehicles/A1", op).await;
    assert_eq!(archive["vehicle"]["fleet"], "fa");
    let meters: BTreeSet<String> = ids(&archive["meters"], "meter");
    assert_eq!(meters, set(&["engine_hours", "odometer_km"]), "{archive}");
    let engine = rows(&archive["meters"])
        .iter()
        .find(|m| m["meter"] == "engine_hours")
        .unwrap();
    assert_eq!(engine["value"], 1028.0, "the latest reading: {archive}");
    assert_eq!(rows(&archive["services"]).len(), 1);
    assert_eq!(
        ids(&archive["tickets"], "id"),
        a_ids.iter().map(String::clone).collect()
    );
    assert!(!rows(&archive["next_services"]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_sees_both_fleets_and_planners_only_reports() {
    let api = Api::start().await;
    let f = &api.fixture;
    for v in A_VEHICLES.iter().chain(&B_VEHICLES) {
        let archive = api
            .get_ok(&format!("/api/v1/vehicles/{v}"), &f.support)
            .await;
        assert_eq!(archive["vehicle"]["id"], *v);
        // Issue 23: B2's hydraulic oil was above 80 °C in 3 of its 6
        // hours with readings, so half of its 113 PTO hours count twice.
        let duty = rows(&archive["duty_meters"]);
        if *v == "B2" {
            assert_eq!(
                *duty,
                vec![json!({"task": "hydraulic-oil", "meter": "pto_hours",
                    "signal": "hydraulic_oil_temp_c", "above": 80.0, "factor": 2.0,
                    "raw": 113.0, "adjusted": 169.5})],
                "{archive}"
            );
        } else {
            assert!(duty.is_empty(), "{v} sent no PTO hours: {archive}");
        }
    }
    for id in f
        .a_tickets
        .iter()
        .chain(&f.b_tickets)
        .chain([&f.cross_ticket])
    {
        let t = api
            .get_ok(&format!("/api/v1/tickets/{id}"), &f.support)
            .await;
        assert_eq!(t["id"], *id);
        assert!(!rows(&t["events"]).is_empty(), "{t}");
    }
    let alerts = api.get_ok("/api/v1/alerts", &f.support).await;
    let order: Vec<&str> = rows(&alerts)
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["x-1", "b-2", "b-1", "a-1"], "newest first");
    let limited = api.get_ok("/api/v1/alerts?limit=1", &f.support).await;
    assert_eq!(rows(&limited).len(), 1);

    let as_of = format!("as_of={AS_OF}");
    for report in ["due", "recurring", "trends", "parts"] {
        let path = format!("/api/v1/reports/{report}?{as_of}");
        let rows_planner = api.get_ok(&path, &f.planner).await;
        let rows_support = api.get_ok(&path, &f.support).await;
        assert_eq!(rows_planner, rows_support, "{report}");
    }
    let parts = api
        .get_ok(&format!("/api/v1/reports/parts?{as_of}"), &f.planner)
        .await;
    assert!(!rows(&parts).is_empty());
    for (method, path) in [
        ("GET", "/api/v1/vehicles".to_owned()),
        ("GET", "/api/v1/vehicles/A1".to_owned()),
        ("GET", "/api/v1/tickets".to_owned()),
        ("GET", format!("/api/v1/tickets/{}", f.a_tickets[0])),
        ("POST", "/api/v1/tickets".to_owned()),
        (
            "POST",
            format!("/api/v1/tickets/{}/transitions", f.a_tickets[0]),
        ),
        ("GET", "/api/v1/alerts".to_owned()),
        ("GET", "/api/v1/dead-letters".to_owned()),
    ] {
        let body = (method == "POST").then(|| json!({}));
        let (status, answer) = api.call(method, &path, Some(&f.planner), body).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "planner {method} {path}: {answer}"
        );
        assert_eq!(
            answer["error"],
            "the planner role may not use this endpoint"
        );
    }
    // Bad input is the client's error, never the server's.
    for path in [
        "/api/v1/reports/due?as_of=yesterday",
        "/api/v1/alerts?limit=0",
        "/api/v1/alerts?limit=x",
        "/api/v1/tickets?state=repairing",
        "/api/v1/tickets?vehicle=",
        "/api/v1/tickets?fleet=a%20b",
    ] {
        let (status, answer) = api.get(path, &f.support).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    for path in [
        "/api/v1/vehicles/nope",
        "/api/v1/vehicles/%20",
        "/api/v1/tickets/0",
        "/api/v1/tickets/x",
        "/api/v1/tickets/99999",
        "/api/v1/nothing",
    ] {
        let (status, _) = api.get(path, &f.support).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_moves_through_repair_and_a_wrong_move_is_refused() {
    let api = Api::start().await;
    let op = api.fixture.operator_a.clone();
    let (status, t) = api
        .call(
            "POST",
            "/api/v1/tickets",
            Some(&op),
            Some(json!({"vehicle": "A2", "kind": "complaint", "title": "Bin lift jerks", "details": "Called in by the depot"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(
        (t["kind"].as_str(), t["state"].as_str(), t["fleet"].as_str()),
        (Some("complaint"), Some("open"), Some("fa"))
    );
    let id = t["id"].as_i64().unwrap();
    let path = format!("/api/v1/tickets/{id}/transitions");
    // The operator filed it; support runs the repair (issue 20, finding 5).
    let (status, refused) = api
        .call("POST", &path, Some(&op), Some(json!({"to": "cancelled"})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let support = api.fixture.support.clone();
    let mv = |body: Value| api.call("POST", &path, Some(&support), Some(body));

    let (status, refused) = mv(json!({"to": "in_repair", "note": "skip ahead"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let message = refused["error"].as_str().unwrap();
    assert!(
        message.contains("dispatched") && message.contains("cancelled"),
        "{message}"
    );

    let steps = [
        json!({"to": "dispatched", "note": "sent", "assignee": "Wang Lei", "outlet": "north workshop"}),
        json!({"to": "diagnosing", "note": "on site"}),
        json!({"to": "in_repair", "note": "no parts needed"}),
        json!({"to": "quality_check", "note": "done"}),
        json!({"to": "in_repair", "note": "inspection failed"}),
        json!({"to": "quality_check", "note": "redone"}),
        json!({"to": "delivered", "note": "back in service"}),
    ];
    for step in steps {
        let (status, t) = mv(step.clone()).await;
        assert_eq!(status, StatusCode::OK, "{step}: {t}");
        assert_eq!(t["state"], step["to"]);
    }
    let (status, t) = mv(json!({"to": "closed", "note": "called back"})).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "closing needs a score: {t}"
    );
    let (status, t) = mv(
        json!({"to": "closed", "note": "called back", "satisfaction": 4, "outcome": "repaired"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(
        (t["state"].as_str(), t["satisfaction"].as_i64()),
        (Some("closed"), Some(4))
    );
    let (status, t) = mv(json!({"to": "open", "note": "again"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{t}");

    let shown = api.get_ok(&format!("/api/v1/tickets/{id}"), &op).await;
    let moves: Vec<&str> = rows(&shown["events"])
        .iter()
        .filter(|e| e["kind"] == "moved")
        .filter_map(|e| e["to"].as_str())
        .collect();
    assert_eq!(
        moves,
        [
            "dispatched",
            "diagnosing",
            "in_repair",
            "quality_check",
            "in_repair",
            "quality_check",
            "delivered",
            "closed"
        ]
    );
    let actor = rows(&shown["events"]).last().unwrap()["actor"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(actor.starts_with("support:"), "{actor}");
    let filed_by = rows(&shown["events"])[0]["actor"].as_str().unwrap();
    assert!(filed_by.starts_with("operator:"), "{filed_by}");

    // Malformed bodies are 4xx with a JSON error.
    for body in ["{", "[]", r#"{"to": "flying", "note": ""}"#] {
        let resp = api
            .client
            .post(format!("{}{path}", api.base))
            .bearer_auth(&support)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let answer: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        assert!(status.is_client_error(), "{body}: {status}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (status, t) = api
        .call(
            "POST",
            "/api/v1/tickets",
            Some(&op),
            Some(json!({"vehicle": "A2", "kind": "fault", "title": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_create_prints_one_token_that_the_api_accepts() {
    let api = Api::start().await;
    let data = api.fixture.data.clone();
    let tokens = async |args: &[&str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetcare"))
            .arg("--data")
            .arg(&data)
            .args(["tokens", "create"])
            .args(args)
            .output()
            .await
            .unwrap()
    };
    let out = tokens(&["--role", "operator", "--fleet", "fb"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the token alone: {stdout:?}");
    assert!(
        lines[0].starts_with("fct_") && lines[0].len() == 68,
        "{stdout}"
    );
    let vehicles = api.get_ok("/api/v1/vehicles", lines[0]).await;
    let ids: BTreeSet<String> = rows(&vehicles)
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, set(&B_VEHICLES));
    // The database keeps only the hash.
    let db = std::fs::read(api.fixture.data.join("fleetcare.db")).unwrap();
    let needle = lines[0].as_bytes();
    assert!(!db.windows(needle.len()).any(|w| w == needle));

    for (args, says) in [
        (&["--role", "operator"][..], "--fleet"),
        (
            &["--role", "support", "--fleet", "fa"][..],
            "leave out --fleet",
        ),
        (
            &["--role", "operator", "--fleet", "no spaces"][..],
            "no spaces",
        ),
        (&["--role", "root"][..], "root"),
    ] {
        let out = tokens(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Telemetry of A1 (fleet `fa`), hour `h` after 2026-03-05T00:00Z:
/// engine hours 1030 + h (the fixture's last reading is 1028).
fn a1_hour(h: usize) -> (String, String) {
    let ts = chrono::DateTime::from_timestamp(1_772_668_800 + 3600 * h as i64, 0).unwrap();
    (
        "fleet/fa/A1/telemetry".to_owned(),
        format!(
            r#"{{"ts": "{}", "engine_hours": {}}}"#,
            ts.format("%Y-%m-%dT%H:%M:%SZ"),
            1030 + h
        ),
    )
}

fn store_hours(store: &mut fleetcare::store::Store, hours: std::ops::Range<usize>) {
    let messages: Vec<_> = hours.map(a1_hour).collect();
    let batch: Vec<fleetcare_ingest::pipeline::Message<'_>> = messages
        .iter()
        .map(|(topic, payload)| fleetcare_ingest::pipeline::Message {
            topic,
            payload: payload.as_bytes(),
            received: fleetcare_ingest::Timestamp::from_micros(1_800_000_000_000_000),
        })
        .collect();
    store.ingest(&batch, &mut Vec::new()).unwrap();
}

/// Issue 20 (finding 7): the API reads the store through one reader.
/// Ten archive requests replay the write-ahead log once, not ten times;
/// after more messages are stored, the next request reads only those,
/// and shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_requests_replay_the_log_once_not_per_request() {
    let (fixture, state) = fixture(None).await;
    let reader = state.store.clone();
    // 200 messages in the log, not compacted: the writer holds the store.
    let data = fixture.data.clone();
    let mut store = tokio::task::spawn_blocking(move || {
        let pipeline = fleetcare::config::Config::default().pipeline();
        let mut store = fleetcare::store::Store::open(&data, pipeline).unwrap();
        store_hours(&mut store, 0..200);
        store
    })
    .await
    .unwrap();
    let api = Api::serve(fixture, state).await;
    let engine_hours = |archive: &Value| {
        rows(&archive["meters"])
            .iter()
            .find(|m| m["meter"] == "engine_hours")
            .map(|m| m["value"].as_f64().unwrap())
    };
    for _ in 0..10 {
        let archive = api.get_ok("/api/v1/vehicles/A1", &api.fixture.admin).await;
        assert_eq!(engine_hours(&archive), Some(1229.0));
    }
    let stats = reader.stats();
    assert_eq!(stats.rebuilds, 1, "the checkpoint read once");
    assert_eq!(stats.records, 200, "the log replayed once: {stats:?}");

    let store = tokio::task::spawn_blocking(move || {
        store_hours(&mut store, 200..205);
        store
    })
    .await
    .unwrap();
    let archive = api.get_ok("/api/v1/vehicles/A1", &api.fixture.admin).await;
    assert_eq!(
        engine_hours(&archive),
        Some(1234.0),
        "what was stored before the request"
    );
    let stats = reader.stats();
    assert_eq!(
        (stats.rebuilds, stats.records),
        (1, 205),
        "only the new records read: {stats:?}"
    );
    // A compaction: the reader reads the new checkpoint and an empty log.
    tokio::task::spawn_blocking(move || store.close().unwrap())
        .await
        .unwrap();
    let archive = api.get_ok("/api/v1/vehicles/A1", &api.fixture.admin).await;
    assert_eq!(engine_hours(&archive), Some(1234.0));
    assert_eq!((reader.stats().rebuilds, reader.stats().records), (2, 205));
}

/// Reads `conn` until the server closes it; false if it is still open
/// after `deadline`.
async fn closed_by_server(conn: &mut tokio::net::TcpStream, deadline: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(deadline, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Issue 20, finding 7: a connection that never finished its request
/// headers stayed open (70 s and counting). With `header_timeout` 1 s, a
/// slowloris connection (half a request head) and one that sends nothing
/// are both closed by the server, while other clients are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_does_not_finish_its_headers_is_closed() {
    let timeout = Duration::from_secs(1);
    let api = Api::start_with(
        None,
        HttpConfig {
            header_timeout: timeout,
            ..HttpConfig::default()
        },
    )
    .await;
    let address = api.base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /api/v1/vehicles HTTP/1.1\r\nHost: fleetcare\r\nAccept: appl")
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    // Meanwhile the API answers everyone else.
    let vehicles = api.get_ok("/api/v1/vehicles", &api.fixture.support).await;
    assert_eq!(rows(&vehicles).len(), 4);
    for (name, conn) in [("half a request head", &mut slow), ("nothing", &mut silent)] {
        assert!(
            closed_by_server(conn, timeout * 10).await,
            "a connection that sent {name} is still open after {:?}",
            timeout * 10
        );
    }
    assert!(
        started.elapsed() >= timeout.mul_f64(0.9),
        "closed before the timeout: {:?}",
        started.elapsed()
    );
    // A connection that keeps sending a whole request is served.
    let mut whole = tokio::net::TcpStream::connect(&address).await.unwrap();
    whole
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: fleetcare\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    whole.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Issue 20, finding 6: tokens never expired and could not be revoked.
/// `tokens create --expires`, `tokens list` and `tokens revoke` through
/// the binary; the API refuses a revoked and an expired token with 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_revoked_and_expire() {
    let api = Api::start().await;
    let data = api.fixture.data.clone();
    let cli = async |args: &[&str]| {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetcare"))
            .arg("--data")
            .arg(&data)
            .arg("tokens")
            .args(args)
            .output()
            .await
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let create = async |args: &[&str]| {
        let mut all = vec!["create"];
        all.extend_from_slice(args);
        let (ok, stdout, stderr) = cli(&all).await;
        assert!(ok, "{args:?}: {stderr}");
        (stdout.trim().to_owned(), stderr)
    };
    let (short, said) = create(&["--role", "operator", "--fleet", "fb", "--expires", "3s"]).await;
    assert!(said.contains("expires at"), "{said}");
    let (support, said) = create(&["--role", "support"]).await;
    let in_90_days = (chrono::Utc::now() + chrono::Duration::days(90)).date_naive();
    assert!(said.contains(&in_90_days.to_string()), "{said}");
    let (forever, said) = create(&["--role", "admin", "--expires", "never"]).await;
    assert!(said.contains("never expires"), "{said}");
    let (ok, _, stderr) = cli(&["create", "--role", "admin", "--expires", "soon"]).await;
    assert!(!ok && stderr.contains("not a duration"), "{stderr}");

    let list = async || {
        let (ok, stdout, stderr) = cli(&["list", "--format", "json"]).await;
        assert!(ok, "{stderr}");
        let rows: Vec<Value> = serde_json::from_str(&stdout).unwrap();
        rows
    };
    let tokens = list().await;
    // The fixture's four, and the three above.
    assert_eq!(tokens.len(), 7, "{tokens:?}");
    for t in &tokens {
        let id = t["id"].as_str().unwrap();
        assert!(
            id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{t}"
        );
        assert_eq!(t["status"], "active", "{t}");
        for secret in [&short, &support, &forever] {
            assert!(!t.to_string().contains(secret.as_str()));
        }
    }
    let of = |rows: &[Value], role: &str, fleets: &str, never: bool| -> String {
        rows.iter()
            .filter(|t| t["role"] == role && t["fleets"] == fleets)
            .find(|t| t["expires_at"].is_null() == never)
            .unwrap_or_else(|| panic!("no {role} token: {rows:?}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (ok, table, _) = cli(&["list"]).await;
    assert!(ok);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "id",
            "role",
            "fleets",
            "created_at",
            "expires_at",
            "revoked_at",
            "status"
        ]
    );
    assert!(table.contains(&of(&tokens, "admin", "", true)), "{table}");

    // Revoked: refused from the next request on.
    api.get_ok("/api/v1/vehicles", &support).await;
    // By the token itself (the fixture has a support token too).
    let (ok, said, stderr) = cli(&["revoke", &support]).await;
    assert!(ok, "{stderr}");
    assert!(
        said.starts_with("revoked token ") && said.contains("(support)"),
        "{said}"
    );
    let (status, answer) = api.get("/api/v1/vehicles", &support).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("revoked"),
        "{answer}"
    );
    let revoked_id = said.split_whitespace().nth(2).unwrap().to_owned();
    let (ok, said, _) = cli(&["revoke", &revoked_id]).await;
    assert!(ok && said.contains("already revoked"), "{said}");
    let (ok, _, stderr) = cli(&["revoke", "00000000"]).await;
    assert!(!ok && stderr.contains("no token has the id"), "{stderr}");
    api.get_ok("/api/v1/vehicles", &forever).await;

    // Expired: refused once its three seconds are up.
    api.get_ok("/api/v1/vehicles", &short).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let (status, answer) = api.get("/api/v1/vehicles", &short).await;
        if status == StatusCode::UNAUTHORIZED {
            break answer;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(Instant::now() < deadline, "the 3 s token still works");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        answer["error"].as_str().unwrap().contains("expired"),
        "{answer}"
    );
    let tokens = list().await;
    let status_of = |id: &str| {
        tokens.iter().find(|t| t["id"] == id).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status_of(&revoked_id), "revoked");
    assert_eq!(status_of(&of(&tokens, "operator", "fb", false)), "expired");
    assert_eq!(status_of(&of(&tokens, "admin", "", true)), "active");
}

/// Issue 20, finding 4 (one payload made 100,000 dead letters; lists had
/// no pages): `GET /dead-letters` page by page over a real socket, by its
/// `Link` headers. The fixture's five dead letters were all received in
/// the same microsecond (one batch), so the cursor's place among the rows
/// of one instant is what keeps the walk exact; a message rejected
/// between pages is newer than the walk's position and does not appear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_come_in_pages_without_repeats_or_gaps() {
    let api = Api::start().await;
    let f = &api.fixture;
    let all = api
        .get_ok("/api/v1/dead-letters?limit=1000", &f.support)
        .await;
    assert_eq!(rows(&all).len(), 5, "{all}");
    let mut seen: Vec<Value> = Vec::new();
    let mut next = Some("/api/v1/dead-letters?limit=2".to_owned());
    let mut pages = 0;
    while let Some(path) = next {
        let resp = api
            .client
            .get(format!("{}{path}", api.base))
            .bearer_auth(&f.support)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        next = resp.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            l.strip_prefix('<')
                .and_then(|l| l.strip_suffix(">; rel=\"next\""))
                .unwrap()
                .to_owned()
        });
        let page: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        assert!(rows(&page).len() <= 2);
        seen.extend(rows(&page).iter().cloned());
        if pages == 0 {
            // A gateway sends garbage while the client reads.
            let data = f.data.clone();
            tokio::task::spawn_blocking(move || {
                let config = fleetcare::config::Config::default();
                let mut store = fleetcare::store::Store::open(&data, config.pipeline()).unwrap();
                let msg = fleetcare_ingest::pipeline::Message {
                    topic: "fleet/fa/A1/telemetry",
                    payload: b"garbage between pages",
                    received: fleetcare_ingest::Timestamp::from_micros(
                        chrono::Utc::now().timestamp_micros(),
                    ),
                };
                let mut records = Vec::new();
                store.ingest(&[msg], &mut records).unwrap();
                store.close().unwrap();
            })
            .await
            .unwrap();
        }
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(Value::Array(seen), all, "every dead letter once, in order");
    let now = api.get_ok("/api/v1/dead-letters", &f.support).await;
    assert_eq!(rows(&now).len(), 6, "the new one is first: {now}");
    assert!(
        rows(&now)[0]["excerpt"]
            .as_str()
            .unwrap()
            .contains("garbage")
    );
    // The operator's pages: fleet A's only.
    let mine = api
        .get_ok("/api/v1/dead-letters?limit=1000", &f.operator_a)
        .await;
    assert_eq!(fleets(&mine), set(&["fa"]));
}
