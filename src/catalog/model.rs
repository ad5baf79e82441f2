//! What the catalogue knows about a truck model: its maintenance plan, the
//! faults it raises and how to read its body controller.

use std::borrow::Borrow;
use std::fmt;

use fleetcare_ingest::j1939::{Fmi, Meter, Spn};
use fleetcare_ingest::modbus::RegisterMap;
use serde::{Deserialize, Serialize};

use fleetcare_ingest::ids::{ModelId, PartId, TaskId};

/// One truck model (a chassis with its body), from one `models/*.toml` file.
#[derive(Debug, Clone, PartialEq)]
pub struct TruckModel {
    pub id: ModelId,
    pub name: String,
    /// Simplified Chinese name, for zh-CN users; `name` stands in when absent.
    pub name_zh: Option<String>,
    pub kind: TruckKind,
    /// In file order.
    pub maintenance: Vec<MaintenanceTask>,
    /// In file order; at most one entry per (SPN, FMI).
    pub faults: Vec<FaultEntry>,
    /// The body controller's registers, for models polled over Modbus.
    pub modbus: Option<RegisterMap>,
    /// The maker's warranty (C10); every shipped model has one.
    pub warranty: Option<super::warranty::Warranty>,
    /// What a drift of a condition signal leads to (C12); at most one
    /// entry per signal.
    pub conditions: Vec<ConditionEntry>,
}

impl TruckModel {
    /// The task with this id (a [`TaskId`] or a `&str`).
    pub fn task<Q>(&self, id: &Q) -> Option<&MaintenanceTask>
    where
        TaskId: Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.maintenance.iter().find(|t| t.id.borrow() == id)
    }

    /// The catalogue entry for a fault code this model raises. A model lists
    /// a few dozen faults: a scan is as fast as a map at that size.
    pub fn fault(&self, spn: Spn, fmi: Fmi) -> Option<&FaultEntry> {
        self.faults.iter().find(|f| f.spn == spn && f.fmi == fmi)
    }
}

/// What the body does, which decides the wear parts and the faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TruckKind {
    /// Road sweeper: brushes, suction fan and dust-suppression water.
    Sweeper,
    /// Refuse compactor: hydraulic packer and bin lifter.
    Compactor,
    /// Washer or sprinkler: water tank and pump.
    Washer,
    Other,
}

impl TruckKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sweeper => "sweeper",
            Self::Compactor => "compactor",
            Self::Washer => "washer",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for TruckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of a maintenance plan: a service done whenever the first of its
/// intervals runs out.
#[derive(Debug, Clone, PartialEq)]
pub struct MaintenanceTask {
    pub id: TaskId,
    pub name: String,
    pub name_zh: Option<String>,
    /// At least one, at most one per meter, in [`IntervalMeter`] order.
    pub intervals: Vec<Interval>,
    /// What one service uses.
    pub parts: Vec<PartQty>,
    /// Hard duty that counts faster toward the meter intervals (C12).
    pub duty: Option<Duty>,
}

/// `duty = { signal, above, factor }` of a task (C12): meter time spent with
/// `signal` above `above` counts `factor` times toward the task's meter
/// intervals (not its day interval).
#[derive(Debug, Clone, PartialEq)]
pub struct Duty {
    /// A condition signal name (C12), e.g. `hydraulic_oil_temp_c`.
    pub signal: String,
    /// The level, in the signal's unit.
    pub above: f64,
    /// At least 1.
    pub factor: f64,
}

impl MaintenanceTask {
    pub fn interval(&self, meter: IntervalMeter) -> Option<&Interval> {
        self.intervals.iter().find(|i| i.meter == meter)
    }
}

/// What an interval is counted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalMeter {
    /// Engine hours (SPN 247), h.
    EngineHours,
    /// Power take-off hours (SPN 248): the body's working time, h.
    PtoHours,
    /// Odometer (SPN 245/917), km.
    OdometerKm,
    /// Calendar days since the last service (or commissioning).
    Days,
}

impl IntervalMeter {
    pub const ALL: [Self; 4] = [
        Self::EngineHours,
        Self::PtoHours,
        Self::OdometerKm,
        Self::Days,
    ];

    /// The name reports use (C6 `meter`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EngineHours => "engine_hours",
            Self::PtoHours => "pto_hours",
            Self::OdometerKm => "odometer_km",
            Self::Days => "days",
        }
    }

    /// The catalogue key of an interval on this meter.
    pub const fn every_key(self) -> &'static str {
        match self {
            Self::EngineHours => "every_engine_hours",
            Self::PtoHours => "every_pto_hours",
            Self::OdometerKm => "every_km",
            Self::Days => "every_days",
        }
    }

    /// The catalogue key of the due-soon window of an interval on this meter.
    pub const fn due_soon_key(self) -> &'static str {
        match self {
            Self::EngineHours => "due_soon_engine_hours",
            Self::PtoHours => "due_soon_pto_hours",
            Self::OdometerKm => "due_soon_km",
            Self::Days => "due_soon_days",
        }
    }

    /// The telemetry meter this interval is counted on; `None` for days.
    pub const fn telemetry_meter(self) -> Option<Meter> {
        match self {
            Self::EngineHours => Some(Meter::EngineHours),
            Self::PtoHours => Some(Meter::PtoHours),
            Self::OdometerKm => Some(Meter::OdometerKm),
            Self::Days => None,
        }
    }
}

impl fmt::Display for IntervalMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The due-soon window when the catalogue gives none, in percent of the
/// interval (C3).
pub const DEFAULT_DUE_SOON_PERCENT: f64 = 10.0;

/// The default due-soon window of an interval. Multiplying by 10 then
/// dividing by 100 is exact where multiplying by 0.1 is not (10000.5 h
/// gives 1000.05 h, not 1000.0500000000001 h).
pub fn default_due_soon(every: f64) -> f64 {
    every * DEFAULT_DUE_SOON_PERCENT / 100.0
}

/// One interval of a task, in the unit of its meter (h, km or days).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub meter: IntervalMeter,
    /// Greater than zero.
    pub every: f64,
    /// The task is due soon once this little remains; at least zero and
    /// less than `every`.
    pub due_soon: f64,
}

/// Which way a condition signal drifts before a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }

    /// +1 for up, −1 for down: the sign that makes a drift positive.
    pub const fn sign(self) -> f64 {
        match self {
            Self::Up => 1.0,
            Self::Down => -1.0,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `[[conditions]]` entry (C12): a drift of `signal` in `direction`
/// leads to the fault `(spn, fmi)`, repaired with `parts`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionEntry {
    pub signal: String,
    pub direction: Direction,
    pub spn: Spn,
    pub fmi: Fmi,
    pub parts: Vec<PartQty>,
}

/// What the catalogue says about one fault code on one model.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultEntry {
    pub spn: Spn,
    pub fmi: Fmi,
    pub name: String,
    pub name_zh: Option<String>,
    pub severity: Severity,
    /// What a repair of this fault typically uses.
    pub parts: Vec<PartQty>,
}

/// How urgent a fault is; `critical` opens a P1 ticket at once (C8).
/// Ordered from least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quantity of one part, in the part's unit.
#[derive(Debug, Clone, PartialEq)]
pub struct PartQty {
    pub part: PartId,
    /// Greater than zero; fractional for bulk parts (litres of oil).
    pub qty: f64,
}
