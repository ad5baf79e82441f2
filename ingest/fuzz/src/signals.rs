//! Condition-signal payloads (issue 23): `j1939::signals::decode` and
//! `encode_frame`.
//!
//! The first byte picks one of the signal PGNs, the rest is the payload.
//! Checked: decoding never panics; a field is decoded exactly when the
//! payload holds all its bytes; a value lies in its field's valid range;
//! "not available" and error are told apart by the field's top byte; and
//! encoding the decoded values gives back the decoded values.

use fleetcare_ingest::j1939::signals::{self, Field};
use fleetcare_ingest::j1939::{Param, Pgn};

const PGNS: [u32; 4] = [65262, 65263, 65271, 61444];

fn range(field: &Field) -> (f64, f64) {
    let max = if field.len == 1 { 0xFA } else { 0xFAFF };
    (
        field.offset_value,
        f64::from(max) * field.resolution + field.offset_value,
    )
}

pub fn check(input: &[u8]) {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let Some(pgn) = PGNS
        .get(usize::from(selector) % PGNS.len())
        .and_then(|&p| Pgn::new(p))
    else {
        return;
    };
    let fields = signals::fields(pgn);
    let samples: Vec<_> = signals::decode(pgn, data).collect();
    let present: Vec<&Field> = fields
        .iter()
        .filter(|f| f.offset + f.len <= data.len())
        .collect();
    assert_eq!(samples.len(), present.len(), "PGN {pgn} {data:02X?}");
    let mut values = Vec::new();
    for (sample, field) in samples.iter().zip(&present) {
        assert_eq!(sample.signal, field.signal);
        let top = data.get(field.offset + field.len - 1).copied();
        match sample.value {
            Param::Value(v) => {
                let (lo, hi) = range(field);
                assert!(v >= lo && v <= hi, "{v} outside {lo}..={hi}");
                values.push((field.signal, v));
            }
            Param::NotAvailable => assert_eq!(top, Some(0xFF)),
            Param::Error => assert!(matches!(top, Some(0xFB..=0xFE))),
        }
    }
    let frame = signals::encode_frame(pgn, &values);
    let again: Vec<_> = signals::decode(pgn, &frame)
        .filter_map(|s| s.value.value().map(|v| (s.signal, v)))
        .collect();
    assert_eq!(again, values, "PGN {pgn} {data:02X?} → {frame:02X?}");
}
