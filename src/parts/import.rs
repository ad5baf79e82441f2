//! The ledger's CSV imports (C11): counts (`stock import`, booked as
//! adjustments), receipts (`stock receive`) and orders (`stock order`).
//!
//! Like the registry's imports, a file is all or nothing: every row is
//! checked, then checked again against the ledger inside the transaction
//! that books it, and one refused row refuses the file with every refused
//! row named (`FILE:LINE: what to fix`). Importing a file again changes
//! nothing: a count equal to the stock books nothing, a receipt or order
//! line already booked with the same values is unchanged.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};

use super::ledger::{self, append, begin_write, on_hand_in};
use super::{MovementKind, NewMovement, day_start, valid_reference};
use crate::catalog::{Catalog, PartId};
use crate::db::Db;
use crate::registry::import::{Kind, Problems, Row, parse_date, required, table};
use crate::registry::{Depot, ImportError, ImportSummary, RowProblem};

/// The columns of `stock receive` (C11).
pub const RECEIPT_COLUMNS: [&str; 5] = ["part", "depot", "qty", "reference", "received_on"];
/// The columns of `stock order`.
pub const ORDER_COLUMNS: [&str; 5] = ["part", "depot", "qty", "reference", "ordered_on"];

fn summary(kind: Kind, path: &Path) -> ImportSummary {
    ImportSummary {
        kind,
        path: path.to_path_buf(),
        new: 0,
        updated: 0,
        unchanged: 0,
    }
}

/// The name a file's movements are referenced by: `count:stock.csv`.
fn file_reference(path: &Path) -> String {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    name.chars().take(super::MAX_REFERENCE_LEN).collect()
}

/// `stock import FILE`: each row is a count of one part at one depot,
/// booked as an `adjust` movement of the difference to the ledger's stock
/// (a first count of a part at a depot is booked even when zero, so the
/// depot counts as stocked). `new`: first count there; `updated`: the
/// count differed; `unchanged`: it matched.
pub async fn import_counts(
    db: &Db,
    catalog: &Catalog,
    path: &Path,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<ImportSummary, ImportError> {
    let levels = crate::registry::read_counts(catalog, path)?;
    let reference = format!("count:{}", file_reference(path));
    let mut out = summary(Kind::Stock, path);
    let mut tx = begin_write(db).await?;
    let mut moves = Vec::new();
    for level in &levels {
        let (stock, known) = on_hand_in(&mut tx, &level.part, &level.depot).await?;
        let count = i64::try_from(level.on_hand).unwrap_or(i64::MAX);
        match (known, count - stock) {
            (true, 0) => {
                out.unchanged += 1;
                continue;
            }
            (true, _) => out.updated += 1,
            (false, _) => out.new += 1,
        }
        moves.push(NewMovement {
            part: level.part.clone(),
            depot: level.depot.clone(),
            kind: MovementKind::Adjust,
            qty: count - stock,
            at,
            reference: reference.clone(),
            actor: actor.to_owned(),
        });
    }
    append(&mut tx, &moves).await?;
    tx.commit().await?;
    Ok(out)
}

/// One checked row of a receipts or orders file.
#[derive(Debug)]
struct Line {
    line: u64,
    part: PartId,
    depot: Depot,
    qty: i64,
    reference: String,
    on: NaiveDate,
}

/// Reads a receipts or orders file: `date_column` is its date's column.
fn read_lines(
    catalog: &Catalog,
    path: &Path,
    columns: [&'static str; 5],
    date_column: &'static str,
    today: NaiveDate,
) -> Result<Vec<Line>, ImportError> {
    let mut problems = Problems::default();
    let rows = table::read(path, columns, &mut problems)?;
    let mut lines: Vec<Line> = Vec::with_capacity(rows.len());
    let mut first: HashMap<(String, PartId, Depot), u64> = HashMap::new();
    for row in &rows {
        match parse_line(row, catalog, date_column, today) {
            Ok(l) => {
                let key = (l.reference.clone(), l.part.clone(), l.depot.clone());
                if let Some(&first_line) = first.get(&key) {
                    problems.push(
                        row.line,
                        RowProblem::DuplicateLine {
                            part: l.part.to_string(),
                            depot: l.depot.to_string(),
                            reference: l.reference,
                            first_line,
                        },
                    );
                } else {
                    first.insert(key, row.line);
                    lines.push(l);
                }
            }
            Err(p) => problems.push(row.line, p),
        }
    }
    problems.check(path)?;
    Ok(lines)
}

fn parse_line(
    row: &Row<5>,
    catalog: &Catalog,
    date_column: &'static str,
    today: NaiveDate,
) -> Result<Line, RowProblem> {
    let [part, depot, qty, reference, on] = &row.fields;
    let part = catalog
        .part(required("part", part)?)
        .ok_or_else(|| RowProblem::UnknownPart { part: part.clone() })?
        .id
        .clone();
    let depot = Depot::new(depot)?;
    let bad_qty = || RowProblem::BadQty { value: qty.clone() };
    if !qty.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_qty());
    }
    let qty = required("qty", qty)?
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=i64::from(u32::MAX)).contains(n))
        .ok_or_else(bad_qty)?;
    let reference = required("reference", reference)?;
    if !valid_reference(reference) {
        return Err(RowProblem::BadReference {
            value: reference.to_owned(),
        });
    }
    let on_date = parse_date(date_column, required(date_column, on)?)?;
    if on_date > today {
        return Err(RowProblem::FutureDate {
            column: date_column,
            value: on.clone(),
        });
    }
    Ok(Line {
        line: row.line,
        part,
        depot,
        qty,
        reference: reference.to_owned(),
        on: on_date,
    })
}

/// `stock receive FILE`: each row books a `receipt` movement on its
/// `received_on` day, reference `order:REF`, and closes the open order
/// line with that reference for the part and depot. A line received
/// before with the same quantity is unchanged; with another quantity it is
/// refused (a second delivery needs its own reference).
pub async fn import_receipts(
    db: &Db,
    catalog: &Catalog,
    path: &Path,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ImportSummary, ImportError> {
    let lines = read_lines(
        catalog,
        path,
        RECEIPT_COLUMNS,
        "received_on",
        now.date_naive(),
    )?;
    let mut out = summary(Kind::Receipts, path);
    let mut tx = begin_write(db).await?;
    let mut problems = Problems::default();
    let mut moves = Vec::new();
    let mut to_close = Vec::new();
    for l in &lines {
        let reference = format!("order:{}", l.reference);
        match ledger::received(&mut tx, &reference, &l.part, &l.depot).await? {
            Some(q) if q == l.qty => out.unchanged += 1,
            Some(stored) => problems.push(
                l.line,
                RowProblem::AlreadyReceived {
                    reference: l.reference.clone(),
                    part: l.part.to_string(),
                    depot: l.depot.to_string(),
                    stored,
                },
            ),
            None => {
                out.new += 1;
                moves.push(NewMovement {
                    part: l.part.clone(),
                    depot: l.depot.clone(),
                    kind: MovementKind::Receipt,
                    qty: l.qty,
                    at: day_start(l.on),
                    reference,
                    actor: actor.to_owned(),
                });
                to_close.push(l);
            }
        }
    }
    // Dropping the transaction rolls it back.
    problems.check(path)?;
    append(&mut tx, &moves).await?;
    for l in to_close {
        ledger::close_order(&mut tx, &l.reference, &l.part, &l.depot, day_start(l.on)).await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// `stock order FILE`: each row places an order line (reference, part,
/// depot), counted as `on_order` until a receipt with its reference
/// arrives. An open line may be changed by importing it again; a received
/// one is refused.
pub async fn import_orders(
    db: &Db,
    catalog: &Catalog,
    path: &Path,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ImportSummary, ImportError> {
    let lines = read_lines(catalog, path, ORDER_COLUMNS, "ordered_on", now.date_naive())?;
    let mut out = summary(Kind::Orders, path);
    let mut tx = begin_write(db).await?;
    let mut problems = Problems::default();
    let mut writes = Vec::new();
    for l in &lines {
        let on = super::time_text(day_start(l.on));
        match ledger::order_line(&mut tx, &l.reference, &l.part, &l.depot).await? {
            Some((_, _, true)) => problems.push(
                l.line,
                RowProblem::OrderClosed {
                    reference: l.reference.clone(),
                    part: l.part.to_string(),
                    depot: l.depot.to_string(),
                },
            ),
            Some((qty, stored_on, false)) if qty == l.qty && stored_on == on => {
                out.unchanged += 1;
            }
            Some(_) => {
                out.updated += 1;
                writes.push(l);
            }
            None => {
                out.new += 1;
                writes.push(l);
            }
        }
    }
    problems.check(path)?;
    for l in writes {
        ledger::upsert_order(&mut tx, &l.reference, &l.part, &l.depot, l.qty, l.on, actor).await?;
    }
    tx.commit().await?;
    Ok(out)
}
