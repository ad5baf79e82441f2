//! `GET /reports/claims?from=&to=` and `GET /reports/kpis?from=&to=&by=` (C10): the reports over tickets, scoped
//! to the caller's fleets like the ticket list.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Deserialize;

use super::error::ApiError;
use super::tickets::error as ticket_error;
use super::{ApiQuery, ApiState};
use crate::http::auth::Scope;
use crate::report::{ClaimRow, KpiBy, KpiRow, Period};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/reports/claims", get(claims))
        .route("/reports/kpis", get(kpis))
}

/// `from` and `to`: days (YYYY-MM-DD), both included.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PeriodQuery {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    /// `kpis` only: all, outlet, technician or model.
    #[serde(default)]
    pub(crate) by: Option<KpiBy>,
}

impl PeriodQuery {
    pub(crate) fn period(&self) -> Result<Period, ApiError> {
        let day = |name: &str, v: &Option<String>| {
            v.as_deref()
                .map(|t| {
                    NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| {
                        ApiError::BadRequest(format!(
                            "{name} {t:?} is not a date; give YYYY-MM-DD, e.g. 2026-03-01"
                        ))
                    })
                })
                .transpose()
        };
        let period = Period {
            from: day("from", &self.from)?,
            to: day("to", &self.to)?,
        };
        if let (Some(f), Some(t)) = (period.from, period.to)
            && f > t
        {
            return Err(ApiError::BadRequest(format!(
                "from {f} is after to {t}; give the earlier day first"
            )));
        }
        Ok(period)
    }
}

/// The claim lines the caller may see (`GET /reports/claims`).
pub(crate) async fn claim_rows(
    state: &ApiState,
    scope: &Scope,
    period: Period,
) -> Result<Vec<ClaimRow>, ApiError> {
    let visible = scope.fleets_visible().map(<[_]>::to_vec);
    let rows = crate::report::claims::claims(&state.tickets, period, visible)
        .await
        .map_err(ticket_error)?;
    Ok(scope.filter(rows, |r| r.fleet.as_ref()))
}

async fn claims(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Json<Vec<ClaimRow>>, ApiError> {
    Ok(Json(claim_rows(&state, &scope, q.period()?).await?))
}

/// The KPI rows over the tickets the caller may see (`GET /reports/kpis`).
pub(crate) async fn kpi_rows(
    state: &ApiState,
    scope: &Scope,
    period: Period,
    by: KpiBy,
) -> Result<Vec<KpiRow>, ApiError> {
    let visible = scope.fleets_visible().map(<[_]>::to_vec);
    crate::report::kpis::load_kpis(&state.tickets, period, by, visible)
        .await
        .map_err(ticket_error)
}

async fn kpis(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Json<Vec<KpiRow>>, ApiError> {
    let by = q.by.unwrap_or_default();
    Ok(Json(kpi_rows(&state, &scope, q.period()?, by).await?))
}
