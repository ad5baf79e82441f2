//! The MQTT source for the embedded broker: the same QoS 1 subscription as
//! [`mqtt::run`](super::mqtt::run), over rumqttd's in-process link instead
//! of a loopback TCP connection.
//!
//! Why not a TCP client to our own broker: every message would be encoded
//! by rumqttd, sent through the kernel, decoded by rumqttc, and every
//! PUBACK would travel back the same way, one write per acknowledgement.
//! On a 2-core machine that was more CPU than the decoding itself, and
//! rumqttd allows only 100 unacknowledged messages per subscriber, so the
//! round trip of each acknowledgement capped ingestion. Over the link a
//! message is a `Bytes` handed between threads, and the acknowledgements of
//! a whole batch reach the router as one event.
//!
//! The rules are those of the TCP source: a message is acknowledged once
//! the writer has stored it (or on receipt with `embedded_ack =
//! "on_receipt"`), and acknowledgements go in delivery order, which rumqttd
//! requires.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use fleetcare_ingest::Timestamp;
use rumqttd::Notification;
use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{Filter, Packet, PubAck, PubAckReason, QoS, RetainForwardRule, Subscribe};

use super::{Incoming, IngestHandle, LiveMetrics, Shutdown};
use crate::live::mqtt::{MqttError, SourceConfig};

/// The link's two halves, made before the broker starts serving.
pub struct IngestLink {
    pub tx: LinkTx,
    pub rx: LinkRx,
}

impl std::fmt::Debug for IngestLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestLink")
            .field("connection", &self.rx.id())
            .finish()
    }
}

/// The packet id and QoS of a forwarded publish. rumqttd keeps both fields
/// private; its documented byte form starts with them, so they are read
/// from that form of a copy without topic and payload (a 5-byte buffer).
fn pkid_and_qos(publish: &rumqttd::protocol::Publish) -> (u16, u8) {
    let mut head = publish.clone();
    head.topic = Default::default();
    head.payload = Default::default();
    let b = head.serialize();
    let qos = b.first().map_or(0, |h| (h >> 1) & 0b11);
    let pkid = match (b.get(1), b.get(2)) {
        (Some(&hi), Some(&lo)) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    };
    (pkid, qos)
}

/// Subscribes to `config`'s filter with QoS 1 and hands every message to the
/// writer until `shutdown`; the connection settings are not used.
pub async fn run(
    link: IngestLink,
    config: SourceConfig,
    handle: IngestHandle,
    mut shutdown: Shutdown,
) -> Result<(), MqttError> {
    let IngestLink { mut tx, mut rx } = link;
    let ack_on_receipt = config.ack_on_receipt;
    let metrics = handle.metrics().clone();
    let subscribe = Subscribe {
        pkid: 1,
        filters: vec![Filter {
            path: config.filter(),
            qos: QoS::AtLeastOnce,
            nolocal: false,
            preserve_retain: false,
            retain_forward_rule: RetainForwardRule::Never,
        }],
    };
    tx.send(Packet::Subscribe(subscribe, None))
        .await
        .map_err(|_| MqttError::EmbeddedLink)?;
    LiveMetrics::add(&metrics.mqtt_connections, 1);
    let tx = Arc::new(Mutex::new(tx));
    let mut result = Ok(());
    loop {
        let notification = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            n = rx.next() => n,
        };
        let notification = match notification {
            Ok(Some(n)) => n,
            // Woken with nothing new: ask again.
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(error = %e, "the embedded broker's link closed; the MQTT source stops");
                result = Err(MqttError::EmbeddedLink);
                break;
            }
        };
        match notification {
            Notification::Forward(forward) => {
                let received = Timestamp::from_datetime(&chrono::Utc::now());
                let (pkid, qos) = pkid_and_qos(&forward.publish);
                let on_stored: Option<super::OnStored> = if qos == 0 {
                    None
                } else if ack_on_receipt {
                    acknowledge(&tx, pkid);
                    None
                } else {
                    let tx = tx.clone();
                    // Runs on the writer thread, in delivery order.
                    Some(Box::new(move || acknowledge(&tx, pkid)))
                };
                let publish = forward.publish;
                let topic = match String::from_utf8(publish.topic.to_vec()) {
                    Ok(t) => t,
                    // rumqttd checks topics are UTF-8; a lossy name still
                    // reaches the pipeline as a dead letter.
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                };
                let message = Incoming {
                    topic,
                    payload: publish.payload.to_vec(),
                    received,
                    on_stored,
                };
                if handle.send(message).await.is_err() {
                    result = Err(MqttError::WriterStopped);
                    break;
                }
            }
            // The only acknowledgement this link asks for: the SUBACK.
            Notification::DeviceAck(_) => {
                metrics.mqtt_connected.store(true, Ordering::Relaxed);
                LiveMetrics::add(&metrics.mqtt_subscriptions, 1);
            }
            // The router stops sending until told the link is ready.
            Notification::Unschedule if rx.wake().await.is_err() => {
                result = Err(MqttError::EmbeddedLink);
                break;
            }
            _ => {}
        }
    }
    drop(handle);
    metrics.mqtt_connected.store(false, Ordering::Relaxed);
    result
}

/// Sends a PUBACK to the router. A batch's PUBACKs become one router
/// event: the first goes with a notification, and those pushed while it is
/// still unread ride along (the router takes the whole buffer when it reads
/// one; the check and the push are under the buffer's lock, so none is left
/// without a notification).
fn acknowledge(tx: &Mutex<LinkTx>, pkid: u16) {
    let Ok(mut tx) = tx.lock() else {
        return;
    };
    {
        let mut pending = tx.buffer();
        if !pending.is_empty() {
            pending.push_back(puback(pkid));
            return;
        }
    }
    // `LinkTx::send` is an async fn that never awaits (a push, then a
    // blocking send on the router's bounded queue), so one poll completes
    // it; this runs on the writer thread, outside any runtime. A closed link means the broker is gone with the
    // process, and so is what an acknowledgement would tell it.
    let send = std::pin::pin!(tx.send(puback(pkid)));
    let done = send.poll(&mut Context::from_waker(Waker::noop()));
    if !matches!(done, Poll::Ready(Ok(_))) {
        tracing::warn!(
            pkid,
            "could not acknowledge a message to the embedded broker"
        );
    }
}

fn puback(pkid: u16) -> Packet {
    Packet::PubAck(
        PubAck {
            pkid,
            reason: PubAckReason::Success,
        },
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_id_and_qos_are_read_from_a_forwarded_publish() {
        for (pkid, qos) in [(1u16, 1u8), (100, 1), (0x1234, 2), (0, 0)] {
            // rumqttd's byte form: header, packet id, topic length, topic, payload.
            let mut b = vec![0b0011_0000 | (qos << 1)];
            b.extend_from_slice(&pkid.to_be_bytes());
            b.extend_from_slice(&5u16.to_be_bytes());
            b.extend_from_slice(b"a/b/c");
            b.extend_from_slice(b"(1700000000.000000) can0 18FECA00#40FF5B000301FFFF");
            let publish = rumqttd::protocol::Publish::deserialize(b.into());
            assert_eq!(&publish.topic[..], b"a/b/c");
            assert_eq!(pkid_and_qos(&publish), (pkid, qos));
        }
    }
}
