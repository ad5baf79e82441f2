#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

//! Decoding (and encoding) of what sanitation trucks send, without any IO.
//!
//! Bytes and timestamps go in, typed events come out: the protocol modules
//! here know nothing of sockets, clocks or tasks, so the same code serves the
//! live MQTT and Modbus sources, the replay of recordings, `fleetcare decode`,
//! the fuzzers and the benchmarks.
//!
//! - [`candump`]: one `candump -L` text line → a [`CanFrame`].
//! - [`j1939`]: identifiers, DM1/DM2 diagnostics, hour and distance meters and
//!   the transport protocol (BAM and RTS/CTS) reassembly, tied together by
//!   [`j1939::J1939Decoder`].
//! - [`telemetry`]: the JSON payload of gateways that decode on board,
//!   parsed and written.
//! - [`topic`] and [`ids`]: the MQTT topics of contract C1, built and
//!   parsed, and the contract's typed ids (fleet, vehicle, model, task, part).
//! - [`modbus`]: body-controller register maps, the decoding of their
//!   read responses and the C1 telemetry of their meter registers.
//! - [`pipeline`]: the one path every message takes, live or replayed:
//!   per-vehicle decoder state, fault episodes, meter checks and dead
//!   letters with reasons.

pub mod candump;
pub mod frame;
pub mod ids;
pub mod j1939;
pub mod modbus;
pub mod pipeline;
pub mod telemetry;
pub mod timestamp;
pub mod topic;

pub use frame::{CanFrame, FrameData, FrameId};
pub use timestamp::{Duration, Timestamp};
