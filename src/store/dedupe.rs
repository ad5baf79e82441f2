//! Exact de-duplication of messages delivered or replayed twice.
//!
//! A message's identity is the 64-bit xxh3 digest of its topic and payload.
//! Digests are kept per event day (the day of the first timestamp in the
//! payload), so that a replay of an old recording is checked against that
//! day alone, and memory holds only the days in use:
//! `dedupe/day=YYYY-MM-DD/part-NNNNNNNN.bin`, sorted little-endian u64s, one
//! part per compaction.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::path::PathBuf;

use chrono::NaiveDate;
use fleetcare_ingest::Timestamp;
use serde::Deserialize;

/// Digests are already uniformly distributed: hashing them again is waste.
#[derive(Debug, Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type DigestSet = HashSet<u64, BuildHasherDefault<IdentityHasher>>;

/// The identity of a message.
pub(crate) fn digest(topic: &str, payload: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(topic.as_bytes());
    // A separator that cannot occur in a topic keeps (topic, payload) pairs apart.
    h.update(&[0]);
    h.update(payload);
    h.digest()
}

/// Messages without a readable event time (garbage) share this bucket.
pub(crate) const UNDATED: i32 = i32::MIN;

#[derive(Deserialize)]
struct TsOnly<'a> {
    #[serde(borrow)]
    ts: std::borrow::Cow<'a, str>,
}

/// The UTC day (days since 1970-01-01) of the message's first event time.
pub(crate) fn event_day(topic: &str, payload: &[u8]) -> i32 {
    event_micros(topic, payload).map_or(UNDATED, day_of)
}

/// When a message says it happened: the telemetry `ts`, or the first
/// candump line's whole second. `None` for a message that says nothing
/// readable.
pub(crate) fn event_micros(topic: &str, payload: &[u8]) -> Option<i64> {
    if topic.ends_with("/telemetry") {
        serde_json::from_slice::<TsOnly<'_>>(payload)
            .ok()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t.ts).ok())
            .map(|t| t.timestamp_micros())
    } else {
        first_candump_seconds(payload).map(|s| s.saturating_mul(1_000_000))
    }
}

pub(crate) fn day_of(micros: i64) -> i32 {
    i32::try_from(micros.div_euclid(86_400_000_000)).unwrap_or(UNDATED)
}

pub(crate) fn day_of_ts(ts: Timestamp) -> i32 {
    day_of(ts.as_micros())
}

fn first_candump_seconds(payload: &[u8]) -> Option<i64> {
    let line = payload
        .split(|&b| b == b'\n')
        .find(|l| l.first() == Some(&b'('))?;
    let digits = line.get(1..)?.split(|&b| b == b'.').next()?;
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    digits.iter().try_fold(0i64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
    })
}

/// `day=YYYY-MM-DD`, or `day=undated`.
pub(crate) fn day_dir_name(day: i32) -> String {
    if day == UNDATED {
        return "day=undated".to_owned();
    }
    let date = NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::days(i64::from(day))));
    match date {
        Some(d) => format!("day={}", d.format("%Y-%m-%d")),
        None => format!("day=d{day}"),
    }
}

#[derive(Debug, Default)]
struct DaySet {
    seen: DigestSet,
    /// Digests not yet written to a part file.
    unsaved: Vec<u64>,
}

/// The digests of every stored message, by event day.
#[derive(Debug)]
pub(crate) struct DigestIndex {
    dir: PathBuf,
    days: HashMap<i32, DaySet>,
}

impl DigestIndex {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            days: HashMap::new(),
        }
    }

    fn load(&self, day: i32) -> io::Result<DaySet> {
        let mut set = DaySet::default();
        let dir = self.dir.join(day_dir_name(day));
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(set),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let bytes = fs::read(entry?.path())?;
            set.seen.extend(
                bytes
                    .chunks_exact(8)
                    .filter_map(|c| c.try_into().ok())
                    .map(u64::from_le_bytes),
            );
        }
        Ok(set)
    }

    /// Records `digest` for `day`; false when it was there already.
    pub(crate) fn insert(&mut self, day: i32, digest: u64) -> io::Result<bool> {
        if !self.days.contains_key(&day) {
            let set = self.load(day)?;
            self.days.insert(day, set);
        }
        let Some(set) = self.days.get_mut(&day) else {
            return Ok(false);
        };
        let new = set.seen.insert(digest);
        if new {
            set.unsaved.push(digest);
        }
        Ok(new)
    }

    /// Writes the unsaved digests as part `seq` of each day; returns the
    /// files written (synced).
    pub(crate) fn save(&mut self, seq: u64) -> io::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for (day, set) in &mut self.days {
            if set.unsaved.is_empty() {
                continue;
            }
            set.unsaved.sort_unstable();
            let dir = self.dir.join(day_dir_name(*day));
            crate::runtime::owner_only::create_dir_all(&dir)?;
            let path = dir.join(format!("part-{seq:08}.bin"));
            let bytes: Vec<u8> = set.unsaved.iter().flat_map(|d| d.to_le_bytes()).collect();
            super::write_synced(&path, &bytes)?;
            set.unsaved.clear();
            written.push(path);
        }
        Ok(written)
    }

    /// Forgets days with nothing unsaved, keeping memory to the days in use.
    pub(crate) fn evict_saved(&mut self, keep: usize) {
        if self.days.len() <= keep {
            return;
        }
        self.days.retain(|_, s| !s.unsaved.is_empty());
    }

    #[cfg(test)]
    pub(crate) fn loaded_days(&self) -> usize {
        self.days.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_day_of_both_payloads() {
        assert_eq!(
            event_day("fleet/a/b/can", b"DROPCOUNT\n(86400.5) can0 123#00"),
            1
        );
        assert_eq!(
            event_day(
                "fleet/a/b/telemetry",
                br#"{"engine_hours": 1, "ts": "1970-01-03T00:00:00Z"}"#
            ),
            2
        );
        assert_eq!(event_day("fleet/a/b/can", b"garbage"), UNDATED);
        assert_eq!(event_day("fleet/a/b/telemetry", b"{"), UNDATED);
        assert_eq!(day_dir_name(20_513), "day=2026-03-01");
    }

    #[test]
    fn digests_survive_save_and_eviction() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = DigestIndex::new(dir.path().to_owned());
        let d = digest("fleet/a/b/can", b"x");
        assert_ne!(d, digest("fleet/a/b/can", b"y"));
        assert_ne!(digest("fleet/a/b/ca", b"nx"), digest("fleet/a/b/can", b"x"));
        assert!(idx.insert(5, d).unwrap());
        assert!(!idx.insert(5, d).unwrap());
        assert!(idx.insert(6, d).unwrap(), "days are separate");
        idx.save(1).unwrap();
        idx.evict_saved(0);
        assert_eq!(idx.loaded_days(), 0);
        assert!(!idx.insert(5, d).unwrap(), "loaded back from disk");
        let mut fresh = DigestIndex::new(dir.path().to_owned());
        assert!(!fresh.insert(6, d).unwrap());
    }
}
