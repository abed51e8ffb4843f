//! Real clients against our daemon over a fake tree: virsh and libvirt-python of libvirt
//! 11.3 (from the reference tool's chroot) and of 9.0 (Debian 12's, on the host).

mod common;

use common::{python_of, sample_tree, virsh_of, Daemon, Libvirt};

fn fake_daemon() -> (tempfile::TempDir, Daemon) {
    let tree = tempfile::tempdir().unwrap();
    sample_tree(tree.path());
    let d = Daemon::start(Some(tree.path()), "");
    (tree, d)
}

/// The releases whose clients can run here (a missing one fails the test, unless the run
/// allows skipping).
fn releases() -> Vec<Libvirt> {
    Libvirt::BOTH
        .into_iter()
        .filter(|v| v.clients_available())
        .collect()
}

/// stdout of a virsh command that must succeed.
fn virsh_ok(v: Libvirt, uri: &str, args: &[&str]) -> String {
    let o = virsh_of(v, uri, args);
    assert!(
        o.status.success(),
        "virsh {} {args:?} failed: {}",
        v.label(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn virsh_lists_the_tree() {
    for v in releases() {
        virsh_lists_the_tree_with(v);
    }
}

fn virsh_lists_the_tree_with(v: Libvirt) {
    let (_t, d) = fake_daemon();
    let tree = virsh_ok(v, &d.uri(), &["nodedev-list", "--tree"]);
    assert!(tree.starts_with("computer\n"), "{tree}");
    assert!(tree.contains("+- pci_0000_00_1c_0"), "{tree}");
    assert!(tree.contains("+- net_vndt0_52_54_00_12_34_56"), "{tree}");
    let pci = virsh_ok(v, &d.uri(), &["nodedev-list", "--cap", "pci"]);
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
    for v in releases() {
        dumpxml_validates_with(v);
    }
}

fn dumpxml_validates_with(v: Libvirt) {
    let (_t, d) = fake_daemon();
    let validate = v != Libvirt::V9_0
        || common::available(
            std::path::Path::new(v.nodedev_schema()).exists() && common::have("xmllint"),
            "xmllint and libvirt's nodedev.rng",
        );
    for name in virsh_ok(v, &d.uri(), &["nodedev-list"])
        .lines()
        .filter(|l| !l.is_empty())
    {
        let xml = virsh_ok(v, &d.uri(), &["nodedev-dumpxml", name]);
        assert!(xml.contains(&format!("<name>{name}</name>")), "{xml}");
        if validate {
            let f = d.dir.path().join(format!("{name}.xml"));
            std::fs::write(&f, &xml).unwrap();
            let out = v
                .command("xmllint")
                .args(["--noout", "--relaxng", v.nodedev_schema()])
                .arg(&f)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name} does not validate against {}'s schema: {}\n{xml}",
                v.label(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn virsh_info_and_errors() {
    for v in releases() {
        virsh_info_and_errors_with(v);
    }
}

fn virsh_info_and_errors_with(v: Libvirt) {
    let (_t, d) = fake_daemon();
    let virsh = |uri: &str, args: &[&str]| virsh_of(v, uri, args);
    let info = virsh_ok(v, &d.uri(), &["nodedev-info", "pci_0000_01_00_0"]);
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
    for v in releases() {
        python_lists_looks_up_and_describes_with(v);
    }
}

fn python_lists_looks_up_and_describes_with(v: Libvirt) {
    let (_t, d) = fake_daemon();
    let out = python_of(
        v,
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
    // The libvirt version whose behaviour we reproduce.
    assert_eq!(lines[3], "11003000 nodedev 1 ['block_sdz_Test_Disk_TD123']");
    assert_eq!(
        lines[4],
        "53 22 Node device not found: no node device with matching name 'nosuch'"
    );
}

#[test]
fn python_event_registration_round_trip() {
    for v in releases() {
        python_event_registration_round_trip_with(v);
    }
}

fn python_event_registration_round_trip_with(v: Libvirt) {
    let (_t, d) = fake_daemon();
    let out = python_of(
        v,
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
