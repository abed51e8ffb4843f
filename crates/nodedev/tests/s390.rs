//! s390 discovery as libvirt 11.3 does it, over fakesys's `s390` tree (confirmed against
//! libvirt 11.3 by `differential.rs`, `s390_tree_matches_libvirt_11_3`): ccwgroup (qeth)
//! devices and their members, CCW device states, DASDs and a VPD that needs escaping.
//! Expected documents are in `tests/golden/s390/`.

mod common;

use nodedev::{Cap, CapType, CcwState, Device, HostRoot};

fn devices(build: fn(&std::path::Path)) -> (tempfile::TempDir, HostRoot, Vec<Device>) {
    let t = tempfile::tempdir().unwrap();
    build(t.path());
    let root = HostRoot::new(t.path());
    let mut devs = nodedev::enumerate(&root);
    for d in &mut devs {
        d.refresh(&root);
    }
    (t, root, devs)
}

fn s390() -> (tempfile::TempDir, HostRoot, Vec<Device>) {
    devices(|d| {
        fakesys::trees::s390(d).unwrap();
    })
}

fn find<'a>(devs: &'a [Device], name: &str) -> &'a Device {
    devs.iter()
        .find(|d| d.name() == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn s390_devices_match_their_expected_files() {
    let (_t, _root, devs) = s390();
    for name in [
        "ccwgroup_0_0_bd00",
        "ccwgroup_0_0_be00",
        "ccwgroup_0_0_bf00",
        "ccw_0_0_bd00",
        "ccw_0_0_0102",
        "net_encbd00_02_00_00_8c_5a_11",
        "block_dasda_IBM_750000000DXP71_1500_0a",
        "block_dasdb_IBM_750000000DXP71_1500_0b",
        "pci_0001_00_00_0",
    ] {
        let xml = common::members_sorted(&find(&devs, name).to_xml());
        common::assert_golden(&format!("s390/{name}"), &xml);
    }
}

#[test]
fn group_members_are_ccw_devices_that_match_the_ccwgroup_member_filter() {
    let (_t, _root, devs) = s390();
    let member = find(&devs, "ccw_0_0_bd01");
    // virNodeDeviceCapsListExport and virNodeDeviceObjHasCap (11.3): the member
    // sub-capability follows ccw, and a member matches both filters.
    assert_eq!(member.caps(), [CapType::CcwDev, CapType::CcwGroupMember]);
    assert!(member.has_cap(CapType::CcwDev) && member.has_cap(CapType::CcwGroupMember));
    let group = find(&devs, "ccwgroup_0_0_bd00");
    assert_eq!(group.caps(), [CapType::CcwGroupDev]);
    assert!(!group.has_cap(CapType::CcwGroupMember));
    let dasd = find(&devs, "ccw_0_0_0100");
    assert_eq!(dasd.caps(), [CapType::CcwDev]);
    let mut members: Vec<&str> = devs
        .iter()
        .filter(|d| d.has_cap(CapType::CcwGroupMember))
        .map(|d| d.name())
        .collect();
    members.sort();
    assert_eq!(members.len(), 9);
    assert_eq!(members[0], "ccw_0_0_bd00");
    // Group devices hang off computer, their interface off the group.
    assert_eq!(group.parent(), Some("computer"));
    assert_eq!(
        find(&devs, "net_encbd00_02_00_00_8c_5a_11").parent(),
        Some("ccwgroup_0_0_bd00")
    );
}

#[test]
fn ccw_state_follows_the_online_attribute() {
    let (_t, _root, devs) = s390();
    let state = |name: &str| {
        find(&devs, name).cap_data().iter().find_map(|c| match c {
            Cap::Ccw(c) => Some(c.state),
            _ => None,
        })
    };
    assert_eq!(state("ccw_0_0_0100"), Some(Some(CcwState::Online)));
    assert_eq!(state("ccw_0_0_0102"), Some(Some(CcwState::Offline)));
    assert_eq!(state("ccw_0_0_be01"), Some(Some(CcwState::Offline)));
}

#[test]
fn membership_is_re_read_on_every_xml_request() {
    let (t, root, mut devs) = s390();
    let f = |p: &str| t.path().join(p.trim_start_matches('/'));
    std::fs::remove_file(f("/sys/devices/css0/0.0.0011/0.0.bd01/group_device")).unwrap();
    std::fs::remove_file(f("/sys/devices/qeth/0.0.bd00/cdev1")).unwrap();
    for d in &mut devs {
        d.refresh(&root);
    }
    let member = find(&devs, "ccw_0_0_bd01");
    assert_eq!(member.caps(), [CapType::CcwDev]);
    assert!(!member.to_xml().contains("ccwgroup_member"));
    let group = find(&devs, "ccwgroup_0_0_bd00").to_xml();
    assert!(!group.contains("ccw_0_0_bd01"));
    assert!(group.contains("<ccw_device ref='cdev2'>ccw_0_0_bd02</ccw_device>"));
}

#[test]
fn device_nodes_from_the_udev_database_are_absolute() {
    // The s390 tree's database says E:DEVNAME=dasda, as the kernel's uevent does.
    let (_t, _root, devs) = s390();
    let d = find(&devs, "block_dasda_IBM_750000000DXP71_1500_0a");
    assert_eq!(d.devnode(), Some("/dev/dasda"));
    assert!(d.to_xml().contains("<block>/dev/dasda</block>"));
}

/// The hostile tree's s390 part, confirmed against 11.3 by
/// `hostile_tree_matches_libvirt_11_3`.
#[test]
fn odd_ccw_and_group_attributes_are_shown_as_libvirt_does() {
    let (_t, _root, devs) = devices(|d| {
        fakesys::hostile_tree(d, false).unwrap();
    });
    // online "2": no <state>, for the group and its members.
    let group = find(&devs, "ccwgroup_0_0_c000").to_xml();
    assert!(!group.contains("<state>"));
    assert!(group.contains("<card_type>(null)</card_type>\n      <chpid>(null)</chpid>"));
    assert!(!find(&devs, "ccw_0_0_c001").to_xml().contains("<state>"));
    // A group without members is dropped; its CCW devices still name it.
    assert!(!devs.iter().any(|d| d.name() == "ccwgroup_0_0_c100"));
    assert!(find(&devs, "ccw_0_0_c101")
        .to_xml()
        .contains("<group_device>ccwgroup_0_0_c100</group_device>"));
    // online "-1" and "yes" drop the CCW device; a dangling group_device is no membership.
    assert!(!devs.iter().any(|d| d.name() == "ccw_0_0_0126"));
    assert!(!devs.iter().any(|d| d.name() == "ccw_0_0_0127"));
    assert_eq!(find(&devs, "ccw_0_0_0128").caps(), [CapType::CcwDev]);
}
