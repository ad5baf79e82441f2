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
use serde::Deserialize;

use super::error::ApiError;
use super::{ApiQuery, ApiState, blocking};
use crate::http::auth::Scope;
use crate::query::alerts::{self, AlertView};
use crate::query::archive::{self, DeadLetter};

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

async fn alerts(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    let limit = i64::from(q.limit()?);
    let views = alerts::recent(&state.db, scope.fleets_visible(), limit).await?;
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
        let store = archive::open(&st.store)?;
        Ok(archive::dead_letters(
            &store,
            &st.config.mqtt.topic_prefix,
            fleets.as_deref(),
            limit,
        )?)
    })
    .await?;
    Ok(scope.filter(rows, |d| d.fleet.as_ref()))
}
