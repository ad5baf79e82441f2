//! `fleetcare stock import FILE`: counts of parts on the shelf per depot,
//! which the parts ledger books as adjustments (C11).

use std::collections::HashMap;
use std::path::Path;

use super::required;
use super::table::{self, Problems, Row};
use crate::catalog::{Catalog, PartId};
use crate::registry::error::{Result, RowProblem};
use crate::registry::types::{Depot, StockLevel};

/// The contract's columns (C4).
pub const COLUMNS: [&str; 3] = ["part", "depot", "on_hand"];

/// Reads and checks `path`: each row is the count of one part at one
/// depot. The whole file is refused (every bad row named by its line) or
/// every count is returned, in file order; the parts ledger turns them
/// into adjustments (`crate::parts`).
pub fn read_counts(catalog: &Catalog, path: &Path) -> Result<Vec<StockLevel>> {
    let mut problems = Problems::default();
    let rows = table::read(path, COLUMNS, &mut problems)?;

    let mut levels: Vec<StockLevel> = Vec::with_capacity(rows.len());
    let mut line_of: HashMap<(PartId, Depot), u64> = HashMap::new();
    for row in &rows {
        match parse_row(row, catalog) {
            Ok(level) => {
                let key = (level.part.clone(), level.depot.clone());
                if let Some(&first_line) = line_of.get(&key) {
                    problems.push(
                        row.line,
                        RowProblem::DuplicateStock {
                            part: level.part.to_string(),
                            depot: level.depot.to_string(),
                            first_line,
                        },
                    );
                } else {
                    line_of.insert(key, row.line);
                    levels.push(level);
                }
            }
            Err(problem) => problems.push(row.line, problem),
        }
    }
    problems.check(path)?;
    Ok(levels)
}

fn parse_row(row: &Row<3>, catalog: &Catalog) -> Result<StockLevel, RowProblem> {
    let [part, depot, on_hand] = &row.fields;
    let part = catalog
        .part(required("part", part)?)
        .ok_or_else(|| RowProblem::UnknownPart { part: part.clone() })?
        .id
        .clone();
    let depot = Depot::new(depot)?;
    let bad_count = || RowProblem::BadCount {
        value: on_hand.clone(),
    };
    // Digits only: `+5`, `5.0` and `1e3` are not how a stock count is
    // written, and the database keeps a signed 64-bit count.
    if !on_hand.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_count());
    }
    let on_hand = required("on_hand", on_hand)?
        .parse::<i64>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(bad_count)?;
    Ok(StockLevel {
        part,
        depot,
        on_hand,
    })
}
