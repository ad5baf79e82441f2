//! What the registry holds: vehicles, their service records and depot
//! stock, with checked types for the values the CSV files carry.

use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::{Fmi, Spn};
use thiserror::Error;

use crate::catalog::{ModelId, PartId, TaskId};

/// A registered truck (contract C4, `vehicles import`).
#[derive(Debug, Clone, PartialEq)]
pub struct Vehicle {
    pub id: VehicleId,
    pub fleet: FleetId,
    pub model: ModelId,
    /// Absent for a truck whose VIN the operator has not given.
    pub vin: Option<Vin>,
    /// Day-based intervals count from here until the first service.
    pub commissioned_on: NaiveDate,
    pub depot: Depot,
}

/// One service done on a vehicle.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    pub vehicle: VehicleId,
    pub task: ServiceTask,
    /// Stored to the second.
    pub performed_at: DateTime<Utc>,
    pub engine_hours: Option<f64>,
    pub pto_hours: Option<f64>,
    pub odometer_km: Option<f64>,
    pub source: ServiceSource,
}

/// What a service record says was done.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceTask {
    /// A task of the vehicle's maintenance plan: its interval restarts.
    Maintenance(TaskId),
    /// A corrective repair of a fault, `repair:SPN:FMI`: it counts for
    /// repeat repairs (C5).
    Repair { spn: Spn, fmi: Fmi },
}

/// The prefix of a repair in the `task` column.
pub const REPAIR_PREFIX: &str = "repair:";

/// Why a `task` value is neither a task id nor `repair:SPN:FMI`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TaskSyntaxError {
    #[error("task \"{0}\" is not repair:SPN:FMI; write a repair as e.g. repair:110:0")]
    RepairFormat(String),
    #[error("task \"{task}\" has SPN {spn}; SPNs are 0 to 524287")]
    SpnOutOfRange { task: String, spn: String },
    #[error("task \"{task}\" has FMI {fmi}; FMIs are 0 to 31")]
    FmiOutOfRange { task: String, fmi: String },
    #[error(
        "task \"{0}\" is not a task id; task ids are letters, digits, '_', '.' and '-', or repair:SPN:FMI for a repair"
    )]
    NotAnId(String),
}

impl ServiceTask {
    /// Parses a `task` column value: the canonical form comes back from
    /// [`fmt::Display`] (`repair:0110:00` reads as `repair:110:0`), so one
    /// repair has one key however it was written.
    pub fn parse(text: &str) -> Result<Self, TaskSyntaxError> {
        let Some(code) = text.strip_prefix(REPAIR_PREFIX) else {
            return TaskId::new(text)
                .map(Self::Maintenance)
                .map_err(|_| TaskSyntaxError::NotAnId(text.to_owned()));
        };
        let format = || TaskSyntaxError::RepairFormat(text.to_owned());
        let (spn, fmi) = code.split_once(':').ok_or_else(format)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(spn) || !digits(fmi) {
            return Err(format());
        }
        let spn_out = || TaskSyntaxError::SpnOutOfRange {
            task: text.to_owned(),
            spn: spn.to_owned(),
        };
        let fmi_out = || TaskSyntaxError::FmiOutOfRange {
            task: text.to_owned(),
            fmi: fmi.to_owned(),
        };
        // Digits only, so a failed parse can only be a number too large.
        let spn = spn.parse().ok().and_then(Spn::new).ok_or_else(spn_out)?;
        let fmi = fmi.parse().ok().and_then(Fmi::new).ok_or_else(fmi_out)?;
        Ok(Self::Repair { spn, fmi })
    }
}

impl fmt::Display for ServiceTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Maintenance(task) => f.write_str(task.as_str()),
            Self::Repair { spn, fmi } => write!(f, "{REPAIR_PREFIX}{spn}:{fmi}"),
        }
    }
}

/// Where a service record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceSource {
    /// `fleetcare services import`.
    Import,
    /// Closing a maintenance or fault ticket (C8).
    Ticket,
}

impl ServiceSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Import => "import",
            Self::Ticket => "ticket",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "import" => Some(Self::Import),
            "ticket" => Some(Self::Ticket),
            _ => None,
        }
    }
}

impl fmt::Display for ServiceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parts on the shelf of one depot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub part: PartId,
    pub depot: Depot,
    pub on_hand: u64,
}

/// Longest depot name accepted, the bound of the other ids.
pub const MAX_DEPOT_LEN: usize = 64;

/// A depot (where trucks are based and parts are kept), named as the
/// operator names it, e.g. `north` or `北区车场`; vehicles and stock must
/// use the same spelling.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Depot(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DepotError {
    #[error("depot is empty; name the depot, e.g. north")]
    Empty,
    #[error("depot \"{0}\" is longer than 64 characters; shorten it")]
    TooLong(String),
    #[error("depot {0:?} contains a control character; remove it")]
    Control(String),
}

impl Depot {
    /// Any printable text of 1–64 characters; surrounding spaces are not
    /// part of the name.
    pub fn new(name: &str) -> Result<Self, DepotError> {
        let name = name.trim();
        if name.is_empty() {
            Err(DepotError::Empty)
        } else if name.chars().count() > MAX_DEPOT_LEN {
            Err(DepotError::TooLong(name.to_owned()))
        } else if name.chars().any(char::is_control) {
            Err(DepotError::Control(name.to_owned()))
        } else {
            Ok(Self(name.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Depot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A vehicle identification number (ISO 3779, GB 16735 in China): 17
/// letters and digits without I, O and Q, kept in capitals.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vin(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "vin \"{0}\" is not a VIN; a VIN is 17 letters and digits without I, O and Q (or leave it empty)"
)]
pub struct VinError(pub String);

impl Vin {
    /// The check digit is not verified: only North American VINs must
    /// carry one, and trucks from elsewhere use position 9 freely.
    pub fn new(text: &str) -> Result<Self, VinError> {
        let vin = text.to_ascii_uppercase();
        let valid = vin.len() == 17
            && vin
                .bytes()
                .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"IOQ".contains(&b)));
        if valid {
            Ok(Self(vin))
        } else {
            Err(VinError(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How much of the service history a report reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceHistory {
    /// None (trends).
    Nothing,
    /// Every repair up to the as-of time (recurring: repeat repairs).
    Repairs,
    /// Every repair and the last service of each maintenance task per
    /// vehicle up to the as-of time (due, parts, and all reports at once):
    /// an earlier service of a task never decides anything.
    LastServicesAndRepairs,
}

/// How a date is stored: `YYYY-MM-DD`.
pub(crate) fn date_text(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// How a time is stored: RFC 3339 in UTC to the second,
/// `YYYY-MM-DDTHH:MM:SSZ`; one width, so text order is time order.
pub(crate) fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_parse_to_one_canonical_key() {
        let t = ServiceTask::parse("repair:0110:00").unwrap();
        assert_eq!(t.to_string(), "repair:110:0");
        assert_eq!(
            ServiceTask::parse("repair:524287:31").unwrap().to_string(),
            "repair:524287:31"
        );
        assert_eq!(
            ServiceTask::parse("engine-oil").unwrap(),
            ServiceTask::Maintenance(TaskId::new("engine-oil").unwrap())
        );
    }

    #[test]
    fn bad_repairs_say_what_is_wrong() {
        for (text, want) in [
            ("repair:110", "is not repair:SPN:FMI"),
            ("repair:110:0:1", "is not repair:SPN:FMI"),
            ("repair:-1:0", "is not repair:SPN:FMI"),
            ("repair::0", "is not repair:SPN:FMI"),
            ("repair:524288:0", "SPNs are 0 to 524287"),
            ("repair:99999999999999999999:0", "SPNs are 0 to 524287"),
            ("repair:110:32", "FMIs are 0 to 31"),
            ("engine oil", "is not a task id"),
        ] {
            let e = ServiceTask::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn vins_are_17_characters_without_i_o_q() {
        assert_eq!(
            Vin::new("lzzaelnd5jn123456").unwrap().as_str(),
            "LZZAELND5JN123456"
        );
        assert!(Vin::new("LZZAELND5JN12345").is_err());
        assert!(Vin::new("LZZAELNO5JN123456").is_err());
        assert!(Vin::new("LZZAELND5JN12345é").is_err());
    }

    #[test]
    fn depots_are_printable_names() {
        assert_eq!(Depot::new(" 北区车场 ").unwrap().as_str(), "北区车场");
        assert_eq!(Depot::new("  "), Err(DepotError::Empty));
        assert!(Depot::new(&"x".repeat(65)).is_err());
        assert!(Depot::new("a\tb").is_err());
    }

    #[test]
    fn stored_times_have_one_width() {
        let t = DateTime::parse_from_rfc3339("2025-03-01T08:30:00.75+08:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(time_text(t), "2025-03-01T00:30:00Z");
    }
}
