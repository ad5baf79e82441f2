//! Reads for people: what the API and the web UI show from the stored
//! history ([`archive`]: meters, fault episodes, dead letters) and from the
//! alert log ([`alerts`]). The reports, which compute rather than read,
//! are [`crate::report`].

pub mod alerts;
pub mod archive;

use polars::prelude::PolarsError;

use crate::db::DbError;
use crate::store::StoreError;

/// Why a read failed. Every variant is a fault on our side (the caller
/// asked for something valid); the HTTP layer answers 500.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("the store cannot be read: {0}")]
    Store(#[from] StoreError),
    #[error("a query over the store failed: {0}")]
    Scan(#[from] PolarsError),
    #[error("the alert log cannot be read: {0}")]
    Db(#[from] DbError),
}
