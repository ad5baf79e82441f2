//! The README's main command: `fleetcare demo` starts the whole service,
//! its simulated fleet publishes through the embedded broker, and tickets
//! appear in the API.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::alerts::http;
use crate::mqtt::{signal, wait_exit};

#[test]
fn the_demo_serves_tickets_from_its_simulated_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetcare"))
        .arg("--data")
        .arg(dir.path())
        .args(["demo", "--trucks", "8", "--days", "14", "--speed", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut http_addr = None;
    let mut web_ui = None;
    let mut token = None;
    while token.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the demo printed its address and token");
        if let Some(rest) = line.strip_prefix("fleetcare ready: http=") {
            http_addr = rest.split(' ').next().map(str::to_owned);
        }
        if let Some(rest) = line.strip_prefix("fleetcare demo: web UI at ") {
            web_ui = rest.split(' ').next().map(str::to_owned);
        }
        token = line.strip_prefix("admin token: ").map(str::to_owned);
    }
    let (http_addr, token) = (http_addr.unwrap(), token.unwrap());
    // C6: the demo prints the web UI's address, and the page is there.
    assert_eq!(web_ui, Some(format!("http://{http_addr}/ui/")));
    let (status, body) = http(&http_addr, "GET", "/ui/login", None, None);
    assert_eq!(status, 200);
    assert!(body.contains("name=\"token\""), "{body}");
    let (status, _) = http(&http_addr, "GET", "/healthz", None, None);
    assert_eq!(status, 200);
    // The first run of the periodic jobs finds what the simulator planted
    // (maintenance due at least); critical faults arrive on their own.
    let deadline = Instant::now() + Duration::from_secs(120);
    let tickets = loop {
        let (status, body) = http(&http_addr, "GET", "/api/v1/tickets", Some(&token), None);
        assert_eq!(status, 200, "{body}");
        let tickets: Vec<Value> = serde_json::from_str(&body).unwrap();
        if tickets.iter().any(|t| t["kind"] == "maintenance") {
            break tickets;
        }
        assert!(
            Instant::now() < deadline,
            "no maintenance ticket in 120 s: {tickets:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(tickets.iter().all(|t| t["state"] == "open"));
    let (status, body) = http(&http_addr, "GET", "/api/v1/vehicles", Some(&token), None);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&body).unwrap().len(), 8);
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(60)).success());
}
