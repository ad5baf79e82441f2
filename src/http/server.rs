//! The HTTP listener's limits (`[http]`, issue 20 finding 7): what no
//! client may hold however it behaves.
//!
//! - [`serve`] accepts connections itself, with hyper's HTTP/1 server and
//!   a timer, rather than through `axum::serve`: axum 0.8 sets no timer,
//!   so hyper's header read timeout never fires and a connection that
//!   never finishes its request headers stays open for ever. Here a
//!   connection that has not sent a complete request head within
//!   `header_timeout` of opening, or of its previous response, is closed
//!   (so idle keep-alive connections end too).
//! - [`limit_requests`] answers 503 to a request beyond
//!   `max_requests_in_flight` at once (at once: no queue to fill) and to a
//!   request not answered within `request_timeout`, a slow body upload
//!   included.
//!
//! Request bodies stay limited by axum's extractors (2 MiB).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::HttpConfig;

/// Serves `router` on `listener` with the header timeout of `limits` until
/// `shutdown` completes; then stops accepting, lets the requests in flight
/// finish and closes idle connections.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // Each connection task holds a receiver of `stop` (to start its
    // graceful shutdown) and of `open` (dropped when it ends: the sender
    // sees it closed once every connection has ended).
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                // Timeouts and clients that hang up: nothing to act on.
                tracing::debug!(%peer, %error, "An HTTP connection ended with an error.");
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// After a failed `accept`: errors of one connection are skipped; others
/// (out of file descriptors) are waited out, as `axum::serve` does.
async fn accept_failed(error: &io::Error) {
    use io::ErrorKind as K;
    if matches!(
        error.kind(),
        K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "Accepting an HTTP connection failed; trying again in 1 s.");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// What [`limit_requests`] needs: the free slots and the time allowed.
#[derive(Debug, Clone)]
pub(crate) struct RequestLimits {
    slots: Arc<Semaphore>,
    timeout: Duration,
}

impl RequestLimits {
    pub(crate) fn new(limits: &HttpConfig) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.max_requests_in_flight)),
            timeout: limits.request_timeout,
        }
    }
}

/// Puts [`limit_requests`] in front of every route of `router`.
pub(crate) fn with_request_limits(router: Router, limits: &HttpConfig) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        RequestLimits::new(limits),
        limit_requests,
    ))
}

/// 503 beyond the requests allowed at once or after the time allowed.
pub(crate) async fn limit_requests(
    State(limits): State<RequestLimits>,
    request: Request,
    next: Next,
) -> Response {
    let ui = request.uri().path().starts_with("/ui");
    let Ok(_slot) = limits.slots.clone().try_acquire_owned() else {
        tracing::warn!("Refused an HTTP request: too many in flight.");
        return unavailable(ui, "the server is busy; try again in a moment");
    };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout = ?limits.timeout,
                "An HTTP request was not answered in time."
            );
            unavailable(
                ui,
                &format!(
                    "the request took longer than {}; try again or ask for less",
                    humantime::format_duration(limits.timeout)
                ),
            )
        }
    }
}

/// A 503 that asks the client to come back: JSON for the API, text for
/// the web UI's pages.
fn unavailable(ui: bool, message: &str) -> Response {
    let mut response = if ui {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{message}\n")).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::routing::get;
    use tokio::sync::Notify;
    use tower::ServiceExt as _;

    use super::*;

    fn limits(in_flight: usize, timeout: Duration) -> HttpConfig {
        HttpConfig {
            max_requests_in_flight: in_flight,
            request_timeout: timeout,
            ..HttpConfig::default()
        }
    }

    fn get_req(path: &str) -> Request {
        Request::builder().uri(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn a_request_not_answered_in_time_is_a_503() {
        let app = with_request_limits(
            Router::new()
                .route("/slow", get(std::future::pending::<&'static str>))
                .route("/fast", get(|| async { "ok" })),
            &limits(8, Duration::from_millis(50)),
        );
        let started = std::time::Instant::now();
        let slow = app.clone().oneshot(get_req("/slow")).await.unwrap();
        assert_eq!(slow.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(slow.headers()[header::RETRY_AFTER], "1");
        assert!(started.elapsed() < Duration::from_secs(5));
        let fast = app.oneshot(get_req("/fast")).await.unwrap();
        assert_eq!(fast.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn requests_beyond_the_limit_in_flight_are_refused_at_once() {
        let release = Arc::new(Notify::new());
        let entered = Arc::new(Notify::new());
        let (r, e) = (release.clone(), entered.clone());
        let app = with_request_limits(
            Router::new().route(
                "/wait",
                get(move || {
                    let (r, e) = (r.clone(), e.clone());
                    async move {
                        e.notify_one();
                        r.notified().await;
                        "done"
                    }
                }),
            ),
            &limits(1, Duration::from_secs(60)),
        );
        let first = tokio::spawn(app.clone().oneshot(get_req("/wait")));
        entered.notified().await;
        let second = app.clone().oneshot(get_req("/ui/")).await.unwrap();
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        release.notify_one();
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
        // The slot is free again.
        let again = tokio::spawn(app.oneshot(get_req("/wait")));
        entered.notified().await;
        release.notify_one();
        assert_eq!(again.await.unwrap().unwrap().status(), StatusCode::OK);
    }
}
