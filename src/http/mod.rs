//! What fleetcare serves over HTTP on `[http] listen`: the JSON API
//! ([`api`], contract C7), the web UI ([`web`]) and, shared by both, who
//! may call what ([`auth`]: tokens, roles, fleet scoping).

pub mod api;
pub mod auth;
pub(crate) mod headers;
pub(crate) mod server;
#[cfg(test)]
pub(crate) mod testing;
pub mod tokens;
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

/// What every request and response passes through: the limits on
/// requests in flight and their time ([`server`]), then (outermost, so
/// that refusals carry them too) the security headers ([`headers`]).
fn edge(router: Router, limits: &crate::config::HttpConfig) -> Router {
    server::with_request_limits(router, limits)
        .layer(axum::middleware::from_fn(headers::security_headers))
}

/// Serves the API and the web UI on `listener` until `shutdown` completes,
/// then lets the requests in flight finish; connections and requests are
/// limited as `[http]` says (`src/http/server.rs`). Samples the message
/// counters for the health page's rates meanwhile.
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

#[cfg(test)]
mod tests {
    use axum::http::{StatusCode, header};

    use super::testing::{call, get};
    use super::*;

    /// Issue 20, finding 9: no CSP, X-Frame-Options, nosniff or
    /// `Cache-Control: no-store` on signed-in pages.
    async fn every_answer_carries_the_security_headers(db: crate::db::Db) {
        let dir = tempfile::tempdir().unwrap();
        let app = app(testing::state(db, dir.path()));
        for (path, status, policy) in [
            ("/ui/login", StatusCode::OK, headers::UI_POLICY),
            ("/ui/", StatusCode::SEE_OTHER, headers::UI_POLICY),
            (
                "/ui/no-such-page",
                StatusCode::NOT_FOUND,
                headers::UI_POLICY,
            ),
            ("/", StatusCode::SEE_OTHER, headers::UI_POLICY),
            (
                "/api/v1/vehicles",
                StatusCode::UNAUTHORIZED,
                headers::API_POLICY,
            ),
            ("/api/v1/openapi.json", StatusCode::OK, headers::API_POLICY),
            ("/healthz", StatusCode::OK, headers::API_POLICY),
            ("/metrics", StatusCode::OK, headers::API_POLICY),
        ] {
            let r = call(&app, get(path, None)).await;
            assert_eq!(r.status(), status, "{path}");
            let h = r.headers();
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], policy, "{path}");
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(h[header::REFERRER_POLICY], "same-origin", "{path}");
            assert_eq!(h[header::CACHE_CONTROL], "no-store", "{path}");
        }
        // The style sheet is the same for everyone: browsers may keep it.
        let r = call(&app, get("/ui/static/style.css", None)).await;
        assert_eq!(r.headers()[header::CACHE_CONTROL], "public, max-age=86400");
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        // The pages need no inline script or style to work under the policy.
        let page = testing::text(call(&app, get("/ui/login", None)).await).await;
        assert!(
            !page.contains("<script") && !page.contains("style="),
            "{page}"
        );
    }

    #[test]
    fn security_headers_on_sqlite() {
        crate::db::testing::on_sqlite(every_answer_carries_the_security_headers);
    }
}
