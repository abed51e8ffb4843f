//! The IOMMU group around a device: whether VFIO could use it (the kernel refuses a group
//! with a member bound to a host driver, which QEMU reports only when the guest starts),
//! and whether a process holds the group or the device open through VFIO (a running guest,
//! a DPDK application), the stand-in for libvirt's list of devices in use by domains.

use super::sysfs::{PciFn, PCI_STUB, VFIO_PCI};
use super::PciError;

/// Drivers that leave DMA to VFIO (the kernel's `driver_managed_dma`): a member bound to
/// one does not make its group unusable.
const VFIO_SAFE: [&str; 3] = [VFIO_PCI, PCI_STUB, "pcieport"];

/// Refuses to bind `dev` to VFIO while another member of its group is bound to a host
/// driver: VFIO could not use the group, and the host driver would share the IOMMU
/// context with the guest.
pub fn check_viable(dev: &PciFn) -> Result<(), PciError> {
    let Some((group, members)) = dev.iommu_group() else {
        return Ok(());
    };
    let mut bound = Vec::new();
    for m in members.iter().filter(|m| **m != dev.name) {
        let Ok(f) = PciFn::new(dev.root(), m) else {
            continue;
        };
        let (driver, vfio) = f.vfio_driver()?;
        let Some(driver) = driver else {
            continue;
        };
        let bridge = f.header_type().is_ok_and(|t| t != 0);
        if vfio || bridge || VFIO_SAFE.contains(&driver.as_str()) {
            continue;
        }
        bound.push(format!("{m} (bound to {driver})"));
    }
    if bound.is_empty() {
        return Ok(());
    }
    Err(PciError::NotViable(format!(
        "IOMMU group {group} of PCI device {} would not be viable: {} still in use by the host; detach {} first, with driver pci-stub if they cannot be detached to vfio-pci",
        dev.name,
        bound.join(", "),
        if bound.len() == 1 { "it" } else { "them" }
    )))
}

/// The processes holding `dev`'s VFIO group (`/dev/vfio/GROUP`) or VFIO device
/// (`/dev/vfio/devices/vfioN`) open: (pid, command).
pub fn holders(dev: &PciFn) -> Vec<(u32, String)> {
    let mut files = Vec::new();
    if let Some((group, _)) = dev.iommu_group() {
        files.push(format!("/dev/vfio/{group}"));
    }
    for e in std::fs::read_dir(dev.path("vfio-dev"))
        .into_iter()
        .flatten()
        .flatten()
    {
        files.push(format!(
            "/dev/vfio/devices/{}",
            e.file_name().to_string_lossy()
        ));
    }
    if files.is_empty() {
        return Vec::new();
    }
    let root = dev.root();
    let mut out = Vec::new();
    for p in std::fs::read_dir(root.join("/proc"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let holds = std::fs::read_dir(p.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|t| files.iter().any(|f| t.as_os_str() == f.as_str()));
        if holds {
            let comm = super::sysfs::read_text(p.path().join("comm")).unwrap_or_default();
            out.push((pid, comm.trim().to_owned()));
        }
    }
    out
}

/// `virHostdevIsPCINodeDeviceUsed`, with the processes holding the device through VFIO as
/// the users.
pub fn check_unused(dev: &PciFn) -> Result<(), PciError> {
    let users = holders(dev);
    if users.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = users
        .iter()
        .map(|(pid, comm)| format!("process {pid} ({comm})"))
        .collect();
    Err(PciError::InUse(format!(
        "PCI device {} is in use by {}",
        dev.name,
        list.join(", ")
    )))
}
