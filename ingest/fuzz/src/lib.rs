//! The checks behind the fuzz targets of `fleetcare-ingest`.
//!
//! Each module has one `check(&[u8])` that panics when an invariant of its
//! parser breaks. The targets in `fuzz_targets/` only call it, so that
//! `tests/regressions.rs` can replay saved crash inputs on stable Rust
//! through exactly the same code.

pub mod candump;
pub mod dm;
pub mod signals;
pub mod telemetry;
pub mod transport;
