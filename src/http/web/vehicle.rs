//! `/ui/vehicles/{id}`: a vehicle's service archive (the API's
//! `GET /vehicles/{id}`) with meter charts over the last 90 days, a fault
//! timeline, services, parts replaced, tickets and the next services.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::{Fmi, Spn};
use maud::{Markup, html};

use super::WebState;
use super::chart::{self, Lane};
use super::error::WebError;
use super::i18n::Lang;
use super::layout::{Nav, number, page as frame, scroll, time, time_text};
use super::session::Session;
use super::tickets::ticket_table;
use crate::catalog::{Catalog, ModelId};
use crate::http::api::vehicles::Archive;
use crate::http::api::{ApiError, Resource, blocking, vehicles};
use crate::query::archive::{self, EPISODE_DAYS};

/// `GET /ui/vehicles/{id}`: 404 for a vehicle the user may not see.
pub async fn page(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let scope = session.scope(Resource::Vehicles)?;
    let archive = vehicles::service_archive(&state.api, &scope, &id).await?;
    let not_found = || ApiError::NotFound("vehicle".to_owned());
    let fleet = FleetId::new(&archive.vehicle.fleet).map_err(|_| not_found())?;
    let vehicle = VehicleId::new(&archive.vehicle.id).map_err(|_| not_found())?;
    let now = Utc::now();
    let from = now - chrono::Duration::days(EPISODE_DAYS);
    let st = state.api.clone();
    let mut registry =
        crate::report::Registry::load(&st.db, now, crate::registry::ServiceHistory::Nothing)
            .await
            .map_err(ApiError::from)?;
    // The baseline needs the model's peers, and nothing else.
    registry
        .vehicles
        .retain(|v| v.model.as_str() == archive.vehicle.model);
    let (history, conditions) = blocking(move || {
        let store = archive::open(&st.store)?;
        let history = archive::meter_history(&store, &fleet, &vehicle, from.timestamp_micros())?;
        let ctx = crate::report::Context {
            catalog: &st.catalog,
            registry: &registry,
            detect: &st.config.detect,
            as_of: now,
        };
        let conditions = crate::report::condition::vehicle_charts(&store, &ctx, &fleet, &vehicle)?;
        Ok((history, conditions))
    })
    .await?;
    let lang = session.lang;
    let t = lang.text();
    let catalog = &state.api.catalog;
    let model = ModelId::new(archive.vehicle.model.clone()).ok();
    let title = format!("{} · {}", archive.vehicle.id, t.vehicle_title);
    let x_labels = (
        from.format("%Y-%m-%d").to_string(),
        now.format("%Y-%m-%d").to_string(),
    );
    let body = html! {
        (facts(&archive, lang, catalog, model.as_ref()))
        section #next-services {
            h2 { (t.next_service) }
            (next_services(&archive, lang, catalog))
        }
        @if !archive.duty_meters.is_empty() {
            section #duty {
                h2 { (t.duty_meters) }
                (duty_meters(&archive, lang, catalog))
            }
        }
        section #meter-charts {
            h2 { (t.meters) }
            @if history.is_empty() {
                p.muted { (t.meter_chart_none) }
            } @else {
                div.charts {
                    @for (meter, points) in &history {
                        figure data-meter=(meter) {
                            figcaption { (meter_label(lang, meter)) }
                            (chart::line(meter_label(lang, meter), points, (&x_labels.0, &x_labels.1)))
                        }
                    }
                }
            }
        }
        section #condition-charts {
            h2 { (t.conditions) }
            @if conditions.is_empty() {
                p.muted { (t.condition_none) }
            } @else {
                div.charts {
                    @for c in &conditions {
                        @let labels = condition_labels(&c.days);
                        figure data-signal=(c.signal) {
                            figcaption {
                                (c.signal) " "
                                small.muted {
                                    @if c.watched { (t.condition_expected) } @else { (t.condition_learning) }
                                }
                            }
                            (chart::band_line(&c.signal, &c.days, c.band, (&labels.0, &labels.1)))
                        }
                    }
                }
            }
        }
        section #faults {
            h2 { (t.fault_timeline) }
            (fault_timeline(&archive, lang, catalog, model.as_ref(), from, now, &x_labels))
        }
        section #services {
            h2 { (t.services_done) }
            (services(&archive, lang, catalog, model.as_ref()))
        }
        section #parts {
            h2 { (t.parts_replaced) }
            (parts_replaced(&archive, lang, catalog, model.as_ref()))
        }
        section #tickets {
            h2 { (t.tickets) }
            (ticket_table(&archive.tickets, lang, catalog))
        }
    };
    Ok(frame(&session, Some(Nav::Overview), &title, body).into_response())
}

/// The first and last day of a condition chart as dates.
fn condition_labels(days: &[(i64, f64, f64)]) -> (String, String) {
    let date = |d: Option<&(i64, f64, f64)>| {
        d.and_then(|d| DateTime::from_timestamp(d.0 * 86_400, 0))
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    (date(days.first()), date(days.last()))
}

/// A meter's name with its unit.
fn meter_label(lang: Lang, meter: &str) -> &str {
    let t = lang.text();
    match meter {
        "engine_hours" => t.meter_engine_hours,
        "pto_hours" => t.meter_pto_hours,
        "odometer_km" => t.meter_odometer_km,
        "days" => t.meter_days,
        other => other,
    }
}

fn facts(a: &Archive, lang: Lang, catalog: &Catalog, model: Option<&ModelId>) -> Markup {
    let t = lang.text();
    let v = &a.vehicle;
    html! {
        dl.facts #vehicle-facts data-vehicle=(v.id) data-fleet=(v.fleet) {
            div { dt { (t.fleet) } dd { (v.fleet) } }
            div { dt { (t.model) } dd { @match model { Some(m) => (lang.model_name(catalog, m)), None => (v.model) } } }
            div { dt { (t.vin) } dd { (v.vin.as_deref().unwrap_or("–")) } }
            div { dt { (t.commissioned) } dd { (v.commissioned_on) } }
            div { dt { (t.depot) } dd { (v.depot) } }
            @for m in &a.meters {
                div data-meter=(m.meter) {
                    dt { (meter_label(lang, &m.meter)) }
                    dd { strong { (number(m.value, 1)) } " " small.muted { (time_text(&m.ts)) } }
                }
            }
        }
    }
}

/// The three meter columns' headings (engine hours, PTO hours, km).
fn meter_heads(lang: Lang) -> Markup {
    let t = lang.text();
    html! {
        th.num { (t.meter_engine_hours) } th.num { (t.meter_pto_hours) } th.num { (t.meter_odometer_km) }
    }
}

/// The three meter columns' cells.
fn meter_cells(lang: Lang, values: [Option<f64>; 3]) -> Markup {
    let t = lang.text();
    let labels = [t.meter_engine_hours, t.meter_pto_hours, t.meter_odometer_km];
    html! {
        @for (label, v) in labels.iter().zip(values) {
            td.num data-label=(label) { (v.map_or_else(|| "–".to_owned(), |v| number(v, 1))) }
        }
    }
}

fn next_services(a: &Archive, lang: Lang, catalog: &Catalog) -> Markup {
    let t = lang.text();
    if a.next_services.is_empty() {
        return html! { p.muted { (t.nothing_here) } };
    }
    scroll(html! {
        table.stack {
            thead { tr {
                th { (t.task) } th { (t.due_on) } (meter_heads(lang))
                th { (t.expected_on) }
            } }
            tbody {
                @for n in &a.next_services {
                    tr data-task=(n.task.as_str()) {
                        td data-label=(t.task) { (lang.task_name(catalog, &n.model, n.task.as_str())) }
                        td data-label=(t.due_on) { (n.due_on.map_or_else(|| "–".to_owned(), |d| d.to_string())) }
                        (meter_cells(lang, [n.engine_hours, n.pto_hours, n.odometer_km]))
                        td data-label=(t.expected_on) { (n.expected_on.map_or_else(|| "–".to_owned(), |d| d.to_string())) }
                    }
                }
            }
        }
    })
}

/// Tasks with hard duty (C12): the meter's reading beside what counts
/// toward the interval.
fn duty_meters(a: &Archive, lang: Lang, catalog: &Catalog) -> Markup {
    let t = lang.text();
    let Ok(model) = ModelId::new(a.vehicle.model.clone()) else {
        return html! {};
    };
    scroll(html! {
        table.stack #duty-meters {
            thead { tr {
                th { (t.task) } th { (t.duty_rule) } th { (t.meters) }
                th.num { (t.duty_raw) } th.num { (t.duty_adjusted) }
            } }
            tbody {
                @for d in &a.duty_meters {
                    tr data-task=(d.task.as_str()) data-meter=(d.meter.as_str()) {
                        td data-label=(t.task) { (lang.task_name(catalog, &model, d.task.as_str())) }
                        td data-label=(t.duty_rule) { (format!("{} > {} × {}", d.signal, d.above, d.factor)) }
                        td data-label=(t.meters) { (meter_label(lang, d.meter.as_str())) }
                        td.num data-label=(t.duty_raw) { (number(d.raw, 1)) }
                        td.num data-label=(t.duty_adjusted) { (number(d.adjusted, 1)) }
                    }
                }
            }
        }
    })
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn fault_name(
    lang: Lang,
    catalog: &Catalog,
    model: Option<&ModelId>,
    spn: i64,
    fmi: i64,
) -> Option<String> {
    let spn = Spn::new(u32::try_from(spn).ok()?)?;
    let fmi = Fmi::new(u8::try_from(fmi).ok()?)?;
    lang.fault_name(catalog, model?, spn, fmi)
}

fn fault_timeline(
    a: &Archive,
    lang: Lang,
    catalog: &Catalog,
    model: Option<&ModelId>,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    x_labels: &(String, String),
) -> Markup {
    let t = lang.text();
    if a.episodes.is_empty() {
        return html! { p.muted { (t.nothing_here) } };
    }
    // One lane per fault code, oldest code first.
    let mut lanes: Vec<Lane> = Vec::new();
    for e in a.episodes.iter().rev() {
        let label = format!("{}/{}", e.spn, e.fmi);
        let Some(start) = parse_time(&e.started) else {
            continue;
        };
        let end = e
            .ended
            .as_deref()
            .and_then(parse_time)
            .map(|t| t.timestamp());
        let span = (start.timestamp(), end);
        match lanes.iter_mut().find(|l| l.label == label) {
            Some(l) => l.spans.push(span),
            None => lanes.push(Lane {
                label,
                spans: vec![span],
            }),
        }
    }
    html! {
        (chart::timeline(t.fault_timeline, &lanes, from.timestamp(), now.timestamp(), (&x_labels.0, &x_labels.1)))
        (scroll(html! {
            table.stack #episodes {
                thead { tr {
                    th { (t.fault) } th.num { "SPN" } th.num { "FMI" } th { (t.source) }
                    th { (t.started) } th { (t.ended) } th { (t.red_stop) }
                } }
                tbody {
                    @for e in &a.episodes {
                        tr.active[e.ended.is_none()] data-spn=(e.spn) data-fmi=(e.fmi) {
                            td data-label=(t.fault) { (fault_name(lang, catalog, model, e.spn, e.fmi).unwrap_or_else(|| "–".to_owned())) }
                            td.num data-label="SPN" { (e.spn) }
                            td.num data-label="FMI" { (e.fmi) }
                            td data-label=(t.source) { (e.source) }
                            td data-label=(t.started) { (time_text(&e.started)) }
                            td data-label=(t.ended) {
                                @match &e.ended {
                                    Some(end) => (time_text(end)),
                                    None => span.badge.bad { (t.still_active) },
                                }
                            }
                            td data-label=(t.red_stop) { (e.red_stop.as_deref().unwrap_or("–")) }
                        }
                    }
                }
            }
        }))
    }
}

fn services(a: &Archive, lang: Lang, catalog: &Catalog, model: Option<&ModelId>) -> Markup {
    let t = lang.text();
    if a.services.is_empty() {
        return html! { p.muted { (t.nothing_here) } };
    }
    scroll(html! {
        table.stack {
            thead { tr {
                th { (t.task) } th { (t.performed) } (meter_heads(lang))
                th { (t.source) }
            } }
            tbody {
                @for s in &a.services {
                    tr {
                        td data-label=(t.task) {
                            @match model { Some(m) => (lang.task_name(catalog, m, &s.task)), None => (s.task) }
                        }
                        td data-label=(t.performed) { (time_text(&s.performed_at)) }
                        (meter_cells(lang, [s.engine_hours, s.pto_hours, s.odometer_km]))
                        td data-label=(t.source) { (if s.source == "ticket" { t.from_ticket } else { t.from_import }) }
                    }
                }
            }
        }
    })
}

/// One part replaced: when, what, how many, and from which record.
struct Replaced {
    at: Option<DateTime<Utc>>,
    part: String,
    qty: f64,
    source: Markup,
}

/// Parts recorded on the vehicle's tickets, and those its maintenance
/// services use by the catalogue's plan, newest first.
fn parts_replaced(a: &Archive, lang: Lang, catalog: &Catalog, model: Option<&ModelId>) -> Markup {
    let t = lang.text();
    let mut rows: Vec<Replaced> = Vec::new();
    for ticket in &a.tickets {
        for p in &ticket.parts_used {
            rows.push(Replaced {
                at: ticket.closed_at.or(Some(ticket.updated_at)),
                part: p.part.clone(),
                qty: f64::from(p.qty),
                source: html! { a href=(format!("/ui/tickets/{}", ticket.id)) { (t.from_ticket) " #" (ticket.id) } },
            });
        }
    }
    if let Some(task_model) = model.and_then(|m| catalog.model(m)) {
        for s in &a.services {
            let Some(task) = task_model.task(s.task.as_str()) else {
                continue;
            };
            for p in &task.parts {
                rows.push(Replaced {
                    at: parse_time(&s.performed_at),
                    part: p.part.to_string(),
                    qty: p.qty,
                    source: html! { (t.service_plan) ": " (lang.task_name(catalog, &task_model.id, &s.task)) },
                });
            }
        }
    }
    if rows.is_empty() {
        return html! { p.muted { (t.nothing_here) } };
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.at));
    scroll(html! {
        table.stack {
            thead { tr { th { (t.time) } th { (t.part) } th.num { (t.quantity) } th { (t.source) } } }
            tbody {
                @for r in &rows {
                    tr data-part=(r.part) {
                        td data-label=(t.time) { @if let Some(at) = r.at { (time(at)) } }
                        td data-label=(t.part) {
                            @match crate::catalog::PartId::new(r.part.clone()) {
                                Ok(id) => { (lang.part_name(catalog, &id)) " " small.muted { (r.part) } }
                                Err(_) => (r.part),
                            }
                        }
                        td.num data-label=(t.quantity) { (number(r.qty, 2)) }
                        td data-label=(t.source) { (r.source) }
                    }
                }
            }
        }
    })
}
