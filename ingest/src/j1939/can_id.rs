//! The 29-bit J1939 identifier (J1939-21 §5.2).
//!
//! ```text
//!  28  26 25  24  23        16 15        8 7         0
//! +------+---+---+------------+-----------+-----------+
//! | prio |EDP| DP|     PF     |    PS     |    SA     |
//! +------+---+---+------------+-----------+-----------+
//! PF < 240 (PDU1): PS is the destination address, PGN = EDP|DP|PF|00
//! PF ≥ 240 (PDU2): PS is the group extension,     PGN = EDP|DP|PF|PS
//! ```

use std::fmt;

/// A node address on the J1939 network (0–253, 254 null, 255 global).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Address(pub u8);

impl Address {
    /// The global (broadcast) destination, J1939-81.
    pub const GLOBAL: Self = Self(0xFF);
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A parameter group number: 18 bits (EDP, DP, PF, PS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pgn(u32);

impl Pgn {
    pub const MAX: u32 = 0x3_FFFF;
    /// DM1, active diagnostic trouble codes (J1939-73 §5.7.1).
    pub const DM1: Self = Self(65226);
    /// DM2, previously active diagnostic trouble codes (J1939-73 §5.7.2).
    pub const DM2: Self = Self(65227);
    /// TP.CM, transport protocol connection management (J1939-21 §5.10.3).
    pub const TP_CM: Self = Self(0xEC00);
    /// TP.DT, transport protocol data transfer (J1939-21 §5.10.3).
    pub const TP_DT: Self = Self(0xEB00);
    /// HOURS, engine hours and revolutions (J1939-71).
    pub const ENGINE_HOURS: Self = Self(65253);
    /// VH, vehicle hours and PTO hours (J1939-71).
    pub const VEHICLE_HOURS: Self = Self(65255);
    /// VD, vehicle distance, 0.125 km/bit (J1939-71).
    pub const VEHICLE_DISTANCE: Self = Self(65248);
    /// VDHR, high resolution vehicle distance, 5 m/bit (J1939-71).
    pub const VEHICLE_DISTANCE_HIGH_RES: Self = Self(65217);

    /// `None` when `raw` does not fit 18 bits.
    pub const fn new(raw: u32) -> Option<Self> {
        if raw <= Self::MAX {
            Some(Self(raw))
        } else {
            None
        }
    }

    /// The 18 bits as a 3-byte little-endian field, as carried in TP.CM.
    pub const fn from_le_bytes(b: [u8; 3]) -> Self {
        Self((b[0] as u32 | (b[1] as u32) << 8 | (b[2] as u32) << 16) & Self::MAX)
    }

    pub const fn to_le_bytes(self) -> [u8; 3] {
        [self.0 as u8, (self.0 >> 8) as u8, (self.0 >> 16) as u8]
    }

    pub const fn raw(self) -> u32 {
        self.0
    }

    /// PDU format (PF), the high byte of the PGN without EDP/DP.
    const fn pdu_format(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// PDU1 groups are addressed to one destination; PDU2 are broadcast.
    pub const fn is_pdu1(self) -> bool {
        self.pdu_format() < 240
    }
}

impl fmt::Display for Pgn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Message priority, 0 (highest) to 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u8);

impl Priority {
    /// `None` above 7.
    pub const fn new(p: u8) -> Option<Self> {
        if p <= 7 { Some(Self(p)) } else { None }
    }

    pub const fn value(self) -> u8 {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanIdError {
    /// The value has bits above bit 28 set.
    #[error("CAN id {0:#X} does not fit 29 bits")]
    TooWide(u32),
}

/// A 29-bit extended CAN identifier read as J1939.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CanId(u32);

impl CanId {
    pub const MAX: u32 = 0x1FFF_FFFF;

    pub const fn new(raw: u32) -> Result<Self, CanIdError> {
        if raw <= Self::MAX {
            Ok(Self(raw))
        } else {
            Err(CanIdError::TooWide(raw))
        }
    }

    /// Builds the identifier of a message; for PDU1 groups `destination`
    /// fills the PS field, for PDU2 groups it is ignored.
    pub const fn from_parts(
        priority: Priority,
        pgn: Pgn,
        destination: Address,
        source: Address,
    ) -> Self {
        let ps = if pgn.is_pdu1() {
            destination.0 as u32
        } else {
            pgn.0 & 0xFF
        };
        Self((priority.0 as u32) << 26 | (pgn.0 & 0x3_FF00) << 8 | ps << 8 | source.0 as u32)
    }

    pub const fn raw(self) -> u32 {
        self.0
    }

    pub const fn priority(self) -> Priority {
        Priority(((self.0 >> 26) & 7) as u8)
    }

    pub const fn source(self) -> Address {
        Address(self.0 as u8)
    }

    const fn pdu_format(self) -> u8 {
        (self.0 >> 16) as u8
    }

    const fn pdu_specific(self) -> u8 {
        (self.0 >> 8) as u8
    }

    pub const fn pgn(self) -> Pgn {
        let dp_pf = (self.0 >> 8) & 0x3_FF00;
        if self.pdu_format() < 240 {
            Pgn(dp_pf)
        } else {
            Pgn(dp_pf | self.pdu_specific() as u32)
        }
    }

    /// The destination address: PS for PDU1 groups, global for PDU2.
    pub const fn destination(self) -> Address {
        if self.pdu_format() < 240 {
            Address(self.pdu_specific())
        } else {
            Address::GLOBAL
        }
    }
}

impl fmt::Debug for CanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CanId({:08X})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vector 9, pretty_j1939 tests (nmfta-repo/pretty_j1939, PyPI 0.0.6).
    #[test]
    fn pdu1_id_has_destination() {
        let id = CanId::new(0x18EF3305).unwrap();
        assert_eq!(id.pgn(), Pgn::new(61184).unwrap());
        assert_eq!(id.destination(), Address(0x33));
        assert_eq!(id.source(), Address(0x05));
        assert_eq!(id.priority().value(), 6);
    }

    #[test]
    fn pdu2_id_is_global() {
        let id = CanId::new(0x18FF0021).unwrap();
        assert_eq!(id.pgn().raw(), 65280);
        assert_eq!(id.destination(), Address::GLOBAL);
        assert_eq!(id.source(), Address(0x21));
    }

    #[test]
    fn priority_three_eec1() {
        let id = CanId::new(0x0CF00400).unwrap();
        assert_eq!(id.priority().value(), 3);
        assert_eq!(id.pgn().raw(), 61444);
        assert_eq!(id.source(), Address(0));
    }

    #[test]
    fn data_page_bits_belong_to_the_pgn() {
        // EDP=1, DP=1, PF=0xFE, PS=0xCA: PGN 0x3FECA.
        let id = CanId::new(0x1BFECA00).unwrap();
        assert_eq!(id.pgn().raw(), 0x3FECA);
    }

    #[test]
    fn rejects_wider_than_29_bits() {
        assert_eq!(
            CanId::new(0x2000_0000),
            Err(CanIdError::TooWide(0x2000_0000))
        );
    }

    #[test]
    fn from_parts_round_trips() {
        let id = CanId::from_parts(
            Priority::new(7).unwrap(),
            Pgn::TP_CM,
            Address(1),
            Address(2),
        );
        assert_eq!(id.raw(), 0x1CEC0102);
        let id = CanId::from_parts(Priority::new(6).unwrap(), Pgn::DM1, Address(9), Address(0));
        assert_eq!(id.raw(), 0x18FECA00);
    }
}
