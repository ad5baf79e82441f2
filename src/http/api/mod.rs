//! The HTTP API (contract C7): JSON under `/api/v1` for the web UI, the
//! fleet operators' systems and scripts.
//!
//! One router per resource (`vehicles`, `tickets`, `reports`, `stock` for
//! the parts ledger, `logs` for alerts and dead letters), each behind the access middleware of
//! [`auth`](super::auth): roles and fleet scoping are decided there and
//! nowhere else. `/healthz`, `/metrics` and the OpenAPI document need no
//! token. Choices where the contract is silent: docs/decisions.md, "HTTP API".

pub(crate) mod campaigns;
pub mod error;
pub(crate) mod logs;
mod openapi;
pub(crate) mod outlets;
pub(crate) mod page;
pub(crate) mod reports;
pub(crate) mod stock;
pub(crate) mod ticket_reports;
pub(crate) mod tickets;
pub(crate) mod vehicles;

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::de::DeserializeOwned;

use crate::catalog::{Catalog, CatalogError};
use crate::config::Config;
use crate::db::Db;
use crate::runtime::LiveMetrics;
use crate::store::StoreReader;
use crate::tickets::Tickets;

pub use super::auth::{Action, Caller, Resource, Role, Scope, authorize};
pub use super::tokens::{
    Refusal, TokenError, TokenInfo, authenticate, create_token, create_token_until, list_tokens,
    revoke_token,
};
pub use error::ApiError;

/// The API's version prefix.
pub const PREFIX: &str = "/api/v1";

/// What the handlers share; cheap to clone (one per request).
#[derive(Debug, Clone)]
pub struct ApiState {
    pub db: Db,
    pub tickets: Tickets,
    pub config: Arc<Config>,
    pub metrics: Arc<LiveMetrics>,
    /// Loaded once: every report and archive needs it.
    pub catalog: Arc<Catalog>,
    /// The process's reader of the store (see [`ApiState::with_store`]).
    pub store: Arc<StoreReader>,
}

impl ApiState {
    /// The state over `db` and `tickets`, with the catalogue of
    /// `config.models_dir` and a reader of the store in `config.data_dir`
    /// of its own.
    pub fn new(
        db: Db,
        tickets: Tickets,
        config: Config,
        metrics: Arc<LiveMetrics>,
    ) -> Result<Self, CatalogError> {
        let catalog = Catalog::load(&config.models_dir)?;
        let store = Arc::new(StoreReader::new(&config.data_dir, config.pipeline()));
        Ok(Self {
            db,
            tickets,
            config: Arc::new(config),
            metrics,
            catalog: Arc::new(catalog),
            store,
        })
    }

    /// Reads the store through `store`, the reader the rest of the
    /// process shares.
    pub fn with_store(mut self, store: Arc<StoreReader>) -> Self {
        self.store = store;
        self
    }
}

/// The whole API.
pub fn router(state: ApiState) -> Router {
    let guarded = |resource: Resource, routes: Router<ApiState>| {
        routes.route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), resource),
            super::auth::require,
        ))
    };
    let reports = reports::routes();
    let api = Router::new()
        .merge(guarded(Resource::Vehicles, vehicles::routes()))
        .merge(guarded(Resource::Tickets, tickets::routes()))
        .merge(guarded(Resource::Tickets, outlets::routes()))
        .merge(guarded(Resource::Tickets, campaigns::routes()))
        .merge(guarded(Resource::Reports, reports.per_fleet))
        .merge(guarded(Resource::PartsReport, reports.parts))
        .merge(guarded(Resource::Stock, stock::routes()))
        .merge(guarded(Resource::Alerts, logs::alert_routes()))
        .merge(guarded(Resource::DeadLetters, logs::dead_letter_routes()))
        .route("/openapi.json", get(openapi::document));
    Router::new()
        .nest(PREFIX, api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serves the API alone (no web UI) on `listener` until `shutdown`
/// completes, then lets the requests in flight finish; with the same
/// limits and response headers as [`crate::http::serve`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, "HTTP API listening.");
    let limits = state.config.http.clone();
    let app = super::edge(router(state), &limits);
    super::server::serve(listener, app, &limits, shutdown).await
}

/// Liveness: the process answers. Needs no token.
async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// The live counters in the OpenMetrics text format. Needs no token.
async fn metrics(axum::extract::State(state): axum::extract::State<ApiState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::runtime::metrics::CONTENT_TYPE,
        )],
        state.metrics.render(),
    )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("endpoint".to_owned())
}

async fn method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(serde_json::json!({ "error": "method not allowed on this endpoint" })),
    )
}

/// `axum::Json` whose rejections are [`ApiError`]s (JSON bodies).
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Self(v))
    }
}

/// `axum::extract::Query` whose rejections are [`ApiError`]s (400).
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(v) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(v))
    }
}

/// `axum::extract::Path` whose rejections are [`ApiError`]s (400).
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(v) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(v))
    }
}

/// Runs blocking work (polars scans of the store) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("a blocking task failed: {e}")))?
}
