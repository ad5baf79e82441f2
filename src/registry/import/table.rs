//! Reading a contract CSV file: the header must name exactly the expected
//! columns (in any order); each row comes back with its line number, and
//! rows that are not CSV the header can read are refused with theirs.

use std::fs::File;
use std::path::Path;

use csv::{ErrorKind, Position, StringRecord, Trim};

use crate::registry::error::{HeaderProblem, ImportError, Result, RowError, RowProblem};

/// A data row, its fields in the order of the expected columns.
#[derive(Debug)]
pub(crate) struct Row<const N: usize> {
    /// 1-based; the header is line 1.
    pub(crate) line: u64,
    pub(crate) fields: [String; N],
}

/// Reads all of `path`. Rows that cannot be read as CSV go to `problems`;
/// a bad header or an unreadable file is an error at once.
pub(crate) fn read<const N: usize>(
    path: &Path,
    columns: [&'static str; N],
    problems: &mut Problems,
) -> Result<Vec<Row<N>>> {
    let read_error = |error| ImportError::Read {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(read_error)?;
    // Trimmed, so that a file aligned by hand or by a spreadsheet reads the
    // same as a tight one; a UTF-8 byte-order mark is skipped by csv.
    let mut reader = csv::ReaderBuilder::new().trim(Trim::All).from_reader(file);
    let header = match reader.headers() {
        Ok(header) => header.clone(),
        Err(e) => {
            return Err(match e.into_kind() {
                ErrorKind::Io(error) => read_error(error),
                _ => ImportError::Header {
                    path: path.to_path_buf(),
                    problem: HeaderProblem::NotUtf8,
                },
            });
        }
    };
    let index = column_index(&header, columns).map_err(|problem| ImportError::Header {
        path: path.to_path_buf(),
        problem,
    })?;

    let mut rows = Vec::new();
    let mut record = StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => rows.push(Row {
                line: record.position().map_or(0, Position::line),
                fields: std::array::from_fn(|i| {
                    index
                        .get(i)
                        .and_then(|&at| record.get(at))
                        .unwrap_or_default()
                        .to_owned()
                }),
            }),
            Err(e) => {
                let line = e.position().map_or(0, Position::line);
                match *e.kind() {
                    ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => problems.push(
                        line,
                        RowProblem::FieldCount {
                            found: len,
                            expected: expected_len,
                        },
                    ),
                    ErrorKind::Utf8 { .. } => problems.push(line, RowProblem::NotUtf8),
                    // An I/O error midway; nothing else is left for a
                    // reader of strings to report.
                    _ => return Err(read_error(std::io::Error::other(e))),
                }
            }
        }
    }
    Ok(rows)
}

/// Where each expected column is in the header.
fn column_index<const N: usize>(
    header: &StringRecord,
    columns: [&'static str; N],
) -> Result<[usize; N], HeaderProblem> {
    let expected = columns.join(",");
    if header.is_empty() {
        return Err(HeaderProblem::Empty { expected });
    }
    let mut index = [0; N];
    let mut missing = Vec::new();
    for (slot, column) in index.iter_mut().zip(columns) {
        match header.iter().position(|h| h == column) {
            Some(at) => *slot = at,
            None => missing.push(column.to_owned()),
        }
    }
    let mut unknown = Vec::new();
    let mut duplicate = Vec::new();
    for (at, name) in header.iter().enumerate() {
        if !columns.contains(&name) {
            unknown.push(name.to_owned());
        } else if header.iter().take(at).any(|earlier| earlier == name) {
            duplicate.push(name.to_owned());
        }
    }
    if missing.is_empty() && unknown.is_empty() && duplicate.is_empty() {
        Ok(index)
    } else {
        Err(HeaderProblem::Columns {
            missing,
            unknown,
            duplicate,
            expected,
        })
    }
}

/// Parses each row with `parse`; a row whose `key` an earlier line already
/// gave is refused with `duplicate(key, first_line)`. The rows that parsed
/// come back in file order; the others are in `problems`.
pub(crate) fn parse_keyed<const N: usize, T, K: Eq + std::hash::Hash>(
    rows: &[Row<N>],
    problems: &mut Problems,
    parse: impl Fn(&Row<N>) -> std::result::Result<T, RowProblem>,
    key: impl Fn(&T) -> K,
    duplicate: impl Fn(&K, u64) -> RowProblem,
) -> Vec<T> {
    let mut parsed = Vec::with_capacity(rows.len());
    let mut line_of: std::collections::HashMap<K, u64> = std::collections::HashMap::new();
    for row in rows {
        match parse(row) {
            Ok(value) => {
                let k = key(&value);
                if let Some(&first_line) = line_of.get(&k) {
                    problems.push(row.line, duplicate(&k, first_line));
                } else {
                    line_of.insert(k, row.line);
                    parsed.push(value);
                }
            }
            Err(problem) => problems.push(row.line, problem),
        }
    }
    parsed
}

/// The refused rows of one file, from every check.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<RowError>);

impl Problems {
    pub(crate) fn push(&mut self, line: u64, problem: RowProblem) {
        self.0.push(RowError { line, problem });
    }

    /// `Ok` when no row was refused; else every refused row in line order.
    pub(crate) fn check(mut self, path: &Path) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        // Checks run in passes (syntax, then the registry), so sort.
        self.0.sort_by_key(|r| r.line);
        let total = self.0.len();
        self.0.truncate(crate::registry::error::MAX_REPORTED_ROWS);
        Err(ImportError::Rows {
            path: path.to_path_buf(),
            rows: self.0,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(fields: &[&str]) -> StringRecord {
        StringRecord::from(fields.to_vec())
    }

    #[test]
    fn columns_may_come_in_any_order() {
        let got = column_index(&header(&["c", "a", "b"]), ["a", "b", "c"]).unwrap();
        assert_eq!(got, [1, 2, 0]);
    }

    #[test]
    fn header_problems_name_the_columns() {
        let e = column_index(&header(&["a", "x", "a"]), ["a", "b"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "column \"b\" is missing, column \"x\" is not expected, column \"a\" appears twice; \
             the header must be a,b (in any order)"
        );
    }
}
