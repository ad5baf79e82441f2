//! Integrity of one cumulative meter (engine hours, PTO hours, odometer).
//!
//! Meters only go up, and no faster than physics allows: an engine runs at
//! most one hour per hour. A reading that goes backwards or jumps is
//! refused with its reason, except that:
//! - a drop to a small value is an ECU swap (a new ECU starts near zero): it
//!   is recorded as a reset, and a continuity offset keeps the vehicle's
//!   history continuous (`value = raw + offset`);
//! - several refused readings in a row that agree with each other are a
//!   swap to a used ECU, and are taken as a reset too, so that one swap does
//!   not refuse every later reading.
//!
//! Readings change slowly (0.05 h every few minutes) but arrive every
//! second: one is stored per `store_every` at most, so storage does not grow
//! with the message rate.

use crate::j1939::Meter;
use crate::timestamp::{Duration, Timestamp};

/// Physical limits and thinning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterLimits {
    /// Engine and PTO hours per hour of wall time.
    pub max_hours_per_hour: f64,
    /// Kilometres per hour of wall time.
    pub max_km_per_hour: f64,
    /// A drop to below this share of the previous value is an ECU swap.
    pub reset_below_share: f64,
    /// Consecutive consistent anomalies taken as a swap to a used ECU.
    pub rebaseline_after: usize,
    /// At most one stored reading per meter per this time.
    pub store_every: Duration,
}

impl Default for MeterLimits {
    fn default() -> Self {
        Self {
            max_hours_per_hour: 1.0,
            max_km_per_hour: 150.0,
            reset_below_share: 0.05,
            rebaseline_after: 3,
            store_every: Duration::from_millis(10 * 60 * 1000),
        }
    }
}

/// Why a reading was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum MeterAnomaly {
    #[error("{meter} went backwards from {from} to {to}")]
    Backwards {
        meter: &'static str,
        from: f64,
        to: f64,
    },
    #[error("{meter} rose by {rise} in {hours:.4} h, faster than physically possible")]
    TooFast {
        meter: &'static str,
        rise: f64,
        hours: f64,
    },
    #[error("{meter} reading {value} is older than the last one ({last}) yet higher")]
    OutOfOrder {
        meter: &'static str,
        value: f64,
        last: f64,
    },
}

/// What to do with a reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MeterVerdict {
    /// Store `value` (continuous, offset applied).
    Store {
        raw: f64,
        value: f64,
    },
    /// The meter was reset (ECU swap); store the reading with the new offset.
    Reset {
        previous: f64,
        raw: f64,
        offset: f64,
    },
    /// Valid, but nothing new to store.
    Skip,
    Refuse(MeterAnomaly),
}

/// The state of one meter of one vehicle.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MeterTrack {
    meter: Meter,
    last_ts: Timestamp,
    last_raw: f64,
    offset: f64,
    stored_ts: Timestamp,
    stored_raw: f64,
    /// Refused readings in a row that agree with each other.
    pending: Vec<(Timestamp, f64)>,
}

fn resolution(meter: Meter) -> f64 {
    match meter {
        Meter::EngineHours | Meter::PtoHours => 0.05,
        Meter::OdometerKm => 0.125,
    }
}

impl MeterTrack {
    /// Starts tracking with the first reading, which is stored.
    pub fn new(meter: Meter, ts: Timestamp, raw: f64) -> (Self, MeterVerdict) {
        let t = Self {
            meter,
            last_ts: ts,
            last_raw: raw,
            offset: 0.0,
            stored_ts: ts,
            stored_raw: raw,
            pending: Vec::new(),
        };
        (t, MeterVerdict::Store { raw, value: raw })
    }

    /// The latest accepted value, offset applied.
    pub fn value(&self) -> f64 {
        self.last_raw + self.offset
    }

    fn max_rate(&self, limits: &MeterLimits) -> f64 {
        match self.meter {
            Meter::EngineHours | Meter::PtoHours => limits.max_hours_per_hour,
            Meter::OdometerKm => limits.max_km_per_hour,
        }
    }

    /// Judges one reading of the raw meter value at `ts`.
    pub fn observe(&mut self, ts: Timestamp, raw: f64, limits: &MeterLimits) -> MeterVerdict {
        let name = self.meter.as_str();
        // Two resolution steps absorb rounding and the two odometer PGNs'
        // different resolutions.
        let tolerance = 2.0 * resolution(self.meter);
        if ts < self.last_ts {
            if raw <= self.last_raw + tolerance {
                return MeterVerdict::Skip;
            }
            return MeterVerdict::Refuse(MeterAnomaly::OutOfOrder {
                meter: name,
                value: raw,
                last: self.last_raw,
            });
        }
        let hours = (ts.as_micros() - self.last_ts.as_micros()) as f64 / 3.6e9;
        let rise = raw - self.last_raw;
        let anomaly = if rise < -tolerance {
            if raw <= self.last_raw * limits.reset_below_share {
                return self.reset(ts, raw);
            }
            Some(MeterAnomaly::Backwards {
                meter: name,
                from: self.last_raw,
                to: raw,
            })
        } else if rise > self.max_rate(limits) * hours + tolerance {
            Some(MeterAnomaly::TooFast {
                meter: name,
                rise,
                hours,
            })
        } else {
            None
        };
        if let Some(anomaly) = anomaly {
            return self.anomalous(ts, raw, anomaly, limits, tolerance);
        }
        self.pending.clear();
        self.last_ts = ts;
        if rise > 0.0 {
            self.last_raw = raw;
        }
        let due = ts.as_micros() - self.stored_ts.as_micros() >= limits.store_every.as_micros();
        if due && self.last_raw - self.stored_raw >= resolution(self.meter) / 2.0 {
            self.stored_ts = ts;
            self.stored_raw = self.last_raw;
            MeterVerdict::Store {
                raw: self.last_raw,
                value: self.value(),
            }
        } else {
            MeterVerdict::Skip
        }
    }

    fn anomalous(
        &mut self,
        ts: Timestamp,
        raw: f64,
        anomaly: MeterAnomaly,
        limits: &MeterLimits,
        tolerance: f64,
    ) -> MeterVerdict {
        let agrees = self.pending.last().is_none_or(|&(pts, praw)| {
            let hours = (ts.as_micros() - pts.as_micros()) as f64 / 3.6e9;
            raw >= praw - tolerance && raw - praw <= self.max_rate(limits) * hours + tolerance
        });
        if !agrees {
            self.pending.clear();
        }
        self.pending.push((ts, raw));
        if self.pending.len() >= limits.rebaseline_after {
            self.pending.clear();
            return self.reset(ts, raw);
        }
        MeterVerdict::Refuse(anomaly)
    }

    fn reset(&mut self, ts: Timestamp, raw: f64) -> MeterVerdict {
        let previous = self.value();
        self.offset = previous - raw;
        self.last_ts = ts;
        self.last_raw = raw;
        self.stored_ts = ts;
        self.stored_raw = raw;
        self.pending.clear();
        MeterVerdict::Reset {
            previous,
            raw,
            offset: self.offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(hours: f64) -> Timestamp {
        Timestamp::from_micros((hours * 3.6e9) as i64)
    }

    fn track(raw: f64) -> MeterTrack {
        MeterTrack::new(Meter::EngineHours, h(0.0), raw).0
    }

    #[test]
    fn stores_at_most_every_ten_minutes() {
        let limits = MeterLimits::default();
        let mut t = track(1000.0);
        // A reading a minute for an hour of running: 0.05 h per 3 minutes.
        let mut stored = Vec::new();
        for minute in 1..=60 {
            let raw = 1000.0 + (minute / 3) as f64 * 0.05;
            if let MeterVerdict::Store { value, .. } =
                t.observe(h(minute as f64 / 60.0), raw, &limits)
            {
                stored.push((minute, value));
            }
        }
        assert_eq!(stored.len(), 6, "{stored:?}");
        assert_eq!(stored[0].0, 10);
        assert!((t.value() - 1001.0).abs() < 1e-9);
    }

    #[test]
    fn idle_readings_store_nothing() {
        let limits = MeterLimits::default();
        let mut t = track(1000.0);
        for hour in 1..48 {
            assert_eq!(
                t.observe(h(f64::from(hour)), 1000.0, &limits),
                MeterVerdict::Skip
            );
        }
    }

    #[test]
    fn backwards_is_refused() {
        let limits = MeterLimits::default();
        let mut t = track(1000.0);
        assert!(matches!(
            t.observe(h(1.0), 900.0, &limits),
            MeterVerdict::Refuse(MeterAnomaly::Backwards {
                from: 1000.0,
                to: 900.0,
                ..
            })
        ));
        // One resolution step back is rounding, not an anomaly.
        assert_eq!(t.observe(h(1.1), 999.95, &limits), MeterVerdict::Skip);
        assert_eq!(t.value(), 1000.0);
    }

    #[test]
    fn a_jump_is_refused() {
        let limits = MeterLimits::default();
        let mut t = track(1000.0);
        assert!(matches!(
            t.observe(h(1.0), 1003.0, &limits),
            MeterVerdict::Refuse(MeterAnomaly::TooFast { .. })
        ));
        // The next plausible reading is judged against the last accepted one.
        assert!(matches!(
            t.observe(h(2.0), 1001.5, &limits),
            MeterVerdict::Store { .. }
        ));
    }

    #[test]
    fn an_ecu_swap_is_a_reset_with_continuity() {
        let limits = MeterLimits::default();
        let mut t = track(5000.0);
        assert_eq!(
            t.observe(h(1.0), 2.0, &limits),
            MeterVerdict::Reset {
                previous: 5000.0,
                raw: 2.0,
                offset: 4998.0
            }
        );
        assert!(
            matches!(t.observe(h(12.0), 12.0, &limits), MeterVerdict::Store { value, .. } if value == 5010.0)
        );
    }

    #[test]
    fn a_swap_to_a_used_ecu_rebaselines_after_three_agreeing_readings() {
        let limits = MeterLimits::default();
        let mut t = track(5000.0);
        assert!(matches!(
            t.observe(h(1.0), 3000.0, &limits),
            MeterVerdict::Refuse(_)
        ));
        assert!(matches!(
            t.observe(h(1.5), 3000.2, &limits),
            MeterVerdict::Refuse(_)
        ));
        assert!(matches!(
            t.observe(h(2.0), 3000.5, &limits),
            MeterVerdict::Reset {
                previous: 5000.0,
                ..
            }
        ));
        assert!((t.value() - 5000.0).abs() < 1e-9);
    }

    #[test]
    fn out_of_order_readings() {
        let limits = MeterLimits::default();
        let mut t = track(1000.0);
        t.observe(h(2.0), 1001.0, &limits);
        assert_eq!(t.observe(h(1.0), 1000.5, &limits), MeterVerdict::Skip);
        assert!(matches!(
            t.observe(h(1.0), 1005.0, &limits),
            MeterVerdict::Refuse(MeterAnomaly::OutOfOrder { .. })
        ));
    }
}
