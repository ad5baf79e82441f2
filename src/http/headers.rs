//! Response headers every answer carries (issue 20, finding 9): the
//! browser is told not to guess content types, not to frame our pages, not
//! to send our URLs to other sites, to keep signed-in pages and API
//! answers out of its caches, and which sources a page may load.
//!
//! The web UI's pages need nothing but their own style sheet and inline
//! SVG: no script, no inline style (the fault timeline draws its bars as
//! SVG geometry, not `style` attributes), no frames, forms posted only to
//! themselves. API answers are data, never documents: their policy allows
//! nothing at all.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The web UI's pages.
pub(crate) const UI_POLICY: &str = "default-src 'self'; script-src 'none'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";
/// Everything else: JSON, the metrics text, redirects.
pub(crate) const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Middleware: the headers above on every response. A response that set
/// its own `Cache-Control` (the style sheet, cached a day) keeps it.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let ui = path == "/" || path == "/ui" || path.starts_with("/ui/");
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "same-origin");
    set(
        header::CONTENT_SECURITY_POLICY,
        if ui { UI_POLICY } else { API_POLICY },
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
