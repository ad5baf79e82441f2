//! Background faults that cannot change the planted outcome.

use std::collections::{BTreeSet, HashMap, HashSet};

use rand::RngExt;

use super::{ModelCode, Planted, Scenario, Span, TruckCode};
use crate::catalog::{FaultEntry, Severity, TruckModel};
use crate::simulate::duty::{Calendar, DayPlan, Slot, plan_day};
use crate::simulate::fleet::Truck;
use crate::simulate::rng::Purpose;

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
