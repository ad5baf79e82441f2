//! Replays, on stable Rust, every input saved under `regressions/<target>/`
//! (inputs a fuzzer once crashed on) and `seeds/<target>/` through the
//! checks the fuzz targets run.

use std::fs;
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["regressions", "seeds"] {
        let dir = root.join(folder).join(target);
        // A target that never crashed has no regressions folder.
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<_> = entries
            .map(|e| e.expect("readable folder").path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let data = fs::read(&path).expect("readable input");
            // Shown only when the check below panics.
            eprintln!("replaying {}", path.display());
            check(&data);
        }
    }
}

#[test]
fn candump() {
    replay("candump", fleetcare_ingest_fuzz::candump::check);
}

#[test]
fn telemetry() {
    replay("telemetry", fleetcare_ingest_fuzz::telemetry::check);
}

#[test]
fn transport() {
    replay("transport", fleetcare_ingest_fuzz::transport::check);
}

#[test]
fn dm() {
    replay("dm", fleetcare_ingest_fuzz::dm::check);
}

#[test]
fn signals() {
    replay("signals", fleetcare_ingest_fuzz::signals::check);
}
