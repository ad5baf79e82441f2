//! Publishing recordings to a broker, as a fleet's gateways would:
//! `fleetcare simulate --mqtt URL` and the MQTT benchmark.
//!
//! QoS 1, in file order, paced by the messages' own event times divided by
//! a speed-up (or as fast as the broker takes them). Returns once the broker
//! has acknowledged every message.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use tokio::sync::{Notify, mpsc};

use crate::lines::BoundedLines;
use crate::runtime::Backoff;
use crate::sources::mqtt::Connection;

/// Waits between reconnections to the broker: 200 ms doubling to 3.2 s.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_millis(3200));
use crate::recording::{self, MAX_LINE};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the MQTT client stopped: {0}")]
    Client(#[from] rumqttc::ClientError),
}

/// The largest step of event time that pacing follows: three days (a
/// fleet idle over a long weekend); more is taken for a bad timestamp.
const MAX_EVENT_JUMP_US: i64 = 3 * 86_400_000_000;

/// How to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub client_id: String,
    /// Event time runs this many times faster than wall time; 0 publishes
    /// as fast as the broker acknowledges.
    pub speed: f64,
    /// Messages in flight (published, not yet acknowledged).
    pub inflight: u16,
}

/// What was published.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishSummary {
    pub messages: u64,
    pub bytes: u64,
    /// Recording lines that were not a message (reported on stderr).
    pub bad_lines: u64,
    /// Messages whose topic MQTT forbids in a publish (wildcards).
    pub unpublishable: u64,
    pub seconds: f64,
}

/// Whether an MQTT client may publish to `topic`: not empty, no wildcard,
/// no NUL (a recording's garbage may hold any of them).
pub fn publishable(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// Reads `files` on a thread of its own, sending `(topic, payload)` pairs.
fn read_files(
    files: Vec<PathBuf>,
    tx: mpsc::Sender<(String, String)>,
) -> Result<u64, PublishError> {
    let mut bad = 0;
    for path in files {
        let read_err = |source| PublishError::Read {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(read_err)?;
        let mut lines =
            BoundedLines::new(std::io::BufReader::with_capacity(1 << 20, file), MAX_LINE);
        while let Some((n, line)) = lines.next_line().map_err(read_err)? {
            let Some(parsed) = recording::parse(line) else {
                continue;
            };
            match parsed {
                Ok(r) => {
                    if tx
                        .blocking_send((r.topic.into_owned(), r.payload.into_owned()))
                        .is_err()
                    {
                        return Ok(bad);
                    }
                }
                Err(e) => {
                    bad += 1;
                    tracing::warn!(file = %path.display(), line = n, error = %e, "not a recording line; skipped");
                }
            }
        }
    }
    Ok(bad)
}

/// Publishes every message of `files` through `connection`.
pub async fn publish_recordings(
    files: &[PathBuf],
    connection: &Connection,
    options: &PublishOptions,
) -> Result<PublishSummary, PublishError> {
    let mut mqtt = connection.options(&options.client_id, Duration::from_secs(30), 16 << 20);
    mqtt.set_clean_session(false);
    mqtt.set_inflight(options.inflight.max(1));
    let (client, mut eventloop) = AsyncClient::new(mqtt, 1024);
    crate::sources::mqtt::without_nagle(&mut eventloop);
    let acked = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    let poller = {
        let acked = acked.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                        progress.notify_one();
                    }
                    Ok(Event::Incoming(Packet::ConnAck(_))) => failures = 0,
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                    Ok(_) => {}
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let delay = RECONNECT.delay(failures);
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "publisher: broker connection lost; retrying");
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        })
    };

    let (tx, mut rx) = mpsc::channel(4096);
    let reader = {
        let files = files.to_vec();
        tokio::task::spawn_blocking(move || read_files(files, tx))
    };
    let started = Instant::now();
    let mut summary = PublishSummary::default();
    // Pacing follows the latest event time seen; a message that claims to
    // be far ahead of it (a gateway's garbage, a wrong clock) is sent at
    // once and does not move the clock.
    let mut clock: Option<(i64, i64)> = None; // (first event, latest event)
    while let Some((topic, payload)) = rx.recv().await {
        if options.speed > 0.0
            && let Some(t) = crate::store::event_micros(&topic, payload.as_bytes())
        {
            let (first, latest) = *clock.get_or_insert((t, t));
            if t > latest && t - latest <= MAX_EVENT_JUMP_US {
                clock = Some((first, t));
                let due = Duration::from_secs_f64(((t - first) as f64 / 1e6) / options.speed);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        if !publishable(&topic) {
            // No MQTT client can publish this (a recording's garbage may
            // hold it); the broker would refuse it anyway.
            summary.unpublishable += 1;
            tracing::warn!(topic = %topic, "not a topic one can publish to; skipped");
            continue;
        }
        summary.bytes += payload.len() as u64;
        summary.messages += 1;
        client
            .publish(topic, QoS::AtLeastOnce, false, payload.into_bytes())
            .await?;
    }
    summary.bad_lines = match reader.await {
        Ok(r) => r?,
        Err(e) => {
            return Err(PublishError::Read {
                path: PathBuf::from("(recording reader)"),
                source: std::io::Error::other(e.to_string()),
            });
        }
    };
    while acked.load(Ordering::Relaxed) < summary.messages {
        progress.notified().await;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    client.disconnect().await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), poller).await;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::publishable;

    #[test]
    fn wildcards_nul_and_empty_topics_are_not_publishable() {
        assert!(publishable("fleet/acme/TRK-001/can"));
        for topic in [
            "",
            "fleet/+/TRK-001/can",
            "fleet/acme/#",
            "fleet/acme/TRK\0/can",
        ] {
            assert!(!publishable(topic), "{topic:?}");
        }
    }
}
