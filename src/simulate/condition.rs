//! Simulated condition signals with known truth (issue 23): a fleet's
//! hourly signal windows under realistic operating conditions, with
//! planted degradations that drift for days to weeks before their fault
//! code fires, and healthy confounders that must raise nothing.
//!
//! Operating conditions: each depot has its own climate (a seasonal cycle,
//! a daily cycle and weather that persists for days); each truck its own
//! route load and engine speed around it, hour by hour. Every signal
//! follows its model's physics (a linear response to load, speed and
//! ambient temperature), plus the truck's own offset, slow day-to-day
//! wander and sample noise. Samples every 5 minutes become hourly windows
//! exactly as the store folds them ([`Moments`]).
//!
//! Planted, with ground truth ([`Degradation`]): a signal of a
//! catalogued condition drifts from `onset` with an accelerating shape
//! until it reaches its failure level on `fault_day`, when the fault code
//! fires; the truck is repaired the next day.
//!
//! Confounders ([`Confounder`]), healthy: a heat wave over one depot, a
//! truck that always runs hotter, a change of route load, a sensor that
//! drops out for days, a sensor that sticks.
//!
//! Deterministic: same seed, same windows.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::rng::{Purpose, Seeds};
use crate::catalog::{Direction, TruckModel};
use crate::report::condition::detector::Window;
use crate::store::tables::Moments;

const US_PER_HOUR: i64 = 3_600_000_000;
const US_PER_DAY: i64 = 24 * US_PER_HOUR;
/// 2026-01-05, a Monday: day 0 of a simulation.
const START_DAY: i64 = 20_458;

/// How a signal responds to the operating conditions, and how it fails.
#[derive(Debug, Clone, Copy)]
struct Physics {
    base: f64,
    per_load_pct: f64,
    per_krpm: f64,
    per_ambient_c: f64,
    /// Sample noise (σ) within an hour.
    sample_sd: f64,
    /// Day-to-day wander (σ of an AR(1) with φ = 0.7).
    day_sd: f64,
    /// Spread of trucks' own offsets (σ).
    truck_sd: f64,
    /// The drift at which the fault fires, in the failing direction.
    failure: f64,
    /// A hot truck's extra offset, in the failing direction.
    hot: f64,
}

fn physics(signal: &str) -> Physics {
    let p =
        |base, per_load_pct, per_krpm, per_ambient_c, sample_sd, day_sd, truck_sd, failure, hot| {
            Physics {
                base,
                per_load_pct,
                per_krpm,
                per_ambient_c,
                sample_sd,
                day_sd,
                truck_sd,
                failure,
                hot,
            }
        };
    match signal {
        "coolant_temp_c" => p(76.0, 0.12, 2.0, 0.25, 1.2, 0.5, 1.5, 9.0, 5.0),
        "oil_pressure_kpa" => p(250.0, 0.4, 60.0, -0.8, 12.0, 5.0, 15.0, 70.0, 40.0),
        "battery_v" => p(27.4, -0.002, 0.15, -0.01, 0.12, 0.05, 0.2, 1.3, 0.6),
        "hydraulic_oil_temp_c" => p(32.0, 0.3, 1.0, 0.7, 1.5, 0.7, 2.0, 13.0, 7.0),
        "hydraulic_pressure_bar" => p(110.0, 0.6, 3.0, 0.05, 5.0, 2.0, 5.0, 28.0, 12.0),
        "pump_outlet_pressure_bar" => p(150.0, 0.2, 4.0, 0.0, 4.0, 1.5, 4.0, 22.0, 10.0),
        "pump_oil_temp_c" => p(38.0, 0.2, 1.0, 0.6, 1.2, 0.5, 1.5, 10.0, 5.0),
        _ => p(50.0, 0.1, 1.0, 0.2, 1.0, 0.5, 1.0, 8.0, 4.0),
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// What to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionOptions {
    pub trucks: u32,
    pub days: u32,
    pub seed: u64,
}

/// A planted degradation: the truth a detector is scored against.
#[derive(Debug, Clone, PartialEq)]
pub struct Degradation {
    pub truck: usize,
    pub signal: String,
    pub direction: Direction,
    /// Day the drift starts (days from the start).
    pub onset: i64,
    /// Day the fault code fires; the truck is repaired the next day.
    pub fault_day: i64,
}

/// A healthy confounder, for the tests to check it raises nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Confounder {
    HeatWave {
        depot: usize,
        from: i64,
        to: i64,
    },
    HotTruck {
        truck: usize,
        signal: String,
    },
    RouteChange {
        truck: usize,
        from: i64,
        extra_load_pct: f64,
    },
    Dropout {
        truck: usize,
        signal: String,
        from: i64,
        to: i64,
    },
    Stuck {
        truck: usize,
        signal: String,
        from: i64,
        to: i64,
    },
}

impl Confounder {
    /// The truck it concerns; `None` for a heat wave (a depot's trucks).
    pub fn truck(&self) -> Option<usize> {
        match self {
            Self::HeatWave { .. } => None,
            Self::HotTruck { truck, .. }
            | Self::RouteChange { truck, .. }
            | Self::Dropout { truck, .. }
            | Self::Stuck { truck, .. } => Some(*truck),
        }
    }
}

/// One simulated truck's signal.
#[derive(Debug, Clone)]
pub struct SignalSeries {
    pub truck: usize,
    pub model: usize,
    pub signal: String,
    pub direction: Direction,
    /// Hourly windows in time order; `start_us` counts from the epoch
    /// (day 0 is 2026-01-05).
    pub windows: Vec<Window>,
}

/// A simulated fleet's condition data and its truth.
#[derive(Debug, Clone)]
pub struct ConditionFleet {
    pub options: ConditionOptions,
    pub depot_of: Vec<usize>,
    pub model_of: Vec<usize>,
    pub series: Vec<SignalSeries>,
    pub degradations: Vec<Degradation>,
    pub confounders: Vec<Confounder>,
}

impl ConditionFleet {
    /// Day `d` of the simulation as days since the epoch.
    pub const fn epoch_day(d: i64) -> i64 {
        START_DAY + d
    }
}

const DEPOTS: usize = 5;

struct Truck {
    depot: usize,
    model: usize,
    load_mean: f64,
    route_change: Option<(i64, f64)>,
    start_hour: i64,
}

/// Simulates `opts.trucks` trucks of `models` (round robin) for
/// `opts.days` days; only models with `[[conditions]]` are used.
pub fn simulate(opts: &ConditionOptions, models: &[&TruckModel]) -> ConditionFleet {
    let seeds = Seeds::new(opts.seed ^ 0xC0DD_1710);
    let models: Vec<&TruckModel> = models
        .iter()
        .copied()
        .filter(|m| !m.conditions.is_empty())
        .collect();
    let days = i64::from(opts.days);
    let n = opts.trucks as usize;
    let mut plan = seeds.rng(Purpose::Scenario, 0, 0);

    // Depots: climate and weather.
    let depot_base: Vec<f64> = (0..DEPOTS).map(|_| plan.random_range(6.0..20.0)).collect();
    let mut weather = vec![vec![0.0f64; days as usize + 1]; DEPOTS];
    for (d, w) in weather.iter_mut().enumerate() {
        let mut r = seeds.rng(Purpose::Noise, 1_000 + d as u64, 0);
        let mut x = 0.0;
        for v in w.iter_mut() {
            x = 0.8 * x + 1.8 * normal(&mut r);
            *v = x;
        }
    }
    let mut confounders = Vec::new();
    let heat_depot = plan.random_range(0..DEPOTS);
    let heat_from = (days / 2).max(1);
    let heat_to = (heat_from + 10).min(days);
    confounders.push(Confounder::HeatWave {
        depot: heat_depot,
        from: heat_from,
        to: heat_to,
    });

    let trucks: Vec<Truck> = (0..n)
        .map(|t| {
            let mut r = seeds.rng(Purpose::Truck, t as u64, 0);
            // Trucks 0–3 carry one confounder each, so that every kind is
            // in every fleet (the tests look at them); more at random.
            let route_change = ((r.random::<f64>() < 0.1 || t == 1) && days > 40).then(|| {
                let from = r.random_range(35..days.max(36));
                let extra = if r.random::<bool>() { 20.0 } else { -15.0 };
                confounders.push(Confounder::RouteChange {
                    truck: t,
                    from,
                    extra_load_pct: extra,
                });
                (from, extra)
            });
            Truck {
                depot: r.random_range(0..DEPOTS),
                model: if models.is_empty() {
                    0
                } else {
                    t % models.len()
                },
                load_mean: r.random_range(35.0..65.0),
                route_change,
                start_hour: r.random_range(5..8),
            }
        })
        .collect();

    let mut series = Vec::new();
    let mut degradations = Vec::new();
    for (t, truck) in trucks.iter().enumerate() {
        let Some(model) = models.get(truck.model) else {
            continue;
        };
        let mut r = seeds.rng(Purpose::Scenario, 1 + t as u64, 0);
        // About one truck in eight degrades, in one of its conditions.
        let degrading = (r.random::<f64>() < 0.125 && days >= 60 && t >= 4).then(|| {
            let which = r.random_range(0..model.conditions.len());
            let length = r.random_range(10..36);
            let onset = r.random_range(35..(days - length - 2).max(36));
            (which, onset, onset + length)
        });
        for (ci, cond) in model.conditions.iter().enumerate() {
            let phys = physics(&cond.signal);
            let sign = cond.direction.sign();
            let mut offset = phys.truck_sd * normal(&mut r);
            if r.random::<f64>() < 0.03 || (t == 0 && ci == 0) {
                offset += sign * phys.hot;
                confounders.push(Confounder::HotTruck {
                    truck: t,
                    signal: cond.signal.clone(),
                });
            }
            let dropout = (r.random::<f64>() < 0.04 || (t == 2 && ci == 0)).then(|| {
                let from = r.random_range(30..days.max(31));
                let to = (from + r.random_range(3..13)).min(days);
                confounders.push(Confounder::Dropout {
                    truck: t,
                    signal: cond.signal.clone(),
                    from,
                    to,
                });
                (from, to)
            });
            let stuck = (r.random::<f64>() < 0.04 || (t == 3 && ci == 0)).then(|| {
                let from = r.random_range(30..days.max(31));
                let to = (from + r.random_range(2..11)).min(days);
                confounders.push(Confounder::Stuck {
                    truck: t,
                    signal: cond.signal.clone(),
                    from,
                    to,
                });
                (from, to)
            });
            let drift = degrading
                .filter(|(which, ..)| *which == ci)
                .map(|(_, onset, fault)| {
                    degradations.push(Degradation {
                        truck: t,
                        signal: cond.signal.clone(),
                        direction: cond.direction,
                        onset,
                        fault_day: fault,
                    });
                    (onset, fault)
                });
            let mut noise = seeds.rng(Purpose::Noise, t as u64, ci as u64);
            let mut wander = 0.0f64;
            let mut stuck_value = None;
            let mut windows = Vec::new();
            for d in 0..days {
                wander = 0.7 * wander + phys.day_sd * (1.0f64 - 0.49).sqrt() * normal(&mut noise);
                // Day 0 is a Monday: Sundays off.
                if d % 7 == 6 {
                    continue;
                }
                let doy = (d + 4) as f64;
                let season = -8.0 * (std::f64::consts::TAU * (doy + 10.0) / 365.25).cos();
                let heat = if truck.depot == heat_depot && (heat_from..heat_to).contains(&d) {
                    12.0
                } else {
                    0.0
                };
                let day_ambient =
                    depot_base[truck.depot] + season + weather[truck.depot][d as usize] + heat;
                let route = truck
                    .route_change
                    .filter(|(from, _)| d >= *from)
                    .map_or(0.0, |(_, extra)| extra);
                let shift = 8 + (d % 3 == 0) as i64;
                let dropped = dropout.is_some_and(|(a, b)| (a..b).contains(&d));
                let is_stuck = stuck.is_some_and(|(a, b)| (a..b).contains(&d));
                let degradation = drift
                    .filter(|(onset, fault)| d >= *onset && d <= *fault)
                    .map_or(0.0, |(onset, fault)| {
                        let x = (d - onset) as f64 / (fault - onset) as f64;
                        sign * phys.failure * x.powf(1.5)
                    });
                for h in truck.start_hour..truck.start_hour + shift {
                    let hour_load =
                        (truck.load_mean + route + 12.0 * normal(&mut noise)).clamp(5.0, 100.0);
                    let ambient =
                        day_ambient + 4.0 * (std::f64::consts::TAU * (h as f64 - 9.0) / 24.0).sin();
                    let mut y_m = Moments::of(0.0);
                    let mut load_m = Moments::of(0.0);
                    let mut speed_m = Moments::of(0.0);
                    let mut first = true;
                    for _ in 0..12 {
                        let load = (hour_load + 5.0 * normal(&mut noise)).clamp(0.0, 100.0);
                        let speed = 1100.0 + 9.0 * load + 120.0 * normal(&mut noise);
                        let y = phys.base
                            + phys.per_load_pct * load
                            + phys.per_krpm * speed / 1000.0
                            + phys.per_ambient_c * ambient
                            + offset
                            + wander
                            + degradation
                            + phys.sample_sd * normal(&mut noise);
                        let y = if is_stuck {
                            *stuck_value.get_or_insert(y)
                        } else {
                            stuck_value = None;
                            y
                        };
                        if first {
                            y_m = Moments::of(y);
                            load_m = Moments::of(load);
                            speed_m = Moments::of(speed);
                            first = false;
                        } else {
                            y_m.push(y);
                            load_m.push(load);
                            speed_m.push(speed);
                        }
                    }
                    if dropped {
                        continue;
                    }
                    windows.push(Window {
                        start_us: (START_DAY + d) * US_PER_DAY + h * US_PER_HOUR,
                        count: y_m.count as u32,
                        mean: y_m.mean,
                        m2: y_m.m2,
                        load_pct: Some(load_m.mean),
                        speed_rpm: Some(speed_m.mean),
                        ambient_c: Some(ambient),
                    });
                }
            }
            series.push(SignalSeries {
                truck: t,
                model: truck.model,
                signal: cond.signal.clone(),
                direction: cond.direction,
                windows,
            });
        }
    }
    ConditionFleet {
        options: *opts,
        depot_of: trucks.iter().map(|t| t.depot).collect(),
        model_of: trucks.iter().map(|t| t.model).collect(),
        series,
        degradations,
        confounders,
    }
}

/// How a detector did on a simulated fleet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Score {
    pub planted: usize,
    /// Planted degradations alarmed between onset and their fault code.
    pub found_before_fault: usize,
    /// Lead times (days before the fault code) of those found, sorted.
    pub leads: Vec<f64>,
    pub false_alarms: usize,
    /// Watched truck-months (after each truck's learning period).
    pub truck_months: f64,
}

impl Score {
    pub fn recall(&self) -> f64 {
        if self.planted == 0 {
            1.0
        } else {
            self.found_before_fault as f64 / self.planted as f64
        }
    }

    /// The median lead time in days; `None` when nothing was found.
    pub fn median_lead_days(&self) -> Option<f64> {
        let l = &self.leads;
        let m = l.len() / 2;
        match l.len() {
            0 => None,
            n if n % 2 == 1 => l.get(m).copied(),
            _ => Some((l.get(m - 1)? + l.get(m)?) / 2.0),
        }
    }

    /// Scores of several fleets as one: counts add, leads pool.
    pub fn pooled(scores: &[Score]) -> Score {
        let mut leads: Vec<f64> = scores
            .iter()
            .flat_map(|s| s.leads.iter().copied())
            .collect();
        leads.sort_by(f64::total_cmp);
        Score {
            planted: scores.iter().map(|s| s.planted).sum(),
            found_before_fault: scores.iter().map(|s| s.found_before_fault).sum(),
            leads,
            false_alarms: scores.iter().map(|s| s.false_alarms).sum(),
            truck_months: scores.iter().map(|s| s.truck_months).sum(),
        }
    }

    pub fn false_alarms_per_100_truck_months(&self) -> f64 {
        if self.truck_months <= 0.0 {
            0.0
        } else {
            100.0 * self.false_alarms as f64 / self.truck_months
        }
    }
}

/// Which detector to score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Detector {
    /// fleetcare's: conditioned baseline and CUSUM over days.
    Cusum(crate::report::condition::detector::Params),
    /// The same baseline and days with an EWMA chart instead of the CUSUM
    /// (for the comparison in docs/decisions.md).
    Ewma {
        params: crate::report::condition::detector::Params,
        lambda: f64,
        limit: f64,
    },
    /// A fixed threshold per model and signal: an alarm when an hourly
    /// mean passes the `quantile` of the model's learning-period hourly
    /// means (the failing side).
    FixedThreshold { quantile: f64 },
}

/// Days an alarm keeps its (truck, signal) quiet: its ticket is open.
pub const HOLD_DAYS: i64 = 30;
/// An alarm up to this many days after the fault code still belongs to
/// that degradation (late, not false).
const LATE_DAYS: i64 = 3;

/// Alarm days (simulation days) per series index.
pub fn alarms(fleet: &ConditionFleet, detector: &Detector) -> Vec<Vec<i64>> {
    use crate::report::condition::detector::{self as det, VehicleWindows};
    use std::collections::BTreeMap;
    // Series grouped by (model, signal), as the report groups them.
    let mut groups: BTreeMap<(usize, &str), Vec<usize>> = BTreeMap::new();
    for (i, s) in fleet.series.iter().enumerate() {
        groups
            .entry((s.model, s.signal.as_str()))
            .or_default()
            .push(i);
    }
    let mut out = vec![Vec::new(); fleet.series.len()];
    for members in groups.values() {
        let inputs: Vec<VehicleWindows> = members
            .iter()
            .map(|&i| {
                let s = &fleet.series[i];
                let resets = fleet
                    .degradations
                    .iter()
                    .filter(|d| d.truck == s.truck && d.signal == s.signal)
                    .map(|d| ConditionFleet::epoch_day(d.fault_day))
                    .collect();
                VehicleWindows {
                    windows: s.windows.clone(),
                    resets,
                }
            })
            .collect();
        let refs: Vec<&VehicleWindows> = inputs.iter().collect();
        let Some(&first) = members.first() else {
            continue;
        };
        let sign = fleet.series[first].direction.sign();
        match detector {
            Detector::Cusum(p) => {
                for (&i, series) in members.iter().zip(det::run_model(&refs, sign, p)) {
                    out[i] = det::alarm_days(&series, p, HOLD_DAYS)
                        .into_iter()
                        .map(|d| d - START_DAY)
                        .collect();
                }
            }
            Detector::Ewma {
                params,
                lambda,
                limit,
            } => {
                for (&i, series) in members.iter().zip(det::run_model(&refs, sign, params)) {
                    out[i] = det::ewma_alarm_days(&series, *lambda, *limit, HOLD_DAYS)
                        .into_iter()
                        .map(|d| d - START_DAY)
                        .collect();
                }
            }
            Detector::FixedThreshold { quantile } => {
                let p = det::Params::default();
                let mut learn: Vec<f64> = refs
                    .iter()
                    .flat_map(|v| {
                        let first = v.windows.first().map_or(0, |w| w.start_us / US_PER_DAY);
                        v.windows
                            .iter()
                            .filter(move |w| w.start_us / US_PER_DAY < first + p.learn_days)
                            .map(|w| sign * w.mean)
                    })
                    .collect();
                learn.sort_by(f64::total_cmp);
                let Some(&limit) =
                    learn.get(((learn.len() as f64 - 1.0) * quantile).round() as usize)
                else {
                    continue;
                };
                for (&i, v) in members.iter().zip(&refs) {
                    let first = v.windows.first().map_or(0, |w| w.start_us / US_PER_DAY);
                    let mut quiet_until = i64::MIN;
                    for w in &v.windows {
                        let day = w.start_us / US_PER_DAY;
                        if day < first + p.learn_days || day < quiet_until {
                            continue;
                        }
                        if sign * w.mean > limit {
                            out[i].push(day - START_DAY);
                            quiet_until = day + HOLD_DAYS;
                        }
                    }
                }
            }
        }
    }
    out
}

/// Scores `detector` against the fleet's truth.
pub fn score(fleet: &ConditionFleet, detector: &Detector) -> Score {
    let alarms = alarms(fleet, detector);
    let learn = crate::report::condition::detector::Params::default().learn_days;
    let mut s = Score {
        planted: fleet.degradations.len(),
        truck_months: fleet.model_of.len() as f64
            * (f64::from(fleet.options.days) - learn as f64).max(0.0)
            / 30.44,
        ..Score::default()
    };
    let mut leads = Vec::new();
    for (series, days) in fleet.series.iter().zip(&alarms) {
        let planted: Vec<&Degradation> = fleet
            .degradations
            .iter()
            .filter(|d| d.truck == series.truck && d.signal == series.signal)
            .collect();
        for &day in days {
            let owner = planted
                .iter()
                .find(|d| day >= d.onset && day <= d.fault_day + LATE_DAYS);
            if owner.is_none() {
                s.false_alarms += 1;
            }
        }
        for d in planted {
            if let Some(first) = days
                .iter()
                .find(|&&day| day >= d.onset && day < d.fault_day)
            {
                s.found_before_fault += 1;
                leads.push((d.fault_day - first) as f64);
            }
        }
    }
    leads.sort_by(f64::total_cmp);
    s.leads = leads;
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn catalog() -> Catalog {
        Catalog::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_fleet() {
        let c = catalog();
        let models: Vec<_> = c.models().collect();
        let o = ConditionOptions {
            trucks: 6,
            days: 20,
            seed: 3,
        };
        let (a, b) = (simulate(&o, &models), simulate(&o, &models));
        assert_eq!(a.series.len(), b.series.len());
        assert_eq!(a.series[5].windows, b.series[5].windows);
        // Only working hours: 8 or 9 a day, six days a week.
        let w = &a.series[0].windows;
        assert!(w.len() > 17 * 8 - 20 && w.len() <= 18 * 9, "{}", w.len());
    }

    // Issue 23 acceptance: each healthy confounder is in the fleet and
    // raises nothing; planted degradations drift before their fault.
    #[test]
    fn confounders_raise_nothing() {
        let c = catalog();
        let models: Vec<_> = c.models().collect();
        let fleet = simulate(
            &ConditionOptions {
                trucks: 40,
                days: 150,
                seed: 11,
            },
            &models,
        );
        let kinds = |f: fn(&Confounder) -> bool| fleet.confounders.iter().filter(|c| f(c)).count();
        assert_eq!(kinds(|c| matches!(c, Confounder::HeatWave { .. })), 1);
        assert!(kinds(|c| matches!(c, Confounder::HotTruck { .. })) >= 1);
        assert!(kinds(|c| matches!(c, Confounder::RouteChange { .. })) >= 1);
        assert!(kinds(|c| matches!(c, Confounder::Dropout { .. })) >= 1);
        assert!(kinds(|c| matches!(c, Confounder::Stuck { .. })) >= 1);
        let alarms = alarms(&fleet, &Detector::Cusum(Default::default()));
        let Some(Confounder::HeatWave { depot, .. }) = fleet.confounders.first() else {
            panic!("no heat wave");
        };
        for (series, days) in fleet.series.iter().zip(&alarms) {
            let confounded = fleet
                .confounders
                .iter()
                .any(|c| c.truck() == Some(series.truck))
                || fleet.depot_of[series.truck] == *depot;
            let degrading = fleet.degradations.iter().any(|d| d.truck == series.truck);
            if confounded && !degrading {
                assert!(
                    days.is_empty(),
                    "truck {} {}: {days:?} ({:?})",
                    series.truck,
                    series.signal,
                    fleet
                        .confounders
                        .iter()
                        .filter(|c| c.truck() == Some(series.truck))
                        .collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn planted_degradations_are_found_before_their_fault() {
        let c = catalog();
        let models: Vec<_> = c.models().collect();
        let fleet = simulate(
            &ConditionOptions {
                trucks: 60,
                days: 150,
                seed: 12,
            },
            &models,
        );
        assert!(!fleet.degradations.is_empty());
        let s = score(&fleet, &Detector::Cusum(Default::default()));
        assert!(s.recall() >= 0.8, "{s:?}");
        assert!(s.median_lead_days().is_some_and(|d| d >= 5.0), "{s:?}");
    }
}
