//! The service calendar (C10): when the hotline works, in its own time
//! zone, and the deadlines of customer reports counted on it.
//!
//! Times are wall-clock times of [`SlaConfig::timezone`]: service hours
//! `08:00-18:00` are 08:00–18:00 on the local clock whatever the UTC
//! offset of the day (a DST zone changes its offset at night, outside any
//! usual service hours). A day is a service day when its weekday is a
//! working day and it is not a holiday.
//!
//! - [`ServiceCalendar::add_service_time`]: the answer deadline — service
//!   time counted from the report, only while the hotline works. A call at
//!   Friday 17:30 with one service hour to answer has 30 minutes on Friday
//!   and 30 on the next service day: 08:30.
//! - [`ServiceCalendar::end_of_service_days`]: the on-site deadline — the
//!   close of the Nth service day after the day the report is taken (the
//!   day of the first service moment at or after it: a call after hours
//!   is taken the next service day).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::sla::SlaConfig;

/// How far the calendar looks for service days before giving up (a
/// calendar of holidays only); the deadline then saturates.
const MAX_DAYS: u32 = 3660;

/// The calendar of [`SlaConfig`], ready for arithmetic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCalendar {
    tz: Tz,
    /// Opening and closing, minutes after local midnight.
    open: u32,
    close: u32,
    /// Monday first.
    working: [bool; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl ServiceCalendar {
    pub fn new(sla: &SlaConfig) -> Self {
        let mut working = [false; 7];
        for d in &sla.working_days {
            working[d.0.num_days_from_monday() as usize] = true;
        }
        Self {
            tz: sla.timezone.0,
            open: sla.service_hours.open_minute,
            close: sla.service_hours.close_minute,
            working,
            holidays: sla.holidays.iter().map(|h| h.0).collect(),
        }
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Service works on `day` (local date).
    pub fn is_service_day(&self, day: NaiveDate) -> bool {
        self.working[day.weekday().num_days_from_monday() as usize] && !self.holidays.contains(&day)
    }

    /// `at` on the calendar's wall clock.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.tz).naive_local()
    }

    /// The instant of local `day` at `minute` after midnight. A wall time
    /// that occurs twice (clocks turned back) is its first occurrence; one
    /// that does not occur (clocks turned forward) is read with the offset
    /// before the change, i.e. as the same distance after the last
    /// midnight the clock showed.
    fn instant(&self, day: NaiveDate, minute: u32) -> DateTime<Utc> {
        let wall = day.and_time(NaiveTime::MIN) + TimeDelta::minutes(i64::from(minute));
        match self.tz.from_local_datetime(&wall).earliest() {
            Some(t) => t.with_timezone(&Utc),
            None => {
                let midnight = self
                    .tz
                    .from_local_datetime(&day.and_time(NaiveTime::MIN))
                    .earliest()
                    .map_or_else(|| wall.and_utc(), |t| t.with_timezone(&Utc));
                midnight + TimeDelta::minutes(i64::from(minute))
            }
        }
    }

    /// `at` plus `d` of service time: the moment by which the hotline has
    /// worked `d` since `at`. Saturates ten years on.
    pub fn add_service_time(&self, at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        let wall = self.local(at);
        let mut left = TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
        let mut day = wall.date();
        for _ in 0..MAX_DAYS {
            if self.is_service_day(day) {
                // Counting starts at `at` on its own day, at the opening after.
                let start = at.max(self.instant(day, self.open));
                let close = self.instant(day, self.close);
                if start < close {
                    let available = close - start;
                    if left <= available {
                        return start + left;
                    }
                    left -= available;
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        far(at)
    }

    /// The local date on which a report at `at` is taken: `at`'s own date
    /// when the hotline is (or will still be) open that day, else the next
    /// service day.
    pub fn taken_on(&self, at: DateTime<Utc>) -> NaiveDate {
        let mut day = self.local(at).date();
        for _ in 0..MAX_DAYS {
            if self.is_service_day(day) && at < self.instant(day, self.close) {
                return day;
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        day
    }

    /// The close of the `n`th service day after the day a report at `at`
    /// is taken ([`Self::taken_on`]). Saturates ten years on.
    pub fn end_of_service_days(&self, at: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let mut day = self.taken_on(at);
        let mut counted = 0;
        for _ in 0..MAX_DAYS {
            if counted == n {
                return self.instant(day, self.close);
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
            if self.is_service_day(day) {
                counted += 1;
            }
        }
        far(at)
    }
}

fn far(at: DateTime<Utc>) -> DateTime<Utc> {
    at.checked_add_signed(TimeDelta::days(i64::from(MAX_DAYS)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use chrono::Weekday;
    use proptest::prelude::*;

    use super::*;
    use crate::config::{Holiday, ServiceHours, WorkingDay};

    fn calendar(tz: Tz, days: &[Weekday], holidays: &[&str]) -> ServiceCalendar {
        ServiceCalendar::new(&SlaConfig {
            timezone: crate::config::TimeZone(tz),
            working_days: days.iter().map(|d| WorkingDay(*d)).collect(),
            holidays: holidays
                .iter()
                .map(|h| Holiday(NaiveDate::parse_from_str(h, "%Y-%m-%d").unwrap()))
                .collect(),
            ..SlaConfig::default()
        })
    }

    const MON_FRI: [Weekday; 5] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];

    /// Local wall time `text` (`YYYY-MM-DD HH:MM`) in `tz` as an instant.
    fn at(tz: Tz, text: &str) -> DateTime<Utc> {
        let wall = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        tz.from_local_datetime(&wall)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn wall(c: &ServiceCalendar, t: DateTime<Utc>) -> String {
        c.local(t).format("%a %Y-%m-%d %H:%M").to_string()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_call_at_friday_half_past_five_is_answered_monday_half_past_eight() {
        let tz = chrono_tz::Asia::Shanghai;
        let c = calendar(tz, &MON_FRI, &[]);
        // 2026-10-09 is a Friday.
        let call = at(tz, "2026-10-09 17:30");
        assert_eq!(
            wall(&c, c.add_service_time(call, HOUR)),
            "Mon 2026-10-12 08:30"
        );
        assert_eq!(
            wall(&c, c.end_of_service_days(call, 1)),
            "Mon 2026-10-12 18:00"
        );
        assert_eq!(
            wall(&c, c.end_of_service_days(call, 2)),
            "Tue 2026-10-13 18:00"
        );
        // A holiday on the Monday moves both.
        let c = calendar(tz, &MON_FRI, &["2026-10-12"]);
        assert_eq!(
            wall(&c, c.add_service_time(call, HOUR)),
            "Tue 2026-10-13 08:30"
        );
        assert_eq!(
            wall(&c, c.end_of_service_days(call, 1)),
            "Tue 2026-10-13 18:00"
        );
        // Saturday a working day: the next morning.
        let mut six = MON_FRI.to_vec();
        six.push(Weekday::Sat);
        let c = calendar(tz, &six, &[]);
        assert_eq!(
            wall(&c, c.add_service_time(call, HOUR)),
            "Sat 2026-10-10 08:30"
        );
    }

    #[test]
    fn calls_after_hours_and_within_them() {
        let tz = chrono_tz::Asia::Shanghai;
        let c = calendar(tz, &MON_FRI, &[]);
        let cases = [
            (
                "2026-10-07 19:45",
                "Thu 2026-10-08 09:00",
                "Fri 2026-10-09 18:00",
            ),
            (
                "2026-10-07 06:10",
                "Wed 2026-10-07 09:00",
                "Thu 2026-10-08 18:00",
            ),
            (
                "2026-10-07 10:15",
                "Wed 2026-10-07 11:15",
                "Thu 2026-10-08 18:00",
            ),
            (
                "2026-10-07 17:00",
                "Wed 2026-10-07 18:00",
                "Thu 2026-10-08 18:00",
            ),
            (
                "2026-10-07 18:00",
                "Thu 2026-10-08 09:00",
                "Fri 2026-10-09 18:00",
            ),
            (
                "2026-10-10 11:00",
                "Mon 2026-10-12 09:00",
                "Tue 2026-10-13 18:00",
            ),
        ];
        for (call, answer, on_site) in cases {
            let t = at(tz, call);
            assert_eq!(wall(&c, c.add_service_time(t, HOUR)), answer, "{call}");
            assert_eq!(wall(&c, c.end_of_service_days(t, 1)), on_site, "{call}");
        }
        // Ten service hours from Friday noon: six on Friday, four on Monday.
        assert_eq!(
            wall(
                &c,
                c.add_service_time(at(tz, "2026-10-09 12:00"), 10 * HOUR)
            ),
            "Mon 2026-10-12 12:00"
        );
    }

    #[test]
    fn across_new_year() {
        let tz = chrono_tz::Asia::Shanghai;
        let c = calendar(tz, &MON_FRI, &["2027-01-01"]);
        // Thursday 2026-12-31 17:30; Friday 2027-01-01 a holiday.
        let call = at(tz, "2026-12-31 17:30");
        assert_eq!(
            wall(&c, c.add_service_time(call, HOUR)),
            "Mon 2027-01-04 08:30"
        );
        assert_eq!(
            wall(&c, c.end_of_service_days(call, 2)),
            "Tue 2027-01-05 18:00"
        );
    }

    #[test]
    fn a_dst_zone_keeps_wall_clock_hours() {
        let tz = chrono_tz::Europe::Berlin;
        let c = calendar(tz, &MON_FRI, &[]);
        // Clocks go forward on Sunday 2026-03-29: Friday is UTC+1, Monday UTC+2.
        let call = at(tz, "2026-03-27 17:30");
        let answer = c.add_service_time(call, HOUR);
        assert_eq!(wall(&c, answer), "Mon 2026-03-30 08:30");
        assert_eq!(answer.to_rfc3339(), "2026-03-30T06:30:00+00:00");
        assert_eq!(call.to_rfc3339(), "2026-03-27T16:30:00+00:00");
        // And back on Sunday 2026-10-25.
        let call = at(tz, "2026-10-23 17:30");
        let answer = c.add_service_time(call, HOUR);
        assert_eq!(answer.to_rfc3339(), "2026-10-26T07:30:00+00:00");
        assert_eq!(
            wall(&c, c.end_of_service_days(call, 1)),
            "Mon 2026-10-26 18:00"
        );
    }

    #[test]
    fn a_night_shift_across_a_clock_change_reads_the_wall_clock() {
        let tz = chrono_tz::Europe::Berlin;
        let c = ServiceCalendar::new(&SlaConfig {
            timezone: crate::config::TimeZone(tz),
            service_hours: ServiceHours::try_from("00:00-24:00".to_owned()).unwrap(),
            working_days: WorkingDay::MON_TO_FRI.to_vec(),
            ..SlaConfig::default()
        });
        // Saturday and Sunday off; Monday 00:00 + 1 h.
        assert_eq!(
            wall(&c, c.add_service_time(at(tz, "2026-03-28 10:00"), HOUR)),
            "Mon 2026-03-30 01:00"
        );
    }

    /// The reference the properties compare with: walk minute by minute
    /// over real time, counting minutes whose local time is within service
    /// hours of a service day.
    fn in_service(c: &ServiceCalendar, t: DateTime<Utc>) -> bool {
        let w = c.local(t);
        let m = chrono::Timelike::num_seconds_from_midnight(&w.time()) / 60;
        c.is_service_day(w.date()) && m >= c.open && m < c.close
    }

    fn brute_add(c: &ServiceCalendar, at: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        let mut t = at;
        let mut counted = 0;
        loop {
            if in_service(c, t) {
                counted += 1;
                if counted == minutes {
                    return t + TimeDelta::minutes(1);
                }
            }
            t += TimeDelta::minutes(1);
        }
    }

    fn zone() -> impl Strategy<Value = Tz> {
        prop_oneof![
            Just(chrono_tz::Asia::Shanghai),
            Just(chrono_tz::Europe::Berlin),
            Just(chrono_tz::America::New_York),
            Just(chrono_tz::UTC),
        ]
    }

    prop_compose! {
        /// A calendar whose hours avoid 02:00–04:00 (where DST zones
        /// change their clocks), with one to seven working days and a few
        /// holidays around the turn of 2026/2027 or in DST change weeks.
        fn any_calendar()(
            tz in zone(),
            open in 4u32 * 60..12 * 60,
            close in 13u32 * 60..=24 * 60,
            days in proptest::collection::btree_set(0u8..7, 1..=7),
            holidays in proptest::collection::btree_set(0i64..30, 0..6),
            base in prop_oneof![Just("2026-12-20"), Just("2026-03-20"), Just("2026-10-18")],
        ) -> ServiceCalendar {
            let base = NaiveDate::parse_from_str(base, "%Y-%m-%d").unwrap();
            ServiceCalendar {
                tz,
                open,
                close,
                working: std::array::from_fn(|i| days.contains(&(i as u8))),
                holidays: holidays.into_iter().map(|d| base + TimeDelta::days(d)).collect(),
            }
        }
    }

    prop_compose! {
        /// An instant in the weeks the holidays fall in, on a whole minute.
        fn any_instant()(
            base in prop_oneof![Just(0i64), Just(1), Just(2)],
            minute in 0i64..(21 * 24 * 60),
        ) -> DateTime<Utc> {
            let start = ["2026-12-18T00:00:00Z", "2026-03-18T00:00:00Z", "2026-10-16T00:00:00Z"];
            let base = DateTime::parse_from_rfc3339(start[base as usize]).unwrap().with_timezone(&Utc);
            base + TimeDelta::minutes(minute)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn service_time_is_counted_only_in_service_hours(
            c in any_calendar(),
            at in any_instant(),
            minutes in 1i64..(25 * 60),
        ) {
            let due = c.add_service_time(at, Duration::from_secs(minutes as u64 * 60));
            prop_assert_eq!(due, brute_add(&c, at, minutes));
            prop_assert!(due > at);
            // The deadline lies in service hours of a service day, or at their close.
            prop_assert!(in_service(&c, due - TimeDelta::minutes(1)));
        }

        #[test]
        fn later_calls_are_never_due_earlier(
            c in any_calendar(),
            a in any_instant(),
            later in 0i64..(5 * 24 * 60),
            minutes in 1i64..(24 * 60),
        ) {
            let d = Duration::from_secs(minutes as u64 * 60);
            let b = a + TimeDelta::minutes(later);
            prop_assert!(c.add_service_time(a, d) <= c.add_service_time(b, d));
            prop_assert!(c.end_of_service_days(a, 1) <= c.end_of_service_days(b, 1));
        }

        #[test]
        fn on_site_deadlines_close_the_nth_service_day_after_the_call(
            c in any_calendar(),
            at in any_instant(),
            n in 1u32..4,
        ) {
            let due = c.end_of_service_days(at, n);
            let w = c.local(due);
            prop_assert!(due > at);
            // At the close of a service day (24:00 is the next day's midnight).
            let closing_day = if due == c.instant(w.date(), c.close) {
                w.date()
            } else {
                w.date().pred_opt().unwrap()
            };
            prop_assert_eq!(due, c.instant(closing_day, c.close));
            prop_assert!(c.is_service_day(closing_day));
            // Exactly n service days after the day the call is taken.
            let taken = c.taken_on(at);
            let between = taken
                .iter_days()
                .skip(1)
                .take_while(|d| *d <= closing_day)
                .filter(|d| c.is_service_day(*d))
                .count();
            prop_assert_eq!(between, n as usize);
            // The call is taken on a service day whose hotline has not closed
            // before the call, and no earlier service day qualifies.
            prop_assert!(c.is_service_day(taken));
            prop_assert!(at < c.instant(taken, c.close));
            let first_service = brute_add(&c, at, 1) - TimeDelta::minutes(1);
            prop_assert_eq!(c.local(first_service).date(), taken);
        }
    }
}
