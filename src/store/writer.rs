//! The writer thread: the one owner of the store while fleetcare runs.
//!
//! ```text
//! MQTT (embedded links ─┐                     writer thread, per batch:
//!   in broker order,    ├─▶ IngestHandle ─▶ log ─▶ fsync ─▶ on_stored(): PUBACKs
//!   or TCP client)      │   bounded queue     └─▶ decode ─▶ records for the real-time path
//! Modbus pollers ───────┘
//! ```
//!
//! Every source hands [`Incoming`] messages to an [`IngestHandle`]. The
//! writer takes whatever is queued (up to a batch), logs and syncs it, and
//! only then runs each message's `on_stored` callback — for MQTT these
//! send the PUBACKs, so a message is acknowledged only once it is durable. The acknowledgements
//! leave before the batch is decoded, so the broker's next messages are on
//! their way while the decoding runs. The queue is bounded: when the disk
//! is slower than the network, sources wait instead of growing memory.
//!
//! Store work is blocking (file writes, fsync, Parquet), so it runs on its
//! own OS thread rather than on the async runtime. Under load one sync
//! covers thousands of messages; when idle a single message is synced at
//! once, so latency stays low either way.

use std::sync::Arc;

use fleetcare_ingest::pipeline::{Message, Record};
use tokio::sync::mpsc;

use fleetcare_ingest::Timestamp;

use super::{Outcome, Store, StoreError};
use crate::runtime::LiveMetrics;

/// Called once the message is durable (stored now, or stored before).
pub type OnStored = Box<dyn FnOnce() + Send>;

/// One message from a live source, on its way to the store.
pub struct Incoming {
    pub topic: String,
    pub payload: Vec<u8>,
    pub received: Timestamp,
    /// `None` for sources that need no acknowledgement (Modbus polls).
    pub on_stored: Option<OnStored>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("topic", &self.topic)
            .field("payload_len", &self.payload.len())
            .field("received", &self.received)
            .field("acknowledged", &self.on_stored.is_some())
            .finish()
    }
}

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
#[derive(Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<Incoming>,
    metrics: Arc<LiveMetrics>,
}

impl std::fmt::Debug for IngestHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestHandle")
            .field("queued", &(self.tx.max_capacity() - self.tx.capacity()))
            .finish_non_exhaustive()
    }
}

impl IngestHandle {
    /// Queues a message, waiting while the queue is full.
    pub async fn send(&self, message: Incoming) -> Result<(), WriterStopped> {
        self.metrics.received.inc();
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

/// Starts the writer thread over `store`. The thread ends when every
/// [`IngestHandle`] is dropped, compacting the store on the way out, or at
/// the first storage error (after which nothing more is acknowledged).
pub fn spawn_writer(
    store: Store,
    config: WriterConfig,
    metrics: Arc<LiveMetrics>,
    sink: Option<RecordSink>,
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
        .spawn(move || write_loop(store, rx, config.batch.max(1), &metrics, sink))?;
    Ok((handle, thread))
}

fn write_loop(
    mut store: Store,
    mut rx: mpsc::Receiver<Incoming>,
    batch_max: usize,
    metrics: &LiveMetrics,
    mut sink: Option<RecordSink>,
) -> Result<Store, StoreError> {
    let mut batch: Vec<Incoming> = Vec::with_capacity(batch_max);
    let mut records = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        // Taken out first: they run once the batch is synced, while the
        // messages are still borrowed for decoding.
        let acks: Vec<OnStored> = batch
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
        let durable = |outcomes: &[Outcome]| {
            acks.into_iter().for_each(|ack| ack());
            let stored = outcomes.iter().filter(|o| **o == Outcome::Stored).count() as u64;
            metrics.stored.inc_by(stored);
            metrics.duplicates.inc_by(outcomes.len() as u64 - stored);
            metrics.batches.inc();
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
        // A record may stand for more letters of its message than it is.
        metrics.count_dead_letters(
            records
                .iter()
                .flat_map(|r| match r {
                    Record::DeadLetter(d) => Some(d.counts()),
                    _ => None,
                })
                .flatten(),
        );
        if let Some(sink) = sink.as_mut() {
            sink(&records);
        }
    }
    tracing::info!(
        stored = metrics.stored.get(),
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
        let (handle, thread) = spawn_writer(store, config, metrics.clone(), Some(sink)).unwrap();
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
        assert_eq!(metrics.stored.get(), n as u64);
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
}
