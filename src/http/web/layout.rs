//! The frame every page shares (header, navigation by role, language and
//! logout), the error pages, the style sheet, and how values are written.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::error::ErrorPage;
use super::i18n::Lang;
use super::session::{Session, lang_of};
use crate::http::api::{Resource, Role};

/// The style sheet, compiled into the binary.
const STYLE: &str = include_str!("style.css");
/// Where pages link it; the version makes browsers fetch a new release's.
pub const STYLE_PATH: &str = concat!("/ui/static/style.css?v=", env!("CARGO_PKG_VERSION"));

/// `GET /ui/static/style.css`.
pub async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        STYLE,
    )
        .into_response()
}

/// The pages of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Tickets,
    Trends,
    Kpis,
    Parts,
    Stock,
    Health,
}

impl Nav {
    const ALL: [Nav; 7] = [
        Self::Overview,
        Self::Tickets,
        Self::Trends,
        Self::Kpis,
        Self::Parts,
        Self::Stock,
        Self::Health,
    ];

    pub const fn path(self) -> &'static str {
        match self {
            Self::Overview => "/ui/",
            Self::Tickets => "/ui/tickets",
            Self::Trends => "/ui/trends",
            Self::Kpis => "/ui/kpis",
            Self::Parts => "/ui/parts",
            Self::Stock => "/ui/stock",
            Self::Health => "/ui/health",
        }
    }

    /// The resource a page needs: a link is shown only to roles that may
    /// use it.
    pub const fn resource(self) -> Resource {
        match self {
            Self::Overview => Resource::Vehicles,
            Self::Tickets => Resource::Tickets,
            Self::Trends => Resource::Reports,
            Self::Kpis => Resource::Reports,
            Self::Parts => Resource::PartsReport,
            Self::Stock => Resource::Stock,
            Self::Health => Resource::DeadLetters,
        }
    }

    fn label(self, lang: Lang) -> &'static str {
        let t = lang.text();
        match self {
            Self::Overview => t.nav_overview,
            Self::Tickets => t.nav_tickets,
            Self::Trends => t.nav_trends,
            Self::Kpis => t.nav_kpis,
            Self::Parts => t.nav_parts,
            Self::Stock => t.nav_stock,
            Self::Health => t.nav_health,
        }
    }

    /// The first page a role may open: where `/ui/` sends a planner.
    pub fn home(role: Role) -> Option<Nav> {
        Self::ALL.into_iter().find(|n| role.may_use(n.resource()))
    }
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="referrer" content="same-origin";
        title { (title) " · fleetcare" }
        link rel="stylesheet" href=(STYLE_PATH);
    }
}

/// A page of a signed-in user: header with the links the role may use,
/// the user, the language links and logout; then `body`.
pub fn page(session: &Session, active: Option<Nav>, title: &str, body: Markup) -> Markup {
    let lang = session.lang;
    let t = lang.text();
    let fleets = match session.caller.role {
        Role::Operator => session
            .caller
            .fleets
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        _ => t.all_fleets.to_owned(),
    };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head { (head(title)) }
            body {
                a.skip href="#main" { (t.skip_to_content) }
                header.top {
                    a.brand href="/ui/" { "fleetcare" }
                    nav aria-label="main" {
                        @for n in Nav::ALL {
                            @if session.may_use(n.resource()) {
                                a href=(n.path()) aria-current=[(active == Some(n)).then_some("page")] {
                                    (n.label(lang))
                                }
                            }
                        }
                    }
                    div.who {
                        span.role title=(t.signed_in_as) data-role=(session.caller.role.as_str()) {
                            (session.caller.role.as_str()) " · " (fleets)
                        }
                        span.langs aria-label=(t.language) {
                            @for l in Lang::ALL {
                                @if l == lang {
                                    strong { (l.name()) }
                                } @else {
                                    a href=(format!("/ui/lang?to={}&back={}", l.code(), super::error::percent_encode(&session.path))) hreflang=(l.code()) { (l.name()) }
                                }
                            }
                        }
                        form.logout method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(session.csrf());
                            button type="submit" { (t.logout) }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page without a session: login and errors.
pub fn bare_page(lang: Lang, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head { (head(title)) }
            body {
                header.top {
                    a.brand href="/ui/" { "fleetcare" }
                    span.langs {
                        @for l in Lang::ALL {
                            @if l != lang {
                                a href=(format!("/ui/lang?to={}&back=/ui/login", l.code())) hreflang=(l.code()) { (l.name()) }
                            }
                        }
                    }
                }
                main #main.narrow {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// Middleware: gives error responses ([`ErrorPage`] in their extensions)
/// a page in the user's language.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let lang = lang_of(request.headers());
    let mut response = next.run(request).await;
    let Some(page) = response.extensions_mut().remove::<ErrorPage>() else {
        return response;
    };
    let t = lang.text();
    let (title, text) = match page.status {
        StatusCode::NOT_FOUND => (t.error_not_found, t.error_not_found_text),
        StatusCode::FORBIDDEN if page.form_expired => (t.error_forbidden, t.error_form_expired),
        StatusCode::FORBIDDEN => (t.error_forbidden, t.error_forbidden_text),
        s if s.is_server_error() => (t.error_internal, t.error_internal_text),
        _ => (t.error_bad_request, ""),
    };
    let body = bare_page(
        lang,
        title,
        html! {
            p.error data-status=(page.status.as_u16()) { (text) }
            @if let Some(m) = page.message.as_ref().filter(|_| page.status == StatusCode::BAD_REQUEST || page.status == StatusCode::UNPROCESSABLE_ENTITY) {
                p { code { (m) } }
            }
            p { a href="/ui/" { (t.back_home) } }
        },
    );
    let mut out = (page.status, body).into_response();
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
}

/// A time as pages show it: `2026-03-01 08:00 UTC`, in a `<time>`.
pub fn time(t: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {
            (t.format("%Y-%m-%d %H:%M UTC"))
        }
    }
}

/// An RFC 3339 text (as the API's archive carries times) shown like
/// [`time`]; anything else as it is.
pub fn time_text(text: &str) -> Markup {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => time(t.with_timezone(&Utc)),
        Err(_) => html! { (text) },
    }
}

/// A quantity with at most `decimals` places and no trailing zeros.
pub fn number(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A table that scrolls sideways on a narrow screen instead of widening
/// the page.
pub fn scroll(table: Markup) -> Markup {
    html! { div.scroll { (table) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_drop_trailing_zeros() {
        assert_eq!(number(28.0, 2), "28");
        assert_eq!(number(1.50, 2), "1.5");
        assert_eq!(number(0.126, 2), "0.13");
        assert_eq!(number(-3.0, 0), "-3");
    }

    #[test]
    fn planners_start_on_the_first_page_they_may_use() {
        assert_eq!(Nav::home(Role::Operator), Some(Nav::Overview));
        assert_eq!(Nav::home(Role::Planner), Some(Nav::Trends));
    }
}
