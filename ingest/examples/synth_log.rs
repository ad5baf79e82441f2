//! Writes a realistic candump log of N seconds (default 60) to stdout, for
//! measuring `fleetcare decode` on large logs:
//! `cargo run --release -p fleetcare-ingest --example synth_log -- 100000 > big.log`

use std::io::Write;

#[path = "../benches/support/realistic_log.rs"]
mod realistic_log;

fn main() -> std::io::Result<()> {
    let seconds: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut chunk = String::new();
    for start in (0..seconds).step_by(1000) {
        chunk.clear();
        realistic_log::write_log(&mut chunk, start, (seconds - start).min(1000));
        out.write_all(chunk.as_bytes())?;
    }
    out.flush()
}
