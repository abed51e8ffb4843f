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

/// One qeth card: the bus ids of its three CCW devices (read, write, data), the
/// subchannels they sit on, its udev `DEVTYPE`, `online`, `card_type` and `chpid`.
pub(crate) struct Qeth<'a> {
    pub busids: [&'a str; 3],
    pub schids: [&'a str; 3],
    pub devtype: &'a str,
    pub online: &'a str,
    pub card_type: &'a str,
    pub chpid: &'a str,
}

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

    f.qeth(&Qeth {
        busids: ["0.0.bd00", "0.0.bd01", "0.0.bd02"],
        schids: ["0.0.0010", "0.0.0011", "0.0.0012"],
        devtype: "qeth_layer2",
        online: "1",
        card_type: "OSD_10GIG",
        chpid: "BD",
    })?;
    let mut n = NetSpec::new("encbd00", 3, "02:00:00:8c:5a:11");
    n.speed = Some("10000".into());
    f.net(Some("/sys/devices/qeth/0.0.bd00"), &n)?;
    f.qeth(&Qeth {
        busids: ["0.0.be00", "0.0.be01", "0.0.be02"],
        schids: ["0.0.0013", "0.0.0014", "0.0.0015"],
        devtype: "qeth_layer3",
        online: "0",
        card_type: "HiperSockets",
        chpid: "F0",
    })?;
    f.qeth(&Qeth {
        busids: ["0.0.bf00", "0.0.bf01", "0.0.bf02"],
        schids: ["0.0.0016", "0.0.0017", "0.0.0018"],
        devtype: "qeth_generic",
        online: "0",
        card_type: "OSD_1000",
        chpid: "BE",
    })?;

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
    pub(crate) fn dasd_ccw(
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

    /// A qeth card: its CCW devices (each on its subchannel, linked back through
    /// `group_device`) and the ccwgroup device `/sys/devices/qeth/<read busid>` with
    /// `cdev0`..`cdev2` links, as the qeth driver makes them.
    pub(crate) fn qeth(&self, q: &Qeth) -> io::Result<String> {
        self.write("/sys/devices/qeth/uevent", "")?;
        let group = format!("/sys/devices/qeth/{}", q.busids[0]);
        self.device(
            &group,
            "ccwgroup",
            true,
            &[("DEVTYPE", q.devtype), ("DRIVER", "qeth")],
        )?;
        self.bind_driver(&group, "ccwgroup", "qeth")?;
        self.attrs(
            &group,
            &[
                ("online", q.online),
                ("card_type", q.card_type),
                ("chpid", q.chpid),
                ("if_name", if q.online == "1" { "encbd00" } else { "" }),
            ],
        )?;
        for (i, (busid, schid)) in q.busids.iter().zip(q.schids).enumerate() {
            let sch = self.css(schid, Some("io_subchannel"), Some(busid))?;
            let dev = self.ccw(&sch, busid, q.online, "qeth")?;
            self.symlink(&group, &format!("{dev}/group_device"))?;
            self.symlink(&dev, &format!("{group}/cdev{i}"))?;
        }
        Ok(group)
    }
}
