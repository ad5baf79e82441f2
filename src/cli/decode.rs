//! `fleetcare decode [FILE|-]`: candump -L lines and telemetry JSON lines in,
//! one JSON object per decoded event out (contract C6). Stores nothing.
//!
//! A line that starts with `{` is telemetry; anything else is read as
//! candump. Each candump interface is its own J1939 network with its own
//! transport sessions. Memory stays flat for logs of any size: lines are
//! bounded, transport sessions are bounded, and so is the number of
//! interfaces tracked.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use fleetcare_ingest::candump;
use fleetcare_ingest::j1939::{
    DiagnosticMessage, DmKind, J1939Decoder, J1939Event, LampFlash, Lamps,
};
use fleetcare_ingest::telemetry::{self, Telemetry};
use fleetcare_ingest::{FrameId, Timestamp};
use serde::Serialize;

use crate::lines::{BoundedLines, Line};

/// Longer lines cannot be one CAN frame or a sensible telemetry message.
const MAX_LINE: usize = 64 * 1024;
/// Distinct candump interfaces decoded at once; more are refused.
const MAX_INTERFACES: usize = 64;

#[derive(Debug, Default)]
struct Counts {
    lines: u64,
    events: u64,
    rejected: u64,
    standard_frames: u64,
}

pub(super) fn run(file: Option<&Path>) -> anyhow::Result<()> {
    let input: Box<dyn BufRead> = match file {
        None => Box::new(io::stdin().lock()),
        Some(p) if p == Path::new("-") => Box::new(io::stdin().lock()),
        Some(p) => Box::new(BufReader::with_capacity(
            1 << 16,
            File::open(p)
                .with_context(|| format!("cannot open {}; check the path", p.display()))?,
        )),
    };
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let stderr = io::stderr().lock();
    let mut err = BufWriter::new(stderr);
    let counts = decode_stream(input, &mut out, &mut err)?;
    out.flush().context("cannot write the decoded events")?;
    writeln!(
        err,
        "decoded {} lines: {} events, {} lines rejected, {} 11-bit frames ignored",
        counts.lines, counts.events, counts.rejected, counts.standard_frames
    )?;
    err.flush()?;
    Ok(())
}

struct Networks {
    decoders: Vec<(String, J1939Decoder)>,
}

impl Networks {
    fn get(&mut self, interface: &str) -> Option<&mut J1939Decoder> {
        let i = match self.decoders.iter().position(|(n, _)| n == interface) {
            Some(i) => i,
            None if self.decoders.len() < MAX_INTERFACES => {
                self.decoders
                    .push((interface.to_owned(), J1939Decoder::default()));
                self.decoders.len() - 1
            }
            None => return None,
        };
        self.decoders.get_mut(i).map(|(_, d)| d)
    }
}

/// Decodes every line of `input`, events to `out`, rejections to `err`.
fn decode_stream(
    input: impl BufRead,
    out: &mut impl Write,
    err: &mut impl Write,
) -> anyhow::Result<Counts> {
    let mut lines = BoundedLines::new(input, MAX_LINE);
    let mut networks = Networks {
        decoders: Vec::new(),
    };
    let mut events = Vec::new();
    let mut counts = Counts::default();
    while let Some((n, line)) = lines.next_line().context("cannot read the input")? {
        counts.lines += 1;
        let text = match line {
            Line::Text(t) => t,
            Line::TooLong => {
                counts.rejected += 1;
                writeln!(err, "line {n}: longer than {MAX_LINE} bytes")?;
                continue;
            }
            Line::NotText => {
                counts.rejected += 1;
                writeln!(err, "line {n}: not UTF-8 text")?;
                continue;
            }
        };
        if text.trim_start().starts_with('{') {
            match telemetry::parse(text.as_bytes()) {
                Ok(t) => counts.events += write_telemetry(out, &t)?,
                Err(e) => {
                    counts.rejected += 1;
                    writeln!(err, "line {n}: {e}")?;
                }
            }
            continue;
        }
        let record = match candump::parse_line(text) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                counts.rejected += 1;
                writeln!(err, "line {n}: {e}")?;
                continue;
            }
        };
        if let FrameId::Standard(_) = record.frame.id {
            counts.standard_frames += 1;
            continue;
        }
        let Some(decoder) = networks.get(record.interface) else {
            counts.rejected += 1;
            writeln!(
                err,
                "line {n}: more than {MAX_INTERFACES} interfaces in one log"
            )?;
            continue;
        };
        decoder.handle(&record.frame, &mut events);
        for e in events.drain(..) {
            counts.events += write_event(out, err, n, &e)?;
        }
    }
    // Transfers still open at the end of the input will never complete.
    for (interface, decoder) in &mut networks.decoders {
        decoder.poll_timeouts(Timestamp::from_micros(i64::MAX), &mut events);
        for e in events.drain(..) {
            if let J1939Event::TransportFailed(f) = e {
                writeln!(
                    err,
                    "end of input: transport session on {interface} from SA {} to {} did not complete",
                    f.source, f.destination
                )?;
            }
        }
    }
    Ok(counts)
}

#[derive(Serialize)]
struct DtcJson {
    spn: u32,
    fmi: u8,
    oc: u8,
    cm: u8,
    /// Only for telemetry, where one list holds DTCs of several ECUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    sa: Option<u8>,
}

#[derive(Serialize)]
struct DmJson {
    kind: &'static str,
    ts: String,
    /// The J1939 source address; null for telemetry.
    sa: Option<u8>,
    lamps: Lamps,
    #[serde(skip_serializing_if = "Option::is_none")]
    flash: Option<LampFlash>,
    dtcs: Vec<DtcJson>,
}

#[derive(Serialize)]
struct MeterJson {
    kind: &'static str,
    ts: String,
    sa: Option<u8>,
    meter: &'static str,
    value: f64,
}

/// A condition signal (C12, issue 23): `{"kind": "signal", "ts", "sa",
/// "signal", "value"}`.
#[derive(Serialize)]
struct SignalJson<'a> {
    kind: &'static str,
    ts: String,
    sa: Option<u8>,
    signal: &'a str,
    value: f64,
}

fn dm_json(ts: Timestamp, sa: u8, m: &DiagnosticMessage) -> DmJson {
    DmJson {
        kind: match m.kind {
            DmKind::Dm1 => "dm1",
            DmKind::Dm2 => "dm2",
        },
        ts: ts.to_rfc3339(),
        sa: Some(sa),
        lamps: m.lamps,
        flash: Some(m.flash),
        dtcs: m
            .dtcs
            .iter()
            .map(|d| DtcJson {
                spn: d.spn.raw(),
                fmi: d.fmi.raw(),
                oc: d.oc.raw(),
                cm: u8::from(d.cm),
                sa: None,
            })
            .collect(),
    }
}

fn write_json(out: &mut impl Write, v: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, v)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes one decoder event; returns how many JSON events it wrote.
fn write_event(
    out: &mut impl Write,
    err: &mut impl Write,
    line: u64,
    e: &J1939Event,
) -> anyhow::Result<u64> {
    match e {
        J1939Event::Diagnostic {
            ts,
            source,
            message,
        } => {
            write_json(out, &dm_json(*ts, source.0, message))?;
            Ok(1)
        }
        J1939Event::Meter {
            ts,
            source,
            meter,
            value,
        } => {
            write_json(
                out,
                &MeterJson {
                    kind: "meter",
                    ts: ts.to_rfc3339(),
                    sa: Some(source.0),
                    meter: meter.as_str(),
                    value: *value,
                },
            )?;
            Ok(1)
        }
        J1939Event::Signal {
            ts,
            source,
            signal,
            value,
        } => {
            write_json(
                out,
                &SignalJson {
                    kind: "signal",
                    ts: ts.to_rfc3339(),
                    sa: Some(source.0),
                    signal: signal.as_str(),
                    value: *value,
                },
            )?;
            Ok(1)
        }
        J1939Event::TransportFailed(f) => {
            let pgn = f.pgn.map(|p| format!(" of PGN {p}")).unwrap_or_default();
            writeln!(
                err,
                "line {line}: transport{pgn} from SA {} to {}: {}",
                f.source, f.destination, f.reason
            )?;
            Ok(0)
        }
        J1939Event::Invalid {
            source, pgn, error, ..
        } => {
            writeln!(err, "line {line}: PGN {pgn} from SA {source}: {error}")?;
            Ok(0)
        }
        // Decoding a log is passive: nothing is sent back.
        J1939Event::Send(_) => Ok(0),
    }
}

fn write_telemetry(out: &mut impl Write, t: &Telemetry) -> anyhow::Result<u64> {
    let mut n = 0;
    let ts = t.ts.to_rfc3339();
    for (meter, value) in [
        ("engine_hours", t.engine_hours),
        ("pto_hours", t.pto_hours),
        ("odometer_km", t.odometer_km),
    ] {
        if let Some(value) = value {
            write_json(
                out,
                &MeterJson {
                    kind: "meter",
                    ts: ts.clone(),
                    sa: None,
                    meter,
                    value,
                },
            )?;
            n += 1;
        }
    }
    if let Some(dtcs) = &t.dtcs {
        let dm = DmJson {
            kind: "dm1",
            ts,
            sa: None,
            lamps: t.lamps.unwrap_or_default(),
            flash: None,
            dtcs: dtcs
                .iter()
                .map(|d| DtcJson {
                    spn: d.dtc.spn.raw(),
                    fmi: d.dtc.fmi.raw(),
                    oc: d.dtc.oc.raw(),
                    cm: 0,
                    sa: Some(d.source.0),
                })
                .collect(),
        };
        write_json(out, &dm)?;
        n += 1;
    }
    for (signal, value) in &t.signals {
        let json = SignalJson {
            kind: "signal",
            ts: t.ts.to_rfc3339(),
            sa: None,
            signal: signal.as_str(),
            value: *value,
        };
        write_json(out, &json)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &str) -> (Vec<serde_json::Value>, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        decode_stream(input.as_bytes(), &mut out, &mut err).unwrap();
        let events = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (events, String::from_utf8(err).unwrap())
    }

    #[test]
    fn contract_example_dm1() {
        let (events, err) = decode("(1543509533.000838) can0 18FECA00#40FF5B000301FFFF\n");
        assert_eq!(err, "");
        assert_eq!(
            events,
            vec![serde_json::json!({
                "kind": "dm1", "ts": "2018-11-29T16:38:53.000838Z", "sa": 0,
                "lamps": {"mil": "on", "red_stop": "off", "amber_warning": "off", "protect": "off"},
                "flash": {"mil": "off", "red_stop": "off", "amber_warning": "off", "protect": "off"},
                "dtcs": [{"spn": 91, "fmi": 3, "oc": 1, "cm": 0}]
            })]
        );
    }

    #[test]
    fn meters_telemetry_and_rejections_with_line_numbers() {
        let input = "(1.0) can0 18FEE500#FE05000055667788\n\
                     garbage\n\
                     (2.0) can0 123#00\n\
                     {\"ts\": \"2026-03-01T08:00:00Z\", \"pto_hours\": 2.5, \"dtcs\": [{\"spn\": 110, \"fmi\": 0, \"sa\": 3}]}\n\
                     {\"ts\": 5}\n\
                     (3.0) can0 18FECA00#40\n";
        let (events, err) = decode(input);
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[0]["meter"], "engine_hours");
        assert_eq!(events[0]["value"], 76.7);
        assert_eq!(events[1]["meter"], "pto_hours");
        assert_eq!(events[1]["sa"], serde_json::Value::Null);
        assert_eq!(events[2]["dtcs"][0]["sa"], 3);
        assert_eq!(events[2]["lamps"]["mil"], "not_available");
        let err_lines: Vec<&str> = err.lines().collect();
        assert_eq!(err_lines.len(), 2, "{err}");
        assert!(
            err_lines[0].starts_with("line 5: not valid telemetry JSON"),
            "{err}"
        );
        assert!(
            err_lines[1].starts_with("line 6: PGN 65226 from SA 0"),
            "{err}"
        );
    }

    // Vector 4, pretty_j1939 tests: a BAM DM1 with 4 DTCs, interleaved with
    // another interface's frames.
    #[test]
    fn bam_dm1_per_interface() {
        let input = "(1.000) can0 18ECFF00#20120003FFCAFE00\n\
                     (1.010) can1 18ECFF00#20120003FFCAFE00\n\
                     (1.050) can0 18EBFF00#0100FF5B0003015C\n\
                     (1.100) can0 18EBFF00#020004025D000503\n\
                     (1.150) can0 18EBFF00#035E000604FFFFFF\n";
        let (events, err) = decode(input);
        assert_eq!(events.len(), 1);
        let dtcs: Vec<(u64, u64, u64)> = events[0]["dtcs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["spn"].as_u64().unwrap(),
                    d["fmi"].as_u64().unwrap(),
                    d["oc"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(dtcs, vec![(91, 3, 1), (92, 4, 2), (93, 5, 3), (94, 6, 4)]);
        assert!(
            err.contains("end of input: transport session on can1"),
            "{err}"
        );
    }
}
