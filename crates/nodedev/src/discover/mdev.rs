//! Mediated devices and their parents: `udevProcessMediatedDevice`,
//! `udevProcessMdevParent` and virmdev.c's `virMediatedDeviceGetMdevTypes`.

use std::path::Path;

use super::generate_name;
use crate::hostroot::HostRoot;
use crate::model::{Cap, MdevCap, MdevParentCap, MdevType};
use crate::sysdir::SysDir;
use crate::udev::{parse_ui, UdevDevice};

/// `virFileReadValueString` limit.
const READ_VALUE_STRING_MAX: u64 = 4096;

/// `virFileReadValueString`: `Ok(None)` when missing, one trailing newline
/// stripped; `Err` when unreadable.
fn read_value(dir: &SysDir, name: &str) -> Result<Option<String>, ()> {
    let b = match dir.read(name, READ_VALUE_STRING_MAX + 1) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(()),
    };
    if b.len() as u64 > READ_VALUE_STRING_MAX {
        return Err(());
    }
    let mut s = String::from_utf8_lossy(&b).into_owned();
    // The value is a C string: it ends at the first NUL.
    if let Some(i) = s.find('\0') {
        s.truncate(i);
    }
    if s.ends_with('\n') {
        s.pop();
    }
    Ok(Some(s))
}

/// `virMediatedDeviceTypeReadAttrs`: `name` optional, `device_api` and
/// `available_instances` required.
fn read_type(dir: &SysDir, id: String) -> Result<MdevType, ()> {
    let at = |attr: &str| format!("mdev_supported_types/{id}/{attr}");
    let name = read_value(dir, &at("name"))?;
    let device_api = Some(read_value(dir, &at("device_api"))?.ok_or(())?);
    let avail = read_value(dir, &at("available_instances"))?.ok_or(())?;
    // virStrToLong_uip: no sign, whole string, base 10.
    if avail.contains('-') {
        return Err(());
    }
    let available_instances = parse_ui(&avail, 10).ok_or(())?;
    Ok(MdevType {
        id,
        name,
        device_api,
        available_instances,
    })
}

/// `virMediatedDeviceGetMdevTypes`: `mdev_supported_types/*` in directory
/// order. Any unreadable type fails the whole list (and libvirt then drops
/// the device, or fails the XML query on refresh).
pub(crate) fn mdev_types(dir: &SysDir) -> Result<Vec<MdevType>, ()> {
    let ids = match dir.entries("mdev_supported_types") {
        Ok(ids) => ids,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(_) => return Err(()),
    };
    ids.into_iter().map(|id| read_type(dir, id)).collect()
}

/// The sysfs parent libudev reports: the nearest ancestor directory below
/// `sys/devices` that has a `uevent` file.
fn udev_parent(root: &HostRoot, syspath: &Path) -> Option<std::path::PathBuf> {
    let top = root.sys().join("devices");
    let mut p = syspath.parent();
    while let Some(pp) = p {
        if !pp.starts_with(&top) || pp == top {
            return None;
        }
        if pp.join("uevent").is_file() {
            return Some(pp.to_path_buf());
        }
        p = pp.parent();
    }
    None
}

/// `udevProcessMediatedDevice`: named `mdev_<uuid>_<parent address>`.
/// libvirt waits up to a second for a missing `mdev_type` link (a uevent
/// race on creation); enumeration here does not wait.
pub(super) fn mdev_device(root: &HostRoot, dev: &UdevDevice) -> Option<(String, Cap)> {
    let type_id = root
        .canonicalize(&dev.syspath.join("mdev_type"))?
        .file_name()?
        .to_string_lossy()
        .into_owned();
    let uuid = dev.sysname.clone();
    // virMediatedDeviceGetIOMMUGroupNum looks the device up by UUID on the
    // mdev bus; an unparsable or out-of-range group fails the device.
    let grp = root
        .join("/sys/bus/mdev/devices")
        .join(&uuid)
        .join("iommu_group");
    let target = root.canonicalize(&grp)?;
    let iommu_group = parse_ui(&target.file_name()?.to_string_lossy(), 10)?;
    if iommu_group > i32::MAX as u32 {
        return None;
    }
    let parent = udev_parent(root, &dev.syspath)?;
    let parent_addr = parent.file_name()?.to_string_lossy().into_owned();
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, Some(&parent_addr));
    let cap = MdevCap {
        type_id,
        uuid,
        parent_addr,
        iommu_group,
        attrs: Vec::new(),
    };
    Some((name, Cap::Mdev(Box::new(cap))))
}

/// `virMediatedDeviceParentGetAddress`: the name of the first
/// `class/mdev_bus` entry (directory order) that resolves to the device.
fn parent_address(root: &HostRoot, syspath: &Path) -> Option<String> {
    let dir = root.join("/sys/class/mdev_bus");
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        if root.canonicalize(&e.path()).as_deref() == Some(syspath) {
            return Some(e.file_name().to_string_lossy().into_owned());
        }
    }
    None
}

/// `udevProcessMdevParent`: a device of subsystem `mtty` (the sample
/// driver) shown with a top-level `mdev_types` capability.
pub(super) fn mdev_parent(root: &HostRoot, dev: &UdevDevice) -> Option<(String, Cap)> {
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    let Some(address) = parent_address(root, &dev.syspath) else {
        tracing::debug!("Unable to find address for mdev parent device '{name}'");
        return None;
    };
    let mdev_types = mdev_types(&SysDir::open(&dev.syspath)).ok()?;
    let cap = MdevParentCap {
        address,
        mdev_types,
    };
    Some((name, Cap::MdevTypes(Box::new(cap))))
}
