//! A realistic candump log of one truck's J1939 bus: mostly engine and
//! vehicle PGNs fleetcare does not use, with DM1 single frames every second,
//! a BAM DM1 every five seconds, and the hour and distance meters.
//! Shared by the criterion benchmark and the `synth_log` example.

use fleetcare_ingest::j1939::transport::bam_frames;
use fleetcare_ingest::j1939::{
    Address, CanId, DiagnosticMessage, DmKind, Dtc, Fmi, LampFlash, Lamps, OccurrenceCount, Pgn,
    Spn,
};
use fleetcare_ingest::{CanFrame, Duration, Timestamp};

/// (id, lines per second) of the unrelated traffic.
const BACKGROUND: [(u32, u32); 6] = [
    (0x0CF0_0400, 20), // EEC1, engine speed
    (0x0CF0_0300, 10), // EEC2, accelerator
    (0x18FE_F100, 10), // CCVS, wheel speed
    (0x18FE_EE00, 1),  // ET1, temperatures
    (0x18FE_EF00, 1),  // EFL/P1, pressures
    (0x18FE_F200, 2),  // LFE, fuel economy
];

/// Writes `seconds` of bus traffic from second `start` as candump -L lines into `out`.
pub(crate) fn write_log(out: &mut String, start: u32, seconds: u32) {
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let t0: i64 = 1_700_000_000_000_000;
    let dtc = |spn: u32, fmi: u8| {
        Dtc::new(
            Spn::new(spn).expect("valid"),
            Fmi::new(fmi).expect("valid"),
            OccurrenceCount::new(1).expect("valid"),
        )
    };
    for s in i64::from(start)..i64::from(start) + i64::from(seconds) {
        let base = t0 + s * 1_000_000;
        let mut frames: Vec<CanFrame> = Vec::with_capacity(64);
        for (id, per_second) in BACKGROUND {
            for k in 0..i64::from(per_second) {
                let ts = Timestamp::from_micros(base + k * 1_000_000 / i64::from(per_second) + 137);
                let data = next().to_le_bytes();
                frames.push(CanFrame::j1939(ts, CanId::new(id).expect("29 bits"), &data));
            }
        }
        let at = |us: i64| Timestamp::from_micros(base + us);
        let id = |raw: u32| CanId::new(raw).expect("29 bits");
        let single = DiagnosticMessage {
            kind: DmKind::Dm1,
            lamps: Lamps::from_byte_bits(0x44),
            flash: LampFlash::NONE,
            dtcs: vec![dtc(110, 0)],
        };
        frames.push(CanFrame::j1939(
            at(500_000),
            id(0x18FE_CA00),
            &single.encode(),
        ));
        let hours = (s as u32).wrapping_mul(7) + 20_000;
        frames.push(CanFrame::j1939(
            at(600_000),
            id(0x18FE_E500),
            &hours.to_le_bytes().repeat(2),
        ));
        frames.push(CanFrame::j1939(
            at(610_000),
            id(0x18FE_E700),
            &hours.to_le_bytes().repeat(2),
        ));
        frames.push(CanFrame::j1939(
            at(620_000),
            id(0x18FE_E000),
            &(hours * 3).to_le_bytes().repeat(2),
        ));
        if s % 5 == 0 {
            let multi = DiagnosticMessage {
                dtcs: vec![dtc(3719, 16), dtc(520_200, 7), dtc(168, 4)],
                ..single
            };
            frames.extend(bam_frames(
                at(700_000),
                Duration::from_millis(50),
                Address(0x21),
                Pgn::DM1,
                &multi.encode(),
            ));
        }
        frames.sort_by_key(|f| f.ts);
        for f in frames {
            out.push_str(&f.to_candump("can0"));
            out.push('\n');
        }
    }
}
