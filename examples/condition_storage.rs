//! Bytes per truck-day of the condition signals (issue 23): a simulated
//! fleet's signals sent as telemetry `signals` every 10 minutes of every
//! working hour (the model's catalogued signals plus engine load, engine
//! speed and ambient temperature), through the store's ingest path into a
//! fresh store, compacted; prints what the `signal_windows` table takes
//! per truck-day, to add to the store's figure without signals
//! (docs/benchmarks.md). Then times `report condition` over that store
//! (as of the day after the last) and prints its findings.
//!
//! `cargo run --example condition_storage [TRUCKS] [DAYS]` (200 × 30).

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::Path;

use fleetcare::catalog::Catalog;
use fleetcare::registry::{Depot, Vehicle};
use fleetcare::report::{Context, Registry};
use fleetcare::simulate::condition::{ConditionOptions, simulate};
use fleetcare::store::Store;
use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::SignalName;
use fleetcare_ingest::pipeline::{Message, PipelineConfig};
use fleetcare_ingest::telemetry::Telemetry;

fn dir_bytes(p: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                dir_bytes(&path)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let trucks: u32 = args.next().map_or(Ok(200), |a| a.parse())?;
    let days: u32 = args.next().map_or(Ok(30), |a| a.parse())?;
    let catalog = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))?;
    let models: Vec<_> = catalog.models().collect();
    let fleet = simulate(
        &ConditionOptions {
            trucks,
            days,
            seed: 1,
        },
        &models,
    );
    // Per truck and hour: every signal's window.
    type Hour = Vec<(String, f64, f64, f64, f64, f64)>;
    let mut hours: BTreeMap<(usize, i64), Hour> = BTreeMap::new();
    for s in &fleet.series {
        for w in &s.windows {
            let sd = if w.count > 1 {
                (w.m2 / f64::from(w.count - 1)).sqrt()
            } else {
                0.0
            };
            hours.entry((s.truck, w.start_us)).or_default().push((
                s.signal.clone(),
                w.mean,
                sd,
                w.load_pct.unwrap_or(50.0),
                w.speed_rpm.unwrap_or(1500.0),
                w.ambient_c.unwrap_or(15.0),
            ));
        }
    }
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(dir.path(), PipelineConfig::default())?;
    let mut messages: Vec<(String, String, Timestamp)> = Vec::new();
    let mut records = Vec::new();
    let mut sent = 0u64;
    let mut flush =
        |store: &mut Store, batch: &mut Vec<(String, String, Timestamp)>| -> anyhow::Result<()> {
            let msgs: Vec<Message<'_>> = batch
                .iter()
                .map(|(topic, payload, ts)| Message {
                    topic,
                    payload: payload.as_bytes(),
                    received: *ts,
                })
                .collect();
            records.clear();
            store.ingest(&msgs, &mut records)?;
            batch.clear();
            Ok(())
        };
    for ((truck, start), signals) in &hours {
        for k in 0..6i64 {
            let ts = Timestamp::from_micros(start + k * 600_000_000 + 17_000_000);
            // A deterministic spread of samples around the window's mean.
            let wobble = [(-1.2), 0.4, 0.9, -0.3, 1.1, -0.9][k as usize];
            let (load, speed, ambient) = signals
                .first()
                .map_or((50.0, 1500.0, 15.0), |s| (s.3, s.4, s.5));
            let mut list: Vec<(SignalName, f64)> = signals
                .iter()
                .filter_map(|(name, mean, sd, ..)| {
                    SignalName::new(name).map(|n| (n, ((mean + wobble * sd) * 10.0).round() / 10.0))
                })
                .collect();
            for (name, v) in [
                ("engine_load_pct", (load + 3.0 * wobble).round()),
                ("engine_speed_rpm", (speed + 40.0 * wobble).round()),
                ("ambient_temp_c", (ambient * 10.0).round() / 10.0),
            ] {
                if let Some(n) = SignalName::new(name) {
                    list.push((n, v));
                }
            }
            let t = Telemetry {
                ts,
                engine_hours: None,
                pto_hours: None,
                odometer_km: None,
                dtcs: None,
                lamps: None,
                signals: list,
            };
            messages.push((
                format!("fleet/acme/TRK-{truck:04}/telemetry"),
                t.to_json(),
                ts,
            ));
            sent += 1;
            if messages.len() >= 2_000 {
                flush(&mut store, &mut messages)?;
            }
        }
    }
    flush(&mut store, &mut messages)?;
    store.compact()?;
    let windows = dir_bytes(&dir.path().join("signal_windows"));
    let truck_days = f64::from(trucks) * f64::from(days);
    println!(
        "{trucks} trucks × {days} days: {sent} telemetry messages with signals; signal_windows {windows} bytes = {:.0} bytes per truck-day",
        windows as f64 / truck_days
    );
    // The registry: every truck with its simulated model.
    let model_ids: Vec<_> = models
        .iter()
        .filter(|m| !m.conditions.is_empty())
        .map(|m| m.id.clone())
        .collect();
    let vehicles = (0..trucks as usize)
        .filter_map(|t| {
            let model = model_ids.get(fleet.model_of.get(t).copied()?)?.clone();
            Some(Vehicle {
                id: VehicleId::new(&format!("TRK-{t:04}")).ok()?,
                fleet: FleetId::new("acme").ok()?,
                model,
                vin: None,
                commissioned_on: chrono::NaiveDate::from_ymd_opt(2025, 1, 1)?,
                depot: Depot::new("north").ok()?,
            })
        })
        .collect();
    let registry = Registry {
        vehicles,
        ..Registry::default()
    };
    let detect = fleetcare::config::DetectConfig::default();
    let as_of = chrono::DateTime::from_timestamp(
        (fleetcare::simulate::condition::ConditionFleet::epoch_day(i64::from(days)) + 1) * 86_400,
        0,
    )
    .unwrap_or_default();
    let ctx = Context {
        catalog: &catalog,
        registry: &registry,
        detect: &detect,
        as_of,
    };
    let snapshot = store.snapshot()?;
    let started = std::time::Instant::now();
    let rows = fleetcare::report::condition::condition(&snapshot, &ctx)?;
    println!(
        "report condition: {} findings in {:.2} s ({} planted degradations, {} ended with their fault code by then)",
        rows.len(),
        started.elapsed().as_secs_f64(),
        fleet.degradations.len(),
        fleet
            .degradations
            .iter()
            .filter(|d| d.fault_day < i64::from(days))
            .count(),
    );
    store.close()?;
    Ok(())
}
