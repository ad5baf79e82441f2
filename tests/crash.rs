//! Issue 3: a child process ingesting a recording is SIGKILLed at random
//! points and restarted on the same --data, many times; afterwards every
//! message is stored exactly once, and the history equals that of a run
//! that was never interrupted.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fleetcare::store::Store;
use fleetcare_ingest::pipeline::PipelineConfig;

const TRUCKS: usize = 40;
const MINUTES: usize = 300;

/// A recording whose derived history is known: single-frame DM1s (a fault
/// per truck that comes and goes every 25 minutes) and engine hours.
fn write_recording(path: &Path) -> usize {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let t0 = 1_772_323_200i64;
    let mut n = 0;
    for minute in 0..MINUTES {
        for truck in 0..TRUCKS {
            let ts = t0 + (minute * 60) as i64 + truck as i64;
            let dm1 = if (minute / 25 + truck) % 2 == 0 {
                "00FF6E000001FFFF"
            } else {
                "00FF00000000FFFF"
            };
            let h = (40_000 + minute as u32).to_le_bytes();
            let payload = format!(
                "({ts}.000000) can0 18FECA00#{dm1}\n({ts}.500000) can0 18FEE500#{:02X}{:02X}{:02X}{:02X}FFFFFFFF\n",
                h[0], h[1], h[2], h[3]
            );
            let line = serde_json::json!({"topic": format!("fleet/acme/TRK-{truck:03}/can"), "payload": payload});
            writeln!(out, "{line}").unwrap();
            n += 1;
        }
    }
    out.flush().unwrap();
    n
}

fn replay(data: &Path, config: &Path, recording: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fleetcare"));
    c.arg("--data")
        .arg(data)
        .arg("--config")
        .arg(config)
        .arg("replay")
        .arg(recording);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn history(data: &Path) -> (u64, usize, usize, Vec<String>) {
    let store = Store::open_read_only(data, PipelineConfig::default()).unwrap();
    let snapshot = store.snapshot().unwrap();
    let count = |table| {
        snapshot
            .scan(table)
            .unwrap()
            .map(|lf| lf.collect().unwrap().height())
            .unwrap_or(0)
    };
    let seen = store
        .seen_vehicles()
        .iter()
        .map(|v| format!("{}:{}", v.vehicle, v.messages))
        .collect();
    (
        store.totals().messages_stored,
        count("faults"),
        count("meters"),
        seen,
    )
}

#[test]
fn sigkill_at_random_points_stores_every_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("rec.jsonl");
    let n = write_recording(&recording);
    // Small log segments: kills land before, during and after compactions.
    let config = dir.path().join("fleetcare.toml");
    std::fs::write(&config, "[store]\ncompact_log_bytes = 200000\n").unwrap();

    let clean = dir.path().join("clean");
    let started = Instant::now();
    assert!(
        replay(&clean, &config, &recording)
            .status()
            .unwrap()
            .success()
    );
    let full_run = started.elapsed();

    let crashed = dir.path().join("crashed");
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut kills = 0;
    let mut runs = 0;
    // Kill points are drawn from a window that starts at half a clean run.
    // Every killed run leaves less to do, so a later run can finish before
    // its kill point; then the window halves, so the kills keep landing
    // inside runs (recovery, compaction, de-duplication) however fast or
    // loaded the machine is.
    let mut window = full_run / 2;
    while runs < 40 || (kills < 10 && runs < 400) {
        runs += 1;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // A random point of a run: the kill is the experiment, not a wait
        // for something to happen.
        let at = window.mul_f64((rng % 1000) as f64 / 1000.0);
        let mut child = replay(&crashed, &config, &recording).spawn().unwrap();
        let deadline = Instant::now() + at;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_micros(200));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        } else {
            window = (window / 2).max(Duration::from_millis(1));
        }
        child.wait().unwrap();
    }
    eprintln!("crash test: {kills} of {runs} runs killed mid-way (a full run takes {full_run:?})");
    assert!(kills >= 10, "only {kills} runs were killed mid-way");
    assert!(
        replay(&crashed, &config, &recording)
            .status()
            .unwrap()
            .success()
    );

    let (stored, faults, meters, seen) = history(&crashed);
    assert_eq!(stored, n as u64, "every message stored exactly once");
    assert_eq!(history(&clean), (n as u64, faults, meters, seen));
    // 40 trucks × 300 minutes, a fault toggling every 25 minutes: 6 starts
    // and 6 ends on even trucks, 6 starts and 5 ends on odd ones.
    assert_eq!(faults, 20 * 12 + 20 * 11);
}
