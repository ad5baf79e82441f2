//! Why an import was refused: the file, the line and what to fix.

use std::path::PathBuf;

use thiserror::Error;

use super::types::{DepotError, TaskSyntaxError, VinError};
use crate::db::DbError;

pub(crate) type Result<T, E = ImportError> = std::result::Result<T, E>;

/// Rows listed in an [`ImportError::Rows`]; the rest are only counted, so
/// that a file with a wrong column everywhere gives a readable answer.
pub const MAX_REPORTED_ROWS: usize = 20;

/// An import that applied nothing.
#[derive(Debug, Error)]
pub enum ImportError {
    #[error("cannot read {}: {error}; check the path", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}:1: {problem}", path.display())]
    Header {
        path: PathBuf,
        problem: HeaderProblem,
    },
    /// Every refused row, in file order (at most [`MAX_REPORTED_ROWS`]).
    #[error("{}", rows_message(path, rows, *total))]
    Rows {
        path: PathBuf,
        rows: Vec<RowError>,
        /// All refused rows, listed or not.
        total: usize,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Sql(e))
    }
}

fn rows_message(path: &std::path::Path, rows: &[RowError], total: usize) -> String {
    let mut message = String::new();
    if let Some(first) = rows.first() {
        message = format!("{}:{first}", path.display());
    }
    if total > 1 {
        message.push_str(&format!(" (and {} more rows refused)", total - 1));
    }
    message
}

/// A header that is not the contract's columns.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderProblem {
    #[error("the header is not valid UTF-8; save the file as UTF-8")]
    NotUtf8,
    #[error("the file is empty; its first line must be the header {expected}")]
    Empty { expected: String },
    #[error(
        "{}; the header must be {expected} (in any order)",
        describe(missing, unknown, duplicate)
    )]
    Columns {
        missing: Vec<String>,
        unknown: Vec<String>,
        duplicate: Vec<String>,
        expected: String,
    },
}

fn describe(missing: &[String], unknown: &[String], duplicate: &[String]) -> String {
    let list = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("column {} is missing", list(missing)));
    }
    if !unknown.is_empty() {
        parts.push(format!("column {} is not expected", list(unknown)));
    }
    if !duplicate.is_empty() {
        parts.push(format!("column {} appears twice", list(duplicate)));
    }
    parts.join(", ")
}

/// One refused row: its 1-based line in the file (the header is line 1).
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{line}: {problem}")]
pub struct RowError {
    pub line: u64,
    pub problem: RowProblem,
}

/// What is wrong with a row, one variant per rule, each saying what to fix.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RowProblem {
    #[error(
        "the row has {found} fields but the header has {expected}; check for a missing or extra comma"
    )]
    FieldCount { found: u64, expected: u64 },
    #[error("the row is not valid UTF-8; save the file as UTF-8")]
    NotUtf8,
    #[error("{column} is empty; fill it in")]
    Empty { column: &'static str },
    #[error("{column} \"{value}\" {reason}")]
    BadId {
        column: &'static str,
        value: String,
        reason: fleetcare_ingest::ids::IdError,
    },
    #[error(
        "model_id \"{model}\" is not in the catalogue; use one of {known}, or add the model to the catalogue"
    )]
    UnknownModel { model: String, known: String },
    #[error(transparent)]
    Vin(#[from] VinError),
    #[error(transparent)]
    Depot(#[from] DepotError),
    #[error("{column} \"{value}\" is not a date; write it as YYYY-MM-DD, e.g. 2024-03-15")]
    BadDate { column: &'static str, value: String },
    #[error("{column} \"{value}\" is before 1900; give the real date")]
    OldDate { column: &'static str, value: String },
    #[error("vehicle \"{vehicle}\" is already on line {first_line}; list each vehicle once")]
    DuplicateVehicle { vehicle: String, first_line: u64 },
    #[error("vin {vin} is also the VIN of vehicle \"{other}\"{}; give each vehicle its own VIN", at_line(*other_line))]
    DuplicateVin {
        vin: String,
        other: String,
        /// The other vehicle's line in this file; `None` when it is only in
        /// the registry.
        other_line: Option<u64>,
    },
    #[error(
        "vehicle \"{vehicle}\" is not in the registry; add it with fleetcare vehicles import first"
    )]
    UnknownVehicle { vehicle: String },
    #[error(transparent)]
    TaskSyntax(#[from] TaskSyntaxError),
    #[error(
        "task \"{task}\" is not a maintenance task of model {model}; use one of {known}, or repair:SPN:FMI for a repair"
    )]
    UnknownTask {
        task: String,
        model: String,
        known: String,
    },
    #[error(
        "performed_on \"{value}\" is not a date or time; write YYYY-MM-DD or an RFC 3339 time such as 2025-03-01T08:30:00Z"
    )]
    BadTime { value: String },
    #[error("performed_on \"{value}\" is in the future; give the date the service was done")]
    FutureTime { value: String },
    #[error(
        "{column} \"{value}\" is not a meter reading; give a number of zero or more, e.g. 1234.5, or leave it empty"
    )]
    BadMeter { column: &'static str, value: String },
    #[error(
        "this service ({vehicle}, {task}, {performed_on}) is already on line {first_line}; list each service once"
    )]
    DuplicateService {
        vehicle: String,
        task: String,
        performed_on: String,
        first_line: u64,
    },
    #[error(
        "part \"{part}\" is not in the catalogue's parts.toml; fix the id or add the part there"
    )]
    UnknownPart { part: String },
    #[error("on_hand \"{value}\" is not a count; give a whole number of zero or more")]
    BadCount { value: String },
    #[error(
        "part {part} at depot {depot} is already on line {first_line}; list each part and depot once"
    )]
    DuplicateStock {
        part: String,
        depot: String,
        first_line: u64,
    },
    #[error("outlet \"{outlet}\" is already on line {first_line}; list each outlet once")]
    DuplicateOutlet { outlet: String, first_line: u64 },
    #[error("fleet \"{fleet}\" is already on line {first_line}; list each fleet once")]
    DuplicateFleet { fleet: String, first_line: u64 },
    #[error("{column} \"{value}\" is not {expected}; use one of those")]
    BadChoice {
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{column} is longer than {max} characters or holds a control character; shorten it")]
    BadText { column: &'static str, max: usize },
    #[error("qty \"{value}\" is not a quantity; give a whole number of 1 or more")]
    BadQty { value: String },
    #[error(
        "reference \"{value}\" is not a reference; give the order number, 1 to 64 printable characters"
    )]
    BadReference { value: String },
    #[error("{column} \"{value}\" is in the future; give the day it happened")]
    FutureDate { column: &'static str, value: String },
    #[error(
        "part {part} at depot {depot} with reference {reference} is already on line {first_line}; list each once"
    )]
    DuplicateLine {
        part: String,
        depot: String,
        reference: String,
        first_line: u64,
    },
    #[error(
        "order {reference} of part {part} at depot {depot} was already received with qty {stored}; give a new reference for another delivery"
    )]
    AlreadyReceived {
        reference: String,
        part: String,
        depot: String,
        stored: i64,
    },
    #[error(
        "order {reference} of part {part} at depot {depot} is already received; give a new reference for another order"
    )]
    OrderClosed {
        reference: String,
        part: String,
        depot: String,
    },
}

fn at_line(line: Option<u64>) -> String {
    line.map(|l| format!(" on line {l}")).unwrap_or_default()
}
