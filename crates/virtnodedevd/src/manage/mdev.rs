//! The mediated-device API: `nodeDeviceCreateXML`, `nodeDeviceDefineXML`,
//! `nodeDeviceDestroy`, `nodeDeviceUndefine`, `nodeDeviceCreate` and
//! `nodeDeviceSetAutostart`, as libvirt 11.3 does them (NPIV vHBAs go to [`super::vhba`]).

use nodedev::parse::{self, DeviceDef};
use nodedev::Device;

use super::kernel::{
    find_mdev, mdev_syspath, mdevctl_msg, parent_by_addr, start_mdev, wait_for, write_attrs,
};
use super::mdevctl::Mdevctl;
use super::overlay::store_lock;
use super::ManageError;
use crate::driver::{Change, Definition, DeviceList, Driver};

// Every definition arrives in an RPC string, so libxml2's text-size limits (which our XML
// parser does not check) can never be reached; this fails to build if that stops holding.
const _: () = assert!((protocol::REMOTE_STRING_MAX as usize) < parse::MAX_TEXT_LENGTH);

/// virNodeDeviceDefParse + nodeDeviceDefPostParse + nodeDeviceDefValidate: the definition
/// and, for an mdev, the parent's address.
fn parse_def(
    list: &DeviceList,
    xml: &str,
    validate: bool,
) -> Result<(DeviceDef, Option<String>), ManageError> {
    let def = parse::parse_definition(xml, validate).map_err(ManageError::from)?;
    let addr = post_parse(list, &def)?;
    Ok((def, addr))
}

/// `virNodeDeviceDefParse` as the create and define calls run it before their access
/// check: the definition's errors, nothing done.
pub fn check_definition(driver: &Driver, xml: &str, validate: bool) -> Result<(), ManageError> {
    parse_def(&driver.devices(), xml, validate).map(|_| ())
}

/// nodeDeviceDefPostParse + nodeDeviceDefValidate: for an mdev, the parent's address.
pub(super) fn post_parse(
    list: &DeviceList,
    def: &DeviceDef,
) -> Result<Option<String>, ManageError> {
    let mut addr = None;
    if def.mdev().is_some() {
        let Some(parent) = def.parent.as_deref() else {
            return Err(ManageError::ConfigUnsupported(
                "missing parent device".into(),
            ));
        };
        let Some(p) = list.get(parent) else {
            return Err(ManageError::ConfigUnsupported(format!(
                "invalid parent device '{parent}'"
            )));
        };
        addr = p.mdev_parent_address();
        if addr.is_none() {
            return Err(ManageError::ParseFailed(format!(
                "Unable to find address for parent device '{parent}'"
            )));
        }
    }
    Ok(addr)
}

/// A new random (version 4) UUID for an mdev created without one, as mdevctl would make.
/// Without randomness the call fails with libvirt's message for that (virRandomBytes),
/// rather than making a UUID that could collide.
fn random_uuid() -> Result<String, ManageError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| ManageError::internal(format!("failed to generate byte stream: {e}")))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}

/// nodeDeviceCreateXML.
pub fn create_xml(driver: &Driver, xml: &str, validate: bool) -> Result<String, ManageError> {
    let list = driver.devices();
    let (def, addr) = parse_def(&list, xml, validate)?;
    if def.scsi_host().is_some() {
        return super::vhba::create(driver, &list, &def);
    }
    let Some(m) = def.mdev() else {
        return Err(ManageError::unsupported_device_type());
    };
    if def.parent.is_none() {
        return Err(ManageError::Xml(
            "cannot create a mediated device without a parent".into(),
        ));
    }
    let addr = addr.unwrap_or_default();
    if let Some(mc) = Mdevctl::get(driver.root()) {
        let made = mc.create_or_define("start", "start", &addr, m)?;
        let uuid = made.or_else(|| m.uuid.clone()).unwrap_or_default();
        let root = driver.root().clone();
        return wait_for(
            driver,
            || mdev_syspath(&root, &uuid),
            |l| find_mdev(l, &uuid, &addr),
        )
        .ok_or_else(ManageError::unknown_cause);
    }
    let parent = parent_by_addr(&list, &addr).ok_or_else(|| {
        ManageError::internal(format!(
            "unable to find parent device '{}'",
            def.parent.as_deref().unwrap_or("")
        ))
    })?;
    let uuid = match &m.uuid {
        Some(u) => u.clone(),
        None => random_uuid()?,
    };
    start_mdev(driver.root(), parent, &m.type_id, &uuid)?;
    write_attrs(driver.root(), &uuid, &m.attrs);
    let root = driver.root().clone();
    wait_for(
        driver,
        || mdev_syspath(&root, &uuid),
        |l| find_mdev(l, &uuid, &addr),
    )
    .ok_or_else(ManageError::unknown_cause)
}

/// nodeDeviceDefineXML.
pub fn define_xml(driver: &Driver, xml: &str, validate: bool) -> Result<String, ManageError> {
    let list = driver.devices();
    let (def, addr) = parse_def(&list, xml, validate)?;
    let Some(m) = def.mdev() else {
        return Err(ManageError::unsupported_device_type());
    };
    if def.parent.is_none() {
        return Err(ManageError::Xml(
            "cannot define a mediated device without a parent".into(),
        ));
    }
    let parent_addr = addr.unwrap_or_default();
    if let Some(uuid) = persistent_mdev(&list, m, &parent_addr) {
        return redefine(driver, m, parent_addr, uuid);
    }
    if let Some(mc) = Mdevctl::get(driver.root()) {
        let _g = store_lock();
        let made = mc.create_or_define("define", "define", &parent_addr, m)?;
        let d = Definition {
            parent_addr,
            uuid: made.or_else(|| m.uuid.clone()).unwrap_or_default(),
            type_id: m.type_id.clone(),
            attrs: m.attrs.clone(),
            autostart: false,
        };
        return Ok(note_defined(driver, d));
    }
    let uuid = match &m.uuid {
        Some(u) => u.clone(),
        None => random_uuid()?,
    };
    // mdevctl refuses a UUID defined under another parent.
    if let Some(other) = list.iter().find(|d| {
        d.is_persistent()
            && d.mdev()
                .is_some_and(|x| x.uuid == uuid && x.parent_addr != parent_addr)
    }) {
        let _ = other;
        return Err(ManageError::internal(format!(
            "Unable to define mediated device: {}",
            mdevctl_msg(format!(
                "Device {uuid} is already defined with a different parent"
            ))
        )));
    }
    // A running device keeps its autostart setting only through the definition.
    let _g = store_lock();
    write_store(driver, definition(m, parent_addr, uuid), "define")
}

/// The definition an mdev's XML describes; the XML has no autostart.
fn definition(m: &parse::MdevDef, parent_addr: String, uuid: String) -> Definition {
    Definition {
        parent_addr,
        uuid,
        type_id: m.type_id.clone(),
        attrs: m.attrs.clone(),
        autostart: false,
    }
}

/// Without mdevctl: writes its store as `mdevctl define|modify` would, failing as "Unable
/// to `what` mediated device: ...". Call with the store lock held.
fn write_store(driver: &Driver, d: Definition, what: &str) -> Result<String, ManageError> {
    super::store::write(driver.root(), &d).map_err(|e| {
        ManageError::internal(format!(
            "Unable to {what} mediated device: {}",
            mdevctl_msg(e)
        ))
    })?;
    Ok(note_defined(driver, d))
}

/// findPersistentMdevNodeDevice (libvirt 11.3): the UUID of the persistent mdev that a
/// definition naming its UUID and parent describes.
fn persistent_mdev(list: &DeviceList, m: &parse::MdevDef, parent_addr: &str) -> Option<String> {
    let uuid = m.uuid.as_deref()?;
    list.iter()
        .filter(|d| d.is_persistent())
        .filter_map(Device::mdev)
        .find(|x| x.uuid == uuid && x.parent_addr == parent_addr)
        .map(|x| x.uuid.clone())
}

/// nodeDeviceDefineXML on a persistent mdev (libvirt 11.3): its definition is modified
/// (`mdevctl modify --defined`), not defined again. The XML has no autostart, so the
/// definition's "start" becomes "manual".
fn redefine(
    driver: &Driver,
    m: &parse::MdevDef,
    parent_addr: String,
    uuid: String,
) -> Result<String, ManageError> {
    let d = definition(m, parent_addr, uuid);
    let _g = store_lock();
    let Some(mc) = Mdevctl::get(driver.root()) else {
        return write_store(driver, d, "modify");
    };
    let json = super::store::to_json_compact(&d.type_id, d.autostart, &d.attrs);
    mc.modify(&d.parent_addr, &d.uuid, &json, true, false)?;
    Ok(note_defined(driver, d))
}

/// A definition just stored: DEFINED for a new one, UPDATE for a changed one, nothing for
/// one stored again unchanged (nodeDeviceUpdateMediatedDevice). Call with the store lock
/// held.
fn note_defined(driver: &Driver, d: Definition) -> String {
    let name = d.name();
    driver.apply(
        |state| match state.defined.insert(name.clone(), d.clone()) {
            None => vec![(name.clone(), Change::Defined)],
            Some(old) if old != d => vec![(name.clone(), Change::Updated)],
            Some(_) => Vec::new(),
        },
    );
    name
}

pub(super) fn lookup(list: &DeviceList, name: &str) -> Result<Device, ManageError> {
    list.get(name).cloned().ok_or_else(|| {
        ManageError::NoNodeDevice(format!("no node device with matching name '{name}'"))
    })
}

/// nodeDeviceDestroy.
pub fn destroy(driver: &Driver, name: &str) -> Result<(), ManageError> {
    let list = driver.devices();
    let dev = lookup(&list, name)?;
    if dev.has_cap(nodedev::CapType::ScsiHost) {
        return super::vhba::destroy(driver, &list, &dev);
    }
    let Some(m) = dev.mdev() else {
        return Err(ManageError::unsupported_device_type());
    };
    if !dev.is_active() {
        return Err(ManageError::OperationInvalid(format!(
            "Device '{name}' is not active"
        )));
    }
    let root = driver.root();
    // vfio lets one user open a group: EBUSY means a guest has the device.
    let group = root.join("/dev/vfio").join(m.iommu_group.to_string());
    if let Err(e) = std::fs::File::open(&group) {
        if e.raw_os_error() == Some(nix::libc::EBUSY) {
            return Err(ManageError::internal(format!(
                "Unable to destroy '{name}': device in use"
            )));
        }
    }
    if let Some(mc) = Mdevctl::get(root) {
        let out = mc.run(&["stop", &format!("--uuid={}", m.uuid)], None)?;
        if !out.ok {
            return Err(ManageError::internal(format!(
                "Unable to destroy '{name}': {}",
                out.error()
            )));
        }
        return Ok(());
    }
    let remove = root
        .join("/sys/bus/mdev/devices")
        .join(&m.uuid)
        .join("remove");
    std::fs::write(&remove, "1").map_err(|e| {
        ManageError::internal(format!("Unable to destroy '{name}': {}", mdevctl_msg(e)))
    })
}

/// nodeDeviceUndefine.
pub fn undefine(driver: &Driver, name: &str) -> Result<(), ManageError> {
    let list = driver.devices();
    let dev = lookup(&list, name)?;
    if !dev.is_persistent() {
        return Err(ManageError::OperationInvalid(format!(
            "Node device '{name}' is not defined"
        )));
    }
    if dev.mdev().is_none() {
        return Err(ManageError::unsupported_device_type());
    }
    let def = {
        let mut found = None;
        driver.apply(|state| {
            found = state.defined.get(name).cloned();
            Vec::new()
        });
        found
    };
    let Some(def) = def else {
        return Err(ManageError::OperationInvalid(format!(
            "Node device '{name}' is not defined"
        )));
    };
    let _g = store_lock();
    if let Some(mc) = Mdevctl::get(driver.root()) {
        let out = mc.run(&["undefine", &format!("--uuid={}", def.uuid)], None)?;
        if !out.ok {
            return Err(ManageError::internal(format!(
                "Unable to undefine mediated device: {}",
                out.error()
            )));
        }
    } else {
        super::store::remove(driver.root(), &def).map_err(|e| {
            ManageError::internal(format!(
                "Unable to undefine mediated device: {}",
                mdevctl_msg(e)
            ))
        })?;
    }
    driver.apply(|state| {
        if state.defined.remove(name).is_some() {
            vec![(name.to_owned(), Change::Undefined)]
        } else {
            Vec::new()
        }
    });
    Ok(())
}

/// nodeDeviceCreate: starts a defined mdev.
pub fn start(driver: &Driver, name: &str) -> Result<(), ManageError> {
    let list = driver.devices();
    let dev = lookup(&list, name)?;
    let Some(m) = dev.mdev() else {
        return Err(ManageError::unsupported_device_type());
    };
    let fail = |m: String| ManageError::internal(format!("Unable to create mediated device: {m}"));
    if let Some(mc) = Mdevctl::get(driver.root()) {
        let out = mc.run(&["start", &format!("--uuid={}", m.uuid)], None)?;
        if !out.ok {
            return Err(fail(out.error()));
        }
        return Ok(());
    }
    let Some(parent) = parent_by_addr(&list, &m.parent_addr) else {
        return Err(fail(mdevctl_msg(format!(
            "Unable to find parent device '{}'",
            m.parent_addr
        ))));
    };
    start_mdev(driver.root(), parent, &m.type_id, &m.uuid).map_err(|e| {
        let detail = e.detail();
        fail(
            detail
                .strip_prefix("Unable to start mediated device: ")
                .unwrap_or(&detail)
                .to_owned(),
        )
    })?;
    write_attrs(driver.root(), &m.uuid, &m.attrs);
    Ok(())
}

/// nodeDeviceSetAutostart.
pub fn set_autostart(driver: &Driver, name: &str, autostart: bool) -> Result<(), ManageError> {
    let list = driver.devices();
    let dev = lookup(&list, name)?;
    if dev.mdev().is_none() {
        return Err(ManageError::OperationUnsupported(
            "Unsupported device type".into(),
        ));
    }
    if !dev.is_persistent() {
        return Err(ManageError::OperationInvalid(
            "cannot set autostart for transient device".into(),
        ));
    }
    if dev.autostart() == autostart {
        return Ok(());
    }
    let mut def = None;
    driver.apply(|state| {
        def = state.defined.get(name).cloned();
        Vec::new()
    });
    let Some(mut def) = def else {
        return Err(ManageError::OperationInvalid(
            "cannot set autostart for transient device".into(),
        ));
    };
    def.autostart = autostart;
    let _g = store_lock();
    if let Some(mc) = Mdevctl::get(driver.root()) {
        let mode = if autostart { "--auto" } else { "--manual" };
        let out = mc.run(&["modify", "--uuid", &def.uuid, mode], None)?;
        if !out.ok {
            let e = if out.stderr.is_empty() {
                "Unknown Error".to_owned()
            } else {
                out.stderr
            };
            return Err(ManageError::internal(format!(
                "Unable to set autostart on '{name}': {e}"
            )));
        }
    } else {
        super::store::write(driver.root(), &def).map_err(|e| {
            ManageError::internal(format!(
                "Unable to set autostart on '{name}': {}",
                mdevctl_msg(e)
            ))
        })?;
    }
    // libvirt re-reads mdevctl's store when it changes and finds the autostart setting
    // changed: an update event.
    driver.apply(|state| {
        state.defined.insert(name.to_owned(), def);
        vec![(name.to_owned(), Change::Updated)]
    });
    Ok(())
}
