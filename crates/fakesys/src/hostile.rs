//! A tree of odd sysfs content: attributes that are missing, empty,
//! directories where files are expected, unreadable (mode 000), symlinks,
//! dangling links, non-UTF-8 bytes, embedded NULs and control characters.
//! Discovery must describe or skip each device as libvirt 9.0 does, and
//! never fail as a whole.

use std::io;
use std::os::unix::fs::PermissionsExt;

use crate::{BlockSpec, DmiSpec, FakeSys, NetSpec, PciSpec};

/// Interface names in this tree start with this prefix (no such interface
/// exists on a test host, so no ethtool features are found for them).
pub const HOSTILE_NET_PREFIX: &str = "vndtz";

impl FakeSys {
    /// Replace the file `host_path` by an empty directory.
    pub fn make_dir_instead(&self, host_path: &str) -> io::Result<()> {
        let p = self.path(host_path);
        let _ = std::fs::remove_file(&p);
        std::fs::create_dir_all(p)
    }

    /// Make `host_path` unreadable by mode (root still reads it).
    pub fn make_unreadable(&self, host_path: &str) -> io::Result<()> {
        std::fs::set_permissions(self.path(host_path), std::fs::Permissions::from_mode(0o000))
    }

    /// Replace `host_path` by a symlink to `target` (a host path), which
    /// need not exist.
    pub fn make_symlink_instead(&self, target: &str, host_path: &str) -> io::Result<()> {
        let p = self.path(host_path);
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_dir_all(&p);
        self.symlink(target, host_path)
    }
}

/// Build the hostile tree in `dir`. With `non_utf8`, some attributes and a
/// uevent carry bytes that are not UTF-8 (libvirt passes them through to
/// clients verbatim, which python's bindings cannot decode; leave them out
/// for tests that use python).
pub fn hostile_tree(dir: &std::path::Path, non_utf8: bool) -> io::Result<FakeSys> {
    let f = FakeSys::new(dir)?;
    odd_dmi(&f, non_utf8)?;
    odd_pci(&f)?;
    odd_net(&f, non_utf8)?;
    odd_usb(&f)?;
    odd_scsi(&f)?;
    odd_s390(&f)?;
    Ok(f)
}

/// CCW devices whose `online` is neither 0 nor 1 (no `<state>`), negative or garbage
/// (dropped), a dangling `group_device`, a qeth group without `chpid` and with an empty
/// `card_type` (libvirt 11.3 prints `(null)` for both), and a group whose `cdev` links are
/// gone (dropped, while its CCW devices still name it).
fn odd_s390(f: &FakeSys) -> io::Result<()> {
    let odd = f.qeth(0xc000, 0x0020, "qeth_layer2", "2", ("", "C0"))?;
    std::fs::remove_file(f.path(&format!("{odd}/chpid")))?;
    let empty = f.qeth(0xc100, 0x0023, "qeth_layer3", "1", ("OSD_1000", "C1"))?;
    for i in 0..3 {
        std::fs::remove_file(f.path(&format!("{empty}/cdev{i}")))?;
    }
    for (schid, busid, online) in [
        ("0.0.0026", "0.0.0126", "-1"),
        ("0.0.0027", "0.0.0127", "yes"),
        ("0.0.0028", "0.0.0128", "1"),
    ] {
        f.dasd_ccw(schid, busid, online, "IBM.odd")?;
    }
    f.symlink(
        "/sys/devices/qeth/0.0.ffff",
        "/sys/devices/css0/0.0.0028/0.0.0128/group_device",
    )
}

/// An Intel PCI function at `addr` whose device ID follows its `class`.
fn pci(f: &FakeSys, addr: &str, class: u32, driver: Option<&str>) -> io::Result<String> {
    f.pci_device(
        addr,
        None,
        &PciSpec {
            vendor: 0x8086,
            device: 0x1500 + (class >> 16) as u16,
            class,
            driver: driver.map(str::to_owned),
            ..Default::default()
        },
    )
}

/// Interface number `i` of this tree, below `parent` (virtual without).
fn net(f: &FakeSys, parent: Option<&str>, i: u32) -> io::Result<String> {
    let n = NetSpec::new(
        &format!("{HOSTILE_NET_PREFIX}{i}"),
        200 + i,
        &format!("52:54:00:00:02:{i:02x}"),
    );
    f.net(parent, &n)
}

/// The `computer` device's DMI attributes.
fn odd_dmi(f: &FakeSys, non_utf8: bool) -> io::Result<()> {
    let dmi = "/sys/devices/virtual/dmi/id";
    f.dmi(&DmiSpec {
        product_name: Some("Odd Machine".into()),
        sys_vendor: Some("Vendor".into()),
        product_version: Some("v".into()),
        product_serial: Some("S".into()),
        product_uuid: Some("4c4c4544-0042-3510-8056-b3c04f4d3133".into()),
        bios_vendor: Some("B".into()),
        bios_version: Some("1".into()),
        bios_date: Some("01/01/2020".into()),
    })?;
    // Control characters (tab, CR and LF inside are kept), an embedded NUL,
    // an empty value, a directory and an unreadable file.
    f.write(
        &format!("{dmi}/product_name"),
        b"Odd\x01 \tMachine\x1b[1m <&>\r\n".as_slice(),
    )?;
    f.write(&format!("{dmi}/bios_vendor"), b"Before\0After\n".as_slice())?;
    f.write(&format!("{dmi}/product_version"), "\n")?;
    f.make_dir_instead(&format!("{dmi}/sys_vendor"))?;
    f.make_unreadable(&format!("{dmi}/product_serial"))?;
    f.write(&format!("{dmi}/bios_version"), "line1\nline2\n\n")?;
    if non_utf8 {
        f.write(
            &format!("{dmi}/bios_date"),
            b"01/01/\xff\xfe20\n".as_slice(),
        )?;
    }
    Ok(())
}

fn odd_pci(f: &FakeSys) -> io::Result<()> {
    // PCI: numa_node a directory (shown as absent), a dangling driver link.
    let p = pci(f, "0000:00:02.0", 0x020000, Some("e1000e"))?;
    f.make_dir_instead(&format!("{p}/numa_node"))?;
    f.make_symlink_instead("/sys/bus/pci/drivers/gone", &format!("{p}/driver"))?;
    // `sriov_totalvfs` a directory, and empty.
    let p = pci(f, "0000:00:05.0", 0x020000, None)?;
    f.make_dir_instead(&format!("{p}/sriov_totalvfs"))?;
    let p = pci(f, "0000:00:05.1", 0x020000, None)?;
    f.write(&format!("{p}/sriov_totalvfs"), "")?;
    // A dangling physfn (no PF) and a dangling virtfn0 (the PF is dropped).
    let p = pci(f, "0000:00:06.0", 0x020000, None)?;
    f.make_symlink_instead(
        "/sys/devices/pci0000:00/0000:00:7f.0",
        &format!("{p}/physfn"),
    )?;
    let p = pci(f, "0000:00:06.1", 0x020000, None)?;
    f.write(&format!("{p}/sriov_totalvfs"), "4\n")?;
    f.make_symlink_instead(
        "/sys/devices/pci0000:00/0000:00:7f.1",
        &format!("{p}/virtfn0"),
    )?;
    // A dangling iommu_group link.
    let p = pci(f, "0000:00:07.0", 0x030000, None)?;
    f.make_symlink_instead("/sys/kernel/iommu_groups/999", &format!("{p}/iommu_group"))?;
    // numa_node empty (unparsable: dropped) and unreadable by mode.
    let p = pci(f, "0000:00:08.0", 0x030000, None)?;
    f.write(&format!("{p}/numa_node"), "")?;
    let p = pci(f, "0000:00:08.1", 0x030000, None)?;
    f.write(&format!("{p}/numa_node"), "1\n")?;
    f.make_unreadable(&format!("{p}/numa_node"))
}

fn odd_net(f: &FakeSys, non_utf8: bool) -> io::Result<()> {
    // Net devices below a good PCI device.
    let nic = pci(f, "0000:00:09.0", 0x020000, Some("igb"))?;
    let n = net(f, Some(&nic), 1)?;
    f.make_dir_instead(&format!("{n}/address"))?;
    let n = net(f, Some(&nic), 2)?;
    f.write(&format!("{n}/addr_len"), "")?;
    let n = net(f, Some(&nic), 3)?;
    f.make_dir_instead(&format!("{n}/operstate"))?;
    let n = net(f, Some(&nic), 4)?;
    f.make_dir_instead(&format!("{n}/speed"))?;
    let n = net(f, Some(&nic), 5)?;
    f.write(&format!("{n}/operstate"), "")?;
    let n = net(f, Some(&nic), 6)?;
    f.write(&format!("{n}/address"), "52:54:00:\t00:02:06\x02\n")?;
    let n = net(f, Some(&nic), 7)?;
    f.make_unreadable(&format!("{n}/address"))?;
    if non_utf8 {
        let n = net(f, Some(&nic), 8)?;
        f.write(
            &format!("{n}/address"),
            b"52:54:\xc3\xa9:\xff:02:08\n".as_slice(),
        )?;
    }
    // A class/net entry whose device vanished.
    f.symlink(
        "/sys/devices/virtual/net/vndtzgone",
        "/sys/class/net/vndtzgone",
    )?;
    // A device whose uevent is a directory.
    let n = net(f, None, 9)?;
    f.make_dir_instead(&format!("{n}/uevent"))?;
    // A device whose uevent has a non-UTF-8 property.
    if non_utf8 {
        let n = net(f, None, 10)?;
        f.write(
            &format!("{n}/uevent"),
            b"INTERFACE=vndtz10\nIFINDEX=210\nID_X=\xff\xfe\n".as_slice(),
        )?;
    }
    Ok(())
}

fn odd_usb(f: &FakeSys) -> io::Result<()> {
    // USB: names from attributes that are unreadable or symlinks; interface
    // attributes missing, a directory, empty.
    let xhci = pci(f, "0000:00:14.0", 0x0c0330, Some("xhci_hcd"))?;
    let hub = format!("{xhci}/usb3");
    f.device(
        &hub,
        "usb",
        true,
        &[
            ("MAJOR", "189"),
            ("MINOR", "256"),
            ("DEVNAME", "bus/usb/003/001"),
            ("DEVTYPE", "usb_device"),
            ("BUSNUM", "003"),
            ("DEVNUM", "001"),
        ],
    )?;
    f.udev_db(
        "c189:256",
        &[("ID_VENDOR_ID", "1d6b"), ("ID_MODEL_ID", "0002")],
        &[],
    )?;
    f.write(&format!("{hub}/manufacturer"), "Hidden\n")?;
    f.make_unreadable(&format!("{hub}/manufacturer"))?;
    f.write(&format!("{hub}/real_product"), "Linked\n")?;
    f.make_symlink_instead(&format!("{hub}/real_product"), &format!("{hub}/product"))?;
    for (i, (attr, how)) in [
        ("bInterfaceClass", "dir"),
        ("bInterfaceProtocol", "empty"),
        ("bInterfaceSubClass", "missing"),
        ("bInterfaceNumber", "garbage"),
    ]
    .iter()
    .enumerate()
    {
        let intf = format!("{hub}/3-0:1.{i}");
        f.device(&intf, "usb", true, &[("DEVTYPE", "usb_interface")])?;
        for n in [
            "bInterfaceNumber",
            "bInterfaceClass",
            "bInterfaceSubClass",
            "bInterfaceProtocol",
        ] {
            f.write(&format!("{intf}/{n}"), "09\n")?;
        }
        let a = format!("{intf}/{attr}");
        match *how {
            "dir" => f.make_dir_instead(&a)?,
            "empty" => f.write(&a, "")?,
            "missing" => std::fs::remove_file(f.path(&a))?,
            _ => f.write(&a, "zz\n")?,
        }
    }
    Ok(())
}

fn odd_scsi(f: &FakeSys) -> io::Result<()> {
    // SCSI: unique_id a directory, a LUN whose type is a directory, one
    // whose type is garbage; a disk whose size is empty and one whose
    // logical block size is a directory.
    let hba = pci(f, "0000:00:10.0", 0x010000, Some("virtio-pci"))?;
    let host = format!("{hba}/host4");
    f.device(&host, "scsi", true, &[("DEVTYPE", "scsi_host")])?;
    let sh = format!("{host}/scsi_host/host4");
    f.device(&sh, "scsi_host", false, &[])?;
    f.make_dir_instead(&format!("{sh}/unique_id"))?;
    let target = format!("{host}/target4:0:0");
    f.device(&target, "scsi", true, &[("DEVTYPE", "scsi_target")])?;
    for (l, ty) in [(0, "dir"), (1, "garbage"), (2, "0"), (3, "0")] {
        let lun = format!("{target}/4:0:0:{l}");
        f.device(&lun, "scsi", true, &[("DEVTYPE", "scsi_device")])?;
        match ty {
            "dir" => f.make_dir_instead(&format!("{lun}/type"))?,
            "garbage" => f.write(&format!("{lun}/type"), "disk\n")?,
            t => f.write(&format!("{lun}/type"), format!("{t}\n"))?,
        }
        if l >= 2 {
            let name = format!("sdz{l}");
            let b = f.block(Some(&lun), &BlockSpec::disk(&name, 65, l * 16, 4096))?;
            f.udev_db(
                &format!("b65:{}", l * 16),
                &[("ID_TYPE", "disk"), ("ID_BUS", "scsi")],
                &[],
            )?;
            if l == 2 {
                f.write(&format!("{b}/size"), "")?;
            } else {
                f.make_dir_instead(&format!("{b}/queue/logical_block_size"))?;
                f.make_dir_instead(&format!("{lun}/vendor"))?;
                f.write(&format!("{lun}/model"), b"Model\x00Hidden\n".as_slice())?;
            }
        }
    }
    Ok(())
}

/// PCI devices whose sysfs files libpciaccess cannot read when libvirt 9.0
/// starts (`vendor` or `config` a directory, a bus entry without any files):
/// there `pci_system_init` fails and with it libvirt's whole node-device
/// driver ("Failed to initialize libpciaccess: Is a directory"). We drop
/// just those devices. Not comparable with the reference, hence separate.
pub fn add_pciaccess_breakers(f: &FakeSys) -> io::Result<()> {
    let pci = |addr: &str| -> io::Result<String> {
        f.pci_device(
            addr,
            None,
            &PciSpec {
                vendor: 0x8086,
                device: 0x1502,
                class: 0x020000,
                driver: Some("e1000e".into()),
                ..Default::default()
            },
        )
    };
    // `vendor` a directory: the device is dropped; its interface then
    // hangs off computer.
    let p = pci("0000:00:03.0")?;
    f.make_dir_instead(&format!("{p}/vendor"))?;
    let n = NetSpec::new(&format!("{HOSTILE_NET_PREFIX}0"), 200, "52:54:00:00:02:00");
    f.net(Some(&p), &n)?;
    // `config` a directory: dropped.
    let p = pci("0000:00:04.0")?;
    f.make_dir_instead(&format!("{p}/config"))?;
    // A bus entry pointing at a directory without uevent or any file.
    std::fs::create_dir_all(f.path("/sys/devices/pci0000:00/0000:00:0a.0"))?;
    f.symlink(
        "/sys/devices/pci0000:00/0000:00:0a.0",
        "/sys/bus/pci/devices/0000:00:0a.0",
    )?;
    Ok(())
}
