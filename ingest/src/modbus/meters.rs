//! Which registers of a map are C1 meters, and the telemetry message one
//! poll's meter values make: what a Modbus body controller has to say in
//! contract C1 terms.

use crate::Timestamp;
use crate::telemetry::Telemetry;

/// Register names that are C1 telemetry meters; a register map names its
/// meter registers exactly so. Every other register is body state (temps,
/// pressures, cycle counts) that C1 has no field for.
pub const METER_REGISTERS: [&str; 3] = ["engine_hours", "pto_hours", "odometer_km"];

/// The telemetry of one poll's `values` (register name, scaled value) read
/// at `ts`: the registers named like a meter ([`METER_REGISTERS`]) and
/// nothing else; a name read twice keeps its last value. `None` when the
/// poll read no meter: there is nothing C1 could carry.
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
    };
    for (name, value) in values {
        let slot = match name {
            "engine_hours" => &mut telemetry.engine_hours,
            "pto_hours" => &mut telemetry.pto_hours,
            "odometer_km" => &mut telemetry.odometer_km,
            _ => continue,
        };
        *slot = Some(value);
    }
    let has_meter = telemetry.engine_hours.is_some()
        || telemetry.pto_hours.is_some()
        || telemetry.odometer_km.is_some();
    has_meter.then_some(telemetry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_carries_only_the_meters() {
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
            })
        );
        // What the MQTT path accepts, Modbus produces.
        let parsed = crate::telemetry::parse(payload.as_bytes()).unwrap();
        assert_eq!(parsed.ts, ts);
        assert_eq!(parsed.pto_hours, Some(12_345.6));
        assert_eq!(parsed.engine_hours, None);
        assert_eq!(meter_telemetry(ts, [("body_fill_pct", 80.0)]), None);
        for name in METER_REGISTERS {
            assert!(meter_telemetry(ts, [(name, 1.0)]).is_some(), "{name}");
        }
        assert_eq!(meter_telemetry(ts, []), None);
    }
}
