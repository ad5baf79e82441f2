//! What the InfluxDB sink writes: measurements, their tags and fields.
//! The encoder writes names only through these constants, and the
//! dashboards check (`dashboards/`) holds every query to them. The table
//! with meanings and units is in docs/decisions.md, "InfluxDB sink".
//!
//! Every field is a float (`1` rather than `1i`): a field keeps the type it
//! was first written with, VictoriaMetrics and Grafana panels want numbers,
//! and string fields would be dropped by VictoriaMetrics.

/// One measurement: its tags (lexical order, as written) and fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    pub name: &'static str,
    pub tags: &'static [&'static str],
    pub fields: &'static [&'static str],
}

/// Tag keys.
pub mod tag {
    /// The DM1 source address of the ECU (faults and lamps from DM1 only).
    pub const ECU: &str = "ecu";
    /// What happened to a ticket: opened, occurrence, moved, breach, escalated.
    pub const EVENT: &str = "event";
    pub const FLEET: &str = "fleet";
    pub const FMI: &str = "fmi";
    /// The ticket kind (fault, maintenance, …).
    pub const KIND: &str = "kind";
    /// engine_hours, pto_hours, odometer_km.
    pub const METER: &str = "meter";
    /// The vehicle's model in the registry; left out for unregistered vehicles.
    pub const MODEL: &str = "model";
    pub const PRIORITY: &str = "priority";
    /// dm1 or telemetry.
    pub const SOURCE: &str = "source";
    pub const SPN: &str = "spn";
    /// The ticket state (the state moved to, for ticket events).
    pub const STATE: &str = "state";
    pub const VEHICLE: &str = "vehicle";
}

/// Field keys.
pub mod field {
    pub const AGE_S: &str = "age_s";
    pub const AMBER_WARNING: &str = "amber_warning";
    pub const COUNT: &str = "count";
    pub const DURATION_S: &str = "duration_s";
    pub const ENDED: &str = "ended";
    pub const MIL: &str = "mil";
    pub const OCCURRENCES: &str = "occurrences";
    pub const OFFSET: &str = "offset";
    pub const OVERDUE: &str = "overdue";
    pub const PREVIOUS: &str = "previous";
    pub const PROTECT: &str = "protect";
    pub const RAW: &str = "raw";
    pub const RED_STOP: &str = "red_stop";
    pub const RESOLUTION_S: &str = "resolution_s";
    pub const RESPONSE_S: &str = "response_s";
    pub const STARTED: &str = "started";
    pub const TICKET: &str = "ticket";
    pub const VALUE: &str = "value";
}

use field as f;
use tag as t;

/// A meter reading (truck time): `value` continuous over ECU swaps, `raw`
/// as sent.
pub const METER: Measurement = Measurement {
    name: "meter",
    tags: &[t::FLEET, t::METER, t::MODEL, t::VEHICLE],
    fields: &[f::RAW, f::VALUE],
};

/// A meter that went backwards (ECU swap): the offset applied from then on.
pub const METER_RESET: Measurement = Measurement {
    name: "meter_reset",
    tags: &[t::FLEET, t::METER, t::MODEL, t::VEHICLE],
    fields: &[f::OFFSET, f::PREVIOUS, f::RAW],
};

/// A fault episode's start (`started` = 1, occurrence count, the lamps of
/// the snapshot) or end (`ended` = 1, `duration_s`), at truck time.
pub const FAULT: Measurement = Measurement {
    name: "fault",
    tags: &[
        t::ECU,
        t::FLEET,
        t::FMI,
        t::MODEL,
        t::SOURCE,
        t::SPN,
        t::VEHICLE,
    ],
    fields: &[
        f::AMBER_WARNING,
        f::DURATION_S,
        f::ENDED,
        f::MIL,
        f::OCCURRENCES,
        f::PROTECT,
        f::RED_STOP,
        f::STARTED,
    ],
};

/// A change of a source's lamps: 1 on, 0 off; left out when not available.
pub const LAMPS: Measurement = Measurement {
    name: "lamps",
    tags: &[t::ECU, t::FLEET, t::MODEL, t::SOURCE, t::VEHICLE],
    fields: &[f::AMBER_WARNING, f::MIL, f::PROTECT, f::RED_STOP],
};

/// One line of a ticket's history (`count` = 1). `response_s` on leaving
/// `open`, `resolution_s` on reaching `delivered`, both from the opening;
/// `age_s` is the ticket's age at the event; `ticket` its number.
pub const TICKET_EVENT: Measurement = Measurement {
    name: "ticket_event",
    tags: &[
        t::EVENT,
        t::FLEET,
        t::KIND,
        t::MODEL,
        t::PRIORITY,
        t::STATE,
        t::VEHICLE,
    ],
    fields: &[
        f::AGE_S,
        f::COUNT,
        f::RESOLUTION_S,
        f::RESPONSE_S,
        f::TICKET,
    ],
};

/// Tickets neither closed nor cancelled, every ticket interval (wall
/// clock): `count`, and `overdue` past their response or resolution time.
pub const TICKET_BACKLOG: Measurement = Measurement {
    name: "ticket_backlog",
    tags: &[t::FLEET, t::PRIORITY, t::STATE],
    fields: &[f::COUNT, f::OVERDUE],
};

/// Everything the sink writes.
pub const ALL: [Measurement; 6] = [
    METER,
    METER_RESET,
    FAULT,
    LAMPS,
    TICKET_EVENT,
    TICKET_BACKLOG,
];

/// The measurement called `name`.
pub fn measurement(name: &str) -> Option<&'static Measurement> {
    ALL.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_sorted_and_unique() {
        for m in super::ALL {
            assert!(m.tags.is_sorted_by(|a, b| a < b), "{}", m.name);
            assert!(m.fields.is_sorted_by(|a, b| a < b), "{}", m.name);
        }
        assert_eq!(super::measurement("fault"), Some(&super::FAULT));
        assert_eq!(super::measurement("faults"), None);
    }
}
