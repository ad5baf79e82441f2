//! Modbus: what the body controllers of sanitation trucks (brushes, fan,
//! water pump, compactor hydraulics) expose as registers, and how to read it.
//!
//! Only the register map and the decoding of read responses live here, with
//! no IO: the TCP poller in the service (`src/sources/modbus/`) sends the [`ReadRequest`]s a
//! [`RegisterMap`] plans and hands the words it gets back to
//! [`ReadRequest::decode`].

pub mod registers;

pub use registers::{
    DecodeError, MAX_REGISTERS_PER_READ, ReadRequest, Register, RegisterKind, RegisterMap,
    RegisterMapError, ValueType, WordOrder,
};
