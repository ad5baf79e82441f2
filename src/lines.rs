//! Reading text lines of bounded length, so that memory stays flat whatever
//! a file contains (a log without line breaks is one enormous "line").

use std::io::{self, BufRead};

/// One line of input, or why it was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Text(&'a str),
    /// Longer than the limit; its content was skipped.
    TooLong,
    /// Not UTF-8 text.
    NotText,
}

/// Lines of at most `max_len` bytes from a reader, numbered from 1.
#[derive(Debug)]
pub struct BoundedLines<R> {
    reader: R,
    max_len: usize,
    buf: Vec<u8>,
    number: u64,
    position: u64,
}

impl<R: BufRead> BoundedLines<R> {
    pub fn new(reader: R, max_len: usize) -> Self {
        Self {
            reader,
            max_len,
            buf: Vec::with_capacity(256),
            number: 0,
            position: 0,
        }
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next line without its line ending, with its number; `None` at
    /// the end of input.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            any = true;
            let (chunk, done) = match memchr::memchr(b'\n', available) {
                Some(i) => (available.get(..i).unwrap_or_default(), Some(i + 1)),
                None => (available, None),
            };
            if !too_long && self.buf.len() + chunk.len() <= self.max_len {
                self.buf.extend_from_slice(chunk);
            } else {
                too_long = true;
                self.buf.clear();
            }
            let used = done.unwrap_or(available.len());
            self.reader.consume(used);
            self.position += used as u64;
            if done.is_some() {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.number += 1;
        if too_long {
            return Ok(Some((self.number, Line::TooLong)));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some((
            self.number,
            match std::str::from_utf8(&self.buf) {
                Ok(s) => Line::Text(s),
                Err(_) => Line::NotText,
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize) -> Vec<(u64, String)> {
        let mut lines = BoundedLines::new(io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some((n, l)) = lines.next_line().unwrap() {
            out.push((n, format!("{l:?}")));
        }
        out
    }

    #[test]
    fn splits_numbers_and_bounds() {
        let got = collect(b"ab\r\n\ncdefghij\nkl\xFF\nlast", 5);
        let want = [
            (1, "Text(\"ab\")"),
            (2, "Text(\"\")"),
            (3, "TooLong"),
            (4, "NotText"),
            (5, "Text(\"last\")"),
        ];
        assert_eq!(got, want.map(|(n, s)| (n, s.to_string())));
    }

    #[test]
    fn empty_input_has_no_lines() {
        assert!(collect(b"", 5).is_empty());
    }
}
