//! Builder of fake sysfs trees (plus udev database and `/dev`) for tests.
//!
//! Lays a tree out the way the kernel does, so both our discovery and
//! libvirt 9.0 (with the tree bind-mounted over `/sys` and `/run/udev`)
//! accept it: every device directory has a `uevent` file and a `subsystem`
//! symlink to `bus/X` or `class/X`; bus devices are linked from
//! `bus/X/devices/NAME`, class devices from `class/X/NAME` (and block
//! devices from `block/NAME`); a bound driver is a `driver` symlink to
//! `bus/X/drivers/NAME`; PCI devices have a binary `config` file.
//! All symlinks are relative, like sysfs's own.

mod devices;
mod hostile;
pub mod trees;
mod vpd;

pub use devices::MdevTypeSpec;
pub use hostile::{add_pciaccess_breakers, hostile_tree, HOSTILE_NET_PREFIX};
pub use vpd::{vpd_image, VpdSpec};

use std::fmt::Write as _;
use std::io;
use std::path::{Component, Path, PathBuf};

/// A fake host root under construction.
pub struct FakeSys {
    root: PathBuf,
}

/// DMI identification shown by the `computer` device.
#[derive(Clone, Debug, Default)]
pub struct DmiSpec {
    pub product_name: Option<String>,
    pub sys_vendor: Option<String>,
    pub product_version: Option<String>,
    pub product_serial: Option<String>,
    pub product_uuid: Option<String>,
    pub bios_vendor: Option<String>,
    pub bios_version: Option<String>,
    pub bios_date: Option<String>,
}

/// PCI Express capability contents.
#[derive(Clone, Copy, Debug)]
pub struct PcieSpec {
    /// Device/port type (0 endpoint, 4 root port, 6 downstream port,
    /// 9 root complex integrated endpoint ...).
    pub port_type: u8,
    pub link_port: u8,
    /// Speed code (1 = 2.5GT/s, 2 = 5, 3 = 8, 4 = 16 ...).
    pub cap_speed: u8,
    pub cap_width: u8,
    pub sta_speed: u8,
    pub sta_width: u8,
}

/// One PCI function.
#[derive(Clone, Debug, Default)]
pub struct PciSpec {
    pub vendor: u16,
    pub device: u16,
    /// 24-bit class code, e.g. 0x020000 for an Ethernet controller.
    pub class: u32,
    /// Bound driver name, if any.
    pub driver: Option<String>,
    /// Header type (0 endpoint, 1 PCI bridge, 2 CardBus bridge).
    pub header_type: u8,
    /// PCI Express capability; `None` for conventional PCI.
    pub pcie: Option<PcieSpec>,
    /// Size of the `config` file; 0 picks 4096 for PCIe, 256 otherwise.
    pub config_size: usize,
    /// Do not create the `config` file at all.
    pub no_config: bool,
    pub numa_node: Option<i32>,
    /// Replace the generated configuration space entirely.
    pub raw_config: Option<Vec<u8>>,
}

/// A network interface.
#[derive(Clone, Debug)]
pub struct NetSpec {
    pub name: String,
    pub ifindex: u32,
    pub address: String,
    pub operstate: String,
    /// Content of `speed` (e.g. "1000", "-1"); `None` omits the file.
    pub speed: Option<String>,
    /// `DEVTYPE` in uevent (e.g. "wlan", "bridge").
    pub devtype: Option<String>,
}

impl NetSpec {
    pub fn new(name: &str, ifindex: u32, address: &str) -> NetSpec {
        NetSpec {
            name: name.into(),
            ifindex,
            address: address.into(),
            operstate: "up".into(),
            speed: Some("1000".into()),
            devtype: None,
        }
    }
}

/// A block device (whole disk).
#[derive(Clone, Debug)]
pub struct BlockSpec {
    pub name: String,
    pub major: u32,
    pub minor: u32,
    /// Size in 512-byte sectors (`size` file).
    pub size: u64,
    pub logical_block_size: u64,
    pub removable: bool,
    /// `DEVTYPE` (normally "disk"; "partition" for partitions).
    pub devtype: String,
}

impl BlockSpec {
    pub fn disk(name: &str, major: u32, minor: u32, size: u64) -> BlockSpec {
        BlockSpec {
            name: name.into(),
            major,
            minor,
            size,
            logical_block_size: 512,
            removable: false,
            devtype: "disk".into(),
        }
    }
}

/// Relative path from directory `from` to `to` (both absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    out
}

impl FakeSys {
    /// Start a tree in `dir` (created if needed).
    pub fn new(dir: impl AsRef<Path>) -> io::Result<FakeSys> {
        let root = dir.as_ref().to_path_buf();
        for d in [
            "sys/devices/virtual",
            "sys/bus",
            "sys/class",
            "sys/block",
            "run/udev/data",
            "dev",
        ] {
            std::fs::create_dir_all(root.join(d))?;
        }
        Ok(FakeSys { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Absolute path inside the tree for a host path like `/sys/devices/x`.
    pub fn path(&self, host_path: &str) -> PathBuf {
        self.root.join(host_path.trim_start_matches('/'))
    }

    /// Write a file (creating parent directories).
    pub fn write(&self, host_path: &str, content: impl AsRef<[u8]>) -> io::Result<()> {
        let p = self.path(host_path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, content)
    }

    /// Create a relative symlink at `link` pointing to `target` (host paths).
    pub fn symlink(&self, target: &str, link: &str) -> io::Result<()> {
        let l = self.path(link);
        let t = self.path(target);
        let dir = l.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let _ = std::fs::remove_file(&l);
        std::os::unix::fs::symlink(relative(&dir, &t), &l)
    }

    /// Generic device: directory `devpath` (a host path under
    /// `/sys/devices`), `uevent` with `props`, `subsystem` link and the
    /// bus or class link. `bus` true = `bus/<subsystem>`, else `class/`.
    pub fn device(
        &self,
        devpath: &str,
        subsystem: &str,
        bus: bool,
        props: &[(&str, &str)],
    ) -> io::Result<()> {
        let name = devpath.rsplit('/').next().unwrap_or(devpath);
        let mut uevent = String::new();
        for (k, v) in props {
            let _ = writeln!(uevent, "{k}={v}");
        }
        self.write(&format!("{devpath}/uevent"), uevent)?;
        if bus {
            std::fs::create_dir_all(self.path(&format!("/sys/bus/{subsystem}/drivers")))?;
            self.symlink(
                &format!("/sys/bus/{subsystem}"),
                &format!("{devpath}/subsystem"),
            )?;
            self.symlink(devpath, &format!("/sys/bus/{subsystem}/devices/{name}"))?;
        } else {
            self.symlink(
                &format!("/sys/class/{subsystem}"),
                &format!("{devpath}/subsystem"),
            )?;
            self.symlink(devpath, &format!("/sys/class/{subsystem}/{name}"))?;
        }
        Ok(())
    }

    /// Bind `devpath` (a `bus` device) to driver `driver`.
    pub fn bind_driver(&self, devpath: &str, subsystem: &str, driver: &str) -> io::Result<()> {
        let d = format!("/sys/bus/{subsystem}/drivers/{driver}");
        std::fs::create_dir_all(self.path(&d))?;
        self.symlink(&d, &format!("{devpath}/driver"))
    }

    /// `computer`'s DMI data under `sys/devices/virtual/dmi/id`.
    pub fn dmi(&self, spec: &DmiSpec) -> io::Result<()> {
        let dir = "/sys/devices/virtual/dmi/id";
        self.device(dir, "dmi", false, &[("MODALIAS", "dmi:fake")])?;
        for (file, v) in [
            ("product_name", &spec.product_name),
            ("sys_vendor", &spec.sys_vendor),
            ("product_version", &spec.product_version),
            ("product_serial", &spec.product_serial),
            ("product_uuid", &spec.product_uuid),
            ("bios_vendor", &spec.bios_vendor),
            ("bios_version", &spec.bios_version),
            ("bios_date", &spec.bios_date),
        ] {
            if let Some(v) = v {
                self.write(&format!("{dir}/{file}"), format!("{v}\n"))?;
            }
        }
        Ok(())
    }

    /// A PCI root bus directory like `/sys/devices/pci0000:00`.
    fn pci_root(&self, domain_bus: &str) -> io::Result<String> {
        let d = format!("/sys/devices/pci{domain_bus}");
        std::fs::create_dir_all(self.path(&d))?;
        self.write(&format!("{d}/uevent"), "")?;
        Ok(d)
    }

    /// Add PCI function `addr` ("0000:00:1f.2"). `parent` is the host path
    /// of the upstream bridge's directory, or `None` for the root bus.
    /// Returns the device's host path.
    pub fn pci_device(
        &self,
        addr: &str,
        parent: Option<&str>,
        spec: &PciSpec,
    ) -> io::Result<String> {
        let parent = match parent {
            Some(p) => p.to_string(),
            None => self.pci_root(&addr[..addr.len().min(7)])?,
        };
        let devpath = format!("{parent}/{addr}");
        let mut props: Vec<(String, String)> = Vec::new();
        if let Some(d) = &spec.driver {
            props.push(("DRIVER".into(), d.clone()));
        }
        props.push(("PCI_CLASS".into(), format!("{:X}", spec.class)));
        props.push((
            "PCI_ID".into(),
            format!("{:04X}:{:04X}", spec.vendor, spec.device),
        ));
        props.push(("PCI_SLOT_NAME".into(), addr.into()));
        let pr: Vec<(&str, &str)> = props
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        self.device(&devpath, "pci", true, &pr)?;
        self.write(
            &format!("{devpath}/vendor"),
            format!("0x{:04x}\n", spec.vendor),
        )?;
        self.write(
            &format!("{devpath}/device"),
            format!("0x{:04x}\n", spec.device),
        )?;
        self.write(
            &format!("{devpath}/class"),
            format!("0x{:06x}\n", spec.class),
        )?;
        if let Some(n) = spec.numa_node {
            self.write(&format!("{devpath}/numa_node"), format!("{n}\n"))?;
        }
        if let Some(d) = &spec.driver {
            self.bind_driver(&devpath, "pci", d)?;
        }
        if !spec.no_config {
            let cfg = spec.raw_config.clone().unwrap_or_else(|| pci_config(spec));
            self.write(&format!("{devpath}/config"), cfg)?;
        }
        Ok(devpath)
    }

    /// Put `devpath` in IOMMU group `group`.
    pub fn iommu_group(&self, devpath: &str, group: u32) -> io::Result<()> {
        let g = format!("/sys/kernel/iommu_groups/{group}");
        let name = devpath.rsplit('/').next().unwrap_or(devpath);
        self.symlink(devpath, &format!("{g}/devices/{name}"))?;
        self.symlink(&g, &format!("{devpath}/iommu_group"))
    }

    /// Add a network interface below `parent` (a device host path), or under
    /// `/sys/devices/virtual/net` when `None`. Returns its host path.
    pub fn net(&self, parent: Option<&str>, spec: &NetSpec) -> io::Result<String> {
        let devpath = match parent {
            Some(p) => format!("{p}/net/{}", spec.name),
            None => format!("/sys/devices/virtual/net/{}", spec.name),
        };
        let idx = spec.ifindex.to_string();
        let mut props = Vec::new();
        if let Some(t) = &spec.devtype {
            props.push(("DEVTYPE", t.as_str()));
        }
        props.push(("INTERFACE", spec.name.as_str()));
        props.push(("IFINDEX", idx.as_str()));
        self.device(&devpath, "net", false, &props)?;
        self.write(&format!("{devpath}/address"), format!("{}\n", spec.address))?;
        self.write(&format!("{devpath}/addr_len"), "6\n")?;
        self.write(&format!("{devpath}/ifindex"), format!("{idx}\n"))?;
        self.write(
            &format!("{devpath}/operstate"),
            format!("{}\n", spec.operstate),
        )?;
        if let Some(s) = &spec.speed {
            self.write(&format!("{devpath}/speed"), format!("{s}\n"))?;
        }
        if let Some(p) = parent {
            self.symlink(p, &format!("{devpath}/device"))?;
        }
        Ok(devpath)
    }

    /// Add a block device below `parent` (or `/sys/devices/virtual/block`),
    /// with its `/dev` node placeholder. Returns its host path.
    pub fn block(&self, parent: Option<&str>, spec: &BlockSpec) -> io::Result<String> {
        let devpath = match parent {
            Some(p) => format!("{p}/block/{}", spec.name),
            None => format!("/sys/devices/virtual/block/{}", spec.name),
        };
        let (ma, mi) = (spec.major.to_string(), spec.minor.to_string());
        self.device(
            &devpath,
            "block",
            false,
            &[
                ("MAJOR", ma.as_str()),
                ("MINOR", mi.as_str()),
                ("DEVNAME", spec.name.as_str()),
                ("DEVTYPE", spec.devtype.as_str()),
            ],
        )?;
        self.symlink(&devpath, &format!("/sys/block/{}", spec.name))?;
        self.write(&format!("{devpath}/size"), format!("{}\n", spec.size))?;
        self.write(
            &format!("{devpath}/queue/logical_block_size"),
            format!("{}\n", spec.logical_block_size),
        )?;
        self.write(
            &format!("{devpath}/removable"),
            if spec.removable { "1\n" } else { "0\n" },
        )?;
        self.write(&format!("{devpath}/dev"), format!("{ma}:{mi}\n"))?;
        if let Some(p) = parent {
            self.symlink(p, &format!("{devpath}/device"))?;
        }
        self.write(&format!("/dev/{}", spec.name), "")?;
        Ok(devpath)
    }

    /// Write (replace) the udev database entry `id` (`n3`, `b8:0`,
    /// `+pci:0000:00:01.0` ...) with properties and `/dev` links
    /// (given without the `/dev/` prefix).
    pub fn udev_db(&self, id: &str, props: &[(&str, &str)], links: &[&str]) -> io::Result<()> {
        let mut s = String::new();
        for l in links {
            let _ = writeln!(s, "S:{l}");
        }
        s.push_str("I:1000000\n");
        for (k, v) in props {
            let _ = writeln!(s, "E:{k}={v}");
        }
        s.push_str("G:systemd\nQ:systemd\nV:1\n");
        self.write(&format!("/run/udev/data/{id}"), s)
    }

    /// Add one property to the udev database entry `id`.
    pub fn udev_property(&self, id: &str, key: &str, value: &str) -> io::Result<()> {
        let p = self.path(&format!("/run/udev/data/{id}"));
        let mut s = std::fs::read_to_string(&p).unwrap_or_default();
        let _ = writeln!(s, "E:{key}={value}");
        self.write(&format!("/run/udev/data/{id}"), s)
    }
}

/// Build a PCI configuration space: ids, class, header type, and a
/// capability list holding power management and (optionally) PCI Express.
pub fn pci_config(spec: &PciSpec) -> Vec<u8> {
    let size = match spec.config_size {
        0 if spec.pcie.is_some() => 4096,
        0 => 256,
        n => n,
    };
    let mut c = vec![0u8; size.max(64)];
    c[0..2].copy_from_slice(&spec.vendor.to_le_bytes());
    c[2..4].copy_from_slice(&spec.device.to_le_bytes());
    c[0x08] = 0x01; // revision
    c[0x09] = (spec.class & 0xff) as u8;
    c[0x0a] = ((spec.class >> 8) & 0xff) as u8;
    c[0x0b] = ((spec.class >> 16) & 0xff) as u8;
    c[0x0e] = spec.header_type;
    if size >= 0x80 {
        // status: capability list present; first capability at 0x40 (PM).
        c[0x06] = 0x10;
        c[0x34] = 0x40;
        c[0x40] = 0x01; // PCI_CAP_ID_PM
        c[0x42] = 0x03;
        if let Some(e) = spec.pcie {
            c[0x41] = 0x60;
            let p = 0x60;
            c[p] = 0x10; // PCI_CAP_ID_EXP
            c[p + 1] = 0x00;
            let flags: u16 = 0x0002 | ((e.port_type as u16 & 0xf) << 4);
            c[p + 2..p + 4].copy_from_slice(&flags.to_le_bytes());
            let lnkcap: u32 = (e.cap_speed as u32 & 0xf)
                | ((e.cap_width as u32 & 0x3f) << 4)
                | ((e.link_port as u32) << 24);
            c[p + 12..p + 16].copy_from_slice(&lnkcap.to_le_bytes());
            let lnksta: u16 = (e.sta_speed as u16 & 0xf) | ((e.sta_width as u16 & 0x3f) << 4);
            c[p + 18..p + 20].copy_from_slice(&lnksta.to_le_bytes());
        }
    }
    c.truncate(size);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links_climb_to_the_common_ancestor() {
        assert_eq!(
            relative(
                Path::new("/r/sys/bus/pci/devices"),
                Path::new("/r/sys/devices/pci0000:00/x")
            ),
            PathBuf::from("../../../devices/pci0000:00/x")
        );
    }

    #[test]
    fn pcie_config_has_express_capability_in_the_list() {
        let c = pci_config(&PciSpec {
            vendor: 0x8086,
            device: 0x1234,
            class: 0x020000,
            pcie: Some(PcieSpec {
                port_type: 0,
                link_port: 0,
                cap_speed: 3,
                cap_width: 4,
                sta_speed: 2,
                sta_width: 1,
            }),
            ..Default::default()
        });
        assert_eq!(c.len(), 4096);
        assert_eq!(c[c[0x41] as usize], 0x10);
    }
}
