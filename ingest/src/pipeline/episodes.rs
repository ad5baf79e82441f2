//! Fault episodes (contract C5): a DTC (vehicle, SPN, FMI) is active from the
//! first snapshot that lists it until the first later snapshot of the same
//! source that does not. A source is one ECU's DM1 or the vehicle's
//! telemetry list; a gap in data does not end an episode.
//!
//! DM1 repeats every second while a fault is active; only the changes are
//! returned, so storage does not grow with repetition.

use std::collections::HashSet;

use crate::j1939::{Address, Dtc, Fmi, Lamps, Spn};
use crate::timestamp::Timestamp;

/// Who reported a list of active faults.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum FaultSource {
    /// One ECU's DM1, by source address.
    Ecu(Address),
    /// The fault list of the vehicle's telemetry messages.
    Telemetry,
}

/// One snapshot: every fault a source says is active at `ts`.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub ts: Timestamp,
    pub source: FaultSource,
    pub lamps: Lamps,
    /// Each DTC with the ECU that reported it.
    pub dtcs: &'a [(Dtc, Address)],
}

/// A change of fault state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeChange {
    Started {
        ts: Timestamp,
        source: FaultSource,
        ecu: Address,
        dtc: Dtc,
        /// The lamps of the snapshot that started it.
        lamps: Lamps,
    },
    Ended {
        ts: Timestamp,
        source: FaultSource,
        spn: Spn,
        fmi: Fmi,
        started: Timestamp,
    },
    /// The source's lamp status changed (also on its first snapshot).
    LampsChanged {
        ts: Timestamp,
        source: FaultSource,
        lamps: Lamps,
    },
}

/// What became of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// Older than the source's latest snapshot (a gateway delivered out of
    /// order): it cannot change the present state and is left out.
    Stale,
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct ActiveFault {
    spn: Spn,
    fmi: Fmi,
    since: Timestamp,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SourceState {
    source: FaultSource,
    last_ts: Timestamp,
    lamps: Lamps,
    active: Vec<ActiveFault>,
}

/// The fault state of one vehicle.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct FaultTracker {
    sources: Vec<SourceState>,
}

/// Fault lists longer than this are matched through a hash set rather
/// than by scanning: a list may hold hundreds of DTCs (a DM1 up to 445),
/// and a scan per DTC would cost their square.
const SCAN_UP_TO: usize = 16;

/// A DTC as an episode knows it.
fn key(spn: Spn, fmi: Fmi) -> (u32, u8) {
    (spn.raw(), fmi.raw())
}

impl FaultTracker {
    /// Faults active now, over all sources.
    pub fn active_count(&self) -> usize {
        self.sources.iter().map(|s| s.active.len()).sum()
    }

    /// True when no source has reported yet: the state of a vehicle never seen.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Applies one snapshot, pushing what changed into `out`.
    pub fn apply(&mut self, snap: Snapshot<'_>, out: &mut Vec<EpisodeChange>) -> Applied {
        let i = match self.sources.iter().position(|s| s.source == snap.source) {
            Some(i) => i,
            None => {
                self.sources.push(SourceState {
                    source: snap.source,
                    last_ts: snap.ts,
                    lamps: snap.lamps,
                    active: Vec::new(),
                });
                out.push(EpisodeChange::LampsChanged {
                    ts: snap.ts,
                    source: snap.source,
                    lamps: snap.lamps,
                });
                self.sources.len() - 1
            }
        };
        let Some(state) = self.sources.get_mut(i) else {
            return Applied::Stale;
        };
        if snap.ts < state.last_ts {
            return Applied::Stale;
        }
        state.last_ts = snap.ts;
        if state.lamps != snap.lamps {
            state.lamps = snap.lamps;
            out.push(EpisodeChange::LampsChanged {
                ts: snap.ts,
                source: snap.source,
                lamps: snap.lamps,
            });
        }
        let listed_set: Option<HashSet<(u32, u8)>> = (snap.dtcs.len() > SCAN_UP_TO)
            .then(|| snap.dtcs.iter().map(|(d, _)| key(d.spn, d.fmi)).collect());
        let listed = |f: &ActiveFault| match &listed_set {
            Some(set) => set.contains(&key(f.spn, f.fmi)),
            None => snap
                .dtcs
                .iter()
                .any(|(d, _)| d.spn == f.spn && d.fmi == f.fmi),
        };
        state.active.retain(|f| {
            let keep = listed(f);
            if !keep {
                out.push(EpisodeChange::Ended {
                    ts: snap.ts,
                    source: snap.source,
                    spn: f.spn,
                    fmi: f.fmi,
                    started: f.since,
                });
            }
            keep
        });
        let mut active_set: Option<HashSet<(u32, u8)>> =
            listed_set.map(|_| state.active.iter().map(|f| key(f.spn, f.fmi)).collect());
        for &(dtc, ecu) in snap.dtcs {
            let known = match &mut active_set {
                // `insert` is false when it was there: listed twice in one
                // snapshot is one episode.
                Some(set) => !set.insert(key(dtc.spn, dtc.fmi)),
                None => state
                    .active
                    .iter()
                    .any(|f| f.spn == dtc.spn && f.fmi == dtc.fmi),
            };
            if !known {
                state.active.push(ActiveFault {
                    spn: dtc.spn,
                    fmi: dtc.fmi,
                    since: snap.ts,
                });
                out.push(EpisodeChange::Started {
                    ts: snap.ts,
                    source: snap.source,
                    ecu,
                    dtc,
                    lamps: snap.lamps,
                });
            }
        }
        Applied::Applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::j1939::{LampStatus, OccurrenceCount};

    fn dtc(spn: u32, fmi: u8) -> (Dtc, Address) {
        let d = Dtc::new(
            Spn::new(spn).unwrap(),
            Fmi::new(fmi).unwrap(),
            OccurrenceCount::new(1).unwrap(),
        );
        (d, Address(0))
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_micros(s * 1_000_000)
    }

    fn snap(
        t: &mut FaultTracker,
        s: i64,
        source: FaultSource,
        dtcs: &[(Dtc, Address)],
    ) -> Vec<EpisodeChange> {
        let mut out = Vec::new();
        t.apply(
            Snapshot {
                ts: at(s),
                source,
                lamps: Lamps::ALL_OFF,
                dtcs,
            },
            &mut out,
        );
        out.retain(|c| !matches!(c, EpisodeChange::LampsChanged { .. }));
        out
    }

    fn kinds(changes: &[EpisodeChange]) -> Vec<(char, u32, i64)> {
        changes
            .iter()
            .filter_map(|c| match c {
                EpisodeChange::Started { dtc, ts, .. } => {
                    Some(('+', dtc.spn.raw(), ts.as_micros() / 1_000_000))
                }
                EpisodeChange::Ended { spn, ts, .. } => {
                    Some(('-', spn.raw(), ts.as_micros() / 1_000_000))
                }
                EpisodeChange::LampsChanged { .. } => None,
            })
            .collect()
    }

    const ECU0: FaultSource = FaultSource::Ecu(Address(0));

    #[test]
    fn repetition_is_not_a_change() {
        let mut t = FaultTracker::default();
        assert_eq!(
            kinds(&snap(&mut t, 1, ECU0, &[dtc(110, 0)])),
            [('+', 110, 1)]
        );
        for s in 2..100 {
            assert!(snap(&mut t, s, ECU0, &[dtc(110, 0)]).is_empty());
        }
        assert_eq!(kinds(&snap(&mut t, 100, ECU0, &[])), [('-', 110, 100)]);
    }

    #[test]
    fn intermittent_fault_gives_an_episode_per_appearance() {
        let mut t = FaultTracker::default();
        let mut all = Vec::new();
        for (s, on) in [
            (1, true),
            (2, true),
            (3, false),
            (4, true),
            (5, false),
            (6, true),
        ] {
            let list: &[_] = if on { &[dtc(100, 1)] } else { &[] };
            all.extend(snap(&mut t, s, ECU0, list));
        }
        assert_eq!(
            kinds(&all),
            [
                ('+', 100, 1),
                ('-', 100, 3),
                ('+', 100, 4),
                ('-', 100, 5),
                ('+', 100, 6)
            ]
        );
    }

    #[test]
    fn sources_are_independent_and_gaps_do_not_end_episodes() {
        let mut t = FaultTracker::default();
        snap(&mut t, 1, ECU0, &[dtc(110, 0)]);
        // Another ECU's empty DM1 does not end ECU 0's fault, nor does a day without data.
        assert!(snap(&mut t, 2, FaultSource::Ecu(Address(3)), &[]).is_empty());
        assert!(snap(&mut t, 86_400, ECU0, &[dtc(110, 0)]).is_empty());
        assert_eq!(t.active_count(), 1);
        let c = snap(&mut t, 86_401, ECU0, &[]);
        assert!(matches!(c[..], [EpisodeChange::Ended { started, .. }] if started == at(1)));
    }

    #[test]
    fn stale_snapshots_change_nothing() {
        let mut t = FaultTracker::default();
        snap(&mut t, 10, ECU0, &[dtc(110, 0)]);
        let mut out = Vec::new();
        let r = t.apply(
            Snapshot {
                ts: at(5),
                source: ECU0,
                lamps: Lamps::ALL_OFF,
                dtcs: &[],
            },
            &mut out,
        );
        assert_eq!(r, Applied::Stale);
        assert!(out.is_empty());
        assert_eq!(t.active_count(), 1);
    }

    #[test]
    fn lamp_changes_are_reported() {
        let mut t = FaultTracker::default();
        let red = Lamps {
            red_stop: LampStatus::On,
            ..Lamps::ALL_OFF
        };
        let mut out = Vec::new();
        t.apply(
            Snapshot {
                ts: at(1),
                source: ECU0,
                lamps: red,
                dtcs: &[dtc(100, 1)],
            },
            &mut out,
        );
        assert!(matches!(out[0], EpisodeChange::LampsChanged { lamps, .. } if lamps == red));
        assert!(matches!(out[1], EpisodeChange::Started { lamps, .. } if lamps == red));
        out.clear();
        t.apply(
            Snapshot {
                ts: at(2),
                source: ECU0,
                lamps: red,
                dtcs: &[dtc(100, 1)],
            },
            &mut out,
        );
        assert!(out.is_empty());
        t.apply(
            Snapshot {
                ts: at(3),
                source: ECU0,
                lamps: Lamps::ALL_OFF,
                dtcs: &[],
            },
            &mut out,
        );
        assert!(
            matches!(out[0], EpisodeChange::LampsChanged { lamps, .. } if lamps == Lamps::ALL_OFF)
        );
        assert!(matches!(out[1], EpisodeChange::Ended { .. }));
    }

    /// The matching of long lists through hash sets gives what the plain
    /// scan gives: a model of the scan, fed the same snapshots.
    mod long_lists {
        use super::*;
        use proptest::prelude::*;

        /// A source's latest time and active (spn, fmi, since).
        type ModelSource = (FaultSource, Timestamp, Vec<(u32, u8, Timestamp)>);

        /// Active faults per source, as the scan keeps them.
        #[derive(Default)]
        struct Model {
            sources: Vec<ModelSource>,
        }

        impl Model {
            /// (started?, spn, fmi) of each change, in order; lamps left out.
            fn apply(
                &mut self,
                ts: Timestamp,
                source: FaultSource,
                dtcs: &[(Dtc, Address)],
            ) -> Vec<(bool, u32, u8)> {
                let i = match self.sources.iter().position(|s| s.0 == source) {
                    Some(i) => i,
                    None => {
                        self.sources.push((source, ts, Vec::new()));
                        self.sources.len() - 1
                    }
                };
                let state = &mut self.sources[i];
                if ts < state.1 {
                    return Vec::new();
                }
                state.1 = ts;
                let mut out = Vec::new();
                state.2.retain(|&(spn, fmi, _)| {
                    let keep = dtcs
                        .iter()
                        .any(|(d, _)| d.spn.raw() == spn && d.fmi.raw() == fmi);
                    if !keep {
                        out.push((false, spn, fmi));
                    }
                    keep
                });
                for (d, _) in dtcs {
                    let (spn, fmi) = (d.spn.raw(), d.fmi.raw());
                    if !state.2.iter().any(|&(s, f, _)| s == spn && f == fmi) {
                        state.2.push((spn, fmi, ts));
                        out.push((true, spn, fmi));
                    }
                }
                out
            }
        }

        proptest! {
            #[test]
            fn long_lists_change_what_the_scan_changes(
                snaps in prop::collection::vec(
                    (0i64..50, any::<bool>(), prop::collection::vec((0u32..24, 0u8..2), 0..60)),
                    1..40,
                ),
            ) {
                let mut tracker = FaultTracker::default();
                let mut model = Model::default();
                for (s, ecu, list) in snaps {
                    let source = if ecu { ECU0 } else { FaultSource::Telemetry };
                    let list: Vec<(Dtc, Address)> = list
                        .into_iter()
                        .map(|(spn, fmi)| dtc(spn + 1, fmi))
                        .collect();
                    let mut out = Vec::new();
                    tracker.apply(
                        Snapshot { ts: at(s), source, lamps: Lamps::ALL_OFF, dtcs: &list },
                        &mut out,
                    );
                    let got: Vec<(bool, u32, u8)> = out
                        .iter()
                        .filter_map(|c| match c {
                            EpisodeChange::Started { dtc, .. } => Some((true, dtc.spn.raw(), dtc.fmi.raw())),
                            EpisodeChange::Ended { spn, fmi, .. } => Some((false, spn.raw(), fmi.raw())),
                            EpisodeChange::LampsChanged { .. } => None,
                        })
                        .collect();
                    prop_assert_eq!(got, model.apply(at(s), source, &list));
                }
            }
        }
    }
}
