//! The MQTT source for the embedded broker: the same QoS 1 subscription as
//! [`mqtt::run`](super::mqtt::run), over rumqttd's in-process link instead
//! of a loopback TCP connection, read by the store writer itself.
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
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use fleetcare_ingest::Timestamp;
use rumqttd::Notification;
use rumqttd::local::{LinkError, LinkRx, LinkTx};
use rumqttd::protocol::{Filter, Packet, PubAck, PubAckReason, QoS, RetainForwardRule, Subscribe};

use tokio::sync::oneshot;

use super::{Incoming, LiveMetrics, Shutdown};
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

/// What one [`LinkSource::read`] left the writer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRead {
    /// Still subscribed; read again.
    Open,
    /// Shutdown began: nothing more is read from the link.
    Stopped,
}

/// The embedded broker's link as the writer thread reads it.
///
/// Why on the writer thread: with acknowledgement after storage, rumqttd
/// sends the next message only when one of its 100 in flight is
/// acknowledged, so ingest runs at 100 messages per round trip from the
/// router through storage and back. A task of its own between the link and
/// the writer put a third thread to wake on that trip, and on two busy
/// cores each wake-up waits for a core. Read here, the router's
/// notification lands where the batch is stored, and a batch's
/// acknowledgements go back as one router event with no closure per
/// message.
pub struct LinkSource {
    tx: LinkTx,
    rx: LinkRx,
    ack_on_receipt: bool,
    shutdown: Shutdown,
    metrics: Arc<LiveMetrics>,
    done: Option<oneshot::Sender<Result<(), MqttError>>>,
    /// Packet ids to acknowledge on receipt, reused between reads.
    receipts: Vec<u16>,
}

impl std::fmt::Debug for LinkSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSource")
            .field("connection", &self.rx.id())
            .field("ack_on_receipt", &self.ack_on_receipt)
            .finish()
    }
}

/// Subscribes `link` to `config`'s filter with QoS 1. The returned source
/// is read by the writer ([`spawn_writer`](super::spawn_writer)); the task
/// ends when it stops reading: `Ok` at shutdown, an error when the link
/// closed or the writer stopped. The connection settings are not used.
pub fn subscribe(
    link: IngestLink,
    config: &SourceConfig,
    metrics: Arc<LiveMetrics>,
    shutdown: Shutdown,
) -> Result<(LinkSource, tokio::task::JoinHandle<Result<(), MqttError>>), MqttError> {
    let IngestLink { mut tx, rx } = link;
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
    send_now(&mut tx, Packet::Subscribe(subscribe, None)).map_err(|_| MqttError::EmbeddedLink)?;
    LiveMetrics::add(&metrics.mqtt_connections, 1);
    let (done, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        // Dropped unsent: the writer stopped (a storage error).
        stopped.await.unwrap_or(Err(MqttError::WriterStopped))
    });
    let source = LinkSource {
        tx,
        rx,
        ack_on_receipt: config.ack_on_receipt,
        shutdown,
        metrics,
        done: Some(done),
        receipts: Vec::new(),
    };
    Ok((source, task))
}

impl LinkSource {
    /// Appends what the router has sent to `batch` (at most `max` in all),
    /// waiting up to `wait` for the first of it. The packet ids to
    /// acknowledge once the batch is stored go to `acks`, in delivery
    /// order; with `on_receipt` they are acknowledged here instead.
    pub fn read(
        &mut self,
        batch: &mut Vec<Incoming>,
        acks: &mut Vec<u16>,
        max: usize,
        wait: Duration,
    ) -> Result<LinkRead, MqttError> {
        if *self.shutdown.borrow() {
            return Ok(LinkRead::Stopped);
        }
        let mut deadline = Instant::now() + wait;
        while batch.len() < max {
            let notification = match self.rx.recv_deadline(deadline) {
                Ok(Some(n)) => n,
                // Woken with nothing new: ask again.
                Ok(None) => continue,
                Err(LinkError::RecvTimeout(flume::RecvTimeoutError::Timeout)) => break,
                Err(e) => {
                    tracing::error!(error = %e, "the embedded broker's link closed; the MQTT source stops");
                    return Err(MqttError::EmbeddedLink);
                }
            };
            // Once something came, take only what is already there.
            deadline = Instant::now();
            match notification {
                Notification::Forward(forward) => {
                    let received = Timestamp::from_datetime(&chrono::Utc::now());
                    let (pkid, qos) = pkid_and_qos(&forward.publish);
                    if qos != 0 {
                        if self.ack_on_receipt {
                            self.receipts.push(pkid);
                        } else {
                            acks.push(pkid);
                        }
                    }
                    let publish = forward.publish;
                    let topic = match String::from_utf8(publish.topic.to_vec()) {
                        Ok(t) => t,
                        // rumqttd checks topics are UTF-8; a lossy name
                        // still reaches the pipeline as a dead letter.
                        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    };
                    LiveMetrics::add(&self.metrics.received, 1);
                    batch.push(Incoming {
                        topic,
                        payload: publish.payload.to_vec(),
                        received,
                        on_stored: None,
                    });
                }
                // The only acknowledgement this link asks for: the SUBACK.
                Notification::DeviceAck(_) => {
                    self.metrics.mqtt_connected.store(true, Ordering::Relaxed);
                    LiveMetrics::add(&self.metrics.mqtt_subscriptions, 1);
                }
                // The router stops sending until told the link is ready.
                Notification::Unschedule if self.rx.ready().is_err() => {
                    return Err(MqttError::EmbeddedLink);
                }
                _ => {}
            }
        }
        if !self.receipts.is_empty() {
            let receipts = std::mem::take(&mut self.receipts);
            self.acknowledge(&receipts);
            self.receipts = receipts;
            self.receipts.clear();
        }
        Ok(LinkRead::Open)
    }

    /// Sends the PUBACKs of `pkids` (in delivery order, as rumqttd
    /// requires) to the router as one event.
    pub fn acknowledge(&mut self, pkids: &[u16]) {
        let Some((&last, rest)) = pkids.split_last() else {
            return;
        };
        {
            let mut pending = self.tx.buffer();
            let unread = !pending.is_empty();
            pending.extend(rest.iter().map(|&p| puback(p)));
            if unread {
                // The router has an event for the buffer still to come and
                // takes all of it when it does.
                pending.push_back(puback(last));
                return;
            }
        }
        // A closed link means the broker is gone with the process, and so
        // is what an acknowledgement would tell it.
        if send_now(&mut self.tx, puback(last)).is_err() {
            tracing::warn!(
                messages = pkids.len(),
                "could not acknowledge messages to the embedded broker"
            );
        }
    }

    /// Stops reading: tells the source's task why and marks the source
    /// disconnected.
    pub fn finish(mut self, result: Result<(), MqttError>) {
        self.metrics.mqtt_connected.store(false, Ordering::Relaxed);
        if let Some(done) = self.done.take() {
            let _ = done.send(result);
        }
    }
}

/// Sends `packet` to the router. `LinkTx::send` is an async fn that never
/// awaits (a push, then a blocking send on the router's queue), so one
/// poll completes it, outside any runtime.
fn send_now(tx: &mut LinkTx, packet: Packet) -> Result<(), ()> {
    let send = std::pin::pin!(tx.send(packet));
    match send.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(_)) => Ok(()),
        _ => Err(()),
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
