//! `GET /alerts` (the alert log, newest first) and `GET /dead-letters`
//! (rejected input with reasons, newest first), each scoped to the
//! caller's fleets, in pages ([`super::page`]).
//!
//! An alert without a fleet (a batch defect across fleets) and a dead
//! letter whose topic names no valid fleet are shown only to roles that see
//! every fleet: they cannot be attributed to an operator.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use fleetcare_ingest::ids::FleetId;

use super::error::ApiError;
use super::page::{AlertKey, DeadLetterKey, PageParams};
use super::{ApiState, blocking};
use crate::http::auth::Scope;
use crate::query::alerts;
use crate::query::archive::{self, DeadLetter};

pub(super) fn alert_routes() -> Router<ApiState> {
    Router::new().route("/alerts", get(alerts))
}

pub(super) fn dead_letter_routes() -> Router<ApiState> {
    Router::new().route("/dead-letters", get(dead_letters))
}

/// `GET /alerts`: a page of the alert log, newest first.
async fn alerts(
    State(state): State<ApiState>,
    scope: Scope,
    page: PageParams,
) -> Result<Response, ApiError> {
    let after = page.after::<AlertKey>()?;
    let before = after.as_ref().map(|k| (k.at.as_str(), k.id.as_str()));
    let fetch = i64::try_from(page.fetch()).unwrap_or(i64::MAX);
    let views = alerts::recent(&state.db, scope.fleets_visible(), before, fetch).await?;
    // The query already limited the rows to the scope; filtering again
    // keeps the scope the one authority over what is shown.
    let (rows, next) = page.cut(scope.filter(views, |a| a.fleet.as_ref()), |rows| {
        rows.last().map(|a| AlertKey {
            at: a.at.clone(),
            id: a.id.clone(),
        })
    });
    Ok(page.respond(rows, next))
}

/// `GET /dead-letters`: a page of rejected input, newest first.
async fn dead_letters(
    State(state): State<ApiState>,
    scope: Scope,
    page: PageParams,
) -> Result<Response, ApiError> {
    let after = page.after::<DeadLetterKey>()?;
    let rows = visible_dead_letters(&state, &scope, after, page.fetch()).await?;
    let (rows, next) = page.cut(rows, |rows| {
        let last = rows.last()?;
        // The rows of the last one's instant on this page, and those of the
        // same instant before it.
        let on_page = rows
            .iter()
            .filter(|d| d.received_us == last.received_us)
            .count();
        let before = after
            .filter(|a| a.received_us == last.received_us)
            .map_or(0, |a| a.skip);
        Some(DeadLetterKey {
            received_us: last.received_us,
            skip: before + on_page,
        })
    });
    Ok(page.respond(rows, next))
}

/// The newest `limit` dead letters the caller may see after `after`
/// (`GET /dead-letters`, the web UI's health page).
pub(crate) async fn visible_dead_letters(
    state: &ApiState,
    scope: &Scope,
    after: Option<DeadLetterKey>,
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
            after.map(|a| (a.received_us, a.skip)),
            limit,
        )?)
    })
    .await?;
    Ok(scope.filter(rows, |d| d.fleet.as_ref()))
}
