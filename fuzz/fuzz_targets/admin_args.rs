//! `fuzzcheck::admin_args` (crates/fuzzcheck, where the test suite replays the committed inputs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| fuzzcheck::admin_args(data));
