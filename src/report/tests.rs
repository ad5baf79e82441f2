//! The reports on small hand-written histories: telemetry messages
//! ingested into a real store, a four-model catalogue, registry rows
//! written out here, and the expected rows written out in each test.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::{Fmi, Spn};
use fleetcare_ingest::pipeline::{Message, PipelineConfig};

use super::*;
use crate::catalog::{IntervalMeter, ModelId, PartId, TaskId};
use crate::registry::{Depot, ServiceRecord, ServiceSource, ServiceTask, StockLevel, Vehicle};
use crate::store::{Snapshot, Store};
use status::Status;

const SWEEPER: &str = r#"
id = "sweeper-t"
name = "Test sweeper"
kind = "sweeper"

[[maintenance]]
task = "engine-oil"
name = "Engine oil"
every_engine_hours = 500
every_days = 180
due_soon_engine_hours = 50
due_soon_days = 14
parts = [{ part = "OIL", qty = 20 }, { part = "FLT", qty = 1 }]

[[maintenance]]
task = "brushes"
name = "Brushes"
every_pto_hours = 300
every_km = 10000
parts = [{ part = "BRUSH", qty = 2 }]

[[faults]]
spn = 110
fmi = 0
name = "Coolant temperature high"
severity = "high"
parts = [{ part = "THERMO", qty = 1 }]

[[faults]]
spn = 100
fmi = 1
name = "Oil pressure low"
severity = "medium"
"#;

const PARTS: &str = r#"
[[part]]
id = "OIL"
name = "Engine oil"
unit = "L"
lead_time_days = 2

[[part]]
id = "FLT"
name = "Oil filter"
unit = "pcs"
lead_time_days = 2

[[part]]
id = "BRUSH"
name = "Side brush"
unit = "pcs"
lead_time_days = 7

[[part]]
id = "THERMO"
name = "Thermostat"
unit = "pcs"
lead_time_days = 5
"#;

fn catalog() -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("parts.toml"), PARTS).unwrap();
    std::fs::write(dir.path().join("sweeper-t.toml"), SWEEPER).unwrap();
    for id in ["compactor-a", "compactor-b", "compactor-c"] {
        let text = format!(
            "id = \"{id}\"\nname = \"{id}\"\nkind = \"compactor\"\n\n[[faults]]\nspn = 520300\nfmi = 3\nname = \"Packer valve\"\nseverity = \"medium\"\n"
        );
        std::fs::write(dir.path().join(format!("{id}.toml")), text).unwrap();
    }
    let catalog = Catalog::load(dir.path()).unwrap();
    (dir, catalog)
}

/// The as-of time of every test: Monday 2026-03-02 00:00 UTC.
fn as_of() -> DateTime<Utc> {
    at("2026-03-02T00:00:00Z")
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// `days` before the as-of time, at `hour`:00.
fn days_before(days: i64, hour: i64) -> DateTime<Utc> {
    as_of() - TimeDelta::days(days) + TimeDelta::hours(hour)
}

fn vehicle(id: &str, model: &str) -> Vehicle {
    Vehicle {
        id: VehicleId::new(id).unwrap(),
        fleet: FleetId::new("acme").unwrap(),
        model: ModelId::new(model).unwrap(),
        vin: None,
        commissioned_on: date("2024-01-01"),
        depot: Depot::new("north").unwrap(),
    }
}

fn service(vehicle: &str, task: &str, on: &str, meters: [Option<f64>; 3]) -> ServiceRecord {
    ServiceRecord {
        vehicle: VehicleId::new(vehicle).unwrap(),
        task: ServiceTask::parse(task).unwrap(),
        performed_at: at(&format!("{on}T10:00:00Z")),
        engine_hours: meters[0],
        pto_hours: meters[1],
        odometer_km: meters[2],
        source: ServiceSource::Import,
    }
}

/// Telemetry messages of a hand-written history, stored in a real store.
#[derive(Default)]
struct History {
    messages: Vec<(DateTime<Utc>, String, String)>,
}

impl History {
    fn send(&mut self, vehicle: &str, t: DateTime<Utc>, body: &str) {
        let ts = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.messages.push((
            t,
            format!("fleet/acme/{vehicle}/telemetry"),
            format!("{{\"ts\": \"{ts}\"{body}}}"),
        ));
    }

    fn meters(&mut self, vehicle: &str, t: DateTime<Utc>, engine: f64, pto: f64, km: f64) {
        self.send(
            vehicle,
            t,
            &format!(", \"engine_hours\": {engine}, \"pto_hours\": {pto}, \"odometer_km\": {km}"),
        );
    }

    /// Daily readings at 16:00 from `days` days before the as-of time to
    /// the day before it, rising by `per_day` on the days `works` says.
    fn daily(
        &mut self,
        vehicle: &str,
        days: i64,
        end: [f64; 3],
        per_day: [f64; 3],
        works: impl Fn(NaiveDate) -> bool,
    ) {
        // Walk back from the last day so that the end values are exact.
        let mut values = end;
        let mut readings = Vec::new();
        for back in 1..=days {
            let t = days_before(back, 16);
            readings.push((t, values));
            if works(t.date_naive()) {
                for (v, r) in values.iter_mut().zip(per_day) {
                    *v -= r;
                }
            }
        }
        for (t, [e, p, k]) in readings.into_iter().rev() {
            self.meters(vehicle, t, e, p, k);
        }
    }

    /// An episode of one code from `start` to `end`.
    fn episode(
        &mut self,
        vehicle: &str,
        spn: u32,
        fmi: u32,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) {
        self.send(
            vehicle,
            start,
            &format!(", \"dtcs\": [{{\"spn\": {spn}, \"fmi\": {fmi}}}]"),
        );
        self.send(vehicle, end, ", \"dtcs\": []");
    }

    /// The history ingested and compacted, as the reports read it.
    fn store(self, dir: &std::path::Path) -> Snapshot {
        let mut store = self.ingest(dir);
        store.compact().unwrap();
        store.snapshot().unwrap()
    }

    /// The history ingested in time order, left in the write-ahead log.
    fn ingest(mut self, dir: &std::path::Path) -> Store {
        self.messages.sort_by_key(|m| m.0);
        let mut store = Store::open(dir, PipelineConfig::default()).unwrap();
        store.set_compact_bytes(u64::MAX);
        let batch: Vec<Message<'_>> = self
            .messages
            .iter()
            .map(|(t, topic, payload)| Message {
                topic,
                payload: payload.as_bytes(),
                received: Timestamp::from_datetime(t),
            })
            .collect();
        let mut records = Vec::new();
        store.ingest(&batch, &mut records).unwrap();
        let dead = store.totals().dead_letters;
        assert!(dead.values().all(|n| *n == 0), "fixture refused: {dead:?}");
        store
    }
}

fn every_day(_: NaiveDate) -> bool {
    true
}

fn weekdays(d: NaiveDate) -> bool {
    use chrono::Datelike;
    d.weekday().num_days_from_monday() < 5
}

fn ctx<'a>(catalog: &'a Catalog, registry: &'a Registry, detect: &'a DetectConfig) -> Context<'a> {
    Context {
        catalog,
        registry,
        detect,
        as_of: as_of(),
    }
}

fn num(v: f64) -> MeterValue {
    MeterValue::Number(v)
}

fn due_row(
    vehicle: &str,
    task: &str,
    status: Status,
    meter: IntervalMeter,
    values: (MeterValue, MeterValue, f64),
    usage: Option<f64>,
    forecast: Option<&str>,
) -> DueRow {
    DueRow {
        fleet: FleetId::new("acme").unwrap(),
        vehicle: VehicleId::new(vehicle).unwrap(),
        model: ModelId::new("sweeper-t").unwrap(),
        task: TaskId::new(task).unwrap(),
        status,
        meter,
        current: values.0,
        due_at: values.1,
        remaining: values.2,
        usage_per_day: usage,
        forecast_due_on: forecast.map(date),
    }
}

/// V1: engine hours decide (due soon) while days are fine; brushes ok
/// with PTO falling due before km. V2: days decide (overdue) while engine
/// hours are fine; km overdue on brushes. V3: the newer service restarts
/// the interval (the older one alone would make it overdue; the one after
/// the as-of time is not counted). V4: works weekdays only. V5: V1's usage
/// with an ECU swap in the window.
#[test]
fn maintenance_due_rows() {
    let (_m, catalog) = catalog();
    let data = tempfile::tempdir().unwrap();
    let mut h = History::default();
    h.daily(
        "V1",
        40,
        [1460.0, 600.0, 22000.0],
        [8.0, 5.0, 100.0],
        every_day,
    );
    h.daily(
        "V2",
        40,
        [3100.0, 200.0, 20500.0],
        [4.0, 2.0, 50.0],
        every_day,
    );
    h.daily(
        "V3",
        40,
        [1100.0, 100.0, 5000.0],
        [8.0, 1.0, 10.0],
        every_day,
    );
    h.daily(
        "V4",
        40,
        [1470.0, 100.0, 5000.0],
        [10.0, 1.0, 10.0],
        weekdays,
    );
    // V5: like V1, but the engine ECU is swapped 10 days before the as-of
    // time: its new counter starts at 1 h and the store keeps the history
    // continuous (that day's 8 h are lost to the swap, nothing else).
    for back in (1..=40i64).rev() {
        let t = days_before(back, 16);
        let true_engine = 1460.0 - 8.0 * (back - 1) as f64;
        let engine = if back > 10 {
            true_engine
        } else {
            1.0 + 8.0 * (10 - back) as f64
        };
        let pto = 600.0 - 5.0 * (back - 1) as f64;
        let km = 22000.0 - 100.0 * (back - 1) as f64;
        h.meters("V5", t, engine, pto, km);
    }
    let store = h.store(data.path());
    let registry = Registry {
        vehicles: ["V1", "V2", "V3", "V4", "V5"]
            .iter()
            .map(|v| vehicle(v, "sweeper-t"))
            .collect(),
        services: vec![
            service("V1", "engine-oil", "2026-01-20", [Some(1000.0), None, None]),
            service(
                "V1",
                "brushes",
                "2026-01-20",
                [None, Some(500.0), Some(20000.0)],
            ),
            service("V2", "engine-oil", "2025-08-01", [Some(3000.0), None, None]),
            service(
                "V2",
                "brushes",
                "2025-08-01",
                [None, Some(100.0), Some(10000.0)],
            ),
            service("V3", "engine-oil", "2025-10-01", [Some(500.0), None, None]),
            service("V3", "engine-oil", "2026-02-20", [Some(1000.0), None, None]),
            service("V3", "engine-oil", "2026-03-05", [Some(1200.0), None, None]),
            service("V4", "engine-oil", "2026-01-20", [Some(1000.0), None, None]),
            service("V5", "engine-oil", "2026-01-20", [Some(1000.0), None, None]),
            service(
                "V5",
                "brushes",
                "2026-01-20",
                [None, Some(500.0), Some(20000.0)],
            ),
            service("V1", "repair:110:0", "2026-02-01", [None, None, None]),
        ],
        stock: Vec::new(),
    };
    let detect = DetectConfig::default();
    let ctx = ctx(&catalog, &registry, &detect);
    let rows = due::maintenance_due(&store, &ctx, false).unwrap();
    use IntervalMeter::*;
    use Status::*;
    let d = |s: &str| MeterValue::Date(date(s));
    let want = vec![
        due_row(
            "V1",
            "engine-oil",
            DueSoon,
            EngineHours,
            (num(1460.0), num(1500.0), 40.0),
            Some(8.0),
            Some("2026-03-07"),
        ),
        // km 20500 against 10000 + 10000, 10 days of usage ago; PTO is ok.
        due_row(
            "V2",
            "brushes",
            Overdue,
            OdometerKm,
            (num(20500.0), num(20000.0), -500.0),
            Some(50.0),
            Some("2026-02-20"),
        ),
        due_row(
            "V2",
            "engine-oil",
            Overdue,
            Days,
            (d("2026-03-02"), d("2026-01-28"), -33.0),
            Some(1.0),
            Some("2026-01-28"),
        ),
        // 200 h in 28 days of which 20 worked: 7.143 h a calendar day, so
        // 30 h last 4.2 days (at 10 h a working day it would be 3).
        due_row(
            "V4",
            "engine-oil",
            DueSoon,
            EngineHours,
            (num(1470.0), num(1500.0), 30.0),
            Some(7.143),
            Some("2026-03-06"),
        ),
        // 1460 - 8 - ... : the swap day's 8 h are lost: 1452 h now, 216 h
        // in 28 days.
        due_row(
            "V5",
            "engine-oil",
            DueSoon,
            EngineHours,
            (num(1452.0), num(1500.0), 48.0),
            Some(7.714),
            Some("2026-03-08"),
        ),
    ];
    assert_eq!(rows, want);

    let all = due::maintenance_due(&store, &ctx, true).unwrap();
    let ok: Vec<(&str, &str, IntervalMeter, f64)> = all
        .iter()
        .filter(|r| r.status == Ok)
        .map(|r| (r.vehicle.as_str(), r.task.as_str(), r.meter, r.remaining))
        .collect();
    assert_eq!(
        ok,
        vec![
            // PTO falls due in 40 days, km in 80: PTO decides.
            ("V1", "brushes", PtoHours, 200.0),
            // Never serviced: from zero. PTO 100 of 300 in 200 days, km
            // 5000 of 10000 in 500: PTO.
            ("V3", "brushes", PtoHours, 200.0),
            // The 2026-02-20 service at 1000 h restarts the interval.
            ("V3", "engine-oil", EngineHours, 400.0),
            ("V4", "brushes", PtoHours, 200.0),
            ("V5", "brushes", PtoHours, 200.0),
        ]
    );

    let next = due::next_services(&store, &ctx).unwrap();
    let v1 = next
        .iter()
        .find(|r| r.vehicle.as_str() == "V1" && r.task.as_str() == "engine-oil")
        .unwrap();
    assert_eq!(
        (
            v1.due_on,
            v1.engine_hours,
            v1.pto_hours,
            v1.odometer_km,
            v1.expected_on
        ),
        (
            Some(date("2026-07-19")),
            Some(1500.0),
            None,
            None,
            Some(date("2026-03-07"))
        )
    );
}

fn finding(
    kind: RecurringKind,
    vehicle: Option<&str>,
    model: &str,
    code: (u32, u8),
    counts: (u32, u32),
    seen: (DateTime<Utc>, DateTime<Utc>),
) -> RecurringRow {
    RecurringRow {
        kind,
        fleet: Some(FleetId::new("acme").unwrap()),
        vehicle: vehicle.map(|v| VehicleId::new(v).unwrap()),
        model: Some(ModelId::new(model).unwrap()),
        spn: Spn::new(code.0).unwrap(),
        fmi: Fmi::new(code.1).unwrap(),
        episodes: counts.0,
        vehicles: counts.1,
        first_seen: Timestamp::from_datetime(&seen.0),
        last_seen: Timestamp::from_datetime(&seen.1),
    }
}

/// R1: an intermittent fault that becomes recurring (its third start in 30
/// days). R2: intermittent, only two starts in the window. R3: one
/// persistent episode listed for 20 days. No code is on three of the five
/// sweepers (that would be a batch defect). R4: back 10 days after its
/// repair; R5: back 35 days after (not a repeat repair). Batch: compactor-a
/// has 15 vehicles, 3 affected (exactly 3 and 20 %); compactor-b 16 with 3
/// (18.75 %); compactor-c 5 with 2 (40 %, but 2 vehicles).
#[test]
fn recurring_repeat_repairs_and_batch_defects() {
    let (_m, catalog) = catalog();
    let data = tempfile::tempdir().unwrap();
    let mut h = History::default();
    let short = |h: &mut History, v: &str, spn, fmi, back: i64| {
        let start = days_before(back, 9);
        h.episode(v, spn, fmi, start, start + TimeDelta::minutes(30));
    };
    for back in [25, 12, 2] {
        short(&mut h, "R1", 100, 1, back);
    }
    for back in [45, 20, 5] {
        short(&mut h, "R2", 100, 1, back);
    }
    // R3's code (not catalogued: any code counts) is listed by every
    // snapshot for 20 days.
    for back in (1..=20).rev() {
        h.send(
            "R3",
            days_before(back, 9),
            ", \"dtcs\": [{\"spn\": 111, \"fmi\": 3}]",
        );
    }
    short(&mut h, "R4", 110, 0, 10);
    short(&mut h, "R5", 110, 0, 15);
    let mut vehicles: Vec<Vehicle> = ["R1", "R2", "R3", "R4", "R5"]
        .iter()
        .map(|v| vehicle(v, "sweeper-t"))
        .collect();
    for (model, registered, affected) in [
        ("compactor-a", 15, 3),
        ("compactor-b", 16, 3),
        ("compactor-c", 5, 2),
    ] {
        for i in 0..registered {
            let id = format!("{model}-{i:02}");
            if i < affected {
                short(&mut h, &id, 520300, 3, 3 + i64::from(i));
            }
            vehicles.push(vehicle(&id, model));
        }
    }
    let store = h.store(data.path());
    let registry = Registry {
        vehicles,
        services: vec![
            service(
                "R4",
                "repair:110:0",
                &days_before(20, 0).date_naive().to_string(),
                [None; 3],
            ),
            service(
                "R5",
                "repair:110:0",
                &days_before(50, 0).date_naive().to_string(),
                [None; 3],
            ),
        ],
        stock: Vec::new(),
    };
    let detect = DetectConfig::default();
    let rows = recurring::recurring(&store, &ctx(&catalog, &registry, &detect)).unwrap();
    use RecurringKind::*;
    let t = |back: i64| days_before(back, 9);
    let mut batch = finding(
        BatchDefect,
        None,
        "compactor-a",
        (520300, 3),
        (3, 3),
        (t(5), t(3)),
    );
    batch.fleet = Some(FleetId::new("acme").unwrap());
    assert_eq!(
        rows,
        vec![
            finding(
                Recurring,
                Some("R1"),
                "sweeper-t",
                (100, 1),
                (3, 1),
                (t(25), t(2))
            ),
            finding(
                RepeatRepair,
                Some("R4"),
                "sweeper-t",
                (110, 0),
                (1, 1),
                (t(10), t(10))
            ),
            batch,
        ]
    );

    // One fewer vehicle needed: compactor-c's two (40 %) and the sweepers'
    // pairs (2 of 5) now count; one more share needed: compactor-a's 20 %
    // no longer does.
    let other = DetectConfig {
        batch_min_vehicles: 2,
        batch_min_share: 0.21,
        ..DetectConfig::default()
    };
    let rows = recurring::recurring(&store, &ctx(&catalog, &registry, &other)).unwrap();
    let batches: Vec<(&str, u32, u32)> = rows
        .iter()
        .filter(|r| r.kind == BatchDefect)
        .filter_map(|r| Some((r.model.as_ref()?.as_str(), r.spn.raw(), r.vehicles)))
        .collect();
    assert_eq!(
        batches,
        vec![
            ("compactor-c", 520300, 2),
            ("sweeper-t", 100, 2),
            ("sweeper-t", 110, 2)
        ]
    );
}

/// Two episodes a minute apart across the Sunday/Monday boundary land in
/// two weeks; per 1000 engine hours uses the hours the model ran that week.
#[test]
fn trends_split_weeks_at_monday() {
    let (_m, catalog) = catalog();
    let data = tempfile::tempdir().unwrap();
    let mut h = History::default();
    // T1 runs 10 h every day; T2 sends no meters.
    h.daily(
        "T1",
        30,
        [2000.0, 100.0, 5000.0],
        [10.0, 1.0, 10.0],
        every_day,
    );
    h.episode(
        "T1",
        110,
        0,
        at("2026-02-22T23:59:00Z"),
        at("2026-02-22T23:59:30Z"),
    );
    h.episode(
        "T1",
        110,
        0,
        at("2026-02-23T00:00:00Z"),
        at("2026-02-23T00:10:00Z"),
    );
    h.episode(
        "T2",
        110,
        0,
        at("2026-02-24T08:00:00Z"),
        at("2026-02-24T08:10:00Z"),
    );
    let store = h.store(data.path());
    let registry = Registry {
        vehicles: vec![vehicle("T1", "sweeper-t"), vehicle("T2", "sweeper-t")],
        ..Registry::default()
    };
    let detect = DetectConfig::default();
    let rows = trends::trends(&store, &ctx(&catalog, &registry, &detect), Some(4)).unwrap();
    let row = |week: &str, episodes, vehicles, per: f64| TrendRow {
        model: ModelId::new("sweeper-t").unwrap(),
        spn: Spn::new(110).unwrap(),
        fmi: Fmi::new(0).unwrap(),
        week: date(week),
        episodes,
        vehicles,
        per_1000_engine_hours: Some(per),
    };
    assert_eq!(
        rows,
        vec![
            // 70 h that week (Monday 16:00 to Sunday 16:00 readings, from
            // the previous Sunday's).
            row("2026-02-16", 1, 1, 14.286),
            row("2026-02-23", 2, 2, 28.571),
        ]
    );
}

/// One truck: engine oil falls due on day 5 and again 62.5 days later,
/// brushes on day 40; 13 coolant episodes in 90 days make 1.01
/// thermostats a week. Oil stock 30 covers the first service, not the
/// second; the filter is not stocked at all at an importing depot.
#[test]
fn parts_forecast_with_stock() {
    let (_m, catalog) = catalog();
    let data = tempfile::tempdir().unwrap();
    let mut h = History::default();
    h.daily(
        "P1",
        40,
        [1460.0, 600.0, 22000.0],
        [8.0, 5.0, 100.0],
        every_day,
    );
    for i in 0..13 {
        let start = days_before(3 + 6 * i, 9);
        h.episode("P1", 110, 0, start, start + TimeDelta::minutes(20));
    }
    let store = h.store(data.path());
    let registry = Registry {
        vehicles: vec![vehicle("P1", "sweeper-t")],
        services: vec![
            service("P1", "engine-oil", "2026-01-20", [Some(1000.0), None, None]),
            service(
                "P1",
                "brushes",
                "2026-01-20",
                [None, Some(500.0), Some(20000.0)],
            ),
        ],
        stock: vec![StockLevel {
            part: PartId::new("OIL").unwrap(),
            depot: Depot::new("north").unwrap(),
            on_hand: 30,
        }],
    };
    let detect = DetectConfig::default();
    let ctx = ctx(&catalog, &registry, &detect);
    let rows = parts::parts_demand(&store, &ctx, Some(12), false).unwrap();
    let pick = |part: &str, week: usize| {
        let r = rows
            .iter()
            .filter(|r| r.part.as_str() == part)
            .nth(week)
            .unwrap();
        assert_eq!(r.week, date("2026-03-02") + TimeDelta::weeks(week as i64));
        (
            r.planned_qty,
            r.corrective_qty,
            r.total_qty,
            r.on_hand,
            r.shortfall,
        )
    };
    assert_eq!(rows.len(), 4 * 12, "OIL, FLT, BRUSH, THERMO for 12 weeks");
    assert_eq!(pick("OIL", 0), (20.0, 0.0, 20.0, Some(30.0), Some(0.0)));
    assert_eq!(pick("OIL", 1), (0.0, 0.0, 0.0, Some(10.0), Some(0.0)));
    // Day 5 + 500 h / 8 h a day = day 67.5: week 9.
    assert_eq!(pick("OIL", 9), (20.0, 0.0, 20.0, Some(10.0), Some(10.0)));
    assert_eq!(pick("OIL", 10), (0.0, 0.0, 0.0, Some(0.0), Some(0.0)));
    assert_eq!(pick("FLT", 0), (1.0, 0.0, 1.0, Some(0.0), Some(1.0)));
    // 200 PTO hours at 5 a day: day 40, week 5; next at day 100.
    assert_eq!(pick("BRUSH", 5), (2.0, 0.0, 2.0, Some(0.0), Some(2.0)));
    assert_eq!(pick("BRUSH", 4), (0.0, 0.0, 0.0, Some(0.0), Some(0.0)));
    // 13 episodes / 1 vehicle / 90 days * 7 = 1.011 a week.
    assert_eq!(pick("THERMO", 3), (0.0, 1.01, 1.01, Some(0.0), Some(1.01)));

    // Two weeks: brushes fall due later, so three parts.
    let by_depot = parts::parts_demand(&store, &ctx, Some(2), true).unwrap();
    assert_eq!(by_depot.len(), 3 * 2);
    assert!(
        by_depot
            .iter()
            .all(|r| r.depot.as_ref().map(Depot::as_str) == Some("north"))
    );
    let json = serde_json::to_string(&by_depot[0]).unwrap();
    assert!(
        json.starts_with(r#"{"part":"FLT","depot":"north","week":"2026-03-02""#),
        "{json}"
    );
    let json = serde_json::to_string(&rows[0]).unwrap();
    assert_eq!(
        json,
        r#"{"part":"BRUSH","week":"2026-03-02","planned_qty":0.0,"corrective_qty":0.0,"total_qty":0.0,"on_hand":0.0,"shortfall":0.0}"#
    );
}

#[test]
fn rows_print_as_table_json_and_csv() {
    let row = due_row(
        "V1",
        "engine-oil",
        Status::DueSoon,
        IntervalMeter::EngineHours,
        (num(1460.0), num(1500.0), 40.0),
        None,
        None,
    );
    let print = |format| {
        let mut out = Vec::new();
        output::write(&mut out, std::slice::from_ref(&row), format).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        print(output::Format::Json),
        "[\n{\"fleet\":\"acme\",\"vehicle\":\"V1\",\"model\":\"sweeper-t\",\"task\":\"engine-oil\",\"status\":\"due_soon\",\"meter\":\"engine_hours\",\"current\":1460.0,\"due_at\":1500.0,\"remaining\":40.0,\"usage_per_day\":null,\"forecast_due_on\":null}\n]\n"
    );
    assert_eq!(
        print(output::Format::Csv),
        "fleet,vehicle,model,task,status,meter,current,due_at,remaining,usage_per_day,forecast_due_on\nacme,V1,sweeper-t,engine-oil,due_soon,engine_hours,1460.0,1500.0,40.0,,\n"
    );
    let table = print(output::Format::Table);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("fleet  vehicle  model      task        status    meter"),
        "{table}"
    );
    assert!(lines[1].ends_with("40.0       -              -"), "{table}");
    let mut empty = Vec::new();
    output::write::<DueRow>(&mut empty, &[], output::Format::Json).unwrap();
    assert_eq!(empty, b"[\n]\n");
}

/// The meter history reads whole days from the store's `meter_days`
/// summary and edge days as readings. Whatever mix a store holds (every
/// day summarised, a store written before summaries existed, some days
/// only, readings still in the log), and wherever the as-of time and the
/// window start fall in a day, the usage and the engine hours per week
/// must be those of the readings themselves.
#[test]
fn meter_summaries_change_no_figure() {
    let (_m, catalog) = catalog();
    let mut h = History::default();
    // Three trucks, readings every 5 h 17 min for 70 days; T2 rests on
    // weekends, T3 goes silent for ten days in the middle.
    let start = as_of() - TimeDelta::days(70);
    let mut t = start;
    let mut values = [[1000.0, 200.0, 30_000.0]; 3];
    while t < as_of() + TimeDelta::days(2) {
        for (i, v) in values.iter_mut().enumerate() {
            let silent =
                i == 2 && t > start + TimeDelta::days(30) && t < start + TimeDelta::days(40);
            let resting = i == 1 && !weekdays(t.date_naive());
            if silent {
                continue;
            }
            if !resting {
                v[0] += 2.5 + i as f64;
                v[1] += 0.7;
                v[2] += 31.0;
            }
            h.meters(&format!("T{}", i + 1), t, v[0], v[1], v[2]);
        }
        t += TimeDelta::minutes(317);
    }
    for week in 0..9 {
        let s = start + TimeDelta::days(7 * week + 3) + TimeDelta::hours(5);
        h.episode("T1", 110, 0, s, s + TimeDelta::minutes(20));
    }
    let registry = Registry {
        vehicles: ["T1", "T2", "T3"].map(|v| vehicle(v, "sweeper-t")).to_vec(),
        ..Registry::default()
    };
    let detect = DetectConfig::default();
    let figures = |store: &Snapshot, as_of: DateTime<Utc>| {
        let ctx = Context {
            as_of,
            ..ctx(&catalog, &registry, &detect)
        };
        let meters = usage::vehicle_meters(store, &ctx, "due").unwrap();
        let mut meters: Vec<_> = meters.into_iter().collect();
        meters.sort_by(|a, b| a.0.cmp(&b.0));
        (meters, trends::trends(store, &ctx, Some(8)).unwrap())
    };
    let times = [
        as_of(),
        as_of() - TimeDelta::hours(10) - TimeDelta::minutes(3),
        as_of() - TimeDelta::days(3) + TimeDelta::hours(13),
    ];

    // Every day summarised.
    let whole = tempfile::tempdir().unwrap();
    let store = History {
        messages: h.messages.clone(),
    }
    .store(whole.path());
    let days = store.summarised_meter_days(20_400, 20_600).unwrap();
    assert_eq!(days.len(), 201, "every day of a new store is summarised");
    let expected: Vec<_> = times.iter().map(|t| figures(&store, *t)).collect();
    assert_eq!(
        (expected[0].0.len(), expected[0].1.len()),
        (3, 6),
        "{:?}",
        expected[0]
    );

    // The same readings with no summary at all, and with every other day's.
    let legacy = tempfile::tempdir().unwrap();
    let mixed = tempfile::tempdir().unwrap();
    for (dir, keep_every) in [(&legacy, None), (&mixed, Some(2))] {
        drop(
            History {
                messages: h.messages.clone(),
            }
            .store(dir.path()),
        );
        let summaries = dir.path().join("meter_days");
        let mut day_dirs: Vec<_> = std::fs::read_dir(&summaries)
            .unwrap()
            .map(|d| d.unwrap().path())
            .collect();
        day_dirs.sort();
        for (i, d) in day_dirs.iter().enumerate() {
            if keep_every.is_none_or(|n| i % n == 0) {
                std::fs::remove_dir_all(d).unwrap();
            }
        }
        let store = Store::open_read_only(dir.path(), PipelineConfig::default())
            .unwrap()
            .snapshot()
            .unwrap();
        let summarised = store.summarised_meter_days(20_400, 20_600).unwrap();
        let with_readings = 201 - summarised.len();
        match keep_every {
            None => assert_eq!(with_readings, day_dirs.len()),
            Some(_) => assert_eq!(with_readings, day_dirs.len().div_ceil(2)),
        }
        for (t, e) in times.iter().zip(&expected) {
            assert_eq!(
                &figures(&store, *t),
                e,
                "as of {t}, summaries kept: {keep_every:?}"
            );
        }
    }

    // Readings still in the log: the summary is made from them on the fly.
    let logged = tempfile::tempdir().unwrap();
    let store = History {
        messages: h.messages.clone(),
    }
    .ingest(logged.path());
    assert!(!logged.path().join("meter_days").exists());
    let snapshot = store.snapshot().unwrap();
    for (t, e) in times.iter().zip(&expected) {
        assert_eq!(&figures(&snapshot, *t), e, "as of {t}, from the log");
    }
    drop(store);

    // The log read by the service's reader a few messages at a time: each
    // refresh adds its rows (and a summary of them) as frames of their own.
    let followed = tempfile::tempdir().unwrap();
    let mut messages = h.messages.clone();
    messages.sort_by_key(|m| m.0);
    let mut store = Store::open(followed.path(), PipelineConfig::default()).unwrap();
    store.set_compact_bytes(u64::MAX);
    let reader = crate::store::StoreReader::new(followed.path(), PipelineConfig::default());
    for chunk in messages.chunks(messages.len() / 7 + 1) {
        let batch: Vec<Message<'_>> = chunk
            .iter()
            .map(|(t, topic, payload)| Message {
                topic,
                payload: payload.as_bytes(),
                received: Timestamp::from_datetime(t),
            })
            .collect();
        store.ingest(&batch, &mut Vec::new()).unwrap();
        reader.snapshot().unwrap();
    }
    let snapshot = reader.snapshot().unwrap();
    assert_eq!(reader.stats().rebuilds, 1);
    for (t, e) in times.iter().zip(&expected) {
        assert_eq!(&figures(&snapshot, *t), e, "as of {t}, followed");
    }
}

/// Issue 23 item 5: a model whose hydraulic oil counts hours above 80 °C
/// twice and whose hydraulic filter (same interval) has no duty.
fn duty_catalog(with_duty: bool) -> (tempfile::TempDir, Catalog) {
    let duty = if with_duty {
        "duty = { signal = \"hydraulic_oil_temp_c\", above = 80, factor = 2.0 }\n"
    } else {
        ""
    };
    let text = format!(
        "id = \"compactor-d\"\nname = \"D\"\nkind = \"compactor\"\n\n\
         [[maintenance]]\ntask = \"hyd-filter\"\nname = \"Filter\"\nevery_engine_hours = 500\n\n\
         [[maintenance]]\ntask = \"hyd-oil\"\nname = \"Oil\"\nevery_engine_hours = 500\n{duty}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("parts.toml"), PARTS).unwrap();
    std::fs::write(dir.path().join("compactor-d.toml"), text).unwrap();
    let catalog = Catalog::load(dir.path()).unwrap();
    (dir, catalog)
}

/// Both tasks done at 1000 engine hours ten days before the as-of time;
/// since then 100 engine hours (10 a day), and on each of those days 10
/// hours with hydraulic oil readings, 3 of them at 85 °C and 7 at 60 °C:
/// 30 % of the hours hot, so with factor 2 the oil's meter stands at
/// 1000 + 100 + 30 = 1130 h and it falls due earlier; the filter (no duty)
/// reads exactly what it reads without any duty in the catalogue.
#[test]
fn duty_brings_the_task_forward_through_the_store() {
    let data = tempfile::tempdir().unwrap();
    let mut h = History::default();
    h.daily("V1", 12, [1100.0, 0.0, 0.0], [10.0, 0.0, 0.0], every_day);
    for back in 1..=10 {
        for hour in 6..16 {
            let temp = if hour < 9 { 85.0 } else { 60.0 };
            for minute in [5, 35] {
                let t = days_before(back, hour) + TimeDelta::minutes(minute);
                h.send(
                    "V1",
                    t,
                    &format!(", \"signals\": {{\"hydraulic_oil_temp_c\": {temp}}}"),
                );
            }
        }
    }
    let store = h.store(data.path());
    let mut v1 = vehicle("V1", "compactor-d");
    v1.commissioned_on = date("2025-06-01");
    let on = (as_of() - TimeDelta::days(10)).date_naive().to_string();
    let registry = Registry {
        vehicles: vec![v1],
        services: ["hyd-filter", "hyd-oil"]
            .into_iter()
            .map(|t| service("V1", t, &on, [Some(1000.0), None, None]))
            .collect(),
        stock: Vec::new(),
    };
    let detect = DetectConfig::default();
    let rows = |with_duty: bool| {
        let (_m, catalog) = duty_catalog(with_duty);
        due::maintenance_due(&store, &ctx(&catalog, &registry, &detect), true).unwrap()
    };
    let (plain, hot) = (rows(false), rows(true));
    assert_eq!(plain.len(), 2);
    assert_eq!(hot.len(), 2);
    let [filter, oil] = [&hot[0], &hot[1]];
    assert_eq!(
        (filter.task.as_str(), oil.task.as_str()),
        ("hyd-filter", "hyd-oil")
    );
    // Without duty: unchanged, and both tasks alike.
    assert_eq!(filter, &plain[0]);
    assert_eq!(plain[1].current, num(1100.0));
    assert_eq!(plain[1].remaining, 400.0);
    // With duty: 30 extra hours, due 30 h sooner and at a 30 % faster pace.
    assert_eq!(oil.current, num(1130.0));
    assert_eq!(oil.due_at, num(1500.0));
    assert_eq!(oil.remaining, 370.0);
    let raw_rate = plain[1].usage_per_day.unwrap();
    let rate = oil.usage_per_day.unwrap();
    assert!(
        (rate - raw_rate * 1.3).abs() < 0.002,
        "{rate} vs {raw_rate}"
    );
    let (early, late) = (
        oil.forecast_due_on.unwrap(),
        filter.forecast_due_on.unwrap(),
    );
    assert!(early < late, "{early} vs {late}");
    // The archive's view: the raw meter beside the adjusted one.
    let (_m, catalog) = duty_catalog(true);
    let tasks = due::assess(&store, &ctx(&catalog, &registry, &detect)).unwrap();
    let oil = tasks
        .iter()
        .find(|t| t.task.id.as_str() == "hyd-oil")
        .unwrap();
    assert_eq!(oil.intervals[0].raw_current, 1100.0);
    assert_eq!(oil.intervals[0].current, 1130.0);
    // `--next` prints the reading the truck will show when it falls due:
    // 370 adjusted hours at 1.3 per hour are 284.615 engine hours ahead.
    let next = due::next_service_rows(&tasks, as_of().date_naive());
    let hours: Vec<_> = next
        .iter()
        .map(|n| (n.task.as_str(), n.engine_hours))
        .collect();
    assert_eq!(
        hours,
        [("hyd-filter", Some(1500.0)), ("hyd-oil", Some(1384.615))]
    );
}
