//! The drift detector of `report condition` (C12), without IO: hourly
//! signal windows in, per (vehicle, signal) CUSUM states and alarms out.
//!
//! 1. **Baseline conditioned on operating conditions.** Per model and
//!    signal, a fixed-effects regression of the window mean on engine
//!    load, engine speed and ambient temperature over every vehicle's
//!    first `learn_days` of history: the slopes are the model's (its
//!    peers'), the offset is each vehicle's own (a truck that always runs
//!    hotter is its own normal). A heat wave or a heavier route moves the
//!    expected value with it instead of raising an alarm.
//! 2. **Residuals by day.** The mean residual of each day's windows, in
//!    units of that vehicle's day-to-day spread during learning. Windows
//!    of a stuck sensor (several samples, no spread) are left out, and a
//!    day without windows (a dropout) changes nothing.
//! 3. **CUSUM over days** in the direction the catalogue names:
//!    `S = max(0, S + z − k)`, alarm at `S > h`. A day of a slow drift adds
//!    little, but it adds up; a single odd day does not reach `h`.
//!
//! Why CUSUM over days with these parameters: docs/decisions.md,
//! "Condition signals".

use std::collections::HashMap;

/// One stored window (an hour) of one signal of one vehicle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Start of the window, µs since the epoch.
    pub start_us: i64,
    pub count: u32,
    pub mean: f64,
    pub m2: f64,
    pub load_pct: Option<f64>,
    pub speed_rpm: Option<f64>,
    pub ambient_c: Option<f64>,
}

impl Window {
    /// A stuck sensor: several samples and no spread at all.
    pub fn is_stuck(&self) -> bool {
        self.count >= 3 && self.m2.abs() <= 1e-9 * (1.0 + self.mean.abs())
    }
}

/// The detector's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Days of each vehicle's history its baseline is learnt from.
    pub learn_days: i64,
    /// Fewer learning days than this: the vehicle is not watched yet.
    pub min_learn_days: usize,
    /// CUSUM allowance, in day standard deviations.
    pub k: f64,
    /// CUSUM decision interval: an alarm when the sum exceeds it.
    pub h: f64,
    /// Floor of a vehicle's day standard deviation, as a share of its
    /// model's median (a truck with an unusually quiet learning period
    /// would otherwise alarm on ordinary days).
    pub sigma_floor: f64,
    /// A day's z is capped at this: one wild day (a sensor glitch the
    /// stuck test did not catch) cannot make an alarm alone.
    pub z_cap: f64,
    /// Whether the baseline follows load, speed and ambient; off only to
    /// measure what conditioning is worth (`bench condition
    /// --unconditioned`).
    pub conditioned: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            learn_days: 28,
            min_learn_days: 10,
            k: 1.75,
            h: 6.0,
            sigma_floor: 0.7,
            z_cap: 4.0,
            conditioned: true,
        }
    }
}

/// The daily series of one vehicle and signal, with its learnt baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Days since the epoch, each with the mean residual (signal units),
    /// the mean signal, the mean expected value and the z used.
    pub days: Vec<Day>,
    /// The vehicle's offset (its own normal at zero load, speed, ambient).
    pub offset: f64,
    /// Day standard deviation of the residual (signal units).
    pub sigma: f64,
    /// Whether the vehicle had enough history to be watched.
    pub watched: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Day {
    pub day: i64,
    pub mean: f64,
    pub expected: f64,
    pub z: f64,
    /// The CUSUM after this day.
    pub cusum: f64,
    /// A day of the learning period (not watched).
    pub learning: bool,
    /// The sum started again before this day (a repair).
    pub reset: bool,
}

/// One vehicle's windows of one signal, sorted by time.
#[derive(Debug, Clone, Default)]
pub struct VehicleWindows {
    pub windows: Vec<Window>,
    /// Days on which the vehicle was repaired for this signal's fault (the
    /// fault fired): the CUSUM starts again from zero the day after.
    pub resets: Vec<i64>,
}

const US_PER_DAY: i64 = 86_400_000_000;

fn day_of(us: i64) -> i64 {
    us.div_euclid(US_PER_DAY)
}

/// The model's slopes on load, speed and ambient.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Slopes {
    pub beta: [f64; 3],
    /// Fill-ins for a missing covariate: the learning mean.
    pub fill: [f64; 3],
}

impl Slopes {
    fn x(&self, w: &Window) -> [f64; 3] {
        [
            w.load_pct.unwrap_or(self.fill[0]),
            w.speed_rpm.map_or(self.fill[1], |s| s / 1000.0),
            w.ambient_c.unwrap_or(self.fill[2]),
        ]
    }

    fn effect(&self, w: &Window) -> f64 {
        let x = self.x(w);
        self.beta[0] * x[0] + self.beta[1] * x[1] + self.beta[2] * x[2]
    }
}

/// The windows that teach the baseline: the first `learn_days` of the
/// vehicle's history, stuck ones left out.
fn learning<'a>(v: &'a VehicleWindows, p: &Params) -> impl Iterator<Item = &'a Window> + 'a {
    let first = v.windows.first().map_or(0, |w| day_of(w.start_us));
    let until = first + p.learn_days;
    v.windows
        .iter()
        .filter(move |w| day_of(w.start_us) < until && !w.is_stuck())
}

/// Solves the 3×3 system `a x = b` (Gaussian elimination with partial
/// pivoting); `None` when it is singular.
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    for c in 0..3 {
        let pivot = (c..3).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[pivot][c].abs() < 1e-12 {
            return None;
        }
        a.swap(c, pivot);
        b.swap(c, pivot);
        let (pivot_row, pivot_b) = (a[c], b[c]);
        for (r, (row, br)) in a.iter_mut().zip(b.iter_mut()).enumerate() {
            if r != c {
                let f = row[c] / pivot_row[c];
                for (x, p) in row.iter_mut().zip(pivot_row).skip(c) {
                    *x -= f * p;
                }
                *br -= f * pivot_b;
            }
        }
    }
    Some([b[0] / a[0][0], b[1] / a[1][1], b[2] / a[2][2]])
}

/// Fits the model's slopes on its vehicles' learning windows, each vehicle
/// centred on its own means (fixed effects). A covariate that does not
/// vary gets no slope (ridge-like damping keeps the system solvable).
pub fn fit_slopes(vehicles: &[&VehicleWindows], p: &Params) -> Slopes {
    // Fill-ins first: the pooled learning means of the covariates.
    let mut sums = [0.0f64; 3];
    let mut counts = [0usize; 3];
    for v in vehicles {
        for w in learning(v, p) {
            let xs = [w.load_pct, w.speed_rpm.map(|s| s / 1000.0), w.ambient_c];
            for (i, x) in xs.into_iter().enumerate() {
                if let Some(x) = x {
                    sums[i] += x;
                    counts[i] += 1;
                }
            }
        }
    }
    let mut slopes = Slopes::default();
    for i in 0..3 {
        slopes.fill[i] = if counts[i] > 0 {
            sums[i] / counts[i] as f64
        } else {
            0.0
        };
    }
    let mut xtx = [[0.0f64; 3]; 3];
    let mut xty = [0.0f64; 3];
    for v in vehicles {
        let rows: Vec<([f64; 3], f64)> = learning(v, p).map(|w| (slopes.x(w), w.mean)).collect();
        if rows.len() < 2 {
            continue;
        }
        let n = rows.len() as f64;
        let mut mx = [0.0; 3];
        let mut my = 0.0;
        for (x, y) in &rows {
            for i in 0..3 {
                mx[i] += x[i] / n;
            }
            my += y / n;
        }
        for (x, y) in &rows {
            let dx = [x[0] - mx[0], x[1] - mx[1], x[2] - mx[2]];
            for i in 0..3 {
                for j in 0..3 {
                    xtx[i][j] += dx[i] * dx[j];
                }
                xty[i] += dx[i] * (y - my);
            }
        }
    }
    for (i, row) in xtx.iter_mut().enumerate() {
        row[i] += 1e-6 * (1.0 + row[i]);
    }
    if p.conditioned {
        slopes.beta = solve3(xtx, xty).unwrap_or_default();
    }
    slopes
}

/// The median of `v` (sorted in place); `None` when empty.
fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// The lag-1 autocorrelation of day residuals around `mean`, over pairs
/// of consecutive days; `None` with fewer than 5 pairs.
fn lag1(days: &[(i64, f64)], mean: f64) -> Option<f64> {
    let var: f64 = days
        .iter()
        .map(|(_, r)| (r - mean) * (r - mean))
        .sum::<f64>()
        / days.len() as f64;
    let pairs: Vec<(f64, f64)> = days
        .windows(2)
        .filter_map(|w| match w {
            [(d0, a), (d1, b)] if d1 - d0 == 1 => Some((a - mean, b - mean)),
            _ => None,
        })
        .collect();
    if pairs.len() < 5 || var <= 0.0 {
        return None;
    }
    Some(pairs.iter().map(|(a, b)| a * b).sum::<f64>() / pairs.len() as f64 / var)
}

/// Per-day means of (signal, expected) over the non-stuck windows, by day.
fn daily(v: &VehicleWindows, s: &Slopes, offset: f64) -> Vec<(i64, f64, f64)> {
    let mut out: Vec<(i64, f64, f64, u32)> = Vec::new();
    for w in v.windows.iter().filter(|w| !w.is_stuck()) {
        let d = day_of(w.start_us);
        let expected = offset + s.effect(w);
        match out.last_mut() {
            Some(last) if last.0 == d => {
                last.1 += w.mean;
                last.2 += expected;
                last.3 += 1;
            }
            _ => out.push((d, w.mean, expected, 1)),
        }
    }
    out.into_iter()
        .map(|(d, y, e, n)| (d, y / f64::from(n), e / f64::from(n)))
        .collect()
}

/// Learns each vehicle's offset and day spread, then runs the CUSUM over
/// its days in `direction` (+1 up, −1 down). Vehicles in the same order
/// as given.
pub fn run_model(vehicles: &[&VehicleWindows], direction: f64, p: &Params) -> Vec<Series> {
    let slopes = fit_slopes(vehicles, p);
    // Offsets and day spreads from each vehicle's learning period.
    let learnt: Vec<Option<(f64, f64, Option<f64>)>> = vehicles
        .iter()
        .map(|v| {
            let ws: Vec<&Window> = learning(v, p).collect();
            if ws.is_empty() {
                return None;
            }
            let offset =
                ws.iter().map(|w| w.mean - slopes.effect(w)).sum::<f64>() / ws.len() as f64;
            let first = v.windows.first().map_or(0, |w| day_of(w.start_us));
            let learn: Vec<(i64, f64)> = daily(v, &slopes, offset)
                .into_iter()
                .filter(|(d, ..)| *d < first + p.learn_days)
                .map(|(d, y, e)| (d, y - e))
                .collect();
            if learn.len() < p.min_learn_days {
                return None;
            }
            let mean = learn.iter().map(|(_, r)| r).sum::<f64>() / learn.len() as f64;
            let mut dev: Vec<f64> = learn.iter().map(|(_, r)| (r - mean).abs()).collect();
            // The median absolute deviation, scaled to a normal's σ: a bad
            // day in the learning period does not widen the band much.
            let mad = median(&mut dev).unwrap_or(0.0) * 1.4826;
            Some((offset, mad, lag1(&learn, mean)))
        })
        .collect();
    let mut sigmas: Vec<f64> = learnt.iter().flatten().map(|(_, s, _)| *s).collect();
    let model_sigma = median(&mut sigmas).unwrap_or(1.0).max(1e-9);
    // Day residuals are autocorrelated (weather, slow wander): a sum of n
    // of them varies (1 + φ) / (1 − φ) times more than n independent
    // ones. The model's median lag-1 autocorrelation widens σ by that
    // factor's root, so the CUSUM's false-alarm rate holds.
    let mut phis: Vec<f64> = learnt
        .iter()
        .flatten()
        .filter_map(|(_, _, phi)| *phi)
        .collect();
    let phi = median(&mut phis).unwrap_or(0.0).clamp(0.0, 0.9);
    let inflate = ((1.0 + phi) / (1.0 - phi)).sqrt();
    vehicles
        .iter()
        .zip(learnt)
        .map(|(v, l)| {
            let Some((offset, sigma, _)) = l else {
                return Series {
                    days: Vec::new(),
                    offset: 0.0,
                    sigma: model_sigma,
                    watched: false,
                };
            };
            let sigma = sigma.max(p.sigma_floor * model_sigma).max(1e-9) * inflate;
            let first = v.windows.first().map_or(0, |w| day_of(w.start_us));
            let mut s = 0.0f64;
            let mut resets = v.resets.iter().peekable();
            let days = daily(v, &slopes, offset)
                .into_iter()
                .map(|(day, mean, expected)| {
                    let mut reset = false;
                    while resets.peek().is_some_and(|&&r| r < day) {
                        resets.next();
                        s = 0.0;
                        reset = true;
                    }
                    let z = (direction * (mean - expected) / sigma).clamp(-p.z_cap, p.z_cap);
                    let learning = day < first + p.learn_days;
                    if !learning {
                        s = (s + z - p.k).max(0.0);
                    }
                    Day {
                        day,
                        mean,
                        expected,
                        z,
                        cusum: s,
                        learning,
                        reset,
                    }
                })
                .collect();
            Series {
                days,
                offset,
                sigma,
                watched: true,
            }
        })
        .collect()
}

/// The alarms an EWMA chart would raise on the same days' z, for the
/// comparison in docs/decisions.md: `e = λ z + (1 − λ) e`, an alarm when
/// `e` exceeds `limit` (in z units), with the same hold and resets.
pub fn ewma_alarm_days(series: &Series, lambda: f64, limit: f64, hold_days: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut quiet_until = i64::MIN;
    let mut e = 0.0f64;
    for d in &series.days {
        if d.reset {
            e = 0.0;
        }
        if d.learning || d.day < quiet_until {
            continue;
        }
        e = lambda * d.z + (1.0 - lambda) * e;
        if e > limit {
            out.push(d.day);
            quiet_until = d.day + hold_days;
            e = 0.0;
        }
    }
    out
}

/// The alarms of a series as an online detector raises them: the days the
/// CUSUM first exceeds `h`; after an alarm the (vehicle, signal) stays
/// quiet for `hold_days` (its ticket is open) and its sum starts afresh.
pub fn alarm_days(series: &Series, p: &Params, hold_days: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut quiet_until = i64::MIN;
    let mut s = 0.0f64;
    for d in &series.days {
        if d.reset {
            s = 0.0;
        }
        if d.learning || d.day < quiet_until {
            continue;
        }
        s = (s + d.z - p.k).max(0.0);
        if s > p.h {
            out.push(d.day);
            quiet_until = d.day + hold_days;
            s = 0.0;
        }
    }
    out
}

/// The current excursion of a series: the first day of the run of
/// positive sums that ends on its last day, when that run exceeds `h`.
pub fn active_since(series: &Series, p: &Params) -> Option<i64> {
    let last = series.days.last()?;
    if last.cusum <= p.h {
        return None;
    }
    let mut start = last.day;
    for d in series.days.iter().rev() {
        if d.cusum <= 0.0 {
            break;
        }
        start = d.day;
    }
    Some(start)
}

/// Groups windows by a key, keeping each group's time order.
pub fn group<K: std::hash::Hash + Eq + Clone>(
    rows: impl IntoIterator<Item = (K, Window)>,
) -> HashMap<K, VehicleWindows> {
    let mut out: HashMap<K, VehicleWindows> = HashMap::new();
    for (k, w) in rows {
        out.entry(k).or_default().windows.push(w);
    }
    for v in out.values_mut() {
        v.windows.sort_by_key(|w| w.start_us);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(hour: i64, mean: f64, load: f64, ambient: f64) -> Window {
        Window {
            start_us: hour * 3_600_000_000,
            count: 60,
            mean,
            m2: 60.0,
            load_pct: Some(load),
            speed_rpm: Some(1500.0),
            ambient_c: Some(ambient),
        }
    }

    /// Deterministic noise about N(0, 0.5²) from a hash of the day and hour.
    fn noise(d: i64, h: i64) -> f64 {
        let mut x = (d as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (h as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let mut sum = 0.0;
        for _ in 0..3 {
            x ^= x >> 31;
            x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^= x >> 29;
            sum += (x >> 11) as f64 / (1u64 << 53) as f64;
        }
        sum - 1.5
    }

    /// A vehicle's 8 working hours a day for `days` days, with `f(day,
    /// hour)` → (signal offset, load, ambient).
    fn vehicle(days: i64, f: impl Fn(i64, i64) -> (f64, f64, f64)) -> VehicleWindows {
        let mut v = VehicleWindows::default();
        for d in 0..days {
            for h in 6..14 {
                let (extra, load, ambient) = f(d, h);
                let noise = noise(d, h);
                let y = 50.0 + 0.3 * load + 0.5 * ambient + extra + noise;
                v.windows.push(w(d * 24 + h, y, load, ambient));
            }
        }
        v
    }

    #[test]
    fn solves_a_small_system() {
        let x = solve3(
            [[2.0, 0.0, 0.0], [0.0, 4.0, 1.0], [0.0, 1.0, 3.0]],
            [2.0, 9.0, 7.0],
        )
        .unwrap();
        assert!((x[0] - 1.0).abs() < 1e-12);
        assert!((x[1] - 20.0 / 11.0).abs() < 1e-12, "{x:?}");
        assert_eq!(solve3([[0.0; 3]; 3], [1.0; 3]), None);
    }

    #[test]
    fn learns_the_model_slopes_and_each_vehicles_offset() {
        let a = vehicle(40, |d, h| {
            (
                0.0,
                30.0 + ((d + h) % 5) as f64 * 8.0,
                10.0 + (h % 4) as f64 * 3.0 + (d % 9) as f64,
            )
        });
        let hot = vehicle(40, |d, h| {
            (
                6.0,
                40.0 + ((d * h) % 6) as f64 * 6.0,
                12.0 + (d % 7) as f64 * 2.0,
            )
        });
        let p = Params::default();
        let s = fit_slopes(&[&a, &hot], &p);
        assert!((s.beta[0] - 0.3).abs() < 0.05, "{s:?}");
        assert!((s.beta[2] - 0.5).abs() < 0.05, "{s:?}");
        let series = run_model(&[&a, &hot], 1.0, &p);
        assert!((series[1].offset - series[0].offset - 6.0).abs() < 0.5);
        // Neither alarms: the hot truck is its own normal.
        assert!(
            series
                .iter()
                .all(|s| s.watched && active_since(s, &p).is_none())
        );
    }

    // Issue 23: a heat wave (ambient +12 °C for a week) moves the expected
    // value with it; a drift of the same size without the heat does not.
    #[test]
    fn a_heat_wave_is_explained_and_a_drift_is_found() {
        let p = Params::default();
        let ambient = |d: i64, h: i64| {
            10.0 + (h % 5) as f64 * 2.0
                + (d % 11) as f64
                + if (60..67).contains(&d) { 12.0 } else { 0.0 }
        };
        let load = |d: i64, h: i64| 30.0 + ((d + 2 * h) % 7) as f64 * 6.0;
        let heat = vehicle(80, |d, h| (0.0, load(d, h), ambient(d, h)));
        let drift = vehicle(80, |d, h| {
            let extra = if d >= 55 { (d - 55) as f64 * 0.4 } else { 0.0 };
            (
                extra,
                load(d, h),
                ambient(d, h) - if (60..67).contains(&d) { 12.0 } else { 0.0 },
            )
        });
        let other = vehicle(80, |d, h| (0.0, load(d, h) + 5.0, ambient(d, h)));
        let series = run_model(&[&heat, &drift, &other], 1.0, &p);
        assert!(
            alarm_days(&series[0], &p, 30).is_empty(),
            "{:?}",
            series[0].days
        );
        assert!(alarm_days(&series[2], &p, 30).is_empty());
        let alarms = alarm_days(&series[1], &p, 30);
        assert!(
            !alarms.is_empty() && alarms[0] > 55 && alarms[0] < 70,
            "{alarms:?}"
        );
        assert!(active_since(&series[1], &p).is_some_and(|d| (55..65).contains(&d)));
        // Looking the other way finds nothing.
        let down = run_model(&[&heat, &drift, &other], -1.0, &p);
        assert!(alarm_days(&down[1], &p, 30).is_empty());
    }

    #[test]
    fn stuck_windows_and_gaps_change_nothing() {
        let p = Params::default();
        let mut v = vehicle(60, |d, h| {
            (
                0.0,
                30.0 + ((d + h) % 5) as f64 * 8.0,
                15.0 + (d % 6) as f64,
            )
        });
        // Stuck at a high value from day 40 on; a gap from day 30 to 35.
        for w in v.windows.iter_mut() {
            if w.start_us >= 40 * US_PER_DAY {
                w.mean = 120.0;
                w.m2 = 0.0;
            }
        }
        v.windows
            .retain(|w| !(30 * US_PER_DAY..35 * US_PER_DAY).contains(&w.start_us));
        let other = vehicle(60, |d, h| {
            (
                0.0,
                35.0 + ((d * h) % 5) as f64 * 8.0,
                15.0 + (d % 5) as f64,
            )
        });
        let series = run_model(&[&v, &other], 1.0, &p);
        assert!(alarm_days(&series[0], &p, 30).is_empty());
        assert_eq!(series[0].days.last().map(|d| d.day), Some(39));
    }

    #[test]
    fn a_reset_starts_the_sum_again() {
        let p = Params::default();
        let load = |d: i64, h: i64| 30.0 + ((d + h) % 5) as f64 * 8.0;
        let mut v = vehicle(70, |d, h| {
            (
                if (40..50).contains(&d) { 8.0 } else { 0.0 },
                load(d, h),
                15.0 + (d % 6) as f64,
            )
        });
        let other = vehicle(70, |d, h| (0.0, load(d, h), 15.0 + (d % 7) as f64));
        v.resets = vec![49];
        let series = run_model(&[&v, &other], 1.0, &p);
        let at = |day: i64| series[0].days.iter().find(|d| d.day == day).unwrap().cusum;
        assert!(at(49) > p.h);
        assert!(at(50) < 1.0, "{}", at(50));
        assert_eq!(active_since(&series[0], &p), None);
    }
}
