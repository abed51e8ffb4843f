//! The generated device tree: PCI Express root ports, each with a bus full of
//! Ethernet virtual functions, network interfaces on those functions, and virtual
//! interfaces for the rest.

use std::io;
use std::path::Path;

use fakesys::{FakeSys, NetSpec, PciSpec, PcieSpec};

/// Functions below one root port (32 slots x 8 functions, less a few).
const PER_BUS: usize = 250;

/// Builds the tree in `dir`; returns the number of node devices it describes
/// (PCI functions + interfaces + `computer`).
pub fn generate(dir: &Path, pci: usize, net: usize) -> io::Result<usize> {
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
        let port = fs.pci_device(
            &port_addr,
            None,
            &PciSpec {
                vendor: 0x8086,
                device: 0x7c10,
                class: 0x060400,
                driver: Some("pcieport".into()),
                header_type: 1,
                pcie: Some(PcieSpec {
                    port_type: 4,
                    link_port: p as u8,
                    cap_speed: 4,
                    cap_width: 16,
                    sta_speed: 4,
                    sta_width: 16,
                }),
                numa_node: Some(0),
                ..Default::default()
            },
        )?;
        let bus = p + 1;
        let n = PER_BUS.min(pci - p * PER_BUS);
        for j in 0..n {
            let addr = format!("0000:{bus:02x}:{:02x}.{}", j / 8, j % 8);
            let dev = fs.pci_device(
                &addr,
                Some(&port),
                &PciSpec {
                    vendor: 0x8086,
                    device: 0x154c,
                    class: 0x020000,
                    driver: Some("iavf".into()),
                    header_type: if j % 8 == 0 { 0x80 } else { 0 },
                    pcie: Some(PcieSpec {
                        port_type: 0,
                        link_port: 0,
                        cap_speed: 4,
                        cap_width: 16,
                        sta_speed: 4,
                        sta_width: 16,
                    }),
                    numa_node: Some(0),
                    ..Default::default()
                },
            )?;
            endpoints.push(dev);
        }
    }
    for i in 0..net {
        let mac = format!(
            "52:54:00:{:02x}:{:02x}:{:02x}",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        );
        let (name, parent) = match endpoints.get(i) {
            Some(p) => (format!("vf{i}"), Some(p.as_str())),
            None => (format!("veth{i}"), None),
        };
        let mut spec = NetSpec::new(&name, i as u32 + 2, &mac);
        if parent.is_none() {
            spec.speed = Some("10000".into());
        }
        fs.net(parent, &spec)?;
    }
    Ok(ports + pci + net + 1)
}
