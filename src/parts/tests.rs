//! The ledger on real databases: SQLite, and PostgreSQL when
//! `FLEETCARE_TEST_POSTGRES_URL` is set (see `crate::db::testing`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tempfile::TempDir;

use super::*;
use crate::catalog::{Catalog, PartQty};
use crate::db::Db;
use crate::db::testing::db_tests;
use crate::registry::{ImportError, RowProblem};

fn catalog() -> Catalog {
    Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap()
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn part(p: &str) -> PartId {
    PartId::new(p).unwrap()
}

fn depot(d: &str) -> Depot {
    Depot::new(d).unwrap()
}

struct Files(TempDir);

impl Files {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// (part, depot, on_hand, on_order) of every pair.
async fn stock(db: &Db) -> Vec<(String, String, i64, i64)> {
    balances(db)
        .await
        .unwrap()
        .into_iter()
        .map(|b| {
            (
                b.part.to_string(),
                b.depot.to_string(),
                b.on_hand,
                b.on_order,
            )
        })
        .collect()
}

/// (kind, qty, reference) of a part's movements, newest first.
async fn moves(db: &Db, p: &str) -> Vec<(MovementKind, i64, String)> {
    movements_page(db, &part(p), None, None, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.kind, m.qty, m.reference))
        .collect()
}

fn refused<T: std::fmt::Debug>(r: Result<T, ImportError>) -> Vec<(u64, RowProblem)> {
    match r {
        Err(ImportError::Rows { rows, .. }) => {
            rows.into_iter().map(|r| (r.line, r.problem)).collect()
        }
        other => panic!("expected refused rows, got {other:?}"),
    }
}

db_tests!(
    counts_are_booked_as_adjustments,
    receipts_close_their_orders,
    bad_rows_refuse_the_whole_file,
    issues_below_zero_are_booked_and_reported,
    transfers_move_stock_between_depots,
    pages_of_stock_and_movements,
    parts_at_a_depot_against_a_repair,
    a_long_wait_for_parts_is_alerted_once,
);

/// Issue 22: a count is an adjustment of its difference to the ledger's
/// stock; counting again what is there books nothing.
async fn counts_are_booked_as_adjustments(db: Db) {
    let files = Files::new();
    let cat = catalog();
    let path = files.write(
        "stock.csv",
        "part,depot,on_hand\nFLT-OIL-01,north,12\nFLT-OIL-01,south,0\nOIL-15W40-L,north,200\n",
    );
    let s = import_counts(&db, &cat, &path, "cli", now()).await.unwrap();
    assert_eq!(
        s.to_string(),
        format!(
            "imported 3 stock levels (3 new, 0 updated, 0 unchanged) from {}",
            path.display()
        )
    );
    // Four fitted, then the shelf counted at 7: an adjustment of -1.
    let mut conn = db.pool().acquire().await.unwrap();
    issue_for_ticket_in(
        &mut conn,
        9,
        &depot("north"),
        &[(part("FLT-OIL-01"), 4)],
        "t",
        now(),
    )
    .await
    .unwrap();
    drop(conn);
    let path = files.write(
        "count.csv",
        "part,depot,on_hand\nFLT-OIL-01,north,7\nOIL-15W40-L,north,200\n",
    );
    let s = import_counts(&db, &cat, &path, "cli", now()).await.unwrap();
    assert_eq!((s.new, s.updated, s.unchanged), (0, 1, 1));
    assert_eq!(
        moves(&db, "FLT-OIL-01").await,
        [
            (MovementKind::Adjust, -1, "count:count.csv".to_owned()),
            (MovementKind::Issue, -4, "ticket:9".to_owned()),
            (MovementKind::Adjust, 0, "count:stock.csv".to_owned()),
            (MovementKind::Adjust, 12, "count:stock.csv".to_owned()),
        ]
    );
    assert_eq!(
        stock(&db).await,
        [
            ("FLT-OIL-01".into(), "north".into(), 7, 0),
            ("FLT-OIL-01".into(), "south".into(), 0, 0),
            ("OIL-15W40-L".into(), "north".into(), 200, 0),
        ]
    );
    assert_eq!(
        on_hand(&db, &part("FLT-OIL-01"), &depot("north"))
            .await
            .unwrap(),
        7
    );
    // The parts forecast reads the same stock.
    let levels: Vec<u64> = levels(&db)
        .await
        .unwrap()
        .iter()
        .map(|l| l.on_hand)
        .collect();
    assert_eq!(levels, [7, 0, 200]);
}

/// Orders count as on_order until the receipt with their reference; a
/// receipt imported again is unchanged, one with another quantity refused.
async fn receipts_close_their_orders(db: Db) {
    let files = Files::new();
    let cat = catalog();
    let orders = files.write(
        "orders.csv",
        "part,depot,qty,reference,ordered_on\n\
         FLT-OIL-01,north,10,PO-1,2026-02-20\n\
         FLT-OIL-01,south,5,PO-1,2026-02-20\n",
    );
    let s = import_orders(&db, &cat, &orders, "cli", now())
        .await
        .unwrap();
    assert_eq!(
        s.to_string(),
        format!(
            "imported 2 order lines (2 new, 0 updated, 0 unchanged) from {}",
            orders.display()
        )
    );
    let s = import_orders(&db, &cat, &orders, "cli", now())
        .await
        .unwrap();
    assert_eq!((s.new, s.updated, s.unchanged), (0, 0, 2));
    assert_eq!(
        stock(&db).await,
        [
            ("FLT-OIL-01".into(), "north".into(), 0, 10),
            ("FLT-OIL-01".into(), "south".into(), 0, 5),
        ]
    );
    let receipts = files.write(
        "receipts.csv",
        "part,depot,qty,reference,received_on\nFLT-OIL-01,north,10,PO-1,2026-02-27\n",
    );
    let s = import_receipts(&db, &cat, &receipts, "cli", now())
        .await
        .unwrap();
    assert_eq!(
        s.to_string(),
        format!(
            "imported 1 receipt (1 new, 0 updated, 0 unchanged) from {}",
            receipts.display()
        )
    );
    assert_eq!(
        stock(&db).await,
        [
            ("FLT-OIL-01".into(), "north".into(), 10, 0),
            ("FLT-OIL-01".into(), "south".into(), 0, 5),
        ]
    );
    let m = movements_page(&db, &part("FLT-OIL-01"), None, None, None, 1)
        .await
        .unwrap();
    assert_eq!(m[0].reference, "order:PO-1");
    assert_eq!(m[0].at.to_rfc3339(), "2026-02-27T00:00:00+00:00");
    let s = import_receipts(&db, &cat, &receipts, "cli", now())
        .await
        .unwrap();
    assert_eq!((s.new, s.unchanged), (0, 1));
    let other = files.write(
        "again.csv",
        "part,depot,qty,reference,received_on\nFLT-OIL-01,north,12,PO-1,2026-02-28\n",
    );
    assert_eq!(
        refused(import_receipts(&db, &cat, &other, "cli", now()).await),
        [(
            2,
            RowProblem::AlreadyReceived {
                reference: "PO-1".into(),
                part: "FLT-OIL-01".into(),
                depot: "north".into(),
                stored: 10
            }
        )]
    );
    let changed = files.write(
        "orders2.csv",
        "part,depot,qty,reference,ordered_on\nFLT-OIL-01,north,11,PO-1,2026-02-20\n",
    );
    assert_eq!(
        refused(import_orders(&db, &cat, &changed, "cli", now()).await),
        [(
            2,
            RowProblem::OrderClosed {
                reference: "PO-1".into(),
                part: "FLT-OIL-01".into(),
                depot: "north".into(),
            }
        )]
    );
    assert_eq!(
        stock(&db).await[0],
        ("FLT-OIL-01".into(), "north".into(), 10, 0)
    );
}

/// Issue 22: bad rows are refused whole, each named by its line.
async fn bad_rows_refuse_the_whole_file(db: Db) {
    let files = Files::new();
    let cat = catalog();
    let path = files.write(
        "receipts.csv",
        "part,depot,qty,reference,received_on\n\
         FLT-OIL-01,north,4,PO-9,2026-02-27\n\
         FLT-NOPE,north,1,PO-9,2026-02-27\n\
         FLT-OIL-01,north,0,PO-8,2026-02-27\n\
         FLT-OIL-01,north,2.5,PO-7,2026-02-27\n\
         FLT-OIL-01,north,3,,2026-02-27\n\
         FLT-OIL-01,north,3,PO-6,27/02/2026\n\
         FLT-OIL-01,north,3,PO-5,2026-03-02\n\
         FLT-OIL-01,north,3,PO-9,2026-02-27\n",
    );
    let e = import_receipts(&db, &cat, &path, "cli", now())
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(
        message.starts_with(&format!(
            "{}:3: part \"FLT-NOPE\" is not in the catalogue's parts.toml",
            path.display()
        )),
        "{message}"
    );
    assert_eq!(
        refused(Err::<(), _>(e)),
        [
            (
                3,
                RowProblem::UnknownPart {
                    part: "FLT-NOPE".into()
                }
            ),
            (4, RowProblem::BadQty { value: "0".into() }),
            (
                5,
                RowProblem::BadQty {
                    value: "2.5".into()
                }
            ),
            (
                6,
                RowProblem::Empty {
                    column: "reference"
                }
            ),
            (
                7,
                RowProblem::BadDate {
                    column: "received_on",
                    value: "27/02/2026".into()
                }
            ),
            (
                8,
                RowProblem::FutureDate {
                    column: "received_on",
                    value: "2026-03-02".into()
                }
            ),
            (
                9,
                RowProblem::DuplicateLine {
                    part: "FLT-OIL-01".into(),
                    depot: "north".into(),
                    reference: "PO-9".into(),
                    first_line: 2
                }
            ),
        ]
    );
    // Line 2 was good and is not booked either.
    assert!(stock(&db).await.is_empty());
    let header = files.write("h.csv", "part,depot,qty,ref,received_on\n");
    let e = import_receipts(&db, &cat, &header, "cli", now())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("column \"reference\" is missing"), "{e}");
}

/// The part was fitted: an issue below zero is booked and reported.
async fn issues_below_zero_are_booked_and_reported(db: Db) {
    let mut conn = db.pool().acquire().await.unwrap();
    let short = issue_for_ticket_in(
        &mut conn,
        3,
        &depot("north"),
        &[(part("THERMO-01"), 2), (part("FLT-OIL-01"), 1)],
        "support:1",
        now(),
    )
    .await
    .unwrap();
    drop(conn);
    assert_eq!(
        short,
        [
            Shortage {
                part: part("THERMO-01"),
                depot: depot("north"),
                on_hand: -2
            },
            Shortage {
                part: part("FLT-OIL-01"),
                depot: depot("north"),
                on_hand: -1
            },
        ]
    );
    let b = balances(&db).await.unwrap();
    assert!(b.iter().all(|b| b.below_zero), "{b:?}");
    // The forecast counts none on hand rather than a negative number.
    assert!(levels(&db).await.unwrap().iter().all(|l| l.on_hand == 0));
}

async fn transfers_move_stock_between_depots(db: Db) {
    let left = transfer(
        &db,
        &part("FLT-OIL-01"),
        &depot("north"),
        &depot("北区车场"),
        3,
        "T-1",
        "cli",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(left, -3);
    assert_eq!(
        stock(&db).await,
        [
            ("FLT-OIL-01".into(), "north".into(), -3, 0),
            ("FLT-OIL-01".into(), "北区车场".into(), 3, 0),
        ]
    );
    assert_eq!(
        moves(&db, "FLT-OIL-01").await,
        [
            (MovementKind::Transfer, 3, "transfer:T-1".to_owned()),
            (MovementKind::Transfer, -3, "transfer:T-1".to_owned()),
        ]
    );
}

/// Keyset pages neither repeat nor skip, and a depot list narrows both
/// lists (an operator's depots).
async fn pages_of_stock_and_movements(db: Db) {
    let mut conn = db.pool().acquire().await.unwrap();
    let mut moves_in = Vec::new();
    for d in ["a", "b", "c"] {
        for p in ["FLT-OIL-01", "THERMO-01"] {
            moves_in.push(NewMovement {
                part: part(p),
                depot: depot(d),
                kind: MovementKind::Receipt,
                qty: 5,
                at: now(),
                reference: "order:X".into(),
                actor: "cli".into(),
            });
        }
    }
    ledger::append(&mut conn, &moves_in).await.unwrap();
    drop(conn);
    let mut seen = Vec::new();
    let mut after: Option<(PartId, Depot)> = None;
    loop {
        let page = balances_page(
            &db,
            None,
            None,
            None,
            after.as_ref().map(|(p, d)| (p, d)),
            4,
        )
        .await
        .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|b| (b.part.clone(), b.depot.clone()));
        seen.extend(page.into_iter().map(|b| format!("{}@{}", b.part, b.depot)));
    }
    assert_eq!(
        seen,
        [
            "FLT-OIL-01@a",
            "FLT-OIL-01@b",
            "FLT-OIL-01@c",
            "THERMO-01@a",
            "THERMO-01@b",
            "THERMO-01@c"
        ]
    );
    let mine = [depot("b")];
    let only_b = balances_page(&db, Some(&mine), None, None, None, 100)
        .await
        .unwrap();
    assert_eq!(only_b.len(), 2);
    assert!(
        balances_page(&db, Some(&[]), None, None, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let first = movements_page(&db, &part("THERMO-01"), None, None, None, 2)
        .await
        .unwrap();
    let rest = movements_page(&db, &part("THERMO-01"), None, None, Some(first[1].id), 10)
        .await
        .unwrap();
    assert_eq!((first.len(), rest.len()), (2, 1));
    assert!(first[0].id > first[1].id && first[1].id > rest[0].id);
    let at_b = movements_page(&db, &part("THERMO-01"), None, Some(&mine), None, 10)
        .await
        .unwrap();
    assert_eq!(at_b.len(), 1);
    assert_eq!(at_b[0].depot, depot("b"));
}

async fn parts_at_a_depot_against_a_repair(db: Db) {
    let mut conn = db.pool().acquire().await.unwrap();
    ledger::append(
        &mut conn,
        &[NewMovement {
            part: part("THERMO-01"),
            depot: depot("north"),
            kind: MovementKind::Adjust,
            qty: 1,
            at: now(),
            reference: "count:x".into(),
            actor: "cli".into(),
        }],
    )
    .await
    .unwrap();
    drop(conn);
    let needs = [
        PartQty {
            part: part("THERMO-01"),
            qty: 1.0,
        },
        PartQty {
            part: part("FLT-OIL-01"),
            qty: 2.0,
        },
    ];
    let checks = availability(&db, &depot("north"), &needs).await.unwrap();
    let got: Vec<(String, i64, bool)> = checks
        .iter()
        .map(|c| (c.part.to_string(), c.on_hand, c.enough))
        .collect();
    assert_eq!(
        got,
        [
            ("THERMO-01".into(), 1, true),
            ("FLT-OIL-01".into(), 0, false)
        ]
    );
}

async fn a_long_wait_for_parts_is_alerted_once(db: Db) {
    assert!(first_wait_alert(&db, 7, now()).await.unwrap());
    assert!(!first_wait_alert(&db, 7, now()).await.unwrap());
    assert!(first_wait_alert(&db, 8, now()).await.unwrap());
}

/// Migration 0008 turns the counts of the old `stock` table into the
/// ledger's first movements, numbered after them.
#[test]
fn old_counts_become_the_first_movements() {
    crate::db::testing::runtime().block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let run = |sql: &'static str| sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
        run(include_str!("../../migrations/0001_registry.sql"))
            .execute(&mut conn)
            .await
            .unwrap();
        run("INSERT INTO stock (part, depot, on_hand) VALUES \
             ('THERMO-01', 'north', 4), ('FLT-OIL-01', 'south', 0), ('FLT-OIL-01', 'north', 12)")
        .execute(&mut conn)
        .await
        .unwrap();
        run(include_str!("../../migrations/0008_parts_ledger.sql"))
            .execute(&mut conn)
            .await
            .unwrap();
        let rows: Vec<(i64, String, String, String, i64, String)> = sqlx::query_as(
            "SELECT movement_id, part, depot, kind, qty, reference FROM stock_movements \
             ORDER BY movement_id",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let row = |id: i64, part: &str, depot: &str, qty: i64| {
            (
                id,
                part.to_owned(),
                depot.to_owned(),
                "adjust".to_owned(),
                qty,
                "count:before-ledger".to_owned(),
            )
        };
        assert_eq!(
            rows,
            [
                row(1, "FLT-OIL-01", "north", 12),
                row(2, "FLT-OIL-01", "south", 0),
                row(3, "THERMO-01", "north", 4),
            ]
        );
        let (last,): (i64,) =
            sqlx::query_as("SELECT last_id FROM stock_movement_numbers WHERE name = 'movements'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(last, 3);
        let gone = sqlx::query("SELECT * FROM stock").execute(&mut conn).await;
        assert!(gone.is_err(), "the snapshot table is dropped");
    });
}
