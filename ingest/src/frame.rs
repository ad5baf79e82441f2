//! A classic CAN frame as read from a log or a socket.

use std::fmt;

use crate::j1939::CanId;
use crate::timestamp::Timestamp;

/// The identifier of a classic CAN frame: J1939 uses the 29-bit form; 11-bit
/// frames share the bus (body controllers, CANopen) and are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameId {
    Standard(u16),
    Extended(CanId),
}

/// Up to 8 data bytes, stored inline so a frame never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FrameData {
    len: u8,
    bytes: [u8; 8],
}

impl FrameData {
    pub const MAX_LEN: usize = 8;

    /// `None` when `data` is longer than a classic CAN frame.
    pub fn new(data: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; 8];
        bytes.get_mut(..data.len())?.copy_from_slice(data);
        Some(Self {
            len: data.len() as u8,
            bytes,
        })
    }

    pub fn as_slice(&self) -> &[u8] {
        // `len` ≤ 8 by construction.
        self.bytes
            .get(..usize::from(self.len))
            .unwrap_or(&self.bytes)
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for FrameData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_slice() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

/// One CAN frame with the time it was seen on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CanFrame {
    pub ts: Timestamp,
    pub id: FrameId,
    pub data: FrameData,
}

impl CanFrame {
    /// A J1939 frame; `data` longer than 8 bytes is cut to 8.
    pub fn j1939(ts: Timestamp, id: CanId, data: &[u8]) -> Self {
        let data = FrameData::new(data.get(..data.len().min(8)).unwrap_or(&[])).unwrap_or_default();
        Self {
            ts,
            id: FrameId::Extended(id),
            data,
        }
    }

    /// The frame as a `candump -L` line on interface `iface`.
    pub fn to_candump(&self, iface: &str) -> String {
        let us = self.ts.as_micros();
        let id = match self.id {
            FrameId::Standard(id) => format!("{id:03X}"),
            FrameId::Extended(id) => format!("{:08X}", id.raw()),
        };
        format!(
            "({}.{:06}) {iface} {id}#{:?}",
            us.div_euclid(1_000_000),
            us.rem_euclid(1_000_000),
            self.data
        )
    }
}
