//! The catalogue's files as written: serde structs that mirror the TOML of
//! design contract C3 and keep the position of every value that a
//! validation rule may need to point at.

use std::ops::Range;
use std::path::{Path, PathBuf};

use fleetcare_ingest::modbus::Register;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;

use super::error::{CatalogError, Location, Problem};
use super::model::{Severity, TruckKind};

/// The text of one catalogue file and where it came from.
#[derive(Debug)]
pub(super) struct Source {
    pub(super) path: PathBuf,
    pub(super) text: String,
}

impl Source {
    pub(super) fn read(path: &Path) -> Result<Self, CatalogError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self {
                path: path.to_path_buf(),
                text,
            }),
            Err(source) => Err(CatalogError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub(super) fn parse<T: DeserializeOwned>(&self) -> Result<T, CatalogError> {
        toml::from_str(&self.text).map_err(|e| CatalogError::Invalid {
            at: Location {
                path: self.path.clone(),
                line: e.span().map(|span| self.line_of(&span)),
            },
            problem: Problem::Toml {
                message: e.message().trim_end().to_owned(),
            },
        })
    }

    /// The 1-based line on which a span starts.
    pub(super) fn line_of(&self, span: &Range<usize>) -> usize {
        let before = self.text.get(..span.start).unwrap_or(&self.text);
        before.matches('\n').count() + 1
    }

    pub(super) fn error_at(&self, span: &Range<usize>, problem: Problem) -> CatalogError {
        CatalogError::Invalid {
            at: Location {
                path: self.path.clone(),
                line: Some(self.line_of(span)),
            },
            problem,
        }
    }
}

/// `models/parts.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartsFile {
    #[serde(default)]
    pub(super) part: Vec<PartEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartEntry {
    pub(super) id: Spanned<String>,
    pub(super) name: Spanned<String>,
    pub(super) name_zh: Option<Spanned<String>>,
    pub(super) unit: Spanned<String>,
    pub(super) lead_time_days: u32,
    pub(super) safety_stock_weeks: Option<Spanned<f64>>,
}

/// One `models/<model>.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelFile {
    pub(super) id: Spanned<String>,
    pub(super) name: Spanned<String>,
    pub(super) name_zh: Option<Spanned<String>>,
    pub(super) kind: TruckKind,
    #[serde(default)]
    pub(super) maintenance: Vec<TaskEntry>,
    #[serde(default)]
    pub(super) faults: Vec<FaultLine>,
    pub(super) modbus: Option<Spanned<ModbusSection>>,
    pub(super) warranty: Option<Spanned<WarrantySection>>,
    #[serde(default)]
    pub(super) conditions: Vec<ConditionLine>,
}

/// `[warranty]` (C10). Limits are read wide and checked afterwards, for
/// messages about limits rather than about number types.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WarrantySection {
    pub(super) months: Option<Spanned<i64>>,
    pub(super) engine_hours: Option<Spanned<f64>>,
    pub(super) km: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) exclude_parts: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) components: Vec<Spanned<ComponentSection>>,
}

/// One `[[warranty.components]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ComponentSection {
    pub(super) parts: Vec<Spanned<String>>,
    pub(super) months: Option<Spanned<i64>>,
    pub(super) engine_hours: Option<Spanned<f64>>,
    pub(super) km: Option<Spanned<f64>>,
}

/// One `[[conditions]]` table (C12).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConditionLine {
    pub(super) signal: Spanned<String>,
    pub(super) direction: super::model::Direction,
    pub(super) fault: Spanned<ConditionFault>,
    #[serde(default)]
    pub(super) parts: Vec<PartQtyEntry>,
}

/// `fault = { spn = 520192, fmi = 0 }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConditionFault {
    pub(super) spn: i64,
    pub(super) fmi: i64,
}

/// One `[[maintenance]]` table. Numbers are read as floats (TOML integers
/// convert) and checked afterwards, so that a zero or negative interval gets
/// a message about intervals rather than about integer types.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TaskEntry {
    pub(super) task: Spanned<String>,
    pub(super) name: Spanned<String>,
    pub(super) name_zh: Option<Spanned<String>>,
    pub(super) every_engine_hours: Option<Spanned<f64>>,
    pub(super) every_pto_hours: Option<Spanned<f64>>,
    pub(super) every_km: Option<Spanned<f64>>,
    pub(super) every_days: Option<Spanned<f64>>,
    pub(super) due_soon_engine_hours: Option<Spanned<f64>>,
    pub(super) due_soon_pto_hours: Option<Spanned<f64>>,
    pub(super) due_soon_km: Option<Spanned<f64>>,
    pub(super) due_soon_days: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) parts: Vec<PartQtyEntry>,
    pub(super) duty: Option<Spanned<DutyEntry>>,
}

/// `duty = { signal = "hydraulic_oil_temp_c", above = 80, factor = 2.0 }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DutyEntry {
    pub(super) signal: Spanned<String>,
    pub(super) above: Spanned<f64>,
    pub(super) factor: Spanned<f64>,
}

/// One `[[faults]]` table. SPN and FMI are read wide and range-checked
/// afterwards, for a message that names the valid range.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FaultLine {
    pub(super) spn: Spanned<i64>,
    pub(super) fmi: Spanned<i64>,
    pub(super) name: Spanned<String>,
    pub(super) name_zh: Option<Spanned<String>>,
    pub(super) severity: Severity,
    #[serde(default)]
    pub(super) parts: Vec<PartQtyEntry>,
}

/// `{ part = "FLT-OIL-01", qty = 1 }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PartQtyEntry {
    pub(super) part: Spanned<String>,
    pub(super) qty: Spanned<f64>,
}

/// `[modbus]`: the fields of [`fleetcare_ingest::modbus::RegisterMap`], with
/// the position of each register.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModbusSection {
    pub(super) unit: u8,
    pub(super) registers: Vec<Spanned<Register>>,
}
