//! The fleets and their language (C10, issue 21 item 9): filled by
//! `fleetcare fleets import`; the API, the CLI and alerts give a ticket's
//! title in its fleet's language. A fleet that is not listed speaks
//! English.

use std::collections::HashMap;
use std::fmt;

use fleetcare_ingest::ids::FleetId;
use serde::{Deserialize, Serialize};

use crate::db::{Db, DbError, Result};

/// A fleet's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Language {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

impl Language {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhCn => "zh-CN",
        }
    }

    /// `en` or `zh-CN`, as C10 writes them.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "en" => Some(Self::En),
            "zh-CN" => Some(Self::ZhCn),
            _ => None,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One fleet of the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fleet {
    pub id: FleetId,
    pub name: String,
    pub language: Language,
}

fn corrupt(column: &'static str, value: &str, reason: impl fmt::Display) -> DbError {
    DbError::Corrupt {
        table: "fleets",
        column,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

/// Every registered fleet, by id.
pub(crate) async fn fleets_in(conn: &mut sqlx::AnyConnection) -> Result<Vec<Fleet>> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT fleet_id, name, language FROM fleets ORDER BY fleet_id")
            .fetch_all(&mut *conn)
            .await?;
    rows.into_iter()
        .map(|(id, name, language)| {
            Ok(Fleet {
                id: FleetId::new(&id).map_err(|e| corrupt("fleet_id", &id, e))?,
                name,
                language: Language::parse(&language)
                    .ok_or_else(|| corrupt("language", &language, "not en or zh-CN"))?,
            })
        })
        .collect()
}

pub(crate) async fn upsert_in(conn: &mut sqlx::AnyConnection, f: &Fleet) -> Result<()> {
    sqlx::query(
        "INSERT INTO fleets (fleet_id, name, language) VALUES ($1, $2, $3) \
         ON CONFLICT (fleet_id) DO UPDATE SET name = excluded.name, language = excluded.language",
    )
    .bind(f.id.as_str())
    .bind(&f.name)
    .bind(f.language.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Each registered fleet's language (fleets not in the map speak English).
pub async fn languages(db: &Db) -> Result<HashMap<FleetId, Language>> {
    let mut conn = db.pool().acquire().await?;
    Ok(fleets_in(&mut conn)
        .await?
        .into_iter()
        .map(|f| (f.id, f.language))
        .collect())
}

/// One fleet's language: English when it is not registered.
pub async fn language(db: &Db, fleet: &FleetId) -> Result<Language> {
    let row: Option<(String,)> = sqlx::query_as("SELECT language FROM fleets WHERE fleet_id = $1")
        .bind(fleet.as_str())
        .fetch_optional(db.pool())
        .await?;
    match row {
        None => Ok(Language::En),
        Some((l,)) => Language::parse(&l).ok_or_else(|| corrupt("language", &l, "not en or zh-CN")),
    }
}
