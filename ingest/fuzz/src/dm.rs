//! DM1/DM2 payloads: `DiagnosticMessage::decode` and `encode`.
//!
//! What round-trips: decoding `encode()` with the same SPN conversion gives
//! the same message, DTCs included. Filler blocks (all-zero, all-0xFF) and
//! the bytes after the last whole block are dropped on the way in, so the
//! input itself is not reproduced; `encode()` is canonical instead. A DTC
//! is re-encoded from the raw bytes it was read from, so CM = 1 blocks keep
//! their legacy layout and read back differently under another conversion;
//! only CM = 0 blocks follow from their fields alone.

use std::fmt;

use fleetcare_ingest::j1939::{
    DiagnosticMessage, DmError, DmKind, Dtc, Fmi, OccurrenceCount, Spn, SpnConversion,
};

/// Which decoding failed a check. Formatted only when one does, as that
/// costs more than the decoding.
struct Context<'a> {
    kind: DmKind,
    conversion: SpnConversion,
    data: &'a [u8],
}

impl fmt::Display for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:?} {:02X?}",
            self.kind, self.conversion, self.data
        )
    }
}

const KINDS: [DmKind; 2] = [DmKind::Dm1, DmKind::Dm2];
const CONVERSIONS: [SpnConversion; 3] = [SpnConversion::V4, SpnConversion::V1, SpnConversion::V2];

pub fn check(data: &[u8]) {
    for kind in KINDS {
        for conversion in CONVERSIONS {
            match DiagnosticMessage::decode(kind, data, conversion) {
                Ok(m) => decoded(data, kind, conversion, &m),
                Err(DmError::TooShort { kind: k, len }) => {
                    assert!(data.len() < 2, "{} bytes refused", data.len());
                    assert_eq!((k, len), (kind, data.len()));
                }
            }
        }
    }
}

fn decoded(data: &[u8], kind: DmKind, conversion: SpnConversion, m: &DiagnosticMessage) {
    let ctx = Context {
        kind,
        conversion,
        data,
    };
    let (lamp, flash, blocks) = match data {
        [lamp, flash, blocks @ ..] => (*lamp, *flash, blocks),
        _ => panic!("{ctx}: decoded without its lamp bytes"),
    };
    assert_eq!(m.kind, kind, "{ctx}");
    assert_eq!((m.lamps.byte(), m.flash.byte()), (lamp, flash), "{ctx}");
    let faults: Vec<[u8; 4]> = blocks
        .chunks_exact(4)
        .filter_map(|c| <[u8; 4]>::try_from(c).ok())
        .filter(|b| *b != [0; 4] && *b != [0xFF; 4])
        .collect();
    let raws: Vec<[u8; 4]> = m.dtcs.iter().map(|d| d.raw).collect();
    assert_eq!(raws, faults, "{ctx}: DTCs are not the non-filler blocks");
    for d in &m.dtcs {
        fields_are_consistent(d, conversion, &ctx);
    }

    let wire = m.encode();
    let want_len = (2 + 4 * m.dtcs.len().max(1)).max(8);
    assert_eq!(wire.len(), want_len, "{ctx}: encoded {wire:02X?}");
    assert_eq!(m.needs_transport(), wire.len() > 8, "{ctx}");
    let again = DiagnosticMessage::decode(kind, &wire, conversion)
        .unwrap_or_else(|e| panic!("{ctx}: encoded {wire:02X?} does not decode: {e}"));
    assert_eq!(&again, m, "{ctx}: encoded {wire:02X?}");
    assert_eq!(again.encode(), wire, "{ctx}: encode is not canonical");

    // Read as version 4 (what a peer without our configuration does), the
    // bytes are the same and only CM = 1 SPNs may differ.
    let v4 = DiagnosticMessage::decode(kind, &wire, SpnConversion::V4)
        .unwrap_or_else(|e| panic!("{ctx}: encoded {wire:02X?} does not decode as V4: {e}"));
    assert_eq!(v4.dtcs.len(), m.dtcs.len(), "{ctx}");
    for (a, b) in v4.dtcs.iter().zip(&m.dtcs) {
        assert_eq!(
            (a.raw, a.fmi, a.oc, a.cm),
            (b.raw, b.fmi, b.oc, b.cm),
            "{ctx}"
        );
        if !b.cm {
            assert_eq!(a.spn, b.spn, "{ctx}");
        }
    }
}

fn fields_are_consistent(d: &Dtc, conversion: SpnConversion, ctx: &Context<'_>) {
    let [b0, b1, b2, b3] = d.raw;
    assert!(d.spn.raw() <= Spn::MAX, "{ctx}: {d:?}");
    assert_eq!(d.fmi.raw(), b2 & 0x1F, "{ctx}: {d:?}");
    assert!(d.fmi.raw() <= Fmi::MAX, "{ctx}: {d:?}");
    assert_eq!(d.oc.raw(), b3 & 0x7F, "{ctx}: {d:?}");
    assert!(d.oc.raw() <= OccurrenceCount::MAX, "{ctx}: {d:?}");
    assert_eq!(d.cm, b3 & 0x80 != 0, "{ctx}: {d:?}");
    assert_eq!(Dtc::decode(d.raw, conversion).as_ref(), Some(d), "{ctx}");
    if !d.cm || conversion == SpnConversion::V4 {
        let v4_spn = u32::from(b0) | u32::from(b1) << 8 | u32::from(b2 >> 5) << 16;
        assert_eq!(d.spn.raw(), v4_spn, "{ctx}: {d:?}");
        // The version-4 layout is fully described by the fields, apart
        // from the CM bit that `Dtc::new` never sets.
        let rebuilt = Dtc::new(d.spn, d.fmi, d.oc);
        assert_eq!(rebuilt.raw, [b0, b1, b2, b3 & 0x7F], "{ctx}: {d:?}");
        if !d.cm {
            assert_eq!(&rebuilt, d, "{ctx}");
        }
    }
}
