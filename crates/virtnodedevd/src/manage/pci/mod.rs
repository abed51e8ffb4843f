//! PCI devices handed to VFIO and back: `virNodeDeviceDetachFlags` (and `Dettach`),
//! `virNodeDeviceReAttach` and `virNodeDeviceReset`, which libvirt serves only in its
//! hypervisor drivers, with the semantics of libvirt 11.3's QEMU driver
//! (`qemuNodeDeviceDetachFlags`, `virDomainDriverNodeDevice*`, `virHostdevPCINodeDevice*`,
//! `virPCIDevice{Detach,Reattach,Reset}`), plus what libvirt does not do:
//! - the host's own devices are refused ([`protect`], `pci_protect` / `pci_allow`);
//! - a detach that would leave the IOMMU group unusable is refused ([`group`]);
//! - a device held open through VFIO counts as in use;
//! - the bind is waited for, and a failed operation is rolled back;
//! - operations run one at a time, and the device's new driver reaches the device list
//!   (and UPDATE events) at once, uevents or not.
//!
//! [`sysfs`] is the device's files, [`modules`] the choice and loading of the stub driver.

mod error;
mod group;
mod modules;
mod persist;
mod protect;
mod sysfs;

use std::time::Duration;

use nodedev::{Cap, Device};
use parking_lot::{Mutex, RwLock};
use tracing::{info, warn};

pub use error::PciError;
pub use persist::reapply;
use sysfs::{PciFn, PCI_STUB, VFIO_PCI};

use crate::driver::{Change, Driver};

/// `pci_protect` and `pci_allow` of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciPolicy {
    pub protect: Vec<String>,
    pub allow: Vec<String>,
    pub persist: bool,
}

static POLICY: RwLock<Option<PciPolicy>> = RwLock::new(None);

/// One operation at a time: a detach and a reattach of one device interleaving their
/// sysfs writes would leave it on neither driver.
static OPERATIONS: Mutex<()> = Mutex::new(());

/// Takes the configuration's policy (at start-up and on SIGHUP).
pub fn configure(config: &virconf::daemon::DaemonConfig) {
    *POLICY.write() = Some(PciPolicy {
        protect: config.pci_protect.clone(),
        allow: config.pci_allow.clone(),
        persist: config.pci_persist,
    });
}

fn policy() -> PciPolicy {
    POLICY.read().clone().unwrap_or_else(|| {
        let d = virconf::daemon::DaemonConfig::defaults(true);
        PciPolicy {
            protect: d.pci_protect,
            allow: d.pci_allow,
            persist: d.pci_persist,
        }
    })
}

/// How long the kernel may take to bind a device; `VIRTNODEDEVD_PCI_BIND_WAIT_MS`
/// overrides it (tests).
fn bind_wait() -> Duration {
    std::env::var("VIRTNODEDEVD_PCI_BIND_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// How long a reattached device may take to be claimed by a host driver.
const HOST_DRIVER_WAIT: Duration = Duration::from_secs(2);

/// The checks `qemuNodeDeviceDetachFlags` makes before it looks the device up: flags, the
/// driver name, VFIO on the host. Returns the driver name asked for (`None`: VFIO's own).
pub fn detach_checks(
    driver: &Driver,
    driver_name: Option<&str>,
    flags: u32,
) -> Result<Option<String>, PciError> {
    if flags != 0 {
        return Err(PciError::BadFlags(flags));
    }
    let name = driver_name.filter(|n| *n != "vfio");
    if name == Some("kvm") {
        return Err(PciError::LegacyKvm);
    }
    let root = driver.root();
    let has_group = std::fs::read_dir(root.join("/sys/kernel/iommu_groups"))
        .is_ok_and(|mut d| d.next().is_some());
    if !has_group || !root.join("/dev/vfio/vfio").exists() {
        return Err(PciError::NoVfio);
    }
    Ok(name.map(str::to_owned))
}

/// `virDomainDriverNodeDeviceGetPCIInfo`: the device's PCI address.
fn pci_name(dev: &Device) -> Result<String, PciError> {
    dev.cap_data()
        .iter()
        .find_map(|c| match c {
            Cap::Pci(p) => Some(p.addr.to_sysfs_name()),
            _ => None,
        })
        .ok_or_else(|| PciError::NotPci(dev.name().to_owned()))
}

/// Puts the device's new state in the device list, with an UPDATE event, unless a uevent
/// has done so already.
fn refresh(driver: &Driver, dev: &Device) {
    let Some(path) = dev.sysfs_path().map(str::to_owned) else {
        return;
    };
    let root = driver.root().clone();
    driver.apply(|state| {
        let Some(new) = nodedev::discover_device(&root, &path, |x| state.name_at(x)) else {
            return Vec::new();
        };
        if state.list().get(new.name()) == Some(&new) {
            return Vec::new();
        }
        let (name, _) = state.add(new);
        vec![(name, Change::Updated)]
    });
}

/// Back to the driver and override the device had, after a failed detach or reattach.
fn roll_back(f: &PciFn, old_override: Option<&str>, old_driver: Option<&str>) {
    let undo = || -> Result<(), PciError> {
        if f.driver()?.as_deref() != old_driver {
            f.bind_with_override(old_override.unwrap_or("\n"))?;
            f.wait_driver(bind_wait(), |d| d == old_driver)?;
        }
        sysfs::write_attr(&f.path("driver_override"), old_override.unwrap_or("\n"))
            .map_err(|e| PciError::system("driver_override", &e))
    };
    if let Err(e) = undo() {
        warn!(device = %f.name, "could not restore the device after a failed operation: {e}");
    }
}

/// `virPCIDeviceBindWithDriverOverride(f, new_override)`, then waits until `done` holds for
/// the bound driver; after a timeout (worded by `timeout`) or an error, the device gets its
/// driver and override back, unless it is gone.
fn move_to(
    driver: &Driver,
    dev: &Device,
    f: &PciFn,
    new_override: &str,
    done: impl Fn(Option<&str>) -> bool,
    timeout: impl FnOnce() -> String,
) -> Result<(), PciError> {
    let old_driver = f.driver()?;
    let old_override = f.driver_override();
    let moved = f
        .bind_with_override(new_override)
        .and_then(|()| f.wait_driver(bind_wait(), done));
    let err = match moved {
        Ok(true) => return Ok(()),
        Ok(false) => PciError::Timeout(timeout()),
        Err(e) => e,
    };
    if f.check_present().is_ok() {
        roll_back(f, old_override.as_deref(), old_driver.as_deref());
    }
    refresh(driver, dev);
    Err(err)
}

/// `virHostdevPCINodeDeviceDetach` for `dev`, to `stub` (`None`: vfio-pci or its variant).
pub fn detach(driver: &Driver, dev: &Device, stub: Option<&str>) -> Result<(), PciError> {
    let addr = pci_name(dev)?;
    let _one_at_a_time = OPERATIONS.lock();
    let f = PciFn::new(driver.root(), &addr)?;
    group::check_unused(&f)?;
    protect::check(&f, &policy(), "detach")?;
    let target = modules::stub_driver(&f, stub)?;
    let old_driver = f.driver()?;
    if old_driver.as_deref() == Some(target.as_str()) {
        info!(device = %addr, driver = %target, "PCI device already bound to its stub driver");
        if policy().persist {
            persist::record(driver, &addr, &target);
        }
        return Ok(());
    }
    if target != PCI_STUB {
        group::check_viable(&f)?;
    }
    move_to(
        driver,
        dev,
        &f,
        &target,
        |d| d == Some(target.as_str()),
        || {
            format!(
                "PCI device {addr} was not bound to {target} within {} ms; it was given back to {}",
                bind_wait().as_millis(),
                old_driver.as_deref().unwrap_or("no driver")
            )
        },
    )?;
    info!(
        device = %addr,
        from = old_driver.as_deref().unwrap_or("no driver"),
        to = %target,
        "detached PCI device from the host"
    );
    if policy().persist {
        persist::record(driver, &addr, &target);
    }
    refresh(driver, dev);
    Ok(())
}

/// `virHostdevPCINodeDeviceReAttach`: off the stub, override cleared, reprobed so that the
/// device's own driver takes it. A device on a host driver is left alone (libvirt would
/// unbind and reprobe it, briefly taking it from the host).
pub fn reattach(driver: &Driver, dev: &Device) -> Result<(), PciError> {
    let addr = pci_name(dev)?;
    let _one_at_a_time = OPERATIONS.lock();
    let f = PciFn::new(driver.root(), &addr)?;
    group::check_unused(&f)?;
    let (old_driver, vfio) = f.vfio_driver()?;
    let on_stub = vfio || old_driver.as_deref() == Some(PCI_STUB);
    if old_driver.is_some() && !on_stub {
        info!(device = %addr, driver = ?old_driver, "PCI device already on a host driver");
        persist::forget(driver, &addr);
        return Ok(());
    }
    let stub = old_driver.as_deref();
    move_to(
        driver,
        dev,
        &f,
        "\n",
        |d| stub.is_none() || d != stub,
        || {
            format!(
                "PCI device {addr} was not released by {} within {} ms",
                stub.unwrap_or(VFIO_PCI),
                bind_wait().as_millis()
            )
        },
    )?;
    // A driver probing asynchronously takes the device a moment later; a device no host
    // driver wants stays unbound, which is no error.
    let _ = f.wait_driver(bind_wait().min(HOST_DRIVER_WAIT), |d| d.is_some());
    let now = f.driver().ok().flatten();
    info!(
        device = %addr,
        from = old_driver.as_deref().unwrap_or("no driver"),
        to = now.as_deref().unwrap_or("no driver"),
        "reattached PCI device to the host"
    );
    persist::forget(driver, &addr);
    refresh(driver, dev);
    Ok(())
}

/// `virHostdevPCINodeDeviceReset`, through the kernel: the function's `reset` attribute
/// (whichever of its `reset_method`s works), else a secondary bus reset through the
/// bridge's `reset_subordinate` when nothing else behind the bridge is in host use.
pub fn reset(driver: &Driver, dev: &Device) -> Result<(), PciError> {
    let addr = pci_name(dev)?;
    let _one_at_a_time = OPERATIONS.lock();
    let f = PciFn::new(driver.root(), &addr)?;
    if f.header_type()? != 0 {
        return Err(PciError::Internal(format!(
            "Invalid attempt to reset PCI device {addr}. Only PCI endpoint devices can be reset"
        )));
    }
    // As libvirt: vfio-pci resets the device itself whenever it should.
    let (drv, vfio) = f.vfio_driver()?;
    if vfio {
        info!(device = %addr, driver = ?drv, "PCI device bound to VFIO: reset skipped");
        return Ok(());
    }
    protect::check(&f, &policy(), "reset")?;
    let unable =
        |why: String| PciError::Internal(format!("Unable to reset PCI device {addr}: {why}"));
    let attr = f.path("reset");
    if attr.exists() {
        let methods = sysfs::read_text(f.path("reset_method")).unwrap_or_default();
        sysfs::write_attr(&attr, "1")
            .map_err(|e| unable(error::strerror(e.raw_os_error().unwrap_or(0)).to_owned()))?;
        info!(device = %addr, reset_method = methods.trim(), "reset PCI device");
        return Ok(());
    }
    bus_reset(&f).map_err(unable)?;
    info!(device = %addr, "reset PCI device through a secondary bus reset");
    Ok(())
}

/// The secondary bus reset of `virPCIDeviceTrySecondaryBusReset`, refused while another
/// device behind the bridge is bound to a host driver; the kernel does it. The error is
/// the reason libvirt appends to "Unable to reset PCI device".
fn bus_reset(f: &PciFn) -> Result<(), String> {
    let none = || "no FLR, PM reset or bus reset available".to_owned();
    let path = f.syspath().ok_or_else(none)?;
    let chain = sysfs::pci_ancestors(&path);
    let bus = u32::from_str_radix(&f.name[5..7], 16).unwrap_or(0);
    if bus == 0 {
        return Err(none());
    }
    let Some(bridge) = chain.len().checked_sub(2).map(|i| chain[i].clone()) else {
        let e = PciError::Internal(format!("Failed to find parent device for {}", f.name));
        return Err(e.to_string());
    };
    let bridge_dir = path.rsplit_once('/').map_or(path.as_str(), |(d, _)| d);
    for other in behind(f.root(), bridge_dir) {
        if other == f.name {
            continue;
        }
        let o = PciFn::new(f.root(), &other).map_err(|e| e.to_string())?;
        let (d, vfio) = o.vfio_driver().map_err(|e| e.to_string())?;
        if d.is_some() && !vfio && d.as_deref() != Some(PCI_STUB) {
            let e = PciError::Internal(format!(
                "Active {other} devices on bus with {}, not doing bus reset",
                f.name
            ));
            return Err(e.to_string());
        }
    }
    let b = PciFn::new(f.root(), &bridge).map_err(|e| e.to_string())?;
    let attr = b.path("reset_subordinate");
    if !attr.exists() {
        return Err(none());
    }
    sysfs::write_attr(&attr, "1").map_err(|e| {
        PciError::system(format!("Failed to reset the bus below {bridge}"), &e).to_string()
    })
}

/// The PCI functions below a bridge's directory, at any depth.
fn behind(root: &nodedev::HostRoot, dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root.join(dir))
        .into_iter()
        .flatten()
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        if sysfs::is_pci_name(&n) && e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(behind(root, &format!("{dir}/{n}")));
            out.push(n);
        }
    }
    out
}
