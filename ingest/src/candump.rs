//! `candump -L` log lines (linux-can/can-utils `candump.c`, `lib.c`):
//!
//! ```text
//! (1700000000.123456) can0 18FECA00#40FF5B000301FFFF
//!  └ seconds.micros ┘ └if┘ └ id ──┘ └ data, hex ───┘
//! ```
//!
//! 29-bit ids have 8 hex digits, 11-bit ids 3; data bytes may be separated
//! by '.'. Lines that do not start with '(' (e.g. `DROPCOUNT`) carry no frame
//! and are skipped. CAN FD (`##`) and remote frames (`#R`) are not J1939 data
//! and are rejected with that reason.

use crate::frame::{CanFrame, FrameData, FrameId};
use crate::j1939::CanId;
use crate::timestamp::Timestamp;

/// Why a line is not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CandumpError {
    #[error("the timestamp is not closed by ')'")]
    UnclosedTimestamp,
    #[error("the timestamp is not seconds.fraction")]
    BadTimestamp,
    #[error("the interface name is missing")]
    MissingInterface,
    #[error("the frame is missing after the interface")]
    MissingFrame,
    #[error("the frame has no '#' between id and data")]
    MissingSeparator,
    #[error("the CAN id must be 3 (11-bit) or 8 (29-bit) hex digits")]
    BadIdLength,
    #[error("the CAN id is not hexadecimal")]
    BadIdDigit,
    #[error("the 11-bit CAN id is above 7FF")]
    StandardIdTooLarge,
    #[error("the 29-bit CAN id is above 1FFFFFFF")]
    ExtendedIdTooLarge,
    #[error("CAN FD frames ('##') are not J1939 data")]
    CanFd,
    #[error("remote frames ('#R') carry no data")]
    RemoteFrame,
    #[error("the data is not pairs of hex digits")]
    BadData,
    #[error("the data is longer than 8 bytes")]
    DataTooLong,
    #[error("unexpected text after the frame")]
    TrailingText,
}

/// One frame read from a log line, with the interface it was seen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandumpRecord<'a> {
    pub interface: &'a str,
    pub frame: CanFrame,
}

/// Parses one line (with or without its line ending). `Ok(None)` for lines
/// that carry no frame: empty lines and lines not starting with '('.
pub fn parse_line(line: &str) -> Result<Option<CandumpRecord<'_>>, CandumpError> {
    let line = line.trim_end_matches(['\n', '\r']);
    let Some(rest) = line.strip_prefix('(') else {
        return Ok(None);
    };
    let (ts_text, rest) = rest
        .split_once(')')
        .ok_or(CandumpError::UnclosedTimestamp)?;
    let ts = parse_timestamp(ts_text.as_bytes())?;
    let rest = rest.trim_start_matches(' ');
    let (interface, rest) = rest.split_once(' ').ok_or(if rest.is_empty() {
        CandumpError::MissingInterface
    } else {
        CandumpError::MissingFrame
    })?;
    if interface.is_empty() {
        return Err(CandumpError::MissingInterface);
    }
    let rest = rest.trim_start_matches(' ');
    let (frame_text, trailer) = rest.split_once(' ').unwrap_or((rest, ""));
    if frame_text.is_empty() {
        return Err(CandumpError::MissingFrame);
    }
    // `candump -x` appends the direction (R/T) to logged lines.
    if !matches!(trailer.trim(), "" | "R" | "T") {
        return Err(CandumpError::TrailingText);
    }
    let (id, data) = parse_frame(frame_text.as_bytes())?;
    Ok(Some(CandumpRecord {
        interface,
        frame: CanFrame { ts, id, data },
    }))
}

fn parse_timestamp(t: &[u8]) -> Result<Timestamp, CandumpError> {
    let dot = t
        .iter()
        .position(|&b| b == b'.')
        .ok_or(CandumpError::BadTimestamp)?;
    let (secs, frac) = t.split_at(dot);
    let frac = frac.get(1..).unwrap_or_default();
    // 12 digits of seconds reach year 33658; more could overflow.
    if secs.is_empty() || secs.len() > 12 || frac.is_empty() || frac.len() > 9 {
        return Err(CandumpError::BadTimestamp);
    }
    let secs = decimal(secs)?;
    let mut micros = 0i64;
    for i in 0..6 {
        let digit = match frac.get(i) {
            Some(&d) => i64::from(digit(d)?),
            None => 0,
        };
        micros = micros * 10 + digit;
    }
    // Digits beyond microseconds are validated and dropped.
    for &d in frac.get(6..).unwrap_or_default() {
        digit(d)?;
    }
    Ok(Timestamp::from_micros(secs * 1_000_000 + micros))
}

fn digit(d: u8) -> Result<u8, CandumpError> {
    if d.is_ascii_digit() {
        Ok(d - b'0')
    } else {
        Err(CandumpError::BadTimestamp)
    }
}

fn decimal(s: &[u8]) -> Result<i64, CandumpError> {
    s.iter()
        .try_fold(0i64, |acc, &d| Ok(acc * 10 + i64::from(digit(d)?)))
}

/// Hex digit values, 0xFF for anything else: one load instead of three
/// range checks per character on the hot path.
// Built at compile time: an out-of-range index would fail the build, not a run.
#[allow(clippy::indexing_slicing)]
const HEX: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn hex_value(c: u8) -> Option<u8> {
    match HEX.get(usize::from(c)) {
        Some(&v) if v != 0xFF => Some(v),
        _ => None,
    }
}

fn parse_frame(f: &[u8]) -> Result<(FrameId, FrameData), CandumpError> {
    let hash = f
        .iter()
        .position(|&b| b == b'#')
        .ok_or(CandumpError::MissingSeparator)?;
    let (id_text, data_text) = f.split_at(hash);
    let data_text = data_text.get(1..).unwrap_or_default();
    let id = id_text
        .iter()
        .try_fold(0u32, |acc, &c| {
            hex_value(c).map(|v| acc << 4 | u32::from(v))
        })
        .ok_or(CandumpError::BadIdDigit)?;
    let id = match id_text.len() {
        3 => FrameId::Standard(
            u16::try_from(id)
                .ok()
                .filter(|&v| v <= 0x7FF)
                .ok_or(CandumpError::StandardIdTooLarge)?,
        ),
        8 => FrameId::Extended(CanId::new(id).map_err(|_| CandumpError::ExtendedIdTooLarge)?),
        _ => return Err(CandumpError::BadIdLength),
    };
    match data_text.first() {
        Some(b'#') => return Err(CandumpError::CanFd),
        Some(b'R' | b'r') => return Err(CandumpError::RemoteFrame),
        _ => {}
    }
    Ok((id, parse_data(data_text)?))
}

fn parse_data(d: &[u8]) -> Result<FrameData, CandumpError> {
    // A trailing `_X` is the raw DLC (9–F) of an 8-byte frame (`candump -8`).
    let d = match d {
        [head @ .., b'_', dlc] if hex_value(*dlc).is_some() => head,
        _ => d,
    };
    let mut bytes = [0u8; 8];
    // The common case: up to 8 bytes as plain hex pairs, without separators.
    if d.len() <= 16 && d.len() % 2 == 0 && !d.contains(&b'.') {
        for (slot, pair) in bytes.iter_mut().zip(d.chunks_exact(2)) {
            let (Some(&hi), Some(&lo)) = (pair.first(), pair.get(1)) else {
                return Err(CandumpError::BadData);
            };
            let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo)) else {
                return Err(CandumpError::BadData);
            };
            *slot = hi << 4 | lo;
        }
        return FrameData::new(bytes.get(..d.len() / 2).unwrap_or_default())
            .ok_or(CandumpError::DataTooLong);
    }
    let mut len = 0usize;
    let mut i = 0usize;
    while let Some(&c) = d.get(i) {
        if c == b'.' && len > 0 {
            i += 1;
            continue;
        }
        let hi = hex_value(c).ok_or(CandumpError::BadData)?;
        let lo = d
            .get(i + 1)
            .and_then(|&c| hex_value(c))
            .ok_or(CandumpError::BadData)?;
        let slot = bytes.get_mut(len).ok_or(CandumpError::DataTooLong)?;
        *slot = hi << 4 | lo;
        len += 1;
        i += 2;
    }
    FrameData::new(bytes.get(..len).unwrap_or_default()).ok_or(CandumpError::DataTooLong)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::j1939::Pgn;

    fn frame(line: &str) -> CanFrame {
        parse_line(line).unwrap().unwrap().frame
    }

    #[test]
    fn parses_a_j1939_line() {
        let r = parse_line("(1543509533.000838) can0 18FECA00#40FF5B000301FFFF\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.interface, "can0");
        assert_eq!(r.frame.ts, Timestamp::from_micros(1_543_509_533_000_838));
        let FrameId::Extended(id) = r.frame.id else {
            panic!("not extended")
        };
        assert_eq!(id.pgn(), Pgn::DM1);
        assert_eq!(
            r.frame.data.as_slice(),
            &[0x40, 0xFF, 0x5B, 0x00, 0x03, 0x01, 0xFF, 0xFF]
        );
    }

    #[test]
    fn standard_ids_dots_and_short_data() {
        let f = frame("(0.5) vcan1 123#11.22.33");
        assert_eq!(f.id, FrameId::Standard(0x123));
        assert_eq!(f.data.as_slice(), &[0x11, 0x22, 0x33]);
        assert_eq!(f.ts, Timestamp::from_micros(500_000));
        assert!(frame("(1.000001) can0 18FEE500#").data.is_empty());
        // Nanosecond digits are accepted and truncated.
        assert_eq!(
            frame("(1.123456789) can0 7FF#00").ts,
            Timestamp::from_micros(1_123_456)
        );
    }

    #[test]
    fn lines_without_a_frame_are_skipped() {
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(
            parse_line("DROPCOUNT: dropped 3 CAN frames on 'can0' socket (total drops 3)"),
            Ok(None)
        );
    }

    #[test]
    fn direction_and_raw_dlc_suffixes() {
        assert_eq!(
            frame("(1.0) can0 18FEE500#0102030405060708 R").data.len(),
            8
        );
        assert_eq!(
            frame("(1.0) can0 18FEE500#0102030405060708_C").data.len(),
            8
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        let cases = [
            ("(1.0 can0 123#00", CandumpError::UnclosedTimestamp),
            ("(1) can0 123#00", CandumpError::BadTimestamp),
            ("(1.x) can0 123#00", CandumpError::BadTimestamp),
            ("(1.0)", CandumpError::MissingInterface),
            ("(1.0) can0", CandumpError::MissingFrame),
            ("(1.0) can0 12300", CandumpError::MissingSeparator),
            ("(1.0) can0 1234#00", CandumpError::BadIdLength),
            ("(1.0) can0 1G3#00", CandumpError::BadIdDigit),
            ("(1.0) can0 800#00", CandumpError::StandardIdTooLarge),
            ("(1.0) can0 20000000#00", CandumpError::ExtendedIdTooLarge),
            ("(1.0) can0 123##1112233", CandumpError::CanFd),
            ("(1.0) can0 123#R", CandumpError::RemoteFrame),
            ("(1.0) can0 123#R4", CandumpError::RemoteFrame),
            ("(1.0) can0 123#123", CandumpError::BadData),
            ("(1.0) can0 123#.12", CandumpError::BadData),
            (
                "(1.0) can0 123#112233445566778899",
                CandumpError::DataTooLong,
            ),
            ("(1.0) can0 123#11 extra", CandumpError::TrailingText),
        ];
        for (line, want) in cases {
            assert_eq!(parse_line(line), Err(want), "{line}");
        }
    }

    #[test]
    fn round_trips_through_to_candump() {
        let line = "(1700000000.123456) can0 18FECA00#40FF5B000301FFFF";
        assert_eq!(frame(line).to_candump("can0"), line);
    }
}
