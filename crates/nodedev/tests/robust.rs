//! Discovery over odd and changing sysfs content never fails as a whole or
//! panics: each device is described or skipped as libvirt 11.3 does (the
//! hostile tree is compared with the reference by the differential tests;
//! the devices that make libvirt's own start fail are checked here).

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fakesys::{FakeSys, NetSpec, PciSpec};

fn names(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = nodedev::enumerate(&nodedev::HostRoot::new(root))
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn hostile_tree_is_described_as_libvirt_does() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fakesys::hostile_tree(tmp.path(), true).unwrap();
    fakesys::add_pciaccess_breakers(&f).unwrap();
    let root = nodedev::HostRoot::new(tmp.path());
    let devs = nodedev::enumerate(&root);
    let mut got: Vec<&str> = devs.iter().map(|d| d.name()).collect();
    got.sort();
    // What libvirt 11.3 lists for the hostile tree (differential test), plus
    // the interface of the PCI device with an unreadable `vendor`, which
    // hangs off computer.
    assert_eq!(
        got,
        [
            "block_sdz3",
            "ccw_0_0_0128",
            "ccw_0_0_c000",
            "ccw_0_0_c001",
            "ccw_0_0_c002",
            "ccw_0_0_c100",
            "ccw_0_0_c101",
            "ccw_0_0_c102",
            "ccwgroup_0_0_c000",
            "computer",
            "css_0_0_0020",
            "css_0_0_0021",
            "css_0_0_0022",
            "css_0_0_0023",
            "css_0_0_0024",
            "css_0_0_0025",
            "css_0_0_0026",
            "css_0_0_0027",
            "css_0_0_0028",
            "net_vndtz0_52_54_00_00_02_00",
            "net_vndtz1",
            "net_vndtz10_52_54_00_00_02_0a",
            "net_vndtz6_52_54_00__00_02_06",
            "net_vndtz7",
            "net_vndtz8_52_54______02_08",
            "pci_0000_00_02_0",
            "pci_0000_00_06_0",
            "pci_0000_00_06_1",
            "pci_0000_00_08_1",
            "pci_0000_00_09_0",
            "pci_0000_00_10_0",
            "pci_0000_00_14_0",
            "scsi_4_0_0_0",
            "scsi_4_0_0_2",
            "scsi_4_0_0_3",
            "scsi_host4",
            "scsi_target4_0_0",
            "usb_3_0_1_0",
            "usb_3_0_1_2",
            "usb_usb3",
        ]
    );
    let get = |n: &str| devs.iter().find(|d| d.name() == n).unwrap();
    assert_eq!(
        get("net_vndtz0_52_54_00_00_02_00").parent(),
        Some("computer")
    );
    let computer = get("computer").to_xml();
    // Control characters go, tab/CR/LF stay; a value ends at a NUL; an
    // empty, directory or mode-000 attribute is absent.
    assert!(computer.contains("<product>Odd \tMachine[1m &lt;&amp;&gt;</product>"));
    assert!(computer.contains("<vendor>Before</vendor>"));
    assert!(computer.contains("<version>line1\nline2</version>"));
    assert!(!computer.contains("<serial>"));
    assert!(
        computer.contains("<release_date>01/01/\u{fffd}\u{fffd}20</release_date>"),
        "{computer}"
    );
    let pci = get("pci_0000_00_02_0");
    assert_eq!(pci.driver(), None);
    assert!(!pci.to_xml().contains("<numa"));
    let usb = get("usb_usb3").to_xml();
    assert!(!usb.contains("Hidden") && !usb.contains("Linked"), "{usb}");
}

/// A PCI device with a NIC, `n` of them, under the root bus.
fn nic(f: &FakeSys, i: u32) {
    let addr = format!("0000:00:{:02x}.{}", i / 8, i % 8);
    let p = f
        .pci_device(
            &addr,
            None,
            &PciSpec {
                vendor: 0x8086,
                device: 0x10d3,
                class: 0x020000,
                driver: Some("e1000e".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let _ = f.net(
        Some(&p),
        &NetSpec::new(&format!("vndtr{i}"), 300 + i, "52:54:00:00:03:00"),
    );
}

/// Devices disappear (their directories removed, their bus and class links
/// left dangling) and reappear while discovery runs, over and over:
/// discovery never panics and always returns `computer`.
#[test]
fn devices_vanishing_during_enumeration_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let f = FakeSys::new(tmp.path()).unwrap();
    const N: u32 = 40;
    for i in 0..N {
        nic(&f, i);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        let dir = tmp.path().to_path_buf();
        std::thread::spawn(move || {
            let f = FakeSys::new(&dir).unwrap();
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let addr = format!("0000:00:{:02x}.{}", i / 8, i % 8);
                let p = f.path(&format!("/sys/devices/pci0000:00/{addr}"));
                let _ = std::fs::remove_dir_all(&p);
                if i.is_multiple_of(2) {
                    nic(&f, i);
                }
                i = (i + 7) % N;
            }
        })
    };
    let root = nodedev::HostRoot::new(tmp.path());
    for _ in 0..60 {
        let devs = nodedev::enumerate(&root);
        assert_eq!(devs[0].name(), "computer");
        for mut d in devs {
            d.refresh(&root);
            let _ = d.to_xml();
        }
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    // Once things settle, a dangling class/bus link just means "gone".
    let n = names(tmp.path());
    assert!(n.contains(&"computer".to_string()));
}

/// FIFOs where sysfs files belong (libvirt would block on some of them):
/// discovery finishes, skipping or describing the devices.
#[test]
fn fifos_in_place_of_attributes_never_block() {
    let tmp = tempfile::tempdir().unwrap();
    let f = FakeSys::new(tmp.path()).unwrap();
    for i in 0..4 {
        nic(&f, i);
    }
    for (i, file) in ["uevent", "numa_node", "config", "sriov_totalvfs"]
        .iter()
        .enumerate()
    {
        let p = f.path(&format!("/sys/devices/pci0000:00/0000:00:00.{i}/{file}"));
        let _ = std::fs::remove_file(&p);
        let ok = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !common::available(ok, "mkfifo") {
            return;
        }
    }
    // An interface whose `operstate` is a FIFO.
    let p = f.path("/sys/devices/pci0000:00/0000:00:00.3/net/vndtr3/operstate");
    std::fs::remove_file(&p).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&p)
        .status()
        .unwrap()
        .success());
    let dir = tmp.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(names(&dir));
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("discovery blocked on a FIFO");
    assert!(got.contains(&"computer".to_string()), "{got:?}");
}
