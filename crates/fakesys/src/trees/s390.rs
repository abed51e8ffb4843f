//! An s390 host (an LPAR) as the kernel and udevd lay it out: DASDs behind I/O subchannels,
//! online and offline CCW devices, qeth network cards as ccwgroup devices (layer 2 online
//! with its interface, layer 3 and generic offline) whose CCW devices are group members,
//! and a zPCI network function whose VPD holds characters XML must escape.

use std::io;
use std::path::Path;

use super::{pci_spec, pcie_link};
use crate::{vpd_image, BlockSpec, FakeSys, NetSpec, VpdSpec};

/// Serial (`device/uid`, also udev's `ID_SERIAL`) of the first DASD: libvirt 11.3 names
/// the DASD after its uid, 9.0 after `ID_SERIAL`, so the names agree on a real host.
pub const DASD_UID: &str = "IBM.750000000DXP71.1500.0a";

/// The s390 host. No DMI (s390 has none), so `computer` shows the all-zero UUID.
pub fn s390(dir: &Path) -> io::Result<FakeSys> {
    let f = FakeSys::new(dir)?;
    // DASD with udev's dasd_id data (ID_TYPE=disk: 11.3 reclassifies it as dasd). The
    // database also names the node relatively (`E:DEVNAME=dasda`), which libudev makes
    // absolute as it does the uevent's.
    let dev = f.dasd_ccw("0.0.0000", "0.0.0100", "1", DASD_UID)?;
    f.block(Some(&dev), &BlockSpec::disk("dasda", 94, 0, 41_943_040))?;
    f.udev_db(
        "b94:0",
        &[
            ("DEVNAME", "dasda"),
            ("ID_TYPE", "disk"),
            ("ID_SERIAL", DASD_UID),
            ("ID_UID", DASD_UID),
            ("ID_XUID", DASD_UID),
            ("ID_PATH", "ccw-0.0.0100"),
        ],
        &[
            "disk/by-path/ccw-0.0.0100",
            "disk/by-id/ccw-IBM.750000000DXP71.1500.0a",
        ],
    )?;
    // DASD without udev data: libvirt guesses its type from /dev/dasd.
    let dev = f.dasd_ccw("0.0.0001", "0.0.0101", "1", "IBM.750000000DXP71.1500.0b")?;
    f.block(Some(&dev), &BlockSpec::disk("dasdb", 94, 4, 41_943_040))?;
    // A DASD that is offline: no block device; 9.0 did not list it.
    f.dasd_ccw("0.0.0002", "0.0.0102", "0", "IBM.750000000DXP71.1500.0c")?;

    f.qeth(0xbd00, 0x0010, "qeth_layer2", "1", ("OSD_10GIG", "BD"))?;
    let mut n = NetSpec::new("encbd00", 3, "02:00:00:8c:5a:11");
    n.speed = Some("10000".into());
    f.net(Some("/sys/devices/qeth/0.0.bd00"), &n)?;
    f.qeth(0xbe00, 0x0013, "qeth_layer3", "0", ("HiperSockets", "F0"))?;
    f.qeth(0xbf00, 0x0016, "qeth_generic", "0", ("OSD_1000", "BE"))?;

    // zPCI: a ConnectX-6 Dx function whose VPD needs escaping in every kind of field.
    let ids = (0x15b3, 0x101d, 0x020000);
    let pci = f.pci_device(
        "0001:00:00.0",
        None,
        &pci_spec(ids, Some("mlx5_core"), Some(pcie_link(0, 4, 8)), 0),
    )?;
    let img = vpd_image(&VpdSpec {
        name: Some(b"ConnectX-6 Dx \"EN\" adapter's <25GbE> & more".to_vec()),
        read_only: vec![
            (*b"PN", b"MCX623106AS-CDAT".to_vec()),
            (*b"EC", b"A7".to_vec()),
            (*b"SN", b"MT2137X<1>&'\"".to_vec()),
            (*b"V2", b"Vendor \"quoted\" & <tagged>".to_vec()),
            (*b"V3", Vec::new()),
        ],
        read_write: Some(vec![
            (*b"YA", b"Asset & <tag>".to_vec()),
            (*b"Y1", b"sys'field'".to_vec()),
            (*b"V5", Vec::new()),
        ]),
        rw_space: 4,
        ..Default::default()
    });
    f.vpd(&pci, &img)?;
    Ok(f)
}

impl FakeSys {
    /// An I/O subchannel with a DASD's CCW device (dasd-eckd, `online`, `uid`).
    pub fn dasd_ccw(
        &self,
        schid: &str,
        busid: &str,
        online: &str,
        uid: &str,
    ) -> io::Result<String> {
        let sch = self.css(schid, Some("io_subchannel"), Some(busid))?;
        let dev = self.ccw(&sch, busid, online, "dasd-eckd")?;
        self.write(&format!("{dev}/uid"), format!("{uid}\n"))?;
        Ok(dev)
    }

    /// A qeth card: its three CCW devices (read, write, data: device numbers from
    /// `devno`, each on its subchannel numbered from `schid`, linked back through
    /// `group_device`) and the ccwgroup device `/sys/devices/qeth/<read busid>` of udev
    /// `DEVTYPE` `devtype` with `cdev0`..`cdev2` links, as the qeth driver makes them;
    /// `online` for all, `card` is (`card_type`, `chpid`).
    pub fn qeth(
        &self,
        devno: u16,
        schid: u16,
        devtype: &str,
        online: &str,
        card: (&str, &str),
    ) -> io::Result<String> {
        self.write("/sys/devices/qeth/uevent", "")?;
        let group = format!("/sys/devices/qeth/0.0.{:04x}", devno);
        self.device(
            &group,
            "ccwgroup",
            true,
            &[("DEVTYPE", devtype), ("DRIVER", "qeth")],
        )?;
        self.bind_driver(&group, "ccwgroup", "qeth")?;
        self.attrs(
            &group,
            &[("online", online), ("card_type", card.0), ("chpid", card.1)],
        )?;
        for i in 0..3 {
            let busid = format!("0.0.{:04x}", devno + i);
            let schid = format!("0.0.{:04x}", schid + i);
            let sch = self.css(&schid, Some("io_subchannel"), Some(&busid))?;
            let dev = self.ccw(&sch, &busid, online, "qeth")?;
            self.symlink(&group, &format!("{dev}/group_device"))?;
            self.symlink(&dev, &format!("{group}/cdev{i}"))?;
        }
        Ok(group)
    }
}
