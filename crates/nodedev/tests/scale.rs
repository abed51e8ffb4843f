//! Enumeration of a large generated tree: 16 SR-IOV physical functions with
//! 250 virtual functions each (4,000 VFs, each with its interface) and
//! 2,000 more virtual interfaces, about 10,000 devices in all. Checks
//! correctness only (names unique, every parent listed, SR-IOV links
//! resolved); timing is left to the benchmark.

use std::collections::{HashMap, HashSet};

use fakesys::{FakeSys, NetSpec, PciSpec, PcieSpec};

const PFS: usize = 16;
const VFS_PER_PF: usize = 250;
const VIRTUAL_NETS: usize = 2000;

fn pcie() -> Option<PcieSpec> {
    Some(PcieSpec {
        port_type: 0,
        link_port: 0,
        cap_speed: 4,
        cap_width: 16,
        sta_speed: 4,
        sta_width: 16,
    })
}

/// Builds the tree; returns the number of node devices libvirt would list.
pub fn build(dir: &std::path::Path) -> usize {
    let f = FakeSys::new(dir).unwrap();
    let mut ifindex = 2;
    let mut mac = 0u32;
    let mut next_mac = || {
        mac += 1;
        format!(
            "52:54:{:02x}:{:02x}:{:02x}:{:02x}",
            mac >> 24,
            (mac >> 16) & 0xff,
            (mac >> 8) & 0xff,
            mac & 0xff
        )
    };
    for p in 0..PFS {
        let port = f
            .pci_device(
                &format!("0000:00:{:02x}.0", p + 1),
                None,
                &PciSpec {
                    vendor: 0x8086,
                    device: 0x7c10,
                    class: 0x060400,
                    header_type: 1,
                    driver: Some("pcieport".into()),
                    pcie: pcie(),
                    ..Default::default()
                },
            )
            .unwrap();
        let bus = p + 1;
        let pf = f
            .pci_device(
                &format!("0000:{bus:02x}:00.0"),
                Some(&port),
                &PciSpec {
                    vendor: 0x8086,
                    device: 0x1593,
                    class: 0x020000,
                    header_type: 0x80,
                    driver: Some("ice".into()),
                    pcie: pcie(),
                    ..Default::default()
                },
            )
            .unwrap();
        let mut vfs = Vec::with_capacity(VFS_PER_PF);
        for v in 0..VFS_PER_PF {
            let devfn = v + 1;
            let vf = f
                .pci_device(
                    &format!("0000:{bus:02x}:{:02x}.{}", devfn / 8, devfn % 8),
                    Some(&port),
                    &PciSpec {
                        vendor: 0x8086,
                        device: 0x1889,
                        class: 0x020000,
                        driver: Some("iavf".into()),
                        pcie: pcie(),
                        ..Default::default()
                    },
                )
                .unwrap();
            f.net(
                Some(&vf),
                &NetSpec::new(&format!("vf{p}v{v}"), ifindex, &next_mac()),
            )
            .unwrap();
            ifindex += 1;
            vfs.push(vf);
        }
        f.sriov(&pf, Some(256), &vfs).unwrap();
    }
    for i in 0..VIRTUAL_NETS {
        let mut spec = NetSpec::new(&format!("veth{i}"), ifindex, &next_mac());
        spec.speed = Some("10000".into());
        f.net(None, &spec).unwrap();
        ifindex += 1;
    }
    1 + PFS * (2 + 2 * VFS_PER_PF) + VIRTUAL_NETS
}

#[test]
fn ten_thousand_device_tree_enumerates_with_unique_names_and_known_parents() {
    // NODEDEV_SCALE_TREE=DIR builds the tree there and keeps it (for
    // profiling and for the reference daemon).
    // tmpfs when there is one: creating ~150,000 sysfs entries on a VM's
    // ext4 takes the better part of a minute, on tmpfs about a second.
    let tmp = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap();
    let dir = std::env::var_os("NODEDEV_SCALE_TREE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let expected = build(&dir);
    assert!(expected >= 10_000);
    let root = nodedev::HostRoot::new(&dir);
    let devs = nodedev::enumerate(&root);
    assert_eq!(devs.len(), expected);

    let names: HashSet<&str> = devs.iter().map(|d| d.name()).collect();
    assert_eq!(names.len(), devs.len(), "names are unique");
    let by_name: HashMap<&str, &nodedev::Device> = devs.iter().map(|d| (d.name(), d)).collect();
    for d in &devs {
        match d.parent() {
            None => assert_eq!(d.name(), "computer"),
            Some(p) => assert!(by_name.contains_key(p), "{}: parent {p} unknown", d.name()),
        }
    }

    // Every interface hangs off its VF, every VF knows its PF and each PF
    // lists all its VFs in virtfn order.
    let vf_net = devs
        .iter()
        .find(|d| d.name().starts_with("net_vf3v17_"))
        .unwrap();
    // VF 17 of PF 3 is function devfn 18 on bus 4: slot 2, function 2.
    assert_eq!(vf_net.parent(), Some("pci_0000_04_02_2"));
    let pf = by_name["pci_0000_04_00_0"].to_xml();
    assert!(pf.contains("<capability type='virt_functions' maxCount='256'>"));
    assert_eq!(pf.matches("<address ").count(), VFS_PER_PF);
    assert!(pf.contains(
        "      <address domain='0x0000' bus='0x04' slot='0x00' function='0x1'/>
      <address domain='0x0000' bus='0x04' slot='0x00' function='0x2'/>
"
    ));
    let vf = by_name["pci_0000_10_1f_2"].to_xml();
    assert!(vf.contains(
        "    <capability type='phys_function'>
      <address domain='0x0000' bus='0x10' slot='0x00' function='0x0'/>
    </capability>
"
    ));
    let veths = devs
        .iter()
        .filter(|d| d.name().starts_with("net_veth"))
        .count();
    assert_eq!(veths, VIRTUAL_NETS);
}
