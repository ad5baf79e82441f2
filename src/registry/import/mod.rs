//! The C4 imports: `vehicles`, `services` and `stock` CSV files.
//!
//! Each file is all or nothing: every row is checked first, against the
//! catalogue and against the registry as it is, and only a file with no
//! refused row is written, in one transaction. Re-importing a file changes
//! nothing: rows are keyed (vehicle; vehicle, task and time; part and
//! depot) and a row already stored as it is counts as unchanged.

mod fleets;
mod outlets;
mod services;
mod stock;
pub(crate) mod table;
mod vehicles;

use std::fmt;
use std::path::PathBuf;

use chrono::{Datelike, NaiveDate};

pub use fleets::{COLUMNS as FLEET_COLUMNS, import_fleets};
pub use outlets::{COLUMNS as OUTLET_COLUMNS, import_outlets};
pub use services::{COLUMNS as SERVICE_COLUMNS, import_services};
pub use stock::{COLUMNS as STOCK_COLUMNS, read_counts};
pub use vehicles::{COLUMNS as VEHICLE_COLUMNS, import_vehicles};

use super::error::RowProblem;
pub(crate) use table::{Problems, Row};

/// Which file was imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Vehicles,
    Services,
    Stock,
    Outlets,
    /// `stock receive`: receipts of parts (C11).
    Receipts,
    /// `stock order`: order lines placed (C11).
    Orders,
    Fleets,
}

impl Kind {
    fn noun(self, count: usize) -> &'static str {
        match (self, count) {
            (Self::Vehicles, 1) => "vehicle",
            (Self::Vehicles, _) => "vehicles",
            (Self::Services, 1) => "service",
            (Self::Services, _) => "services",
            (Self::Stock, 1) => "stock level",
            (Self::Stock, _) => "stock levels",
            (Self::Outlets, 1) => "outlet",
            (Self::Outlets, _) => "outlets",
            (Self::Receipts, 1) => "receipt",
            (Self::Receipts, _) => "receipts",
            (Self::Orders, 1) => "order line",
            (Self::Orders, _) => "order lines",
            (Self::Fleets, 1) => "fleet",
            (Self::Fleets, _) => "fleets",
        }
    }
}

/// What an import did; its `Display` is the line the CLI prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub kind: Kind,
    pub path: PathBuf,
    /// Rows that were not stored before.
    pub new: usize,
    /// Rows whose key was stored with other values, now replaced.
    pub updated: usize,
    /// Rows stored exactly as they were already.
    pub unchanged: usize,
}

impl ImportSummary {
    /// Nothing counted yet.
    pub(crate) fn empty(kind: Kind, path: &std::path::Path) -> Self {
        Self {
            kind,
            path: path.to_path_buf(),
            new: 0,
            updated: 0,
            unchanged: 0,
        }
    }

    pub fn rows(&self) -> usize {
        self.new + self.updated + self.unchanged
    }

    /// Counts `row` against the value `stored` under its key; whether it
    /// must be written.
    pub(crate) fn count<T: PartialEq>(&mut self, stored: Option<&T>, row: &T) -> bool {
        match stored {
            Some(s) if s == row => {
                self.unchanged += 1;
                false
            }
            Some(_) => {
                self.updated += 1;
                true
            }
            None => {
                self.new += 1;
                true
            }
        }
    }
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.rows();
        write!(
            f,
            "imported {rows} {} ({} new, {} updated, {} unchanged) from {}",
            self.kind.noun(rows),
            self.new,
            self.updated,
            self.unchanged,
            self.path.display()
        )
    }
}

/// Dates before this are typing errors, not trucks; it also keeps stored
/// dates four digits wide.
const FIRST_YEAR: i32 = 1900;

/// A `YYYY-MM-DD` date, and nothing looser: `2024-3-5` or `05/03/2024`
/// would be read differently in different countries.
pub(crate) fn parse_date(column: &'static str, value: &str) -> Result<NaiveDate, RowProblem> {
    let shape_ok = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let date = shape_ok
        .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| RowProblem::BadDate {
            column,
            value: value.to_owned(),
        })?;
    if date.year() < FIRST_YEAR {
        return Err(RowProblem::OldDate {
            column,
            value: value.to_owned(),
        });
    }
    Ok(date)
}

/// A required field: empty is refused by name.
pub(crate) fn required<'a>(column: &'static str, value: &'a str) -> Result<&'a str, RowProblem> {
    if value.is_empty() {
        Err(RowProblem::Empty { column })
    } else {
        Ok(value)
    }
}

/// A fleet or vehicle id (contract C1 rules).
fn name_id<T>(
    column: &'static str,
    value: &str,
    new: fn(&str) -> Result<T, fleetcare_ingest::ids::IdError>,
) -> Result<T, RowProblem> {
    new(required(column, value)?).map_err(|reason| RowProblem::BadId {
        column,
        value: value.to_owned(),
        reason,
    })
}

/// Ids for a message that lists what is allowed.
fn id_list<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    ids.collect::<Vec<_>>().join(", ")
}
