//! The fake hosts the test suites and the benchmark run against, in one place.
//!
//! - [`sample`]: a small host (the daemon's RPC, hotplug and service tests);
//! - [`rich`]: PCIe, disks, partitions, virtual interfaces, USB, SCSI and DRM;
//!   [`rich_full`] adds SR-IOV, mdev, VPD, s390, vDPA and Fibre Channel;
//! - real-world trees laid out as the kernel and udevd lay out real hardware:
//!   [`sriov`], [`usb_sas`], [`fc_mdev_s390`];
//! - generated trees of any size: [`scale`] and [`sriov_scale`];
//! - [`s390`]: an s390 host with DASDs, online and offline CCW devices, qeth ccwgroup
//!   cards (layer 2, layer 3, generic) and a zPCI function whose VPD needs escaping;
//! - [`hostile`]: odd sysfs content discovery must survive.
//!
//! Each builder writes the same files, in the same order, on every call: the
//! differential tests compare what our daemon and libvirt (11.3 and 9.0) make of them.

mod real_world;
mod rich;
pub(crate) mod s390;
mod sample;
mod scale;

pub use crate::hostile::hostile_tree as hostile;
pub use real_world::{
    fc_mdev_s390, pci_fn, scsi_host, sriov, usb_sas, FcPort, FC_HBA_WWN, FC_VHBA_WWN,
};
pub use rich::{rich, rich_full, NIC_IF, VDPA_CHARDEV};
pub use s390::{s390, DASD_UID};
pub use sample::{sample, NET_PREFIX};
pub use scale::{scale, sriov_scale};

use std::fmt::Display;
use std::io;
use std::path::Path;

use crate::{DmiSpec, FakeSys, MdevTypeSpec, NetSpec, PciSpec, PcieSpec};

/// A PCI function's identity: (vendor, device, class).
pub type PciIds = (u16, u16, u32);

/// A PCI Express link whose status equals its capability.
pub fn pcie_link(port_type: u8, speed: u8, width: u8) -> PcieSpec {
    PcieSpec {
        port_type,
        link_port: 0,
        cap_speed: speed,
        cap_width: width,
        sta_speed: speed,
        sta_width: width,
    }
}

/// A PCI function with `ids`, bound to `driver` when given.
fn pci_spec(ids: PciIds, driver: Option<&str>, pcie: Option<PcieSpec>, header_type: u8) -> PciSpec {
    PciSpec {
        vendor: ids.0,
        device: ids.1,
        class: ids.2,
        driver: driver.map(str::to_owned),
        header_type,
        pcie,
        ..Default::default()
    }
}

/// A new tree for a machine whose DMI data is, in order: product name, system vendor,
/// product version, serial, UUID, BIOS vendor, BIOS version and BIOS date.
fn machine(dir: &Path, dmi: [&str; 8]) -> io::Result<FakeSys> {
    let f = FakeSys::new(dir)?;
    let [name, vendor, version, serial, uuid, bios_vendor, bios_version, bios_date] =
        dmi.map(|s| Some(s.to_owned()));
    f.dmi(&DmiSpec {
        product_name: name,
        sys_vendor: vendor,
        product_version: version,
        product_serial: serial,
        product_uuid: uuid,
        bios_vendor,
        bios_version,
        bios_date,
    })?;
    Ok(f)
}

/// The PC core of the small trees: host bridge 00:00.0 (`bridge_config` bytes of config
/// space, 0 for the default), PCIe root port 00:1c.0 (device id `port_device`, link
/// `port_link`) and behind it an e1000e NIC 01:00.0 (link `nic_link`); returns the NIC.
fn bridge_port_nic(
    f: &FakeSys,
    bridge_config: usize,
    port_device: u16,
    port_link: PcieSpec,
    nic_link: PcieSpec,
) -> io::Result<String> {
    f.pci_device(
        "0000:00:00.0",
        None,
        &PciSpec {
            config_size: bridge_config,
            ..pci_spec((0x8086, 0x29c0, 0x060000), None, None, 0)
        },
    )?;
    let port = f.pci_device(
        "0000:00:1c.0",
        None,
        &pci_spec(
            (0x8086, port_device, 0x060400),
            Some("pcieport"),
            Some(port_link),
            1,
        ),
    )?;
    f.pci_device(
        "0000:01:00.0",
        Some(&port),
        &PciSpec {
            numa_node: Some(0),
            ..pci_spec(
                (0x8086, 0x10d3, 0x020000),
                Some("e1000e"),
                Some(nic_link),
                0,
            )
        },
    )
}

/// The small trees' SATA controller 00:1f.2 (conventional PCI, ahci).
fn ahci(f: &FakeSys) -> io::Result<String> {
    f.pci_device(
        "0000:00:1f.2",
        None,
        &pci_spec((0x8086, 0x2922, 0x010601), Some("ahci"), None, 0),
    )
}

/// A conventional PCI function on the root bus (vendor Intel, a device id derived from
/// the class) bound to `driver`.
fn simple_pci(f: &FakeSys, addr: &str, class: u32, driver: &str) -> io::Result<String> {
    let ids = (0x8086, 0x1000 + (class >> 16) as u16, class);
    f.pci_device(addr, None, &pci_spec(ids, Some(driver), None, 0))
}

/// A virtual interface that is down and has no speed.
fn down_net(f: &FakeSys, parent: Option<&str>, mut n: NetSpec, state: &str) -> io::Result<String> {
    n.operstate = state.into();
    n.speed = None;
    f.net(parent, &n)
}

impl FakeSys {
    /// An I/O subchannel `schid` with its CCW device of the same bus id, bound to `driver`
    /// and `online` ("1") or not ("0").
    fn io_subchannel(&self, schid: &str, online: &str, driver: &str) -> io::Result<String> {
        let sch = self.css(schid, Some("io_subchannel"), Some(schid))?;
        self.ccw(&sch, schid, online, driver)
    }

    /// A subchannel `schid` bound to vfio_ccw (device `busid`) offering the vfio_ccw-io
    /// mdev type with `available` instances.
    fn vfio_ccw(&self, schid: &str, busid: &str, available: u32) -> io::Result<String> {
        let sch = self.css(schid, Some("vfio_ccw"), Some(busid))?;
        let name = Some("I/O subchannel (Non-QDIO)");
        let t = MdevTypeSpec::new("vfio_ccw-io", name, "vfio-ccw", available);
        self.mdev_types(&sch, &[t])?;
        Ok(sch)
    }

    /// The vfio_ap matrix device offering vfio_ap-passthrough with `available` instances.
    fn vfio_ap_matrix(&self, available: u32) -> io::Result<String> {
        let matrix = self.ap_matrix()?;
        let name = Some("VFIO AP Passthrough Device");
        let t = MdevTypeSpec::new("vfio_ap-passthrough", name, "vfio-ap", available);
        self.mdev_types(&matrix, &[t])?;
        Ok(matrix)
    }

    /// A USB device's directory with its uevent: char device 189:N numbered from `bus` and
    /// `devnum` as the kernel does, with `more` properties after `DEVTYPE`.
    fn usb_device_uevent(
        &self,
        path: &str,
        bus: u32,
        devnum: u32,
        more: &[(&str, &str)],
    ) -> io::Result<()> {
        let minor = ((bus - 1) * 128 + devnum - 1).to_string();
        let devname = format!("bus/usb/{bus:03}/{devnum:03}");
        let (busnum, devnum) = (format!("{bus:03}"), format!("{devnum:03}"));
        let mut props = vec![
            ("MAJOR", "189"),
            ("MINOR", &*minor),
            ("DEVNAME", &*devname),
            ("DEVTYPE", "usb_device"),
        ];
        props.extend_from_slice(more);
        props.extend([("BUSNUM", &*busnum), ("DEVNUM", &*devnum)]);
        self.device(path, "usb", true, &props)
    }

    /// Writes the attribute files `name` = `value` (plus newline) in directory `dir`, in order.
    pub(crate) fn attrs<V: Display>(&self, dir: &str, attrs: &[(&str, V)]) -> io::Result<()> {
        for (name, value) in attrs {
            self.write(&format!("{dir}/{name}"), format!("{value}\n"))?;
        }
        Ok(())
    }

    /// A class device `dir` (no uevent properties) with attribute files.
    fn class_dev<V: Display>(&self, dir: &str, class: &str, attrs: &[(&str, V)]) -> io::Result<()> {
        self.device(dir, class, false, &[])?;
        self.attrs(dir, attrs)
    }

    /// A transport object's directory `dir` (a `uevent` and nothing else, as the SCSI
    /// transport classes make them) with its class device `dir/class/<name>`, where `name`
    /// is `dir`'s own; returns the class device's path.
    fn transport(&self, dir: &str, class: &str) -> io::Result<String> {
        self.write(&format!("{dir}/uevent"), "")?;
        let name = dir.rsplit('/').next().unwrap_or(dir);
        let c = format!("{dir}/{class}/{name}");
        self.device(&c, class, false, &[])?;
        Ok(c)
    }

    /// SCSI host `hostN` below `parent` with its `scsi_host` class device holding `attrs`.
    fn scsi_host_dev<V: Display>(
        &self,
        parent: &str,
        n: u32,
        attrs: &[(&str, V)],
    ) -> io::Result<String> {
        let host = format!("{parent}/host{n}");
        self.device(&host, "scsi", true, &[("DEVTYPE", "scsi_host")])?;
        self.class_dev(&format!("{host}/scsi_host/host{n}"), "scsi_host", attrs)?;
        Ok(host)
    }

    /// SCSI target `name` (`targetH:C:T`) below `parent`.
    fn scsi_target(&self, parent: &str, name: &str) -> io::Result<String> {
        let target = format!("{parent}/{name}");
        self.device(&target, "scsi", true, &[("DEVTYPE", "scsi_target")])?;
        Ok(target)
    }

    /// SCSI device (LUN) `hctl` below `target`, bound to `driver` when given.
    fn scsi_lun(
        &self,
        target: &str,
        hctl: &str,
        driver: Option<&str>,
        more: &[(&str, &str)],
    ) -> io::Result<String> {
        let lun = format!("{target}/{hctl}");
        let mut props = vec![("DEVTYPE", "scsi_device")];
        props.extend(driver.map(|d| ("DRIVER", d)));
        props.extend_from_slice(more);
        self.device(&lun, "scsi", true, &props)?;
        if let Some(d) = driver {
            self.bind_driver(&lun, "scsi", d)?;
        }
        Ok(lun)
    }

    /// The SCSI generic node `sgN` of `lun`.
    fn scsi_generic(&self, lun: &str, n: u32) -> io::Result<()> {
        let (sg, minor) = (format!("sg{n}"), n.to_string());
        self.device(
            &format!("{lun}/scsi_generic/{sg}"),
            "scsi_generic",
            false,
            &[("MAJOR", "21"), ("MINOR", &minor), ("DEVNAME", &sg)],
        )
    }

    /// A udev database entry as udevd writes it (`S:` links, `L:` priority, `I:` init
    /// time, `E:` properties, `G:`/`Q:` tags, `V:` version), replacing any earlier one.
    fn udevd_db(
        &self,
        id: &str,
        props: &[(&str, &str)],
        links: &[&str],
        tags: &[&str],
    ) -> io::Result<()> {
        let mut s = String::new();
        for l in links {
            s.push_str(&format!("S:{l}\n"));
        }
        if !links.is_empty() {
            s.push_str("L:0\n");
        }
        s.push_str("I:6235721\n");
        for (k, v) in props {
            s.push_str(&format!("E:{k}={v}\n"));
        }
        for t in tags {
            s.push_str(&format!("G:{t}\n"));
        }
        for t in tags {
            s.push_str(&format!("Q:{t}\n"));
        }
        s.push_str("V:1\n");
        self.write(&format!("/run/udev/data/{id}"), s)
    }
}
