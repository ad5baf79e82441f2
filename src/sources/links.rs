//! The MQTT source for the embedded broker: the same QoS 1 subscription as
//! [`mqtt::run`](super::mqtt::run), over rumqttd's in-process links instead
//! of a loopback TCP connection.
//!
//! Why not a TCP client to our own broker: every message would be encoded
//! by rumqttd, sent through the kernel, decoded by rumqttc, and every
//! PUBACK would travel back the same way, one write per acknowledgement.
//! On a 2-core machine that was more CPU than the decoding itself. Over a
//! link a message is a `Bytes` handed between threads, and the
//! acknowledgements of a whole batch reach the router as one event.
//!
//! Why several links: rumqttd lets a subscriber hold at most 100
//! unacknowledged QoS 1 messages, and acknowledging after storage means
//! after the writer's fsync, so one link got at most 100 messages per
//! fsync and ingest waited on that round trip. The links share one
//! subscription (`$share/{group}/{filter}`), which rumqttd deals out one
//! message at a time, so the window is 100 per link; [`Reorder`] puts the
//! messages back in the broker's order before the writer sees them.
//!
//! The rules are those of the TCP source: a message is acknowledged once
//! the writer has stored it (or on receipt with `embedded_ack =
//! "on_receipt"`, over one link), and each link's acknowledgements go in
//! its delivery order, which rumqttd requires.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use fleetcare_ingest::Timestamp;
use futures_util::FutureExt;
use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{Filter, Packet, PubAck, PubAckReason, QoS, RetainForwardRule, Subscribe};
use rumqttd::{Forward, Notification};

use super::mqtt::{MqttError, SourceConfig};
use super::reorder::Reorder;
use crate::runtime::{LiveMetrics, Shutdown};
use crate::store::{Incoming, IngestHandle};

/// How long a message is held for one with a lower number that should
/// come first. Only a message rumqttd lost (it dropped an old segment of
/// its log) leaves such a gap for good; the next one on every link passes
/// it at once, this passes it when traffic stops.
const GAP_WAIT: Duration = Duration::from_millis(100);

/// The links' halves, made before the broker starts serving: one per
/// member of the ingest's shared subscription.
pub struct IngestLinks {
    links: Vec<(LinkTx, LinkRx)>,
    /// The shared subscription's group: a name nobody else knows, since a
    /// client that joined the group would take a share of the messages
    /// away from fleetcare.
    group: String,
}

impl IngestLinks {
    pub fn new(links: Vec<(LinkTx, LinkRx)>, group: String) -> Self {
        Self { links, group }
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }
}

impl std::fmt::Debug for IngestLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestLinks")
            .field(
                "connections",
                &self.links.iter().map(|(_, rx)| rx.id()).collect::<Vec<_>>(),
            )
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

/// One link's sending half and the packet ids stored but not yet
/// acknowledged on it.
struct Acks {
    tx: Mutex<LinkTx>,
    pending: Mutex<Vec<u16>>,
}

/// Subscribes to `config`'s filter with QoS 1 — one shared subscription
/// over all links when there are several — and hands every message to the
/// writer, in the broker's order, until `shutdown`; the connection
/// settings are not used.
pub async fn run(
    links: IngestLinks,
    config: SourceConfig,
    handle: IngestHandle,
    mut shutdown: Shutdown,
) -> Result<(), MqttError> {
    let ack_on_receipt = config.ack_on_receipt;
    let metrics = handle.metrics().clone();
    let path = if links.links.len() > 1 {
        format!("$share/{}/{}", links.group, config.filter())
    } else {
        config.filter()
    };
    let mut rxs = Vec::with_capacity(links.links.len());
    let mut acks = Vec::with_capacity(links.links.len());
    // The router takes the subscriptions in this order, so the first link
    // is the group's first member, which gets its first message.
    for (mut tx, rx) in links.links {
        let subscribe = Subscribe {
            pkid: 1,
            filters: vec![Filter {
                path: path.clone(),
                qos: QoS::AtLeastOnce,
                nolocal: false,
                preserve_retain: false,
                retain_forward_rule: RetainForwardRule::Never,
            }],
        };
        tx.send(Packet::Subscribe(subscribe, None))
            .await
            .map_err(|_| MqttError::EmbeddedLink)?;
        rxs.push(rx);
        acks.push(Acks {
            tx: Mutex::new(tx),
            pending: Mutex::new(Vec::new()),
        });
    }
    metrics.mqtt_connections.inc();
    let acks = Arc::new(acks);
    if !ack_on_receipt {
        // The writer's callbacks only queue packet ids; this hook, after
        // each batch, hands every link's to the router at once.
        let acks = acks.clone();
        handle.after_acks(Box::new(move || {
            for link in acks.iter() {
                acknowledge_batch(&link.tx, &link.pending);
            }
        }));
    }
    let mut source = LinkSource {
        acks,
        ack_on_receipt,
        metrics: metrics.clone(),
        order: Reorder::new(rxs.len()),
        subscribed: 0,
    };
    let mut held_since = None;
    let mut result = Ok(());
    'run: loop {
        let woke = {
            let next = futures_util::future::select_all(rxs.iter_mut().map(|rx| rx.next().boxed()));
            let gap = async {
                match held_since {
                    Some(t) => tokio::time::sleep_until(t + GAP_WAIT).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                (n, lane, _) = next => Some((lane, n)),
                () = gap => None,
            }
        };
        let mut unschedule = Vec::new();
        match woke {
            Some((lane, first)) => {
                // That notification, then whatever else the links hold
                // now, without waiting. (A link's result is large, over
                // 800 bytes: it is matched where it lands, not passed on.)
                let mut closed = None;
                match first {
                    Ok(n) => source.take(lane, n, &mut unschedule),
                    Err(e) => closed = Some(e),
                }
                for (i, rx) in rxs.iter_mut().enumerate() {
                    while closed.is_none() {
                        match rx.next().now_or_never() {
                            Some(Ok(Some(n))) => source.take(i, Some(n), &mut unschedule),
                            Some(Err(e)) => closed = Some(e),
                            Some(Ok(None)) | None => break,
                        }
                    }
                }
                if let Some(e) = closed {
                    tracing::error!(error = %e, "the embedded broker's link closed; the MQTT source stops");
                    result = Err(MqttError::EmbeddedLink);
                    break;
                }
            }
            None => {
                if let Some(m) = source.order.pop_stalled() {
                    tracing::warn!(
                        held = source.order.len() + 1,
                        "a message of the embedded broker's log never came; passing it over"
                    );
                    if handle.send(m).await.is_err() {
                        result = Err(MqttError::WriterStopped);
                        break;
                    }
                }
            }
        }
        for lane in unschedule {
            // The router stops sending on a link until told it is ready.
            if let Some(rx) = rxs.get(lane)
                && rx.wake().await.is_err()
            {
                result = Err(MqttError::EmbeddedLink);
                break 'run;
            }
        }
        let before = source.order.len();
        while let Some(m) = source.order.pop() {
            if handle.send(m).await.is_err() {
                result = Err(MqttError::WriterStopped);
                break 'run;
            }
        }
        // The wait for a missing message starts when nothing more could go.
        held_since = if source.order.is_empty() {
            None
        } else if source.order.len() < before {
            Some(tokio::time::Instant::now())
        } else {
            held_since.or_else(|| Some(tokio::time::Instant::now()))
        };
    }
    // What shutdown found held back for its turn still goes, in order.
    while result.is_ok()
        && let Some(m) = source.order.pop_stalled()
    {
        if handle.send(m).await.is_err() {
            result = Err(MqttError::WriterStopped);
        }
    }
    drop(handle);
    metrics.mqtt_connected.set(0);
    result
}

/// What the source keeps between notifications.
struct LinkSource {
    acks: Arc<Vec<Acks>>,
    ack_on_receipt: bool,
    metrics: Arc<LiveMetrics>,
    order: Reorder<Incoming>,
    /// Links whose subscription the router confirmed.
    subscribed: usize,
}

impl LinkSource {
    /// Takes what link `lane` gave: a message is queued in order, a link
    /// the router unscheduled is noted in `unschedule`.
    fn take(
        &mut self,
        lane: usize,
        notification: Option<Notification>,
        unschedule: &mut Vec<usize>,
    ) {
        match notification {
            Some(Notification::Forward(forward)) => self.forward(lane, forward),
            // The only acknowledgement these links ask for: the SUBACK.
            Some(Notification::DeviceAck(_)) => {
                self.subscribed += 1;
                if self.subscribed == self.order.lanes() {
                    self.metrics.mqtt_connected.set(1);
                    self.metrics.mqtt_subscriptions.inc();
                }
            }
            Some(Notification::Unschedule) => unschedule.push(lane),
            // Woken with nothing new, or nothing for the source.
            _ => {}
        }
    }

    fn forward(&mut self, lane: usize, forward: Forward) {
        let received = Timestamp::from_datetime(&chrono::Utc::now());
        let (pkid, qos) = pkid_and_qos(&forward.publish);
        let on_stored: Option<crate::store::OnStored> = if qos == 0 {
            None
        } else if self.ack_on_receipt {
            if let Some(link) = self.acks.get(lane) {
                acknowledge(&link.tx, &[pkid]);
            }
            None
        } else {
            let acks = self.acks.clone();
            // Runs on the writer thread, in delivery order.
            Some(Box::new(move || {
                if let Some(Ok(mut p)) = acks.get(lane).map(|l| l.pending.lock()) {
                    p.push(pkid);
                }
            }))
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
        self.order
            .push(lane, forward.cursor.map(|(_, offset)| offset), message);
    }
}

/// Sends the PUBACKs of a stored batch to the router, in delivery order, as
/// one router event. Acknowledged one by one, the router woke for the first
/// few, forwarded as many new messages, and woke again: many small rounds
/// instead of one window of 100.
fn acknowledge_batch(tx: &Mutex<LinkTx>, pending: &Mutex<Vec<u16>>) {
    let pkids = match pending.lock() {
        Ok(mut p) if !p.is_empty() => std::mem::take(&mut *p),
        _ => return,
    };
    acknowledge(tx, &pkids);
}

/// Sends PUBACKs to the router with at most one notification. The router
/// takes the link's whole buffer when it reads a notification, so PUBACKs
/// pushed while the buffer still holds unread ones ride along with those;
/// into an empty buffer, all but the last are pushed and the last goes with
/// a notification. The check and the pushes are under the buffer's lock,
/// so none is left without one.
fn acknowledge(tx: &Mutex<LinkTx>, pkids: &[u16]) {
    let Some((&last, rest)) = pkids.split_last() else {
        return;
    };
    let Ok(mut tx) = tx.lock() else {
        return;
    };
    {
        let mut buffer = tx.buffer();
        let unread = !buffer.is_empty();
        buffer.extend(rest.iter().map(|&pkid| puback(pkid)));
        if unread {
            buffer.push_back(puback(last));
            return;
        }
    }
    // `LinkTx::send` is an async fn that never awaits (a push, then a
    // blocking send on the router's bounded queue), so one poll completes
    // it; this runs outside any runtime on the writer thread (and, with
    // `on_receipt`, on the source task, for as long as the router's queue
    // is full). A closed link means the broker is gone with the process,
    // and so is what an acknowledgement would tell it.
    let send = std::pin::pin!(tx.send(puback(last)));
    let done = send.poll(&mut Context::from_waker(Waker::noop()));
    if !matches!(done, Poll::Ready(Ok(_))) {
        tracing::warn!(
            pkids = pkids.len(),
            "could not acknowledge messages to the embedded broker"
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
    use std::time::Instant;

    use fleetcare_ingest::pipeline::{PipelineConfig, Record};
    use rumqttc::{AsyncClient, Event, MqttOptions};

    use super::*;
    use crate::config::MqttConfig;
    use crate::sources::broker::EmbeddedBroker;
    use crate::sources::mqtt::Connection;
    use crate::store::RecordSink;
    use crate::store::Store;
    use crate::store::{WriterConfig, spawn_writer};

    /// Polls `done` until it holds; fails after `limit` with `what`.
    async fn until(limit: Duration, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + limit;
        while !done() {
            assert!(Instant::now() < deadline, "{what} within {limit:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Ten times as many messages as all links together hold
    /// unacknowledged, all on one topic, are stored once each and in the
    /// order they were published, although the broker deals them out over
    /// the links of the shared subscription.
    #[test]
    fn several_links_keep_the_published_order_and_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = MqttConfig {
            listen: "127.0.0.1:0".to_owned(),
            ..MqttConfig::default()
        };
        let mut broker = EmbeddedBroker::start(&config).unwrap();
        let links = broker.take_ingest_links().unwrap();
        let n = links.len() * 100 * 10;
        assert!(links.len() > 1, "one link: nothing to put in order");
        let store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
        let raw_hours = Arc::new(Mutex::new(Vec::<f64>::new()));
        let sink: RecordSink = {
            let raw_hours = raw_hours.clone();
            Box::new(move |records: &[Record]| {
                let mut seen = raw_hours.lock().unwrap();
                for r in records {
                    match r {
                        Record::Meter { raw, .. } => seen.push(*raw),
                        other => panic!("unexpected record {other:?}"),
                    }
                }
            })
        };
        let metrics = Arc::new(LiveMetrics::default());
        let (handle, writer) =
            spawn_writer(store, WriterConfig::default(), metrics.clone(), Some(sink)).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let addr = broker.connect_addr();
        runtime.block_on(async {
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let source_config = SourceConfig::new(&config, Connection::plain(addr, None));
            let topic = format!("{}/acme/TRK-001/can", config.topic_prefix);
            let source = tokio::spawn(run(links, source_config, handle, stopped));
            until(Duration::from_secs(10), "subscribed", || {
                metrics.mqtt_subscriptions.get() == 1
            })
            .await;
            let mut options = MqttOptions::new("order-test", addr.ip().to_string(), addr.port());
            options.set_inflight(1000);
            let (client, mut eventloop) = AsyncClient::new(options, 100);
            let publisher = tokio::spawn(async move {
                for i in 0..n {
                    // Engine hours, 0.05 h a bit, ten minutes apart.
                    let line = format!(
                        "({}.000000) can0 18FEE500#{:08X}FFFFFFFF\n",
                        1_772_323_200 + i * 600,
                        ((20_000 + i * 3) as u32).swap_bytes()
                    );
                    client
                        .publish(&topic, rumqttc::QoS::AtLeastOnce, false, line)
                        .await
                        .unwrap();
                }
            });
            let polling = tokio::spawn(async move {
                while !matches!(
                    eventloop.poll().await,
                    Err(_) | Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect))
                ) {}
            });
            until(Duration::from_secs(60), "every message stored", || {
                metrics.stored.get() == n as u64
            })
            .await;
            publisher.await.unwrap();
            stop.send(true).unwrap();
            source.await.unwrap().unwrap();
            polling.abort();
        });
        writer.join().unwrap().unwrap();
        let expected: Vec<f64> = (0..n).map(|i| (20_000 + i * 3) as f64 * 0.05).collect();
        let seen = raw_hours.lock().unwrap();
        assert_eq!(seen.len(), n);
        let first_out_of_order = seen
            .iter()
            .zip(&expected)
            .position(|(a, b)| (a - b).abs() > 1e-6);
        assert_eq!(
            first_out_of_order,
            None,
            "{:?}",
            &seen[..seen.len().min(20)]
        );
    }

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
