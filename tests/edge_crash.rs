//! Issue 20, finding 8: the embedded broker acknowledges a gateway's QoS 1
//! message only once it is in fleetcare's write-ahead log. `fleetcare
//! run` is SIGKILLed at random points of a QoS 1 stream and restarted on
//! the same data and port; the publisher keeps its own ledger of what was
//! acknowledged and sends again, after reconnecting, only what was not.
//! Every acknowledged message is stored, and stored once.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Packet, Publish};
use rumqttc::mqttbytes::{Error as CodecError, QoS};

use crate::mqtt::{
    Service, assert_each_reading_once, numbered, open_store, stored, unique_prefix, write_config,
};

/// Messages published and not yet acknowledged, at most.
const WINDOW: usize = 200;

/// What the publisher knows: which messages were acknowledged.
struct Ledger {
    acked: Vec<AtomicBool>,
    count: AtomicUsize,
    /// Connections made (the first and every one after a kill).
    connections: AtomicUsize,
}

/// One connection's life: sends what is not acknowledged, `WINDOW` at a
/// time, in order, until everything is or the connection breaks.
fn one_connection(addr: &str, prefix: &str, ledger: &Ledger, sent_before: &mut [bool]) {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut out = BytesMut::new();
    let mut c = Connect::new("crash-gateway");
    c.keep_alive = 60;
    Packet::Connect(c).write(&mut out, usize::MAX).unwrap();
    let mut buf = BytesMut::new();
    let read = |stream: &mut TcpStream, buf: &mut BytesMut| -> Option<Packet> {
        loop {
            match Packet::read(buf, 1 << 20) {
                Ok(p) => return Some(p),
                Err(CodecError::InsufficientBytes(_)) => {}
                Err(e) => panic!("a bad packet: {e:?}"),
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk) {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    };
    if stream.write_all(&out).is_err() {
        return;
    }
    match read(&mut stream, &mut buf) {
        Some(Packet::ConnAck(a)) if a.code == ConnectReturnCode::Success => {}
        _ => return,
    }
    ledger.connections.fetch_add(1, Ordering::Relaxed);
    let mut todo = (0..sent_before.len()).filter(|&i| !ledger.acked[i].load(Ordering::Relaxed));
    let mut in_flight: VecDeque<(u16, usize)> = VecDeque::new();
    let mut next_pkid = 0u16;
    loop {
        out.clear();
        while in_flight.len() < WINDOW {
            let Some(i) = todo.next() else { break };
            next_pkid = next_pkid % 60_000 + 1;
            let (topic, payload) = numbered(prefix, i);
            let mut p = Publish::new(topic, QoS::AtLeastOnce, payload);
            p.pkid = next_pkid;
            p.dup = sent_before[i];
            sent_before[i] = true;
            Packet::Publish(p).write(&mut out, usize::MAX).unwrap();
            in_flight.push_back((next_pkid, i));
        }
        if in_flight.is_empty() {
            return;
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        match read(&mut stream, &mut buf) {
            Some(Packet::PubAck(a)) => {
                let (pkid, i) = in_flight.pop_front().expect("a PUBACK for a publish");
                assert_eq!(a.pkid, pkid, "PUBACKs in the order of the publishes");
                ledger.acked[i].store(true, Ordering::Relaxed);
                ledger.count.fetch_add(1, Ordering::Relaxed);
            }
            Some(other) => panic!("unexpected {other:?}"),
            // Killed: what is in flight was not acknowledged.
            None => return,
        }
    }
}

/// Publishes messages `0..n` until every one is acknowledged, through
/// kills and restarts.
fn publisher(addr: String, prefix: String, ledger: Arc<Ledger>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let n = ledger.acked.len();
        let mut sent_before = vec![false; n];
        let deadline = Instant::now() + Duration::from_secs(600);
        while ledger.count.load(Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "not every message acknowledged in 10 min"
            );
            one_connection(&addr, &prefix, &ledger, &mut sent_before);
            if ledger.count.load(Ordering::Relaxed) < n {
                // The service is restarting: try again shortly.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    })
}

#[test]
fn sigkill_on_the_embedded_broker_loses_no_acknowledged_message() {
    const N: usize = 8_000;
    const KILLS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("edge-crash");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    // Small log segments: kills land around compactions too.
    let config = write_config(
        dir.path(),
        &prefix,
        &format!("listen = \"{addr}\"\n\n[store]\ncompact_log_bytes = 300000"),
    );
    let data = dir.path().join("data");
    let mut service = Service::start(&data, &config);
    let ledger = Arc::new(Ledger {
        acked: (0..N).map(|_| AtomicBool::new(false)).collect(),
        count: AtomicUsize::new(0),
        connections: AtomicUsize::new(0),
    });
    let publishing = publisher(addr.clone(), prefix.clone(), ledger.clone());

    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut kills = Vec::new();
    for k in 0..KILLS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // A random point in the k-th of KILLS + 1 stretches of the stream.
        let stretch = N / (KILLS + 1);
        let at = stretch * k + (rng as usize % stretch);
        let deadline = Instant::now() + Duration::from_secs(120);
        while ledger.count.load(Ordering::Relaxed) < at {
            assert!(Instant::now() < deadline, "the stream stalled at {at}");
            std::thread::sleep(Duration::from_millis(2));
        }
        // Everything acknowledged so far must survive this.
        let acked = ledger.count.load(Ordering::Relaxed);
        service.kill();
        service = Service::start(&data, &config);
        let store = open_store(&data).unwrap();
        assert!(
            stored(&store) >= acked as u64,
            "kill {k}: {acked} acknowledged, {} stored",
            stored(&store)
        );
        kills.push(acked);
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while !publishing.is_finished() {
        assert!(Instant::now() < deadline, "the publisher did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    publishing.join().unwrap();
    assert!(service.stop().success());
    eprintln!(
        "edge crash test: {N} messages, {} kills (at {kills:?} acknowledged), {} connections",
        kills.len(),
        ledger.connections.load(Ordering::Relaxed)
    );

    // Every message was acknowledged in the end; each is stored once.
    assert!(ledger.acked.iter().all(|a| a.load(Ordering::Relaxed)));
    assert_each_reading_once(&data, N, 0);
}
