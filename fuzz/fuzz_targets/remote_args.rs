//! The remote program's call arguments: the first byte picks one of the procedures the
//! daemon decodes, the rest is its argument payload (then handed on as the daemon does,
//! e.g. CREATE_XML's XML to the definition parser).
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtnodedevd_fuzz::{remote_call, REMOTE_PROCS};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, args)) = data.split_first() else {
        return;
    };
    remote_call(REMOTE_PROCS[sel as usize % REMOTE_PROCS.len()], args);
});
