//! Maintenance status of one task (contract C5), as the ground truth states
//! it and as the service-history planner aims for it.
//!
//! For each interval the next service falls due at the last service's
//! meter (or the commissioning date for days, or zero) plus the interval.
//! Per meter: `overdue` when remaining ≤ 0, `due_soon` when remaining ≤ its
//! window, else `ok`. The task takes its most urgent meter; among equally
//! urgent ones, the one that falls due first by forecast (remaining over
//! usage per day; days fall due on their date), and with no usage known the
//! smallest remaining share of its interval.

use serde::Serialize;

use crate::catalog::{Interval, IntervalMeter};

/// A meter's or a task's maintenance status, least urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Ok,
    DueSoon,
    Overdue,
}

impl Status {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::DueSoon => "due_soon",
            Self::Overdue => "overdue",
        }
    }
}

/// One interval of a task at the as-of time. Days are counted as day
/// numbers, so that every interval is plain arithmetic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IntervalDue {
    pub(crate) meter: IntervalMeter,
    pub(crate) every: f64,
    pub(crate) window: f64,
    pub(crate) due_at: f64,
    pub(crate) current: f64,
    pub(crate) remaining: f64,
    pub(crate) status: Status,
    /// Usage of the meter per day, when known (1 for days).
    pub(crate) per_day: Option<f64>,
}

impl IntervalDue {
    /// `last`: the meter (or day number) of the last service, or zero (the
    /// commissioning day number for days).
    pub(crate) fn new(interval: &Interval, last: f64, current: f64, per_day: Option<f64>) -> Self {
        let due_at = last + interval.every;
        let remaining = due_at - current;
        let status = if remaining <= 0.0 {
            Status::Overdue
        } else if remaining <= interval.due_soon {
            Status::DueSoon
        } else {
            Status::Ok
        };
        let per_day = match interval.meter {
            IntervalMeter::Days => Some(1.0),
            _ => per_day,
        };
        Self {
            meter: interval.meter,
            every: interval.every,
            window: interval.due_soon,
            due_at,
            current,
            remaining,
            status,
            per_day,
        }
    }

    /// Days from the as-of time until it falls due (negative when past);
    /// `None` without usage.
    pub(crate) fn forecast_days(&self) -> Option<f64> {
        self.per_day
            .filter(|&u| u > 0.0)
            .map(|u| self.remaining / u)
    }

    /// How far `remaining` is from a status boundary (0 and the window).
    pub(crate) fn distance_to_boundary(&self) -> f64 {
        self.remaining
            .abs()
            .min((self.remaining - self.window).abs())
    }
}

/// The interval that decides the task's status.
pub(crate) fn deciding(intervals: &[IntervalDue]) -> Option<&IntervalDue> {
    let worst = intervals.iter().map(|i| i.status).max()?;
    let tied: Vec<&IntervalDue> = intervals.iter().filter(|i| i.status == worst).collect();
    if tied.iter().any(|i| i.forecast_days().is_some()) {
        let key = |i: &&IntervalDue| i.forecast_days().unwrap_or(f64::INFINITY);
        tied.into_iter().min_by(|a, b| key(a).total_cmp(&key(b)))
    } else {
        let share = |i: &&IntervalDue| i.remaining / i.every;
        tied.into_iter()
            .min_by(|a, b| share(a).total_cmp(&share(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(meter: IntervalMeter, every: f64, due_soon: f64) -> Interval {
        Interval {
            meter,
            every,
            due_soon,
        }
    }

    #[test]
    fn statuses_at_the_boundaries() {
        let i = interval(IntervalMeter::EngineHours, 500.0, 50.0);
        let at = |current| IntervalDue::new(&i, 1000.0, current, None).status;
        assert_eq!(at(1400.0), Status::Ok);
        assert_eq!(at(1450.0), Status::DueSoon);
        assert_eq!(at(1499.9), Status::DueSoon);
        assert_eq!(at(1500.0), Status::Overdue);
        assert_eq!(at(1600.0), Status::Overdue);
        let no_window = interval(IntervalMeter::PtoHours, 100.0, 0.0);
        assert_eq!(
            IntervalDue::new(&no_window, 0.0, 99.0, None).status,
            Status::Ok
        );
    }

    #[test]
    fn most_urgent_then_first_by_forecast() {
        let engine = interval(IntervalMeter::EngineHours, 500.0, 50.0);
        let km = interval(IntervalMeter::OdometerKm, 15000.0, 1500.0);
        let days = interval(IntervalMeter::Days, 180.0, 18.0);
        // Engine due soon beats km and days ok.
        let v = [
            IntervalDue::new(&engine, 1000.0, 1460.0, Some(5.0)),
            IntervalDue::new(&km, 10000.0, 20000.0, Some(60.0)),
            IntervalDue::new(&days, 20000.0, 20100.0, None),
        ];
        assert_eq!(deciding(&v).unwrap().meter, IntervalMeter::EngineHours);
        // All ok: engine falls due in 80 days, km in 83, days in 100.
        let v = [
            IntervalDue::new(&engine, 1000.0, 1100.0, Some(5.0)),
            IntervalDue::new(&km, 10000.0, 20000.0, Some(60.0)),
            IntervalDue::new(&days, 20000.0, 20080.0, None),
        ];
        assert_eq!(deciding(&v).unwrap().meter, IntervalMeter::EngineHours);
        assert_eq!(v[2].forecast_days(), Some(100.0));
        // Without usage, the smallest remaining share: km has 1/3 left.
        let v = [
            IntervalDue::new(&engine, 1000.0, 1100.0, None),
            IntervalDue::new(&km, 10000.0, 20000.0, None),
        ];
        assert_eq!(deciding(&v).unwrap().meter, IntervalMeter::OdometerKm);
    }
}
