//! Maintenance status of one task (contract C5): the one definition that
//! the `due` and `parts` reports, the simulator's ground truth and its
//! service-history planner all use, so that they cannot disagree.
//!
//! For each interval the next service falls due at the last service's
//! meter (or the commissioning date for days, or zero) plus the interval.
//! Per meter: `overdue` when remaining ≤ 0, `due_soon` when remaining ≤ its
//! window, else `ok`. The task takes its most urgent meter; among equally
//! urgent ones, the one that falls due first by forecast (remaining over
//! usage per day; days fall due on their date), and with no usage known the
//! smallest remaining share of its interval.

use chrono::{Datelike, NaiveDate, TimeDelta};
use serde::Serialize;

use crate::catalog::{Interval, IntervalMeter, MaintenanceTask};

/// A meter's or a task's maintenance status, least urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    DueSoon,
    Overdue,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
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
pub struct IntervalDue {
    pub meter: IntervalMeter,
    pub every: f64,
    pub window: f64,
    pub due_at: f64,
    /// The meter as it counts toward the interval: the reading, or with a
    /// task's hard duty (C12) the duty-adjusted meter.
    pub current: f64,
    /// The meter's reading (the day number for days).
    pub raw_current: f64,
    /// `(factor − 1) × hot share` of a task with hard duty, else 0.
    pub duty_extra: f64,
    pub remaining: f64,
    pub status: Status,
    /// Usage of the meter per day, when known (1 for days).
    pub per_day: Option<f64>,
}

impl IntervalDue {
    /// `last`: the meter (or day number) of the last service, or zero (the
    /// commissioning day number for days).
    pub fn new(interval: &Interval, last: f64, current: f64, per_day: Option<f64>) -> Self {
        let due_at = last + interval.every;
        let remaining = due_at - current;
        let status = status_of(remaining, interval.due_soon);
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
            raw_current: current,
            duty_extra: 0.0,
            remaining,
            status,
            per_day,
        }
    }

    /// This meter interval with hard duty (C12): `extra`, `(factor − 1) ×`
    /// the share of the progress since the last service made above the
    /// duty's level, is added to that progress and to the usage per day.
    /// Day intervals and `extra = 0` are left as they are.
    #[must_use]
    pub fn with_duty(mut self, extra: f64) -> Self {
        if self.meter == IntervalMeter::Days || extra <= 0.0 || !extra.is_finite() {
            return self;
        }
        let last = self.due_at - self.every;
        let progress = (self.raw_current - last).max(0.0);
        self.current = self.raw_current + extra * progress;
        self.remaining = self.due_at - self.current;
        self.status = status_of(self.remaining, self.window);
        self.per_day = self.per_day.map(|u| u * (1.0 + extra));
        self.duty_extra = extra;
        self
    }

    /// The reading of the meter at which it falls due: `due_at`, or with
    /// hard duty the reading that many adjusted units ahead at the
    /// service period's hot share.
    pub fn due_at_reading(&self) -> f64 {
        if self.duty_extra > 0.0 {
            self.raw_current + self.remaining / (1.0 + self.duty_extra)
        } else {
            self.due_at
        }
    }

    /// Days from the as-of time until it falls due (negative when past);
    /// `None` without usage.
    pub fn forecast_days(&self) -> Option<f64> {
        self.per_day
            .filter(|&u| u > 0.0)
            .map(|u| self.remaining / u)
    }

    /// The date it falls due by forecast: `as_of` plus the forecast days,
    /// rounded down (for days: the due date itself); `None` without usage.
    pub fn forecast_date(&self, as_of: NaiveDate) -> Option<NaiveDate> {
        let days = self.forecast_days()?;
        if !days.is_finite() {
            return None;
        }
        as_of.checked_add_signed(TimeDelta::days(days.floor() as i64))
    }

    /// How far `remaining` is from a status boundary (0 and the window).
    pub(crate) fn distance_to_boundary(&self) -> f64 {
        self.remaining
            .abs()
            .min((self.remaining - self.window).abs())
    }
}

/// `overdue` when nothing remains, `due_soon` within the window.
fn status_of(remaining: f64, window: f64) -> Status {
    if remaining <= 0.0 {
        Status::Overdue
    } else if remaining <= window {
        Status::DueSoon
    } else {
        Status::Ok
    }
}

/// Day number of a date (days since 0001-01-01), the unit of day intervals.
pub fn day_number(d: NaiveDate) -> f64 {
    f64::from(d.num_days_from_ce())
}

/// The date of a day number.
pub fn date_of_day_number(n: f64) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(n.floor() as i32)
}

/// One value per cumulative meter; `None` where nothing is known.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeterValues {
    pub engine_hours: Option<f64>,
    pub pto_hours: Option<f64>,
    pub odometer_km: Option<f64>,
}

impl MeterValues {
    /// The value of `meter`; always `None` for days.
    pub const fn get(&self, meter: IntervalMeter) -> Option<f64> {
        match meter {
            IntervalMeter::EngineHours => self.engine_hours,
            IntervalMeter::PtoHours => self.pto_hours,
            IntervalMeter::OdometerKm => self.odometer_km,
            IntervalMeter::Days => None,
        }
    }

    /// Sets `meter` (days are ignored).
    pub fn set(&mut self, meter: IntervalMeter, value: f64) {
        match meter {
            IntervalMeter::EngineHours => self.engine_hours = Some(value),
            IntervalMeter::PtoHours => self.pto_hours = Some(value),
            IntervalMeter::OdometerKm => self.odometer_km = Some(value),
            IntervalMeter::Days => {}
        }
    }
}

/// The last service of a task: when, and the meters it recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastService {
    pub date: NaiveDate,
    pub meters: MeterValues,
}

/// Every interval of `task` at the as-of date. A meter interval counts from
/// the last service's reading of that meter (zero when never serviced or
/// not recorded, as C5 says), a day interval from the last service's date
/// or the commissioning date. Meters without a `current` value cannot be
/// judged and are left out; `per_day` is the usage forecasts use.
pub fn task_intervals(
    task: &MaintenanceTask,
    last: Option<&LastService>,
    commissioned: NaiveDate,
    as_of: NaiveDate,
    current: &MeterValues,
    per_day: &MeterValues,
) -> Vec<IntervalDue> {
    task.intervals
        .iter()
        .filter_map(|i| match i.meter {
            IntervalMeter::Days => {
                let base = last.map_or(commissioned, |l| l.date);
                Some(IntervalDue::new(
                    i,
                    day_number(base),
                    day_number(as_of),
                    None,
                ))
            }
            m => {
                let now = current.get(m)?;
                let base = last.and_then(|l| l.meters.get(m)).unwrap_or(0.0);
                Some(IntervalDue::new(i, base, now, per_day.get(m)))
            }
        })
        .collect()
}

/// The interval that decides the task's status.
pub fn deciding(intervals: &[IntervalDue]) -> Option<&IntervalDue> {
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

    /// 100 engine hours since the service at 1000 h, 30 of them above the
    /// level, factor 2: the adjusted meter is 1130 h, 370 h remain instead
    /// of 400, and at 10 h a day (13 h adjusted) it falls due in 28.46 days
    /// instead of 40.
    #[test]
    fn duty_counts_hot_hours_factor_times() {
        let i = interval(IntervalMeter::EngineHours, 500.0, 50.0);
        let raw = IntervalDue::new(&i, 1000.0, 1100.0, Some(10.0));
        let share = 30.0 / 100.0;
        let hot = raw.with_duty((2.0 - 1.0) * share);
        assert_eq!(hot.raw_current, 1100.0);
        assert_eq!(hot.current, 1130.0);
        assert_eq!(hot.remaining, 370.0);
        assert_eq!(hot.per_day, Some(13.0));
        assert_eq!(hot.due_at_reading(), 1100.0 + 370.0 / 1.3);
        assert_eq!(raw.due_at_reading(), 1500.0);
        assert_eq!(raw.forecast_days(), Some(40.0));
        assert_eq!(hot.forecast_days(), Some(370.0 / 13.0));
        let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        assert_eq!(
            hot.forecast_date(as_of),
            NaiveDate::from_ymd_opt(2026, 1, 29)
        );
        // Status follows the adjusted meter: 1440 h raw is ok (60 h left),
        // adjusted 1440 + 0.3 × 440 = 1572 h is overdue.
        let late = IntervalDue::new(&i, 1000.0, 1440.0, None);
        assert_eq!(late.status, Status::Ok);
        assert_eq!(late.with_duty(0.3).status, Status::Overdue);
        // No duty, factor 1 or days: unchanged.
        assert_eq!(raw.with_duty(0.0), raw);
        let days = IntervalDue::new(&interval(IntervalMeter::Days, 180.0, 18.0), 0.0, 10.0, None);
        assert_eq!(days.with_duty(0.3), days);
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
