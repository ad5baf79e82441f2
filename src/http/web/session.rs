//! Who is looking at a page: a random session id in an HttpOnly,
//! SameSite=Strict cookie, looked up on every request in the database
//! ([`super::sessions`]: the session and the API token it was signed in
//! with, checked as the API checks a bearer token), the language cookie,
//! the per-session CSRF token that every state-changing form carries, and
//! the refusal of forms posted from another site ([`refuse_cross_site`]).
//!
//! The cookie never holds the API token (issue 20, finding 6): signing out
//! deletes the session, so the old cookie stops working at once, and a
//! revoked or expired token ends its sessions. Sessions live in the
//! database, so several `fleetcare run` processes behind one address
//! share them.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::WebState;
use super::error::WebError;
use super::i18n::Lang;
use super::sessions;
use crate::http::api::{self, Action, ApiError, Caller, Resource, Scope};

/// The cookie that carries the session id.
pub const SESSION_COOKIE: &str = "fleetcare_session";
/// The cookie that carries the chosen language.
pub const LANG_COOKIE: &str = "fleetcare_lang";
/// Both cookies are sent only to the web UI's pages (the API takes bearer
/// tokens, never cookies, so it needs no CSRF protection).
const COOKIE_PATH: &str = "/ui";
/// What the CSRF token is an HMAC of, keyed by the session id.
const CSRF_LABEL: &[u8] = b"fleetcare web UI form v1";

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The language of a request: its cookie, else its `Accept-Language`.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .unwrap_or_else(|| {
            headers
                .get(axum::http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .map_or_else(Lang::default, Lang::from_accept_language)
        })
}

/// Whether `path` is one of the UI's own pages: the only places a
/// redirect after login or a language change may lead (no open redirect).
pub fn is_ui_path(path: &str) -> bool {
    (path == "/ui" || path.starts_with("/ui/"))
        && !path.contains("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
}

/// A `Set-Cookie` value for the UI's cookies; `None` clears the cookie.
pub fn set_cookie(name: &str, value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!("{name}={v}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict{secure}"),
        None => {
            format!("{name}=; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
        }
    }
}

/// Whether the browser reached us over HTTPS (through a proxy that says
/// so): then cookies are `Secure`.
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A signed-in user, from the session cookie; every page handler takes
/// one. Without a valid cookie the request is redirected to the login
/// page.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    /// The session id of the cookie (a secret, like the token it stands for).
    id: String,
    pub lang: Lang,
    /// The page's path and query, for links back to it.
    pub path: String,
}

impl Session {
    /// What the caller may see of `resource`: the API's own decision
    /// ([`api::authorize`]), 403 for a role the resource is not for.
    pub fn scope(&self, resource: Resource) -> Result<Scope, WebError> {
        Ok(api::authorize(self.caller.clone(), resource)?)
    }

    /// Whether the role may use `resource` (for which links to show).
    pub fn may_use(&self, resource: Resource) -> bool {
        self.caller.role.may_use(resource)
    }

    /// Whether the role may do `action` (for which forms to show).
    pub fn may(&self, action: Action) -> bool {
        self.caller.role.may(action)
    }

    /// The session id, to end the session.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self) -> Hmac<Sha256> {
        #[allow(clippy::expect_used)]
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.id.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(CSRF_LABEL);
        mac
    }

    /// The token forms carry in their `csrf` field: an HMAC of a fixed
    /// label keyed by the session id, so one per session. A page of another
    /// site can neither read the cookie nor this page, so it cannot forge
    /// it; it does not reveal the session id.
    pub fn csrf(&self) -> String {
        crate::runtime::secret::hex(&self.mac().finalize().into_bytes())
    }

    /// Checks a form's `csrf` field (in constant time).
    pub fn check_csrf(&self, given: &str) -> Result<(), WebError> {
        let bytes = decode_hex(given).ok_or(WebError::FormExpired)?;
        self.mac()
            .verify_slice(&bytes)
            .map_err(|_| WebError::FormExpired)
    }
}

/// Whether a POST comes from one of our own pages (issue 20, finding 9:
/// a login form posted from another site was accepted). Browsers say
/// where a request comes from: `Sec-Fetch-Site` (when sent) must be
/// `same-origin` or `none` (typed by the user), and `Origin` (when sent;
/// `null` is refused) must name this host as the browser reached it
/// (`Host`, or `X-Forwarded-Host` behind a proxy). A request with neither
/// is no browser's cross-site form (browsers send `Origin` on every
/// cross-origin POST), e.g. curl.
pub fn from_this_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = text("origin") else {
        return true;
    };
    let Some(authority) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let ours = |host: Option<&str>| host.is_some_and(|h| h.trim().eq_ignore_ascii_case(authority));
    ours(text("host")) || ours(text("x-forwarded-host"))
}

/// Middleware: a POST to the web UI (sign-in, sign-out, ticket moves)
/// from another site is refused (403) before anything reads it.
pub async fn refuse_cross_site(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    if request.method() == axum::http::Method::POST && !from_this_site(request.headers()) {
        tracing::info!(
            path = request.uri().path(),
            "Refused a web UI form posted from another site."
        );
        return WebError::FormExpired.into_response();
    }
    next.run(request).await
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl FromRequestParts<WebState> for Session {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        let path = parts
            .uri
            .path_and_query()
            .map_or("/ui/", |p| p.as_str())
            .to_owned();
        // After signing in, a GET returns to its page; a form posted with
        // an expired session returns to the start.
        let next = if parts.method == axum::http::Method::GET {
            path.clone()
        } else {
            String::new()
        };
        let login = || WebError::LoginNeeded { next: next.clone() };
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(login)?;
        let caller = sessions::resume(&state.api.db, id, &state.api.config.http)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(login)?;
        Ok(Self {
            caller,
            id: id.to_owned(),
            lang: lang_of(&parts.headers),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::api::Role;

    fn session(id: &str) -> Session {
        Session {
            caller: Caller {
                role: Role::Support,
                fleets: Vec::new(),
                actor: "support:test".to_owned(),
            },
            id: id.to_owned(),
            lang: Lang::En,
            path: "/ui/".to_owned(),
        }
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let a = session("aa11");
        let b = session("bb22");
        assert_eq!(a.csrf().len(), 64);
        assert!(a.check_csrf(&a.csrf()).is_ok());
        assert!(a.check_csrf(&b.csrf()).is_err());
        assert!(a.check_csrf("").is_err());
        assert!(a.check_csrf("zz").is_err());
        assert!(!a.csrf().contains("aa11"));
    }

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; fleetcare_lang=zh-CN".parse().unwrap());
        h.append("cookie", "fleetcare_session=fct_x".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("fct_x"));
        assert_eq!(lang_of(&h), Lang::ZhCn);
        assert_eq!(cookie(&h, "b"), None);
        let c = set_cookie(SESSION_COOKIE, Some("fct_x"), false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
        assert!(set_cookie(SESSION_COOKIE, None, true).contains("Max-Age=0; Secure"));
    }

    #[test]
    fn forms_from_other_sites_are_told_apart() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let host = ("host", "127.0.0.1:8080");
        for ok in [
            h(&[host]),
            h(&[host, ("origin", "http://127.0.0.1:8080")]),
            h(&[
                host,
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "same-origin"),
            ]),
            h(&[host, ("sec-fetch-site", "none")]),
            h(&[
                host,
                ("origin", "https://fleet.example"),
                ("x-forwarded-host", "fleet.example"),
            ]),
        ] {
            assert!(from_this_site(&ok), "{ok:?}");
        }
        for refused in [
            h(&[host, ("origin", "http://evil.example")]),
            h(&[host, ("origin", "http://127.0.0.1:8081")]),
            h(&[host, ("origin", "null")]),
            h(&[host, ("origin", "http://127.0.0.1:8080/path")]),
            h(&[("origin", "http://127.0.0.1:8080")]),
            h(&[host, ("sec-fetch-site", "cross-site")]),
            h(&[host, ("sec-fetch-site", "same-site")]),
            h(&[
                host,
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "cross-site"),
            ]),
        ] {
            assert!(!from_this_site(&refused), "{refused:?}");
        }
    }

    #[test]
    fn only_ui_paths_are_redirect_targets() {
        assert!(is_ui_path("/ui/tickets?state=open"));
        assert!(!is_ui_path("//evil.example/ui/"));
        assert!(!is_ui_path("/ui//evil.example"));
        assert!(!is_ui_path("/api/v1/tickets"));
        assert!(!is_ui_path("/ui/\\evil"));
    }
}
