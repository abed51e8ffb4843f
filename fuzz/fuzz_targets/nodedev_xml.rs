//! Node-device definitions (nodedev-create / nodedev-define XML): the XML reader, the
//! definition parser and, with VALIDATE, the schema check; NodeDeviceUpdate's parse of an
//! existing device.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let _ = nodedev::parse::parse_xml(xml, "(node_device_definition)");
    let _ = nodedev::parse::parse_definition(xml, false);
    let _ = nodedev::parse::parse_definition(xml, true);
    let _ = nodedev::parse::parse_existing(xml);
});
