//! Property tests of what one message may cost the pipeline (issue 20):
//! whatever arrives, no message makes more dead-letter records than the
//! limit and one more (and every rejected line is still counted), no fault
//! list longer than the limit starts an episode, no record carries an event
//! time outside the plausible window, and no more vehicles than the limit
//! hold decoders. And dropping decoders changes no record.

use fleetcare_ingest::j1939::transport::bam_frames;
use fleetcare_ingest::j1939::{
    Address, CanId, DiagnosticMessage, DmKind, Dtc, Fmi, LampFlash, Lamps, OccurrenceCount, Pgn,
    Priority, Spn,
};
use fleetcare_ingest::pipeline::{DeadLetterReason, Message, Pipeline, PipelineConfig, Record};
use fleetcare_ingest::telemetry::{Telemetry, TelemetryDtc};
use fleetcare_ingest::{CanFrame, Duration, Timestamp};
use proptest::prelude::*;

/// 2026-03-01T00:00:00Z, in microseconds: messages are received at it plus
/// their number of seconds.
const T0: i64 = 1_772_323_200_000_000;
const SECOND: i64 = 1_000_000;

/// Limits small enough for arbitrary input to reach them.
fn small_limits() -> PipelineConfig {
    PipelineConfig {
        max_dtcs: 3,
        max_dead_letters: 4,
        max_vehicles: 2,
        ..PipelineConfig::default()
    }
}

fn dtc(spn: u32, fmi: u8) -> Dtc {
    Dtc::new(
        Spn::new(spn).expect("in range"),
        Fmi::new(fmi).expect("in range"),
        OccurrenceCount::new(1).expect("in range"),
    )
}

/// An event time: plausible (around the receive time), or from a clock
/// never set, or far ahead.
fn event_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => -3_600i64..3_600,
        1 => Just(-T0 / SECOND + 5),
        1 => Just(3 * 86_400i64),
    ]
}

/// The candump lines of a DM1 from `sa` listing `dtcs`, at `ts`.
fn dm1_lines(ts: Timestamp, sa: u8, red: bool, dtcs: &[Dtc]) -> Vec<String> {
    let m = DiagnosticMessage {
        kind: DmKind::Dm1,
        lamps: Lamps {
            red_stop: if red {
                fleetcare_ingest::j1939::LampStatus::On
            } else {
                fleetcare_ingest::j1939::LampStatus::Off
            },
            ..Lamps::ALL_OFF
        },
        flash: LampFlash::NONE,
        dtcs: dtcs.to_vec(),
    };
    let data = m.encode();
    let frames = if data.len() <= 8 {
        let id = CanId::from_parts(
            Priority::new(6).expect("valid"),
            Pgn::DM1,
            Address::GLOBAL,
            Address(sa),
        );
        vec![CanFrame::j1939(ts, id, &data)]
    } else {
        bam_frames(ts, Duration::from_millis(10), Address(sa), Pgn::DM1, &data)
    };
    frames.iter().map(|f| f.to_candump("can0")).collect()
}

/// Engine hours as a candump line.
fn hours_line(ts: Timestamp, raw: u32) -> String {
    let h = raw.to_le_bytes();
    let id = CanId::from_parts(
        Priority::new(6).expect("valid"),
        Pgn::ENGINE_HOURS,
        Address::GLOBAL,
        Address(0),
    );
    CanFrame::j1939(ts, id, &[h[0], h[1], h[2], h[3], 0xFF, 0xFF, 0xFF, 0xFF]).to_candump("can0")
}

/// Lines of a `can` payload: DM1s (one frame or BAM), meters, half a BAM,
/// garbage; `at` is the message's receive time in seconds after T0.
fn can_payload(at: i64) -> impl Strategy<Value = String> {
    let line = (
        0u8..5,
        event_time(),
        prop::collection::vec((1u32..40, 0u8..3), 0..7),
        any::<bool>(),
        ".{0,30}",
    )
        .prop_map(move |(kind, dt, list, red, text)| {
            let ts = Timestamp::from_micros(T0 + (at + dt) * SECOND);
            let dtcs: Vec<Dtc> = list.into_iter().map(|(s, f)| dtc(s, f)).collect();
            match kind {
                0 => dm1_lines(ts, 0, red, &dtcs),
                1 => vec![hours_line(ts, 20_000 + at as u32)],
                // An announcement never followed by data.
                2 => dm1_lines(ts, 3, red, &[dtc(1, 1), dtc(2, 2)])
                    .into_iter()
                    .take(1)
                    .collect(),
                3 => vec![text],
                _ => vec![format!("({}.0) can0 18FECA00#40", T0 / SECOND + at)],
            }
        });
    prop::collection::vec(line, 0..40).prop_map(|lines| {
        let mut text = lines.concat().join("\n");
        text.push('\n');
        text
    })
}

/// A telemetry payload with a fault list of any length up to 8.
fn telemetry_payload(at: i64) -> impl Strategy<Value = String> {
    (
        event_time(),
        prop::option::of(prop::collection::vec((1u32..40, 0u8..3), 0..8)),
        any::<bool>(),
    )
        .prop_map(move |(dt, list, red)| {
            Telemetry {
                ts: Timestamp::from_micros(T0 + (at + dt) * SECOND),
                engine_hours: None,
                pto_hours: None,
                odometer_km: None,
                dtcs: list.map(|l| {
                    l.into_iter()
                        .map(|(s, f)| TelemetryDtc {
                            dtc: dtc(s, f),
                            source: Address(0),
                        })
                        .collect()
                }),
                lamps: Some(Lamps {
                    red_stop: if red {
                        fleetcare_ingest::j1939::LampStatus::On
                    } else {
                        fleetcare_ingest::j1939::LampStatus::Off
                    },
                    ..Lamps::ALL_OFF
                }),
                signals: Vec::new(),
            }
            .to_json()
        })
}

/// Messages from six vehicles, one a second.
fn messages() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((0u8..6, any::<bool>()), 1..30).prop_flat_map(|picks| {
        picks
            .into_iter()
            .enumerate()
            .map(|(i, (v, can))| {
                let at = i as i64;
                let payload = if can {
                    can_payload(at).boxed()
                } else {
                    telemetry_payload(at).boxed()
                };
                let channel = if can { "can" } else { "telemetry" };
                (Just(format!("fleet/acme/V{v}/{channel}")), payload)
            })
            .collect::<Vec<_>>()
    })
}

fn received(i: usize) -> Timestamp {
    Timestamp::from_micros(T0 + i as i64 * SECOND)
}

/// The event time a record carries, if any.
fn event_ts(r: &Record) -> Option<Timestamp> {
    match r {
        Record::FaultStarted { ts, .. }
        | Record::FaultEnded { ts, .. }
        | Record::LampsChanged { ts, .. }
        | Record::Meter { ts, .. }
        | Record::MeterReset { ts, .. }
        | Record::Signal { ts, .. } => Some(*ts),
        Record::DeadLetter(_) => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_message_costs_more_than_the_limits(messages in messages()) {
        let config = small_limits();
        let mut p = Pipeline::new(config.clone());
        for (i, (topic, payload)) in messages.iter().enumerate() {
            let before: u64 = p.stats().dead_letters.values().sum();
            let mut out = Vec::new();
            p.handle(
                Message { topic, payload: payload.as_bytes(), received: received(i) },
                &mut out,
            );
            let letters: Vec<_> = out
                .iter()
                .filter_map(|r| match r {
                    Record::DeadLetter(d) => Some(d),
                    _ => None,
                })
                .collect();
            prop_assert!(letters.len() <= config.max_dead_letters + 1, "{}", letters.len());
            // Only the last record stands for others.
            prop_assert!(letters.iter().rev().skip(1).all(|d| d.more.is_empty()));
            let counted: u64 = letters.iter().flat_map(|d| d.counts()).map(|(_, n)| n).sum();
            let after: u64 = p.stats().dead_letters.values().sum();
            prop_assert_eq!(counted, after - before);
            for r in &out {
                if let Some(ts) = event_ts(r) {
                    prop_assert!(ts >= config.min_event_time, "{:?}", r);
                    prop_assert!(ts <= received(i).saturating_add(config.max_future), "{:?}", r);
                }
            }
            if topic.ends_with("/telemetry") {
                let starts = out.iter().filter(|r| matches!(r, Record::FaultStarted { .. })).count();
                prop_assert!(starts <= config.max_dtcs, "{}", starts);
            }
            prop_assert!(p.decoder_count() <= config.max_vehicles);
        }
        let by_reason = |r: DeadLetterReason| p.stats().dead_letters.get(&r).copied().unwrap_or(0);
        let total: u64 = DeadLetterReason::ALL.into_iter().map(by_reason).sum();
        prop_assert_eq!(total, p.stats().dead_letters.values().sum::<u64>());
    }

    /// Complete messages (every DM1 whole within its message): keeping one
    /// vehicle's decoders or all of them makes the same records.
    #[test]
    fn dropping_decoders_changes_no_record(
        picks in prop::collection::vec(
            (0u8..6, prop::collection::vec((1u32..12, 0u8..2), 0..6), any::<bool>()),
            1..60,
        ),
    ) {
        let run = |max_vehicles: usize| {
            let mut p = Pipeline::new(PipelineConfig { max_vehicles, ..PipelineConfig::default() });
            let mut records = Vec::new();
            for (i, (v, list, red)) in picks.iter().enumerate() {
                // Five minutes apart: engine hours rise by 0.05 h each time.
                let ts = received(i * 300);
                let dtcs: Vec<Dtc> = list.iter().map(|&(s, f)| dtc(s, f)).collect();
                let mut lines = dm1_lines(ts, 0, *red, &dtcs);
                lines.push(hours_line(ts.saturating_add(Duration::from_millis(500)), 20_000 + i as u32));
                let payload = lines.join("\n");
                let topic = format!("fleet/acme/V{v}/can");
                p.handle(Message { topic: &topic, payload: payload.as_bytes(), received: ts }, &mut records);
                assert!(p.decoder_count() <= max_vehicles);
            }
            records
        };
        let all = run(1_000);
        prop_assert!(!all.iter().any(|r| matches!(r, Record::DeadLetter(_))), "{:?}", all);
        prop_assert_eq!(run(1), all);
    }
}
