//! The benchmark's SR-IOV trees: physical functions with 250 virtual functions each
//! behind their own root port, then virtual interfaces. Sizes are given as the issue
//! states them (VFs, virtual interfaces), not as devices.

use std::io;
use std::path::Path;

use fakesys::{FakeSys, NetSpec, PciSpec};

/// Virtual functions per physical function (one bus; devfn 1..=250).
const VFS_PER_PF: usize = 250;

/// Root ports fit on bus 0's 31 free slots x 8 functions.
const MAX_PFS: usize = 248;

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct SriovTree {
    pub vfs: usize,
    /// VFs bound to iavf with an interface each, or to vfio-pci (handed to guests,
    /// no interface).
    pub vf_netdevs: bool,
    /// Virtual interfaces (`vethN`) besides the VFs' interfaces.
    pub veths: usize,
}

fn spec(ids: (u16, u16, u32), driver: &str, port_type: u8, header_type: u8) -> PciSpec {
    PciSpec {
        vendor: ids.0,
        device: ids.1,
        class: ids.2,
        driver: Some(driver.into()),
        header_type,
        pcie: Some(fakesys::trees::pcie_link(port_type, 4, 16)),
        numa_node: Some(0),
        ..Default::default()
    }
}

fn mac(n: u32) -> String {
    let b = n.to_be_bytes();
    format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

/// Builds `t` in `dir`; returns the number of node devices libvirt lists for it
/// (`computer`, root ports, PFs, VFs, interfaces).
pub fn sriov_tree(dir: &Path, t: SriovTree) -> io::Result<usize> {
    let f = FakeSys::new(dir)?;
    let pfs = t.vfs.div_ceil(VFS_PER_PF);
    if pfs > MAX_PFS {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many VFs"));
    }
    let (mut ifindex, mut macs, mut devices) = (2u32, 0u32, 1usize);
    let next = |n: &mut u32| {
        *n += 1;
        *n
    };
    for p in 0..pfs {
        let port_addr = format!("0000:00:{:02x}.{}", 1 + p / 8, p % 8);
        let port = f.pci_device(
            &port_addr,
            None,
            &spec((0x8086, 0x7c10, 0x060400), "pcieport", 4, 1),
        )?;
        let bus = p + 1;
        let pf = f.pci_device(
            &format!("0000:{bus:02x}:00.0"),
            Some(&port),
            &spec((0x8086, 0x1593, 0x020000), "ice", 0, 0x80),
        )?;
        devices += 2;
        let n = VFS_PER_PF.min(t.vfs - p * VFS_PER_PF);
        let mut vfs = Vec::with_capacity(n);
        for v in 0..n {
            let devfn = v + 1;
            let driver = if t.vf_netdevs { "iavf" } else { "vfio-pci" };
            let vf = f.pci_device(
                &format!("0000:{bus:02x}:{:02x}.{}", devfn / 8, devfn % 8),
                Some(&port),
                &spec((0x8086, 0x1889, 0x020000), driver, 0, 0),
            )?;
            devices += 1;
            if t.vf_netdevs {
                let m = mac(next(&mut macs));
                f.net(Some(&vf), &NetSpec::new(&format!("vf{p}v{v}"), ifindex, &m))?;
                ifindex += 1;
                devices += 1;
            }
            vfs.push(vf);
        }
        f.sriov(&pf, Some(256), &vfs)?;
    }
    for i in 0..t.veths {
        let mut s = NetSpec::new(&format!("veth{i}"), ifindex, &mac(next(&mut macs)));
        s.speed = Some("10000".into());
        f.net(None, &s)?;
        ifindex += 1;
        devices += 1;
    }
    Ok(devices)
}
