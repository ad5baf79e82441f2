//! The alert log (the `alerts` table the notifier writes), newest first.

use fleetcare_ingest::ids::FleetId;
use serde::Serialize;

use super::QueryError;
use crate::db::{Db, DbError};

/// One alert as it was raised.
#[derive(Debug, Serialize)]
pub(crate) struct AlertView {
    pub(crate) id: String,
    pub(crate) at: String,
    /// Null for an alert across fleets (or a stored fleet id that is not
    /// valid: then nothing can attribute it to an operator).
    pub(crate) fleet: Option<FleetId>,
    pub(crate) vehicle: Option<String>,
    pub(crate) kind: String,
    pub(crate) ticket: Option<i64>,
    pub(crate) title: String,
    /// The alert as published (JSON); a string if it is not JSON.
    pub(crate) body: serde_json::Value,
}

type AlertRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<i64>,
    String,
    String,
);

/// The newest `limit` alerts of `fleets` (`None`: of every fleet, and
/// those of none).
pub(crate) async fn recent(
    db: &Db,
    fleets: Option<&[FleetId]>,
    limit: i64,
) -> Result<Vec<AlertView>, QueryError> {
    let columns =
        "SELECT alert_id, at, fleet_id, vehicle_id, kind, ticket_id, title, body FROM alerts";
    let rows: Vec<AlertRow> = match fleets {
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{columns} ORDER BY at DESC, alert_id DESC LIMIT $1"
            )))
            .bind(limit)
            .fetch_all(db.pool())
            .await
        }
        Some(fleets) => {
            // Operators have a handful of fleets: one placeholder each.
            let placeholders: Vec<String> =
                (2..fleets.len() + 2).map(|i| format!("${i}")).collect();
            let sql = format!(
                "{columns} WHERE fleet_id IN ({}) ORDER BY at DESC, alert_id DESC LIMIT $1",
                if placeholders.is_empty() {
                    "NULL".to_owned()
                } else {
                    placeholders.join(", ")
                }
            );
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(limit);
            for f in fleets {
                query = query.bind(f.as_str());
            }
            query.fetch_all(db.pool()).await
        }
    }
    .map_err(DbError::from)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, at, fleet, vehicle, kind, ticket, title, body)| AlertView {
                body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
                id,
                at,
                fleet: fleet.and_then(|f| FleetId::new(&f).ok()),
                vehicle,
                kind,
                ticket,
                title,
            },
        )
        .collect())
}
