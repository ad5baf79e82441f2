//! `GET /outlets` and `GET /outlets/{id}` (C10): the register of service
//! outlets, for every role that works with tickets. Dispatch names one of
//! them; `GET /tickets/{id}` proposes the one serving the vehicle's depot.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};

use super::error::ApiError;
use super::page::{CursorKey, PageParams};
use super::{ApiPath, ApiState};
use crate::registry::outlets::{self, Outlet, OutletId};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/outlets", get(list))
        .route("/outlets/{id}", get(show))
}

impl CursorKey for OutletId {
    const KIND: char = 'o';
    fn write(&self) -> String {
        self.as_str().to_owned()
    }
    fn read(text: &str) -> Option<Self> {
        OutletId::new(text).ok()
    }
}

/// `GET /outlets`: a page of the register, by id.
async fn list(State(state): State<ApiState>, page: PageParams) -> Result<Response, ApiError> {
    let after = page.after::<OutletId>()?;
    let rows = outlets::outlets_page(&state.db, after.as_ref(), page.fetch()).await?;
    let (rows, next) = page.cut(rows, |rows| rows.last().map(|o| o.id.clone()));
    Ok(page.respond(rows, next))
}

async fn show(
    State(state): State<ApiState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Outlet>, ApiError> {
    outlets::outlet(&state.db, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("outlet".to_owned()))
}
