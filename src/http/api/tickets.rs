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
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::page::PageParams;
use super::vehicles::visible_vehicle;
use super::{ApiJson, ApiPath, ApiQuery, ApiState};
use crate::http::auth::{Action, Scope};
use crate::tickets::{
    Channel, Complainant, CustomerReport, Ticket, TicketError, TicketFilter, TicketId, TicketKind,
    TicketState, TicketWithEvents, Transition, Zone,
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
    let tasks = state.tickets.visit_tasks(id).await.map_err(error)?;
    let outlet_proposed = match (&ticket.outlet, &ticket.vehicle) {
        (None, Some(v)) => crate::registry::outlets::outlet_for_vehicle(&state.db, v).await?,
        _ => None,
    };
    Ok(TicketWithEvents {
        ticket,
        events,
        outlet_proposed,
        tasks,
    })
}

/// `GET /tickets/{id}`: the ticket, its history, and (C11) at diagnosis
/// whether the parts its fault needs are on hand.
#[derive(Debug, Serialize)]
pub(crate) struct TicketView {
    #[serde(flatten)]
    pub(crate) current: TicketWithEvents,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) parts_check: Option<PartsCheck>,
}

/// The catalogue's parts for a ticket's fault against the stock of its
/// vehicle's depot (C11: shown at `diagnosing`, and while
/// `awaiting_parts`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PartsCheck {
    pub(crate) depot: String,
    /// Every part has `on_hand >= needed`.
    pub(crate) all_on_hand: bool,
    pub(crate) parts: Vec<crate::parts::PartCheck>,
}

/// The parts check of `ticket`: a fault ticket in `diagnosing` or
/// `awaiting_parts` whose model's catalogue lists parts for the fault, of
/// a vehicle in the registry; `None` otherwise.
pub(crate) async fn parts_check(
    state: &ApiState,
    ticket: &Ticket,
) -> Result<Option<PartsCheck>, ApiError> {
    use fleetcare_ingest::j1939::{Fmi, Spn};
    if ticket.kind != TicketKind::Fault
        || !matches!(
            ticket.state,
            TicketState::Diagnosing | TicketState::AwaitingParts
        )
    {
        return Ok(None);
    }
    let code = ticket
        .key
        .split_once(':')
        .and_then(|(spn, fmi)| Some((Spn::new(spn.parse().ok()?)?, Fmi::new(fmi.parse().ok()?)?)));
    let (Some((spn, fmi)), Some(model), Some(vehicle)) = (code, &ticket.model, &ticket.vehicle)
    else {
        return Ok(None);
    };
    let Some(entry) = state.catalog.fault(model, spn, fmi) else {
        return Ok(None);
    };
    if entry.parts.is_empty() {
        return Ok(None);
    }
    let Some(registered) = crate::registry::vehicle(&state.db, vehicle).await? else {
        return Ok(None);
    };
    let parts = crate::parts::availability(&state.db, &registered.depot, &entry.parts).await?;
    Ok(Some(PartsCheck {
        depot: registered.depot.to_string(),
        all_on_hand: parts.iter().all(|p| p.enough),
        parts,
    }))
}

async fn show(
    State(state): State<ApiState>,
    scope: Scope,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TicketView>, ApiError> {
    let mut current = visible_ticket(&state, &scope, &id).await?;
    in_languages(&state, std::slice::from_mut(&mut current.ticket)).await?;
    let parts_check = parts_check(&state, &current.ticket).await?;
    Ok(Json(TicketView {
        current,
        parts_check,
    }))
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

/// `POST /tickets`: a complaint or a manual report (C7, C10), about one
/// vehicle or, naming only the fleet, about the service as a whole.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTicket {
    kind: TicketKind,
    /// Needed without a vehicle; with one, it must be the vehicle's.
    #[serde(default)]
    fleet: Option<String>,
    #[serde(default)]
    vehicle: Option<String>,
    title: String,
    #[serde(default)]
    details: String,
    #[serde(default)]
    complainant: Option<Complainant>,
    #[serde(default)]
    channel: Option<Channel>,
    /// The zone of the outlet that will go on site (default `sla.default_zone`).
    #[serde(default)]
    zone: Option<Zone>,
}

async fn create(
    State(state): State<ApiState>,
    scope: Scope,
    ApiJson(body): ApiJson<NewTicket>,
) -> Result<(StatusCode, Json<Ticket>), ApiError> {
    let mut ticket = file(&state, &scope, body.into_report()?).await?;
    in_languages(&state, std::slice::from_mut(&mut ticket)).await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}

impl NewTicket {
    fn into_report(self) -> Result<ReportRequest, ApiError> {
        if !matches!(self.kind, TicketKind::Complaint | TicketKind::Manual) {
            return Err(ApiError::Unprocessable(format!(
                "{} tickets are opened by alerts; create only complaint or manual tickets",
                self.kind
            )));
        }
        Ok(ReportRequest {
            kind: self.kind,
            fleet: self.fleet,
            vehicle: self.vehicle,
            title: self.title,
            details: self.details,
            complainant: self.complainant,
            channel: self.channel,
            zone: self.zone,
        })
    }
}

/// A complaint or manual report as the API and the web form take it.
#[derive(Debug, Clone)]
pub(crate) struct ReportRequest {
    pub(crate) kind: TicketKind,
    pub(crate) fleet: Option<String>,
    pub(crate) vehicle: Option<String>,
    pub(crate) title: String,
    pub(crate) details: String,
    pub(crate) complainant: Option<Complainant>,
    pub(crate) channel: Option<Channel>,
    pub(crate) zone: Option<Zone>,
}

/// Files `r` for the caller: the vehicle (or, without one, the fleet)
/// must be one the caller sees — an operator files for its own fleets
/// (404 otherwise, as for any resource outside them).
pub(crate) async fn file(
    state: &ApiState,
    scope: &Scope,
    r: ReportRequest,
) -> Result<Ticket, ApiError> {
    if r.title.trim().is_empty() {
        return Err(ApiError::Unprocessable(
            "title is empty; say what the problem is".to_owned(),
        ));
    }
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let fleet = given(&r.fleet)
        .map(|f| {
            FleetId::new(&f).map_err(|_| {
                ApiError::Unprocessable(format!(
                    "fleet {f:?} is not an id of 1-64 letters, digits, '_', '.' or '-'"
                ))
            })
        })
        .transpose()?;
    let (fleet, vehicle, model) = match given(&r.vehicle) {
        Some(v) => {
            let vehicle = visible_vehicle(state, scope, &v).await?;
            if let Some(f) = &fleet
                && *f != vehicle.fleet
            {
                return Err(ApiError::Unprocessable(format!(
                    "vehicle {} is in fleet {}, not {f}; leave the fleet out or name the vehicle's",
                    vehicle.id, vehicle.fleet
                )));
            }
            (vehicle.fleet, Some(vehicle.id), Some(vehicle.model))
        }
        None => {
            let fleet = fleet.ok_or_else(|| {
                ApiError::Unprocessable(
                    "name the vehicle, or the fleet when the report is about no single vehicle"
                        .to_owned(),
                )
            })?;
            scope.check_fleet(Some(&fleet), "fleet")?;
            let registered = crate::registry::vehicles(&state.db)
                .await?
                .iter()
                .any(|v| v.fleet == fleet);
            if !registered {
                return Err(ApiError::NotFound("fleet".to_owned()));
            }
            (fleet, None, None)
        }
    };
    let report = CustomerReport {
        kind: r.kind,
        fleet,
        vehicle,
        model,
        title: r.title,
        details: r.details,
        complainant: r.complainant,
        channel: r.channel,
        zone: r.zone,
    };
    let ticket = state
        .tickets
        .file_report(report, scope.actor(), Utc::now())
        .await
        .map_err(error)?;
    tracing::info!(ticket = %ticket.id, kind = %ticket.kind, "Ticket created.");
    Ok(ticket)
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

    /// Issue 21, item 6: a complaint names its complainant and channel,
    /// and may be about a fleet rather than one truck; an operator files
    /// for its own fleets only.
    async fn complaints_name_who_complained_and_how(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        register(&db, &[("fa", "A1"), ("fb", "B1")]).await;
        let app = crate::http::app(state(db.clone(), dir.path()));
        let operator = token(&db, Role::Operator, &["fa"]).await;
        let body = |fleet: &str, vehicle: Option<&str>| {
            json!({"kind": "complaint", "fleet": fleet, "vehicle": vehicle,
                   "title": "Collection missed", "details": "Jianshe Road, twice",
                   "complainant": {"name": "Li Na", "phone": "+86 755 1234 5678"},
                   "channel": "phone"})
        };
        let r = call(
            &app,
            post_json("/api/v1/tickets", &operator, &body("fa", None)),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let t = json(r).await;
        assert_eq!(t["fleet"], "fa");
        assert_eq!(t["vehicle"], serde_json::Value::Null);
        assert_eq!(t["complainant"]["name"], "Li Na");
        assert_eq!(t["complainant"]["email"], serde_json::Value::Null);
        assert_eq!(t["channel"], "phone");
        assert_eq!(t["zone"], "city");
        assert!(t["sla"]["on_site_by"].is_string(), "{t}");
        let r = call(
            &app,
            post_json("/api/v1/tickets", &operator, &body("fa", Some("A1"))),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(json(r).await["vehicle"], "A1");
        // Another fleet, by name or through its truck, is not found; an
        // unknown fleet too; a truck of another fleet than named is refused.
        for (fleet, vehicle) in [("fb", None), ("fa", Some("B1")), ("nowhere", None)] {
            let r = call(
                &app,
                post_json("/api/v1/tickets", &operator, &body(fleet, vehicle)),
            )
            .await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{fleet} {vehicle:?}");
        }
        let support = token(&db, Role::Support, &[]).await;
        let r = call(
            &app,
            post_json("/api/v1/tickets", &support, &body("fb", Some("A1"))),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let mut bad = body("fa", None);
        bad["channel"] = json!("pigeon");
        let r = call(&app, post_json("/api/v1/tickets", &operator, &bad)).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let mut bad = body("fa", None);
        bad["complainant"] = json!({"name": " "});
        let r = call(&app, post_json("/api/v1/tickets", &operator, &bad)).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let mut no_fleet = body("fa", None);
        no_fleet.as_object_mut().unwrap().remove("fleet");
        let r = call(&app, post_json("/api/v1/tickets", &operator, &no_fleet)).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn complaints_on_sqlite() {
        crate::db::testing::on_sqlite(complaints_name_who_complained_and_how);
    }

    #[test]
    fn complaints_on_postgres() {
        crate::db::testing::on_postgres(complaints_name_who_complained_and_how);
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
