//! Printing report rows: `--format table` for people, `json` (one array,
//! C6) and `csv` for scripts and spreadsheets. Every format is driven by
//! the rows' serde field names, so the three cannot disagree on a column.

use std::io::{self, Write};

use chrono::NaiveDate;
use fleetcare_ingest::Timestamp;
use serde::{Serialize, Serializer};

/// How rows are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns, `-` for an empty value.
    #[default]
    Table,
    /// One JSON array, a row per line.
    Json,
    /// A header row, then one row per line.
    Csv,
}

/// A report row: its columns when there is no row to take them from.
pub trait Row: Serialize {
    const FIELDS: &'static [&'static str];
}

/// Serializes a date as `YYYY-MM-DD`.
pub(crate) fn date<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

/// Serializes an optional date as `YYYY-MM-DD` or null.
pub(crate) fn opt_date<S: Serializer>(d: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.collect_str(d),
        None => s.serialize_none(),
    }
}

/// Serializes a time as RFC 3339 UTC with microseconds, as `decode` prints.
pub(crate) fn rfc3339<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339())
}

fn csv_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// Writes `rows` to `out` in `format`.
pub fn write<R: Row>(out: &mut dyn Write, rows: &[R], format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            out.write_all(b"[")?;
            for (i, row) in rows.iter().enumerate() {
                out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer(&mut *out, row).map_err(io::Error::other)?;
            }
            out.write_all(b"\n]\n")
        }
        Format::Csv => {
            out.write_all(&csv_bytes(rows)?)?;
            Ok(())
        }
        Format::Table => write_table(out, &csv_bytes(rows)?),
    }
}

/// The rows as CSV with a header; the header alone when there are none.
fn csv_bytes<R: Row>(rows: &[R]) -> io::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        w.write_record(R::FIELDS).map_err(csv_error)?;
    }
    for row in rows {
        w.serialize(row).map_err(csv_error)?;
    }
    w.into_inner().map_err(|e| io::Error::other(e.to_string()))
}

/// CSV re-read and printed in aligned columns.
fn write_table(out: &mut dyn Write, csv_text: &[u8]) -> io::Result<()> {
    let mut records: Vec<Vec<String>> = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv_text);
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        records.push(
            record
                .iter()
                .map(|v| if v.is_empty() { "-" } else { v }.to_owned())
                .collect(),
        );
    }
    write_columns(out, &records)
}

/// `records` (the first is the header) in columns aligned by the widest
/// cell, two spaces apart: the table every command prints for people.
pub fn write_columns(out: &mut dyn Write, records: &[Vec<String>]) -> io::Result<()> {
    let columns = records.first().map_or(0, Vec::len);
    let mut widths = vec![0usize; columns];
    for r in records {
        for (w, v) in widths.iter_mut().zip(r) {
            *w = (*w).max(v.chars().count());
        }
    }
    for r in records {
        let mut line = String::new();
        for (i, (v, w)) in r.iter().zip(&widths).enumerate() {
            if i + 1 == r.len() {
                line.push_str(v);
            } else {
                line.push_str(v);
                line.extend(std::iter::repeat_n(
                    ' ',
                    w.saturating_sub(v.chars().count()) + 2,
                ));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}
