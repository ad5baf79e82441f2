//! fleetcare: predictive maintenance for sanitation-truck fleets.
//!
//! The service side of fleetcare: the command line and, stage by stage, what
//! follows ingest (store, jobs, tickets, API). Decoding lives in the
//! `fleetcare-ingest` crate.

pub mod alerts;
pub mod api;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod db;
pub mod lines;
pub mod live;
pub mod recording;
pub mod registry;
pub mod report;
pub mod secret;
pub mod simulate;
pub mod sink;
pub mod store;
pub mod tickets;
pub mod tls;
pub mod web;
