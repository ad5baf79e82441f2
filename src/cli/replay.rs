//! `fleetcare replay FILE...`: ingests recordings (contract C2) through the
//! same path as live MQTT, in file order, with a progress bar on stderr.
//!
//! A reader thread parses the JSON lines while the main thread stores the
//! previous batch, so both cores work.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::Context;
use fleetcare_ingest::Timestamp;
use fleetcare_ingest::pipeline::Message;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::lines::BoundedLines;
use crate::recording::{self, MAX_LINE};
use crate::store::Store;

/// Messages stored per log sync.
const BATCH: usize = 4096;

/// Parsed messages of one batch, and how far the reader got.
struct Batch {
    messages: Vec<(String, String)>,
    bytes_read: u64,
}

/// What the reader thread found wrong in the files.
#[derive(Default)]
struct ReadReport {
    messages: u64,
    bad_lines: u64,
}

fn read_files(
    files: Vec<PathBuf>,
    tx: mpsc::SyncSender<Batch>,
    bar: ProgressBar,
) -> anyhow::Result<ReadReport> {
    let mut report = ReadReport::default();
    for path in files {
        let file = File::open(&path)
            .with_context(|| format!("cannot open {}; check the path", path.display()))?;
        let mut lines = BoundedLines::new(BufReader::with_capacity(1 << 20, file), MAX_LINE);
        let mut batch = Vec::with_capacity(BATCH);
        let mut last_pos = 0u64;
        let send = |batch: &mut Vec<(String, String)>, pos: u64, last_pos: &mut u64| {
            let b = Batch {
                messages: std::mem::replace(batch, Vec::with_capacity(BATCH)),
                bytes_read: pos - *last_pos,
            };
            *last_pos = pos;
            // The receiver only hangs up after a storage error, reported there.
            tx.send(b).is_ok()
        };
        while let Some((n, line)) = lines
            .next_line()
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            let Some(parsed) = recording::parse(line) else {
                continue;
            };
            match parsed {
                Ok(r) => {
                    batch.push((r.topic.into_owned(), r.payload.into_owned()));
                    report.messages += 1;
                }
                Err(e) => {
                    report.bad_lines += 1;
                    bar.suspend(|| eprintln!("{}:{n}: not a recording line: {e}", path.display()));
                }
            }
            if batch.len() == BATCH && !send(&mut batch, lines.position(), &mut last_pos) {
                return Ok(report);
            }
        }
        if !send(&mut batch, lines.position(), &mut last_pos) {
            return Ok(report);
        }
    }
    Ok(report)
}

pub(super) fn run(config: &Config, files: &[PathBuf]) -> anyhow::Result<()> {
    let mut store = Store::open(&config.data_dir, config.pipeline())
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    store.set_compact_bytes(config.store.compact_log_bytes);
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let before = store.totals();
    let (tx, rx) = mpsc::sync_channel::<Batch>(4);
    let reader = {
        let files = files.to_vec();
        let bar = bar.clone();
        std::thread::spawn(move || read_files(files, tx, bar))
    };
    let mut records = Vec::new();
    for batch in rx {
        let now = Timestamp::from_datetime(&chrono::Utc::now());
        let msgs: Vec<Message<'_>> = batch
            .messages
            .iter()
            .map(|(t, p)| Message {
                topic: t,
                payload: p.as_bytes(),
                received: now,
            })
            .collect();
        records.clear();
        store
            .ingest(&msgs, &mut records)
            .context("storing failed; messages after the last batch were not stored")?;
        bar.inc(batch.bytes_read);
    }
    let report = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the recording reader stopped unexpectedly"))??;
    store.compact().context("compacting the store failed")?;
    bar.finish_and_clear();
    let after = store.totals();
    let stored = after.messages_stored - before.messages_stored;
    let duplicates = after.duplicates - before.duplicates;
    let frames = after.can_frames - before.can_frames;
    let dead: u64 =
        after.dead_letters.values().sum::<u64>() - before.dead_letters.values().sum::<u64>();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "replayed {} messages in {secs:.1} s ({:.0}/s, {:.0} CAN frames/s): {stored} stored, {duplicates} duplicates, {dead} dead letters, {} bad recording lines",
        report.messages,
        report.messages as f64 / secs,
        frames as f64 / secs,
        report.bad_lines
    )?;
    for (reason, n) in &after.dead_letters {
        let new = n - before.dead_letters.get(reason).copied().unwrap_or(0);
        if new > 0 {
            writeln!(out, "  dead letters ({reason}): {new}")?;
        }
    }
    Ok(())
}
