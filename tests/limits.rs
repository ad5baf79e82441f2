//! Issue 20, findings 4 and 9, end to end against `fleetcare run` on the
//! embedded broker: the attacks of the findings are tried and fail, while a
//! victim gateway's messages are all stored.
//!
//! - One 105 KB telemetry message with 5,000 DTCs and the red stop lamp,
//!   for a made-up fleet and vehicle, opened 5,000 P1 tickets: now it is a
//!   `too_many_dtcs` dead letter, opens no ticket, and support hears of the
//!   made-up vehicle once, even after a restart. The same message with
//!   three DTCs for a registered truck opens its three P1 tickets.
//! - One 200 KB payload of garbage lines made 100,000 dead letters: now at
//!   most 101 records, all 100,000 counted.
//! - Event times of any year were accepted: 1970 and two days ahead are
//!   now `implausible_time` dead letters; ten days back is stored.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

use crate::alerts::{create_token, http, register, tickets};
use crate::mqtt::{
    Publisher, Service, open_store, stored, table, unique_prefix, wait_for_store, wait_subscribed,
    write_config,
};

/// A telemetry message at `ts` listing `n` DTCs (SPN 1000 on, FMI 1) with
/// the red stop lamp on.
fn red_telemetry(ts: chrono::DateTime<Utc>, n: u32) -> String {
    let dtcs: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"spn": {}, "fmi": 1, "oc": 1, "sa": 0}}"#, 1000 + i))
        .collect();
    format!(
        r#"{{"ts": "{}", "dtcs": [{}], "lamps": {{"mil": "off", "red_stop": "on", "amber_warning": "off", "protect": "off"}}}}"#,
        ts.to_rfc3339_opts(SecondsFormat::Secs, true),
        dtcs.join(", ")
    )
}

/// Engine hours of a telemetry message.
fn hours_telemetry(ts: chrono::DateTime<Utc>, hours: f64) -> String {
    format!(
        r#"{{"ts": "{}", "engine_hours": {hours}}}"#,
        ts.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// An MQTT subscriber of the test's own: every alert on `topics`, with
/// the topic it came on as `_topic`.
fn subscribe(mqtt: &str, id: &str, topics: &[String]) -> mpsc::Receiver<Value> {
    let (host, port) = mqtt.rsplit_once(':').unwrap();
    let mut o = MqttOptions::new(id, host, port.parse().unwrap());
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(o, 100);
    for t in topics {
        client.subscribe(t, QoS::AtLeastOnce).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let (subscribed_tx, subscribed) = mpsc::channel();
    let wanted = topics.len();
    std::thread::spawn(move || {
        let _client = client;
        let mut subacks = 0;
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    subacks += 1;
                    if subacks == wanted {
                        let _ = subscribed_tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let mut alert: Value =
                        serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    if let Value::Object(m) = &mut alert {
                        m.insert("_topic".into(), Value::String(p.topic.clone()));
                    }
                    if tx.send(alert).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    subscribed
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed");
    rx
}

/// The alert log (`GET /api/v1/alerts`), oldest first.
fn alert_log(service: &Service, token: &str) -> Vec<Value> {
    let (status, body) = http(
        &service.http,
        "GET",
        "/api/v1/alerts?limit=1000",
        Some(token),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let mut all: Vec<Value> = serde_json::from_str(&body).unwrap();
    all.reverse();
    all
}

fn of_kind<'a>(log: &'a [Value], kind: &str, vehicle: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|a| a["kind"] == kind && a["vehicle"] == vehicle)
        .collect()
}

/// Polls `done` until it holds; fails after `limit`.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `/metrics` has `line`.
fn has_metric(service: &Service, line: &str) -> bool {
    let (_, body) = http(&service.http, "GET", "/metrics", None, None);
    body.lines().any(|l| l == line)
}

/// After a restart: probes (telemetry with only a time, which makes no
/// record, each with a time of its own) until one more message is stored.
fn wait_ready(publisher: &Publisher, prefix: &str, data: &Path) {
    let before = open_store(data).map_or(0, |s| stored(&s));
    let mut probe = 0i64;
    wait_until("fleetcare subscribes", Duration::from_secs(30), || {
        probe += 1;
        let ts = Utc::now() - chrono::Duration::seconds(probe);
        publisher.publish(
            &format!("{prefix}/probe/PROBE/telemetry"),
            format!(
                r#"{{"ts": "{}"}}"#,
                ts.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        );
        std::thread::sleep(Duration::from_millis(100));
        open_store(data).is_ok_and(|s| stored(&s) > before)
    });
}

/// The configuration for `fleetcare run`, with `database` when given.
fn config(dir: &Path, prefix: &str, database: Option<&str>) -> PathBuf {
    let path = write_config(dir, prefix, "listen = \"127.0.0.1:0\"");
    if let Some(url) = database {
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("\n[database]\nurl = \"{url}\"\n"));
        std::fs::write(&path, text).unwrap();
    }
    path
}

#[test]
fn a_flood_of_dtcs_opens_no_ticket_and_an_unknown_vehicle_is_alerted_once() {
    flood_of_dtcs(None);
}

/// The same with tickets and alerts in PostgreSQL: "once" must hold there.
#[test]
fn a_flood_of_dtcs_opens_no_ticket_and_an_unknown_vehicle_is_alerted_once_on_postgres() {
    let Ok(server) = std::env::var("FLEETCARE_TEST_POSTGRES_URL") else {
        eprintln!(
            "skipped: FLEETCARE_TEST_POSTGRES_URL is not set, so this test did not run on PostgreSQL"
        );
        return;
    };
    let name = format!(
        "fleetcare_limits_{}_{}",
        std::process::id(),
        Utc::now().timestamp_subsec_nanos()
    );
    let admin = |sql: String| {
        let server = server.clone();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                use sqlx::Connection as _;
                sqlx::any::install_default_drivers();
                let mut conn = sqlx::AnyConnection::connect(&server).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            });
    };
    admin(format!("CREATE DATABASE {name}"));
    let (base, query) = server.split_once('?').unwrap_or((&server, ""));
    let (root, _) = base.rsplit_once('/').unwrap();
    let url = if query.is_empty() {
        format!("{root}/{name}")
    } else {
        format!("{root}/{name}?{query}")
    };
    let outcome = std::panic::catch_unwind(|| flood_of_dtcs(Some(&url)));
    admin(format!("DROP DATABASE {name} WITH (FORCE)"));
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}

fn flood_of_dtcs(database: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("limits");
    let config = config(dir.path(), &prefix, database);
    let data = dir.path().join("data");
    let token = create_token(&data, &config);
    register(&data, &config, "acme", &["TRK-001"]);
    let service = Service::start(&data, &config);
    let mqtt = service.mqtt.clone().unwrap();
    let attacker = Publisher::connect(&mqtt, &format!("attacker-{prefix}"));
    wait_subscribed(&attacker, &prefix, &data);
    let support = subscribe(
        &mqtt,
        &format!("support-{prefix}"),
        &[
            format!("{prefix}/_support/alerts"),
            format!("{prefix}/madeup/alerts"),
        ],
    );

    // The victim, a gateway of its own, sends engine hours every five
    // minutes of truck time while the attack goes on.
    let now = Utc::now();
    const VICTIM_MESSAGES: usize = 60;
    let victim = {
        let (mqtt, prefix) = (mqtt.clone(), prefix.clone());
        std::thread::spawn(move || {
            let victim = Publisher::connect(&mqtt, &format!("victim-{prefix}"));
            for k in 0..VICTIM_MESSAGES {
                let ts = now - chrono::Duration::hours(6) + chrono::Duration::minutes(5 * k as i64);
                victim.publish(
                    &format!("{prefix}/acme/VICTIM/telemetry"),
                    hours_telemetry(ts, 1000.0 + 0.05 * k as f64),
                );
            }
            victim.wait_acked(VICTIM_MESSAGES as u64, Duration::from_secs(30));
        })
    };
    // Minutes ago: the tickets' SLAs (P1: answer within an hour) are not
    // breached during the test, which would alert too.
    let flood = red_telemetry(now - chrono::Duration::minutes(5), 5_000);
    assert!(flood.len() > 100_000, "{} bytes", flood.len());
    attacker.publish(&format!("{prefix}/madeup/X-1/telemetry"), flood.clone());
    // The same message with three DTCs, from a registered truck.
    attacker.publish(
        &format!("{prefix}/acme/TRK-001/telemetry"),
        red_telemetry(now - chrono::Duration::minutes(5), 3),
    );
    victim.join().unwrap();
    wait_for_store(&data, Duration::from_secs(60), |s| {
        stored(s) == 1 + 2 + VICTIM_MESSAGES as u64
    });

    // The registered truck's three P1 tickets, and nothing else: the
    // alerts of the three are the last the log gets of this batch's.
    wait_until("three ticket alerts", Duration::from_secs(30), || {
        alert_log(&service, &token)
            .iter()
            .filter(|a| a["kind"] == "critical_fault")
            .count()
            == 3
    });
    let all = tickets(&service.http, &token);
    let mut keys: Vec<&str> = all.iter().map(|t| t["key"].as_str().unwrap()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["1000:1", "1001:1", "1002:1"], "{all:?}");
    for t in &all {
        assert_eq!(
            (&t["fleet"], &t["vehicle"], &t["priority"], &t["kind"]),
            (
                &Value::from("acme"),
                &Value::from("TRK-001"),
                &Value::from("P1"),
                &Value::from("fault")
            )
        );
    }
    // The flood is one dead letter that says why.
    let dead = table(&data, "dead_letters");
    let reasons: Vec<&str> = dead
        .column("reason")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(reasons, ["too_many_dtcs"]);
    let detail = dead
        .column("detail")
        .unwrap()
        .str()
        .unwrap()
        .get(0)
        .unwrap();
    assert!(
        detail.contains("lists 5000 DTCs, more than the 445"),
        "{detail}"
    );
    for line in [
        r#"fleetcare_dead_letters_total{reason="too_many_dtcs"} 1"#,
        r#"fleetcare_tickets_opened_total{kind="fault",priority="P1"} 3"#,
    ] {
        assert!(has_metric(&service, line), "{line}");
    }
    // Support heard of the made-up vehicle once, on its own topic.
    let log = alert_log(&service, &token);
    let unknown = of_kind(&log, "unknown_vehicle", "X-1");
    assert_eq!(unknown.len(), 1, "{log:#?}");
    assert_eq!(unknown[0]["fleet"], "madeup");
    assert!(of_kind(&log, "unknown_vehicle", "TRK-001").is_empty());
    let published = loop {
        let a = support
            .recv_timeout(Duration::from_secs(10))
            .expect("the unknown-vehicle alert on the support topic");
        if a["vehicle"] == "X-1" {
            break a;
        }
    };
    assert_eq!(published["kind"], "unknown_vehicle");
    assert_eq!(published["_topic"], format!("{prefix}/_support/alerts"));
    assert_eq!(published["ticket"], Value::Null);
    // Every reading of the victim is stored.
    let meters = table(&data, "meters");
    let victim_rows = meters
        .column("vehicle")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .filter(|v| *v == "VICTIM")
        .count();
    assert_eq!(victim_rows, VICTIM_MESSAGES);
    assert!(service.stop().success());

    // After a restart the made-up vehicle sends again: no second alert, no
    // ticket. A fourth fault of the registered truck afterwards tells when
    // the real-time path has handled both.
    let service = Service::start(&data, &config);
    let mqtt = service.mqtt.clone().unwrap();
    let attacker = Publisher::connect(&mqtt, &format!("attacker2-{prefix}"));
    wait_ready(&attacker, &prefix, &data);
    let later = Utc::now() - chrono::Duration::minutes(1);
    attacker.publish(
        &format!("{prefix}/madeup/X-1/telemetry"),
        red_telemetry(later, 2),
    );
    attacker.publish(
        &format!("{prefix}/acme/TRK-001/telemetry"),
        red_telemetry(later, 4),
    );
    wait_until("the fourth ticket's alert", Duration::from_secs(30), || {
        alert_log(&service, &token)
            .iter()
            .filter(|a| a["kind"] == "critical_fault")
            .count()
            == 4
    });
    let log = alert_log(&service, &token);
    assert_eq!(of_kind(&log, "unknown_vehicle", "X-1").len(), 1, "{log:#?}");
    let all = tickets(&service.http, &token);
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|t| t["vehicle"] == "TRK-001"), "{all:?}");
    assert!(has_metric(
        &service,
        r#"fleetcare_tickets_skipped_total{reason="unregistered_vehicle"} 2"#
    ));
    assert!(service.stop().success());
    // Nothing went to the made-up fleet's own alerts topic.
    while let Ok(a) = support.try_recv() {
        assert_eq!(a["_topic"], format!("{prefix}/_support/alerts"), "{a}");
    }
}

#[test]
fn a_garbage_payload_makes_at_most_101_dead_letters_and_the_messages_around_it_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("garbage");
    let config = config(dir.path(), &prefix, None);
    let data = dir.path().join("data");
    let service = Service::start(&data, &config);
    let publisher = Publisher::connect(service.mqtt.as_deref().unwrap(), &format!("p-{prefix}"));
    wait_subscribed(&publisher, &prefix, &data);
    let now = Utc::now();
    let ok = format!("{prefix}/acme/TRK-OK/telemetry");
    publisher.publish(
        &ok,
        hours_telemetry(now - chrono::Duration::hours(1), 500.0),
    );
    let garbage = "x\n".repeat(100_000);
    assert_eq!(garbage.len(), 200_000);
    publisher.publish(&format!("{prefix}/acme/GARB/can"), garbage);
    publisher.publish(&ok, hours_telemetry(now, 500.5));
    wait_for_store(&data, Duration::from_secs(60), |s| stored(s) == 1 + 3);
    wait_until(
        "the dead letters on /metrics",
        Duration::from_secs(10),
        || {
            has_metric(
                &service,
                r#"fleetcare_dead_letters_total{reason="candump"} 100000"#,
            )
        },
    );
    assert!(service.stop().success());
    let dead = table(&data, "dead_letters");
    assert_eq!(dead.height(), 101);
    let details: Vec<&str> = dead
        .column("detail")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert!(
        details.iter().any(|d| d.ends_with(
            "and 99,899 more dead letters of this message, counted but not kept one by one (99,899 candump): the first 101 are kept"
        )),
        "{:?}",
        details.last()
    );
    assert_eq!(
        open_store(&data).unwrap().totals().dead_letters["candump"],
        100_000
    );
    let meters = table(&data, "meters");
    assert_eq!(meters.height(), 2, "both readings around the garbage");
}

#[test]
fn implausible_event_times_are_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("times");
    let config = config(dir.path(), &prefix, None);
    let data = dir.path().join("data");
    let service = Service::start(&data, &config);
    let publisher = Publisher::connect(service.mqtt.as_deref().unwrap(), &format!("p-{prefix}"));
    wait_subscribed(&publisher, &prefix, &data);
    let now = Utc::now();
    let topic = format!("{prefix}/acme/TRK-T/telemetry");
    publisher.publish(
        &topic,
        r#"{"ts": "1970-01-01T00:00:00Z", "engine_hours": 100}"#,
    );
    publisher.publish(
        &topic,
        hours_telemetry(now + chrono::Duration::days(2), 101.0),
    );
    let ten_days_ago = now - chrono::Duration::days(10);
    publisher.publish(&topic, hours_telemetry(ten_days_ago, 102.0));
    // And a candump line of a clock never set, beside a good one (of
    // another truck, whose engine hours are its own).
    let can = format!("{prefix}/acme/TRK-C/can");
    publisher.publish(
        &can,
        format!(
            "(5.000000) can0 18FEE500#E803000055667788\n({}.000000) can0 18FEE500#F803000055667788\n",
            now.timestamp() - 3600
        ),
    );
    wait_for_store(&data, Duration::from_secs(60), |s| stored(s) == 1 + 4);
    wait_until(
        "the dead letters on /metrics",
        Duration::from_secs(10),
        || {
            has_metric(
                &service,
                r#"fleetcare_dead_letters_total{reason="implausible_time"} 3"#,
            )
        },
    );
    assert!(service.stop().success());
    let dead = table(&data, "dead_letters");
    let reasons: Vec<&str> = dead
        .column("reason")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(reasons, ["implausible_time"; 3]);
    let meters = table(&data, "meters");
    let raw: Vec<f64> = meters
        .column("raw")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    // Ten days back from telemetry, an hour back from candump (0x03F8 ×
    // 0.05 h).
    assert_eq!(raw.len(), 2, "{meters:?}");
    assert!(raw.contains(&102.0) && raw.contains(&50.8), "{raw:?}");
}
