//! Transport protocol reassembly through `J1939Decoder::handle`.
//!
//! The input is a sequence of bus events built with `arbitrary`. Plain
//! random frames would almost never form a session (the right PGN, source,
//! destination, a size that matches the packet count, then the packets in
//! order), so the generator plays a sender: announcements are mostly
//! consistent, and data packets, one at a time or in bursts, usually belong
//! to a transfer announced before and carry the sequence numbers that
//! transfer expects next.
//! Timing, sizes, sequence numbers and addresses still go wrong often
//! enough to reach every failure path.

use std::fmt;

use arbitrary::{Arbitrary, Unstructured};
use fleetcare_ingest::j1939::transport::{MAX_MESSAGE_SIZE, MIN_MESSAGE_SIZE};
use fleetcare_ingest::j1939::{
    Address, CanId, DecoderConfig, FailureReason, InvalidMessage, J1939Decoder, J1939Event, Pgn,
    Priority, Reassembler, TransportConfig, TransportOutput,
};
use fleetcare_ingest::{CanFrame, FrameData, FrameId, Timestamp};

const CM_RTS: u8 = 0x10;
const CM_CTS: u8 = 0x11;
const CM_EOM_ACK: u8 = 0x13;
const CM_BAM: u8 = 0x20;
const CM_ABORT: u8 = 0xFF;

/// 2023-11-14, so that logs of failures read like real ones.
const START_US: i64 = 1_700_000_000_000_000;

#[derive(Arbitrary, Debug)]
struct Input {
    /// `None`: the default of 32. Small limits make "refused" reachable with
    /// the few addresses used here.
    max_sessions: Option<u8>,
    max_packets_per_cts: Option<u8>,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
struct Step {
    clock: Clock,
    /// Peers send TP frames at priorities 0–7; it must not matter.
    priority: u8,
    action: Action,
}

#[derive(Arbitrary, Debug)]
struct Clock {
    /// Milliseconds after the previous frame, when there is no jump: within
    /// T1, as a sender spaces its packets.
    ms: u8,
    jump: Option<Jump>,
}

#[derive(Arbitrary, Debug)]
enum Jump {
    /// Up to 65 s later: past T1 and T2.
    Later(u16),
    /// Milliseconds back: merged logs, clock steps.
    Back(u16),
    /// Anywhere, up to the ends of the range.
    At(i64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Node {
    Engine,
    Transmission,
    Body,
    Tool,
    Global,
    Other(u8),
}

impl Node {
    fn address(self) -> Address {
        Address(match self {
            Self::Engine => 0x00,
            Self::Transmission => 0x03,
            Self::Body => 0x21,
            Self::Tool => 0xF9,
            Self::Global => 0xFF,
            Self::Other(a) => a,
        })
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PgnChoice {
    Dm1,
    Dm2,
    Any(u32),
}

impl PgnChoice {
    fn pgn(self) -> Pgn {
        match self {
            Self::Dm1 => Pgn::DM1,
            Self::Dm2 => Pgn::DM2,
            Self::Any(raw) => Pgn::from_le_bytes([raw as u8, (raw >> 8) as u8, (raw >> 16) as u8]),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Size {
    /// 0–63: around the edge of what needs the transport protocol, and
    /// transfers short enough to complete often.
    Small(u8),
    /// 9–1785, what the protocol carries.
    Valid(u16),
    /// Anything, mostly too large.
    Raw(u16),
}

impl Size {
    fn bytes(self) -> u16 {
        match self {
            Self::Small(n) => u16::from(n % 64),
            Self::Valid(n) => {
                MIN_MESSAGE_SIZE as u16 + n % (MAX_MESSAGE_SIZE - MIN_MESSAGE_SIZE + 1) as u16
            }
            Self::Raw(n) => n,
        }
    }
}

/// Which session a data packet or an abort is about.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Target {
    /// One of the transfers the generator announced (index modulo their count).
    Announced(u8),
    Pair {
        from: Node,
        to: Node,
    },
}

#[derive(Arbitrary, Debug)]
enum Action {
    Bam {
        from: Node,
        size: Size,
        /// `None`: the count that matches the size.
        packets: Option<u8>,
        pgn: PgnChoice,
    },
    Rts {
        from: Node,
        to: Node,
        size: Size,
        packets: Option<u8>,
        max_per_cts: u8,
        pgn: PgnChoice,
    },
    Data {
        target: Target,
        /// `None`: the sequence number the target transfer expects next.
        seq: Option<u8>,
        payload: [u8; 7],
        /// `None`: a full 8-byte frame; else the frame is cut to `n % 9` bytes.
        cut: Option<u8>,
    },
    /// The next packets of an announced transfer, in order and in time,
    /// up to its last: what a well-behaved sender does most of the time.
    Burst {
        /// Index modulo the announced transfers.
        target: u8,
        /// 1–64 packets.
        count: u8,
        /// Milliseconds between packets, within T1.
        spacing: u8,
        payload: [u8; 7],
    },
    Abort {
        target: Target,
        /// Sent by the receiver instead of the sender.
        by_receiver: bool,
        reason: u8,
    },
    /// Any other TP.CM, e.g. the CTS and EOM ACK of another receiver, short
    /// frames and unknown control bytes.
    Cm {
        from: Node,
        to: Node,
        control: u8,
        rest: [u8; 7],
        cut: Option<u8>,
    },
    /// A frame that is not transport: single-frame DM1/DM2, meters, others.
    Single {
        from: Node,
        pgn: PgnChoice,
        data: Vec<u8>,
    },
    Standard {
        id: u16,
        data: Vec<u8>,
    },
    /// A live shell's timer firing between frames.
    Poll,
}

/// Where a check failed. Formatted only when one does: formatting every
/// frame would cost more than the decoding it describes.
struct Context<'a> {
    index: usize,
    step: &'a Step,
    /// `None` for a poll.
    frame: Option<&'a CanFrame>,
}

impl fmt::Display for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}: {:?} → {:?}", self.index, self.step, self.frame)
    }
}

/// What the generator, as the sender, announced.
#[derive(Debug, Clone, Copy)]
struct Transfer {
    source: Address,
    destination: Address,
    pgn: Pgn,
    packets: u8,
    next_seq: u8,
}

pub fn check(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let defaults = TransportConfig::default();
    let transport = TransportConfig {
        max_sessions: input
            .max_sessions
            .map_or(defaults.max_sessions, |n| usize::from(n % 33)),
        max_packets_per_cts: input
            .max_packets_per_cts
            .unwrap_or(defaults.max_packets_per_cts),
        ..defaults
    };
    let mut decoder = J1939Decoder::new(&DecoderConfig {
        transport,
        ..DecoderConfig::default()
    });
    // The same frames into a bare reassembler show the messages that the
    // decoder turns into events.
    let mut reassembler = Reassembler::new(transport);
    let mut transfers: Vec<Transfer> = Vec::new();
    let mut now = START_US;
    let mut events = Vec::new();
    let mut outputs = Vec::new();

    let mut frames = Vec::new();
    for (i, step) in input.steps.iter().enumerate() {
        now = step.clock.advance(now);
        let priority = Priority::new(step.priority % 8).unwrap_or_else(|| unreachable!());
        if let Action::Poll = step.action {
            events.clear();
            outputs.clear();
            let ts = Timestamp::from_micros(now);
            decoder.poll_timeouts(ts, &mut events);
            reassembler.poll_timeouts(ts, &mut outputs);
            let ctx = Context {
                index: i,
                step,
                frame: None,
            };
            check_step(&ctx, None, &events, &outputs);
            continue;
        }
        frames.clear();
        frames_for(
            &step.action,
            &mut now,
            priority,
            &mut transfers,
            &mut frames,
        );
        for frame in &frames {
            events.clear();
            outputs.clear();
            decoder.handle(frame, &mut events);
            reassembler.handle(frame, &mut outputs);
            let ctx = Context {
                index: i,
                step,
                frame: Some(frame),
            };
            assert!(
                decoder.open_sessions() <= transport.max_sessions,
                "{ctx}: {} sessions open, limit {}",
                decoder.open_sessions(),
                transport.max_sessions
            );
            assert_eq!(
                decoder.open_sessions(),
                reassembler.open_sessions(),
                "{ctx}"
            );
            assert_eq!(
                decoder.next_deadline().is_some(),
                decoder.open_sessions() > 0,
                "{ctx}"
            );
            check_step(&ctx, Some(frame), &events, &outputs);
        }
    }

    // Every session ends by timeout, unless its deadline saturated at the
    // end of time and there is no later instant to poll at.
    while let Some(deadline) = decoder.next_deadline() {
        let Some(after) = deadline.as_micros().checked_add(1) else {
            break;
        };
        let before = decoder.open_sessions();
        events.clear();
        decoder.poll_timeouts(Timestamp::from_micros(after), &mut events);
        assert!(
            decoder.open_sessions() < before,
            "a session outlived its deadline"
        );
        for e in &events {
            match e {
                J1939Event::TransportFailed(f) => assert_eq!(f.reason, FailureReason::Timeout),
                J1939Event::Send(f) => check_sent(f, &"timeout sweep"),
                other => panic!("timeout sweep produced {other:?}"),
            }
        }
    }
}

impl Clock {
    fn advance(&self, now: i64) -> i64 {
        match self.jump {
            None => now.saturating_add(i64::from(self.ms) * 1_000),
            Some(Jump::Later(ms)) => now.saturating_add(i64::from(ms) * 1_000),
            Some(Jump::Back(ms)) => now.saturating_sub(i64::from(ms) * 1_000),
            Some(Jump::At(us)) => us,
        }
    }
}

/// The frames `action` puts on the bus from `now` on; `now` ends at the
/// last of them.
fn frames_for(
    action: &Action,
    now: &mut i64,
    priority: Priority,
    transfers: &mut Vec<Transfer>,
    frames: &mut Vec<CanFrame>,
) {
    if let Action::Burst {
        target,
        count,
        spacing,
        payload,
    } = *action
    {
        if transfers.is_empty() {
            return;
        }
        let n = transfers.len();
        let t = &mut transfers[usize::from(target) % n];
        let id = CanId::from_parts(priority, Pgn::TP_DT, t.destination, t.source);
        for k in 0..1 + count % 64 {
            if t.next_seq > t.packets || t.next_seq == 0 {
                break;
            }
            if k > 0 {
                *now = now.saturating_add(i64::from(spacing) * 1_000);
            }
            let mut data = [0u8; 8];
            data[0] = t.next_seq;
            data[1..].copy_from_slice(&payload);
            frames.push(CanFrame::j1939(Timestamp::from_micros(*now), id, &data));
            t.next_seq = t.next_seq.wrapping_add(1);
        }
        return;
    }
    frames.push(frame_for(
        action,
        Timestamp::from_micros(*now),
        priority,
        transfers,
    ));
}

fn frame_for(
    action: &Action,
    ts: Timestamp,
    priority: Priority,
    transfers: &mut Vec<Transfer>,
) -> CanFrame {
    let cm = |from: Address, to: Address, data: &[u8]| {
        CanFrame::j1939(ts, CanId::from_parts(priority, Pgn::TP_CM, to, from), data)
    };
    let announce = |control: u8, size: Size, packets: Option<u8>, b4: u8, pgn: Pgn| {
        let size = size.bytes();
        let packets =
            packets.unwrap_or_else(|| u8::try_from(usize::from(size).div_ceil(7)).unwrap_or(255));
        let [s0, s1] = size.to_le_bytes();
        let [p0, p1, p2] = pgn.to_le_bytes();
        [control, s0, s1, packets, b4, p0, p1, p2]
    };
    let mut remember = |source: Address, destination: Address, pgn: Pgn, data: &[u8; 8]| {
        let t = Transfer {
            source,
            destination,
            pgn,
            packets: data[3],
            next_seq: 1,
        };
        match transfers
            .iter_mut()
            .find(|t| t.source == source && t.destination == destination)
        {
            Some(old) => *old = t,
            None => transfers.push(t),
        }
    };
    match *action {
        Action::Bam {
            from,
            size,
            packets,
            pgn,
        } => {
            let pgn = pgn.pgn();
            let data = announce(CM_BAM, size, packets, 0xFF, pgn);
            remember(from.address(), Address::GLOBAL, pgn, &data);
            cm(from.address(), Address::GLOBAL, &data)
        }
        Action::Rts {
            from,
            to,
            size,
            packets,
            max_per_cts,
            pgn,
        } => {
            let pgn = pgn.pgn();
            let data = announce(CM_RTS, size, packets, max_per_cts, pgn);
            remember(from.address(), to.address(), pgn, &data);
            cm(from.address(), to.address(), &data)
        }
        Action::Data {
            target,
            seq,
            payload,
            cut,
        } => {
            let (source, destination, expected) = match target {
                Target::Announced(i) if !transfers.is_empty() => {
                    let n = transfers.len();
                    let t = transfers
                        .get_mut(usize::from(i) % n)
                        .unwrap_or_else(|| unreachable!());
                    let expected = t.next_seq;
                    t.next_seq = t.next_seq.wrapping_add(1);
                    (t.source, t.destination, expected)
                }
                Target::Announced(_) => (Address(0), Address::GLOBAL, 1),
                Target::Pair { from, to } => (from.address(), to.address(), 1),
            };
            let mut data = [0u8; 8];
            data[0] = seq.unwrap_or(expected);
            data[1..].copy_from_slice(&payload);
            let len = cut.map_or(8, |n| usize::from(n % 9));
            let id = CanId::from_parts(priority, Pgn::TP_DT, destination, source);
            CanFrame::j1939(ts, id, &data[..len])
        }
        Action::Abort {
            target,
            by_receiver,
            reason,
        } => {
            let (source, destination, pgn) = match target {
                Target::Announced(i) if !transfers.is_empty() => {
                    let t = transfers[usize::from(i) % transfers.len()];
                    (t.source, t.destination, t.pgn)
                }
                Target::Announced(_) => (Address(0), Address::GLOBAL, Pgn::DM1),
                Target::Pair { from, to } => (from.address(), to.address(), Pgn::DM1),
            };
            let (from, to) = if by_receiver {
                (destination, source)
            } else {
                (source, destination)
            };
            let [p0, p1, p2] = pgn.to_le_bytes();
            cm(from, to, &[CM_ABORT, reason, 0xFF, 0xFF, 0xFF, p0, p1, p2])
        }
        Action::Cm {
            from,
            to,
            control,
            rest,
            cut,
        } => {
            let mut data = [0u8; 8];
            data[0] = control;
            data[1..].copy_from_slice(&rest);
            let len = cut.map_or(8, |n| usize::from(n % 9));
            cm(from.address(), to.address(), &data[..len])
        }
        Action::Single {
            from,
            pgn,
            ref data,
        } => {
            let id = CanId::from_parts(priority, pgn.pgn(), Address::GLOBAL, from.address());
            CanFrame::j1939(ts, id, data)
        }
        Action::Standard { id, ref data } => CanFrame {
            ts,
            id: FrameId::Standard(id & 0x7FF),
            data: FrameData::new(&data[..data.len().min(8)]).unwrap_or_default(),
        },
        Action::Poll | Action::Burst { .. } => unreachable!("handled by the caller"),
    }
}

fn is_transport(frame: &CanFrame) -> bool {
    matches!(frame.id, FrameId::Extended(id) if id.pgn() == Pgn::TP_CM || id.pgn() == Pgn::TP_DT)
}

fn check_step(
    ctx: &dyn fmt::Display,
    frame: Option<&CanFrame>,
    events: &[J1939Event],
    outputs: &[TransportOutput],
) {
    let transport = frame.is_none_or(is_transport);
    let messages: Vec<_> = outputs
        .iter()
        .filter_map(|o| match o {
            TransportOutput::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    for m in &messages {
        assert!(
            (MIN_MESSAGE_SIZE..=MAX_MESSAGE_SIZE).contains(&m.data.len()),
            "{ctx}: reassembled {} bytes, outside 9–1785",
            m.data.len()
        );
        let frame = frame.unwrap_or_else(|| panic!("{ctx}: a poll completed a message"));
        assert_eq!(m.ts, frame.ts, "{ctx}");
        let FrameId::Extended(id) = frame.id else {
            panic!("{ctx}: an 11-bit frame completed a message");
        };
        assert_eq!(id.pgn(), Pgn::TP_DT, "{ctx}: completed by a non-DT frame");
        assert_eq!(
            (m.source, m.destination),
            (id.source(), id.destination()),
            "{ctx}"
        );
    }
    let dm_messages = messages
        .iter()
        .filter(|m| m.pgn == Pgn::DM1 || m.pgn == Pgn::DM2)
        .count();

    let mut diagnostics = 0;
    for e in events {
        match e {
            J1939Event::Diagnostic { .. } => diagnostics += 1,
            J1939Event::Invalid {
                error: InvalidMessage::Diagnostic(error),
                ..
            } => {
                // A single frame may be too short; a reassembled DM never is.
                assert!(!transport, "{ctx}: reassembled DM does not decode: {error}");
                let len = frame.map_or(0, |f| f.data.len());
                assert!(len < 2, "{ctx}: {len}-byte DM refused: {error}");
            }
            J1939Event::Send(f) => {
                assert!(transport, "{ctx}: answered a non-transport frame");
                check_sent(f, ctx);
            }
            J1939Event::TransportFailed(_) => {
                assert!(
                    transport,
                    "{ctx}: transport failure from a non-transport frame"
                );
            }
            J1939Event::Invalid {
                error: InvalidMessage::Meter(_),
                ..
            }
            | J1939Event::Meter { .. }
            | J1939Event::Signal { .. } => {}
        }
    }
    if transport {
        assert_eq!(
            diagnostics, dm_messages,
            "{ctx}: every reassembled DM1/DM2 is one diagnostic event"
        );
        let sent = events
            .iter()
            .filter(|e| matches!(e, J1939Event::Send(_)))
            .count();
        let to_send = outputs
            .iter()
            .filter(|o| matches!(o, TransportOutput::Send(_)))
            .count();
        assert_eq!(sent, to_send, "{ctx}");
    }
}

/// What a receiver puts on the bus: CTS, EOM ACK or Abort, always as TP.CM
/// from a specific address (a BAM is never answered).
fn check_sent(f: &CanFrame, ctx: &dyn fmt::Display) {
    let FrameId::Extended(id) = f.id else {
        panic!("{ctx}: sent an 11-bit frame");
    };
    assert_eq!(id.pgn(), Pgn::TP_CM, "{ctx}: sent {f:?}");
    assert_ne!(id.source(), Address::GLOBAL, "{ctx}: sent {f:?}");
    let &[control, b1, b2, ..] = f.data.as_slice() else {
        panic!("{ctx}: sent {f:?}");
    };
    assert_eq!(f.data.len(), 8, "{ctx}: sent {f:?}");
    match control {
        // Never a hold (0 packets): the reassembler has no reason to pause.
        CM_CTS => assert!(b1 >= 1 && b2 >= 1, "{ctx}: sent {f:?}"),
        CM_EOM_ACK | CM_ABORT => {}
        _ => panic!("{ctx}: sent {f:?}"),
    }
}
