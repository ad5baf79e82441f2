//! Where messages come from while fleetcare runs, each a thin IO shell
//! that hands [`Incoming`](crate::store::Incoming) messages to the store's
//! writer ([`crate::store::writer`]):
//!
//! - [`broker`]: the embedded MQTT broker (rumqttd), when no external one
//!   is configured, and [`links`]: its in-process links, read in broker
//!   order ([`reorder`]);
//! - [`mqtt`]: the QoS 1 subscription to an external broker (or the
//!   embedded one's links), acknowledging only what is stored;
//! - [`modbus`]: one poller per body controller.
//!
//! Decoding is not done here: the writer runs every message through
//! `fleetcare_ingest`'s pipeline, whatever its source.

pub mod broker;
pub mod links;
pub mod modbus;
pub mod mqtt;
pub mod reorder;
