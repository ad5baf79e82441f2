use super::*;

fn at(s: f64) -> Timestamp {
    Timestamp::from_micros((s * 1e6) as i64)
}

fn feed(p: &mut Pipeline, topic: &str, payload: &str) -> Vec<Record> {
    let mut out = Vec::new();
    p.handle(
        Message {
            topic,
            payload: payload.as_bytes(),
            received: at(0.0),
        },
        &mut out,
    );
    out
}

fn started(records: &[Record]) -> Vec<(String, u32, u8)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::FaultStarted { vehicle, dtc, .. } => {
                Some((vehicle.vehicle.to_string(), dtc.spn.raw(), dtc.fmi.raw()))
            }
            _ => None,
        })
        .collect()
}

fn ended(records: &[Record]) -> usize {
    records
        .iter()
        .filter(|r| matches!(r, Record::FaultEnded { .. }))
        .count()
}

fn dead(records: &[Record]) -> Vec<(DeadLetterReason, String)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::DeadLetter(d) => Some((d.reason, d.detail.clone())),
            _ => None,
        })
        .collect()
}

const CAN: &str = "fleet/acme/TRK-001/can";

#[test]
fn bam_split_across_two_messages_is_reassembled() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let first = feed(
        &mut p,
        CAN,
        "(1.000) can0 18ECFF00#20120003FFCAFE00\n(1.050) can0 18EBFF00#0100FF5B0003015C\n",
    );
    assert!(first.is_empty(), "{first:?}");
    let second = feed(
        &mut p,
        CAN,
        "(1.100) can0 18EBFF00#020004025D000503\n(1.150) can0 18EBFF00#035E000604FFFFFF\n",
    );
    let s = started(&second);
    assert_eq!(
        s,
        [91, 92, 93, 94]
            .iter()
            .zip(3u8..)
            .map(|(&spn, fmi)| ("TRK-001".to_owned(), spn, fmi))
            .collect::<Vec<_>>()
    );
    // The same BAM sent by another truck does not mix with this one's.
    let other = feed(
        &mut p,
        "fleet/acme/TRK-002/can",
        "(1.100) can0 18EBFF00#020004025D000503\n",
    );
    assert_eq!(dead(&other)[0].0, DeadLetterReason::Transport);
}

#[test]
fn intermittent_and_persistent_faults() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let mut records = Vec::new();
    // SPN 100 comes and goes; SPN 110 stays for the whole minute, repeated every second.
    for s in 0..60 {
        let intermittent = (s / 10) % 2 == 0;
        let line = if intermittent {
            // Two DTCs need a BAM.
            let frames = crate::j1939::transport::bam_frames(
                at(f64::from(s)),
                crate::Duration::from_millis(50),
                Address(0),
                crate::j1939::Pgn::DM1,
                &DiagnosticMessage {
                    kind: DmKind::Dm1,
                    lamps: Lamps::ALL_OFF,
                    flash: crate::j1939::LampFlash::NONE,
                    dtcs: vec![dtc(110, 0), dtc(100, 1)],
                }
                .encode(),
            );
            frames
                .iter()
                .map(|f| f.to_candump("can0") + "\n")
                .collect::<String>()
        } else {
            format!("({s}.000000) can0 18FECA00#00FF6E000001FFFF\n")
        };
        records.extend(feed(&mut p, CAN, &line));
    }
    let s = started(&records);
    let count = |spn| s.iter().filter(|(_, x, _)| *x == spn).count();
    assert_eq!(count(110), 1, "{s:?}");
    assert_eq!(count(100), 3, "{s:?}");
    assert_eq!(ended(&records), 3);
}

fn dtc(spn: u32, fmi: u8) -> Dtc {
    Dtc::new(
        Spn::new(spn).unwrap(),
        Fmi::new(fmi).unwrap(),
        crate::j1939::OccurrenceCount::new(1).unwrap(),
    )
}

fn meters(records: &[Record]) -> Vec<(f64, f64)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Meter { raw, value, .. } => Some((*raw, *value)),
            _ => None,
        })
        .collect()
}

#[test]
fn meter_integrity_through_the_pipeline() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let tel = "fleet/acme/TRK-001/telemetry";
    let msg = |h: u32, value: f64| {
        format!(r#"{{"ts": "2026-03-01T{h:02}:00:00Z", "engine_hours": {value}}}"#)
    };
    assert_eq!(
        meters(&feed(&mut p, tel, &msg(0, 1000.0))),
        [(1000.0, 1000.0)]
    );
    assert_eq!(
        meters(&feed(&mut p, tel, &msg(1, 1000.9))),
        [(1000.9, 1000.9)]
    );
    // Backwards and a jump are dead letters that name the meter.
    let r = feed(&mut p, tel, &msg(2, 990.0));
    assert_eq!(dead(&r)[0].0, DeadLetterReason::Meter);
    assert!(
        dead(&r)[0]
            .1
            .contains("engine_hours went backwards from 1000.9 to 990"),
        "{r:?}"
    );
    let r = feed(&mut p, tel, &msg(3, 1010.0));
    assert!(
        dead(&r)[0].1.contains("faster than physically possible"),
        "{r:?}"
    );
    // An ECU swap: a reset with continuity.
    let r = feed(&mut p, tel, &msg(4, 0.5));
    assert!(r.iter().any(
        |r| matches!(r, Record::MeterReset { previous, .. } if (*previous - 1000.9).abs() < 1e-9)
    ));
    let r = feed(&mut p, tel, &msg(6, 2.5));
    let [(raw, value)] = meters(&r)[..] else {
        panic!("{r:?}")
    };
    assert_eq!(raw, 2.5);
    assert!((value - 1002.9).abs() < 1e-9);
}

#[test]
fn every_kind_of_bad_input_is_a_counted_dead_letter() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let mut all = Vec::new();
    let mut push = |p: &mut Pipeline, topic: &str, payload: &[u8]| {
        let mut out = Vec::new();
        p.handle(
            Message {
                topic,
                payload,
                received: at(5.0),
            },
            &mut out,
        );
        all.extend(out);
    };
    push(
        &mut p,
        "fleet/acme/TRK 1/can",
        b"(1.0) can0 18FECA00#00FF00000000FFFF",
    );
    push(&mut p, "other/acme/TRK-1/can", b"");
    push(&mut p, CAN, &vec![b'('; 300 * 1024]);
    push(&mut p, CAN, b"\xFF\xFE(1.0) can0");
    // A bad line among good ones: only the bad line is refused.
    push(&mut p, CAN, b"(1.0) can0 18FECA00#00FF6E000001FFFF\n(1.1) can0 18FECA00##1\n(1.2) can0 18FECA00#00FF6E000001FFFF\n");
    push(
        &mut p,
        "fleet/acme/TRK-001/telemetry",
        b"{\"ts\": \"yesterday\"}",
    );
    // Text that is no candump line at all, beside a DROPCOUNT line that is skipped.
    push(&mut p, CAN, b"DROPCOUNT: dropped 1 CAN frames\nhello world");
    push(&mut p, CAN, b"(2.0) can0 18FECA00#40");
    push(&mut p, CAN, b"(2.1) can0 18EBFF00#0100FF5B0003015C");
    let many: String = (0..9)
        .map(|i| format!("(3.0) can{i} 18FEE500#FE05000055667788\n"))
        .collect();
    push(&mut p, CAN, many.as_bytes());
    push(
        &mut p,
        "fleet/acme/TRK-001/telemetry",
        br#"{"ts": "2026-03-01T00:00:00Z", "engine_hours": 80}"#,
    );
    push(
        &mut p,
        "fleet/acme/TRK-001/telemetry",
        br#"{"ts": "2026-03-01T00:00:01Z", "engine_hours": 79}"#,
    );
    let reasons: Vec<DeadLetterReason> = dead(&all).iter().map(|(r, _)| *r).collect();
    use DeadLetterReason::*;
    assert_eq!(
        reasons,
        [
            Topic,
            Topic,
            PayloadTooLarge,
            NotUtf8,
            Candump,
            Telemetry,
            Candump,
            J1939,
            Transport,
            TooManyInterfaces,
            Meter
        ]
    );
    for reason in DeadLetterReason::ALL {
        let want = reasons.iter().filter(|&&r| r == reason).count() as u64;
        assert_eq!(
            p.stats().dead_letters.get(&reason).copied().unwrap_or(0),
            want,
            "{reason:?}"
        );
    }
    assert_eq!(started(&all), [("TRK-001".to_owned(), 110, 0)]);
    let candump_line = dead(&all)
        .into_iter()
        .find(|(r, _)| *r == Candump)
        .unwrap()
        .1;
    assert!(candump_line.starts_with("line 2: "), "{candump_line}");
    assert_eq!(p.stats().messages, 12);
}

#[test]
fn a_restored_pipeline_continues_where_the_checkpoint_was() {
    let mut p = Pipeline::new(PipelineConfig::default());
    feed(
        &mut p,
        CAN,
        "(1.0) can0 18FECA00#00FF6E000001FFFF\n(1.0) can0 18FEE500#E803000055667788\n",
    );
    let json = serde_json::to_string(&p.checkpoint()).unwrap();
    let mut restored = Pipeline::restore(
        PipelineConfig::default(),
        serde_json::from_str(&json).unwrap(),
    );
    // The fault is still active: repeating it starts nothing; clearing it ends it.
    assert!(
        started(&feed(
            &mut restored,
            CAN,
            "(2.0) can0 18FECA00#00FF6E000001FFFF\n"
        ))
        .is_empty()
    );
    assert_eq!(
        ended(&feed(
            &mut restored,
            CAN,
            "(3.0) can0 18FECA00#00FF00000000FFFF\n"
        )),
        1
    );
    // The meter continues: a backwards reading is still refused.
    let r = feed(&mut restored, CAN, "(4.0) can0 18FEE500#6400000055667788\n");
    assert_eq!(dead(&r)[0].0, DeadLetterReason::Meter, "{r:?}");
}
