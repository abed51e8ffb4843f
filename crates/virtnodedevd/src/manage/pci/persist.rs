//! `pci_persist`: detached devices are detached again at start-up, as driverctl keeps its
//! overrides. One file per device under `/etc/libvirt/nodedev-pci/`, named by its PCI
//! address and holding the driver; written by a detach, removed by a reattach.

use tracing::{info, warn};

use super::sysfs::{PciFn, PCI_STUB};
use super::{bind_wait, group, policy, protect, PciError};
use crate::driver::Driver;

const STORE: &str = "/etc/libvirt/nodedev-pci";

/// Records that `addr` is to be bound to `driver` from now on.
pub fn record(driver: &Driver, addr: &str, stub: &str) {
    let dir = driver.root().join(STORE);
    let done = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(addr), format!("{stub}\n")));
    if let Err(e) = done {
        warn!(device = addr, "cannot record the detach in {STORE}: {e}");
    }
}

/// Forgets `addr`'s record, if any (whatever `pci_persist` says now).
pub fn forget(driver: &Driver, addr: &str) {
    let path = driver.root().join(STORE).join(addr);
    match std::fs::remove_file(&path) {
        Ok(()) => info!(device = addr, "detach record removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => warn!(device = addr, "cannot remove {}: {e}", path.display()),
    }
}

/// Binds every recorded device to its driver again, with the checks of a detach; the
/// device list is read again when any was.
pub fn reapply(driver: &Driver) {
    if !policy().persist {
        return;
    }
    let mut rebound = 0;
    let entries = std::fs::read_dir(driver.root().join(STORE));
    for e in entries.into_iter().flatten().flatten() {
        let addr = e.file_name().to_string_lossy().into_owned();
        let stub = super::sysfs::read_text(e.path()).unwrap_or_default();
        let stub = stub.trim();
        match rebind(driver, &addr, stub) {
            Ok(true) => {
                rebound += 1;
                info!(device = %addr, driver = stub, "detached again at start-up");
            }
            Ok(false) => {}
            Err(err) => warn!(device = %addr, driver = stub, "not detached again: {err}"),
        }
    }
    if rebound > 0 {
        driver.enumerate(false);
    }
}

fn rebind(driver: &Driver, addr: &str, stub: &str) -> Result<bool, PciError> {
    let f = PciFn::new(driver.root(), addr)?;
    if f.driver()?.as_deref() == Some(stub) {
        return Ok(false);
    }
    protect::check(&f, &policy(), "detach")?;
    if stub != PCI_STUB {
        group::check_viable(&f)?;
    }
    f.bind_with_override(stub)?;
    if !f.wait_driver(bind_wait(), |d| d == Some(stub))? {
        return Err(PciError::Timeout(format!("{addr} was not bound to {stub}")));
    }
    Ok(true)
}
