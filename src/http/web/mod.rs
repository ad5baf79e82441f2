//! The web UI (issue 7): server-rendered pages under `/ui/` for fleet
//! operators, technical support and parts planners, in English or
//! Simplified Chinese.
//!
//! Every page signs the user in with an API token (for a session kept on
//! the server, see [`session`] and [`sessions`]) and reads its data
//! through the same functions as the API's handlers, behind the same
//! access rules ([`crate::http::api::authorize`]): an operator sees only
//! its fleets, and another fleet's vehicle or ticket is a 404, as in the
//! API. HTML comes from `maud` templates (escaped by
//! default), charts are inline SVG drawn here, the one style sheet is
//! compiled into the binary; the pages need no JavaScript.
//!
//! Pages: [`overview`] (`/ui/`), [`vehicle`] (`/ui/vehicles/{id}`),
//! [`tickets`] (`/ui/tickets`, `/ui/tickets/{id}`), [`trends`]
//! (`/ui/trends`), [`parts`] (`/ui/parts`), [`stock`] (`/ui/stock`, the
//! parts ledger), [`health`] (`/ui/health`),
//! and [`login`]. Choices where the issue is silent: docs/decisions.md,
//! "Web UI".

pub mod campaigns;
pub mod chart;
pub mod complaints;
pub mod error;
pub mod health;
pub mod i18n;
pub mod kpis;
pub mod layout;
pub mod login;
pub mod overview;
pub mod parts;
pub mod session;
pub mod sessions;
pub mod stock;
pub mod tickets;
pub mod trends;
pub mod vehicle;
#[cfg(test)]
mod verification_tests;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{any, get, post};

use crate::http::api::{self, ApiState};
use crate::sources::modbus::DeviceStatus;

pub use health::Rates;

/// The login page's path.
pub const LOGIN: &str = "/ui/login";

/// Which broker `fleetcare run` uses, for the ingest health page.
#[derive(Debug, Clone)]
pub enum Broker {
    /// The embedded broker, listening on this address.
    Embedded(SocketAddr),
    /// An external broker at this URL (without credentials).
    External(String),
}

impl Broker {
    /// An external broker's URL without the user and password it may carry.
    pub fn external(url: &str) -> Self {
        let shown = match url.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                format!("{scheme}://{host}")
            }
            None => url.rsplit_once('@').map_or(url, |(_, h)| h).to_owned(),
        };
        Self::External(shown)
    }
}

/// What the ingest health page shows besides the store and the counters.
#[derive(Debug, Clone)]
pub struct IngestSources {
    pub broker: Broker,
    /// One per polled Modbus device.
    pub devices: Vec<Arc<DeviceStatus>>,
}

/// What the pages share; cheap to clone.
#[derive(Debug, Clone)]
pub struct WebState {
    pub api: ApiState,
    pub sources: Arc<IngestSources>,
    pub rates: Arc<Rates>,
}

impl WebState {
    pub fn new(api: ApiState, sources: IngestSources) -> Self {
        Self {
            api,
            sources: Arc::new(sources),
            rates: Arc::new(Rates::default()),
        }
    }
}

/// The web UI's routes (under `/ui/`, and `/` sending browsers there).
/// Full paths rather than a nested router: pages link back to their own
/// path and query, which a nested router would strip of its prefix.
pub fn router(state: WebState) -> Router {
    let ui = Router::new()
        .route("/ui/", get(overview::page))
        .route(LOGIN, get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/lang", get(login::language))
        .route("/ui/static/style.css", get(layout::style))
        .route("/ui/vehicles/{id}", get(vehicle::page))
        .route("/ui/tickets", get(tickets::board))
        .route("/ui/complaints/new", get(complaints::form))
        .route("/ui/complaints", post(complaints::submit))
        .route("/ui/tickets/{id}", get(tickets::page))
        .route("/ui/tickets/{id}/move", post(tickets::move_ticket))
        .route("/ui/trends", get(trends::page))
        .route(
            "/ui/campaigns",
            get(campaigns::list).post(campaigns::create),
        )
        .route("/ui/campaigns/{id}", get(campaigns::page))
        .route("/ui/kpis", get(kpis::page))
        .route("/ui/parts", get(parts::page))
        .route("/ui/stock", get(stock::page))
        .route("/ui/health", get(health::page))
        .route("/ui/{*rest}", any(not_found))
        .layer(axum::middleware::from_fn(session::refuse_cross_site))
        .layer(axum::middleware::from_fn(layout::render_errors))
        .with_state(state);
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .merge(ui)
}

async fn not_found() -> error::WebError {
    error::WebError::Api(api::ApiError::NotFound("page".to_owned()))
}
