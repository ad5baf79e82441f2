//! Issue 22, the parts ledger (C11) end to end: the built binary's `stock`
//! commands and `report parts --reorder` on the fixture of
//! tests/data/parts/ (hand-computed figures: docs/decisions.md, "Parts
//! ledger"), the same report and the ledger over the API, and 50 tickets
//! closing at once against one part's stock (SQLite, and PostgreSQL when
//! FLEETCARE_TEST_POSTGRES_URL is set).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::Utc;
use fleetcare::catalog::{Catalog, PartId};
use fleetcare::config::Config;
use fleetcare::db::Db;
use fleetcare::http::api::{self, ApiState, Role};
use fleetcare::registry::Depot;
use fleetcare::runtime::LiveMetrics;
use fleetcare::tickets::{TicketKind, TicketState, Tickets, Transition};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/data/parts").join(name)
}

fn models() -> PathBuf {
    fixture("models")
}

/// `fleetcare --data DATA --models tests/data/parts/models ARGS...`
fn fleetcare(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetcare"))
        .arg("--data")
        .arg(data)
        .arg("--models")
        .arg(models())
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The two reorder rows of the fixture as of 2026-03-01, by hand:
///
/// - one vehicle per depot needs 10 FLT-X a week (weekly_demand 10);
///   lead time 14 days, 2 safety weeks: reorder_point = 10 × 14 / 7 +
///   10 × 2 = 40;
/// - north: 25 on hand + 10 on order = 35 < 40: order_qty 5; cumulative
///   demand passes 35 in week 3 (from 2026-03-22): order_by 2026-03-08;
/// - south: 100 on hand: no order; demand passes 100 in week 10 (from
///   2026-05-10): order_by 2026-04-26.
fn expected_rows() -> Value {
    json!([
        {"part": "FLT-X", "depot": "north", "on_hand": 25, "on_order": 10,
         "weekly_demand": 10.0, "lead_time_days": 14, "safety_stock_weeks": 2.0,
         "reorder_point": 40.0, "order_qty": 5, "order_by": "2026-03-08"},
        {"part": "FLT-X", "depot": "south", "on_hand": 100, "on_order": 0,
         "weekly_demand": 10.0, "lead_time_days": 14, "safety_stock_weeks": 2.0,
         "reorder_point": 40.0, "order_qty": 0, "order_by": "2026-04-26"},
    ])
}

/// Registry, a count and an order through the CLI.
fn load_fixture(data: &Path) {
    let vehicles = fixture("vehicles.csv");
    ok(&fleetcare(
        data,
        &["vehicles", "import", vehicles.to_str().unwrap()],
    ));
    let stock = fixture("stock.csv");
    let out = ok(&fleetcare(
        data,
        &["stock", "import", stock.to_str().unwrap()],
    ));
    assert_eq!(
        out,
        format!(
            "imported 2 stock levels (2 new, 0 updated, 0 unchanged) from {}\n",
            stock.display()
        )
    );
    let orders = fixture("orders.csv");
    let out = ok(&fleetcare(
        data,
        &["stock", "order", orders.to_str().unwrap()],
    ));
    assert_eq!(
        out,
        format!(
            "imported 1 order line (1 new, 0 updated, 0 unchanged) from {}\n",
            orders.display()
        )
    );
}

#[test]
fn the_reorder_fixture_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    load_fixture(&data);
    let out = ok(&fleetcare(
        &data,
        &[
            "report",
            "parts",
            "--reorder",
            "--as-of",
            "2026-03-01",
            "--format",
            "json",
        ],
    ));
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows, expected_rows());
    let csv = ok(&fleetcare(
        &data,
        &[
            "report",
            "parts",
            "--reorder",
            "--as-of",
            "2026-03-01",
            "--format",
            "csv",
        ],
    ));
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "part,depot,on_hand,on_order,weekly_demand,lead_time_days,safety_stock_weeks,reorder_point,order_qty,order_by",
            "FLT-X,north,25,10,10.0,14,2.0,40.0,5,2026-03-08",
            "FLT-X,south,100,0,10.0,14,2.0,40.0,0,2026-04-26",
        ]
    );

    // A count after a fitted part is an adjustment; a transfer moves stock.
    let out = ok(&fleetcare(
        &data,
        &[
            "stock",
            "transfer",
            "--part",
            "FLT-X",
            "--from",
            "south",
            "--to",
            "north",
            "--qty",
            "5",
            "--reference",
            "T-1",
        ],
    ));
    assert_eq!(
        out,
        "moved 5 × FLT-X from south to north (reference transfer:T-1); 95 left at south\n"
    );
    let count = dir.path().join("count.csv");
    std::fs::write(
        &count,
        "part,depot,on_hand\nFLT-X,north,28\nFLT-X,south,95\n",
    )
    .unwrap();
    let out = ok(&fleetcare(
        &data,
        &["stock", "import", count.to_str().unwrap()],
    ));
    assert!(
        out.starts_with("imported 2 stock levels (0 new, 1 updated, 1 unchanged)"),
        "{out}"
    );
    let receipts = dir.path().join("receipts.csv");
    std::fs::write(
        &receipts,
        "part,depot,qty,reference,received_on\nFLT-X,north,10,PO-1,2026-02-28\n",
    )
    .unwrap();
    ok(&fleetcare(
        &data,
        &["stock", "receive", receipts.to_str().unwrap()],
    ));
    let out = ok(&fleetcare(
        &data,
        &[
            "report",
            "parts",
            "--reorder",
            "--as-of",
            "2026-03-01",
            "--format",
            "json",
        ],
    ));
    let rows: Value = serde_json::from_str(&out).unwrap();
    // north: 28 counted (30 before: an adjust of −2), then 10 received
    // and the order closed: 38 on hand, none on order.
    assert_eq!(
        (
            &rows[0]["on_hand"],
            &rows[0]["on_order"],
            &rows[0]["order_qty"]
        ),
        (&json!(38), &json!(0), &json!(2))
    );
}

#[test]
fn bad_receipt_rows_are_refused_whole_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bad = fixture("receipts-bad.csv");
    let out = fleetcare(&data, &["stock", "receive", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "");
    let err = String::from_utf8(out.stderr).unwrap();
    let at = |line: u32| format!("{}:{line}: ", bad.display());
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            format!(
                "{}qty \"-4\" is not a quantity; give a whole number of 1 or more",
                at(3)
            ),
            format!(
                "{}part \"FLT-Z\" is not in the catalogue's parts.toml; fix the id or add the part there",
                at(4)
            ),
            format!(
                "fleetcare: nothing was imported from {}: fix the 2 rows above and import the file again",
                bad.display()
            ),
        ]
    );
}

/// An API over the data directory `data` (SQLite there) and the fixture
/// catalogue, on 127.0.0.1:0.
async fn serve(data: &Path) -> (String, Db, Tickets, tokio::sync::oneshot::Sender<()>) {
    let config = Config {
        data_dir: data.to_path_buf(),
        models_dir: models(),
        ..Config::default()
    };
    let db = Db::connect(&config).await.unwrap();
    let tickets = Tickets::new(db.clone(), config.sla.clone());
    let state = ApiState::new(
        db.clone(),
        tickets.clone(),
        config,
        Arc::new(LiveMetrics::default()),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::serve(listener, state, async {
        let _ = rx.await;
    }));
    (base, db, tickets, tx)
}

async fn get(base: &str, path: &str, token: &str) -> (u16, Option<String>, Value) {
    let client = fleetcare::runtime::tls::https_client().unwrap();
    let r = client
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let next = r
        .headers()
        .get("x-next-cursor")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    (
        status,
        next,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn the_reorder_fixture_and_the_ledger_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    load_fixture(&data);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (base, db, tickets, _stop) = serve(&data).await;
        let planner = api::create_token(&db, Role::Planner, &[]).await.unwrap();
        let support = api::create_token(&db, Role::Support, &[]).await.unwrap();
        let acme = FleetId::new("acme").unwrap();
        let operator = api::create_token(&db, Role::Operator, std::slice::from_ref(&acme))
            .await
            .unwrap();

        let (status, next, rows) =
            get(&base, "/reports/parts/reorder?as_of=2026-03-01", &planner).await;
        assert_eq!((status, next), (200, None));
        assert_eq!(rows, expected_rows());
        // In pages of one: the cursor leads to the second row.
        let (_, next, first) =
            get(&base, "/reports/parts/reorder?as_of=2026-03-01&limit=1", &planner).await;
        let cursor = next.unwrap();
        assert_eq!(first, json!([expected_rows()[0]]));
        let (_, next, second) = get(
            &base,
            &format!("/reports/parts/reorder?as_of=2026-03-01&limit=1&cursor={cursor}"),
            &planner,
        )
        .await;
        assert_eq!((next, second), (None, json!([expected_rows()[1]])));
        // Operators get neither parts report.
        let (status, _, _) = get(&base, "/reports/parts/reorder", &operator).await;
        assert_eq!(status, 403);

        // Stock: an operator sees the depots of its fleet's vehicles.
        let (status, _, all) = get(&base, "/stock", &planner).await;
        assert_eq!(status, 200);
        assert_eq!(
            all,
            json!([
                {"part": "FLT-X", "depot": "north", "on_hand": 25, "on_order": 10, "below_zero": false},
                {"part": "FLT-X", "depot": "south", "on_hand": 100, "on_order": 0, "below_zero": false},
            ])
        );
        let (_, _, mine) = get(&base, "/stock", &operator).await;
        assert_eq!(mine, json!([all[0]]));
        let (_, _, moves) = get(&base, "/stock/movements?part=FLT-X", &operator).await;
        assert_eq!(moves.as_array().unwrap().len(), 1);
        assert_eq!(
            (&moves[0]["kind"], &moves[0]["qty"], &moves[0]["reference"], &moves[0]["depot"]),
            (&json!("adjust"), &json!(25), &json!("count:stock.csv"), &json!("north"))
        );
        let (status, _, _) = get(&base, "/stock/movements", &planner).await;
        assert_eq!(status, 400);

        // At diagnosis of a catalogued fault the ticket shows the depot's
        // stock of the fault's parts; closing issues what was used.
        let ticket = tickets
            .raise(fleetcare::tickets::NewAlert {
                kind: TicketKind::Fault,
                fleet: Some(acme.clone()),
                vehicle: Some(VehicleId::new("FX-1").unwrap()),
                model: Some(fleetcare::catalog::ModelId::new("fixture-truck").unwrap()),
                key: "110:0".to_owned(),
                priority: fleetcare::tickets::Priority::P2,
                title: "coolant hot".to_owned(),
                details: String::new(),
                at: Utc::now(),
            })
            .await
            .unwrap()
            .into_ticket();
        let (_, _, shown) = get(&base, &format!("/tickets/{}", ticket.id), &support).await;
        assert!(shown.get("parts_check").is_none(), "not before diagnosing");
        for to in [TicketState::Dispatched, TicketState::Diagnosing] {
            move_to(&tickets, ticket.id, to, Vec::new()).await;
        }
        let (_, _, shown) = get(&base, &format!("/tickets/{}", ticket.id), &support).await;
        assert_eq!(
            shown["parts_check"],
            json!({"depot": "north", "all_on_hand": false, "parts": [
                {"part": "SEAL-Y", "needed": 1.0, "on_hand": 0, "on_order": 0, "enough": false},
                {"part": "FLT-X", "needed": 2.0, "on_hand": 25, "on_order": 10, "enough": true},
            ]})
        );
        for to in [
            TicketState::InRepair,
            TicketState::QualityCheck,
            TicketState::Delivered,
            TicketState::Closed,
        ] {
            let parts = if to == TicketState::Closed {
                vec![("FLT-X".to_owned(), 2)]
            } else {
                Vec::new()
            };
            move_to(&tickets, ticket.id, to, parts).await;
        }
        let north = Depot::new("north").unwrap();
        let flt = PartId::new("FLT-X").unwrap();
        assert_eq!(fleetcare::parts::on_hand(&db, &flt, &north).await.unwrap(), 23);
        let (_, _, moves) = get(&base, "/stock/movements?part=FLT-X&depot=north", &support).await;
        assert_eq!(
            (&moves[0]["kind"], &moves[0]["qty"], &moves[0]["reference"]),
            (&json!("issue"), &json!(-2), &json!(format!("ticket:{}", ticket.id)))
        );
    });
}

async fn move_to(
    tickets: &Tickets,
    id: fleetcare::tickets::TicketId,
    to: TicketState,
    parts: Vec<(String, u32)>,
) -> fleetcare::tickets::Ticket {
    let t = Transition {
        assignee: (to == TicketState::Dispatched).then(|| "Li Na".to_owned()),
        outlet: (to == TicketState::Dispatched).then(|| "north workshop".to_owned()),
        satisfaction: (to == TicketState::Closed).then_some(4),
        parts_used: parts,
        ..Transition::to(to)
    };
    tickets
        .transition(id, t, "support:test", Utc::now())
        .await
        .unwrap()
}

/// Tickets closing at once, each fitting one FLT-X at depot north.
const CLOSES: usize = 50;

/// Issue 22: 50 tickets using the same part closed at once leave the
/// depot's stock exactly 50 lower, with one issue movement each.
async fn concurrent_closes(db: Db) {
    let catalog = Catalog::load(&models()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut vehicles = String::from("vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\n");
    for i in 0..CLOSES {
        vehicles.push_str(&format!("C-{i},acme,fixture-truck,,2025-01-01,north\n"));
    }
    let file = dir.path().join("vehicles.csv");
    std::fs::write(&file, vehicles).unwrap();
    fleetcare::registry::import_vehicles(&db, &catalog, &file)
        .await
        .unwrap();
    let count = dir.path().join("count.csv");
    std::fs::write(&count, "part,depot,on_hand\nFLT-X,north,80\n").unwrap();
    fleetcare::parts::import_counts(&db, &catalog, &count, "test", Utc::now())
        .await
        .unwrap();
    let tickets = Tickets::new(db.clone(), Default::default());
    let mut ids = Vec::new();
    for i in 0..CLOSES {
        let t = tickets
            .create(
                TicketKind::Complaint,
                FleetId::new("acme").unwrap(),
                VehicleId::new(&format!("C-{i}")).unwrap(),
                None,
                "bin lift jerks".to_owned(),
                String::new(),
                "operator:test",
                Utc::now(),
            )
            .await
            .unwrap();
        for to in [
            TicketState::Dispatched,
            TicketState::Diagnosing,
            TicketState::InRepair,
            TicketState::QualityCheck,
            TicketState::Delivered,
        ] {
            move_to(&tickets, t.id, to, Vec::new()).await;
        }
        ids.push(t.id);
    }
    let mut closing = tokio::task::JoinSet::new();
    for id in ids.clone() {
        let tickets = tickets.clone();
        closing.spawn(async move {
            move_to(
                &tickets,
                id,
                TicketState::Closed,
                vec![("FLT-X".to_owned(), 1)],
            )
            .await
        });
    }
    let mut closed = 0;
    while let Some(t) = closing.join_next().await {
        assert_eq!(t.unwrap().state, TicketState::Closed);
        closed += 1;
    }
    assert_eq!(closed, CLOSES);
    let north = Depot::new("north").unwrap();
    let flt = PartId::new("FLT-X").unwrap();
    assert_eq!(
        fleetcare::parts::on_hand(&db, &flt, &north).await.unwrap(),
        80 - CLOSES as i64
    );
    let moves = fleetcare::parts::movements_page(&db, &flt, Some(&north), None, None, 1000)
        .await
        .unwrap();
    assert_eq!(moves.len(), CLOSES + 1);
    let mut refs: Vec<String> = moves
        .iter()
        .filter(|m| m.qty == -1)
        .map(|m| m.reference.clone())
        .collect();
    refs.sort();
    let mut want: Vec<String> = ids.iter().map(|id| format!("ticket:{id}")).collect();
    want.sort();
    assert_eq!(refs, want, "one issue per ticket");
    // Movement numbers are unique and dense: no two closes took one.
    let mut numbers: Vec<i64> = moves.iter().map(|m| m.id).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), CLOSES + 1);
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn fifty_concurrent_closes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    multi_thread().block_on(async {
        let db = Db::connect(&config).await.unwrap();
        concurrent_closes(db.clone()).await;
        db.close().await;
    });
}

#[test]
fn fifty_concurrent_closes_on_postgres() {
    let Ok(server) = std::env::var("FLEETCARE_TEST_POSTGRES_URL") else {
        eprintln!(
            "skipped: FLEETCARE_TEST_POSTGRES_URL is not set, so this test did not run on PostgreSQL"
        );
        return;
    };
    let name = format!("fleetcare_parts_{}", std::process::id());
    let rt = multi_thread();
    let admin = |sql: String| {
        let server = server.clone();
        async move {
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&server).await.unwrap();
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
    };
    rt.block_on(admin(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )));
    rt.block_on(admin(format!("CREATE DATABASE {name}")));
    let (base, _) = server.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let db = Db::connect_url(&url).await.unwrap();
            concurrent_closes(db.clone()).await;
            db.close().await;
        })
    }));
    rt.block_on(admin(format!("DROP DATABASE {name} WITH (FORCE)")));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
