//! s390 channel subsystem and AP crypto devices: `udevProcessCCW`,
//! `udevProcessCCWGroup`, `udevProcessCSS`, `udevProcessAPCard`, `udevProcessAPQueue`,
//! `udevProcessAPMatrix`; and vDPA (`udevProcessVDPA`).

use super::generate_name;
use super::mdev::mdev_types;
use std::path::Path;

use crate::hostroot::HostRoot;
use crate::model::{
    Cap, CcwAddr, CcwCap, CcwGroupCap, CcwGroupMember, CcwGroupType, CcwState, CssCap,
};
use crate::sysdir::SysDir;
use crate::udev::{parse_i, parse_ui, parse_ui_prefix, UdevDevice};

/// `virCCWDeviceAddressParseFromString`: three hex numbers, each followed
/// by any one separator character (trailing text after the third ignored).
pub(crate) fn parse_ccw(s: &str) -> Option<CcwAddr> {
    let (cssid, rest) = parse_ui_prefix(s, 16)?;
    let (ssid, rest) = parse_ui_prefix(rest.get(1..)?, 16)?;
    let (devno, _) = parse_ui_prefix(rest.get(1..)?, 16)?;
    Some(CcwAddr { cssid, ssid, devno })
}

fn last_component(dev: &UdevDevice) -> &str {
    dev.host_syspath.rsplit('/').next().unwrap_or("")
}

fn ccw_addr(dev: &UdevDevice) -> Option<CcwAddr> {
    let a = parse_ccw(last_component(dev));
    if a.is_none() {
        tracing::debug!(
            "failed to parse the CCW address from sysfs path: '{}'",
            dev.host_syspath
        );
    }
    a
}

/// `udevCCWGetState`: a missing `online` counts as 0; a value other than 0 or 1 gives no
/// state; `Err` for garbage or a negative number.
fn ccw_state(dev: &UdevDevice) -> Result<Option<CcwState>, ()> {
    let online = match dev.sysattr("online") {
        None => 0,
        Some(s) => parse_i(&s, 0).ok_or(())?,
    };
    match online {
        0 => Ok(Some(CcwState::Offline)),
        1 => Ok(Some(CcwState::Online)),
        n if n < 0 => Err(()),
        _ => Ok(None),
    }
}

/// CCW devices, online or not (libvirt 9.0 listed only online ones; 11.3 shows the state).
pub(super) fn ccw(dev: &UdevDevice) -> Option<(String, Cap)> {
    let state = ccw_state(dev).ok()?;
    let addr = ccw_addr(dev)?;
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    let cap = CcwCap {
        addr,
        state,
        group_dev: group_device(&dev.syspath),
    };
    Some((name, Cap::Ccw(Box::new(cap))))
}

/// The node device name libvirt gives a CCW device or group it finds through a link
/// (`virCCWGroupDeviceDevNodeName`): `<prefix>_<basename of the resolved path>`, which
/// must exist.
fn linked_device_name(prefix: &str, link: &Path) -> Option<String> {
    if !std::fs::symlink_metadata(link)
        .ok()?
        .file_type()
        .is_symlink()
    {
        return None;
    }
    let target = std::fs::canonicalize(link).ok()?;
    let base = target.file_name()?.to_string_lossy().into_owned();
    Some(generate_name(Some(prefix), &base, None))
}

/// `virCCWDeviceGetGroupDev`: the group a CCW device is a member of, from its
/// `group_device` link. Re-read on every XML request (`virNodeDeviceGetCCWDynamicCaps`).
pub(crate) fn group_device(syspath: &Path) -> Option<String> {
    linked_device_name("ccwgroup", &syspath.join("group_device"))
}

/// `virCCWGroupDeviceGetMembers`: the `cdevN` links of a group, in directory order;
/// `None` when there is none ("groups without a member must not exist").
pub(crate) fn group_members(syspath: &Path) -> Option<Vec<CcwGroupMember>> {
    let mut members = Vec::new();
    for e in std::fs::read_dir(syspath).ok()?.flatten() {
        let reference = e.file_name().to_string_lossy().into_owned();
        if !reference.starts_with("cdev") {
            continue;
        }
        if let Some(device) = linked_device_name("ccw", &e.path()) {
            members.push(CcwGroupMember { reference, device });
        }
    }
    (!members.is_empty()).then_some(members)
}

/// `udevProcessCCWGroup`: a qeth group (the udev `DEVTYPE` says which kind). Its state
/// stays "offline" when `online` cannot be read, as libvirt ignores that failure here.
pub(super) fn ccwgroup(dev: &UdevDevice) -> Option<(String, Cap)> {
    let addr = parse_ccw(&dev.sysname)?;
    let state = ccw_state(dev).unwrap_or(Some(CcwState::Offline));
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    let Some(group_type) = dev.devtype().and_then(CcwGroupType::from_name) else {
        tracing::debug!(
            "failed to find a supported CCW group capability type '{}'",
            dev.devtype().unwrap_or_default()
        );
        return None;
    };
    let cap = CcwGroupCap {
        state,
        addr,
        group_type,
        card_type: dev.string_attr("card_type"),
        chpid: dev.string_attr("chpid"),
        members: group_members(&dev.syspath)?,
    };
    Some((name, Cap::CcwGroup(Box::new(cap))))
}

/// Only I/O and vfio-ccw subchannels are listed; the decision uses the
/// udev `DRIVER` property as libvirt does, not the driver link.
pub(super) fn css(dev: &UdevDevice) -> Option<(String, Cap)> {
    if !matches!(dev.prop("DRIVER"), Some("io_subchannel" | "vfio_ccw")) {
        return None;
    }
    let addr = ccw_addr(dev)?;
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    let channel_dev_addr = dev
        .string_attr("dev_busid")
        .filter(|b| b != "none")
        .and_then(|b| parse_ccw(&b));
    let cap = CssCap {
        addr,
        channel_dev_addr,
        mdev_types: mdev_types(&SysDir::open(&dev.syspath)).ok()?,
    };
    Some((name, Cap::Css(Box::new(cap))))
}

/// `cardXX`: the adapter id is the hex number after the first four
/// characters of the sysfs name.
pub(super) fn ap_card(dev: &UdevDevice) -> Option<(String, Cap)> {
    let id = last_component(dev).get(4..).and_then(|s| parse_ui(s, 16));
    let Some(id) = id else {
        tracing::debug!(
            "failed to parse the AP Card from sysfs path: '{}'",
            dev.host_syspath
        );
        return None;
    };
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    Some((name, Cap::ApCard(id)))
}

/// `XX.YYYY`: adapter and domain ids.
pub(super) fn ap_queue(dev: &UdevDevice) -> Option<(String, Cap)> {
    let last = last_component(dev);
    let parsed = parse_ui_prefix(last, 16).and_then(|(a, rest)| {
        let (d, _) = parse_ui_prefix(rest.get(1..)?, 16)?;
        Some((a, d))
    });
    let Some((adapter, domain)) = parsed else {
        tracing::debug!(
            "failed to parse the AP Queue from sysfs path: '{}'",
            dev.host_syspath
        );
        return None;
    };
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    Some((name, Cap::ApQueue(adapter, domain)))
}

/// The matrix device is always named `ap_matrix` (its sysname and
/// subsystem are both "matrix").
pub(super) fn ap_matrix(dev: &UdevDevice) -> Option<(String, Cap)> {
    let types = mdev_types(&SysDir::open(&dev.syspath)).ok()?;
    Some(("ap_matrix".to_string(), Cap::ApMatrix(types)))
}

/// `udevGetVDPACharDev`: the first `vhost-vdpa*` entry (directory order)
/// names the char device, which must exist in `/dev`.
pub(super) fn vdpa(root: &HostRoot, dev: &UdevDevice) -> Option<(String, Cap)> {
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    let mut chardev = None;
    for e in std::fs::read_dir(&dev.syspath).ok()? {
        let e = e.ok()?;
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("vhost-vdpa") {
            let host = format!("/dev/{n}");
            if std::fs::metadata(root.join(&host)).is_err() {
                tracing::debug!("vDPA chardev path '{host}' does not exist");
                return None;
            }
            chardev = Some(host);
            break;
        }
    }
    Some((name, Cap::Vdpa(chardev.map(String::into_boxed_str))))
}
