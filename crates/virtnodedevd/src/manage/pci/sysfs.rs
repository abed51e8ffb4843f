//! One PCI function as `virpci.c` handles it: its files under `/sys/bus/pci/devices`, the
//! driver it is bound to, and the `driver_override` / `unbind` / `drivers_probe` writes that
//! move it to another driver. Every path goes through the host root.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nodedev::HostRoot;

use super::PciError;

/// The drivers virpci.c knows as stubs (`virPCIStubDriver`).
pub const VFIO_PCI: &str = "vfio-pci";
pub const PCI_STUB: &str = "pci-stub";

pub struct PciFn<'a> {
    root: &'a HostRoot,
    /// `dddd:bb:ss.f`.
    pub name: String,
}

/// `virFileWriteStr(path, value, 0)`: no O_CREAT, so a missing attribute fails as in sysfs.
pub fn write_attr(path: &Path, value: &str) -> std::io::Result<()> {
    // Test builds only: the tests that run on the real host set this, so that a protection
    // that failed to refuse still cannot unbind or reset a real device.
    #[cfg(debug_assertions)]
    if std::env::var_os("VIRTNODEDEVD_TEST_NO_PCI_WRITES").is_some() {
        return Err(std::io::Error::from_raw_os_error(
            nix::errno::Errno::EPERM as i32,
        ));
    }
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking: a FIFO planted in a fake tree fails (ENXIO) instead of waiting for a
    // reader; sysfs attributes and regular files are unaffected.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?
        .write_all(value.as_bytes())
}

impl<'a> PciFn<'a> {
    /// `virPCIDeviceNew`: the function must have a config space.
    pub fn new(root: &'a HostRoot, name: &str) -> Result<Self, PciError> {
        let f = PciFn {
            root,
            name: name.to_owned(),
        };
        f.check_present()?;
        Ok(f)
    }

    pub fn check_present(&self) -> Result<(), PciError> {
        let config = self.path("config");
        if let Err(e) = std::fs::metadata(&config) {
            return Err(PciError::system(
                format!(
                    "Device {} not found: could not access {}",
                    self.name,
                    self.host("config")
                ),
                &e,
            ));
        }
        Ok(())
    }

    /// `/sys/bus/pci/devices/<name>/<file>` inside the root.
    pub fn path(&self, file: &str) -> PathBuf {
        self.root.join(&self.host(file))
    }

    /// The same path as the host shows it (in messages).
    pub fn host(&self, file: &str) -> String {
        format!("/sys/bus/pci/devices/{}/{file}", self.name)
    }

    pub fn root(&self) -> &HostRoot {
        self.root
    }

    /// `virPCIDeviceGetCurrentDriverPathAndName`: the bound driver's name.
    pub fn driver(&self) -> Result<Option<String>, PciError> {
        let link = self.path("driver");
        let Ok(meta) = std::fs::symlink_metadata(&link) else {
            return Ok(None);
        };
        if !meta.file_type().is_symlink() {
            return Err(PciError::Internal(format!(
                "Invalid device {} driver file {} is not a symlink",
                self.name,
                self.host("driver")
            )));
        }
        let target = std::fs::read_link(&link).map_err(|_| {
            PciError::Internal(format!(
                "Unable to resolve device {} driver symlink {}",
                self.name,
                self.host("driver")
            ))
        })?;
        Ok(target.file_name().map(|n| n.to_string_lossy().into_owned()))
    }

    /// `virPCIDeviceGetCurrentDriverNameAndType`: the driver, and whether it is vfio-pci or
    /// one of its variants (those give the device a `vfio-dev` directory).
    pub fn vfio_driver(&self) -> Result<(Option<String>, bool), PciError> {
        let d = self.driver()?;
        let vfio = match d.as_deref() {
            None => false,
            Some(VFIO_PCI) => true,
            Some(_) => self.path("vfio-dev").is_dir(),
        };
        Ok((d, vfio))
    }

    /// What the device's `driver_override` holds; the kernel shows "(null)" for none.
    pub fn driver_override(&self) -> Option<String> {
        let s = read_text(self.path("driver_override")).ok()?;
        let s = s.trim();
        (!s.is_empty() && s != "(null)").then(|| s.to_owned())
    }

    /// `virPCIGetHeaderType`: the config space's header type (0 endpoint, 1 bridge, 2
    /// CardBus). Only that byte is read, as libvirt does: each 4 bytes of a configuration
    /// space is a bus transaction, in a VM a trap (the whole space took 25 ms on the
    /// development VM). A failed read counts as 0, as in libvirt.
    pub fn header_type(&self) -> Result<u8, PciError> {
        use std::os::unix::fs::FileExt;
        let config = nodedev::open_nonblocking(self.path("config")).map_err(|e| {
            PciError::system(
                format!("Failed to open config space file '{}'", self.host("config")),
                &e,
            )
        })?;
        let mut b = [0u8; 1];
        let t = match config.read_exact_at(&mut b, 0x0e) {
            Ok(()) => b[0] & 0x7f,
            Err(_) => 0,
        };
        if t > 2 {
            return Err(PciError::Internal(format!(
                "Unknown PCI header type '{t}' for device '{}'",
                self.name
            )));
        }
        Ok(t)
    }

    /// `virPCIDeviceUnbind`.
    pub fn unbind(&self) -> Result<(), PciError> {
        let Some(driver) = self.driver()? else {
            return Ok(());
        };
        let path = self.path("driver/unbind");
        if path.exists() {
            write_attr(&path, &self.name).map_err(|e| {
                PciError::system(
                    format!("Failed to unbind PCI device '{}' from {driver}", self.name),
                    &e,
                )
            })?;
        }
        Ok(())
    }

    /// `virPCIDeviceBindWithDriverOverride`: override, unbind, probe. "\n" as the driver
    /// clears the override, so the probe finds the device's own driver.
    pub fn bind_with_override(&self, driver: &str) -> Result<(), PciError> {
        write_attr(&self.path("driver_override"), driver).map_err(|e| {
            PciError::system(
                format!(
                    "Failed to add driver '{driver}' to driver_override interface of PCI device '{}'",
                    self.name
                ),
                &e,
            )
        })?;
        self.unbind()?;
        self.probe()
    }

    /// The second half of `virPCIDeviceRebind`.
    pub fn probe(&self) -> Result<(), PciError> {
        write_attr(&self.root.join("/sys/bus/pci/drivers_probe"), &self.name).map_err(|e| {
            PciError::system(
                format!("Failed to trigger a probe for PCI device '{}'", self.name),
                &e,
            )
        })
    }

    /// Waits until `done` holds for the bound driver; `Ok(false)` after `limit`. A device
    /// that disappears meanwhile fails as `virPCIDeviceNew` would.
    pub fn wait_driver(
        &self,
        limit: Duration,
        done: impl Fn(Option<&str>) -> bool,
    ) -> Result<bool, PciError> {
        let start = Instant::now();
        loop {
            self.check_present()?;
            if done(self.driver()?.as_deref()) {
                return Ok(true);
            }
            if start.elapsed() >= limit {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The members of the function's IOMMU group, itself included; `None` without one.
    pub fn iommu_group(&self) -> Option<(String, Vec<String>)> {
        let link = std::fs::read_link(self.path("iommu_group")).ok()?;
        let group = link.file_name()?.to_string_lossy().into_owned();
        let dir = self
            .root
            .join(&format!("/sys/kernel/iommu_groups/{group}/devices"));
        let mut members: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        members.sort();
        Some((group, members))
    }

    /// The function's canonical directory, as the host names it.
    pub fn syspath(&self) -> Option<String> {
        let p = self.root.canonicalize(
            &self
                .root
                .join(&format!("/sys/bus/pci/devices/{}", self.name)),
        )?;
        Some(self.root.host_path(&p))
    }
}

/// Whether a sysfs path component names a PCI function (`dddd:bb:ss.f`).
pub fn is_pci_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10) || c.is_ascii_hexdigit())
}

/// The PCI functions on a host sysfs path, outermost first (bridges, then the device).
pub fn pci_ancestors(host_path: &str) -> Vec<String> {
    host_path
        .split('/')
        .filter(|c| is_pci_name(c))
        .map(str::to_owned)
        .collect()
}

/// The most read of one file: `modules.alias` is about a megabyte; a fake tree may plant
/// anything where a small attribute belongs.
const READ_MAX: u64 = 64 << 20;

/// A whole file as text, never blocking on a FIFO planted in its place and never more
/// than [`READ_MAX`] (sysfs, procfs and the fake trees are read through this).
pub(super) fn read_text(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    String::from_utf8(read_bytes(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// [`read_text`] as bytes.
pub(super) fn read_bytes(path: impl AsRef<std::path::Path>) -> std::io::Result<Vec<u8>> {
    nodedev::read_at_most(path, READ_MAX)
}
