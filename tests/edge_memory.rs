//! Issue 20, finding 3: the embedded broker's memory is bounded. For a
//! while, clients subscribe to junk filters (wildcards, other fleets, and
//! thousands of made-up fleets' alerts), publish packets of the maximum
//! size as fast as they are acknowledged, and announce packets larger than
//! the maximum; a victim gateway publishes meanwhile. The service's peak
//! RSS (`VmHWM`) stays under [`RSS_BOUND_MIB`], and every reading of the
//! victim is stored.
//!
//! The short version runs with the other tests; the 60 s soak is
//! `cargo test --test tests -- --ignored broker_memory_soak`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rumqttc::mqttbytes::QoS;

use crate::edge::{Raw, metric, reading, wait_meters};
use crate::mqtt::{Service, unique_prefix, write_config};

/// The documented bound (README, Security): peak RSS of `fleetcare run`
/// under this load, in MiB.
const RSS_BOUND_MIB: u64 = 256;

/// `field` (e.g. `VmHWM`) of /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn broker_memory(duration: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("memory");
    let config = write_config(dir.path(), &prefix, "listen = \"127.0.0.1:0\"");
    let data = dir.path().join("data");
    let service = Service::start(&data, &config);
    let pid = service.pid();
    let addr = service.mqtt.clone().unwrap();
    let started_kib = status_kib(pid, "VmRSS");
    let max_packet = 256 * 1024 + 64 * 1024;
    let stop = Arc::new(AtomicBool::new(false));

    // Junk subscriptions: each connection 64 filters, a quarter of them
    // alerts of fleets nobody has; at most 64 connections open at once.
    let junk = {
        let (addr, prefix, stop) = (addr.clone(), prefix.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut open = std::collections::VecDeque::new();
            let mut filters = 0usize;
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let mut c = Raw::connected(&addr, &format!("junk-{n}"), None);
                let list: Vec<String> = (0..64)
                    .map(|j| match j % 4 {
                        0 => "#".to_owned(),
                        1 => format!("{prefix}/#"),
                        2 => format!("{prefix}/+/+/{j}"),
                        _ => format!("{prefix}/junk{n}x{j}/alerts"),
                    })
                    .collect();
                let refs: Vec<&str> = list.iter().map(String::as_str).collect();
                c.subscribe(&refs, 1);
                filters += list.len();
                open.push_back(c);
                if open.len() > 64 {
                    open.pop_front();
                }
                n += 1;
            }
            (n, filters)
        })
    };
    // Publishes of the maximum size, 16 unacknowledged per connection;
    // one in 64 differs from the others (the rest are stored once).
    let publishers: Vec<_> = (0..3)
        .map(|k| {
            let (addr, prefix, stop) = (addr.clone(), prefix.clone(), stop.clone());
            std::thread::spawn(move || {
                let topic = format!("{prefix}/acme/BIG-{k}/can");
                let mut payload = vec![b'x'; max_packet - 2 - topic.len() - 2];
                let mut c = Raw::connected(&addr, &format!("big-{k}"), None);
                let mut sent = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    for w in 0..16u16 {
                        if sent.is_multiple_of(64) {
                            payload[..8].copy_from_slice(&(sent as u64).to_le_bytes());
                        }
                        c.publish(&topic, &payload, QoS::AtLeastOnce, false, w + 1);
                        sent += 1;
                    }
                    for w in 0..16u16 {
                        assert!(c.acked(w + 1, Duration::from_secs(60)), "big-{k}");
                    }
                }
                sent
            })
        })
        .collect();
    // Packets announcing 64 MiB.
    let oversized = {
        let (addr, stop) = (addr.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut c = Raw::connected(&addr, &format!("over-{n}"), None);
                // PUBLISH, remaining length 64 MiB, then 4 KiB of it.
                c.write_raw(&[0x30, 0x80, 0x80, 0x80, 0x20]);
                let _ = c.write_raw(&[0u8; 4096]);
                assert!(c.closed_within(Duration::from_secs(10)));
                n += 1;
            }
            n
        })
    };
    // The victim: one reading at a time, each once acknowledged.
    let victim = {
        let (addr, prefix, stop) = (addr.clone(), prefix.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut gw = Raw::connected(&addr, "victim", None);
            let topic = format!("{prefix}/acme/TRK-V/telemetry");
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let pkid = (i % 60_000 + 1) as u16;
                gw.publish(&topic, reading(i).as_bytes(), QoS::AtLeastOnce, false, pkid);
                assert!(
                    gw.acked(pkid, Duration::from_secs(60)),
                    "victim reading {i}"
                );
                i += 1;
            }
            i
        })
    };

    let until = Instant::now() + duration;
    let mut highest_kib = 0;
    while Instant::now() < until {
        highest_kib = highest_kib.max(status_kib(pid, "VmRSS"));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let (junk_connections, junk_filters) = junk.join().unwrap();
    let big: usize = publishers.into_iter().map(|p| p.join().unwrap()).sum();
    let oversized = oversized.join().unwrap();
    let readings = victim.join().unwrap();
    wait_meters(&data, "TRK-V", readings);
    let peak_kib = status_kib(pid, "VmHWM");
    let refused_big = metric(
        &service.http,
        "fleetcare_mqtt_refused_total{reason=\"packet_too_large\"}",
    );
    eprintln!(
        "broker memory over {duration:?}: RSS {} MiB at start, highest sampled {} MiB, peak (VmHWM) {} MiB (bound {RSS_BOUND_MIB} MiB); \
         {junk_connections} junk subscribers with {junk_filters} filters, {big} maximum-size publishes ({} MiB), \
         {oversized} oversized packets refused, {readings} victim readings stored",
        started_kib / 1024,
        highest_kib / 1024,
        peak_kib / 1024,
        (big * max_packet) >> 20,
    );
    assert_eq!(refused_big, oversized as u64);
    assert!(
        peak_kib / 1024 < RSS_BOUND_MIB,
        "peak RSS {} MiB, bound {RSS_BOUND_MIB} MiB",
        peak_kib / 1024
    );
    assert!(big > 0 && readings > 0 && junk_connections > 0);
    assert!(service.stop().success());
}

#[test]
fn broker_memory_short() {
    broker_memory(Duration::from_secs(5));
}

#[test]
#[ignore = "takes a minute: cargo test --test tests -- --ignored broker_memory_soak"]
fn broker_memory_soak() {
    broker_memory(Duration::from_secs(60));
}
