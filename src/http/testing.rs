//! The whole HTTP app in unit tests, called with `app().oneshot(request)`
//! (axum's `examples/testing`): a state over a test database, an empty
//! store in a temporary directory and the repository's catalogue.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, header};
use tower::ServiceExt as _;

use super::api::ApiState;
use super::{Broker, IngestSources, WebState};
use crate::config::Config;
use crate::db::Db;
use crate::runtime::LiveMetrics;
use crate::tickets::Tickets;

/// A web state over `db`; the store is the empty directory `data`.
pub(crate) fn state(db: Db, data: &Path) -> WebState {
    let config = Config {
        data_dir: data.to_path_buf(),
        models_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
        ..Config::default()
    };
    let tickets = Tickets::new(db.clone(), config.sla.clone());
    let api = ApiState::new(db, tickets, config, Arc::new(LiveMetrics::default())).unwrap();
    WebState::new(
        api,
        IngestSources {
            broker: Broker::External("mqtt://broker.test".to_owned()),
            devices: Vec::new(),
        },
    )
}

/// One request through `app`.
pub(crate) async fn call(app: &Router, request: Request<Body>) -> Response<Body> {
    app.clone().oneshot(request).await.unwrap()
}

/// A GET of `path`, with `token` as bearer token when given.
pub(crate) fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path);
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    r.body(Body::empty()).unwrap()
}

/// A JSON POST of `body` to `path` as `token`.
pub(crate) fn post_json(path: &str, token: &str, body: &serde_json::Value) -> Request<Body> {
    Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A response's body as text.
pub(crate) async fn text(response: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A response's body as JSON.
pub(crate) async fn json(response: Response<Body>) -> serde_json::Value {
    serde_json::from_str(&text(response).await).unwrap()
}

/// Registers `(fleet, vehicle)` pairs, all compactor-c12.
pub(crate) async fn register(db: &Db, vehicles: &[(&str, &str)]) {
    for (fleet, vehicle) in vehicles {
        sqlx::query(
            "INSERT INTO vehicles (vehicle_id, fleet_id, model_id, vin, commissioned_on, depot) \
             VALUES ($1, $2, 'compactor-c12', NULL, '2024-01-01', 'north')",
        )
        .bind(*vehicle)
        .bind(*fleet)
        .execute(db.pool())
        .await
        .unwrap();
    }
}

/// A new token of `role` for `fleets`.
pub(crate) async fn token(db: &Db, role: super::api::Role, fleets: &[&str]) -> String {
    let fleets: Vec<_> = fleets
        .iter()
        .map(|f| fleetcare_ingest::ids::FleetId::new(f).unwrap())
        .collect();
    super::api::create_token(db, role, &fleets).await.unwrap()
}

/// A form POST of `body` (`a=b&c=d`) from this site's own page, as a
/// browser sends it: `Host`, `Origin` and `Sec-Fetch-Site` agree.
pub(crate) fn post_form(path: &str, body: &str, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::post(path)
        .header(header::HOST, "fleetcare.test:8080")
        .header(header::ORIGIN, "http://fleetcare.test:8080")
        .header("sec-fetch-site", "same-origin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, format!("fleetcare_session={c}"));
    }
    r.body(Body::from(body.to_owned())).unwrap()
}

/// A page fetched with the session cookie `cookie`.
pub(crate) fn page(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header(header::COOKIE, format!("fleetcare_session={cookie}"))
        .body(Body::empty())
        .unwrap()
}

/// The session id a response's `Set-Cookie` gives, if any.
pub(crate) fn session_cookie(response: &Response<Body>) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("fleetcare_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .find(|v| !v.is_empty())
}

/// The `csrf` field of the first form of a page.
pub(crate) fn csrf_of(html: &str) -> String {
    let at = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with csrf")
        + 19;
    html[at..at + 64].to_owned()
}

/// Signs in through the login form: the session id.
pub(crate) async fn sign_in(app: &Router, token: &str) -> String {
    let r = call(
        app,
        post_form("/ui/login", &format!("token={token}&lang=en"), None),
    )
    .await;
    assert_eq!(r.status(), axum::http::StatusCode::SEE_OTHER);
    session_cookie(&r).expect("a session cookie")
}
