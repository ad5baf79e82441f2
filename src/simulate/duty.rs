//! Daily duty cycles: when a truck's engine runs, how much of that time the
//! body works (PTO), how far it drives, and when its gateway uploads.
//!
//! Work happens in local time (the fleets are in China, UTC+8: a 05:00
//! shift start is 21:00 UTC the day before); everything written out is UTC.
//! A day's plan is a pure function of (seed, truck, day), so the planner can
//! look at any day before the generator gets there.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use rand::RngExt;

use super::fleet::{Truck, Week};
use super::rng::{Purpose, Seeds};
use crate::catalog::TruckKind;

/// The fleets' local time, UTC+8 (China Standard Time, no daylight saving).
pub(crate) const LOCAL_UTC_OFFSET_S: i64 = 8 * 3600;

const US_PER_S: i64 = 1_000_000;
const US_PER_H: f64 = 3.6e9;

/// The settings every day plan depends on.
#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    pub(crate) seeds: Seeds,
    /// The first simulated local date.
    pub(crate) start: NaiveDate,
    pub(crate) days: u32,
    /// Gateway upload interval while the engine runs, s.
    pub(crate) upload_every_s: i64,
}

impl Calendar {
    /// The local date of simulated day `day`.
    pub(crate) fn date(&self, day: u32) -> NaiveDate {
        self.start
            .checked_add_days(Days::new(u64::from(day)))
            .unwrap_or(self.start)
    }

    /// 00:00 local time of simulated day `day`, in µs since the epoch (UTC).
    pub(crate) fn day_start_us(&self, day: u32) -> i64 {
        local_midnight_us(self.date(day))
    }

    /// The as-of time of the ground truth: 00:00 UTC of the day after the
    /// last simulated day. All data is earlier (the last shift ends by
    /// 18:00 local, 10:00 UTC), and its UTC date is the local date.
    pub(crate) fn as_of_us(&self) -> i64 {
        utc_midnight_us(self.date(self.days))
    }

    pub(crate) fn as_of_date(&self) -> NaiveDate {
        self.date(self.days)
    }
}

/// 00:00 UTC of `date`, in µs.
pub(crate) fn utc_midnight_us(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_micros())
}

/// 00:00 local time of `date`, in µs since the epoch.
pub(crate) fn local_midnight_us(date: NaiveDate) -> i64 {
    utc_midnight_us(date) - LOCAL_UTC_OFFSET_S * US_PER_S
}

/// `local_min` minutes after local midnight of `date`, in µs (UTC).
pub(crate) fn local_time_us(date: NaiveDate, local_min: i64) -> i64 {
    local_midnight_us(date) + local_min * 60 * US_PER_S
}

/// The `idx`-th upload of simulated day `day` of one truck: slots order a
/// truck's uploads in time, and fault episodes are planned on them so that
/// every planned episode is seen by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Slot {
    pub(crate) day: u32,
    pub(crate) idx: u32,
}

/// Cumulative meters of one truck.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Meters {
    pub(crate) engine_h: f64,
    pub(crate) pto_h: f64,
    pub(crate) km: f64,
}

impl Meters {
    pub(crate) fn plus(self, o: Self) -> Self {
        Self {
            engine_h: self.engine_h + o.engine_h,
            pto_h: self.pto_h + o.pto_h,
            km: self.km + o.km,
        }
    }

    pub(crate) fn scaled(self, f: f64) -> Self {
        Self {
            engine_h: self.engine_h * f,
            pto_h: self.pto_h * f,
            km: self.km * f,
        }
    }
}

/// What kind of day a truck has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DayKind {
    /// The full shift pattern of its body type.
    Full,
    /// Reduced work (Saturdays): the first part of the shift only.
    Short,
    /// Engine started at the depot (checks, yard moves): no PTO, no route.
    Idle,
    /// Not started at all: rest day, workshop, no driver. No data.
    Off,
}

/// One engine-on period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Run {
    pub(crate) start_us: i64,
    pub(crate) end_us: i64,
    /// Share of engine time with the PTO engaged (brushes, packer, pump).
    pub(crate) pto_share: f64,
    /// Average km driven per engine hour.
    pub(crate) km_per_h: f64,
}

impl Run {
    fn usage_until(&self, t_us: i64) -> Meters {
        let h = (t_us.clamp(self.start_us, self.end_us) - self.start_us) as f64 / US_PER_H;
        Meters {
            engine_h: h,
            pto_h: h * self.pto_share,
            km: h * self.km_per_h,
        }
    }
}

/// One gateway upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Upload {
    pub(crate) t_us: i64,
    /// Index of its run in [`DayPlan::runs`].
    pub(crate) run: usize,
}

/// A truck's day.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DayPlan {
    pub(crate) kind: DayKind,
    pub(crate) runs: Vec<Run>,
    pub(crate) uploads: Vec<Upload>,
}

impl DayPlan {
    /// What the day adds to the meters.
    pub(crate) fn usage(&self) -> Meters {
        self.runs
            .iter()
            .fold(Meters::default(), |m, r| m.plus(r.usage_until(r.end_us)))
    }

    /// The meters at an upload, from those at the start of the day.
    pub(crate) fn meters_at(&self, day_start: Meters, upload: Upload) -> Meters {
        self.runs
            .iter()
            .take(upload.run)
            .fold(day_start, |m, r| m.plus(r.usage_until(r.end_us)))
            .plus(
                self.runs
                    .get(upload.run)
                    .map_or(Meters::default(), |r| r.usage_until(upload.t_us)),
            )
    }
}

/// Engine-on periods of a full day by body type, local minutes after
/// midnight: sweepers work the early shift before traffic, washers wash in
/// the morning and water in the afternoon, compactors do two collection
/// rounds, hook-lifts swap containers in office hours.
const fn template(kind: TruckKind) -> [(i64, i64); 2] {
    match kind {
        TruckKind::Sweeper => [(270, 510), (570, 750)],
        TruckKind::Washer => [(300, 660), (840, 1020)],
        TruckKind::Compactor => [(330, 630), (810, 990)],
        TruckKind::Other => [(420, 690), (780, 1020)],
    }
}

/// Expected engine hours per calendar day of a truck with this body and
/// week, for the meters it brought into the simulation.
pub(crate) fn expected_engine_hours_per_day(kind: TruckKind, week: Week) -> f64 {
    let [(a, b), (c, d)] = template(kind);
    let full = ((b - a) + (d - c)) as f64 / 60.0;
    let short = (b - a) as f64 / 60.0;
    let per_week = match week {
        Week::Rota => 6.0 * P_FULL * full,
        Week::MonToSat => 5.0 * P_FULL * full + P_SHORT_SATURDAY * short,
        Week::MonToFri => 5.0 * P_FULL * full + P_SHORT_FREE_SATURDAY * short,
    };
    per_week / 7.0
}

const P_FULL: f64 = 0.88;
const P_IDLE: f64 = 0.05;
const P_SHORT_SATURDAY: f64 = 0.8;
const P_SHORT_FREE_SATURDAY: f64 = 0.15;
const P_IDLE_REST_DAY: f64 = 0.06;
/// Shift boundaries move by up to this much from day to day, minutes.
const JITTER_MIN: i64 = 15;

/// What the rota says about a date, before chance.
enum Scheduled {
    Work,
    ShortWork,
    MaybeShort,
    Rest,
}

/// The plan of `truck` on simulated day `day`.
pub(crate) fn plan_day(truck: &Truck, day: u32, cal: &Calendar) -> DayPlan {
    let mut rng = cal
        .seeds
        .rng(Purpose::Duty, truck.index as u64, u64::from(day));
    let date = cal.date(day);
    let weekday = date.weekday();
    let scheduled = match truck.week {
        Week::Rota if weekday == truck.rest_day => Scheduled::Rest,
        Week::Rota => Scheduled::Work,
        Week::MonToSat => match weekday {
            Weekday::Sun => Scheduled::Rest,
            Weekday::Sat => Scheduled::ShortWork,
            _ => Scheduled::Work,
        },
        Week::MonToFri => match weekday {
            Weekday::Sun => Scheduled::Rest,
            Weekday::Sat => Scheduled::MaybeShort,
            _ => Scheduled::Work,
        },
    };
    // Drawn before the override so that a workshop day leaves the draws of
    // the rest of the day unchanged.
    let chance: f64 = rng.random();
    let kind = if truck.overrides.off_days.contains(&day) {
        DayKind::Off
    } else {
        match scheduled {
            Scheduled::Work if chance < P_FULL => DayKind::Full,
            Scheduled::Work if chance < P_FULL + P_IDLE => DayKind::Idle,
            Scheduled::ShortWork if chance < P_SHORT_SATURDAY => DayKind::Short,
            Scheduled::MaybeShort if chance < P_SHORT_FREE_SATURDAY => DayKind::Short,
            Scheduled::Rest | Scheduled::MaybeShort if chance > 1.0 - P_IDLE_REST_DAY => {
                DayKind::Idle
            }
            _ => DayKind::Off,
        }
    };
    let mut runs = Vec::new();
    let jitter = |rng: &mut rand_chacha::ChaCha8Rng, local_min: i64| {
        local_time_us(date, local_min)
            + rng.random_range(-JITTER_MIN * 60..=JITTER_MIN * 60) * US_PER_S
    };
    let per_run = |rng: &mut rand_chacha::ChaCha8Rng| {
        (
            (truck.pto_share * rng.random_range(0.9..1.1)).min(0.95),
            truck.km_per_h * rng.random_range(0.85..1.15),
        )
    };
    match kind {
        DayKind::Full | DayKind::Short => {
            let n = if kind == DayKind::Full { 2 } else { 1 };
            for &(a, b) in template(truck.kind).iter().take(n) {
                let start_us = jitter(&mut rng, a);
                let end_us = jitter(&mut rng, b);
                let (pto_share, km_per_h) = per_run(&mut rng);
                runs.push(Run {
                    start_us,
                    end_us,
                    pto_share,
                    km_per_h,
                });
            }
        }
        DayKind::Idle => {
            let start_us = local_time_us(date, rng.random_range(480..600))
                + rng.random_range(0..60) * US_PER_S;
            let minutes = rng.random_range(20..90);
            runs.push(Run {
                start_us,
                end_us: start_us + minutes * 60 * US_PER_S,
                pto_share: 0.0,
                km_per_h: rng.random_range(0.1..0.6),
            });
        }
        DayKind::Off => {}
    }
    let every = cal.upload_every_s;
    let mut uploads = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        // First upload once the gateway has booted after key-on, then one
        // per interval, and a last one at key-off.
        let mut t = r.start_us + rng.random_range(5 * US_PER_S..40 * US_PER_S);
        loop {
            uploads.push(Upload { t_us: t, run: i });
            t += every * US_PER_S + rng.random_range(-3 * US_PER_S..3 * US_PER_S);
            if t >= r.end_us - 20 * US_PER_S {
                break;
            }
        }
        uploads.push(Upload {
            t_us: r.end_us,
            run: i,
        });
    }
    let mut plan = DayPlan {
        kind,
        runs,
        uploads,
    };
    if let Some(cut) = truck.overrides.cut.filter(|c| c.day == day) {
        cut_after(&mut plan, cut.idx as usize);
    }
    plan
}

/// The engine is switched off at upload `idx`: it becomes the day's last.
fn cut_after(plan: &mut DayPlan, idx: usize) {
    let Some(&last) = plan.uploads.get(idx) else {
        return;
    };
    plan.uploads.truncate(idx + 1);
    plan.runs.truncate(last.run + 1);
    if let Some(r) = plan.runs.get_mut(last.run) {
        r.end_us = last.t_us;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::fleet::tests::truck_for_tests;

    fn cal() -> Calendar {
        Calendar {
            seeds: Seeds::new(3),
            start: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
            days: 28,
            upload_every_s: 300,
        }
    }

    #[test]
    fn local_times_are_utc_plus_8() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        // 05:00 in Shenzhen is 21:00 UTC the day before.
        assert_eq!(local_time_us(d, 300), 1_767_560_400 * US_PER_S);
        assert_eq!(cal().as_of_us(), 1_769_990_400 * US_PER_S); // 2026-02-02T00:00Z
    }

    #[test]
    fn plans_are_pure_and_within_the_shift() {
        let c = cal();
        let t = truck_for_tests(TruckKind::Sweeper, Week::MonToFri);
        let mut full = 0;
        for day in 0..c.days {
            let p = plan_day(&t, day, &c);
            assert_eq!(p, plan_day(&t, day, &c));
            let weekday = c.date(day).weekday();
            if weekday == Weekday::Sun {
                assert!(matches!(p.kind, DayKind::Off | DayKind::Idle), "{p:?}");
            }
            if p.kind == DayKind::Full {
                full += 1;
                let h = p.usage().engine_h;
                assert!((6.0..8.5).contains(&h), "{h}");
                assert!(p.usage().pto_h < h);
            }
            let midnight = c.day_start_us(day);
            for w in p.uploads.windows(2) {
                assert!(w[1].t_us > w[0].t_us);
                // Within one run, the upload interval apart (the key-off
                // upload up to 20 s more).
                if w[0].run == w[1].run {
                    assert!(w[1].t_us - w[0].t_us <= 323 * US_PER_S);
                }
            }
            for u in &p.uploads {
                let local_h = (u.t_us - midnight) as f64 / US_PER_H;
                assert!((4.0..18.0).contains(&local_h), "{local_h}");
            }
        }
        assert!(full >= 15, "{full}");
    }

    #[test]
    fn meters_never_outrun_the_clock() {
        let c = cal();
        let t = truck_for_tests(TruckKind::Compactor, Week::Rota);
        let p = (0..7)
            .map(|d| plan_day(&t, d, &c))
            .find(|p| p.kind == DayKind::Full)
            .unwrap();
        let m0 = Meters::default();
        let mut last = (p.uploads[0].t_us, p.meters_at(m0, p.uploads[0]));
        for &u in &p.uploads[1..] {
            let m = p.meters_at(m0, u);
            let h = (u.t_us - last.0) as f64 / US_PER_H;
            assert!(m.engine_h - last.1.engine_h <= h + 1e-9);
            assert!(m.pto_h - last.1.pto_h <= h + 1e-9);
            assert!(m.km - last.1.km <= 150.0 * h);
            assert!(m.engine_h >= last.1.engine_h);
            last = (u.t_us, m);
        }
        let end = p.meters_at(m0, *p.uploads.last().unwrap());
        assert!((end.engine_h - p.usage().engine_h).abs() < 1e-9);
    }

    #[test]
    fn a_cut_ends_the_day_at_that_upload() {
        let c = cal();
        let mut t = truck_for_tests(TruckKind::Washer, Week::Rota);
        let day = (0..7)
            .find(|&d| plan_day(&t, d, &c).kind == DayKind::Full)
            .unwrap();
        let full = plan_day(&t, day, &c);
        t.overrides.cut = Some(Slot { day, idx: 10 });
        let cut = plan_day(&t, day, &c);
        assert_eq!(cut.uploads.len(), 11);
        assert_eq!(cut.uploads[..], full.uploads[..11]);
        assert_eq!(cut.runs.len(), 1);
        assert_eq!(cut.runs[0].end_us, full.uploads[10].t_us);
        t.overrides.off_days.push(day);
        assert_eq!(plan_day(&t, day, &c).kind, DayKind::Off);
        assert!(plan_day(&t, day, &c).uploads.is_empty());
    }
}
