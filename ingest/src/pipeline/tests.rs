use super::*;

/// 2026-03-01T00:00:00Z: the tests' event times are seconds after it.
const T0: i64 = 1_772_323_200;

fn at(s: f64) -> Timestamp {
    Timestamp::from_micros(T0 * 1_000_000 + (s * 1e6) as i64)
}

/// `text` with each line's candump time `(S.F)` moved to S seconds after
/// [`T0`], so that short times read as plausible event times.
fn dated(text: &str) -> String {
    text.split_inclusive('\n')
        .map(
            |line| match line.strip_prefix('(').and_then(|l| l.split_once('.')) {
                Some((secs, rest)) if secs.bytes().all(|b| b.is_ascii_digit()) => {
                    format!("({}.{rest}", T0 + secs.parse::<i64>().unwrap_or(0))
                }
                _ => line.to_owned(),
            },
        )
        .collect()
}

fn feed(p: &mut Pipeline, topic: &str, payload: &str) -> Vec<Record> {
    feed_at(p, topic, payload, at(0.0))
}

fn feed_at(p: &mut Pipeline, topic: &str, payload: &str, received: Timestamp) -> Vec<Record> {
    let mut out = Vec::new();
    p.handle(
        Message {
            topic,
            payload: payload.as_bytes(),
            received,
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
const TELEMETRY: &str = "fleet/acme/TRK-001/telemetry";

/// A telemetry message at `ts` listing `n` distinct DTCs (SPN 1000 on),
/// with the red stop lamp on or off.
fn telemetry_with_dtcs(ts: &str, n: u32, red: bool) -> String {
    let dtcs: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"spn": {}, "fmi": 1, "oc": 1}}"#, 1000 + i))
        .collect();
    let red = if red { "on" } else { "off" };
    format!(
        r#"{{"ts": "{ts}", "dtcs": [{}], "lamps": {{"red_stop": "{red}"}}}}"#,
        dtcs.join(", ")
    )
}

#[test]
fn bam_split_across_two_messages_is_reassembled() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let first = feed(
        &mut p,
        CAN,
        &dated("(1.000) can0 18ECFF00#20120003FFCAFE00\n(1.050) can0 18EBFF00#0100FF5B0003015C\n"),
    );
    assert!(first.is_empty(), "{first:?}");
    let second = feed(
        &mut p,
        CAN,
        &dated("(1.100) can0 18EBFF00#020004025D000503\n(1.150) can0 18EBFF00#035E000604FFFFFF\n"),
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
        &dated("(1.100) can0 18EBFF00#020004025D000503\n"),
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
            dated(&format!("({s}.000000) can0 18FECA00#00FF6E000001FFFF\n"))
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
        dated("(1.0) can0 18FECA00#00FF00000000FFFF").as_bytes(),
    );
    push(&mut p, "other/acme/TRK-1/can", b"");
    push(&mut p, CAN, &vec![b'('; 300 * 1024]);
    push(&mut p, CAN, b"\xFF\xFE(1.0) can0");
    // A bad line among good ones: only the bad line is refused.
    push(&mut p, CAN, dated("(1.0) can0 18FECA00#00FF6E000001FFFF\n(1.1) can0 18FECA00##1\n(1.2) can0 18FECA00#00FF6E000001FFFF\n").as_bytes());
    push(
        &mut p,
        "fleet/acme/TRK-001/telemetry",
        b"{\"ts\": \"yesterday\"}",
    );
    // Text that is no candump line at all, beside a DROPCOUNT line that is skipped.
    push(&mut p, CAN, b"DROPCOUNT: dropped 1 CAN frames\nhello world");
    push(&mut p, CAN, dated("(2.0) can0 18FECA00#40").as_bytes());
    push(
        &mut p,
        CAN,
        dated("(2.1) can0 18EBFF00#0100FF5B0003015C").as_bytes(),
    );
    let many: String = (0..9)
        .map(|i| dated(&format!("(3.0) can{i} 18FEE500#FE05000055667788\n")))
        .collect();
    push(&mut p, CAN, many.as_bytes());
    push(
        &mut p,
        "fleet/acme/TRK-001/telemetry",
        br#"{"ts": "2026-03-01T05:00:00Z", "engine_hours": 80}"#,
    );
    push(
        &mut p,
        "fleet/acme/TRK-001/telemetry",
        br#"{"ts": "2026-03-01T05:00:01Z", "engine_hours": 79}"#,
    );
    // A clock that was never set, and a list of faults no truck has.
    push(
        &mut p,
        "fleet/acme/TRK-001/telemetry",
        br#"{"ts": "1970-01-01T00:00:00Z", "engine_hours": 81}"#,
    );
    push(
        &mut p,
        "fleet/acme/TRK-001/telemetry",
        telemetry_with_dtcs("2026-03-01T00:00:02Z", 446, true).as_bytes(),
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
            Meter,
            ImplausibleTime,
            TooManyDtcs
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
    assert_eq!(p.stats().messages, 14);
}

#[test]
fn a_restored_pipeline_continues_where_the_checkpoint_was() {
    let mut p = Pipeline::new(PipelineConfig::default());
    feed(
        &mut p,
        CAN,
        &dated("(1.0) can0 18FECA00#00FF6E000001FFFF\n(1.0) can0 18FEE500#E803000055667788\n"),
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
            &dated("(2.0) can0 18FECA00#00FF6E000001FFFF\n")
        ))
        .is_empty()
    );
    assert_eq!(
        ended(&feed(
            &mut restored,
            CAN,
            &dated("(3.0) can0 18FECA00#00FF00000000FFFF\n")
        )),
        1
    );
    // The meter continues: a backwards reading is still refused.
    let r = feed(
        &mut restored,
        CAN,
        &dated("(4.0) can0 18FEE500#6400000055667788\n"),
    );
    assert_eq!(dead(&r)[0].0, DeadLetterReason::Meter, "{r:?}");
}

fn fault_records(records: &[Record]) -> usize {
    records
        .iter()
        .filter(|r| {
            matches!(
                r,
                Record::FaultStarted { .. } | Record::FaultEnded { .. } | Record::Meter { .. }
            )
        })
        .count()
}

/// The candump lines of a DM1 from SA 0 listing `dtcs`, over BAM when it
/// needs more than one frame, `s` seconds after [`T0`].
fn dm1_lines(s: f64, red: bool, dtcs: &[Dtc]) -> String {
    let m = DiagnosticMessage {
        kind: DmKind::Dm1,
        lamps: Lamps {
            red_stop: if red {
                crate::j1939::LampStatus::On
            } else {
                crate::j1939::LampStatus::Off
            },
            ..Lamps::ALL_OFF
        },
        flash: crate::j1939::LampFlash::NONE,
        dtcs: dtcs.to_vec(),
    };
    let data = m.encode();
    let frames = if data.len() <= 8 {
        let id = crate::j1939::CanId::from_parts(
            crate::j1939::Priority::new(6).unwrap(),
            crate::j1939::Pgn::DM1,
            Address::GLOBAL,
            Address(0),
        );
        vec![crate::CanFrame::j1939(at(s), id, &data)]
    } else {
        crate::j1939::transport::bam_frames(
            at(s),
            crate::Duration::from_millis(10),
            Address(0),
            crate::j1939::Pgn::DM1,
            &data,
        )
    };
    frames.iter().map(|f| f.to_candump("can0") + "\n").collect()
}

/// Issue 20, finding 4: one telemetry message with 5,000 DTCs and the red
/// stop lamp started 5,000 episodes (and opened as many P1 tickets).
#[test]
fn a_fault_list_longer_than_the_limit_is_refused_whole() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let r = feed(
        &mut p,
        TELEMETRY,
        &telemetry_with_dtcs("2026-03-01T00:00:00Z", 3, true),
    );
    assert_eq!(started(&r).len(), 3);
    let flood = telemetry_with_dtcs("2026-03-01T00:00:01Z", 5_000, true);
    assert!(flood.len() > 100_000, "{}", flood.len());
    let r = feed(&mut p, TELEMETRY, &flood);
    let d = dead(&r);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].0, DeadLetterReason::TooManyDtcs);
    assert!(
        d[0].1.contains("lists 5000 DTCs, more than the 445"),
        "{}",
        d[0].1
    );
    assert_eq!(fault_records(&r), 0, "nothing of it is applied: {r:?}");
    // The dead letter names the vehicle (for its alerts), as only a topic
    // dead letter cannot.
    let Some(Record::DeadLetter(letter)) = r.first() else {
        panic!("{r:?}")
    };
    assert_eq!(letter.vehicle.as_ref().unwrap().vehicle.as_str(), "TRK-001");
    let r = feed(&mut p, "fleet/acme/TRK 1/telemetry", "{}");
    assert!(matches!(&r[..], [Record::DeadLetter(d)] if d.vehicle.is_none()));
    // The three faults are still active: the refused list ended none of
    // them, and listing them again starts none.
    let r = feed(
        &mut p,
        TELEMETRY,
        &telemetry_with_dtcs("2026-03-01T00:00:02Z", 3, true),
    );
    assert!(r.is_empty(), "{r:?}");
    // 445, the most a DM1 can carry, is accepted.
    let r = feed(
        &mut p,
        TELEMETRY,
        &telemetry_with_dtcs("2026-03-01T00:00:03Z", 445, false),
    );
    assert_eq!(started(&r).len(), 442);
    assert!(dead(&r).is_empty());

    // A DM1 over BAM longer than a configured limit is refused the same way,
    // naming the line that completed it; one within it is not.
    let mut p = Pipeline::new(PipelineConfig {
        max_dtcs: 4,
        ..PipelineConfig::default()
    });
    let five: Vec<Dtc> = (0..5).map(|i| dtc(100 + i, 1)).collect();
    let r = feed(&mut p, CAN, &dm1_lines(1.0, true, &five));
    let d = dead(&r);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].0, DeadLetterReason::TooManyDtcs);
    assert!(
        d[0].1.starts_with("line 5: Dm1 from SA 0 lists 5 DTCs"),
        "{}",
        d[0].1
    );
    assert!(started(&r).is_empty());
    let r = feed(&mut p, CAN, &dm1_lines(2.0, true, &five[..4]));
    assert_eq!(started(&r).len(), 4);
    assert!(dead(&r).is_empty());
    assert_eq!(p.stats().dead_letters[&DeadLetterReason::TooManyDtcs], 1);
}

/// Issue 20, finding 4: one 200 KB payload of garbage lines made 100,000
/// dead letters.
#[test]
fn a_message_makes_at_most_the_limit_of_dead_letters_and_one_more() {
    let mut p = Pipeline::new(PipelineConfig::default());
    // 100,000 lines that are not candump lines, a valid reading among them,
    // and a few J1939 errors after them.
    let mut payload = "x\n".repeat(50_000);
    payload.push_str(&dated("(1.0) can0 18FEE500#E803000055667788\n"));
    payload.push_str(&"y\n".repeat(49_997));
    payload.push_str(&dated("(2.0) can0 18FECA00#40\n").repeat(3));
    assert!(payload.len() < 256 * 1024);
    let r = feed(&mut p, CAN, &payload);
    let letters: Vec<&DeadLetter> = r
        .iter()
        .filter_map(|r| match r {
            Record::DeadLetter(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(letters.len(), 101);
    assert!(letters[..100].iter().all(|d| d.more.is_empty()));
    assert_eq!(
        letters[0].detail,
        "line 1: not a candump -L line (no '(timestamp)')"
    );
    let last = letters[100];
    assert_eq!(
        (last.reason, last.more.clone()),
        (
            DeadLetterReason::Candump,
            vec![
                (DeadLetterReason::Candump, 99_896),
                (DeadLetterReason::J1939, 3)
            ]
        )
    );
    assert_eq!(
        last.detail,
        "line 101: not a candump -L line (no '(timestamp)'); and 99,899 more dead letters of this message, counted but not kept one by one (99,896 candump, 3 j1939): the first 101 are kept"
    );
    // Everything is counted, kept or not.
    let counted: u64 = letters
        .iter()
        .flat_map(|d| d.counts())
        .map(|(_, n)| n)
        .sum();
    assert_eq!(counted, 99_997 + 3);
    assert_eq!(p.stats().dead_letters[&DeadLetterReason::Candump], 99_997);
    assert_eq!(p.stats().dead_letters[&DeadLetterReason::J1939], 3);
    // The valid line among the garbage is used.
    assert_eq!(meters(&r), [(50.0, 50.0)]);
    // The next message starts with a fresh allowance.
    let r = feed(&mut p, CAN, "z\n");
    assert_eq!(dead(&r).len(), 1);
    assert_eq!(
        dead(&r)[0].1,
        "line 1: not a candump -L line (no '(timestamp)')"
    );
}

/// Issue 20, finding 9: event times from year 0000 to 9999 were accepted.
#[test]
fn event_times_outside_the_plausible_window_are_dead_letters() {
    let received = at(0.0); // 2026-03-01T00:00:00Z
    let mut p = Pipeline::new(PipelineConfig::default());
    let tel = |ts: &str| format!(r#"{{"ts": "{ts}", "engine_hours": 100}}"#);
    for (ts, why) in [
        (
            "1970-01-01T00:00:00Z",
            "is before 2000-01-01T00:00:00.000000Z",
        ),
        (
            "0000-01-01T00:00:00Z",
            "is before 2000-01-01T00:00:00.000000Z",
        ),
        (
            "2026-03-03T00:00:00Z",
            "is more than 1 day after the message was received (2026-03-01T00:00:00.000000Z)",
        ),
        ("9999-12-31T23:59:59Z", "is more than 1 day after"),
    ] {
        let r = feed_at(&mut p, TELEMETRY, &tel(ts), received);
        let d = dead(&r);
        assert_eq!(d.len(), 1, "{ts}: {r:?}");
        assert_eq!(d[0].0, DeadLetterReason::ImplausibleTime, "{ts}");
        assert!(d[0].1.contains(why), "{ts}: {}", d[0].1);
        assert!(meters(&r).is_empty(), "{ts}");
    }
    // Ten days back and a day ahead (a gateway clock a little fast) are
    // plausible.
    for ts in ["2026-02-19T00:00:00Z", "2026-03-02T00:00:00Z"] {
        let r = feed_at(&mut p, TELEMETRY, &tel(ts), received);
        assert!(dead(&r).is_empty(), "{ts}: {r:?}");
    }
    // In a candump message only the implausible line is refused.
    let mut p = Pipeline::new(PipelineConfig::default());
    let text = format!(
        "(1.000000) can0 18FEE500#E803000055667788\n{}",
        dated("(1.0) can0 18FEE500#E803000055667788\n")
    );
    let r = feed_at(&mut p, CAN, &text, received);
    let d = dead(&r);
    assert_eq!(d.len(), 1, "{r:?}");
    assert_eq!(d[0].0, DeadLetterReason::ImplausibleTime);
    assert!(
        d[0].1.starts_with("line 1: event time 1970-01-01T00:00:01"),
        "{}",
        d[0].1
    );
    assert_eq!(meters(&r), [(50.0, 50.0)]);
}

/// A BAM announcement that is never followed by data: the vehicle keeps a
/// decoder with a transport session open.
fn open_bam(s: f64) -> String {
    dated(&format!("({s:.6}) can0 18ECFF00#20120003FFCAFE00\n"))
}

/// Issue 20, finding 9: per-vehicle ingest state was made for any topic and
/// never dropped.
#[test]
fn decoders_of_many_vehicles_stay_bounded_and_idle_ones_are_dropped() {
    let mut p = Pipeline::new(PipelineConfig {
        max_vehicles: 16,
        ..PipelineConfig::default()
    });
    for i in 0..10_000 {
        let topic = format!("fleet/acme/V{i}/can");
        feed(&mut p, &topic, &open_bam(1.0));
        assert!(p.decoder_count() <= 16, "{i}: {}", p.decoder_count());
        // The newest vehicle keeps its decoder whatever the limit.
        assert!(p.vehicles.last().is_some_and(|v| !v.networks.is_empty()));
    }
    assert!(p.decoder_count() >= 14);
    // Garbage on any topic leaves no state at all.
    let before = p.vehicle_count();
    for i in 0..1_000 {
        feed(&mut p, &format!("fleet/junk/J{i}/can"), "garbage\n");
        feed(&mut p, &format!("fleet/junk/J{i}/telemetry"), "{}");
        feed(
            &mut p,
            &format!("fleet/junk/K{i}/telemetry"),
            r#"{"ts": "2026-03-01T00:00:00Z"}"#,
        );
    }
    assert_eq!(p.vehicle_count(), before);

    // Idle: eleven minutes later, a message from one vehicle drops every
    // other vehicle's decoders.
    let later = at(11.0 * 60.0);
    feed_at(&mut p, "fleet/acme/V0/can", &open_bam(660.0), later);
    assert_eq!(p.decoder_count(), 1);
}

/// Episodes and meters live on when decoders are dropped: the same input
/// gives the same records with one decoder kept as with all of them.
#[test]
fn an_evicted_vehicle_continues_its_episodes_as_if_never_evicted() {
    let run = |max_vehicles: usize| {
        let mut p = Pipeline::new(PipelineConfig {
            max_vehicles,
            ..PipelineConfig::default()
        });
        let mut records = Vec::new();
        for step in 0..60u32 {
            for v in 0..5u32 {
                let s = f64::from(step * 60 + v);
                // Each vehicle's fault set changes every few steps, over BAM
                // (several DTCs) or one frame; its engine hours go up.
                let dtcs: Vec<Dtc> = (0..(step + v) % 4).map(|k| dtc(100 + k, 1)).collect();
                let mut text = dm1_lines(s, v == 0, &dtcs);
                // 0.05 h a minute: an engine running.
                let hours = 20_000 + v * 1_000 + step;
                let h = hours.to_le_bytes();
                text.push_str(&dated(&format!(
                    "({}.5) can0 18FEE500#{:02X}{:02X}{:02X}{:02X}FFFFFFFF\n",
                    step * 60 + v,
                    h[0],
                    h[1],
                    h[2],
                    h[3]
                )));
                let out = feed_at(&mut p, &format!("fleet/acme/T{v}/can"), &text, at(s));
                records.extend(out);
            }
            assert!(p.decoder_count() <= max_vehicles);
        }
        records
    };
    let all = run(1_000);
    assert!(started(&all).len() > 50, "{}", started(&all).len());
    assert!(ended(&all) > 50);
    assert!(dead(&all).is_empty(), "{:?}", dead(&all));
    assert_eq!(run(1), all);
}

/// Issue 20, finding 9: a login that invents vehicle names cannot grow the
/// states without bound; the vehicles already known keep being handled.
#[test]
fn vehicles_beyond_the_tracked_limit_are_dead_letters_and_known_ones_go_on() {
    let mut p = Pipeline::new(PipelineConfig {
        max_tracked_vehicles: 3,
        ..PipelineConfig::default()
    });
    let hours = |s: u32, h: u32| {
        let b = h.to_le_bytes();
        dated(&format!(
            "({s}.0) can0 18FEE500#{:02X}{:02X}{:02X}{:02X}FFFFFFFF\n",
            b[0], b[1], b[2], b[3]
        ))
    };
    for v in 0..3 {
        let out = feed(&mut p, &format!("fleet/acme/T{v}/can"), &hours(1, 20_000));
        assert!(dead(&out).is_empty(), "{:?}", dead(&out));
    }
    assert_eq!(p.vehicle_count(), 3);
    let mut refused = 0;
    for v in 3..1_000 {
        let out = feed(&mut p, &format!("fleet/acme/T{v}/can"), &hours(1, 20_000));
        let d = dead(&out);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].0, DeadLetterReason::TooManyVehicles);
        assert!(d[0].1.contains("max_tracked_vehicles"), "{}", d[0].1);
        refused += 1;
    }
    assert_eq!(p.vehicle_count(), 3);
    assert_eq!(
        p.stats()
            .dead_letters
            .get(&DeadLetterReason::TooManyVehicles),
        Some(&refused)
    );
    // A known vehicle's next reading is still a reading.
    let out = feed_at(
        &mut p,
        "fleet/acme/T1/can",
        &hours(3_600, 20_020),
        at(3_600.0),
    );
    assert!(dead(&out).is_empty(), "{:?}", dead(&out));
    assert!(
        out.iter().any(|r| matches!(r, Record::Meter { .. })),
        "{out:?}"
    );
}
