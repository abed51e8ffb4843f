//! NPIV vHBAs: `nodeDeviceCreateXML` / `nodeDeviceDestroy` of an `fc_host` scsi_host, by
//! writing `wwpn:wwnn` to the parent HBA's `vport_create` / `vport_delete`
//! (`virVHBAManageVport`).

use nodedev::parse::DeviceDef;
use nodedev::{Cap, CapType, Device};

use super::ManageError;
use crate::driver::{DeviceList, Driver};

fn internal(detail: impl Into<String>) -> ManageError {
    ManageError::internal(detail)
}

/// `virNodeDeviceFindFCParentHost`: the parent's SCSI host number, if it can make vports.
fn fc_parent_host(parent: &Device) -> Result<u32, ManageError> {
    parent
        .cap_data()
        .iter()
        .find_map(|c| match c {
            Cap::ScsiHost(h) if h.vport_ops.is_some() => Some(h.host),
            _ => None,
        })
        .ok_or_else(|| {
            internal(format!(
                "Parent device {} is not capable of vport operations",
                parent.name()
            ))
        })
}

fn fabric_wwn(d: &Device) -> Option<&str> {
    d.cap_data().iter().find_map(|c| match c {
        Cap::ScsiHost(h) => h.fc_host.as_ref().and_then(|f| f.fabric_wwn.as_deref()),
        _ => None,
    })
}

/// virVHBAManageVport.
fn manage_vport(
    driver: &Driver,
    host: u32,
    wwpn: &str,
    wwnn: &str,
    file: &str,
) -> Result<(), ManageError> {
    let root = driver.root();
    let mut path = root.join(&format!("/sys/class/fc_host/host{host}/{file}"));
    if !path.exists() {
        path = root.join(&format!("/sys/class/scsi_host/host{host}/{file}"));
        if !path.exists() {
            return Err(ManageError::OperationInvalid(format!(
                "vport operation '{file}' is not supported for host{host}"
            )));
        }
    }
    let name = format!("{wwpn}:{wwnn}");
    std::fs::write(&path, &name).map_err(|e| {
        let shown = format!(
            "/sys/class/{}",
            path.strip_prefix(root.join("/sys/class"))
                .map_or_else(|_| path.display().to_string(), |p| p.display().to_string())
        );
        ManageError::System {
            detail: format!(
                "Write of '{name}' to '{shown}' during vport create/delete failed: {e}"
            ),
            errno: e.raw_os_error().unwrap_or(0),
        }
    })
}

/// The vHBA part of nodeDeviceCreateXML.
pub fn create(driver: &Driver, list: &DeviceList, def: &DeviceDef) -> Result<String, ManageError> {
    let h = def.scsi_host().expect("scsi_host definition");
    let Some((wwnn, wwpn)) = h.fc_host.clone() else {
        return Err(internal("Device is not a fibre channel HBA"));
    };
    let missing = || internal("Could not find parent device for 'new device'");
    // virNodeDeviceObjListFindByWWNs / FindByFabricWWN: exact matches, among devices that
    // can make vports.
    let vport_capable = |d: &&Device| d.has_cap(CapType::Vports);
    let host = if let Some(p) = &def.parent {
        fc_parent_host(list.get(p).ok_or_else(missing)?)?
    } else if let (Some(n), Some(p)) = (&def.parent_wwnn, &def.parent_wwpn) {
        let parent = list
            .iter()
            .filter(vport_capable)
            .find(|d| d.scsi_host_wwns() == Some((n.as_str(), p.as_str())))
            .ok_or_else(missing)?;
        fc_parent_host(parent)?
    } else if let Some(f) = &def.parent_fabric_wwn {
        let parent = list
            .iter()
            .filter(vport_capable)
            .find(|d| fabric_wwn(d) == Some(f.as_str()))
            .ok_or_else(missing)?;
        fc_parent_host(parent)?
    } else {
        let parent = list
            .iter()
            .find(vport_capable)
            .ok_or_else(|| internal("Could not find any vport capable device"))?;
        fc_parent_host(parent)?
    };
    manage_vport(driver, host, &wwpn, &wwnn, "vport_create")?;
    let found = wait(driver, &wwnn, &wwpn);
    found.ok_or_else(|| {
        ManageError::NoNodeDevice(format!(
            "no node device for 'new device' with matching wwnn '{wwnn}' and wwpn '{wwpn}'"
        ))
    })
}

fn wait(driver: &Driver, wwnn: &str, wwpn: &str) -> Option<String> {
    let start = std::time::Instant::now();
    let limit = std::env::var("VIRTNODEDEVD_NEW_DEVICE_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(
            std::time::Duration::from_secs(60),
            std::time::Duration::from_millis,
        );
    loop {
        let list = driver.devices();
        if let Some(d) = list
            .iter()
            .find(|d| d.scsi_host_wwns() == Some((wwnn, wwpn)))
        {
            return Some(d.name().to_owned());
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The vHBA part of nodeDeviceDestroy.
pub fn destroy(driver: &Driver, list: &DeviceList, dev: &Device) -> Result<(), ManageError> {
    let Some((wwnn, wwpn)) = dev.scsi_host_wwns() else {
        return Err(internal("Device is not a fibre channel HBA"));
    };
    let (wwnn, wwpn) = (wwnn.to_owned(), wwpn.to_owned());
    let parent = dev.parent().unwrap_or("").to_owned();
    if list.get(&parent).is_none() {
        return Err(internal(format!(
            "cannot find parent '{parent}' definition"
        )));
    }
    let rest = parent
        .strip_prefix("scsi_host")
        .or_else(|| parent.strip_prefix("fc_host"))
        .or_else(|| parent.strip_prefix("host"))
        .ok_or_else(|| internal(format!("Invalid adapter name '{parent}' for SCSI pool")))?;
    let host: u32 = rest
        .parse()
        .map_err(|_| internal(format!("Invalid adapter name '{rest}' for SCSI pool")))?;
    manage_vport(driver, host, &wwpn, &wwnn, "vport_delete")
}
