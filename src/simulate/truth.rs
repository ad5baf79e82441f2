//! The ground truth (`truth.json`): what the recording and the CSV files
//! must lead to at the as-of time, derived from what was really sent, and
//! checked against what was planted.
//!
//! The schema is documented in `docs/simulator.md`.

use std::collections::{BTreeMap, BTreeSet};

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::pipeline::DeadLetterReason;
use serde::Serialize;
use serde_json::{Value, json};

use super::SimulateError;
use super::drive::{Counts, Episode};
use super::duty::{Calendar, LOCAL_UTC_OFFSET_S, Meters};
use super::faults::{Expected, ModelCode, Repair, TruckCode};
use super::fleet::{Gateway, Odometer, Truck};
use super::gateway::{Garbage, Sent};
use super::services::{LastService, Performed, ServiceRow, Target, Work, round_to, task_due};
use crate::catalog::{IntervalMeter, TruckModel};
use crate::config::DetectConfig;
use crate::report::status::{IntervalDue, date_of_day_number, deciding};

/// Bumped when a field changes meaning or goes away.
pub(crate) const SCHEMA: u32 = 1;

const US_PER_DAY: i64 = 86_400_000_000;

fn ts(us: i64) -> String {
    Timestamp::from_micros(us).to_rfc3339()
}

/// Everything [`build`] needs.
#[derive(Debug)]
pub(crate) struct Inputs<'a> {
    pub(crate) cal: &'a Calendar,
    pub(crate) seed: u64,
    pub(crate) prefix: &'a str,
    pub(crate) recording: String,
    pub(crate) trucks: &'a [Truck],
    pub(crate) models: &'a [&'a TruckModel],
    pub(crate) rows: &'a [ServiceRow],
    pub(crate) targets: &'a [Target],
    pub(crate) repairs: &'a [Repair],
    pub(crate) expected: &'a Expected,
    pub(crate) episodes: &'a [Episode],
    pub(crate) counts: &'a Counts,
    pub(crate) sent: &'a [Option<Sent>],
    /// Mean usage per day over the last 30 days, per truck.
    pub(crate) per_day: &'a [Meters],
    pub(crate) lines: u64,
    pub(crate) bytes: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Truth {
    schema: u32,
    generator: Value,
    as_of: String,
    files: Value,
    thresholds: Value,
    vehicles: Vec<Value>,
    maintenance: Vec<Value>,
    recurring: Vec<Value>,
    repeat_repairs: Vec<Value>,
    batch_defects: Vec<Value>,
    critical: Vec<Value>,
    episodes: Vec<Value>,
    messages: Value,
}

fn meters_json(m: &Meters) -> Value {
    json!({
        "engine_hours": round_to(m.engine_h, 3),
        "pto_hours": round_to(m.pto_h, 3),
        "odometer_km": round_to(m.km, 3),
    })
}

/// A meter's or a day count's value in the truth: numbers for meters,
/// dates for days.
fn value(meter: IntervalMeter, v: f64) -> Value {
    match meter {
        IntervalMeter::Days => date_of_day_number(v).map_or(Value::Null, |d| json!(d.to_string())),
        _ => json!(round_to(v, 3)),
    }
}

fn registry_model<'m>(t: &Truck, models: &[&'m TruckModel]) -> Option<&'m TruckModel> {
    models.get(t.model).copied().filter(|_| t.registered)
}

/// Builds the truth and checks it against the planted scenarios.
pub(crate) fn build(i: &Inputs<'_>) -> Result<Truth, SimulateError> {
    let detect = DetectConfig::default();
    let cal = i.cal;
    let as_of = cal.as_of_us();
    let by_truck = |e: &Episode| i.trucks.get(e.truck);
    let window = |days: u32, us: i64| us > as_of - i64::from(days) * US_PER_DAY && us <= as_of;

    // Episodes per (truck, code), in time order.
    let mut groups: BTreeMap<(String, u32, u8), Vec<&Episode>> = BTreeMap::new();
    for e in i.episodes {
        let Some(t) = by_truck(e) else { continue };
        groups
            .entry((t.id.to_string(), e.spn.raw(), e.fmi.raw()))
            .or_default()
            .push(e);
    }
    for g in groups.values_mut() {
        g.sort_by_key(|e| e.started_us);
    }

    let mut recurring = Vec::new();
    let mut recurring_keys: BTreeSet<TruckCode> = BTreeSet::new();
    for g in groups.values() {
        let Some(first) = g.first() else { continue };
        let Some(t) = by_truck(first) else { continue };
        let recent: Vec<&&Episode> = g
            .iter()
            .filter(|e| window(detect.recurring_window_days, e.started_us))
            .collect();
        if recent.len() as u32 >= detect.recurring_min_episodes {
            recurring_keys.insert((t.index, first.spn, first.fmi));
            recurring.push(json!({
                "fleet": t.fleet, "vehicle": t.id,
                "model": registry_model(t, i.models).map(|m| m.id.as_str()),
                "spn": first.spn.raw(), "fmi": first.fmi.raw(),
                "episodes": recent.len(),
                "first_seen": recent.first().map(|e| ts(e.started_us)),
                "last_seen": recent.last().map(|e| ts(e.started_us)),
            }));
        }
    }

    let mut repeat_repairs = Vec::new();
    let mut repeat_keys: BTreeSet<TruckCode> = BTreeSet::new();
    let mut repairs: Vec<&Repair> = i.repairs.iter().collect();
    repairs.sort_by_key(|r| {
        (
            i.trucks.get(r.truck).map(|t| t.id.to_string()),
            r.at_us(cal),
        )
    });
    for r in repairs {
        let Some(t) = i.trucks.get(r.truck) else {
            continue;
        };
        let at = r.at_us(cal);
        let limit = at + i64::from(detect.repeat_repair_days) * US_PER_DAY;
        let back: Vec<String> = groups
            .get(&(t.id.to_string(), r.spn.raw(), r.fmi.raw()))
            .into_iter()
            .flatten()
            .filter(|e| e.started_us > at && e.started_us <= limit)
            .map(|e| ts(e.started_us))
            .collect();
        if !back.is_empty() {
            repeat_keys.insert((t.index, r.spn, r.fmi));
            repeat_repairs.push(json!({
                "fleet": t.fleet, "vehicle": t.id,
                "model": registry_model(t, i.models).map(|m| m.id.as_str()),
                "spn": r.spn.raw(), "fmi": r.fmi.raw(),
                "repaired_at": ts(at),
                "episodes_after": back,
            }));
        }
    }

    let mut registered = vec![0usize; i.models.len()];
    for t in i.trucks.iter().filter(|t| t.registered) {
        if let Some(n) = registered.get_mut(t.model) {
            *n += 1;
        }
    }
    let mut per_code: BTreeMap<ModelCode, Vec<&Episode>> = BTreeMap::new();
    for e in i.episodes {
        let Some(t) = by_truck(e).filter(|t| t.registered) else {
            continue;
        };
        if window(detect.batch_window_days, e.started_us) {
            per_code.entry((t.model, e.spn, e.fmi)).or_default().push(e);
        }
    }
    let mut batch_defects = Vec::new();
    let mut batch_found: Vec<(ModelCode, BTreeSet<usize>)> = Vec::new();
    for (&(model, spn, fmi), eps) in &per_code {
        let trucks: BTreeSet<usize> = eps.iter().map(|e| e.truck).collect();
        let n = registered.get(model).copied().unwrap_or(0);
        let share = trucks.len() as f64 / n.max(1) as f64;
        if trucks.len() as u32 >= detect.batch_min_vehicles
            && share >= detect.batch_min_share - 1e-9
        {
            let mut vehicles: Vec<String> = trucks
                .iter()
                .filter_map(|&t| i.trucks.get(t).map(|t| t.id.to_string()))
                .collect();
            vehicles.sort();
            let starts: Vec<i64> = eps.iter().map(|e| e.started_us).collect();
            batch_defects.push(json!({
                "model": i.models.get(model).map(|m| m.id.as_str()),
                "spn": spn.raw(), "fmi": fmi.raw(),
                "vehicles": vehicles,
                "registered_vehicles": n,
                "episodes": eps.len(),
                "first_seen": starts.iter().min().map(|&s| ts(s)),
                "last_seen": starts.iter().max().map(|&s| ts(s)),
            }));
            batch_found.push(((model, spn, fmi), trucks));
        }
    }

    check(i.expected, &recurring_keys, &repeat_keys, &batch_found)?;

    let critical: Vec<Value> = i
        .episodes
        .iter()
        .filter(|e| e.severity == crate::catalog::Severity::Critical)
        .filter_map(|e| {
            let t = by_truck(e)?;
            Some(json!({
                "fleet": t.fleet, "vehicle": t.id,
                "model": registry_model(t, i.models).map(|m| m.id.as_str()),
                "spn": e.spn.raw(), "fmi": e.fmi.raw(), "sa": e.sa.0,
                "started": ts(e.started_us), "ended": e.ended_us.map(ts),
                "red_stop": true,
            }))
        })
        .collect();

    let episodes: Vec<Value> = groups
        .values()
        .filter_map(|g| {
            let first = g.first()?;
            let t = by_truck(first)?;
            Some(json!({
                "fleet": t.fleet, "vehicle": t.id,
                "model": registry_model(t, i.models).map(|m| m.id.as_str()),
                "spn": first.spn.raw(), "fmi": first.fmi.raw(),
                "sa": first.sa.0,
                "severity": first.severity.as_str(),
                "scenario": first.scenario.as_str(),
                "episodes": g.iter().map(|e| json!({
                    "started": ts(e.started_us),
                    "ended": e.ended_us.map(ts),
                })).collect::<Vec<_>>(),
            }))
        })
        .collect();

    let mut garbage = BTreeMap::new();
    let mut dead = BTreeMap::new();
    for kind in Garbage::ALL {
        let n = i.counts.garbage.get(&kind).copied().unwrap_or(0);
        garbage.insert(kind.as_str(), n);
        *dead.entry(kind.reason().as_str()).or_insert(0u64) += n;
    }
    for reason in DeadLetterReason::ALL {
        dead.entry(reason.as_str()).or_insert(0);
    }
    let messages = json!({
        "valid": i.counts.valid,
        "duplicates": i.counts.duplicates,
        "out_of_order": i.counts.out_of_order,
        "split_bam": i.counts.split_bam,
        "garbage": garbage,
        "lines": i.lines,
        "bytes": i.bytes,
        "expected_dead_letters": dead,
    });

    Ok(Truth {
        schema: SCHEMA,
        generator: json!({
            "seed": i.seed,
            "trucks": i.trucks.len(),
            "days": cal.days,
            "start": cal.start.to_string(),
            "upload_every_s": cal.upload_every_s,
            "topic_prefix": i.prefix,
            "local_utc_offset_hours": LOCAL_UTC_OFFSET_S / 3600,
        }),
        as_of: ts(as_of),
        files: json!({
            "recording": i.recording,
            "vehicles": super::output::VEHICLES_FILE,
            "services": super::output::SERVICES_FILE,
        }),
        thresholds: json!({
            "recurring_min_episodes": detect.recurring_min_episodes,
            "recurring_window_days": detect.recurring_window_days,
            "repeat_repair_days": detect.repeat_repair_days,
            "batch_min_vehicles": detect.batch_min_vehicles,
            "batch_min_share": detect.batch_min_share,
            "batch_window_days": detect.batch_window_days,
        }),
        vehicles: vehicles(i),
        maintenance: maintenance(i),
        recurring,
        repeat_repairs,
        batch_defects,
        critical,
        episodes,
        messages,
    })
}

fn check(
    expected: &Expected,
    recurring: &BTreeSet<TruckCode>,
    repeat: &BTreeSet<TruckCode>,
    batch: &[(ModelCode, BTreeSet<usize>)],
) -> Result<(), SimulateError> {
    let mismatch = |what: &str, want: String, got: String| {
        Err(SimulateError::TruthMismatch(format!(
            "{what}: planted {want}, found {got}"
        )))
    };
    if &expected.recurring != recurring {
        return mismatch(
            "recurring failures",
            format!("{:?}", expected.recurring),
            format!("{recurring:?}"),
        );
    }
    if &expected.repeat_repairs != repeat {
        return mismatch(
            "repeat repairs",
            format!("{:?}", expected.repeat_repairs),
            format!("{repeat:?}"),
        );
    }
    let want: Vec<_> = expected.batch.iter().cloned().collect();
    if want.as_slice() != batch {
        return mismatch("batch defects", format!("{want:?}"), format!("{batch:?}"));
    }
    Ok(())
}

fn vehicles(i: &Inputs<'_>) -> Vec<Value> {
    let mut out: Vec<(String, Value)> = i
        .trucks
        .iter()
        .map(|t| {
            let (gateway, pgns): (&str, &[u32]) = match t.gateway {
                Gateway::Telemetry => ("telemetry", &[]),
                Gateway::Can(Odometer::Standard) => ("can", &[65248]),
                Gateway::Can(Odometer::HighResolution) => ("can", &[65217]),
                Gateway::Can(Odometer::Both) => ("can", &[65248, 65217]),
            };
            let v = json!({
                "vehicle": t.id, "fleet": t.fleet,
                "model": t.model_id, "depot": t.depot,
                "registered": t.registered,
                "gateway": gateway, "odometer_pgns": pgns,
                "commissioned_on": t.commissioned.to_string(),
                "meters_at_start": meters_json(&t.start_meters),
                "meters_at_end": i.sent.get(t.index).copied().flatten().map(|m| meters_json(&m)),
            });
            (t.id.to_string(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, v)| v).collect()
}

fn maintenance(i: &Inputs<'_>) -> Vec<Value> {
    let cal = i.cal;
    let as_of = cal.as_of_date();
    let mut out: Vec<(String, String, Value)> = Vec::new();
    for t in i.trucks.iter().filter(|t| t.registered) {
        let Some(model) = i.models.get(t.model) else {
            continue;
        };
        let sent = i.sent.get(t.index).copied().flatten();
        let per_day = i.per_day.get(t.index).copied().unwrap_or_default();
        for task in &model.maintenance {
            let last = i
                .rows
                .iter()
                .filter(|r| {
                    r.truck == t.index && matches!(&r.work, Work::Task(id) if *id == task.id)
                })
                .filter_map(|r| match r.performed {
                    Performed::Date(date) => Some(LastService {
                        date,
                        meters: Meters {
                            engine_h: r.engine_h.unwrap_or(0.0),
                            pto_h: r.pto_h.unwrap_or(0.0),
                            km: r.km.unwrap_or(0.0),
                        },
                    }),
                    Performed::Time(_) => None,
                })
                .max_by_key(|l| l.date);
            let mut intervals = task_due(
                task,
                last,
                t.commissioned,
                &sent.unwrap_or_default(),
                as_of,
                &per_day,
            );
            // A truck that never sent a reading has no meter to judge.
            if sent.is_none() {
                intervals.retain(|d| d.meter == IntervalMeter::Days);
            }
            let planned = i
                .targets
                .iter()
                .find(|p| p.truck == t.index && p.task == task.id)
                .map(|p| p.status.as_str());
            let meters: Vec<Value> = intervals.iter().map(interval_json).collect();
            let row = match deciding(&intervals) {
                Some(d) => {
                    let forecast = d.forecast_date(as_of);
                    json!({
                        "fleet": t.fleet, "vehicle": t.id, "model": model.id, "task": task.id,
                        "status": d.status.as_str(),
                        "meter": d.meter.as_str(),
                        "current": value(d.meter, d.current),
                        "due_at": value(d.meter, d.due_at),
                        "remaining": round_to(d.remaining, 3),
                        "usage_per_day": d.per_day.map(|u| round_to(u, 3)),
                        "forecast_due_on": forecast.map(|f| f.to_string()),
                        "last_service": last.map(|l| l.date.to_string()),
                        "planned": planned,
                        "meters": meters,
                    })
                }
                None => json!({
                    "fleet": t.fleet, "vehicle": t.id, "model": model.id, "task": task.id,
                    "status": "no_data", "meter": null, "planned": planned, "meters": meters,
                }),
            };
            out.push((t.id.to_string(), task.id.to_string(), row));
        }
    }
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out.into_iter().map(|(_, _, v)| v).collect()
}

fn interval_json(d: &IntervalDue) -> Value {
    json!({
        "meter": d.meter.as_str(),
        "status": d.status.as_str(),
        "current": value(d.meter, d.current),
        "due_at": value(d.meter, d.due_at),
        "remaining": round_to(d.remaining, 3),
        "every": d.every,
        "due_soon_window": d.window,
    })
}
