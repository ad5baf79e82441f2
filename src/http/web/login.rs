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
use super::{LOGIN, WebState, sessions};
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

/// `POST /ui/login`: a valid token starts a session (its id, not the
/// token, goes in the cookie) and returns to the page the user came for.
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
    // CSRF): session::refuse_cross_site refused it before this.
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
    let session = sessions::start(&state.api.db, token, &state.api.config.http)
        .await
        .map_err(|e| match e {
            sessions::SessionError::Db(db) => ApiError::Db(db),
            other => ApiError::Internal(other.to_string()),
        })?;
    tracing::info!(role = %caller.role, actor = caller.actor, "Signed in to the web UI.");
    let secure = over_https(&headers);
    let mut response = see_other(next);
    for cookie in [
        set_cookie(SESSION_COOKIE, Some(&session), secure),
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

/// `POST /ui/logout`: ends the session on the server (the cookie stops
/// working at once, wherever a copy of it is) and clears the cookie.
pub async fn logout(
    State(state): State<WebState>,
    session: Session,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    session.check_csrf(&form.csrf)?;
    sessions::end(&state.api.db, session.id())
        .await
        .map_err(ApiError::from)?;
    tracing::info!(actor = session.caller.actor, "Signed out of the web UI.");
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};

    use crate::db::Db;
    use crate::http::api::{Role, revoke_token};
    use crate::http::testing::{
        call, csrf_of, page, post_form, session_cookie, sign_in, state, text, token,
    };

    fn location(r: &axum::http::Response<Body>) -> &str {
        r.headers()[header::LOCATION].to_str().unwrap()
    }

    /// Issue 20, finding 6: the session cookie held the raw API token and
    /// stayed valid after logout.
    async fn signing_out_ends_the_session_on_the_server(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        let app = crate::http::app(state(db.clone(), dir.path()));
        let support = token(&db, Role::Support, &[]).await;

        let r = call(
            &app,
            post_form(
                "/ui/login",
                &format!("token={support}&lang=en&next=/ui/tickets"),
                None,
            ),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), "/ui/tickets");
        let id = session_cookie(&r).unwrap();
        assert!(id.len() == 64 && !id.contains(&support[4..]), "{id}");
        let r = call(&app, page("/ui/tickets", &id)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = text(r).await;
        assert!(
            !html.contains(&support[4..]),
            "the page never shows the token"
        );
        let csrf = csrf_of(&html);
        // The token itself is not a session.
        let r = call(&app, page("/ui/tickets", &support)).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);

        // A wrong form token signs nobody out.
        let r = call(&app, post_form("/ui/logout", "csrf=00", Some(&id))).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = call(
            &app,
            post_form("/ui/logout", &format!("csrf={csrf}"), Some(&id)),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), "/ui/login?out=1");
        // The old cookie, replayed: back to the login page.
        let r = call(&app, page("/ui/tickets", &id)).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), "/ui/login?next=/ui/tickets");

        // A second sign-in is a new session with its own form token.
        let again = sign_in(&app, &support).await;
        assert_ne!(again, id);
        let html = text(call(&app, page("/ui/tickets", &again)).await).await;
        assert_ne!(csrf_of(&html), csrf);
        // Revoking the token ends its sessions.
        revoke_token(&db, &support).await.unwrap();
        let r = call(&app, page("/ui/tickets", &again)).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        // And it cannot start one.
        let r = call(
            &app,
            post_form("/ui/login", &format!("token={support}"), None),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(session_cookie(&r), None);
    }

    #[test]
    fn sign_out_on_sqlite() {
        crate::db::testing::on_sqlite(signing_out_ends_the_session_on_the_server);
    }

    #[test]
    fn sign_out_on_postgres() {
        crate::db::testing::on_postgres(signing_out_ends_the_session_on_the_server);
    }

    /// Issue 20, finding 9: a login form posted from another site was
    /// accepted when the browser sent no `Sec-Fetch-Site`.
    async fn forms_from_another_site_are_refused(db: Db) {
        let dir = tempfile::tempdir().unwrap();
        let app = crate::http::app(state(db.clone(), dir.path()));
        let support = token(&db, Role::Support, &[]).await;
        let form = |origin: Option<&str>, site: Option<&str>| {
            let mut r = Request::post("/ui/login")
                .header(header::HOST, "fleetcare.test:8080")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            if let Some(o) = origin {
                r = r.header(header::ORIGIN, o);
            }
            if let Some(s) = site {
                r = r.header("sec-fetch-site", s);
            }
            r.body(Body::from(format!("token={support}"))).unwrap()
        };
        for (origin, site) in [
            (Some("http://evil.example"), None),
            (Some("null"), None),
            (Some("http://evil.example"), Some("cross-site")),
            (None, Some("cross-site")),
            (Some("http://fleetcare.test:8080"), Some("same-site")),
        ] {
            let r = call(&app, form(origin, site)).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin:?} {site:?}");
            assert_eq!(session_cookie(&r), None);
        }
        for (origin, site) in [
            (Some("http://fleetcare.test:8080"), Some("same-origin")),
            (Some("http://fleetcare.test:8080"), None),
            (None, None),
        ] {
            let r = call(&app, form(origin, site)).await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "{origin:?} {site:?}");
            assert!(session_cookie(&r).is_some());
        }
        // Every form, not only the login: a sign-out from another site.
        let id = sign_in(&app, &support).await;
        let html = text(call(&app, page("/ui/tickets", &id)).await).await;
        let mut r = post_form("/ui/logout", &format!("csrf={}", csrf_of(&html)), Some(&id));
        r.headers_mut()
            .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert_eq!(call(&app, r).await.status(), StatusCode::FORBIDDEN);
        let r = call(&app, page("/ui/tickets", &id)).await;
        assert_eq!(r.status(), StatusCode::OK, "still signed in");
    }

    #[test]
    fn foreign_origins_on_sqlite() {
        crate::db::testing::on_sqlite(forms_from_another_site_are_refused);
    }
}
