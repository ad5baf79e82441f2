//! The parts ledger (contract C11, issue 22): stock is the sum of its
//! movements, not a snapshot typed in.
//!
//! ```text
//! stock import (count) ──adjust (count − on hand)──┐
//! stock receive ─────────receipt (+qty)────────────┤
//! ticket closed ─────────issue (−qty, same tx)─────┼─▶ stock_movements ──SUM──▶ on_hand
//! stock transfer ────────transfer (−qty, +qty)─────┘
//! stock order ───────────open order lines ─────────────▶ stock_orders ──────▶ on_order
//! ```
//!
//! Movements are only ever appended, so concurrent writers (50 tickets
//! closing at once on PostgreSQL) cannot lose one another's updates: there
//! is no balance row to read, change and write back. A depot whose stock
//! goes below zero is reported (the part was fitted, so the issue is
//! booked anyway), never refused.
//!
//! [`reorder`] holds the reorder arithmetic, as pure functions; the report
//! that feeds it the demand forecast is `report::reorder`. Choices:
//! docs/decisions.md, "Parts ledger".

mod import;
mod ledger;
pub mod reorder;

#[cfg(test)]
mod tests;

use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

pub use import::{ORDER_COLUMNS, RECEIPT_COLUMNS, import_counts, import_orders, import_receipts};
pub use ledger::{
    availability, balances, balances_page, first_wait_alert, issue_for_ticket_in, levels,
    levels_of, movements_page, on_hand, record, transfer,
};

use crate::catalog::PartId;
use crate::registry::Depot;

/// Tickets waiting in `awaiting_parts` longer than this are alerted to
/// support, once per ticket (issue 22).
pub const WAIT_ALERT_DAYS: i64 = 14;

/// The longest reference accepted (an order number, a file name).
pub const MAX_REFERENCE_LEN: usize = 64;

/// What moved stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// Parts delivered to a depot (an order received).
    Receipt,
    /// Parts taken for a repair (a closed ticket).
    Issue,
    /// A count's difference to the stock before it.
    Adjust,
    /// Parts moved between depots: one row out, one row in.
    Transfer,
}

impl MovementKind {
    pub const ALL: [Self; 4] = [Self::Receipt, Self::Issue, Self::Adjust, Self::Transfer];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "receipt",
            Self::Issue => "issue",
            Self::Adjust => "adjust",
            Self::Transfer => "transfer",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for MovementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn depot_text<S: Serializer>(d: &Depot, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.as_str())
}

/// One booked movement of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Movement {
    /// Ascending in the order movements were booked.
    pub id: i64,
    pub part: PartId,
    #[serde(serialize_with = "depot_text")]
    pub depot: Depot,
    pub kind: MovementKind,
    /// Signed: what the movement added to the depot's stock.
    pub qty: i64,
    pub at: DateTime<Utc>,
    /// `ticket:ID`, `order:REF`, `count:FILE` or `transfer:REF`.
    pub reference: String,
    pub actor: String,
}

/// A movement to book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMovement {
    pub part: PartId,
    pub depot: Depot,
    pub kind: MovementKind,
    pub qty: i64,
    pub at: DateTime<Utc>,
    pub reference: String,
    pub actor: String,
}

/// Stock of one part at one depot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    pub part: PartId,
    #[serde(serialize_with = "depot_text")]
    pub depot: Depot,
    /// The sum of the movements; below zero when more was fitted than the
    /// ledger knew of (count the shelf, or book the missing receipt).
    pub on_hand: i64,
    /// Ordered and not received yet.
    pub on_order: i64,
    /// `on_hand < 0`: the warning the ledger gives instead of refusing.
    pub below_zero: bool,
    /// Whether the ledger has a movement of it (else only an open order):
    /// the parts forecast counts a depot with movements as stocked.
    #[serde(skip)]
    pub has_movements: bool,
}

/// A part a fault's repair needs, against the depot's stock (C11: shown
/// on a ticket at `diagnosing`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartCheck {
    pub part: PartId,
    /// What the catalogue says the repair typically uses.
    pub needed: f64,
    pub on_hand: i64,
    pub on_order: i64,
    /// `on_hand >= needed`.
    pub enough: bool,
}

/// A depot that a ticket's issue left below zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub part: PartId,
    pub depot: Depot,
    pub on_hand: i64,
}

/// How times are stored: RFC 3339 UTC with microseconds, one width, so
/// that text order is time order.
pub(crate) fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The start of a day (UTC), as movements dated by day are booked.
pub(crate) fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// A reference as given: 1 to [`MAX_REFERENCE_LEN`] printable characters
/// without surrounding spaces.
pub fn valid_reference(text: &str) -> bool {
    let n = text.chars().count();
    (1..=MAX_REFERENCE_LEN).contains(&n)
        && text.trim() == text
        && !text.chars().any(char::is_control)
}
