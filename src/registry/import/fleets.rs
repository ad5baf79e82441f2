//! `fleetcare fleets import FILE` (C10): `fleet_id,name,language`, the
//! language `en` or `zh-CN` (empty: `en`). All or nothing, like the other
//! imports; fleets the file does not list are kept.

use std::collections::HashMap;
use std::path::Path;

use fleetcare_ingest::ids::FleetId;

use super::table::{self, Problems, Row};
use super::{ImportSummary, Kind, required};
use crate::db::Db;
use crate::registry::error::{Result, RowProblem};
use crate::registry::fleets::{self, Fleet, Language};

/// The contract's columns (C10).
pub const COLUMNS: [&str; 3] = ["fleet_id", "name", "language"];

/// Longest fleet name accepted.
const MAX_NAME: usize = 200;

/// Imports `path` (see the module documentation).
pub async fn import_fleets(db: &Db, path: &Path) -> Result<ImportSummary> {
    let mut problems = Problems::default();
    let rows = table::read(path, COLUMNS, &mut problems)?;
    let parsed = table::parse_keyed(
        &rows,
        &mut problems,
        parse_row,
        |fleet: &Fleet| fleet.id.clone(),
        |id, first_line| RowProblem::DuplicateFleet {
            fleet: id.to_string(),
            first_line,
        },
    );
    problems.check(path)?;

    let mut tx = db.pool().begin().await?;
    let stored: HashMap<FleetId, Fleet> = fleets::fleets_in(&mut tx)
        .await?
        .into_iter()
        .map(|f| (f.id.clone(), f))
        .collect();
    let mut summary = ImportSummary::empty(Kind::Fleets, path);
    for fleet in &parsed {
        if summary.count(stored.get(&fleet.id), fleet) {
            fleets::upsert_in(&mut tx, fleet).await?;
        }
    }
    tx.commit().await?;
    Ok(summary)
}

fn parse_row(row: &Row<3>) -> Result<Fleet, RowProblem> {
    let [id, name, language] = &row.fields;
    let id = FleetId::new(required("fleet_id", id)?).map_err(|reason| RowProblem::BadId {
        column: "fleet_id",
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
    let language = if language.is_empty() {
        Language::En
    } else {
        Language::parse(language).ok_or_else(|| RowProblem::BadChoice {
            column: "language",
            value: language.clone(),
            expected: "en or zh-CN",
        })?
    };
    Ok(Fleet {
        id,
        name: name.to_owned(),
        language,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::db_tests;
    use crate::registry::ImportError;
    use crate::registry::fleets::{language, languages};

    db_tests!(fleets_import_with_languages_and_refuse_bad_rows_whole);

    async fn fleets_import_with_languages_and_refuse_bad_rows_whole(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleets.csv");
        std::fs::write(
            &path,
            "fleet_id,name,language\nacme,Acme Sanitation,en\nsz,深圳环卫,fr\nacme,again,en\n",
        )
        .unwrap();
        let Err(ImportError::Rows { rows, .. }) = import_fleets(&db, &path).await else {
            panic!("bad rows must be refused");
        };
        let lines: Vec<(u64, String)> = rows
            .iter()
            .map(|r| (r.line, r.problem.to_string()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    3,
                    "language \"fr\" is not en or zh-CN; use one of those".to_owned()
                ),
                (
                    4,
                    "fleet \"acme\" is already on line 2; list each fleet once".to_owned()
                )
            ]
        );
        assert!(languages(&db).await.unwrap().is_empty(), "nothing applied");

        std::fs::write(
            &path,
            "fleet_id,name,language\nacme,Acme Sanitation,\nsz,深圳环卫,zh-CN\n",
        )
        .unwrap();
        let summary = import_fleets(&db, &path).await.unwrap();
        assert_eq!((summary.new, summary.updated, summary.unchanged), (2, 0, 0));
        assert!(summary.to_string().starts_with("imported 2 fleets (2 new"));
        let fleet = |f: &str| FleetId::new(f).unwrap();
        assert_eq!(language(&db, &fleet("sz")).await.unwrap(), Language::ZhCn);
        assert_eq!(language(&db, &fleet("acme")).await.unwrap(), Language::En);
        assert_eq!(language(&db, &fleet("other")).await.unwrap(), Language::En);
        let again = import_fleets(&db, &path).await.unwrap();
        assert_eq!(again.unchanged, 2);
    }
}
