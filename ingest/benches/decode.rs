//! Decoding throughput: candump parsing plus J1939 decoding (DM1 single and
//! BAM, meters, unrelated PGNs), without JSON output. Target: ≥ 5 million
//! lines per second on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetcare_ingest::j1939::J1939Decoder;
use fleetcare_ingest::{FrameId, candump};

#[path = "support/realistic_log.rs"]
mod realistic_log;

fn decode_log(c: &mut Criterion) {
    let mut log = String::new();
    realistic_log::write_log(&mut log, 0, 2_000);
    let lines = log.lines().count() as u64;
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(lines));
    group.bench_function("candump+j1939", |b| {
        let mut events = Vec::with_capacity(16);
        b.iter(|| {
            let mut decoder = J1939Decoder::default();
            let mut n = 0usize;
            for line in log.lines() {
                if let Ok(Some(r)) = candump::parse_line(line)
                    && let FrameId::Extended(_) = r.frame.id
                {
                    decoder.handle(&r.frame, &mut events);
                    n += events.len();
                    events.clear();
                }
            }
            n
        })
    });
    group.finish();
}

criterion_group!(benches, decode_log);
criterion_main!(benches);
