//! Live sources and the one writer they feed.
//!
//! ```text
//! MQTT (embedded links ─┐                     writer thread, per batch:
//!   in broker order,    ├─▶ IngestHandle ─▶ log ─▶ fsync ─▶ on_stored(), after_acks(): PUBACKs
//!   or TCP client)      │   bounded queue     └─▶ decode ─▶ records for the real-time path
//! Modbus pollers ───────┘
//! ```
//!
//! Every source hands [`Incoming`] messages to an [`IngestHandle`]. One
//! writer thread owns the [`Store`](crate::store::Store): it takes whatever
//! is queued (up to a batch), logs and syncs it, and only then runs each
//! message's `on_stored` callback and then the sources' `after_acks` hooks
//! — for MQTT these send the PUBACKs, so a message is acknowledged only
//! once it is durable. The acknowledgements leave before the batch is
//! decoded, so the broker's next messages are on their way while the
//! decoding runs. The queue is bounded: when the disk is slower than the
//! network, sources wait instead of growing memory.

pub mod broker;
pub mod local;
pub mod metrics;
pub mod modbus;
pub mod mqtt;
pub mod publish;
pub mod reorder;
pub mod writer;

use fleetcare_ingest::Timestamp;

pub use metrics::LiveMetrics;
pub use writer::{IngestHandle, WriterConfig, WriterStopped, spawn_writer};

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

/// A stop signal shared by every live task: `true` once shutdown began.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;
