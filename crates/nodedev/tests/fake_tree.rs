//! Discovery over a fakesys tree, checked against expected XML (which the
//! differential test confirmed against libvirt 9.0): whole documents in
//! `tests/golden/fake_tree/` (see `tests/golden/README.md`), parts inline.

mod common;

fn devices() -> (tempfile::TempDir, Vec<nodedev::Device>) {
    let tmp = tempfile::tempdir().unwrap();
    common::build_host(tmp.path());
    let root = nodedev::HostRoot::new(tmp.path());
    let mut devs = nodedev::enumerate(&root);
    devs.sort_by(|a, b| a.name().cmp(b.name()));
    (tmp, devs)
}

use nodedev::CapType;

fn find<'a>(devs: &'a [nodedev::Device], name: &str) -> &'a nodedev::Device {
    devs.iter()
        .find(|d| d.name() == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn unsupported_devices_are_skipped_like_libvirt() {
    let (_t, devs) = devices();
    let names: Vec<&str> = devs.iter().map(|d| d.name()).collect();
    // Confirmed against libvirt 11.3 by the differential test (9.0 left out the offline
    // ccw_0_0_0002).
    assert_eq!(
        names,
        [
            "ap_0a_0004",
            "ap_card0a",
            "ap_matrix",
            "block_sda_QEMU_HARDDISK_QM00001",
            "block_vdz",
            "ccw_0_0_0000",
            "ccw_0_0_0002",
            "ccw_0_1_fe03",
            "computer",
            "css_0_0_0000",
            "css_0_0_0001",
            "css_0_0_0002",
            "drm_card0",
            "drm_renderD128",
            "mdev_4b20d080_1b54_4048_85b3_a6a62d165c01_0000_00_02_0",
            "mdev_b1ae8bf6_38b0_4c81_9d44_78ce3f520496_mtty",
            "mtty_mtty",
            "net_fketh0_52_54_00_aa_bb_cc",
            "net_fkorph0_52_54_00_00_00_02",
            "net_fkveth0_aa_bb_cc_dd_ee_ff",
            "net_fkwlan0_aa_bb_cc_dd_ee_01",
            "pci_0000_00_00_0",
            "pci_0000_00_02_0",
            "pci_0000_00_05_0",
            "pci_0000_00_08_0",
            "pci_0000_00_08_1",
            "pci_0000_00_09_0",
            "pci_0000_00_09_1",
            "pci_0000_00_10_0",
            "pci_0000_00_11_0",
            "pci_0000_00_12_0",
            "pci_0000_00_14_0",
            "pci_0000_00_1c_0",
            "pci_0000_00_1f_2",
            "pci_0000_01_00_0",
            "scsi_2_0_0_0",
            "scsi_generic_sg0",
            "scsi_host2",
            "scsi_host5",
            "scsi_host6",
            "scsi_host7",
            "scsi_target2_0_0",
            "scsi_target5_0_0",
            "usb_1_0_1_0",
            "usb_1_1_1_0",
            "usb_usb1",
            "vdpa_vdpa0",
            "vdpa_vdpa1",
        ]
    );
}

#[test]
fn children_of_a_pci_device_without_config_go_to_computer() {
    let (_t, devs) = devices();
    assert_eq!(
        find(&devs, "net_fkorph0_52_54_00_00_00_02").parent(),
        Some("computer")
    );
    assert_eq!(
        find(&devs, "net_fketh0_52_54_00_aa_bb_cc").parent(),
        Some("pci_0000_01_00_0")
    );
    assert_eq!(
        find(&devs, "pci_0000_01_00_0").parent(),
        Some("pci_0000_00_1c_0")
    );
    assert_eq!(find(&devs, "computer").parent(), None);
}

#[test]
fn computer_shows_dmi_data_escaped() {
    let (_t, devs) = devices();
    let c = find(&devs, "computer");
    assert!(c.is_active() && c.is_persistent() && c.autostart());
    common::assert_golden("fake_tree/computer", &c.to_xml());
}

#[test]
fn pcie_bridge_and_endpoint_show_links_iommu_and_numa() {
    let (_t, devs) = devices();
    let port = find(&devs, "pci_0000_00_1c_0");
    common::assert_golden("fake_tree/pci_0000_00_1c_0", &port.to_xml());
    let nic = find(&devs, "pci_0000_01_00_0");
    let x = nic.to_xml();
    assert!(x.contains(
        "    <iommuGroup number='7'>
      <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </iommuGroup>
    <numa node='0'/>
"
    ));
    assert_eq!(nic.caps(), vec![CapType::Pci]);
}

#[test]
fn disk_uses_udev_database_properties_and_links() {
    let (_t, devs) = devices();
    let d = find(&devs, "block_sda_QEMU_HARDDISK_QM00001");
    common::assert_golden("fake_tree/block_sda_QEMU_HARDDISK_QM00001", &d.to_xml());
}

#[test]
fn net_link_state_and_subtype() {
    let (_t, devs) = devices();
    let x = find(&devs, "net_fkwlan0_aa_bb_cc_dd_ee_01").to_xml();
    assert!(x.contains("<link state='dormant'/>"));
    assert!(x.contains("<capability type='80211'/>"));
    let x = find(&devs, "net_fketh0_52_54_00_aa_bb_cc").to_xml();
    assert!(x.contains("<link speed='1000' state='up'/>"));
}

#[test]
fn usb_interface_of_a_dropped_usb_device_hangs_off_the_hub() {
    let (_t, devs) = devices();
    assert_eq!(find(&devs, "usb_1_1_1_0").parent(), Some("usb_usb1"));
    let x = find(&devs, "usb_usb1").to_xml();
    assert!(x.contains("<product id='0x0003'>xHCI Host Controller</product>"));
    assert!(x.contains("<vendor id='0x1d6b'>Linux Foundation</vendor>"));
}

#[test]
fn scsi_chain_and_drm_types() {
    let (_t, devs) = devices();
    assert_eq!(
        find(&devs, "scsi_generic_sg0").parent(),
        Some("scsi_2_0_0_0")
    );
    assert_eq!(
        find(&devs, "scsi_2_0_0_0").parent(),
        Some("scsi_target2_0_0")
    );
    assert!(find(&devs, "scsi_2_0_0_0")
        .to_xml()
        .contains("<type>cdrom</type>"));
    assert!(find(&devs, "scsi_host2")
        .to_xml()
        .contains("<unique_id>3</unique_id>"));
    assert!(find(&devs, "drm_renderD128")
        .to_xml()
        .contains("<type>render</type>"));
    assert!(!find(&devs, "scsi_host2").has_cap(CapType::FcHost));
}

#[test]
fn mdev_is_named_after_uuid_and_parent_address() {
    let (_t, devs) = devices();
    let d = find(
        &devs,
        "mdev_4b20d080_1b54_4048_85b3_a6a62d165c01_0000_00_02_0",
    );
    assert_eq!(d.parent(), Some("pci_0000_00_02_0"));
    common::assert_golden(
        "fake_tree/mdev_4b20d080_1b54_4048_85b3_a6a62d165c01_0000_00_02_0",
        &d.to_xml(),
    );
    assert!(find(&devs, "pci_0000_00_02_0").has_cap(CapType::MdevTypes));
}

#[test]
fn an_unreadable_mdev_type_drops_the_parent() {
    let (_t, devs) = devices();
    assert!(!devs.iter().any(|d| d.name() == "pci_0000_00_0a_0"));
}

#[test]
fn mtty_parent_nests_mdev_types_twice() {
    let (_t, devs) = devices();
    let x = find(&devs, "mtty_mtty").to_xml();
    assert!(x.contains(
        "  <capability type='mdev_types'>
    <capability type='mdev_types'>
      <type id='mtty-2'>
        <name>Dual-port-serial</name>
"
    ));
}

#[test]
fn sriov_functions_and_vpd() {
    let (_t, devs) = devices();
    let pf = find(&devs, "pci_0000_00_08_0");
    assert_eq!(pf.caps(), vec![CapType::Pci, CapType::Vpd]);
    assert!(pf.to_xml().contains(
        "    <capability type='virt_functions' maxCount='8'>
      <address domain='0x0000' bus='0x00' slot='0x09' function='0x0'/>
      <address domain='0x0000' bus='0x00' slot='0x09' function='0x1'/>
    </capability>
    <capability type='vpd'>
      <name>Fake 10GbE &lt;SFP+&gt; &amp; Co</name>
      <fields access='readonly'>
        <change_level>A1</change_level>
        <manufacture_id>1234</manufacture_id>
        <part_number>FK-10G-2</part_number>
        <serial_number>SN&lt;&amp;&gt;123</serial_number>
        <vendor_field index='1'>vendor one again</vendor_field>
      </fields>
      <fields access='readwrite'>
        <asset_tag>asset-42</asset_tag>
        <vendor_field index='9'>rw vendor</vendor_field>
        <system_field index='1'>system one</system_field>
      </fields>
    </capability>
"
    ));
    assert!(find(&devs, "pci_0000_00_08_1")
        .to_xml()
        .contains("<capability type='virt_functions' maxCount='4'/>"));
    // Bad checksum: no vpd capability.
    assert!(!find(&devs, "pci_0000_00_08_1").has_cap(CapType::Vpd));
    let vf = find(&devs, "pci_0000_00_09_1").to_xml();
    assert!(vf.contains(
        "    <capability type='phys_function'>
      <address domain='0x0000' bus='0x00' slot='0x08' function='0x0'/>
    </capability>
    <capability type='vpd'>
    </capability>
"
    ));
}

#[test]
fn s390_channel_subsystem_devices() {
    let (_t, devs) = devices();
    assert_eq!(find(&devs, "ccw_0_0_0000").parent(), Some("css_0_0_0000"));
    // Subchannel without a driver is skipped; its CCW device goes to computer.
    assert_eq!(find(&devs, "ccw_0_1_fe03").parent(), Some("computer"));
    // libvirt 11.3 lists offline CCW devices too, with their state (9.0 dropped them).
    assert!(find(&devs, "ccw_0_0_0002")
        .to_xml()
        .contains("<capability type='ccw'>\n    <state>offline</state>\n    <cssid>0x0</cssid>"));
    assert!(find(&devs, "ccw_0_0_0000")
        .to_xml()
        .contains("<capability type='ccw'>\n    <state>online</state>\n"));
    assert!(find(&devs, "css_0_0_0000").to_xml().contains(
        "    <devno>0x0000</devno>
    <channel_dev_addr>
      <cssid>0x0</cssid>
      <ssid>0x0</ssid>
      <devno>0x0000</devno>
    </channel_dev_addr>
"
    ));
    let sch = find(&devs, "css_0_0_0001");
    assert_eq!(sch.caps(), vec![CapType::CssDev, CapType::MdevTypes]);
    assert!(!sch.to_xml().contains("channel_dev_addr"));
}

#[test]
fn ap_devices_and_matrix() {
    let (_t, devs) = devices();
    assert_eq!(find(&devs, "ap_0a_0004").parent(), Some("ap_card0a"));
    assert!(find(&devs, "ap_0a_0004").to_xml().contains(
        "    <ap-adapter>0x0a</ap-adapter>
    <ap-domain>0x0004</ap-domain>
"
    ));
    let m = find(&devs, "ap_matrix");
    assert_eq!(m.caps(), vec![CapType::ApMatrix, CapType::MdevTypes]);
    assert!(m
        .to_xml()
        .contains("<availableInstances>65536</availableInstances>"));
}

#[test]
fn vdpa_chardev_must_exist_in_dev() {
    let (_t, devs) = devices();
    assert!(find(&devs, "vdpa_vdpa1")
        .to_xml()
        .contains("<chardev>/dev/vhost-vdpa-fk0</chardev>"));
    assert!(!find(&devs, "vdpa_vdpa0").to_xml().contains("chardev"));
    assert!(!devs.iter().any(|d| d.name() == "vdpa_vdpa2"));
}

#[test]
fn fc_host_vport_ops_and_remote_port() {
    let (_t, devs) = devices();
    let h = find(&devs, "scsi_host5");
    assert_eq!(
        h.caps(),
        vec![CapType::ScsiHost, CapType::FcHost, CapType::Vports]
    );
    assert_eq!(
        h.scsi_host_wwns(),
        Some(("20000024ff370105", "21000024ff370105"))
    );
    assert!(h.to_xml().contains(
        "    <capability type='fc_host'>
      <wwnn>20000024ff370105</wwnn>
      <wwpn>21000024ff370105</wwpn>
      <fabric_wwn>100000051e0c3a5b</fabric_wwn>
    </capability>
    <capability type='vport_ops'>
      <max_vports>254</max_vports>
      <vports>1</vports>
    </capability>
"
    ));
    // A vHBA: fc_host without fabric name or vport operations.
    let v = find(&devs, "scsi_host6");
    assert_eq!(v.parent(), Some("scsi_host5"));
    assert_eq!(v.caps(), vec![CapType::ScsiHost, CapType::FcHost]);
    assert!(!v.to_xml().contains("fabric_wwn"));
    // vport_create only in scsi_host: the vport data is read from fc_host,
    // fails, and libvirt clears both capabilities.
    assert_eq!(find(&devs, "scsi_host7").caps(), vec![CapType::ScsiHost]);
    assert!(find(&devs, "scsi_target5_0_0").to_xml().contains(
        "    <capability type='fc_remote_port'>
      <rport>rport-5:0-0</rport>
      <wwpn>0x50060e801049cfd1</wwpn>
    </capability>
"
    ));
}
