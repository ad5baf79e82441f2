//! Transport protocol, receive side (J1939-21 §5.10): reassembles messages of
//! 9–1785 bytes sent as BAM (broadcast) or RTS/CTS (to one destination).
//!
//! Sans-IO in the manner of rumqttc's state machine: [`Reassembler::handle`]
//! takes a timestamped frame and pushes what follows from it — a completed
//! message, a frame the receiving node answers with (CTS, EOM ACK, Abort), or
//! a failed session — into the caller's buffer. Time comes only from the
//! frames' own timestamps (or [`Reassembler::poll_timeouts`]), never a clock.
//!
//! ```text
//! TP.CM (PGN 0xEC00), 8 bytes:
//!   RTS   10 | size lo | size hi | packets | max per CTS | PGN (3 bytes, LE)
//!   CTS   11 | count   | next seq| FF      | FF          | PGN
//!   EOM   13 | size lo | size hi | packets | FF          | PGN
//!   BAM   20 | size lo | size hi | packets | FF          | PGN
//!   Abort FF | reason  | FF      | FF      | FF          | PGN
//! TP.DT (PGN 0xEB00): seq (1..=255) | 7 data bytes, the last padded with FF
//! ```
//!
//! Sessions are keyed by (source, destination); a BAM has the global
//! destination, so one BAM and one RTS/CTS session per source may run at
//! once. Memory is bounded: at most [`TransportConfig::max_sessions`]
//! sessions of at most [`MAX_MESSAGE_SIZE`] bytes each.
//!
//! Only the receiver's timeouts apply here: T1 (a DT is late after the
//! previous DT or the BAM) and T2 (the first DT is late after a CTS). T3 and
//! T4 bound a sender waiting for CTS or EOM ACK and are not needed by a
//! receive-only reassembler.

use super::can_id::{Address, CanId, Pgn, Priority};
use crate::frame::CanFrame;
use crate::timestamp::{Duration, Timestamp};

/// Largest message the transport protocol carries: 255 packets × 7 bytes.
pub const MAX_MESSAGE_SIZE: usize = 1785;
/// Smallest message the transport protocol carries: up to 8 bytes fit one
/// frame (J1939-21 §5.10).
pub const MIN_MESSAGE_SIZE: usize = 9;

/// J1939-21 T1: the longest wait for a DT after the BAM or the previous DT.
pub const T1: Duration = Duration::from_millis(750);
/// J1939-21 T2: the longest wait for a DT after sending a CTS.
pub const T2: Duration = Duration::from_millis(1250);
/// J1939-21 T3: a sender's wait for CTS or EOM ACK (not used by a receiver).
pub const T3: Duration = Duration::from_millis(1250);
/// J1939-21 T4: a sender's wait after a hold CTS (not used by a receiver).
pub const T4: Duration = Duration::from_millis(1050);

const CM_RTS: u8 = 0x10;
const CM_CTS: u8 = 0x11;
const CM_EOM_ACK: u8 = 0x13;
const CM_BAM: u8 = 0x20;
const CM_ABORT: u8 = 0xFF;

/// Priority of the frames we answer with; peers use 7 for TP.CM.
const REPLY_PRIORITY: Priority = match Priority::new(7) {
    Some(p) => p,
    None => panic!("7 is a valid priority"),
};

/// Limits of one reassembler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportConfig {
    pub t1: Duration,
    pub t2: Duration,
    /// Concurrent sessions; a further BAM or RTS is refused.
    pub max_sessions: usize,
    /// Packets granted per CTS, further limited by the sender's own maximum.
    pub max_packets_per_cts: u8,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            t1: T1,
            t2: T2,
            max_sessions: 32,
            max_packets_per_cts: 255,
        }
    }
}

/// Connection abort reasons (J1939-21 Table 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbortReason {
    Busy,
    NoResources,
    Timeout,
    CtsDuringTransfer,
    MaxRetransmits,
    UnexpectedData,
    BadSequence,
    DuplicateSequence,
    TooLarge,
    /// Any other code, e.g. 250 "other".
    Other(u8),
}

impl AbortReason {
    pub const fn from_code(c: u8) -> Self {
        match c {
            1 => Self::Busy,
            2 => Self::NoResources,
            3 => Self::Timeout,
            4 => Self::CtsDuringTransfer,
            5 => Self::MaxRetransmits,
            6 => Self::UnexpectedData,
            7 => Self::BadSequence,
            8 => Self::DuplicateSequence,
            9 => Self::TooLarge,
            c => Self::Other(c),
        }
    }

    pub const fn code(self) -> u8 {
        match self {
            Self::Busy => 1,
            Self::NoResources => 2,
            Self::Timeout => 3,
            Self::CtsDuringTransfer => 4,
            Self::MaxRetransmits => 5,
            Self::UnexpectedData => 6,
            Self::BadSequence => 7,
            Self::DuplicateSequence => 8,
            Self::TooLarge => 9,
            Self::Other(c) => c,
        }
    }
}

/// Why a transfer produced no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FailureReason {
    #[error("timed out waiting for the next data packet")]
    Timeout,
    #[error("data packet {got} arrived where {expected} was expected")]
    BadSequence { expected: u8, got: u8 },
    #[error("data packet {seq} arrived twice")]
    DuplicateSequence { seq: u8 },
    #[error("the peer aborted the transfer ({0:?})")]
    AbortedByPeer(AbortReason),
    #[error("announced size {size} exceeds 1785 bytes")]
    TooLarge { size: u16 },
    #[error("malformed transport frame: {0}")]
    Malformed(&'static str),
    #[error("too many concurrent transport sessions")]
    NoResources,
    #[error("replaced by a new announcement from the same source before it completed")]
    Replaced,
    #[error("data packet without an open session")]
    UnexpectedData,
}

/// A transfer that ended without a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportFailure {
    pub ts: Timestamp,
    pub source: Address,
    pub destination: Address,
    /// The PGN being transferred, when known.
    pub pgn: Option<Pgn>,
    pub reason: FailureReason,
}

/// A message put back together from its packets.
#[derive(Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// Time of the last data packet, when the message became known.
    pub ts: Timestamp,
    pub pgn: Pgn,
    pub source: Address,
    pub destination: Address,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Reassembled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembled")
            .field("ts", &self.ts)
            .field("pgn", &self.pgn)
            .field("source", &self.source)
            .field("destination", &self.destination)
            .field("len", &self.data.len())
            .finish()
    }
}

/// What a frame led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportOutput {
    Message(Reassembled),
    /// A frame the receiving node sends back: CTS, EOM ACK or Abort.
    Send(CanFrame),
    Failed(TransportFailure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bam,
    /// RTS/CTS; packets up to `window_end` have been granted.
    Cts {
        window_end: u8,
        max_per_cts: u8,
    },
}

#[derive(Debug)]
struct Session {
    source: Address,
    destination: Address,
    pgn: Pgn,
    size: usize,
    packets: u8,
    next_seq: u8,
    mode: Mode,
    deadline: Timestamp,
    data: Vec<u8>,
}

/// Receive-side transport state of one J1939 network.
#[derive(Debug, Default)]
pub struct Reassembler {
    config: TransportConfig,
    sessions: Vec<Session>,
}

struct Announcement {
    size: usize,
    packets: u8,
    pgn: Pgn,
}

impl Reassembler {
    pub fn new(config: TransportConfig) -> Self {
        Self {
            config,
            sessions: Vec::new(),
        }
    }

    /// Sessions in progress.
    pub fn open_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// The earliest time at which a session times out, for a live shell
    /// that wants to call [`Self::poll_timeouts`] without a frame arriving.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.sessions.iter().map(|s| s.deadline).min()
    }

    /// Ends every session whose deadline is before `now`.
    pub fn poll_timeouts(&mut self, now: Timestamp, out: &mut Vec<TransportOutput>) {
        let mut i = 0;
        while let Some(s) = self.sessions.get(i) {
            if s.deadline < now {
                let s = self.sessions.swap_remove(i);
                fail(
                    out,
                    now,
                    &s,
                    FailureReason::Timeout,
                    Some(AbortReason::Timeout),
                );
            } else {
                i += 1;
            }
        }
    }

    /// Feeds one frame; non-transport frames are ignored.
    pub fn handle(&mut self, frame: &CanFrame, out: &mut Vec<TransportOutput>) {
        let crate::frame::FrameId::Extended(id) = frame.id else {
            return;
        };
        let pgn = id.pgn();
        if pgn != Pgn::TP_CM && pgn != Pgn::TP_DT {
            return;
        }
        if !self.sessions.is_empty() {
            self.poll_timeouts(frame.ts, out);
        }
        let (source, destination) = (id.source(), id.destination());
        if pgn == Pgn::TP_CM {
            self.on_connection_management(
                frame.ts,
                source,
                destination,
                frame.data.as_slice(),
                out,
            );
        } else {
            self.on_data(frame.ts, source, destination, frame.data.as_slice(), out);
        }
    }

    fn position(&self, source: Address, destination: Address) -> Option<usize> {
        self.sessions
            .iter()
            .position(|s| s.source == source && s.destination == destination)
    }

    fn on_connection_management(
        &mut self,
        ts: Timestamp,
        source: Address,
        destination: Address,
        data: &[u8],
        out: &mut Vec<TransportOutput>,
    ) {
        let failure = |pgn, reason| {
            TransportOutput::Failed(TransportFailure {
                ts,
                source,
                destination,
                pgn,
                reason,
            })
        };
        let Some(&[control, b1, b2, b3, b4, p0, p1, p2]) = data.first_chunk::<8>() else {
            out.push(failure(
                None,
                FailureReason::Malformed("TP.CM shorter than 8 bytes"),
            ));
            return;
        };
        let pgn = Pgn::from_le_bytes([p0, p1, p2]);
        let size = u16::from_le_bytes([b1, b2]);
        match control {
            CM_BAM | CM_RTS => {
                let bam = control == CM_BAM;
                // 255 is never a sender's address; answering it would go to everyone.
                if source == Address::GLOBAL {
                    out.push(failure(
                        Some(pgn),
                        FailureReason::Malformed("announcement from the global address"),
                    ));
                    return;
                }
                if bam != (destination == Address::GLOBAL) {
                    let why = if bam {
                        "BAM not sent to the global address"
                    } else {
                        "RTS sent to the global address"
                    };
                    out.push(failure(Some(pgn), FailureReason::Malformed(why)));
                    return;
                }
                let announcement = match validate(size, b3, pgn) {
                    Ok(a) => a,
                    Err(reason) => {
                        out.push(failure(Some(pgn), reason));
                        if !bam {
                            let code = match reason {
                                FailureReason::TooLarge { .. } => AbortReason::TooLarge,
                                _ => AbortReason::Other(250),
                            };
                            out.push(TransportOutput::Send(abort_frame(
                                ts,
                                destination,
                                source,
                                pgn,
                                code,
                            )));
                        }
                        return;
                    }
                };
                if let Some(i) = self.position(source, destination) {
                    let old = self.sessions.swap_remove(i);
                    fail(out, ts, &old, FailureReason::Replaced, None);
                }
                if self.sessions.len() >= self.config.max_sessions {
                    out.push(failure(Some(pgn), FailureReason::NoResources));
                    if !bam {
                        out.push(TransportOutput::Send(abort_frame(
                            ts,
                            destination,
                            source,
                            pgn,
                            AbortReason::Busy,
                        )));
                    }
                    return;
                }
                let (mode, deadline) = if bam {
                    (Mode::Bam, ts.saturating_add(self.config.t1))
                } else {
                    let max_per_cts = b4.min(self.config.max_packets_per_cts).max(1);
                    let granted = max_per_cts.min(announcement.packets);
                    out.push(TransportOutput::Send(cts_frame(
                        ts,
                        destination,
                        source,
                        pgn,
                        granted,
                        1,
                    )));
                    (
                        Mode::Cts {
                            window_end: granted,
                            max_per_cts,
                        },
                        ts.saturating_add(self.config.t2),
                    )
                };
                self.sessions.push(Session {
                    source,
                    destination,
                    pgn: announcement.pgn,
                    size: announcement.size,
                    packets: announcement.packets,
                    next_seq: 1,
                    mode,
                    deadline,
                    // Grown as packets come: an announcement that is never
                    // followed by data must not hold 1785 bytes.
                    data: Vec::with_capacity(announcement.size.min(64)),
                });
            }
            CM_ABORT => {
                // Either side may abort: the sender (our key) or, seen on a
                // monitored bus, the real receiver (the reverse key).
                let found = self.sessions.iter().position(|s| {
                    s.pgn == pgn
                        && ((s.source == source && s.destination == destination)
                            || (s.source == destination && s.destination == source))
                });
                if let Some(i) = found {
                    let s = self.sessions.swap_remove(i);
                    fail(
                        out,
                        ts,
                        &s,
                        FailureReason::AbortedByPeer(AbortReason::from_code(b1)),
                        None,
                    );
                }
            }
            // Answers of another receiver on a monitored bus.
            CM_CTS | CM_EOM_ACK => {}
            _ => out.push(failure(
                Some(pgn),
                FailureReason::Malformed("unknown TP.CM control byte"),
            )),
        }
    }

    fn on_data(
        &mut self,
        ts: Timestamp,
        source: Address,
        destination: Address,
        data: &[u8],
        out: &mut Vec<TransportOutput>,
    ) {
        let Some(i) = self.position(source, destination) else {
            out.push(TransportOutput::Failed(TransportFailure {
                ts,
                source,
                destination,
                pgn: None,
                reason: FailureReason::UnexpectedData,
            }));
            return;
        };
        let Some((&seq, payload)) = data.split_first().filter(|(_, p)| !p.is_empty()) else {
            let s = self.sessions.swap_remove(i);
            let reason = FailureReason::Malformed("TP.DT without data");
            fail(out, ts, &s, reason, Some(AbortReason::Other(250)));
            return;
        };
        let Some(s) = self.sessions.get_mut(i) else {
            return;
        };
        if seq != s.next_seq {
            let (reason, code) = if seq < s.next_seq {
                (
                    FailureReason::DuplicateSequence { seq },
                    AbortReason::DuplicateSequence,
                )
            } else {
                let expected = s.next_seq;
                (
                    FailureReason::BadSequence { expected, got: seq },
                    AbortReason::BadSequence,
                )
            };
            let s = self.sessions.swap_remove(i);
            fail(out, ts, &s, reason, Some(code));
            return;
        }
        let take = (s.size - s.data.len()).min(7).min(payload.len());
        s.data
            .extend_from_slice(payload.get(..take).unwrap_or_default());
        if seq == s.packets {
            let s = self.sessions.swap_remove(i);
            if s.data.len() != s.size {
                fail(
                    out,
                    ts,
                    &s,
                    FailureReason::Malformed("last TP.DT shorter than the announced size"),
                    Some(AbortReason::Other(250)),
                );
                return;
            }
            if matches!(s.mode, Mode::Cts { .. }) {
                out.push(TransportOutput::Send(eom_ack_frame(ts, &s)));
            }
            out.push(TransportOutput::Message(Reassembled {
                ts,
                pgn: s.pgn,
                source: s.source,
                destination: s.destination,
                data: s.data,
            }));
            return;
        }
        s.next_seq = seq + 1;
        s.deadline = ts.saturating_add(self.config.t1);
        if let Mode::Cts {
            window_end,
            max_per_cts,
        } = s.mode
            && seq == window_end
        {
            let granted = max_per_cts.min(s.packets - seq);
            s.mode = Mode::Cts {
                window_end: seq + granted,
                max_per_cts,
            };
            s.deadline = ts.saturating_add(self.config.t2);
            out.push(TransportOutput::Send(cts_frame(
                ts,
                s.destination,
                s.source,
                s.pgn,
                granted,
                seq + 1,
            )));
        }
    }
}

fn validate(size: u16, packets: u8, pgn: Pgn) -> Result<Announcement, FailureReason> {
    let size = usize::from(size);
    if size > MAX_MESSAGE_SIZE {
        return Err(FailureReason::TooLarge { size: size as u16 });
    }
    // Taking less would hand on messages no sender puts in a transfer, such
    // as a DM1 without its lamp bytes; Linux refuses them the same way.
    if size < MIN_MESSAGE_SIZE {
        return Err(FailureReason::Malformed("announced size below 9 bytes"));
    }
    if usize::from(packets) != size.div_ceil(7) {
        return Err(FailureReason::Malformed(
            "packet count does not match the announced size",
        ));
    }
    Ok(Announcement { size, packets, pgn })
}

fn fail(
    out: &mut Vec<TransportOutput>,
    ts: Timestamp,
    s: &Session,
    reason: FailureReason,
    abort: Option<AbortReason>,
) {
    out.push(TransportOutput::Failed(TransportFailure {
        ts,
        source: s.source,
        destination: s.destination,
        pgn: Some(s.pgn),
        reason,
    }));
    if let (Mode::Cts { .. }, Some(code)) = (s.mode, abort) {
        out.push(TransportOutput::Send(abort_frame(
            ts,
            s.destination,
            s.source,
            s.pgn,
            code,
        )));
    }
}

/// A TP.CM frame from `from` (the receiver) to `to` (the sender).
fn cm_frame(ts: Timestamp, from: Address, to: Address, data: [u8; 8]) -> CanFrame {
    CanFrame::j1939(
        ts,
        CanId::from_parts(REPLY_PRIORITY, Pgn::TP_CM, to, from),
        &data,
    )
}

fn cts_frame(ts: Timestamp, from: Address, to: Address, pgn: Pgn, count: u8, next: u8) -> CanFrame {
    let [p0, p1, p2] = pgn.to_le_bytes();
    cm_frame(ts, from, to, [CM_CTS, count, next, 0xFF, 0xFF, p0, p1, p2])
}

fn eom_ack_frame(ts: Timestamp, s: &Session) -> CanFrame {
    let [p0, p1, p2] = s.pgn.to_le_bytes();
    let [s0, s1] = (s.size as u16).to_le_bytes();
    cm_frame(
        ts,
        s.destination,
        s.source,
        [CM_EOM_ACK, s0, s1, s.packets, 0xFF, p0, p1, p2],
    )
}

fn abort_frame(
    ts: Timestamp,
    from: Address,
    to: Address,
    pgn: Pgn,
    reason: AbortReason,
) -> CanFrame {
    let [p0, p1, p2] = pgn.to_le_bytes();
    cm_frame(
        ts,
        from,
        to,
        [CM_ABORT, reason.code(), 0xFF, 0xFF, 0xFF, p0, p1, p2],
    )
}

/// The frames a sender puts on the bus to broadcast `data` (> 8 bytes) as a
/// BAM, `spacing` apart from `start`. Used by the simulator and the tests.
pub fn bam_frames(
    start: Timestamp,
    spacing: Duration,
    source: Address,
    pgn: Pgn,
    data: &[u8],
) -> Vec<CanFrame> {
    let packets = data.len().div_ceil(7).min(255);
    let [s0, s1] = (data.len().min(MAX_MESSAGE_SIZE) as u16).to_le_bytes();
    let [p0, p1, p2] = pgn.to_le_bytes();
    let prio = Priority::new(7).unwrap_or(REPLY_PRIORITY);
    let cm = CanId::from_parts(prio, Pgn::TP_CM, Address::GLOBAL, source);
    let dt = CanId::from_parts(prio, Pgn::TP_DT, Address::GLOBAL, source);
    let mut frames = Vec::with_capacity(packets + 1);
    frames.push(CanFrame::j1939(
        start,
        cm,
        &[CM_BAM, s0, s1, packets as u8, 0xFF, p0, p1, p2],
    ));
    let mut ts = start;
    for (seq, chunk) in data.chunks(7).take(255).enumerate() {
        ts = ts.saturating_add(spacing);
        let mut packet = [0xFF; 8];
        packet[0] = seq as u8 + 1;
        if let Some(dst) = packet.get_mut(1..1 + chunk.len()) {
            dst.copy_from_slice(chunk);
        }
        frames.push(CanFrame::j1939(ts, dt, &packet));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candump;

    fn frame(line: &str) -> CanFrame {
        candump::parse_line(line).unwrap().unwrap().frame
    }

    fn feed(r: &mut Reassembler, lines: &[&str]) -> Vec<TransportOutput> {
        let mut out = Vec::new();
        for l in lines {
            r.handle(&frame(l), &mut out);
        }
        out
    }

    fn sent(out: &[TransportOutput]) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                TransportOutput::Send(f) => {
                    Some(f.to_candump("can0").split(' ').nth(2).unwrap().to_owned())
                }
                _ => None,
            })
            .collect()
    }

    fn messages(out: &[TransportOutput]) -> Vec<&Reassembled> {
        out.iter()
            .filter_map(|o| match o {
                TransportOutput::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn failures(out: &[TransportOutput]) -> Vec<FailureReason> {
        out.iter()
            .filter_map(|o| match o {
                TransportOutput::Failed(f) => Some(f.reason),
                _ => None,
            })
            .collect()
    }

    // Vector 4, pretty_j1939 tests (nmfta-repo/pretty_j1939): a BAM DM1 of 18 bytes.
    const BAM_DM1: [&str; 4] = [
        "(1.000) can0 18ECFF00#20120003FFCAFE00",
        "(1.050) can0 18EBFF00#0100FF5B0003015C",
        "(1.100) can0 18EBFF00#020004025D000503",
        "(1.150) can0 18EBFF00#035E000604FFFFFF",
    ];

    #[test]
    fn bam_reassembles() {
        let mut r = Reassembler::default();
        let out = feed(&mut r, &BAM_DM1);
        let m = messages(&out);
        assert_eq!(m.len(), 1, "{out:?}");
        assert_eq!(m[0].pgn, Pgn::DM1);
        assert_eq!(m[0].source, Address(0));
        assert_eq!(m[0].destination, Address::GLOBAL);
        assert_eq!(m[0].ts, Timestamp::from_micros(1_150_000));
        assert_eq!(
            m[0].data,
            [
                0x00, 0xFF, 0x5B, 0x00, 0x03, 0x01, 0x5C, 0x00, 0x04, 0x02, 0x5D, 0x00, 0x05, 0x03,
                0x5E, 0x00, 0x06, 0x04
            ]
        );
        assert!(sent(&out).is_empty(), "a BAM is never answered");
        assert_eq!(r.open_sessions(), 0);
    }

    // Vector 11, juergenH87/python-can-j1939 tests: RTS/CTS of PGN 65200,
    // 20 bytes, one packet per CTS. The CTS and EOM ACK we send must be the
    // frames that peer sends.
    #[test]
    fn rts_cts_answers_like_a_receiver() {
        let mut r = Reassembler::default();
        let out = feed(&mut r, &["(1.000) can0 00EC0201#1014000301B0FE00"]);
        assert_eq!(sent(&out), ["1CEC0102#110101FFFFB0FE00"]);
        let out = feed(&mut r, &["(1.010) can0 00EB0201#0101020304050607"]);
        assert_eq!(sent(&out), ["1CEC0102#110102FFFFB0FE00"]);
        let out = feed(&mut r, &["(1.020) can0 00EB0201#0208090A0B0C0D0E"]);
        assert_eq!(sent(&out), ["1CEC0102#110103FFFFB0FE00"]);
        let out = feed(&mut r, &["(1.030) can0 00EB0201#03010203040506FF"]);
        assert_eq!(sent(&out), ["1CEC0102#13140003FFB0FE00"]);
        let m = messages(&out);
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].pgn.raw(), m[0].source, m[0].destination),
            (65200, Address(1), Address(2))
        );
        assert_eq!(
            m[0].data,
            [
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 1, 2, 3, 4, 5, 6
            ]
        );
    }

    #[test]
    fn rts_without_limit_is_granted_at_once() {
        let mut r = Reassembler::default();
        let out = feed(&mut r, &["(1.0) can0 18EC0201#100A0002FFCAFE00"]);
        assert_eq!(sent(&out), ["1CEC0102#110201FFFFCAFE00"]);
        let out = feed(
            &mut r,
            &[
                "(1.1) can0 18EB0201#0140FF5B000301AA",
                "(1.2) can0 18EB0201#02BBCCFFFFFFFFFF",
            ],
        );
        assert_eq!(sent(&out), ["1CEC0102#130A0002FFCAFE00"]);
        assert_eq!(messages(&out)[0].data.len(), 10);
    }

    #[test]
    fn t1_timeout_between_bam_packets() {
        let mut r = Reassembler::default();
        // 750 ms after the previous packet is still in time...
        let out = feed(
            &mut r,
            &[BAM_DM1[0], "(1.750) can0 18EBFF00#0100FF5B0003015C"],
        );
        assert!(failures(&out).is_empty());
        // ...751 ms is not.
        let out = feed(&mut r, &["(2.501) can0 18EBFF00#020004025D000503"]);
        assert_eq!(
            failures(&out),
            [FailureReason::Timeout, FailureReason::UnexpectedData]
        );
        assert_eq!(r.open_sessions(), 0);
    }

    #[test]
    fn t2_timeout_after_cts_sends_abort() {
        let mut r = Reassembler::default();
        feed(&mut r, &["(1.000) can0 00EC0201#1014000301B0FE00"]);
        assert_eq!(r.next_deadline(), Some(Timestamp::from_micros(2_250_000)));
        let mut out = Vec::new();
        r.poll_timeouts(Timestamp::from_micros(2_250_000), &mut out);
        assert!(out.is_empty(), "exactly T2 is still in time");
        r.poll_timeouts(Timestamp::from_micros(2_250_001), &mut out);
        assert_eq!(failures(&out), [FailureReason::Timeout]);
        assert_eq!(sent(&out), ["1CEC0102#FF03FFFFFFB0FE00"]);
    }

    #[test]
    fn sequence_errors() {
        let mut r = Reassembler::default();
        let out = feed(&mut r, &[BAM_DM1[0], BAM_DM1[2]]);
        assert_eq!(
            failures(&out),
            [FailureReason::BadSequence {
                expected: 1,
                got: 2
            }]
        );
        let out = feed(&mut r, &[BAM_DM1[0], BAM_DM1[1], BAM_DM1[1]]);
        assert_eq!(
            failures(&out),
            [FailureReason::DuplicateSequence { seq: 1 }]
        );
        // RTS/CTS: the sender is told why.
        let out = feed(
            &mut r,
            &[
                "(5.0) can0 00EC0201#1014000303B0FE00",
                "(5.1) can0 00EB0201#0201020304050607",
            ],
        );
        assert_eq!(
            failures(&out),
            [FailureReason::BadSequence {
                expected: 1,
                got: 2
            }]
        );
        assert_eq!(sent(&out).last().unwrap(), "1CEC0102#FF07FFFFFFB0FE00");
    }

    #[test]
    fn new_bam_replaces_the_old_one() {
        let mut r = Reassembler::default();
        // The same BAM again from 1.2 s, while the first is half done.
        let again: Vec<String> = BAM_DM1
            .iter()
            .map(|l| l.replacen("(1.", "(1.2", 1))
            .collect();
        let mut lines = vec![BAM_DM1[0], BAM_DM1[1]];
        lines.extend(again.iter().map(String::as_str));
        let out = feed(&mut r, &lines);
        assert_eq!(failures(&out), [FailureReason::Replaced]);
        assert_eq!(messages(&out).len(), 1);
    }

    #[test]
    fn peer_abort_ends_the_session() {
        let mut r = Reassembler::default();
        // The real receiver (SA 2) aborts the transfer from SA 1 on a monitored bus.
        let out = feed(
            &mut r,
            &[
                "(1.0) can0 00EC0201#1014000301B0FE00",
                "(1.1) can0 1CEC0102#FF01FFFFFFB0FE00",
            ],
        );
        assert_eq!(
            failures(&out),
            [FailureReason::AbortedByPeer(AbortReason::Busy)]
        );
        assert_eq!(r.open_sessions(), 0);
    }

    #[test]
    fn refuses_oversized_and_inconsistent_announcements() {
        let mut r = Reassembler::default();
        // 1786 bytes in 255 packets.
        let out = feed(&mut r, &["(1.0) can0 00EC0201#10FA06FFFFB0FE00"]);
        assert_eq!(failures(&out), [FailureReason::TooLarge { size: 1786 }]);
        assert_eq!(sent(&out), ["1CEC0102#FF09FFFFFFB0FE00"]);
        let out = feed(&mut r, &["(1.0) can0 18ECFF00#20120004FFCAFE00"]);
        assert!(matches!(failures(&out)[..], [FailureReason::Malformed(_)]));
        let out = feed(&mut r, &["(1.0) can0 18EC0500#20120003FFCAFE00"]);
        assert!(matches!(failures(&out)[..], [FailureReason::Malformed(_)]));
        let out = feed(&mut r, &["(1.0) can0 18ECFF00#2012"]);
        assert!(matches!(failures(&out)[..], [FailureReason::Malformed(_)]));
        assert_eq!(r.open_sessions(), 0);
    }

    #[test]
    fn announcements_from_the_global_address_are_refused() {
        let mut r = Reassembler::default();
        let out = feed(&mut r, &["(1.0) can0 00EC02FF#1014000301B0FE00"]);
        assert!(matches!(failures(&out)[..], [FailureReason::Malformed(_)]));
        assert!(
            sent(&out).is_empty(),
            "nothing is sent to the global address"
        );
        assert_eq!(r.open_sessions(), 0);
    }

    #[test]
    fn the_largest_message_reassembles() {
        let data: Vec<u8> = (0..MAX_MESSAGE_SIZE).map(|i| (i % 251) as u8).collect();
        let frames = bam_frames(
            Timestamp::from_micros(0),
            Duration::from_millis(50),
            Address(3),
            Pgn::DM1,
            &data,
        );
        assert_eq!(frames.len(), 256);
        let mut r = Reassembler::default();
        let mut out = Vec::new();
        for f in &frames {
            r.handle(f, &mut out);
        }
        assert_eq!(messages(&out)[0].data, data);
    }

    #[test]
    fn sessions_are_bounded() {
        let mut r = Reassembler::new(TransportConfig {
            max_sessions: 4,
            ..TransportConfig::default()
        });
        let mut out = Vec::new();
        for sa in 0..10u8 {
            r.handle(
                &frame(&format!("(1.0) can0 18ECFF{sa:02X}#20120003FFCAFE00")),
                &mut out,
            );
        }
        assert_eq!(r.open_sessions(), 4);
        assert_eq!(failures(&out), [FailureReason::NoResources; 6]);
    }

    // Found by the `transport` fuzz target (ingest/fuzz/regressions/transport):
    // a 1-byte DM2 sent with RTS/CTS was reassembled and then failed to
    // decode. Fewer than 9 bytes is refused like any malformed announcement.
    #[test]
    fn refuses_announcements_below_9_bytes() {
        let mut r = Reassembler::default();
        let out = feed(
            &mut r,
            &[
                "(1.0) can0 18EC4500#10010001FFCBFE00",
                "(1.1) can0 18EB4500#0106FF0100FF8EDB",
            ],
        );
        assert!(messages(&out).is_empty(), "{out:?}");
        assert!(
            matches!(
                failures(&out)[..],
                [FailureReason::Malformed(_), FailureReason::UnexpectedData]
            ),
            "{out:?}"
        );
        assert_eq!(sent(&out), ["1CEC0045#FFFAFFFFFFCBFE00"]);
        // A BAM of 8 bytes in 2 packets, one byte short of the minimum.
        let out = feed(
            &mut r,
            &[
                "(2.0) can0 18ECFF00#20080002FFCAFE00",
                "(2.1) can0 18EBFF00#0100FF5B000301FF",
                "(2.2) can0 18EBFF00#02FFFFFFFFFFFFFF",
            ],
        );
        assert!(messages(&out).is_empty(), "{out:?}");
        assert!(matches!(
            failures(&out)[..],
            [
                FailureReason::Malformed(_),
                FailureReason::UnexpectedData,
                FailureReason::UnexpectedData
            ]
        ));
        assert_eq!(r.open_sessions(), 0);
    }
}
