#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fleetcare_ingest_fuzz::signals::check(data));
