//! Where messages come from while fleetcare runs, each a thin IO shell
//! that hands [`Incoming`](crate::store::Incoming) messages to the store's
//! writer ([`crate::store::writer`]):
//!
//! - [`edge`]: the embedded MQTT broker's listener, which checks every
//!   client against its login ([`edge::policy`]) and hands allowed
//!   publishes to the writer, acknowledging them once stored; behind it
//!   [`broker`], the internal rumqttd that delivers alerts to subscribers;
//! - [`mqtt`]: the QoS 1 subscription to an external broker,
//!   acknowledging only what is stored;
//! - [`modbus`]: one poller per body controller.
//!
//! Decoding is not done here: the writer runs every message through
//! `fleetcare_ingest`'s pipeline, whatever its source.

pub mod broker;
pub mod edge;
pub mod modbus;
pub mod mqtt;
