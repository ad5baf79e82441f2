//! Maintenance intelligence (contract C5, C6): the periodic jobs that turn
//! the stored history, the catalogue and the fleet registry into the four
//! reports — which truck needs which service and when ([`due`]), which
//! faults keep coming back and which repairs did not hold ([`recurring`]),
//! how often each code strikes per model ([`trends`]) and which parts to
//! stock ([`parts`]) — and which truck's condition signals drift toward a
//! failure before its fault code fires ([`condition`], C12).
//!
//! Each job scans only the days it needs from the store (polars lazy scans
//! with the time predicate and the columns pushed down to Parquet), then
//! returns typed rows whose fields are exactly the C6 report fields, so the
//! CLI, the tickets and the web layer read one result the same way.
//! [`output`] prints them as a table, JSON or CSV. Decisions where the
//! contract is silent: `docs/reports.md`.

pub mod claims;
pub mod condition;
pub mod due;
mod duty;
mod history;
pub mod kpis;
pub mod output;
pub mod parts;
pub mod recurring;
pub mod reorder;
pub mod status;
pub mod trends;
mod usage;
pub mod verification;

#[cfg(test)]
mod tests;

use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::PolarsError;

use crate::catalog::Catalog;
use crate::config::DetectConfig;
use crate::registry::{ServiceHistory, ServiceRecord, StockLevel, Vehicle};
use crate::store::StoreError;

pub use claims::{ClaimRow, Period};
pub use condition::ConditionRow;
pub use due::{DueRow, DutyMeterRow, MeterValue, NextServiceRow};
pub use kpis::{KpiBy, KpiRow};
pub use parts::PartsRow;
pub use recurring::{RecurringKind, RecurringRow};
pub use reorder::ReorderRow;
pub use trends::TrendRow;

/// Microseconds in a day.
pub(crate) const US_PER_DAY: i64 = 86_400_000_000;

/// A report that could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read the store: {0}")]
    Store(#[from] StoreError),
    #[error("the {report} report's query over the store failed: {source}")]
    Query {
        report: &'static str,
        source: PolarsError,
    },
    #[error(
        "the store's {table} table holds a value this version cannot read ({what}); \
         was it written by another program?"
    )]
    Corrupt { table: &'static str, what: String },
}

pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// What the reports join the store with: the fleet registry, the service
/// history and the stock, as read once from the database.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub vehicles: Vec<Vehicle>,
    /// The service history, or (from [`Registry::load`]) the part of it the
    /// reports to run read.
    pub services: Vec<ServiceRecord>,
    pub stock: Vec<StockLevel>,
}

impl Registry {
    /// Reads all three from the database, with the part of the service
    /// history up to `as_of` that the reports to run look at.
    pub async fn load(
        db: &crate::db::Db,
        as_of: DateTime<Utc>,
        services: ServiceHistory,
    ) -> Result<Self, crate::db::DbError> {
        Ok(Self {
            vehicles: crate::registry::vehicles(db).await?,
            services: crate::registry::services_for_reports(db, as_of, services).await?,
            stock: crate::parts::levels(db).await?,
        })
    }

    /// [`Registry::load`] and the parts ledger's stock and open orders
    /// (for the reorder report), the ledger summed once for both.
    pub async fn load_with_balances(
        db: &crate::db::Db,
        as_of: DateTime<Utc>,
        services: ServiceHistory,
    ) -> Result<(Self, Vec<crate::parts::Balance>), crate::db::DbError> {
        let balances = crate::parts::balances(db).await?;
        let registry = Self {
            vehicles: crate::registry::vehicles(db).await?,
            services: crate::registry::services_for_reports(db, as_of, services).await?,
            stock: crate::parts::levels_of(&balances),
        };
        Ok((registry, balances))
    }
}

/// Everything a job needs besides the store.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub registry: &'a Registry,
    pub detect: &'a DetectConfig,
    /// The time the report describes: nothing later is read.
    pub as_of: DateTime<Utc>,
}

impl Context<'_> {
    pub(crate) fn as_of_us(&self) -> i64 {
        self.as_of.timestamp_micros()
    }

    /// The UTC date of the as-of time: the day day-intervals and forecasts
    /// count from.
    pub(crate) fn as_of_date(&self) -> NaiveDate {
        self.as_of.date_naive()
    }
}

/// `x` rounded to `decimals` places, for printing quantities without
/// binary noise (dividing by the power of ten gives the double nearest the
/// decimal).
pub(crate) fn round_to(x: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (x * p).round() / p
}
