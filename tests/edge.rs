//! Issue 20: the embedded broker's edge against the attacks of findings 1
//! and 2, each tried against the real `fleetcare run` while a victim
//! gateway keeps publishing; the victim's messages are all stored and its
//! critical fault still reaches its fleet's alerts topic.
//!
//! The attacker is a raw MQTT 3.1.1 client ([`Raw`]: rumqttc's codec over
//! a plain socket), so that every packet, flag and id is the test's choice.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use polars::prelude::*;
use rumqttc::mqttbytes::v4::{
    ConnectReturnCode, Packet, PubAck, Publish, Subscribe, SubscribeFilter, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{Error as CodecError, QoS};
use serde_json::Value;

use crate::alerts::{create_token, http, red_dm1, tickets};
use crate::mqtt::{Service, fleetcare, spawn_run, succeed, table, unique_prefix, write_config};

/// 2026-03-01T00:00:00Z
const T0: i64 = 1_772_323_200;

/// What a raw client read next.
#[derive(Debug)]
pub(crate) enum Got {
    Packet(Packet),
    /// The broker closed the connection (or reset it).
    Closed,
    /// Nothing within the time given.
    Nothing,
    /// Bytes that are no MQTT packet (e.g. a TLS alert).
    Garbage,
}

/// An MQTT 3.1.1 client that sends exactly what it is told.
pub(crate) struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub(crate) fn open(addr: &str) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Connects as `id` and returns the CONNACK's code (`None`: closed
    /// without one).
    pub(crate) fn connect(
        addr: &str,
        id: &str,
        login: Option<(&str, &str)>,
        clean_session: bool,
    ) -> (Self, Option<ConnectReturnCode>) {
        let mut raw = Self::open(addr);
        let mut c = rumqttc::mqttbytes::v4::Connect::new(id);
        c.clean_session = clean_session;
        c.keep_alive = 30;
        if let Some((u, p)) = login {
            c.set_login(u, p);
        }
        raw.send(&Packet::Connect(c));
        let code = match raw.next(Duration::from_secs(10)) {
            Got::Packet(Packet::ConnAck(a)) => Some(a.code),
            Got::Closed | Got::Garbage => None,
            other => panic!("{other:?} instead of a CONNACK"),
        };
        (raw, code)
    }

    /// Connects and insists on success.
    pub(crate) fn connected(addr: &str, id: &str, login: Option<(&str, &str)>) -> Self {
        let (raw, code) = Self::connect(addr, id, login, true);
        assert_eq!(code, Some(ConnectReturnCode::Success), "{id}");
        raw
    }

    /// Connects and subscribes to `filter`, insisting on both.
    pub(crate) fn subscribed(
        addr: &str,
        id: &str,
        login: Option<(&str, &str)>,
        filter: &str,
    ) -> Self {
        let mut raw = Self::connected(addr, id, login);
        assert_eq!(
            raw.subscribe(&[filter], 1),
            [SubscribeReasonCode::Success(QoS::AtLeastOnce)],
            "{filter}"
        );
        raw
    }

    /// Writes `packet`; `false` once the connection is gone.
    pub(crate) fn send(&mut self, packet: &Packet) -> bool {
        let mut b = BytesMut::new();
        packet.write(&mut b, usize::MAX).unwrap();
        self.write_raw(&b)
    }

    pub(crate) fn write_raw(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// The next packet within `limit`.
    pub(crate) fn next(&mut self, limit: Duration) -> Got {
        let deadline = Instant::now() + limit;
        loop {
            match Packet::read(&mut self.buf, 1 << 22) {
                Ok(p) => return Got::Packet(p),
                Err(CodecError::InsufficientBytes(_)) => {}
                Err(_) => return Got::Garbage,
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::Nothing;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Got::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Got::Nothing;
                }
                Err(_) => return Got::Closed,
            }
        }
    }

    /// Whether the broker closes the connection within `limit` (packets
    /// before that are passed over).
    pub(crate) fn closed_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Got::Closed => return true,
                Got::Nothing => return false,
                Got::Packet(_) | Got::Garbage => {}
            }
        }
    }

    pub(crate) fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        pkid: u16,
    ) {
        let mut p = Publish::new(topic, qos, payload);
        p.pkid = pkid;
        p.retain = retain;
        self.send(&Packet::Publish(p));
    }

    /// Publishes with QoS 1 and waits (10 s at most) for its PUBACK.
    pub(crate) fn publish_acked(&mut self, topic: &str, payload: &[u8], pkid: u16) -> bool {
        self.publish(topic, payload, QoS::AtLeastOnce, false, pkid);
        self.acked(pkid, Duration::from_secs(10))
    }

    /// Waits for the PUBACK of `pkid`; `false` when the connection closed
    /// or none came within `limit`.
    pub(crate) fn acked(&mut self, pkid: u16, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Got::Packet(Packet::PubAck(a)) => {
                    assert_eq!(a.pkid, pkid, "PUBACKs in order");
                    return true;
                }
                Got::Packet(Packet::Publish(p)) => self.ack_delivery(&p),
                Got::Packet(other) => panic!("{other:?} instead of a PUBACK"),
                Got::Closed | Got::Nothing | Got::Garbage => return false,
            }
        }
    }

    fn ack_delivery(&mut self, p: &Publish) {
        if p.qos != QoS::AtMostOnce {
            self.send(&Packet::PubAck(PubAck::new(p.pkid)));
        }
    }

    /// Subscribes to `filters` (QoS 1) and returns the SUBACK's codes.
    pub(crate) fn subscribe(&mut self, filters: &[&str], pkid: u16) -> Vec<SubscribeReasonCode> {
        let mut s = Subscribe::new_many(
            filters
                .iter()
                .map(|f| SubscribeFilter::new((*f).to_owned(), QoS::AtLeastOnce)),
        );
        s.pkid = pkid;
        self.send(&Packet::Subscribe(s));
        match self.next(Duration::from_secs(10)) {
            Got::Packet(Packet::SubAck(a)) => {
                assert_eq!(a.pkid, pkid);
                a.return_codes
            }
            other => panic!("{other:?} instead of a SUBACK"),
        }
    }

    /// The next message delivered within `limit` (acknowledged).
    pub(crate) fn delivery(&mut self, limit: Duration) -> Option<Publish> {
        let deadline = Instant::now() + limit;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Got::Packet(Packet::Publish(p)) => {
                    self.ack_delivery(&p);
                    return Some(p);
                }
                Got::Packet(_) => {}
                Got::Closed | Got::Nothing | Got::Garbage => return None,
            }
        }
    }

    /// Waits for the critical-fault alert about `vehicle` on a subscribed
    /// alerts topic; no message before it was retained.
    pub(crate) fn alert_for(&mut self, vehicle: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let p = self
                .delivery(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|| panic!("no alert for {vehicle} within {limit:?}"));
            assert!(!p.retain, "a retained message: {p:?}");
            let alert: Value = serde_json::from_slice(&p.payload).unwrap();
            if alert["vehicle"] == vehicle && alert["kind"] == "critical_fault" {
                return alert;
            }
        }
    }
}

/// Engine hours of `vehicle`, reading `i`: five minutes and a twentieth
/// of an hour after the one before.
pub(crate) fn reading(i: usize) -> String {
    let ts = chrono::DateTime::from_timestamp(T0 + i as i64 * 300, 0).unwrap();
    format!(
        "{{\"ts\": \"{}\", \"engine_hours\": {:.2}}}",
        ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        10.0 + i as f64 * 0.05
    )
}

/// A victim gateway on a thread: `n` readings of `topic`, each published
/// (QoS 1) once the one before was acknowledged. Returns how many were.
pub(crate) fn victim(
    addr: String,
    id: &str,
    login: Option<(String, String)>,
    topic: String,
    n: usize,
) -> std::thread::JoinHandle<usize> {
    let id = id.to_owned();
    std::thread::spawn(move || {
        let login = login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let mut gw = Raw::connected(&addr, &id, login);
        for i in 0..n {
            let pkid = (i % 60_000 + 1) as u16;
            gw.publish(&topic, reading(i).as_bytes(), QoS::AtLeastOnce, false, pkid);
            if !gw.acked(pkid, Duration::from_secs(30)) {
                return i;
            }
        }
        n
    })
}

/// Meter rows of `vehicle` in the store.
pub(crate) fn meters_of(data: &Path, vehicle: &str) -> usize {
    let meters = table(data, "meters");
    if meters.height() == 0 {
        return 0;
    }
    meters
        .lazy()
        .filter(col("vehicle").eq(lit(vehicle)))
        .collect()
        .unwrap()
        .height()
}

/// Waits until the store holds `n` meter rows of `vehicle`.
pub(crate) fn wait_meters(data: &Path, vehicle: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while meters_of(data, vehicle) < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} readings of {vehicle} stored",
            meters_of(data, vehicle)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of one series on `/metrics` (0 when absent).
pub(crate) fn metric(http_addr: &str, series: &str) -> u64 {
    let (_, body) = http(http_addr, "GET", "/metrics", None, None);
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Registers `vehicles` (fleet, vehicle) with the catalogue's compactor,
/// commissioned today (no service falls due during a test): tickets are
/// opened for registered vehicles.
pub(crate) fn register(data: &Path, config: &Path, vehicles: &[(&str, &str)]) {
    let csv = config.with_file_name("vehicles.csv");
    let today = chrono::Utc::now().date_naive();
    let mut text = "vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\n".to_owned();
    for (fleet, vehicle) in vehicles {
        text.push_str(&format!("{vehicle},{fleet},compactor-c12,,{today},north\n"));
    }
    std::fs::write(&csv, text).unwrap();
    succeed(
        fleetcare(data, config)
            .args(["vehicles", "import"])
            .arg(&csv),
    );
}

/// Finding 1: ids of fleetcare's own connections, tried by an anonymous
/// client on loopback (which may publish any fleet's data), are refused;
/// the victim's readings are all stored and its critical DM1 still comes
/// back as an alert, so neither ingest nor the alert publisher was
/// displaced.
#[test]
fn internal_client_ids_are_refused_and_ingest_and_alerts_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("ids");
    // The default client id: fleetcare's own ids start `fleetcare-`.
    let config = write_config(dir.path(), &prefix, "listen = \"127.0.0.1:0\"");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("client_id = \"fc-{prefix}\"\n"), "");
    std::fs::write(&config, text).unwrap();
    let data = dir.path().join("data");
    register(&data, &config, &[("acme", "TRK-V")]);
    let service = Service::start(&data, &config);
    let addr = service.mqtt.clone().unwrap();

    let mut ops = Raw::subscribed(&addr, "ops", None, &format!("{prefix}/acme/alerts"));
    const N: usize = 300;
    let victim = victim(
        addr.clone(),
        "victim-gw",
        None,
        format!("{prefix}/acme/TRK-V/telemetry"),
        N,
    );
    let ids = [
        "fleetcare-ingest-0",
        "fleetcare-ingest-15",
        "fleetcare-anything",
        "fleetcare-ingest-alerts",
        "fleetcare-alerts",
        "FLEETCARE-ingest-0",
    ];
    let mut attempts = 0;
    while !victim.is_finished() || attempts < 3 * ids.len() * 2 {
        let id = ids[attempts / 2 % ids.len()];
        let clean = attempts % 2 == 0;
        let (mut attacker, code) = Raw::connect(&addr, id, None, clean);
        assert_eq!(code, Some(ConnectReturnCode::BadClientId), "{id}");
        assert!(attacker.closed_within(Duration::from_secs(10)), "{id}");
        attempts += 1;
    }
    assert_eq!(victim.join().unwrap(), N, "every reading acknowledged");
    wait_meters(&data, "TRK-V", N);
    assert_eq!(
        metric(
            &service.http,
            "fleetcare_mqtt_refused_total{reason=\"client_id\"}"
        ),
        attempts as u64
    );

    // The alert publisher is still connected: a critical DM1 comes back.
    let mut gw = Raw::connected(&addr, "victim-gw-can", None);
    assert!(gw.publish_acked(
        &format!("{prefix}/acme/TRK-V/can"),
        red_dm1(T0 as f64 + 86_400.0).as_bytes(),
        1
    ));
    ops.alert_for("TRK-V", Duration::from_secs(20));
    assert_eq!(meters_of(&data, "TRK-V"), N, "each reading once");
    assert!(service.stop().success());
}

/// The logins of [`fleet_logins_config`]: (username, password, fleet, vehicle).
const LOGINS: [(&str, &str, &str, Option<&str>); 3] = [
    ("gw-a", "password of a", "fa", None),
    ("gw-b", "password of b", "fb", None),
    ("gw-b1", "password of b1", "fb", Some("TRK-B1")),
];

/// Logins for fleets `fa` and `fb` (and one vehicle of `fb`), anonymous
/// clients refused: the settings of a broker other machines can reach
/// (the loopback listener is only the test's).
fn fleet_logins_config(dir: &Path, prefix: &str) -> (PathBuf, Vec<(String, String)>) {
    let mut mqtt = "listen = \"127.0.0.1:0\"\nallow_anonymous = false\n".to_owned();
    let mut env = Vec::new();
    for (i, (user, password, fleet, vehicle)) in LOGINS.iter().enumerate() {
        let var = format!("FLEETCARE_TEST_GW_{i}");
        mqtt.push_str(&format!(
            "\n[[mqtt.logins]]\nusername = \"{user}\"\npassword_env = \"{var}\"\nfleet = \"{fleet}\"\n"
        ));
        if let Some(v) = vehicle {
            mqtt.push_str(&format!("vehicle = \"{v}\"\n"));
        }
        env.push((var, (*password).to_owned()));
    }
    (write_config(dir, prefix, &mqtt), env)
}

fn login(user: &str) -> Option<(&str, &str)> {
    LOGINS
        .iter()
        .find(|l| l.0 == user)
        .map(|(u, p, _, _)| (*u, *p))
}

/// A telemetry message with the red stop lamp and an active fault.
fn red_telemetry(ts: i64) -> String {
    let ts = chrono::DateTime::from_timestamp(ts, 0).unwrap();
    format!(
        "{{\"ts\": \"{}\", \"engine_hours\": 1500.0, \"dtcs\": [{{\"spn\": 100, \"fmi\": 1}}], \"lamps\": {{\"red_stop\": \"on\"}}}}",
        ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// Finding 2: a gateway login stays in its fleet. Login A's publish into
/// fleet B (red stop lamp) is refused, closes its connection and opens no
/// ticket; A cannot subscribe to `{prefix}/#` or B's alerts; a vehicle
/// login cannot publish for another vehicle; retained publishes are
/// refused and a later subscriber gets no retained message; anonymous
/// clients and wrong passwords are turned away; A using B's client id
/// does not displace B. Meanwhile B's gateway publishes, and every one of
/// its readings is stored, its critical fault alerted on B's topic.
#[test]
fn a_gateway_login_stays_in_its_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("acl");
    let (config, env) = fleet_logins_config(dir.path(), &prefix);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let data = dir.path().join("data");
    register(
        &data,
        &config,
        &[("fb", "TRK-B7"), ("fb", "TRK-B9"), ("fb", "TRK-B2")],
    );
    let token = create_token(&data, &config);
    let service = Service::start_with_env(&data, &config, &env);
    let addr = service.mqtt.clone().unwrap();
    let topic =
        |fleet: &str, vehicle: &str, channel: &str| format!("{prefix}/{fleet}/{vehicle}/{channel}");

    // B's own systems read B's alerts with B's login.
    let b_alerts = format!("{prefix}/fb/alerts");
    let mut ops_b = Raw::subscribed(&addr, "ops-b", login("gw-b"), &b_alerts);
    const N: usize = 300;
    let victim = victim(
        addr.clone(),
        "victim-b",
        login("gw-b").map(|(u, p)| (u.to_owned(), p.to_owned())),
        topic("fb", "TRK-B7", "telemetry"),
        N,
    );

    // A publishes a red stop lamp into B's fleet: no PUBACK, closed.
    let mut a = Raw::connected(&addr, "gw-a-1", login("gw-a"));
    assert!(!a.publish_acked(
        &topic("fb", "TRK-B9", "telemetry"),
        red_telemetry(T0).as_bytes(),
        1
    ));
    assert!(a.closed_within(Duration::from_secs(1)));
    // At QoS 0 too.
    let mut a = Raw::connected(&addr, "gw-a-2", login("gw-a"));
    a.publish(
        &topic("fb", "TRK-B9", "can"),
        red_dm1(T0 as f64).as_bytes(),
        QoS::AtMostOnce,
        false,
        0,
    );
    assert!(a.closed_within(Duration::from_secs(10)));

    // A's subscriptions: only its own alerts.
    let mut a = Raw::connected(&addr, "gw-a-3", login("gw-a"));
    let everything = format!("{prefix}/#");
    let any_alerts = format!("{prefix}/+/alerts");
    let a_alerts = format!("{prefix}/fa/alerts");
    let b_data = format!("{prefix}/fb/+/telemetry");
    assert_eq!(
        a.subscribe(
            &[&everything, &b_alerts, &any_alerts, "#", &b_data, &a_alerts],
            1
        ),
        [
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
        ]
    );
    assert_eq!(a.subscribe(&[&b_alerts], 2), [SubscribeReasonCode::Failure]);
    // Refused filters leave the connection open; its own data still goes.
    assert!(a.publish_acked(
        &topic("fa", "TRK-A1", "telemetry"),
        reading(0).as_bytes(),
        3
    ));

    // A with B's gateway's client id: its own session, B stays connected
    // (the victim's count below proves it).
    let mut a = Raw::connected(&addr, "victim-b", login("gw-a"));
    assert!(a.publish_acked(
        &topic("fa", "TRK-A1", "telemetry"),
        reading(1).as_bytes(),
        1
    ));

    // A vehicle login, for another vehicle of its fleet.
    let mut b1 = Raw::connected(&addr, "gw-b1", login("gw-b1"));
    assert!(!b1.publish_acked(
        &topic("fb", "TRK-B2", "can"),
        red_dm1(T0 as f64).as_bytes(),
        1
    ));

    // Retained: a reading of B's own truck, and a forged alert.
    let mut b = Raw::connected(&addr, "gw-b-retain", login("gw-b"));
    b.publish(
        &topic("fb", "TRK-B2", "telemetry"),
        reading(5).as_bytes(),
        QoS::AtLeastOnce,
        true,
        1,
    );
    assert!(!b.acked(1, Duration::from_secs(10)));
    let mut b = Raw::connected(&addr, "gw-b-forge", login("gw-b"));
    let forged = r#"{"kind": "critical_fault", "vehicle": "TRK-FORGED"}"#;
    b.publish(&b_alerts, forged.as_bytes(), QoS::AtLeastOnce, true, 1);
    assert!(!b.acked(1, Duration::from_secs(10)));
    let mut b = Raw::connected(&addr, "gw-b-forge", login("gw-b"));
    assert!(!b.publish_acked(&b_alerts, forged.as_bytes(), 1));

    // No login, a wrong password, an unknown user.
    let (_, code) = Raw::connect(&addr, "anon", None, true);
    assert_eq!(code, Some(ConnectReturnCode::NotAuthorized));
    let (_, code) = Raw::connect(&addr, "guess", Some(("gw-b", "password of a")), true);
    assert_eq!(code, Some(ConnectReturnCode::BadUserNamePassword));
    let (_, code) = Raw::connect(&addr, "guess", Some(("root", "root")), true);
    assert_eq!(code, Some(ConnectReturnCode::BadUserNamePassword));

    assert_eq!(victim.join().unwrap(), N, "every reading of B acknowledged");
    wait_meters(&data, "TRK-B7", N);

    // A later subscriber to B's alerts gets B's critical fault, and
    // nothing retained (the forged alert least of all).
    let mut late = Raw::subscribed(&addr, "ops-b-late", login("gw-b"), &b_alerts);
    let mut gw = Raw::connected(&addr, "victim-b-can", login("gw-b"));
    assert!(gw.publish_acked(
        &topic("fb", "TRK-B7", "can"),
        red_dm1(T0 as f64 + 86_400.0).as_bytes(),
        1
    ));
    late.alert_for("TRK-B7", Duration::from_secs(20));
    ops_b.alert_for("TRK-B7", Duration::from_secs(20));

    // Nothing of the refused publishes was stored or opened a ticket.
    assert_eq!(meters_of(&data, "TRK-B7"), N, "each reading once");
    for v in ["TRK-B9", "TRK-B2"] {
        assert_eq!(meters_of(&data, v), 0, "{v}");
    }
    let opened: Vec<(String, String)> = tickets(&service.http, &token)
        .iter()
        .map(|t| {
            (
                t["vehicle"].as_str().unwrap_or_default().to_owned(),
                t["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(opened, [("TRK-B7".to_owned(), "fault".to_owned())]);
    for (reason, at_least) in [
        ("other_fleet", 2),
        ("other_vehicle", 1),
        ("subscribe", 6),
        ("retain", 2),
        ("alerts", 1),
        ("anonymous", 1),
        ("login", 2),
    ] {
        let n = metric(
            &service.http,
            &format!("fleetcare_mqtt_refused_total{{reason=\"{reason}\"}}"),
        );
        assert!(n >= at_least, "{reason}: {n}");
    }
    assert!(service.stop().success());
    let store = crate::mqtt::open_store(&data).unwrap();
    let seen: Vec<String> = store
        .seen_vehicles()
        .iter()
        .map(|v| v.vehicle.to_string())
        .collect();
    assert!(
        !seen.iter().any(|v| v == "TRK-B9" || v == "TRK-B2"),
        "{seen:?}"
    );
}

/// Runs `fleetcare run` with `config` until it exits or prints its ready
/// line; (exit status if it exited, stderr so far).
fn run_briefly(dir: &Path, config: &Path) -> (Option<std::process::ExitStatus>, String) {
    let mut child = spawn_run(&dir.join("data"), config, &[], Stdio::piped());
    let mut stdout = child.stdout.take().unwrap();
    let ready = std::thread::spawn(move || {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        String::from_utf8_lossy(&line).into_owned()
    });
    let line = ready.join().unwrap();
    let status = if line.starts_with("fleetcare ready") {
        crate::mqtt::signal(&child, "TERM");
        crate::mqtt::wait_exit(&mut child, Duration::from_secs(60));
        None
    } else {
        Some(crate::mqtt::wait_exit(&mut child, Duration::from_secs(60)))
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

/// The loopback rule, end to end: a listener other machines can reach
/// with no logins is refused at start with what to configure; with
/// `allow_anonymous = true` it starts and says so.
#[test]
fn an_exposed_broker_without_logins_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("exposed");
    let config = write_config(dir.path(), &prefix, "listen = \"0.0.0.0:0\"");
    let (status, stderr) = run_briefly(dir.path(), &config);
    assert!(status.is_some_and(|s| !s.success()), "{stderr}");
    assert!(stderr.contains("[[mqtt.logins]]"), "{stderr}");
    assert!(stderr.contains("allow_anonymous = true"), "{stderr}");

    let config = write_config(
        dir.path(),
        &prefix,
        "listen = \"0.0.0.0:0\"\nallow_anonymous = true",
    );
    let (status, stderr) = run_briefly(dir.path(), &config);
    assert_eq!(status, None, "it started: {stderr}");
    assert!(
        stderr.contains("WARN") && stderr.contains("allow_anonymous = true"),
        "{stderr}"
    );
}

/// Finding 3's packet limit: a PUBLISH announcing more than
/// `max_packet_bytes` closes the connection from its header, long before
/// its body could arrive; a publish of exactly the limit is taken (a
/// dead letter, its payload being above `max_payload_bytes`).
#[test]
fn an_oversized_packet_is_refused_from_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("oversized");
    let config = write_config(dir.path(), &prefix, "listen = \"127.0.0.1:0\"");
    let data = dir.path().join("data");
    let service = Service::start(&data, &config);
    let addr = service.mqtt.clone().unwrap();
    let max_packet = 256 * 1024 + 64 * 1024;

    let mut big = Raw::connected(&addr, "big", None);
    // PUBLISH QoS 0 with a remaining length of 200 MiB, then 1 KiB of it.
    let mut header = vec![0x30];
    let mut len = 200usize << 20;
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        header.push(byte);
        if len == 0 {
            break;
        }
    }
    assert!(big.write_raw(&header));
    let started = Instant::now();
    let _ = big.write_raw(&[b'x'; 1024]);
    assert!(big.closed_within(Duration::from_secs(10)));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        metric(
            &service.http,
            "fleetcare_mqtt_refused_total{reason=\"packet_too_large\"}"
        ),
        1
    );

    let topic = format!("{prefix}/acme/TRK-1/can");
    let mut ok = Raw::connected(&addr, "max", None);
    let payload = vec![b'x'; max_packet - 2 - topic.len() - 2];
    ok.publish(&topic, &payload, QoS::AtLeastOnce, false, 1);
    assert!(
        ok.acked(1, Duration::from_secs(30)),
        "a packet of the maximum size"
    );
    let mut over = Raw::connected(&addr, "over", None);
    let payload = vec![b'x'; max_packet - 2 - topic.len() - 1];
    assert!(!over.publish_acked(&topic, &payload, 1), "one byte more");
    assert!(service.stop().success());
    let store = crate::mqtt::open_store(&data).unwrap();
    assert_eq!(
        store.totals().dead_letters.get("payload_too_large"),
        Some(&1)
    );
}

/// TLS on the listener (`tls_cert_file`, `tls_key_file`): a client that
/// trusts the test CA publishes and is acknowledged once stored; a plain
/// client gets nothing.
#[test]
fn the_listener_speaks_tls_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("tls");
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls");
    let config = write_config(
        dir.path(),
        &prefix,
        &format!(
            "listen = \"127.0.0.1:0\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            tls.join("edge.pem").display(),
            tls.join("edge.key").display()
        ),
    );
    let data = dir.path().join("data");
    let service = Service::start(&data, &config);
    let addr: std::net::SocketAddr = service.mqtt.clone().unwrap().parse().unwrap();

    // Plain MQTT to the TLS port: no CONNACK.
    let (_, code) = Raw::connect(&addr.to_string(), "plain", None, true);
    assert_eq!(code, None);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ca = tls.join("ca.pem");
    runtime.block_on(async {
        let tls = fleetcare::runtime::tls::client_config(Some(&ca)).unwrap();
        let mut o = rumqttc::MqttOptions::new("tls-gw", "127.0.0.1", addr.port());
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ));
        let (client, mut eventloop) = rumqttc::AsyncClient::new(o, 10);
        client
            .publish(
                format!("{prefix}/acme/TRK-T/telemetry"),
                rumqttc::QoS::AtLeastOnce,
                false,
                reading(0),
            )
            .await
            .unwrap();
        let acked = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) =
                    eventloop.poll().await.unwrap()
                {
                    return;
                }
            }
        })
        .await;
        assert!(acked.is_ok(), "no PUBACK over TLS");
    });
    assert_eq!(meters_of(&data, "TRK-T"), 1);
    assert!(service.stop().success());
}
