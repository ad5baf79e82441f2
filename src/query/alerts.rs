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
/// those of none); with `before` (`at`, alert id), only those after it in
/// the newest-first order (the next page of a list).
pub(crate) async fn recent(
    db: &Db,
    fleets: Option<&[FleetId]>,
    before: Option<(&str, &str)>,
    limit: i64,
) -> Result<Vec<AlertView>, QueryError> {
    let mut clauses = Vec::new();
    let mut values: Vec<&str> = Vec::new();
    if let Some(fleets) = fleets {
        // Operators have a handful of fleets: one placeholder each.
        let first = values.len() + 1;
        values.extend(fleets.iter().map(FleetId::as_str));
        let marks: Vec<String> = (first..=values.len()).map(|i| format!("${i}")).collect();
        clauses.push(if marks.is_empty() {
            "fleet_id IN (NULL)".to_owned()
        } else {
            format!("fleet_id IN ({})", marks.join(", "))
        });
    }
    if let Some((at, id)) = before {
        values.push(at);
        values.push(id);
        let (a, i) = (values.len() - 1, values.len());
        clauses.push(format!("(at < ${a} OR (at = ${a} AND alert_id < ${i}))"));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    // Fixed fragments and numbered placeholders only; every value is bound.
    let sql = format!(
        "SELECT alert_id, at, fleet_id, vehicle_id, kind, ticket_id, title, body FROM alerts\
         {filter} ORDER BY at DESC, alert_id DESC LIMIT ${}",
        values.len() + 1
    );
    let mut query = sqlx::query_as::<_, AlertRow>(sqlx::AssertSqlSafe(sql));
    for v in values {
        query = query.bind(v);
    }
    let rows: Vec<AlertRow> = query
        .bind(limit)
        .fetch_all(db.pool())
        .await
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
