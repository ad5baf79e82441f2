//! `fleetcare stock import FILE`: parts on the shelf per depot, for the
//! parts forecast's shortfall.

use std::collections::HashMap;
use std::path::Path;

use super::table::{self, Problems, Row};
use super::{ImportSummary, Kind, required};
use crate::catalog::{Catalog, PartId};
use crate::db::Db;
use crate::registry::error::{Result, RowProblem};
use crate::registry::queries;
use crate::registry::types::{Depot, StockLevel};

/// The contract's columns (C4).
pub const COLUMNS: [&str; 3] = ["part", "depot", "on_hand"];

/// Imports `path`: each row sets the count of one part at one depot. Parts
/// and depots the file does not list keep their count, so a depot can send
/// its own file.
pub async fn import_stock(db: &Db, catalog: &Catalog, path: &Path) -> Result<ImportSummary> {
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

    let mut tx = db.pool().begin().await?;
    let stored: HashMap<(PartId, Depot), u64> = queries::stock(&mut *tx)
        .await?
        .into_iter()
        .map(|s| ((s.part, s.depot), s.on_hand))
        .collect();
    let mut summary = ImportSummary {
        kind: Kind::Stock,
        path: path.to_path_buf(),
        new: 0,
        updated: 0,
        unchanged: 0,
    };
    for level in &levels {
        match stored.get(&(level.part.clone(), level.depot.clone())) {
            Some(&on_hand) if on_hand == level.on_hand => {
                summary.unchanged += 1;
                continue;
            }
            Some(_) => summary.updated += 1,
            None => summary.new += 1,
        }
        queries::upsert_stock(&mut *tx, level).await?;
    }
    tx.commit().await?;
    Ok(summary)
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
