//! `/ui/stock`: the parts ledger (C11, issue 22) — stock and open orders
//! per depot (the API's `GET /stock`), one part's movements (`GET
//! /stock/movements`) and, for the roles that may see the parts reports,
//! the reorder suggestions (`GET /reports/parts/reorder`). Operators see
//! the depots of their fleets' vehicles only, and no reorder suggestions.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use super::WebState;
use super::error::WebError;
use super::layout::{Nav, number, page as frame, scroll, time};
use super::session::Session;
use crate::catalog::PartId;
use crate::http::api::page::{decode, encode};
use crate::http::api::stock::{PartDepotKey, StockQuery, movement_rows, stock_rows};
use crate::http::api::{ApiError, Resource, reports};

/// Stock rows on one page.
const PAGE_ROWS: usize = 200;
/// Movements shown of the chosen part.
const MOVEMENTS: usize = 100;
/// Reorder suggestions shown.
const SUGGESTIONS: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct StockPageQuery {
    /// Only this depot's stock.
    depot: Option<String>,
    /// The part whose movements are shown.
    part: Option<String>,
    /// Where the stock table continues (a cursor of the API's `/stock`).
    cursor: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `GET /ui/stock?depot=&part=&cursor=`.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<StockPageQuery>,
) -> Result<Response, WebError> {
    let scope = session.scope(Resource::Stock)?;
    let lang = session.lang;
    let t = lang.text();
    let catalog = &state.api.catalog;
    let (depot, part) = (given(&q.depot), given(&q.part));
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(decode::<PartDepotKey>(c).ok_or_else(|| {
            ApiError::BadRequest("cursor is not one this page gave; start again".to_owned())
        })?),
    };
    let filter = StockQuery {
        part: None,
        depot: depot.clone(),
    };
    let mut rows = stock_rows(&state.api, &scope, &filter, after.as_ref(), PAGE_ROWS + 1).await?;
    let next = (rows.len() > PAGE_ROWS).then(|| {
        rows.truncate(PAGE_ROWS);
        rows.last().map(|b| {
            encode(&PartDepotKey {
                part: b.part.clone(),
                depot: b.depot.clone(),
            })
        })
    });
    let part_id = part
        .as_deref()
        .map(|p| PartId::new(p).map_err(|e| ApiError::BadRequest(e.to_string())))
        .transpose()?;
    let movements = match &part_id {
        Some(p) => Some(movement_rows(&state.api, &scope, p, None, None, MOVEMENTS).await?),
        None => None,
    };
    let suggestions = if session.may_use(Resource::PartsReport) {
        let scope = session.scope(Resource::PartsReport)?;
        let mut rows = reports::reorder_rows(&state.api, &scope, Utc::now()).await?;
        rows.retain(|r| r.order_qty > 0 || r.order_by.is_some());
        rows.sort_by(|a, b| {
            (a.order_by.is_none(), a.order_by, &a.part, &a.depot).cmp(&(
                b.order_by.is_none(),
                b.order_by,
                &b.part,
                &b.depot,
            ))
        });
        rows.truncate(SUGGESTIONS);
        Some(rows)
    } else {
        None
    };
    let unit = |p: &PartId| catalog.part(p).map_or_else(String::new, |p| p.unit.clone());
    let link = |part: &PartId| {
        let mut query = vec![format!(
            "part={}",
            super::error::percent_encode(part.as_str())
        )];
        if let Some(d) = &depot {
            query.push(format!("depot={}", super::error::percent_encode(d)));
        }
        format!("/ui/stock?{}#movements", query.join("&"))
    };
    let body = html! {
        form.filters method="get" action="/ui/stock" {
            label { (t.depot) " " input type="text" name="depot" value=(depot.clone().unwrap_or_default()); }
            label { (t.part) " " input type="text" name="part" value=(part.clone().unwrap_or_default()); }
            button type="submit" { (t.filter) }
            a href="/ui/stock" { (t.clear_filter) }
        }
        section #stock {
            h2 { (t.stock_by_depot) }
            @if rows.is_empty() {
                p.muted { (t.nothing_here) }
            } @else {
                (scroll(html! {
                    table #stock-table.stack {
                        thead { tr {
                            th { (t.depot) } th { (t.part) } th { (t.unit) }
                            th.num { (t.on_hand) } th.num { (t.on_order) }
                        } }
                        tbody {
                            @for b in &rows {
                                tr.short[b.below_zero] data-part=(b.part.as_str()) data-depot=(b.depot.as_str()) {
                                    td data-label=(t.depot) { (b.depot.as_str()) }
                                    td data-label=(t.part) {
                                        a href=(link(&b.part)) { (lang.part_name(catalog, &b.part)) }
                                        " " small.muted { (b.part.as_str()) }
                                    }
                                    td data-label=(t.unit) { (unit(&b.part)) }
                                    td.num data-label=(t.on_hand) data-col="on-hand" {
                                        @if b.below_zero {
                                            strong title=(t.below_zero) { (b.on_hand) }
                                        } @else {
                                            (b.on_hand)
                                        }
                                    }
                                    td.num data-label=(t.on_order) data-col="on-order" { (b.on_order) }
                                }
                            }
                        }
                    }
                }))
                @if let Some(Some(cursor)) = &next {
                    p { a.more href=(format!("/ui/stock?cursor={cursor}{}", depot.as_deref().map(|d| format!("&depot={}", super::error::percent_encode(d))).unwrap_or_default())) { (t.more_rows) } }
                }
            }
        }
        @if let (Some(p), Some(list)) = (&part_id, &movements) {
            section #movements data-part=(p.as_str()) {
                h2 { (t.movements_of) " " (lang.part_name(catalog, p)) " (" (p.as_str()) ")" }
                @if list.is_empty() {
                    p.muted { (t.nothing_here) }
                } @else {
                    (scroll(html! {
                        table.stack {
                            thead { tr {
                                th { (t.time) } th { (t.depot) } th { (t.kind) } th.num { (t.quantity) }
                                th { (t.reference) } th { (t.actor) }
                            } }
                            tbody {
                                @for m in list {
                                    tr data-kind=(m.kind.as_str()) {
                                        td data-label=(t.time) { (time(m.at)) }
                                        td data-label=(t.depot) { (m.depot.as_str()) }
                                        td data-label=(t.kind) { (m.kind.as_str()) }
                                        td.num data-label=(t.quantity) data-col="qty" { (m.qty) }
                                        td data-label=(t.reference) { (m.reference) }
                                        td data-label=(t.actor) { (m.actor) }
                                    }
                                }
                            }
                        }
                    }))
                }
            }
        }
        @if let Some(list) = &suggestions {
            section #reorder {
                h2 { (t.reorder_title) }
                @if list.is_empty() {
                    p.muted { (t.nothing_to_order) }
                } @else {
                    (scroll(html! {
                        table #reorder-table.stack {
                            thead { tr {
                                th { (t.part) } th { (t.depot) } th.num { (t.on_hand) } th.num { (t.on_order) }
                                th.num { (t.parts_weekly) } th.num { (t.lead_time) } th.num { (t.reorder_point) }
                                th.num { (t.order_qty) } th { (t.order_by) }
                            } }
                            tbody {
                                @for r in list {
                                    tr data-part=(r.part.as_str()) data-depot=(r.depot.as_str()) {
                                        td data-label=(t.part) { a href=(link(&r.part)) { (r.part.as_str()) } }
                                        td data-label=(t.depot) { (r.depot.as_str()) }
                                        td.num data-label=(t.on_hand) { (r.on_hand) }
                                        td.num data-label=(t.on_order) { (r.on_order) }
                                        td.num data-label=(t.parts_weekly) { (number(r.weekly_demand, 2)) }
                                        td.num data-label=(t.lead_time) { (r.lead_time_days) }
                                        td.num data-label=(t.reorder_point) { (number(r.reorder_point, 2)) }
                                        td.num data-label=(t.order_qty) data-col="order-qty" { strong { (r.order_qty) } }
                                        td data-label=(t.order_by) data-col="order-by" {
                                            (r.order_by.map_or_else(|| "–".to_owned(), |d| d.to_string()))
                                        }
                                    }
                                }
                            }
                        }
                    }))
                }
            }
        }
    };
    Ok(frame(&session, Some(Nav::Stock), t.stock_title, body).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use fleetcare_ingest::ids::{FleetId, VehicleId};

    use crate::catalog::{ModelId, PartId};
    use crate::db::Db;
    use crate::db::testing::db_tests;
    use crate::http::api::Role;
    use crate::http::testing::{call, page, register, sign_in, state, text, token};
    use crate::parts::{MovementKind, NewMovement};
    use crate::registry::Depot;
    use crate::tickets::{NewAlert, Priority, TicketKind, TicketState, Transition};

    fn receipt(part: &str, depot: &str, qty: i64) -> NewMovement {
        NewMovement {
            part: PartId::new(part).unwrap(),
            depot: Depot::new(depot).unwrap(),
            kind: MovementKind::Receipt,
            qty,
            at: chrono::Utc::now(),
            reference: "order:PO-7".to_owned(),
            actor: "cli".to_owned(),
        }
    }

    db_tests!(the_stock_page_and_the_parts_at_diagnosis);

    /// Issue 22: the ledger page shows stock by depot (an operator only its
    /// vehicles' depots, without reorder suggestions), a part's movements,
    /// and a ticket at diagnosis the depot's stock of its fault's parts.
    async fn the_stock_page_and_the_parts_at_diagnosis(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        register(&db, &[("fa", "A1")]).await;
        sqlx::query(
            "INSERT INTO vehicles (vehicle_id, fleet_id, model_id, vin, commissioned_on, depot) \
             VALUES ('B1', 'fb', 'compactor-c12', NULL, '2024-01-01', 'south')",
        )
        .execute(db.pool())
        .await
        .unwrap();
        crate::parts::record(
            &db,
            &[
                receipt("THERMO-01", "north", 3),
                receipt("THERMO-01", "south", 9),
            ],
        )
        .await
        .unwrap();
        let web = state(db.clone(), dir.path());
        let tickets = web.api.tickets.clone();
        let app = crate::http::app(web);

        let support = sign_in(&app, &token(&db, Role::Support, &[]).await).await;
        let r = call(&app, page("/ui/stock?part=THERMO-01", &support)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = text(r).await;
        assert!(
            html.contains(r#"data-part="THERMO-01" data-depot="north""#),
            "{html}"
        );
        assert!(html.contains(r#"data-part="THERMO-01" data-depot="south""#));
        assert_eq!(html.matches(r#"<tr data-kind="receipt">"#).count(), 2);
        assert!(html.contains(r#"<section id="reorder">"#));

        let operator = sign_in(&app, &token(&db, Role::Operator, &["fa"]).await).await;
        let html = text(call(&app, page("/ui/stock?part=THERMO-01", &operator)).await).await;
        assert!(html.contains(r#"data-depot="north""#));
        assert!(!html.contains("south"), "another fleet's depot: {html}");
        assert_eq!(html.matches(r#"<tr data-kind="receipt">"#).count(), 1);
        assert!(!html.contains(r#"<section id="reorder">"#));

        let ticket = tickets
            .raise(NewAlert {
                kind: TicketKind::Fault,
                fleet: Some(FleetId::new("fa").unwrap()),
                vehicle: Some(VehicleId::new("A1").unwrap()),
                model: Some(ModelId::new("compactor-c12").unwrap()),
                key: "110:0".to_owned(),
                priority: Priority::P1,
                title: "coolant".to_owned(),
                details: String::new(),
                at: chrono::Utc::now(),
            })
            .await
            .unwrap()
            .into_ticket();
        let path = format!("/ui/tickets/{}", ticket.id);
        let html = text(call(&app, page(&path, &support)).await).await;
        assert!(!html.contains("parts-check"), "not before diagnosing");
        for to in [TicketState::Dispatched, TicketState::Diagnosing] {
            let t = Transition {
                assignee: Some("Li Na".to_owned()),
                outlet: Some("north".to_owned()),
                ..Transition::to(to)
            };
            tickets
                .transition(ticket.id, t, "support:1", chrono::Utc::now())
                .await
                .unwrap();
        }
        let html = text(call(&app, page(&path, &support)).await).await;
        assert!(
            html.contains(
                r#"<section id="parts-check" data-depot="north" data-all-on-hand="false">"#
            ),
            "{html}"
        );
        assert!(html.contains(r#"data-part="THERMO-01" data-enough="true""#));
        assert!(html.contains(r#"data-part="COOLANT-L" data-enough="false""#));
    }
}
