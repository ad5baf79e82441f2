//! The parts ledger (C11, issue 22): `GET /stock` (stock and open orders
//! per part and depot) and `GET /stock/movements?part=` (one part's
//! movements, newest first), in pages.
//!
//! Depots belong to fleets through the vehicle registry: an operator sees
//! the depots where its fleets' vehicles are based, nothing else (a depot
//! no vehicle names belongs to the manufacturer's planners). Planners,
//! support and admin see every depot.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::error::ApiError;
use super::page::{CursorKey, PageParams};
use super::{ApiQuery, ApiState};
use crate::catalog::PartId;
use crate::http::auth::Scope;
use crate::parts::{Balance, Movement};
use crate::registry::Depot;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/stock", get(list))
        .route("/stock/movements", get(movements))
}

/// A (part, depot) place in the ledger's order: the cursor of `/stock`
/// and of the reorder report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartDepotKey {
    pub(crate) part: PartId,
    pub(crate) depot: Depot,
}

impl CursorKey for PartDepotKey {
    const KIND: char = 's';
    fn write(&self) -> String {
        // A part id has no '/'; a depot name may.
        format!("{}/{}", self.part.as_str(), self.depot.as_str())
    }
    fn read(text: &str) -> Option<Self> {
        let (part, depot) = text.split_once('/')?;
        Some(Self {
            part: PartId::new(part).ok()?,
            depot: Depot::new(depot).ok()?,
        })
    }
}

/// A movement's place in the newest-first order: its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MovementKey(pub(crate) i64);

impl CursorKey for MovementKey {
    const KIND: char = 'm';
    fn write(&self) -> String {
        self.0.to_string()
    }
    fn read(text: &str) -> Option<Self> {
        text.parse().ok().filter(|n| *n > 0).map(Self)
    }
}

/// The depots the caller may see; `None`: every depot.
pub(crate) async fn visible_depots(
    state: &ApiState,
    scope: &Scope,
) -> Result<Option<Vec<Depot>>, ApiError> {
    let Some(fleets) = scope.fleets_visible() else {
        return Ok(None);
    };
    let mut depots: Vec<Depot> = Vec::new();
    for fleet in fleets {
        for v in crate::registry::fleet_vehicles(&state.db, fleet).await? {
            if !depots.contains(&v.depot) {
                depots.push(v.depot);
            }
        }
    }
    depots.sort();
    Ok(Some(depots))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StockQuery {
    pub(crate) part: Option<String>,
    pub(crate) depot: Option<String>,
}

fn part_param(text: &str) -> Result<PartId, ApiError> {
    PartId::new(text).map_err(|e| ApiError::BadRequest(format!("part {text:?}: {e}")))
}

fn depot_param(text: &str) -> Result<Depot, ApiError> {
    Depot::new(text).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// At most `limit` stock rows the caller may see after `after`, by part
/// then depot (`GET /stock`, the web parts ledger page).
pub(crate) async fn stock_rows(
    state: &ApiState,
    scope: &Scope,
    q: &StockQuery,
    after: Option<&PartDepotKey>,
    limit: usize,
) -> Result<Vec<Balance>, ApiError> {
    let part = q.part.as_deref().map(part_param).transpose()?;
    let depot = q.depot.as_deref().map(depot_param).transpose()?;
    let depots = visible_depots(state, scope).await?;
    Ok(crate::parts::balances_page(
        &state.db,
        depots.as_deref(),
        part.as_ref(),
        depot.as_ref(),
        after.map(|k| (&k.part, &k.depot)),
        limit,
    )
    .await?)
}

/// `GET /stock?part=&depot=`: stock and open orders per (part, depot).
async fn list(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<StockQuery>,
    page: PageParams,
) -> Result<Response, ApiError> {
    let after = page.after::<PartDepotKey>()?;
    let rows = stock_rows(&state, &scope, &q, after.as_ref(), page.fetch()).await?;
    let (rows, next) = page.cut(rows, |rows| {
        rows.last().map(|b| PartDepotKey {
            part: b.part.clone(),
            depot: b.depot.clone(),
        })
    });
    Ok(page.respond(rows, next))
}

#[derive(Debug, Deserialize)]
struct MovementsQuery {
    part: Option<String>,
    depot: Option<String>,
}

/// At most `limit` movements of `part` the caller may see, newest first,
/// numbered below `before` (`GET /stock/movements`, the web page).
pub(crate) async fn movement_rows(
    state: &ApiState,
    scope: &Scope,
    part: &PartId,
    depot: Option<&Depot>,
    before: Option<MovementKey>,
    limit: usize,
) -> Result<Vec<Movement>, ApiError> {
    let depots = visible_depots(state, scope).await?;
    Ok(crate::parts::movements_page(
        &state.db,
        part,
        depot,
        depots.as_deref(),
        before.map(|k| k.0),
        limit,
    )
    .await?)
}

/// `GET /stock/movements?part=&depot=`: one part's movements, newest
/// first.
async fn movements(
    State(state): State<ApiState>,
    scope: Scope,
    ApiQuery(q): ApiQuery<MovementsQuery>,
    page: PageParams,
) -> Result<Response, ApiError> {
    let part = q
        .part
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("part is missing; give ?part=PART-ID".to_owned()))
        .and_then(part_param)?;
    let depot = q.depot.as_deref().map(depot_param).transpose()?;
    let before = page.after::<MovementKey>()?;
    let rows = movement_rows(&state, &scope, &part, depot.as_ref(), before, page.fetch()).await?;
    let (rows, next) = page.cut(rows, |rows| rows.last().map(|m| MovementKey(m.id)));
    Ok(page.respond(rows, next))
}
