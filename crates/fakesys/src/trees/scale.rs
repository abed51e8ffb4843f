//! Generated trees of any size, for the benchmark and the scale test: PCI Express root
//! ports with buses full of Ethernet functions, interfaces on those functions, and
//! virtual interfaces.

use std::io;
use std::path::Path;

use super::{pci_spec, pcie_link};
use crate::{FakeSys, NetSpec, PciSpec, PcieSpec};

/// Functions below one root port in [`scale`] (32 slots x 8 functions, less a few).
const PER_BUS: usize = 250;

/// A PCIe 4.0 x16 link.
fn gen4(port_type: u8, link_port: u8) -> Option<PcieSpec> {
    Some(PcieSpec {
        link_port,
        ..pcie_link(port_type, 4, 16)
    })
}

/// The `n`th generated MAC address, `52:54` and then `n` in 4 bytes.
fn mac(n: u32) -> String {
    let b = n.to_be_bytes();
    format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

/// A virtual interface `veth{i}` at 10 Gb/s.
fn veth(f: &FakeSys, i: usize, ifindex: u32, mac: &str) -> io::Result<String> {
    let mut spec = NetSpec::new(&format!("veth{i}"), ifindex, mac);
    spec.speed = Some("10000".into());
    f.net(None, &spec)
}

/// An Intel PCIe 4.0 root port on the root bus (the scale test's claims to be an endpoint
/// in its Express capability, which discovery does not mind).
fn root_port(
    f: &FakeSys,
    addr: &str,
    pcie: Option<PcieSpec>,
    numa: Option<i32>,
) -> io::Result<String> {
    let ids = (0x8086, 0x7c10, 0x060400);
    let spec = PciSpec {
        numa_node: numa,
        ..pci_spec(ids, Some("pcieport"), pcie, 1)
    };
    f.pci_device(addr, None, &spec)
}

/// The benchmark's tree in `dir`: `pci` Ethernet functions (iavf) behind as many root
/// ports as needed, 250 to a bus, and `net` interfaces, the first on those functions
/// (`vfN`), the rest virtual (`vethN`). Returns the number of node devices it describes
/// (PCI functions + interfaces + `computer`).
pub fn scale(dir: &Path, pci: usize, net: usize) -> io::Result<usize> {
    let fs = FakeSys::new(dir)?;
    let ports = pci.div_ceil(PER_BUS);
    if ports > 248 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many PCI devices",
        ));
    }
    let mut endpoints = Vec::with_capacity(pci);
    for p in 0..ports {
        let port_addr = format!("0000:00:{:02x}.{}", 1 + p / 8, p % 8);
        let port = root_port(&fs, &port_addr, gen4(4, p as u8), Some(0))?;
        let bus = p + 1;
        let n = PER_BUS.min(pci - p * PER_BUS);
        for j in 0..n {
            let addr = format!("0000:{bus:02x}:{:02x}.{}", j / 8, j % 8);
            let header_type = if j % 8 == 0 { 0x80 } else { 0 };
            let spec = PciSpec {
                numa_node: Some(0),
                ..pci_spec(
                    (0x8086, 0x154c, 0x020000),
                    Some("iavf"),
                    gen4(0, 0),
                    header_type,
                )
            };
            endpoints.push(fs.pci_device(&addr, Some(&port), &spec)?);
        }
    }
    for i in 0..net {
        // Three bytes of the index, as the benchmark always had them.
        let mac = mac(i as u32 & 0xff_ffff);
        match endpoints.get(i) {
            Some(p) => fs.net(
                Some(p),
                &NetSpec::new(&format!("vf{i}"), i as u32 + 2, &mac),
            )?,
            None => veth(&fs, i, i as u32 + 2, &mac)?,
        };
    }
    Ok(ports + pci + net + 1)
}

/// The scale test's SR-IOV tree in `dir`: `pfs` root ports, each with an E810 physical
/// function (ice) whose `vfs_per_pf` virtual functions (iavf, `vf{P}v{V}` interfaces)
/// share its bus, then `virtual_nets` virtual interfaces. Returns the number of node
/// devices libvirt would list.
pub fn sriov_scale(
    dir: &Path,
    pfs: usize,
    vfs_per_pf: usize,
    virtual_nets: usize,
) -> io::Result<usize> {
    let f = FakeSys::new(dir)?;
    let mut ifindex = 2;
    let mut n = 0u32;
    let mut next_mac = || {
        n += 1;
        mac(n)
    };
    for p in 0..pfs {
        let port = root_port(&f, &format!("0000:00:{:02x}.0", p + 1), gen4(0, 0), None)?;
        let bus = p + 1;
        let pf = f.pci_device(
            &format!("0000:{bus:02x}:00.0"),
            Some(&port),
            &pci_spec((0x8086, 0x1593, 0x020000), Some("ice"), gen4(0, 0), 0x80),
        )?;
        let mut vfs = Vec::with_capacity(vfs_per_pf);
        for v in 0..vfs_per_pf {
            let devfn = v + 1;
            let vf = f.pci_device(
                &format!("0000:{bus:02x}:{:02x}.{}", devfn / 8, devfn % 8),
                Some(&port),
                &pci_spec((0x8086, 0x1889, 0x020000), Some("iavf"), gen4(0, 0), 0),
            )?;
            let spec = NetSpec::new(&format!("vf{p}v{v}"), ifindex, &next_mac());
            f.net(Some(&vf), &spec)?;
            ifindex += 1;
            vfs.push(vf);
        }
        f.sriov(&pf, Some(256), &vfs)?;
    }
    for i in 0..virtual_nets {
        veth(&f, i, ifindex, &next_mac())?;
        ifindex += 1;
    }
    Ok(1 + pfs * (2 + 2 * vfs_per_pf) + virtual_nets)
}
