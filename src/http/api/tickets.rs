//! `GET /tickets`, `GET /tickets/{id}`, `POST /tickets` (complaints and
//! manual reports) and `POST /tickets/{id}/transitions` (C7, C8).
//!
//! A filter given empty (`?vehicle=`) is a bad request, as the OpenAPI
//! document says, not "no filter". Filters only narrow what the scope shows: `?fleet=` of a fleet the
//! caller cannot see gives an empty list, as for a fleet with no tickets.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use serde::Deserialize;

use super::error::ApiError;
use super::vehicles::visible_vehicle;
use super::{ApiJson, ApiPath, ApiQuery, ApiState};
use crate::http::auth::Scope;
use crate::tickets::{
    Ticket, TicketError, TicketFilter, TicketId, TicketKind, TicketState, TicketWithEvents,
    Transition,
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/tickets", get(list).post(create))
        .route("/tickets/{id}", get(show))
        .route("/tickets/{id}/transitions", post(transition))
}

/// A ticket error as the API answers it.
pub(crate) fn error(e: TicketError) -> ApiError {
    match e {
        TicketError::NotFound(_) => ApiError::NotFound("ticket".to_owned()),
        // The refusal names the allowed moves (C8).
        TicketError::Refused { .. } => ApiError::Conflict(e.to_string()),
        TicketError::Db(db) => ApiError::Db(db),
        e if e.is_client_error() => ApiError::Unprocessable(e.to_string()),
        e => ApiError::Internal(e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<String>,
    kind: Option<String>,
    fleet: Option<String>,
    vehicle: Option<String>,
}

fn parse<T: std::str::FromStr>(value: Option<&str>) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    value
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| ApiError::BadRequest(e.to_string()))
        })
        .transpose()
}

async fn list(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Ticket>>, ApiError> {
    let id = |what: &str, v: &str| {
        format!("{what} {v:?} is not an id of 1-64 letters, digits, '_', '.' or '-'")
    };
    let filter = TicketFilter {
        state: parse::<TicketState>(q.state.as_deref())?,
        kind: parse::<TicketKind>(q.kind.as_deref())?,
        fleet: q
            .fleet
            .as_deref()
            .map(|v| FleetId::new(v).map_err(|_| ApiError::BadRequest(id("fleet", v))))
            .transpose()?,
        vehicle: q
            .vehicle
            .as_deref()
            .map(|v| VehicleId::new(v).map_err(|_| ApiError::BadRequest(id("vehicle", v))))
            .transpose()?,
        fleets_visible: None,
    };
    Ok(Json(visible_tickets(&state, &scope, filter).await?))
}

/// The tickets `filter` lets through among those the caller may see,
/// newest first (`GET /tickets`, the web UI's ticket board).
pub(crate) async fn visible_tickets(
    state: &ApiState,
    scope: &Scope,
    filter: TicketFilter,
) -> Result<Vec<Ticket>, ApiError> {
    let filter = TicketFilter {
        fleets_visible: scope.fleets_visible().map(<[_]>::to_vec),
        ..filter
    };
    let tickets = state.tickets.list(&filter).await.map_err(error)?;
    Ok(scope.filter(tickets, |t| t.fleet.as_ref()))
}

/// The ticket `id` if it exists and the caller may see it.
pub(crate) async fn visible_ticket(
    state: &ApiState,
    scope: &Scope,
    id: &str,
) -> Result<TicketWithEvents, ApiError> {
    let not_found = || ApiError::NotFound("ticket".to_owned());
    let id = id.parse::<TicketId>().map_err(|_| not_found())?;
    let (ticket, events) = state
        .tickets
        .get(id)
        .await
        .map_err(error)?
        .ok_or_else(not_found)?;
    scope.check_fleet(ticket.fleet.as_ref(), "ticket")?;
    Ok(TicketWithEvents { ticket, events })
}

async fn show(
    State(state): State<ApiState>,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TicketWithEvents>, ApiError> {
    Ok(Json(visible_ticket(&state, &scope, &id).await?))
}

/// `POST /tickets`: a complaint or a manual report about a vehicle.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTicket {
    vehicle: String,
    kind: TicketKind,
    title: String,
    #[serde(default)]
    details: String,
}

async fn create(
    State(state): State<ApiState>,
    scope: Scope,
    ApiJson(body): ApiJson<NewTicket>,
) -> Result<(StatusCode, Json<Ticket>), ApiError> {
    if !matches!(body.kind, TicketKind::Complaint | TicketKind::Manual) {
        return Err(ApiError::Unprocessable(format!(
            "{} tickets are opened by alerts; create only complaint or manual tickets",
            body.kind
        )));
    }
    if body.title.trim().is_empty() {
        return Err(ApiError::Unprocessable(
            "title is empty; say what the problem is".to_owned(),
        ));
    }
    let vehicle = visible_vehicle(&state, &scope, &body.vehicle).await?;
    let ticket = state
        .tickets
        .create(
            body.kind,
            vehicle.fleet,
            vehicle.id,
            Some(vehicle.model),
            body.title,
            body.details,
            scope.actor(),
            Utc::now(),
        )
        .await
        .map_err(error)?;
    tracing::info!(ticket = %ticket.id, kind = %ticket.kind, "Ticket created through the API.");
    Ok((StatusCode::CREATED, Json(ticket)))
}

async fn transition(
    State(state): State<ApiState>,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Transition>,
) -> Result<Json<Ticket>, ApiError> {
    Ok(Json(move_ticket(&state, &scope, &id, body).await?))
}

/// Moves ticket `id` as the caller (`POST /tickets/{id}/transitions`, the
/// web UI's move forms); 404 unless the caller may see it.
pub(crate) async fn move_ticket(
    state: &ApiState,
    scope: &Scope,
    id: &str,
    transition: Transition,
) -> Result<Ticket, ApiError> {
    let current = visible_ticket(state, scope, id).await?;
    state
        .tickets
        .transition(current.ticket.id, transition, scope.actor(), Utc::now())
        .await
        .map_err(error)
}
