//! The API's one error type: every failure a handler or extractor can have,
//! each with its status, answered as `{"error": "…"}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use thiserror::Error;

use crate::db::DbError;
use crate::http::auth::{Action, Role};
use crate::http::tokens::Refusal;
use crate::query::QueryError;
use crate::report::ReportError;
use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum ApiError {
    /// 401: no `Authorization: Bearer` header, or a token that is not ours.
    #[error("a valid bearer token is required; create one with `fleetcare tokens create`")]
    Unauthorized,
    /// 401: a token of ours that expired or was revoked.
    #[error("{0}; a valid bearer token is required (`fleetcare tokens create` makes one)")]
    TokenEnded(Refusal),
    /// 403: the role may not use this endpoint.
    #[error("the {0} role may not use this endpoint")]
    Forbidden(Role),
    /// 403: the role may see this resource but not do this to it.
    #[error("the {role} role may not {}", action.describe())]
    NotAllowed { role: Role, action: Action },
    /// 404: nothing of that id, or nothing the caller may see (the same
    /// answer, so an id's existence does not leak across fleets).
    #[error("no {0} of that id")]
    NotFound(String),
    /// 400: a query parameter or path segment that cannot be read.
    #[error("{0}")]
    BadRequest(String),
    /// 422: a well-formed request that cannot be carried out as asked.
    #[error("{0}")]
    Unprocessable(String),
    /// 409: a move the resource's state does not allow.
    #[error("{0}")]
    Conflict(String),
    /// 415, 413, 400 or 422 as axum decided for a body it could not read.
    #[error("{message}")]
    Body { status: StatusCode, message: String },
    /// 500: the database failed.
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// 500: the store could not be read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// 500: a read of the history or the logs failed.
    #[error("{0}")]
    Query(#[from] QueryError),
    /// 500: a report could not be computed.
    #[error("report: {0}")]
    Report(#[from] ReportError),
    /// 500: anything else on our side (a task that panicked, …).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::TokenEnded(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::NotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Body { status, .. } => *status,
            Self::Db(_) | Self::Store(_) | Self::Query(_) | Self::Report(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            // Logged once here; the client gets a plain message without
            // paths or SQL.
            tracing::error!(error = %self, "An API request failed.");
            "internal error; the server log has the details".to_owned()
        } else {
            self.to_string()
        };
        let mut response = (status, Json(json!({ "error": message }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Self::Body {
            status: r.status(),
            message: r.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::BadRequest(r.body_text())
    }
}
