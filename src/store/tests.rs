use super::*;

fn msg(topic: &str, payload: &str) -> (String, String) {
    (topic.to_owned(), payload.to_owned())
}

/// A day of one truck: a fault that comes and goes, meters, garbage.
fn day_of_messages() -> Vec<(String, String)> {
    let mut v = Vec::new();
    let t0 = 1_772_323_200i64; // 2026-03-01T00:00:00Z
    for minute in 0..120i64 {
        let ts = t0 + minute * 60;
        let dm1 = if (minute / 20) % 2 == 0 {
            "00FF6E000001FFFF"
        } else {
            "00FF00000000FFFF"
        };
        let hours = 20_000 + minute as u32; // 0.05 h per minute: a running engine
        let h = hours.to_le_bytes();
        v.push(msg(
            "fleet/acme/TRK-001/can",
            &format!(
                "({ts}.000000) can0 18FECA00#{dm1}\n({ts}.100000) can0 18FEE500#{:02X}{:02X}{:02X}{:02X}FFFFFFFF\n",
                h[0], h[1], h[2], h[3]
            ),
        ));
    }
    v.push(msg(
        "fleet/acme/TRK 9/can",
        "(1.0) can0 18FECA00#00FF00000000FFFF",
    ));
    v.push(msg("fleet/acme/TRK-002/telemetry", "{not json"));
    v
}

fn as_messages(v: &[(String, String)]) -> Vec<Message<'_>> {
    v.iter()
        .enumerate()
        .map(|(i, (t, p))| Message {
            topic: t,
            payload: p.as_bytes(),
            received: Timestamp::from_micros(1_800_000_000_000_000 + i as i64),
        })
        .collect()
}

fn rows(store: &Store, table: &str) -> usize {
    count(&store.snapshot().unwrap(), table)
}

fn count(snapshot: &Snapshot, table: &str) -> usize {
    snapshot
        .scan(table)
        .unwrap()
        .map(|lf| lf.collect().unwrap().height())
        .unwrap_or(0)
}

#[test]
fn replaying_twice_stores_each_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = day_of_messages();
    let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    let mut records = Vec::new();
    let first = store.ingest(&as_messages(&data), &mut records).unwrap();
    assert!(first.iter().all(|o| *o == Outcome::Stored));
    let again = store.ingest(&as_messages(&data), &mut records).unwrap();
    assert!(again.iter().all(|o| *o == Outcome::Duplicate));
    store.close().unwrap();
    // After compaction and a restart the digests come from disk.
    let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    let third = store.ingest(&as_messages(&data), &mut records).unwrap();
    assert!(third.iter().all(|o| *o == Outcome::Duplicate));
    let t = store.totals();
    assert_eq!(t.messages_stored, data.len() as u64);
    assert_eq!(t.duplicates, 2 * data.len() as u64);
    assert_eq!(t.dead_letters.get("topic"), Some(&1));
    assert_eq!(t.dead_letters.get("telemetry"), Some(&1));
}

#[test]
fn the_log_is_part_of_the_history_before_and_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let data = day_of_messages();
    let (first, second) = data.split_at(data.len() / 2);
    let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    store.ingest(&as_messages(first), &mut Vec::new()).unwrap();
    store.compact().unwrap();
    store.ingest(&as_messages(second), &mut Vec::new()).unwrap();
    // Half in Parquet, half only in the log: a reader beside the writer
    // sees both, as the writer itself does.
    let reader = Store::open_read_only(dir.path(), PipelineConfig::default()).unwrap();
    assert_eq!(rows(&reader, "faults"), 6);
    assert_eq!(rows(&reader, "meters"), 12);
    assert_eq!(rows(&store, "faults"), 6);
    store.compact().unwrap();
    assert_eq!(rows(&store, "faults"), 6, "nothing twice once compacted");
    assert_eq!(rows(&store, "meters"), 12);
}

#[test]
fn history_lands_in_parquet_with_state_changes_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = day_of_messages();
    let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    store.ingest(&as_messages(&data), &mut Vec::new()).unwrap();
    store.compact().unwrap();
    // 120 DM1s: the fault starts at minutes 0, 40, 80 and ends at 20, 60, 100.
    assert_eq!(rows(&store, "faults"), 6);
    // A reading per 10 minutes (the first one included) out of 120.
    assert_eq!(rows(&store, "meters"), 12);
    assert_eq!(rows(&store, "dead_letters"), 2);
    let faults = store
        .snapshot()
        .unwrap()
        .scan("faults")
        .unwrap()
        .unwrap()
        .collect()
        .unwrap();
    let events = faults.column("event").unwrap().str().unwrap();
    assert_eq!(events.iter().filter(|e| *e == Some("start")).count(), 3);
    assert!(dir.path().join("faults/day=2026-03-01").is_dir());
    assert_eq!(
        store.seen_vehicles().len(),
        2,
        "TRK-001 and TRK-002 (its payload was bad, its topic fine)"
    );
}

#[test]
fn a_crash_before_compaction_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = day_of_messages();
    let (half, rest) = data.split_at(60);
    {
        let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
        store.ingest(&as_messages(half), &mut Vec::new()).unwrap();
        // Dropped without compaction: the process died.
    }
    let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    let outcomes = store.ingest(&as_messages(&data), &mut Vec::new()).unwrap();
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Stored).count(),
        rest.len()
    );
    store.compact().unwrap();
    assert_eq!(store.totals().messages_stored, data.len() as u64);
    assert_eq!(rows(&store, "faults"), 6);
    assert_eq!(rows(&store, "meters"), 12);
}

#[test]
fn a_torn_log_tail_and_orphan_parts_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = day_of_messages();
    {
        let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
        store
            .ingest(&as_messages(&data[..10]), &mut Vec::new())
            .unwrap();
    }
    // Half a record at the end of the log (in its zero padding), and a part
    // of an unfinished compaction.
    let seg = wal::segment_path(&dir.path().join("wal"), 1);
    let end = wal::read_segment(&fs::read(&seg).unwrap()).1 as u64;
    let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[200, 0, 0, 0, 1, 2, 3], end).unwrap();
    let orphan = dir
        .path()
        .join("faults/day=2026-03-01/part-00000007.parquet");
    fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    fs::write(&orphan, b"junk").unwrap();
    let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    assert!(!orphan.exists());
    assert_eq!(store.totals().messages_stored, 10);
    let outcomes = store
        .ingest(&as_messages(&data[..11]), &mut Vec::new())
        .unwrap();
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Stored).count(),
        1
    );
    store.compact().unwrap();
    drop(store);
    let store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    assert_eq!(store.totals().messages_stored, 11);
}

/// A crash between starting a new log segment and finishing the compaction
/// leaves a completed segment that ends in the writer's zero padding: that
/// is its normal end. Anything else after its records is damage.
#[test]
fn a_completed_segment_may_end_in_padding_but_not_in_junk() {
    let dir = tempfile::tempdir().unwrap();
    let data = day_of_messages();
    {
        let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
        store
            .ingest(&as_messages(&data[..10]), &mut Vec::new())
            .unwrap();
    }
    let wal_dir = dir.path().join("wal");
    let first = wal::segment_path(&wal_dir, 1);
    let bytes = fs::read(&first).unwrap();
    let end = wal::read_segment(&bytes).1;
    assert!(bytes.len() > end && wal::is_padding(&bytes[end..]));
    // The segment the crashed compaction had started.
    fs::write(wal::segment_path(&wal_dir, 2), b"").unwrap();
    let store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    assert_eq!(store.totals().messages_stored, 10);
    drop(store);

    let f = fs::OpenOptions::new().write(true).open(&first).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &[1], end as u64 + 100).unwrap();
    let err = Store::open(dir.path(), PipelineConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[test]
fn one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    let second = Store::open(dir.path(), PipelineConfig::default()).unwrap_err();
    assert!(matches!(second, StoreError::Locked(_)), "{second}");
    assert!(
        second
            .to_string()
            .contains("in use by another fleetcare process")
    );
    // Readers do not need the lock.
    assert!(Store::open_read_only(dir.path(), PipelineConfig::default()).is_ok());
}

#[test]
fn a_batch_is_durable_before_it_is_acknowledged_and_compaction_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data = day_of_messages();
    let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    // Small enough that many batches start a new log segment.
    store.set_compact_bytes(4 << 10);
    let mut handed = Vec::new();
    for (i, chunk) in data.chunks(7).enumerate() {
        let mut records = Vec::new();
        let outcomes = store
            .ingest_acking(&as_messages(chunk), &mut records, |o| {
                // What `durable` acknowledges is in the log: a reader that
                // opens the store now counts it.
                let logged = Store::open_read_only(dir.path(), PipelineConfig::default())
                    .unwrap()
                    .totals()
                    .messages_stored;
                let stored = o.iter().filter(|o| **o == Outcome::Stored).count() as u64;
                handed.push((i, o.len(), stored, logged));
            })
            .unwrap();
        assert_eq!(outcomes.len(), chunk.len());
    }
    let batches: Vec<usize> = handed.iter().map(|(i, ..)| *i).collect();
    assert_eq!(batches, (0..data.chunks(7).len()).collect::<Vec<_>>());
    assert_eq!(
        handed.iter().map(|(_, n, ..)| n).sum::<usize>(),
        data.len(),
        "every message's outcome is handed over with its batch"
    );
    let mut stored_so_far = 0;
    for &(i, _, stored, logged) in &handed {
        stored_so_far += stored;
        assert_eq!(logged, stored_so_far, "batch {i}");
    }
    drop(store);
    let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    let again = store.ingest(&as_messages(&data), &mut Vec::new()).unwrap();
    assert!(again.iter().all(|o| *o == Outcome::Duplicate));
    store.compact().unwrap();
    assert_eq!(rows(&store, "faults"), 6);
    assert_eq!(rows(&store, "meters"), 12);
    assert_eq!(rows(&store, "dead_letters"), 2);
}

/// Issue 20 (finding 7): the service's reader replays the log once, then
/// only what was appended since its last refresh.
#[test]
fn a_reader_replays_only_what_was_appended_since_its_last_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = day_of_messages();
    let (first, second) = data.split_at(60);
    let reader = StoreReader::new(dir.path(), PipelineConfig::default());
    // Before any writer: an empty history, not an error.
    let empty = reader.snapshot().unwrap();
    assert_eq!(empty.totals().messages_stored, 0);
    assert_eq!(count(&empty, "meters"), 0);

    let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    store.ingest(&as_messages(first), &mut Vec::new()).unwrap();
    let early = reader.snapshot().unwrap();
    assert_eq!(early.totals().messages_stored, first.len() as u64);
    let meters_early = count(&early, "meters");
    assert_eq!(meters_early, 6);
    let after_first = reader.stats();
    assert_eq!(after_first.records, first.len() as u64);

    // Nothing new: nothing read.
    let again = reader.snapshot().unwrap();
    assert_eq!(reader.stats(), after_first);
    assert_eq!(count(&again, "meters"), meters_early);

    store.ingest(&as_messages(second), &mut Vec::new()).unwrap();
    let late = reader.snapshot().unwrap();
    assert_eq!(late.totals().messages_stored, data.len() as u64);
    assert_eq!(count(&late, "faults"), 6);
    assert_eq!(count(&late, "meters"), 12);
    assert_eq!(count(&late, "dead_letters"), 2);
    assert_eq!(late.seen_vehicles().len(), 2);
    let stats = reader.stats();
    assert_eq!(stats.records, data.len() as u64, "each record decoded once");
    assert_eq!(stats.rebuilds, 1, "the checkpoint read once");
    let logged =
        wal::read_segment(&fs::read(wal::segment_path(&dir.path().join("wal"), 1)).unwrap()).1;
    assert_eq!(stats.bytes, logged as u64, "each byte of the log read once");
    // A snapshot does not change once made.
    assert_eq!(count(&early, "meters"), meters_early);
    assert_eq!(early.totals().messages_stored, first.len() as u64);
}

/// A compaction between two refreshes: the reader reads the new
/// checkpoint and the (new, short) log, nothing twice; a snapshot made
/// before the compaction still reads what it held.
#[test]
fn a_reader_follows_compactions_between_its_reads() {
    let dir = tempfile::tempdir().unwrap();
    let data = day_of_messages();
    let (first, rest) = data.split_at(40);
    let (second, third) = rest.split_at(40);
    let reader = StoreReader::new(dir.path(), PipelineConfig::default());
    let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    store.ingest(&as_messages(first), &mut Vec::new()).unwrap();
    let before = reader.snapshot().unwrap();
    let rows_before = (count(&before, "faults"), count(&before, "meters"));

    store.compact().unwrap();
    store.ingest(&as_messages(second), &mut Vec::new()).unwrap();
    let middle = reader.snapshot().unwrap();
    assert_eq!(middle.totals().messages_stored, 80);
    assert_eq!(reader.stats().rebuilds, 2);
    assert_eq!(
        reader.stats().records,
        80,
        "after the compaction only the new log is read"
    );
    assert_eq!(
        (count(&before, "faults"), count(&before, "meters")),
        rows_before,
        "the old snapshot leaves out the new part"
    );

    // Two compactions, the second inside an ingest (a small log), before
    // the next read.
    store.compact().unwrap();
    store.set_compact_bytes(1);
    store.ingest(&as_messages(third), &mut Vec::new()).unwrap();
    let after = reader.snapshot().unwrap();
    assert_eq!(after.totals().messages_stored, data.len() as u64);
    assert_eq!(count(&after, "faults"), 6, "nothing twice");
    assert_eq!(count(&after, "meters"), 12);
    assert_eq!(count(&after, "dead_letters"), 2);
    assert_eq!(reader.stats().rebuilds, 3);
    // And what the writer itself sees.
    assert_eq!(rows(&store, "faults"), 6);
    assert_eq!(rows(&store, "meters"), 12);
}

/// A record not yet whole at the end of the log (the writer is writing
/// it, or a crash tore it) is not read; the reader tries again from the
/// same place and takes it once it is whole.
#[test]
fn a_reader_ignores_a_torn_tail_until_it_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = day_of_messages();
    let mut store = Store::open(dir.path(), PipelineConfig::default()).unwrap();
    store
        .ingest(&as_messages(&data[..10]), &mut Vec::new())
        .unwrap();
    let seg = wal::segment_path(&dir.path().join("wal"), 1);
    let ten = wal::read_segment(&fs::read(&seg).unwrap()).1;
    store
        .ingest(&as_messages(&data[10..11]), &mut Vec::new())
        .unwrap();
    let bytes = fs::read(&seg).unwrap();
    let eleven = wal::read_segment(&bytes).1;
    let record = bytes[ten..eleven].to_vec();
    // The eleventh record as the writer leaves it half written.
    let f = fs::OpenOptions::new().write(true).open(&seg).unwrap();
    let zeros = vec![0u8; record.len()];
    std::os::unix::fs::FileExt::write_all_at(&f, &zeros, ten as u64).unwrap();
    let half = record.len() / 2;
    std::os::unix::fs::FileExt::write_all_at(&f, &record[..half], ten as u64).unwrap();

    let reader = StoreReader::new(dir.path(), PipelineConfig::default());
    assert_eq!(reader.snapshot().unwrap().totals().messages_stored, 10);
    assert_eq!(reader.snapshot().unwrap().totals().messages_stored, 10);
    std::os::unix::fs::FileExt::write_all_at(&f, &record[half..], (ten + half) as u64).unwrap();
    let whole = reader.snapshot().unwrap();
    assert_eq!(whole.totals().messages_stored, 11);
    assert_eq!(reader.stats().records, 11);
    assert_eq!(reader.stats().rebuilds, 1);

    // Once a later segment exists, this one is complete: anything but
    // padding after its records is damage, reported as recovery does.
    std::os::unix::fs::FileExt::write_all_at(&f, &[7], (eleven + 100) as u64).unwrap();
    fs::write(wal::segment_path(&dir.path().join("wal"), 2), b"").unwrap();
    let err = reader.snapshot().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

/// Issue 20 (finding 9): what the store creates is its user's only —
/// folders 0700, files 0600 — and a data directory others could enter
/// (made by an older version, or by the database first) is closed when a
/// writer opens it.
#[test]
fn the_store_is_readable_by_its_user_only() {
    use std::os::unix::fs::PermissionsExt;
    fn modes(dir: &Path, out: &mut Vec<(PathBuf, u32)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::metadata(&path).unwrap();
            out.push((path.clone(), meta.permissions().mode() & 0o777));
            if meta.is_dir() {
                modes(&path, out);
            }
        }
    }
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("new/data");
    let data = day_of_messages();
    let mut store = Store::open(&dir, PipelineConfig::default()).unwrap();
    store
        .ingest(&as_messages(&data[..60]), &mut Vec::new())
        .unwrap();
    store.compact().unwrap();
    store
        .ingest(&as_messages(&data[60..]), &mut Vec::new())
        .unwrap();
    store.close().unwrap();
    let mut found = Vec::new();
    modes(&dir, &mut found);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(
        mode(&parent.path().join("new")),
        0o700,
        "parents it made too"
    );
    let (dirs, files): (Vec<_>, Vec<_>) = found.iter().partition(|(p, _)| p.is_dir());
    for table in ["wal", "dedupe", "faults", "meters", "meter_days"] {
        assert!(dirs.iter().any(|(p, _)| p.ends_with(table)), "{table}");
    }
    assert!(files.iter().any(|(p, _)| p.ends_with("checkpoint.json")));
    assert!(files.iter().any(|(p, _)| p.ends_with("LOCK")));
    assert!(
        files
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|e| e == "parquet"))
    );
    for (path, m) in &dirs {
        assert_eq!(*m, 0o700, "{}", path.display());
    }
    for (path, m) in &files {
        assert_eq!(*m, 0o600, "{}", path.display());
    }

    // A directory others can read is closed when the store is opened for
    // writing, and left alone by a reader.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    Store::open_read_only(&dir, PipelineConfig::default()).unwrap();
    StoreReader::new(&dir, PipelineConfig::default())
        .snapshot()
        .unwrap();
    assert_eq!(mode(&dir), 0o755, "a reader changes nothing");
    drop(Store::open(&dir, PipelineConfig::default()).unwrap());
    assert_eq!(mode(&dir), 0o700);
}

/// Issue 20: the seen-vehicle list is bounded as the pipeline's states are,
/// also for vehicles whose messages are all dead letters.
#[test]
fn seen_vehicles_stop_at_the_tracked_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = PipelineConfig {
        max_tracked_vehicles: 5,
        ..PipelineConfig::default()
    };
    let mut store = Store::open(dir.path(), config).unwrap();
    let data: Vec<(String, String)> = (0..50)
        .map(|i| msg(&format!("fleet/junk/J{i}/telemetry"), "{not json"))
        .collect();
    store.ingest(&as_messages(&data), &mut Vec::new()).unwrap();
    let seen = store.seen_vehicles();
    assert_eq!(seen.len(), 5);
    assert!(seen.iter().all(|v| v.messages == 1), "{seen:?}");
    assert_eq!(rows(&store, "dead_letters"), 50);
}
