//! Planting the scenarios of the module documentation: which truck gets
//! which one, on which upload slots, with which code.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use fleetcare_ingest::j1939::Address;
use rand::RngExt;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{ModelCode, Planted, Repair, RepairDay, Scenario, Span, ecu_of};
use crate::catalog::{FaultEntry, Severity, TruckModel};
use crate::simulate::duty::{Calendar, Slot, plan_day};
use crate::simulate::fleet::{Gateway, Truck};
use crate::simulate::rng::Purpose;

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
    let mut planner = Planner {
        cal,
        rng,
        picker: CodePicker {
            used: BTreeMap::new(),
            batch: None,
        },
        busy: HashSet::new(),
        planted: Planted::default(),
    };

    planner.batch(trucks, models, &order);

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
        if planner.busy.contains(&i) || !matches!(truck.gateway, Gateway::Can(_)) {
            continue;
        }
        let Some(model) = models.get(truck.model) else {
            continue;
        };
        if planner.critical(truck, model) {
            planner.busy.insert(i);
            left -= 1;
        }
    }

    type Single<'p> = fn(&mut Planner<'p>, &Truck, &TruckModel, usize) -> bool;
    let singles: [((usize, usize), Single<'_>); 4] = [
        (RECURRING, Planner::recurring),
        (REPEAT, Planner::repeat_repair),
        (PERSISTENT, Planner::persistent),
        (INTERMITTENT, Planner::intermittent),
    ];
    for (share, single) in singles {
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
            if planner.busy.contains(&i) {
                continue;
            }
            if single(&mut planner, truck, model, done) {
                planner.busy.insert(i);
                done += 1;
            }
        }
    }
    let mut planted = planner.planted;
    planted
        .spans
        .sort_by_key(|s| (s.truck, s.start, s.spn, s.fmi));
    planted
}

/// What the scenario planners share: the calendar, one random stream (so
/// a seed plans the same fleet), the code picker, the trucks already given
/// a scenario, and what has been planted so far.
struct Planner<'a> {
    cal: &'a Calendar,
    rng: ChaCha8Rng,
    picker: CodePicker,
    /// Trucks that have their one scenario.
    busy: HashSet<usize>,
    planted: Planted,
}

impl Planner<'_> {
    /// A batch defect on the model with the most registered trucks.
    fn batch(&mut self, trucks: &[Truck], models: &[&TruckModel], order: &[usize]) {
        let (cal, rng) = (self.cal, &mut self.rng);
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
        self.busy.extend(chosen.iter().copied());
        let key = (model_idx, code.spn, code.fmi);
        self.picker.batch = Some(key);
        self.planted.spans.extend(spans);
        self.planted.expected.batch = Some((key, chosen));
    }

    fn critical(&mut self, truck: &mut Truck, model: &TruckModel) -> bool {
        let (cal, rng, picker, planted) =
            (self.cal, &mut self.rng, &mut self.picker, &mut self.planted);
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
            let derate = model.faults.iter().find(|f| {
                f.spn.raw() == 1569 && f.fmi.raw() == 31 && f.severity != Severity::Critical
            });
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

    fn recurring(&mut self, truck: &Truck, model: &TruckModel, _nth: usize) -> bool {
        let (cal, rng, picker, planted) =
            (self.cal, &mut self.rng, &mut self.picker, &mut self.planted);
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

    fn intermittent(&mut self, truck: &Truck, model: &TruckModel, _nth: usize) -> bool {
        let (cal, rng, picker, planted) =
            (self.cal, &mut self.rng, &mut self.picker, &mut self.planted);
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

    fn persistent(&mut self, truck: &Truck, model: &TruckModel, _nth: usize) -> bool {
        let (cal, rng, picker, planted) =
            (self.cal, &mut self.rng, &mut self.picker, &mut self.planted);
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

    fn repeat_repair(&mut self, truck: &Truck, model: &TruckModel, nth: usize) -> bool {
        let (cal, rng, picker, planted) =
            (self.cal, &mut self.rng, &mut self.picker, &mut self.planted);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::rng::Seeds;

    fn slot(day: u32, idx: u32) -> Slot {
        Slot { day, idx }
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
}
