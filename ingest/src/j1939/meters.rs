//! Hour and distance meters (J1939-71), the clocks maintenance runs on.
//!
//! | PGN   | bytes | SPN | meter        | scaling      |
//! |-------|-------|-----|--------------|--------------|
//! | 65253 | 1–4   | 247 | engine hours | 0.05 h/bit   |
//! | 65255 | 5–8   | 248 | PTO hours    | 0.05 h/bit   |
//! | 65248 | 5–8   | 245 | odometer     | 0.125 km/bit |
//! | 65217 | 1–4   | 917 | odometer     | 5 m/bit      |
//!
//! 4-byte parameters are valid up to 0xFAFFFFFF; 0xFExxxxxx is an error
//! indicator and 0xFFxxxxxx "not available" (J1939-71 §5.1.4). The
//! parameter-specific (0xFB) and reserved (0xFC–0xFD) ranges carry no value
//! for these meters and are read as errors.

use super::can_id::Pgn;
use super::dtc::Spn;

/// A value of a J1939 parameter: the three states never fold into zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<T> {
    Value(T),
    NotAvailable,
    Error,
}

impl<T> Param<T> {
    pub fn value(self) -> Option<T> {
        match self {
            Self::Value(v) => Some(v),
            Self::NotAvailable | Self::Error => None,
        }
    }
}

/// A cumulative meter that maintenance intervals are measured on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Meter {
    /// Engine total hours of operation, h.
    EngineHours,
    /// Total power take-off hours (brushes, fan, hydraulic body), h.
    PtoHours,
    /// Total vehicle distance, km.
    OdometerKm,
}

impl Meter {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EngineHours => "engine_hours",
            Self::PtoHours => "pto_hours",
            Self::OdometerKm => "odometer_km",
        }
    }
}

/// Where one meter sits in one PGN.
#[derive(Debug, Clone, Copy)]
struct Layout {
    meter: Meter,
    spn: u32,
    /// Offset of the 4-byte little-endian field.
    offset: usize,
    /// Raw counts per unit of the meter (a divisor keeps results exact:
    /// 1534 counts / 20 = 76.7 h, where 1534 × 0.05 would not round-trip).
    counts_per_unit: f64,
}

const fn l(meter: Meter, spn: u32, offset: usize, counts_per_unit: f64) -> Option<Layout> {
    Some(Layout {
        meter,
        spn,
        offset,
        counts_per_unit,
    })
}

const fn layout(pgn: Pgn) -> Option<Layout> {
    match pgn.raw() {
        65253 => l(Meter::EngineHours, 247, 0, 20.0),
        65255 => l(Meter::PtoHours, 248, 4, 20.0),
        65248 => l(Meter::OdometerKm, 245, 4, 8.0),
        65217 => l(Meter::OdometerKm, 917, 0, 200.0),
        _ => None,
    }
}

/// True when `pgn` carries one of the meters.
pub const fn is_meter_pgn(pgn: Pgn) -> bool {
    layout(pgn).is_some()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeterError {
    #[error("PGN {pgn} carries no meter")]
    NotAMeter { pgn: Pgn },
    #[error("PGN {pgn} of {len} bytes is too short for SPN {spn} (needs {needed})")]
    TooShort {
        pgn: Pgn,
        spn: u32,
        len: usize,
        needed: usize,
    },
}

/// A meter reading as sent; `value` is in the meter's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterSample {
    pub meter: Meter,
    pub spn: Spn,
    pub value: Param<f64>,
    /// The raw 32-bit field.
    pub raw: u32,
}

/// Reads the meter of a meter PGN.
pub fn decode(pgn: Pgn, data: &[u8]) -> Result<MeterSample, MeterError> {
    let l = layout(pgn).ok_or(MeterError::NotAMeter { pgn })?;
    let field = data
        .get(l.offset..l.offset + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .ok_or(MeterError::TooShort {
            pgn,
            spn: l.spn,
            len: data.len(),
            needed: l.offset + 4,
        })?;
    let raw = u32::from_le_bytes(field);
    let value = match raw >> 24 {
        0x00..=0xFA => Param::Value(f64::from(raw) / l.counts_per_unit),
        0xFF => Param::NotAvailable,
        _ => Param::Error,
    };
    Ok(MeterSample {
        meter: l.meter,
        spn: Spn::from_bits(l.spn),
        value,
        raw,
    })
}

/// The raw count for `value` in `pgn`'s scaling, rounded to the nearest bit;
/// `None` when out of the valid range. The inverse of [`decode`], used by the
/// simulator and the tests.
pub fn encode_raw(pgn: Pgn, value: f64) -> Option<u32> {
    let l = layout(pgn)?;
    let counts = (value * l.counts_per_unit).round();
    (counts >= 0.0 && counts <= f64::from(0xFAFF_FFFFu32)).then_some(counts as u32)
}

/// The 8-byte payload of `pgn` carrying `raw` in its meter's field and
/// "not available" everywhere else.
pub fn encode_frame(pgn: Pgn, raw: u32) -> Option<[u8; 8]> {
    let l = layout(pgn)?;
    let mut out = [0xFF; 8];
    out.get_mut(l.offset..l.offset + 4)?
        .copy_from_slice(&raw.to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(pgn: u32, data: [u8; 8]) -> Param<f64> {
        decode(Pgn::new(pgn).unwrap(), &data).unwrap().value
    }

    // Vector 10, Equipment-and-Tool-Institute/j1939-84: `18FEE500#FE05000055667788`.
    #[test]
    fn engine_hours() {
        let s = decode(
            Pgn::ENGINE_HOURS,
            &[0xFE, 0x05, 0x00, 0x00, 0x55, 0x66, 0x77, 0x88],
        )
        .unwrap();
        assert_eq!(s.meter, Meter::EngineHours);
        assert_eq!(s.spn.raw(), 247);
        assert_eq!(s.value, Param::Value(76.7));
        // Bytes 1–4 FF FF FF FA: the top of the valid range.
        assert_eq!(
            value(65253, [0xFF, 0xFF, 0xFF, 0xFA, 0, 0, 0, 0]),
            Param::Value(210_554_060.75)
        );
        assert_eq!(value(65253, [0xFF; 8]), Param::NotAvailable);
        assert_eq!(
            value(65253, [0x00, 0x00, 0x00, 0xFE, 0, 0, 0, 0]),
            Param::Error
        );
        assert_eq!(
            value(65253, [0x00, 0x00, 0x00, 0xFB, 0, 0, 0, 0]),
            Param::Error
        );
    }

    // Vector 10, ETI j1939-84: `18FEE000#1122334480140600` → 49,808 km.
    #[test]
    fn total_vehicle_distance() {
        let s = decode(
            Pgn::VEHICLE_DISTANCE,
            &[0x11, 0x22, 0x33, 0x44, 0x80, 0x14, 0x06, 0x00],
        )
        .unwrap();
        assert_eq!(
            (s.meter, s.spn.raw(), s.value),
            (Meter::OdometerKm, 245, Param::Value(49_808.0))
        );
        assert_eq!(
            value(65248, [0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
            Param::NotAvailable
        );
        assert_eq!(
            value(65248, [0, 0, 0, 0, 0x00, 0x00, 0x00, 0xFE]),
            Param::Error
        );
    }

    // Vector 10, ETI j1939-84: `18FEC100#8014060011223344` → 1,992,320 m.
    #[test]
    fn high_resolution_distance() {
        let s = decode(
            Pgn::VEHICLE_DISTANCE_HIGH_RES,
            &[0x80, 0x14, 0x06, 0x00, 0x11, 0x22, 0x33, 0x44],
        )
        .unwrap();
        assert_eq!((s.spn.raw(), s.value), (917, Param::Value(1_992.32)));
    }

    #[test]
    fn pto_hours_are_bytes_5_to_8() {
        let s = decode(
            Pgn::VEHICLE_HOURS,
            &[0xFF, 0xFF, 0xFF, 0xFF, 0x10, 0x27, 0x00, 0x00],
        )
        .unwrap();
        assert_eq!(
            (s.meter, s.spn.raw(), s.value),
            (Meter::PtoHours, 248, Param::Value(500.0))
        );
    }

    #[test]
    fn short_frames_and_other_pgns_are_errors() {
        assert!(matches!(
            decode(Pgn::VEHICLE_HOURS, &[0xFF; 6]),
            Err(MeterError::TooShort {
                needed: 8,
                len: 6,
                ..
            })
        ));
        assert!(matches!(
            decode(Pgn::DM1, &[0; 8]),
            Err(MeterError::NotAMeter { .. })
        ));
    }
}
