//! fleetcare: predictive maintenance for sanitation-truck fleets.
//!
//! The service side of fleetcare; decoding lives in the `fleetcare-ingest`
//! crate. The modules, highest layer first (README, "Architecture"; a
//! module uses only its own layer and those below, and
//! `tests/layering.rs` holds the code to it):
//!
//! - [`cli`]: the command line;
//! - [`app`]: the service, started and stopped as one;
//! - [`http`] (API, web UI, who may call what), [`sources`] (MQTT, the
//!   embedded broker, Modbus), [`alerts`], [`sink`] (InfluxDB),
//!   [`simulate`];
//! - [`query`] (reads of the history and logs), [`report`] (the polars
//!   jobs), [`tickets`];
//! - [`store`] (write-ahead log, Parquet history, the writer thread),
//!   [`registry`], [`parts`] (the parts ledger), [`catalog`], [`db`];
//! - [`runtime`]: shutdown, back-off, TLS, secrets, metrics;
//! - [`config`], [`recording`] and [`lines`]: settings and input files.

pub mod alerts;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod db;
pub mod http;
pub mod lines;
pub mod parts;
pub mod query;
pub mod recording;
pub mod registry;
pub mod report;
pub mod runtime;
pub mod simulate;
pub mod sink;
pub mod sources;
pub mod store;
pub mod tickets;
