//! What fleetcare serves over HTTP on `[http] listen`: the JSON API
//! ([`api`], contract C7), the web UI ([`web`]) and, shared by both, who
//! may call what ([`auth`]: tokens, roles, fleet scoping).

pub mod api;
pub mod auth;
pub(crate) mod server;
pub mod web;

use std::future::Future;
use std::io;

use axum::Router;

pub use web::{Broker, IngestSources, WebState};

/// The API and the web UI together, behind the request limits of
/// `[http]`: what `fleetcare run` serves.
pub fn app(state: WebState) -> Router {
    let limits = state.api.config.http.clone();
    edge(
        api::router(state.api.clone()).merge(web::router(state)),
        &limits,
    )
}

/// What every response passes through on its way out: the limits on
/// requests in flight and their time ([`server`]).
fn edge(router: Router, limits: &crate::config::HttpConfig) -> Router {
    server::with_request_limits(router, limits)
}

/// Serves the API and the web UI on `listener` until `shutdown` completes,
/// then lets the requests in flight finish; connections and requests are
/// limited as `[http]` says ([`server`]). Samples the message counters
/// for the health page's rates meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, "HTTP API and web UI listening.");
    let sampler = tokio::spawn(web::health::sample_rates(
        state.rates.clone(),
        state.api.metrics.clone(),
    ));
    let limits = state.api.config.http.clone();
    let served = server::serve(listener, app(state), &limits, shutdown).await;
    sampler.abort();
    served
}
