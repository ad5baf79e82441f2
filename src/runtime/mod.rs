//! What every long-running part of the service shares and nothing
//! domain-specific: the stop signal, retry back-off, TLS clients, secrets
//! and the metrics a user graphs. Everything above may use it; it uses
//! only what is below it: the configuration and `fleetcare_ingest`.

pub mod backoff;
pub mod metrics;
pub mod owner_only;
pub mod secret;
pub mod shutdown;
pub mod tls;

pub use backoff::Backoff;
pub use metrics::{LiveMetrics, TicketSkip};
pub use shutdown::Shutdown;
