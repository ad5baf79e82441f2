//! Fault scenarios with a known outcome, background noise that cannot
//! change that outcome, and which faults are active at each upload.
//!
//! Episodes are planned on upload slots rather than on clock times: a fault
//! is listed by every snapshot from its start slot up to (not including)
//! its end slot, so each planned episode is exactly one episode for a
//! reader of the data (contract C5), however short.
//!
//! Planted, per registered truck at most one scenario:
//! - **recurring**: 3–5 short episodes of one code in the last 30 days;
//! - **intermittent**: 2 in the last 30 days (and, in runs of 40 days or
//!   more, sometimes a third one earlier): close to, but not, recurring;
//! - **persistent**: one episode over 2–10 days, repaired (a `repair:` row)
//!   or still active at the end;
//! - **repeat repair**: repaired (during the run, or shortly before it) and
//!   back within 25 days;
//! - **batch defect**: one code on ≥ 3 trucks and ≥ 25 % of one model's
//!   registered trucks, 1–2 episodes each in the last 30 days;
//! - **critical**: a critical code with a companion code on the engine ECU
//!   (a DM1 over BAM, red stop lamp); the truck stops two uploads later,
//!   spends a day or two in the workshop and is repaired.
//!
//! Noise: short episodes of non-critical codes on any truck, drawn day by
//! day, refused when they would make a recurring failure (a third start of
//! the same truck and code within 31 days), a batch defect (on any 31-day
//! window, counting the planted episodes too), a repeat repair (codes the
//! truck has a repair of), or touch a planted code of the truck.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use fleetcare_ingest::j1939::{Address, Fmi, Spn};
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::duty::{Calendar, DayPlan, Slot, local_time_us, plan_day};
use super::fleet::{Gateway, Truck};
use super::rng::Purpose;
use crate::catalog::{FaultEntry, Severity, TruckModel};

/// Why an episode exists; written to the ground truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scenario {
    Recurring,
    Intermittent,
    Persistent,
    RepeatRepair,
    BatchDefect,
    Critical,
    Noise,
}

impl Scenario {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Recurring => "recurring",
            Self::Intermittent => "intermittent",
            Self::Persistent => "persistent",
            Self::RepeatRepair => "repeat_repair",
            Self::BatchDefect => "batch_defect",
            Self::Critical => "critical",
            Self::Noise => "noise",
        }
    }
}

/// The ECU that reports a code: engine (0x00), transmission (0x03),
/// brakes (0x0B) or the body controller (0x21) for the body builders'
/// proprietary SPNs.
pub(crate) fn ecu_of(spn: Spn) -> Address {
    match spn.raw() {
        177 => Address(0x03),
        117 => Address(0x0B),
        s if s >= 520_192 => Address(0x21),
        _ => Address(0x00),
    }
}

/// The ECUs every CAN truck has, each broadcasting its DM1.
pub(crate) const ECUS: [Address; 4] = [Address(0x00), Address(0x03), Address(0x0B), Address(0x21)];

/// One planned episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Span {
    pub(crate) truck: usize,
    pub(crate) spn: Spn,
    pub(crate) fmi: Fmi,
    pub(crate) severity: Severity,
    pub(crate) scenario: Scenario,
    /// The first upload that lists it.
    pub(crate) start: Slot,
    /// The first later upload that does not; `None`: active at the end.
    pub(crate) end: Option<Slot>,
}

/// A corrective repair, written to `services.csv` as `repair:SPN:FMI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Repair {
    pub(crate) truck: usize,
    pub(crate) spn: Spn,
    pub(crate) fmi: Fmi,
    pub(crate) when: RepairDay,
}

/// When a repair was done: the evening (19:00 local) of a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RepairDay {
    /// A simulated day.
    InRun(u32),
    /// This many days before the first simulated day.
    Before(u32),
}

/// The workshop closes the job at 19:00 local, after the day's shifts.
const REPAIR_LOCAL_MIN: i64 = 19 * 60;

impl Repair {
    pub(crate) fn date(&self, cal: &Calendar) -> NaiveDate {
        match self.when {
            RepairDay::InRun(d) => cal.date(d),
            RepairDay::Before(k) => cal
                .start
                .checked_sub_days(chrono::Days::new(u64::from(k)))
                .unwrap_or(cal.start),
        }
    }

    pub(crate) fn at_us(&self, cal: &Calendar) -> i64 {
        local_time_us(self.date(cal), REPAIR_LOCAL_MIN)
    }
}

/// (truck, SPN, FMI).
pub(crate) type TruckCode = (usize, Spn, Fmi);
/// (model, SPN, FMI).
pub(crate) type ModelCode = (usize, Spn, Fmi);

/// What the planted scenarios must produce.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Expected {
    pub(crate) recurring: BTreeSet<TruckCode>,
    pub(crate) repeat_repairs: BTreeSet<TruckCode>,
    pub(crate) batch: Option<(ModelCode, BTreeSet<usize>)>,
}

/// Every planted scenario.
#[derive(Debug, Clone, Default)]
pub(crate) struct Planted {
    pub(crate) spans: Vec<Span>,
    pub(crate) repairs: Vec<Repair>,
    /// Uploads whose DM1 BAM is cut across two MQTT messages.
    pub(crate) splits: Vec<(usize, Slot)>,
    pub(crate) expected: Expected,
}

/// Fraction of registered trucks per scenario, and the minimum count.
const RECURRING: (usize, usize) = (50, 2);
const REPEAT: (usize, usize) = (100, 2);
const CRITICAL: (usize, usize) = (100, 1);
const PERSISTENT: (usize, usize) = (40, 2);
const INTERMITTENT: (usize, usize) = (100, 1);

fn count(registered: usize, (per, min): (usize, usize)) -> usize {
    (registered / per).max(min)
}

/// Working days of a truck with at least two uploads: (day, uploads).
fn working_days(truck: &Truck, cal: &Calendar, days: std::ops::Range<u32>) -> Vec<(u32, u32)> {
    days.filter(|&d| d < cal.days)
        .filter_map(|d| {
            let n = plan_day(truck, d, cal).uploads.len() as u32;
            (n >= 2).then_some((d, n))
        })
        .collect()
}

/// The first upload of the first day after `day` on which the truck runs.
fn first_upload_after(truck: &Truck, cal: &Calendar, day: u32) -> Option<Slot> {
    (day + 1..cal.days)
        .find(|&d| !plan_day(truck, d, cal).uploads.is_empty())
        .map(|d| Slot { day: d, idx: 0 })
}

/// `n` short episodes (1–8 uploads), each within one day: on `n` distinct
/// days when there are enough, else on the busiest day, one upload apart.
fn short_spans(rng: &mut ChaCha8Rng, days: &[(u32, u32)], n: usize) -> Option<Vec<(Slot, Slot)>> {
    if n == 0 {
        return Some(Vec::new());
    }
    if days.len() >= n {
        let mut picked = days.to_vec();
        picked.shuffle(rng);
        picked.truncate(n);
        picked.sort_unstable();
        return Some(
            picked
                .into_iter()
                .map(|(day, c)| {
                    let start = rng.random_range(0..c - 1);
                    let len = rng.random_range(1..=(c - 1 - start).min(8));
                    (
                        Slot { day, idx: start },
                        Slot {
                            day,
                            idx: start + len,
                        },
                    )
                })
                .collect(),
        );
    }
    let &(day, c) = days
        .iter()
        .max_by_key(|&&(d, c)| (c, std::cmp::Reverse(d)))?;
    (c as usize >= 2 * n).then(|| {
        (0..n as u32)
            .map(|j| {
                (
                    Slot { day, idx: 2 * j },
                    Slot {
                        day,
                        idx: 2 * j + 1,
                    },
                )
            })
            .collect()
    })
}

/// Chooses codes for planted scenarios so that no two scenarios of the
/// same model share a code on more than two trucks (three would be a
/// batch defect in a small fleet).
struct CodePicker {
    used: BTreeMap<ModelCode, BTreeSet<usize>>,
    batch: Option<ModelCode>,
}

impl CodePicker {
    fn pick<'m>(
        &mut self,
        rng: &mut ChaCha8Rng,
        truck: &Truck,
        model: &'m TruckModel,
        want: impl Fn(&FaultEntry) -> bool,
    ) -> Option<&'m FaultEntry> {
        let ok: Vec<&FaultEntry> = model
            .faults
            .iter()
            .filter(|f| want(f))
            .filter(|f| self.batch != Some((truck.model, f.spn, f.fmi)))
            .filter(|f| {
                self.used
                    .get(&(truck.model, f.spn, f.fmi))
                    .is_none_or(|t| t.len() < 2)
            })
            .collect();
        let f = *ok.get(rng.random_range(0..ok.len().max(1)))?;
        self.used
            .entry((truck.model, f.spn, f.fmi))
            .or_default()
            .insert(truck.index);
        Some(f)
    }
}

fn span(truck: &Truck, f: &FaultEntry, scenario: Scenario, start: Slot, end: Option<Slot>) -> Span {
    Span {
        truck: truck.index,
        spn: f.spn,
        fmi: f.fmi,
        severity: f.severity,
        scenario,
        start,
        end,
    }
}

/// Plans every scenario; sets the duty overrides of the trucks that stop
/// for a critical fault.
pub(crate) fn plan(cal: &Calendar, trucks: &mut [Truck], models: &[&TruckModel]) -> Planted {
    let mut rng = cal.seeds.rng(Purpose::Scenario, 0, 0);
    let mut order: Vec<usize> = trucks
        .iter()
        .filter(|t| t.registered)
        .map(|t| t.index)
        .collect();
    order.shuffle(&mut rng);
    let registered = order.len();
    let mut planted = Planted::default();
    let mut picker = CodePicker {
        used: BTreeMap::new(),
        batch: None,
    };
    let mut busy: HashSet<usize> = HashSet::new();

    plan_batch(
        cal,
        trucks,
        models,
        &order,
        &mut rng,
        &mut picker,
        &mut busy,
        &mut planted,
    );

    // Critical faults first among the single-truck scenarios: they change
    // the truck's duty, which the others must not have planned around.
    let mut left = count(registered, CRITICAL);
    for &i in &order {
        if left == 0 {
            break;
        }
        let Some(truck) = trucks.get_mut(i) else {
            continue;
        };
        if busy.contains(&i) || !matches!(truck.gateway, Gateway::Can(_)) {
            continue;
        }
        let Some(model) = models.get(truck.model) else {
            continue;
        };
        if plan_critical(cal, truck, model, &mut rng, &mut picker, &mut planted) {
            busy.insert(i);
            left -= 1;
        }
    }

    type Planner = fn(
        &Calendar,
        &Truck,
        &TruckModel,
        &mut ChaCha8Rng,
        &mut CodePicker,
        &mut Planted,
        usize,
    ) -> bool;
    let singles: [((usize, usize), Planner); 4] = [
        (RECURRING, plan_recurring),
        (REPEAT, plan_repeat_repair),
        (PERSISTENT, plan_persistent),
        (INTERMITTENT, plan_intermittent),
    ];
    for (share, planner) in singles {
        let wanted = count(registered, share);
        let mut done = 0;
        for &i in &order {
            if done == wanted {
                break;
            }
            let Some(truck) = trucks.get(i) else { continue };
            let Some(model) = models.get(truck.model) else {
                continue;
            };
            if busy.contains(&i) {
                continue;
            }
            if planner(cal, truck, model, &mut rng, &mut picker, &mut planted, done) {
                busy.insert(i);
                done += 1;
            }
        }
    }
    planted
        .spans
        .sort_by_key(|s| (s.truck, s.start, s.spn, s.fmi));
    planted
}

#[allow(clippy::too_many_arguments)]
fn plan_batch(
    cal: &Calendar,
    trucks: &[Truck],
    models: &[&TruckModel],
    order: &[usize],
    rng: &mut ChaCha8Rng,
    picker: &mut CodePicker,
    busy: &mut HashSet<usize>,
    planted: &mut Planted,
) {
    let mut per_model = vec![0usize; models.len()];
    for &i in order {
        if let Some(n) = trucks.get(i).and_then(|t| per_model.get_mut(t.model)) {
            *n += 1;
        }
    }
    // The model with the most registered trucks (the first on a tie).
    let Some((model_idx, &n)) = per_model
        .iter()
        .enumerate()
        .max_by_key(|&(i, n)| (*n, std::cmp::Reverse(i)))
    else {
        return;
    };
    let Some(model) = models.get(model_idx) else {
        return;
    };
    let wanted = n.div_ceil(4).max(3);
    if n < 3 {
        return;
    }
    let codes: Vec<&FaultEntry> = model
        .faults
        .iter()
        .filter(|f| f.severity != Severity::Critical)
        .collect();
    let Some(&code) = codes.get(rng.random_range(0..codes.len().max(1))) else {
        return;
    };
    let window = cal.days.saturating_sub(29)..cal.days;
    let mut chosen = BTreeSet::new();
    let mut spans = Vec::new();
    for &i in order {
        if chosen.len() == wanted {
            break;
        }
        let Some(truck) = trucks.get(i).filter(|t| t.model == model_idx) else {
            continue;
        };
        let days = working_days(truck, cal, window.clone());
        let n_episodes = if rng.random_bool(0.5) { 2 } else { 1 };
        let Some(found) = short_spans(rng, &days, n_episodes) else {
            continue;
        };
        for (start, end) in found {
            spans.push(span(truck, code, Scenario::BatchDefect, start, Some(end)));
        }
        chosen.insert(i);
    }
    // Too few of the model's trucks run in the window for a clear batch
    // defect: plant none rather than one on the threshold.
    if chosen.len() < 3 || chosen.len() * 5 <= n + 1 {
        return;
    }
    busy.extend(chosen.iter().copied());
    let key = (model_idx, code.spn, code.fmi);
    picker.batch = Some(key);
    planted.spans.extend(spans);
    planted.expected.batch = Some((key, chosen));
}

fn plan_critical(
    cal: &Calendar,
    truck: &mut Truck,
    model: &TruckModel,
    rng: &mut ChaCha8Rng,
    picker: &mut CodePicker,
    planted: &mut Planted,
) -> bool {
    let mut days: Vec<(u32, u32)> = working_days(truck, cal, 0..cal.days.saturating_sub(3))
        .into_iter()
        .filter(|&(_, n)| n >= 6)
        .collect();
    days.shuffle(rng);
    let engine = |f: &FaultEntry| ecu_of(f.spn) == Address(0x00);
    for (day, n) in days {
        let i0 = rng.random_range(1..n - 4);
        // A day or two in the workshop; repaired on the evening of the last.
        let workshop = day + if rng.random_bool(0.5) { 2 } else { 1 };
        let mut overrides = truck.overrides.clone();
        overrides.cut = Some(Slot { day, idx: i0 + 2 });
        overrides.off_days.extend(day + 1..=workshop);
        let before = std::mem::replace(&mut truck.overrides, overrides);
        let Some(end) = first_upload_after(truck, cal, workshop) else {
            truck.overrides = before;
            continue;
        };
        let Some(critical) = picker.pick(rng, truck, model, |f| {
            f.severity == Severity::Critical && engine(f)
        }) else {
            truck.overrides = before;
            return false;
        };
        // An overheating or low-pressure engine derates itself.
        let derate = model
            .faults
            .iter()
            .find(|f| f.spn.raw() == 1569 && f.fmi.raw() == 31 && f.severity != Severity::Critical);
        let companion = match derate {
            Some(f) => Some(f),
            None => picker.pick(rng, truck, model, |f| {
                f.severity == Severity::High && engine(f)
            }),
        };
        let start = Slot { day, idx: i0 };
        planted
            .spans
            .push(span(truck, critical, Scenario::Critical, start, Some(end)));
        if let Some(c) = companion {
            planted
                .spans
                .push(span(truck, c, Scenario::Critical, start, Some(end)));
        }
        planted.repairs.push(Repair {
            truck: truck.index,
            spn: critical.spn,
            fmi: critical.fmi,
            when: RepairDay::InRun(workshop),
        });
        planted
            .splits
            .push((truck.index, Slot { day, idx: i0 + 1 }));
        return true;
    }
    false
}

fn plan_recurring(
    cal: &Calendar,
    truck: &Truck,
    model: &TruckModel,
    rng: &mut ChaCha8Rng,
    picker: &mut CodePicker,
    planted: &mut Planted,
    _nth: usize,
) -> bool {
    let days = working_days(truck, cal, cal.days.saturating_sub(29)..cal.days);
    let n = rng.random_range(3..=5);
    let Some(found) = short_spans(rng, &days, n) else {
        return false;
    };
    let Some(f) = picker.pick(rng, truck, model, |f| f.severity != Severity::Critical) else {
        return false;
    };
    for (start, end) in found {
        planted
            .spans
            .push(span(truck, f, Scenario::Recurring, start, Some(end)));
    }
    planted
        .expected
        .recurring
        .insert((truck.index, f.spn, f.fmi));
    true
}

fn plan_intermittent(
    cal: &Calendar,
    truck: &Truck,
    model: &TruckModel,
    rng: &mut ChaCha8Rng,
    picker: &mut CodePicker,
    planted: &mut Planted,
    _nth: usize,
) -> bool {
    let recent = working_days(truck, cal, cal.days.saturating_sub(29)..cal.days);
    let Some(mut found) = short_spans(rng, &recent, 2) else {
        return false;
    };
    // Three episodes, but the first outside the 30-day window.
    if cal.days >= 40 && rng.random_bool(0.5) {
        let early = working_days(truck, cal, 0..cal.days - 32);
        if let Some(e) = short_spans(rng, &early, 1) {
            found.extend(e);
        }
    }
    let Some(f) = picker.pick(rng, truck, model, |f| f.severity != Severity::Critical) else {
        return false;
    };
    for (start, end) in found {
        planted
            .spans
            .push(span(truck, f, Scenario::Intermittent, start, Some(end)));
    }
    true
}

fn plan_persistent(
    cal: &Calendar,
    truck: &Truck,
    model: &TruckModel,
    rng: &mut ChaCha8Rng,
    picker: &mut CodePicker,
    planted: &mut Planted,
    _nth: usize,
) -> bool {
    let repaired = rng.random_bool(0.6);
    let range = if repaired {
        0..cal.days
    } else {
        cal.days.saturating_sub(10)..cal.days
    };
    let days = working_days(truck, cal, range);
    let Some(&(day, n)) = days.get(rng.random_range(0..days.len().max(1))) else {
        return false;
    };
    let start = Slot {
        day,
        idx: rng.random_range(0..n),
    };
    let (end, repair) = if repaired {
        let last = day + rng.random_range(2..=10);
        let last_working = working_days(truck, cal, day + 1..last.min(cal.days))
            .last()
            .map_or(day, |&(d, _)| d);
        match first_upload_after(truck, cal, last_working) {
            Some(end) => (Some(end), Some(last_working)),
            None => (None, None),
        }
    } else {
        (None, None)
    };
    let Some(f) = picker.pick(rng, truck, model, |f| {
        matches!(f.severity, Severity::Medium | Severity::High)
    }) else {
        return false;
    };
    planted
        .spans
        .push(span(truck, f, Scenario::Persistent, start, end));
    if let Some(d) = repair {
        planted.repairs.push(Repair {
            truck: truck.index,
            spn: f.spn,
            fmi: f.fmi,
            when: RepairDay::InRun(d),
        });
    }
    true
}

fn plan_repeat_repair(
    cal: &Calendar,
    truck: &Truck,
    model: &TruckModel,
    rng: &mut ChaCha8Rng,
    picker: &mut CodePicker,
    planted: &mut Planted,
    nth: usize,
) -> bool {
    // Alternately repaired during the run and shortly before it, so that
    // both a repair seen in the data and one only in services.csv count.
    let in_run = nth.is_multiple_of(2) && cal.days >= 8;
    let mut spans = Vec::new();
    let repair = if in_run {
        let days = working_days(truck, cal, 0..cal.days - 6);
        let Some(&(a, n)) = days.get(rng.random_range(0..days.len().max(1))) else {
            return false;
        };
        let last_working = working_days(truck, cal, a + 1..a + 3)
            .last()
            .map_or(a, |&(d, _)| d);
        let Some(end) = first_upload_after(truck, cal, last_working) else {
            return false;
        };
        let back = working_days(truck, cal, end.day + 1..(last_working + 26).min(cal.days));
        let Some(found) = short_spans(rng, &back, 1) else {
            return false;
        };
        let start = Slot {
            day: a,
            idx: rng.random_range(0..n),
        };
        spans.push((start, Some(end)));
        spans.extend(found.into_iter().map(|(s, e)| (s, Some(e))));
        RepairDay::InRun(last_working)
    } else {
        let k = rng.random_range(3..=10u32);
        let back = working_days(truck, cal, 0..(30 - k - 3).min(cal.days));
        let Some(found) = short_spans(rng, &back, 1) else {
            return false;
        };
        spans.extend(found.into_iter().map(|(s, e)| (s, Some(e))));
        RepairDay::Before(k)
    };
    let Some(f) = picker.pick(rng, truck, model, |f| {
        matches!(f.severity, Severity::Medium | Severity::High)
    }) else {
        return false;
    };
    for (start, end) in spans {
        planted
            .spans
            .push(span(truck, f, Scenario::RepeatRepair, start, end));
    }
    planted.repairs.push(Repair {
        truck: truck.index,
        spn: f.spn,
        fmi: f.fmi,
        when: repair,
    });
    planted
        .expected
        .repeat_repairs
        .insert((truck.index, f.spn, f.fmi));
    true
}

/// Chance that a working truck starts a background fault on a given day.
const P_NOISE: f64 = 0.04;
/// Day windows of the noise checks: 31 days, one more than the report's
/// 30, so that where a window starts within a day cannot matter.
const WINDOW_DAYS: u32 = 30;

#[derive(Debug, Default)]
struct PairNoise {
    starts: Vec<u32>,
    /// The end slot of its latest episode; `None` while one is open-ended.
    free_after: Option<Slot>,
}

/// Background faults, drawn day by day under the rules above.
#[derive(Debug)]
pub(crate) struct Noise {
    registered_per_model: Vec<usize>,
    /// Starts of episodes that count for batch defects: (day, truck).
    starts: HashMap<ModelCode, Vec<(u32, usize)>>,
    pairs: HashMap<TruckCode, PairNoise>,
    excluded: HashSet<TruckCode>,
    batch: Option<ModelCode>,
}

impl Noise {
    pub(crate) fn new(trucks: &[Truck], n_models: usize, planted: &Planted) -> Self {
        let mut registered_per_model = vec![0; n_models];
        for t in trucks.iter().filter(|t| t.registered) {
            if let Some(n) = registered_per_model.get_mut(t.model) {
                *n += 1;
            }
        }
        let mut starts: HashMap<ModelCode, Vec<(u32, usize)>> = HashMap::new();
        let mut excluded = HashSet::new();
        for s in &planted.spans {
            excluded.insert((s.truck, s.spn, s.fmi));
            if let Some(t) = trucks.get(s.truck).filter(|t| t.registered) {
                starts
                    .entry((t.model, s.spn, s.fmi))
                    .or_default()
                    .push((s.start.day, s.truck));
            }
        }
        for r in &planted.repairs {
            excluded.insert((r.truck, r.spn, r.fmi));
        }
        Self {
            registered_per_model,
            starts,
            pairs: HashMap::new(),
            excluded,
            batch: planted.expected.batch.as_ref().map(|(k, _)| *k),
        }
    }

    /// At most one background episode for `truck` starting on `day`.
    pub(crate) fn draw(
        &mut self,
        cal: &Calendar,
        truck: &Truck,
        model: &TruckModel,
        day: u32,
        plan: &DayPlan,
    ) -> Option<Span> {
        let n = plan.uploads.len() as u32;
        let mut rng = cal
            .seeds
            .rng(Purpose::Noise, truck.index as u64, u64::from(day));
        if n < 2 || !rng.random_bool(P_NOISE) {
            return None;
        }
        let codes: Vec<&FaultEntry> = model
            .faults
            .iter()
            .filter(|f| f.severity != Severity::Critical)
            .collect();
        let f = *codes.get(rng.random_range(0..codes.len().max(1)))?;
        let start = Slot {
            day,
            idx: rng.random_range(0..n - 1),
        };
        let end = if rng.random_bool(0.12) {
            // Still there the next working day or the one after.
            (day + 1..(day + 4).min(cal.days))
                .map(|d| (d, plan_day(truck, d, cal).uploads.len() as u32))
                .find(|&(_, c)| c > 0)
                .map(|(d, c)| Slot {
                    day: d,
                    idx: rng.random_range(0..c.min(5)),
                })
        } else {
            None
        }
        .unwrap_or(Slot {
            day,
            idx: start.idx + rng.random_range(1..=(n - 1 - start.idx).min(12)),
        });
        let key = (truck.index, f.spn, f.fmi);
        if !self.allowed(truck, key, start) {
            return None;
        }
        let pair = self.pairs.entry(key).or_default();
        pair.starts.push(day);
        pair.free_after = Some(end);
        if truck.registered {
            self.starts
                .entry((truck.model, f.spn, f.fmi))
                .or_default()
                .push((day, truck.index));
        }
        Some(Span {
            truck: truck.index,
            spn: f.spn,
            fmi: f.fmi,
            severity: f.severity,
            scenario: Scenario::Noise,
            start,
            end: Some(end),
        })
    }

    fn allowed(&self, truck: &Truck, key: TruckCode, start: Slot) -> bool {
        let (_, spn, fmi) = key;
        if self.excluded.contains(&key) || self.batch == Some((truck.model, spn, fmi)) {
            return false;
        }
        let day = start.day;
        if let Some(p) = self.pairs.get(&key) {
            // Still active, or ending exactly here (the episodes would merge).
            if p.free_after.is_none_or(|free| free >= start) {
                return false;
            }
            let recent = p.starts.iter().filter(|&&d| d + WINDOW_DAYS >= day).count();
            if recent >= 2 {
                return false;
            }
        }
        if !truck.registered {
            return true;
        }
        let n = self
            .registered_per_model
            .get(truck.model)
            .copied()
            .unwrap_or(0);
        let starts = self.starts.get(&(truck.model, spn, fmi));
        (day..=day + WINDOW_DAYS).all(|e| {
            let mut trucks: BTreeSet<usize> = starts
                .into_iter()
                .flatten()
                .filter(|&&(d, _)| d <= e && d + WINDOW_DAYS >= e)
                .map(|&(_, t)| t)
                .collect();
            trucks.insert(truck.index);
            trucks.len() <= 2 || trucks.len() * 5 < n
        })
    }
}

/// A fault active at an upload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Active {
    pub(crate) span: Span,
    /// Index of its episode in the ground truth.
    pub(crate) episode: usize,
    pub(crate) oc: u8,
}

/// The planned and active faults of one truck, advanced upload by upload.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// Not yet started, latest start first.
    pending: Vec<Span>,
    pub(crate) active: Vec<Active>,
}

impl Timeline {
    pub(crate) fn add(&mut self, span: Span) {
        let at = self.pending.partition_point(|s| s.start > span.start);
        self.pending.insert(at, span);
    }

    /// The spans starting at `slot`, after removing (and returning) those
    /// that end there. A pending span that starts before `slot` was
    /// planned on an upload that never happened: returned as the error.
    pub(crate) fn advance(
        &mut self,
        slot: Slot,
        ended: &mut Vec<Active>,
        started: &mut Vec<Span>,
    ) -> Result<(), Span> {
        let mut i = 0;
        while let Some(a) = self.active.get(i) {
            if a.span.end == Some(slot) {
                ended.push(self.active.remove(i));
            } else {
                i += 1;
            }
        }
        while let Some(&s) = self.pending.last() {
            if s.start > slot {
                break;
            }
            self.pending.pop();
            if s.start < slot {
                return Err(s);
            }
            started.push(s);
        }
        Ok(())
    }

    /// Spans that should have ended or started by now but did not.
    pub(crate) fn leftovers(&self) -> impl Iterator<Item = &Span> {
        self.pending.iter().chain(
            self.active
                .iter()
                .map(|a| &a.span)
                .filter(|s| s.end.is_some()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::TruckKind;
    use crate::simulate::fleet::Week;
    use crate::simulate::fleet::tests::truck_for_tests;
    use crate::simulate::rng::Seeds;

    fn slot(day: u32, idx: u32) -> Slot {
        Slot { day, idx }
    }

    #[test]
    fn ecus_by_spn() {
        assert_eq!(ecu_of(Spn::new(110).unwrap()), Address(0));
        assert_eq!(ecu_of(Spn::new(177).unwrap()), Address(3));
        assert_eq!(ecu_of(Spn::new(117).unwrap()), Address(0x0B));
        assert_eq!(ecu_of(Spn::new(520_211).unwrap()), Address(0x21));
    }

    #[test]
    fn short_spans_are_separate_episodes() {
        let mut rng = Seeds::new(1).rng(Purpose::Scenario, 0, 0);
        let days = [(1, 90), (2, 5), (4, 2), (7, 60)];
        for _ in 0..50 {
            let s = short_spans(&mut rng, &days, 3).unwrap();
            assert_eq!(s.len(), 3);
            for &(a, b) in &s {
                assert_eq!(a.day, b.day);
                assert!(a.idx < b.idx);
                let c = days.iter().find(|d| d.0 == a.day).unwrap().1;
                // The end is a real upload that does not list the fault.
                assert!(b.idx < c);
            }
            assert!(s.windows(2).all(|w| w[0].1 < w[1].0));
        }
        // One busy day takes them all, one upload apart.
        let s = short_spans(&mut rng, &[(3, 8)], 4).unwrap();
        assert_eq!(s[3], (slot(3, 6), slot(3, 7)));
        assert!(short_spans(&mut rng, &[(3, 7)], 4).is_none());
    }

    #[test]
    fn timeline_starts_and_ends_on_slots() {
        let t = truck_for_tests(TruckKind::Sweeper, Week::Rota);
        let f = |start, end| Span {
            truck: t.index,
            spn: Spn::new(100).unwrap(),
            fmi: Fmi::new(1).unwrap(),
            severity: Severity::High,
            scenario: Scenario::Noise,
            start,
            end,
        };
        let mut tl = Timeline::default();
        tl.add(f(slot(0, 3), Some(slot(1, 0))));
        tl.add(f(slot(0, 1), Some(slot(0, 2))));
        let (mut ended, mut started) = (Vec::new(), Vec::new());
        tl.advance(slot(0, 0), &mut ended, &mut started).unwrap();
        assert!(started.is_empty());
        tl.advance(slot(0, 1), &mut ended, &mut started).unwrap();
        assert_eq!(started.len(), 1);
        for s in started.drain(..) {
            tl.active.push(Active {
                span: s,
                episode: 0,
                oc: 1,
            });
        }
        tl.advance(slot(0, 2), &mut ended, &mut started).unwrap();
        assert_eq!(ended.len(), 1);
        // Slot (0, 3) never came: the plan and the day disagree.
        assert!(tl.advance(slot(0, 4), &mut ended, &mut started).is_err());
    }
}
