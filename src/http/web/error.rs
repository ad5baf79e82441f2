//! The web UI's one error type. Pages answer with the API's statuses
//! (401 becomes a redirect to the login page); the body is rendered in the
//! user's language by [`super::layout::render_errors`], which finds an
//! [`ErrorPage`] in the response's extensions.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use thiserror::Error;

use crate::http::api::ApiError;

#[derive(Debug, Error)]
pub enum WebError {
    /// 303 to `/ui/login`: no session cookie, or a token that is no longer
    /// valid. `next` is the page to return to after signing in.
    #[error("sign in first")]
    LoginNeeded { next: String },
    /// 403: a form without the session's CSRF token (or with another's).
    #[error("the form does not carry this session's token")]
    FormExpired,
    /// 400: a query or form value that cannot be read.
    #[error("{0}")]
    BadRequest(String),
    /// Whatever the API's data functions answered, with the API's status.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// What went wrong, for the error page the layout renders.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub status: StatusCode,
    /// A message safe to show (4xx only); 5xx show a fixed text.
    pub message: Option<String>,
    /// The form-expired page has its own text.
    pub form_expired: bool,
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::LoginNeeded { .. } => StatusCode::SEE_OTHER,
            Self::FormExpired => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Api(e) => match e.status() {
                StatusCode::UNAUTHORIZED => StatusCode::SEE_OTHER,
                s => s,
            },
        }
    }
}

/// `/ui/login?next=…` for a page path (anything else returns to the start).
pub fn login_url(next: &str) -> String {
    if super::session::is_ui_path(next) && next != super::LOGIN {
        format!("{}?next={}", super::LOGIN, percent_encode(next))
    } else {
        super::LOGIN.to_owned()
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A 303 to `to`.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::SEE_OTHER {
            let next = match &self {
                Self::LoginNeeded { next } => next.as_str(),
                _ => "",
            };
            return see_other(&login_url(next));
        }
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "A web UI page failed.");
            None
        } else {
            Some(self.to_string())
        };
        let page = ErrorPage {
            status,
            message,
            form_expired: matches!(self, Self::FormExpired),
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(page);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_urls_only_return_to_ui_pages() {
        assert_eq!(login_url("/ui/tickets"), "/ui/login?next=/ui/tickets");
        assert_eq!(
            login_url("/ui/tickets?kind=fault&x=a b"),
            "/ui/login?next=/ui/tickets%3Fkind%3Dfault%26x%3Da%20b"
        );
        assert_eq!(login_url("//evil.example/ui/"), "/ui/login");
        assert_eq!(login_url("https://evil.example/ui/"), "/ui/login");
        assert_eq!(login_url("/api/v1/tickets"), "/ui/login");
    }

    #[test]
    fn statuses_follow_the_api() {
        assert_eq!(
            WebError::Api(ApiError::NotFound("vehicle".into())).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            WebError::Api(ApiError::Unauthorized).status(),
            StatusCode::SEE_OTHER
        );
        assert_eq!(WebError::FormExpired.status(), StatusCode::FORBIDDEN);
    }
}
