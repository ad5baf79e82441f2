//! The imports and queries against real databases: each case runs on a
//! SQLite file, and on PostgreSQL when `FLEETCARE_TEST_POSTGRES_URL` is set.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::{Fmi, Spn};
use tempfile::TempDir;

use super::*;
use crate::catalog::{Catalog, TaskId};
use crate::db::Db;
use crate::db::testing::db_tests;

fn catalog() -> Catalog {
    Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap()
}

fn now() -> DateTime<Utc> {
    time("2026-03-01T12:00:00Z")
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn vid(id: &str) -> VehicleId {
    VehicleId::new(id).unwrap()
}

/// CSV files of one test.
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

const VEHICLES: &str = "\
vehicle_id,fleet_id,model_id,vin,commissioned_on,depot
TRK-001,acme,compactor-c12,LZZAELND5JN123456,2024-03-15,north
TRK-002,acme,sweeper-s8,,2024-04-01,north
SWP-100,beta,sweeper-s8,LZZAELND5JN654321,2023-11-20,北区车场
";

async fn with_vehicles(db: &Db, files: &Files) {
    let path = files.write("vehicles.csv", VEHICLES);
    import_vehicles(db, &catalog(), &path).await.unwrap();
}

/// The refused rows of an import, as (line, problem).
fn refused<T: std::fmt::Debug>(result: Result<T, ImportError>) -> Vec<(u64, RowProblem)> {
    match result {
        Err(ImportError::Rows { rows, total, .. }) => {
            assert_eq!(rows.len(), total);
            rows.into_iter().map(|r| (r.line, r.problem)).collect()
        }
        other => panic!("expected refused rows, got {other:?}"),
    }
}

async fn counts(db: &Db) -> (usize, usize, usize) {
    (
        vehicles(db).await.unwrap().len(),
        services(db).await.unwrap().len(),
        {
            // The parts ledger's table: imports of counts must not write it
            // when they are refused.
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM stock_movements")
                .fetch_one(db.pool())
                .await
                .unwrap();
            usize::try_from(n).unwrap()
        },
    )
}

db_tests!(
    vehicles_are_imported_and_queried,
    vehicles_are_upserted,
    headers_must_be_the_contract_columns,
    bad_vehicle_rows_are_named_by_line,
    vins_are_unique_across_file_and_registry,
    a_bad_last_row_leaves_the_database_unchanged,
    services_take_dates_and_rfc3339_times,
    services_reimported_are_not_duplicated,
    meters_may_be_empty_then_given,
    repairs_are_services_too,
    reports_read_the_last_service_per_task_and_every_repair,
    bad_service_rows_are_named_by_line,
    bad_stock_rows_are_named_by_line,
    unknown_vehicles_are_those_not_registered_under_their_fleet,
    an_unknown_vehicle_is_alerted_once,
);

/// Issue 20: support hears of an unregistered vehicle once, however often
/// it is asked and by however many connections (a restart opens new ones).
async fn an_unknown_vehicle_is_alerted_once(db: Db) {
    let (acme, beta) = (FleetId::new("acme").unwrap(), FleetId::new("beta").unwrap());
    assert!(
        first_unknown_alert(&db, &acme, &vid("ZZ-1"), now())
            .await
            .unwrap()
    );
    assert!(
        !first_unknown_alert(&db, &acme, &vid("ZZ-1"), now())
            .await
            .unwrap()
    );
    // The same id under another fleet is another vehicle.
    assert!(
        first_unknown_alert(&db, &beta, &vid("ZZ-1"), now())
            .await
            .unwrap()
    );
    let zz2 = vid("ZZ-2");
    let asks = (0..8).map(|_| first_unknown_alert(&db, &acme, &zz2, now()));
    let firsts = futures_util::future::join_all(asks)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(firsts, 1);
}

async fn vehicles_are_imported_and_queried(db: Db) {
    let files = Files::new();
    let path = files.write("vehicles.csv", VEHICLES);
    let summary = import_vehicles(&db, &catalog(), &path).await.unwrap();
    assert_eq!((summary.new, summary.updated, summary.unchanged), (3, 0, 0));
    assert_eq!(
        summary.to_string(),
        format!(
            "imported 3 vehicles (3 new, 0 updated, 0 unchanged) from {}",
            path.display()
        )
    );

    let all = vehicles(&db).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["TRK-001", "TRK-002", "SWP-100"], "by fleet, then id");

    let trk1 = vehicle(&db, &vid("TRK-001")).await.unwrap().unwrap();
    assert_eq!(trk1.fleet.as_str(), "acme");
    assert_eq!(trk1.model.as_str(), "compactor-c12");
    assert_eq!(
        trk1.vin.as_ref().map(Vin::as_str),
        Some("LZZAELND5JN123456")
    );
    assert_eq!(
        trk1.commissioned_on,
        NaiveDate::from_ymd_opt(2024, 3, 15).unwrap()
    );
    assert_eq!(trk1.depot.as_str(), "north");
    let trk2 = vehicle(&db, &vid("TRK-002")).await.unwrap().unwrap();
    assert_eq!(trk2.vin, None, "an empty VIN is no VIN");
    let swp = vehicle(&db, &vid("SWP-100")).await.unwrap().unwrap();
    assert_eq!(swp.depot.as_str(), "北区车场");
    assert_eq!(vehicle(&db, &vid("NOPE")).await.unwrap(), None);

    let beta = fleet_vehicles(&db, &FleetId::new("beta").unwrap())
        .await
        .unwrap();
    assert_eq!(beta, vec![swp]);
}

async fn vehicles_are_upserted(db: Db) {
    let files = Files::new();
    with_vehicles(&db, &files).await;
    // Columns in another order, spaces around values, one vehicle moved to
    // another depot, one new.
    let path = files.write(
        "again.csv",
        "depot, vehicle_id, fleet_id, model_id, vin, commissioned_on\n\
         south, TRK-001, acme, compactor-c12, LZZAELND5JN123456, 2024-03-15\n\
         north, TRK-002, acme, sweeper-s8, , 2024-04-01\n\
         north, TRK-003, acme, washer-w10, , 2025-01-10\n",
    );
    let summary = import_vehicles(&db, &catalog(), &path).await.unwrap();
    assert_eq!((summary.new, summary.updated, summary.unchanged), (1, 1, 1));
    let trk1 = vehicle(&db, &vid("TRK-001")).await.unwrap().unwrap();
    assert_eq!(trk1.depot.as_str(), "south");
    assert_eq!(vehicles(&db).await.unwrap().len(), 4);
}

async fn headers_must_be_the_contract_columns(db: Db) {
    let files = Files::new();
    let cat = catalog();
    let header_problem = |r: Result<ImportSummary, ImportError>| match r {
        Err(e @ ImportError::Header { .. }) => e.to_string(),
        other => panic!("expected a header error, got {other:?}"),
    };
    let count_header_problem = |r: Result<Vec<StockLevel>, ImportError>| match r {
        Err(e @ ImportError::Header { .. }) => e.to_string(),
        other => panic!("expected a header error, got {other:?}"),
    };

    let path = files.write(
        "missing.csv",
        "vehicle_id,fleet_id,model_id,vin,commissioned_on\nTRK-1,acme,sweeper-s8,,2024-01-01\n",
    );
    let e = header_problem(import_vehicles(&db, &cat, &path).await);
    assert_eq!(
        e,
        format!(
            "{}:1: column \"depot\" is missing; the header must be \
             vehicle_id,fleet_id,model_id,vin,commissioned_on,depot (in any order)",
            path.display()
        )
    );

    let path = files.write(
        "extra.csv",
        "part,depot,on_hand,note\nFLT-OIL-01,north,3,x\n",
    );
    let e = count_header_problem(read_counts(&cat, &path));
    assert!(e.contains("column \"note\" is not expected"), "{e}");

    let path = files.write(
        "twice.csv",
        "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km,task\n",
    );
    let e = header_problem(import_services(&db, &cat, &path, now()).await);
    assert!(e.contains("column \"task\" appears twice"), "{e}");

    let path = files.write("empty.csv", "");
    let e = count_header_problem(read_counts(&cat, &path));
    assert!(
        e.contains("the file is empty; its first line must be the header part,depot,on_hand"),
        "{e}"
    );

    // A spreadsheet's byte-order mark is not part of the first column name.
    let path = files.write(
        "bom.csv",
        "\u{feff}part,depot,on_hand\nFLT-OIL-01,north,3\n",
    );
    assert_eq!(read_counts(&cat, &path).unwrap().len(), 1);

    let e = read_counts(&cat, &files.0.path().join("absent.csv")).unwrap_err();
    assert!(matches!(e, ImportError::Read { .. }), "{e}");
}

async fn bad_vehicle_rows_are_named_by_line(db: Db) {
    let files = Files::new();
    let path = files.write(
        "bad.csv",
        "vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\n\
         TRK 1,acme,sweeper-s8,,2024-01-01,north\n\
         TRK-2,,sweeper-s8,,2024-01-01,north\n\
         TRK-3,acme,sweeper-s9,,2024-01-01,north\n\
         TRK-4,acme,sweeper-s8,VIN-TOO-SHORT,2024-01-01,north\n\
         TRK-5,acme,sweeper-s8,,15.03.2024,north\n\
         TRK-6,acme,sweeper-s8,,2024-01-01,\n\
         TRK-7,acme,sweeper-s8,,2024-01-01,north\n\
         TRK-7,acme,sweeper-s8,,2024-01-01,north\n\
         TRK-8,acme,sweeper-s8,2024-01-01,north\n\
         \"TRK-9\",acme,sweeper-s8,,\"2024-01-01\",\"north\nyard\"\n\
         TRK-10,acme,sweeper-s8,,1024-01-01,north\n",
    );
    let rows = refused(import_vehicles(&db, &catalog(), &path).await);
    let lines: Vec<u64> = rows.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 7, 9, 10, 11, 13]);
    assert!(matches!(
        &rows[0].1,
        RowProblem::BadId {
            column: "vehicle_id",
            ..
        }
    ));
    assert_eq!(rows[1].1, RowProblem::Empty { column: "fleet_id" });
    let unknown_model = rows[2].1.to_string();
    assert!(
        unknown_model.starts_with("model_id \"sweeper-s9\" is not in the catalogue; use one of compactor-c12, hooklift-h14, sweeper-s8, washer-w10"),
        "{unknown_model}"
    );
    assert!(matches!(&rows[3].1, RowProblem::Vin(_)));
    assert!(matches!(
        &rows[4].1,
        RowProblem::BadDate {
            column: "commissioned_on",
            ..
        }
    ));
    assert_eq!(rows[5].1, RowProblem::Depot(DepotError::Empty));
    assert_eq!(
        rows[6].1,
        RowProblem::DuplicateVehicle {
            vehicle: "TRK-7".into(),
            first_line: 8
        }
    );
    assert_eq!(
        rows[7].1,
        RowProblem::FieldCount {
            found: 5,
            expected: 6
        }
    );
    // A quoted depot across two lines: the row starts on line 11 and the
    // next one is line 13.
    assert_eq!(
        rows[8].1,
        RowProblem::Depot(DepotError::Control("north\nyard".into()))
    );
    assert!(matches!(&rows[9].1, RowProblem::OldDate { .. }));
    assert_eq!(counts(&db).await, (0, 0, 0));
}

async fn vins_are_unique_across_file_and_registry(db: Db) {
    let files = Files::new();
    with_vehicles(&db, &files).await;
    let path = files.write(
        "vins.csv",
        "vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\n\
         NEW-1,acme,sweeper-s8,LZZAELND5JN123456,2024-01-01,north\n\
         NEW-2,acme,sweeper-s8,LZZAELND5JN000001,2024-01-01,north\n\
         NEW-3,acme,sweeper-s8,lzzaelnd5jn000001,2024-01-01,north\n",
    );
    let rows = refused(import_vehicles(&db, &catalog(), &path).await);
    assert_eq!(
        rows,
        [
            (
                2,
                RowProblem::DuplicateVin {
                    vin: "LZZAELND5JN123456".into(),
                    other: "TRK-001".into(),
                    other_line: None
                }
            ),
            (
                4,
                RowProblem::DuplicateVin {
                    vin: "LZZAELND5JN000001".into(),
                    other: "NEW-2".into(),
                    other_line: Some(3)
                }
            ),
        ]
    );
    // Moving a VIN from one vehicle to another in the same file is fine.
    let path = files.write(
        "swap.csv",
        "vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\n\
         TRK-001,acme,compactor-c12,,2024-03-15,north\n\
         TRK-002,acme,sweeper-s8,LZZAELND5JN123456,2024-04-01,north\n",
    );
    let summary = import_vehicles(&db, &catalog(), &path).await.unwrap();
    assert_eq!(summary.updated, 2);
}

async fn a_bad_last_row_leaves_the_database_unchanged(db: Db) {
    let files = Files::new();
    with_vehicles(&db, &files).await;
    let before = vehicles(&db).await.unwrap();
    let path = files.write(
        "vehicles.csv",
        "vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\n\
         TRK-001,acme,compactor-c12,,2024-03-15,south\n\
         TRK-050,acme,sweeper-s8,,2024-01-01,north\n\
         TRK-051,acme,no-such-model,,2024-01-01,north\n",
    );
    let rows = refused(import_vehicles(&db, &catalog(), &path).await);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, 4);
    assert_eq!(vehicles(&db).await.unwrap(), before);

    // The same for services: the last row names a vehicle not registered.
    let path = files.write(
        "services.csv",
        "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km\n\
         TRK-001,engine-oil,2025-06-01,500,120,15000\n\
         TRK-002,main-brush,2025-06-02,,,\n\
         TRK-404,engine-oil,2025-06-03,,,\n",
    );
    let rows = refused(import_services(&db, &catalog(), &path, now()).await);
    assert_eq!(
        rows,
        [(
            4,
            RowProblem::UnknownVehicle {
                vehicle: "TRK-404".into()
            }
        )]
    );
    assert_eq!(counts(&db).await, (3, 0, 0));
}

async fn services_take_dates_and_rfc3339_times(db: Db) {
    let files = Files::new();
    with_vehicles(&db, &files).await;
    let path = files.write(
        "services.csv",
        "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km\n\
         TRK-001,engine-oil,2025-06-01,500.5,120,15000\n\
         TRK-001,hydraulic-filter,2025-06-01T08:30:00+08:00,,,\n\
         TRK-002,main-brush,2025-07-01T10:00:00Z,800,,\n",
    );
    let summary = import_services(&db, &catalog(), &path, now())
        .await
        .unwrap();
    assert_eq!((summary.new, summary.updated, summary.unchanged), (3, 0, 0));
    assert_eq!(
        summary.to_string(),
        format!(
            "imported 3 services (3 new, 0 updated, 0 unchanged) from {}",
            path.display()
        )
    );

    let trk1 = vehicle_services(&db, &vid("TRK-001")).await.unwrap();
    assert_eq!(trk1.len(), 2);
    // 08:30 in Beijing is 00:30 UTC, after midnight UTC.
    assert_eq!(trk1[0].performed_at, time("2025-06-01T00:00:00Z"));
    assert_eq!(
        trk1[0].task,
        ServiceTask::Maintenance(TaskId::new("engine-oil").unwrap())
    );
    assert_eq!(trk1[0].engine_hours, Some(500.5));
    assert_eq!(trk1[0].pto_hours, Some(120.0));
    assert_eq!(trk1[0].odometer_km, Some(15000.0));
    assert_eq!(trk1[0].source, ServiceSource::Import);
    assert_eq!(trk1[1].performed_at, time("2025-06-01T00:30:00Z"));
    assert_eq!(
        (trk1[1].engine_hours, trk1[1].pto_hours, trk1[1].odometer_km),
        (None, None, None)
    );
    let all = services(&db).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].vehicle.as_str(), "TRK-001");
    assert_eq!(all[2].vehicle.as_str(), "TRK-002");
}

async fn services_reimported_are_not_duplicated(db: Db) {
    let files = Files::new();
    with_vehicles(&db, &files).await;
    let text = "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km\n\
                TRK-001,engine-oil,2025-06-01,500,120,15000\n\
                TRK-001,engine-oil,2025-12-01T09:15:00Z,1000,240,30000\n";
    let path = files.write("services.csv", text);
    import_services(&db, &catalog(), &path, now())
        .await
        .unwrap();
    let summary = import_services(&db, &catalog(), &path, now())
        .await
        .unwrap();
    assert_eq!((summary.new, summary.updated, summary.unchanged), (0, 0, 2));
    assert_eq!(services(&db).await.unwrap().len(), 2);

    // The same service written another way, with a corrected meter.
    let path = files.write(
        "fixed.csv",
        "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km\n\
         TRK-001,engine-oil,2025-06-01T08:00:00+08:00,501,120,15000\n",
    );
    let summary = import_services(&db, &catalog(), &path, now())
        .await
        .unwrap();
    assert_eq!((summary.new, summary.updated, summary.unchanged), (0, 1, 0));
    let all = services(&db).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].engine_hours, Some(501.0));
}

/// Regression: an empty meter followed by a reading failed on PostgreSQL
/// (sqlx issue #4284, see `queries::upsert_service`).
async fn meters_may_be_empty_then_given(db: Db) {
    let files = Files::new();
    with_vehicles(&db, &files).await;
    let path = files.write(
        "services.csv",
        "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km\n\
         TRK-001,engine-oil,2025-06-01,,,\n\
         TRK-001,coolant,2025-06-02,1.5,2.5,3.5\n\
         TRK-001,air-filter,2025-06-03,,,\n\
         TRK-001,gearbox-oil,2025-06-04,4,,5\n",
    );
    let summary = import_services(&db, &catalog(), &path, now())
        .await
        .unwrap();
    assert_eq!(summary.new, 4);
    let meters: Vec<_> = services(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.engine_hours, s.pto_hours, s.odometer_km))
        .collect();
    assert_eq!(
        meters,
        [
            (None, None, None),
            (Some(1.5), Some(2.5), Some(3.5)),
            (None, None, None),
            (Some(4.0), None, Some(5.0)),
        ]
    );
}

async fn repairs_are_services_too(db: Db) {
    let files = Files::new();
    with_vehicles(&db, &files).await;
    let path = files.write(
        "repairs.csv",
        "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km\n\
         TRK-001,repair:110:0,2025-06-01,,,\n\
         TRK-001,repair:0110:00,2025-06-01,,,\n\
         TRK-002,repair:524287:31,2025-06-02,12.5,,\n",
    );
    // The same repair written twice is one key.
    let rows = refused(import_services(&db, &catalog(), &path, now()).await);
    assert_eq!(
        rows,
        [(
            3,
            RowProblem::DuplicateService {
                vehicle: "TRK-001".into(),
                task: "repair:110:0".into(),
                performed_on: "2025-06-01T00:00:00Z".into(),
                first_line: 2
            }
        )]
    );
    let path = files.write(
        "repairs.csv",
        "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km\n\
         TRK-001,repair:0110:00,2025-06-01,,,\n\
         TRK-002,repair:524287:31,2025-06-02,12.5,,\n",
    );
    let summary = import_services(&db, &catalog(), &path, now())
        .await
        .unwrap();
    assert_eq!(summary.new, 2);
    let all = services(&db).await.unwrap();
    assert_eq!(
        all[0].task,
        ServiceTask::Repair {
            spn: Spn::new(110).unwrap(),
            fmi: Fmi::new(0).unwrap()
        }
    );
    assert_eq!(all[0].task.to_string(), "repair:110:0");
    assert_eq!(all[1].task.to_string(), "repair:524287:31");

    // A ticket's record keeps its source when an import corrects it.
    let mut from_ticket = all[1].clone();
    from_ticket.performed_at = time("2025-08-01T10:00:00Z");
    from_ticket.source = ServiceSource::Ticket;
    record_service(&db, &from_ticket).await.unwrap();
    let stored = vehicle_services(&db, &vid("TRK-002")).await.unwrap();
    assert_eq!(stored[1].source, ServiceSource::Ticket);
}

async fn reports_read_the_last_service_per_task_and_every_repair(db: Db) {
    let files = Files::new();
    with_vehicles(&db, &files).await;
    let path = files.write(
        "services.csv",
        "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km\n\
         TRK-001,engine-oil,2025-01-01,100,,\n\
         TRK-001,engine-oil,2025-03-01,300,,\n\
         TRK-001,engine-oil,2025-05-01T12:00:00Z,500,,\n\
         TRK-001,hydraulic-filter,2025-02-01,200,,\n\
         TRK-002,engine-oil,2025-02-15,150,,\n\
         TRK-001,repair:110:0,2025-01-10,,,\n\
         TRK-001,repair:110:0,2025-04-10,,,\n\
         TRK-002,repair:524287:31,2025-06-02,,,\n",
    );
    import_services(&db, &catalog(), &path, now())
        .await
        .unwrap();
    let read_of = |as_of: &str, history| {
        let db = db.clone();
        let as_of = time(as_of);
        async move {
            services_for_reports(&db, as_of, history)
                .await
                .unwrap()
                .into_iter()
                .map(|s| {
                    format!(
                        "{} {} {}",
                        s.vehicle.as_str(),
                        s.task,
                        s.performed_at.format("%F %R")
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let read = |as_of| read_of(as_of, ServiceHistory::LastServicesAndRepairs);
    assert!(read("2024-12-31T23:59:59Z").await.is_empty());
    assert_eq!(
        read_of("2025-05-01T00:00:00Z", ServiceHistory::Repairs).await,
        [
            "TRK-001 repair:110:0 2025-01-10 00:00",
            "TRK-001 repair:110:0 2025-04-10 00:00",
        ]
    );
    assert!(
        read_of("2025-12-31T00:00:00Z", ServiceHistory::Nothing)
            .await
            .is_empty()
    );
}

async fn bad_service_rows_are_named_by_line(db: Db) {
    let files = Files::new();
    with_vehicles(&db, &files).await;
    let path = files.write(
        "bad.csv",
        "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km\n\
         TRK-404,engine-oil,2025-06-01,,,\n\
         TRK-001,main-brush,2025-06-01,,,\n\
         TRK-001,repair:600000:1,2025-06-01,,,\n\
         TRK-001,repair:110:32,2025-06-01,,,\n\
         TRK-001,repair:110,2025-06-01,,,\n\
         TRK-001,engine-oil,01/06/2025,,,\n\
         TRK-001,engine-oil,2025-06-01T08:00:00,,,\n\
         TRK-001,engine-oil,2027-01-01,,,\n\
         TRK-001,engine-oil,2025-06-02,-1,,\n\
         TRK-001,engine-oil,2025-06-03,,12h,\n\
         TRK-001,engine-oil,2025-06-04,,,NaN\n\
         TRK-001,,2025-06-05,,,\n\
         TRK-001,engine-oil,2025-06-06,,,\n\
         TRK-001,engine-oil,2025-06-06T00:00:00Z,,,\n",
    );
    let rows = refused(import_services(&db, &catalog(), &path, now()).await);
    let lines: Vec<u64> = rows.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]);
    let text: Vec<String> = rows.iter().map(|(_, p)| p.to_string()).collect();
    assert_eq!(
        text[0],
        "vehicle \"TRK-404\" is not in the registry; add it with fleetcare vehicles import first"
    );
    assert!(
        text[1].starts_with(
            "task \"main-brush\" is not a maintenance task of model compactor-c12; use one of engine-oil, "
        ),
        "{}",
        text[1]
    );
    assert!(
        text[1].ends_with(", or repair:SPN:FMI for a repair"),
        "{}",
        text[1]
    );
    assert!(text[2].contains("SPNs are 0 to 524287"), "{}", text[2]);
    assert!(text[3].contains("FMIs are 0 to 31"), "{}", text[3]);
    assert!(text[4].contains("is not repair:SPN:FMI"), "{}", text[4]);
    assert!(matches!(rows[5].1, RowProblem::BadTime { .. }));
    assert!(matches!(rows[6].1, RowProblem::BadTime { .. }), "no offset");
    assert!(matches!(rows[7].1, RowProblem::FutureTime { .. }));
    assert!(matches!(
        rows[8].1,
        RowProblem::BadMeter {
            column: "engine_hours",
            ..
        }
    ));
    assert!(matches!(
        rows[9].1,
        RowProblem::BadMeter {
            column: "pto_hours",
            ..
        }
    ));
    assert!(matches!(
        rows[10].1,
        RowProblem::BadMeter {
            column: "odometer_km",
            ..
        }
    ));
    assert_eq!(rows[11].1, RowProblem::Empty { column: "task" });
    assert!(matches!(
        rows[12].1,
        RowProblem::DuplicateService { first_line: 14, .. }
    ));
    assert_eq!(counts(&db).await, (3, 0, 0));
}

async fn bad_stock_rows_are_named_by_line(db: Db) {
    let files = Files::new();
    let path = files.write(
        "stock.csv",
        "part,depot,on_hand\n\
         FLT-NOPE,north,1\n\
         FLT-OIL-01,north,-3\n\
         FLT-OIL-01,north,2.5\n\
         FLT-OIL-01,,2\n\
         FLT-OIL-01,north,\n\
         FLT-OIL-01,north,99999999999999999999\n\
         FLT-OIL-01,south,1\n\
         FLT-OIL-01,south,2\n",
    );
    let rows = refused(read_counts(&catalog(), &path));
    assert_eq!(
        rows,
        [
            (
                2,
                RowProblem::UnknownPart {
                    part: "FLT-NOPE".into()
                }
            ),
            (3, RowProblem::BadCount { value: "-3".into() }),
            (
                4,
                RowProblem::BadCount {
                    value: "2.5".into()
                }
            ),
            (5, RowProblem::Depot(DepotError::Empty)),
            (6, RowProblem::Empty { column: "on_hand" }),
            (
                7,
                RowProblem::BadCount {
                    value: "99999999999999999999".into()
                }
            ),
            (
                9,
                RowProblem::DuplicateStock {
                    part: "FLT-OIL-01".into(),
                    depot: "south".into(),
                    first_line: 8
                }
            ),
        ]
    );
    assert_eq!(counts(&db).await, (0, 0, 0));
}

fn seen(fleet: &str, vehicle: &str) -> SeenVehicle {
    SeenVehicle {
        fleet: FleetId::new(fleet).unwrap(),
        vehicle: vid(vehicle),
        first_seen: Some(time("2026-02-01T08:00:00Z")),
        last_seen: Some(time("2026-02-28T17:00:00Z")),
    }
}

async fn unknown_vehicles_are_those_not_registered_under_their_fleet(db: Db) {
    let files = Files::new();
    with_vehicles(&db, &files).await;
    let seen = [
        seen("acme", "TRK-001"),
        seen("zeta", "ZZ-9"),
        seen("beta", "TRK-002"),
        seen("acme", "TRK-099"),
        seen("beta", "SWP-100"),
    ];
    let unknown = unknown_vehicles(&db, &seen).await.unwrap();
    let got: Vec<(&str, &str, Option<&str>)> = unknown
        .iter()
        .map(|u| {
            (
                u.seen.fleet.as_str(),
                u.seen.vehicle.as_str(),
                u.registered_fleet.as_ref().map(FleetId::as_str),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("acme", "TRK-099", None),
            ("beta", "TRK-002", Some("acme")),
            ("zeta", "ZZ-9", None),
        ]
    );
    assert_eq!(unknown[0].seen, seen[3]);
}

#[test]
fn unregistered_needs_no_database() {
    let registry = vec![Vehicle {
        id: vid("TRK-001"),
        fleet: FleetId::new("acme").unwrap(),
        model: crate::catalog::ModelId::new("sweeper-s8").unwrap(),
        vin: None,
        commissioned_on: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        depot: Depot::new("north").unwrap(),
    }];
    assert!(unregistered(&[seen("acme", "TRK-001")], &registry).is_empty());
    assert_eq!(unregistered(&[seen("acme", "TRK-002")], &registry).len(), 1);
    assert!(unregistered(&[], &registry).is_empty());
}
