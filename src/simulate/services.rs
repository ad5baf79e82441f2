//! The service history the trucks bring into the simulation
//! (`services.csv`, contract C4), chosen so that at the end of the run
//! most tasks are `ok`, some `due_soon` and a few `overdue`.
//!
//! For each registered truck and task a target status is drawn; the date
//! of the last service is then the one that gives that status at the
//! as-of time with the truck's real meters (before the run the meters grow
//! linearly from commissioning; during it they are the simulated ones),
//! kept clear of the status boundaries so that a store that thins meter
//! readings or rounds differently reaches the same status. One or two
//! earlier services of the task precede it. Young trucks whose first
//! service is not due yet have none. Corrective repairs of the planted
//! scenarios are added as `repair:SPN:FMI` rows.

use chrono::{Days, NaiveDate};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::duty::{Calendar, Meters, plan_day};
use super::faults::Repair;
use super::fleet::Truck;
use super::rng::Purpose;
use crate::catalog::{IntervalMeter, MaintenanceTask, TaskId, TruckModel};
use crate::report::status::{self, IntervalDue, MeterValues, Status, deciding};
use fleetcare_ingest::j1939::{Fmi, Spn};

/// What a service row records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Work {
    Task(TaskId),
    Repair(Spn, Fmi),
}

/// When: maintenance is recorded by date, repairs by the time the job closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Performed {
    Date(NaiveDate),
    /// µs since the epoch.
    Time(i64),
}

/// One row of `services.csv`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceRow {
    pub(crate) truck: usize,
    pub(crate) work: Work,
    pub(crate) performed: Performed,
    pub(crate) engine_h: Option<f64>,
    pub(crate) pto_h: Option<f64>,
    pub(crate) km: Option<f64>,
}

/// The status each task was planned to have at the end.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub(crate) truck: usize,
    pub(crate) task: TaskId,
    pub(crate) status: Status,
}

const P_OVERDUE: f64 = 0.04;
const P_DUE_SOON: f64 = 0.08;
/// Overdue by at most this share of the interval.
const MAX_OVERDUE_SHARE: f64 = 0.3;

pub(crate) use crate::report::round_to;

/// Meter `m` of `meters`; `None` for days.
pub(crate) fn meter_value(meters: &Meters, m: IntervalMeter) -> Option<f64> {
    match m {
        IntervalMeter::EngineHours => Some(meters.engine_h),
        IntervalMeter::PtoHours => Some(meters.pto_h),
        IntervalMeter::OdometerKm => Some(meters.km),
        IntervalMeter::Days => None,
    }
}

/// The last service of a task: its date and recorded meters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LastService {
    pub(crate) date: NaiveDate,
    pub(crate) meters: Meters,
}

/// The simulator's meters as the report's meter values.
fn meter_values(m: &Meters) -> MeterValues {
    MeterValues {
        engine_hours: Some(m.engine_h),
        pto_hours: Some(m.pto_h),
        odometer_km: Some(m.km),
    }
}

/// The task's intervals at the as-of time (the report's rule, fed with
/// the simulated meters). `last`: `None` if never done.
pub(crate) fn task_due(
    task: &MaintenanceTask,
    last: Option<LastService>,
    commissioned: NaiveDate,
    current: &Meters,
    as_of: NaiveDate,
    per_day: &Meters,
) -> Vec<IntervalDue> {
    let last = last.map(|l| status::LastService {
        date: l.date,
        meters: meter_values(&l.meters),
    });
    status::task_intervals(
        task,
        last.as_ref(),
        commissioned,
        as_of,
        &meter_values(current),
        &meter_values(per_day),
    )
}

/// The service history of one truck: its meters at the start of every
/// simulated day, from the same day plans the run uses.
struct Usage<'a> {
    truck: &'a Truck,
    cal: &'a Calendar,
    day_starts: Vec<Meters>,
}

impl<'a> Usage<'a> {
    fn new(truck: &'a Truck, cal: &'a Calendar) -> Self {
        let mut day_starts = Vec::with_capacity(cal.days as usize + 1);
        let mut m = truck.start_meters;
        day_starts.push(m);
        for day in 0..cal.days {
            m = m.plus(plan_day(truck, day, cal).usage());
            day_starts.push(m);
        }
        Self {
            truck,
            cal,
            day_starts,
        }
    }

    /// The meters on the morning of `date` (the as-of date: at the end).
    fn on(&self, date: NaiveDate) -> Meters {
        if date < self.cal.start {
            return self.truck.meters_before(date, self.cal.start);
        }
        let day = (date - self.cal.start).num_days() as usize;
        self.day_starts
            .get(day)
            .or(self.day_starts.last())
            .copied()
            .unwrap_or_default()
    }

    fn end(&self) -> Meters {
        self.day_starts.last().copied().unwrap_or_default()
    }

    /// Mean usage per day over the last 30 days (the run if shorter).
    fn per_day(&self) -> Meters {
        let w = self.cal.days.clamp(1, 30);
        let from = self.on(self.cal.date(self.cal.days - w.min(self.cal.days)));
        let end = self.end();
        Meters {
            engine_h: end.engine_h - from.engine_h,
            pto_h: end.pto_h - from.pto_h,
            km: end.km - from.km,
        }
        .scaled(1.0 / f64::from(w))
    }
}

/// Mean usage per day over the last 30 simulated days (the run if
/// shorter), as a store would estimate it from the readings.
pub(crate) fn usage_per_day(truck: &Truck, cal: &Calendar) -> Meters {
    Usage::new(truck, cal).per_day()
}

/// Clear of the boundaries by this much, so thinning (a reading up to 10
/// minutes old) and rounding cannot change a status.
fn margin(meter: IntervalMeter, every: f64) -> f64 {
    match meter {
        IntervalMeter::EngineHours | IntervalMeter::PtoHours => 0.005 * every + 0.25,
        IntervalMeter::OdometerKm => 0.005 * every + 5.0,
        IntervalMeter::Days => 0.0,
    }
}

fn clear_of_boundaries(v: &[IntervalDue]) -> bool {
    v.iter().all(|i| {
        i.meter == IntervalMeter::Days || i.distance_to_boundary() >= margin(i.meter, i.every)
    })
}

/// Service history of every registered truck, and the planned statuses.
pub(crate) fn plan(
    cal: &Calendar,
    trucks: &[Truck],
    models: &[&TruckModel],
    repairs: &[Repair],
) -> (Vec<ServiceRow>, Vec<Target>) {
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for truck in trucks.iter().filter(|t| t.registered) {
        let Some(model) = models.get(truck.model) else {
            continue;
        };
        let usage = Usage::new(truck, cal);
        let mut rng = cal.seeds.rng(Purpose::Services, truck.index as u64, 0);
        for task in &model.maintenance {
            let target = plan_task(cal, &usage, task, &mut rng, &mut rows);
            targets.push(Target {
                truck: truck.index,
                task: task.id.clone(),
                status: target,
            });
        }
        for r in repairs.iter().filter(|r| r.truck == truck.index) {
            let m = match r.when {
                super::faults::RepairDay::InRun(d) => usage.on(cal.date(d + 1)),
                super::faults::RepairDay::Before(_) => usage.on(r.date(cal)),
            };
            rows.push(row(
                truck.index,
                Work::Repair(r.spn, r.fmi),
                Performed::Time(r.at_us(cal)),
                m,
                true,
            ));
        }
    }
    (rows, targets)
}

fn row(truck: usize, work: Work, performed: Performed, m: Meters, with_pto: bool) -> ServiceRow {
    ServiceRow {
        truck,
        work,
        performed,
        engine_h: Some(round_to(m.engine_h, 1)),
        pto_h: with_pto.then(|| round_to(m.pto_h, 1)),
        km: Some(m.km.round()),
    }
}

/// Rows of one task; returns the status it aimed for.
fn plan_task(
    cal: &Calendar,
    usage: &Usage<'_>,
    task: &MaintenanceTask,
    rng: &mut ChaCha8Rng,
    rows: &mut Vec<ServiceRow>,
) -> Status {
    let truck = usage.truck;
    let as_of = cal.as_of_date();
    let end = usage.end();
    let per_day = usage.per_day();
    let draw: f64 = rng.random();
    let target = if draw < P_OVERDUE {
        Status::Overdue
    } else if draw < P_OVERDUE + P_DUE_SOON {
        Status::DueSoon
    } else {
        Status::Ok
    };
    let due =
        |last: Option<LastService>| task_due(task, last, truck.commissioned, &end, as_of, &per_day);
    let status = |v: &[IntervalDue]| deciding(v).map_or(Status::Ok, |i| i.status);
    // Days between services at the usage before the run, for the earlier rows.
    let spacing = task
        .intervals
        .iter()
        .filter_map(|i| match meter_value(&truck.rate_before, i.meter) {
            Some(r) if r > 0.0 => Some(i.every / r),
            Some(_) => None,
            None => Some(i.every),
        })
        .fold(f64::INFINITY, f64::min);
    let age_days = (as_of - truck.commissioned).num_days();
    let never = due(None);
    if status(&never) == target && clear_of_boundaries(&never) && (age_days as f64) < 2.0 * spacing
    {
        return target;
    }
    // Scan back from the day before the as-of date: consumption only grows,
    // so the dates that give a status form one band.
    let band = |want: Status| {
        let mut band = Vec::new();
        for back in 1..=age_days {
            let Some(date) = as_of.checked_sub_days(Days::new(back as u64)) else {
                break;
            };
            let v = due(Some(LastService {
                date,
                meters: usage.on(date),
            }));
            let s = status(&v);
            let too_far = v.iter().any(|i| -i.remaining / i.every > MAX_OVERDUE_SHARE);
            if s > want || too_far {
                break;
            }
            if s == want && clear_of_boundaries(&v) {
                band.push(date);
            }
        }
        band
    };
    // A target the task cannot reach (a coarse day interval) falls back to ok.
    let (target, band) = match band(target) {
        b if b.is_empty() && target != Status::Ok => (Status::Ok, band(Status::Ok)),
        b => (target, b),
    };
    let Some(&last) = band.get(rng.random_range(0..band.len().max(1))) else {
        // Not even ok (a young truck): it has no history of this task.
        return status(&never);
    };
    let with_pto = task.interval(IntervalMeter::PtoHours).is_some() || rng.random_bool(0.7);
    let mut dates = vec![last];
    if spacing.is_finite() {
        let mut d = last;
        for _ in 0..2 {
            let gap = (spacing * rng.random_range(0.8..1.0)).round().max(1.0) as u64;
            match d.checked_sub_days(Days::new(gap)) {
                Some(earlier) if earlier > truck.commissioned => {
                    dates.push(earlier);
                    d = earlier;
                }
                _ => break,
            }
        }
    }
    for date in dates.into_iter().rev() {
        rows.push(row(
            truck.index,
            Work::Task(task.id.clone()),
            Performed::Date(date),
            usage.on(date),
            with_pto,
        ));
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Interval, TruckKind};
    use crate::simulate::fleet::Week;
    use crate::simulate::fleet::tests::truck_for_tests;
    use crate::simulate::rng::Seeds;

    #[test]
    fn plans_reach_their_target_clear_of_the_boundaries() {
        let cal = Calendar {
            seeds: Seeds::new(5),
            start: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
            days: 30,
            upload_every_s: 300,
        };
        let mut truck = truck_for_tests(TruckKind::Sweeper, Week::MonToSat);
        truck.commissioned = NaiveDate::from_ymd_opt(2022, 3, 1).unwrap();
        truck.rate_before = Meters {
            engine_h: 5.0,
            pto_h: 3.5,
            km: 45.0,
        };
        truck.start_meters = truck
            .rate_before
            .scaled((cal.start - truck.commissioned).num_days() as f64);
        let task = MaintenanceTask {
            id: TaskId::new("engine-oil").unwrap(),
            name: String::new(),
            name_zh: None,
            intervals: vec![
                Interval {
                    meter: IntervalMeter::EngineHours,
                    every: 500.0,
                    due_soon: 50.0,
                },
                Interval {
                    meter: IntervalMeter::OdometerKm,
                    every: 15000.0,
                    due_soon: 1500.0,
                },
                Interval {
                    meter: IntervalMeter::Days,
                    every: 180.0,
                    due_soon: 18.0,
                },
            ],
            parts: Vec::new(),
            duty: None,
        };
        let usage = Usage::new(&truck, &cal);
        let mut seen = std::collections::BTreeMap::new();
        for i in 0..300 {
            let mut rng = cal.seeds.rng(Purpose::Services, 99, i);
            let mut rows = Vec::new();
            let target = plan_task(&cal, &usage, &task, &mut rng, &mut rows);
            *seen.entry(target).or_insert(0) += 1;
            let last = rows.last().unwrap();
            assert!(rows.windows(2).all(|w| w[0].engine_h < w[1].engine_h));
            let Performed::Date(date) = last.performed else {
                panic!()
            };
            let m = Meters {
                engine_h: last.engine_h.unwrap(),
                pto_h: 0.0,
                km: last.km.unwrap(),
            };
            let v = task_due(
                &task,
                Some(LastService { date, meters: m }),
                truck.commissioned,
                &usage.end(),
                cal.as_of_date(),
                &usage.per_day(),
            );
            assert_eq!(deciding(&v).unwrap().status, target, "{v:?}");
            for i in v.iter().filter(|i| i.meter != IntervalMeter::Days) {
                assert!(i.distance_to_boundary() > 0.005 * i.every, "{i:?}");
            }
        }
        assert!(seen[&Status::Ok] > 200, "{seen:?}");
        assert!(seen[&Status::DueSoon] > 10, "{seen:?}");
        assert!(seen[&Status::Overdue] > 3, "{seen:?}");
    }
}
