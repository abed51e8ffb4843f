//! The admin program's call arguments: the first byte picks the procedure (1..=19), the
//! rest is its argument payload (logging calls go on to the log filter/output parsers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtnodedevd_fuzz::admin_call;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, args)) = data.split_first() else {
        return;
    };
    admin_call(1 + (sel % 19) as i32, args);
});
