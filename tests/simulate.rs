//! Issue 3: `fleetcare simulate` writes a deterministic fleet, and ingest
//! finds in its recording exactly the truth the simulator claims: the
//! planted garbage as dead letters, every fault episode once (duplicates
//! and out-of-order delivery included), recurring failures, repeat repairs
//! and the batch defect by the contract's definitions, and services and
//! vehicles in the C4 formats.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::NaiveDate;
use fleetcare::catalog::Catalog;
use fleetcare::simulate::{self, SimulateOptions};
use fleetcare_ingest::Timestamp;
use fleetcare_ingest::j1939::LampStatus;
use fleetcare_ingest::pipeline::{DeadLetterReason, Message, Pipeline, PipelineConfig, Record};
use serde_json::Value;

const FILES: [&str; 4] = ["rec.jsonl", "vehicles.csv", "services.csv", "truth.json"];
const DAY_US: i64 = 86_400_000_000;

/// The date and meters (engine, PTO, km) of a task's last service.
type LastService = (NaiveDate, [Option<f64>; 3]);

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn simulate(dir: &Path, trucks: u32, days: u32, seed: u64) -> simulate::Summary {
    let catalog = Catalog::load(&models_dir()).unwrap();
    let opts = SimulateOptions {
        trucks,
        days,
        seed,
        start: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
        upload_every: Duration::from_secs(300),
        out: dir.join("rec.jsonl"),
        topic_prefix: "fleet".to_owned(),
    };
    simulate::run(&opts, &catalog).unwrap()
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

#[test]
fn the_same_seed_writes_the_same_bytes() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let sa = simulate(a.path(), 12, 20, 7);
    let sb = simulate(b.path(), 12, 20, 7);
    simulate(c.path(), 12, 20, 8);
    assert_eq!(sa.messages, sb.messages);
    for name in FILES {
        let (x, y, z) = (
            read(a.path(), name),
            read(b.path(), name),
            read(c.path(), name),
        );
        assert!(x == y, "{name} differs between two runs with seed 7");
        assert!(x != z, "{name} is the same with seeds 7 and 8");
    }
    assert!(!a.path().join("rec.jsonl.partial").exists());
}

/// What ingest made of the recording.
#[derive(Default)]
struct Ingested {
    dead: BTreeMap<String, u64>,
    /// Fault starts and ends per (vehicle, spn, fmi), RFC 3339.
    started: BTreeMap<(String, u32, u8), Vec<String>>,
    ended: BTreeMap<(String, u32, u8), Vec<String>>,
    red_stop_starts: BTreeSet<(String, u32, u8)>,
    /// The last stored value per (vehicle, meter).
    meters: BTreeMap<(String, &'static str), f64>,
    resets: usize,
    lines: u64,
}

fn ingest(recording: &str) -> Ingested {
    let mut p = Pipeline::new(PipelineConfig::default());
    let mut got = Ingested::default();
    let mut out = Vec::new();
    // Received now, as `fleetcare replay` receives a recording.
    let now = Timestamp::from_datetime(&chrono::Utc::now());
    for line in recording.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let topic = v["topic"].as_str().unwrap();
        let payload = v["payload"].as_str().unwrap();
        out.clear();
        p.handle(
            Message {
                topic,
                payload: payload.as_bytes(),
                received: now,
            },
            &mut out,
        );
        got.lines += 1;
        for r in &out {
            match r {
                Record::DeadLetter(d) => {
                    for (reason, n) in d.counts() {
                        *got.dead.entry(reason.as_str().to_owned()).or_default() += n;
                    }
                }
                Record::FaultStarted {
                    vehicle,
                    ts,
                    dtc,
                    lamps,
                    ..
                } => {
                    let key = (vehicle.vehicle.to_string(), dtc.spn.raw(), dtc.fmi.raw());
                    if lamps.red_stop == LampStatus::On {
                        got.red_stop_starts.insert(key.clone());
                    }
                    got.started.entry(key).or_default().push(ts.to_rfc3339());
                }
                Record::FaultEnded {
                    vehicle,
                    ts,
                    spn,
                    fmi,
                    ..
                } => {
                    let key = (vehicle.vehicle.to_string(), spn.raw(), fmi.raw());
                    got.ended.entry(key).or_default().push(ts.to_rfc3339());
                }
                Record::Meter {
                    vehicle,
                    meter,
                    value,
                    ..
                } => {
                    got.meters
                        .insert((vehicle.vehicle.to_string(), meter.as_str()), *value);
                }
                Record::MeterReset { .. } => got.resets += 1,
                Record::LampsChanged { .. } | Record::Signal { .. } => {}
            }
        }
    }
    got
}

fn us(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_micros()
}

fn csv(text: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(header));
    lines
        .map(|l| {
            let f: Vec<String> = l.split(',').map(str::to_owned).collect();
            assert_eq!(f.len(), 6, "{l}");
            f
        })
        .collect()
}

#[test]
fn ingest_finds_exactly_the_planted_truth() {
    let dir = tempfile::tempdir().unwrap();
    let summary = simulate(dir.path(), 20, 35, 3);
    let truth: Value = serde_json::from_str(&read(dir.path(), "truth.json")).unwrap();
    let recording = read(dir.path(), "rec.jsonl");
    let got = ingest(&recording);
    let msgs = &truth["messages"];

    // Message counts: the file holds what the truth says was sent.
    let garbage: u64 = msgs["garbage"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let (valid, dups) = (
        msgs["valid"].as_u64().unwrap(),
        msgs["duplicates"].as_u64().unwrap(),
    );
    assert_eq!(got.lines, valid + dups + garbage);
    assert_eq!(got.lines, msgs["lines"].as_u64().unwrap());
    assert_eq!(summary.messages, got.lines);
    assert_eq!(msgs["bytes"].as_u64().unwrap(), recording.len() as u64);
    // Every glitch happened at least once.
    for (kind, n) in msgs["garbage"].as_object().unwrap() {
        assert!(n.as_u64().unwrap() >= 1, "no {kind} garbage");
    }
    for k in ["duplicates", "out_of_order", "split_bam"] {
        assert!(msgs[k].as_u64().unwrap() >= 1, "no {k}");
    }

    // Dead letters: exactly the planted garbage, by reason.
    let expected: BTreeMap<String, u64> = msgs["expected_dead_letters"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .filter(|&(_, n)| n > 0)
        .collect();
    assert_eq!(got.dead, expected);
    assert_eq!(
        got.dead.get(DeadLetterReason::Meter.as_str()),
        msgs["garbage"]["meter_spike"].as_u64().as_ref()
    );
    assert!(!got.dead.contains_key(DeadLetterReason::Transport.as_str()));
    assert_eq!(got.resets, 0);

    // Episodes: one FaultStarted per planned episode at its time, none extra.
    let mut want_started = BTreeMap::new();
    let mut want_ended = BTreeMap::new();
    for g in truth["episodes"].as_array().unwrap() {
        let key = (
            g["vehicle"].as_str().unwrap().to_owned(),
            g["spn"].as_u64().unwrap() as u32,
            g["fmi"].as_u64().unwrap() as u8,
        );
        for e in g["episodes"].as_array().unwrap() {
            want_started
                .entry(key.clone())
                .or_insert_with(Vec::new)
                .push(e["started"].as_str().unwrap().to_owned());
            if let Some(end) = e["ended"].as_str() {
                want_ended
                    .entry(key.clone())
                    .or_insert_with(Vec::new)
                    .push(end.to_owned());
            }
        }
    }
    assert_eq!(got.started, want_started);
    assert_eq!(got.ended, want_ended);
    let scenarios: BTreeSet<&str> = truth["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["scenario"].as_str().unwrap())
        .collect();
    for s in [
        "recurring",
        "intermittent",
        "persistent",
        "repeat_repair",
        "batch_defect",
        "critical",
        "noise",
    ] {
        assert!(scenarios.contains(s), "no {s} episodes: {scenarios:?}");
    }

    // Critical faults start with the red stop lamp on.
    let critical = truth["critical"].as_array().unwrap();
    assert!(!critical.is_empty());
    for c in critical {
        let key = (
            c["vehicle"].as_str().unwrap().to_owned(),
            c["spn"].as_u64().unwrap() as u32,
            c["fmi"].as_u64().unwrap() as u8,
        );
        assert!(got.red_stop_starts.contains(&key), "{key:?}");
    }

    // The registry and the service history, in the C4 formats.
    let catalog = Catalog::load(&models_dir()).unwrap();
    let vehicles = csv(
        &read(dir.path(), "vehicles.csv"),
        "vehicle_id,fleet_id,model_id,vin,commissioned_on,depot",
    );
    let model_of: BTreeMap<String, String> = vehicles
        .iter()
        .map(|v| (v[0].clone(), v[2].clone()))
        .collect();
    let fleets: BTreeSet<&str> = vehicles.iter().map(|v| v[1].as_str()).collect();
    assert_eq!(fleets.len(), 3);
    assert_eq!(vehicles.len(), 19, "one of 20 trucks is not registered");
    for v in &vehicles {
        fleetcare_ingest::ids::VehicleId::new(&v[0]).unwrap();
        assert!(catalog.model(v[2].as_str()).is_some(), "{v:?}");
        assert_eq!(v[3].len(), 17);
        NaiveDate::parse_from_str(&v[4], "%Y-%m-%d").unwrap();
        assert!(!v[5].is_empty());
    }
    let unregistered: Vec<&Value> = truth["vehicles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["registered"] == false)
        .collect();
    assert_eq!(unregistered.len(), 1);
    let stranger = unregistered[0]["vehicle"].as_str().unwrap();
    assert!(!model_of.contains_key(stranger));
    assert!(
        got.meters.keys().any(|(v, _)| v == stranger),
        "the unregistered truck sends data"
    );

    let services = csv(
        &read(dir.path(), "services.csv"),
        "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km",
    );
    let mut repairs: Vec<(String, u32, u8, i64)> = Vec::new();
    // The last service of each task: (vehicle, task) → meters.
    let mut last: BTreeMap<(String, String), LastService> = BTreeMap::new();
    for s in &services {
        let model = catalog.model(model_of[&s[0]].as_str()).unwrap();
        let meters = [3, 4, 5].map(|i| (!s[i].is_empty()).then(|| s[i].parse::<f64>().unwrap()));
        assert!(meters[0].is_some() && meters[2].is_some(), "{s:?}");
        if let Some(code) = s[1].strip_prefix("repair:") {
            let (spn, fmi) = code.split_once(':').unwrap();
            repairs.push((
                s[0].clone(),
                spn.parse().unwrap(),
                fmi.parse().unwrap(),
                us(&s[2]),
            ));
        } else {
            assert!(model.task(s[1].as_str()).is_some(), "{s:?}");
            let date = NaiveDate::parse_from_str(&s[2], "%Y-%m-%d").unwrap();
            let e = last
                .entry((s[0].clone(), s[1].clone()))
                .or_insert((date, meters));
            if date >= e.0 {
                *e = (date, meters);
            }
        }
    }

    // Recurring failures, repeat repairs and batch defects, derived here
    // from ingest's own output by the C5 definitions, equal the truth.
    let as_of = us(truth["as_of"].as_str().unwrap());
    let in_window = |t: &String| us(t) > as_of - 30 * DAY_US && us(t) <= as_of;
    let recurring: BTreeSet<(String, u32, u8)> = got
        .started
        .iter()
        .filter(|(_, s)| s.iter().filter(|t| in_window(t)).count() >= 3)
        .map(|(k, _)| k.clone())
        .collect();
    let truth_key = |v: &Value| {
        (
            v["vehicle"].as_str().unwrap().to_owned(),
            v["spn"].as_u64().unwrap() as u32,
            v["fmi"].as_u64().unwrap() as u8,
        )
    };
    let truth_recurring: BTreeSet<_> = truth["recurring"]
        .as_array()
        .unwrap()
        .iter()
        .map(truth_key)
        .collect();
    assert!(truth_recurring.len() >= 2);
    assert_eq!(recurring, truth_recurring);

    let repeat: BTreeSet<(String, u32, u8)> = repairs
        .iter()
        .filter(|(v, spn, fmi, at)| {
            got.started
                .get(&(v.clone(), *spn, *fmi))
                .is_some_and(|s| s.iter().any(|t| us(t) > *at && us(t) <= at + 30 * DAY_US))
        })
        .map(|(v, spn, fmi, _)| (v.clone(), *spn, *fmi))
        .collect();
    let truth_repeat: BTreeSet<_> = truth["repeat_repairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(truth_key)
        .collect();
    assert!(!truth_repeat.is_empty());
    assert_eq!(repeat, truth_repeat);
    // Some repairs are not followed by their fault.
    assert!(repairs.len() > repeat.len());

    let mut registered: BTreeMap<&str, usize> = BTreeMap::new();
    for m in model_of.values() {
        *registered.entry(m.as_str()).or_default() += 1;
    }
    let mut per_code: BTreeMap<(String, u32, u8), BTreeSet<String>> = BTreeMap::new();
    for ((v, spn, fmi), starts) in &got.started {
        let Some(model) = model_of.get(v) else {
            continue;
        };
        if starts.iter().any(&in_window) {
            per_code
                .entry((model.clone(), *spn, *fmi))
                .or_default()
                .insert(v.clone());
        }
    }
    let batch: Vec<(String, u32, u8, Vec<String>)> = per_code
        .into_iter()
        .filter(|((m, _, _), vs)| vs.len() >= 3 && vs.len() * 5 >= registered[m.as_str()])
        .map(|((m, spn, fmi), vs)| (m, spn, fmi, vs.into_iter().collect()))
        .collect();
    let truth_batch: Vec<(String, u32, u8, Vec<String>)> = truth["batch_defects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["model"].as_str().unwrap().to_owned(),
                b["spn"].as_u64().unwrap() as u32,
                b["fmi"].as_u64().unwrap() as u8,
                b["vehicles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(truth_batch.len(), 1);
    assert_eq!(batch, truth_batch);

    // Maintenance: due values follow from services.csv and the catalogue;
    // current values are what ingest stored (thinned to one per 10 minutes);
    // the statuses are a mix.
    let mut statuses = BTreeMap::new();
    for row in truth["maintenance"].as_array().unwrap() {
        let (v, task) = (
            row["vehicle"].as_str().unwrap(),
            row["task"].as_str().unwrap(),
        );
        let model = catalog.model(model_of[v].as_str()).unwrap();
        let t = model.task(task).unwrap();
        *statuses
            .entry(row["status"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
        for m in row["meters"].as_array().unwrap() {
            let name = m["meter"].as_str().unwrap();
            let interval = t
                .intervals
                .iter()
                .find(|i| i.meter.as_str() == name)
                .unwrap();
            if name == "days" {
                continue;
            }
            let idx = ["engine_hours", "pto_hours", "odometer_km"]
                .iter()
                .position(|n| *n == name)
                .unwrap();
            let base = last
                .get(&(v.to_owned(), task.to_owned()))
                .and_then(|l| l.1[idx])
                .unwrap_or(0.0);
            let due_at = m["due_at"].as_f64().unwrap();
            assert!((due_at - (base + interval.every)).abs() < 1e-6, "{row}");
            let current = m["current"].as_f64().unwrap();
            let stored = got.meters[&(v.to_owned(), name)];
            let lag = if name == "odometer_km" { 10.0 } else { 0.25 };
            assert!(
                current >= stored - 1e-9 && current - stored <= lag,
                "{v} {name}: {current} vs {stored}"
            );
            let remaining = due_at - current;
            let status = if remaining <= 0.0 {
                "overdue"
            } else if remaining <= interval.due_soon {
                "due_soon"
            } else {
                "ok"
            };
            assert_eq!(m["status"], status, "{row}");
            // The status holds for the stored (older) reading too.
            let remaining = due_at - stored;
            let status_stored = if remaining <= 0.0 {
                "overdue"
            } else if remaining <= interval.due_soon {
                "due_soon"
            } else {
                "ok"
            };
            assert_eq!(status_stored, status, "{row}");
        }
    }
    assert!(statuses["ok"] > statuses["due_soon"], "{statuses:?}");
    assert!(
        statuses["due_soon"] >= 3 && statuses["overdue"] >= 3,
        "{statuses:?}"
    );
}

#[test]
fn the_command_line_requires_out_and_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_fleetcare");
    let out = Command::new(exe)
        .args(["simulate", "--trucks", "3", "--days", "2", "--models"])
        .arg(models_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));
    let out = Command::new(exe)
        .args([
            "simulate",
            "--trucks",
            "3",
            "--days",
            "2",
            "--seed",
            "9",
            "--upload-every",
            "10m",
            "--models",
        ])
        .arg(models_dir())
        .arg("--out")
        .arg(dir.path().join("sub/rec.jsonl"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty());
    let line = stderr.lines().last().unwrap();
    assert!(
        line.starts_with("simulated 3 trucks for 2 days: "),
        "{line}"
    );
    assert!(line.contains(" garbage) in "), "{line}");
    for name in FILES {
        assert!(dir.path().join("sub").join(name).is_file(), "{name}");
    }
    let out = Command::new(exe)
        .args([
            "simulate",
            "--trucks",
            "3",
            "--days",
            "2",
            "--upload-every",
            "5s",
            "--out",
        ])
        .arg(dir.path().join("x.jsonl"))
        .args(["--models"])
        .arg(models_dir())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("between 30 s and 1 h"));
}
