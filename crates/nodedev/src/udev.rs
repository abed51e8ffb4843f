//! What libudev would tell libvirt about one sysfs device, read directly
//! from sysfs (`uevent`, `subsystem`, attributes) and the udev database
//! (`run/udev/data/<id>`), without libudev.

use std::path::{Path, PathBuf};

use crate::hostroot::HostRoot;

/// One device as seen through libudev's eyes.
#[derive(Debug)]
pub struct UdevDevice {
    /// Canonical path inside the host root.
    pub syspath: PathBuf,
    /// The same path as the host shows it (`/sys/devices/...`).
    pub host_syspath: String,
    pub sysname: String,
    pub subsystem: Option<String>,
    /// Properties: the `uevent` file, then the udev database's `E:` lines.
    props: Vec<(String, String)>,
    /// `/dev/...` links from the database's `S:` lines, sorted like libudev's
    /// unique lists.
    pub devlinks: Vec<String>,
}

impl UdevDevice {
    /// Load the device at canonical path `syspath` (inside `root`).
    /// Returns `None` when it is not a device libudev would accept
    /// (under `sys/devices` a device needs a `uevent` file).
    pub fn load(root: &HostRoot, syspath: &Path) -> Option<UdevDevice> {
        let uevent = match crate::hostroot::read(syspath.join("uevent")) {
            Ok(b) => lossy(b),
            Err(e) => {
                tracing::debug!("cannot read '{}/uevent': {e}", syspath.display());
                return None;
            }
        };
        let host_syspath = root.host_path(syspath);
        let sysname = syspath.file_name()?.to_string_lossy().replace('!', "/");
        let subsystem = std::fs::read_link(syspath.join("subsystem"))
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()));
        let mut dev = UdevDevice {
            syspath: syspath.to_path_buf(),
            host_syspath,
            sysname,
            subsystem,
            props: Vec::new(),
            devlinks: Vec::new(),
        };
        for line in uevent.lines() {
            if let Some((k, v)) = line.split_once('=') {
                dev.set_prop(k, v);
            }
        }
        if let Some(id) = dev.db_id() {
            let path = root.run_udev().join("data").join(id);
            if let Ok(db) = crate::hostroot::read(path).map(lossy) {
                for line in db.lines() {
                    if let Some(kv) = line.strip_prefix("E:") {
                        if let Some((k, v)) = kv.split_once('=') {
                            dev.set_prop(k, v);
                        }
                    } else if let Some(l) = line.strip_prefix("S:") {
                        dev.devlinks.push(format!("/dev/{l}"));
                    }
                }
                dev.devlinks.sort();
                dev.devlinks.dedup();
            }
        }
        Some(dev)
    }

    fn set_prop(&mut self, k: &str, v: &str) {
        // libudev makes the device node absolute whichever source names it (the kernel's
        // uevent or udevd's database both say `sda`, `bus/usb/001/003`).
        let absolute;
        let v = if k == "DEVNAME" && !v.starts_with('/') {
            absolute = format!("/dev/{v}");
            &absolute
        } else {
            v
        };
        if let Some(e) = self.props.iter_mut().find(|(ek, _)| ek == k) {
            e.1 = v.to_string();
        } else {
            self.props.push((k.to_string(), v.to_string()));
        }
    }

    /// The udev database file name for this device (see sd-device's
    /// `device_get_device_id`).
    fn db_id(&self) -> Option<String> {
        let major = self.prop("MAJOR").and_then(|m| m.parse::<u32>().ok());
        let minor = self.prop("MINOR").and_then(|m| m.parse::<u32>().ok());
        if let (Some(ma), Some(mi)) = (major, minor) {
            let _ = mi;
            if ma > 0 {
                let kind = if self.subsystem.as_deref() == Some("block") {
                    'b'
                } else {
                    'c'
                };
                return Some(format!("{kind}{ma}:{mi}"));
            }
        }
        if let Some(ifindex) = self.prop("IFINDEX").and_then(|i| i.parse::<u32>().ok()) {
            if ifindex > 0 {
                return Some(format!("n{ifindex}"));
            }
        }
        let sub = self.subsystem.as_deref()?;
        let name = self.syspath.file_name()?.to_string_lossy();
        Some(format!("+{sub}:{name}"))
    }

    /// `udev_device_get_property_value`.
    pub fn prop(&self, key: &str) -> Option<&str> {
        if key == "SUBSYSTEM" {
            return self.subsystem.as_deref();
        }
        self.props
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_prop(&self, key: &str) -> bool {
        self.prop(key).is_some()
    }

    /// `udev_device_get_devtype`.
    pub fn devtype(&self) -> Option<&str> {
        self.prop("DEVTYPE")
    }

    /// `udev_device_get_devnode`.
    pub fn devnode(&self) -> Option<&str> {
        self.prop("DEVNAME")
    }

    /// `udev_device_get_sysattr_value`, as a C string: see [`read_sysattr`].
    pub fn sysattr(&self, name: &str) -> Option<String> {
        read_sysattr(&self.syspath.join(name))
    }

    /// `udevGetStringSysfsAttr`: see [`string_attr_value`].
    pub fn string_attr(&self, name: &str) -> Option<String> {
        string_attr_value(&self.syspath.join(name))
    }
}

/// Text of a sysfs or udev database file; bytes that are not UTF-8 become
/// U+FFFD (libudev passes them through).
fn lossy(b: Vec<u8>) -> String {
    match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// `sd_device_get_sysattr_value` as libvirt uses it (a C string): the
/// attribute must be a regular file (a symlink, directory or a file without
/// the owner's read bit gives nothing, even to root); its content up to the
/// first NUL, trailing newlines and carriage returns removed. Bytes that are
/// not UTF-8 become U+FFFD (libvirt passes them through). Unreadable
/// attributes are logged at debug level.
pub fn read_sysattr(p: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let md = match std::fs::symlink_metadata(p) {
        Ok(md) => md,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!("cannot stat sysfs attribute '{}': {e}", p.display());
            }
            return None;
        }
    };
    if md.file_type().is_symlink() || md.is_dir() || md.permissions().mode() & 0o400 == 0 {
        tracing::debug!(
            "sysfs attribute '{}' is not a readable file; ignored",
            p.display()
        );
        return None;
    }
    if !md.is_file() {
        // Never open FIFOs or device nodes: they could block.
        tracing::debug!("sysfs attribute '{}' is not a regular file", p.display());
        return None;
    }
    let mut bytes = match crate::hostroot::read(p) {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!("cannot read sysfs attribute '{}': {e}", p.display());
            return None;
        }
    };
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    if let Some(i) = bytes.iter().position(|b| *b == 0) {
        bytes.truncate(i);
    }
    Some(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(
                "sysfs attribute '{}' is not UTF-8; invalid bytes replaced",
                p.display()
            );
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    })
}

/// `udevGetStringSysfsAttr`: [`read_sysattr`] with the control characters
/// of `virStringStripControlChars` removed (all below 0x20 except tab,
/// newline and carriage return); an empty value is absent.
pub fn string_attr_value(p: &Path) -> Option<String> {
    let mut v = read_sysattr(p)?;
    v.retain(|c| !matches!(c, '\u{1}'..='\u{1f}') || matches!(c, '\t' | '\n' | '\r'));
    if v.is_empty() {
        None
    } else {
        Some(v)
    }
}

/// `virStrToLong_ui` semantics: strtoul with the given base, then libvirt
/// accepts values whose upper half is all ones (so `-1` gives 4294967295).
/// Whole string must be consumed.
pub fn parse_ui(s: &str, base: u32) -> Option<u32> {
    let v = parse_strtoull(s, base)?;
    match v >> 32 {
        0 | 0xffff_ffff => Some(v as u32),
        _ => None,
    }
}

/// `virStrToLong_ui` with an end pointer: parse the longest numeric prefix
/// of `s` (strtoul rules) and return the value and the rest of the string.
/// `None` when no digit is consumed or the value does not fit.
pub fn parse_ui_prefix(s: &str, base: u32) -> Option<(u32, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (digits_start, radix) = radix_of(rest, base);
    let n = digits_start
        .bytes()
        .take_while(|b| (*b as char).is_digit(radix))
        .count();
    if n == 0 {
        return None;
    }
    let v = u64::from_str_radix(&digits_start[..n], radix).ok()?;
    let v = if neg { v.wrapping_neg() } else { v };
    let v = match v >> 32 {
        0 | 0xffff_ffff => v as u32,
        _ => return None,
    };
    Some((v, &digits_start[n..]))
}

/// `virStrToLong_i`: strtol, whole string, within i32.
pub fn parse_i(s: &str, base: u32) -> Option<i32> {
    let (neg, digits, radix) = split_number(s, base)?;
    let v = i64::from_str_radix(digits, radix).ok()?;
    let v = if neg { -v } else { v };
    i32::try_from(v).ok()
}

/// `virStrToLong_ull`: strtoull over the whole string (negative wraps).
pub fn parse_ull(s: &str, base: u32) -> Option<u64> {
    parse_strtoull(s, base)
}

/// strtol's reading of a number: leading blanks, a sign, the radix prefix; `None` when no
/// digits are left.
fn split_number(s: &str, base: u32) -> Option<(bool, &str, u32)> {
    let t = s.trim_start();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (digits, radix) = radix_of(rest, base);
    (!digits.is_empty()).then_some((neg, digits, radix))
}

fn radix_of(s: &str, base: u32) -> (&str, u32) {
    let has_hex_prefix = s.len() > 2
        && (s.starts_with("0x") || s.starts_with("0X"))
        && s.as_bytes()[2].is_ascii_hexdigit();
    match base {
        16 if has_hex_prefix => (&s[2..], 16),
        0 if has_hex_prefix => (&s[2..], 16),
        0 if s.len() > 1 && s.starts_with('0') => (&s[1..], 8),
        0 => (s, 10),
        b => (s, b),
    }
}

fn parse_strtoull(s: &str, base: u32) -> Option<u64> {
    let (neg, digits, radix) = split_number(s, base)?;
    let v = u64::from_str_radix(digits, radix).ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_like_libvirt() {
        assert_eq!(parse_ui("-1", 10), Some(4294967295));
        assert_eq!(parse_ui("0x1af4", 16), Some(0x1af4));
        assert_eq!(parse_ui("1af4", 16), Some(0x1af4));
        assert_eq!(parse_ui("12x", 10), None);
        assert_eq!(parse_i("-1", 10), Some(-1));
        assert_eq!(parse_ull("010", 0), Some(8));
        assert_eq!(parse_ull("536870912", 0), Some(536870912));
        assert_eq!(parse_ui_prefix("0.1.fe03", 16), Some((0, ".1.fe03")));
        assert_eq!(parse_ui_prefix("fe03\n", 16), Some((0xfe03, "\n")));
        assert_eq!(parse_ui_prefix(".1", 16), None);
    }
}
