//! `/ui/`: the fleet overview. Each truck the user may see (the API's
//! `GET /vehicles`), a page at a time, with its active faults, services due
//! (the `due` report's rows), open tickets and when it last sent data; the
//! figures above the table count every visible truck.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use super::WebState;
use super::error::{WebError, see_other};
use super::layout::{Nav, page as frame, scroll, time};
use super::session::Session;
use crate::http::api::page::{self, VehicleKey};
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

/// Trucks the overview's table shows at a time; the figures above it
/// count every visible truck.
pub(crate) const ROWS: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    /// Where the table continues (the "more vehicles" link).
    cursor: Option<String>,
}

/// `GET /ui/[?cursor=]`.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<OverviewQuery>,
) -> Result<Response, WebError> {
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
    let after = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            page::decode::<VehicleKey>(c).ok_or_else(|| {
                WebError::BadRequest("that page of the overview does not exist".to_owned())
            })
        })
        .transpose()?;
    let ticket_scope = session.scope(Resource::Tickets)?;
    let open = api
        .tickets
        .open_per_vehicle(&tickets::scoped(&ticket_scope, TicketFilter::default()))
        .await
        .map_err(tickets::error)?;
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
    for (f, v, n) in &open {
        counts
            .entry(key(f.as_str(), v.as_str()))
            .or_default()
            .open_tickets = u32::try_from(*n).unwrap_or(u32::MAX);
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
    let total = rows.len();
    // The table: one page of the trucks, by fleet then id.
    let mut rows: Vec<_> = rows
        .into_iter()
        .filter(|(v, _, _)| {
            after
                .as_ref()
                .is_none_or(|a| (&v.fleet, &v.id) > (&a.fleet, &a.vehicle))
        })
        .take(ROWS + 1)
        .collect();
    let more = (rows.len() > ROWS).then(|| {
        rows.truncate(ROWS);
        rows.last().map(|(v, _, _)| {
            format!(
                "/ui/?cursor={}",
                page::encode(&VehicleKey {
                    fleet: v.fleet.clone(),
                    vehicle: v.id.clone(),
                })
            )
        })
    });
    let body = html! {
        ul.stats {
            li { strong data-stat="vehicles" { (total) } " " (t.vehicles) }
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
            @if let Some(link) = more.flatten() {
                p.more { a href=(link) { (t.more_vehicles) " →" } }
            }
            @if after.is_some() {
                p { a href="/ui/" { (t.from_the_start) } }
            }
        }
    };
    Ok(frame(&session, Some(Nav::Overview), t.overview_title, body).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::ROWS;
    use crate::db::Db;
    use crate::http::api::Role;
    use crate::http::testing::{call, page, register, sign_in, state, text, token};

    /// The overview's table shows a page of trucks and links to the next;
    /// its figures count them all.
    async fn the_overview_shows_a_page_of_trucks(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (0..ROWS + 3).map(|i| format!("T{i:04}")).collect();
        let pairs: Vec<(&str, &str)> = ids.iter().map(|v| ("fa", v.as_str())).collect();
        register(&db, &pairs).await;
        let app = crate::http::app(state(db.clone(), dir.path()));
        let support = token(&db, Role::Support, &[]).await;
        let session = sign_in(&app, &support).await;
        let r = call(&app, page("/ui/", &session)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = text(r).await;
        assert_eq!(html.matches("<tr data-vehicle=").count(), ROWS);
        assert!(html.contains(&format!("data-stat=\"vehicles\">{}<", ROWS + 3)));
        let at = html.find("/ui/?cursor=").expect("a more link");
        let link = html[at..].split('"').next().unwrap().to_owned();
        let html = text(call(&app, page(&link, &session)).await).await;
        let rows: Vec<&str> = html
            .match_indices("<tr data-vehicle=\"")
            .map(|(i, m)| &html[i + m.len()..i + m.len() + 5])
            .collect();
        assert_eq!(rows, ["T0100", "T0101", "T0102"]);
        assert!(!html.contains("<p class=\"more\">"));
        let r = call(&app, page("/ui/?cursor=junk", &session)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn overview_pages_on_sqlite() {
        crate::db::testing::on_sqlite(the_overview_shows_a_page_of_trucks);
    }
}
