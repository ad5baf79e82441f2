//! `/ui/trends`: the top faults per model and the episodes per week (the
//! API's `GET /reports/trends`), and batch defects, recurring failures and
//! repeat repairs (`GET /reports/recurring`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};
use maud::{Markup, html};

use super::WebState;
use super::chart::{self, Bar};
use super::error::WebError;
use super::i18n::Lang;
use super::layout::{Nav, number, page as frame, scroll, time};
use super::session::Session;
use crate::catalog::{Catalog, ModelId};
use crate::http::api::{Action, Resource, reports};
use crate::report::{RecurringKind, RecurringRow, TrendRow};
use crate::tickets::TicketKind;
use fleetcare_ingest::j1939::{Fmi, Spn};

/// Faults listed per model.
const TOP: usize = 10;

/// One fault code of one model over the report's weeks.
#[derive(Debug, Clone)]
struct FaultTotal {
    spn: Spn,
    fmi: Fmi,
    episodes: u32,
    /// The most vehicles it struck in one week.
    vehicles: u32,
    per_1000: Option<f64>,
    weeks: u32,
}

/// The trends rows summed per (model, fault), most episodes first.
fn totals(rows: &[TrendRow]) -> BTreeMap<ModelId, Vec<FaultTotal>> {
    let mut by: BTreeMap<(ModelId, Spn, Fmi), FaultTotal> = BTreeMap::new();
    for r in rows {
        let e = by
            .entry((r.model.clone(), r.spn, r.fmi))
            .or_insert(FaultTotal {
                spn: r.spn,
                fmi: r.fmi,
                episodes: 0,
                vehicles: 0,
                per_1000: None,
                weeks: 0,
            });
        e.episodes += r.episodes;
        e.vehicles = e.vehicles.max(r.vehicles);
        e.weeks += 1;
        if let Some(p) = r.per_1000_engine_hours {
            e.per_1000 = Some(e.per_1000.unwrap_or(0.0) + p);
        }
    }
    let mut out: BTreeMap<ModelId, Vec<FaultTotal>> = BTreeMap::new();
    for ((model, ..), mut total) in by {
        // The weekly rate, averaged over the weeks the fault occurred.
        total.per_1000 = total.per_1000.map(|p| p / f64::from(total.weeks.max(1)));
        out.entry(model).or_default().push(total);
    }
    for faults in out.values_mut() {
        faults.sort_by(|a, b| {
            b.episodes
                .cmp(&a.episodes)
                .then((a.spn, a.fmi).cmp(&(b.spn, b.fmi)))
        });
    }
    out
}

/// Episodes per week, stacked by model (models in `models` order).
fn weekly(rows: &[TrendRow], models: &[ModelId]) -> Vec<Bar> {
    let mut weeks: BTreeMap<NaiveDate, Vec<f64>> = BTreeMap::new();
    for r in rows {
        let Some(i) = models.iter().position(|m| *m == r.model) else {
            continue;
        };
        let w = weeks
            .entry(r.week)
            .or_insert_with(|| vec![0.0; models.len()]);
        if let Some(v) = w.get_mut(i) {
            *v += f64::from(r.episodes);
        }
    }
    weeks
        .into_iter()
        .map(|(week, segments)| Bar {
            label: week.format("%m-%d").to_string(),
            segments,
        })
        .collect()
}

/// `GET /ui/trends`.
pub async fn page(State(state): State<WebState>, session: Session) -> Result<Response, WebError> {
    let scope = session.scope(Resource::Reports)?;
    let now = Utc::now();
    let trends = reports::trend_rows(&state.api, &scope, now).await?;
    let recurring = reports::recurring_rows(&state.api, &scope, now).await?;
    let lang = session.lang;
    let t = lang.text();
    let catalog = &state.api.catalog;
    let totals = totals(&trends);
    let models: Vec<ModelId> = totals.keys().cloned().collect();
    let model_names: Vec<String> = models.iter().map(|m| lang.model_name(catalog, m)).collect();
    let legend: Vec<&str> = model_names.iter().map(String::as_str).collect();
    let (batch, other): (Vec<&RecurringRow>, Vec<&RecurringRow>) = recurring
        .iter()
        .partition(|r| r.kind == RecurringKind::BatchDefect);
    let body = html! {
        section #weekly {
            h2 { (t.weekly_faults) }
            @if trends.is_empty() {
                p.muted { (t.nothing_here) }
            } @else {
                (chart::bars(t.weekly_faults, &weekly(&trends, &models), &legend, ""))
            }
        }
        section #top-faults {
            h2 { (t.top_faults) }
            @if totals.is_empty() { p.muted { (t.nothing_here) } }
            div.columns {
                @for (model, faults) in &totals {
                    div.model data-model=(model.as_str()) {
                        h3 { (lang.model_name(catalog, model)) }
                        (scroll(html! {
                            table.stack {
                                thead { tr {
                                    th { (t.fault) } th.num { "SPN/FMI" } th.num { (t.episodes) }
                                    th.num { (t.vehicles) } th.num { (t.per_1000_h) }
                                } }
                                tbody {
                                    @for f in faults.iter().take(TOP) {
                                        tr data-spn=(f.spn) data-fmi=(f.fmi) data-episodes=(f.episodes) {
                                            td data-label=(t.fault) { (lang.fault_name(catalog, model, f.spn, f.fmi).unwrap_or_else(|| "–".to_owned())) }
                                            td.num data-label="SPN/FMI" { (f.spn) "/" (f.fmi) }
                                            td.num data-label=(t.episodes) { (f.episodes) }
                                            td.num data-label=(t.vehicles) { (f.vehicles) }
                                            td.num data-label=(t.per_1000_h) { (f.per_1000.map_or_else(|| "–".to_owned(), |p| number(p, 2))) }
                                        }
                                    }
                                }
                            }
                        }))
                    }
                }
            }
        }
        section #batch-defects {
            h2 { (t.batch_defects) }
            (recurring_table(&batch, lang, catalog, session.may(Action::RunCampaigns).then_some(&session)))
        }
        section #recurring {
            h2 { (t.recurring_title) }
            (recurring_table(&other, lang, catalog, None))
        }
    };
    Ok(frame(&session, Some(Nav::Trends), t.trends_title, body).into_response())
}

/// With `recall`, batch-defect rows carry the form that opens a recall
/// campaign (support and admin).
fn recurring_table(
    rows: &[&RecurringRow],
    lang: Lang,
    catalog: &Catalog,
    recall: Option<&Session>,
) -> Markup {
    let t = lang.text();
    if rows.is_empty() {
        return html! { p.muted { (t.nothing_here) } };
    }
    scroll(html! {
        table.stack {
            thead { tr {
                th { (t.kind) } th { (t.model) } th { (t.fault) } th.num { "SPN/FMI" }
                th { (t.fleet) } th { (t.vehicle) } th.num { (t.episodes) } th.num { (t.vehicles) }
                th { (t.first_seen) } th { (t.last_occurrence) }
                @if recall.is_some() { th { (t.campaign) } }
            } }
            tbody {
                @for r in rows {
                    tr data-kind=(as_ticket_kind(r.kind).as_str()) data-spn=(r.spn) data-fmi=(r.fmi) {
                        td data-label=(t.kind) { (lang.kind(as_ticket_kind(r.kind))) }
                        td data-label=(t.model) { (r.model.as_ref().map_or_else(|| "–".to_owned(), |m| lang.model_name(catalog, m))) }
                        td data-label=(t.fault) { (r.model.as_ref().and_then(|m| lang.fault_name(catalog, m, r.spn, r.fmi)).unwrap_or_else(|| "–".to_owned())) }
                        td.num data-label="SPN/FMI" { (r.spn) "/" (r.fmi) }
                        td data-label=(t.fleet) { (r.fleet.as_ref().map_or(t.across_fleets, |f| f.as_str())) }
                        td data-label=(t.vehicle) {
                            @match &r.vehicle {
                                Some(v) => a href=(format!("/ui/vehicles/{v}")) { (v.as_str()) },
                                None => "–",
                            }
                        }
                        td.num data-label=(t.episodes) { (r.episodes) }
                        td.num data-label=(t.vehicles) { (r.vehicles) }
                        td data-label=(t.first_seen) { @if let Some(at) = r.first_seen.to_datetime() { (time(at)) } }
                        td data-label=(t.last_occurrence) { @if let Some(at) = r.last_seen.to_datetime() { (time(at)) } }
                        @if let (Some(session), Some(model)) = (recall, &r.model) {
                            td data-label=(t.campaign) {
                                (super::campaigns::recall_form(session, r, model, &format!(
                                    "{} · {}",
                                    lang.model_name(catalog, model),
                                    lang.fault_name(catalog, model, r.spn, r.fmi).unwrap_or_else(|| format!("SPN {} FMI {}", r.spn, r.fmi))
                                )))
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The ticket kind a finding opens (and its name).
fn as_ticket_kind(kind: RecurringKind) -> TicketKind {
    match kind {
        RecurringKind::Recurring => TicketKind::Recurring,
        RecurringKind::RepeatRepair => TicketKind::RepeatRepair,
        RecurringKind::BatchDefect => TicketKind::BatchDefect,
    }
}
