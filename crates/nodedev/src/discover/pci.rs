//! PCI devices: `udevProcessPCI`, the dynamic caps of
//! `virNodeDeviceGetPCIDynamicCaps` and config-space parsing from virpci.c.

use std::collections::HashMap;
use std::path::{Component, Path};
use std::sync::Arc;

use super::{generate_name, Ctx};
use crate::hostroot::HostRoot;
use crate::model::{Cap, PciAddr, PciCap, PciExpress, PcieLink};
use crate::sysdir::SysDir;
use crate::udev::{parse_i, parse_ui, UdevDevice};

const PCI_STATUS: usize = 0x06;
const PCI_STATUS_CAP_LIST: u16 = 0x10;
const PCI_HEADER_TYPE: usize = 0x0e;
const PCI_CAPABILITY_LIST: usize = 0x34;
const PCI_CONF_HEADER_LEN: u8 = 0x40;
const PCI_CAP_ID_EXP: u8 = 0x10;
const PCI_EXP_FLAGS: usize = 2;
const PCI_EXP_TYPE_ROOT_INT_EP: u16 = 0x9;
const PCI_EXP_TYPE_ROOT_EC: u16 = 0xa;
const PCI_EXP_LNKCAP: usize = 12;
const PCI_EXP_LNKSTA: usize = 18;
/// Bound on the capability walk; libvirt has none and would spin forever
/// on a looping list, which real devices do not have.
const MAX_CAPS: usize = 48;

/// Vendor and device names from a `pci.ids` file, as libpciaccess's
/// `pci_get_strings` returns them.
pub struct PciIds {
    /// Shared with every device that names them: a host's VFs are thousands of copies of
    /// one vendor and one product.
    vendors: HashMap<u16, Vendor>,
}

/// A vendor's name and its products' names, by product id.
type Vendor = (Arc<str>, HashMap<u16, Arc<str>>);

impl PciIds {
    pub fn load(path: &Path) -> Option<PciIds> {
        let data = crate::hostroot::read(path).ok()?;
        let text = String::from_utf8_lossy(&data);
        let mut vendors: HashMap<u16, Vendor> = HashMap::new();
        let mut cur: Option<u16> = None;
        for line in text.lines() {
            let b = line.as_bytes();
            if b.is_empty() || b[0] == b'#' {
                continue;
            }
            let hex4 = |s: &[u8]| {
                s.len() >= 4
                    && s[..4].iter().all(u8::is_ascii_hexdigit)
                    && (s.len() == 4 || s[4] == b' ')
            };
            if b[0] != b'\t' {
                if hex4(b) {
                    let id = u16::from_str_radix(&line[..4], 16).ok();
                    let name = Arc::from(line[4..].trim_start());
                    if let Some(id) = id {
                        vendors.entry(id).or_insert_with(|| (name, HashMap::new()));
                    }
                    cur = id;
                } else {
                    cur = None;
                }
            } else if b.len() > 1 && b[1] != b'\t' && hex4(&b[1..]) {
                if let Some(v) = cur {
                    let id = u16::from_str_radix(&line[1..5], 16).ok();
                    let name = Arc::from(line[5..].trim_start());
                    if let (Some(id), Some(e)) = (id, vendors.get_mut(&v)) {
                        e.1.entry(id).or_insert(name);
                    }
                }
            }
        }
        Some(PciIds { vendors })
    }

    pub fn lookup(&self, vendor: u32, device: u32) -> (Option<Arc<str>>, Option<Arc<str>>) {
        let Ok(v) = u16::try_from(vendor) else {
            return (None, None);
        };
        match self.vendors.get(&v) {
            None => (None, None),
            Some((vn, devs)) => {
                let dn = u16::try_from(device)
                    .ok()
                    .and_then(|d| devs.get(&d).cloned());
                (Some(vn.clone()), dn)
            }
        }
    }
}

/// A device's configuration space, read a few bytes where they are needed, as libvirt
/// does, rather than whole: each 4 bytes read is a bus transaction, and in a VM a trap to
/// the hypervisor (about 25 µs on the development VM, where reading a PCIe host bridge's
/// 4 KiB took 25 ms, most of the daemon's start-up). A device takes about ten.
struct Config {
    file: std::fs::File,
    /// The file's length: 256 for conventional PCI, 4096 with the extended space.
    len: u64,
}

impl Config {
    /// Opened like every attribute (a FIFO planted in a fake tree cannot hang discovery;
    /// reads of it fail and give zeros).
    fn open(path: &Path, len: u64) -> std::io::Result<Config> {
        let file = crate::hostroot::open_nonblocking(path)?;
        Ok(Config { file, len })
    }

    /// `virPCIDeviceRead`: `N` bytes at `pos`, if they can all be read.
    fn read<const N: usize>(&self, pos: usize) -> Option<[u8; N]> {
        use std::os::unix::fs::FileExt;
        let mut b = [0u8; N];
        self.file.read_exact_at(&mut b, pos as u64).ok()?;
        Some(b)
    }
    // virPCIDeviceRead8/16/32: zero when unreadable.
    fn r8(&self, pos: usize) -> u8 {
        self.read::<1>(pos).map_or(0, |[b]| b)
    }
    fn r16(&self, pos: usize) -> u16 {
        self.read(pos).map_or(0, u16::from_le_bytes)
    }
    fn r32(&self, pos: usize) -> u32 {
        self.read(pos).map_or(0, u32::from_le_bytes)
    }

    /// `virPCIDeviceFindCapabilityOffset`: `Some(offset)` when found, `None`
    /// on any failure, including "not in the list" (libvirt falls through to
    /// its error path in that case too).
    fn find_cap(&self, cap: u8) -> Option<usize> {
        if self.r16(PCI_STATUS) & PCI_STATUS_CAP_LIST == 0 {
            return None;
        }
        let mut pos = self.r8(PCI_CAPABILITY_LIST);
        let mut n = 0;
        while pos >= PCI_CONF_HEADER_LEN && pos != 0xff && n < MAX_CAPS {
            // The capability's id and the next one's offset, in one read; where only the
            // id can be read, the list ends after it (as libvirt's second read fails).
            let Some([id, next]) = self.read::<2>(pos as usize) else {
                return (self.read::<1>(pos as usize) == Some([cap])).then_some(pos as usize);
            };
            if id == cap {
                return Some(pos as usize);
            }
            pos = next;
            n += 1;
        }
        None
    }
}

/// Parse domain/bus/slot/function from the last path component as
/// `udevProcessPCI` does (any single separator between hex fields).
fn parse_addr_from_path(path: &str) -> Option<PciAddr> {
    let last = &path[path.rfind('/')? + 1..];
    let mut it = last.split([':', '.']);
    let mut f = || it.next().and_then(|x| parse_ui(x, 16));
    let a = PciAddr {
        domain: f()?,
        bus: f()?,
        slot: f()?,
        function: f()?,
    };
    Some(a)
}

fn read_id(path: &Path) -> Option<()> {
    let s = crate::hostroot::read(path).ok()?;
    // virPCIDeviceReadID: at most 7 bytes ("0xNNNN\n"), must start with 0x.
    if s.len() > 7 || !s.starts_with(b"0x") {
        return None;
    }
    Some(())
}

pub(super) fn process(ctx: &Ctx, dev: &UdevDevice) -> Option<(String, Cap)> {
    let class = dev.prop("PCI_CLASS").and_then(|c| parse_i(c, 16));
    let Some(class) = class else {
        tracing::debug!(
            "Missing or bad udev property 'PCI_CLASS' on '{}'",
            dev.sysname
        );
        return None;
    };
    let Some(addr) = parse_addr_from_path(&dev.host_syspath) else {
        tracing::debug!(
            "failed to parse the PCI address from sysfs path: '{}'",
            dev.host_syspath
        );
        return None;
    };
    let hex_attr = |n: &str| -> Result<u32, ()> {
        match dev.sysattr(n) {
            None => Ok(0),
            Some(s) => parse_ui(&s, 16).ok_or(()),
        }
    };
    let vendor = hex_attr("vendor").ok()?;
    let product = hex_attr("device").ok()?;
    let (vendor_name, product_name) = match ctx.pci_ids() {
        Some(ids) => ids.lookup(vendor, product),
        None => (None, None),
    };
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, None);
    let numa_node = match dev.sysattr("numa_node") {
        None => -1,
        Some(s) => parse_i(&s, 10)?,
    };
    let mut cap = PciCap {
        class,
        addr,
        vendor,
        product,
        vendor_name,
        product_name,
        numa_node,
        ..Default::default()
    };
    if !dynamic_caps(ctx.root, &SysDir::open(&dev.syspath), &mut cap, true) {
        return None;
    }

    // virPCIDeviceNew: the device must be reachable through bus/pci with a
    // config file and sane vendor/device files.
    let bus_dir = ctx
        .root
        .join("/sys/bus/pci/devices")
        .join(addr.to_sysfs_name());
    let cfg_path = bus_dir.join("config");
    let Ok(meta) = std::fs::metadata(&cfg_path) else {
        tracing::debug!(
            "Device {} not found: could not access {}",
            addr.to_sysfs_name(),
            ctx.root.host_path(&cfg_path)
        );
        return None;
    };
    read_id(&bus_dir.join("vendor"))?;
    read_id(&bus_dir.join("device"))?;
    // Reading the configuration space needs privileges; we are the
    // privileged daemon like libvirt's system instance.
    // A directory opens, but nothing can be read from it: the device is dropped, as
    // when the configuration space was read whole.
    let cfg = (!meta.is_dir())
        .then(|| Config::open(&cfg_path, meta.len()).ok())
        .flatten();
    let Some(cfg) = cfg else {
        tracing::debug!("Failed to open config space file '{}'", cfg_path.display());
        return None;
    };
    let hdr = cfg.r8(PCI_HEADER_TYPE) & 0x7f;
    if hdr >= 3 {
        tracing::debug!(
            "Unknown PCI header type '{hdr}' for device '{}'",
            addr.to_sysfs_name()
        );
        return None;
    }
    cap.hdr_type = hdr;
    let exp = cfg.find_cap(PCI_CAP_ID_EXP);
    // virPCIDeviceInit: when the capability is not found, guess PCIe from
    // a config file of another length than the legacy 256 bytes.
    let is_pcie = match exp {
        Some(_) => true,
        None => cfg.len != 256,
    };
    if is_pcie {
        let mut info = PciExpress::default();
        if let Some(pos) = exp {
            let flags = cfg.r16(pos + PCI_EXP_FLAGS);
            let ty = (flags & 0x00f0) >> 4;
            if ty != PCI_EXP_TYPE_ROOT_INT_EP && ty != PCI_EXP_TYPE_ROOT_EC {
                let t = cfg.r32(pos + PCI_EXP_LNKCAP);
                info.link_cap = Some(PcieLink {
                    port: (t >> 24) as i32,
                    speed: t & 0xf,
                    width: (t & 0x3f0) >> 4,
                });
                let s = cfg.r16(pos + PCI_EXP_LNKSTA) as u32;
                info.link_sta = Some(PcieLink {
                    port: -1,
                    speed: s & 0xf,
                    width: (s & 0x3f0) >> 4,
                });
            }
        }
        cap.pci_express = Some(info);
    }
    Some((name, Cap::Pci(Box::new(cap))))
}

/// PCI address a sysfs link points at (`virPCIGetDeviceAddressFromSysfsLink`); `Err` when
/// there is no such link.
///
/// `physfn` and `virtfnN` point at a sibling device directory (`../0000:01:00.1`): when the
/// sibling is a real directory, it is the canonical target, and two short lookups do what
/// a canonicalization does with a `stat` per path component. Anything else takes that
/// slow path.
fn addr_from_link(root: &HostRoot, dir: &SysDir, link: &str) -> std::io::Result<Option<PciAddr>> {
    let sibling = match dir.with_link(link, |t| {
        let mut c = t.components();
        match (c.next(), c.next(), c.next()) {
            (Some(Component::ParentDir), Some(Component::Normal(n)), None) => {
                n.to_str().map(str::to_owned)
            }
            _ => None,
        }
    }) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(e),
        // Something else than a link: the long way.
        Err(_) => None,
    };
    if let Some(name) = sibling {
        if dir.is_real_dir(&format!("../{name}")) {
            return Ok(PciAddr::parse(&name));
        }
    }
    // A link to nothing counts as no link.
    if !dir.exists(link) {
        return Err(std::io::ErrorKind::NotFound.into());
    }
    let target = root.resolve_device_link(&dir.path().join(link));
    Ok(target.and_then(|t| PciAddr::parse(&t.file_name()?.to_string_lossy())))
}

/// `virNodeDeviceGetPCIDynamicCaps`: SR-IOV, IOMMU group, mdev types, each looked up from
/// the device's directory (`/sys/bus/pci/devices/ADDR` is a link to it).
/// Returns false where libvirt would fail (and drop the device).
///
/// `found` is the first reading, when the device is discovered. Later ones (every XML
/// query) skip what the kernel fixes for a device's lifetime, which only its `remove` and
/// `add` uevents change (the device is then discovered anew):
/// - `physfn`: a VF's link to its PF is made with the VF and goes with it;
/// - whether `sriov_totalvfs` and `vpd` exist: the kernel decides when it adds the device
///   (from its SR-IOV and VPD capabilities); only a PF ever has `virtfnN` links.
///
/// Everything else is read anew each time, as libvirt does: the number of VFs and which,
/// the IOMMU group and its members, mdev types and their free instances, the VPD image.
pub(crate) fn dynamic_caps(root: &HostRoot, dir: &SysDir, cap: &mut PciCap, found: bool) -> bool {
    // SR-IOV
    // virPCIGetPhysicalFunction never fails: a physfn link that does not
    // resolve to a PCI address just means "no PF".
    if found {
        cap.physical_function = addr_from_link(root, dir, "physfn").ok().flatten();
    }
    cap.max_virtual_functions = 0;
    cap.virtual_functions.clear();
    if found || cap.sriov_capable {
        cap.sriov_capable = false;
        match dir.read("sriov_totalvfs", crate::hostroot::READ_MAX) {
            Ok(b) => {
                let s = String::from_utf8_lossy(&b);
                let digits: String = s
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                match digits.parse::<u64>() {
                    Ok(v) => cap.max_virtual_functions = v as u32,
                    Err(_) => return false,
                }
                cap.sriov_capable = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return false,
        }
    }
    while found || cap.sriov_capable {
        let link = format!("virtfn{}", cap.virtual_functions.len());
        match addr_from_link(root, dir, &link) {
            Err(_) => break,
            Ok(Some(a)) => cap.virtual_functions.push(a),
            Ok(None) => return false,
        }
    }

    if !iommu_group(root, dir, cap) {
        return false;
    }

    // mdev types: one unreadable type fails the device.
    match super::mdev::mdev_types(dir) {
        Ok(t) => cap.mdev_types = t,
        Err(()) => {
            cap.mdev_types.clear();
            return false;
        }
    }

    // VPD (optional; an image that does not parse is simply not shown).
    if found {
        cap.vpd_capable = dir.exists("vpd");
    }
    cap.vpd = if cap.vpd_capable {
        super::vpd::read(&dir.path().join("vpd")).map(Box::new)
    } else {
        None
    };
    true
}

/// The IOMMU group (`virPCIDeviceAddressGetIOMMUGroupNum`) and its members
/// (`virPCIDeviceAddressGetIOMMUGroupAddresses`); false where libvirt fails.
fn iommu_group(root: &HostRoot, dir: &SysDir, cap: &mut PciCap) -> bool {
    cap.iommu_group = 0;
    cap.iommu_group_devices.clear();
    // Not a link (or none): no group.
    let Ok(name) = dir.link_name("iommu_group") else {
        return true;
    };
    let members = dir.entries("iommu_group/devices");
    // The members' directory opens only through a link that resolves; the group is then
    // the link's last component (`/sys/kernel/iommu_groups/N` is a real directory).
    let num = match (&members, name.as_deref().and_then(|n| parse_ui(n, 10))) {
        (Ok(_), Some(num)) => num,
        // Anything odd: resolved the long way, as libvirt does. virFileResolveLink
        // canonicalizes: a dangling link fails the device.
        _ => {
            let resolved = root.canonicalize(&dir.path().join("iommu_group"));
            let num = resolved
                .as_deref()
                .and_then(Path::file_name)
                .and_then(|n| parse_ui(n.to_str()?, 10));
            let Some(num) = num else {
                return false;
            };
            num
        }
    };
    match members {
        Ok(members) => {
            for m in members {
                match PciAddr::parse(&m) {
                    Some(a) => cap.iommu_group_devices.push(a),
                    None => return false,
                }
            }
        }
        Err(_) => cap.iommu_group_devices.push(cap.addr),
    }
    cap.iommu_group = num;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bytes: &[u8]) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config");
        std::fs::write(&p, bytes).unwrap();
        let cfg = Config::open(&p, bytes.len() as u64).unwrap();
        (dir, cfg)
    }

    /// A header with a capability list: PM at 0x40, then PCI Express at `exp`.
    fn with_caps(len: usize, exp: u8) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[PCI_STATUS] = PCI_STATUS_CAP_LIST as u8;
        b[PCI_CAPABILITY_LIST] = 0x40;
        b[0x40] = 0x01;
        b[0x41] = exp;
        if (exp as usize) < len {
            b[exp as usize] = PCI_CAP_ID_EXP;
        }
        b
    }

    #[test]
    fn capabilities_are_found_by_walking_the_list() {
        let (_d, cfg) = config(&with_caps(4096, 0xf0));
        assert_eq!(cfg.find_cap(PCI_CAP_ID_EXP), Some(0xf0));
        assert_eq!(cfg.find_cap(0x05), None);
        // Registers past the legacy 256 bytes are read where they are.
        assert_eq!(cfg.r32(0xf0 + PCI_EXP_LNKCAP), 0);
    }

    #[test]
    fn what_cannot_be_read_reads_as_zero() {
        // The list points past the end of the file: not found, like libvirt's failed read.
        let (_d, cfg) = config(&with_caps(0x48, 0x80));
        assert_eq!(cfg.find_cap(PCI_CAP_ID_EXP), None);
        assert_eq!(cfg.r16(0x47), 0);
        assert_eq!(cfg.r8(0x1000), 0);
        // A capability in the file's last byte is found; the list ends after it.
        let mut b = with_caps(0x81, 0x80);
        b[0x80] = PCI_CAP_ID_EXP;
        let (_d, cfg) = config(&b);
        assert_eq!(cfg.find_cap(PCI_CAP_ID_EXP), Some(0x80));
        assert_eq!(cfg.find_cap(0x05), None);
    }

    #[test]
    fn a_looping_list_ends() {
        let mut b = with_caps(256, 0x40);
        b[0x40] = 0x01;
        let (_d, cfg) = config(&b);
        assert_eq!(cfg.find_cap(PCI_CAP_ID_EXP), None);
    }
}
