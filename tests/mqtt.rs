//! Issue 4: `fleetcare run` fed over MQTT by an independent client (rumqttc
//! in the test process, not fleetcare's code), through the embedded broker
//! and through Mosquitto.
//!
//! Mosquitto tests need the `mosquitto` binary: `.ci/run` installs it and
//! sets `FLEETCARE_TEST_MOSQUITTO` (the binary) and `FLEETCARE_TEST_MQTT_URL`
//! (the machine's running broker). Without them those tests say so and
//! pass; with them set, a missing broker fails them.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fleetcare::store::Store;
use fleetcare_ingest::pipeline::PipelineConfig;
use polars::prelude::*;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// A `fleetcare run` child process.
pub(crate) struct Service {
    child: Child,
    /// `host:port` of the embedded broker, or `None` with an external one.
    pub(crate) mqtt: Option<String>,
    /// `host:port` of the HTTP API.
    pub(crate) http: String,
}

impl Service {
    /// Starts `fleetcare run` and waits for its ready line.
    pub(crate) fn start(data: &Path, config: &Path) -> Self {
        Self::start_with_env(data, config, &[])
    }

    /// Starts it with extra environment variables (secrets).
    pub(crate) fn start_with_env(data: &Path, config: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = spawn_run(data, config, env, Stdio::inherit());
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("fleetcare run printed no ready line within 60 s");
        let fields: Vec<&str> = line
            .trim()
            .strip_prefix("fleetcare ready: ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .split(' ')
            .collect();
        let field = |name: &str| {
            fields
                .iter()
                .find_map(|kv| kv.strip_prefix(name))
                .unwrap_or_else(|| panic!("the ready line names no {name}: {line:?}"))
                .to_owned()
        };
        let mqtt = field("mqtt=");
        Self {
            child,
            mqtt: (mqtt != "external").then_some(mqtt),
            http: field("http="),
        }
    }

    /// SIGTERM, and the exit status.
    pub(crate) fn stop(mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        wait_exit(&mut self.child, Duration::from_secs(60))
    }

    /// The process id, e.g. to read its memory in /proc.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fleetcare --data DATA --config CONFIG`, for a subcommand to follow.
pub(crate) fn fleetcare(data: &Path, config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fleetcare"));
    c.arg("--data").arg(data).arg("--config").arg(config);
    c
}

/// `fleetcare run` with extra environment variables, its stdout piped.
pub(crate) fn spawn_run(data: &Path, config: &Path, env: &[(&str, &str)], stderr: Stdio) -> Child {
    fleetcare(data, config)
        .envs(env.iter().copied())
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Runs `command` and insists it succeeds; its stdout.
pub(crate) fn succeed(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

pub(crate) fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A configuration file for `fleetcare run` under `dir`.
pub(crate) fn write_config(dir: &Path, prefix: &str, mqtt: &str) -> PathBuf {
    let path = dir.join("fleetcare.toml");
    let text = format!(
        "[mqtt]\ntopic_prefix = \"{prefix}\"\nclient_id = \"fc-{prefix}\"\nmax_reconnect_delay = \"500ms\"\n{mqtt}\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[ingest]\nmeter_store_every = \"0s\"\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A prefix no other test (or run) uses on a shared broker.
pub(crate) fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("fct-{name}-{}-{nanos}", std::process::id())
}

/// Polls the store (read-only, beside the running writer) until `done`
/// holds for its history; fails after `limit`.
pub(crate) fn wait_for_store(data: &Path, limit: Duration, done: impl Fn(&Store) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        // A compaction can remove a log segment under a reader: try again.
        if let Ok(store) = open_store(data)
            && done(&store)
        {
            return;
        }
        if Instant::now() >= deadline {
            let totals = open_store(data).map(|s| s.totals());
            panic!("the store did not get there within {limit:?}: {totals:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The store under `data`, read with the settings of the service's
/// configuration beside it (the topic prefix above all).
pub(crate) fn open_store(data: &Path) -> Result<Store, fleetcare::store::StoreError> {
    let config = data.parent().unwrap().join("fleetcare.toml");
    let pipeline = match fleetcare::config::Config::load(&config) {
        Ok(c) => c.pipeline(),
        Err(_) => PipelineConfig::default(),
    };
    Store::open_read_only(data, pipeline)
}

/// Messages in the store; redeliveries are not counted until the next
/// compaction, so a read-only view counts distinct messages only.
pub(crate) fn stored(store: &Store) -> u64 {
    store.totals().messages_stored
}

pub(crate) fn table(data: &Path, name: &str) -> DataFrame {
    let store = open_store(data).unwrap();
    match store.snapshot().unwrap().scan(name).unwrap() {
        Some(lf) => lf.collect().unwrap(),
        None => DataFrame::empty(),
    }
}

/// An independent publisher: rumqttc on its own runtime thread, QoS 1,
/// driving its event loop through broker outages.
pub(crate) struct Publisher {
    client: AsyncClient,
    acks: std::sync::Arc<std::sync::atomic::AtomicU64>,
    runtime: tokio::runtime::Runtime,
}

impl Publisher {
    pub(crate) fn connect(addr: &str, client_id: &str) -> Self {
        let (host, port) = addr.rsplit_once(':').unwrap();
        let mut o = MqttOptions::new(client_id, host, port.parse().unwrap());
        o.set_clean_session(false);
        o.set_keep_alive(Duration::from_secs(5));
        o.set_max_packet_size(32 << 20, 32 << 20);
        o.set_inflight(200);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (client, mut eventloop) = AsyncClient::new(o, 10_000);
        let acks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = acks.clone();
        runtime.spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Self {
            client,
            acks,
            runtime,
        }
    }

    pub(crate) fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        let payload = payload.into();
        self.runtime
            .block_on(self.client.publish(topic, QoS::AtLeastOnce, false, payload))
            .unwrap();
    }

    /// Waits until the broker acknowledged `n` publishes in all.
    pub(crate) fn wait_acked(&self, n: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.acks.load(std::sync::atomic::Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "the broker acknowledged {} of {n} publishes within {limit:?}",
                self.acks.load(std::sync::atomic::Ordering::Relaxed)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A Mosquitto of the test's own (to stop and start it), persistent under `dir`.
pub(crate) struct Mosquitto {
    bin: PathBuf,
    dir: PathBuf,
    pub(crate) port: u16,
    /// Who may connect: `allow_anonymous true`, or an auth setup.
    auth: String,
    child: Option<Child>,
}

impl Mosquitto {
    /// `None` (with a note) when Mosquitto tests are not asked for.
    pub(crate) fn binary() -> Option<PathBuf> {
        match std::env::var_os("FLEETCARE_TEST_MOSQUITTO") {
            Some(b) => Some(PathBuf::from(b)),
            None => {
                eprintln!(
                    "skipped: set FLEETCARE_TEST_MOSQUITTO to the mosquitto binary (.ci/run does)"
                );
                None
            }
        }
    }

    pub(crate) fn start(bin: PathBuf, dir: &Path) -> Self {
        Self::start_with(bin, dir, "allow_anonymous true")
    }

    /// Starts it with `auth` for the lines about who may connect and do
    /// what (e.g. `password_file` and `acl_file`).
    pub(crate) fn start_with(bin: PathBuf, dir: &Path, auth: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut m = Self {
            bin,
            dir: dir.to_owned(),
            port,
            auth: auth.to_owned(),
            child: None,
        };
        m.restart();
        m
    }

    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// (Re)starts on the same port with the same persistence file.
    pub(crate) fn restart(&mut self) {
        let conf = self.dir.join("mosquitto.conf");
        let mut f = std::fs::File::create(&conf).unwrap();
        // No limits on queued or in-flight messages: a persistent session
        // must keep everything while fleetcare is down. `user root` keeps
        // a root Mosquitto from switching to a user that cannot write its
        // persistence file in the test's private folder (no effect otherwise).
        writeln!(
            f,
                        "listener {} 127.0.0.1\npersistence true\npersistence_location {}/\nmax_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\nuser root\n{}\n",
            self.port,
            self.dir.display(),
            self.auth
        )
        .unwrap();
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM: Mosquitto saves its persistence file on the way out.
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, "TERM");
            wait_exit(&mut c, Duration::from_secs(20));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until fleetcare's subscription is in place: the ready line comes
/// before the subscription, and a broker keeps nothing for a session it has
/// never seen. Publishes the same message (a telemetry message with only a
/// time, which makes no record) until it is stored; copies are stored once.
/// Afterwards the store holds exactly this one message.
pub(crate) fn wait_subscribed(publisher: &Publisher, prefix: &str, data: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        publisher.publish(
            &format!("{prefix}/probe/PROBE/telemetry"),
            r#"{"ts": "2026-03-01T00:00:00Z"}"#,
        );
        if open_store(data).is_ok_and(|s| stored(&s) == 1) {
            return;
        }
        assert!(Instant::now() < deadline, "fleetcare never subscribed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The broker a test runs against.
enum Broker {
    Embedded,
    /// The embedded broker with `embedded_ack = "on_receipt"`.
    EmbeddedAckOnReceipt,
    /// The machine's Mosquitto at this `host:port`.
    Mosquitto(String),
}

fn brokers() -> Vec<Broker> {
    let mut b = vec![Broker::Embedded, Broker::EmbeddedAckOnReceipt];
    match std::env::var("FLEETCARE_TEST_MQTT_URL") {
        Ok(url) => {
            let addr = url
                .strip_prefix("mqtt://")
                .expect("FLEETCARE_TEST_MQTT_URL is mqtt://host:port");
            b.push(Broker::Mosquitto(addr.to_owned()));
        }
        Err(_) => eprintln!(
            "Mosquitto part skipped: FLEETCARE_TEST_MQTT_URL is not set (.ci/run sets it)"
        ),
    }
    b
}

/// Starts fleetcare against `broker` and a publisher beside it.
fn start_with(broker: &Broker, dir: &Path, prefix: &str) -> (Service, Publisher) {
    let (mqtt, addr) = match broker {
        Broker::Embedded => ("listen = \"127.0.0.1:0\"".to_owned(), None),
        Broker::EmbeddedAckOnReceipt => (
            "listen = \"127.0.0.1:0\"\nembedded_ack = \"on_receipt\"".to_owned(),
            None,
        ),
        Broker::Mosquitto(a) => (format!("url = \"mqtt://{a}\""), Some(a.clone())),
    };
    let config = write_config(dir, prefix, &mqtt);
    let service = Service::start(&dir.join("data"), &config);
    let addr = addr.or_else(|| service.mqtt.clone()).unwrap();
    let publisher = Publisher::connect(&addr, &format!("pub-{prefix}"));
    wait_subscribed(&publisher, prefix, &dir.join("data"));
    (service, publisher)
}

const T0: i64 = 1_772_323_200; // 2026-03-01T00:00:00Z

/// Engine hours (PGN 65253, 0.05 h/bit) as a candump line.
fn hours_line(ts: f64, hours: f64) -> String {
    let raw = ((hours / 0.05).round() as u32).to_le_bytes();
    format!(
        "({ts:.6}) can0 18FEE500#{:02X}{:02X}{:02X}{:02X}FFFFFFFF\n",
        raw[0], raw[1], raw[2], raw[3]
    )
}

/// (vehicle, spn, fmi) of every episode start in the faults table.
fn fault_starts(data: &Path) -> BTreeSet<(String, u32, u32)> {
    let f = table(data, "faults");
    if f.height() == 0 {
        return BTreeSet::new();
    }
    let v = f.column("vehicle").unwrap().str().unwrap().clone();
    let e = f.column("event").unwrap().str().unwrap().clone();
    let s = f.column("spn").unwrap().u32().unwrap().clone();
    let m = f.column("fmi").unwrap().u32().unwrap().clone();
    (0..f.height())
        .filter(|&i| e.get(i) == Some("start"))
        .map(|i| {
            (
                v.get(i).unwrap().to_owned(),
                s.get(i).unwrap(),
                m.get(i).unwrap(),
            )
        })
        .collect()
}

/// (vehicle, meter, value) of every stored meter reading.
fn meter_rows(data: &Path) -> Vec<(String, String, f64)> {
    let f = table(data, "meters");
    if f.height() == 0 {
        return Vec::new();
    }
    let v = f.column("vehicle").unwrap().str().unwrap().clone();
    let m = f.column("meter").unwrap().str().unwrap().clone();
    let x = f.column("value").unwrap().f64().unwrap().clone();
    let mut rows: Vec<_> = (0..f.height())
        .map(|i| {
            (
                v.get(i).unwrap().to_owned(),
                m.get(i).unwrap().to_owned(),
                x.get(i).unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rows
}

#[test]
fn can_and_telemetry_over_mqtt_are_stored_as_sent() {
    for broker in brokers() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = unique_prefix("e2e");
        let (service, publisher) = start_with(&broker, dir.path(), &prefix);
        let topic = |v: &str, ch: &str| format!("{prefix}/acme/{v}/{ch}");

        // A DM1 with two DTCs over BAM, cut between two MQTT messages:
        // the announcement and the first packet, then the second packet.
        let t = T0 as f64;
        publisher.publish(
            &topic("TRK-BAM", "can"),
            format!(
                "({:.6}) can0 18ECFF00#200A0002FFCAFE00\n({:.6}) can0 18EBFF00#0104FF6E000003B3\n",
                t,
                t + 0.05
            ),
        );
        publisher.publish(
            &topic("TRK-BAM", "can"),
            format!(
                "({:.6}) can0 18EBFF00#020C1001FFFFFFFF\n{}",
                t + 0.10,
                hours_line(t + 0.2, 2000.0)
            ),
        );
        // A single-frame DM1 (SPN 91 FMI 3, amber) and engine hours.
        publisher.publish(
            &topic("TRK-SF", "can"),
            format!(
                "({:.6}) can0 18FECA00#04FF5B000301FFFF\n{}",
                t + 1.0,
                hours_line(t + 1.5, 76.7)
            ),
        );
        publisher.publish(
            &topic("TRK-TEL", "telemetry"),
            r#"{"ts": "2026-03-01T08:00:00Z", "engine_hours": 1234.5, "pto_hours": 210.25, "odometer_km": 48211.5,
                "dtcs": [{"spn": 3216, "fmi": 18, "oc": 2, "sa": 61}]}"#,
        );
        let data = dir.path().join("data");
        // The probe of `start_with` and these four.
        wait_for_store(&data, Duration::from_secs(30), |s| stored(s) == 5);
        assert!(service.stop().success());

        let starts = fault_starts(&data);
        let expected: BTreeSet<(String, u32, u32)> = [
            ("TRK-BAM", 110, 0),
            ("TRK-BAM", 3251, 16),
            ("TRK-SF", 91, 3),
            ("TRK-TEL", 3216, 18),
        ]
        .into_iter()
        .map(|(v, s, f)| (v.to_owned(), s, f))
        .collect();
        assert_eq!(starts, expected);
        let meters = meter_rows(&data);
        let expected = vec![
            ("TRK-BAM".to_owned(), "engine_hours".to_owned(), 2000.0),
            ("TRK-SF".into(), "engine_hours".into(), 76.7),
            ("TRK-TEL".into(), "engine_hours".into(), 1234.5),
            ("TRK-TEL".into(), "odometer_km".into(), 48211.5),
            ("TRK-TEL".into(), "pto_hours".into(), 210.25),
        ];
        assert_eq!(meters.len(), expected.len(), "{meters:?}");
        for (got, want) in meters.iter().zip(&expected) {
            assert_eq!((&got.0, &got.1), (&want.0, &want.1));
            assert!((got.2 - want.2).abs() < 1e-6, "{got:?} vs {want:?}");
        }
        assert_eq!(table(&data, "dead_letters").height(), 0);
    }
}

/// Garbage of every kind, each a dead letter, with valid messages between.
fn garbage(i: usize, prefix: &str, rng: &mut u64) -> (String, Vec<u8>, &'static str) {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let good = format!("{prefix}/acme/TRK-{:02}/can", i % 7);
    match i % 6 {
        0 => {
            let n = (next() % 200) as usize + 1;
            // Never valid UTF-8 (0xFF), and unique (the number), so that no
            // two are the same message.
            let mut b = vec![0xFF];
            b.extend_from_slice(&(i as u32).to_le_bytes());
            b.extend((0..n).map(|_| next() as u8));
            (good, b, "not_utf8")
        }
        1 => (
            good,
            // A candump line cut in the middle of its data.
            format!("({}.000000) can0 18FECA00#04FF6E0", T0 + i as i64).into_bytes(),
            "candump",
        ),
        2 => (
            format!("{prefix}/acme/TRK-01/telemetry"),
            format!("{{\"ts\": \"2026-03-01T00:00:00Z\", \"engine_hours\": {i}").into_bytes(),
            "telemetry",
        ),
        // Above the 256 KiB payload limit; only now and then, to keep the
        // test's traffic small.
        3 if i % 60 == 3 => {
            let mut b = i.to_string().into_bytes();
            b.resize(300 * 1024, b'x');
            (good, b, "payload_too_large")
        }
        3 => (good, format!("not a frame {i}\n").into_bytes(), "candump"),
        4 => (
            format!("{prefix}/ac me/TRK-{i}/can"),
            hours_line((T0 + i as i64) as f64, 10.0).into_bytes(),
            "topic",
        ),
        _ => (
            format!("{prefix}/acme/TRK-{i}/gps"),
            b"{}".to_vec(),
            "topic",
        ),
    }
}

#[test]
fn a_flood_of_garbage_is_dead_letters_and_valid_messages_between_are_stored() {
    for broker in brokers() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = unique_prefix("flood");
        let (service, publisher) = start_with(&broker, dir.path(), &prefix);
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut valid = 0u64;
        let mut sent = 0u64;
        let mut expected = std::collections::BTreeMap::<String, u64>::new();
        const GARBAGE: usize = 10_000;
        for i in 0..GARBAGE {
            let (topic, payload, reason) = garbage(i, &prefix, &mut rng);
            *expected.entry(reason.to_owned()).or_default() += 1;
            publisher.publish(&topic, payload);
            sent += 1;
            if i % 100 == 0 {
                // A valid reading for one truck every five minutes, a
                // twentieth of an hour (the resolution) up each time.
                let ts = (T0 + (i as i64 / 100) * 300) as f64;
                publisher.publish(
                    &format!("{prefix}/acme/TRK-OK/can"),
                    hours_line(ts, 500.0 + valid as f64 * 0.05),
                );
                valid += 1;
                sent += 1;
            }
        }
        let data = dir.path().join("data");
        // And the probe of `start_with`.
        wait_for_store(&data, Duration::from_secs(120), |s| stored(s) == sent + 1);
        // And on /metrics, by the same reasons (counted just after the
        // store sync that the wait above sees).
        let lines: Vec<String> = expected
            .iter()
            .map(|(reason, n)| format!("fleetcare_dead_letters_total{{reason=\"{reason}\"}} {n}"))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, body) = crate::alerts::http(&service.http, "GET", "/metrics", None, None);
            if lines.iter().all(|l| body.lines().any(|b| b == l)) {
                break;
            }
            assert!(Instant::now() < deadline, "want {lines:#?} in\n{body}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            service.stop().success(),
            "the service stays up and stops cleanly"
        );

        let store = open_store(&data).unwrap();
        assert_eq!(
            store.totals().dead_letters,
            expected,
            "every garbage message is one dead letter of its kind"
        );
        let meters = meter_rows(&data);
        let ok: Vec<_> = meters.iter().filter(|r| r.0 == "TRK-OK").collect();
        assert_eq!(
            ok.len() as u64,
            valid,
            "every valid reading between the garbage is stored"
        );
        assert_eq!(meters.len() as u64, valid, "garbage made no meter readings");
        assert!(fault_starts(&data).is_empty());
        assert_eq!(table(&data, "dead_letters").height() as u64, GARBAGE as u64);
    }
}

/// A telemetry message: vehicle `i % 40`, its `i / 40`-th reading five
/// minutes after the one before, engine hours a twentieth of an hour up
/// (the meter's resolution, so that every reading is stored).
pub(crate) fn numbered(prefix: &str, i: usize) -> (String, String) {
    let vehicle = i % 40;
    let step = (i / 40) as i64;
    let ts = chrono::DateTime::from_timestamp(T0 + step * 300, 0).unwrap();
    (
        format!("{prefix}/acme/TRK-{vehicle:03}/telemetry"),
        format!(
            "{{\"ts\": \"{}\", \"engine_hours\": {:.2}}}",
            ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            1000.0 + step as f64 * 0.05
        ),
    )
}

/// Publishes `numbered` messages `from..to` on a thread, a few at a time.
fn publish_numbered(
    addr: String,
    prefix: String,
    range: std::ops::Range<usize>,
) -> std::thread::JoinHandle<Publisher> {
    std::thread::spawn(move || {
        let publisher = Publisher::connect(&addr, &format!("pub-{prefix}"));
        for i in range.clone() {
            let (topic, payload) = numbered(&prefix, i);
            publisher.publish(&topic, payload);
            if i % 50 == 0 {
                // Spread the stream over the kills and restarts.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        publisher.wait_acked(range.len() as u64, Duration::from_secs(120));
        publisher
    })
}

/// Every stored reading once: (vehicle, ts) distinct and as many as sent,
/// and `probes` messages more in the store (that made no reading).
pub(crate) fn assert_each_reading_once(data: &Path, n: usize, probes: u64) {
    let meters = table(data, "meters");
    assert_eq!(meters.height(), n, "one meter row per message");
    let distinct = meters
        .lazy()
        .select([col("vehicle"), col("ts")])
        .unique(None, UniqueKeepStrategy::First)
        .collect()
        .unwrap()
        .height();
    assert_eq!(distinct, n, "no reading twice");
    let store = open_store(data).unwrap();
    assert_eq!(store.totals().messages_stored, n as u64 + probes);
    assert!(store.totals().dead_letters.is_empty());
}

/// fleetcare started against `mosquitto`, its persistent subscription
/// proven by one stored probe message.
fn start_subscribed(dir: &Path, prefix: &str, mosquitto: &Mosquitto) -> Service {
    let config = write_config(
        dir,
        prefix,
        &format!("url = \"mqtt://{}\"", mosquitto.addr()),
    );
    let service = Service::start(&dir.join("data"), &config);
    let probe = Publisher::connect(&mosquitto.addr(), &format!("probe-{prefix}"));
    wait_subscribed(&probe, prefix, &dir.join("data"));
    service
}

#[test]
fn sigkill_during_a_qos1_stream_loses_and_doubles_nothing() {
    let Some(bin) = Mosquitto::binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mosquitto")).unwrap();
    let mosquitto = Mosquitto::start(bin, &dir.path().join("mosquitto"));
    let prefix = unique_prefix("crash");
    let config = write_config(
        dir.path(),
        &prefix,
        &format!("url = \"mqtt://{}\"", mosquitto.addr()),
    );
    let data = dir.path().join("data");
    let mut service = start_subscribed(dir.path(), &prefix, &mosquitto);

    const N: usize = 4_000;
    let publisher = publish_numbered(mosquitto.addr(), prefix.clone(), 0..N);
    let mut kills = 0;
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    while !publisher.is_finished() || kills < 10 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Let it run a random while, then kill it without warning.
        std::thread::sleep(Duration::from_millis(50 + rng % 300));
        service.kill();
        kills += 1;
        service = Service::start(&data, &config);
    }
    let _publisher = publisher.join().unwrap();
    wait_for_store(&data, Duration::from_secs(120), |s| {
        stored(s) == N as u64 + 1
    });
    assert!(service.stop().success());
    assert!(kills >= 10, "{kills} kills");
    // And the probe of `wait_subscribed`.
    assert_each_reading_once(&data, N, 1);
}

#[test]
fn a_broker_restart_mid_stream_loses_nothing() {
    let Some(bin) = Mosquitto::binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mosquitto")).unwrap();
    let mut mosquitto = Mosquitto::start(bin, &dir.path().join("mosquitto"));
    let prefix = unique_prefix("restart");
    let data = dir.path().join("data");
    let service = start_subscribed(dir.path(), &prefix, &mosquitto);

    const N: usize = 3_000;
    let publisher = publish_numbered(mosquitto.addr(), prefix.clone(), 0..N);
    // Mid-stream: a third of the messages is in the store.
    wait_for_store(&data, Duration::from_secs(60), |s| {
        stored(s) >= N as u64 / 3
    });
    mosquitto.stop();
    // Down for a moment while both clients keep trying.
    std::thread::sleep(Duration::from_millis(700));
    mosquitto.restart();
    let _publisher = publisher.join().unwrap();
    wait_for_store(&data, Duration::from_secs(120), |s| {
        stored(s) == N as u64 + 1
    });
    assert!(service.stop().success());
    // And the probe of `wait_subscribed`.
    assert_each_reading_once(&data, N, 1);
}

#[test]
fn simulate_publishes_a_fleet_that_run_stores_whole() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = "fleet";
    let config = write_config(dir.path(), prefix, "listen = \"127.0.0.1:0\"");
    let data = dir.path().join("data");
    let service = Service::start(&data, &config);
    let broker = service.mqtt.clone().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fleetcare"))
        .arg("--config")
        .arg(&config)
        .args(["simulate", "--trucks", "3", "--days", "2", "--seed", "5"])
        .arg("--mqtt")
        .arg(format!("mqtt://{broker}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let published: u64 = stdout
        .strip_prefix("published ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {stdout:?}"));
    assert!(published > 100, "{stdout}");
    // The recording's glitches include duplicates: every published message
    // is stored or recognised as one; the live counters say when all are in.
    let counted = || {
        let (_, body) = crate::alerts::http(&service.http, "GET", "/metrics", None, None);
        [
            "fleetcare_messages_stored_total ",
            "fleetcare_messages_duplicate_total ",
        ]
        .iter()
        .map(|name| {
            body.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum::<u64>()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while counted() < published {
        assert!(Instant::now() < deadline, "{} of {published} in", counted());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(service.stop().success());
    let store = open_store(&data).unwrap();
    let t = store.totals();
    assert_eq!(t.messages_stored + t.duplicates, published, "{t:?}");
}

/// Issue 20, external brokers: Mosquitto with the password file and the
/// ACL file of docs/mosquitto/acl.example keeps gateway A in its fleet.
/// Its publish into fleet B's topics (acknowledged, as MQTT 3.1.1 has no
/// refusal) is dropped and never stored, its own readings are all stored,
/// it reads its fleet's alerts and not B's, and a retained publish ends its
/// connection (`retain_available false`).
#[test]
fn a_mosquitto_acl_keeps_a_gateway_in_its_fleet() {
    use crate::edge::{Raw, meters_of, reading};
    use rumqttc::mqttbytes::QoS as RawQoS;

    let Some(bin) = Mosquitto::binary() else {
        return;
    };
    let passwd_bin = [
        "/usr/bin/mosquitto_passwd",
        "/usr/local/bin/mosquitto_passwd",
    ]
    .into_iter()
    .map(PathBuf::from)
    .chain(bin.parent().map(|d| d.join("mosquitto_passwd")))
    .find(|p| p.exists())
    .expect("mosquitto_passwd beside mosquitto (the Mosquitto package has both)");
    let dir = tempfile::tempdir().unwrap();
    let broker_dir = dir.path().join("mosquitto");
    std::fs::create_dir(&broker_dir).unwrap();
    let passwd = broker_dir.join("passwd");
    let logins = [
        ("fleetcare", "fleetcare's password"),
        ("gw-acme", "acme's password"),
        ("gw-beta", "beta's password"),
    ];
    for (i, (user, password)) in logins.iter().enumerate() {
        let mut c = Command::new(&passwd_bin);
        if i == 0 {
            c.arg("-c");
        }
        succeed(c.arg("-b").arg(&passwd).arg(user).arg(password));
    }
    let acl = broker_dir.join("fleetcare.acl");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/mosquitto/acl.example"),
        &acl,
    )
    .unwrap();
    // As docs/mosquitto/mosquitto.conf.example says: with 0 (no limit),
    // Mosquitto 2.0.11 breaks a client's connection at its next publish
    // after one the ACL denied.
    const QUEUE: &str = "max_queued_messages 1000000";
    let mosquitto = Mosquitto::start_with(
        bin,
        &broker_dir,
        &format!(
            "allow_anonymous false\npassword_file {}\nacl_file {}\nretain_available false\n{QUEUE}",
            passwd.display(),
            acl.display()
        ),
    );
    let addr = mosquitto.addr();
    // The ACL file's prefix, on a Mosquitto of this test's own.
    let config = write_config(
        dir.path(),
        "fleet",
        &format!(
            "url = \"mqtt://fleetcare@{addr}\"\npassword_env = \"FLEETCARE_TEST_ACL_PASSWORD\""
        ),
    );
    let data = dir.path().join("data");
    let service = Service::start_with_env(
        &data,
        &config,
        &[("FLEETCARE_TEST_ACL_PASSWORD", logins[0].1)],
    );
    let acme = Some(("gw-acme", logins[1].1));

    // Anonymous clients and wrong passwords are refused by Mosquitto.
    let (_, code) = Raw::connect(&addr, "anon", None, true);
    assert_ne!(
        code,
        Some(rumqttc::mqttbytes::v4::ConnectReturnCode::Success)
    );
    let (_, code) = Raw::connect(&addr, "guess", Some(("gw-acme", "guess")), true);
    assert_ne!(
        code,
        Some(rumqttc::mqttbytes::v4::ConnectReturnCode::Success)
    );

    // fleetcare's subscription is in place once a probe is stored.
    let mut gw = Raw::connected(&addr, "gw-acme-1", acme);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pkid = 0u16;
    while open_store(&data).map_or(true, |s| stored(&s) == 0) {
        assert!(Instant::now() < deadline, "fleetcare never subscribed");
        pkid += 1;
        assert!(gw.publish_acked(
            "fleet/acme/PROBE/telemetry",
            br#"{"ts": "2026-03-01T00:00:00Z"}"#,
            pkid
        ));
        std::thread::sleep(Duration::from_millis(100));
    }

    // Gateway A reads its fleet's alerts, not B's.
    // (Mosquitto grants the filter and checks each message against the ACL.)
    let mut ops = Raw::subscribed(&addr, "gw-acme-ops", acme, "fleet/#");
    let mut fc = Raw::connected(&addr, "alerts-stand-in", Some(logins[0]));
    assert!(fc.publish_acked("fleet/beta/alerts", br#"{"vehicle": "TRK-B9"}"#, 1));
    assert!(fc.publish_acked("fleet/acme/alerts", br#"{"vehicle": "TRK-A1"}"#, 2));

    // A publishes a red stop lamp into fleet B, then its own readings.
    assert!(gw.publish_acked("fleet/beta/TRK-B9/telemetry",
        br#"{"ts": "2026-03-01T00:00:00Z", "dtcs": [{"spn": 100, "fmi": 1}], "lamps": {"red_stop": "on"}}"#, 60_000),
        "Mosquitto acknowledges and drops it");
    const N: usize = 50;
    for i in 0..N {
        let pkid = (i + 1) as u16;
        assert!(gw.publish_acked("fleet/acme/TRK-A1/telemetry", reading(i).as_bytes(), pkid));
    }
    // Mosquitto forwards one client's messages in order: once A's last
    // reading is in, the forbidden one would have been too.
    crate::edge::wait_meters(&data, "TRK-A1", N);
    let probes = stored(&open_store(&data).unwrap()) - N as u64;
    assert_eq!(meters_of(&data, "TRK-B9"), 0);
    let delivered = ops
        .delivery(Duration::from_secs(10))
        .expect("A's own alert");
    assert_eq!(delivered.topic, "fleet/acme/alerts");
    assert!(
        ops.delivery(Duration::from_millis(500)).is_none(),
        "B's alert is not A's to read"
    );

    // A retained publish ends the connection.
    gw.publish(
        "fleet/acme/TRK-A1/telemetry",
        reading(N).as_bytes(),
        RawQoS::AtLeastOnce,
        true,
        1,
    );
    assert!(gw.closed_within(Duration::from_secs(10)));

    assert!(service.stop().success());
    let store = open_store(&data).unwrap();
    assert_eq!(
        store.totals().messages_stored,
        N as u64 + probes,
        "nothing of fleet B"
    );
    let seen: Vec<String> = store
        .seen_vehicles()
        .iter()
        .map(|v| v.vehicle.to_string())
        .collect();
    assert!(!seen.iter().any(|v| v == "TRK-B9"), "{seen:?}");
}
