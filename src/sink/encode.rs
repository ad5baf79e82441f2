//! Store records → line protocol (sans-IO). Times are the records' own
//! (the truck's clock), in nanoseconds.

use std::sync::{Arc, RwLock};

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::j1939::{Fmi, LampStatus, Lamps, Meter, Spn};
use fleetcare_ingest::pipeline::episodes::FaultSource;
use fleetcare_ingest::pipeline::{Record, VehicleKey};

use super::line::{LineBuf, Point};
use super::schema::{self, field, tag};
use crate::registry::ModelMap;

/// Encodes records with the vehicles' models as tags.
#[derive(Debug, Clone)]
pub struct Encoder {
    models: Arc<RwLock<ModelMap>>,
}

impl Encoder {
    /// `models` is the registry's view the service keeps fresh.
    pub fn new(models: Arc<RwLock<ModelMap>>) -> Self {
        Self { models }
    }

    /// Appends a line per meter, meter reset, fault start or end and lamp
    /// change of `records`; dead letters have no line (they are counted
    /// in `/metrics`).
    pub fn encode(&self, records: &[Record], out: &mut LineBuf) {
        if !records.iter().any(has_line) {
            return;
        }
        let models = self.models.read().unwrap_or_else(|e| e.into_inner());
        for r in records {
            encode_one(r, &models, out);
        }
    }
}

/// Whether a record becomes a line (dead letters do not).
pub(crate) fn has_line(r: &Record) -> bool {
    !matches!(r, Record::DeadLetter(_) | Record::Signal { .. })
}

/// Nanoseconds since the epoch; `None` beyond what an i64 of ns holds
/// (after 2262), which no truck clock should claim.
pub(crate) fn time_ns(ts: Timestamp) -> Option<i64> {
    ts.as_micros().checked_mul(1_000)
}

/// A lamp as a number: 1 on, 0 off; not available or error: no value
/// (three states, never folded into 0).
fn lamp(s: LampStatus) -> Option<f64> {
    match s {
        LampStatus::On => Some(1.0),
        LampStatus::Off => Some(0.0),
        LampStatus::Error | LampStatus::NotAvailable => None,
    }
}

fn lamp_fields<'a>(p: Point<'a>, lamps: &Lamps) -> Point<'a> {
    p.field_opt(field::AMBER_WARNING, lamp(lamps.amber_warning))
        .field_opt(field::MIL, lamp(lamps.mil))
        .field_opt(field::PROTECT, lamp(lamps.protect))
        .field_opt(field::RED_STOP, lamp(lamps.red_stop))
}

/// The `ecu` and `source` tags: the ECU only for DM1 faults, so the start
/// and end of a telemetry episode have the same tags.
fn source_tags(source: FaultSource) -> (Option<u32>, &'static str) {
    match source {
        FaultSource::Ecu(a) => (Some(a.0.into()), "dm1"),
        FaultSource::Telemetry => (None, "telemetry"),
    }
}

/// The tags of a meter's series (`meter`, `meter_reset`).
fn meter_series<'a>(
    out: &'a mut LineBuf,
    measurement: &str,
    vehicle: &VehicleKey,
    meter: Meter,
    model: &str,
) -> Point<'a> {
    out.point(measurement)
        .tag(tag::FLEET, vehicle.fleet.as_str())
        .tag(tag::METER, meter.as_str())
        .tag(tag::MODEL, model)
        .tag(tag::VEHICLE, vehicle.vehicle.as_str())
}

/// The tags of a fault's series, the same for its start and end.
fn fault_series<'a>(
    out: &'a mut LineBuf,
    vehicle: &VehicleKey,
    source: FaultSource,
    (spn, fmi): (Spn, Fmi),
    model: &str,
) -> Point<'a> {
    let (ecu, source) = source_tags(source);
    out.point(schema::FAULT.name)
        .tag_num_opt(tag::ECU, ecu)
        .tag(tag::FLEET, vehicle.fleet.as_str())
        .tag_num(tag::FMI, fmi.raw().into())
        .tag(tag::MODEL, model)
        .tag(tag::SOURCE, source)
        .tag_num(tag::SPN, spn.raw())
        .tag(tag::VEHICLE, vehicle.vehicle.as_str())
}

fn encode_one(r: &Record, models: &ModelMap, out: &mut LineBuf) {
    let model = |v: &VehicleKey| models.get(v).map_or("", |m| m.as_str());
    match r {
        Record::Meter {
            vehicle,
            ts,
            meter,
            raw,
            value,
        } => {
            let Some(ns) = time_ns(*ts) else { return };
            meter_series(out, schema::METER.name, vehicle, *meter, model(vehicle))
                .field(field::RAW, *raw)
                .field(field::VALUE, *value)
                .finish(ns);
        }
        Record::MeterReset {
            vehicle,
            ts,
            meter,
            previous,
            raw,
            offset,
        } => {
            let Some(ns) = time_ns(*ts) else { return };
            meter_series(
                out,
                schema::METER_RESET.name,
                vehicle,
                *meter,
                model(vehicle),
            )
            .field(field::OFFSET, *offset)
            .field(field::PREVIOUS, *previous)
            .field(field::RAW, *raw)
            .finish(ns);
        }
        Record::FaultStarted {
            vehicle,
            ts,
            source,
            dtc,
            lamps,
            ..
        } => {
            let Some(ns) = time_ns(*ts) else { return };
            let occurrences = dtc.oc.is_available().then(|| f64::from(dtc.oc.raw()));
            fault_series(out, vehicle, *source, (dtc.spn, dtc.fmi), model(vehicle))
                .field_opt(field::AMBER_WARNING, lamp(lamps.amber_warning))
                .field_opt(field::MIL, lamp(lamps.mil))
                .field_opt(field::OCCURRENCES, occurrences)
                .field_opt(field::PROTECT, lamp(lamps.protect))
                .field_opt(field::RED_STOP, lamp(lamps.red_stop))
                .field(field::STARTED, 1.0)
                .finish(ns);
        }
        Record::FaultEnded {
            vehicle,
            ts,
            source,
            spn,
            fmi,
            started,
        } => {
            let Some(ns) = time_ns(*ts) else { return };
            let duration_s = (ts.as_micros() - started.as_micros()) as f64 / 1e6;
            fault_series(out, vehicle, *source, (*spn, *fmi), model(vehicle))
                .field(field::DURATION_S, duration_s)
                .field(field::ENDED, 1.0)
                .finish(ns);
        }
        Record::LampsChanged {
            vehicle,
            ts,
            source,
            lamps,
        } => {
            let Some(ns) = time_ns(*ts) else { return };
            let (ecu, source) = source_tags(*source);
            let p = out
                .point(schema::LAMPS.name)
                .tag_num_opt(tag::ECU, ecu)
                .tag(tag::FLEET, vehicle.fleet.as_str())
                .tag(tag::MODEL, model(vehicle))
                .tag(tag::SOURCE, source)
                .tag(tag::VEHICLE, vehicle.vehicle.as_str());
            lamp_fields(p, lamps).finish(ns);
        }
        // Signals reach the store as windows; the sink writes no samples.
        Record::DeadLetter(_) | Record::Signal { .. } => {}
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use fleetcare_ingest::ids::{FleetId, VehicleId};
    use fleetcare_ingest::j1939::{Address, Dtc, OccurrenceCount};
    use fleetcare_ingest::pipeline::DeadLetter;

    use super::*;
    use crate::catalog::ModelId;

    fn key(v: &str) -> Arc<VehicleKey> {
        Arc::new(VehicleKey {
            fleet: FleetId::new("acme").unwrap(),
            vehicle: VehicleId::new(v).unwrap(),
        })
    }

    const T: i64 = 1_772_323_200_000_000; // 2026-03-01T00:00:00Z in µs

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_micros(T + s * 1_000_000)
    }

    /// One record of every kind that has a line, and a dead letter.
    pub(crate) fn samples() -> Vec<Record> {
        let lamps = Lamps {
            mil: LampStatus::Off,
            red_stop: LampStatus::On,
            amber_warning: LampStatus::NotAvailable,
            protect: LampStatus::Off,
        };
        vec![
            Record::Meter {
                vehicle: key("TRK-001"),
                ts: ts(0),
                meter: Meter::EngineHours,
                raw: 10.5,
                value: 1010.5,
            },
            Record::MeterReset {
                vehicle: key("TRK-001"),
                ts: ts(1),
                meter: Meter::OdometerKm,
                previous: 5000.0,
                raw: 3.0,
                offset: 4997.0,
            },
            Record::FaultStarted {
                vehicle: key("TRK-002"),
                ts: ts(2),
                source: FaultSource::Ecu(Address(0)),
                ecu: Address(0),
                dtc: Dtc {
                    spn: Spn::new(110).unwrap(),
                    fmi: Fmi::new(0).unwrap(),
                    oc: OccurrenceCount::new(3).unwrap(),
                    cm: false,
                    raw: [0; 4],
                },
                lamps,
            },
            Record::FaultEnded {
                vehicle: key("TRK-002"),
                ts: ts(92),
                source: FaultSource::Telemetry,
                spn: Spn::new(3216).unwrap(),
                fmi: Fmi::new(18).unwrap(),
                started: ts(2),
            },
            Record::LampsChanged {
                vehicle: key("TRK-002"),
                ts: ts(3),
                source: FaultSource::Ecu(Address(61)),
                lamps,
            },
            Record::DeadLetter(DeadLetter {
                received: ts(4),
                topic: "fleet/acme/x/can".into(),
                excerpt: String::new(),
                reason: fleetcare_ingest::pipeline::DeadLetterReason::Candump,
                detail: String::new(),
                more: Vec::new(),
                vehicle: None,
            }),
        ]
    }

    fn encoder() -> Encoder {
        let mut models = ModelMap::new();
        models.insert(
            (*key("TRK-001")).clone(),
            ModelId::new("sweeper-s7").unwrap(),
        );
        models.insert(
            (*key("TRK-002")).clone(),
            ModelId::new("compactor-c12").unwrap(),
        );
        Encoder::new(Arc::new(RwLock::new(models)))
    }

    #[test]
    fn every_record_kind_as_a_line() {
        let mut out = LineBuf::new();
        encoder().encode(&samples(), &mut out);
        let text = std::str::from_utf8(out.as_bytes()).unwrap();
        let expected = "\
meter,fleet=acme,meter=engine_hours,model=sweeper-s7,vehicle=TRK-001 raw=10.5,value=1010.5 1772323200000000000
meter_reset,fleet=acme,meter=odometer_km,model=sweeper-s7,vehicle=TRK-001 offset=4997,previous=5000,raw=3 1772323201000000000
fault,ecu=0,fleet=acme,fmi=0,model=compactor-c12,source=dm1,spn=110,vehicle=TRK-002 mil=0,occurrences=3,protect=0,red_stop=1,started=1 1772323202000000000
fault,fleet=acme,fmi=18,model=compactor-c12,source=telemetry,spn=3216,vehicle=TRK-002 duration_s=90,ended=1 1772323292000000000
lamps,ecu=61,fleet=acme,model=compactor-c12,source=dm1,vehicle=TRK-002 mil=0,protect=0,red_stop=1 1772323203000000000
";
        assert_eq!(text, expected);
        assert_eq!(out.lines(), 5);
    }

    /// Splits a line into (measurement, tag keys, field keys); enough for
    /// the text this module writes (no escaped separators).
    pub(crate) fn names(line: &str) -> (String, Vec<String>, Vec<String>) {
        let mut parts = line.split(' ');
        let series = parts.next().unwrap();
        let fields = parts.next().unwrap();
        let mut series = series.split(',');
        let m = series.next().unwrap().to_owned();
        let key = |kv: &str| kv.split_once('=').unwrap().0.to_owned();
        (
            m,
            series.map(key).collect(),
            fields.split(',').map(key).collect(),
        )
    }

    #[test]
    fn the_schema_is_what_is_written() {
        let mut out = LineBuf::new();
        encoder().encode(&samples(), &mut out);
        let text = std::str::from_utf8(out.as_bytes()).unwrap();
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        for line in text.lines() {
            let (m, tags, fields) = names(line);
            let schema = schema::measurement(&m).unwrap();
            assert!(tags.is_sorted(), "{line}");
            for t in tags {
                assert!(schema.tags.contains(&t.as_str()), "{line}");
                seen.insert((m.clone(), t));
            }
            for f in fields {
                assert!(schema.fields.contains(&f.as_str()), "{line}");
                seen.insert((m.clone(), f));
            }
        }
        // Every name of these measurements occurs (amber_warning, not
        // available in the samples, occurs in the lamps test below).
        for m in [
            schema::METER,
            schema::METER_RESET,
            schema::FAULT,
            schema::LAMPS,
        ] {
            for name in m.tags.iter().chain(m.fields) {
                if *name == field::AMBER_WARNING {
                    continue;
                }
                assert!(
                    seen.contains(&(m.name.to_owned(), (*name).to_owned())),
                    "{} {name}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn lamps_keep_three_states() {
        assert_eq!(lamp(LampStatus::On), Some(1.0));
        assert_eq!(lamp(LampStatus::Off), Some(0.0));
        assert_eq!(lamp(LampStatus::Error), None);
        assert_eq!(lamp(LampStatus::NotAvailable), None);
        let all_na = Lamps {
            mil: LampStatus::NotAvailable,
            red_stop: LampStatus::Error,
            amber_warning: LampStatus::NotAvailable,
            protect: LampStatus::NotAvailable,
        };
        let mut out = LineBuf::new();
        let r = Record::LampsChanged {
            vehicle: key("TRK-003"),
            ts: ts(0),
            source: FaultSource::Telemetry,
            lamps: all_na,
        };
        encoder().encode(std::slice::from_ref(&r), &mut out);
        assert!(out.is_empty(), "a point without a field is not written");
        let r = Record::LampsChanged {
            vehicle: key("TRK-003"),
            ts: ts(0),
            source: FaultSource::Telemetry,
            lamps: Lamps {
                amber_warning: LampStatus::On,
                ..all_na
            },
        };
        encoder().encode(&[r], &mut out);
        assert_eq!(
            std::str::from_utf8(out.as_bytes()).unwrap(),
            "lamps,fleet=acme,source=telemetry,vehicle=TRK-003 amber_warning=1 1772323200000000000\n"
        );
    }
}
