//! `/ui/`: the fleet overview. Each truck the user may see (the API's
//! `GET /vehicles`) with its active faults, services due (the `due`
//! report's rows), open tickets and when it last sent data.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::html;

use super::WebState;
use super::error::{WebError, see_other};
use super::layout::{Nav, page as frame, scroll, time};
use super::session::Session;
use crate::http::api::{Resource, blocking, reports, tickets, vehicles};
use crate::query::archive;
use crate::report::status::Status;
use crate::tickets::TicketFilter;

/// What the overview shows of one vehicle besides its registry row.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    active_faults: u32,
    overdue: u32,
    due_soon: u32,
    open_tickets: u32,
}

/// `GET /ui/`.
pub async fn page(State(state): State<WebState>, session: Session) -> Result<Response, WebError> {
    // A planner starts on the first page its role may open.
    if !session.may_use(Resource::Vehicles)
        && let Some(home) = super::login::home_of(&session)
    {
        return Ok(see_other(home));
    }
    let scope = session.scope(Resource::Vehicles)?;
    let api = &state.api;
    let vehicles = vehicles::visible_vehicles(api, &scope).await?;
    let due = reports::due_rows(api, &session.scope(Resource::Reports)?, Utc::now()).await?;
    let open = tickets::visible_tickets(
        api,
        &session.scope(Resource::Tickets)?,
        TicketFilter::default(),
    )
    .await?;
    let st = api.clone();
    let (active, seen) = blocking(move || {
        let store = archive::open(&st.store)?;
        let seen: HashMap<(String, String), i64> = store
            .seen_vehicles()
            .into_iter()
            .map(|v| {
                (
                    (v.fleet.as_str().to_owned(), v.vehicle.as_str().to_owned()),
                    v.last_seen.as_micros(),
                )
            })
            .collect();
        Ok((archive::active_faults(&store)?, seen))
    })
    .await?;

    let key = |f: &str, v: &str| (f.to_owned(), v.to_owned());
    let mut counts: HashMap<(String, String), Counts> = HashMap::new();
    for (k, n) in active {
        counts.entry(k).or_default().active_faults = n;
    }
    for row in &due {
        let c = counts
            .entry(key(row.fleet.as_str(), row.vehicle.as_str()))
            .or_default();
        match row.status {
            Status::Overdue => c.overdue += 1,
            Status::DueSoon => c.due_soon += 1,
            Status::Ok => {}
        }
    }
    for t in open.iter().filter(|t| !t.state.is_finished()) {
        if let (Some(f), Some(v)) = (&t.fleet, &t.vehicle) {
            counts
                .entry(key(f.as_str(), v.as_str()))
                .or_default()
                .open_tickets += 1;
        }
    }

    let lang = session.lang;
    let t = lang.text();
    let catalog = &api.catalog;
    let rows: Vec<_> = vehicles
        .iter()
        .map(|v| {
            let k = key(v.fleet.as_str(), v.id.as_str());
            (
                v,
                counts.get(&k).copied().unwrap_or_default(),
                seen.get(&k).copied(),
            )
        })
        .collect();
    let with_faults = rows.iter().filter(|r| r.1.active_faults > 0).count();
    let with_overdue = rows.iter().filter(|r| r.1.overdue > 0).count();
    let open_total: u32 = rows.iter().map(|r| r.1.open_tickets).sum();
    let body = html! {
        ul.stats {
            li { strong data-stat="vehicles" { (rows.len()) } " " (t.vehicles) }
            li.bad[with_faults > 0] { strong data-stat="with-faults" { (with_faults) } " " (t.with_faults) }
            li.bad[with_overdue > 0] { strong data-stat="with-overdue" { (with_overdue) } " " (t.with_overdue) }
            li { strong data-stat="open-tickets" { (open_total) } " " (t.open_tickets) }
        }
        @if rows.is_empty() {
            p { (t.nothing_here) }
        } @else {
            (scroll(html! {
                table #vehicles.stack {
                    thead { tr {
                        th { (t.vehicle) } th { (t.fleet) } th { (t.model) } th { (t.depot) }
                        th.num { (t.active_faults) } th { (t.services_due) }
                        th.num { (t.open_tickets) } th { (t.last_seen) }
                    } }
                    tbody {
                        @for (v, c, seen) in &rows {
                            tr data-vehicle=(v.id.as_str()) data-fleet=(v.fleet.as_str()) {
                                td data-label=(t.vehicle) { a href=(format!("/ui/vehicles/{}", v.id)) { (v.id.as_str()) } }
                                td data-label=(t.fleet) { (v.fleet.as_str()) }
                                td data-label=(t.model) { (lang.model_name(catalog, &v.model)) }
                                td data-label=(t.depot) { (v.depot.as_str()) }
                                td.num data-label=(t.active_faults) data-col="active-faults" {
                                    @if c.active_faults > 0 { span.badge.bad { (c.active_faults) } } @else { "0" }
                                }
                                td data-label=(t.services_due) data-col="services-due" data-overdue=(c.overdue) data-due-soon=(c.due_soon) {
                                    @if c.overdue > 0 { span.badge.bad { (c.overdue) " " (t.overdue) } " " }
                                    @if c.due_soon > 0 { span.badge.warn { (c.due_soon) " " (t.due_soon) } }
                                    @if c.overdue + c.due_soon == 0 { "–" }
                                }
                                td.num data-label=(t.open_tickets) data-col="open-tickets" {
                                    @if c.open_tickets > 0 {
                                        a href=(format!("/ui/tickets?vehicle={}", v.id)) { (c.open_tickets) }
                                    } @else { "0" }
                                }
                                td data-label=(t.last_seen) data-col="last-seen" {
                                    @match seen.and_then(chrono::DateTime::<Utc>::from_timestamp_micros) {
                                        Some(at) => (time(at)),
                                        None => span.muted { (t.never) },
                                    }
                                }
                            }
                        }
                    }
                }
            }))
        }
    };
    Ok(frame(&session, Some(Nav::Overview), t.overview_title, body).into_response())
}
