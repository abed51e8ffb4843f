//! The `computer` device: `udevSetupSystemDev` / `udevGetDMIData`.

use crate::hostroot::HostRoot;
use crate::model::{Cap, Device, SystemCap};

const DMI_DEVPATH: &str = "/sys/devices/virtual/dmi/id";

/// `udevGetStringSysfsAttr` on the DMI device.
fn dmi_attr(dir: &std::path::Path, name: &str) -> Option<String> {
    crate::udev::string_attr_value(&dir.join(name))
}

/// `virUUIDParse`: 32 hex digits, '-' allowed between byte pairs,
/// surrounding blanks ignored.
pub(crate) fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let s = s.trim_start();
    let mut out = [0u8; 16];
    let mut chars = s.chars().peekable();
    for b in out.iter_mut() {
        while chars.peek() == Some(&'-') {
            chars.next();
        }
        let hi = chars.next()?.to_digit(16)?;
        let lo = chars.next()?.to_digit(16)?;
        *b = (hi * 16 + lo) as u8;
    }
    if chars.any(|c| !c.is_ascii_whitespace()) {
        return None;
    }
    Some(out)
}

fn uuid_valid(u: &[u8; 16]) -> bool {
    u.iter().any(|b| *b != u[0])
}

/// The host UUID as `virGetHostUUID` finds it: the DMI product UUID, or
/// a random one when it is missing or degenerate.
fn host_uuid(root: &HostRoot) -> [u8; 16] {
    for p in [
        "/sys/devices/virtual/dmi/id/product_uuid",
        "/sys/class/dmi/id/product_uuid",
    ] {
        if let Ok(b) = crate::hostroot::read(root.join(p)) {
            // virFileReadBufQuiet must return exactly 36 bytes.
            if b.len() >= 36 {
                if let Some(u) = std::str::from_utf8(&b[..36]).ok().and_then(parse_uuid) {
                    if uuid_valid(&u) {
                        return u;
                    }
                }
            }
            break;
        }
    }
    random_uuid()
}

fn random_uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    if let Ok(b) = std::fs::read("/proc/sys/kernel/random/uuid") {
        if let Some(p) = std::str::from_utf8(&b)
            .ok()
            .and_then(|s| parse_uuid(s.get(..36)?))
        {
            u = p;
        }
    }
    u
}

/// Build `computer`. Only x86 hosts read DMI data, like libvirt.
pub(crate) fn computer(root: &HostRoot) -> Device {
    let mut sys = SystemCap::default();
    let dmi = root.join(DMI_DEVPATH);
    // udev_device_new_from_syspath needs the device's uevent file; without
    // it libvirt leaves every field empty (and the UUID all zero).
    if cfg!(any(target_arch = "x86_64", target_arch = "x86"))
        && std::fs::metadata(dmi.join("uevent")).is_ok()
    {
        sys.product_name = dmi_attr(&dmi, "product_name");
        sys.hardware_vendor = dmi_attr(&dmi, "sys_vendor");
        sys.hardware_version = dmi_attr(&dmi, "product_version");
        sys.hardware_serial = dmi_attr(&dmi, "product_serial");
        sys.hardware_uuid = host_uuid(root);
        sys.firmware_vendor = dmi_attr(&dmi, "bios_vendor");
        sys.firmware_version = dmi_attr(&dmi, "bios_version");
        sys.firmware_release_date = dmi_attr(&dmi, "bios_date");
    }
    let mut d = Device::new("computer", Cap::System(Box::new(sys)));
    d.persistent = true;
    d.autostart = true;
    d
}
