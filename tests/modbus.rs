//! Issue 4: the Modbus TCP poller against an independent device, pymodbus
//! (tests/modbus/server.py), started by the test as a child process. The
//! telemetry a poll produces is taken from the `IngestHandle`, so these
//! tests see exactly what would enter the pipeline.
//!
//! Needs `FLEETCARE_TEST_PYTHON`: a Python with tests/modbus/requirements.txt
//! installed (.ci/run makes one). Unset: the tests say so and pass; set
//! without pymodbus: they fail.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleetcare::catalog::{Catalog, ModelId};
use fleetcare::config::ModbusDevice;
use fleetcare::runtime::{Backoff, LiveMetrics};
use fleetcare::sources::modbus::{DeviceState, DeviceStatus, resolve_targets, spawn_pollers};
use fleetcare::store::{Incoming, IngestHandle};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

/// Every wait is bounded by this; reaching it fails the test.
const WAIT: Duration = Duration::from_secs(20);

const PYTHON_ENV: &str = "FLEETCARE_TEST_PYTHON";

/// The interpreter to run the device with, `None` (and a message) when the
/// environment does not provide one. Panics when it does but the
/// interpreter cannot import pymodbus: a broken setup must not pass.
async fn python() -> Option<PathBuf> {
    // The pollers' log lines, shown with a failing test's output.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("fleetcare=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
    let Some(python) = std::env::var_os(PYTHON_ENV) else {
        eprintln!(
            "skipped: {PYTHON_ENV} is not set (a Python with tests/modbus/requirements.txt; .ci/run makes one)"
        );
        return None;
    };
    let output = Command::new(&python)
        .args(["-c", "import pymodbus; print(pymodbus.__version__)"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("{PYTHON_ENV}={python:?} does not run: {e}"));
    assert!(
        output.status.success(),
        "{PYTHON_ENV}={python:?} cannot import pymodbus (install tests/modbus/requirements.txt): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(PathBuf::from(python))
}

/// A pymodbus device serving fixed registers on its own port.
struct Device {
    child: Child,
    port: u16,
}

impl Device {
    /// Starts a device; `port` 0 lets it pick one. Waits for the line in
    /// which it reports its port, so it listens once this returns.
    async fn start(python: &Path, port: u16, input: Value, holding: Value) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/modbus/server.py");
        let spec = json!({"port": port, "unit": 1, "input": input, "holding": holding});
        let mut child = Command::new(python)
            .arg(script)
            .arg(spec.to_string())
            // The device exits when its stdin closes: no stray servers.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        tokio::time::timeout(WAIT, BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("the Modbus device did not report its port")
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the Modbus device printed {line:?}, not its port"));
        Self { child, port }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// A catalogue of the given `[modbus]` maps, one model each, in a
/// temporary directory.
fn catalogue(dir: &Path, models: &[(&str, &str)]) -> Catalog {
    std::fs::write(dir.join("parts.toml"), "").unwrap();
    for (id, modbus) in models {
        let text = format!(
            "id = \"{id}\"\nname = \"{id}\"\nkind = \"compactor\"\n\n[modbus]\nunit = 1\nregisters = [\n{modbus}]\n"
        );
        std::fs::write(dir.join(format!("{id}.toml")), text).unwrap();
    }
    Catalog::load(dir).unwrap()
}

/// A device polled every 100 ms. The timeout is generous: only the test
/// that wants timeouts shortens it, so a loaded machine fails nothing else.
fn device(address: &str, vehicle: &str, model: Option<&str>) -> ModbusDevice {
    ModbusDevice {
        address: address.to_owned(),
        unit: None,
        fleet: FleetId::new("acme").unwrap(),
        vehicle: VehicleId::new(vehicle).unwrap(),
        model: model.map(|m| ModelId::new(m).unwrap()),
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
    }
}

/// One telemetry message a poller handed to the pipeline.
#[derive(Debug, Clone)]
struct Received {
    topic: String,
    body: Value,
}

/// Pollers under test and everything they sent, collected as it comes.
struct Run {
    received: Arc<Mutex<Vec<Received>>>,
    metrics: Arc<LiveMetrics>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    statuses: Vec<Arc<DeviceStatus>>,
    /// Each target's `host:port`, in the order of `statuses`.
    addresses: Vec<String>,
}

impl Run {
    fn start(targets: Vec<fleetcare::sources::modbus::PollTarget>) -> Self {
        let metrics = Arc::new(LiveMetrics::default());
        let (tx, mut rx) = mpsc::channel::<Incoming>(64);
        let handle = IngestHandle::from_sender(tx, metrics.clone());
        let (stop, shutdown) = watch::channel(false);
        let statuses = targets.iter().map(|t| t.status().clone()).collect();
        let addresses = targets.iter().map(|t| t.label().address.clone()).collect();
        let tasks = spawn_pollers(targets, "fleet", handle, shutdown);
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                assert!(m.on_stored.is_none());
                // Telemetry the MQTT path would accept as it is.
                fleetcare_ingest::telemetry::parse(&m.payload).unwrap();
                let body = serde_json::from_slice(&m.payload).unwrap();
                sink.lock().unwrap().push(Received {
                    topic: m.topic,
                    body,
                });
            }
        });
        Self {
            received,
            metrics,
            stop,
            tasks,
            statuses,
            addresses,
        }
    }

    /// Target `i`'s polls with `result` (`ok`, `failed`), as `/metrics`
    /// shows them.
    fn polls(&self, i: usize, result: &str) -> u64 {
        let series = format!(
            "fleetcare_modbus_polls_total{{device=\"{}\",result=\"{result}\"}} ",
            self.addresses[i]
        );
        let text = self.metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .unwrap_or_else(|| panic!("no {series}in\n{text}"))
            .parse()
            .unwrap()
    }

    fn status(&self, i: usize) -> DeviceState {
        self.statuses[i].snapshot()
    }

    /// Telemetry received so far for a vehicle.
    fn telemetry(&self, vehicle: &str) -> Vec<Value> {
        let topic = format!("fleet/acme/{vehicle}/telemetry");
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.topic == topic)
            .map(|r| r.body.clone())
            .collect()
    }

    /// Waits until `ready` holds, failing the test after [`WAIT`].
    async fn until(&self, what: &str, mut ready: impl FnMut(&Self) -> bool) {
        let waited = tokio::time::timeout(WAIT, async {
            while !ready(self) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if waited.is_err() {
            let statuses: Vec<DeviceState> = self.statuses.iter().map(|s| s.snapshot()).collect();
            panic!("timed out waiting for {what}; statuses: {statuses:#?}");
        }
    }

    /// Stops the pollers and waits for them: counts are final afterwards.
    async fn shut_down(&mut self) {
        self.stop.send(true).unwrap();
        for task in self.tasks.drain(..) {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("a poller did not stop")
                .unwrap();
        }
        for status in &self.statuses {
            assert!(!status.snapshot().connected);
        }
    }
}

/// Telemetry without `ts`, which is the time of the poll.
fn meters(body: &Value) -> Value {
    let mut body = body.clone();
    let ts = body.as_object_mut().unwrap().remove("ts").unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts.as_str().unwrap()).is_ok(),
        "{ts}"
    );
    body
}

/// 0x0001_E240 = 123456 in both word orders, 0x04D2 = 1234 at scale 0.05
/// and a holding register; a map that reaches an address the device does
/// not have gets exception 02 on every poll, keeps its connection, and
/// sends nothing.
#[tokio::test]
async fn word_orders_scale_and_an_exception_response() {
    let Some(python) = python().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalogue(
        dir.path(),
        &[
            (
                "mb-high",
                r#"{ name = "pto_hours", kind = "input", address = 0, type = "u32", word_order = "high_first", scale = 0.1 },
                   { name = "hydraulic_oil_temp_c", kind = "input", address = 2, type = "i16", scale = 0.1 },
                   { name = "odometer_km", kind = "holding", address = 100, type = "u32", word_order = "high_first" },"#,
            ),
            (
                "mb-low",
                r#"{ name = "pto_hours", kind = "input", address = 0, type = "u32", word_order = "low_first", scale = 0.1 },
                   { name = "engine_hours", kind = "input", address = 2, type = "u32", word_order = "low_first", scale = 0.05 },"#,
            ),
            (
                "mb-gap",
                r#"{ name = "pto_hours", kind = "input", address = 0, type = "u32", scale = 0.1 },
                   { name = "body_fill_pct", kind = "input", address = 50, type = "u16" },"#,
            ),
        ],
    );
    let high = Device::start(
        &python,
        0,
        json!({"0": [0x0001, 0xE240, 0xFF9C]}),
        json!({"100": [0x0007, 0x5BCD]}),
    )
    .await;
    let low = Device::start(
        &python,
        0,
        json!({"0": [0xE240, 0x0001, 0x04D2, 0x0000]}),
        json!({}),
    )
    .await;
    let gap = Device::start(&python, 0, json!({"0": [0x0001, 0xE240]}), json!({})).await;

    // TRK-LOW takes its model from the registry, the others name theirs.
    let devices = [
        device(&high.address(), "TRK-HIGH", Some("mb-high")),
        device(&low.address(), "TRK-LOW", None),
        device(&gap.address(), "TRK-GAP", Some("mb-gap")),
    ];
    let (targets, errors) = resolve_targets(&devices, &catalog, |_, vehicle| {
        (vehicle.as_str() == "TRK-LOW").then(|| ModelId::new("mb-low").unwrap())
    });
    assert!(errors.is_empty(), "{errors:?}");
    let mut run = Run::start(targets);

    run.until(
        "telemetry from both word orders, and two refused polls",
        |r| {
            r.telemetry("TRK-HIGH").len() >= 2
                && r.telemetry("TRK-LOW").len() >= 2
                && r.status(2).exceptions >= 2
        },
    )
    .await;

    // Body registers are condition signals (C12, issue 23).
    for body in run.telemetry("TRK-HIGH") {
        assert_eq!(
            meters(&body),
            json!({
                "pto_hours": 12_345.6,
                "odometer_km": 482_253.0,
                "signals": {"hydraulic_oil_temp_c": -10.0},
            })
        );
    }
    for body in run.telemetry("TRK-LOW") {
        assert_eq!(
            meters(&body),
            json!({"pto_hours": 12_345.6, "engine_hours": 61.7})
        );
    }
    // And in the status.
    let high_status = run.status(0);
    assert_eq!(high_status.values.get("hydraulic_oil_temp_c"), Some(&-10.0));
    assert_eq!(high_status.connections, 1);
    assert_eq!(high_status.polls_failed, 0);

    // The refused device: counted, logged, connection kept, nothing sent.
    assert!(run.telemetry("TRK-GAP").is_empty());
    let gap_status = run.status(2);
    assert_eq!(gap_status.polls_ok, 0);
    assert_eq!(gap_status.exceptions, gap_status.polls_failed);
    assert!(gap_status.connected);
    assert_eq!(gap_status.connections, 1);
    let (_, error) = gap_status.last_error.clone().unwrap();
    assert_eq!(
        error,
        "input registers 50+1: exception 0x02 (Illegal data address)"
    );
    // A poll is all or nothing: the pto_hours read before the refused one
    // is not kept either.
    assert_eq!(gap_status.values.get("pto_hours"), None);

    // Two readings each from the good devices; the refused one counts
    // every poll as failed (the status is updated after the counter).
    let (high_ok, low_ok) = (run.polls(0, "ok"), run.polls(1, "ok"));
    assert!(high_ok >= 2 && low_ok >= 2, "{high_ok} {low_ok}");
    assert_eq!(run.polls(2, "ok"), 0);
    let failed = run.polls(2, "failed");
    assert!(failed >= gap_status.polls_failed, "{failed}");
    run.shut_down().await;
    for d in [high, low, gap] {
        d.stop().await;
    }
}

/// A device that stops answering (SIGSTOP) is reconnected after timeouts
/// and its readings resume on SIGCONT; killed and restarted on the same
/// port, it is reconnected again. Meanwhile a device on a closed port backs
/// off, and neither stops the healthy one.
///
/// After SIGCONT pymodbus logs "Cancel send, because not connected": the
/// late replies to the timed-out requests, on connections the poller had
/// already dropped. That is the point.
#[tokio::test]
async fn a_silent_device_comes_back_and_an_unreachable_one_stops_nothing() {
    let Some(python) = python().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalogue(
        dir.path(),
        &[(
            "mb",
            r#"{ name = "engine_hours", kind = "input", address = 0, type = "u32", scale = 0.05 },"#,
        )],
    );
    // 0x0001_E240 = 123456 → 6172.8 h; after the restart 123476 → 6173.8 h.
    let words = json!({"0": [0x0001, 0xE240]});
    let healthy = Device::start(&python, 0, words.clone(), json!({})).await;
    let flaky = Device::start(&python, 0, words, json!({})).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };

    let devices = [
        device(&healthy.address(), "TRK-OK", Some("mb")),
        ModbusDevice {
            timeout: Duration::from_millis(500),
            ..device(&flaky.address(), "TRK-FLAKY", Some("mb"))
        },
        device(&closed.to_string(), "TRK-OFF", Some("mb")),
    ];
    let (targets, errors) = resolve_targets(&devices, &catalog, |_, _| None);
    assert!(errors.is_empty(), "{errors:?}");
    let backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(400));
    let targets = targets
        .into_iter()
        .map(|t| t.with_backoff(backoff))
        .collect();
    let started = std::time::Instant::now();
    let mut run = Run::start(targets);
    let reading = json!({"engine_hours": 6_172.8});

    run.until("first readings", |r| {
        !r.telemetry("TRK-OK").is_empty() && !r.telemetry("TRK-FLAKY").is_empty()
    })
    .await;

    // Silent: the kernel still accepts connections, nothing answers.
    flaky.signal("-STOP");
    let healthy_before = run.telemetry("TRK-OK").len();
    run.until("two timed-out polls of the stopped device", |r| {
        let s = r.status(1);
        s.consecutive_failures >= 2
            && s.last_error
                .as_ref()
                .is_some_and(|(_, e)| e.contains("no answer within 500ms"))
    })
    .await;
    let silent_at = run.telemetry("TRK-FLAKY").len();
    assert!(run.telemetry("TRK-OK").len() > healthy_before);
    flaky.signal("-CONT");
    run.until("readings of the resumed device", |r| {
        r.telemetry("TRK-FLAKY").len() > silent_at
    })
    .await;
    let status = run.status(1);
    // Every timeout dropped the link: one connection per attempt after it.
    assert!(status.connections >= 3, "{status:#?}");

    // Killed and restarted on the same port with a new reading.
    let port = flaky.port;
    flaky.stop().await;
    run.until("a refused reconnection", |r| {
        r.status(1)
            .last_error
            .as_ref()
            .is_some_and(|(_, e)| e.starts_with("cannot connect"))
            && r.status(1).consecutive_failures >= 1
    })
    .await;
    let restarted = Device::start(&python, port, json!({"0": [0x0001, 0xE254]}), json!({})).await;
    run.until("readings from the restarted device", |r| {
        r.telemetry("TRK-FLAKY")
            .last()
            .is_some_and(|b| meters(b) == json!({"engine_hours": 6_173.8}))
    })
    .await;

    // The closed port: never connected, failing with back-off throughout.
    let off = run.status(2);
    assert_eq!((off.polls_ok, off.connections), (0, 0));
    assert!(!off.connected);
    assert!(off.consecutive_failures >= 3, "{off:#?}");
    assert!(run.telemetry("TRK-OFF").is_empty());
    // Back-off: attempts after 50, 100, 200 ms, then every 400 ms at most;
    // polling every 100 ms would have made about four times as many.
    let elapsed = started.elapsed();
    let bound = 5 + elapsed.as_millis() / 400;
    assert!(
        u128::from(off.consecutive_failures) <= bound,
        "{} attempts in {elapsed:?}, back-off allows {bound}",
        off.consecutive_failures
    );
    let ok = run.status(0);
    // The healthy device never failed and every reading is the same.
    assert_eq!(ok.polls_failed, 0);
    assert_eq!(ok.connections, 1);
    for body in run.telemetry("TRK-OK") {
        assert_eq!(meters(&body), reading);
    }

    run.shut_down().await;
    // Stopped: each device's counts on /metrics are its status's.
    for i in 0..3 {
        let status = run.status(i);
        assert_eq!(run.polls(i, "failed"), status.polls_failed, "{status:#?}");
        assert_eq!(run.polls(i, "ok"), status.polls_ok, "{status:#?}");
    }
    healthy.stop().await;
    restarted.stop().await;
}
