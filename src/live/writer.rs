//! The writer thread: the one owner of the store while fleetcare runs.
//!
//! Store work is blocking (file writes, fsync, Parquet), so it runs on its
//! own OS thread rather than on the async runtime. It batches whatever is
//! queued: under load one sync covers thousands of messages, when idle a
//! single message is synced at once, so latency stays low either way.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fleetcare_ingest::pipeline::{Message, Record};
use tokio::sync::mpsc;

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
        let acknowledge = |_: &[Outcome]| acks.into_iter().for_each(|ack| ack());
        let outcomes = match store.ingest_then(&messages, &mut records, acknowledge) {
            Ok(o) => o,
            Err(e) => {
                // Nothing of this batch is acknowledged: the broker keeps
                // it and delivers it again after a restart.
                tracing::error!(error = %e, messages = batch.len(), "storing failed; the writer stops");
                return Err(e);
            }
        };
        drop(messages);
        let stored = outcomes.iter().filter(|o| **o == Outcome::Stored).count() as u64;
        LiveMetrics::add(&metrics.stored, stored);
        LiveMetrics::add(&metrics.duplicates, outcomes.len() as u64 - stored);
        LiveMetrics::add(&metrics.batches, 1);
        let dead = records
            .iter()
            .filter(|r| matches!(r, Record::DeadLetter(_)))
            .count() as u64;
        LiveMetrics::add(&metrics.dead_letters, dead);
        batch.clear();
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
