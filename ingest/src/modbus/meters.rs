//! Which registers of a map are C1 meters, and the telemetry message one
//! poll's values make: what a Modbus body controller has to say in
//! contract C1 terms. Every other register is a condition signal (C12).

use crate::Timestamp;
use crate::j1939::SignalName;
use crate::telemetry::{MAX_SIGNALS, Telemetry};

/// Register names that are C1 telemetry meters; a register map names its
/// meter registers exactly so. Every other register is body state (temps,
/// pressures, cycle counts), sent as a C12 signal.
pub const METER_REGISTERS: [&str; 3] = ["engine_hours", "pto_hours", "odometer_km"];

/// The telemetry of one poll's `values` (register name, scaled value) read
/// at `ts`: the registers named like a meter ([`METER_REGISTERS`]) as
/// meters, every other register with a valid signal name and a finite
/// value as a signal (issue 23); a name read twice keeps its last value.
/// `None` when the poll read nothing C1 could carry.
pub fn meter_telemetry<'a>(
    ts: Timestamp,
    values: impl IntoIterator<Item = (&'a str, f64)>,
) -> Option<Telemetry> {
    let mut telemetry = Telemetry {
        ts,
        engine_hours: None,
        pto_hours: None,
        odometer_km: None,
        dtcs: None,
        lamps: None,
        signals: Vec::new(),
    };
    for (name, value) in values {
        let slot = match name {
            "engine_hours" => &mut telemetry.engine_hours,
            "pto_hours" => &mut telemetry.pto_hours,
            "odometer_km" => &mut telemetry.odometer_km,
            _ => {
                if let Some(n) = SignalName::new(name).filter(|_| value.is_finite()) {
                    telemetry.signals.retain(|(old, _)| *old != n);
                    if telemetry.signals.len() < MAX_SIGNALS {
                        telemetry.signals.push((n, value));
                    }
                }
                continue;
            }
        };
        *slot = Some(value);
    }
    telemetry
        .signals
        .sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let has_meter = telemetry.engine_hours.is_some()
        || telemetry.pto_hours.is_some()
        || telemetry.odometer_km.is_some();
    (has_meter || !telemetry.signals.is_empty()).then_some(telemetry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_carries_meters_and_signals() {
        let ts = Timestamp::from_micros(1_772_352_000_000_000);
        let payload = meter_telemetry(
            ts,
            [
                ("pto_hours", 12_345.6),
                ("hydraulic_oil_temp_c", -10.0),
                ("odometer_km", 48_211.3),
            ],
        )
        .unwrap()
        .to_json();
        let json: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ts": "2026-03-01T08:00:00.000000Z",
                "pto_hours": 12_345.6,
                "odometer_km": 48_211.3,
                "signals": {"hydraulic_oil_temp_c": -10.0},
            })
        );
        // What the MQTT path accepts, Modbus produces.
        let parsed = crate::telemetry::parse(payload.as_bytes()).unwrap();
        assert_eq!(parsed.ts, ts);
        assert_eq!(parsed.pto_hours, Some(12_345.6));
        assert_eq!(parsed.engine_hours, None);
        let body = meter_telemetry(ts, [("body_fill_pct", 80.0)]).unwrap();
        assert_eq!(body.signals.len(), 1);
        assert_eq!(meter_telemetry(ts, [("Bad Name", 80.0)]), None);
        for name in METER_REGISTERS {
            assert!(meter_telemetry(ts, [(name, 1.0)]).is_some(), "{name}");
        }
        assert_eq!(meter_telemetry(ts, []), None);
    }
}
