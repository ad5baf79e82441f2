//! Warranty terms per truck model (design contract C10) and what they say
//! about one vehicle on one day: in, out or unknown, until when, and which
//! limit decides.
//!
//! ```toml
//! [warranty]
//! months = 24                        # from commissioned_on
//! engine_hours = 4000
//! km = 100000
//! exclude_parts = ["BRUSH-MAIN-01"]  # wear parts: never under warranty
//! [[warranty.components]]            # other cover for some parts
//! parts = ["HYD-PUMP-01"]
//! months = 36
//! ```
//!
//! Whichever limit comes first ends the cover. A component's cover is the
//! limits it gives and only those (a 36-month hydraulic pump cover is not
//! cut short by the chassis's engine hours). The decision is pure: the
//! ticket store feeds it the commissioning date and the last meters when a
//! ticket opens, and keeps the resulting [`Cover`] on the ticket, so that
//! closing decides each part from what was known at intake.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use fleetcare_ingest::ids::PartId;

/// The limits of one cover; at least one is given.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Calendar months from the commissioning date.
    pub months: Option<u32>,
    /// Engine hours (SPN 247), h.
    pub engine_hours: Option<f64>,
    /// Odometer, km.
    pub km: Option<f64>,
}

/// A model's warranty: the general cover, the parts it never covers and
/// the parts with a cover of their own.
#[derive(Debug, Clone, PartialEq)]
pub struct Warranty {
    pub limits: Limits,
    /// Wear parts: never under warranty, whatever the limits say.
    pub exclude_parts: Vec<PartId>,
    /// Parts with other limits (each part in at most one component, and
    /// never also excluded).
    pub components: Vec<Component>,
}

/// Other cover for some parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub parts: Vec<PartId>,
    pub limits: Limits,
}

/// In or out of warranty; unknown when a limit cannot be checked (no
/// commissioning date, no meter reading) and none is known to be passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarrantyStatus {
    In,
    Out,
    Unknown,
}

impl WarrantyStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "in" => Some(Self::In),
            "out" => Some(Self::Out),
            "unknown" => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// The limit a decision rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarrantyBasis {
    Months,
    EngineHours,
    Km,
}

impl WarrantyBasis {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Months => "months",
            Self::EngineHours => "engine_hours",
            Self::Km => "km",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "months" => Some(Self::Months),
            "engine_hours" => Some(Self::EngineHours),
            "km" => Some(Self::Km),
            _ => None,
        }
    }
}

/// What the terms say on one day (C10's ticket `warranty`):
///
/// - `out`: a limit is passed; `basis` is the one most passed (the first
///   to run out at the vehicle's pace so far), `until` the end date when
///   that limit is the months (for a meter the day it ran out is not
///   known: null);
/// - `in`: no limit passed; `basis` is the limit nearest to running out,
///   `until` the end date of the months limit (the latest the cover can
///   run; a meter may end it earlier);
/// - `unknown`: no limit known to be passed but one cannot be checked;
///   `until` and `basis` are null.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarrantyDecision {
    pub status: WarrantyStatus,
    pub until: Option<NaiveDate>,
    pub basis: Option<WarrantyBasis>,
}

impl WarrantyDecision {
    /// No terms, no vehicle: nothing can be said.
    pub const UNKNOWN: Self = Self {
        status: WarrantyStatus::Unknown,
        until: None,
        basis: None,
    };
}

/// What the decision starts from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarrantyFacts {
    pub commissioned_on: Option<NaiveDate>,
    /// The day decided for (the ticket's opening day).
    pub on: NaiveDate,
    pub engine_hours: Option<f64>,
    pub km: Option<f64>,
}

impl Limits {
    /// Whether any limit is given.
    pub fn any(&self) -> bool {
        self.months.is_some() || self.engine_hours.is_some() || self.km.is_some()
    }

    /// The end date of the months limit, if there is one and the
    /// commissioning date is known.
    pub fn end_date(&self, commissioned_on: Option<NaiveDate>) -> Option<NaiveDate> {
        commissioned_on?.checked_add_months(Months::new(self.months?))
    }

    /// What these limits say about `facts` (see [`WarrantyDecision`]). A
    /// limit is passed strictly after it: 4,000 h of a 4,000 h cover are
    /// still in, and so is the last day of 24 months.
    pub fn decide(&self, facts: &WarrantyFacts) -> WarrantyDecision {
        if !self.any() {
            return WarrantyDecision::UNKNOWN;
        }
        // (basis, share of the limit used, passed)
        let mut used: Vec<(WarrantyBasis, f64, bool)> = Vec::new();
        let mut missing = false;
        let end = self.end_date(facts.commissioned_on);
        if self.months.is_some() {
            match (facts.commissioned_on, end) {
                (Some(start), Some(end)) => {
                    let total = (end - start).num_days().max(1) as f64;
                    let gone = (facts.on - start).num_days() as f64;
                    used.push((WarrantyBasis::Months, gone / total, facts.on > end));
                }
                // No date, or one so late that its end overflows (not a
                // date anyone typed): the limit cannot be checked.
                _ => missing = true,
            }
        }
        for (basis, limit, value) in [
            (
                WarrantyBasis::EngineHours,
                self.engine_hours,
                facts.engine_hours,
            ),
            (WarrantyBasis::Km, self.km, facts.km),
        ] {
            let Some(limit) = limit else { continue };
            match value {
                Some(v) if v.is_finite() => used.push((basis, v / limit, v > limit)),
                _ => missing = true,
            }
        }
        let most_used = |only_passed: bool| {
            used.iter()
                .filter(|(_, _, passed)| !only_passed || *passed)
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(basis, _, _)| *basis)
        };
        if let Some(basis) = most_used(true) {
            return WarrantyDecision {
                status: WarrantyStatus::Out,
                until: (basis == WarrantyBasis::Months).then_some(end).flatten(),
                basis: Some(basis),
            };
        }
        if missing {
            return WarrantyDecision::UNKNOWN;
        }
        WarrantyDecision {
            status: WarrantyStatus::In,
            until: end,
            basis: most_used(false),
        }
    }
}

impl Warranty {
    /// The decision for the vehicle and for each component, kept on a
    /// ticket when it opens.
    pub fn cover(&self, facts: &WarrantyFacts) -> Cover {
        Cover {
            decision: self.limits.decide(facts),
            excluded: self
                .exclude_parts
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            components: self
                .components
                .iter()
                .map(|c| ComponentCover {
                    parts: c.parts.iter().map(|p| p.as_str().to_owned()).collect(),
                    decision: c.limits.decide(facts),
                })
                .collect(),
        }
    }

    /// Whether `part` is a wear part of this model.
    pub fn excludes(&self, part: &str) -> bool {
        self.exclude_parts.iter().any(|p| p.as_str() == part)
    }
}

/// A ticket's warranty as decided when it opened: the vehicle's, and each
/// component's. Stored with the ticket (JSON), so a later change of the
/// catalogue does not change what an open ticket was promised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cover {
    pub decision: WarrantyDecision,
    #[serde(default)]
    pub excluded: Vec<String>,
    #[serde(default)]
    pub components: Vec<ComponentCover>,
}

/// One component's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentCover {
    pub parts: Vec<String>,
    pub decision: WarrantyDecision,
}

impl Cover {
    /// Nothing known: no terms or no vehicle.
    pub fn unknown() -> Self {
        Self {
            decision: WarrantyDecision::UNKNOWN,
            excluded: Vec::new(),
            components: Vec::new(),
        }
    }

    /// The status that applies to `part`: never `in` for a wear part, the
    /// component's for a part with cover of its own, else the vehicle's.
    pub fn status_of(&self, part: &str) -> WarrantyStatus {
        if self.excluded.iter().any(|p| p == part) {
            return WarrantyStatus::Out;
        }
        self.components
            .iter()
            .find(|c| c.parts.iter().any(|p| p == part))
            .map_or(self.decision.status, |c| c.decision.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn terms() -> Limits {
        Limits {
            months: Some(24),
            engine_hours: Some(4000.0),
            km: Some(100_000.0),
        }
    }

    fn facts(engine_hours: Option<f64>, km: Option<f64>) -> WarrantyFacts {
        WarrantyFacts {
            commissioned_on: Some(date("2025-01-10")),
            // 20 months later.
            on: date("2026-09-10"),
            engine_hours,
            km,
        }
    }

    /// Issue 21 acceptance: 20 months and 3,900 h are in; 4,100 h are out
    /// on engine hours.
    #[test]
    fn engine_hours_end_the_cover_before_the_months() {
        let d = terms().decide(&facts(Some(3900.0), Some(40_000.0)));
        assert_eq!(
            d,
            WarrantyDecision {
                status: WarrantyStatus::In,
                until: Some(date("2027-01-10")),
                basis: Some(WarrantyBasis::EngineHours),
            }
        );
        let d = terms().decide(&facts(Some(4100.0), Some(40_000.0)));
        assert_eq!(
            d,
            WarrantyDecision {
                status: WarrantyStatus::Out,
                until: None,
                basis: Some(WarrantyBasis::EngineHours),
            }
        );
        // The limit itself is still in.
        let d = terms().decide(&facts(Some(4000.0), Some(40_000.0)));
        assert_eq!(d.status, WarrantyStatus::In);
    }

    #[test]
    fn months_run_out_after_the_last_day() {
        let mut f = facts(Some(100.0), Some(1000.0));
        f.on = date("2027-01-10");
        assert_eq!(terms().decide(&f).status, WarrantyStatus::In);
        f.on = date("2027-01-11");
        assert_eq!(
            terms().decide(&f),
            WarrantyDecision {
                status: WarrantyStatus::Out,
                until: Some(date("2027-01-10")),
                basis: Some(WarrantyBasis::Months),
            }
        );
    }

    #[test]
    fn missing_facts_are_unknown_unless_a_known_limit_is_passed() {
        assert_eq!(
            terms().decide(&facts(None, Some(1000.0))),
            WarrantyDecision::UNKNOWN
        );
        let no_date = WarrantyFacts {
            commissioned_on: None,
            ..facts(Some(100.0), Some(1000.0))
        };
        assert_eq!(terms().decide(&no_date), WarrantyDecision::UNKNOWN);
        // Known to be out, whatever is missing.
        let d = terms().decide(&facts(None, Some(150_000.0)));
        assert_eq!(
            (d.status, d.basis),
            (WarrantyStatus::Out, Some(WarrantyBasis::Km))
        );
        // Limits not given need no facts.
        let hours_only = Limits {
            engine_hours: Some(4000.0),
            ..Limits::default()
        };
        let d = hours_only.decide(&facts(Some(10.0), None));
        assert_eq!((d.status, d.until), (WarrantyStatus::In, None));
        assert_eq!(
            Limits::default().decide(&facts(None, None)),
            WarrantyDecision::UNKNOWN
        );
    }

    #[test]
    fn the_most_passed_limit_is_the_basis() {
        let mut f = facts(Some(6000.0), Some(101_000.0));
        f.on = date("2027-02-10");
        let d = terms().decide(&f);
        assert_eq!(d.basis, Some(WarrantyBasis::EngineHours));
    }

    #[test]
    fn wear_parts_are_never_covered_and_components_have_their_own_cover() {
        let w = Warranty {
            limits: terms(),
            exclude_parts: vec![PartId::new("BRUSH-MAIN-01").unwrap()],
            components: vec![Component {
                parts: vec![PartId::new("SEAL-KIT-CYL").unwrap()],
                limits: Limits {
                    months: Some(36),
                    ..Limits::default()
                },
            }],
        };
        let cover = w.cover(&facts(Some(4100.0), Some(40_000.0)));
        assert_eq!(cover.decision.status, WarrantyStatus::Out);
        assert_eq!(cover.status_of("SEAL-KIT-CYL"), WarrantyStatus::In);
        assert_eq!(cover.status_of("THERMO-01"), WarrantyStatus::Out);
        let cover = w.cover(&facts(Some(100.0), Some(4000.0)));
        assert_eq!(cover.status_of("THERMO-01"), WarrantyStatus::In);
        assert_eq!(cover.status_of("BRUSH-MAIN-01"), WarrantyStatus::Out);
        let json = serde_json::to_string(&cover).unwrap();
        assert_eq!(serde_json::from_str::<Cover>(&json).unwrap(), cover);
    }
}
