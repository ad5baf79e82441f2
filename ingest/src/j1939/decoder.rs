//! One J1939 network's frames in, diagnostic and meter events out.

use super::can_id::{Address, Pgn};
use super::dm::{DiagnosticMessage, DmError, DmKind};
use super::dtc::SpnConversion;
use super::meters::{self, Meter, MeterError, MeterSample};
use super::signals::{self, Signal};
use super::transport::{Reassembler, TransportConfig, TransportFailure, TransportOutput};
use crate::frame::{CanFrame, FrameId};
use crate::timestamp::Timestamp;

/// Settings of one decoder.
#[derive(Debug, Clone, Default)]
pub struct DecoderConfig {
    pub transport: TransportConfig,
    /// Sources known to send legacy SPN layouts with CM = 1; all others
    /// are read as version 4.
    pub spn_conversion: Vec<(Address, SpnConversion)>,
}

/// A message of a PGN we decode whose content was unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    #[error(transparent)]
    Diagnostic(#[from] DmError),
    #[error(transparent)]
    Meter(#[from] MeterError),
}

/// What the frames meant.
#[derive(Debug, Clone, PartialEq)]
pub enum J1939Event {
    Diagnostic {
        ts: Timestamp,
        source: Address,
        message: DiagnosticMessage,
    },
    /// A meter with a valid value; "not available" and error values are
    /// not events.
    Meter {
        ts: Timestamp,
        source: Address,
        meter: Meter,
        value: f64,
    },
    /// A condition signal (C12) with a valid value; "not available" and
    /// error values are not events.
    Signal {
        ts: Timestamp,
        source: Address,
        signal: Signal,
        value: f64,
    },
    /// A frame the receiving node answers with (transport CTS, EOM ACK, Abort).
    Send(CanFrame),
    /// A transport session that ended without a message.
    TransportFailed(TransportFailure),
    /// A DM1/DM2 or meter message that could not be read.
    Invalid {
        ts: Timestamp,
        source: Address,
        pgn: Pgn,
        error: InvalidMessage,
    },
}

/// Decodes the J1939 frames of one network (one vehicle's bus).
#[derive(Debug)]
pub struct J1939Decoder {
    transport: Reassembler,
    spn_conversion: Box<[SpnConversion; 256]>,
    transport_out: Vec<TransportOutput>,
}

impl Default for J1939Decoder {
    fn default() -> Self {
        Self::new(&DecoderConfig::default())
    }
}

impl J1939Decoder {
    pub fn new(config: &DecoderConfig) -> Self {
        let mut spn_conversion = Box::new([SpnConversion::V4; 256]);
        for &(addr, conv) in &config.spn_conversion {
            if let Some(slot) = spn_conversion.get_mut(usize::from(addr.0)) {
                *slot = conv;
            }
        }
        Self {
            transport: Reassembler::new(config.transport),
            spn_conversion,
            transport_out: Vec::new(),
        }
    }

    /// True when frames of `pgn` can lead to an event: lets a caller skip the
    /// payload of the many PGNs fleetcare does not use.
    pub fn wants(pgn: Pgn) -> bool {
        pgn == Pgn::DM1
            || pgn == Pgn::DM2
            || pgn == Pgn::TP_CM
            || pgn == Pgn::TP_DT
            || meters::is_meter_pgn(pgn)
            || signals::is_signal_pgn(pgn)
    }

    /// Transport sessions in progress.
    pub fn open_sessions(&self) -> usize {
        self.transport.open_sessions()
    }

    /// When the next transport session would time out.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.transport.next_deadline()
    }

    /// Ends transport sessions whose deadline passed before `now`.
    pub fn poll_timeouts(&mut self, now: Timestamp, out: &mut Vec<J1939Event>) {
        self.transport.poll_timeouts(now, &mut self.transport_out);
        self.drain_transport(out);
    }

    /// Feeds one frame; 11-bit frames are ignored.
    pub fn handle(&mut self, frame: &CanFrame, out: &mut Vec<J1939Event>) {
        let FrameId::Extended(id) = frame.id else {
            return;
        };
        let pgn = id.pgn();
        if pgn == Pgn::TP_CM || pgn == Pgn::TP_DT {
            self.transport.handle(frame, &mut self.transport_out);
            self.drain_transport(out);
        } else {
            self.decode_message(frame.ts, id.source(), pgn, frame.data.as_slice(), out);
        }
    }

    fn drain_transport(&mut self, out: &mut Vec<J1939Event>) {
        let mut outputs = std::mem::take(&mut self.transport_out);
        for o in outputs.drain(..) {
            match o {
                TransportOutput::Message(m) => {
                    self.decode_message(m.ts, m.source, m.pgn, &m.data, out)
                }
                TransportOutput::Send(f) => out.push(J1939Event::Send(f)),
                TransportOutput::Failed(f) => out.push(J1939Event::TransportFailed(f)),
            }
        }
        self.transport_out = outputs;
    }

    fn decode_message(
        &self,
        ts: Timestamp,
        source: Address,
        pgn: Pgn,
        data: &[u8],
        out: &mut Vec<J1939Event>,
    ) {
        let kind = match pgn {
            Pgn::DM1 => Some(DmKind::Dm1),
            Pgn::DM2 => Some(DmKind::Dm2),
            _ => None,
        };
        if let Some(kind) = kind {
            let legacy = self
                .spn_conversion
                .get(usize::from(source.0))
                .copied()
                .unwrap_or_default();
            out.push(match DiagnosticMessage::decode(kind, data, legacy) {
                Ok(message) => J1939Event::Diagnostic {
                    ts,
                    source,
                    message,
                },
                Err(e) => J1939Event::Invalid {
                    ts,
                    source,
                    pgn,
                    error: e.into(),
                },
            });
        } else if meters::is_meter_pgn(pgn) {
            match meters::decode(pgn, data) {
                Ok(MeterSample { meter, value, .. }) => {
                    if let Some(value) = value.value() {
                        out.push(J1939Event::Meter {
                            ts,
                            source,
                            meter,
                            value,
                        });
                    }
                }
                Err(e) => out.push(J1939Event::Invalid {
                    ts,
                    source,
                    pgn,
                    error: e.into(),
                }),
            }
        } else if signals::is_signal_pgn(pgn) {
            for sample in signals::decode(pgn, data) {
                if let Some(value) = sample.value.value() {
                    out.push(J1939Event::Signal {
                        ts,
                        source,
                        signal: sample.signal,
                        value,
                    });
                }
            }
        }
    }
}
