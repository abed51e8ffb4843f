//! `fuzzcheck::xdr_decode` (crates/fuzzcheck, where the test suite replays the committed inputs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fuzz_support::worker_stack_overflow_is_a_crash();
    fuzzcheck::xdr_decode(data);
});
