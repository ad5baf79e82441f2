//! Spare parts, from `models/parts.toml`.

use fleetcare_ingest::ids::PartId;

/// A spare part from `models/parts.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub id: PartId,
    pub name: String,
    pub name_zh: Option<String>,
    /// What `qty` counts: `pcs`, `L`, `kg`, `set`…
    pub unit: String,
    /// Days from order to delivery at a depot, for the parts forecast.
    pub lead_time_days: u32,
    /// Weeks of forecast demand kept as safety stock on top of the demand
    /// over the lead time (contract C11; default
    /// [`DEFAULT_SAFETY_STOCK_WEEKS`]).
    pub safety_stock_weeks: f64,
}

/// The safety stock of a part whose entry does not say (C11).
pub const DEFAULT_SAFETY_STOCK_WEEKS: f64 = 2.0;
