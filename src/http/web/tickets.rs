//! `/ui/tickets`: the ticket board, one column per state (the API's
//! `GET /tickets`) with its newest cards and a link to the rest, each card
//! with the moves its state allows;
//! `/ui/tickets/{id}`: one ticket with its history; and the move form's
//! `POST /ui/tickets/{id}/move` (the API's transition, same checks). Move
//! forms are shown only to the roles that may move tickets.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use maud::{Markup, html};
use serde::Deserialize;

use super::WebState;
use super::error::{WebError, percent_encode, see_other};
use super::i18n::Lang;
use super::layout::{Nav, number, page as frame, scroll, time};
use super::session::{Session, is_ui_path};
use crate::http::api::{Action, ApiError, ApiState, Resource, page, tickets};
use crate::registry::{self, Outlet, OutletKind};
use crate::tickets::{
    Outcome, Priority, Ticket, TicketFilter, TicketId, TicketKind, TicketState, Transition,
    VisitTask,
};

/// What a dispatch form offers (C10): the register's outlets (none: a
/// free-text field, as before the register) with the one serving the
/// vehicle's depot proposed.
#[derive(Debug, Default)]
pub struct Dispatch {
    outlets: Vec<Outlet>,
    depot_of: HashMap<VehicleId, String>,
}

impl Dispatch {
    /// The register and the registry's depots; nothing when the caller
    /// may not move tickets (no form is shown).
    pub async fn load(api: &ApiState, session: &Session) -> Result<Self, WebError> {
        if !session.may(Action::MoveTicket) {
            return Ok(Self::default());
        }
        let outlets = registry::outlets::outlets(&api.db)
            .await
            .map_err(ApiError::from)?;
        let depot_of = if outlets.is_empty() {
            HashMap::new()
        } else {
            registry::vehicles(&api.db)
                .await
                .map_err(ApiError::from)?
                .into_iter()
                .map(|v| (v.id, v.depot.as_str().to_owned()))
                .collect()
        };
        Ok(Self { outlets, depot_of })
    }

    /// The outlet the form selects: the ticket's, else an own workshop
    /// serving the vehicle's depot before a partner (as the API proposes).
    fn proposed<'a>(&'a self, ticket: &'a Ticket) -> Option<&'a str> {
        if let Some(o) = &ticket.outlet {
            return Some(o);
        }
        let depot = self.depot_of.get(ticket.vehicle.as_ref()?)?;
        self.outlets
            .iter()
            .filter(|o| o.depots.iter().any(|d| d == depot))
            .min_by_key(|o| (o.kind != OutletKind::Own, o.id.clone()))
            .map(|o| o.id.as_str())
    }
}

/// Cards a column shows at most; the count in its heading is the total,
/// and a link leads to the column's next cards.
pub(crate) const COLUMN_CARDS: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct BoardQuery {
    kind: Option<String>,
    fleet: Option<String>,
    vehicle: Option<String>,
    /// One column only (following a column's "more" link).
    state: Option<String>,
    /// Where that column continues.
    cursor: Option<String>,
}

/// A filter value from the board's form: empty means "all".
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl BoardQuery {
    fn filter(&self) -> Result<TicketFilter, WebError> {
        let bad = |e: String| WebError::BadRequest(e);
        Ok(TicketFilter {
            kind: given(&self.kind)
                .map(|k| k.parse::<TicketKind>().map_err(|e| bad(e.to_string())))
                .transpose()?,
            fleet: given(&self.fleet)
                .map(|f| FleetId::new(f).map_err(|e| bad(e.to_string())))
                .transpose()?,
            vehicle: given(&self.vehicle)
                .map(|v| VehicleId::new(v).map_err(|e| bad(e.to_string())))
                .transpose()?,
            ..TicketFilter::default()
        })
    }

    /// The one column asked for, and where it continues.
    fn column(&self) -> Result<Option<(TicketState, Option<TicketId>)>, WebError> {
        let Some(state) = given(&self.state) else {
            return Ok(None);
        };
        let state = state
            .parse::<TicketState>()
            .map_err(|e| WebError::BadRequest(e.to_string()))?;
        let before = given(&self.cursor)
            .map(|c| {
                page::decode::<TicketId>(c).ok_or_else(|| {
                    WebError::BadRequest("that page of the board does not exist".to_owned())
                })
            })
            .transpose()?;
        Ok(Some((state, before)))
    }

    /// The board's address with these filters, one column and a cursor.
    fn link(&self, state: Option<TicketState>, after: Option<TicketId>) -> String {
        let mut query: Vec<String> = [
            ("kind", &self.kind),
            ("fleet", &self.fleet),
            ("vehicle", &self.vehicle),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| format!("{k}={}", percent_encode(v))))
        .collect();
        if let Some(s) = state {
            query.push(format!("state={}", s.as_str()));
        }
        if let Some(id) = after {
            query.push(format!("cursor={}", page::encode(&id)));
        }
        if query.is_empty() {
            "/ui/tickets".to_owned()
        } else {
            format!("/ui/tickets?{}", query.join("&"))
        }
    }
}

/// `GET /ui/tickets?kind=&fleet=&vehicle=[&state=&cursor=]`: every state's
/// column with its newest cards, or one column from a cursor on.
pub async fn board(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<BoardQuery>,
) -> Result<Response, WebError> {
    let scope = session.scope(Resource::Tickets)?;
    let filter = q.filter()?;
    let column = q.column()?;
    let counts: HashMap<TicketState, u64> = state
        .api
        .tickets
        .count_by_state(&tickets::scoped(&scope, filter.clone()))
        .await
        .map_err(tickets::error)?
        .into_iter()
        .collect();
    let shown: Vec<(TicketState, Option<TicketId>)> = match column {
        Some(c) => vec![c],
        None => TicketState::ALL.iter().map(|s| (*s, None)).collect(),
    };
    let mut columns = Vec::with_capacity(shown.len());
    for (s, before) in shown {
        let by_state = TicketFilter {
            state: Some(s),
            ..filter.clone()
        };
        let mut cards =
            tickets::visible_tickets(&state.api, &scope, by_state, before, COLUMN_CARDS + 1)
                .await?;
        let more = (cards.len() > COLUMN_CARDS).then(|| {
            cards.truncate(COLUMN_CARDS);
            q.link(Some(s), cards.last().map(|t| t.id))
        });
        columns.push((s, cards, more));
    }
    let overdue = state
        .api
        .tickets
        .overdue_follow_ups(&tickets::scoped(&scope, filter.clone()), chrono::Utc::now())
        .await
        .map_err(tickets::error)?;
    let overdue = scope.filter(overdue, |t| t.fleet.as_ref());
    let dispatch = Dispatch::load(&state.api, &session).await?;
    let lang = session.lang;
    let t = lang.text();
    let body = html! {
        p.actions { a #file-complaint href="/ui/complaints/new" { (t.complaint_title) } }
        @if !overdue.is_empty() {
            section #follow-ups data-count=(overdue.len()) {
                h2 { (t.follow_ups_overdue) " " span.count { (overdue.len()) } }
                (follow_up_table(&overdue, lang))
            }
        }
        form.filters method="get" action="/ui/tickets" {
            label { (t.kind) " "
                select name="kind" {
                    option value="" { (t.all) }
                    @for k in TicketKind::ALL {
                        option value=(k.as_str()) selected[given(&q.kind) == Some(k.as_str())] { (lang.kind(*k)) }
                    }
                }
            }
            label { (t.fleet) " " input name="fleet" size="10" value=(given(&q.fleet).unwrap_or_default()); }
            label { (t.vehicle) " " input name="vehicle" size="10" value=(given(&q.vehicle).unwrap_or_default()); }
            button type="submit" { (t.filter) }
            a href="/ui/tickets" { (t.clear_filter) }
        }
        @if column.is_some() {
            p { a href=(q.link(None, None)) { (t.all_states) } }
        }
        div.board #board {
            @for (s, cards, more) in &columns {
                @let total = counts.get(s).copied().unwrap_or_default();
                section.column data-state=(s.as_str()) {
                    h2 { (lang.state(*s)) " " span.count data-count=(total) { (total) } }
                    @for ticket in cards {
                        (card(&session, ticket, &dispatch, &state.api.catalog))
                    }
                    @if let Some(link) = more {
                        p.more { a href=(link) { (t.more_tickets) " →" } }
                    }
                }
            }
        }
    };
    Ok(frame(&session, Some(Nav::Tickets), t.board_title, body).into_response())
}

fn priority_class(t: &Ticket) -> &'static str {
    match t.priority {
        Priority::P1 => "p1",
        Priority::P2 => "p2",
        Priority::P3 => "p3",
        Priority::P4 => "p4",
    }
}

fn card(
    session: &Session,
    ticket: &Ticket,
    dispatch: &Dispatch,
    catalog: &crate::catalog::Catalog,
) -> Markup {
    let lang = session.lang;
    let t = lang.text();
    html! {
        article.card class=(priority_class(ticket)) data-ticket=(ticket.id) data-state=(ticket.state.as_str()) {
            header {
                a href=(format!("/ui/tickets/{}", ticket.id)) { "#" (ticket.id) }
                span.prio { (ticket.priority.as_str()) }
                span.kind { (lang.kind(ticket.kind)) }
                @if ticket.sla.breached { span.badge.bad { (t.sla_breached) } }
            }
            p.title { (lang.ticket_title(ticket, catalog)) }
            p.meta {
                @if let Some(v) = &ticket.vehicle {
                    a href=(format!("/ui/vehicles/{v}")) { (v.as_str()) } " · "
                }
                (ticket.fleet.as_ref().map_or(t.across_fleets, |f| f.as_str()))
                @if let Some(a) = &ticket.assignee { " · " (a) }
            }
            @if session.may(Action::MoveTicket) && !ticket.state.allowed_moves().is_empty() {
                details {
                    summary { (t.move_action) }
                    (move_form(session, ticket, &session.path, dispatch))
                }
            }
        }
    }
}

/// The form that moves `ticket`: only the moves its state allows, with
/// the fields those moves need (C8). Returns to `back` when done.
pub fn move_form(session: &Session, ticket: &Ticket, back: &str, dispatch: &Dispatch) -> Markup {
    move_form_with_tasks(session, ticket, back, dispatch, &[])
}

/// [`move_form`] of a service visit: closing it names the tasks done
/// (all of them unless edited).
fn move_form_with_tasks(
    session: &Session,
    ticket: &Ticket,
    back: &str,
    dispatch: &Dispatch,
    tasks: &[VisitTask],
) -> Markup {
    let lang = session.lang;
    let t = lang.text();
    let moves = ticket.state.allowed_moves();
    if moves.is_empty() {
        return html! { p.muted { (t.no_moves) } };
    }
    let dispatching = moves.contains(&TicketState::Dispatched);
    let close = moves.contains(&TicketState::Closed);
    let id = format!("t{}", ticket.id);
    html! {
        form.move method="post" action=(format!("/ui/tickets/{}/move", ticket.id)) data-ticket=(ticket.id) {
            input type="hidden" name="csrf" value=(session.csrf());
            input type="hidden" name="back" value=(back);
            label { (t.move_to) " "
                select name="to" {
                    @for m in moves {
                        option value=(m.as_str()) { (lang.state(*m)) }
                    }
                }
            }
            @if dispatching {
                label { (t.assignee) " " small.muted { "(" (t.needed_to_dispatch) ")" }
                    input name="assignee" maxlength="200" value=(ticket.assignee.as_deref().unwrap_or_default()); }
                label { (t.outlet) " " small.muted { "(" (t.needed_to_dispatch) ")" }
                    @if dispatch.outlets.is_empty() {
                        input name="outlet" maxlength="200" value=(ticket.outlet.as_deref().unwrap_or_default());
                    } @else {
                        @let proposed = dispatch.proposed(ticket);
                        select name="outlet" {
                            option value="" { "–" }
                            @for o in &dispatch.outlets {
                                option value=(o.id.as_str()) selected[proposed == Some(o.id.as_str())] {
                                    (o.name) " (" (o.id.as_str()) ", " (o.kind.as_str()) ", " (o.zone.as_str()) ")"
                                }
                            }
                        }
                    }
                }
                // Without a register of outlets, the dispatch names the zone.
                @if ticket.sla.on_site_by.is_some() && dispatch.outlets.is_empty() {
                    label { (t.zone)
                        select name="zone" {
                            option value="" { "–" }
                            option value="city" { (t.zone_city) }
                            option value="rural" { (t.zone_rural) }
                        }
                    }
                }
            }
            @if ticket.sla.on_site_by.is_some() && ticket.sla.on_site_at.is_none() {
                label.check { input type="checkbox" name="on_site" value="yes"; " " (t.on_site_at) }
            }
            @if close {
                label { (t.satisfaction) " " small.muted { "(" (t.needed_to_close) ")" }
                    select name="satisfaction" {
                        option value="" { "–" }
                        @for n in 1..=5u8 { option value=(n) { (n) } }
                    }
                }
                label { (t.outcome)
                    select name="outcome" {
                        option value="" { "–" }
                        @for o in Outcome::ALL { option value=(o.as_str()) { (lang.outcome(*o)) } }
                    }
                }
                @if !tasks.is_empty() {
                    @let all: Vec<&str> = tasks.iter().map(|v| v.task.as_str()).collect();
                    label { (t.tasks_done) " " small.muted { "TASK, …" }
                        input name="tasks_done" value=(all.join(", ")); }
                }
                label { (t.labour_hours) input name="labour_hours" type="number" min="0" step="0.1" inputmode="decimal"; }
                label { (t.parts_used) " " small.muted { "PART:QTY, …" } input name="parts_used" placeholder="FLT-OIL-01:1"; }
                label { (t.warranty_claim) " " small.muted { "(" (lang.warranty(&ticket.warranty)) ")" }
                    select name="warranty" {
                        option value="" { (t.claim_as_decided) }
                        option value="yes" { (t.claim_accept) }
                        option value="no" { (t.claim_decline) }
                    }
                }
            }
            label for=(format!("{id}-note")) { (t.note) }
            textarea id=(format!("{id}-note")) name="note" rows="2" maxlength="10000" {}
            button type="submit" { (t.move_action) }
        }
    }
}

/// Delivered tickets whose follow-up call is overdue (the board's section).
fn follow_up_table(list: &[Ticket], lang: Lang) -> Markup {
    let t = lang.text();
    scroll(html! {
        table.stack {
            thead { tr {
                th { (t.ticket) } th { (t.follow_up_by) } th { (t.fleet) } th { (t.vehicle) } th { (t.title) }
            } }
            tbody {
                @for ticket in list {
                    tr data-ticket=(ticket.id) {
                        td data-label=(t.ticket) { a href=(format!("/ui/tickets/{}", ticket.id)) { "#" (ticket.id) } }
                        td data-label=(t.follow_up_by) {
                            @if let Some(by) = ticket.sla.follow_up_by { (time(by)) }
                        }
                        td data-label=(t.fleet) { (ticket.fleet.as_ref().map_or("–", |f| f.as_str())) }
                        td data-label=(t.vehicle) { (ticket.vehicle.as_ref().map_or("–", |v| v.as_str())) }
                        td data-label=(t.title) { (ticket.title) }
                    }
                }
            }
        }
    })
}

/// A list of tickets as a table (the vehicle page's).
pub fn ticket_table(list: &[Ticket], lang: Lang, catalog: &crate::catalog::Catalog) -> Markup {
    let t = lang.text();
    if list.is_empty() {
        return html! { p.muted { (t.nothing_here) } };
    }
    scroll(html! {
        table.stack {
            thead { tr {
                th { (t.ticket) } th { (t.kind) } th { (t.state) } th { (t.priority) }
                th { (t.title) } th { (t.created) } th { (t.updated) }
            } }
            tbody {
                @for ticket in list {
                    tr data-ticket=(ticket.id) data-state=(ticket.state.as_str()) {
                        td data-label=(t.ticket) { a href=(format!("/ui/tickets/{}", ticket.id)) { "#" (ticket.id) } }
                        td data-label=(t.kind) { (lang.kind(ticket.kind)) }
                        td data-label=(t.state) { (lang.state(ticket.state)) }
                        td data-label=(t.priority) { (ticket.priority.as_str()) }
                        td data-label=(t.title) { (lang.ticket_title(ticket, catalog)) }
                        td data-label=(t.created) { (time(ticket.created_at)) }
                        td data-label=(t.updated) { (time(ticket.updated_at)) }
                    }
                }
            }
        }
    })
}

/// `GET /ui/tickets/{id}`: 404 for a ticket the user may not see.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    ticket_page(&state, &session, &id, None).await
}

/// The ticket page; `problem` is a refused move to show above the form.
async fn ticket_page(
    state: &WebState,
    session: &Session,
    id: &str,
    problem: Option<(StatusCode, String)>,
) -> Result<Response, WebError> {
    let scope = session.scope(Resource::Tickets)?;
    let current = tickets::visible_ticket(&state.api, &scope, id).await?;
    let ticket = &current.ticket;
    let lang = session.lang;
    let t = lang.text();
    let title = format!(
        "#{} · {}",
        ticket.id,
        lang.ticket_title(ticket, &state.api.catalog)
    );
    let dash = || "–".to_owned();
    let dispatch = Dispatch::load(&state.api, session).await?;
    let back = format!("/ui/tickets/{}", ticket.id);
    let parts_check = tickets::parts_check(&state.api, ticket).await?;
    let body = html! {
        dl.facts #ticket-facts data-ticket=(ticket.id) data-state=(ticket.state.as_str()) {
            div { dt { (t.state) } dd data-field="state" { strong { (lang.state(ticket.state)) } } }
            div { dt { (t.kind) } dd { (lang.kind(ticket.kind)) } }
            div { dt { (t.priority) } dd { (ticket.priority.as_str()) } }
            div { dt { (t.fleet) } dd { (ticket.fleet.as_ref().map_or(t.across_fleets, |f| f.as_str())) } }
            div { dt { (t.vehicle) } dd {
                @match &ticket.vehicle {
                    Some(v) => a href=(format!("/ui/vehicles/{v}")) { (v.as_str()) },
                    None => "–",
                }
            } }
            div { dt { (t.model) } dd {
                @match &ticket.model {
                    Some(m) => (lang.model_name(&state.api.catalog, m)),
                    None => "–",
                }
            } }
            div { dt { (t.key) } dd { (ticket.key) } }
            @if let Some(c) = ticket.campaign {
                div { dt { (t.campaign) } dd { a href=(format!("/ui/campaigns/{c}")) { "#" (c) } } }
            }
            div { dt { (t.occurrences) } dd { (ticket.occurrences) } }
            div { dt { (t.created) } dd { (time(ticket.created_at)) } }
            div { dt { (t.updated) } dd { (time(ticket.updated_at)) } }
            div { dt { (t.respond_by) } dd { (time(ticket.sla.respond_by)) } }
            div { dt { (t.resolve_by) } dd { (time(ticket.sla.resolve_by)) } }
            @if let Some(by) = ticket.sla.on_site_by {
                div { dt { (t.on_site_by) } dd data-field="on_site_by" { (time(by)) } }
                div { dt { (t.on_site_at) } dd { (ticket.sla.on_site_at.map_or_else(|| html! { "–" }, time)) } }
            }
            @if let Some(by) = ticket.sla.follow_up_by {
                div { dt { (t.follow_up_by) } dd data-field="follow_up_by" { (time(by)) } }
            }
            div { dt { (t.sla_breached) } dd { (if ticket.sla.breached { t.yes } else { t.no }) } }
            @if let Some(c) = &ticket.complainant {
                div { dt { (t.complainant) } dd data-field="complainant" {
                    (c.name)
                    @if let Some(p) = &c.phone { " · " (p) }
                    @if let Some(e) = &c.email { " · " (e) }
                } }
            }
            @if let Some(ch) = ticket.channel { div { dt { (t.channel) } dd data-field="channel" { (ch.as_str()) } } }
            div { dt { (t.escalated) } dd { (if ticket.escalated { t.yes } else { t.no }) } }
            div { dt { (t.assignee) } dd data-field="assignee" { (ticket.assignee.clone().unwrap_or_else(dash)) } }
            div { dt { (t.outlet) } dd data-field="outlet" { (ticket.outlet.clone().unwrap_or_else(dash)) } }
            @if let Some(v) = &ticket.verification { div { dt { (t.verification) } dd data-field="verification" data-verification=(v.status.as_str()) { (lang.verification(v)) } } }
            @if let Some(r) = &ticket.repeat_of {
                div { dt { (t.repeat_of) } dd data-field="repeat_of" {
                    a href=(format!("/ui/tickets/{}", r.ticket)) { "#" (r.ticket) }
                    " · " (t.assignee) " " (r.technician.clone().unwrap_or_else(dash))
                    " · " (t.outlet) " " (r.outlet.clone().unwrap_or_else(dash))
                } }
            }
            @if let Some(o) = ticket.outcome { div { dt { (t.outcome) } dd { (lang.outcome(o)) } } }
            @if let Some(s) = ticket.satisfaction { div { dt { (t.satisfaction) } dd { (s) } } }
            @if let Some(h) = ticket.labour_hours { div { dt { (t.labour_hours) } dd { (number(h, 1)) } } }
            div { dt { (t.warranty) } dd data-field="warranty" data-warranty=(ticket.warranty.status.as_str()) { (lang.warranty(&ticket.warranty)) } }
            @if let Some(w) = ticket.warranty_claim { div { dt { (t.warranty_claim) } dd { (if w { t.claim_accept } else { t.claim_decline }) } } }
            @if let Some(l) = ticket.labour_covered { div { dt { (t.labour_covered) } dd data-field="labour_covered" { (if l { t.yes } else { t.no }) } } }
            @if !ticket.parts_used.is_empty() {
                div { dt { (t.parts_used) } dd {
                    @for p in &ticket.parts_used {
                        span.part data-part=(p.part) data-covered=[p.covered] { (p.part) " × " (p.qty) @if p.covered == Some(true) { " (" (t.covered) ")" } } " "
                    }
                } }
            }
        }
        @if !ticket.details.is_empty() {
            section { h2 { (t.details) } p.pre { (ticket.details) } }
        }
        @if let Some(check) = &parts_check {
            section #parts-check data-depot=(check.depot) data-all-on-hand=(check.all_on_hand.to_string()) {
                h2 { (t.parts_check) ": " (check.depot) }
                p.bad[!check.all_on_hand] {
                    strong { (if check.all_on_hand { t.all_on_hand } else { t.not_all_on_hand }) }
                }
                (scroll(html! {
                    table.stack {
                        thead { tr {
                            th { (t.part) } th.num { (t.needed) } th.num { (t.on_hand) } th.num { (t.on_order) }
                        } }
                        tbody {
                            @for p in &check.parts {
                                tr.short[!p.enough] data-part=(p.part.as_str()) data-enough=(p.enough.to_string()) {
                                    td data-label=(t.part) {
                                        a href=(format!("/ui/stock?part={}#movements", percent_encode(p.part.as_str()))) { (lang.part_name(&state.api.catalog, &p.part)) }
                                        " " small.muted { (p.part.as_str()) }
                                    }
                                    td.num data-label=(t.needed) { (number(p.needed, 2)) }
                                    td.num data-label=(t.on_hand) data-col="on-hand" { (p.on_hand) }
                                    td.num data-label=(t.on_order) { (p.on_order) }
                                }
                            }
                        }
                    }
                }))
            }
        }
        @if !current.tasks.is_empty() {
            section #visit-tasks {
                h2 { (t.visit_tasks) }
                ul {
                    @for task in &current.tasks {
                        li data-task=(task.task.as_str()) data-status=(task.status.as_str()) {
                            @match &ticket.model {
                                Some(m) => (lang.task_name(&state.api.catalog, m, task.task.as_str())),
                                None => (task.task.as_str()),
                            }
                            " · " (task.status.as_str().replace('_', " "))
                            @if task.done == Some(true) { " · " (t.task_done) }
                        }
                    }
                }
            }
        }
        @if session.may(Action::MoveTicket) {
            section #move {
                h2 { (t.move_action) }
                @if let Some((status, message)) = &problem {
                    p.error role="alert" data-status=(status.as_u16()) { (message) }
                }
                (move_form_with_tasks(session, ticket, &back, &dispatch, &current.tasks))
            }
        }
        section #history {
            h2 { (t.history) }
            (scroll(html! {
                table.stack {
                    thead { tr { th { (t.time) } th { (t.actor) } th { (t.event) } th { (t.state) } th { (t.note) } } }
                    tbody {
                        @for e in &current.events {
                            tr {
                                td data-label=(t.time) { (time(e.at)) }
                                td data-label=(t.actor) { (e.actor) }
                                td data-label=(t.event) { (e.kind) }
                                td data-label=(t.state) {
                                    @if let Some(from) = e.from { (lang.state(from)) " → " }
                                    @if let Some(to) = e.to { (lang.state(to)) }
                                }
                                td.pre data-label=(t.note) { (e.note.as_deref().unwrap_or_default()) }
                            }
                        }
                    }
                }
            }))
        }
    };
    let status = problem.map_or(StatusCode::OK, |(s, _)| s);
    Ok((status, frame(session, Some(Nav::Tickets), &title, body)).into_response())
}

/// The move form as posted.
#[derive(Debug, Deserialize)]
pub struct MoveForm {
    csrf: String,
    to: String,
    back: Option<String>,
    note: Option<String>,
    assignee: Option<String>,
    outlet: Option<String>,
    satisfaction: Option<String>,
    outcome: Option<String>,
    labour_hours: Option<String>,
    parts_used: Option<String>,
    warranty: Option<String>,
    #[serde(default)]
    on_site: Option<String>,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    tasks_done: Option<String>,
}

/// `PART:QTY, PART:QTY` (a missing quantity is 1).
fn parse_parts(text: &str) -> Result<Vec<(String, u32)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once(':') {
            None => Ok((p.to_owned(), 1)),
            Some((part, qty)) => qty
                .trim()
                .parse::<u32>()
                .map(|q| (part.trim().to_owned(), q))
                .map_err(|_| format!("parts used: {p:?} is not PART:QTY with a whole quantity")),
        })
        .collect()
}

impl MoveForm {
    fn transition(&self) -> Result<Transition, String> {
        let to = self.to.parse::<TicketState>().map_err(|e| e.to_string())?;
        let text = |v: &Option<String>| given(v).map(str::to_owned);
        let mut t = Transition::to(to);
        t.note = text(&self.note);
        t.assignee = text(&self.assignee);
        t.outlet = text(&self.outlet);
        t.satisfaction = given(&self.satisfaction)
            .map(|s| {
                s.parse::<u8>()
                    .map_err(|_| format!("satisfaction {s:?} is not 1 to 5"))
            })
            .transpose()?;
        t.outcome = given(&self.outcome)
            .map(|o| o.parse::<Outcome>().map_err(|e| e.to_string()))
            .transpose()?;
        t.labour_hours = given(&self.labour_hours)
            .map(|h| {
                h.parse::<f64>()
                    .map_err(|_| format!("labour hours {h:?} is not a number"))
            })
            .transpose()?;
        t.parts_used = given(&self.parts_used).map_or(Ok(Vec::new()), parse_parts)?;
        t.warranty = given(&self.warranty).map(|w| w == "yes");
        t.on_site = given(&self.on_site).map(|v| v == "yes");
        t.zone = given(&self.zone)
            .map(|z| z.parse::<crate::tickets::Zone>())
            .transpose()?;
        t.tasks_done = given(&self.tasks_done).map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        });
        Ok(t)
    }
}

/// `POST /ui/tickets/{id}/move`: moves the ticket as the API would, then
/// returns to the page the form was on; a refused move shows the ticket
/// page with the reason (and the API's status: 409 or 422).
pub async fn move_ticket(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Result<Response, WebError> {
    session.check_csrf(&form.csrf)?;
    let scope = session.scope(Resource::Tickets)?;
    // Not found (another fleet's), then not allowed (an operator), before
    // the form is read.
    tickets::movable_ticket(&state.api, &scope, &id).await?;
    let transition = match form.transition() {
        Ok(t) => t,
        Err(e) => {
            return ticket_page(
                &state,
                &session,
                &id,
                Some((StatusCode::UNPROCESSABLE_ENTITY, e)),
            )
            .await;
        }
    };
    let to = transition.to;
    match tickets::move_ticket(&state.api, &scope, &id, transition).await {
        Ok(ticket) => {
            tracing::info!(ticket = %ticket.id, to = %to, actor = scope.actor(), "Ticket moved in the web UI.");
            let back = form
                .back
                .as_deref()
                .filter(|b| is_ui_path(b))
                .unwrap_or("/ui/tickets");
            Ok(see_other(back))
        }
        Err(e @ (ApiError::Conflict(_) | ApiError::Unprocessable(_))) => {
            let status = e.status();
            ticket_page(&state, &session, &id, Some((status, e.to_string()))).await
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::http::api::Role;
    use crate::http::testing::{call, page, sign_in, state, text, token};

    fn count(html: &str, needle: &str) -> usize {
        html.matches(needle).count()
    }

    /// Issue 20, finding 4: `/ui/tickets` was 5.6 MB after a flood of
    /// tickets. A column shows at most a page of cards, its heading the
    /// total, and a link to the rest.
    async fn the_board_shows_a_page_per_column(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        crate::http::testing::register(&db, &[("fa", "A1")]).await;
        let web = state(db.clone(), dir.path());
        let tickets = web.api.tickets.clone();
        let app = crate::http::app(web);
        let n = COLUMN_CARDS + 7;
        for i in 0..n {
            tickets
                .create(
                    TicketKind::Complaint,
                    FleetId::new("fa").unwrap(),
                    VehicleId::new("A1").unwrap(),
                    None,
                    format!("complaint {i}"),
                    String::new(),
                    "test",
                    chrono::Utc::now(),
                )
                .await
                .unwrap();
        }
        let support = token(&db, Role::Support, &[]).await;
        let session = sign_in(&app, &support).await;
        let r = call(&app, page("/ui/tickets", &session)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = text(r).await;
        assert_eq!(count(&html, "<article class=\"card"), COLUMN_CARDS);
        assert!(html.contains(&format!("data-count=\"{n}\"")), "the total");
        let at = html
            .find("/ui/tickets?state=open&amp;cursor=")
            .expect("a more link");
        let link = html[at..].split('"').next().unwrap().replace("&amp;", "&");
        let html = text(call(&app, page(&link, &session)).await).await;
        assert_eq!(count(&html, "<article class=\"card"), n - COLUMN_CARDS);
        assert_eq!(count(&html, "<section class=\"column\""), 1);
        assert!(
            !html.contains("<p class=\"more\">"),
            "the last page has no more link"
        );
        // The oldest ticket is on the second page only.
        assert!(html.contains("data-ticket=\"1\""));
        for bad in [
            "/ui/tickets?state=open&cursor=junk",
            "/ui/tickets?state=flying",
        ] {
            let r = call(&app, page(bad, &session)).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    /// Issue 21, item 4: a delivered ticket whose follow-up call is
    /// overdue is listed above the board's columns, and a link leads to
    /// the complaint form.
    async fn overdue_follow_ups_head_the_board(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        crate::http::testing::register(&db, &[("fa", "A1")]).await;
        let web = state(db.clone(), dir.path());
        let tickets = web.api.tickets.clone();
        let app = crate::http::app(web);
        let long_ago = chrono::Utc::now() - chrono::TimeDelta::days(5);
        let t = tickets
            .create(
                TicketKind::Complaint,
                FleetId::new("fa").unwrap(),
                VehicleId::new("A1").unwrap(),
                None,
                "bin lift jerks".to_owned(),
                String::new(),
                "test",
                long_ago,
            )
            .await
            .unwrap();
        for to in [
            TicketState::Dispatched,
            TicketState::Diagnosing,
            TicketState::InRepair,
            TicketState::QualityCheck,
            TicketState::Delivered,
        ] {
            let m = Transition {
                assignee: Some("Li".into()),
                outlet: Some("north".into()),
                ..Transition::to(to)
            };
            tickets.transition(t.id, m, "test", long_ago).await.unwrap();
        }
        let support = token(&db, Role::Support, &[]).await;
        let session = sign_in(&app, &support).await;
        let html = text(call(&app, page("/ui/tickets", &session)).await).await;
        let section = html
            .find("id=\"follow-ups\"")
            .expect("the follow-ups section");
        assert!(
            html[section..].contains(&format!("data-ticket=\"{}\"", t.id)),
            "{html}"
        );
        assert!(html.contains("href=\"/ui/complaints/new\""));
        // An operator of another fleet does not see it.
        let other = token(&db, Role::Operator, &["fb"]).await;
        let session = sign_in(&app, &other).await;
        let html = text(call(&app, page("/ui/tickets", &session)).await).await;
        assert!(!html.contains("id=\"follow-ups\""));
    }

    #[test]
    fn overdue_follow_ups_on_sqlite() {
        crate::db::testing::on_sqlite(overdue_follow_ups_head_the_board);
    }

    #[test]
    fn board_pages_on_sqlite() {
        crate::db::testing::on_sqlite(the_board_shows_a_page_per_column);
    }

    #[test]
    fn parts_are_read_as_part_and_quantity() {
        assert_eq!(
            parse_parts("FLT-OIL-01:2, THERMO-01 ,").unwrap(),
            vec![("FLT-OIL-01".to_owned(), 2), ("THERMO-01".to_owned(), 1)]
        );
        assert!(parse_parts("X:two").is_err());
    }

    #[test]
    fn empty_form_fields_are_not_given() {
        let form = MoveForm {
            csrf: String::new(),
            to: "dispatched".into(),
            back: None,
            note: Some(" ".into()),
            assignee: Some("Li".into()),
            outlet: Some("".into()),
            satisfaction: Some("".into()),
            outcome: None,
            labour_hours: None,
            parts_used: None,
            warranty: Some("".into()),
            on_site: None,
            zone: Some(" ".into()),
            tasks_done: None,
        };
        let t = form.transition().unwrap();
        assert_eq!(t.to, TicketState::Dispatched);
        assert_eq!(t.assignee.as_deref(), Some("Li"));
        assert_eq!(
            (t.note, t.outlet, t.satisfaction, t.warranty),
            (None, None, None, None)
        );
    }
}
