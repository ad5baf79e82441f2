//! Property tests of the decoders: encode → frames → decode round trips
//! over the full value ranges (and build → parse for the C1 topics and
//! telemetry JSON), and arbitrary input never panics.

use fleetcare_ingest::ids::{FleetId, VehicleId};
use fleetcare_ingest::j1939::meters::{self, encode_frame, encode_raw};
use fleetcare_ingest::j1939::transport::bam_frames;
use fleetcare_ingest::j1939::{
    Address, CanId, DiagnosticMessage, DmKind, Dtc, Fmi, J1939Decoder, J1939Event, LampFlash,
    Lamps, Meter, OccurrenceCount, Pgn, Priority, Spn,
};
use fleetcare_ingest::telemetry::{MAX_HOURS, MAX_KM, Telemetry, TelemetryDtc};
use fleetcare_ingest::topic::{self, Channel};
use fleetcare_ingest::{CanFrame, Duration, FrameData, FrameId, Timestamp, candump, telemetry};
use proptest::prelude::*;

fn dtc() -> impl Strategy<Value = Dtc> {
    (0..=Spn::MAX, 0..=Fmi::MAX, 0..=OccurrenceCount::MAX)
        // SPN 0 FMI 0 OC 0 encodes as the all-zero filler block.
        .prop_filter("not the filler block", |&(s, f, o)| (s, f, o) != (0, 0, 0))
        .prop_map(|(s, f, o)| {
            Dtc::new(
                Spn::new(s).expect("in range"),
                Fmi::new(f).expect("in range"),
                OccurrenceCount::new(o).expect("in range"),
            )
        })
}

fn diagnostic(max_dtcs: usize) -> impl Strategy<Value = DiagnosticMessage> {
    (
        any::<bool>(),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(dtc(), 0..=max_dtcs),
    )
        .prop_map(|(dm1, lamps, flash, dtcs)| DiagnosticMessage {
            kind: if dm1 { DmKind::Dm1 } else { DmKind::Dm2 },
            lamps: Lamps::from_byte_bits(lamps),
            flash: LampFlash::from_byte_bits(flash),
            dtcs,
        })
}

fn pgn_of(kind: DmKind) -> Pgn {
    match kind {
        DmKind::Dm1 => Pgn::DM1,
        DmKind::Dm2 => Pgn::DM2,
    }
}

/// The frames an ECU at `sa` sends for `m`: one frame, or a BAM.
fn frames_for(m: &DiagnosticMessage, sa: u8) -> Vec<CanFrame> {
    let data = m.encode();
    let pgn = pgn_of(m.kind);
    let t0 = Timestamp::from_micros(0);
    if data.len() <= 8 {
        let id = CanId::from_parts(
            Priority::new(6).expect("valid"),
            pgn,
            Address::GLOBAL,
            Address(sa),
        );
        vec![CanFrame::j1939(t0, id, &data)]
    } else {
        bam_frames(t0, Duration::from_millis(50), Address(sa), pgn, &data)
    }
}

/// A frame of a PGN the decoder does not use.
fn unrelated_frame() -> impl Strategy<Value = CanFrame> {
    (0u32..=CanId::MAX, prop::collection::vec(any::<u8>(), 0..=8))
        .prop_filter("a PGN the decoder ignores", |(id, _)| {
            !J1939Decoder::wants(CanId::new(*id).expect("29 bits").pgn())
        })
        .prop_map(|(id, data)| {
            CanFrame::j1939(
                Timestamp::default(),
                CanId::new(id).expect("29 bits"),
                &data,
            )
        })
}

/// Merges the streams in the order `picks` chooses, keeping each stream's
/// own order, and stamps the result 10 ms apart.
fn interleave(
    mut streams: Vec<std::collections::VecDeque<CanFrame>>,
    picks: &[usize],
) -> Vec<CanFrame> {
    let mut out = Vec::new();
    let mut picks = picks.iter().cycle();
    while streams.iter().any(|s| !s.is_empty()) {
        let live: Vec<usize> = (0..streams.len())
            .filter(|&i| !streams[i].is_empty())
            .collect();
        let i = live[picks.next().copied().unwrap_or(0) % live.len()];
        out.push(streams[i].pop_front().expect("live stream"));
    }
    for (n, f) in out.iter_mut().enumerate() {
        f.ts = Timestamp::from_micros(1_700_000_000_000_000 + n as i64 * 10_000);
    }
    out
}

fn decode_all(frames: &[CanFrame]) -> Vec<J1939Event> {
    let mut d = J1939Decoder::default();
    let mut out = Vec::new();
    for f in frames {
        d.handle(f, &mut out);
    }
    out
}

fn diagnostics(events: &[J1939Event]) -> Vec<(u8, DiagnosticMessage)> {
    events
        .iter()
        .filter_map(|e| match e {
            J1939Event::Diagnostic {
                source, message, ..
            } => Some((source.0, message.clone())),
            _ => None,
        })
        .collect()
}

/// A fleet or vehicle id: 1–64 characters of `[A-Za-z0-9_.-]`.
const ID: &str = "[A-Za-z0-9_.-]{1,64}";

/// 0000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z: the times RFC 3339
/// can write.
fn rfc3339_time() -> impl Strategy<Value = Timestamp> {
    (-62_167_219_200_000_000i64..=253_402_300_799_999_999).prop_map(Timestamp::from_micros)
}

/// A meter reading from 0 to `max` in thousandths, or none. Thousandths,
/// not any `f64`: serde_json (without its `float_roundtrip` feature) reads
/// a number of 16 or 17 significant digits to within a few ULPs rather
/// than exactly, so `194778147.67171782` comes back as `…785`. Gateways
/// send a few decimals (J1939 resolves 0.05 h and 0.125 km), which are
/// read exactly.
fn meter(max: f64) -> impl Strategy<Value = Option<f64>> {
    let thousandths = (max * 1000.0) as u64;
    prop::option::of((0..=thousandths).prop_map(|k| k as f64 / 1000.0))
}

fn telemetry_dtc() -> impl Strategy<Value = TelemetryDtc> {
    (
        0..=Spn::MAX,
        0..=Fmi::MAX,
        0..=OccurrenceCount::MAX,
        any::<u8>(),
    )
        .prop_map(|(s, f, o, sa)| TelemetryDtc {
            dtc: Dtc::new(
                Spn::new(s).expect("in range"),
                Fmi::new(f).expect("in range"),
                OccurrenceCount::new(o).expect("in range"),
            ),
            source: Address(sa),
        })
}

/// Any telemetry message the parser accepts.
fn telemetry_message() -> impl Strategy<Value = Telemetry> {
    (
        rfc3339_time(),
        meter(MAX_HOURS),
        meter(MAX_HOURS),
        meter(MAX_KM),
        prop::option::of(prop::collection::vec(telemetry_dtc(), 0..8)),
        prop::option::of(any::<u8>().prop_map(Lamps::from_byte_bits)),
    )
        .prop_map(
            |(ts, engine_hours, pto_hours, odometer_km, dtcs, lamps)| Telemetry {
                ts,
                engine_hours,
                pto_hours,
                odometer_km,
                dtcs,
                lamps,
                signals: Vec::new(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A data topic built from any valid ids parses back to them.
    #[test]
    fn data_topics_round_trip(
        prefix in "[a-z]{1,8}(/[a-z0-9]{1,8}){0,2}",
        fleet in ID,
        vehicle in ID,
        can in any::<bool>(),
    ) {
        let (fleet, vehicle) = (FleetId::new(&fleet).expect("valid"), VehicleId::new(&vehicle).expect("valid"));
        let channel = if can { Channel::Can } else { Channel::Telemetry };
        let built = topic::data_topic(&prefix, &fleet, &vehicle, channel);
        let parsed = topic::parse(&prefix, &built).expect("parses");
        prop_assert_eq!(
            (parsed.fleet_id(), parsed.vehicle_id(), parsed.channel),
            (fleet, vehicle, channel)
        );
    }

    /// Telemetry written as JSON parses back to itself.
    #[test]
    fn telemetry_round_trips(t in telemetry_message()) {
        let json = t.to_json();
        let parsed = telemetry::parse(json.as_bytes());
        prop_assert_eq!(parsed.ok(), Some(t), "{}", json);
    }

    /// A DM1/DM2 with 0–100 DTCs, single frame or BAM, interleaved with
    /// unrelated frames and a second source's BAM, decodes to itself.
    #[test]
    fn diagnostic_messages_round_trip(
        m in diagnostic(100),
        other in diagnostic(30).prop_filter("needs a BAM", |m| m.dtcs.len() >= 2),
        noise in prop::collection::vec(unrelated_frame(), 0..40),
        picks in prop::collection::vec(0usize..3, 1..64),
    ) {
        let frames = interleave(
            vec![frames_for(&m, 0x00).into(), frames_for(&other, 0x3D).into(), noise.into()],
            &picks,
        );
        let events = decode_all(&frames);
        let mut got = diagnostics(&events);
        got.sort_by_key(|(sa, _)| *sa);
        prop_assert_eq!(got, vec![(0x00, m), (0x3D, other)], "events: {:?}", events);
        let unexpected: Vec<_> = events.iter().filter(|e| !matches!(e, J1939Event::Diagnostic { .. })).collect();
        prop_assert!(unexpected.is_empty(), "{:?}", unexpected);
    }

    /// Every valid raw meter value comes back as raw / scaling; the error and
    /// not-available ranges give no value.
    #[test]
    fn meters_round_trip(raw in any::<u32>(), which in 0usize..4) {
        let pgn = [Pgn::ENGINE_HOURS, Pgn::VEHICLE_HOURS, Pgn::VEHICLE_DISTANCE, Pgn::VEHICLE_DISTANCE_HIGH_RES][which];
        let data = encode_frame(pgn, raw).expect("a meter PGN");
        let id = CanId::from_parts(Priority::new(6).expect("valid"), pgn, Address::GLOBAL, Address(0));
        let events = decode_all(&[CanFrame::j1939(Timestamp::default(), id, &data)]);
        if raw <= 0xFAFF_FFFF {
            let divisor = [20.0, 20.0, 8.0, 200.0][which];
            let meter = [Meter::EngineHours, Meter::PtoHours, Meter::OdometerKm, Meter::OdometerKm][which];
            let [J1939Event::Meter { meter: m, value, .. }] = events.as_slice() else {
                return Err(TestCaseError::fail(format!("{events:?}")));
            };
            prop_assert_eq!(*m, meter);
            prop_assert_eq!(*value, f64::from(raw) / divisor);
            prop_assert_eq!(encode_raw(pgn, *value), Some(raw));
        } else {
            prop_assert!(events.is_empty());
            let sample = meters::decode(pgn, &data).expect("8 bytes");
            prop_assert!(sample.value.value().is_none());
        }
    }

    /// Issue 23: every condition-signal field of every signal PGN reads
    /// back as raw × resolution + offset while its top byte is ≤ 0xFA;
    /// the error and not-available ranges give no event; the other
    /// fields, left "not available", give none either.
    #[test]
    fn signals_round_trip(which in 0usize..6, raw in any::<u16>()) {
        use fleetcare_ingest::j1939::signals;
        let pgns = [65262u32, 65262, 65263, 65271, 61444, 61444];
        let pgn = Pgn::new(pgns[which]).expect("valid");
        let index = [0usize, 1, 0, 0, 0, 1][which];
        let field = signals::fields(pgn)[index];
        let raw = if field.len == 1 { raw & 0xFF } else { raw };
        let mut data = [0xFFu8; 8];
        data[field.offset..field.offset + field.len].copy_from_slice(&raw.to_le_bytes()[..field.len]);
        let id = CanId::from_parts(Priority::new(6).expect("valid"), pgn, Address::GLOBAL, Address(0));
        let events = decode_all(&[CanFrame::j1939(Timestamp::default(), id, &data)]);
        let top = if field.len == 1 { raw } else { raw >> 8 };
        if top <= 0xFA {
            let [J1939Event::Signal { signal, value, .. }] = events.as_slice() else {
                return Err(TestCaseError::fail(format!("{events:?}")));
            };
            prop_assert_eq!(*signal, field.signal);
            prop_assert_eq!(*value, f64::from(raw) * field.resolution + field.offset_value);
            prop_assert_eq!(signals::encode_raw(&field, *value), Some(raw));
        } else {
            prop_assert!(events.is_empty(), "{:?}", events);
        }
    }

    /// A frame rendered as a candump line parses back to itself.
    #[test]
    fn candump_round_trip(
        us in 0i64..=999_999_999_999_999_999,
        id in 0u32..=CanId::MAX,
        std_id in 0u16..=0x7FF,
        extended in any::<bool>(),
        data in prop::collection::vec(any::<u8>(), 0..=8),
    ) {
        let frame = CanFrame {
            ts: Timestamp::from_micros(us),
            id: if extended { FrameId::Extended(CanId::new(id).expect("29 bits")) } else { FrameId::Standard(std_id) },
            data: FrameData::new(&data).expect("8 bytes at most"),
        };
        let line = frame.to_candump("can0");
        let parsed = candump::parse_line(&line).expect("parses").expect("a frame");
        prop_assert_eq!(parsed.frame, frame);
        prop_assert_eq!(parsed.interface, "can0");
    }

    /// Arbitrary frames never panic the decoder and never grow its state
    /// past the session limit.
    #[test]
    fn arbitrary_frames_never_panic(
        frames in prop::collection::vec(
            (any::<i64>(), prop::sample::select(vec![0x18EC_FF00u32, 0x18EB_FF00, 0x00EC_0201, 0x00EB_0201, 0x18FE_CA00, 0x18FE_E500]),
             any::<u8>(), prop::collection::vec(any::<u8>(), 0..=8)),
            0..200),
    ) {
        let mut d = J1939Decoder::default();
        let mut out = Vec::new();
        for (ts, base, sa, data) in frames {
            let id = CanId::new(base | u32::from(sa) & 0x3).expect("29 bits");
            d.handle(&CanFrame::j1939(Timestamp::from_micros(ts), id, &data), &mut out);
            prop_assert!(d.open_sessions() <= 32);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,80}", b in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = candump::parse_line(&s);
        let _ = candump::parse_line(&format!("(1.0) can0 {s}"));
        let _ = telemetry::parse(s.as_bytes());
        let _ = telemetry::parse(&b);
        for kind in [DmKind::Dm1, DmKind::Dm2] {
            let _ = DiagnosticMessage::decode(kind, &b, Default::default());
        }
    }
}
