//! PCI Vital Product Data images (a device's sysfs `vpd` file, written by its firmware).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = nodedev::parse_vpd(data);
});
