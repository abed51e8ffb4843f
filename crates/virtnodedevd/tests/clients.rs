//! Debian's real clients — virsh and libvirt-python 9.0 — against our daemon over a fake tree.

mod common;

use std::process::Command;

use common::{
    python, python_libvirt_available, sample_tree, virsh, virsh_available, virsh_ok, Daemon,
};

fn fake_daemon() -> (tempfile::TempDir, Daemon) {
    let tree = tempfile::tempdir().unwrap();
    sample_tree(tree.path());
    let d = Daemon::start(Some(tree.path()), "");
    (tree, d)
}

#[test]
fn virsh_lists_the_tree() {
    if !virsh_available() {
        return;
    }
    let (_t, d) = fake_daemon();
    let tree = virsh_ok(&d.uri(), &["nodedev-list", "--tree"]);
    assert!(tree.starts_with("computer\n"), "{tree}");
    assert!(tree.contains("+- pci_0000_00_1c_0"), "{tree}");
    assert!(tree.contains("+- net_vndt0_52_54_00_12_34_56"), "{tree}");
    let pci = virsh_ok(&d.uri(), &["nodedev-list", "--cap", "pci"]);
    assert_eq!(
        pci.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(),
        [
            "pci_0000_00_00_0",
            "pci_0000_00_05_0",
            "pci_0000_00_1c_0",
            "pci_0000_00_1f_2",
            "pci_0000_01_00_0"
        ]
    );
}

#[test]
fn virsh_dumpxml_of_every_device_validates_against_libvirts_schema() {
    if !virsh_available() {
        return;
    }
    let (_t, d) = fake_daemon();
    let schema = "/usr/share/libvirt/schemas/nodedev.rng";
    let validate = common::available(
        std::path::Path::new(schema).exists() && common::have("xmllint"),
        "xmllint and libvirt's nodedev.rng",
    );
    for name in virsh_ok(&d.uri(), &["nodedev-list"])
        .lines()
        .filter(|l| !l.is_empty())
    {
        let xml = virsh_ok(&d.uri(), &["nodedev-dumpxml", name]);
        assert!(xml.contains(&format!("<name>{name}</name>")), "{xml}");
        if validate {
            let f = d.dir.path().join(format!("{name}.xml"));
            std::fs::write(&f, &xml).unwrap();
            let out = Command::new("xmllint")
                .args(["--noout", "--relaxng", schema])
                .arg(&f)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name} does not validate: {}\n{xml}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn virsh_info_and_errors() {
    if !virsh_available() {
        return;
    }
    let (_t, d) = fake_daemon();
    let info = virsh_ok(&d.uri(), &["nodedev-info", "pci_0000_01_00_0"]);
    assert!(info.contains("Parent:         pci_0000_00_1c_0"), "{info}");
    assert!(info.contains("Active:         yes"), "{info}");
    let out = virsh(&d.uri(), &["nodedev-dumpxml", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("error: Node device not found: no node device with matching name 'nosuch'"));
    let out = virsh(&d.uri(), &["list"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "this function is not supported by the connection driver: virConnectNumOfDomains"
    ));
    let out = virsh(&d.ro_uri(), &["nodedev-destroy", "computer"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("operation forbidden: read only access prevents virNodeDeviceDestroy"));
}

#[test]
fn python_lists_looks_up_and_describes() {
    if !python_libvirt_available() {
        return;
    }
    let (_t, d) = fake_daemon();
    let out = python(
        &d.uri(),
        r#"
import os, libvirt
c = libvirt.open(os.environ["URI"])
names = sorted(dev.name() for dev in c.listAllDevices(libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET))
print(names)
dev = c.nodeDeviceLookupByName("pci_0000_01_00_0")
print(dev.parent(), dev.listCaps(), dev.numOfCaps(), dev.isActive(), dev.isPersistent(), dev.autostart())
print("<name>pci_0000_01_00_0</name>" in dev.XMLDesc(0))
print(c.getLibVersion(), c.getType(), c.numOfDevices("storage", 0), c.listDevices("storage", 0))
try:
    c.nodeDeviceLookupByName("nosuch")
except libvirt.libvirtError as e:
    print(e.get_error_code(), e.get_error_domain(), e.get_error_message())
c.close()
"#,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "['net_vndt0_52_54_00_12_34_56', 'net_vndt1_fe_00_00_00_00_01']"
    );
    assert_eq!(lines[1], "pci_0000_00_1c_0 ['pci'] 1 1 0 0");
    assert_eq!(lines[2], "True");
    assert_eq!(lines[3], "9000000 nodedev 1 ['block_sdz_Test_Disk_TD123']");
    assert_eq!(
        lines[4],
        "53 22 Node device not found: no node device with matching name 'nosuch'"
    );
}

#[test]
fn python_event_registration_round_trip() {
    if !python_libvirt_available() {
        return;
    }
    let (_t, d) = fake_daemon();
    let out = python(
        &d.uri(),
        r#"
import os, libvirt
libvirt.virEventRegisterDefaultImpl()
c = libvirt.open(os.environ["URI"])
cb = lambda *a: None
a = c.nodeDeviceEventRegisterAny(None, libvirt.VIR_NODE_DEVICE_EVENT_ID_LIFECYCLE, cb, None)
b = c.nodeDeviceEventRegisterAny(None, libvirt.VIR_NODE_DEVICE_EVENT_ID_UPDATE, cb, None)
c.nodeDeviceEventDeregisterAny(a)
c.nodeDeviceEventDeregisterAny(b)
print("ok", c.isAlive())
c.close()
"#,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 1");
}
