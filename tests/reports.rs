//! Issue 5 end to end: `fleetcare simulate` → `replay` → `vehicles` and
//! `services import` → `report …`, compared with the simulator's planted
//! ground truth (truth.json): every planted maintenance status, recurring
//! failure, repeat repair and batch defect is reported, and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// How far the report's usage per day (and so its forecasts) may be from
/// the truth's: the two windows are aligned to different midnights.
const TOLERANCE: f64 = 0.08;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], data: &Path, config: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_fleetcare"))
        .arg("--data")
        .arg(data)
        .arg("--models")
        .arg(repo().join("models"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fleetcare {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: &Output) -> Vec<Value> {
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn s(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} of {v}"))
}

fn days_between(a: &str, b: &str) -> i64 {
    let d = |t: &str| chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").unwrap();
    (d(b) - d(a)).num_days()
}

struct Fleet {
    _dir: tempfile::TempDir,
    data: PathBuf,
    config: PathBuf,
    truth: Value,
}

/// 40 trucks for 60 days, replayed and imported. Usage is measured over 30
/// days, as the truth's `usage_per_day` is.
fn fleet() -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let data = dir.path().join("data");
    let config = dir.path().join("fleetcare.toml");
    std::fs::write(&config, "[detect]\nusage_window_days = 30\n").unwrap();
    let rec = sim.join("rec.jsonl");
    let rec = rec.to_str().unwrap();
    let args = [
        "simulate", "--trucks", "40", "--days", "60", "--seed", "11", "--out", rec,
    ];
    run(&args, &data, &config);
    run(&["replay", rec], &data, &config);
    for (what, file) in [("vehicles", "vehicles.csv"), ("services", "services.csv")] {
        run(
            &[what, "import", sim.join(file).to_str().unwrap()],
            &data,
            &config,
        );
    }
    let truth =
        serde_json::from_str(&std::fs::read_to_string(sim.join("truth.json")).unwrap()).unwrap();
    Fleet {
        _dir: dir,
        data,
        config,
        truth,
    }
}

impl Fleet {
    fn report(&self, args: &[&str]) -> Vec<Value> {
        let as_of = self.truth["as_of"].as_str().unwrap();
        let mut all = vec!["report"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--as-of", as_of, "--format", "json"]);
        json(&run(&all, &self.data, &self.config))
    }
}

#[test]
fn reports_find_the_planted_truth() {
    let fleet = fleet();
    let truth = &fleet.truth;

    // Maintenance: every task the truth can judge, with its status, meter
    // and due point; current and usage as a store thinned to one reading
    // per 10 minutes sees them.
    let want: BTreeMap<(String, String), &Value> = truth["maintenance"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] != "no_data")
        .map(|m| ((s(m, "vehicle"), s(m, "task")), m))
        .collect();
    let all = fleet.report(&["due", "--all"]);
    let got: BTreeMap<(String, String), &Value> = all
        .iter()
        .map(|r| ((s(r, "vehicle"), s(r, "task")), r))
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    let mut forecasts = 0;
    let mut near_ties = 0;
    for (key, t) in &want {
        let r = got[key];
        for field in ["fleet", "model", "status"] {
            assert_eq!(s(r, field), s(t, field), "{key:?} {field}: {r} vs {t}");
        }
        if r["meter"] != t["meter"] {
            // Two intervals falling due within a day or so of each other:
            // which is first depends on the usage estimate. Only then.
            let days = days_between(&s(truth, "as_of")[..10], &s(t, "forecast_due_on"));
            let off = days_between(&s(t, "forecast_due_on"), &s(r, "forecast_due_on")).abs();
            assert!(
                off as f64 <= 1.0 + TOLERANCE * days.abs() as f64,
                "{key:?}: {r} vs {t}"
            );
            near_ties += 1;
            continue;
        }
        if t["meter"] == "days" {
            for field in ["current", "due_at", "forecast_due_on"] {
                assert_eq!(s(r, field), s(t, field), "{key:?} {field}");
            }
            assert_eq!(f(r, "remaining"), f(t, "remaining"), "{key:?}");
            continue;
        }
        assert!(
            (f(r, "due_at") - f(t, "due_at")).abs() < 1e-6,
            "{key:?}: {r} vs {t}"
        );
        let unit = if t["meter"] == "odometer_km" {
            6.0
        } else {
            0.25
        };
        assert!(
            (f(r, "current") - f(t, "current")).abs() <= unit,
            "{key:?}: {r} vs {t}"
        );
        // The truth's 30 days start at local (UTC+8) midnight, the
        // report's at UTC midnight: up to one morning shift apart, a few
        // per cent of a month's use.
        let (u, tu) = (f(r, "usage_per_day"), f(t, "usage_per_day"));
        assert!(
            (u - tu).abs() <= TOLERANCE * tu + 0.01,
            "{key:?} usage: {r} vs {t}"
        );
        let days = f(t, "remaining") / tu;
        let off = days_between(&s(t, "forecast_due_on"), &s(r, "forecast_due_on")).abs();
        assert!(
            off as f64 <= 1.0 + TOLERANCE * days.abs(),
            "{key:?} forecast: {r} vs {t}"
        );
        forecasts += 1;
    }
    assert!(forecasts > 100, "only {forecasts} meter forecasts compared");
    assert!(near_ties <= 5, "{near_ties} deciding meters differ");
    // The invoice line (--next): every judged task, due where --all's
    // deciding meter says, and expected no later than that meter's date.
    let next_rows = fleet.report(&["due", "--next"]);
    let next: BTreeMap<(String, String), &Value> = next_rows
        .iter()
        .map(|r| ((s(r, "vehicle"), s(r, "task")), r))
        .collect();
    for (key, r) in &got {
        let n = next
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} has no --next row"));
        let meter = s(r, "meter");
        if meter == "days" {
            assert_eq!(s(n, "due_on"), s(r, "due_at"), "{key:?}: {n} vs {r}");
        } else {
            assert!(
                (f(n, &meter) - f(r, "due_at")).abs() < 1e-6,
                "{key:?}: {n} vs {r}"
            );
        }
        if !r["forecast_due_on"].is_null() {
            assert!(
                s(n, "expected_on") <= s(r, "forecast_due_on"),
                "{key:?}: {n} vs {r}"
            );
        }
    }
    // Without --all: exactly the planted due-soon and overdue tasks.
    let due: BTreeSet<(String, String, String)> = fleet
        .report(&["due"])
        .iter()
        .map(|r| (s(r, "vehicle"), s(r, "task"), s(r, "status")))
        .collect();
    let planted: BTreeSet<(String, String, String)> = want
        .iter()
        .filter(|(_, t)| t["status"] != "ok")
        .map(|((v, task), t)| (v.clone(), task.clone(), s(t, "status")))
        .collect();
    assert!(planted.iter().any(|p| p.2 == "overdue"));
    assert!(planted.iter().any(|p| p.2 == "due_soon"));
    assert_eq!(due, planted);

    // Recurring failures, repeat repairs and batch defects: the same set,
    // with the same counts and times.
    let rows = fleet.report(&["recurring"]);
    let key = |v: &Value, episodes: String| {
        (
            s(v, "vehicle"),
            s(v, "model"),
            s(v, "spn"),
            s(v, "fmi"),
            episodes,
            s(v, "first_seen"),
            s(v, "last_seen"),
        )
    };
    let of_kind = |kind: &str| -> BTreeSet<_> {
        rows.iter()
            .filter(|r| r["kind"] == kind)
            .map(|r| key(r, s(r, "episodes")))
            .collect()
    };
    let recurring: BTreeSet<_> = truth["recurring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| key(t, s(t, "episodes")))
        .collect();
    assert!(!recurring.is_empty());
    assert_eq!(of_kind("recurring"), recurring);
    let repeats: BTreeSet<_> = truth["repeat_repairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let after = t["episodes_after"].as_array().unwrap();
            let mut t = t.clone();
            t["first_seen"] = after[0].clone();
            t["last_seen"] = after[after.len() - 1].clone();
            key(&t, after.len().to_string())
        })
        .collect();
    assert!(!repeats.is_empty());
    assert_eq!(of_kind("repeat_repair"), repeats);
    let batch: BTreeSet<_> = truth["batch_defects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t["vehicle"] = Value::Null;
            key(&t, s(&t, "episodes"))
        })
        .collect();
    assert_eq!(batch.len(), 1);
    assert_eq!(of_kind("batch_defect"), batch);
    let batch_vehicles: Vec<u64> = rows
        .iter()
        .filter(|r| r["kind"] == "batch_defect")
        .map(|r| r["vehicles"].as_u64().unwrap())
        .collect();
    let planted_vehicles = truth["batch_defects"][0]["vehicles"]
        .as_array()
        .unwrap()
        .len() as u64;
    assert_eq!(batch_vehicles, vec![planted_vehicles]);
    assert_eq!(rows.len(), recurring.len() + repeats.len() + batch.len());

    // Trends: 12 weeks cover the whole run, so every episode start of a
    // registered truck is counted once.
    let registered: BTreeSet<String> = truth["vehicles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["registered"] == true)
        .map(|v| s(v, "vehicle"))
        .collect();
    let starts: u64 = truth["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| registered.contains(&s(e, "vehicle")))
        .map(|e| e["episodes"].as_array().unwrap().len() as u64)
        .sum();
    let trends = fleet.report(&["trends"]);
    let counted: u64 = trends.iter().map(|r| r["episodes"].as_u64().unwrap()).sum();
    assert_eq!(counted, starts);
    assert!(
        trends
            .iter()
            .all(|r| r["per_1000_engine_hours"].as_f64().unwrap() > 0.0)
    );

    // Parts: the C6 fields, and totals that add up.
    let parts = fleet.report(&["parts", "--weeks", "4"]);
    assert!(!parts.is_empty());
    for p in &parts {
        let fields: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            fields.into_iter().collect::<BTreeSet<_>>(),
            BTreeSet::from([
                "part",
                "week",
                "planned_qty",
                "corrective_qty",
                "total_qty",
                "on_hand",
                "shortfall"
            ])
        );
        let sum = f(p, "planned_qty") + f(p, "corrective_qty");
        assert!((sum - f(p, "total_qty")).abs() < 0.011, "{p}");
        assert!(p["on_hand"].is_null(), "no stock imported: {p}");
    }
    assert!(parts.iter().any(|p| f(p, "planned_qty") > 0.0));
    assert!(parts.iter().any(|p| f(p, "corrective_qty") > 0.0));
}
