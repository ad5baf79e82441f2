//! `fleetcare outlets import FILE` (C10): own workshops and contracted
//! partners, each with its zone and the depots it serves. All or nothing,
//! like the C4 imports; a listed outlet's depots are replaced by the
//! file's, outlets the file does not list are kept.

use std::collections::HashMap;
use std::path::Path;

use super::table::{self, Problems, Row};
use super::{ImportSummary, Kind, required};
use crate::db::Db;
use crate::registry::error::{Result, RowProblem};
use crate::registry::outlets::{self, Outlet, OutletId, OutletKind, Zone};
use crate::registry::types::Depot;

/// The contract's columns (C10).
pub const COLUMNS: [&str; 6] = ["outlet_id", "name", "kind", "zone", "depots", "phone"];

/// Longest outlet name and phone number accepted.
const MAX_NAME: usize = 200;
const MAX_PHONE: usize = 40;

/// Imports `path` (see the module documentation).
pub async fn import_outlets(db: &Db, path: &Path) -> Result<ImportSummary> {
    let mut problems = Problems::default();
    let rows = table::read(path, COLUMNS, &mut problems)?;
    let parsed = table::parse_keyed(
        &rows,
        &mut problems,
        parse_row,
        |outlet: &Outlet| outlet.id.clone(),
        |id, first_line| RowProblem::DuplicateOutlet {
            outlet: id.to_string(),
            first_line,
        },
    );
    problems.check(path)?;

    let mut tx = db.pool().begin().await?;
    let stored: HashMap<OutletId, Outlet> = outlets::outlets_in(&mut tx)
        .await?
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect();
    let mut summary = ImportSummary::empty(Kind::Outlets, path);
    for outlet in &parsed {
        if summary.count(stored.get(&outlet.id), outlet) {
            outlets::upsert_in(&mut tx, outlet).await?;
        }
    }
    tx.commit().await?;
    Ok(summary)
}

fn parse_row(row: &Row<6>) -> Result<Outlet, RowProblem> {
    let [id, name, kind, zone, depots, phone] = &row.fields;
    let id = OutletId::new(required("outlet_id", id)?).map_err(|reason| RowProblem::BadId {
        column: "outlet_id",
        value: id.clone(),
        reason,
    })?;
    let name = required("name", name)?;
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(RowProblem::BadText {
            column: "name",
            max: MAX_NAME,
        });
    }
    let kind = OutletKind::parse(required("kind", kind)?).ok_or_else(|| RowProblem::BadChoice {
        column: "kind",
        value: kind.clone(),
        expected: "own or partner",
    })?;
    let zone = Zone::parse(required("zone", zone)?).ok_or_else(|| RowProblem::BadChoice {
        column: "zone",
        value: zone.clone(),
        expected: "city or rural",
    })?;
    let mut served: Vec<String> = Vec::new();
    for d in required("depots", depots)?.split_whitespace() {
        let depot = Depot::new(d)?;
        if !served.iter().any(|s| s == depot.as_str()) {
            served.push(depot.as_str().to_owned());
        }
    }
    served.sort();
    let phone = (!phone.is_empty()).then(|| phone.clone());
    if let Some(p) = &phone
        && (p.chars().count() > MAX_PHONE || p.chars().any(char::is_control))
    {
        return Err(RowProblem::BadText {
            column: "phone",
            max: MAX_PHONE,
        });
    }
    Ok(Outlet {
        id,
        name: name.to_owned(),
        kind,
        zone,
        depots: served,
        phone,
    })
}
