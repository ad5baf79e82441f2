//! Drives every truck through the simulated days: the duty plan gives the
//! uploads and the meters, the fault timeline the active codes, the
//! gateway the messages, and the glitches their delivery. Records what each
//! episode's first and last snapshot really carried, for the ground truth.

use std::collections::{BTreeMap, HashMap, HashSet};

use fleetcare_ingest::j1939::{Address, Fmi, Spn};
use rand::RngExt;

use super::SimulateError;
use super::duty::{Calendar, Meters, Slot, plan_day};
use super::faults::{Active, ECUS, Noise, Planted, Scenario, Span, Timeline, ecu_of};
use super::fleet::{Gateway, Truck};
use super::gateway::{Garbage, Sent, Topics, can_upload, garbage, telemetry_upload};
use super::glitches::{DayMsg, Delivered, Extra, Part, schedule};
use super::output::Recorder;
use super::rng::Purpose;
use crate::catalog::{Severity, TruckModel};

/// Chance that a BAM upload is cut across two MQTT messages.
const P_SPLIT: f64 = 0.25;
/// Chance that a garbage message follows an upload.
const P_GARBAGE: f64 = 0.0008;

/// One fault episode as sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Episode {
    pub(crate) truck: usize,
    pub(crate) spn: Spn,
    pub(crate) fmi: Fmi,
    pub(crate) sa: Address,
    pub(crate) severity: Severity,
    pub(crate) scenario: Scenario,
    pub(crate) started_us: i64,
    pub(crate) ended_us: Option<i64>,
}

/// What was sent, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Distinct valid messages (a cut BAM's halves count as two).
    pub(crate) valid: u64,
    pub(crate) duplicates: u64,
    pub(crate) out_of_order: u64,
    pub(crate) split_bam: u64,
    pub(crate) garbage: BTreeMap<Garbage, u64>,
}

#[derive(Debug, Default)]
struct TruckState {
    day_start: Meters,
    timeline: Timeline,
    /// The fault state of the last upload; `None` before the first.
    last_state: Option<Vec<(u8, u32, u8)>>,
    occurrences: HashMap<(Spn, Fmi), u8>,
    seq: u64,
    /// The meters as last sent; `None` until the first upload.
    sent: Option<Sent>,
}

/// The simulation's moving parts.
#[derive(Debug)]
pub(crate) struct Drive<'a> {
    cal: &'a Calendar,
    trucks: &'a [Truck],
    models: &'a [&'a TruckModel],
    prefix: &'a str,
    states: Vec<TruckState>,
    noise: Noise,
    splits: HashSet<(usize, Slot)>,
    pub(crate) episodes: Vec<Episode>,
    pub(crate) counts: Counts,
    /// One garbage message of each kind is sent early, so that even a
    /// small run has them all.
    all_garbage_sent: bool,
}

impl<'a> Drive<'a> {
    pub(crate) fn new(
        cal: &'a Calendar,
        trucks: &'a [Truck],
        models: &'a [&'a TruckModel],
        prefix: &'a str,
        planted: &Planted,
    ) -> Self {
        let mut states: Vec<TruckState> = trucks
            .iter()
            .map(|t| TruckState {
                day_start: t.start_meters,
                ..TruckState::default()
            })
            .collect();
        for s in &planted.spans {
            if let Some(st) = states.get_mut(s.truck) {
                st.timeline.add(*s);
            }
        }
        Self {
            cal,
            trucks,
            models,
            prefix,
            states,
            noise: Noise::new(trucks, models.len(), planted),
            splits: planted.splits.iter().copied().collect(),
            episodes: Vec::new(),
            counts: Counts::default(),
            all_garbage_sent: false,
        }
    }

    /// Generates `day` for every truck into the recorder.
    pub(crate) fn day(&mut self, day: u32, rec: &mut Recorder) -> Result<(), SimulateError> {
        let mut delivered = Vec::new();
        for truck in self.trucks {
            delivered.clear();
            self.truck_day(truck, day, &mut delivered)?;
            let Some(st) = self.states.get_mut(truck.index) else {
                continue;
            };
            for d in &delivered {
                st.seq += 1;
                rec.push(d.delivery_us, truck.index, st.seq, &d.topic, &d.payload);
            }
        }
        Ok(())
    }

    fn truck_day(
        &mut self,
        truck: &Truck,
        day: u32,
        out: &mut Vec<Delivered>,
    ) -> Result<(), SimulateError> {
        let cal = self.cal;
        let plan = plan_day(truck, day, cal);
        let model = self
            .models
            .get(truck.model)
            .ok_or_else(|| SimulateError::Internal(format!("truck {} has no model", truck.id)))?;
        let noise = self.noise.draw(cal, truck, model, day, &plan);
        let Some(st) = self.states.get_mut(truck.index) else {
            return Ok(());
        };
        if let Some(span) = noise {
            st.timeline.add(span);
        }
        let topics = Topics {
            prefix: self.prefix,
            fleet: &truck.fleet,
            vehicle: &truck.id,
        };
        let (can_topic, telemetry_topic) = (topics.can(), topics.telemetry());
        let mut gw = cal
            .seeds
            .rng(Purpose::Gateway, truck.index as u64, u64::from(day));
        let mut grng = cal
            .seeds
            .rng(Purpose::Garbage, truck.index as u64, u64::from(day));
        let mut msgs: Vec<DayMsg> = Vec::with_capacity(plan.uploads.len() + 2);
        let mut extras: Vec<Extra> = Vec::new();
        let (mut ended, mut started) = (Vec::new(), Vec::new());
        for (idx, &upload) in plan.uploads.iter().enumerate() {
            let slot = Slot {
                day,
                idx: idx as u32,
            };
            ended.clear();
            started.clear();
            st.timeline
                .advance(slot, &mut ended, &mut started)
                .map_err(|s| missed(truck, &s))?;
            for s in started.drain(..) {
                let oc = st.occurrences.entry((s.spn, s.fmi)).or_insert(0);
                *oc = oc.saturating_add(1).min(126);
                self.episodes.push(Episode {
                    truck: truck.index,
                    spn: s.spn,
                    fmi: s.fmi,
                    sa: ecu_of(s.spn),
                    severity: s.severity,
                    scenario: s.scenario,
                    started_us: 0,
                    ended_us: None,
                });
                st.timeline.active.push(Active {
                    span: s,
                    episode: self.episodes.len() - 1,
                    oc: *oc,
                });
            }
            let meters = plan.meters_at(st.day_start, upload);
            let active = &st.timeline.active;
            // When each ECU's snapshot is dated: starts and ends of episodes.
            let snapshot_of: Box<dyn Fn(Address) -> i64>;
            match truck.gateway {
                Gateway::Can(odometer) => {
                    let split =
                        self.splits.contains(&(truck.index, slot)) || gw.random_bool(P_SPLIT);
                    let u = can_upload(&mut gw, upload.t_us, meters, odometer, active, split);
                    let snaps = u.snapshot_us;
                    snapshot_of = Box::new(move |sa| {
                        ECUS.iter()
                            .position(|&e| e == sa)
                            .and_then(|k| snaps.get(k).copied())
                            .unwrap_or_default()
                    });
                    st.sent = Some(u.sent);
                    let transition = is_transition(&mut st.last_state, active);
                    match u.rest {
                        Some(rest) => {
                            self.counts.split_bam += 1;
                            msgs.push(DayMsg {
                                topic: can_topic.clone(),
                                payload: u.payload,
                                event_us: u.last_us,
                                transition,
                                part: Part::First,
                            });
                            msgs.push(DayMsg {
                                topic: can_topic.clone(),
                                payload: rest,
                                event_us: u.rest_last_us,
                                transition,
                                part: Part::Second,
                            });
                        }
                        None => msgs.push(DayMsg {
                            topic: can_topic.clone(),
                            payload: u.payload,
                            event_us: u.last_us,
                            transition,
                            part: Part::Whole,
                        }),
                    }
                }
                Gateway::Telemetry => {
                    let (payload, sent) = telemetry_upload(upload.t_us, meters, active);
                    st.sent = Some(sent);
                    let t = upload.t_us;
                    snapshot_of = Box::new(move |_| t);
                    let transition = is_transition(&mut st.last_state, active);
                    msgs.push(DayMsg {
                        topic: telemetry_topic.clone(),
                        payload,
                        event_us: t,
                        transition,
                        part: Part::Whole,
                    });
                }
            }
            for a in st.timeline.active.iter().filter(|a| a.span.start == slot) {
                if let Some(e) = self.episodes.get_mut(a.episode) {
                    e.started_us = snapshot_of(e.sa);
                }
            }
            for a in &ended {
                if let Some(e) = self.episodes.get_mut(a.episode) {
                    e.ended_us = Some(snapshot_of(e.sa));
                }
            }
            // Garbage goes after an upload, never before the truck's first
            // reading (a spike there would be taken as the truck's meter).
            let anchor = msgs.len() - 1;
            let kinds: Vec<Garbage> = if !self.all_garbage_sent && idx == 1 {
                self.all_garbage_sent = true;
                Garbage::ALL.to_vec()
            } else if grng.random_bool(P_GARBAGE) {
                vec![
                    Garbage::ALL
                        .get(grng.random_range(0..Garbage::ALL.len()))
                        .copied()
                        .unwrap_or(Garbage::RandomBytes),
                ]
            } else {
                Vec::new()
            };
            for kind in kinds {
                let t = upload.t_us + 1_000_000;
                let telemetry = truck.gateway == Gateway::Telemetry;
                let (topic, payload) = garbage(kind, &mut grng, topics, t, meters, telemetry);
                *self.counts.garbage.entry(kind).or_default() += 1;
                extras.push(Extra {
                    anchor,
                    topic,
                    payload,
                });
            }
        }
        st.day_start = st.day_start.plus(plan.usage());
        self.counts.valid += msgs.len() as u64;
        let mut rng = cal
            .seeds
            .rng(Purpose::Glitch, truck.index as u64, u64::from(day));
        let g = schedule(&mut rng, msgs, extras, out);
        self.counts.duplicates += g.duplicates;
        self.counts.out_of_order += g.out_of_order;
        Ok(())
    }

    /// The meters each truck sent last (`None`: it never sent).
    pub(crate) fn sent(&self) -> Vec<Option<Sent>> {
        self.states.iter().map(|s| s.sent).collect()
    }

    /// Checks that every planned episode happened as planned.
    pub(crate) fn finish(&self) -> Result<(), SimulateError> {
        for (st, truck) in self.states.iter().zip(self.trucks) {
            if let Some(s) = st.timeline.leftovers().next() {
                return Err(missed(truck, s));
            }
        }
        Ok(())
    }
}

fn missed(truck: &Truck, s: &Span) -> SimulateError {
    SimulateError::Internal(format!(
        "{} {}:{} was planned on uploads that {} did not make ({:?} to {:?})",
        s.scenario.as_str(),
        s.spn,
        s.fmi,
        truck.id,
        s.start,
        s.end
    ))
}

/// Records this upload's fault state; true when it differs from the last.
fn is_transition(last: &mut Option<Vec<(u8, u32, u8)>>, active: &[Active]) -> bool {
    let mut now: Vec<(u8, u32, u8)> = active
        .iter()
        .map(|a| (ecu_of(a.span.spn).0, a.span.spn.raw(), a.span.fmi.raw()))
        .collect();
    now.sort_unstable();
    let changed = last.as_ref() != Some(&now);
    *last = Some(now);
    changed
}
