//! Enumeration of a large generated tree: 16 SR-IOV physical functions with
//! 250 virtual functions each (4,000 VFs, each with its interface) and
//! 2,000 more virtual interfaces, about 10,000 devices in all. Checks
//! correctness only (names unique, every parent listed, SR-IOV links
//! resolved); timing is left to the benchmark.

use std::collections::{HashMap, HashSet};

const PFS: usize = 16;
const VFS_PER_PF: usize = 250;
const VIRTUAL_NETS: usize = 2000;

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
    let expected = fakesys::trees::sriov_scale(&dir, PFS, VFS_PER_PF, VIRTUAL_NETS).unwrap();
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
