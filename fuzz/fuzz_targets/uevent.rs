//! Netlink uevent datagrams (kernel and udevd formats). What parses must name a device
//! under /sys: an absolute DEVPATH without `..`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtnodedevd::uevent;

fuzz_target!(|data: &[u8]| {
    if let Some(ev) = uevent::parse(data) {
        assert!(!ev.action.is_empty());
        for p in std::iter::once(&ev.devpath).chain(ev.devpath_old.as_ref()) {
            assert!(p.starts_with('/'));
            assert!(!p.split('/').any(|c| c == ".."));
        }
        assert!(ev.syspath().starts_with("/sys/"));
    }
});
