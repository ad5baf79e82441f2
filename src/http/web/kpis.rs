//! `/ui/kpis?from=&to=&by=`: the service KPIs (the API's
//! `GET /reports/kpis`) of the tickets closed in a period, for all of
//! them or per outlet, technician or model.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::WebState;
use super::error::WebError;
use super::layout::{Nav, number, page as frame, scroll};
use super::session::Session;
use crate::http::api::Resource;
use crate::http::api::ticket_reports::{PeriodQuery, kpi_rows};
use crate::report::{KpiBy, KpiRow};

fn share(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_owned(), |s| format!("{} %", number(s * 100.0, 2)))
}

fn hours(median: Option<f64>, p90: Option<f64>) -> String {
    match (median, p90) {
        (Some(m), Some(p)) => format!("{} / {}", number(m, 1), number(p, 1)),
        _ => "–".to_owned(),
    }
}

/// `GET /ui/kpis`.
pub(crate) async fn page(
    State(state): State<WebState>,
    session: Session,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, WebError> {
    let scope = session.scope(Resource::Reports)?;
    let empty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let q = PeriodQuery {
        from: empty(&q.from),
        to: empty(&q.to),
        by: q.by,
    };
    let by = q.by.unwrap_or_default();
    let rows = kpi_rows(&state.api, &scope, q.period()?, by).await?;
    let lang = session.lang;
    let t = lang.text();
    let by_name = |b: KpiBy| match b {
        KpiBy::All => t.kpi_all,
        KpiBy::Outlet => t.kpi_outlet,
        KpiBy::Technician => t.kpi_technician,
        KpiBy::Model => t.kpi_model,
    };
    let cells = |r: &KpiRow| -> Markup {
        html! {
            td.num data-label=(t.kpi_closed) data-kpi="tickets_closed" { (r.tickets_closed) }
            td.num data-label=(t.kpi_ftf) data-kpi="first_time_fix_share" { (share(r.first_time_fix_share)) }
            td.num data-label=(t.kpi_respond) data-kpi="respond_h" { (hours(r.respond_h_median, r.respond_h_p90)) }
            td.num data-label=(t.kpi_on_site) data-kpi="on_site_h" { (hours(r.on_site_h_median, r.on_site_h_p90)) }
            td.num data-label=(t.kpi_deliver) data-kpi="deliver_h" { (hours(r.deliver_h_median, r.deliver_h_p90)) }
            td.num data-label=(t.kpi_downtime) data-kpi="downtime_h" { (number(r.downtime_h, 1)) }
            td.num data-label=(t.kpi_sla) data-kpi="sla_met_share" { (share(r.sla_met_share)) }
            td.num data-label=(t.kpi_satisfaction) data-kpi="satisfaction_mean" { (r.satisfaction_mean.map_or_else(|| "–".to_owned(), |s| number(s, 2))) }
            td.num data-label=(t.kpi_nff) data-kpi="no_fault_found_share" { (share(r.no_fault_found_share)) }
            td.num data-label=(t.kpi_follow_up) data-kpi="follow_up_on_time_share" { (share(r.follow_up_on_time_share)) }
        }
    };
    let body = html! {
        form.filters method="get" action="/ui/kpis" {
            label { (t.kpi_from) " " input type="date" name="from" value=(q.from.as_deref().unwrap_or_default()); }
            label { (t.kpi_to) " " input type="date" name="to" value=(q.to.as_deref().unwrap_or_default()); }
            label { (t.kpi_by) " "
                select name="by" {
                    @for b in [KpiBy::All, KpiBy::Outlet, KpiBy::Technician, KpiBy::Model] {
                        option value=(b.as_str()) selected[b == by] { (by_name(b)) }
                    }
                }
            }
            button type="submit" { (t.filter) }
        }
        (scroll(html! {
            table.stack #kpis data-by=(by.as_str()) {
                thead { tr {
                    th { (t.kpi_group) }
                    th.num { (t.kpi_closed) } th.num { (t.kpi_ftf) } th.num { (t.kpi_respond) }
                    th.num { (t.kpi_on_site) } th.num { (t.kpi_deliver) } th.num { (t.kpi_downtime) }
                    th.num { (t.kpi_sla) } th.num { (t.kpi_satisfaction) } th.num { (t.kpi_nff) }
                    th.num { (t.kpi_follow_up) }
                } }
                tbody {
                    @for r in &rows {
                        tr data-group=(r.group) {
                            td data-label=(t.kpi_group) { @if by == KpiBy::All { (t.kpi_all) } @else { (r.group) } }
                            (cells(r))
                        }
                    }
                }
            }
        }))
    };
    Ok(frame(&session, Some(Nav::Kpis), t.kpis_title, body).into_response())
}
