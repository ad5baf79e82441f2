//! The files a simulation writes: the recording (contract C2) and, in the
//! same directory, `vehicles.csv` and `services.csv` (contract C4) and
//! `truth.json`.
//!
//! The recording is streamed: messages are buffered only until every
//! message that could be delivered before them has been generated (one
//! day), then written in delivery order. It is written to `FILE.partial`
//! and renamed when complete, so an interrupted run leaves no file that
//! looks whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::SimulateError;
use super::fleet::Truck;
use super::services::{Performed, ServiceRow, Work};
use fleetcare_ingest::Timestamp;

/// The registry, beside the recording.
pub const VEHICLES_FILE: &str = "vehicles.csv";
/// The service history, beside the recording.
pub const SERVICES_FILE: &str = "services.csv";
/// The ground truth, beside the recording.
pub const TRUTH_FILE: &str = "truth.json";

/// Contract C4 headers.
pub(crate) const VEHICLES_HEADER: &str = "vehicle_id,fleet_id,model_id,vin,commissioned_on,depot";
pub(crate) const SERVICES_HEADER: &str =
    "vehicle_id,task,performed_on,engine_hours,pto_hours,odometer_km";

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> SimulateError + '_ {
    move |source| SimulateError::Write {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Serialize)]
struct Line<'a> {
    topic: &'a str,
    payload: &'a str,
}

struct Pending {
    delivery_us: i64,
    truck: u32,
    seq: u64,
    line: String,
}

/// The recording being written.
#[derive(Debug)]
pub(crate) struct Recorder {
    out: BufWriter<File>,
    path: PathBuf,
    partial: PathBuf,
    pending: Vec<Pending>,
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("delivery_us", &self.delivery_us)
            .field("len", &self.line.len())
            .finish()
    }
}

impl Recorder {
    pub(crate) fn create(path: &Path) -> Result<Self, SimulateError> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(write_error(&partial))?;
        Ok(Self {
            out: BufWriter::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            partial,
            pending: Vec::new(),
            messages: 0,
            bytes: 0,
        })
    }

    /// Queues a message; `(delivery_us, truck, seq)` orders the recording.
    pub(crate) fn push(
        &mut self,
        delivery_us: i64,
        truck: usize,
        seq: u64,
        topic: &str,
        payload: &str,
    ) {
        let mut line = serde_json::to_string(&Line { topic, payload }).unwrap_or_default();
        line.push('\n');
        self.pending.push(Pending {
            delivery_us,
            truck: truck as u32,
            seq,
            line,
        });
    }

    /// Writes every queued message delivered before `limit_us`.
    pub(crate) fn flush_until(&mut self, limit_us: i64) -> Result<(), SimulateError> {
        self.pending
            .sort_unstable_by_key(|p| (p.delivery_us, p.truck, p.seq));
        let n = self.pending.partition_point(|p| p.delivery_us < limit_us);
        for p in self.pending.drain(..n) {
            self.out
                .write_all(p.line.as_bytes())
                .map_err(write_error(&self.partial))?;
            self.messages += 1;
            self.bytes += p.line.len() as u64;
        }
        Ok(())
    }

    /// Writes the rest: (messages, bytes).
    pub(crate) fn complete(&mut self) -> Result<(u64, u64), SimulateError> {
        self.flush_until(i64::MAX)?;
        self.out.flush().map_err(write_error(&self.partial))?;
        Ok((self.messages, self.bytes))
    }

    /// Puts the completed file in place.
    pub(crate) fn commit(mut self) -> Result<(), SimulateError> {
        self.complete()?;
        std::fs::rename(&self.partial, &self.path).map_err(write_error(&self.path))
    }
}

/// `vehicles.csv`: the registered trucks.
pub(crate) fn write_vehicles(path: &Path, trucks: &[Truck]) -> Result<(), SimulateError> {
    let mut out = BufWriter::new(File::create(path).map_err(write_error(path))?);
    writeln!(out, "{VEHICLES_HEADER}").map_err(write_error(path))?;
    for t in trucks.iter().filter(|t| t.registered) {
        writeln!(
            out,
            "{},{},{},{},{},{}",
            t.id,
            t.fleet,
            t.model_id,
            t.vin,
            t.commissioned.format("%Y-%m-%d"),
            t.depot
        )
        .map_err(write_error(path))?;
    }
    out.flush().map_err(write_error(path))
}

/// When a row was performed, for ordering: µs since the epoch.
fn performed_us(p: Performed) -> i64 {
    match p {
        Performed::Date(d) => super::duty::utc_midnight_us(d),
        Performed::Time(t) => t,
    }
}

/// `services.csv`, by vehicle and time.
pub(crate) fn write_services(
    path: &Path,
    trucks: &[Truck],
    rows: &[ServiceRow],
) -> Result<(), SimulateError> {
    let mut sorted: Vec<&ServiceRow> = rows.iter().collect();
    sorted.sort_by_key(|r| (r.truck, performed_us(r.performed)));
    let mut out = BufWriter::new(File::create(path).map_err(write_error(path))?);
    writeln!(out, "{SERVICES_HEADER}").map_err(write_error(path))?;
    let num =
        |v: Option<f64>, decimals: usize| v.map_or(String::new(), |x| format!("{x:.decimals$}"));
    for r in sorted {
        let Some(t) = trucks.get(r.truck) else {
            continue;
        };
        let task = match &r.work {
            Work::Task(id) => id.to_string(),
            Work::Repair(spn, fmi) => format!("repair:{spn}:{fmi}"),
        };
        let performed = match r.performed {
            Performed::Date(d) => d.format("%Y-%m-%d").to_string(),
            Performed::Time(us) => Timestamp::from_micros(us)
                .to_datetime()
                .map_or_else(String::new, |t| {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                }),
        };
        writeln!(
            out,
            "{},{task},{performed},{},{},{}",
            t.id,
            num(r.engine_h, 1),
            num(r.pto_h, 1),
            num(r.km, 0)
        )
        .map_err(write_error(path))?;
    }
    out.flush().map_err(write_error(path))
}

/// `truth.json`, pretty-printed for people reading it.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SimulateError> {
    let mut out = BufWriter::new(File::create(path).map_err(write_error(path))?);
    serde_json::to_writer_pretty(&mut out, value).map_err(|e| SimulateError::Write {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    out.write_all(b"\n").map_err(write_error(path))?;
    out.flush().map_err(write_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_is_in_delivery_order_and_streams_by_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.jsonl");
        let mut r = Recorder::create(&path).unwrap();
        r.push(30, 1, 0, "fleet/a/T-2/can", "(1.0) can0 18FEE500#00\n");
        r.push(10, 2, 0, "fleet/a/T-3/can", "x");
        r.push(10, 1, 1, "fleet/a/T-2/can", "y\"z");
        r.flush_until(20).unwrap();
        assert_eq!(r.messages, 2);
        assert!(!path.exists());
        r.push(25, 0, 0, "fleet/a/T-1/telemetry", "{}");
        let (n, bytes) = r.complete().unwrap();
        r.commit().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(n, 4);
        assert_eq!(bytes, text.len() as u64);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"{"topic":"fleet/a/T-2/can","payload":"y\"z"}"#);
        assert_eq!(lines[1], r#"{"topic":"fleet/a/T-3/can","payload":"x"}"#);
        assert_eq!(
            lines[2],
            r#"{"topic":"fleet/a/T-1/telemetry","payload":"{}"}"#
        );
        assert_eq!(
            lines[3],
            r#"{"topic":"fleet/a/T-2/can","payload":"(1.0) can0 18FEE500#00\n"}"#
        );
    }
}
