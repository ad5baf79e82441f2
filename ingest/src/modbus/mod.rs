//! Modbus: what the body controllers of sanitation trucks (brushes, fan,
//! water pump, compactor hydraulics) expose as registers, and how to read it.
//!
//! Only the register map, the decoding of read responses and what the
//! values mean in C1 terms live here, with no IO: the TCP poller in the
//! service (`src/sources/modbus/`) sends the [`ReadRequest`]s a
//! [`RegisterMap`] plans, hands the words it gets back to
//! [`ReadRequest::decode`], and publishes the [`meter_telemetry`] of the
//! values.

pub mod meters;
pub mod registers;

pub use meters::{METER_REGISTERS, meter_telemetry};
pub use registers::{
    DecodeError, MAX_REGISTERS_PER_READ, ReadRequest, Register, RegisterKind, RegisterMap,
    RegisterMapError, ValueType, WordOrder,
};
