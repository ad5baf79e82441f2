//! Optional sinks of the live path. One today: InfluxDB 2 (`[influxdb]`),
//! for Grafana (`dashboards/`).
//!
//! ```text
//! writer thread ─ records ─▶ encode (line protocol) ─▶ sink task ─ influxdb2 ─▶ InfluxDB /api/v2/write
//! ticket_events ─ cursor ─▶ spool (on disk) ─────────────▲   └─ server down ─▶ spool, back off, resend
//! ```
//!
//! Sans-IO pieces: [`line`](mod@line) (line protocol), [`encode`] (records
//! → lines), [`schema`] (every name written), [`batcher`] (when to send,
//! spool and retry). IO: [`spool`] (files), [`influx`] (the task and the
//! HTTP client), [`tickets`] (the database side).

pub mod batcher;
pub mod encode;
pub mod influx;
pub mod line;
pub mod schema;
pub mod spool;
pub mod tickets;

#[cfg(test)]
mod dashboards;

pub use encode::Encoder;
pub use influx::{InfluxSink, Settings, SinkError};
pub use tickets::TicketExport;

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::config::InfluxConfig;
use crate::db::Db;
use crate::registry::ModelMap;
use crate::runtime::LiveMetrics;
use crate::store::RecordSink;

/// The InfluxDB sink as `fleetcare run` runs it: the sink task and the
/// ticket export.
#[derive(Debug)]
pub struct InfluxService {
    sink: tokio::task::JoinHandle<()>,
    export: tokio::task::JoinHandle<()>,
    stop_export: tokio::sync::watch::Sender<bool>,
}

impl InfluxService {
    /// Starts both on the current runtime; returns the record sink to give
    /// the store writer. The sink task ends once the writer dropped it and
    /// the export stopped ([`InfluxService::finish`]).
    pub fn start(
        config: &InfluxConfig,
        data_dir: &Path,
        db: &Db,
        models: Arc<RwLock<ModelMap>>,
        metrics: Arc<LiveMetrics>,
    ) -> Result<(Self, RecordSink), SinkError> {
        let settings = Settings::from_config(config, data_dir)?;
        let cursor = settings.buffer_dir.join("tickets.cursor");
        tracing::info!(url = %settings.url, bucket = %settings.bucket, spool = %settings.buffer_dir.display(), "InfluxDB sink on");
        let (sink, task) = InfluxSink::start(settings, Encoder::new(models), metrics)?;
        let export = TicketExport {
            db: db.clone(),
            sink: sink.clone(),
            cursor,
            interval: config.tickets_interval,
            batch_lines: config.batch_lines,
        };
        let (stop_export, stop) = tokio::sync::watch::channel(false);
        let export = tokio::spawn(export.run(stop));
        let records = sink.record_sink();
        let service = Self {
            sink: task,
            export,
            stop_export,
        };
        Ok((service, records))
    }

    /// Exports the last ticket changes, then waits for the sink to write
    /// (or spool) what it holds. Call once the writer and everything that
    /// changes tickets have stopped.
    pub async fn finish(self) {
        let _ = self.stop_export.send(true);
        let _ = self.export.await;
        if let Err(e) = self.sink.await {
            tracing::error!(error = %e, "the InfluxDB sink panicked; its spool is sent at the next start");
        }
    }
}
