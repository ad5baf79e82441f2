//! DM1 (active) and DM2 (previously active) diagnostic messages
//! (J1939-73 §5.7.1 and §5.7.2).
//!
//! ```text
//! byte 0: lamp status   [ MIL 7..6 | red stop 5..4 | amber 3..2 | protect 1..0 ]
//! byte 1: flash status  [ same positions ]
//! bytes 2..: DTC blocks of 4 bytes each (see `dtc`)
//! ```
//! A message with at most one DTC fits one frame and is padded with 0xFF;
//! more DTCs go over the transport protocol. "No active DTC" is sent as one
//! all-zero block.

use super::dtc::{Dtc, SpnConversion};
use super::transport::MAX_MESSAGE_SIZE;

/// The most DTCs one DM1 or DM2 can carry: the transport protocol's largest
/// message (1785 bytes, J1939-21 §5.10) less the 2 lamp bytes, in blocks of
/// 4 bytes: (1785 − 2) / 4 = 445.
pub const MAX_DTCS: usize = (MAX_MESSAGE_SIZE - 2) / 4;

/// Which diagnostic message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DmKind {
    /// DM1: the DTCs active now.
    Dm1,
    /// DM2: DTCs that were active before.
    Dm2,
}

/// A lamp's 2-bit status.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LampStatus {
    Off,
    On,
    Error,
    #[default]
    NotAvailable,
}

impl LampStatus {
    pub const fn from_bits(b: u8) -> Self {
        match b & 3 {
            0 => Self::Off,
            1 => Self::On,
            2 => Self::Error,
            _ => Self::NotAvailable,
        }
    }

    pub const fn bits(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::On => 1,
            Self::Error => 2,
            Self::NotAvailable => 3,
        }
    }

    /// The name used in JSON output and telemetry payloads.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::On => "on",
            Self::Error => "error",
            Self::NotAvailable => "not_available",
        }
    }
}

/// A lamp's 2-bit flash status.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FlashStatus {
    /// 00: slow flash (1 Hz).
    Slow,
    /// 01: fast flash (2 Hz or faster).
    Fast,
    /// 10: reserved.
    Reserved,
    /// 11: not flashing, or not available.
    #[default]
    Off,
}

impl FlashStatus {
    pub const fn from_bits(b: u8) -> Self {
        match b & 3 {
            0 => Self::Slow,
            1 => Self::Fast,
            2 => Self::Reserved,
            _ => Self::Off,
        }
    }

    pub const fn bits(self) -> u8 {
        match self {
            Self::Slow => 0,
            Self::Fast => 1,
            Self::Reserved => 2,
            Self::Off => 3,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Slow => "slow",
            Self::Fast => "fast",
            Self::Reserved => "reserved",
            Self::Off => "off",
        }
    }
}

/// Four values, one per lamp, in the order they sit in the byte (high bits first).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct LampSet<T> {
    pub mil: T,
    pub red_stop: T,
    pub amber_warning: T,
    pub protect: T,
}

/// The four lamps' on/off status.
pub type Lamps = LampSet<LampStatus>;
/// The four lamps' flash status.
pub type LampFlash = LampSet<FlashStatus>;

impl<T: Copy> LampSet<T> {
    fn from_byte(b: u8, f: impl Fn(u8) -> T) -> Self {
        Self {
            mil: f(b >> 6),
            red_stop: f(b >> 4),
            amber_warning: f(b >> 2),
            protect: f(b),
        }
    }

    fn to_byte(self, f: impl Fn(T) -> u8) -> u8 {
        f(self.mil) << 6 | f(self.red_stop) << 4 | f(self.amber_warning) << 2 | f(self.protect)
    }
}

impl Lamps {
    pub const ALL_OFF: Self = Self {
        mil: LampStatus::Off,
        red_stop: LampStatus::Off,
        amber_warning: LampStatus::Off,
        protect: LampStatus::Off,
    };

    pub fn from_byte_bits(b: u8) -> Self {
        Self::from_byte(b, LampStatus::from_bits)
    }

    pub fn byte(self) -> u8 {
        self.to_byte(LampStatus::bits)
    }
}

impl LampFlash {
    pub const NONE: Self = Self {
        mil: FlashStatus::Off,
        red_stop: FlashStatus::Off,
        amber_warning: FlashStatus::Off,
        protect: FlashStatus::Off,
    };

    pub fn from_byte_bits(b: u8) -> Self {
        Self::from_byte(b, FlashStatus::from_bits)
    }

    pub fn byte(self) -> u8 {
        self.to_byte(FlashStatus::bits)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmError {
    /// Fewer than the two lamp bytes.
    #[error("{kind:?} of {len} bytes is shorter than its 2 lamp bytes")]
    TooShort { kind: DmKind, len: usize },
}

/// A decoded DM1 or DM2.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DiagnosticMessage {
    pub kind: DmKind,
    pub lamps: Lamps,
    pub flash: LampFlash,
    /// The trouble codes in the order sent, without filler blocks.
    pub dtcs: Vec<Dtc>,
}

impl DiagnosticMessage {
    /// Decodes a DM1/DM2 payload of any length ≥ 2. Filler blocks (all-zero,
    /// all-0xFF) are skipped, and so are the 0xFF padding bytes after the last
    /// whole block.
    pub fn decode(kind: DmKind, data: &[u8], legacy: SpnConversion) -> Result<Self, DmError> {
        let (&[lamp, flash], blocks) = data.split_first_chunk::<2>().ok_or(DmError::TooShort {
            kind,
            len: data.len(),
        })?;
        let dtcs = blocks
            .chunks_exact(4)
            .filter_map(|c| <[u8; 4]>::try_from(c).ok())
            .filter_map(|b| Dtc::decode(b, legacy))
            .collect();
        Ok(Self {
            kind,
            lamps: Lamps::from_byte_bits(lamp),
            flash: LampFlash::from_byte_bits(flash),
            dtcs,
        })
    }

    /// The payload as an ECU sends it: 2 + 4n bytes; with no DTC one
    /// all-zero block, and up to one DTC padded with 0xFF to 8 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 4 * self.dtcs.len().max(1) + 2);
        out.push(self.lamps.byte());
        out.push(self.flash.byte());
        if self.dtcs.is_empty() {
            out.extend_from_slice(&[0; 4]);
        }
        for d in &self.dtcs {
            out.extend_from_slice(&d.encode());
        }
        if out.len() < 8 {
            out.resize(8, 0xFF);
        }
        out
    }

    /// True when this message needs the transport protocol (more than 8 bytes).
    pub fn needs_transport(&self) -> bool {
        self.dtcs.len() > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(kind: DmKind, bytes: &[u8]) -> DiagnosticMessage {
        DiagnosticMessage::decode(kind, bytes, SpnConversion::V4).unwrap()
    }

    fn triples(m: &DiagnosticMessage) -> Vec<(u32, u8, u8)> {
        m.dtcs
            .iter()
            .map(|d| (d.spn.raw(), d.fmi.raw(), d.oc.raw()))
            .collect()
    }

    // Vector 1, pretty_j1939 tests: `18FECA00#40FF5B000301FFFF`.
    #[test]
    fn single_frame_dm1() {
        let m = dm(
            DmKind::Dm1,
            &[0x40, 0xFF, 0x5B, 0x00, 0x03, 0x01, 0xFF, 0xFF],
        );
        assert_eq!(m.lamps.mil, LampStatus::On);
        assert_eq!(m.lamps.red_stop, LampStatus::Off);
        assert_eq!(m.lamps.amber_warning, LampStatus::Off);
        assert_eq!(m.lamps.protect, LampStatus::Off);
        assert_eq!(m.flash, LampFlash::NONE);
        assert_eq!(triples(&m), vec![(91, 3, 1)]);
    }

    // Vector 2, pretty_j1939 tests: `18FECB00#00FF5B000301FFFF`.
    #[test]
    fn single_frame_dm2() {
        let m = dm(
            DmKind::Dm2,
            &[0x00, 0xFF, 0x5B, 0x00, 0x03, 0x01, 0xFF, 0xFF],
        );
        assert_eq!(m.kind, DmKind::Dm2);
        assert_eq!(m.lamps, Lamps::ALL_OFF);
        assert_eq!(triples(&m), vec![(91, 3, 1)]);
    }

    // Vector 3, pretty_j1939 tests: `18FECA00#00FF00000000FFFF`. can-j1939
    // 2.0.12 reports a phantom SPN 0 here; there must be none.
    #[test]
    fn no_dtc_frame() {
        let m = dm(
            DmKind::Dm1,
            &[0x00, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF],
        );
        assert_eq!(m.lamps, Lamps::ALL_OFF);
        assert!(m.dtcs.is_empty());
        assert_eq!(
            m.encode(),
            vec![0x00, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF]
        );
    }

    // Vector 5, Equipment-and-Tool-Institute/j1939-84 DM1 tests (14 bytes).
    #[test]
    fn eti_three_dtcs_with_flash() {
        let m = dm(
            DmKind::Dm1,
            &[
                0x11, 0xCD, 0x61, 0x02, 0x13, 0x00, 0x21, 0x06, 0x1F, 0x00, 0xEE, 0x10, 0x04, 0x00,
            ],
        );
        assert_eq!(m.lamps.mil, LampStatus::Off);
        assert_eq!(m.lamps.red_stop, LampStatus::On);
        assert_eq!(m.lamps.amber_warning, LampStatus::Off);
        assert_eq!(m.lamps.protect, LampStatus::On);
        assert_eq!(m.flash.red_stop, FlashStatus::Slow);
        assert_eq!(m.flash.protect, FlashStatus::Fast);
        assert_eq!(m.flash.mil, FlashStatus::Off);
        assert_eq!(triples(&m), vec![(609, 19, 0), (1569, 31, 0), (4334, 4, 0)]);
    }

    // Vector 7, Laixer/J1939 tests (facts only; GPL code not used).
    #[test]
    fn laixer_vectors() {
        let m = dm(DmKind::Dm1, &[0x57, 0xFF, 0x9F, 0x00, 0x03, 0x01]);
        assert_eq!(m.lamps.protect, LampStatus::NotAvailable);
        assert_eq!(m.lamps.amber_warning, LampStatus::On);
        assert_eq!(m.lamps.red_stop, LampStatus::On);
        assert_eq!(m.lamps.mil, LampStatus::On);
        assert_eq!(triples(&m), vec![(159, 3, 1)]);
        let m = dm(DmKind::Dm1, &[0x57, 0xFF, 0xFB, 0x06, 0x0B, 0x32]);
        assert_eq!(triples(&m), vec![(1787, 11, 50)]);
        let m = dm(DmKind::Dm1, &[0x40, 0xFF, 0x7F, 0x02, 0x02, 0x00]);
        assert_eq!(m.lamps.mil, LampStatus::On);
        assert_eq!(triples(&m), vec![(639, 2, 0)]);
    }

    #[test]
    fn too_short_is_an_error() {
        assert_eq!(
            DiagnosticMessage::decode(DmKind::Dm1, &[0x40], SpnConversion::V4),
            Err(DmError::TooShort {
                kind: DmKind::Dm1,
                len: 1
            })
        );
    }

    #[test]
    fn lamp_byte_round_trips() {
        for b in 0..=255u8 {
            assert_eq!(Lamps::from_byte_bits(b).byte(), b);
            assert_eq!(LampFlash::from_byte_bits(b).byte(), b);
        }
    }
}
