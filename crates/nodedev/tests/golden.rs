//! Golden files from upstream libvirt's test data
//! (`tests/nodedevschemadata/*.xml` in libvirt/libvirt), reproduced by
//! discovery over a fakesys tree laid out the way the kernel would show
//! those devices. Each expected document is that file's content; where the
//! upstream file was written for the parse->format test and so has no
//! `<path>`/`<parent>`, those two lines are removed from ours first.
//!
//! The expected documents are in `tests/golden/upstream/` (see `tests/golden/README.md`),
//! copied from libvirt 11.3.0's source (`pci_0000_42_00_0_vpd.xml` changed since 9.0: its
//! values now hold `<` and `>`, which 11.3 escapes).

mod common;

use fakesys::{FakeSys, MdevTypeSpec, PciSpec, PcieSpec, VpdSpec};

fn discover(f: &FakeSys, name: &str) -> String {
    let root = nodedev::HostRoot::new(f.root());
    let mut d = nodedev::enumerate(&root)
        .into_iter()
        .find(|d| d.name() == name)
        .unwrap_or_else(|| panic!("{name} not discovered"));
    d.refresh(&root);
    d.to_xml()
}

fn without_path_and_parent(x: &str) -> String {
    x.lines()
        .filter(|l| !l.starts_with("  <path>") && !l.starts_with("  <parent>"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// tests/nodedevschemadata/pci_0000_42_00_0_vpd.xml (libvirt/libvirt
/// commit 3954378d, as of 11.3.0): a BlueField-2 DPU with VPD-R and VPD-W fields.
#[test]
fn pci_vpd_matches_upstream_golden_file() {
    let tmp = tempfile::tempdir().unwrap();
    let f = FakeSys::new(tmp.path()).unwrap();
    f.write(
        "/usr/share/misc/pci.ids",
        "15b3  Mellanox Technologies\n\ta2d6  MT42822 BlueField-2 integrated ConnectX-6 Dx network controller\n",
    )
    .unwrap();
    let dev = f
        .pci_device(
            "0000:42:00.0",
            None,
            &PciSpec {
                vendor: 0x15b3,
                device: 0xa2d6,
                class: 0x020000,
                numa_node: Some(0),
                pcie: Some(PcieSpec {
                    port_type: 0,
                    link_port: 0,
                    cap_speed: 4,
                    cap_width: 8,
                    sta_speed: 3,
                    sta_width: 8,
                }),
                ..Default::default()
            },
        )
        .unwrap();
    f.iommu_group(&dev, 65).unwrap();
    f.sriov(&dev, Some(16), &[]).unwrap();
    let kv = |k: &[u8; 2], v: &str| (*k, v.as_bytes().to_vec());
    let img = fakesys::vpd_image(&VpdSpec {
        name: Some(
            b"BlueField-2 DPU 25GbE Dual-Port SFP56, Crypto Enabled, 16GB on-board DDR, 1GbE OOB management, Tall Bracket".to_vec(),
        ),
        read_only: vec![
            // Vendor fields are shown in the order they appear.
            kv(b"PN", "MBF2H332A-AEEOT"),
            kv(b"EC", "B1"),
            kv(b"V0", "PCIeGen4 x8"),
            kv(b"V2", "MBF2H332A-AEEOT"),
            kv(b"SN", "MT2113X00000><"),
            kv(b"V3", "3c53d07eec484d8aab34dabd24fe575aa"),
            kv(b"VA", "MLX:MN=MLNX:CSKU=V2:UUID=V3:PCI=V0:MODL=BF2H332A"),
            kv(b"MN", "foobar"),
        ],
        read_write: Some(vec![
            kv(b"V0", "vendorfield0"),
            kv(b"V2", "vendorfield2"),
            kv(b"VA", "!@#$./><"),
            kv(b"YB", "systemfieldB"),
            kv(b"Y0", "systemfield0"),
            kv(b"YA", "fooasset"),
        ]),
        rw_space: 16,
        ..Default::default()
    });
    f.vpd(&dev, &img).unwrap();
    common::assert_golden(
        "upstream/pci_0000_42_00_0_vpd",
        &without_path_and_parent(&discover(&f, "pci_0000_42_00_0")),
    );
}

/// tests/nodedevschemadata/css_0_0_fffe_mdev_types_channel_dev_addr.xml
/// (libvirt/libvirt commit 127fda5e).
#[test]
fn css_with_channel_device_and_mdev_types_matches_upstream_golden_file() {
    let tmp = tempfile::tempdir().unwrap();
    let f = FakeSys::new(tmp.path()).unwrap();
    // The golden file has no <driver>: udev reports vfio_ccw, but no
    // driver link is present when the XML is produced.
    f.write("/sys/devices/css0/uevent", "").unwrap();
    let sch = "/sys/devices/css0/0.0.fffe";
    f.device(sch, "css", true, &[("DRIVER", "vfio_ccw")])
        .unwrap();
    f.write(&format!("{sch}/dev_busid"), "0.0.0815\n").unwrap();
    f.mdev_types(
        sch,
        &[MdevTypeSpec::new(
            "vfio_ccw-io",
            Some("I/O subchannel (Non-QDIO)"),
            "vfio-ccw",
            1,
        )],
    )
    .unwrap();
    common::assert_golden(
        "upstream/css_0_0_fffe_mdev_types_channel_dev_addr",
        &discover(&f, "css_0_0_fffe"),
    );
}

/// tests/nodedevschemadata/ap_matrix_mdev_types.xml (commit 53cc4951) and
/// ap_07_0038.xml (commit 4d7fd6f0).
#[test]
fn ap_matrix_and_queue_match_upstream_golden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let f = FakeSys::new(tmp.path()).unwrap();
    let m = f.ap_matrix().unwrap();
    f.mdev_types(
        &m,
        &[MdevTypeSpec::new(
            "vfio_ap-passthrough",
            Some("VFIO AP Passthrough Device"),
            "vfio-ap",
            65536,
        )],
    )
    .unwrap();
    let card = f.ap_card(0x07).unwrap();
    f.ap_queue(&card, 0x07, 0x0038).unwrap();
    common::assert_golden("upstream/ap_matrix_mdev_types", &discover(&f, "ap_matrix"));
    common::assert_golden("upstream/ap_07_0038", &discover(&f, "ap_07_0038"));
}

fn upstream(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/upstream")
        .join(format!("{name}.xml"));
    std::fs::read_to_string(p).unwrap()
}

/// tests/nodedevschemadata/ccwgroup_0_0_bd00.xml (libvirt 11.3.0): a qeth_generic card
/// online with its three members (compared as a set: upstream lists them cdev1, cdev2,
/// cdev0, the order its test host's directory gave).
#[test]
fn ccwgroup_matches_upstream_golden_file() {
    let tmp = tempfile::tempdir().unwrap();
    let f = FakeSys::new(tmp.path()).unwrap();
    let group = f
        .qeth(0xbd00, 0x70, "qeth_generic", "1", ("OSD_10GIG", "BD"))
        .unwrap();
    // Upstream's document has no <driver>.
    std::fs::remove_file(f.path(&format!("{group}/driver"))).unwrap();
    assert_eq!(
        common::members_sorted(&discover(&f, "ccwgroup_0_0_bd00")),
        common::members_sorted(&upstream("ccwgroup_0_0_bd00"))
    );
}

/// tests/nodedevschemadata/ccw_0_0_ff02_ccwgroup.xml and ccw_0_0_ffff.xml (libvirt
/// 11.3.0): a group member and a plain CCW device. Both were written for the
/// parse->format test, which has no `<state>`: ours (`online` 1) has it, and loses it here.
#[test]
fn ccw_devices_match_upstream_golden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let f = FakeSys::new(tmp.path()).unwrap();
    // ccw_0_0_ff02 sits on subchannel 0.0.0070 upstream.
    f.qeth(0xff00, 0x6e, "qeth_layer2", "1", ("OSD_10GIG", "BD"))
        .unwrap();
    let without_state_and_driver = |x: String| -> String {
        x.lines()
            .filter(|l| !l.trim().starts_with("<state>"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .replace("  <driver>\n    <name>qeth</name>\n  </driver>\n", "")
    };
    let member = without_state_and_driver(discover(&f, "ccw_0_0_ff02"));
    assert_eq!(member, upstream("ccw_0_0_ff02_ccwgroup"));

    let tmp = tempfile::tempdir().unwrap();
    let f = FakeSys::new(tmp.path()).unwrap();
    let sch = f
        .css("0.0.0070", Some("io_subchannel"), Some("0.0.ffff"))
        .unwrap();
    f.ccw(&sch, "0.0.ffff", "1", "virtio_ccw").unwrap();
    std::fs::remove_file(f.path(&format!("{sch}/0.0.ffff/driver"))).unwrap();
    assert_eq!(
        without_state_and_driver(discover(&f, "ccw_0_0_ffff")),
        upstream("ccw_0_0_ffff")
    );
}
