//! Issue 7: the InfluxDB sink against a real server speaking the InfluxDB
//! v2 write API (VictoriaMetrics), end to end: an independent MQTT client
//! publishes engine hours and DM1 faults (red stop lamp, so the real-time
//! path opens a P1 ticket and adds occurrences) to `fleetcare run`; the
//! points are read back with VictoriaMetrics' `/api/v1/export`.
//!
//! Mid-run the server is stopped; fleetcare keeps ingesting (spooling what
//! it cannot write), and is stopped and started again while the server is
//! down, once holding lines in memory (an hour's flush interval) that the
//! clean stop must spool; then the server comes back on the same port and
//! storage, while fleetcare keeps ingesting. Afterwards every meter reading,
//! fault start and end, lamp change and ticket event is there exactly
//! once: VictoriaMetrics runs without `-dedup.minScrapeInterval`, so a
//! batch sent twice would show as two samples at the same time.
//!
//! Needs `FLEETCARE_TEST_VICTORIA_METRICS` (the binary, .ci/run sets it);
//! without it the test says so and passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::alerts::http;
use crate::mqtt::{
    Publisher, Service, open_store, signal, stored, unique_prefix, wait_exit, write_config,
};

/// A VictoriaMetrics of the test's own, to stop and start on one port and
/// storage folder.
struct VictoriaMetrics {
    bin: PathBuf,
    storage: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl VictoriaMetrics {
    fn binary() -> Option<PathBuf> {
        match std::env::var_os("FLEETCARE_TEST_VICTORIA_METRICS") {
            Some(b) => Some(PathBuf::from(b)),
            None => {
                eprintln!(
                    "skipped: set FLEETCARE_TEST_VICTORIA_METRICS to the victoria-metrics binary (.ci/run does)"
                );
                None
            }
        }
    }

    fn start(bin: PathBuf, storage: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut vm = Self {
            bin,
            storage: storage.to_owned(),
            port,
            child: None,
        };
        vm.restart();
        vm
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new(&self.bin)
            .arg(format!("-httpListenAddr={}", self.addr()))
            .arg(format!("-storageDataPath={}", self.storage.display()))
            // Points are queryable at once, and nothing is cached.
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .arg("-retentionPeriod=1y")
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(self.addr()).is_ok()
                && http(&self.addr(), "GET", "/health", None, None).0 == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "victoria-metrics did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM: it finishes the requests in flight and flushes to disk.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, "TERM");
            assert!(wait_exit(&mut c, Duration::from_secs(30)).success());
        }
    }

    /// Every sample of the sink's measurements: (metric name, labels other
    /// than the name) → (time in ms, value), in time order.
    fn export(&self, runtime: &tokio::runtime::Runtime) -> BTreeMap<Series, Vec<(i64, f64)>> {
        // Recently written rows become searchable within a second; this
        // makes them so now.
        let (status, _) = http(&self.addr(), "GET", "/internal/force_flush", None, None);
        assert_eq!(status, 200);
        let client = fleetcare::runtime::tls::https_client().unwrap();
        let mut url =
            reqwest::Url::parse(&format!("http://{}/api/v1/export", self.addr())).unwrap();
        url.query_pairs_mut().append_pair(
            "match[]",
            r#"{__name__=~"(meter|meter_reset|fault|lamps|ticket_event|ticket_backlog)_.*"}"#,
        );
        let body = runtime
            .block_on(async {
                client
                    .get(url)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await
            })
            .unwrap();
        let mut out: BTreeMap<Series, Vec<(i64, f64)>> = BTreeMap::new();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap();
            let mut labels: BTreeMap<String, String> = v["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            let name = labels.remove("__name__").unwrap();
            let values = v["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap());
            let times = v["timestamps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_i64().unwrap());
            let samples = out.entry(Series { name, labels }).or_default();
            samples.extend(times.zip(values));
            samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
        }
        out
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
}

impl Series {
    fn label(&self, k: &str) -> Option<&str> {
        self.labels.get(k).map(String::as_str)
    }
}

const VEHICLES: [&str; 3] = ["TRK-101", "TRK-102", "TRK-103"];
/// Messages per vehicle and phase, five minutes of truck time apart.
const PER_PHASE: usize = 10;

/// Truck time of message `k` of vehicle `v`: a day ago (inside the
/// server's retention), five minutes apart, vehicles a second apart.
fn truck_time(t0: i64, v: usize, k: usize) -> i64 {
    t0 + (k as i64) * 300 + v as i64
}

/// Message `k` of a vehicle: a DM1 (even k: SPN 110 FMI 0 with the red
/// stop lamp; odd k: no fault) and engine hours rising 0.05 h a message.
fn message(ts: i64, k: usize) -> String {
    let dm1 = if k.is_multiple_of(2) {
        "10FF6E000001FFFF"
    } else {
        "00FF00000000FFFF"
    };
    let raw = (20_000 + k as u32).to_le_bytes();
    format!(
        "({ts}.000000) can0 18FECA00#{dm1}\n({ts}.500000) can0 18FEE500#{:02X}{:02X}{:02X}{:02X}FFFFFFFF\n",
        raw[0], raw[1], raw[2], raw[3]
    )
}

fn publish_phase(p: &Publisher, prefix: &str, t0: i64, phase: usize) {
    for k in phase * PER_PHASE..(phase + 1) * PER_PHASE {
        for (v, vehicle) in VEHICLES.iter().enumerate() {
            p.publish(
                &format!("{prefix}/acme/{vehicle}/can"),
                message(truck_time(t0, v, k), k),
            );
        }
    }
}

/// How many engine-hours samples the server holds.
fn meter_samples(vm: &VictoriaMetrics, runtime: &tokio::runtime::Runtime) -> usize {
    vm.export(runtime)
        .iter()
        .filter(|(s, _)| s.name == "meter_value")
        .map(|(_, v)| v.len())
        .sum()
}

/// The value of a counter or gauge on fleetcare's `/metrics`.
fn metric(service: &Service, name: &str) -> f64 {
    let (status, body) = http(&service.http, "GET", "/metrics", None, None);
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .unwrap()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts fleetcare and a publisher, and waits until its subscription is in
/// place: probes (telemetry with only a time, which makes no record, each
/// with a time of its own) until one more message is stored.
fn start(dir: &Path, config: &Path, prefix: &str) -> (Service, Publisher) {
    let data = dir.join("data");
    let before = open_store(&data).map_or(0, |s| stored(&s));
    let service =
        Service::start_with_env(&data, config, &[("FLEETCARE_INFLUXDB_TOKEN", "test-token")]);
    let publisher = Publisher::connect(
        service.mqtt.as_deref().unwrap(),
        &format!("pub-{prefix}-{before}"),
    );
    let mut probe = (before as i64) * 1_000;
    wait_until("fleetcare subscribes", Duration::from_secs(30), || {
        // A time of its own, or the copy would count as a redelivery.
        probe += 1;
        let ts = chrono::DateTime::from_timestamp_micros(1_772_323_200_000_000 + probe).unwrap();
        publisher.publish(
            &format!("{prefix}/probe/PROBE/telemetry"),
            format!(
                r#"{{"ts": "{}"}}"#,
                ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
        );
        std::thread::sleep(Duration::from_millis(100));
        open_store(&data).is_ok_and(|s| stored(&s) > before)
    });
    (service, publisher)
}

/// Waits until the store holds `n` messages more than the probes.
fn wait_stored(dir: &Path, at_least: u64) {
    let data = dir.join("data");
    wait_until(
        "the store takes the messages",
        Duration::from_secs(60),
        || open_store(&data).is_ok_and(|s| stored(&s) >= at_least),
    );
}

/// (ticket event kind, time in ms) of every row of `ticket_events`, from
/// the database itself, and how many P1 tickets are open.
fn ticket_events(data: &Path, runtime: &tokio::runtime::Runtime) -> (Vec<(String, i64)>, i64) {
    runtime.block_on(async {
        let config = fleetcare::config::Config {
            data_dir: data.to_owned(),
            ..Default::default()
        };
        let db = fleetcare::db::Db::connect(&config).await.unwrap();
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT kind, at FROM ticket_events")
            .fetch_all(db.pool())
            .await
            .unwrap();
        let (open_p1,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM tickets WHERE priority = 'P1' AND state = 'open'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        db.close().await;
        let mut out: Vec<(String, i64)> = rows
            .into_iter()
            .map(|(kind, at)| {
                let t = chrono::DateTime::parse_from_rfc3339(&at).unwrap();
                (kind, t.timestamp_millis())
            })
            .collect();
        out.sort();
        (out, open_p1)
    })
}

#[test]
fn every_point_arrives_once_through_a_server_outage() {
    let Some(bin) = VictoriaMetrics::binary() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut vm = VictoriaMetrics::start(bin, &dir.path().join("vm"));
    let prefix = unique_prefix("influx");
    // The configuration, with a flush interval of its own per start.
    let vm_addr = vm.addr();
    let configure = |flush: &str| {
        let config = write_config(dir.path(), &prefix, "listen = \"127.0.0.1:0\"");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[influxdb]\nurl = \"http://{}\"\norg = \"fleetcare\"\nbucket = \"fleetcare\"\nflush_interval = \"{flush}\"\nmax_retry_delay = \"300ms\"\ntickets_interval = \"200ms\"\n",
            vm_addr
        ));
        std::fs::write(&config, text).unwrap();
        config
    };
    let data = dir.path().join("data");
    // Meter lines in the spool files (their text is plain line protocol).
    let spooled_meters = || -> usize {
        std::fs::read_dir(data.join("influxdb"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "spool"))
            .map(|p| {
                let bytes = std::fs::read(p).unwrap();
                bytes.windows(12).filter(|w| w == b"meter,fleet=").count()
            })
            .sum()
    };
    // A day ago, on a whole second.
    let t0 = (chrono::Utc::now().timestamp() - 86_400) / 60 * 60;
    let per_phase = (PER_PHASE * VEHICLES.len()) as u64;

    // The trucks are registered: the real-time path opens tickets only for
    // registered vehicles (issue 20).
    let config = configure("100ms");
    crate::alerts::register(&data, &config, "acme", &VEHICLES);

    // 1. The server is up: the first points arrive.
    let (service, publisher) = start(dir.path(), &config, &prefix);
    let base = open_store(&data).map(|s| stored(&s)).unwrap();
    publish_phase(&publisher, &prefix, t0, 0);
    wait_until(
        "the first points reach the server",
        Duration::from_secs(60),
        || meter_samples(&vm, &runtime) == per_phase as usize,
    );

    // 2. The server stops; fleetcare goes on, spooling what it fails to
    // write.
    vm.stop();
    publish_phase(&publisher, &prefix, t0, 1);
    wait_stored(dir.path(), base + 2 * per_phase);
    wait_until(
        "a write fails and the spool fills",
        Duration::from_secs(30),
        || {
            metric(&service, "fleetcare_influx_write_failures_total") >= 1.0
                && metric(&service, "fleetcare_influx_buffered_bytes") > 0.0
        },
    );
    assert!(service.stop().success());

    // 3. fleetcare restarts while the server is still down, now holding
    // lines in memory for an hour: a clean stop must spool them.
    let config = configure("1h");
    let (service, publisher) = start(dir.path(), &config, &prefix);
    let base = open_store(&data).map(|s| stored(&s)).unwrap();
    publish_phase(&publisher, &prefix, t0, 2);
    wait_stored(dir.path(), base + per_phase);
    // Phase 1 is in the spool; phase 2 waits in memory until the stop.
    assert_eq!(spooled_meters(), per_phase as usize);
    assert!(service.stop().success());
    assert_eq!(
        spooled_meters(),
        2 * per_phase as usize,
        "the lines held in memory are spooled at a clean stop"
    );

    // 4. The server comes back on the same port and storage; fleetcare
    // starts again and ingestion goes on while the spool drains.
    let config = configure("100ms");
    let (service, publisher) = start(dir.path(), &config, &prefix);
    let base = open_store(&data).map(|s| stored(&s)).unwrap();
    vm.restart();
    publish_phase(&publisher, &prefix, t0, 3);
    wait_stored(dir.path(), base + per_phase);
    wait_until("the spool drains", Duration::from_secs(60), || {
        metric(&service, "fleetcare_influx_buffered_bytes") == 0.0
    });
    let total = 4 * PER_PHASE;
    wait_until(
        "every meter reading reaches the server",
        Duration::from_secs(60),
        || meter_samples(&vm, &runtime) >= total * VEHICLES.len(),
    );
    assert_eq!(
        metric(&service, "fleetcare_influx_lines_dropped_total"),
        0.0
    );
    assert_eq!(
        metric(&service, "fleetcare_influx_lines_rejected_total"),
        0.0
    );
    assert!(service.stop().success());
    let leftover = std::fs::read_dir(data.join("influxdb"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".spool"))
        .count();
    assert_eq!(leftover, 0, "the spool is empty after a clean stop");

    // Everything, exactly once. Series VictoriaMetrics saw first in the
    // last moments may take a little longer to be searchable (its index
    // is flushed apart from the samples): wait until the ticket history,
    // the last thing written, is all there.
    let (db_events, open_p1_tickets) = ticket_events(&data, &runtime);
    let exported_events = |export: &BTreeMap<Series, Vec<(i64, f64)>>| {
        let mut events: Vec<(String, i64)> = export
            .iter()
            .filter(|(s, _)| s.name == "ticket_event_count")
            .flat_map(|(s, v)| {
                let event = s.label("event").unwrap().to_owned();
                v.iter().map(move |(t, _)| (event.clone(), *t))
            })
            .collect();
        events.sort();
        events
    };
    let mut export = BTreeMap::new();
    wait_until(
        "every ticket event is searchable",
        Duration::from_secs(30),
        || {
            export = vm.export(&runtime);
            exported_events(&export).len() >= db_events.len()
        },
    );
    eprintln!(
        "influx: {} series, {} samples after the outage",
        export.len(),
        export.values().map(Vec::len).sum::<usize>()
    );
    let of = |name: &str, vehicle: &str| -> Vec<(i64, f64)> {
        let mut all: Vec<(i64, f64)> = export
            .iter()
            .filter(|(s, _)| s.name == name && s.label("vehicle") == Some(vehicle))
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        all
    };
    for (v, vehicle) in VEHICLES.iter().enumerate() {
        let at = |k: usize| truck_time(t0, v, k) * 1000;
        // Engine hours: every reading, at its truck time, half a second
        // after the DM1.
        let expected: Vec<(i64, f64)> = (0..total)
            .map(|k| (at(k) + 500, (20_000 + k) as f64 * 0.05))
            .collect();
        let got = of("meter_value", vehicle);
        assert_eq!(got.len(), expected.len(), "{vehicle} meter_value: {got:?}");
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g.0, e.0, "{vehicle}");
            assert!((g.1 - e.1).abs() < 1e-6, "{vehicle}: {g:?} != {e:?}");
        }
        assert_eq!(of("meter_raw", vehicle).len(), total);
        // A fault episode starts on every even message and ends on the odd
        // one after it, 300 s later.
        let starts: Vec<(i64, f64)> = (0..total).step_by(2).map(|k| (at(k), 1.0)).collect();
        let ends: Vec<(i64, f64)> = (1..total).step_by(2).map(|k| (at(k), 1.0)).collect();
        let durations: Vec<(i64, f64)> = (1..total).step_by(2).map(|k| (at(k), 300.0)).collect();
        assert_eq!(of("fault_started", vehicle), starts, "{vehicle}");
        assert_eq!(of("fault_red_stop", vehicle), starts, "{vehicle}");
        assert_eq!(of("fault_ended", vehicle), ends, "{vehicle}");
        assert_eq!(of("fault_duration_s", vehicle), durations, "{vehicle}");
        // The lamps change with every message (the first one included).
        let lamps: Vec<(i64, f64)> = (0..total)
            .map(|k| (at(k), if k.is_multiple_of(2) { 1.0 } else { 0.0 }))
            .collect();
        assert_eq!(of("lamps_red_stop", vehicle), lamps, "{vehicle}");
    }
    let fault = export
        .keys()
        .find(|s| s.name == "fault_started")
        .expect("fault points");
    assert_eq!(
        (
            fault.label("spn"),
            fault.label("fmi"),
            fault.label("source"),
            fault.label("ecu")
        ),
        (Some("110"), Some("0"), Some("dm1"), Some("0"))
    );
    assert_eq!(fault.label("fleet"), Some("acme"));

    // Ticket history: every row of ticket_events once, at its own time.
    let opened = db_events.iter().filter(|(k, _)| k == "opened").count();
    assert!(opened >= VEHICLES.len(), "{db_events:?}");
    let exported = exported_events(&export);
    assert_eq!(exported, db_events);
    eprintln!(
        "influx: {} ticket events, as in the database",
        exported.len()
    );
    // The real-time path: one P1 fault ticket per vehicle, opened at the
    // first fault, then an occurrence per further fault start.
    let p1 = |event: &str| {
        export
            .iter()
            .filter(|(s, _)| {
                s.name == "ticket_event_count"
                    && s.label("event") == Some(event)
                    && s.label("kind") == Some("fault")
                    && s.label("priority") == Some("P1")
            })
            .map(|(_, v)| v.len())
            .sum::<usize>()
    };
    assert_eq!(p1("opened"), VEHICLES.len());
    assert_eq!(p1("occurrence"), VEHICLES.len() * (total / 2 - 1));
    // The backlog's last sample (written at the clean stop): the open P1
    // tickets.
    assert!(open_p1_tickets >= VEHICLES.len() as i64);
    let open_p1 = export
        .iter()
        .find(|(s, _)| {
            s.name == "ticket_backlog_count"
                && s.label("priority") == Some("P1")
                && s.label("state") == Some("open")
        })
        .and_then(|(_, v)| v.last())
        .expect("backlog points");
    assert_eq!(open_p1.1, open_p1_tickets as f64);
}
