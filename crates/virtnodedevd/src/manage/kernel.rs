//! What mdevctl does in sysfs, done directly when it is not installed: create a mediated
//! device through its parent's type, write its attributes, wait for the new device.

use std::time::{Duration, Instant};

use nodedev::{Device, HostRoot};
use tracing::{debug, warn};

use super::ManageError;
use crate::driver::{DeviceList, Driver};

/// How long a created device may take to appear (libvirt's LINUX_NEW_DEVICE_WAIT_TIME);
/// `VIRTNODEDEVD_NEW_DEVICE_WAIT_MS` overrides it (tests).
const NEW_DEVICE_WAIT: Duration = Duration::from_secs(60);

fn new_device_wait() -> Duration {
    std::env::var("VIRTNODEDEVD_NEW_DEVICE_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(NEW_DEVICE_WAIT, Duration::from_millis)
}

/// How mdevctl reports a failure on stderr (anyhow's `Error: ...`).
pub(super) fn mdevctl_msg(e: impl std::fmt::Display) -> String {
    format!("Error: {e}\n")
}

/// The parent device of a definition, by the address mdevctl uses.
pub(super) fn parent_by_addr<'a>(list: &'a DeviceList, addr: &str) -> Option<&'a Device> {
    list.iter()
        .find(|p| p.mdev_parent_address().as_deref() == Some(addr))
}

/// What `mdevctl start` checks and does: the parent offers the type with an instance
/// left and the UUID is free; then the UUID goes to the type's `create`.
pub(super) fn start_mdev(
    root: &HostRoot,
    parent: &Device,
    type_id: &str,
    uuid: &str,
) -> Result<(), ManageError> {
    let fail = |m: String| ManageError::internal(format!("Unable to start mediated device: {m}"));
    let addr = parent.mdev_parent_address().unwrap_or_default();
    let Some(sys) = parent.sysfs_path() else {
        return Err(fail(mdevctl_msg(format!(
            "Parent {addr} is not currently registered for mdev support"
        ))));
    };
    let types = root.join(sys).join("mdev_supported_types");
    if !types.is_dir() {
        return Err(fail(mdevctl_msg(format!(
            "Parent {addr} is not currently registered for mdev support"
        ))));
    }
    let tdir = types.join(type_id);
    if !tdir.is_dir() {
        return Err(fail(mdevctl_msg(format!(
            "MDEV type {type_id} is not supported by parent {addr}"
        ))));
    }
    if root.join("/sys/bus/mdev/devices").join(uuid).exists() {
        return Err(fail(mdevctl_msg(format!("Device {uuid} already exists"))));
    }
    let avail = std::fs::read_to_string(tdir.join("available_instances"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    if avail == Some(0) {
        return Err(fail(mdevctl_msg(format!(
            "No available instances of {type_id} on {addr}"
        ))));
    }
    debug!(uuid, type_id, parent = addr, "creating mediated device");
    std::fs::write(tdir.join("create"), uuid).map_err(|e| fail(mdevctl_msg(e)))
}

/// Waits for `found` to name a device, reading the device at `syspath` directly when the
/// uevent does not come (no monitor, e.g. a fake root).
pub(super) fn wait_for(
    driver: &Driver,
    syspath: impl Fn() -> Option<String>,
    found: impl Fn(&DeviceList) -> Option<String>,
) -> Option<String> {
    let start = Instant::now();
    let limit = new_device_wait();
    let mut read_directly = false;
    loop {
        if let Some(n) = found(&driver.devices()) {
            return Some(n);
        }
        if start.elapsed() >= limit {
            return None;
        }
        if !read_directly && start.elapsed() >= Duration::from_secs(2) {
            if let Some(p) = syspath() {
                read_directly = true;
                let root = driver.root().clone();
                driver.apply(|state| {
                    match nodedev::discover_device(&root, &p, |x| state.name_at(x)) {
                        Some(dev) => vec![state.add(dev)],
                        None => Vec::new(),
                    }
                });
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(super) fn mdev_syspath(root: &HostRoot, uuid: &str) -> Option<String> {
    let p = root.canonicalize(&root.join("/sys/bus/mdev/devices").join(uuid))?;
    let rel = p.strip_prefix(root.path()).ok()?;
    Some(format!("/{}", rel.display()))
}

pub(super) fn find_mdev(list: &DeviceList, uuid: &str, addr: &str) -> Option<String> {
    list.iter()
        .find(|d| {
            d.is_active()
                && d.mdev()
                    .is_some_and(|m| m.uuid == uuid && m.parent_addr == addr)
        })
        .map(|d| d.name().to_owned())
}

/// Writes a running mdev's attributes to sysfs in order, as mdevctl does when it starts a
/// device with them.
pub(super) fn set_live_attrs(
    root: &HostRoot,
    uuid: &str,
    attrs: &[(String, String)],
) -> Result<(), String> {
    let dir = root.join("/sys/bus/mdev/devices").join(uuid);
    for (n, v) in attrs {
        if n.is_empty() || n.contains('/') || n == "." || n == ".." {
            return Err(mdevctl_msg(format!("Invalid attribute name {n:?}")));
        }
        let path = dir.join(n);
        if !path.is_file() {
            return Err(mdevctl_msg(format!(
                "Invalid attribute {n} for device {uuid}"
            )));
        }
        std::fs::write(&path, v)
            .map_err(|e| mdevctl_msg(format!("Failed to write {v} to attribute {n}: {e}")))?;
    }
    Ok(())
}

/// mdevctl writes the definition's attributes to the new device.
pub(super) fn write_attrs(root: &HostRoot, uuid: &str, attrs: &[(String, String)]) {
    let dir = root.join("/sys/bus/mdev/devices").join(uuid);
    for (n, v) in attrs {
        if n.contains('/') {
            continue;
        }
        if let Err(e) = std::fs::write(dir.join(n), v) {
            warn!(uuid, attr = n, "cannot set mdev attribute: {e}");
        }
    }
}
