//! The writer thread: the one owner of the store while fleetcare runs.
//!
//! Store work is blocking (file writes, fsync, Parquet), so it runs on its
//! own OS thread rather than on the async runtime. It batches whatever is
//! queued: under load one sync covers thousands of messages, when idle a
//! single message is synced at once, so latency stays low either way.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fleetcare_ingest::pipeline::{Message, Record};
use tokio::sync::mpsc;

use super::local::{LinkRead, LinkSource};
use super::mqtt::MqttError;
use super::{Incoming, LiveMetrics};
use crate::store::{Outcome, Store, StoreError};

/// Sizes of the writer's queue and batches.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Messages waiting for the writer before sources have to wait.
    pub queue: usize,
    /// At most this many messages per sync.
    pub batch: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue: 16_384,
            batch: 4_096,
        }
    }
}

/// The writer has stopped (after a storage error or at shutdown).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the store writer has stopped; see the log for why")]
pub struct WriterStopped;

/// Where sources send messages. Cloning is cheap; the writer stops once
/// every handle is dropped.
#[derive(Debug, Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<Incoming>,
    metrics: Arc<LiveMetrics>,
}

impl IngestHandle {
    /// Queues a message, waiting while the queue is full.
    pub async fn send(&self, message: Incoming) -> Result<(), WriterStopped> {
        LiveMetrics::add(&self.metrics.received, 1);
        self.tx.send(message).await.map_err(|_| WriterStopped)
    }

    /// The counters this writer and its sources update.
    pub fn metrics(&self) -> &Arc<LiveMetrics> {
        &self.metrics
    }

    /// A handle whose messages go to `tx` instead of a store: for testing a
    /// source on its own.
    pub fn from_sender(tx: mpsc::Sender<Incoming>, metrics: Arc<LiveMetrics>) -> Self {
        Self { tx, metrics }
    }
}

/// Called with the records of every batch, after it is durable and
/// acknowledged: the real-time path (critical faults) hangs here.
pub type RecordSink = Box<dyn FnMut(&[Record]) + Send>;

/// One sink that hands every batch to each of `sinks` in turn (the
/// real-time path, the InfluxDB sink); none of them may block.
pub fn fan_out(mut sinks: Vec<RecordSink>) -> RecordSink {
    Box::new(move |records: &[Record]| {
        for sink in &mut sinks {
            sink(records);
        }
    })
}

/// How long the writer waits on the embedded broker's link before it looks
/// at its queue (Modbus readings) and for shutdown again. Only an idle
/// writer waits: under load the queue is drained at every batch.
const LINK_POLL: Duration = Duration::from_millis(20);

/// Starts the writer thread over `store`. With `link` (the embedded
/// broker's, see [`local::subscribe`](super::local::subscribe)) the writer
/// reads it itself, beside its queue. The thread ends when the link is
/// done (at shutdown) and every [`IngestHandle`] is dropped, compacting the
/// store on the way out, or at the first storage error (after which
/// nothing more is acknowledged).
pub fn spawn_writer(
    store: Store,
    config: WriterConfig,
    metrics: Arc<LiveMetrics>,
    sink: Option<RecordSink>,
    link: Option<LinkSource>,
) -> std::io::Result<(
    IngestHandle,
    std::thread::JoinHandle<Result<Store, StoreError>>,
)> {
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let handle = IngestHandle {
        tx,
        metrics: metrics.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("fleetcare-writer".to_owned())
        .spawn(move || {
            let inputs = Inputs {
                queue: Some(rx),
                link,
            };
            write_loop(store, inputs, config.batch.max(1), &metrics, sink)
        })?;
    Ok((handle, thread))
}

/// What the writer reads: its queue until every handle is dropped, and the
/// embedded broker's link until shutdown.
struct Inputs {
    queue: Option<mpsc::Receiver<Incoming>>,
    link: Option<LinkSource>,
}

impl Inputs {
    /// Fills `batch` (and the link's `link_acks`) with what is there,
    /// waiting for the first message; `false` once every input is done.
    fn next_batch(
        &mut self,
        batch: &mut Vec<Incoming>,
        link_acks: &mut Vec<u16>,
        max: usize,
    ) -> bool {
        loop {
            if let Some(link) = self.link.as_mut() {
                if let Some(queue) = self.queue.as_mut()
                    && drain(queue, batch, max)
                {
                    self.queue = None;
                }
                let wait = if batch.is_empty() {
                    LINK_POLL
                } else {
                    Duration::ZERO
                };
                match link.read(batch, link_acks, max, wait) {
                    Ok(LinkRead::Open) => {}
                    Ok(LinkRead::Stopped) => self.finish_link(Ok(())),
                    Err(e) => self.finish_link(Err(e)),
                }
                if !batch.is_empty() {
                    return true;
                }
            } else {
                let Some(queue) = self.queue.as_mut() else {
                    return false;
                };
                match queue.blocking_recv() {
                    Some(first) => batch.push(first),
                    None => {
                        self.queue = None;
                        return false;
                    }
                }
                // Closed behind what it held: seen at the next wait.
                drain(queue, batch, max);
                return true;
            }
        }
    }

    fn finish_link(&mut self, result: Result<(), MqttError>) {
        if let Some(link) = self.link.take() {
            link.finish(result);
        }
    }
}

/// Moves what is queued into `batch` (up to `max`), without waiting;
/// `true` once the queue is closed and empty.
fn drain(queue: &mut mpsc::Receiver<Incoming>, batch: &mut Vec<Incoming>, max: usize) -> bool {
    while batch.len() < max {
        match queue.try_recv() {
            Ok(m) => batch.push(m),
            Err(mpsc::error::TryRecvError::Empty) => return false,
            Err(mpsc::error::TryRecvError::Disconnected) => return true,
        }
    }
    false
}

fn write_loop(
    mut store: Store,
    mut inputs: Inputs,
    batch_max: usize,
    metrics: &LiveMetrics,
    mut sink: Option<RecordSink>,
) -> Result<Store, StoreError> {
    let mut batch: Vec<Incoming> = Vec::with_capacity(batch_max);
    let mut link_acks: Vec<u16> = Vec::new();
    let mut records = Vec::new();
    while inputs.next_batch(&mut batch, &mut link_acks, batch_max) {
        // Taken out first: they run once the batch is synced, while the
        // messages are still borrowed for decoding.
        let acks: Vec<super::OnStored> = batch
            .iter_mut()
            .filter_map(|m| m.on_stored.take())
            .collect();
        let messages: Vec<Message<'_>> = batch
            .iter()
            .map(|m| Message {
                topic: &m.topic,
                payload: &m.payload,
                received: m.received,
            })
            .collect();
        records.clear();
        // Acknowledged as soon as the batch is durable, before it is
        // decoded: the broker sends its next messages meanwhile (rumqttd
        // has at most 100 unacknowledged in flight). A thread of its own
        // for the sync was tried: its wake-ups cost more CPU than the
        // overlap saved (docs/decisions.md).
        let link = inputs.link.as_mut();
        let durable = |outcomes: &[Outcome]| {
            if let Some(link) = link {
                link.acknowledge(&link_acks);
            }
            acks.into_iter().for_each(|ack| ack());
            let stored = outcomes.iter().filter(|o| **o == Outcome::Stored).count() as u64;
            LiveMetrics::add(&metrics.stored, stored);
            LiveMetrics::add(&metrics.duplicates, outcomes.len() as u64 - stored);
            LiveMetrics::add(&metrics.batches, 1);
        };
        let result = store.ingest_acking(&messages, &mut records, durable);
        drop(messages);
        if let Err(e) = result {
            // Nothing of this batch is acknowledged: the broker keeps it
            // and delivers it again after a restart.
            tracing::error!(error = %e, messages = batch.len(), "storing failed; the writer stops");
            return Err(e);
        }
        batch.clear();
        link_acks.clear();
        let dead = records
            .iter()
            .filter(|r| matches!(r, Record::DeadLetter(_)))
            .count() as u64;
        LiveMetrics::add(&metrics.dead_letters, dead);
        if let Some(sink) = sink.as_mut() {
            sink(&records);
        }
    }
    tracing::info!(
        stored = metrics.stored.load(Ordering::Relaxed),
        "every source stopped; compacting the store"
    );
    store.compact()?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use fleetcare_ingest::Timestamp;
    use fleetcare_ingest::pipeline::PipelineConfig;

    use super::*;

    /// Acknowledgements run once per message, in the order the messages
    /// came, and the real-time sink sees a batch's records only after every
    /// message of it was acknowledged (that is, after its sync).
    #[test]
    fn acks_keep_delivery_order_and_come_before_the_batchs_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
        let acked = Arc::new(Mutex::new(Vec::<usize>::new()));
        let seen_by_sink = Arc::new(Mutex::new(Vec::<(usize, usize)>::new()));
        let sink: RecordSink = {
            let (acked, seen) = (acked.clone(), seen_by_sink.clone());
            Box::new(move |records: &[Record]| {
                let acks = acked.lock().unwrap().len();
                seen.lock().unwrap().push((acks, records.len()));
            })
        };
        let metrics = Arc::new(LiveMetrics::default());
        let config = WriterConfig {
            queue: 64,
            batch: 7,
        };
        let (handle, thread) =
            spawn_writer(store, config, metrics.clone(), Some(sink), None).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let n = 200;
        runtime.block_on(async {
            for i in 0..n {
                let acked = acked.clone();
                let message = Incoming {
                    topic: "fleet/acme/TRK-001/can".to_owned(),
                    // Every message is new and dated, and every one makes a
                    // meter record: the sink has something to see.
                    payload: format!(
                        "({}.000000) can0 18FEE500#{:08X}FFFFFFFF\n",
                        1_772_323_200 + i * 600,
                        ((20_000 + i * 3) as u32).swap_bytes()
                    )
                    .into_bytes(),
                    received: Timestamp::from_micros(1_800_000_000_000_000 + i as i64),
                    on_stored: Some(Box::new(move || acked.lock().unwrap().push(i))),
                };
                handle.send(message).await.unwrap();
            }
        });
        drop(handle);
        thread.join().unwrap().unwrap();
        assert_eq!(*acked.lock().unwrap(), (0..n).collect::<Vec<_>>());
        assert_eq!(metrics.stored.load(Ordering::Relaxed), n as u64);
        let seen = seen_by_sink.lock().unwrap();
        let mut records = 0;
        for &(acks_then, batch_records) in seen.iter() {
            records += batch_records;
            // Each meter reading is one record: the acks of the messages
            // behind these records had all run.
            assert!(acks_then >= records, "{acks_then} acks, {records} records");
        }
        assert_eq!(records, n);
    }

    /// An engine-hours reading of `vehicle` as a candump payload: every one
    /// is new and dated, so each makes one meter record.
    fn hours_payload(i: usize) -> Vec<u8> {
        format!(
            "({}.000000) can0 18FEE500#{:08X}FFFFFFFF\n",
            1_772_323_200 + i * 600,
            ((20_000 + i * 3) as u32).swap_bytes()
        )
        .into_bytes()
    }

    /// Read on the writer thread, the embedded broker's link delivers more
    /// than rumqttd's 100 in flight (so the writer's acknowledgements reach
    /// the router), the queue is read while the link is quiet, and shutdown
    /// ends the source cleanly with everything stored.
    #[test]
    fn the_writer_reads_the_embedded_link_and_its_queue() {
        use crate::config::MqttConfig;
        use crate::live::broker::EmbeddedBroker;
        use crate::live::mqtt::{Connection, SourceConfig};
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
        let config = MqttConfig {
            listen: "127.0.0.1:0".to_owned(),
            ..MqttConfig::default()
        };
        let mut broker = EmbeddedBroker::start(&config).unwrap();
        let addr = broker.connect_addr();
        let link = broker.take_ingest_link().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let metrics = Arc::new(LiveMetrics::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let source_config = SourceConfig::new(&config, Connection::plain(addr, None));
        let (link, source) =
            crate::live::local::subscribe(link, &source_config, metrics.clone(), stop_rx).unwrap();
        let (records_tx, records_rx) = std::sync::mpsc::channel::<usize>();
        let sink: RecordSink = Box::new(move |records: &[Record]| {
            let _ = records_tx.send(records.len());
        });
        let (handle, thread) = spawn_writer(
            store,
            WriterConfig::default(),
            metrics.clone(),
            Some(sink),
            Some(link),
        )
        .unwrap();
        let wait_for_records = |n: usize| {
            let mut seen = 0;
            while seen < n {
                seen += records_rx
                    .recv_timeout(std::time::Duration::from_secs(30))
                    .unwrap_or_else(|_| panic!("only {seen} of {n} records were stored"));
            }
            assert_eq!(seen, n);
        };

        let n = 350;
        runtime.block_on(async {
            let mut options = MqttOptions::new("gateway", addr.ip().to_string(), addr.port());
            options.set_clean_session(true);
            let (client, mut eventloop) = AsyncClient::new(options, 16);
            let publisher = tokio::spawn(async move {
                for i in 0..n {
                    client
                        .publish(
                            "fleet/acme/TRK-001/can",
                            QoS::AtLeastOnce,
                            false,
                            hours_payload(i),
                        )
                        .await
                        .unwrap();
                }
                client
            });
            let mut acked = 0;
            while acked < n {
                if let Event::Incoming(Packet::PubAck(_)) = eventloop.poll().await.unwrap() {
                    acked += 1;
                }
            }
            drop(publisher.await.unwrap());
        });
        wait_for_records(n);

        // A Modbus-like message while the link is quiet.
        runtime
            .block_on(handle.send(Incoming {
                topic: "fleet/acme/TRK-002/can".to_owned(),
                payload: hours_payload(0),
                received: Timestamp::from_micros(1_800_000_000_000_000),
                on_stored: None,
            }))
            .unwrap();
        wait_for_records(1);

        stop_tx.send(true).unwrap();
        assert!(runtime.block_on(source).unwrap().is_ok());
        drop(handle);
        thread.join().unwrap().unwrap();
        assert_eq!(metrics.stored.load(Ordering::Relaxed), n as u64 + 1);
        assert_eq!(metrics.received.load(Ordering::Relaxed), n as u64 + 1);
        assert_eq!(metrics.mqtt_subscriptions.load(Ordering::Relaxed), 1);
    }
}
