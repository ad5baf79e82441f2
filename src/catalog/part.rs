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
}
