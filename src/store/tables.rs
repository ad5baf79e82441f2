//! Store records as day-partitioned Parquet tables that polars scans lazily:
//! `{table}/day=YYYY-MM-DD/part-NNNNNNNN.parquet`, one part per compaction.
//!
//! | table          | one row per                                   |
//! |----------------|-----------------------------------------------|
//! | `faults`       | fault episode start or end (C5)               |
//! | `lamps`        | change of a source's lamp status              |
//! | `meters`       | stored meter reading (and resets)             |
//! | `meter_days`   | vehicle and meter of a part's day: the first  |
//! |                | and last time, lowest and highest value       |
//! | `dead_letters` | rejected message or line, with its reason     |
//! | `signal_windows` | vehicle, condition signal and hour: count,  |
//! |                | mean, M2 (spread), min, max, and the mean     |
//! |                | load, speed and ambient of that hour (C12)    |
//!
//! `meter_days` is written with each `meters` part, from the same rows and
//! under the same part number, so the reports read a day of meters as a
//! few thousand rows instead of a hundred thousand. A day whose `meters`
//! parts do not all have their summary (a store written before it
//! existed) is read from `meters`.
//!
//! Times are UTC microseconds (`Datetime(µs)`); `source` is the J1939
//! source address as text or `telemetry`.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fleetcare_ingest::Timestamp;
use fleetcare_ingest::j1939::{Lamps, Signal, SignalName};
use fleetcare_ingest::pipeline::episodes::FaultSource;
use fleetcare_ingest::pipeline::{DeadLetter, Record, VehicleKey};
use polars::prelude::*;

use super::dedupe::{day_dir_name, day_of_ts};

pub(crate) const TABLES: [&str; 6] = [
    "faults",
    "lamps",
    "meters",
    "meter_days",
    "dead_letters",
    "signal_windows",
];

/// The length of a signal window: one hour, in µs.
pub const SIGNAL_WINDOW_US: i64 = 3_600_000_000;

/// Count, mean, M2 (sum of squared deviations from the mean), min and max
/// of a window's samples, updated one sample at a time (Welford) and
/// merged with another window's (Chan et al.), so the spread needs no
/// second pass and no sample is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub count: u64,
    pub mean: f64,
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Moments {
    pub fn of(x: f64) -> Self {
        Self {
            count: 1,
            mean: x,
            m2: 0.0,
            min: x,
            max: x,
        }
    }

    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let d = x - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    pub fn merge(&mut self, o: &Self) {
        let n = self.count + o.count;
        if n == 0 {
            return;
        }
        let d = o.mean - self.mean;
        let (na, nb) = (self.count as f64, o.count as f64);
        self.mean += d * nb / n as f64;
        self.m2 += o.m2 + d * d * na * nb / n as f64;
        self.count = n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// The sample standard deviation; 0 for fewer than two samples.
    pub fn std(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2.max(0.0) / (self.count - 1) as f64).sqrt()
        }
    }
}

/// One vehicle's hour: its signals' moments, few enough that a list
/// beats a map.
#[derive(Debug, Default, Clone)]
struct VehicleHour {
    signals: Vec<(SignalName, Moments)>,
}

impl VehicleHour {
    fn push(&mut self, signal: &SignalName, x: f64) {
        match self.signals.iter_mut().find(|(s, _)| s == signal) {
            Some((_, m)) => m.push(x),
            None => self.signals.push((signal.clone(), Moments::of(x))),
        }
    }

    fn mean_of(&self, s: Signal) -> Option<f64> {
        self.signals
            .iter()
            .find(|(n, _)| *n == SignalName::Known(s))
            .map(|(_, m)| m.mean)
    }
}

/// A day's signal samples folded into windows as they come: per vehicle
/// and hour, never one row per sample.
#[derive(Debug, Default, Clone)]
struct SignalWindows {
    hours: HashMap<(Arc<VehicleKey>, i64), VehicleHour>,
}

fn source_text(s: FaultSource) -> String {
    match s {
        FaultSource::Ecu(a) => a.0.to_string(),
        FaultSource::Telemetry => "telemetry".to_owned(),
    }
}

#[derive(Debug, Default, Clone)]
struct Faults {
    /// Fleet and vehicle, shared with the pipeline's vehicle state: two
    /// strings per row would be two allocations per reading.
    vehicle: Vec<Arc<VehicleKey>>,
    ts: Vec<i64>,
    event: Vec<&'static str>,
    source: Vec<String>,
    ecu: Vec<Option<u32>>,
    spn: Vec<u32>,
    fmi: Vec<u32>,
    oc: Vec<Option<u32>>,
    cm: Vec<Option<bool>>,
    red_stop: Vec<Option<&'static str>>,
    amber_warning: Vec<Option<&'static str>>,
    started: Vec<Option<i64>>,
}

#[derive(Debug, Default, Clone)]
struct LampRows {
    /// Fleet and vehicle, shared with the pipeline's vehicle state: two
    /// strings per row would be two allocations per reading.
    vehicle: Vec<Arc<VehicleKey>>,
    ts: Vec<i64>,
    source: Vec<String>,
    lamps: [Vec<&'static str>; 4],
}

#[derive(Debug, Default, Clone)]
struct Meters {
    /// Fleet and vehicle, shared with the pipeline's vehicle state: two
    /// strings per row would be two allocations per reading.
    vehicle: Vec<Arc<VehicleKey>>,
    ts: Vec<i64>,
    meter: Vec<&'static str>,
    raw: Vec<f64>,
    value: Vec<f64>,
    reset: Vec<bool>,
}

#[derive(Debug, Default, Clone)]
struct DeadLetters {
    received: Vec<i64>,
    topic: Vec<String>,
    reason: Vec<&'static str>,
    detail: Vec<String>,
    excerpt: Vec<String>,
}

/// The rows of one day, per table.
#[derive(Debug, Default, Clone)]
struct Day {
    faults: Faults,
    lamps: LampRows,
    meters: Meters,
    dead: DeadLetters,
    signals: SignalWindows,
}

impl Day {
    /// The day's frame of each table, in [`TABLES`] order.
    fn frames(self) -> PolarsResult<DayFrames> {
        let meter_days = meter_days_frame(&self.meters)?;
        Ok([
            faults_frame(self.faults)?,
            lamps_frame(self.lamps)?,
            meters_frame(self.meters)?,
            meter_days,
            dead_frame(self.dead)?,
            signal_windows_frame(self.signals)?,
        ])
    }
}

/// One day's rows of each table, in [`TABLES`] order (`None`: no rows).
pub(crate) type DayFrames = [Option<DataFrame>; TABLES.len()];

/// Records waiting for the next compaction, grouped by day.
#[derive(Debug, Default)]
pub(crate) struct PendingRows {
    days: BTreeMap<i32, Day>,
    rows: usize,
}

fn lamp_array(l: &Lamps) -> [&'static str; 4] {
    [
        l.mil.as_str(),
        l.red_stop.as_str(),
        l.amber_warning.as_str(),
        l.protect.as_str(),
    ]
}

impl PendingRows {
    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    fn day(&mut self, ts: Timestamp) -> &mut Day {
        self.rows += 1;
        self.days.entry(day_of_ts(ts)).or_default()
    }

    pub(crate) fn push(&mut self, r: &Record) {
        match r {
            Record::FaultStarted {
                vehicle,
                ts,
                source,
                ecu,
                dtc,
                lamps,
            } => {
                let f = &mut self.day(*ts).faults;
                f.vehicle.push(vehicle.clone());
                f.ts.push(ts.as_micros());
                f.event.push("start");
                f.source.push(source_text(*source));
                f.ecu.push(Some(u32::from(ecu.0)));
                f.spn.push(dtc.spn.raw());
                f.fmi.push(u32::from(dtc.fmi.raw()));
                f.oc.push(Some(u32::from(dtc.oc.raw())));
                f.cm.push(Some(dtc.cm));
                f.red_stop.push(Some(lamps.red_stop.as_str()));
                f.amber_warning.push(Some(lamps.amber_warning.as_str()));
                f.started.push(None);
            }
            Record::FaultEnded {
                vehicle,
                ts,
                source,
                spn,
                fmi,
                started,
            } => {
                let f = &mut self.day(*ts).faults;
                f.vehicle.push(vehicle.clone());
                f.ts.push(ts.as_micros());
                f.event.push("end");
                f.source.push(source_text(*source));
                f.ecu.push(None);
                f.spn.push(spn.raw());
                f.fmi.push(u32::from(fmi.raw()));
                f.oc.push(None);
                f.cm.push(None);
                f.red_stop.push(None);
                f.amber_warning.push(None);
                f.started.push(Some(started.as_micros()));
            }
            Record::LampsChanged {
                vehicle,
                ts,
                source,
                lamps,
            } => {
                let l = &mut self.day(*ts).lamps;
                l.vehicle.push(vehicle.clone());
                l.ts.push(ts.as_micros());
                l.source.push(source_text(*source));
                for (col, v) in l.lamps.iter_mut().zip(lamp_array(lamps)) {
                    col.push(v);
                }
            }
            Record::Meter {
                vehicle,
                ts,
                meter,
                raw,
                value,
            } => {
                let m = &mut self.day(*ts).meters;
                m.vehicle.push(vehicle.clone());
                m.ts.push(ts.as_micros());
                m.meter.push(meter.as_str());
                m.raw.push(*raw);
                m.value.push(*value);
                m.reset.push(false);
            }
            Record::MeterReset {
                vehicle,
                ts,
                meter,
                previous,
                raw,
                ..
            } => {
                // The reading that follows carries the new continuous value;
                // this row keeps the last value before the swap.
                let m = &mut self.day(*ts).meters;
                m.vehicle.push(vehicle.clone());
                m.ts.push(ts.as_micros());
                m.meter.push(meter.as_str());
                m.raw.push(*raw);
                m.value.push(*previous);
                m.reset.push(true);
            }
            Record::Signal {
                vehicle,
                ts,
                signal,
                value,
            } => {
                let hour = ts.as_micros().div_euclid(SIGNAL_WINDOW_US) * SIGNAL_WINDOW_US;
                let day = self.days.entry(day_of_ts(*ts)).or_default();
                let slot = day.signals.hours.entry((vehicle.clone(), hour));
                if let Entry::Vacant(_) = slot {
                    self.rows += 1;
                }
                slot.or_default().push(signal, *value);
            }
            Record::DeadLetter(d) => self.push_dead(d),
        }
    }

    fn push_dead(&mut self, d: &DeadLetter) {
        let x = &mut self.day(d.received).dead;
        x.received.push(d.received.as_micros());
        x.topic.push(d.topic.clone());
        x.reason.push(d.reason.as_str());
        x.detail.push(d.detail.clone());
        x.excerpt.push(d.excerpt.clone());
    }

    /// Every day's rows as frames, like the Parquet parts they become at
    /// the next compaction: readers see them before that.
    pub(crate) fn frames(&self) -> PolarsResult<Vec<(i32, DayFrames)>> {
        self.days
            .iter()
            .map(|(&day, rows)| Ok((day, rows.clone().frames()?)))
            .collect()
    }

    /// [`PendingRows::frames`], taking the rows.
    pub(crate) fn into_frames(self) -> PolarsResult<Vec<(i32, DayFrames)>> {
        self.days
            .into_iter()
            .map(|(day, rows)| Ok((day, rows.frames()?)))
            .collect()
    }

    /// Writes every table of every day as part `seq`; returns the files
    /// written (synced) and leaves nothing pending.
    pub(crate) fn write(&mut self, root: &Path, seq: u64) -> PolarsResult<Vec<PathBuf>> {
        let mut written = Vec::new();
        for (day, rows) in std::mem::take(&mut self.days) {
            let frames = [
                ("faults", faults_frame(rows.faults)?),
                ("lamps", lamps_frame(rows.lamps)?),
                ("meter_days", meter_days_frame(&rows.meters)?),
                ("meters", meters_frame(rows.meters)?),
                ("dead_letters", dead_frame(rows.dead)?),
                ("signal_windows", signal_windows_frame(rows.signals)?),
            ];
            for (table, df) in frames {
                let Some(mut df) = df else { continue };
                let dir = root.join(table).join(day_dir_name(day));
                crate::runtime::owner_only::create_dir_all(&dir)?;
                let path = dir.join(format!("part-{seq:08}.parquet"));
                let mut file = crate::runtime::owner_only::create(&path)?;
                ParquetWriter::new(&mut file)
                    .with_compression(compression(table))
                    .finish(&mut df)?;
                file.sync_all()?;
                written.push(path);
            }
        }
        self.rows = 0;
        Ok(written)
    }
}

/// The rows of log records as frames, by day and table: what a
/// [`Snapshot`](super::Snapshot) has beside the Parquet parts. Rows are
/// appended as the log is read (a [`StoreReader`](super::StoreReader)
/// refresh adds the records since the last one); cloning is cheap, the
/// frames' columns are shared.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogFrames {
    days: BTreeMap<i32, [Runs; TABLES.len()]>,
}

impl LogFrames {
    /// Adds rows after those already here.
    pub(crate) fn append(&mut self, days: Vec<(i32, DayFrames)>) -> PolarsResult<()> {
        for (day, frames) in days {
            let runs = self.days.entry(day).or_default();
            for (runs, frame) in runs.iter_mut().zip(frames) {
                if let Some(frame) = frame {
                    runs.push(frame)?;
                }
            }
        }
        Ok(())
    }

    /// The rows of `table` on `days` as one frame; `None` when there are
    /// none.
    pub(crate) fn frame(&self, table: &str, days: DayRange) -> PolarsResult<Option<DataFrame>> {
        let Some(t) = TABLES.iter().position(|name| *name == table) else {
            return Ok(None);
        };
        let mut all: Option<DataFrame> = None;
        for (&day, runs) in &self.days {
            if days.0.is_some_and(|from| day < from) || days.1.is_some_and(|to| day > to) {
                continue;
            }
            for run in runs.get(t).map(|r| r.0.as_slice()).unwrap_or_default() {
                match all.as_mut() {
                    Some(all) => {
                        all.vstack_mut(run)?;
                    }
                    None => all = Some(run.clone()),
                }
            }
        }
        Ok(all)
    }
}

/// One day's rows of one table as frames whose heights more than halve
/// from the first to the last: a frame appended is merged into the one
/// before while it is at least half that one's height. So a day read in
/// many small refreshes stays a few contiguous frames (at most about
/// log2 of its rows), and each row is copied a logarithmic number of
/// times, not once per refresh.
#[derive(Debug, Clone, Default)]
struct Runs(Vec<DataFrame>);

impl Runs {
    fn push(&mut self, frame: DataFrame) -> PolarsResult<()> {
        self.0.push(frame);
        while let [.., before, last] = self.0.as_slice()
            && 2 * last.height() >= before.height()
        {
            if let (Some(last), Some(before)) = (self.0.pop(), self.0.last_mut()) {
                before.vstack_mut_owned(last)?;
                before.rechunk_mut();
            }
        }
        Ok(())
    }
}

/// zstd for the readings, which are most of the store; Snappy for the
/// small tables, which reports read a year of at a time: hundreds of files
/// of a few kilobytes, where setting up a zstd decoder for each column
/// chunk cost more than the rows (17% of a `recurring` report).
fn compression(table: &str) -> ParquetCompression {
    match table {
        "meters" | "signal_windows" => ParquetCompression::Zstd(None),
        _ => ParquetCompression::Snappy,
    }
}

fn datetime(name: &str, v: Vec<i64>) -> PolarsResult<Column> {
    Column::new(name.into(), v).cast(&DataType::Datetime(TimeUnit::Microseconds, None))
}

fn datetime_opt(name: &str, v: Vec<Option<i64>>) -> PolarsResult<Column> {
    Column::new(name.into(), v).cast(&DataType::Datetime(TimeUnit::Microseconds, None))
}

fn fleet_column(keys: &[Arc<VehicleKey>]) -> Column {
    let fleets: Vec<&str> = keys.iter().map(|k| k.fleet.as_str()).collect();
    Column::new("fleet".into(), fleets)
}

fn vehicle_column(keys: &[Arc<VehicleKey>]) -> Column {
    let vehicles: Vec<&str> = keys.iter().map(|k| k.vehicle.as_str()).collect();
    Column::new("vehicle".into(), vehicles)
}

fn faults_frame(f: Faults) -> PolarsResult<Option<DataFrame>> {
    if f.ts.is_empty() {
        return Ok(None);
    }
    DataFrame::new_infer_height(vec![
        fleet_column(&f.vehicle),
        vehicle_column(&f.vehicle),
        datetime("ts", f.ts)?,
        Column::new("event".into(), f.event),
        Column::new("source".into(), f.source),
        Column::new("ecu".into(), f.ecu),
        Column::new("spn".into(), f.spn),
        Column::new("fmi".into(), f.fmi),
        Column::new("oc".into(), f.oc),
        Column::new("cm".into(), f.cm),
        Column::new("red_stop".into(), f.red_stop),
        Column::new("amber_warning".into(), f.amber_warning),
        datetime_opt("started", f.started)?,
    ])
    .map(Some)
}

fn lamps_frame(l: LampRows) -> PolarsResult<Option<DataFrame>> {
    if l.ts.is_empty() {
        return Ok(None);
    }
    let [mil, red_stop, amber_warning, protect] = l.lamps;
    DataFrame::new_infer_height(vec![
        fleet_column(&l.vehicle),
        vehicle_column(&l.vehicle),
        datetime("ts", l.ts)?,
        Column::new("source".into(), l.source),
        Column::new("mil".into(), mil),
        Column::new("red_stop".into(), red_stop),
        Column::new("amber_warning".into(), amber_warning),
        Column::new("protect".into(), protect),
    ])
    .map(Some)
}

fn meters_frame(m: Meters) -> PolarsResult<Option<DataFrame>> {
    if m.ts.is_empty() {
        return Ok(None);
    }
    DataFrame::new_infer_height(vec![
        fleet_column(&m.vehicle),
        vehicle_column(&m.vehicle),
        datetime("ts", m.ts)?,
        Column::new("meter".into(), m.meter),
        Column::new("raw".into(), m.raw),
        Column::new("value".into(), m.value),
        Column::new("reset".into(), m.reset),
    ])
    .map(Some)
}

/// The `meter_days` rows of one day's readings: per vehicle and meter, the
/// first and last reading time and the lowest and highest value, sorted
/// by fleet, vehicle and meter.
fn meter_days_frame(m: &Meters) -> PolarsResult<Option<DataFrame>> {
    if m.ts.is_empty() {
        return Ok(None);
    }
    // Grouped by the vehicle's shared key and the meter without comparing
    // strings per reading (a map keyed by the names spent most of this
    // function in string comparisons); sorting the groups then brings
    // together any two keys that name the same vehicle.
    type Day<'a> = (&'a VehicleKey, &'static str, (i64, i64, f64, f64));
    let mut slot: HashMap<(usize, &'static str), usize> = HashMap::new();
    let mut days: Vec<Day<'_>> = Vec::new();
    for (i, key) in m.vehicle.iter().enumerate() {
        let (ts, v, meter) = (m.ts[i], m.value[i], m.meter[i]);
        match slot.entry((Arc::as_ptr(key) as usize, meter)) {
            Entry::Occupied(e) => {
                if let Some(day) = days.get_mut(*e.get()) {
                    merge_day(&mut day.2, (ts, ts, v, v));
                }
            }
            Entry::Vacant(e) => {
                e.insert(days.len());
                days.push((key, meter, (ts, ts, v, v)));
            }
        }
    }
    fn name<'a>(d: &Day<'a>) -> (&'a str, &'a str, &'static str) {
        (d.0.fleet.as_str(), d.0.vehicle.as_str(), d.1)
    }
    days.sort_unstable_by(|a, b| name(a).cmp(&name(b)));
    days.dedup_by(|later, kept| {
        let same = name(later) == name(kept);
        if same {
            merge_day(&mut kept.2, later.2);
        }
        same
    });
    let n = days.len();
    let (mut fleet, mut vehicle, mut meter) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut first, mut last, mut low, mut high) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (key, meter_name, (t0, t1, lo, hi)) in days {
        fleet.push(key.fleet.as_str());
        vehicle.push(key.vehicle.as_str());
        meter.push(meter_name);
        first.push(t0);
        last.push(t1);
        low.push(lo);
        high.push(hi);
    }
    DataFrame::new_infer_height(vec![
        Column::new("fleet".into(), fleet),
        Column::new("vehicle".into(), vehicle),
        Column::new("meter".into(), meter),
        datetime("first_ts", first)?,
        datetime("last_ts", last)?,
        Column::new("low".into(), low),
        Column::new("high".into(), high),
    ])
    .map(Some)
}

/// Widens `day` (first and last time, lowest and highest value) by `more`.
fn merge_day(day: &mut (i64, i64, f64, f64), more: (i64, i64, f64, f64)) {
    day.0 = day.0.min(more.0);
    day.1 = day.1.max(more.1);
    day.2 = day.2.min(more.2);
    day.3 = day.3.max(more.3);
}

/// The `signal_windows` rows of one day: per vehicle, signal and hour the
/// samples' moments and that hour's mean engine load, speed and ambient
/// temperature (null when the vehicle sent none), sorted by fleet,
/// vehicle, signal and window so that the columns compress well. Floats
/// are stored as f32 (7 significant digits, more than any sensor has).
fn signal_windows_frame(w: SignalWindows) -> PolarsResult<Option<DataFrame>> {
    if w.hours.is_empty() {
        return Ok(None);
    }
    type Row<'a> = (&'a VehicleKey, &'a str, i64, Moments, [Option<f64>; 3]);
    let mut rows: Vec<Row<'_>> = Vec::new();
    for ((key, hour), vh) in &w.hours {
        let conditions = [
            vh.mean_of(Signal::EngineLoadPct),
            vh.mean_of(Signal::EngineSpeedRpm),
            vh.mean_of(Signal::AmbientTempC),
        ];
        for (name, m) in &vh.signals {
            rows.push((key, name.as_str(), *hour, *m, conditions));
        }
    }
    rows.sort_unstable_by(|a, b| {
        (a.0.fleet.as_str(), a.0.vehicle.as_str(), a.1, a.2).cmp(&(
            b.0.fleet.as_str(),
            b.0.vehicle.as_str(),
            b.1,
            b.2,
        ))
    });
    let f32_of = |v: f64| v as f32;
    let cond = |i: usize| -> Vec<Option<f32>> {
        rows.iter()
            .map(|r| r.4.get(i).copied().flatten().map(f32_of))
            .collect()
    };
    let (load, speed, ambient) = (cond(0), cond(1), cond(2));
    DataFrame::new_infer_height(vec![
        Column::new(
            "fleet".into(),
            rows.iter().map(|r| r.0.fleet.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "vehicle".into(),
            rows.iter()
                .map(|r| r.0.vehicle.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "signal".into(),
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        ),
        datetime("window", rows.iter().map(|r| r.2).collect())?,
        Column::new(
            "count".into(),
            rows.iter()
                .map(|r| u32::try_from(r.3.count).unwrap_or(u32::MAX))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "mean".into(),
            rows.iter().map(|r| f32_of(r.3.mean)).collect::<Vec<_>>(),
        ),
        Column::new(
            "m2".into(),
            rows.iter().map(|r| f32_of(r.3.m2)).collect::<Vec<_>>(),
        ),
        Column::new(
            "min".into(),
            rows.iter().map(|r| f32_of(r.3.min)).collect::<Vec<_>>(),
        ),
        Column::new(
            "max".into(),
            rows.iter().map(|r| f32_of(r.3.max)).collect::<Vec<_>>(),
        ),
        Column::new("load_pct".into(), load),
        Column::new("speed_rpm".into(), speed),
        Column::new("ambient_c".into(), ambient),
    ])
    .map(Some)
}

fn dead_frame(d: DeadLetters) -> PolarsResult<Option<DataFrame>> {
    if d.received.is_empty() {
        return Ok(None);
    }
    DataFrame::new_infer_height(vec![
        datetime("received", d.received)?,
        Column::new("topic".into(), d.topic),
        Column::new("reason".into(), d.reason),
        Column::new("detail".into(), d.detail),
        Column::new("excerpt".into(), d.excerpt),
    ])
    .map(Some)
}

/// Event days (days since the Unix epoch, UTC), both ends included; `None`
/// leaves that end open.
pub(crate) type DayRange = (Option<i32>, Option<i32>);

/// The committed part files of `table` (parts numbered below `next_part`;
/// higher ones are left by a compaction that did not finish) in `days`.
pub(crate) fn part_files(
    root: &Path,
    table: &str,
    next_part: u64,
    days: DayRange,
) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let dir = root.join(table);
    let entries = match std::fs::read_dir(&dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(e),
    };
    // `day=YYYY-MM-DD` names sort as their days do.
    let (from, to) = (days.0.map(day_dir_name), days.1.map(day_dir_name));
    for day in entries {
        let day = day?;
        let name = day.file_name();
        let name = name.to_string_lossy();
        if from.as_deref().is_some_and(|f| *name < *f) || to.as_deref().is_some_and(|t| *name > *t)
        {
            continue;
        }
        for part in std::fs::read_dir(day.path())? {
            let path = part?.path();
            if super::part_seq(&path, "parquet").is_some_and(|s| s < next_part) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The days in `days` (as `day=…` folder names) with a committed `meters`
/// part that lacks its `meter_days` part.
pub(crate) fn unsummarised_days(
    root: &Path,
    next_part: u64,
    days: DayRange,
) -> std::io::Result<std::collections::BTreeSet<String>> {
    use std::collections::BTreeSet;
    let by_day = |table| -> std::io::Result<BTreeMap<String, BTreeSet<u64>>> {
        let mut out: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for path in part_files(root, table, next_part, days)? {
            let day = path
                .parent()
                .and_then(Path::file_name)
                .map(|d| d.to_string_lossy().into_owned());
            if let (Some(day), Some(seq)) = (day, super::part_seq(&path, "parquet")) {
                out.entry(day).or_default().insert(seq);
            }
        }
        Ok(out)
    };
    let summaries = by_day("meter_days")?;
    Ok(by_day("meters")?
        .into_iter()
        .filter(|(day, parts)| summaries.get(day) != Some(parts))
        .map(|(day, _)| day)
        .collect())
}

/// A lazy scan of the committed parts of `table` in `days`; `None` when
/// there are none.
pub(crate) fn scan(
    root: &Path,
    table: &str,
    next_part: u64,
    days: DayRange,
) -> PolarsResult<Option<LazyFrame>> {
    let files = part_files(root, table, next_part, days)?;
    if files.is_empty() {
        return Ok(None);
    }
    let paths: Vec<PlRefPath> = files
        .iter()
        .map(|p| PlRefPath::new(p.to_string_lossy().into_owned()))
        .collect();
    let args = ScanArgsParquet {
        hive_options: HiveOptions::new_disabled(),
        ..ScanArgsParquet::default()
    };
    LazyFrame::scan_parquet_files(paths.into(), args).map(Some)
}

#[cfg(test)]
mod tests {
    use fleetcare_ingest::ids::{FleetId, VehicleId};

    use super::*;

    fn key(fleet: &str, vehicle: &str) -> Arc<VehicleKey> {
        Arc::new(VehicleKey {
            fleet: FleetId::new(fleet).unwrap(),
            vehicle: VehicleId::new(vehicle).unwrap(),
        })
    }

    // Issue 23: moments folded one sample at a time equal the two-pass
    // figures, and merging two halves equals folding the whole.
    #[test]
    fn moments_fold_and_merge() {
        let xs = [61.5, 63.0, 59.25, 70.0, 64.5, 62.0, 58.75];
        let mut m = Moments::of(xs[0]);
        for &x in &xs[1..] {
            m.push(x);
        }
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let m2: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
        assert!((m.mean - mean).abs() < 1e-12 && (m.m2 - m2).abs() < 1e-9);
        assert_eq!((m.count, m.min, m.max), (7, 58.75, 70.0));
        let (mut a, mut b) = (Moments::of(xs[0]), Moments::of(xs[4]));
        for &x in &xs[1..4] {
            a.push(x);
        }
        for &x in &xs[5..] {
            b.push(x);
        }
        a.merge(&b);
        assert_eq!(a.count, 7);
        assert!((a.mean - mean).abs() < 1e-12 && (a.m2 - m2).abs() < 1e-9);
        assert!((a.std() - (m2 / 6.0).sqrt()).abs() < 1e-12);
    }

    // Issue 23: signal samples become one row per vehicle, signal and
    // hour, with that hour's operating conditions; never one per sample.
    #[test]
    fn signal_samples_become_hourly_windows() {
        use fleetcare_ingest::j1939::{Signal, SignalName};
        let t = key("acme", "T-1");
        let hour = 1_772_352_000_000_000i64; // 2026-03-01T08:00Z
        let mut rows = PendingRows::default();
        let sample = |min: i64, signal: SignalName, value: f64| Record::Signal {
            vehicle: t.clone(),
            ts: Timestamp::from_micros(hour + min * 60_000_000),
            signal,
            value,
        };
        let oil = SignalName::Known(Signal::HydraulicOilTempC);
        let load = SignalName::Known(Signal::EngineLoadPct);
        for (min, v) in [(0, 60.0), (10, 62.0), (20, 64.0), (70, 70.0)] {
            rows.push(&sample(min, oil.clone(), v));
        }
        rows.push(&sample(5, load.clone(), 40.0));
        rows.push(&sample(15, load, 50.0));
        rows.push(&sample(30, SignalName::new("pump_bar").unwrap(), 180.0));
        let frames = rows.into_frames().unwrap();
        let [(_, day)] = frames.as_slice() else {
            panic!("one day");
        };
        let f = day[5].as_ref().unwrap();
        assert_eq!(f.height(), 4, "{f}");
        let strs = |c: &str| -> Vec<String> {
            let col = f.column(c).unwrap().str().unwrap();
            (0..col.len())
                .map(|i| col.get(i).unwrap().to_owned())
                .collect()
        };
        let f32s =
            |c: &str| -> Vec<Option<f32>> { f.column(c).unwrap().f32().unwrap().iter().collect() };
        assert_eq!(
            strs("signal"),
            [
                "engine_load_pct",
                "hydraulic_oil_temp_c",
                "hydraulic_oil_temp_c",
                "pump_bar"
            ]
        );
        let counts: Vec<u32> = f
            .column("count")
            .unwrap()
            .u32()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(counts, [2, 3, 1, 1]);
        assert_eq!(
            f32s("mean"),
            [Some(45.0), Some(62.0), Some(70.0), Some(180.0)]
        );
        assert_eq!(f32s("m2")[1], Some(8.0));
        assert_eq!(f32s("min")[1], Some(60.0));
        assert_eq!(f32s("max")[1], Some(64.0));
        // The first hour's load; the second hour had none.
        assert_eq!(f32s("load_pct"), [Some(45.0), Some(45.0), None, Some(45.0)]);
        assert_eq!(f32s("ambient_c"), [None, None, None, None]);
    }

    /// One row per vehicle and meter, sorted by name, spanning that day's
    /// readings; two keys that name the same vehicle make one row.
    #[test]
    fn meter_days_are_one_row_per_vehicle_and_meter_even_over_two_keys() {
        let (t2, t2_again, t1) = (key("acme", "T-2"), key("acme", "T-2"), key("acme", "T-1"));
        let m = Meters {
            vehicle: vec![t2.clone(), t1, t2_again, t2.clone(), t2],
            ts: vec![30, 10, 5, 20, 25],
            meter: vec![
                "engine_hours",
                "engine_hours",
                "engine_hours",
                "pto_hours",
                "engine_hours",
            ],
            raw: vec![0.0; 5],
            value: vec![3.0, 1.0, 0.5, 2.0, 2.5],
            reset: vec![false; 5],
        };
        let f = meter_days_frame(&m).unwrap().unwrap();
        let strs = |c: &str| -> Vec<String> {
            let col = f.column(c).unwrap().str().unwrap();
            (0..col.len())
                .map(|i| col.get(i).unwrap().to_owned())
                .collect()
        };
        let ints = |c: &str| -> Vec<i64> {
            let col = f.column(c).unwrap().cast(&DataType::Int64).unwrap();
            col.i64().unwrap().into_no_null_iter().collect()
        };
        let floats = |c: &str| -> Vec<f64> {
            f.column(c)
                .unwrap()
                .f64()
                .unwrap()
                .into_no_null_iter()
                .collect()
        };
        assert_eq!(strs("vehicle"), ["T-1", "T-2", "T-2"]);
        assert_eq!(strs("meter"), ["engine_hours", "engine_hours", "pto_hours"]);
        assert_eq!(ints("first_ts"), [10, 5, 20]);
        assert_eq!(ints("last_ts"), [10, 30, 20]);
        assert_eq!(floats("low"), [1.0, 0.5, 2.0]);
        assert_eq!(floats("high"), [1.0, 3.0, 2.0]);
    }
}
