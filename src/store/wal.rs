//! The write-ahead log: raw messages appended to numbered segment files and
//! fsync'd in batches. A message counts as stored once its batch is synced.
//!
//! ```text
//! wal/000000000001.wal: record*
//! record = len: u32 LE | crc32(body): u32 LE | body
//! body   = received µs: i64 LE | digest: u64 LE | day: i32 LE | topic len: u16 LE | topic | payload
//! ```
//! A crash can leave a torn record at the end of the newest segment; it was
//! never synced, hence never acknowledged, and is cut off on recovery.
//!
//! The writer keeps zeros ahead of its records ([`PREALLOCATE`] bytes at a
//! time) and overwrites them, so a segment ends in zero padding. Why: a
//! sync that grows the file must also commit the new size and blocks to
//! the file system's journal; one that overwrites written blocks flushes
//! data only. On this project's ext4 VM a 15 kB append-and-fdatasync took
//! 340–720 µs, an overwrite 120–180 µs (docs/decisions.md). Zeros, not
//! `fallocate`: an allocated but unwritten extent is converted on its first
//! write, which is again a journal commit. A record length of zero is never
//! valid, so readers stop at the padding as they stop at a torn tail.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use fleetcare_ingest::Timestamp;

const HEADER: usize = 8;
const BODY_FIXED: usize = 8 + 8 + 4 + 2;

/// Zeros written ahead of the records at a time: one file-size commit per
/// this many bytes of log instead of one per sync.
pub(crate) const PREALLOCATE: u64 = 4 << 20;

/// The source of those zeros, written in pieces of this size.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// One logged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalRecord<'a> {
    pub(crate) received: Timestamp,
    pub(crate) digest: u64,
    pub(crate) day: i32,
    pub(crate) topic: &'a str,
    pub(crate) payload: &'a [u8],
}

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:012}.wal"))
}

/// Segment numbers present in `dir`, ascending.
pub(crate) fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(seq) = name.strip_suffix(".wal").and_then(|s| s.parse().ok()) {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Appends to one segment.
#[derive(Debug)]
pub(crate) struct WalWriter {
    out: BufWriter<File>,
    seq: u64,
    /// End of the records.
    len: u64,
    /// End of the zeros ahead of them (the file's length).
    allocated: u64,
}

impl WalWriter {
    /// Opens segment `seq` for appending at `len` (the end of its valid
    /// records). What follows `len` (a torn record, old padding) is cut off
    /// first, so that the new padding is zeros throughout.
    pub(crate) fn open(dir: &Path, seq: u64, len: u64) -> io::Result<Self> {
        let path = segment_path(dir, seq);
        let file = crate::runtime::owner_only::options()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)?;
        file.set_len(len)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        io::Seek::seek(out.get_mut(), io::SeekFrom::Start(len))?;
        sync_dir(dir)?;
        Ok(Self {
            out,
            seq,
            len,
            allocated: len,
        })
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Bytes in this segment.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn append(&mut self, r: &WalRecord<'_>) -> io::Result<()> {
        let topic_len = u16::try_from(r.topic.len())
            .map_err(|_| io::Error::other("topic longer than 65535 bytes"))?;
        let body_len = BODY_FIXED + r.topic.len() + r.payload.len();
        let len =
            u32::try_from(body_len).map_err(|_| io::Error::other("message larger than 4 GiB"))?;
        let mut crc = crc32fast::Hasher::new();
        let fixed = {
            let mut b = [0u8; BODY_FIXED];
            b[..8].copy_from_slice(&r.received.as_micros().to_le_bytes());
            b[8..16].copy_from_slice(&r.digest.to_le_bytes());
            b[16..20].copy_from_slice(&r.day.to_le_bytes());
            b[20..22].copy_from_slice(&topic_len.to_le_bytes());
            b
        };
        crc.update(&fixed);
        crc.update(r.topic.as_bytes());
        crc.update(r.payload);
        self.reserve(self.len + (HEADER + body_len) as u64)?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&crc.finalize().to_le_bytes())?;
        self.out.write_all(&fixed)?;
        self.out.write_all(r.topic.as_bytes())?;
        self.out.write_all(r.payload)?;
        self.len += (HEADER + body_len) as u64;
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    /// Makes the file hold zeros up to at least `end`. The zeros go straight
    /// to the file at their offsets, beyond anything the buffer holds or has
    /// written (all of that lies before `allocated`), so no record is
    /// overwritten whenever the buffer flushes.
    fn reserve(&mut self, end: u64) -> io::Result<()> {
        if end <= self.allocated {
            return Ok(());
        }
        // Room for the next records beyond this one, however large it is.
        let target = end + PREALLOCATE;
        let file = self.out.get_ref();
        while self.allocated < target {
            let n = (target - self.allocated).min(ZEROS.len() as u64);
            // `n` is at most ZEROS.len(), a usize.
            file.write_all_at(&ZEROS[..n as usize], self.allocated)?;
            self.allocated += n;
        }
        Ok(())
    }
}

/// Whether what follows a segment's valid records is the writer's zero
/// padding (or nothing), rather than a damaged record.
pub(crate) fn is_padding(rest: &[u8]) -> bool {
    rest.iter().all(|&b| b == 0)
}

/// Fsyncs a directory so that created or renamed entries survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Bytes read at a time by [`read_from`]: records are found without
/// reading a segment's padding (up to [`PREALLOCATE`] bytes) each time.
const READ_STEP: usize = 64 << 10;

/// The log after a position of a segment, as [`read_from`] found it.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    /// What was read: `valid` bytes of whole records, then possibly the
    /// start of what ended them (padding, a torn or damaged record).
    pub(crate) bytes: Vec<u8>,
    pub(crate) valid: usize,
}

impl Tail {
    /// The whole records read.
    pub(crate) fn records(&self) -> Vec<WalRecord<'_>> {
        read_segment(self.bytes.get(..self.valid).unwrap_or_default()).0
    }
}

/// Is there a whole record at the start of `b`: its length, or how many
/// bytes are needed to know, or `None` when what is there cannot start a
/// record (padding, damage).
enum Next {
    Whole(usize),
    Need(usize),
    Invalid,
}

fn next_record(b: &[u8]) -> Next {
    let Some(len) = b.get(0..4).and_then(|l| l.try_into().ok()) else {
        return Next::Need(HEADER);
    };
    let len = u32::from_le_bytes(len) as usize;
    if len < BODY_FIXED {
        return Next::Invalid;
    }
    if b.len() < HEADER + len {
        Next::Need(HEADER + len)
    } else {
        Next::Whole(HEADER + len)
    }
}

/// Reads the whole, valid records of the segment open as `file` from byte
/// `from` on, in steps of [`READ_STEP`]: it stops at the first place that
/// does not hold one (the padding, a record still being written or torn
/// by a crash, damage), without reading the rest of the file.
pub(crate) fn read_from(file: &File, from: u64) -> io::Result<Tail> {
    let mut tail = Tail::default();
    let mut eof = false;
    loop {
        match next_record(tail.bytes.get(tail.valid..).unwrap_or_default()) {
            Next::Whole(n) => {
                if parse_record(&tail.bytes[tail.valid..tail.valid + n]).is_none() {
                    return Ok(tail);
                }
                tail.valid += n;
            }
            Next::Invalid => return Ok(tail),
            Next::Need(_) if eof => return Ok(tail),
            Next::Need(n) => {
                let want = (tail.valid + n).max(tail.bytes.len() + READ_STEP);
                eof = fill(file, from, &mut tail.bytes, want)?;
            }
        }
    }
}

/// Appends bytes of `file` from `from + bytes.len()` on until `bytes`
/// holds `want`; true when the file ended first.
fn fill(file: &File, from: u64, bytes: &mut Vec<u8>, want: usize) -> io::Result<bool> {
    while bytes.len() < want {
        let have = bytes.len();
        bytes.resize(want, 0);
        let read = file.read_at(&mut bytes[have..], from + have as u64);
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                bytes.truncate(have);
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
        };
        bytes.truncate(have + n);
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether everything in `file` from byte `from` on is zero padding.
pub(crate) fn rest_is_padding(file: &File, from: u64) -> io::Result<bool> {
    let mut buf = vec![0u8; READ_STEP];
    let mut at = from;
    loop {
        let n = match file.read_at(&mut buf, at) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if !is_padding(&buf[..n]) {
            return Ok(false);
        }
        at += n as u64;
    }
}

/// Reads the valid records of a segment; returns them with the length of
/// the valid prefix (shorter than the file when its tail is torn).
pub(crate) fn read_segment(bytes: &[u8]) -> (Vec<WalRecord<'_>>, usize) {
    let mut records = Vec::new();
    let mut at = 0usize;
    while let Some(r) = parse_record(bytes.get(at..).unwrap_or_default()) {
        let (record, used) = r;
        records.push(record);
        at += used;
    }
    (records, at)
}

fn parse_record(b: &[u8]) -> Option<(WalRecord<'_>, usize)> {
    let len = u32::from_le_bytes(b.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(b.get(4..8)?.try_into().ok()?);
    let body = b.get(HEADER..HEADER + len)?;
    if len < BODY_FIXED || crc32fast::hash(body) != crc {
        return None;
    }
    let received = i64::from_le_bytes(body.get(0..8)?.try_into().ok()?);
    let digest = u64::from_le_bytes(body.get(8..16)?.try_into().ok()?);
    let day = i32::from_le_bytes(body.get(16..20)?.try_into().ok()?);
    let topic_len = usize::from(u16::from_le_bytes(body.get(20..22)?.try_into().ok()?));
    let topic = std::str::from_utf8(body.get(BODY_FIXED..BODY_FIXED + topic_len)?).ok()?;
    let payload = body.get(BODY_FIXED + topic_len..)?;
    Some((
        WalRecord {
            received: Timestamp::from_micros(received),
            digest,
            day,
            topic,
            payload,
        },
        HEADER + len,
    ))
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::*;

    fn record(i: u64) -> (String, Vec<u8>) {
        (
            format!("fleet/acme/T{i}/can"),
            format!("(1.{i:06}) can0 18FEE500#00").into_bytes(),
        )
    }

    #[test]
    fn writes_and_reads_back_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WalWriter::open(dir.path(), 1, 0).unwrap();
        let msgs: Vec<_> = (0..100).map(record).collect();
        for (i, (t, p)) in msgs.iter().enumerate() {
            let r = WalRecord {
                received: Timestamp::from_micros(i as i64),
                digest: i as u64,
                day: 7,
                topic: t,
                payload: p,
            };
            w.append(&r).unwrap();
        }
        w.sync().unwrap();
        let full = w.len() as usize;
        let bytes = fs::read(segment_path(dir.path(), 1)).unwrap();
        // The records, then zeros: the first record reserved room for
        // PREALLOCATE bytes after itself, and the others fit in it.
        let first = (HEADER + BODY_FIXED + msgs[0].0.len() + msgs[0].1.len()) as u64;
        assert_eq!(bytes.len() as u64, first + PREALLOCATE);
        assert!(is_padding(&bytes[full..]));
        assert!(!is_padding(&bytes[full - 1..]));
        let (records, valid) = read_segment(&bytes);
        assert_eq!((records.len(), valid), (100, full));
        assert_eq!(records[42].topic, "fleet/acme/T42/can");
        assert_eq!(records[42].digest, 42);
        // Every cut of the last record leaves the 99 before it.
        for cut in (full - 30)..full {
            let (records, valid) = read_segment(&bytes[..cut]);
            assert_eq!(records.len(), 99, "cut at {cut}");
            assert!(valid < cut);
        }
        // A flipped bit in the last record is caught by its checksum.
        let mut bad = bytes.clone();
        bad[full - 3] ^= 1;
        assert_eq!(read_segment(&bad).0.len(), 99);
        assert_eq!(segments(dir.path()).unwrap(), vec![1]);
    }

    /// Reopening cuts whatever follows the valid records (here a torn
    /// record inside the padding) and pads again with zeros, so a record
    /// appended later is followed by zeros, not by the torn one's bytes.
    #[test]
    fn reopening_pads_again_after_the_valid_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let (t, p) = record(1);
        let r = WalRecord {
            received: Timestamp::from_micros(1),
            digest: 1,
            day: 7,
            topic: &t,
            payload: &p,
        };
        let mut w = WalWriter::open(dir.path(), 1, 0).unwrap();
        w.append(&r).unwrap();
        w.sync().unwrap();
        let one = w.len();
        drop(w);
        // A torn, longer record behind the first one.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xAB; 300], one).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(read_segment(&bytes).1 as u64, one);
        assert!(!is_padding(&bytes[one as usize..]));

        let mut w = WalWriter::open(dir.path(), 1, one).unwrap();
        w.append(&r).unwrap();
        w.sync().unwrap();
        let bytes = fs::read(&path).unwrap();
        let (records, valid) = read_segment(&bytes);
        assert_eq!((records.len(), valid as u64), (2, 2 * one));
        assert!(is_padding(&bytes[valid..]));
        assert_eq!(bytes.len() as u64, 2 * one + PREALLOCATE);
    }

    /// A record larger than the preallocation step gets room for all of it.
    #[test]
    fn a_record_larger_than_the_step_is_padded_past_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let payload = vec![b'x'; PREALLOCATE as usize + 10];
        let mut w = WalWriter::open(dir.path(), 1, 0).unwrap();
        for i in 0..2 {
            w.append(&WalRecord {
                received: Timestamp::from_micros(i),
                digest: i as u64,
                day: 7,
                topic: "fleet/acme/T1/can",
                payload: &payload,
            })
            .unwrap();
        }
        w.sync().unwrap();
        let bytes = fs::read(segment_path(dir.path(), 1)).unwrap();
        let (records, valid) = read_segment(&bytes);
        assert_eq!((records.len(), valid as u64), (2, w.len()));
        assert_eq!(bytes.len() as u64, w.len() + PREALLOCATE);
        assert!(is_padding(&bytes[valid..]));
    }
}
