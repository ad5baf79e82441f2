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

mod noise;
mod plan;
mod timeline;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use fleetcare_ingest::j1939::{Address, Fmi, Spn};

use super::duty::{Calendar, Slot, local_time_us};
use crate::catalog::Severity;

pub(crate) use noise::Noise;
pub(crate) use plan::plan;
pub(crate) use timeline::{Active, Timeline};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecus_by_spn() {
        assert_eq!(ecu_of(Spn::new(110).unwrap()), Address(0));
        assert_eq!(ecu_of(Spn::new(177).unwrap()), Address(3));
        assert_eq!(ecu_of(Spn::new(117).unwrap()), Address(0x0B));
        assert_eq!(ecu_of(Spn::new(520_211).unwrap()), Address(0x21));
    }
}
