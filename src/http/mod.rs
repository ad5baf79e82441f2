//! What fleetcare serves over HTTP on `[http] listen`: the JSON API
//! ([`api`], contract C7), the web UI ([`web`]) and, shared by both, who
//! may call what ([`auth`]: tokens, roles, fleet scoping).

pub mod api;
pub mod auth;
pub mod web;

use std::future::Future;
use std::io;

use axum::Router;

pub use web::{Broker, IngestSources, WebState};

/// The API and the web UI together: what `fleetcare run` serves.
pub fn app(state: WebState) -> Router {
    api::router(state.api.clone()).merge(web::router(state))
}

/// Serves the API and the web UI on `listener` until `shutdown` completes,
/// then lets the requests in flight finish. Samples the message counters
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
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await;
    sampler.abort();
    served
}
