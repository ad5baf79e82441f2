//! The time of a vehicle-archive request (`GET /api/v1/vehicles/{id}`)
//! while the store's write-ahead log holds many messages not yet
//! compacted, as it does between compactions of a running service
//! (issue 20, finding 7).
//!
//! A store is filled with `--messages` telemetry messages of `--vehicles`
//! trucks and left open for writing, uncompacted, as the writer thread
//! holds it; the API is served over a real socket and asked for one
//! truck's archive: once (the first request), `--requests` times with
//! nothing new, then `--requests` times with `--append` new messages
//! stored before each request (live ingest meanwhile).
//!
//! ```text
//! cargo run --example archive_bench -- [--messages 50000] [--requests 20] [--append 10]
//! ```

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use fleetcare::catalog::Catalog;
use fleetcare::config::Config;
use fleetcare::db::Db;
use fleetcare::http::api::{self, ApiState, Role};
use fleetcare::runtime::LiveMetrics;
use fleetcare::store::Store;
use fleetcare::tickets::Tickets;
use fleetcare_ingest::Timestamp;
use fleetcare_ingest::pipeline::Message;

#[derive(Debug, Parser)]
struct Args {
    /// Messages in the log before the first request.
    #[arg(long, default_value_t = 50_000)]
    messages: usize,
    /// Trucks sending them (each gets messages one minute apart).
    #[arg(long, default_value_t = 100)]
    vehicles: usize,
    /// Requests timed in each phase after the first.
    #[arg(long, default_value_t = 20)]
    requests: usize,
    /// Messages stored before each request of the last phase.
    #[arg(long, default_value_t = 10)]
    append: usize,
}

/// 2026-03-01T00:00:00Z.
const T0: i64 = 1_772_323_200;

/// Message `i` of the recording: truck `i % vehicles`, its `i / vehicles`th
/// minute; meters, and SPN 110 FMI 0 active every other half hour.
fn message(i: usize, vehicles: usize) -> (String, String) {
    let (truck, minute) = (i % vehicles, (i / vehicles) as i64);
    let ts = chrono::DateTime::from_timestamp(T0 + minute * 60, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ");
    let hours = 1000.0 + truck as f64 + minute as f64 / 60.0;
    let dtcs = if (minute / 30) % 2 == 1 {
        r#"{"spn": 110, "fmi": 0, "oc": 1}"#
    } else {
        ""
    };
    (
        format!("fleet/acme/TRK-{truck:03}/telemetry"),
        format!(
            r#"{{"ts": "{ts}", "engine_hours": {hours:.2}, "odometer_km": {km:.1}, "dtcs": [{dtcs}]}}"#,
            km = hours * 25.0
        ),
    )
}

fn ingest(store: &mut Store, range: std::ops::Range<usize>, vehicles: usize) -> anyhow::Result<()> {
    let owned: Vec<(String, String)> = range.clone().map(|i| message(i, vehicles)).collect();
    for (n, chunk) in owned.chunks(4096).enumerate() {
        let batch: Vec<Message<'_>> = chunk
            .iter()
            .enumerate()
            .map(|(k, (topic, payload))| Message {
                topic,
                payload: payload.as_bytes(),
                received: Timestamp::from_micros(
                    1_800_000_000_000_000 + (range.start + n * 4096 + k) as i64,
                ),
            })
            .collect();
        store.ingest(&batch, &mut Vec::new())?;
    }
    Ok(())
}

async fn register(db: &Db, config: &Config, dir: &Path, vehicles: usize) -> anyhow::Result<()> {
    let catalog = Catalog::load(&config.models_dir)?;
    let csv = dir.join("vehicles.csv");
    let mut rows = String::from("vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\n");
    for t in 0..vehicles {
        rows.push_str(&format!(
            "TRK-{t:03},acme,compactor-c12,,2024-01-01,north\n"
        ));
    }
    std::fs::write(&csv, rows)?;
    fleetcare::registry::import_vehicles(db, &catalog, &csv).await?;
    Ok(())
}

/// p50, mean and max of `times`, in milliseconds.
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / times.len().max(1) as f64;
    format!(
        "p50 {:.1} ms, mean {mean:.1} ms, max {:.1} ms",
        times.get(times.len() / 2).copied().map_or(0.0, ms),
        times.last().copied().map_or(0.0, ms),
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let config = Config {
        data_dir: dir.path().join("data"),
        models_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
        ..Config::default()
    };
    let mut store = Store::open(&config.data_dir, config.pipeline())?;
    store.set_compact_bytes(u64::MAX);
    let started = Instant::now();
    ingest(&mut store, 0..args.messages, args.vehicles)?;
    let log_bytes: u64 = std::fs::read_dir(config.data_dir.join("wal"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{} messages of {} trucks in the log ({:.1} MiB with its padding), stored in {:.1} s",
        args.messages,
        args.vehicles,
        log_bytes as f64 / f64::from(1 << 20),
        started.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (base, token, client) = rt.block_on(async {
        let db = Db::connect(&config).await?;
        register(&db, &config, dir.path(), args.vehicles).await?;
        let token = api::create_token(&db, Role::Admin, &[]).await?;
        let tickets = Tickets::new(db.clone(), config.sla.clone());
        let state = ApiState::new(
            db,
            tickets,
            config.clone(),
            Arc::new(LiveMetrics::default()),
        )?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(api::serve(listener, state, std::future::pending()));
        let client = fleetcare::runtime::tls::https_client()?;
        anyhow::Ok((base, token, client))
    })?;
    let url = format!("{base}/api/v1/vehicles/TRK-007");
    let request = || -> anyhow::Result<Duration> {
        let t = Instant::now();
        rt.block_on(async {
            let r = client.get(&url).bearer_auth(&token).send().await?;
            let status = r.status();
            let body = r.bytes().await?;
            anyhow::ensure!(status.is_success(), "HTTP {status}: {body:?}");
            anyhow::Ok(())
        })
        .context("the archive request failed")?;
        Ok(t.elapsed())
    };

    let first = request()?;
    println!(
        "GET /api/v1/vehicles/TRK-007, first request: {:.1} ms",
        first.as_secs_f64() * 1e3
    );
    let mut idle: Vec<Duration> = (0..args.requests)
        .map(|_| request())
        .collect::<anyhow::Result<_>>()?;
    println!(
        "{} requests, nothing new: {}",
        args.requests,
        summary(&mut idle)
    );
    let mut next = args.messages;
    let mut live = Vec::with_capacity(args.requests);
    for _ in 0..args.requests {
        ingest(&mut store, next..next + args.append, args.vehicles)?;
        next += args.append;
        live.push(request()?);
    }
    println!(
        "{} requests, {} messages stored before each: {}",
        args.requests,
        args.append,
        summary(&mut live)
    );
    Ok(())
}
