//! Fault episodes (contract C5): a DTC (vehicle, SPN, FMI) is active from the
//! first snapshot that lists it until the first later snapshot of the same
//! source that does not. A source is one ECU's DM1 or the vehicle's
//! telemetry list; a gap in data does not end an episode.
//!
//! DM1 repeats every second while a fault is active; only the changes are
//! returned, so storage does not grow with repetition.

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

impl FaultTracker {
    /// Faults active now, over all sources.
    pub fn active_count(&self) -> usize {
        self.sources.iter().map(|s| s.active.len()).sum()
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
        let listed = |f: &ActiveFault| {
            snap.dtcs
                .iter()
                .any(|(d, _)| d.spn == f.spn && d.fmi == f.fmi)
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
        for &(dtc, ecu) in snap.dtcs {
            if !state
                .active
                .iter()
                .any(|f| f.spn == dtc.spn && f.fmi == dtc.fmi)
            {
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
}
