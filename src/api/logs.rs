//! `GET /alerts` (the alert log, newest first) and `GET /dead-letters`
//! (rejected input with reasons, newest first), each scoped to the
//! caller's fleets.
//!
//! An alert without a fleet (a batch defect across fleets) and a dead
//! letter whose topic names no valid fleet are shown only to roles that see
//! every fleet: they cannot be attributed to an operator.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use fleetcare_ingest::ids::FleetId;
use serde::{Deserialize, Serialize};

use super::access::Scope;
use super::archive::{self, DeadLetter};
use super::error::ApiError;
use super::{ApiQuery, ApiState, blocking};
use crate::db::DbError;

/// Rows a list returns unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 100;
/// The most rows one request may ask for.
const MAX_LIMIT: u32 = 1000;

pub(super) fn alert_routes() -> Router<ApiState> {
    Router::new().route("/alerts", get(alerts))
}

pub(super) fn dead_letter_routes() -> Router<ApiState> {
    Router::new().route("/dead-letters", get(dead_letters))
}

#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    limit: Option<u32>,
}

impl ListQuery {
    fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n @ 1..=MAX_LIMIT) => Ok(n),
            Some(n) => Err(ApiError::BadRequest(format!(
                "limit {n} is out of range; give 1 to {MAX_LIMIT}"
            ))),
        }
    }
}

/// One alert as it was raised.
#[derive(Debug, Serialize)]
pub(crate) struct AlertView {
    id: String,
    at: String,
    /// Null for an alert across fleets (or a stored fleet id that is not
    /// valid: then nothing can attribute it to an operator).
    fleet: Option<FleetId>,
    vehicle: Option<String>,
    kind: String,
    ticket: Option<i64>,
    title: String,
    /// The alert as published (JSON); a string if it is not JSON.
    body: serde_json::Value,
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

async fn alerts(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    let limit = i64::from(q.limit()?);
    let columns =
        "SELECT alert_id, at, fleet_id, vehicle_id, kind, ticket_id, title, body FROM alerts";
    let rows: Vec<AlertRow> = match scope.fleets_visible() {
        None => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{columns} ORDER BY at DESC, alert_id DESC LIMIT $1"
            )))
            .bind(limit)
            .fetch_all(state.db.pool())
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
            query.fetch_all(state.db.pool()).await
        }
    }
    .map_err(DbError::from)?;
    let views: Vec<AlertView> = rows
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
        .collect();
    // The query already limited the rows to the scope; filtering again
    // keeps the scope the one authority over what is shown.
    Ok(Json(scope.filter(views, |a| a.fleet.as_ref())))
}

async fn dead_letters(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<DeadLetter>>, ApiError> {
    Ok(Json(
        visible_dead_letters(&state, &scope, q.limit()? as usize).await?,
    ))
}

/// The newest `limit` dead letters the caller may see (`GET /dead-letters`).
pub(crate) async fn visible_dead_letters(
    state: &ApiState,
    scope: &Scope,
    limit: usize,
) -> Result<Vec<DeadLetter>, ApiError> {
    let fleets = scope.fleets_visible().map(<[FleetId]>::to_vec);
    let st = state.clone();
    let rows = blocking(move || {
        let store = archive::open(&st.config)?;
        archive::dead_letters(
            &store,
            &st.config.mqtt.topic_prefix,
            fleets.as_deref(),
            limit,
        )
    })
    .await?;
    Ok(scope.filter(rows, |d| d.fleet.as_ref()))
}
