//! `/ui/parts`: the parts forecast (the API's `GET /reports/parts`): each
//! part's demand over the forecast against its stock, one part's weekly
//! demand, and the table, with shortfalls highlighted.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use maud::html;
use serde::Deserialize;

use super::WebState;
use super::chart::{self, Bar, Bullet};
use super::error::WebError;
use super::layout::{Nav, number, page as frame, scroll};
use super::session::Session;
use crate::catalog::PartId;
use crate::http::api::{Resource, reports};
use crate::report::PartsRow;

#[derive(Debug, Default, Deserialize)]
pub struct PartsQuery {
    /// The part whose weeks the second chart shows.
    part: Option<String>,
}

/// One part over the forecast: its rows (by week) and their totals.
struct PartForecast<'a> {
    part: &'a PartId,
    rows: Vec<&'a PartsRow>,
    demand: f64,
    on_hand: Option<f64>,
    short: bool,
}

fn by_part(rows: &[PartsRow]) -> Vec<PartForecast<'_>> {
    let mut out: Vec<PartForecast<'_>> = Vec::new();
    for r in rows {
        match out.last_mut() {
            Some(p) if p.part == &r.part => p.rows.push(r),
            _ => out.push(PartForecast {
                part: &r.part,
                rows: vec![r],
                demand: 0.0,
                on_hand: r.on_hand,
                short: false,
            }),
        }
    }
    for p in &mut out {
        p.demand = p.rows.iter().map(|r| r.total_qty).sum();
        p.short = p.rows.iter().any(|r| r.shortfall.is_some_and(|s| s > 0.0));
    }
    out
}

/// `GET /ui/parts?part=`.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<PartsQuery>,
) -> Result<Response, WebError> {
    let scope = session.scope(Resource::PartsReport)?;
    let rows = reports::parts_rows(&state.api, &scope, Utc::now()).await?;
    let lang = session.lang;
    let t = lang.text();
    let catalog = &state.api.catalog;
    let parts = by_part(&rows);
    let unit = |p: &PartId| catalog.part(p).map_or_else(String::new, |p| p.unit.clone());
    let shortfalls = parts.iter().filter(|p| p.short).count();
    // The chosen part, else the first short one, else the first.
    let selected = parts
        .iter()
        .find(|p| q.part.as_deref() == Some(p.part.as_str()))
        .or_else(|| parts.iter().find(|p| p.short))
        .or_else(|| parts.first());
    let bullets: Vec<Bullet> = parts
        .iter()
        .map(|p| Bullet {
            label: p.part.to_string(),
            demand: p.demand,
            on_hand: p.on_hand,
            unit: unit(p.part),
        })
        .collect();
    let body = html! {
        ul.stats {
            li { strong data-stat="parts" { (parts.len()) } " " (t.part) }
            li.bad[shortfalls > 0] { strong data-stat="shortfalls" { (shortfalls) } " " (t.shortfalls) }
        }
        @if rows.is_empty() {
            p.muted { (t.nothing_here) }
        } @else {
            div.charts {
                figure #demand-chart {
                    figcaption { (t.parts_chart) }
                    (chart::demand_against_stock(t.parts_chart, &bullets, (t.total, t.on_hand)))
                }
                @if let Some(p) = selected {
                    figure #weekly-chart data-part=(p.part.as_str()) {
                        figcaption { (t.parts_weekly) ": " (lang.part_name(catalog, p.part)) " (" (p.part.as_str()) ")" }
                        (chart::bars(
                            t.parts_weekly,
                            &p.rows.iter().map(|r| Bar {
                                label: r.week.format("%m-%d").to_string(),
                                segments: vec![r.planned_qty, r.corrective_qty],
                            }).collect::<Vec<_>>(),
                            &[t.planned, t.corrective],
                            &unit(p.part),
                        ))
                        form.filters method="get" action="/ui/parts" {
                            select name="part" aria-label=(t.part) {
                                @for o in &parts {
                                    option value=(o.part.as_str()) selected[o.part == p.part] {
                                        (o.part.as_str()) @if o.short { " ⚠" }
                                    }
                                }
                            }
                            button type="submit" { (t.parts_weekly) }
                        }
                    }
                }
            }
            (scroll(html! {
                table #parts-table.stack {
                    thead { tr {
                        th { (t.part) } th { (t.unit) } th { (t.week) } th.num { (t.planned) }
                        th.num { (t.corrective) } th.num { (t.total) } th.num { (t.on_hand) } th.num { (t.shortfall) }
                    } }
                    tbody {
                        @for r in &rows {
                            @let short = r.shortfall.is_some_and(|s| s > 0.0);
                            tr.short[short] data-part=(r.part.as_str()) data-week=(r.week) {
                                td data-label=(t.part) { (lang.part_name(catalog, &r.part)) " " small.muted { (r.part.as_str()) } }
                                td data-label=(t.unit) { (unit(&r.part)) }
                                td data-label=(t.week) { (r.week) }
                                td.num data-label=(t.planned) data-col="planned" { (number(r.planned_qty, 2)) }
                                td.num data-label=(t.corrective) data-col="corrective" { (number(r.corrective_qty, 2)) }
                                td.num data-label=(t.total) data-col="total" { (number(r.total_qty, 2)) }
                                td.num data-label=(t.on_hand) data-col="on-hand" { (r.on_hand.map_or_else(|| "–".to_owned(), |v| number(v, 2))) }
                                td.num data-label=(t.shortfall) data-col="shortfall" {
                                    @match r.shortfall {
                                        Some(s) if s > 0.0 => strong { (number(s, 2)) },
                                        Some(s) => (number(s, 2)),
                                        None => "–",
                                    }
                                }
                            }
                        }
                    }
                }
            }))
        }
    };
    Ok(frame(&session, Some(Nav::Parts), t.parts_title, body).into_response())
}
