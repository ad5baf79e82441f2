//! The register of service outlets (C10): the maker's own workshops and
//! contracted partners, each in a city or rural zone, serving depots.
//! Filled by `fleetcare outlets import`; dispatch names one of them, and
//! the one serving the vehicle's depot is proposed.

use std::fmt;

use fleetcare_ingest::ids::{IdError, VehicleId};
use serde::Serialize;
use sqlx::{Any, Executor};

use super::types::Depot;
use crate::db::{Db, DbError, Result};

/// An outlet id: 1–64 characters of `[A-Za-z0-9_.-]`, like every other id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OutletId(String);

impl OutletId {
    pub fn new(s: &str) -> std::result::Result<Self, IdError> {
        fleetcare_ingest::ids::check(s)?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OutletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Own workshop or contracted partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutletKind {
    Own,
    Partner,
}

impl OutletKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Own => "own",
            Self::Partner => "partner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "own" => Some(Self::Own),
            "partner" => Some(Self::Partner),
            _ => None,
        }
    }
}

/// Where an outlet works, which sets how soon it must be on site (C10:
/// one working day in the city, two in rural areas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    City,
    Rural,
}

impl Zone {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::City => "city",
            Self::Rural => "rural",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "city" => Some(Self::City),
            "rural" => Some(Self::Rural),
            _ => None,
        }
    }
}

/// One registered outlet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outlet {
    #[serde(rename = "outlet_id")]
    pub id: OutletId,
    pub name: String,
    pub kind: OutletKind,
    pub zone: Zone,
    /// The depots it serves, in name order; at least one.
    pub depots: Vec<String>,
    pub phone: Option<String>,
}

type OutletRow = (String, String, String, String, Option<String>);

fn corrupt(column: &'static str, value: &str, reason: impl fmt::Display) -> DbError {
    DbError::Corrupt {
        table: "outlets",
        column,
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

fn outlet_from_row(
    (id, name, kind, zone, phone): OutletRow,
    depots: Vec<String>,
) -> Result<Outlet> {
    Ok(Outlet {
        id: OutletId::new(&id).map_err(|e| corrupt("outlet_id", &id, e))?,
        name,
        kind: OutletKind::parse(&kind)
            .ok_or_else(|| corrupt("kind", &kind, "not own or partner"))?,
        zone: Zone::parse(&zone).ok_or_else(|| corrupt("zone", &zone, "not city or rural"))?,
        depots,
        phone,
    })
}

/// The depots of the outlets `ids`.
async fn depots_of<'e, E>(e: E, ids: &[String]) -> Result<Vec<(String, String)>>
where
    E: Executor<'e, Database = Any>,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
    // Numbered placeholders only; every value is bound.
    let sql = format!(
        "SELECT outlet_id, depot FROM outlet_depots WHERE outlet_id IN ({}) ORDER BY outlet_id, depot",
        marks.join(", ")
    );
    let mut q = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id.as_str());
    }
    Ok(q.fetch_all(e).await?)
}

async fn with_depots(db: &Db, rows: Vec<OutletRow>) -> Result<Vec<Outlet>> {
    let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let depots = depots_of(db.pool(), &ids).await?;
    rows.into_iter()
        .map(|row| {
            let mine = depots
                .iter()
                .filter(|(o, _)| *o == row.0)
                .map(|(_, d)| d.clone())
                .collect();
            outlet_from_row(row, mine)
        })
        .collect()
}

/// At most `limit` outlets after `after`, by id.
pub async fn outlets_page(db: &Db, after: Option<&OutletId>, limit: usize) -> Result<Vec<Outlet>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows: Vec<OutletRow> = match after {
        Some(after) => {
            sqlx::query_as(
                "SELECT outlet_id, name, kind, zone, phone FROM outlets WHERE outlet_id > $1 \
                 ORDER BY outlet_id LIMIT $2",
            )
            .bind(after.as_str())
            .bind(limit)
            .fetch_all(db.pool())
            .await?
        }
        None => sqlx::query_as(
            "SELECT outlet_id, name, kind, zone, phone FROM outlets ORDER BY outlet_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(db.pool())
        .await?,
    };
    with_depots(db, rows).await
}

/// Every outlet, by id.
pub async fn outlets(db: &Db) -> Result<Vec<Outlet>> {
    outlets_page(db, None, usize::MAX).await
}

/// One outlet, if registered.
pub async fn outlet(db: &Db, id: &str) -> Result<Option<Outlet>> {
    let row: Option<OutletRow> = sqlx::query_as(
        "SELECT outlet_id, name, kind, zone, phone FROM outlets WHERE outlet_id = $1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    Ok(with_depots(db, row.into_iter().collect()).await?.pop())
}

/// Whether any outlet is registered, and whether `id` is one, inside a
/// caller's transaction (dispatch checks its outlet with it).
pub(crate) async fn outlet_known_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<(bool, bool)> {
    let (any, this): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM outlets), \
         (SELECT COUNT(*) FROM outlets WHERE outlet_id = $1)",
    )
    .bind(id)
    .fetch_one(conn)
    .await?;
    Ok((any > 0, this > 0))
}

/// The outlet proposed for work on a truck of `depot`: of those serving
/// it, an own workshop before a partner, then by id.
pub async fn outlet_for_depot(db: &Db, depot: &Depot) -> Result<Option<Outlet>> {
    let row: Option<OutletRow> = sqlx::query_as(
        "SELECT o.outlet_id, o.name, o.kind, o.zone, o.phone FROM outlets o \
         JOIN outlet_depots d ON d.outlet_id = o.outlet_id WHERE d.depot = $1 \
         ORDER BY CASE o.kind WHEN 'own' THEN 0 ELSE 1 END, o.outlet_id LIMIT 1",
    )
    .bind(depot.as_str())
    .fetch_optional(db.pool())
    .await?;
    Ok(with_depots(db, row.into_iter().collect()).await?.pop())
}

/// The outlet proposed for a vehicle: the one serving its depot.
pub async fn outlet_for_vehicle(db: &Db, vehicle: &VehicleId) -> Result<Option<Outlet>> {
    match super::vehicle(db, vehicle).await? {
        Some(v) => outlet_for_depot(db, &v.depot).await,
        None => Ok(None),
    }
}

/// The zone a ticket's on-site commitment depends on (C10, for the
/// service calendar): the zone of the registered outlet it was dispatched
/// to; before dispatch (or for an outlet not in the register) the zone of
/// the outlet serving the vehicle's depot; `None` when neither is known.
pub async fn outlet_zone(
    db: &Db,
    outlet: Option<&str>,
    vehicle: Option<&VehicleId>,
) -> Result<Option<Zone>> {
    if let Some(id) = outlet
        && let Some(o) = self::outlet(db, id).await?
    {
        return Ok(Some(o.zone));
    }
    match vehicle {
        Some(v) => Ok(outlet_for_vehicle(db, v).await?.map(|o| o.zone)),
        None => Ok(None),
    }
}

/// Replaces outlet `o` and its depots, inside an import's transaction.
pub(crate) async fn upsert_in(conn: &mut sqlx::AnyConnection, o: &Outlet) -> Result<()> {
    sqlx::query("DELETE FROM outlet_depots WHERE outlet_id = $1")
        .bind(o.id.as_str())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO outlets (outlet_id, name, kind, zone, phone) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (outlet_id) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
         zone = excluded.zone, phone = excluded.phone",
    )
    .bind(o.id.as_str())
    .bind(&o.name)
    .bind(o.kind.as_str())
    .bind(o.zone.as_str())
    .bind(o.phone.as_deref())
    .execute(&mut *conn)
    .await?;
    for depot in &o.depots {
        sqlx::query("INSERT INTO outlet_depots (outlet_id, depot) VALUES ($1, $2)")
            .bind(o.id.as_str())
            .bind(depot)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Every outlet inside a caller's transaction (an import compares with it).
pub(crate) async fn outlets_in(conn: &mut sqlx::AnyConnection) -> Result<Vec<Outlet>> {
    let rows: Vec<OutletRow> =
        sqlx::query_as("SELECT outlet_id, name, kind, zone, phone FROM outlets ORDER BY outlet_id")
            .fetch_all(&mut *conn)
            .await?;
    let depots: Vec<(String, String)> =
        sqlx::query_as("SELECT outlet_id, depot FROM outlet_depots ORDER BY outlet_id, depot")
            .fetch_all(&mut *conn)
            .await?;
    rows.into_iter()
        .map(|row| {
            let mine = depots
                .iter()
                .filter(|(o, _)| *o == row.0)
                .map(|(_, d)| d.clone())
                .collect();
            outlet_from_row(row, mine)
        })
        .collect()
}
