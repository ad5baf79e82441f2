//! Condition signals (contract C12): the engine's temperatures, pressures,
//! battery voltage, speed and load, read from the J1939-71 PGNs that carry
//! them.
//!
//! | PGN          | bytes (1-based) | SPN | signal             | resolution, offset   |
//! |--------------|-----------------|-----|--------------------|----------------------|
//! | 65262 ET1    | 1               | 110 | `coolant_temp_c`   | 1 °C/bit, −40 °C     |
//! | 65262 ET1    | 3–4             | 175 | `oil_temp_c`       | 0.03125 °C/bit, −273 |
//! | 65263 EFL/P1 | 4               | 100 | `oil_pressure_kpa` | 4 kPa/bit, 0         |
//! | 65271 VEP1   | 5–6             | 168 | `battery_v`        | 0.05 V/bit, 0        |
//! | 61444 EEC1   | 3               | 513 | `engine_load_pct`  | 1 %/bit, −125 %      |
//! | 61444 EEC1   | 4–5             | 190 | `engine_speed_rpm` | 0.125 rpm/bit, 0     |
//!
//! Scaling from the SPN database shipped with pretty_j1939; byte positions
//! from J1939-71. SPN 168 sits in bytes 5–6 of VEP1 (after net battery
//! current, alternator current and charging system potential, SPNs 114,
//! 115 and 167); the pretty_j1939 sample database's "start bit 16" is the
//! charging system potential's place and is not followed (docs/decisions.md).
//! Multi-byte fields are little-endian.
//!
//! Special values (J1939-71 §5.1.4): a 1-byte field is valid up to 0xFA,
//! 0xFE is an error and 0xFF not available; a 2-byte field is valid up to
//! 0xFAFF, 0xFExx error, 0xFFxx not available. The parameter-specific
//! (0xFB) and reserved (0xFC–0xFD) ranges carry no value here and are read
//! as errors. Neither error nor "not available" is a value: no signal.

use super::can_id::Pgn;
use super::meters::Param;

/// The signals of contract C12 that fleetcare knows by name. Modbus
/// registers and telemetry may add others, named freely.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    CoolantTempC,
    OilTempC,
    OilPressureKpa,
    BatteryV,
    EngineSpeedRpm,
    EngineLoadPct,
    AmbientTempC,
    HydraulicOilTempC,
    HydraulicPressureBar,
}

impl Signal {
    pub const ALL: [Self; 9] = [
        Self::CoolantTempC,
        Self::OilTempC,
        Self::OilPressureKpa,
        Self::BatteryV,
        Self::EngineSpeedRpm,
        Self::EngineLoadPct,
        Self::AmbientTempC,
        Self::HydraulicOilTempC,
        Self::HydraulicPressureBar,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CoolantTempC => "coolant_temp_c",
            Self::OilTempC => "oil_temp_c",
            Self::OilPressureKpa => "oil_pressure_kpa",
            Self::BatteryV => "battery_v",
            Self::EngineSpeedRpm => "engine_speed_rpm",
            Self::EngineLoadPct => "engine_load_pct",
            Self::AmbientTempC => "ambient_temp_c",
            Self::HydraulicOilTempC => "hydraulic_oil_temp_c",
            Self::HydraulicPressureBar => "hydraulic_pressure_bar",
        }
    }

    /// The known signal of that name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The SPN that carries it on J1939, if one does.
    pub const fn spn(self) -> Option<u32> {
        match self {
            Self::CoolantTempC => Some(110),
            Self::OilTempC => Some(175),
            Self::OilPressureKpa => Some(100),
            Self::BatteryV => Some(168),
            Self::EngineSpeedRpm => Some(190),
            Self::EngineLoadPct => Some(513),
            _ => None,
        }
    }
}

/// The longest signal name telemetry may use.
pub const MAX_NAME_LEN: usize = 64;

/// A signal's name: one of the known [`Signal`]s, or another name (a
/// Modbus register, a gateway's own signal) of lowercase letters, digits
/// and `_`, at most [`MAX_NAME_LEN`] long.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalName {
    Known(Signal),
    Other(std::sync::Arc<str>),
}

impl SignalName {
    /// The name, checked: `None` when it is empty, too long or uses other
    /// characters than `a-z`, `0-9` and `_`.
    pub fn new(name: &str) -> Option<Self> {
        if let Some(s) = Signal::from_name(name) {
            return Some(Self::Known(s));
        }
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        ok.then(|| Self::Other(name.into()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Known(s) => s.as_str(),
            Self::Other(name) => name,
        }
    }
}

impl std::fmt::Display for SignalName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Signal> for SignalName {
    fn from(s: Signal) -> Self {
        Self::Known(s)
    }
}

/// PGN 65262, engine temperature 1 (ET1).
pub const ENGINE_TEMPERATURE_1: u32 = 65262;
/// PGN 65263, engine fluid level/pressure 1 (EFL/P1).
pub const ENGINE_FLUID_LEVEL_PRESSURE_1: u32 = 65263;
/// PGN 65271, vehicle electrical power 1 (VEP1).
pub const VEHICLE_ELECTRICAL_POWER_1: u32 = 65271;
/// PGN 61444, electronic engine controller 1 (EEC1).
pub const ELECTRONIC_ENGINE_CONTROLLER_1: u32 = 61444;

/// Where one signal sits in one PGN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field {
    pub signal: Signal,
    pub spn: u32,
    /// 0-based offset of the first byte.
    pub offset: usize,
    /// 1 or 2 bytes (little-endian).
    pub len: usize,
    /// Units per bit.
    pub resolution: f64,
    pub offset_value: f64,
}

const fn f(signal: Signal, spn: u32, offset: usize, len: usize, res: f64, off: f64) -> Field {
    Field {
        signal,
        spn,
        offset,
        len,
        resolution: res,
        offset_value: off,
    }
}

const ET1: [Field; 2] = [
    f(Signal::CoolantTempC, 110, 0, 1, 1.0, -40.0),
    f(Signal::OilTempC, 175, 2, 2, 0.03125, -273.0),
];
const EFLP1: [Field; 1] = [f(Signal::OilPressureKpa, 100, 3, 1, 4.0, 0.0)];
const VEP1: [Field; 1] = [f(Signal::BatteryV, 168, 4, 2, 0.05, 0.0)];
const EEC1: [Field; 2] = [
    f(Signal::EngineLoadPct, 513, 2, 1, 1.0, -125.0),
    f(Signal::EngineSpeedRpm, 190, 3, 2, 0.125, 0.0),
];

/// The signal fields of `pgn`; empty for other PGNs.
pub const fn fields(pgn: Pgn) -> &'static [Field] {
    match pgn.raw() {
        ENGINE_TEMPERATURE_1 => &ET1,
        ENGINE_FLUID_LEVEL_PRESSURE_1 => &EFLP1,
        VEHICLE_ELECTRICAL_POWER_1 => &VEP1,
        ELECTRONIC_ENGINE_CONTROLLER_1 => &EEC1,
        _ => &[],
    }
}

/// True when `pgn` carries condition signals.
pub const fn is_signal_pgn(pgn: Pgn) -> bool {
    !fields(pgn).is_empty()
}

/// One field's raw count in `data`; `None` when the payload is too short.
fn raw(field: &Field, data: &[u8]) -> Option<u16> {
    match field.len {
        1 => data.get(field.offset).map(|&b| u16::from(b)),
        _ => data
            .get(field.offset..field.offset + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(u16::from_le_bytes),
    }
}

/// The value of one field's raw count (three states, never folded).
pub fn value(field: &Field, raw: u16) -> Param<f64> {
    let top = if field.len == 1 { raw } else { raw >> 8 };
    match top {
        0x00..=0xFA => Param::Value(f64::from(raw) * field.resolution + field.offset_value),
        0xFF => Param::NotAvailable,
        _ => Param::Error,
    }
}

/// A signal as read from a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalSample {
    pub signal: Signal,
    pub value: Param<f64>,
}

/// Reads every signal of `pgn` that `data` is long enough to hold; a
/// short payload simply carries fewer (J1939 payloads of these PGNs are 8
/// bytes, but a field that is not there is not an error worth a dead
/// letter).
pub fn decode(pgn: Pgn, data: &[u8]) -> impl Iterator<Item = SignalSample> + '_ {
    fields(pgn).iter().filter_map(move |field| {
        raw(field, data).map(|r| SignalSample {
            signal: field.signal,
            value: value(field, r),
        })
    })
}

/// The raw count of `value` in `field`'s scaling, rounded to the nearest
/// bit; `None` outside the valid range. The inverse of [`value`], for the
/// simulator and tests.
pub fn encode_raw(field: &Field, value: f64) -> Option<u16> {
    let counts = ((value - field.offset_value) / field.resolution).round();
    let max = if field.len == 1 { 0xFA } else { 0xFAFF };
    (counts.is_finite() && counts >= 0.0 && counts <= f64::from(max)).then_some(counts as u16)
}

/// An 8-byte payload of `pgn` with the given signals set and "not
/// available" everywhere else; values out of range stay "not available".
pub fn encode_frame(pgn: Pgn, values: &[(Signal, f64)]) -> [u8; 8] {
    let mut out = [0xFF; 8];
    for field in fields(pgn) {
        let Some(&(_, v)) = values.iter().find(|(s, _)| *s == field.signal) else {
            continue;
        };
        let Some(raw) = encode_raw(field, v) else {
            continue;
        };
        let bytes = raw.to_le_bytes();
        if let Some(slot) = out.get_mut(field.offset..field.offset + field.len) {
            slot.copy_from_slice(bytes.get(..field.len).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pgn(n: u32) -> Pgn {
        Pgn::new(n).unwrap()
    }

    fn read(p: u32, data: &[u8]) -> Vec<(Signal, Param<f64>)> {
        decode(pgn(p), data).map(|s| (s.signal, s.value)).collect()
    }

    #[test]
    fn engine_temperature_1() {
        // Coolant 0x82 = 130 − 40 = 90 °C; oil 0x2D20 = 11552 × 0.03125 − 273 = 88 °C.
        let v = read(65262, &[0x82, 0xFF, 0x20, 0x2D, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(
            v,
            vec![
                (Signal::CoolantTempC, Param::Value(90.0)),
                (Signal::OilTempC, Param::Value(88.0)),
            ]
        );
        let v = read(65262, &[0xFF, 0xFF, 0x00, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(
            v,
            vec![
                (Signal::CoolantTempC, Param::NotAvailable),
                (Signal::OilTempC, Param::Error),
            ]
        );
        assert_eq!(
            read(65262, &[0xFE, 0xFF, 0xFF, 0xFF])[0],
            (Signal::CoolantTempC, Param::Error)
        );
    }

    #[test]
    fn oil_pressure_is_byte_4() {
        // 0x64 = 100 × 4 kPa.
        let v = read(65263, &[0xFF, 0xFF, 0xFF, 0x64, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(v, vec![(Signal::OilPressureKpa, Param::Value(400.0))]);
    }

    #[test]
    fn battery_potential_is_bytes_5_and_6() {
        // 0x0230 = 560 × 0.05 V = 28 V; bytes 3–4 (SPN 167) are ignored.
        let v = read(65271, &[0xFF, 0xFF, 0x11, 0x01, 0x30, 0x02, 0xFF, 0xFF]);
        assert_eq!(v, vec![(Signal::BatteryV, Param::Value(28.0))]);
        assert_eq!(
            read(65271, &[0xFF; 8]),
            vec![(Signal::BatteryV, Param::NotAvailable)]
        );
    }

    #[test]
    fn engine_controller_1() {
        // Torque 0xAF = 175 − 125 = 50 %; speed 0x3E80 = 16000 × 0.125 = 2000 rpm.
        let v = read(61444, &[0xFF, 0xFF, 0xAF, 0x80, 0x3E, 0xFF, 0xFF, 0xFF]);
        assert_eq!(
            v,
            vec![
                (Signal::EngineLoadPct, Param::Value(50.0)),
                (Signal::EngineSpeedRpm, Param::Value(2000.0)),
            ]
        );
        // The top of the valid 2-byte range, 0xFAFF × 0.125 = 8031.875 rpm.
        let v = read(61444, &[0, 0, 0xFA, 0xFF, 0xFA, 0, 0, 0]);
        assert_eq!(v[1], (Signal::EngineSpeedRpm, Param::Value(8031.875)));
        assert_eq!(v[0], (Signal::EngineLoadPct, Param::Value(125.0)));
        // 0xFB.. parameter-specific and 0xFC–0xFD reserved: no value.
        let v = read(61444, &[0, 0, 0xFB, 0x00, 0xFC, 0, 0, 0]);
        assert_eq!(v[0].1, Param::Error);
        assert_eq!(v[1].1, Param::Error);
    }

    #[test]
    fn short_payloads_carry_fewer_signals_and_other_pgns_none() {
        assert_eq!(
            read(61444, &[0, 0, 0xAF, 0x80]),
            vec![(Signal::EngineLoadPct, Param::Value(50.0))]
        );
        assert!(read(61444, &[]).is_empty());
        assert!(read(65253, &[0; 8]).is_empty());
    }

    #[test]
    fn encode_inverts_decode() {
        let frame = encode_frame(
            pgn(61444),
            &[
                (Signal::EngineSpeedRpm, 1450.5),
                (Signal::EngineLoadPct, -3.0),
            ],
        );
        assert_eq!(
            read(61444, &frame),
            vec![
                (Signal::EngineLoadPct, Param::Value(-3.0)),
                (Signal::EngineSpeedRpm, Param::Value(1450.5)),
            ]
        );
        let out_of_range = encode_frame(pgn(65262), &[(Signal::CoolantTempC, 500.0)]);
        assert_eq!(out_of_range, [0xFF; 8]);
    }

    #[test]
    fn names_round_trip() {
        for s in Signal::ALL {
            assert_eq!(Signal::from_name(s.as_str()), Some(s));
            assert_eq!(SignalName::new(s.as_str()), Some(SignalName::Known(s)));
        }
        assert_eq!(Signal::from_name("flux"), None);
        assert_eq!(SignalName::new("flux_2").unwrap().as_str(), "flux_2");
        for bad in ["", "Flux", "a b", "é", &"x".repeat(65)] {
            assert_eq!(SignalName::new(bad), None, "{bad:?}");
        }
    }
}
