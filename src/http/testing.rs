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

/// A response's body as text.
pub(crate) async fn text(response: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}
