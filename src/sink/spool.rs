//! The on-disk spool: line-protocol batches that could not be written yet,
//! kept across restarts and sent again oldest first.
//!
//! A folder of segment files `00000000000000000042.spool`, each a run of
//! frames appended and synced one at a time:
//!
//! ```text
//! ┌──────────────┬──────────────┬──────────────┬───────────────────────┐
//! │ len: u32 LE  │ crc32: u32 LE│ lines: u32 LE│ line protocol (len B) │ …
//! └──────────────┴──────────────┴──────────────┴───────────────────────┘
//! ```
//!
//! Only the newest segment is appended to; it is sealed once it holds a
//! batch's worth of lines (or a quarter of the size limit), so a segment
//! is one write request when it is sent. A segment is deleted once the
//! server took it. A frame cut short by a crash (or that fails its CRC)
//! ends its segment: the file is cut there when the spool opens. When the
//! spool holds more than its limit, the oldest segments are deleted and
//! their lines counted as dropped.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const HEADER: usize = 12;
const SUFFIX: &str = "spool";

/// A segment's bookkeeping.
#[derive(Debug, Clone, Copy)]
struct Segment {
    id: u64,
    bytes: u64,
    lines: u64,
}

/// The oldest segment's text, to send.
#[derive(Debug)]
pub struct Spooled {
    pub id: u64,
    pub body: Vec<u8>,
    pub lines: u64,
}

/// What making room deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub segments: u64,
    pub lines: u64,
    pub bytes: u64,
}

/// What opening found: segments kept from before, and bytes cut off torn
/// or damaged frames.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub segments: u64,
    pub lines: u64,
    pub cut_bytes: u64,
}

/// The spool under one folder; one owner at a time (the sink shares it
/// behind a mutex).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Oldest first; the last one is open for appending unless `open` is None.
    segments: VecDeque<Segment>,
    open: Option<File>,
    next_id: u64,
    bytes: u64,
    max_bytes: u64,
    seal_lines: u64,
    /// A segment being sent: never deleted to make room.
    in_flight: Option<u64>,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.{SUFFIX}"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The frames of `data` that are whole and intact: (their length, lines).
fn valid_prefix(data: &[u8]) -> (usize, u64) {
    let (mut at, mut lines) = (0usize, 0u64);
    while let Some(header) = data.get(at..at + HEADER) {
        let word = |i: usize| {
            let b: [u8; 4] = header
                .get(i..i + 4)
                .and_then(|s| s.try_into().ok())
                .unwrap_or_default();
            u32::from_le_bytes(b)
        };
        let (len, crc, n) = (word(0) as usize, word(4), word(8));
        let Some(body) = data.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        at += HEADER + len;
        lines += u64::from(n);
    }
    (at, lines)
}

/// The frames' text, one after the other.
fn bodies(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut at = 0;
    while let Some(len) = data.get(at..at + 4) {
        let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
        match data.get(at + HEADER..at + HEADER + len) {
            Some(body) => out.extend_from_slice(body),
            None => break,
        }
        at += HEADER + len;
    }
    out
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, cutting torn frames. Segments
    /// are sealed at `seal_lines` lines or a quarter of `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64, seal_lines: u64) -> io::Result<(Self, Recovered)> {
        fs::create_dir_all(dir)?;
        let mut ids = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name
                .strip_suffix(&format!(".{SUFFIX}"))
                .and_then(|s| s.parse::<u64>().ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut spool = Self {
            dir: dir.to_owned(),
            segments: VecDeque::new(),
            open: None,
            next_id: ids.last().map_or(1, |id| id + 1),
            bytes: 0,
            max_bytes: max_bytes.max(1),
            seal_lines: seal_lines.max(1),
            in_flight: None,
        };
        let mut recovered = Recovered::default();
        for id in ids {
            let path = segment_path(dir, id);
            let data = fs::read(&path)?;
            let (valid, lines) = valid_prefix(&data);
            if valid < data.len() {
                recovered.cut_bytes += (data.len() - valid) as u64;
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(valid as u64)?;
                f.sync_all()?;
            }
            if valid == 0 {
                fs::remove_file(&path)?;
                continue;
            }
            recovered.segments += 1;
            recovered.lines += lines;
            spool.bytes += valid as u64;
            spool.segments.push_back(Segment {
                id,
                bytes: valid as u64,
                lines,
            });
        }
        Ok((spool, recovered))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Lines waiting.
    pub fn lines(&self) -> u64 {
        self.segments.iter().map(|s| s.lines).sum()
    }

    /// Appends one batch as a frame and syncs it; then deletes the oldest
    /// segments while the spool is over its limit.
    pub fn append(&mut self, body: &[u8], lines: u64) -> io::Result<Dropped> {
        if body.is_empty() {
            return Ok(Dropped::default());
        }
        let len = u32::try_from(body.len())
            .map_err(|_| io::Error::other("a batch of 4 GiB or more cannot be spooled"))?;
        let file = match self.open.as_mut() {
            Some(f) => f,
            None => {
                let id = self.next_id;
                let f = OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .open(segment_path(&self.dir, id))?;
                sync_dir(&self.dir)?;
                self.next_id += 1;
                self.segments.push_back(Segment {
                    id,
                    bytes: 0,
                    lines: 0,
                });
                self.open.insert(f)
            }
        };
        let mut frame = Vec::with_capacity(HEADER + body.len());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        frame.extend_from_slice(&u32::try_from(lines).unwrap_or(u32::MAX).to_le_bytes());
        frame.extend_from_slice(body);
        file.write_all(&frame)?;
        file.sync_data()?;
        self.bytes += frame.len() as u64;
        if let Some(seg) = self.segments.back_mut() {
            seg.bytes += frame.len() as u64;
            seg.lines += lines;
            if seg.lines >= self.seal_lines || seg.bytes >= self.max_bytes / 4 {
                self.open = None;
            }
        }
        self.make_room()
    }

    fn make_room(&mut self) -> io::Result<Dropped> {
        let mut dropped = Dropped::default();
        while self.bytes > self.max_bytes && self.segments.len() > 1 {
            // The oldest not being sent; never the newest (just written).
            let Some(i) =
                (0..self.segments.len() - 1).find(|&i| Some(self.segments[i].id) != self.in_flight)
            else {
                break;
            };
            let Some(seg) = self.segments.remove(i) else {
                break;
            };
            fs::remove_file(segment_path(&self.dir, seg.id))?;
            self.bytes -= seg.bytes;
            dropped.segments += 1;
            dropped.lines += seg.lines;
            dropped.bytes += seg.bytes;
        }
        Ok(dropped)
    }

    /// The oldest segment's text (sealing it if it is the open one), marked
    /// as being sent until [`Spool::sent`] or [`Spool::unsent`].
    pub fn oldest(&mut self) -> io::Result<Option<Spooled>> {
        let Some(seg) = self.segments.front().copied() else {
            return Ok(None);
        };
        if self.segments.len() == 1 {
            self.open = None;
        }
        let mut data = Vec::with_capacity(seg.bytes as usize);
        File::open(segment_path(&self.dir, seg.id))?.read_to_end(&mut data)?;
        self.in_flight = Some(seg.id);
        Ok(Some(Spooled {
            id: seg.id,
            body: bodies(&data),
            lines: seg.lines,
        }))
    }

    /// The server took segment `id` (or refused it for good): delete it.
    pub fn sent(&mut self, id: u64) -> io::Result<()> {
        self.in_flight = None;
        if let Some(i) = self.segments.iter().position(|s| s.id == id) {
            if let Some(seg) = self.segments.remove(i) {
                self.bytes -= seg.bytes;
            }
            fs::remove_file(segment_path(&self.dir, id))?;
        }
        Ok(())
    }

    /// Sending segment `id` failed: it stays, to be sent again.
    pub fn unsent(&mut self, id: u64) {
        if self.in_flight == Some(id) {
            self.in_flight = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(dir: &Path, max: u64, seal: u64) -> Spool {
        Spool::open(dir, max, seal).unwrap().0
    }

    #[test]
    fn batches_come_back_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spool(dir.path(), 1 << 20, 2);
        assert!(s.is_empty());
        s.append(b"a 1\n", 1).unwrap();
        s.append(b"b 2\n", 1).unwrap(); // seals the first segment (2 lines)
        s.append(b"c 3\n", 1).unwrap();
        assert_eq!((s.lines(), s.bytes()), (3, 3 * (12 + 4)));
        drop(s);

        let (mut s, rec) = Spool::open(dir.path(), 1 << 20, 2).unwrap();
        assert_eq!(
            rec,
            Recovered {
                segments: 2,
                lines: 3,
                cut_bytes: 0
            }
        );
        let first = s.oldest().unwrap().unwrap();
        assert_eq!(
            (first.body.as_slice(), first.lines),
            (&b"a 1\nb 2\n"[..], 2)
        );
        s.unsent(first.id);
        let again = s.oldest().unwrap().unwrap();
        assert_eq!(again.id, first.id);
        s.sent(first.id).unwrap();
        // The open segment is sealed when it is the oldest: new appends go
        // to a new one.
        let second = s.oldest().unwrap().unwrap();
        assert_eq!(second.body, b"c 3\n");
        s.append(b"d 4\n", 1).unwrap();
        s.sent(second.id).unwrap();
        assert_eq!(s.oldest().unwrap().unwrap().body, b"d 4\n");
    }

    #[test]
    fn a_torn_frame_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spool(dir.path(), 1 << 20, 100);
        s.append(b"a 1\n", 1).unwrap();
        s.append(b"b 2\n", 1).unwrap();
        drop(s);
        let path = segment_path(dir.path(), 1);
        let mut data = fs::read(&path).unwrap();
        data.truncate(data.len() - 2); // a crash in the middle of a write
        fs::write(&path, &data).unwrap();
        let (mut s, rec) = Spool::open(dir.path(), 1 << 20, 100).unwrap();
        assert_eq!((rec.lines, rec.cut_bytes), (1, 14));
        assert_eq!(s.oldest().unwrap().unwrap().body, b"a 1\n");
        // A damaged frame counts as torn too.
        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        fs::write(&path, &data).unwrap();
        let (s, rec) = Spool::open(dir.path(), 1 << 20, 100).unwrap();
        assert!(s.is_empty());
        assert_eq!(rec.cut_bytes, 16);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_oldest_are_dropped_when_full_but_not_the_one_being_sent() {
        let dir = tempfile::tempdir().unwrap();
        // Frames of 12 + 8 bytes, one per segment; room for three.
        let mut s = spool(dir.path(), 60, 1);
        for b in [b"x=1 001\n", b"x=1 002\n", b"x=1 003\n"] {
            assert_eq!(s.append(b, 1).unwrap(), Dropped::default());
        }
        let sending = s.oldest().unwrap().unwrap();
        let dropped = s.append(b"x=1 004\n", 1).unwrap();
        assert_eq!(
            dropped,
            Dropped {
                segments: 1,
                lines: 1,
                bytes: 20
            }
        );
        assert_eq!((s.lines(), s.bytes()), (3, 60));
        s.sent(sending.id).unwrap();
        let next = s.oldest().unwrap().unwrap();
        assert_eq!(next.body, b"x=1 003\n");
    }
}
