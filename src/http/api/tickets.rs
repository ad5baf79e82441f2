//! `GET /tickets`, `GET /tickets/{id}`, `POST /tickets` (complaints and
//! manual reports) and `POST /tickets/{id}/transitions` (C7, C8): every
//! role that may use tickets reads them and files complaints and manual
//! reports; moving one is for support and admin (C14, [`Action::MoveTicket`]).
//!
//! A filter given empty (`?vehicle=`) is a bad request, as the OpenAPI
//! document says, not "no filter". Filters only narrow what the scope shows: `?fleet=` of a fleet the
//! caller cannot see gives an empty list, as for a fleet with no tickets.

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use fleetcare_ingest::ids::{FleetId, VehicleId};
use serde::Deserialize;

use super::error::ApiError;
use super::page::PageParams;
use super::vehicles::visible_vehicle;
use super::{ApiJson, ApiPath, ApiQuery, ApiState};
use crate::http::auth::{Action, Scope};
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

/// `GET /tickets`: a page of the tickets the filters let through, newest
/// first.
async fn list(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<ListQuery>,
    page: PageParams,
) -> Result<Response, ApiError> {
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
    let before = page.after::<TicketId>()?;
    let mut rows = visible_tickets(&state, &scope, filter, before, page.fetch()).await?;
    in_languages(&state, &mut rows).await?;
    let (rows, next) = page.cut(rows, |rows| rows.last().map(|t| t.id));
    Ok(page.respond(rows, next))
}

/// `filter` narrowed to what the caller may see.
pub(crate) fn scoped(scope: &Scope, filter: TicketFilter) -> TicketFilter {
    TicketFilter {
        fleets_visible: scope.fleets_visible().map(<[_]>::to_vec),
        ..filter
    }
}

/// At most `limit` of the tickets `filter` lets through among those the
/// caller may see, newest first, numbered below `before` (`GET /tickets`,
/// the web UI's ticket board).
pub(crate) async fn visible_tickets(
    state: &ApiState,
    scope: &Scope,
    filter: TicketFilter,
    before: Option<TicketId>,
    limit: usize,
) -> Result<Vec<Ticket>, ApiError> {
    let tickets = state
        .tickets
        .list_page(&scoped(scope, filter), before, limit)
        .await
        .map_err(error)?;
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
    let outlet_proposed = match (&ticket.outlet, &ticket.vehicle) {
        (None, Some(v)) => crate::registry::outlets::outlet_for_vehicle(&state.db, v).await?,
        _ => None,
    };
    Ok(TicketWithEvents {
        ticket,
        events,
        outlet_proposed,
    })
}

async fn show(
    State(state): State<ApiState>,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TicketWithEvents>, ApiError> {
    let mut found = visible_ticket(&state, &scope, &id).await?;
    in_languages(&state, std::slice::from_mut(&mut found.ticket)).await?;
    Ok(Json(found))
}

/// The API answers with each ticket's `title` in its fleet's language and
/// `title_en` beside it (C10).
async fn in_languages(state: &ApiState, tickets: &mut [Ticket]) -> Result<(), ApiError> {
    if tickets.iter().all(|t| t.fleet.is_none()) {
        return Ok(());
    }
    let languages = crate::registry::fleets::languages(&state.db).await?;
    crate::tickets::in_fleet_languages(tickets, &state.catalog, &languages);
    Ok(())
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
    let mut ticket = ticket;
    in_languages(&state, std::slice::from_mut(&mut ticket)).await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}

/// `POST /tickets/{id}/transitions`. The body is read only once the
/// ticket is found (404) and the role may move it (403).
async fn transition(
    State(state): State<ApiState>,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
    request: Request,
) -> Result<Json<Ticket>, ApiError> {
    let current = movable_ticket(&state, &scope, &id).await?;
    let ApiJson(body) = ApiJson::<Transition>::from_request(request, &state).await?;
    let mut moved = apply(&state, &scope, current.ticket.id, body).await?;
    in_languages(&state, std::slice::from_mut(&mut moved)).await?;
    Ok(Json(moved))
}

/// The ticket `id` if the caller sees it (else 404) and may move it (else
/// 403): the ticket's fleet is checked first, so another fleet's ticket is
/// not found whatever the caller's role.
pub(crate) async fn movable_ticket(
    state: &ApiState,
    scope: &Scope,
    id: &str,
) -> Result<TicketWithEvents, ApiError> {
    let current = visible_ticket(state, scope, id).await?;
    scope.check_may(Action::MoveTicket)?;
    Ok(current)
}

/// Moves ticket `id` as the caller (the web UI's move forms): 404 unless
/// the caller sees it, 403 unless its role may move tickets.
pub(crate) async fn move_ticket(
    state: &ApiState,
    scope: &Scope,
    id: &str,
    transition: Transition,
) -> Result<Ticket, ApiError> {
    let current = movable_ticket(state, scope, id).await?;
    apply(state, scope, current.ticket.id, transition).await
}

async fn apply(
    state: &ApiState,
    scope: &Scope,
    id: TicketId,
    transition: Transition,
) -> Result<Ticket, ApiError> {
    state
        .tickets
        .transition(id, transition, scope.actor(), Utc::now())
        .await
        .map_err(error)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use crate::db::Db;
    use crate::http::api::Role;
    use crate::http::testing::{call, json, post_json, register, state, token};

    /// Issue 20, finding 5: an operator token dispatched and closed an
    /// overdue maintenance ticket. Operators file complaints; moving a
    /// ticket is for support and admin; another fleet's ticket is still
    /// not found.
    async fn operators_file_tickets_and_support_moves_them(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        register(&db, &[("fa", "A1"), ("fb", "B1")]).await;
        let app = crate::http::app(state(db.clone(), dir.path()));
        let operator = token(&db, Role::Operator, &["fa"]).await;
        let support = token(&db, Role::Support, &[]).await;
        let admin = token(&db, Role::Admin, &[]).await;
        let complaint = |vehicle: &str| json!({"vehicle": vehicle, "kind": "complaint", "title": "Bin lift jerks"});

        let r = call(
            &app,
            post_json("/api/v1/tickets", &operator, &complaint("A1")),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let mine = json(r).await["id"].as_i64().unwrap();
        let r = call(
            &app,
            post_json("/api/v1/tickets", &support, &complaint("B1")),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let theirs = json(r).await["id"].as_i64().unwrap();

        let moves = |id: i64| format!("/api/v1/tickets/{id}/transitions");
        let cancel = json!({"to": "cancelled", "note": "not needed"});
        let r = call(&app, post_json(&moves(mine), &operator, &cancel)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let message = json(r).await["error"].as_str().unwrap().to_owned();
        assert_eq!(
            message,
            "the operator role may not move tickets; support and admin do"
        );
        // The body is not read for a caller who may not move: a malformed
        // one gives the same answer.
        let r = call(&app, post_json(&moves(mine), &operator, &json!([1]))).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        // Not found comes first: another fleet's ticket, or none at all.
        for id in [theirs, 99_999] {
            let r = call(&app, post_json(&moves(id), &operator, &cancel)).await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "ticket {id}");
        }
        let state_of = |id: i64| {
            let app = app.clone();
            let support = support.clone();
            async move {
                let r = call(
                    &app,
                    crate::http::testing::get(&format!("/api/v1/tickets/{id}"), Some(&support)),
                )
                .await;
                json(r).await["state"].as_str().unwrap().to_owned()
            }
        };
        assert_eq!(state_of(mine).await, "open");

        let dispatch = json!({"to": "dispatched", "assignee": "Wang Lei", "outlet": "north"});
        let r = call(&app, post_json(&moves(mine), &support, &dispatch)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = call(&app, post_json(&moves(theirs), &admin, &cancel)).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            (state_of(mine).await, state_of(theirs).await),
            ("dispatched".to_owned(), "cancelled".to_owned())
        );
    }

    #[test]
    fn ticket_moves_on_sqlite() {
        crate::db::testing::on_sqlite(operators_file_tickets_and_support_moves_them);
    }

    #[test]
    fn ticket_moves_on_postgres() {
        crate::db::testing::on_postgres(operators_file_tickets_and_support_moves_them);
    }
}
