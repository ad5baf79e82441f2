//! Gateway telemetry JSON: `fleetcare_ingest::telemetry::parse`.

use fleetcare_ingest::j1939::{Fmi, OccurrenceCount, Spn};
use fleetcare_ingest::telemetry::{MAX_HOURS, MAX_KM, TelemetryError, parse};

pub fn check(data: &[u8]) {
    match parse(data) {
        Ok(t) => {
            meter("engine_hours", t.engine_hours, MAX_HOURS);
            meter("pto_hours", t.pto_hours, MAX_HOURS);
            meter("odometer_km", t.odometer_km, MAX_KM);
            for d in t.dtcs.iter().flatten() {
                assert!(d.dtc.spn.raw() <= Spn::MAX, "{d:?}");
                assert!(d.dtc.fmi.raw() <= Fmi::MAX, "{d:?}");
                assert!(d.dtc.oc.raw() <= OccurrenceCount::MAX, "{d:?}");
                // Gateways send decoded fields, never the legacy layout.
                assert!(!d.dtc.cm, "{d:?}");
            }
            assert!(t.signals.len() <= fleetcare_ingest::telemetry::MAX_SIGNALS);
            for (name, v) in &t.signals {
                assert!(v.is_finite(), "{name} = {v}");
                assert!(!name.as_str().is_empty() && name.as_str().len() <= 64);
            }
        }
        Err(TelemetryError::Json(_) | TelemetryError::BadTime { .. }) => {}
        Err(TelemetryError::OutOfRange { field, .. }) => {
            // The field name is what an operator reads in the log.
            let known = matches!(
                field.as_str(),
                "engine_hours" | "pto_hours" | "odometer_km" | "signals"
            ) || field.starts_with("signals.")
                || field
                    .strip_prefix("dtcs[")
                    .and_then(|f| f.split_once("]."))
                    .is_some_and(|(i, name)| {
                        i.parse::<usize>().is_ok() && matches!(name, "spn" | "fmi" | "oc" | "sa")
                    });
            assert!(known, "out-of-range error names {field:?}");
        }
    }
}

fn meter(name: &str, value: Option<f64>, max: f64) {
    if let Some(v) = value {
        assert!(v.is_finite() && v >= 0.0 && v <= max, "{name} = {v}");
    }
}
