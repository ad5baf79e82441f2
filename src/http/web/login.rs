//! Signing in with an API token, signing out, and the language switch.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::error::{WebError, see_other};
use super::i18n::Lang;
use super::layout::{Nav, bare_page};
use super::session::{
    LANG_COOKIE, SESSION_COOKIE, Session, is_ui_path, lang_of, over_https, set_cookie,
};
use super::{LOGIN, WebState};
use crate::http::api::{self, ApiError};

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// Set after logging out.
    out: Option<String>,
}

fn login_page(lang: Lang, next: &str, problem: Option<&str>, note: Option<&str>) -> maud::Markup {
    let t = lang.text();
    bare_page(
        lang,
        t.login_title,
        html! {
            @if let Some(p) = problem {
                p.error role="alert" { (p) }
            }
            @if let Some(n) = note {
                p.note { (n) }
            }
            form.login method="post" action=(LOGIN) {
                label for="token" { (t.login_token) }
                input #token type="password" name="token" required autocomplete="off"
                    spellcheck="false" autofocus;
                p.help { (t.login_token_help) }
                label for="lang" { (t.language) }
                select #lang name="lang" {
                    @for l in Lang::ALL {
                        option value=(l.code()) selected[l == lang] { (l.name()) }
                    }
                }
                input type="hidden" name="next" value=(next);
                button type="submit" { (t.login_submit) }
            }
        },
    )
}

/// `GET /ui/login`.
pub async fn form(headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let lang = lang_of(&headers);
    let t = lang.text();
    let next = q
        .next
        .as_deref()
        .filter(|n| is_ui_path(n))
        .unwrap_or("/ui/");
    let note = if q.out.is_some() {
        Some(t.logged_out)
    } else if q.next.is_some() {
        Some(t.login_required)
    } else {
        None
    };
    (
        [(header::CACHE_CONTROL, "no-store")],
        login_page(lang, next, None, note),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    lang: Option<String>,
    next: Option<String>,
}

/// `POST /ui/login`: a valid token sets the session and language cookies
/// and returns to the page the user came for.
pub async fn submit(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let lang = form
        .lang
        .as_deref()
        .and_then(Lang::parse)
        .unwrap_or_else(|| lang_of(&headers));
    // Another site cannot sign a browser in with its own token (login
    // CSRF): browsers say where a form came from.
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Err(WebError::FormExpired);
    }
    let token = form.token.trim();
    let next = form
        .next
        .as_deref()
        .filter(|n| is_ui_path(n))
        .unwrap_or("/ui/");
    let valid = token.len() <= 200
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let caller = if valid {
        api::authenticate(&state.api.db, token)
            .await
            .map_err(ApiError::from)?
    } else {
        None
    };
    let Some(caller) = caller else {
        tracing::info!("A web UI sign-in with an unknown token was refused.");
        let page = login_page(lang, next, Some(lang.text().login_failed), None);
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    };
    tracing::info!(role = %caller.role, "Signed in to the web UI.");
    let secure = over_https(&headers);
    let mut response = see_other(next);
    for cookie in [
        set_cookie(SESSION_COOKIE, Some(token), secure),
        set_cookie(LANG_COOKIE, Some(lang.code()), secure),
    ] {
        if let Ok(v) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /ui/logout`: clears the session cookie.
pub async fn logout(
    session: Session,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    session.check_csrf(&form.csrf)?;
    let mut response = see_other(&format!("{LOGIN}?out=1"));
    if let Ok(v) = set_cookie(SESSION_COOKIE, None, over_https(&headers)).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct LanguageQuery {
    to: String,
    back: Option<String>,
}

/// `GET /ui/lang?to=zh-CN&back=/ui/…`: sets the language cookie and
/// returns to the page (changing a display preference needs no form).
pub async fn language(headers: HeaderMap, Query(q): Query<LanguageQuery>) -> Response {
    let back = q
        .back
        .as_deref()
        .filter(|b| is_ui_path(b))
        .unwrap_or("/ui/");
    let mut response = see_other(back);
    if let Some(lang) = Lang::parse(&q.to)
        && let Ok(v) = set_cookie(LANG_COOKIE, Some(lang.code()), over_https(&headers)).parse()
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Where `/ui/` sends a role that may not see the fleet overview.
pub fn home_of(session: &Session) -> Option<&'static str> {
    Nav::home(session.caller.role).map(Nav::path)
}
