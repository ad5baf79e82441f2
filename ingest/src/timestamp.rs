//! Event time as carried by the data itself (candump timestamps, telemetry
//! `ts`), never read from a clock: decoders stay deterministic and testable.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds since the Unix epoch (UTC).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Timestamp(i64);

/// A span of time in microseconds; J1939-21 timeouts are expressed in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(i64);

impl Duration {
    pub const fn from_micros(us: i64) -> Self {
        Self(us)
    }

    pub const fn from_millis(ms: i64) -> Self {
        Self(ms * 1_000)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }
}

impl Timestamp {
    pub const fn from_micros(us: i64) -> Self {
        Self(us)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// This time plus `d`, saturating at the ends of the range.
    pub const fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.0))
    }

    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(self.0)
    }

    pub fn from_datetime<Tz: chrono::TimeZone>(t: &DateTime<Tz>) -> Self {
        Self(t.timestamp_micros())
    }

    /// RFC 3339 with microseconds, e.g. `2018-11-29T16:38:53.000838Z`.
    pub fn to_rfc3339(self) -> String {
        match self.to_datetime() {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::Micros, true),
            // Only reachable for times beyond year 262143; still printable.
            None => format!("@{}us", self.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_microseconds() {
        let t = Timestamp::from_micros(1_543_509_533_000_838);
        assert_eq!(t.to_rfc3339(), "2018-11-29T16:38:53.000838Z");
    }
}
