//! The fake host used by the integration tests.

use fakesys::*;

pub const NIC_IF: &str = "fketh0";

/// Build a small but varied host in `dir`.
pub fn build_host(dir: &std::path::Path) -> FakeSys {
    let f = FakeSys::new(dir).unwrap();
    f.dmi(&DmiSpec {
        product_name: Some("Fake Machine <X1>".into()),
        sys_vendor: Some("Fake & Co".into()),
        product_version: Some("1.0".into()),
        product_serial: Some("SER-123".into()),
        product_uuid: Some("4c4c4544-0042-3510-8056-b3c04f4d3132".into()),
        bios_vendor: Some("FakeBIOS".into()),
        bios_version: Some("2.3.4".into()),
        bios_date: Some("01/02/2023".into()),
    })
    .unwrap();
    // Host bridge: 4 KiB config space without an Express capability.
    f.pci_device(
        "0000:00:00.0",
        None,
        &PciSpec {
            vendor: 0x8086,
            device: 0x29c0,
            class: 0x060000,
            config_size: 4096,
            ..Default::default()
        },
    )
    .unwrap();
    // PCIe root port (a bridge) with a NIC behind it.
    let port = f
        .pci_device(
            "0000:00:1c.0",
            None,
            &PciSpec {
                vendor: 0x8086,
                device: 0x2948,
                class: 0x060400,
                header_type: 1,
                driver: Some("pcieport".into()),
                pcie: Some(PcieSpec {
                    port_type: 4,
                    link_port: 1,
                    cap_speed: 3,
                    cap_width: 8,
                    sta_speed: 2,
                    sta_width: 4,
                }),
                ..Default::default()
            },
        )
        .unwrap();
    let nic = f
        .pci_device(
            "0000:01:00.0",
            Some(&port),
            &PciSpec {
                vendor: 0x8086,
                device: 0x10d3,
                class: 0x020000,
                driver: Some("e1000e".into()),
                numa_node: Some(0),
                pcie: Some(PcieSpec {
                    port_type: 0,
                    link_port: 0,
                    cap_speed: 1,
                    cap_width: 1,
                    sta_speed: 1,
                    sta_width: 1,
                }),
                ..Default::default()
            },
        )
        .unwrap();
    f.iommu_group(&nic, 7).unwrap();
    let mut eth = NetSpec::new(NIC_IF, 1001, "52:54:00:aa:bb:cc");
    eth.speed = Some("1000".into());
    f.net(Some(&nic), &eth).unwrap();
    f.udev_db(
        "n1001",
        &[("ID_NET_DRIVER", "e1000e"), ("ID_BUS", "pci")],
        &[],
    )
    .unwrap();
    // SATA controller, conventional PCI, with a disk described by udev.
    let sata = f
        .pci_device(
            "0000:00:1f.2",
            None,
            &PciSpec {
                vendor: 0x8086,
                device: 0x2922,
                class: 0x010601,
                driver: Some("ahci".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let sda = BlockSpec::disk("sda", 8, 0, 2097152);
    f.block(Some(&sata), &sda).unwrap();
    f.write(&format!("{sata}/model"), "QEMU HARDDISK   \n")
        .unwrap();
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
    )
    .unwrap();
    // A partition is not a node device.
    let mut part = BlockSpec::disk("sda1", 8, 1, 1024);
    part.devtype = "partition".into();
    f.block(Some(&format!("{sata}/block/sda")), &part).unwrap();
    // A device without config space is dropped; its children go to computer.
    let odd = f
        .pci_device(
            "0000:00:1e.0",
            None,
            &PciSpec {
                vendor: 0x1af4,
                device: 0x1000,
                class: 0x020000,
                driver: Some("virtio-pci".into()),
                no_config: true,
                ..Default::default()
            },
        )
        .unwrap();
    let mut orphan = NetSpec::new("fkorph0", 1002, "52:54:00:00:00:02");
    orphan.operstate = "down".into();
    orphan.speed = None;
    f.net(Some(&odd), &orphan).unwrap();
    // A virtio disk without udev data: libvirt guesses "disk" from /dev/vd.
    let vblk = f
        .pci_device(
            "0000:00:05.0",
            None,
            &PciSpec {
                vendor: 0x1af4,
                device: 0x1042,
                class: 0x018000,
                driver: Some("virtio-pci".into()),
                ..Default::default()
            },
        )
        .unwrap();
    f.block(Some(&vblk), &BlockSpec::disk("vdz", 254, 0, 8192))
        .unwrap();
    // Virtual devices: a veth-like interface, a bridge (skipped), a loop
    // device (skipped: no drive type).
    let mut veth = NetSpec::new("fkveth0", 1003, "aa:bb:cc:dd:ee:ff");
    veth.operstate = "lowerlayerdown".into();
    veth.speed = None;
    f.net(None, &veth).unwrap();
    let mut br = NetSpec::new("fkbr0", 1004, "aa:bb:cc:dd:ee:00");
    br.devtype = Some("bridge".into());
    f.net(None, &br).unwrap();
    let mut wl = NetSpec::new("fkwlan0", 1005, "aa:bb:cc:dd:ee:01");
    wl.devtype = Some("wlan".into());
    wl.operstate = "dormant".into();
    f.net(None, &wl).unwrap();
    f.block(None, &BlockSpec::disk("loop0", 7, 0, 0)).unwrap();
    add_usb_scsi_drm(&f);
    add_sriov_mdev_vpd(&f);
    add_s390_vdpa(&f);
    add_fc(&f);
    f
}

fn pci(f: &FakeSys, addr: &str, class: u32, driver: &str) -> String {
    f.pci_device(
        addr,
        None,
        &PciSpec {
            vendor: 0x8086,
            device: 0x1000 + (class >> 16) as u16,
            class,
            driver: Some(driver.into()),
            ..Default::default()
        },
    )
    .unwrap()
}

fn add_usb_scsi_drm(f: &FakeSys) {
    // USB: root hub described by udev, a device udev does not know (dropped
    // for lack of ID_VENDOR_ID) and interfaces of both.
    let xhci = pci(f, "0000:00:14.0", 0x0c0330, "xhci_hcd");
    let hub = format!("{xhci}/usb1");
    f.device(
        &hub,
        "usb",
        true,
        &[
            ("MAJOR", "189"),
            ("MINOR", "0"),
            ("DEVNAME", "bus/usb/001/001"),
            ("DEVTYPE", "usb_device"),
            ("BUSNUM", "001"),
            ("DEVNUM", "001"),
        ],
    )
    .unwrap();
    f.write(&format!("{hub}/manufacturer"), "Linux 6.1.0 xhci-hcd\n")
        .unwrap();
    f.write(&format!("{hub}/product"), "xHCI Host Controller\n")
        .unwrap();
    f.udev_db(
        "c189:0",
        &[
            ("ID_VENDOR_ID", "1d6b"),
            ("ID_MODEL_ID", "0003"),
            ("ID_VENDOR_FROM_DATABASE", "Linux Foundation"),
        ],
        &[],
    )
    .unwrap();
    let intf = format!("{hub}/1-0:1.0");
    f.device(&intf, "usb", true, &[("DEVTYPE", "usb_interface")])
        .unwrap();
    for (n, v) in [
        ("bInterfaceNumber", "00"),
        ("bInterfaceClass", "09"),
        ("bInterfaceSubClass", "00"),
        ("bInterfaceProtocol", "03"),
    ] {
        f.write(&format!("{intf}/{n}"), format!("{v}\n")).unwrap();
    }
    let dev = format!("{hub}/1-1");
    f.device(
        &dev,
        "usb",
        true,
        &[
            ("MAJOR", "189"),
            ("MINOR", "1"),
            ("DEVNAME", "bus/usb/001/002"),
            ("DEVTYPE", "usb_device"),
            ("BUSNUM", "001"),
            ("DEVNUM", "002"),
        ],
    )
    .unwrap();
    let intf2 = format!("{dev}/1-1:1.0");
    f.device(&intf2, "usb", true, &[("DEVTYPE", "usb_interface")])
        .unwrap();
    for (n, v) in [
        ("bInterfaceNumber", "00"),
        ("bInterfaceClass", "ff"),
        ("bInterfaceSubClass", "01"),
        ("bInterfaceProtocol", "02"),
    ] {
        f.write(&format!("{intf2}/{n}"), format!("{v}\n")).unwrap();
    }

    // SCSI: host, target, LUN and its sg node.
    let hba = pci(f, "0000:00:10.0", 0x010000, "virtio-pci");
    let host = format!("{hba}/host2");
    f.device(&host, "scsi", true, &[("DEVTYPE", "scsi_host")])
        .unwrap();
    let shost = format!("{host}/scsi_host/host2");
    f.device(&shost, "scsi_host", false, &[]).unwrap();
    f.write(&format!("{shost}/unique_id"), "3\n").unwrap();
    let target = format!("{host}/target2:0:0");
    f.device(&target, "scsi", true, &[("DEVTYPE", "scsi_target")])
        .unwrap();
    let lun = format!("{target}/2:0:0:0");
    f.device(&lun, "scsi", true, &[("DEVTYPE", "scsi_device")])
        .unwrap();
    f.write(&format!("{lun}/type"), "5\n").unwrap();
    let sg = format!("{lun}/scsi_generic/sg0");
    f.device(
        &sg,
        "scsi_generic",
        false,
        &[("MAJOR", "21"), ("MINOR", "0"), ("DEVNAME", "sg0")],
    )
    .unwrap();

    // DRM: primary and render nodes of a VGA device.
    let vga = pci(f, "0000:00:02.0", 0x030000, "i915");
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
        )
        .unwrap();
    }
}

/// vhost-vdpa character device whose `/dev` node the differential test also
/// creates on the real host (libvirt checks the real `/dev`).
pub const VDPA_CHARDEV: &str = "vhost-vdpa-fk0";

fn add_sriov_mdev_vpd(f: &FakeSys) {
    // SR-IOV: a PF with two VFs, a PF with no VFs enabled yet.
    let pf = pci(f, "0000:00:08.0", 0x020000, "ixgbe");
    let vfs: Vec<String> = (0..2)
        .map(|i| pci(f, &format!("0000:00:09.{i}"), 0x020000, "ixgbevf"))
        .collect();
    f.sriov(&pf, Some(8), &vfs).unwrap();
    let pf2 = pci(f, "0000:00:08.1", 0x020000, "ixgbe");
    f.sriov(&pf2, Some(4), &[]).unwrap();

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
            (*b"VA", b"badvalue".to_vec()),
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
    f.vpd(&pf, &img).unwrap();
    // A corrupt image (bad checksum) gives no vpd capability.
    let img = vpd_image(&VpdSpec {
        name: Some(b"Broken".to_vec()),
        read_only: vec![(*b"PN", b"X".to_vec())],
        bad_checksum: true,
        ..Default::default()
    });
    f.vpd(&pf2, &img).unwrap();
    // Only a checksum in VPD-R and no name: an empty capability.
    let img = vpd_image(&VpdSpec::default());
    f.vpd(&vfs[1], &img).unwrap();

    // mdev types on the VGA device and an active mdev of one of them.
    let vga = "/sys/devices/pci0000:00/0000:00:02.0";
    f.mdev_types(
        vga,
        &[
            MdevTypeSpec::new("i915-GVTg_V5_4", Some("GVTg_V5_4"), "vfio-pci", 1),
            MdevTypeSpec::new("i915-GVTg_V5_8", None, "vfio-pci", 2),
        ],
    )
    .unwrap();
    f.mdev(
        vga,
        "4b20d080-1b54-4048-85b3-a6a62d165c01",
        "i915-GVTg_V5_8",
        Some(12),
    )
    .unwrap();
    // A type without device_api makes libvirt drop the whole parent; its
    // mdev then hangs off computer.
    let bad = pci(f, "0000:00:0a.0", 0x030000, "nvidia");
    let mut t = MdevTypeSpec::new("nvidia-35", Some("GRID M60-2Q"), "vfio-pci", 4);
    t.device_api = None;
    f.mdev_types(&bad, &[t]).unwrap();
    // A sample mtty parent (subsystem mtty): a top-level mdev_types device.
    let mtty = "/sys/devices/virtual/mtty/mtty";
    f.device(mtty, "mtty", false, &[]).unwrap();
    f.mdev_types(
        mtty,
        &[
            MdevTypeSpec::new("mtty-2", Some("Dual-port-serial"), "vfio-pci", 12),
            MdevTypeSpec::new("mtty-1", Some("Single-port-serial"), "vfio-pci", 24),
        ],
    )
    .unwrap();
    f.mdev(
        mtty,
        "b1ae8bf6-38b0-4c81-9d44-78ce3f520496",
        "mtty-1",
        Some(13),
    )
    .unwrap();
}

fn add_s390_vdpa(f: &FakeSys) {
    // Channel subsystem: an I/O subchannel with its online DASD, a vfio-ccw
    // subchannel offering an mdev type, a subchannel without a driver
    // (skipped) and an offline CCW device (skipped).
    let sch = f
        .css("0.0.0000", Some("io_subchannel"), Some("0.0.0000"))
        .unwrap();
    f.ccw(&sch, "0.0.0000", "1", "dasd-eckd").unwrap();
    let sch2 = f.css("0.0.0001", Some("vfio_ccw"), Some("none")).unwrap();
    f.mdev_types(
        &sch2,
        &[MdevTypeSpec::new(
            "vfio_ccw-io",
            Some("I/O subchannel (Non-QDIO)"),
            "vfio-ccw",
            1,
        )],
    )
    .unwrap();
    let sch3 = f.css("0.1.fe03", None, Some("0.1.fe03")).unwrap();
    f.ccw(&sch3, "0.1.fe03", "1", "dasd-eckd").unwrap();
    let sch4 = f
        .css("0.0.0002", Some("io_subchannel"), Some("0.0.0002"))
        .unwrap();
    f.ccw(&sch4, "0.0.0002", "0", "dasd-eckd").unwrap();
    // AP crypto: a card, one of its queues and the vfio_ap matrix.
    let card = f.ap_card(0x0a).unwrap();
    f.ap_queue(&card, 0x0a, 0x0004).unwrap();
    let matrix = f.ap_matrix().unwrap();
    f.mdev_types(
        &matrix,
        &[MdevTypeSpec::new(
            "vfio_ap-passthrough",
            Some("VFIO AP Passthrough Device"),
            "vfio-ap",
            65536,
        )],
    )
    .unwrap();
    // vDPA: without a vhost char device, with one whose /dev node exists,
    // and with one whose node is missing (libvirt drops that device).
    f.vdpa(None, "vdpa0", None, false).unwrap();
    f.vdpa(None, "vdpa1", Some(VDPA_CHARDEV), true).unwrap();
    f.vdpa(None, "vdpa2", Some("vhost-vdpa-fkmissing"), false)
        .unwrap();
}

/// Fibre Channel: an NPIV-capable HBA port with a remote port and target,
/// a vHBA (fc_host without vport_create, no fabric name) and a host whose
/// vport_create sits only in scsi_host (libvirt then fails the vport data
/// read from fc_host and shows neither capability).
fn add_fc(f: &FakeSys) {
    let hba = pci(f, "0000:00:11.0", 0x0c0400, "qla2xxx");
    let fc_host = |parent: &str, n: u32, vport: bool, fabric: bool, in_fc: bool| -> String {
        let host = format!("{parent}/host{n}");
        f.device(&host, "scsi", true, &[("DEVTYPE", "scsi_host")])
            .unwrap();
        let sh = format!("{host}/scsi_host/host{n}");
        f.device(&sh, "scsi_host", false, &[]).unwrap();
        f.write(&format!("{sh}/unique_id"), format!("{}\n", n + 10))
            .unwrap();
        if in_fc {
            let fc = format!("{host}/fc_host/host{n}");
            f.device(&fc, "fc_host", false, &[]).unwrap();
            f.write(
                &format!("{fc}/port_name"),
                format!("0x21000024ff3701{n:02x}\n"),
            )
            .unwrap();
            f.write(
                &format!("{fc}/node_name"),
                format!("0x20000024ff3701{n:02x}\n"),
            )
            .unwrap();
            if fabric {
                f.write(&format!("{fc}/fabric_name"), "0x100000051e0c3a5b\n")
                    .unwrap();
            }
            if vport {
                f.write(&format!("{fc}/vport_create"), "").unwrap();
                f.write(&format!("{fc}/max_npiv_vports"), "254\n").unwrap();
                f.write(&format!("{fc}/npiv_vports_inuse"), "1\n").unwrap();
            }
        } else if vport {
            f.write(&format!("{sh}/vport_create"), "").unwrap();
        }
        host
    };
    let h = fc_host(&hba, 5, true, true, true);
    let rport = format!("{h}/rport-5:0-0");
    f.write(&format!("{rport}/uevent"), "").unwrap();
    let rp = format!("{rport}/fc_remote_ports/rport-5:0-0");
    f.device(&rp, "fc_remote_ports", false, &[]).unwrap();
    f.write(&format!("{rp}/port_name"), "0x50060e801049cfd1\n")
        .unwrap();
    let target = format!("{rport}/target5:0:0");
    f.device(&target, "scsi", true, &[("DEVTYPE", "scsi_target")])
        .unwrap();
    // A vHBA created on that port.
    let vport = format!("{h}/vport-5:0-0");
    f.write(&format!("{vport}/uevent"), "").unwrap();
    fc_host(&vport, 6, false, false, true);
    // vport_create only below scsi_host.
    let hba2 = pci(f, "0000:00:12.0", 0x0c0400, "lpfc");
    fc_host(&hba2, 7, true, true, false);
}
