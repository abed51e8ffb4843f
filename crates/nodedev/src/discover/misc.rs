//! USB, SCSI and DRM devices (`udevProcessUSBDevice`,
//! `udevProcessUSBInterface`, `udevProcessSCSIHost`, `udevProcessSCSIDevice`,
//! `udevProcessSCSIGeneric`, `udevProcessDRMDevice`).

use super::generate_name;
use crate::hostroot::HostRoot;
use crate::model::{Cap, FcHost, ScsiCap, ScsiHostCap, ScsiTargetCap, UsbDevCap, UsbIfCap};
use crate::udev::{parse_i, parse_ui, UdevDevice};

/// `udevGetUintProperty`: the property is required.
fn uint_prop(dev: &UdevDevice, key: &str, base: u32) -> Option<u32> {
    let v = dev.prop(key);
    if v.is_none() {
        tracing::debug!("Missing udev property '{key}' on '{}'", dev.sysname);
    }
    parse_ui(v?, base)
}

/// `udevGetUintSysfsAttr`: missing is 0, unparsable fails.
fn uint_attr(dev: &UdevDevice, name: &str, base: u32) -> Option<u32> {
    match dev.sysattr(name) {
        None => Some(0),
        Some(s) => parse_ui(&s, base),
    }
}

pub(super) fn usb_device(dev: &UdevDevice) -> Option<(String, Cap)> {
    let bus = uint_prop(dev, "BUSNUM", 10)?;
    let device = uint_prop(dev, "DEVNUM", 10)?;
    let vendor = uint_prop(dev, "ID_VENDOR_ID", 16)?;
    let vendor_name = dev
        .prop("ID_VENDOR_FROM_DATABASE")
        .map(str::to_string)
        .or_else(|| dev.string_attr("manufacturer"));
    let product = uint_prop(dev, "ID_MODEL_ID", 16)?;
    let product_name = dev
        .prop("ID_MODEL_FROM_DATABASE")
        .map(str::to_string)
        .or_else(|| dev.string_attr("product"));
    let cap = UsbDevCap {
        bus,
        device,
        vendor,
        product,
        vendor_name,
        product_name,
    };
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    Some((name, Cap::UsbDev(Box::new(cap))))
}

pub(super) fn usb_interface(dev: &UdevDevice) -> Option<(String, Cap)> {
    let cap = UsbIfCap {
        number: uint_attr(dev, "bInterfaceNumber", 16)?,
        class: uint_attr(dev, "bInterfaceClass", 16)?,
        subclass: uint_attr(dev, "bInterfaceSubClass", 16)?,
        protocol: uint_attr(dev, "bInterfaceProtocol", 16)?,
        description: None,
    };
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    Some((name, Cap::UsbInterface(Box::new(cap))))
}

pub(super) fn scsi_host(root: &HostRoot, dev: &UdevDevice) -> Option<(String, Cap)> {
    let file = dev.host_syspath.rsplit('/').next()?;
    let host = parse_ui(file.strip_prefix("host")?, 0)?;
    let mut cap = ScsiHostCap {
        host,
        ..Default::default()
    };
    scsi_host_caps(root, &mut cap);
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    Some((name, Cap::ScsiHost(Box::new(cap))))
}

fn read_line(path: &std::path::Path) -> Option<String> {
    let s = crate::hostroot::read_to_string(path).ok()?;
    Some(match s.find('\n') {
        Some(i) => s[..i].to_string(),
        None => s,
    })
}

/// `virVHBAGetConfig`: first line, from after the first "0x" if any.
fn vhba_config(root: &HostRoot, host: u32, entry: &str) -> Option<String> {
    let l = read_line(&root.join(&format!("/sys/class/fc_host/host{host}/{entry}")))?;
    Some(match l.find("0x") {
        Some(i) => l[i + 2..].to_string(),
        None => l,
    })
}

/// `virNodeDeviceGetSCSIHostCaps`.
pub(crate) fn scsi_host_caps(root: &HostRoot, cap: &mut ScsiHostCap) {
    let host = cap.host;
    cap.unique_id = read_line(&root.join(&format!("/sys/class/scsi_host/host{host}/unique_id")))
        .and_then(|s| parse_i(&s, 10))
        .unwrap_or(-1);
    let fc_dir = root.join(&format!("/sys/class/fc_host/host{host}"));
    let mut ok = true;
    if std::fs::metadata(&fc_dir).is_ok() {
        match (
            vhba_config(root, host, "port_name"),
            vhba_config(root, host, "node_name"),
        ) {
            (Some(wwpn), Some(wwnn)) => {
                let fabric = vhba_config(root, host, "fabric_name")
                    .or_else(|| cap.fc_host.as_ref().and_then(|f| f.fabric_wwn.clone()));
                cap.fc_host = Some(FcHost {
                    wwnn,
                    wwpn,
                    fabric_wwn: fabric,
                });
            }
            _ => ok = false,
        }
    }
    let vport = std::fs::metadata(fc_dir.join("vport_create")).is_ok()
        || std::fs::metadata(root.join(&format!("/sys/class/scsi_host/host{host}/vport_create")))
            .is_ok();
    if ok && vport {
        let max = vhba_config(root, host, "max_npiv_vports").and_then(|s| parse_i(&s, 10));
        let used = vhba_config(root, host, "npiv_vports_inuse").and_then(|s| parse_i(&s, 10));
        match (max, used) {
            (Some(m), Some(u)) => cap.vport_ops = Some((m, u)),
            _ => ok = false,
        }
    }
    if !ok {
        cap.fc_host = None;
        cap.vport_ops = None;
    }
}

const SCSI_TYPES: [Option<&str>; 13] = [
    Some("disk"),
    Some("tape"),
    None,
    Some("processor"),
    Some("worm"),
    Some("cdrom"),
    Some("scanner"),
    Some("mod"),
    Some("changer"),
    None,
    None,
    None,
    Some("raid"),
];

pub(super) fn scsi_device(dev: &UdevDevice) -> Option<(String, Cap)> {
    let file = dev.host_syspath.rsplit('/').next()?;
    let mut it = file.splitn(4, ':');
    let mut f = || it.next().and_then(|x| parse_ui(x, 10));
    let mut cap = ScsiCap {
        host: f()?,
        bus: f()?,
        target: f()?,
        lun: f()?,
        scsi_type: None,
    };
    if let Some(t) = dev.sysattr("type") {
        let t = parse_ui(&t, 0)?;
        cap.scsi_type = match t {
            0x0d => Some("enclosure".to_string()),
            t => SCSI_TYPES
                .get(t as usize)
                .copied()
                .flatten()
                .map(str::to_string),
        };
    }
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    Some((name, Cap::Scsi(Box::new(cap))))
}

pub(super) fn scsi_generic(dev: &UdevDevice) -> Option<(String, Cap)> {
    let path = dev.prop("DEVNAME")?.to_string();
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    Some((name, Cap::ScsiGeneric(path.into())))
}

pub(super) fn drm(dev: &UdevDevice) -> Option<(String, Cap)> {
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    let minor = parse_i(dev.prop("MINOR")?, 10)?;
    if minor < 0 {
        return None;
    }
    let t = match minor >> 6 {
        0 => "primary",
        1 => "control",
        2 => "render",
        _ => return None,
    };
    Some((name, Cap::Drm(t)))
}

pub(super) fn scsi_target(root: &HostRoot, dev: &UdevDevice) -> Option<(String, Cap)> {
    let mut cap = ScsiTargetCap {
        name: dev.sysname.clone(),
        fc_remote_port: None,
    };
    scsi_target_caps(root, &dev.host_syspath, &mut cap);
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    Some((name, Cap::ScsiTarget(Box::new(cap))))
}

/// `virNodeDeviceGetSCSITargetCaps`: a target below `rport-H:B-N` that
/// exists in `class/fc_remote_ports` is an FC remote port.
pub(crate) fn scsi_target_caps(root: &HostRoot, host_syspath: &str, cap: &mut ScsiTargetCap) {
    cap.fc_remote_port = None;
    let mut parts = host_syspath.rsplit('/');
    parts.next();
    let Some(rport) = parts.next() else { return };
    let dir = root.join("/sys/class/fc_remote_ports").join(rport);
    if std::fs::metadata(&dir).is_err() {
        return;
    }
    if let Ok(v) = crate::hostroot::read_to_string(dir.join("port_name")) {
        let v = v.split('\n').next().unwrap_or("").to_string();
        cap.fc_remote_port = Some((rport.to_string(), v));
    }
}
