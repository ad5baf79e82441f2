//! `GET /reports/{due,recurring,trends,parts,condition}?as_of=`: the C6 report rows as
//! JSON, scoped to the caller's fleets.
//!
//! - `due`: computed over the vehicles the caller may see (so every row is
//!   of a visible fleet).
//! - `recurring`: computed over every fleet (a batch defect is defined
//!   across fleets, C5), then rows of fleets the caller cannot see are
//!   dropped; a batch defect across fleets (`fleet` null) is shown only to
//!   roles that see every fleet.
//! - `trends`: per model, with no fleet column; computed over the vehicles
//!   the caller may see, so an operator's trends count its own trucks only.
//! - `condition` (C12): computed over every fleet (a model's peers teach
//!   the baseline, whoever owns them), then rows of fleets the caller
//!   cannot see are dropped.
//! - `parts`: fleet-wide demand against the manufacturer's depot stock; not
//!   for operators (403, decided by the access policy).
//! - `parts/reorder`: per (part, depot) what to order and by when (C11),
//!   in pages; for the same roles as `parts`.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::error::ApiError;
use super::page::PageParams;
use super::stock::PartDepotKey;
use super::{ApiQuery, ApiState, blocking};
use crate::http::auth::Scope;
use crate::query::archive;
use crate::registry::ServiceHistory;
use crate::report::{self, ConditionRow, DueRow, PartsRow, RecurringRow, ReorderRow, TrendRow};

/// The report routes, in the two groups the access policy tells apart.
pub(super) struct ReportRoutes {
    pub(super) per_fleet: Router<ApiState>,
    pub(super) parts: Router<ApiState>,
}

pub(super) fn routes() -> ReportRoutes {
    ReportRoutes {
        per_fleet: Router::new()
            .route("/reports/due", get(due))
            .route("/reports/recurring", get(recurring))
            .route("/reports/trends", get(trends))
            .route("/reports/condition", get(condition))
            .merge(super::ticket_reports::routes()),
        parts: Router::new()
            .route("/reports/parts", get(parts))
            .route("/reports/parts/reorder", get(reorder)),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ReportQuery {
    /// RFC 3339, or a date for its 00:00 UTC; default: now.
    as_of: Option<String>,
}

/// `as_of` as the CLI's `--as-of` reads it.
fn as_of(q: &ReportQuery) -> Result<DateTime<Utc>, ApiError> {
    let Some(text) = q.as_of.as_deref() else {
        return Ok(Utc::now());
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "as_of {text:?} is not a time; give RFC 3339 (2026-03-01T08:00:00Z) or a date (2026-03-01)"
            ))
        })
}

/// The registry, services and stock; with `scoped`, only the vehicles the
/// caller may see.
async fn load(
    state: &ApiState,
    scope: &Scope,
    scoped: bool,
    as_of: DateTime<Utc>,
    services: ServiceHistory,
) -> Result<report::Registry, ApiError> {
    let mut all = report::Registry::load(&state.db, as_of, services).await?;
    if scoped {
        all.vehicles = scope.filter(all.vehicles, |v| Some(&v.fleet));
    }
    Ok(all)
}

/// Runs `job` over the store with the registry and the as-of time.
async fn compute<R: Send + 'static>(
    state: ApiState,
    registry: report::Registry,
    as_of: DateTime<Utc>,
    job: impl FnOnce(&crate::store::Snapshot, &report::Context<'_>) -> report::Result<Vec<R>>
    + Send
    + 'static,
) -> Result<Vec<R>, ApiError> {
    blocking(move || {
        let store = archive::open(&state.store)?;
        let ctx = report::Context {
            catalog: &state.catalog,
            registry: &registry,
            detect: &state.config.detect,
            as_of,
        };
        Ok(job(&store, &ctx)?)
    })
    .await
}

/// The `due` rows the caller may see (`GET /reports/due`).
pub(crate) async fn due_rows(
    state: &ApiState,
    scope: &Scope,
    as_of: DateTime<Utc>,
) -> Result<Vec<DueRow>, ApiError> {
    let registry = load(
        state,
        scope,
        true,
        as_of,
        ServiceHistory::LastServicesAndRepairs,
    )
    .await?;
    let rows = compute(state.clone(), registry, as_of, |s, c| {
        report::due::maintenance_due(s, c, false)
    })
    .await?;
    Ok(scope.filter(rows, |r| Some(&r.fleet)))
}

/// The `recurring` rows the caller may see (`GET /reports/recurring`).
pub(crate) async fn recurring_rows(
    state: &ApiState,
    scope: &Scope,
    as_of: DateTime<Utc>,
) -> Result<Vec<RecurringRow>, ApiError> {
    let registry = load(state, scope, false, as_of, ServiceHistory::Repairs).await?;
    let rows = compute(state.clone(), registry, as_of, report::recurring::recurring).await?;
    Ok(scope.filter(rows, |r| r.fleet.as_ref()))
}

/// The `condition` rows the caller may see (`GET /reports/condition`).
pub(crate) async fn condition_rows(
    state: &ApiState,
    scope: &Scope,
    as_of: DateTime<Utc>,
) -> Result<Vec<ConditionRow>, ApiError> {
    let registry = load(state, scope, false, as_of, ServiceHistory::Nothing).await?;
    let rows = compute(state.clone(), registry, as_of, report::condition::condition).await?;
    Ok(scope.filter(rows, |r| Some(&r.fleet)))
}

/// The `trends` rows over the caller's vehicles (`GET /reports/trends`).
pub(crate) async fn trend_rows(
    state: &ApiState,
    scope: &Scope,
    as_of: DateTime<Utc>,
) -> Result<Vec<TrendRow>, ApiError> {
    let registry = load(state, scope, true, as_of, ServiceHistory::Nothing).await?;
    compute(state.clone(), registry, as_of, |s, c| {
        report::trends::trends(s, c, None)
    })
    .await
}

/// The `parts` rows (`GET /reports/parts`).
pub(crate) async fn parts_rows(
    state: &ApiState,
    scope: &Scope,
    as_of: DateTime<Utc>,
) -> Result<Vec<PartsRow>, ApiError> {
    // Only roles that see every fleet get here (the policy); the registry
    // is still the scope's, so a change of policy cannot leak.
    let registry = load(
        state,
        scope,
        true,
        as_of,
        ServiceHistory::LastServicesAndRepairs,
    )
    .await?;
    compute(state.clone(), registry, as_of, |s, c| {
        report::parts::parts_demand(s, c, None, false)
    })
    .await
}

/// The `parts/reorder` rows (`GET /reports/parts/reorder`), by part then
/// depot.
pub(crate) async fn reorder_rows(
    state: &ApiState,
    scope: &Scope,
    as_of: DateTime<Utc>,
) -> Result<Vec<ReorderRow>, ApiError> {
    // The ledger summed once, for the forecast's stock and the rows'.
    let (mut registry, balances) = report::Registry::load_with_balances(
        &state.db,
        as_of,
        ServiceHistory::LastServicesAndRepairs,
    )
    .await?;
    registry.vehicles = scope.filter(registry.vehicles, |v| Some(&v.fleet));
    compute(state.clone(), registry, as_of, move |s, c| {
        report::reorder::reorder(s, c, &balances, None)
    })
    .await
}

async fn reorder(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<ReportQuery>,
    page: PageParams,
) -> Result<Response, ApiError> {
    let after = page.after::<PartDepotKey>()?;
    let rows: Vec<ReorderRow> = reorder_rows(&state, &scope, as_of(&q)?)
        .await?
        .into_iter()
        .filter(|r| {
            after
                .as_ref()
                .is_none_or(|k| (&r.part, &r.depot) > (&k.part, &k.depot))
        })
        .take(page.fetch())
        .collect();
    let (rows, next) = page.cut(rows, |rows| {
        rows.last().map(|r| PartDepotKey {
            part: r.part.clone(),
            depot: r.depot.clone(),
        })
    });
    Ok(page.respond(rows, next))
}

async fn due(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<Vec<DueRow>>, ApiError> {
    Ok(Json(due_rows(&state, &scope, as_of(&q)?).await?))
}

async fn recurring(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<Vec<RecurringRow>>, ApiError> {
    Ok(Json(recurring_rows(&state, &scope, as_of(&q)?).await?))
}

async fn trends(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<Vec<TrendRow>>, ApiError> {
    Ok(Json(trend_rows(&state, &scope, as_of(&q)?).await?))
}

async fn condition(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<Vec<ConditionRow>>, ApiError> {
    Ok(Json(condition_rows(&state, &scope, as_of(&q)?).await?))
}

async fn parts(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<Vec<PartsRow>>, ApiError> {
    Ok(Json(parts_rows(&state, &scope, as_of(&q)?).await?))
}
