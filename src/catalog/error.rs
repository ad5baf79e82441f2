//! Why a catalogue was refused, with the file and line to fix.

use std::fmt;
use std::io;
use std::path::PathBuf;

use fleetcare_ingest::modbus::RegisterMapError;
use thiserror::Error;

use fleetcare_ingest::ids::InvalidId;

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// A catalogue directory that cannot be used.
#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{at}: {problem}")]
    Invalid { at: Location, problem: Problem },
    #[error(
        "{} has no truck models; add one <model>.toml file per model beside parts.toml",
        dir.display()
    )]
    NoModels { dir: PathBuf },
}

impl CatalogError {
    /// What was wrong with the content, if that is the reason.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Invalid { problem, .. } => Some(problem),
            Self::Read { .. } | Self::NoModels { .. } => None,
        }
    }

    /// Where the problem is, if it is in a file's content.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Invalid { at, .. } => Some(at),
            Self::Read { .. } | Self::NoModels { .. } => None,
        }
    }
}

/// A file and, when known, a 1-based line in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// What is wrong at a [`Location`]: one variant per validation rule, each
/// saying how to put it right.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Problem {
    /// Not valid TOML, or not the catalogue's shape: syntax, an unknown or
    /// missing key, a value of the wrong type or an unknown enum value.
    #[error("{message}")]
    Toml { message: String },
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error("{what} \"{id}\" has an empty {key}")]
    EmptyName {
        what: &'static str,
        id: String,
        key: &'static str,
    },
    #[error("model \"{id}\" is already defined in {}; model ids must be unique", first.display())]
    DuplicateModel { id: String, first: PathBuf },
    #[error("part \"{id}\" is already listed on line {first_line}; part ids must be unique")]
    DuplicatePart { id: String, first_line: usize },
    #[error(
        "task \"{task}\" is already listed on line {first_line}; task ids must be unique within a model"
    )]
    DuplicateTask { task: String, first_line: usize },
    #[error(
        "task \"{task}\" has no interval; give it every_engine_hours, every_pto_hours, every_km or every_days"
    )]
    NoInterval { task: String },
    #[error(
        "task \"{task}\" has {key} = {value}; an interval must be a finite number greater than zero"
    )]
    NonPositiveInterval {
        task: String,
        key: &'static str,
        value: f64,
    },
    #[error("task \"{task}\" has {key} = {value}; give a whole number of days")]
    FractionalDays {
        task: String,
        key: &'static str,
        value: f64,
    },
    #[error(
        "task \"{task}\" has {key} but no {interval_key}; a due-soon window needs the interval it belongs to"
    )]
    DueSoonWithoutInterval {
        task: String,
        key: &'static str,
        interval_key: &'static str,
    },
    #[error(
        "task \"{task}\" has {key} = {window}, which is not less than {interval_key} = {interval}; make the window smaller than the interval"
    )]
    DueSoonNotBelowInterval {
        task: String,
        key: &'static str,
        window: f64,
        interval_key: &'static str,
        interval: f64,
    },
    #[error("task \"{task}\" has {key} = {window}; a due-soon window must be zero or more")]
    NegativeDueSoon {
        task: String,
        key: &'static str,
        window: f64,
    },
    #[error(
        "condition signal \"{signal}\" is not a signal name; use lowercase letters, digits and _ (e.g. hydraulic_oil_temp_c)"
    )]
    BadSignal { signal: String },
    #[error(
        "task \"{task}\" has duty signal \"{signal}\", which is not a signal name; use lowercase letters, digits and _ (e.g. hydraulic_oil_temp_c)"
    )]
    BadDutySignal { task: String, signal: String },
    #[error("task \"{task}\" has duty above = {value}; give a finite level")]
    BadDutyLevel { task: String, value: f64 },
    #[error(
        "task \"{task}\" has duty factor = {value}; a factor must be a finite number of at least 1"
    )]
    BadDutyFactor { task: String, value: f64 },
    #[error(
        "condition on signal \"{signal}\" is already listed on line {first_line}; list each signal once"
    )]
    DuplicateCondition { signal: String, first_line: usize },
    #[error("SPN {spn} is out of range; SPNs are 0 to 524287")]
    SpnOutOfRange { spn: i64 },
    #[error("FMI {fmi} is out of range; FMIs are 0 to 31")]
    FmiOutOfRange { fmi: i64 },
    #[error(
        "fault SPN {spn} FMI {fmi} is already listed on line {first_line}; list each SPN/FMI pair once"
    )]
    DuplicateFault {
        spn: u32,
        fmi: u8,
        first_line: usize,
    },
    #[error("part \"{part}\" is not in parts.toml; add it there or fix the id")]
    UnknownPart { part: String },
    #[error(
        "part \"{part}\" has qty = {qty}; a quantity must be a finite number greater than zero"
    )]
    NonPositiveQty { part: String, qty: f64 },
    #[error(
        "part \"{part}\" is listed twice in the same parts list; give it once with the total qty"
    )]
    RepeatedPartQty { part: String },
    #[error(
        "part \"{part}\" has safety_stock_weeks = {weeks}; give a finite number of weeks from 0 to 52"
    )]
    BadSafetyStock { part: String, weeks: f64 },
    #[error("[modbus] {0}")]
    RegisterMap(RegisterMapError),
    #[error("{section} has no limit; give months, engine_hours or km")]
    WarrantyWithoutLimit { section: &'static str },
    #[error(
        "{section} has {key} = {value}; a warranty limit must be a number greater than zero (months: a whole number)"
    )]
    BadWarrantyLimit {
        section: &'static str,
        key: &'static str,
        value: f64,
    },
    #[error("[[warranty.components]] has no parts; list the parts it covers")]
    ComponentWithoutParts,
    #[error(
        "part \"{part}\" is already named in [warranty] on line {first_line}; a part is excluded or in one component, once"
    )]
    RepeatedWarrantyPart { part: String, first_line: usize },
}
