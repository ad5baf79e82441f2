//! The JSON payload of gateways that decode J1939 on board
//! (`fleet/{fleet}/{vehicle}/telemetry`, design contract C1):
//!
//! ```json
//! {"ts": "2026-03-01T08:00:00Z",
//!  "engine_hours": 1234.55, "pto_hours": 210.2, "odometer_km": 48211.3,
//!  "dtcs": [{"spn": 110, "fmi": 0, "oc": 3, "sa": 0}],
//!  "lamps": {"mil": "off", "red_stop": "on", "amber_warning": "off", "protect": "off"},
//!  "signals": {"coolant_temp_c": 88.5, "hydraulic_oil_temp_c": 61.0}}
//! ```
//!
//! `signals` (contract C12) maps signal names (lowercase letters, digits,
//! `_`; at most [`MAX_SIGNALS`] of them) to finite numbers.
//!
//! `ts` is required, every other field optional; `dtcs`, when present, is
//! the complete list of active faults (an empty list clears them). Unknown
//! fields are refused, so a misspelt field is an error instead of a value
//! silently lost. A DTC without `oc` has occurrence count "not available".
//!
//! [`parse`] reads and validates a payload; [`Telemetry::to_json`] writes
//! one (the Modbus source and the simulator send what it writes), through
//! the same wire structs, so the two cannot drift apart.

use serde::{Deserialize, Serialize};

use crate::j1939::{Address, Dtc, Fmi, LampStatus, Lamps, OccurrenceCount, SignalName, Spn};
use crate::timestamp::Timestamp;

/// The largest engine or PTO hours J1939 can carry (0xFAFFFFFF × 0.05 h).
pub const MAX_HOURS: f64 = 210_554_060.75;
/// The largest distance J1939 can carry (0xFAFFFFFF × 0.125 km).
pub const MAX_KM: f64 = 526_385_151.875;
/// The most signals one message may carry.
pub const MAX_SIGNALS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("not valid telemetry JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("`ts` {ts:?} is not an RFC 3339 time such as 2026-03-01T08:00:00Z")]
    BadTime { ts: String },
    #[error("`{field}` = {value} is outside {range}")]
    OutOfRange {
        field: String,
        value: String,
        range: &'static str,
    },
}

/// One active fault as reported by a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelemetryDtc {
    pub dtc: Dtc,
    /// The ECU that reported it.
    pub source: Address,
}

/// A validated telemetry message.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    pub ts: Timestamp,
    pub engine_hours: Option<f64>,
    pub pto_hours: Option<f64>,
    pub odometer_km: Option<f64>,
    /// `None`: the message says nothing about faults. `Some(empty)`: none active.
    pub dtcs: Option<Vec<TelemetryDtc>>,
    pub lamps: Option<Lamps>,
    /// Condition signals (C12), in name order.
    pub signals: Vec<(SignalName, f64)>,
}

/// The payload as it is on the wire, read by [`parse`] and written by
/// [`Telemetry::to_json`]. The field order is the order written; fields
/// that are `None` are left out.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawTelemetry {
    ts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine_hours: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pto_hours: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    odometer_km: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dtcs: Option<Vec<RawDtc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lamps: Option<RawLamps>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signals: Option<std::collections::BTreeMap<String, f64>>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawDtc {
    spn: u64,
    fmi: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    oc: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sa: Option<u64>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawLamps {
    #[serde(skip_serializing_if = "Option::is_none")]
    mil: Option<RawLamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    red_stop: Option<RawLamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amber_warning: Option<RawLamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protect: Option<RawLamp>,
}

#[derive(Deserialize, Serialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawLamp {
    Off,
    On,
    Error,
    NotAvailable,
}

impl From<Option<RawLamp>> for LampStatus {
    fn from(l: Option<RawLamp>) -> Self {
        match l {
            Some(RawLamp::Off) => Self::Off,
            Some(RawLamp::On) => Self::On,
            Some(RawLamp::Error) => Self::Error,
            Some(RawLamp::NotAvailable) | None => Self::NotAvailable,
        }
    }
}

impl From<LampStatus> for RawLamp {
    fn from(l: LampStatus) -> Self {
        match l {
            LampStatus::Off => Self::Off,
            LampStatus::On => Self::On,
            LampStatus::Error => Self::Error,
            LampStatus::NotAvailable => Self::NotAvailable,
        }
    }
}

impl From<&Telemetry> for RawTelemetry {
    fn from(t: &Telemetry) -> Self {
        let lamp = |l: LampStatus| Some(RawLamp::from(l));
        Self {
            ts: t.ts.to_rfc3339(),
            engine_hours: t.engine_hours,
            pto_hours: t.pto_hours,
            odometer_km: t.odometer_km,
            dtcs: t.dtcs.as_ref().map(|list| {
                list.iter()
                    .map(|d| RawDtc {
                        spn: u64::from(d.dtc.spn.raw()),
                        fmi: u64::from(d.dtc.fmi.raw()),
                        oc: Some(u64::from(d.dtc.oc.raw())),
                        sa: Some(u64::from(d.source.0)),
                    })
                    .collect()
            }),
            lamps: t.lamps.map(|l| RawLamps {
                mil: lamp(l.mil),
                red_stop: lamp(l.red_stop),
                amber_warning: lamp(l.amber_warning),
                protect: lamp(l.protect),
            }),
            signals: (!t.signals.is_empty()).then(|| {
                t.signals
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), *v))
                    .collect()
            }),
        }
    }
}

impl Telemetry {
    /// The C1 payload of this message, compact, fields in the order of the
    /// module's example: `ts` (RFC 3339, microseconds, `Z`), the meters, `dtcs`
    /// (each with `spn`, `fmi`, `oc` and `sa`), then `lamps` (all four).
    /// Fields that are `None` are left out. [`parse`] reads it back to an
    /// equal value when the values are in the ranges it accepts (a DTC
    /// carries its SPN, FMI and occurrence count: the conversion-method bit
    /// and raw bytes of a [`Dtc`] are not part of C1).
    pub fn to_json(&self) -> String {
        // Only strings, numbers and structs: nothing serde_json can refuse
        // (a non-finite meter is written as `null`).
        serde_json::to_string(&RawTelemetry::from(self))
            .expect("telemetry always serialises to JSON")
    }
}

fn out_of_range(field: String, value: impl ToString, range: &'static str) -> TelemetryError {
    TelemetryError::OutOfRange {
        field,
        value: value.to_string(),
        range,
    }
}

fn meter(
    field: &str,
    v: Option<f64>,
    max: f64,
    range: &'static str,
) -> Result<Option<f64>, TelemetryError> {
    match v {
        Some(x) if !(0.0..=max).contains(&x) => Err(out_of_range(field.to_owned(), x, range)),
        v => Ok(v),
    }
}

/// Parses and validates one telemetry payload.
pub fn parse(payload: &[u8]) -> Result<Telemetry, TelemetryError> {
    let raw: RawTelemetry = serde_json::from_slice(payload)?;
    let ts = chrono::DateTime::parse_from_rfc3339(&raw.ts)
        .map(|t| Timestamp::from_datetime(&t))
        .map_err(|_| TelemetryError::BadTime { ts: raw.ts.clone() })?;
    let dtcs = raw
        .dtcs
        .map(|list| {
            list.into_iter()
                .enumerate()
                .map(|(i, d)| {
                    let field = |name: &str| format!("dtcs[{i}].{name}");
                    let spn = u32::try_from(d.spn)
                        .ok()
                        .and_then(Spn::new)
                        .ok_or_else(|| out_of_range(field("spn"), d.spn, "0–524287"))?;
                    let fmi = u8::try_from(d.fmi)
                        .ok()
                        .and_then(Fmi::new)
                        .ok_or_else(|| out_of_range(field("fmi"), d.fmi, "0–31"))?;
                    let oc = match d.oc {
                        None => OccurrenceCount::NOT_AVAILABLE,
                        Some(oc) => u8::try_from(oc)
                            .ok()
                            .and_then(OccurrenceCount::new)
                            .ok_or_else(|| out_of_range(field("oc"), oc, "0–127"))?,
                    };
                    let source = match d.sa {
                        None => Address(0),
                        Some(sa) => u8::try_from(sa)
                            .map(Address)
                            .map_err(|_| out_of_range(field("sa"), sa, "0–255"))?,
                    };
                    Ok(TelemetryDtc {
                        dtc: Dtc::new(spn, fmi, oc),
                        source,
                    })
                })
                .collect::<Result<Vec<_>, TelemetryError>>()
        })
        .transpose()?;
    let signals = raw.signals.unwrap_or_default();
    if signals.len() > MAX_SIGNALS {
        return Err(out_of_range(
            "signals".to_owned(),
            format!("{} names", signals.len()),
            "at most 64 names",
        ));
    }
    let signals = signals
        .into_iter()
        .map(|(name, v)| match SignalName::new(&name) {
            Some(n) if v.is_finite() => Ok((n, v)),
            Some(_) => Err(out_of_range(format!("signals.{name}"), v, "finite numbers")),
            None => Err(out_of_range(
                format!("signals.{}", name.chars().take(80).collect::<String>()),
                "(name)",
                "names of a-z, 0-9 and _, at most 64 characters",
            )),
        })
        .collect::<Result<Vec<_>, TelemetryError>>()?;
    Ok(Telemetry {
        ts,
        engine_hours: meter(
            "engine_hours",
            raw.engine_hours,
            MAX_HOURS,
            "0–210554060.75 h",
        )?,
        pto_hours: meter("pto_hours", raw.pto_hours, MAX_HOURS, "0–210554060.75 h")?,
        odometer_km: meter("odometer_km", raw.odometer_km, MAX_KM, "0–526385151.875 km")?,
        dtcs,
        lamps: raw.lamps.map(|l| Lamps {
            mil: l.mil.into(),
            red_stop: l.red_stop.into(),
            amber_warning: l.amber_warning.into(),
            protect: l.protect.into(),
        }),
        signals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_example() {
        let t = parse(
            br#"{"ts": "2026-03-01T08:00:00Z",
                "engine_hours": 1234.55, "pto_hours": 210.2, "odometer_km": 48211.3,
                "dtcs": [{"spn": 110, "fmi": 0, "oc": 3, "sa": 0}],
                "lamps": {"mil": "off", "red_stop": "on", "amber_warning": "off", "protect": "off"}}"#,
        )
        .unwrap();
        assert_eq!(t.ts.to_rfc3339(), "2026-03-01T08:00:00.000000Z");
        assert_eq!(
            (t.engine_hours, t.pto_hours, t.odometer_km),
            (Some(1234.55), Some(210.2), Some(48211.3))
        );
        let dtcs = t.dtcs.unwrap();
        assert_eq!(dtcs.len(), 1);
        let d = dtcs[0];
        assert_eq!(
            (d.dtc.spn.raw(), d.dtc.fmi.raw(), d.dtc.oc.raw(), d.source),
            (110, 0, 3, Address(0))
        );
        assert_eq!(t.lamps.unwrap().red_stop, LampStatus::On);
    }

    #[test]
    fn writes_what_it_parses() {
        let example = r#"{"ts":"2026-03-01T08:00:00.000000Z","engine_hours":1234.55,"pto_hours":210.2,"odometer_km":48211.3,"dtcs":[{"spn":110,"fmi":0,"oc":3,"sa":0}],"lamps":{"mil":"off","red_stop":"on","amber_warning":"off","protect":"off"}}"#;
        let t = parse(example.as_bytes()).unwrap();
        assert_eq!(t.to_json(), example);
        // What is `None` is left out, and a whole number is still a float.
        let meters_only = Telemetry {
            engine_hours: None,
            pto_hours: Some(12.0),
            dtcs: None,
            lamps: None,
            ..t.clone()
        };
        assert_eq!(
            meters_only.to_json(),
            r#"{"ts":"2026-03-01T08:00:00.000000Z","pto_hours":12.0,"odometer_km":48211.3}"#
        );
        // An occurrence count that is not available is written as such
        // (127) and reads back the same; no faults is an empty list.
        let not_available = parse(
            br#"{"ts": "2026-03-01T08:00:00Z", "dtcs": [{"spn": 524287, "fmi": 31, "sa": 255}], "lamps": {}}"#,
        )
        .unwrap();
        let json = not_available.to_json();
        assert!(
            json.contains(r#"{"spn":524287,"fmi":31,"oc":127,"sa":255}"#),
            "{json}"
        );
        assert!(json.contains(r#""mil":"not_available""#), "{json}");
        assert_eq!(parse(json.as_bytes()).unwrap(), not_available);
        let cleared = Telemetry {
            dtcs: Some(vec![]),
            ..meters_only
        };
        assert!(cleared.to_json().contains(r#""dtcs":[]"#));
    }

    #[test]
    fn only_ts_is_required() {
        let t = parse(br#"{"ts": "2026-03-01T09:00:00+01:00"}"#).unwrap();
        assert_eq!(t.ts.to_rfc3339(), "2026-03-01T08:00:00.000000Z");
        assert_eq!(t.dtcs, None);
        assert_eq!(t.lamps, None);
        let t = parse(br#"{"ts": "2026-03-01T08:00:00Z", "dtcs": [], "lamps": {"mil": "on"}}"#)
            .unwrap();
        assert_eq!(t.dtcs, Some(vec![]));
        assert_eq!(t.lamps.unwrap().protect, LampStatus::NotAvailable);
        let t = parse(br#"{"ts": "2026-03-01T08:00:00Z", "dtcs": [{"spn": 524287, "fmi": 31}]}"#)
            .unwrap();
        let d = t.dtcs.unwrap()[0];
        assert_eq!(
            (d.dtc.spn.raw(), d.dtc.oc, d.source),
            (524_287, OccurrenceCount::NOT_AVAILABLE, Address(0))
        );
    }

    #[test]
    fn refuses_with_the_field_named() {
        let err = |s: &str| parse(s.as_bytes()).unwrap_err().to_string();
        assert!(err(r#"{"engine_hours": 1}"#).contains("missing field `ts`"));
        assert!(err(r#"{"ts": "yesterday"}"#).contains("RFC 3339"));
        assert!(
            err(r#"{"ts": "2026-03-01T08:00:00Z", "dtcs": [{"spn": 524288, "fmi": 0}]}"#)
                .contains("dtcs[0].spn")
        );
        assert!(err(r#"{"ts": "2026-03-01T08:00:00Z", "dtcs": [{"spn": 1, "fmi": 0}, {"spn": 1, "fmi": 32}]}"#)
            .contains("dtcs[1].fmi"));
        assert!(
            err(r#"{"ts": "2026-03-01T08:00:00Z", "dtcs": [{"spn": 1, "fmi": 0, "oc": 128}]}"#)
                .contains("dtcs[0].oc")
        );
        assert!(
            err(r#"{"ts": "2026-03-01T08:00:00Z", "dtcs": [{"spn": 1, "fmi": 0, "sa": 256}]}"#)
                .contains("dtcs[0].sa")
        );
        assert!(
            err(r#"{"ts": "2026-03-01T08:00:00Z", "dtcs": [{"spn": -1, "fmi": 0}]}"#)
                .contains("invalid value")
        );
        assert!(
            err(r#"{"ts": "2026-03-01T08:00:00Z", "engine_hours": -0.5}"#).contains("engine_hours")
        );
        assert!(
            err(r#"{"ts": "2026-03-01T08:00:00Z", "odometer": 5}"#)
                .contains("unknown field `odometer`")
        );
        assert!(
            err(r#"{"ts": "2026-03-01T08:00:00Z", "lamps": {"mil": "blinking"}}"#)
                .contains("unknown variant")
        );
        assert!(err("not json").contains("not valid telemetry JSON"));
        assert!(
            err(r#"{"ts": "2026-03-01T08:00:00Z", "signals": {"Bad Name": 1}}"#)
                .contains("signals.Bad Name")
        );
        assert!(
            err(r#"{"ts": "2026-03-01T08:00:00Z", "signals": {"x": "hot"}}"#)
                .contains("invalid type")
        );
    }

    // Issue 23: condition signals ride in telemetry.
    #[test]
    fn signals_round_trip() {
        let t = parse(
            br#"{"ts": "2026-03-01T08:00:00Z", "signals": {"oil_temp_c": 91.5, "pump_bar": 180}}"#,
        )
        .unwrap();
        assert_eq!(
            t.signals,
            vec![
                (SignalName::Known(crate::j1939::Signal::OilTempC), 91.5),
                (SignalName::new("pump_bar").unwrap(), 180.0),
            ]
        );
        let json = t.to_json();
        assert_eq!(
            json,
            r#"{"ts":"2026-03-01T08:00:00.000000Z","signals":{"oil_temp_c":91.5,"pump_bar":180.0}}"#
        );
        assert_eq!(parse(json.as_bytes()).unwrap(), t);
    }
}
