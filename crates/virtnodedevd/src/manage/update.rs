//! NodeDeviceUpdate and GetXMLDesc(VIR_NODE_DEVICE_XML_INACTIVE) (libvirt 10.1.0).

use nodedev::parse;
use nodedev::{Cap, Device, MdevCap};

use super::kernel::{mdevctl_msg, set_live_attrs};
use super::mdev::{lookup, post_parse};
use super::mdevctl::Mdevctl;
use super::overlay::store_lock;
use super::ManageError;
use crate::driver::{Change, Definition, Driver};

/// VIR_NODE_DEVICE_UPDATE_AFFECT_LIVE.
pub const UPDATE_AFFECT_LIVE: u32 = 1;
/// VIR_NODE_DEVICE_UPDATE_AFFECT_CONFIG.
pub const UPDATE_AFFECT_CONFIG: u32 = 2;

/// The stored definition of a device, if it has one.
fn definition(driver: &Driver, name: &str) -> Option<Definition> {
    let mut def = None;
    driver.apply(|state| {
        def = state.defined.get(name).cloned();
        Vec::new()
    });
    def
}

/// GetXMLDesc with VIR_NODE_DEVICE_XML_INACTIVE: the defined configuration (type and
/// attributes) of a persistent device; `dev` is the device as re-read for its XML.
pub fn inactive_xml(driver: &Driver, dev: &Device) -> Result<String, ManageError> {
    if !dev.is_persistent() {
        return Err(ManageError::OperationInvalid(format!(
            "node device '{}' is not persistent",
            dev.name()
        )));
    }
    let Some(def) = definition(driver, dev.name()) else {
        return Ok(dev.to_xml());
    };
    let mut d = dev.clone();
    for c in d.cap_data_mut() {
        if let Cap::Mdev(m) = c {
            m.type_id = def.type_id.clone();
            m.attrs = def.attrs.clone();
        }
    }
    Ok(d.to_xml())
}

/// virNodeDeviceObjUpdateModificationImpact: CURRENT means LIVE for an active device and
/// CONFIG for an inactive one; LIVE needs an active device, CONFIG a persistent one.
fn modification_impact(dev: &Device, mut flags: u32) -> Result<u32, ManageError> {
    let active = dev.is_active();
    if flags & (UPDATE_AFFECT_LIVE | UPDATE_AFFECT_CONFIG) == 0 {
        flags |= if active {
            UPDATE_AFFECT_LIVE
        } else {
            UPDATE_AFFECT_CONFIG
        };
    }
    if !active && flags & UPDATE_AFFECT_LIVE != 0 {
        return Err(ManageError::OperationInvalid(
            "node device is not active".into(),
        ));
    }
    if !dev.is_persistent() && flags & UPDATE_AFFECT_CONFIG != 0 {
        return Err(ManageError::OperationInvalid(
            "transient node devices do not have any persistent config".into(),
        ));
    }
    Ok(flags)
}

/// nodeDeviceDefValidateUpdate: same UUID and parent; for a live update the type of the
/// running device.
fn validate_update(
    name: &str,
    cur: &MdevCap,
    new: &parse::MdevDef,
    new_addr: &str,
    live: bool,
) -> Result<(), ManageError> {
    if new.uuid.as_deref() != Some(cur.uuid.as_str()) {
        // Upstream's text lacks the quote after the name.
        return Err(ManageError::ConfigUnsupported(format!(
            "Cannot update device '{name}, uuid mismatch (current uuid '{}')",
            cur.uuid
        )));
    }
    if live && new.type_id != cur.type_id {
        return Err(ManageError::ConfigUnsupported(format!(
            "Cannot update device '{name}', type mismatch (current type '{}')",
            cur.type_id
        )));
    }
    if new_addr != cur.parent_addr {
        return Err(ManageError::ConfigUnsupported(format!(
            "Cannot update device '{name}', parent address mismatch (current parent address '{}')",
            cur.parent_addr
        )));
    }
    Ok(())
}

/// nodeDeviceUpdate (flags already checked, the device looked up by the caller): changes
/// the definition (AFFECT_CONFIG) and/or the attributes of the running device
/// (AFFECT_LIVE) of a mediated device; an UPDATE event for each configuration that changed.
pub fn update(driver: &Driver, name: &str, xml: &str, flags: u32) -> Result<(), ManageError> {
    let list = driver.devices();
    let dev = lookup(&list, name)?;
    let (_, def) = parse::parse_existing(xml).map_err(ManageError::from)?;
    let addr = post_parse(&list, &def)?;
    let (Some(cur), Some(new)) = (dev.mdev(), def.mdev()) else {
        return Err(ManageError::unsupported_device_type());
    };
    let flags = modification_impact(&dev, flags)?;
    let live = flags & UPDATE_AFFECT_LIVE != 0;
    let config = flags & UPDATE_AFFECT_CONFIG != 0;
    let addr = addr.unwrap_or_default();
    validate_update(name, cur, new, &addr, live)?;
    let fail = |m: String| ManageError::internal(format!("Unable to modify mediated device: {m}"));
    let _g = store_lock();
    let stored = definition(driver, name);
    let new_def = Definition {
        parent_addr: addr.clone(),
        uuid: cur.uuid.clone(),
        type_id: new.type_id.clone(),
        attrs: new.attrs.clone(),
        // libvirt 11.3 hands mdevctl the parsed XML, which has no autostart: the
        // definition's "start" becomes "manual".
        autostart: false,
    };
    if let Some(mc) = Mdevctl::get(driver.root()) {
        let json =
            super::store::to_json_compact(&new_def.type_id, new_def.autostart, &new_def.attrs);
        mc.modify(&addr, &cur.uuid, &json, config, live)?;
    } else {
        // mdevctl's rule for a live and stored modify: the stored type must be the
        // running one.
        if live && config && stored.as_ref().is_some_and(|d| d.type_id != cur.type_id) {
            return Err(fail(mdevctl_msg(
                "'type' of active and defined mdev does not match",
            )));
        }
        if live {
            set_live_attrs(driver.root(), &cur.uuid, &new.attrs).map_err(fail)?;
        }
        if config {
            super::store::write(driver.root(), &new_def).map_err(|e| fail(mdevctl_msg(e)))?;
        }
    }
    let running_attrs = cur.attrs.clone();
    driver.apply(|state| {
        let mut changes = Vec::new();
        if config {
            if stored.as_ref() != Some(&new_def) {
                changes.push((name.to_owned(), Change::Updated));
            }
            state.defined.insert(name.to_owned(), new_def.clone());
            // The running device keeps what it runs with.
            if dev.is_active() && !live {
                state
                    .live_attrs
                    .entry(name.to_owned())
                    .or_insert(running_attrs.clone());
            }
        }
        if live {
            if running_attrs != new.attrs {
                changes.push((name.to_owned(), Change::Updated));
            }
            state.live_attrs.insert(name.to_owned(), new.attrs.clone());
        }
        changes
    });
    Ok(())
}
