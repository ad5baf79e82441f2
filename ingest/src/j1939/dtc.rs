//! Diagnostic trouble codes: the 4-byte DTC block of DM1/DM2 (J1939-73 §5.7.1.11).
//!
//! ```text
//!   byte 0          byte 1          byte 2              byte 3
//! +---------------+---------------+-------+-----------+--+--------------+
//! | SPN bits 7..0 | SPN bits 15..8|SPN18..16| FMI 4..0 |CM| OC 6..0      |
//! +---------------+---------------+-------+-----------+--+--------------+
//!                                  (bits 7..5)(bits 4..0) (bit 7)(bits 6..0)
//! ```
//!
//! That is SPN conversion method version 4 (CM = 0). CM = 1 marks one of the
//! legacy versions 1–3, which the bytes cannot tell apart; peers decode it as
//! version 4 and keep the bit, and so do we unless a source is configured
//! with [`SpnConversion::V1`] or [`SpnConversion::V2`].

use std::fmt;

/// Suspect parameter number, 19 bits (0–524287).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u32", into = "u32")]
pub struct Spn(u32);

impl Spn {
    pub const MAX: u32 = (1 << 19) - 1;

    /// `None` above 524287.
    pub const fn new(raw: u32) -> Option<Self> {
        if raw <= Self::MAX {
            Some(Self(raw))
        } else {
            None
        }
    }

    /// The low 19 bits of `raw` as an SPN.
    pub const fn from_bits(raw: u32) -> Self {
        Self(raw & Self::MAX)
    }

    pub const fn raw(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Spn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Failure mode identifier, 5 bits (0–31).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct Fmi(u8);

impl Fmi {
    pub const MAX: u8 = 31;

    /// `None` above 31.
    pub const fn new(raw: u8) -> Option<Self> {
        if raw <= Self::MAX {
            Some(Self(raw))
        } else {
            None
        }
    }

    pub const fn raw(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Fmi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl TryFrom<u32> for Spn {
    type Error = String;
    fn try_from(v: u32) -> Result<Self, String> {
        Self::new(v).ok_or_else(|| format!("SPN {v} is above 524287"))
    }
}

impl From<Spn> for u32 {
    fn from(s: Spn) -> u32 {
        s.0
    }
}

impl TryFrom<u8> for Fmi {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        Self::new(v).ok_or_else(|| format!("FMI {v} is above 31"))
    }
}

impl From<Fmi> for u8 {
    fn from(f: Fmi) -> u8 {
        f.0
    }
}

/// Occurrence count, 7 bits; 127 means "not available".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OccurrenceCount(u8);

impl OccurrenceCount {
    pub const MAX: u8 = 127;
    pub const NOT_AVAILABLE: Self = Self(127);

    /// `None` above 127.
    pub const fn new(raw: u8) -> Option<Self> {
        if raw <= Self::MAX {
            Some(Self(raw))
        } else {
            None
        }
    }

    pub const fn raw(self) -> u8 {
        self.0
    }

    pub const fn is_available(self) -> bool {
        self.0 != 127
    }
}

/// How a DTC block with CM = 1 lays out its SPN (J1939-73 Appendix F).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpnConversion {
    /// Version 4 (and 3, which has the same layout): what peers assume.
    #[default]
    V4,
    /// Version 1: byte 0 = SPN bits 18..11, byte 1 = bits 10..3, byte 2
    /// bits 7..5 = SPN bits 2..0.
    V1,
    /// Version 2: as version 1 with bytes 0 and 1 swapped.
    V2,
}

/// One diagnostic trouble code with the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dtc {
    pub spn: Spn,
    pub fmi: Fmi,
    pub oc: OccurrenceCount,
    /// The conversion-method bit: set by ECUs using a legacy SPN layout.
    pub cm: bool,
    /// The 4 bytes as received, for audits and for re-decoding once a
    /// source's legacy layout is known.
    pub raw: [u8; 4],
}

impl Dtc {
    /// Decodes one 4-byte block; `None` for the all-zero and all-0xFF filler
    /// blocks, which are not faults. `legacy` is applied only when CM = 1.
    pub const fn decode(raw: [u8; 4], legacy: SpnConversion) -> Option<Self> {
        let word = u32::from_le_bytes(raw);
        if word == 0 || word == u32::MAX {
            return None;
        }
        let [b0, b1, b2, b3] = raw;
        let cm = b3 & 0x80 != 0;
        let high3 = (b2 >> 5) as u32;
        let spn = match (cm, legacy) {
            (false, _) | (true, SpnConversion::V4) => b0 as u32 | (b1 as u32) << 8 | high3 << 16,
            (true, SpnConversion::V1) => (b0 as u32) << 11 | (b1 as u32) << 3 | high3,
            (true, SpnConversion::V2) => (b1 as u32) << 11 | (b0 as u32) << 3 | high3,
        };
        Some(Self {
            spn: Spn(spn),
            fmi: Fmi(b2 & 0x1F),
            oc: OccurrenceCount(b3 & 0x7F),
            cm,
            raw,
        })
    }

    /// A version-4 DTC (CM = 0) built from its fields.
    pub const fn new(spn: Spn, fmi: Fmi, oc: OccurrenceCount) -> Self {
        let s = spn.0;
        let raw = [
            s as u8,
            (s >> 8) as u8,
            ((s >> 16) as u8) << 5 | fmi.0,
            oc.0,
        ];
        Self {
            spn,
            fmi,
            oc,
            cm: false,
            raw,
        }
    }

    /// The block as it goes on the wire, as it was received.
    pub const fn encode(&self) -> [u8; 4] {
        self.raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dtc(b: [u8; 4]) -> Dtc {
        Dtc::decode(b, SpnConversion::V4).unwrap()
    }

    // Vector 6, Equipment-and-Tool-Institute/j1939-84 DM1 tests.
    #[test]
    fn eti_single_dtcs() {
        let d = dtc([0x61, 0x02, 0x13, 0x81]);
        assert_eq!(
            (d.spn.raw(), d.fmi.raw(), d.oc.raw(), d.cm),
            (609, 19, 1, true)
        );
        let d = dtc([0x21, 0x06, 0x1F, 0x23]);
        assert_eq!(
            (d.spn.raw(), d.fmi.raw(), d.oc.raw(), d.cm),
            (1569, 31, 35, false)
        );
        let d = dtc([0xFF, 0xFF, 0xE0, 0x00]);
        assert_eq!((d.spn.raw(), d.fmi.raw()), (524_287, 0));
        let d = dtc([0x00, 0x00, 0x00, 0x7F]);
        assert_eq!((d.spn.raw(), d.oc), (0, OccurrenceCount::NOT_AVAILABLE));
        assert!(!d.oc.is_available());
        let d = dtc([0x00, 0x00, 0x00, 0x80]);
        assert!(d.cm);
        assert_eq!(d.oc.raw(), 0);
    }

    #[test]
    fn filler_blocks_are_not_faults() {
        assert_eq!(Dtc::decode([0; 4], SpnConversion::V4), None);
        assert_eq!(Dtc::decode([0xFF; 4], SpnConversion::V4), None);
    }

    // Vector 8 of ../shared/j1939-reference.md: SPN 0x12345 FMI 5 OC 3 in
    // each conversion-method layout (J1939-73 Appendix F).
    #[test]
    fn conversion_method_layouts() {
        let want = (0x12345, 5, 3);
        let fields = |d: Dtc| (d.spn.raw(), d.fmi.raw(), d.oc.raw());
        assert_eq!(fields(dtc([0x45, 0x23, 0x25, 0x03])), want);
        // v3 shares the v4 layout, with CM set.
        let v3 = dtc([0x45, 0x23, 0x25, 0x83]);
        assert_eq!(fields(v3), want);
        assert!(v3.cm);
        let v1 = Dtc::decode([0x24, 0x68, 0xA5, 0x83], SpnConversion::V1).unwrap();
        assert_eq!(fields(v1), want);
        let v2 = Dtc::decode([0x68, 0x24, 0xA5, 0x83], SpnConversion::V2).unwrap();
        assert_eq!(fields(v2), want);
        // The legacy override leaves CM = 0 blocks alone.
        let v4 = Dtc::decode([0x45, 0x23, 0x25, 0x03], SpnConversion::V1).unwrap();
        assert_eq!(fields(v4), want);
        // Without an override a v1 block is read as v4, as peers do.
        assert_ne!(dtc([0x24, 0x68, 0xA5, 0x83]).spn.raw(), 0x12345);
    }

    #[test]
    fn new_encodes_version_4() {
        let d = Dtc::new(
            Spn::new(0x12345).unwrap(),
            Fmi::new(5).unwrap(),
            OccurrenceCount::new(3).unwrap(),
        );
        assert_eq!(d.encode(), [0x45, 0x23, 0x25, 0x03]);
    }
}
