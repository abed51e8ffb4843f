//! Builders for SR-IOV, mediated devices, s390 (channel subsystem and AP
//! crypto) and vDPA, laid out as the kernel does.

use std::io;

use crate::FakeSys;

/// One `mdev_supported_types/<id>` directory.
#[derive(Clone, Debug)]
pub struct MdevTypeSpec {
    pub id: String,
    /// `name` file; `None` omits it (it is optional in the kernel ABI).
    pub name: Option<String>,
    /// `device_api` file ("vfio-pci", "vfio-ccw", "vfio-ap"); `None` omits it.
    pub device_api: Option<String>,
    /// Raw content of `available_instances` (normally a number).
    pub available_instances: String,
}

impl MdevTypeSpec {
    pub fn new(id: &str, name: Option<&str>, api: &str, avail: u32) -> MdevTypeSpec {
        MdevTypeSpec {
            id: id.into(),
            name: name.map(str::to_string),
            device_api: Some(api.into()),
            available_instances: avail.to_string(),
        }
    }
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

impl FakeSys {
    /// Make `pf` (a PCI device path) an SR-IOV physical function with
    /// `sriov_totalvfs` = `total` and the given virtual functions (PCI
    /// device paths, in `virtfnN` order); each VF gets its `physfn` link.
    pub fn sriov(&self, pf: &str, total: Option<u32>, vfs: &[String]) -> io::Result<()> {
        if let Some(t) = total {
            self.write(&format!("{pf}/sriov_totalvfs"), format!("{t}\n"))?;
            self.write(&format!("{pf}/sriov_numvfs"), format!("{}\n", vfs.len()))?;
        }
        for (i, vf) in vfs.iter().enumerate() {
            self.symlink(vf, &format!("{pf}/virtfn{i}"))?;
            self.symlink(pf, &format!("{vf}/physfn"))?;
        }
        Ok(())
    }

    /// Give `parent` (any device path) `mdev_supported_types`, in the
    /// order given (directory order is creation order on most filesystems,
    /// which is what libvirt shows), and register it in `class/mdev_bus`.
    pub fn mdev_types(&self, parent: &str, types: &[MdevTypeSpec]) -> io::Result<()> {
        for t in types {
            let d = format!("{parent}/mdev_supported_types/{}", t.id);
            std::fs::create_dir_all(self.path(&format!("{d}/devices")))?;
            if let Some(n) = &t.name {
                self.write(&format!("{d}/name"), format!("{n}\n"))?;
            }
            if let Some(a) = &t.device_api {
                self.write(&format!("{d}/device_api"), format!("{a}\n"))?;
            }
            self.write(
                &format!("{d}/available_instances"),
                format!("{}\n", t.available_instances),
            )?;
        }
        self.symlink(parent, &format!("/sys/class/mdev_bus/{}", basename(parent)))
    }

    /// A mediated device `uuid` of type `type_id` (which must exist under
    /// the parent's `mdev_supported_types`), in IOMMU group `group`.
    /// Returns its path.
    pub fn mdev(
        &self,
        parent: &str,
        uuid: &str,
        type_id: &str,
        group: Option<u32>,
    ) -> io::Result<String> {
        let devpath = format!("{parent}/{uuid}");
        self.device(&devpath, "mdev", true, &[("MDEV_TYPE", type_id)])?;
        let tdir = format!("{parent}/mdev_supported_types/{type_id}");
        self.symlink(&tdir, &format!("{devpath}/mdev_type"))?;
        self.symlink(&devpath, &format!("{tdir}/devices/{uuid}"))?;
        self.bind_driver(&devpath, "mdev", "vfio_mdev")?;
        if let Some(g) = group {
            self.iommu_group(&devpath, g)?;
        }
        Ok(devpath)
    }

    /// The channel subsystem root `/sys/devices/css0` (not a node device).
    fn css_root(&self) -> io::Result<String> {
        let d = "/sys/devices/css0".to_string();
        self.write(&format!("{d}/uevent"), "")?;
        Ok(d)
    }

    /// A subchannel `0.0.0001` on the css bus bound to `driver`
    /// (`io_subchannel`, `vfio_ccw` ...), with `dev_busid` when given.
    pub fn css(
        &self,
        schid: &str,
        driver: Option<&str>,
        dev_busid: Option<&str>,
    ) -> io::Result<String> {
        let root = self.css_root()?;
        let devpath = format!("{root}/{schid}");
        let mut props = vec![("SUBCHANNEL_TYPE", "0")];
        if let Some(d) = driver {
            props.insert(0, ("DRIVER", d));
        }
        self.device(&devpath, "css", true, &props)?;
        if let Some(d) = driver {
            self.bind_driver(&devpath, "css", d)?;
        }
        if let Some(b) = dev_busid {
            self.write(&format!("{devpath}/dev_busid"), format!("{b}\n"))?;
        }
        Ok(devpath)
    }

    /// A CCW device `busid` below subchannel `css`; `online` is the
    /// content of its `online` file (libvirt lists only "1").
    pub fn ccw(&self, css: &str, busid: &str, online: &str, driver: &str) -> io::Result<String> {
        let devpath = format!("{css}/{busid}");
        self.device(
            &devpath,
            "ccw",
            true,
            &[
                ("DRIVER", driver),
                ("CU_TYPE", "3832"),
                ("DEV_TYPE", "0000"),
            ],
        )?;
        self.bind_driver(&devpath, "ccw", driver)?;
        self.write(&format!("{devpath}/online"), format!("{online}\n"))?;
        Ok(devpath)
    }

    /// An AP card `/sys/devices/ap/cardXX` (XX hex adapter id).
    pub fn ap_card(&self, adapter: u32) -> io::Result<String> {
        self.write("/sys/devices/ap/uevent", "")?;
        let devpath = format!("/sys/devices/ap/card{adapter:02x}");
        self.device(&devpath, "ap", true, &[("DEVTYPE", "ap_card")])?;
        Ok(devpath)
    }

    /// An AP queue `XX.YYYY` below its card.
    pub fn ap_queue(&self, card: &str, adapter: u32, domain: u32) -> io::Result<String> {
        let devpath = format!("{card}/{adapter:02x}.{domain:04x}");
        self.device(&devpath, "ap", true, &[("DEVTYPE", "ap_queue")])?;
        Ok(devpath)
    }

    /// The vfio_ap matrix device `/sys/devices/vfio_ap/matrix`.
    pub fn ap_matrix(&self) -> io::Result<String> {
        self.write("/sys/devices/vfio_ap/uevent", "")?;
        let devpath = "/sys/devices/vfio_ap/matrix".to_string();
        self.device(&devpath, "matrix", true, &[])?;
        Ok(devpath)
    }

    /// A vDPA device `name` (e.g. `vdpa0`) below `parent` (or
    /// `/sys/devices/virtual/vdpa`); `vhost` names its vhost-vdpa char
    /// device directory (e.g. `vhost-vdpa-0`), whose `/dev` node is created
    /// when `dev_node` is set.
    pub fn vdpa(
        &self,
        parent: Option<&str>,
        name: &str,
        vhost: Option<&str>,
        dev_node: bool,
    ) -> io::Result<String> {
        let devpath = match parent {
            Some(p) => format!("{p}/{name}"),
            None => format!("/sys/devices/virtual/vdpa/{name}"),
        };
        self.device(&devpath, "vdpa", true, &[("DRIVER", "vhost_vdpa")])?;
        self.bind_driver(&devpath, "vdpa", "vhost_vdpa")?;
        if let Some(v) = vhost {
            let c = format!("{devpath}/{v}");
            self.device(
                &c,
                "vhost-vdpa",
                false,
                &[("MAJOR", "511"), ("MINOR", "0"), ("DEVNAME", v)],
            )?;
            if dev_node {
                self.write(&format!("/dev/{v}"), "")?;
            }
        }
        Ok(devpath)
    }

    /// Write a PCI device's binary `vpd` file.
    pub fn vpd(&self, pci: &str, image: &[u8]) -> io::Result<()> {
        self.write(&format!("{pci}/vpd"), image)
    }
}
