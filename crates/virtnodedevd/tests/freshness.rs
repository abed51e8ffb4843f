//! No answer older than the call (issue 13): what libvirt re-reads on every query — the
//! bound driver, link state and speed, SR-IOV functions, IOMMU group, mdev types and their
//! free instances — is changed in a fake tree *without* any uevent, and the very next
//! query must show it. Each change is asked of our client, then of virsh, right away.
//! The daemon reaches these attributes through device directories it holds open; a
//! directory deleted and made anew under it is found out too. What the kernel fixes for a
//! device's lifetime (whether it has `sriov_totalvfs`, `vpd`, its `physfn`; an interface's
//! driver) changes only with the device's own uevents, so it is not changed here.

mod common;

use std::process::Command;

use common::Daemon;
use fakesys::{FakeSys, MdevTypeSpec, NetSpec, PciSpec};
use protocol::remote::{proc, NameFlagsArgs};
use rpc::client::Client;

const NIC: &str = "pci_0000_00_03_0";
const GPU: &str = "pci_0000_00_04_0";
const NET: &str = "net_vndfresh0_02_00_00_00_00_31";

fn xml(c: &mut Client, name: &str) -> String {
    let reply = c
        .call_raw(
            proc::NODE_DEVICE_GET_XML_DESC,
            &xdr::to_bytes(&NameFlagsArgs {
                name: name.into(),
                flags: 0,
            }),
        )
        .unwrap();
    xdr::Decoder::new(&reply).get_string().unwrap()
}

fn virsh_xml(d: &Daemon, name: &str) -> String {
    let out = Command::new("virsh")
        .args(["-c", &d.uri(), "nodedev-dumpxml", name])
        .output()
        .expect("run virsh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Tree {
    fs: FakeSys,
    nic: String,
    gpu: String,
    net: String,
}

fn tree(dir: &std::path::Path) -> Tree {
    let fs = FakeSys::new(dir).unwrap();
    let pci = |addr: &str, class: u32, driver: &str| {
        fs.pci_device(
            addr,
            None,
            &PciSpec {
                vendor: 0x8086,
                device: 0x10d3,
                class,
                driver: Some(driver.into()),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let nic = pci("0000:00:03.0", 0x020000, "e1000e");
    let gpu = pci("0000:00:04.0", 0x030000, "nvidia");
    // A VF the NIC does not point at yet (its `virtfn0` link comes with a change below).
    pci("0000:00:03.1", 0x020000, "vfio-pci");
    fs.iommu_group(&nic, 7).unwrap();
    // An SR-IOV physical function (the kernel makes `sriov_totalvfs` with the device).
    fs.write(&format!("{nic}/sriov_totalvfs"), "4\n").unwrap();
    fs.mdev_types(
        &gpu,
        &[MdevTypeSpec::new(
            "nvidia-11",
            Some("GRID M60-0B"),
            "vfio-pci",
            16,
        )],
    )
    .unwrap();
    let net = fs
        .net(
            Some(&nic),
            &NetSpec::new("vndfresh0", 31, "02:00:00:00:00:31"),
        )
        .unwrap();
    Tree { fs, nic, gpu, net }
}

/// Applies `change` to the tree, then asks both clients at once: each must find `text`
/// in the device's XML when `present`, and not find it otherwise (and the answer just
/// before the change said the opposite).
fn fresh(
    d: &Daemon,
    c: &mut Client,
    device: &str,
    change: impl FnOnce(),
    text: &str,
    present: bool,
) {
    // Asked first: whatever the daemon keeps of this device is now in its hands.
    assert_ne!(
        xml(c, device).contains(text),
        present,
        "{device} before: {text}"
    );
    change();
    let ours = xml(c, device);
    assert_eq!(
        ours.contains(text),
        present,
        "our client, {device}: {text}:\n{ours}"
    );
    let virsh = virsh_xml(d, device);
    assert_eq!(
        virsh.contains(text),
        present,
        "virsh, {device}: {text}:\n{virsh}"
    );
}

#[test]
fn every_re_read_attribute_is_fresh_without_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let t = tree(dir.path());
    // No uevents reach this daemon (inject mode, nothing injected).
    let d = Daemon::start_with(Some(dir.path()), "", true);
    let mut c = d.open_client();
    let fs = &t.fs;

    // The link goes down; its speed becomes unknown.
    fresh(
        &d,
        &mut c,
        NET,
        || fs.write(&format!("{}/operstate", t.net), "down\n").unwrap(),
        "<link state='down'",
        true,
    );
    fresh(
        &d,
        &mut c,
        NET,
        || fs.write(&format!("{}/operstate", t.net), "up\n").unwrap(),
        "<link speed='1000' state='up'/>",
        true,
    );
    fresh(
        &d,
        &mut c,
        NET,
        || fs.write(&format!("{}/speed", t.net), "10000\n").unwrap(),
        "<link speed='10000' state='up'/>",
        true,
    );

    // The NIC is unbound, then bound to vfio-pci.
    let driver = fs.path(&format!("{}/driver", t.nic));
    fresh(
        &d,
        &mut c,
        NIC,
        || std::fs::remove_file(&driver).unwrap(),
        "<name>e1000e</name>",
        false,
    );
    fresh(
        &d,
        &mut c,
        NIC,
        || fs.bind_driver(&t.nic, "pci", "vfio-pci").unwrap(),
        "<name>vfio-pci</name>",
        true,
    );

    // The SR-IOV physical function is allowed more VFs, and another device joins its
    // IOMMU group.
    fresh(
        &d,
        &mut c,
        NIC,
        || {
            fs.write(&format!("{}/sriov_totalvfs", t.nic), "8\n")
                .unwrap()
        },
        "<capability type='virt_functions' maxCount='8'/>",
        true,
    );
    // Its first VF is enabled.
    fresh(
        &d,
        &mut c,
        NIC,
        || {
            fs.symlink(
                "/sys/devices/pci0000:00/0000:00:03.1",
                &format!("{}/virtfn0", t.nic),
            )
            .unwrap()
        },
        "<address domain='0x0000' bus='0x00' slot='0x03' function='0x1'/>",
        true,
    );
    fresh(
        &d,
        &mut c,
        NIC,
        || fs.iommu_group(&t.gpu, 7).unwrap(),
        "<address domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>",
        true,
    );

    // A vGPU is taken: one instance fewer; then the type goes away.
    let avail = format!(
        "{}/mdev_supported_types/nvidia-11/available_instances",
        t.gpu
    );
    fresh(
        &d,
        &mut c,
        GPU,
        || fs.write(&avail, "15\n").unwrap(),
        "<availableInstances>15</availableInstances>",
        true,
    );
    fresh(
        &d,
        &mut c,
        GPU,
        || std::fs::remove_dir_all(fs.path(&format!("{}/mdev_supported_types", t.gpu))).unwrap(),
        "<capability type='mdev_types'>",
        false,
    );

    // The interface's directory, which the daemon holds open, is deleted and made anew
    // at the same place: the answer comes from the new one.
    fresh(
        &d,
        &mut c,
        NET,
        || {
            std::fs::remove_dir_all(fs.path(&t.net)).unwrap();
            let mut spec = NetSpec::new("vndfresh0", 31, "02:00:00:00:00:31");
            spec.operstate = "dormant".into();
            fs.net(Some(&t.nic), &spec).unwrap();
        },
        "<link state='dormant'/>",
        true,
    );
}
