//! Figures for the InfluxDB sink (issue 7), printed as one line each:
//!
//! - `encode`: records → line protocol with the sink's encoder, as its
//!   task does it (lines/s, MB/s), over the records of that recording
//!   (meters, lamp changes, fault starts and ends);
//! - `writer path`: the writer's work per batch of 4096 messages
//!   (`Store::ingest`: log, sync, pipeline) with and without the sink's
//!   record sink (the real one, its task on the other core), over a
//!   synthetic recording of DM1s and engine hours: the sink's overhead on
//!   the ingest path (the same path `fleetcare replay` takes);
//! - `meter lines`: fleetcare's encoder against `influxdb2`'s `DataPoint`.
//!
//! `cargo run --release --example influx_bench -- --vehicles 200 --minutes 600`

#![allow(clippy::print_stdout)]

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use clap::Parser;
use fleetcare::catalog::ModelId;
use fleetcare::registry::ModelMap;
use fleetcare::sink::line::LineBuf;
use fleetcare::sink::{Encoder, InfluxSink, Settings};
use fleetcare::store::Store;
use fleetcare_ingest::Timestamp;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::pipeline::{Message, PipelineConfig, Record, VehicleKey};
use influxdb2::models::{DataPoint, WriteDataPoint};

#[derive(Debug, Parser)]
struct Args {
    /// Trucks in the synthetic fleet.
    #[arg(long, default_value_t = 200)]
    vehicles: usize,
    /// Minutes of recording (one message per truck and minute).
    #[arg(long, default_value_t = 600)]
    minutes: usize,
    /// `[ingest] meter_store_every` in seconds: 0 stores (and sinks) every
    /// reading, the worst case; fleetcare's default is 600.
    #[arg(long, default_value_t = 0)]
    meter_store_every_s: i64,
    /// Runs of each mode; the fastest counts.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

fn key(i: usize) -> VehicleKey {
    VehicleKey {
        fleet: FleetId::new("acme").unwrap_or_else(|e| panic!("{e}")),
        vehicle: VehicleId::new(&format!("TRK-{i:04}")).unwrap_or_else(|e| panic!("{e}")),
    }
}

fn models(vehicles: usize) -> Arc<RwLock<ModelMap>> {
    let model = ModelId::new("compactor-c12").unwrap_or_else(|e| panic!("{e}"));
    Arc::new(RwLock::new(
        (0..vehicles).map(|i| (key(i), model.clone())).collect(),
    ))
}

/// Message `minute` of truck `truck`: a DM1 whose fault comes and goes
/// every 25 minutes (as in tests/crash.rs) and engine hours.
fn payload(t0: i64, truck: usize, minute: usize) -> String {
    let ts = t0 + (minute * 60) as i64 + truck as i64;
    let dm1 = if (minute / 25 + truck).is_multiple_of(2) {
        "10FF6E000001FFFF"
    } else {
        "00FF00000000FFFF"
    };
    // 0.05 h every 4 minutes: under the 1 h/h plausibility limit.
    let h = (40_000 + minute as u32 / 4).to_le_bytes();
    format!(
        "({ts}.000000) can0 18FECA00#{dm1}\n({ts}.500000) can0 18FEE500#{:02X}{:02X}{:02X}{:02X}FFFFFFFF\n",
        h[0], h[1], h[2], h[3]
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let t0 = 1_772_323_200i64;
    let messages: Vec<(String, String)> = (0..args.minutes)
        .flat_map(|m| {
            (0..args.vehicles)
                .map(move |v| (format!("fleet/acme/TRK-{v:04}/can"), payload(t0, v, m)))
        })
        .collect();
    let encoder = Encoder::new(models(args.vehicles));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;

    // The writer's path over fresh stores, alternately without and with
    // the sink's record sink (the real one, whose task runs on the other
    // core; the server is unreachable, so it spools).
    let mut lines_total = 0usize;
    let mut all_records: Vec<Record> = Vec::new();
    let mut times = [Duration::MAX; 2];
    // Time spent in the record sink itself, on the writer thread.
    let mut in_sink = Duration::MAX;
    let modes = (0..args.runs.max(1)).flat_map(|_| [false, true].into_iter().enumerate());
    for (mode, with_sink) in modes {
        let dir = tempfile::tempdir()?;
        let config = PipelineConfig {
            meters: fleetcare_ingest::pipeline::meter_track::MeterLimits {
                store_every: fleetcare_ingest::Duration::from_micros(
                    args.meter_store_every_s * 1_000_000,
                ),
                ..Default::default()
            },
            ..PipelineConfig::default()
        };
        let mut store = Store::open(&dir.path().join("store"), config)?;
        let sink = if with_sink {
            let _runtime = runtime.enter();
            let settings = Settings {
                url: "http://127.0.0.1:9".into(),
                org: "o".into(),
                bucket: "b".into(),
                token: String::new(),
                batch_lines: 5000,
                flush_interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                max_retry_delay: Duration::from_secs(60),
                buffer_dir: dir.path().join("spool"),
                max_buffer_bytes: 1 << 30,
            };
            let metrics = std::sync::Arc::new(fleetcare::runtime::LiveMetrics::default());
            let (sink, task) = InfluxSink::start(settings, encoder.clone(), metrics.clone())?;
            Some((sink.record_sink(), task, metrics))
        } else {
            None
        };
        let mut sink = sink;
        // The records of the first run without the sink, for the figures below.
        let collect = sink.is_none() && all_records.is_empty();
        let mut records = Vec::new();
        let mut sink_time = Duration::ZERO;
        let started = Instant::now();
        for chunk in messages.chunks(4096) {
            let batch: Vec<Message<'_>> = chunk
                .iter()
                .map(|(t, p)| Message {
                    topic: t,
                    payload: p.as_bytes(),
                    received: Timestamp::from_micros(t0 * 1_000_000),
                })
                .collect();
            records.clear();
            store.ingest(&batch, &mut records)?;
            match sink.as_mut() {
                Some((record_sink, _, _)) => {
                    let t = Instant::now();
                    record_sink(&records);
                    sink_time += t.elapsed();
                }
                None if collect => all_records.extend(records.iter().cloned()),
                None => {}
            }
        }
        times[mode] = times[mode].min(started.elapsed());
        if let Some((record_sink, task, metrics)) = sink {
            in_sink = in_sink.min(sink_time);
            drop(record_sink);
            runtime.block_on(task)?;
            lines_total = metrics.influx_lines_spooled.get() as usize;
        }
    }
    let records_total = all_records.len();
    let overhead = times[1].as_secs_f64() / times[0].as_secs_f64() - 1.0;
    println!(
        "writer path: {} messages, {} records, {} lines; {:.0} msg/s without the sink, {:.0} msg/s with it ({:+.1} %); the record sink took {:.1} % of the writer's time ({:.0} ns a record)",
        messages.len(),
        records_total,
        lines_total,
        messages.len() as f64 / times[0].as_secs_f64(),
        messages.len() as f64 / times[1].as_secs_f64(),
        overhead * 100.0,
        in_sink.as_secs_f64() / times[1].as_secs_f64() * 100.0,
        in_sink.as_nanos() as f64 / records_total.max(1) as f64
    );

    // Encoding alone (the sink task's work), repeated for a stable figure.
    let mut buf = LineBuf::new();
    let mut lines = 0usize;
    let mut bytes = 0usize;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        for chunk in all_records.chunks(4096) {
            encoder.encode(chunk, &mut buf);
            let (body, n) = buf.take();
            lines += n;
            bytes += body.len();
            std::hint::black_box(body);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "encode: {:.2} M lines/s, {:.0} MB/s, {:.0} bytes/line",
        lines as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6,
        bytes as f64 / lines.max(1) as f64
    );

    // The same meter lines with influxdb2's DataPoint builder.
    let meters: Vec<&Record> = all_records
        .iter()
        .filter(|r| matches!(r, Record::Meter { .. }))
        .collect();
    let ours = time_lines(|out| {
        let owned: Vec<Record> = meters.iter().map(|r| (*r).clone()).collect();
        let mut buf = LineBuf::new();
        encoder.encode(&owned, &mut buf);
        out.extend_from_slice(buf.as_bytes());
        buf.lines()
    });
    let theirs = time_lines(|out| {
        for r in &meters {
            if let Record::Meter {
                vehicle,
                ts,
                meter,
                raw,
                value,
            } = r
            {
                let p = DataPoint::builder("meter")
                    .tag("fleet", vehicle.fleet.as_str())
                    .tag("meter", meter.as_str())
                    .tag("model", "compactor-c12")
                    .tag("vehicle", vehicle.vehicle.as_str())
                    .field("raw", *raw)
                    .field("value", *value)
                    .timestamp(ts.as_micros() * 1_000)
                    .build()
                    .unwrap_or_else(|e| panic!("{e}"));
                p.write_data_point_to(&mut *out)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
        meters.len()
    });
    println!(
        "meter lines: {:.2} M/s with fleetcare's encoder (records cloned first), {:.2} M/s with influxdb2's DataPoint",
        ours / 1e6,
        theirs / 1e6
    );
    Ok(())
}

/// Lines per second of `encode` (which appends to the buffer and says how
/// many lines), over two seconds.
fn time_lines(mut encode: impl FnMut(&mut Vec<u8>) -> usize) -> f64 {
    let mut out = Vec::new();
    let mut lines = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        out.clear();
        lines += encode(&mut out);
        std::hint::black_box(&out);
    }
    lines as f64 / started.elapsed().as_secs_f64()
}
