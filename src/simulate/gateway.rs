//! What a truck's gateway sends at an upload (contract C1), and the
//! garbage a faulty gateway or a broken link adds.
//!
//! A CAN gateway uploads a burst of `candump -L` lines: the meters
//! (65253, 65255, and 65248 and/or 65217), a few PGNs fleetcare ignores
//! (EEC1, ET1, CCVS, now and then an 11-bit body-controller heartbeat) and
//! the current DM1 of each ECU: one frame for zero or one DTC, a BAM for
//! more. A telemetry gateway sends the same state as one JSON object.

use fleetcare_ingest::candump;
use fleetcare_ingest::frame::{CanFrame, FrameData, FrameId};
use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::transport::bam_frames;
use fleetcare_ingest::j1939::{
    Address, CanId, DiagnosticMessage, DmKind, Dtc, LampFlash, LampStatus, Lamps, OccurrenceCount,
    Pgn, Priority, meters,
};
use fleetcare_ingest::pipeline::DeadLetterReason;
use fleetcare_ingest::telemetry::{self, Telemetry, TelemetryDtc};
use fleetcare_ingest::topic::{self, Channel, data_topic};
use fleetcare_ingest::{Duration, Timestamp};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::duty::Meters;
use super::faults::{Active, ECUS, ecu_of};
use super::fleet::Odometer;
use super::services::round_to;
use crate::catalog::Severity;

const IFACE: &str = "can0";
/// J1939-21 allows 50–200 ms between the packets of a BAM.
const BAM_SPACING: Duration = Duration::from_millis(50);
const INSTRUMENT_CLUSTER: Address = Address(0x17);

/// Codes that light the malfunction indicator: emissions.
fn lights_mil(spn: u32) -> bool {
    matches!(spn, 1761 | 3226 | 3251 | 3719 | 3720 | 4334 | 4364 | 5246)
}

/// The lamps of an ECU with these faults: red stop for a critical fault,
/// amber for high and medium, MIL for emissions.
pub(crate) fn lamps<'a>(faults: impl Iterator<Item = &'a Active>) -> Lamps {
    let mut l = Lamps::ALL_OFF;
    for a in faults {
        match a.span.severity {
            Severity::Critical => l.red_stop = LampStatus::On,
            Severity::High | Severity::Medium => l.amber_warning = LampStatus::On,
            Severity::Low => {}
        }
        if lights_mil(a.span.spn.raw()) {
            l.mil = LampStatus::On;
        }
    }
    l
}

/// The meter values a reader decodes from what was sent.
pub(crate) type Sent = Meters;

/// A CAN upload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CanUpload {
    /// The message, or its first part when a BAM was cut in two.
    pub(crate) payload: String,
    /// The rest of a cut BAM, sent as the next MQTT message.
    pub(crate) rest: Option<String>,
    /// Time of the last frame of `payload`, and of `rest`.
    pub(crate) last_us: i64,
    pub(crate) rest_last_us: i64,
    /// When each ECU's DM1 is complete, in [`ECUS`] order: the time that
    /// starts and ends its episodes.
    pub(crate) snapshot_us: [i64; 4],
    pub(crate) sent: Sent,
    /// True when at least one DM1 went over BAM.
    pub(crate) has_bam: bool,
}

const fn priority(p: u8) -> Priority {
    match Priority::new(p) {
        Some(p) => p,
        None => panic!("J1939 priorities are 0 to 7"),
    }
}

const fn pgn(raw: u32) -> Pgn {
    match Pgn::new(raw) {
        Some(p) => p,
        None => panic!("PGNs are 18 bits"),
    }
}

/// Control messages (engine speed) go at 3, information at 6.
const CONTROL: Priority = priority(3);
const INFO: Priority = priority(6);
const EEC1: Pgn = pgn(61444);
const ET1: Pgn = pgn(65262);
const CCVS: Pgn = pgn(65265);

fn id(priority: Priority, pgn: Pgn, source: Address) -> CanId {
    CanId::from_parts(priority, pgn, Address::GLOBAL, source)
}

/// The next frame time of a burst: CAN frames a few ms apart.
fn step(rng: &mut ChaCha8Rng, t: &mut i64) -> i64 {
    *t += rng.random_range(1_000..9_000);
    *t
}

/// The occurrence count a gateway reports for `a`: its count, at most 126
/// (127 would read as "not available").
fn occurrences(a: &Active) -> OccurrenceCount {
    OccurrenceCount::new(a.oc.min(126)).unwrap_or(OccurrenceCount::NOT_AVAILABLE)
}

fn frame(ts: i64, id: CanId, data: &[u8]) -> CanFrame {
    CanFrame::j1939(Timestamp::from_micros(ts), id, data)
}

/// The frame of meter PGN `pgn` with `value`, and the value a reader gets back.
fn meter_frame(ts: i64, pgn: Pgn, source: Address, value: f64) -> (CanFrame, f64) {
    let raw = meters::encode_raw(pgn, value).unwrap_or(0xFFFF_FFFF);
    let data = meters::encode_frame(pgn, raw).unwrap_or([0xFF; 8]);
    let back = meters::decode(pgn, &data)
        .ok()
        .and_then(|s| s.value.value())
        .unwrap_or(value);
    (frame(ts, id(INFO, pgn, source), &data), back)
}

/// Everything a CAN gateway uploads at `t_us`; `split` cuts the last DM1
/// BAM of the message after its first data packet.
pub(crate) fn can_upload(
    rng: &mut ChaCha8Rng,
    t_us: i64,
    m: Meters,
    odometer: Odometer,
    faults: &[Active],
    split: bool,
) -> CanUpload {
    let mut frames: Vec<CanFrame> = Vec::with_capacity(16);
    let mut t = t_us;
    let (f, engine_h) = meter_frame(t, Pgn::ENGINE_HOURS, Address(0), m.engine_h);
    frames.push(f);
    let (f, pto_h) = meter_frame(step(rng, &mut t), Pgn::VEHICLE_HOURS, Address(0), m.pto_h);
    frames.push(f);
    let mut km: f64 = 0.0;
    if matches!(odometer, Odometer::Standard | Odometer::Both) {
        let (f, v) = meter_frame(
            step(rng, &mut t),
            Pgn::VEHICLE_DISTANCE,
            INSTRUMENT_CLUSTER,
            m.km,
        );
        frames.push(f);
        km = km.max(v);
    }
    if matches!(odometer, Odometer::HighResolution | Odometer::Both) {
        let (f, v) = meter_frame(
            step(rng, &mut t),
            Pgn::VEHICLE_DISTANCE_HIGH_RES,
            INSTRUMENT_CLUSTER,
            m.km,
        );
        frames.push(f);
        km = km.max(v);
    }
    // Engine speed, coolant temperature and road speed: traffic fleetcare ignores.
    let rpm = rng.random_range(650u16..1900) * 8;
    let [r0, r1] = rpm.to_le_bytes();
    let eec1 = [0xF0, 0x7D, 0x8C, r0, r1, 0x00, 0xF0, 0x7D];
    frames.push(frame(
        step(rng, &mut t),
        id(CONTROL, EEC1, Address(0)),
        &eec1,
    ));
    let coolant = rng.random_range(118u8..136);
    let et1 = [coolant, 0x50, 0x20, 0x26, 0xFF, 0xFF, 0xFF, 0xFF];
    frames.push(frame(step(rng, &mut t), id(INFO, ET1, Address(0)), &et1));
    let [s0, s1] = rng.random_range(0u16..40 * 256).to_le_bytes();
    let ccvs = [0xF3, s0, s1, 0x1F, 0x00, 0x00, 0x30, 0xC0];
    frames.push(frame(step(rng, &mut t), id(INFO, CCVS, Address(0)), &ccvs));
    if rng.random_bool(0.2) {
        frames.push(CanFrame {
            ts: Timestamp::from_micros(step(rng, &mut t)),
            id: FrameId::Standard(0x701),
            data: FrameData::new(&[0x05]).unwrap_or_default(),
        });
    }
    let mut snapshot_us = [0i64; 4];
    let mut cut_at = None;
    let mut has_bam = false;
    for (k, &ecu) in ECUS.iter().enumerate() {
        let mine = || faults.iter().filter(move |a| ecu_of(a.span.spn) == ecu);
        let dm1 = DiagnosticMessage {
            kind: DmKind::Dm1,
            lamps: lamps(mine()),
            flash: LampFlash::NONE,
            dtcs: mine()
                .map(|a| Dtc::new(a.span.spn, a.span.fmi, occurrences(a)))
                .collect(),
        };
        let data = dm1.encode();
        let start = step(rng, &mut t);
        if dm1.needs_transport() {
            has_bam = true;
            let bam = bam_frames(
                Timestamp::from_micros(start),
                BAM_SPACING,
                ecu,
                Pgn::DM1,
                &data,
            );
            let done = bam.last().map_or(start, |f| f.ts.as_micros());
            cut_at = Some(frames.len() + 2);
            frames.extend(bam);
            t = done;
            if let Some(s) = snapshot_us.get_mut(k) {
                *s = done;
            }
        } else {
            frames.push(frame(start, id(INFO, Pgn::DM1, ecu), &data));
            if let Some(s) = snapshot_us.get_mut(k) {
                *s = start;
            }
        }
    }
    let lines = |fs: &[CanFrame]| {
        let mut s = String::with_capacity(fs.len() * 48);
        for f in fs {
            s.push_str(&f.to_candump(IFACE));
            s.push('\n');
        }
        s
    };
    let last = |fs: &[CanFrame]| fs.last().map_or(t_us, |f| f.ts.as_micros());
    let (first, rest) = match cut_at.filter(|_| split) {
        Some(at) => frames.split_at(at.min(frames.len())),
        None => (&frames[..], &[][..]),
    };
    CanUpload {
        payload: lines(first),
        rest: (!rest.is_empty()).then(|| lines(rest)),
        last_us: last(first),
        rest_last_us: last(rest),
        snapshot_us,
        sent: Sent {
            engine_h,
            pto_h,
            km,
        },
        has_bam,
    }
}

/// The telemetry JSON of a gateway that decodes on board, and the meters
/// as sent (hours and km to two decimals).
pub(crate) fn telemetry_upload(t_us: i64, m: Meters, faults: &[Active]) -> (String, Sent) {
    let sent = Sent {
        engine_h: round_to(m.engine_h, 2),
        pto_h: round_to(m.pto_h, 2),
        km: round_to(m.km, 2),
    };
    let message = Telemetry {
        ts: Timestamp::from_micros(t_us),
        engine_hours: Some(sent.engine_h),
        pto_hours: Some(sent.pto_h),
        odometer_km: Some(sent.km),
        dtcs: Some(
            faults
                .iter()
                .map(|a| TelemetryDtc {
                    dtc: Dtc::new(a.span.spn, a.span.fmi, occurrences(a)),
                    source: ecu_of(a.span.spn),
                })
                .collect(),
        ),
        lamps: Some(lamps(faults.iter())),
        signals: Vec::new(),
    };
    (message.to_json(), sent)
}

/// Kinds of garbage, each refused by ingest with one dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Garbage {
    /// Random bytes on a telemetry topic (made UTF-8: the recording format
    /// carries text).
    RandomBytes,
    /// A candump line whose frame was overwritten by random bytes.
    CorruptCandump,
    /// A candump line cut off inside its CAN id.
    TruncatedCandump,
    /// Telemetry JSON cut off.
    InvalidJson,
    /// A valid payload on a topic that breaks the C1 rules.
    BadTopic,
    /// An engine-hours reading thousands of hours ahead (a bit flip).
    MeterSpike,
}

impl Garbage {
    pub(crate) const ALL: [Self; 6] = [
        Self::RandomBytes,
        Self::CorruptCandump,
        Self::TruncatedCandump,
        Self::InvalidJson,
        Self::BadTopic,
        Self::MeterSpike,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::RandomBytes => "random_bytes",
            Self::CorruptCandump => "corrupt_candump",
            Self::TruncatedCandump => "truncated_candump",
            Self::InvalidJson => "invalid_json",
            Self::BadTopic => "bad_topic",
            Self::MeterSpike => "meter_spike",
        }
    }

    /// The dead-letter reason ingest gives it.
    pub(crate) const fn reason(self) -> DeadLetterReason {
        match self {
            Self::RandomBytes | Self::InvalidJson => DeadLetterReason::Telemetry,
            Self::CorruptCandump | Self::TruncatedCandump => DeadLetterReason::Candump,
            Self::BadTopic => DeadLetterReason::Topic,
            Self::MeterSpike => DeadLetterReason::Meter,
        }
    }
}

/// Where a truck publishes: `{prefix}/{fleet}/{vehicle}`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Topics<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) fleet: &'a FleetId,
    pub(crate) vehicle: &'a VehicleId,
}

impl Topics<'_> {
    pub(crate) fn can(&self) -> String {
        data_topic(self.prefix, self.fleet, self.vehicle, Channel::Can)
    }

    pub(crate) fn telemetry(&self) -> String {
        data_topic(self.prefix, self.fleet, self.vehicle, Channel::Telemetry)
    }
}

/// One garbage message for a truck at `t_us` (meters `m`, sending as a
/// telemetry gateway when `telemetry_gateway`): (topic, payload). Each
/// candidate is checked against the ingest parser it targets, so that it is
/// certain to be refused for its reason.
pub(crate) fn garbage(
    kind: Garbage,
    rng: &mut ChaCha8Rng,
    topics: Topics<'_>,
    t_us: i64,
    m: Meters,
    telemetry_gateway: bool,
) -> (String, String) {
    let ts = Timestamp::from_micros(t_us);
    let first_line = || {
        let (f, _) = meter_frame(t_us, Pgn::ENGINE_HOURS, Address(0), m.engine_h);
        f.to_candump(IFACE)
    };
    let random_text = |rng: &mut ChaCha8Rng, len: usize| {
        let bytes: Vec<u8> = (0..len).map(|_| rng.random::<u8>()).collect();
        String::from_utf8_lossy(&bytes).replace(['\n', '\r'], "")
    };
    let refused_line = |s: &str| candump::parse_line(s).is_err();
    match kind {
        Garbage::RandomBytes => {
            let payload = (0..8)
                .map(|_| {
                    let len = rng.random_range(16..160);
                    random_text(rng, len)
                })
                .find(|p| telemetry::parse(p.as_bytes()).is_err())
                .unwrap_or_else(|| "\u{1}\u{2}garbage".to_owned());
            (topics.telemetry(), payload)
        }
        Garbage::CorruptCandump => {
            let line = first_line();
            // Keep "(ts) can0 ", overwrite the frame.
            let keep = line.find(IFACE).map_or(0, |i| i + IFACE.len() + 1);
            let prefix = line.get(..keep).unwrap_or_default();
            let payload = (0..8)
                .map(|_| {
                    let len = rng.random_range(8..24);
                    format!("{prefix}{}\n", random_text(rng, len))
                })
                .find(|p| refused_line(p))
                .unwrap_or_else(|| format!("{prefix}#\n"));
            (topics.can(), payload)
        }
        Garbage::TruncatedCandump => {
            let line = first_line();
            let keep = line.find(IFACE).map_or(0, |i| i + IFACE.len() + 1) + rng.random_range(1..8);
            let payload = line.get(..keep).unwrap_or_default().to_owned();
            let payload = if refused_line(&payload) {
                payload
            } else {
                format!("({ts}")
            };
            (topics.can(), payload)
        }
        Garbage::InvalidJson => {
            let (json, _) = telemetry_upload(t_us, m, &[]);
            let cut = rng.random_range(1..json.len().max(3) - 1);
            let payload = json.get(..cut).unwrap_or("{").to_owned();
            (topics.telemetry(), payload)
        }
        Garbage::BadTopic => {
            let (prefix, fleet, vehicle) = (topics.prefix, topics.fleet, topics.vehicle);
            let topic = match rng.random_range(0..5) {
                0 => format!("{prefix}/{fleet}/{vehicle}/status"),
                1 => format!("{prefix}/{fleet}/{vehicle}"),
                2 => format!("{prefix}/{fleet}/{vehicle} #2/can"),
                3 => format!("{prefix}x/{fleet}/{vehicle}/can"),
                _ => format!("{prefix}/{fleet}/{vehicle}/can/raw"),
            };
            let topic = if topic::parse(prefix, &topic).is_err() {
                topic
            } else {
                String::new()
            };
            (topic, format!("{}\n", first_line()))
        }
        Garbage::MeterSpike => {
            let spiked = Meters {
                engine_h: m.engine_h + rng.random_range(2_000.0..20_000.0),
                ..m
            };
            if telemetry_gateway {
                // Written by hand, not with `Telemetry::to_json`: that writes
                // a whole number as `12345.0` where this writes `12345`, and
                // recordings stay byte-identical for a seed.
                let payload = format!(
                    r#"{{"ts":"{ts}","engine_hours":{}}}"#,
                    round_to(spiked.engine_h, 2)
                );
                (topics.telemetry(), payload)
            } else {
                let (f, _) = meter_frame(t_us, Pgn::ENGINE_HOURS, Address(0), spiked.engine_h);
                (topics.can(), format!("{}\n", f.to_candump(IFACE)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::duty::Slot;
    use crate::simulate::faults::{Scenario, Span};
    use crate::simulate::rng::{Purpose, Seeds};
    use fleetcare_ingest::j1939::{Fmi, J1939Decoder, J1939Event, Spn};
    use fleetcare_ingest::pipeline::{Message, Pipeline, PipelineConfig, Record};

    fn active(spn: u32, fmi: u8, severity: Severity) -> Active {
        Active {
            span: Span {
                truck: 0,
                spn: Spn::new(spn).unwrap(),
                fmi: Fmi::new(fmi).unwrap(),
                severity,
                scenario: Scenario::Noise,
                start: Slot { day: 0, idx: 0 },
                end: None,
            },
            episode: 0,
            oc: 3,
        }
    }

    const T0: i64 = 1_767_560_400_000_000;
    const M: Meters = Meters {
        engine_h: 12_345.67,
        pto_h: 8_000.01,
        km: 98_765.432_1,
    };

    fn decode(payload: &str) -> Vec<J1939Event> {
        let mut d = J1939Decoder::default();
        let mut out = Vec::new();
        for line in payload.lines() {
            if let Some(r) = candump::parse_line(line).unwrap() {
                d.handle(&r.frame, &mut out);
            }
        }
        out
    }

    /// (source, (SPN, FMI)s, lamps, time) of each DM1.
    type Dm1 = (u8, Vec<(u32, u8)>, Lamps, i64);

    fn dm1s(events: &[J1939Event]) -> Vec<Dm1> {
        events
            .iter()
            .filter_map(|e| match e {
                J1939Event::Diagnostic {
                    ts,
                    source,
                    message,
                } => Some((
                    source.0,
                    message
                        .dtcs
                        .iter()
                        .map(|d| (d.spn.raw(), d.fmi.raw()))
                        .collect(),
                    message.lamps,
                    ts.as_micros(),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_can_upload_decodes_to_the_state() {
        let mut rng = Seeds::new(1).rng(Purpose::Gateway, 0, 0);
        let faults = [
            active(110, 0, Severity::Critical),
            active(1569, 31, Severity::High),
            active(520_211, 2, Severity::Medium),
        ];
        let u = can_upload(&mut rng, T0, M, Odometer::Both, &faults, false);
        assert!(u.has_bam && u.rest.is_none());
        let events = decode(&u.payload);
        let dm = dm1s(&events);
        assert_eq!(dm.len(), 4);
        assert_eq!(dm[0].0, 0);
        assert_eq!(dm[0].1, vec![(110, 0), (1569, 31)]);
        assert_eq!(dm[0].2.red_stop, LampStatus::On);
        assert_eq!(dm[0].2.amber_warning, LampStatus::On);
        assert_eq!(dm[0].3, u.snapshot_us[0]);
        assert_eq!((dm[1].0, dm[1].1.len(), dm[1].2), (3, 0, Lamps::ALL_OFF));
        assert_eq!(dm[3].1, vec![(520_211, 2)]);
        assert_eq!(dm[3].3, u.snapshot_us[3]);
        let values: Vec<(Meter, f64)> = events
            .iter()
            .filter_map(|e| match e {
                J1939Event::Meter { meter, value, .. } => Some((*meter, *value)),
                _ => None,
            })
            .collect();
        use fleetcare_ingest::j1939::Meter;
        assert_eq!(values[0], (Meter::EngineHours, 12_345.65));
        assert_eq!(values[1], (Meter::PtoHours, 8_000.0));
        assert_eq!(values[2], (Meter::OdometerKm, 98_765.375));
        assert_eq!(values[3], (Meter::OdometerKm, 98_765.43));
        assert_eq!(
            u.sent,
            Sent {
                engine_h: 12_345.65,
                pto_h: 8_000.0,
                km: 98_765.43
            }
        );
        // Lines are in time order, as candump writes them.
        let ts: Vec<i64> = u
            .payload
            .lines()
            .map(|l| {
                candump::parse_line(l)
                    .unwrap()
                    .unwrap()
                    .frame
                    .ts
                    .as_micros()
            })
            .collect();
        assert!(ts.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(*ts.last().unwrap(), u.last_us);
    }

    #[test]
    fn a_split_bam_reassembles_across_the_two_messages() {
        let mut rng = Seeds::new(1).rng(Purpose::Gateway, 0, 0);
        let faults = [
            active(3719, 16, Severity::Medium),
            active(3251, 0, Severity::High),
        ];
        let u = can_upload(&mut rng, T0, M, Odometer::Standard, &faults, true);
        let rest = u.rest.as_deref().unwrap();
        assert!(u.payload.lines().last().unwrap().contains("1CEBFF00#01"));
        assert!(rest.lines().next().unwrap().contains("1CEBFF00#02"));
        assert!(dm1s(&decode(&u.payload)).iter().all(|d| d.0 != 0));
        let mut p = Pipeline::new(PipelineConfig::default());
        let mut out = Vec::new();
        for payload in [u.payload.as_str(), rest] {
            p.handle(
                Message {
                    topic: "fleet/f/T-1/can",
                    payload: payload.as_bytes(),
                    received: Timestamp::from_micros(T0),
                },
                &mut out,
            );
        }
        let started: Vec<(u32, i64)> = out
            .iter()
            .filter_map(|r| match r {
                Record::FaultStarted { dtc, ts, .. } => Some((dtc.spn.raw(), ts.as_micros())),
                _ => None,
            })
            .collect();
        assert_eq!(
            started,
            vec![(3719, u.snapshot_us[0]), (3251, u.snapshot_us[0])]
        );
        // The other ECUs' DM1s follow the BAM, in the second part.
        assert!(u.rest_last_us > u.snapshot_us[0]);
        assert!(!out.iter().any(|r| matches!(r, Record::DeadLetter(_))));
    }

    #[test]
    fn telemetry_parses_back() {
        let (json, sent) = telemetry_upload(T0 + 123, M, &[active(520_203, 1, Severity::Low)]);
        let t = telemetry::parse(json.as_bytes()).unwrap();
        assert_eq!(t.ts.as_micros(), T0 + 123);
        assert_eq!(t.engine_hours, Some(12_345.67));
        assert_eq!(t.odometer_km, Some(sent.km));
        let d = t.dtcs.unwrap();
        assert_eq!((d[0].dtc.spn.raw(), d[0].source), (520_203, Address(0x21)));
        assert_eq!(t.lamps.unwrap(), Lamps::ALL_OFF);
    }

    #[test]
    fn every_garbage_kind_is_one_dead_letter_of_its_reason() {
        let (fleet, vehicle) = (FleetId::new("f").unwrap(), VehicleId::new("T-1").unwrap());
        let topics = Topics {
            prefix: "fleet",
            fleet: &fleet,
            vehicle: &vehicle,
        };
        for seed in 0..40 {
            let mut rng = Seeds::new(seed).rng(Purpose::Garbage, 0, 0);
            for kind in Garbage::ALL {
                for telemetry_gateway in [false, true] {
                    let mut p = Pipeline::new(PipelineConfig::default());
                    let mut out = Vec::new();
                    // A valid reading first, as the truck sent before the glitch.
                    let (valid_topic, valid) = if telemetry_gateway {
                        (topics.telemetry(), telemetry_upload(T0, M, &[]).0)
                    } else {
                        (
                            topics.can(),
                            can_upload(&mut rng, T0, M, Odometer::Standard, &[], false).payload,
                        )
                    };
                    p.handle(
                        Message {
                            topic: &valid_topic,
                            payload: valid.as_bytes(),
                            received: Timestamp::from_micros(T0),
                        },
                        &mut out,
                    );
                    out.clear();
                    let (topic, payload) =
                        garbage(kind, &mut rng, topics, T0 + 1_000_000, M, telemetry_gateway);
                    p.handle(
                        Message {
                            topic: &topic,
                            payload: payload.as_bytes(),
                            received: Timestamp::from_micros(T0),
                        },
                        &mut out,
                    );
                    let dead: Vec<DeadLetterReason> = out
                        .iter()
                        .filter_map(|r| match r {
                            Record::DeadLetter(d) => Some(d.reason),
                            _ => None,
                        })
                        .collect();
                    assert_eq!(
                        dead,
                        vec![kind.reason()],
                        "{kind:?} {topic} {payload:?} {out:?}"
                    );
                    assert!(!out.iter().any(|r| matches!(
                        r,
                        Record::FaultStarted { .. } | Record::MeterReset { .. }
                    )));
                }
            }
        }
    }
}
