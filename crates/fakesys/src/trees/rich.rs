//! The rich tree (every kind of device libvirt lists, with the odd cases libvirt drops),
//! and the same with SR-IOV, mediated devices, VPD, s390, vDPA and Fibre Channel added.

use std::io;
use std::path::Path;

use super::{ahci, bridge_port_nic, down_net, machine, pci_spec, pcie_link, simple_pci};
use crate::{vpd_image, BlockSpec, FakeSys, MdevTypeSpec, NetSpec, PciSpec, PcieSpec, VpdSpec};

/// The interface of the rich tree's NIC.
pub const NIC_IF: &str = "fketh0";

/// vhost-vdpa character device of [`rich_full`] whose `/dev` node the differential test
/// also creates on the real host (libvirt checks the real `/dev`).
pub const VDPA_CHARDEV: &str = "vhost-vdpa-fk0";

/// A richer host: PCIe with an IOMMU group, a NIC with udev data, disks with and without
/// udev data, a partition, a PCI device without config space whose child is re-parented,
/// virtual interfaces (veth-like, bridge, wlan), a loop device, USB, SCSI and DRM devices.
pub fn rich(dir: &Path) -> io::Result<FakeSys> {
    let f = machine(
        dir,
        [
            "Fake Machine <X1>",
            "Fake & Co",
            "1.0",
            "SER-123",
            "4c4c4544-0042-3510-8056-b3c04f4d3132",
            "FakeBIOS",
            "2.3.4",
            "01/02/2023",
        ],
    )?;
    // Host bridge: 4 KiB config space without an Express capability; a PCIe root port (a
    // bridge) with a NIC behind it.
    let port_link = PcieSpec {
        link_port: 1,
        sta_speed: 2,
        sta_width: 4,
        ..pcie_link(4, 3, 8)
    };
    let nic = bridge_port_nic(&f, 4096, 0x2948, port_link, pcie_link(0, 1, 1))?;
    f.iommu_group(&nic, 7)?;
    f.net(Some(&nic), &NetSpec::new(NIC_IF, 1001, "52:54:00:aa:bb:cc"))?;
    f.udev_db(
        "n1001",
        &[("ID_NET_DRIVER", "e1000e"), ("ID_BUS", "pci")],
        &[],
    )?;
    // SATA controller, conventional PCI, with a disk described by udev.
    let sata = ahci(&f)?;
    f.block(Some(&sata), &BlockSpec::disk("sda", 8, 0, 2097152))?;
    f.write(&format!("{sata}/model"), "QEMU HARDDISK   \n")?;
    f.udev_db(
        "b8:0",
        &[
            ("ID_TYPE", "disk"),
            ("ID_BUS", "ata"),
            ("ID_SERIAL", "QEMU_HARDDISK_QM00001"),
        ],
        &[
            "disk/by-id/ata-QEMU_HARDDISK_QM00001",
            "disk/by-path/pci-0000:00:1f.2-ata-1",
        ],
    )?;
    // A partition is not a node device.
    let mut part = BlockSpec::disk("sda1", 8, 1, 1024);
    part.devtype = "partition".into();
    f.block(Some(&format!("{sata}/block/sda")), &part)?;
    // A device without config space is dropped; its children go to computer.
    let odd = f.pci_device(
        "0000:00:1e.0",
        None,
        &PciSpec {
            no_config: true,
            ..pci_spec((0x1af4, 0x1000, 0x020000), Some("virtio-pci"), None, 0)
        },
    )?;
    let orphan = NetSpec::new("fkorph0", 1002, "52:54:00:00:00:02");
    down_net(&f, Some(&odd), orphan, "down")?;
    // A virtio disk without udev data: libvirt guesses "disk" from /dev/vd.
    let vblk = f.pci_device(
        "0000:00:05.0",
        None,
        &pci_spec((0x1af4, 0x1042, 0x018000), Some("virtio-pci"), None, 0),
    )?;
    f.block(Some(&vblk), &BlockSpec::disk("vdz", 254, 0, 8192))?;
    // Virtual devices: a veth-like interface, a bridge (skipped), a loop
    // device (skipped: no drive type).
    let veth = NetSpec::new("fkveth0", 1003, "aa:bb:cc:dd:ee:ff");
    down_net(&f, None, veth, "lowerlayerdown")?;
    let mut br = NetSpec::new("fkbr0", 1004, "aa:bb:cc:dd:ee:00");
    br.devtype = Some("bridge".into());
    f.net(None, &br)?;
    let mut wl = NetSpec::new("fkwlan0", 1005, "aa:bb:cc:dd:ee:01");
    wl.devtype = Some("wlan".into());
    wl.operstate = "dormant".into();
    f.net(None, &wl)?;
    f.block(None, &BlockSpec::disk("loop0", 7, 0, 0))?;
    usb_scsi_drm(&f)?;
    Ok(f)
}

/// [`rich`] plus SR-IOV, VPD, mediated devices, s390 (channel subsystem and AP), vDPA and
/// Fibre Channel: the nodedev crate's differential tree.
pub fn rich_full(dir: &Path) -> io::Result<FakeSys> {
    let f = rich(dir)?;
    sriov_mdev_vpd(&f)?;
    s390_vdpa(&f)?;
    fc(&f)?;
    Ok(f)
}

/// Interface 0 of a USB device with its (class, subclass, protocol).
fn usb_interface(f: &FakeSys, path: &str, class: [&str; 3]) -> io::Result<()> {
    f.device(path, "usb", true, &[("DEVTYPE", "usb_interface")])?;
    f.attrs(
        path,
        &[
            ("bInterfaceNumber", "00"),
            ("bInterfaceClass", class[0]),
            ("bInterfaceSubClass", class[1]),
            ("bInterfaceProtocol", class[2]),
        ],
    )
}

fn usb_scsi_drm(f: &FakeSys) -> io::Result<()> {
    // USB: root hub described by udev, a device udev does not know (dropped
    // for lack of ID_VENDOR_ID) and interfaces of both.
    let xhci = simple_pci(f, "0000:00:14.0", 0x0c0330, "xhci_hcd")?;
    let hub = format!("{xhci}/usb1");
    f.usb_device_uevent(&hub, 1, 1, &[])?;
    f.attrs(
        &hub,
        &[
            ("manufacturer", "Linux 6.1.0 xhci-hcd"),
            ("product", "xHCI Host Controller"),
        ],
    )?;
    f.udev_db(
        "c189:0",
        &[
            ("ID_VENDOR_ID", "1d6b"),
            ("ID_MODEL_ID", "0003"),
            ("ID_VENDOR_FROM_DATABASE", "Linux Foundation"),
        ],
        &[],
    )?;
    usb_interface(f, &format!("{hub}/1-0:1.0"), ["09", "00", "03"])?;
    let dev = format!("{hub}/1-1");
    f.usb_device_uevent(&dev, 1, 2, &[])?;
    usb_interface(f, &format!("{dev}/1-1:1.0"), ["ff", "01", "02"])?;

    // SCSI: host, target, LUN and its sg node.
    let hba = simple_pci(f, "0000:00:10.0", 0x010000, "virtio-pci")?;
    let host = f.scsi_host_dev(&hba, 2, &[("unique_id", 3)])?;
    let target = f.scsi_target(&host, "target2:0:0")?;
    let lun = f.scsi_lun(&target, "2:0:0:0", None, &[])?;
    f.attrs(&lun, &[("type", 5)])?;
    f.scsi_generic(&lun, 0)?;

    // DRM: primary and render nodes of a VGA device.
    let vga = simple_pci(f, "0000:00:02.0", 0x030000, "i915")?;
    for (n, minor) in [("card0", "0"), ("renderD128", "128")] {
        let d = format!("{vga}/drm/{n}");
        let devname = format!("dri/{n}");
        f.device(
            &d,
            "drm",
            false,
            &[
                ("MAJOR", "226"),
                ("MINOR", minor),
                ("DEVNAME", &devname),
                ("DEVTYPE", "drm_minor"),
            ],
        )?;
    }
    Ok(())
}

fn sriov_mdev_vpd(f: &FakeSys) -> io::Result<()> {
    // SR-IOV: a PF with two VFs, a PF with no VFs enabled yet.
    let pf = simple_pci(f, "0000:00:08.0", 0x020000, "ixgbe")?;
    let vfs = (0..2)
        .map(|i| simple_pci(f, &format!("0000:00:09.{i}"), 0x020000, "ixgbevf"))
        .collect::<io::Result<Vec<String>>>()?;
    f.sriov(&pf, Some(8), &vfs)?;
    let pf2 = simple_pci(f, "0000:00:08.1", 0x020000, "ixgbe")?;
    f.sriov(&pf2, Some(4), &[])?;

    // VPD on the first PF: every field kind libvirt knows, in odd order.
    let img = vpd_image(&VpdSpec {
        name: Some(b"  Fake 10GbE <SFP+> & Co  ".to_vec()),
        read_only: vec![
            (*b"PN", b"FK-10G-2".to_vec()),
            (*b"EC", b"A1 ".to_vec()),
            (*b"V1", b"vendor one".to_vec()),
            (*b"CP", vec![1, 0, 0x10, 0]),
            (*b"SN", b"SN<&>123".to_vec()),
            (*b"MN", b"1234".to_vec()),
            (*b"FG", b"legacy".to_vec()),
            (*b"VA", b"bad\x01value".to_vec()),
            (*b"V1", b"vendor one again".to_vec()),
            (*b"Z9", b"unknown".to_vec()),
        ],
        read_write: Some(vec![
            (*b"V9", b"rw vendor".to_vec()),
            (*b"YA", b"asset-42".to_vec()),
            (*b"Y1", b"system one".to_vec()),
            (*b"EC", b"ignored".to_vec()),
        ]),
        rw_space: 8,
        ..Default::default()
    });
    f.vpd(&pf, &img)?;
    // A corrupt image (bad checksum) gives no vpd capability.
    let img = vpd_image(&VpdSpec {
        name: Some(b"Broken".to_vec()),
        read_only: vec![(*b"PN", b"X".to_vec())],
        bad_checksum: true,
        ..Default::default()
    });
    f.vpd(&pf2, &img)?;
    // Only a checksum in VPD-R and no name: an empty capability.
    f.vpd(&vfs[1], &vpd_image(&VpdSpec::default()))?;

    // mdev types on the VGA device and an active mdev of one of them.
    let vga = "/sys/devices/pci0000:00/0000:00:02.0";
    f.mdev_types(
        vga,
        &[
            MdevTypeSpec::new("i915-GVTg_V5_4", Some("GVTg_V5_4"), "vfio-pci", 1),
            MdevTypeSpec::new("i915-GVTg_V5_8", None, "vfio-pci", 2),
        ],
    )?;
    let uuid = "4b20d080-1b54-4048-85b3-a6a62d165c01";
    f.mdev(vga, uuid, "i915-GVTg_V5_8", Some(12))?;
    // A type without device_api makes libvirt drop the whole parent; its
    // mdev then hangs off computer.
    let bad = simple_pci(f, "0000:00:0a.0", 0x030000, "nvidia")?;
    let mut t = MdevTypeSpec::new("nvidia-35", Some("GRID M60-2Q"), "vfio-pci", 4);
    t.device_api = None;
    f.mdev_types(&bad, &[t])?;
    // A sample mtty parent (subsystem mtty): a top-level mdev_types device.
    let mtty = "/sys/devices/virtual/mtty/mtty";
    f.device(mtty, "mtty", false, &[])?;
    f.mdev_types(
        mtty,
        &[
            MdevTypeSpec::new("mtty-2", Some("Dual-port-serial"), "vfio-pci", 12),
            MdevTypeSpec::new("mtty-1", Some("Single-port-serial"), "vfio-pci", 24),
        ],
    )?;
    let uuid = "b1ae8bf6-38b0-4c81-9d44-78ce3f520496";
    f.mdev(mtty, uuid, "mtty-1", Some(13))?;
    Ok(())
}

fn s390_vdpa(f: &FakeSys) -> io::Result<()> {
    // Channel subsystem: an I/O subchannel with its online DASD, a vfio-ccw
    // subchannel offering an mdev type, a subchannel without a driver
    // (skipped) and an offline CCW device (skipped).
    f.io_subchannel("0.0.0000", "1", "dasd-eckd")?;
    f.vfio_ccw("0.0.0001", "none", 1)?;
    let sch3 = f.css("0.1.fe03", None, Some("0.1.fe03"))?;
    f.ccw(&sch3, "0.1.fe03", "1", "dasd-eckd")?;
    f.io_subchannel("0.0.0002", "0", "dasd-eckd")?;
    // AP crypto: a card, one of its queues and the vfio_ap matrix.
    let card = f.ap_card(0x0a)?;
    f.ap_queue(&card, 0x0a, 0x0004)?;
    f.vfio_ap_matrix(65536)?;
    // vDPA: without a vhost char device, with one whose /dev node exists,
    // and with one whose node is missing (libvirt drops that device).
    f.vdpa(None, "vdpa0", None, false)?;
    f.vdpa(None, "vdpa1", Some(VDPA_CHARDEV), true)?;
    f.vdpa(None, "vdpa2", Some("vhost-vdpa-fkmissing"), false)?;
    Ok(())
}

/// Fibre Channel: an NPIV-capable HBA port with a remote port and target,
/// a vHBA (fc_host without vport_create, no fabric name) and a host whose
/// vport_create sits only in scsi_host (libvirt then fails the vport data
/// read from fc_host and shows neither capability).
fn fc(f: &FakeSys) -> io::Result<()> {
    let hba = simple_pci(f, "0000:00:11.0", 0x0c0400, "qla2xxx")?;
    let fc_host = |parent: &str, n: u32, vport: bool, fabric: bool, in_fc: bool| {
        let host = f.scsi_host_dev(parent, n, &[("unique_id", n + 10)])?;
        if in_fc {
            let fc = format!("{host}/fc_host/host{n}");
            let mut attrs = vec![
                ("port_name", format!("0x21000024ff3701{n:02x}")),
                ("node_name", format!("0x20000024ff3701{n:02x}")),
            ];
            if fabric {
                attrs.push(("fabric_name", "0x100000051e0c3a5b".into()));
            }
            f.class_dev(&fc, "fc_host", &attrs)?;
            if vport {
                f.write(&format!("{fc}/vport_create"), "")?;
                f.attrs(&fc, &[("max_npiv_vports", 254), ("npiv_vports_inuse", 1)])?;
            }
        } else if vport {
            f.write(&format!("{host}/scsi_host/host{n}/vport_create"), "")?;
        }
        io::Result::Ok(host)
    };
    let h = fc_host(&hba, 5, true, true, true)?;
    let rport = format!("{h}/rport-5:0-0");
    let rp = f.transport(&rport, "fc_remote_ports")?;
    f.attrs(&rp, &[("port_name", "0x50060e801049cfd1")])?;
    f.scsi_target(&rport, "target5:0:0")?;
    // A vHBA created on that port.
    let vport = format!("{h}/vport-5:0-0");
    f.write(&format!("{vport}/uevent"), "")?;
    fc_host(&vport, 6, false, false, true)?;
    // vport_create only below scsi_host.
    let hba2 = simple_pci(f, "0000:00:12.0", 0x0c0400, "lpfc")?;
    fc_host(&hba2, 7, true, true, false)?;
    Ok(())
}
