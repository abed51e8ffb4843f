//! The persistent overlay: the device set shows every mdevctl definition. An active mdev
//! with a definition is persistent (with its autostart and attributes), a definition
//! without an active device is an inactive device, and running devices whose live
//! attributes were changed show those.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use nodedev::{Cap, Device, MdevCap};
use tracing::warn;

use super::mdevctl::Mdevctl;
use crate::driver::{Change, Definition, DeviceList, DeviceState, Driver};

/// Held across a store write and the matching state change, and by the store watcher's
/// re-read, so the watcher never reports (as made behind our back) a change we are making.
static STORE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(super) fn store_lock() -> std::sync::MutexGuard<'static, ()> {
    STORE_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Set once any definition was seen, so that hosts without any skip the scan.
static EVER_DEFINED: AtomicBool = AtomicBool::new(false);

/// Brings the device set in line with `state.defined`: an active mdev with a definition
/// is persistent (with its autostart and attributes), a definition without an active
/// device is an inactive device, a device whose definition went away is transient again
/// (active) or gone (inactive). Sends no events: the callers do.
pub fn reconcile(state: &mut DeviceState) {
    if state.defined.is_empty()
        && state.live_attrs.is_empty()
        && !EVER_DEFINED.load(Ordering::Relaxed)
    {
        return;
    }
    EVER_DEFINED.store(true, Ordering::Relaxed);
    let defined = state.defined.clone();
    let mut puts: Vec<(String, Option<Device>)> = Vec::new();
    let list = state.list();
    for d in list.iter() {
        if d.mdev().is_some() && d.is_persistent() && !defined.contains_key(d.name()) {
            if d.is_active() {
                let mut n = d.clone();
                n.set_state(true, false, false);
                if let Some(Cap::Mdev(m)) = n.cap_data_mut().first_mut() {
                    m.attrs.clear();
                }
                puts.push((d.name().to_owned(), Some(n)));
            } else {
                puts.push((d.name().to_owned(), None));
            }
        }
    }
    for (name, def) in &defined {
        let want = match list.get(name) {
            Some(d) if d.is_active() => {
                let mut n = d.clone();
                n.set_state(true, true, def.autostart);
                for c in n.cap_data_mut() {
                    if let Cap::Mdev(m) = c {
                        m.attrs = def.attrs.clone();
                    }
                }
                n
            }
            _ => inactive_device(list, def),
        };
        if list.get(name) != Some(&want) {
            puts.push((name.clone(), Some(want)));
        }
    }
    for (name, dev) in puts {
        state.put(&name, dev);
    }
    live_overlay(state);
}

/// Running mediated devices whose live attributes were changed (NodeDeviceUpdate with
/// AFFECT_LIVE, or their definition changed while they run) show those; the entry goes
/// when the device stops.
fn live_overlay(state: &mut DeviceState) {
    if state.live_attrs.is_empty() {
        return;
    }
    let list = state.list().clone();
    state.live_attrs.retain(|n, _| {
        list.get(n)
            .is_some_and(|d| d.is_active() && d.mdev().is_some())
    });
    let mut puts = Vec::new();
    for (name, attrs) in &state.live_attrs {
        let Some(d) = list.get(name) else { continue };
        if d.mdev().is_some_and(|m| &m.attrs != attrs) {
            let mut n = d.clone();
            for c in n.cap_data_mut() {
                if let Cap::Mdev(m) = c {
                    m.attrs = attrs.clone();
                }
            }
            puts.push(n);
        }
    }
    for d in puts {
        let name = d.name().to_owned();
        state.put(&name, Some(d));
    }
}

/// The device libvirt lists for a definition that is not running.
fn inactive_device(list: &DeviceList, def: &Definition) -> Device {
    let cap = MdevCap {
        type_id: def.type_id.clone(),
        uuid: def.uuid.clone(),
        parent_addr: def.parent_addr.clone(),
        iommu_group: 0,
        attrs: def.attrs.clone(),
    };
    let mut d = Device::new(def.name(), Cap::Mdev(Box::new(cap)));
    let parent = list
        .iter()
        .find(|p| p.mdev_parent_address().as_deref() == Some(def.parent_addr.as_str()))
        .map_or_else(|| "computer".to_owned(), |p| p.name().to_owned());
    d.set_parent(Some(parent));
    // libvirt re-reads the driver from sysfs for the XML: none without a device.
    d.set_state(false, true, def.autostart);
    d
}

/// Reads mdevctl's store into the device set. At start-up (`notify` false) without
/// events; later (the store changed behind our back) with DEFINED / UNDEFINED / UPDATE.
pub fn load_store(driver: &Driver, notify: bool) {
    let _g = store_lock();
    let new = match Mdevctl::get(driver.root()) {
        Some(m) => match m.list_defined() {
            Ok(d) => d,
            Err(e) => {
                warn!("failed to query mdevs from mdevctl: {}", e.trim_end());
                return;
            }
        },
        None => super::store::load(driver.root()),
    };
    driver.apply(|state| {
        let changes = diff(&state.defined, &new);
        state.defined = new;
        if notify {
            changes
        } else {
            Vec::new()
        }
    });
}

fn diff(
    old: &BTreeMap<String, Definition>,
    new: &BTreeMap<String, Definition>,
) -> Vec<(String, Change)> {
    let mut out = Vec::new();
    for (n, d) in new {
        match old.get(n) {
            None => out.push((n.clone(), Change::Defined)),
            Some(o) if o != d => out.push((n.clone(), Change::Updated)),
            _ => {}
        }
    }
    for n in old.keys() {
        if !new.contains_key(n) {
            out.push((n.clone(), Change::Undefined));
        }
    }
    out
}
