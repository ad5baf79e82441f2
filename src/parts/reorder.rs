//! When and how much to reorder one part at one depot (C11), as pure
//! arithmetic over the demand forecast; docs/decisions.md, "Parts
//! ledger", writes the same formulas out.
//!
//! With `d` the weekly demand (the mean of the forecast's weekly totals),
//! `L` the lead time in days, `s` the safety stock in weeks and the stock
//! position `P = on_hand + on_order`:
//!
//! ```text
//! reorder_point = d × L / 7 + d × s
//! order_qty     = ⌈reorder_point − P⌉ when P < reorder_point, else 0
//! order_by      = (first day of the first week short) − L days
//! ```
//!
//! The order tops the position up to the cover of the lead time plus the
//! safety weeks. A week is short when the forecast's demand from the
//! first week through that one exceeds `P` (open orders counted as
//! arriving in time); `order_by` is the last day an order placed then
//! still arrives before that week starts, and `None` when no week of the
//! forecast is short. It may lie before the as-of day: an order placed
//! now arrives after the shortage begins.

use chrono::{NaiveDate, TimeDelta};

/// Tolerance for quantities computed in floating point (demand is
/// fractional: expected failures), so that 40.000000001 is not a 41st part.
const EPSILON: f64 = 1e-9;

/// What the reorder arithmetic needs about one part at one depot.
#[derive(Debug, Clone, PartialEq)]
pub struct ReorderInput<'a> {
    pub on_hand: i64,
    pub on_order: i64,
    /// The forecast's demand in each 7-day week from `as_of` on.
    pub weekly: &'a [f64],
    pub lead_time_days: u32,
    pub safety_stock_weeks: f64,
    /// The first day of the first week.
    pub as_of: NaiveDate,
}

/// The reorder figures of one part at one depot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReorderPlan {
    pub weekly_demand: f64,
    pub reorder_point: f64,
    pub order_qty: u64,
    pub order_by: Option<NaiveDate>,
}

/// The mean of the weekly totals; zero for no weeks.
pub fn weekly_demand(weekly: &[f64]) -> f64 {
    if weekly.is_empty() {
        0.0
    } else {
        weekly.iter().sum::<f64>() / weekly.len() as f64
    }
}

/// `d × L / 7 + d × s`.
pub fn reorder_point(weekly_demand: f64, lead_time_days: u32, safety_stock_weeks: f64) -> f64 {
    weekly_demand * f64::from(lead_time_days) / 7.0 + weekly_demand * safety_stock_weeks
}

/// `⌈reorder_point − position⌉`, or 0 when the position reaches the point.
pub fn order_qty(reorder_point: f64, position: i64) -> u64 {
    let gap = reorder_point - position as f64;
    if gap <= EPSILON {
        return 0;
    }
    // A gap is finite and far below u64::MAX for any real stock.
    (gap - EPSILON).ceil().max(0.0) as u64
}

/// The index of the first week whose cumulative demand exceeds `position`.
pub fn first_short_week(weekly: &[f64], position: i64) -> Option<usize> {
    let mut used = 0.0;
    for (k, w) in weekly.iter().enumerate() {
        used += w;
        if used > position as f64 + EPSILON {
            return Some(k);
        }
    }
    None
}

/// Every figure for one part at one depot.
pub fn plan(input: &ReorderInput<'_>) -> ReorderPlan {
    let d = weekly_demand(input.weekly);
    let rop = reorder_point(d, input.lead_time_days, input.safety_stock_weeks);
    let position = input.on_hand.saturating_add(input.on_order);
    let order_by = first_short_week(input.weekly, position)
        .map(|k| input.as_of + TimeDelta::days(7 * k as i64 - i64::from(input.lead_time_days)));
    ReorderPlan {
        weekly_demand: d,
        reorder_point: rop,
        order_qty: order_qty(rop, position),
        order_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// The hand-computed fixture (docs/decisions.md, "Parts ledger"), the
    /// same as the end-to-end test's: 10 a week, lead time 14 days, 2
    /// safety weeks, 25 on hand and 10 on order.
    ///
    /// - reorder_point = 10 × 14 / 7 + 10 × 2 = 20 + 20 = 40
    /// - position = 25 + 10 = 35, order_qty = ⌈40 − 35⌉ = 5
    /// - cumulative demand 10, 20, 30, 40: week 3 (from 2026-03-22) is the
    ///   first short one; order_by = 2026-03-22 − 14 days = 2026-03-08.
    #[test]
    fn the_hand_computed_fixture() {
        let weekly = [10.0; 12];
        let p = plan(&ReorderInput {
            on_hand: 25,
            on_order: 10,
            weekly: &weekly,
            lead_time_days: 14,
            safety_stock_weeks: 2.0,
            as_of: day("2026-03-01"),
        });
        assert_eq!(
            p,
            ReorderPlan {
                weekly_demand: 10.0,
                reorder_point: 40.0,
                order_qty: 5,
                order_by: Some(day("2026-03-08")),
            }
        );
    }

    /// Lumpy and fractional demand: weeks 7, 0, 14, 0 (21 / 4 = 5.25 a
    /// week), lead time 10 days, 1.5 safety weeks, 2 on hand, none on order.
    ///
    /// - reorder_point = 5.25 × 10 / 7 + 5.25 × 1.5 = 7.5 + 7.875 = 15.375
    /// - order_qty = ⌈15.375 − 2⌉ = ⌈13.375⌉ = 14
    /// - week 0 already needs 7 > 2: order_by = 2026-03-01 − 10 days =
    ///   2026-02-19, before the as-of day (too late already).
    #[test]
    fn lumpy_fractional_demand_and_a_late_order() {
        let weekly = [7.0, 0.0, 14.0, 0.0];
        let p = plan(&ReorderInput {
            on_hand: 2,
            on_order: 0,
            weekly: &weekly,
            lead_time_days: 10,
            safety_stock_weeks: 1.5,
            as_of: day("2026-03-01"),
        });
        assert_eq!(p.weekly_demand, 5.25);
        assert!((p.reorder_point - 15.375).abs() < 1e-12, "{p:?}");
        assert_eq!(p.order_qty, 14);
        assert_eq!(p.order_by, Some(day("2026-02-19")));
    }

    /// Enough stock: no order; a position exactly at the point orders
    /// nothing; stock below zero is made up too.
    #[test]
    fn edges() {
        assert_eq!(order_qty(40.0, 40), 0);
        assert_eq!(order_qty(40.0, 41), 0);
        assert_eq!(order_qty(40.000_000_000_1, 40), 0);
        assert_eq!(order_qty(0.0, -3), 3);
        assert_eq!(first_short_week(&[10.0, 10.0], 20), None);
        assert_eq!(first_short_week(&[], 0), None);
        assert_eq!(first_short_week(&[0.5], -1), Some(0));
        let p = plan(&ReorderInput {
            on_hand: 100,
            on_order: 0,
            weekly: &[10.0; 4],
            lead_time_days: 7,
            safety_stock_weeks: 2.0,
            as_of: day("2026-03-01"),
        });
        assert_eq!((p.reorder_point, p.order_qty, p.order_by), (30.0, 0, None));
        let none = plan(&ReorderInput {
            on_hand: 0,
            on_order: 0,
            weekly: &[],
            lead_time_days: 30,
            safety_stock_weeks: 2.0,
            as_of: day("2026-03-01"),
        });
        assert_eq!(
            (none.weekly_demand, none.order_qty, none.order_by),
            (0.0, 0, None)
        );
    }

    proptest! {
        /// After ordering, the position reaches the reorder point and falls
        /// short of it by less than one part before.
        #[test]
        fn an_order_tops_the_position_up_to_the_point(
            d in 0.0f64..500.0,
            lead in 0u32..120,
            safety in 0.0f64..8.0,
            on_hand in -1000i64..5000,
            on_order in 0i64..5000,
        ) {
            let rop = reorder_point(d, lead, safety);
            let position = on_hand + on_order;
            let q = order_qty(rop, position);
            prop_assert!(position as f64 + q as f64 >= rop - 1e-6);
            if q > 0 {
                prop_assert!(position as f64 + (q - 1) as f64 <= rop);
            }
        }

        /// The first short week is where the cumulative demand first passes
        /// the position, and the order-by date is that week less the lead
        /// time.
        #[test]
        fn order_by_is_the_short_week_less_the_lead_time(
            weekly in proptest::collection::vec(0.0f64..50.0, 0..20),
            position in -10i64..400,
            lead in 0u32..60,
        ) {
            let as_of = day("2026-01-01");
            let p = plan(&ReorderInput {
                on_hand: position,
                on_order: 0,
                weekly: &weekly,
                lead_time_days: lead,
                safety_stock_weeks: 2.0,
                as_of,
            });
            match first_short_week(&weekly, position) {
                None => prop_assert_eq!(p.order_by, None),
                Some(k) => {
                    let before: f64 = weekly[..k].iter().sum();
                    let through: f64 = weekly[..=k].iter().sum();
                    // No week before it is short (stock below zero is
                    // short from the first week, whatever the demand).
                    prop_assert!(k == 0 || before <= position as f64 + 1e-9);
                    prop_assert!(through > position as f64);
                    prop_assert_eq!(
                        p.order_by,
                        Some(as_of + TimeDelta::days(7 * k as i64 - i64::from(lead)))
                    );
                }
            }
        }
    }
}
