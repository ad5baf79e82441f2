//! Register maps of body controllers and the decoding of read responses.
//!
//! Modbus registers are 16-bit words sent big-endian (Modbus Application
//! Protocol v1.1b3 §4.2). A 32-bit value takes two consecutive registers, in
//! an order the protocol leaves to the vendor: for 0xAABBCCDD,
//!
//! ```text
//!               address n   address n+1
//! high_first    0xAABB      0xCCDD        (most PLCs and body controllers)
//! low_first     0xCCDD      0xAABB        ("word-swapped", e.g. Modicon-style)
//! ```
//!
//! Addresses here are the zero-based protocol addresses that go on the wire,
//! not the "30001"/"40001" register numbers of some manuals (input register
//! 30031 is address 30).

use std::fmt;

use serde::Deserialize;
use thiserror::Error;

/// Most registers one read may ask for: the quantity field of FC 03 and
/// FC 04 allows 1 to 125 (Modbus Application Protocol v1.1b3 §6.3, §6.4),
/// which fills the 253-byte PDU.
pub const MAX_REGISTERS_PER_READ: u16 = 125;

/// Which of the two register tables a register is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterKind {
    /// Read-write registers (set points, configuration), read with FC 03.
    Holding,
    /// Read-only measurements and counters, read with FC 04.
    Input,
}

impl RegisterKind {
    /// The function code that reads this table (FC 04 input, FC 03 holding).
    pub const fn read_function_code(self) -> u8 {
        match self {
            Self::Input => 0x04,
            Self::Holding => 0x03,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Holding => "holding",
        }
    }
}

impl fmt::Display for RegisterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the words of one register are read as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    U16,
    I16,
    U32,
    I32,
}

impl ValueType {
    /// How many 16-bit registers a value of this type takes.
    pub const fn word_count(self) -> u16 {
        match self {
            Self::U16 | Self::I16 => 1,
            Self::U32 | Self::I32 => 2,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::U16 => "u16",
            Self::I16 => "i16",
            Self::U32 => "u32",
            Self::I32 => "i32",
        }
    }

    /// The integer the words hold, before any scale.
    pub fn decode(self, words: &[u16], order: WordOrder) -> Result<i64, DecodeError> {
        match (self, words) {
            (Self::U16, &[word]) => Ok(i64::from(word)),
            (Self::I16, &[word]) => Ok(i64::from(i16::from_be_bytes(word.to_be_bytes()))),
            (Self::U32, &[first, second]) => Ok(i64::from(join(first, second, order))),
            (Self::I32, &[first, second]) => Ok(i64::from(i32::from_be_bytes(
                join(first, second, order).to_be_bytes(),
            ))),
            _ => Err(DecodeError::WordCount {
                value_type: self,
                expected: self.word_count(),
                got: words.len(),
            }),
        }
    }

    /// The words a device would send for `raw`, in address order; `None` when
    /// `raw` does not fit the type. Simulators and tests use it.
    pub fn encode(self, raw: i64, order: WordOrder) -> Option<Vec<u16>> {
        match self {
            Self::U16 => u16::try_from(raw).ok().map(|word| vec![word]),
            Self::I16 => i16::try_from(raw)
                .ok()
                .map(|value| vec![u16::from_be_bytes(value.to_be_bytes())]),
            Self::U32 => u32::try_from(raw).ok().map(|value| split(value, order)),
            Self::I32 => i32::try_from(raw)
                .ok()
                .map(|value| split(u32::from_be_bytes(value.to_be_bytes()), order)),
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which word of a 32-bit value comes at the lower address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordOrder {
    /// The high word first (0xAABBCCDD as [0xAABB, 0xCCDD]).
    #[default]
    HighFirst,
    /// The low word first (0xAABBCCDD as [0xCCDD, 0xAABB]).
    LowFirst,
}

impl WordOrder {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HighFirst => "high_first",
            Self::LowFirst => "low_first",
        }
    }
}

fn join(first: u16, second: u16, order: WordOrder) -> u32 {
    let (high, low) = match order {
        WordOrder::HighFirst => (first, second),
        WordOrder::LowFirst => (second, first),
    };
    u32::from(high) << 16 | u32::from(low)
}

fn split(value: u32, order: WordOrder) -> Vec<u16> {
    let [b0, b1, b2, b3] = value.to_be_bytes();
    let high = u16::from_be_bytes([b0, b1]);
    let low = u16::from_be_bytes([b2, b3]);
    match order {
        WordOrder::HighFirst => vec![high, low],
        WordOrder::LowFirst => vec![low, high],
    }
}

fn default_scale() -> f64 {
    1.0
}

/// One value a body controller exposes: where it is and how to read it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// What the value is, with its unit, e.g. `hydraulic_oil_temp_c`.
    pub name: String,
    pub kind: RegisterKind,
    /// Zero-based protocol address of the first word.
    pub address: u16,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// Only meaningful for 32-bit types.
    #[serde(default)]
    pub word_order: WordOrder,
    /// Engineering value = raw integer × scale.
    #[serde(default = "default_scale")]
    pub scale: f64,
}

impl Register {
    pub const fn word_count(&self) -> u16 {
        self.value_type.word_count()
    }

    /// The first address after this register; `u32` because a register may
    /// end exactly at the end of the 16-bit address space.
    pub fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.word_count())
    }

    /// The scaled value of the words read for this register.
    pub fn decode(&self, words: &[u16]) -> Result<f64, DecodeError> {
        let raw = self.value_type.decode(words, self.word_order)?;
        Ok(apply_scale(raw, self.scale))
    }
}

/// `raw × scale`, divided by the reciprocal when that is a whole number:
/// 1234 × 0.1 gives 123.40000000000001 in binary floating point, while
/// 1234 ÷ 10 gives 123.4, which is what the operator expects to see.
fn apply_scale(raw: i64, scale: f64) -> f64 {
    // Raw values come from at most 32 bits: the conversion is exact.
    let raw = raw as f64;
    let divisor = scale.recip();
    if divisor.is_finite() && divisor.abs() > 1.0 && divisor == divisor.round() {
        raw / divisor
    } else {
        raw * scale
    }
}

/// The register map of one body controller (one Modbus unit).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterMap {
    /// Modbus unit identifier (slave id) of the controller.
    pub unit: u8,
    pub registers: Vec<Register>,
}

impl RegisterMap {
    pub fn register(&self, name: &str) -> Option<&Register> {
        self.registers.iter().find(|r| r.name == name)
    }

    /// Checks what the types cannot: names present and unique, scales
    /// usable, every register inside the address space and apart from the
    /// others of its kind. Returns the first problem: those of single
    /// registers in file order, then overlaps.
    pub fn validate(&self) -> Result<(), RegisterMapError> {
        if self.registers.is_empty() {
            return Err(RegisterMapError::NoRegisters);
        }
        for (index, register) in self.registers.iter().enumerate() {
            let name = || register.name.clone();
            if register.name.trim().is_empty() {
                return Err(RegisterMapError::EmptyName { index });
            }
            if let Some(first) = self
                .registers
                .iter()
                .take(index)
                .position(|r| r.name == register.name)
            {
                return Err(RegisterMapError::DuplicateName {
                    index,
                    first,
                    name: name(),
                });
            }
            if !register.scale.is_finite() || register.scale == 0.0 {
                return Err(RegisterMapError::BadScale {
                    index,
                    name: name(),
                    scale: register.scale,
                });
            }
            if register.word_count() == 1 && register.word_order == WordOrder::LowFirst {
                return Err(RegisterMapError::WordOrderOnSingleWord {
                    index,
                    name: name(),
                    value_type: register.value_type,
                });
            }
            if register.end() > 1 << 16 {
                return Err(RegisterMapError::PastEndOfAddressSpace {
                    index,
                    name: name(),
                });
            }
        }
        if let Some((index, other)) = self.first_overlap() {
            let name_of = |i: usize| {
                self.registers
                    .get(i)
                    .map(|r| r.name.clone())
                    .unwrap_or_default()
            };
            return Err(RegisterMapError::Overlap {
                index,
                name: name_of(index),
                other_name: name_of(other),
            });
        }
        Ok(())
    }

    /// The first pair of registers of the same kind that share an address,
    /// as (later in the file, earlier in the file).
    fn first_overlap(&self) -> Option<(usize, usize)> {
        let mut by_address: Vec<(usize, &Register)> = self.registers.iter().enumerate().collect();
        by_address.sort_by_key(|&(index, r)| (r.kind, r.address, index));
        // In address order, a register can only overlap the one just before
        // it as long as no overlap has been seen yet.
        let mut previous: Option<(usize, &Register)> = None;
        for (index, register) in by_address {
            if let Some((other, before)) = previous
                && before.kind == register.kind
                && u32::from(register.address) < before.end()
            {
                return Some((index.max(other), index.min(other)));
            }
            previous = Some((index, register));
        }
        None
    }

    /// The read requests that fetch every register: one run of adjacent
    /// registers of one kind per request, at most
    /// [`MAX_REGISTERS_PER_READ`] long, holding registers (FC 03) before
    /// input registers (FC 04), each in address order.
    ///
    /// Registers separated by a gap go in separate requests: many
    /// controllers answer a read that covers an unmapped address with
    /// exception 02 (illegal data address) instead of filler.
    pub fn plan_reads(&self) -> Result<Vec<ReadRequest>, RegisterMapError> {
        self.validate()?;
        let mut sorted: Vec<&Register> = self.registers.iter().collect();
        sorted.sort_by_key(|r| (r.kind, r.address));

        let mut requests: Vec<ReadRequest> = Vec::new();
        for register in sorted {
            let joins_last = requests.last().is_some_and(|last| {
                last.kind == register.kind
                    && last.end() == u32::from(register.address)
                    && register.end() - u32::from(last.start) <= u32::from(MAX_REGISTERS_PER_READ)
            });
            match requests.last_mut() {
                Some(last) if joins_last => {
                    last.count += register.word_count();
                    last.registers.push(register.clone());
                }
                _ => requests.push(ReadRequest {
                    kind: register.kind,
                    start: register.address,
                    count: register.word_count(),
                    registers: vec![register.clone()],
                }),
            }
        }
        Ok(requests)
    }
}

/// One FC 03 or FC 04 request: `count` registers from `start`, and the
/// registers of the map it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRequest {
    kind: RegisterKind,
    start: u16,
    count: u16,
    registers: Vec<Register>,
}

impl ReadRequest {
    pub const fn kind(&self) -> RegisterKind {
        self.kind
    }

    pub const fn function_code(&self) -> u8 {
        self.kind.read_function_code()
    }

    /// Address of the first register to read.
    pub const fn start(&self) -> u16 {
        self.start
    }

    /// Number of registers to read, 1 to [`MAX_REGISTERS_PER_READ`].
    pub const fn count(&self) -> u16 {
        self.count
    }

    /// The registers this request covers, in address order.
    pub fn registers(&self) -> &[Register] {
        &self.registers
    }

    fn end(&self) -> u32 {
        u32::from(self.start) + u32::from(self.count)
    }

    /// The scaled value of every register this request covers, from the
    /// words the device returned (in address order).
    pub fn decode<'a>(&'a self, response: &[u16]) -> Result<Vec<(&'a Register, f64)>, DecodeError> {
        if response.len() != usize::from(self.count) {
            return Err(DecodeError::ResponseLength {
                expected: self.count,
                got: response.len(),
            });
        }
        self.registers
            .iter()
            .map(|register| {
                let offset = usize::from(register.address.saturating_sub(self.start));
                let words = response
                    .get(offset..offset + usize::from(register.word_count()))
                    .unwrap_or_default();
                Ok((register, register.decode(words)?))
            })
            .collect()
    }
}

/// Why words could not be turned into a value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("a {value_type} value takes {expected} registers, got {got}")]
    WordCount {
        value_type: ValueType,
        expected: u16,
        got: usize,
    },
    #[error("the device returned {got} registers for a read of {expected}")]
    ResponseLength { expected: u16, got: usize },
}

/// A register map that cannot be read as written. `index` is the position of
/// the offending register in [`RegisterMap::registers`].
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RegisterMapError {
    #[error("the register map has no registers")]
    NoRegisters,
    #[error("a register has an empty name")]
    EmptyName { index: usize },
    #[error("register \"{name}\" is listed twice")]
    DuplicateName {
        index: usize,
        first: usize,
        name: String,
    },
    #[error("register \"{name}\" has scale {scale}; give a finite number other than zero")]
    BadScale {
        index: usize,
        name: String,
        scale: f64,
    },
    #[error(
        "register \"{name}\" is a single-word {value_type} and cannot have word_order \"low_first\"; word order only applies to u32 and i32"
    )]
    WordOrderOnSingleWord {
        index: usize,
        name: String,
        value_type: ValueType,
    },
    #[error("register \"{name}\" runs past the last Modbus address, 65535")]
    PastEndOfAddressSpace { index: usize, name: String },
    #[error("register \"{name}\" overlaps register \"{other_name}\" of the same kind")]
    Overlap {
        index: usize,
        name: String,
        other_name: String,
    },
}

impl RegisterMapError {
    /// The offending register's position in the map, if the problem is one
    /// register's.
    pub const fn register_index(&self) -> Option<usize> {
        match self {
            Self::NoRegisters => None,
            Self::EmptyName { index }
            | Self::DuplicateName { index, .. }
            | Self::BadScale { index, .. }
            | Self::WordOrderOnSingleWord { index, .. }
            | Self::PastEndOfAddressSpace { index, .. }
            | Self::Overlap { index, .. } => Some(*index),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn reg(name: &str, kind: RegisterKind, address: u16, value_type: ValueType) -> Register {
        Register {
            name: name.to_owned(),
            kind,
            address,
            value_type,
            word_order: WordOrder::HighFirst,
            scale: 1.0,
        }
    }

    fn map(registers: Vec<Register>) -> RegisterMap {
        RegisterMap { unit: 1, registers }
    }

    // 0xAABBCCDD = 2864434397; the layouts are the j1939-reference Modbus
    // section's.
    #[test]
    fn u32_word_orders() {
        use WordOrder::{HighFirst, LowFirst};
        assert_eq!(
            ValueType::U32.decode(&[0xAABB, 0xCCDD], HighFirst),
            Ok(2_864_434_397)
        );
        assert_eq!(
            ValueType::U32.decode(&[0xCCDD, 0xAABB], LowFirst),
            Ok(2_864_434_397)
        );
        assert_eq!(
            ValueType::U32.encode(2_864_434_397, HighFirst),
            Some(vec![0xAABB, 0xCCDD])
        );
        assert_eq!(
            ValueType::U32.encode(2_864_434_397, LowFirst),
            Some(vec![0xCCDD, 0xAABB])
        );
    }

    #[test]
    fn signed_values() {
        use WordOrder::{HighFirst, LowFirst};
        assert_eq!(ValueType::I16.decode(&[0xFF38], HighFirst), Ok(-200));
        assert_eq!(ValueType::I16.decode(&[0x8000], HighFirst), Ok(-32_768));
        assert_eq!(ValueType::I16.decode(&[0x7FFF], HighFirst), Ok(32_767));
        assert_eq!(ValueType::U16.decode(&[0xFF38], HighFirst), Ok(65_336));
        // 0xAABBCCDD read as i32 is -1430532899.
        assert_eq!(
            ValueType::I32.decode(&[0xAABB, 0xCCDD], HighFirst),
            Ok(-1_430_532_899)
        );
        assert_eq!(ValueType::I32.decode(&[0xFFFE, 0xFFFF], LowFirst), Ok(-2));
        assert_eq!(
            ValueType::I32.decode(&[0x8000, 0x0000], HighFirst),
            Ok(i64::from(i32::MIN))
        );
        assert_eq!(ValueType::I16.encode(-200, HighFirst), Some(vec![0xFF38]));
        assert_eq!(ValueType::I16.encode(40_000, HighFirst), None);
        assert_eq!(ValueType::U16.encode(-1, HighFirst), None);
        assert_eq!(ValueType::U32.encode(1 << 32, HighFirst), None);
    }

    #[test]
    fn scale_is_applied_without_binary_noise() {
        let mut r = reg("pto_hours", RegisterKind::Input, 30, ValueType::U32);
        r.scale = 0.1;
        // 0x000004D2 = 1234.
        assert_eq!(r.decode(&[0x0000, 0x04D2]), Ok(123.4));
        r.scale = 0.05;
        assert_eq!(r.decode(&[0x0000, 0x04D2]), Ok(61.7));
        r.scale = 2.5;
        assert_eq!(r.decode(&[0x0000, 0x04D2]), Ok(3085.0));
        let mut t = reg(
            "hydraulic_oil_temp_c",
            RegisterKind::Input,
            7,
            ValueType::I16,
        );
        t.scale = 0.1;
        assert_eq!(t.decode(&[0xFF38]), Ok(-20.0));
    }

    #[test]
    fn wrong_word_count_is_an_error() {
        let r = reg("pto_hours", RegisterKind::Input, 0, ValueType::U32);
        assert_eq!(
            r.decode(&[0x0001]),
            Err(DecodeError::WordCount {
                value_type: ValueType::U32,
                expected: 2,
                got: 1
            })
        );
        assert!(ValueType::U16.decode(&[], WordOrder::HighFirst).is_err());
        assert!(
            ValueType::I16
                .decode(&[1, 2], WordOrder::HighFirst)
                .is_err()
        );
    }

    #[test]
    fn deserializes_the_catalogue_form() {
        #[derive(Deserialize)]
        struct Wrapper {
            modbus: RegisterMap,
        }
        let text = r#"{"modbus": {"unit": 3, "registers": [
            {"name": "pto_hours", "kind": "input", "address": 30, "type": "u32", "word_order": "low_first", "scale": 0.1},
            {"name": "setpoint", "kind": "holding", "address": 5, "type": "i16"}]}}"#;
        let parsed: Wrapper = serde_json::from_str(text).unwrap();
        let m = parsed.modbus;
        assert_eq!(m.unit, 3);
        let pto = m.register("pto_hours").unwrap();
        assert_eq!(
            (
                pto.kind,
                pto.address,
                pto.value_type,
                pto.word_order,
                pto.scale
            ),
            (
                RegisterKind::Input,
                30,
                ValueType::U32,
                WordOrder::LowFirst,
                0.1
            )
        );
        let set = m.register("setpoint").unwrap();
        assert_eq!((set.word_order, set.scale), (WordOrder::HighFirst, 1.0));
        let unknown =
            r#"{"name": "x", "kind": "input", "address": 1, "type": "u16", "unit": "bar"}"#;
        assert!(serde_json::from_str::<Register>(unknown).is_err());
        let bad_type = r#"{"name": "x", "kind": "input", "address": 1, "type": "f32"}"#;
        assert!(serde_json::from_str::<Register>(bad_type).is_err());
    }

    #[test]
    fn validation() {
        use RegisterKind::{Holding, Input};
        use ValueType::{U16, U32};
        assert_eq!(map(vec![]).validate(), Err(RegisterMapError::NoRegisters));

        // A u32 at 30 takes 30 and 31.
        let overlapping = map(vec![reg("a", Input, 30, U32), reg("b", Input, 31, U16)]);
        let err = overlapping.validate().unwrap_err();
        assert_eq!(err.register_index(), Some(1));
        assert!(
            matches!(err, RegisterMapError::Overlap { ref name, ref other_name, .. } if name == "b" && other_name == "a")
        );
        // Listed in the other order, the later one in the file is still named.
        let err = map(vec![reg("b", Input, 31, U16), reg("a", Input, 30, U32)])
            .validate()
            .unwrap_err();
        assert_eq!(err.register_index(), Some(1));
        let same_address = map(vec![reg("a", Input, 30, U16), reg("b", Input, 30, U16)]);
        assert_eq!(
            same_address.validate().unwrap_err().register_index(),
            Some(1)
        );
        // Input and holding registers are separate tables.
        assert_eq!(
            map(vec![reg("a", Input, 30, U32), reg("b", Holding, 31, U16)]).validate(),
            Ok(())
        );
        assert_eq!(
            map(vec![reg("a", Input, 30, U32), reg("b", Input, 32, U16)]).validate(),
            Ok(())
        );

        let err = map(vec![reg("a", Input, 1, U16), reg("a", Input, 2, U16)])
            .validate()
            .unwrap_err();
        assert!(matches!(
            err,
            RegisterMapError::DuplicateName {
                index: 1,
                first: 0,
                ..
            }
        ));

        assert!(matches!(
            map(vec![reg(" ", Input, 1, U16)]).validate(),
            Err(RegisterMapError::EmptyName { index: 0 })
        ));

        for scale in [0.0, f64::NAN, f64::INFINITY] {
            let mut r = reg("a", Input, 1, U16);
            r.scale = scale;
            assert!(matches!(
                map(vec![r]).validate(),
                Err(RegisterMapError::BadScale { index: 0, .. })
            ));
        }

        let mut r = reg("a", Input, 1, U16);
        r.word_order = WordOrder::LowFirst;
        assert!(matches!(
            map(vec![r]).validate(),
            Err(RegisterMapError::WordOrderOnSingleWord { index: 0, .. })
        ));

        assert!(matches!(
            map(vec![reg("a", Input, 65_535, U32)]).validate(),
            Err(RegisterMapError::PastEndOfAddressSpace { index: 0, .. })
        ));
        assert_eq!(map(vec![reg("a", Input, 65_535, U16)]).validate(), Ok(()));
        assert_eq!(map(vec![reg("a", Input, 65_534, U32)]).validate(), Ok(()));
    }

    fn shape(requests: &[ReadRequest]) -> Vec<(u8, u16, u16, usize)> {
        requests
            .iter()
            .map(|r| (r.function_code(), r.start(), r.count(), r.registers().len()))
            .collect()
    }

    #[test]
    fn plans_contiguous_runs_per_kind() {
        use RegisterKind::{Holding, Input};
        use ValueType::{I16, U16, U32};
        let m = map(vec![
            reg("level", Input, 4, U16),
            reg("pto_hours", Input, 0, U32),
            reg("cycles", Input, 2, U32),
            reg("temp", Input, 10, I16),
            reg("setpoint", Holding, 100, U16),
            reg("limit", Holding, 101, U16),
        ]);
        let plan = m.plan_reads().unwrap();
        assert_eq!(
            shape(&plan),
            vec![(0x03, 100, 2, 2), (0x04, 0, 5, 3), (0x04, 10, 1, 1)]
        );
        let names: Vec<&str> = plan[1]
            .registers()
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["pto_hours", "cycles", "level"]);
    }

    #[test]
    fn plans_at_most_125_registers_per_read() {
        let single: Vec<Register> = (0..126)
            .map(|a| reg(&format!("r{a}"), RegisterKind::Holding, a, ValueType::U16))
            .collect();
        assert_eq!(
            shape(&map(single).plan_reads().unwrap()),
            vec![(0x03, 0, 125, 125), (0x03, 125, 1, 1)]
        );
        // 63 u32 registers take 126 words: a u32 never straddles two reads.
        let double: Vec<Register> = (0..63)
            .map(|i| reg(&format!("r{i}"), RegisterKind::Input, i * 2, ValueType::U32))
            .collect();
        assert_eq!(
            shape(&map(double).plan_reads().unwrap()),
            vec![(0x04, 0, 124, 62), (0x04, 124, 2, 1)]
        );
    }

    #[test]
    fn an_invalid_map_gets_no_plan() {
        let m = map(vec![
            reg("a", RegisterKind::Input, 0, ValueType::U32),
            reg("b", RegisterKind::Input, 1, ValueType::U16),
        ]);
        assert!(m.plan_reads().is_err());
    }

    #[test]
    fn decodes_a_response() {
        let mut pto = reg("pto_hours", RegisterKind::Input, 30, ValueType::U32);
        pto.scale = 0.1;
        pto.word_order = WordOrder::LowFirst;
        let mut temp = reg("oil_temp", RegisterKind::Input, 32, ValueType::I16);
        temp.scale = 0.1;
        let plan = map(vec![pto, temp]).plan_reads().unwrap();
        assert_eq!(plan.len(), 1);
        let request = &plan[0];
        // 0x0001E240 = 123456 → 12345.6 h; 0xFF9C = -100 → -10.0 °C.
        let values = request.decode(&[0xE240, 0x0001, 0xFF9C]).unwrap();
        let values: Vec<(&str, f64)> = values.iter().map(|(r, v)| (r.name.as_str(), *v)).collect();
        assert_eq!(values, [("pto_hours", 12_345.6), ("oil_temp", -10.0)]);
        assert_eq!(
            request.decode(&[0xE240, 0x0001]),
            Err(DecodeError::ResponseLength {
                expected: 3,
                got: 2
            })
        );
    }

    fn value_type() -> impl Strategy<Value = ValueType> {
        prop_oneof![
            Just(ValueType::U16),
            Just(ValueType::I16),
            Just(ValueType::U32),
            Just(ValueType::I32),
        ]
    }

    fn word_order() -> impl Strategy<Value = WordOrder> {
        prop_oneof![Just(WordOrder::HighFirst), Just(WordOrder::LowFirst)]
    }

    /// A value type with a raw value over its full range.
    fn typed_value() -> impl Strategy<Value = (ValueType, i64)> {
        prop_oneof![
            any::<u16>().prop_map(|v| (ValueType::U16, i64::from(v))),
            any::<i16>().prop_map(|v| (ValueType::I16, i64::from(v))),
            any::<u32>().prop_map(|v| (ValueType::U32, i64::from(v))),
            any::<i32>().prop_map(|v| (ValueType::I32, i64::from(v))),
        ]
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips((value_type, raw) in typed_value(), order in word_order()) {
            let words = value_type.encode(raw, order).unwrap();
            prop_assert_eq!(words.len(), usize::from(value_type.word_count()));
            prop_assert_eq!(value_type.decode(&words, order), Ok(raw));
        }

        #[test]
        fn decode_then_encode_round_trips(
            value_type in value_type(),
            order in word_order(),
            words in prop::collection::vec(any::<u16>(), 1..=2),
        ) {
            if let Ok(raw) = value_type.decode(&words, order) {
                prop_assert_eq!(value_type.encode(raw, order), Some(words));
            }
        }

        #[test]
        fn word_orders_are_mirror_images(high in any::<u16>(), low in any::<u16>()) {
            let expected = i64::from(u32::from(high) << 16 | u32::from(low));
            prop_assert_eq!(ValueType::U32.decode(&[high, low], WordOrder::HighFirst), Ok(expected));
            prop_assert_eq!(ValueType::U32.decode(&[low, high], WordOrder::LowFirst), Ok(expected));
        }

        #[test]
        fn arbitrary_words_never_panic(
            value_type in value_type(),
            order in word_order(),
            words in prop::collection::vec(any::<u16>(), 0..4),
        ) {
            let result = value_type.decode(&words, order);
            prop_assert_eq!(result.is_ok(), words.len() == usize::from(value_type.word_count()));
        }

        #[test]
        fn decimal_scales_divide_exactly(
            raw in any::<i32>(),
            (scale, divisor) in prop::sample::select(vec![
                (0.1, 10.0), (0.01, 100.0), (0.001, 1000.0), (0.05, 20.0), (0.5, 2.0), (0.125, 8.0),
            ]),
        ) {
            prop_assert_eq!(apply_scale(i64::from(raw), scale), f64::from(raw) / divisor);
        }

        #[test]
        fn any_scale_is_raw_times_scale(raw in any::<i32>(), scale in -1.0e6f64..1.0e6) {
            let expected = f64::from(raw) * scale;
            let scaled = apply_scale(i64::from(raw), scale);
            prop_assert!((scaled - expected).abs() <= expected.abs() * 1e-15);
        }

        /// Any valid map: every register lands in exactly one request of at
        /// most 125 registers, and reading a simulated device gives back the
        /// values written into it.
        #[test]
        fn plans_cover_every_register_and_decode_what_was_written(
            layout in prop::collection::vec(
                (any::<bool>(), 0u16..3, typed_value(), word_order()),
                1..200,
            ),
        ) {
            let mut next = [0u32; 2];
            let mut registers = Vec::new();
            let mut device: HashMap<(RegisterKind, u32), u16> = HashMap::new();
            let mut expected = HashMap::new();
            for (i, (holding, gap, (value_type, raw), order)) in layout.into_iter().enumerate() {
                let kind = if holding { RegisterKind::Holding } else { RegisterKind::Input };
                let slot = usize::from(holding);
                let address = next[slot] + u32::from(gap);
                next[slot] = address + u32::from(value_type.word_count());
                let words = value_type.encode(raw, order).unwrap();
                for (offset, word) in (0..).zip(&words) {
                    device.insert((kind, address + offset), *word);
                }
                let name = format!("r{i}");
                expected.insert(name.clone(), raw as f64);
                registers.push(Register {
                    name,
                    kind,
                    address: u16::try_from(address).unwrap(),
                    value_type,
                    word_order: if value_type.word_count() == 2 { order } else { WordOrder::HighFirst },
                    scale: 1.0,
                });
            }
            let plan = map(registers).plan_reads().unwrap();
            let mut seen = HashMap::new();
            for request in &plan {
                prop_assert!((1..=MAX_REGISTERS_PER_READ).contains(&request.count()));
                let response: Option<Vec<u16>> = (0..u32::from(request.count()))
                    .map(|offset| device.get(&(request.kind(), u32::from(request.start()) + offset)).copied())
                    .collect();
                // A read never covers an address the map does not name.
                let response = response.unwrap();
                for (register, value) in request.decode(&response).unwrap() {
                    prop_assert!(seen.insert(register.name.clone(), value).is_none());
                }
            }
            prop_assert_eq!(seen, expected);
        }
    }
}
