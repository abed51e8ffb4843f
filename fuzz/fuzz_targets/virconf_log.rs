//! libvirt's log filter and output syntax (`log_filters`, `log_outputs`, LIBVIRT_LOG_*,
//! virt-admin's daemon-log-filters/-outputs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = virconf::log::parse_log_filters(&s);
    let _ = virconf::log::parse_log_outputs(&s);
});
