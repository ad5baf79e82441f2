//! `fleetcare simulate`: a deterministic simulated fleet whose truth is
//! known, to test every later stage against.
//!
//! Trucks of the catalogue's models, in three sanitation companies with
//! their depots and working weeks, drive daily duty cycles; their gateways
//! upload meters and fault codes (contract C1) with the glitches real
//! gateways have. Fault scenarios with a known outcome are planted:
//! recurring failures, a repeat repair, a batch defect, persistent and
//! critical faults; background faults never add to them. The service
//! history is chosen so that some maintenance falls due.
//!
//! Written: the recording (contract C2) in delivery order, and beside it
//! `vehicles.csv` and `services.csv` (contract C4) and `truth.json`, what a
//! correct fleetcare must report at the end. Same options and seed, same
//! bytes. Design and truth schema: `docs/simulator.md`.
//!
//! - `rng`: one random stream per decision, truck and day;
//! - `fleet`: the trucks; `duty`: their days;
//! - `faults`: planted scenarios, noise, active codes;
//! - `services`: the service history; `due`: maintenance status (C5);
//! - `gateway`: state to MQTT messages, and garbage; `glitches`: delivery;
//! - `drive`: the day loop; `truth`: the ground truth; `output`: the files.

mod args;
pub mod condition;
mod drive;
mod duty;
mod faults;
mod fleet;
mod gateway;
mod glitches;
mod output;
pub mod publish;
mod rng;
mod services;
mod truth;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;

pub use args::SimulateArgs;
pub use output::{SERVICES_FILE, TRUTH_FILE, VEHICLES_FILE};

/// The recording's name when `--mqtt` is given without `--out`.
pub const RECORDING_FILE_FOR_MQTT: &str = "recording.jsonl";

use crate::catalog::{Catalog, TruckModel};

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulateOptions {
    pub trucks: u32,
    pub days: u32,
    pub seed: u64,
    /// The first simulated local date.
    pub start: NaiveDate,
    /// How often a running truck's gateway uploads.
    pub upload_every: Duration,
    /// The recording; the other files go beside it.
    pub out: PathBuf,
    /// MQTT topic prefix (`fleet`).
    pub topic_prefix: String,
}

/// Upload intervals outside this range are refused: shorter ones make
/// recordings of hundreds of GB, longer ones hide short faults.
pub const UPLOAD_EVERY: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(30)..=Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("the catalogue has no truck model to simulate")]
    NoModels,
    #[error("the upload interval must be between 30 s and 1 h, not {0:?}")]
    UploadEvery(Duration),
    #[error("--trucks and --days must be at least 1")]
    Empty,
    #[error("the simulated period must end before 9999-12-31")]
    TooLate,
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A bug in the simulator: its output would not be the truth it claims.
    #[error("simulator bug, please report it: {0}")]
    TruthMismatch(String),
    #[error("simulator bug, please report it: {0}")]
    Internal(String),
}

pub type Result<T, E = SimulateError> = std::result::Result<T, E>;

/// What a simulation wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub trucks: u32,
    pub days: u32,
    pub recording: PathBuf,
    /// Lines of the recording: valid messages, duplicates and garbage.
    pub messages: u64,
    pub bytes: u64,
    pub valid: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub garbage: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "simulated {} trucks for {} days: {} messages, {} to {} ({} duplicates, {} out of order, {} garbage)",
            self.trucks,
            self.days,
            self.messages,
            human_bytes(self.bytes),
            self.recording.display(),
            self.duplicates,
            self.out_of_order,
            self.garbage
        )
    }
}

fn human_bytes(b: u64) -> String {
    match b {
        0..1_000_000 => format!("{:.1} kB", b as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        _ => format!("{:.2} GB", b as f64 / 1e9),
    }
}

/// Runs a simulation and writes its files.
pub fn run(opts: &SimulateOptions, catalog: &Catalog) -> Result<Summary> {
    if !UPLOAD_EVERY.contains(&opts.upload_every) {
        return Err(SimulateError::UploadEvery(opts.upload_every));
    }
    if opts.trucks == 0 || opts.days == 0 {
        return Err(SimulateError::Empty);
    }
    if opts
        .start
        .checked_add_days(chrono::Days::new(u64::from(opts.days) + 1))
        .is_none()
    {
        return Err(SimulateError::TooLate);
    }
    let cal = duty::Calendar {
        seeds: rng::Seeds::new(opts.seed),
        start: opts.start,
        days: opts.days,
        upload_every_s: opts.upload_every.as_secs() as i64,
    };
    let models: Vec<&TruckModel> = catalog.models().collect();
    let mut trucks = fleet::build(&cal, opts.trucks, &models)?;
    let planted = faults::plan(&cal, &mut trucks, &models);
    let (rows, targets) = services::plan(&cal, &trucks, &models, &planted.repairs);

    let dir = match opts.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|source| SimulateError::Write {
        path: dir.clone(),
        source,
    })?;
    let mut rec = output::Recorder::create(&opts.out)?;
    let mut drive = drive::Drive::new(&cal, &trucks, &models, &opts.topic_prefix, &planted);
    for day in 0..cal.days {
        drive.day(day, &mut rec)?;
        // Nothing of a later day is delivered before it starts.
        rec.flush_until(cal.day_start_us(day + 1))?;
    }
    drive.finish()?;
    let (lines, bytes) = rec.complete()?;
    let per_day: Vec<duty::Meters> = trucks
        .iter()
        .map(|t| services::usage_per_day(t, &cal))
        .collect();
    let sent = drive.sent();
    let recording = opts
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let truth = truth::build(&truth::Inputs {
        cal: &cal,
        seed: opts.seed,
        prefix: &opts.topic_prefix,
        recording,
        trucks: &trucks,
        models: &models,
        rows: &rows,
        targets: &targets,
        repairs: &planted.repairs,
        expected: &planted.expected,
        episodes: &drive.episodes,
        counts: &drive.counts,
        sent: &sent,
        per_day: &per_day,
        lines,
        bytes,
    })?;
    rec.commit()?;
    output::write_vehicles(&dir.join(VEHICLES_FILE), &trucks)?;
    output::write_services(&dir.join(SERVICES_FILE), &trucks, &rows)?;
    output::write_json(&dir.join(TRUTH_FILE), &truth)?;
    let c = &drive.counts;
    Ok(Summary {
        trucks: opts.trucks,
        days: opts.days,
        recording: opts.out.clone(),
        messages: lines,
        bytes,
        valid: c.valid,
        duplicates: c.duplicates,
        out_of_order: c.out_of_order,
        garbage: c.garbage.values().sum(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models")).unwrap()
    }

    fn options(dir: &std::path::Path, trucks: u32, days: u32, seed: u64) -> SimulateOptions {
        SimulateOptions {
            trucks,
            days,
            seed,
            start: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
            upload_every: Duration::from_secs(600),
            out: dir.join("rec.jsonl"),
            topic_prefix: "fleet".to_owned(),
        }
    }

    // The run checks its own truth (planted = derived, every planned
    // episode sent): tiny fleets, a Sunday start and long runs with the
    // near-miss variant must all pass it.
    #[test]
    fn every_size_keeps_its_truth() {
        let catalog = catalog();
        let dir = tempfile::tempdir().unwrap();
        for (trucks, days, seed) in [(1, 1, 1), (2, 3, 2), (5, 8, 3), (9, 31, 4), (40, 45, 5)] {
            let s = run(&options(dir.path(), trucks, days, seed), &catalog)
                .unwrap_or_else(|e| panic!("{trucks} × {days}, seed {seed}: {e}"));
            assert_eq!(s.messages, s.valid + s.duplicates + s.garbage);
        }
        let mut sunday = options(dir.path(), 6, 2, 7);
        sunday.start = NaiveDate::from_ymd_opt(2026, 1, 4).unwrap();
        run(&sunday, &catalog).unwrap();
    }

    #[test]
    fn refuses_bad_options() {
        let catalog = catalog();
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path(), 1, 1, 1);
        o.upload_every = Duration::from_secs(5);
        assert!(matches!(
            run(&o, &catalog),
            Err(SimulateError::UploadEvery(_))
        ));
        let mut o = options(dir.path(), 1, 1, 1);
        o.days = 0;
        assert!(matches!(run(&o, &catalog), Err(SimulateError::Empty)));
        let mut o = options(dir.path(), 1, 1, 1);
        o.start = NaiveDate::MAX;
        assert!(matches!(run(&o, &catalog), Err(SimulateError::TooLate)));
        assert!(!dir.path().join("rec.jsonl").exists());
    }
}
