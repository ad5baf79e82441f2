//! Issue 6, end to end: an external MQTT client publishes a red-stop-lamp
//! DM1 for a registered truck; a ticket shows in the API, the alert arrives on the
//! fleet's alerts topic and at a webhook receiver with a valid signature;
//! the same DM1 repeated every second for a minute opens no second ticket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

use crate::mqtt::{Publisher, Service, unique_prefix, wait_subscribed};

/// A one-shot HTTP request over a fresh connection; (status, body).
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// One request a webhook receiver took.
#[derive(Debug)]
pub(crate) struct Hook {
    pub(crate) path: String,
    timestamp: String,
    signature: String,
    pub(crate) body: Vec<u8>,
}

/// A webhook receiver that answers every request with `answer` (the
/// status line and headers, without the blank line that ends them) and
/// hands each request on.
fn webhook_receiver_answering(answer: String) -> (String, mpsc::Receiver<Hook>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                continue;
            }
            let path = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let (mut timestamp, mut signature) = (String::new(), String::new());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    match k.to_ascii_lowercase().as_str() {
                        "x-fleetcare-signature" => signature = v.trim().to_owned(),
                        "x-fleetcare-timestamp" => timestamp = v.trim().to_owned(),
                        "content-length" => length = v.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "{answer}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let hook = Hook {
                path,
                timestamp,
                signature,
                body,
            };
            if tx.send(hook).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

/// A webhook receiver that takes every alert (200).
pub(crate) fn webhook_receiver() -> (String, mpsc::Receiver<Hook>) {
    webhook_receiver_answering("HTTP/1.1 200 OK".to_owned())
}

/// A receiver's check, written from the recipe in docs/webhooks.md rather than with
/// fleetcare's code: the timestamp within five minutes of now, and the
/// signature the HMAC-SHA256 of `"{timestamp}.{body}"`, compared in
/// constant time.
pub(crate) fn verified(secret: &[u8], hook: &Hook) -> Result<(), String> {
    use hmac::{Hmac, KeyInit, Mac};
    let sent: i64 = hook
        .timestamp
        .parse()
        .map_err(|_| format!("timestamp {:?}", hook.timestamp))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - sent).abs() > 300 {
        return Err(format!("timestamp {sent} is not within 5 minutes of {now}"));
    }
    let hex = hook
        .signature
        .strip_prefix("sha256=")
        .ok_or_else(|| format!("signature {:?}", hook.signature))?;
    let digest: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("signature {:?}", hook.signature))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(hook.timestamp.as_bytes());
    mac.update(b".");
    mac.update(&hook.body);
    mac.verify_slice(&digest)
        .map_err(|_| "the signature does not match".to_owned())
}

pub(crate) fn tickets(http_addr: &str, token: &str) -> Vec<Value> {
    let (status, body) = http(http_addr, "GET", "/api/v1/tickets", Some(token), None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Registers `vehicles` of `fleet` (as compactors commissioned today, so
/// that no service falls due) with `fleetcare vehicles import`: tickets are
/// opened only for registered vehicles.
pub(crate) fn register(data: &Path, config: &Path, fleet: &str, vehicles: &[&str]) {
    let csv = data.with_extension("vehicles.csv");
    let today = chrono::Utc::now().date_naive();
    let mut text = "vehicle_id,fleet_id,model_id,vin,commissioned_on,depot\n".to_owned();
    for v in vehicles {
        text.push_str(&format!("{v},{fleet},compactor-c12,,{today},north\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let mut import = crate::mqtt::fleetcare(data, config);
    crate::mqtt::succeed(import.args(["vehicles", "import"]).arg(&csv));
}

pub(crate) fn create_token(data: &Path, config: &Path) -> String {
    let mut tokens = crate::mqtt::fleetcare(data, config);
    crate::mqtt::succeed(tokens.args(["tokens", "create", "--role", "support"]))
        .trim()
        .to_owned()
}

/// A DM1 with the red stop lamp on and SPN 100 FMI 1 (oil pressure low).
pub(crate) fn red_dm1(ts: f64) -> String {
    format!("({ts:.6}) can0 18FECA00#10FF64000101FFFF\n")
}

#[test]
fn a_red_stop_lamp_opens_one_ticket_and_alerts_once() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("alert");
    let (hook, hooks) = webhook_receiver();
    // Two more webhooks of the fleet answer with redirects to another
    // receiver (issue 20, finding 9).
    let (other, elsewhere) = webhook_receiver();
    let redirecting = |status: u16, reason: &str| {
        webhook_receiver_answering(format!(
            "HTTP/1.1 {status} {reason}\r\nLocation: http://{other}/stolen"
        ))
    };
    let (temporary_addr, temporary) = redirecting(307, "Temporary Redirect");
    let (permanent_addr, permanent) = redirecting(308, "Permanent Redirect");
    let config = dir.path().join("fleetcare.toml");
    let webhook = |url: String| {
        format!(
            "\n[[webhooks]]\nfleet = \"acme\"\nurl = \"{url}\"\nsecret_env = \"FLEETCARE_TEST_HOOK_SECRET\"\n"
        )
    };
    std::fs::write(
        &config,
        format!(
            "[mqtt]\nlisten = \"127.0.0.1:0\"\ntopic_prefix = \"{prefix}\"\nclient_id = \"fc-{prefix}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n{}{}{}",
            webhook(format!("http://{hook}/hook")),
            webhook(format!("http://{temporary_addr}/moved-307")),
            webhook(format!("http://{permanent_addr}/moved-308")),
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let token = create_token(&data, &config);
    register(&data, &config, "acme", &["TRK-042"]);
    let secret = "a shared secret";
    let service =
        Service::start_with_env(&data, &config, &[("FLEETCARE_TEST_HOOK_SECRET", secret)]);
    let mqtt = service.mqtt.clone().unwrap();
    let publisher = Publisher::connect(&mqtt, &format!("pub-{prefix}"));
    wait_subscribed(&publisher, &prefix, &data);

    // The fleet's systems listen on the alerts topic.
    let (host, port) = mqtt.rsplit_once(':').unwrap();
    let mut o = MqttOptions::new(format!("ops-{prefix}"), host, port.parse().unwrap());
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(o, 100);
    client
        .subscribe(format!("{prefix}/acme/alerts"), QoS::AtLeastOnce)
        .unwrap();
    let (alerts_tx, alerts) = mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = alerts_tx.send(None);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = alerts_tx.send(Some(p.payload.to_vec()));
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    assert_eq!(
        alerts.recv_timeout(Duration::from_secs(10)).unwrap(),
        None,
        "subscribed"
    );

    let t0 = 1_772_323_200.0;
    let topic = format!("{prefix}/acme/TRK-042/can");
    let sent = Instant::now();
    publisher.publish(&topic, red_dm1(t0));
    let ticket = loop {
        if let Some(t) = tickets(&service.http, &token).into_iter().next() {
            break t;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "no ticket within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    eprintln!("red-stop DM1 to a visible ticket: {:?}", sent.elapsed());
    assert_eq!(ticket["kind"], "fault");
    assert_eq!(ticket["key"], "100:1");
    assert_eq!(ticket["priority"], "P1");
    assert_eq!(ticket["fleet"], "acme");
    assert_eq!(ticket["vehicle"], "TRK-042");
    assert_eq!(ticket["state"], "open");

    let alert = alerts
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("an alert on the alerts topic");
    let alert: Value = serde_json::from_slice(&alert).unwrap();
    assert_eq!(alert["kind"], "critical_fault");
    assert_eq!(alert["vehicle"], "TRK-042");
    assert_eq!(alert["ticket"], ticket["id"]);

    let hook = hooks.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(hook.path, "/hook");
    verified(secret.as_bytes(), &hook).unwrap();
    let hooked: Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(hooked["id"], alert["id"], "the same alert");
    // Replayed with another time (or another body), the signature fails.
    let replayed = Hook {
        timestamp: (hook.timestamp.parse::<i64>().unwrap() + 600).to_string(),
        ..hook
    };
    assert!(verified(secret.as_bytes(), &replayed).is_err());

    // The webhooks that answered 307 and 308 got the alert once each: the
    // redirect is a failed delivery, not followed and not retried.
    let failures = "fleetcare_webhook_failures_total 2";
    let deadline = Instant::now() + Duration::from_secs(10);
    while !http(&service.http, "GET", "/metrics", None, None)
        .1
        .lines()
        .any(|l| l == failures)
    {
        assert!(Instant::now() < deadline, "no {failures} within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    for (status, redirector) in [(307, &temporary), (308, &permanent)] {
        let hook = redirector.recv_timeout(Duration::from_secs(1)).unwrap();
        assert_eq!(hook.path, format!("/moved-{status}"));
        verified(secret.as_bytes(), &hook).unwrap();
    }
    assert!(
        elsewhere.recv_timeout(Duration::from_millis(1500)).is_err(),
        "nothing reached the URL redirected to"
    );
    assert!(temporary.try_recv().is_err() && permanent.try_recv().is_err());

    // The DM1 again every second for a minute: the fault stays active, so
    // no new episode, no second ticket, no second alert.
    for s in 1..=60 {
        publisher.publish(&topic, red_dm1(t0 + f64::from(s)));
    }
    // And a message after them, to know they have all been handled.
    publisher.publish(
        &topic,
        format!("({:.6}) can0 18FEE500#A0860100FFFFFFFF\n", t0 + 61.0),
    );
    crate::mqtt::wait_for_store(&data, Duration::from_secs(30), |s| {
        crate::mqtt::stored(s) == 1 + 1 + 60 + 1
    });
    let all = tickets(&service.http, &token);
    assert_eq!(all.len(), 1, "{all:?}");
    let (_, metrics) = http(&service.http, "GET", "/metrics", None, None);
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"fleetcare_tickets_opened_total{kind="fault",priority="P1"} 1"#),
        "{metrics}"
    );
    assert!(service.stop().success());
    assert!(alerts.try_recv().is_err(), "no second alert");
    assert!(hooks.try_recv().is_err(), "no second webhook call");
}

/// Issue 20 (finding 9): a webhook that answers 307 or 308 is not
/// followed: the delivery fails at once (a wrong URL is the operator's
/// to fix, not retried), says where the redirect pointed, and the URL it
/// pointed to gets nothing.
#[test]
fn a_redirecting_webhook_is_a_failed_delivery_and_not_followed() {
    use fleetcare::alerts::webhook::{Retry, WebhookError, WebhookTarget, deliver};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = fleetcare::runtime::tls::https_client().unwrap();
    let (other, elsewhere) = webhook_receiver();
    let stolen = format!("http://{other}/stolen");
    for (status, reason) in [(307, "Temporary Redirect"), (308, "Permanent Redirect")] {
        let (addr, redirector) =
            webhook_receiver_answering(format!("HTTP/1.1 {status} {reason}\r\nLocation: {stolen}"));
        let target = WebhookTarget {
            url: format!("http://{addr}/hook"),
            secret: b"a shared secret".to_vec(),
        };
        let retry = Retry {
            attempts: 3,
            backoff: fleetcare::runtime::Backoff::new(
                Duration::from_millis(10),
                Duration::from_millis(10),
            ),
        };
        let err = runtime
            .block_on(deliver(&client, &target, br#"{"id":"a-1"}"#, retry))
            .unwrap_err();
        match &err {
            WebhookError::Redirected {
                status: s,
                location,
                ..
            } => assert_eq!((*s, location.as_str()), (status, stolen.as_str())),
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains(&stolen), "{err}");
        let hook = redirector.recv_timeout(Duration::from_secs(5)).unwrap();
        verified(b"a shared secret", &hook).unwrap();
        assert!(
            redirector.recv_timeout(Duration::from_millis(200)).is_err(),
            "a redirect is not retried"
        );
    }
    assert!(
        elsewhere.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing reached the URL redirected to"
    );
}
