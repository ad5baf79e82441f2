//! SAE J1939: identifiers, diagnostics (DM1/DM2), meters, condition signals and the transport
//! protocol, each in its own sans-IO module; [`J1939Decoder`] ties them
//! together for a stream of frames from one bus.

mod can_id;
mod decoder;
pub mod dm;
pub mod dtc;
pub mod meters;
pub mod signals;
pub mod transport;

pub use can_id::{Address, CanId, CanIdError, Pgn, Priority};
pub use decoder::{DecoderConfig, InvalidMessage, J1939Decoder, J1939Event};
pub use dm::{DiagnosticMessage, DmError, DmKind, FlashStatus, LampFlash, LampStatus, Lamps};
pub use dtc::{Dtc, Fmi, OccurrenceCount, Spn, SpnConversion};
pub use meters::{Meter, MeterError, MeterSample, Param};
pub use signals::{Signal, SignalName, SignalSample};
pub use transport::{
    AbortReason, FailureReason, Reassembled, Reassembler, TransportConfig, TransportFailure,
    TransportOutput,
};
