//! The small host most daemon tests start from.

use std::io;
use std::path::Path;

use super::{ahci, bridge_port_nic, down_net, machine, pci_spec, pcie_link};
use crate::{BlockSpec, FakeSys, NetSpec, PcieSpec};

/// Interface names in fake trees carry this prefix; no such interface exists on the host,
/// so neither daemon finds ethtool features for them.
pub const NET_PREFIX: &str = "vndt";

/// A small host: DMI data, a PCIe host bridge, a root port with a NIC behind it, a SATA
/// controller with a disk (with udev properties), a conventional PCI device without a
/// driver, and a virtual interface.
pub fn sample(dir: &Path) -> io::Result<FakeSys> {
    let fs = machine(
        dir,
        [
            "Test Machine",
            "Example & Co",
            "1.0",
            "SN123",
            "4c4c4544-0042-3510-8052-b4c04f333232",
            "Example BIOS",
            "2.3",
            "01/02/2024",
        ],
    )?;
    let link = |port_type| PcieSpec {
        link_port: 1,
        ..pcie_link(port_type, 3, 4)
    };
    let nic = bridge_port_nic(&fs, 0, 0x2940, link(4), link(0))?;
    fs.net(
        Some(&nic),
        &NetSpec::new(&format!("{NET_PREFIX}0"), 2, "52:54:00:12:34:56"),
    )?;
    let sata = ahci(&fs)?;
    fs.block(Some(&sata), &BlockSpec::disk("sdz", 8, 0, 1_000_000))?;
    // Without ID_TYPE libvirt drops a disk whose node is not /dev/vd*, /dev/dasd*, /dev/nvme*.
    fs.udev_db(
        "b8:0",
        &[
            ("ID_TYPE", "disk"),
            ("ID_BUS", "ata"),
            ("ID_MODEL", "Test_Disk"),
            ("ID_VENDOR", "ATA"),
            ("ID_SERIAL", "Test_Disk_TD123"),
            ("ID_SERIAL_SHORT", "TD123"),
        ],
        &["disk/by-id/ata-Test_Disk_TD123"],
    )?;
    fs.pci_device(
        "0000:00:05.0",
        None,
        &pci_spec((0x1234, 0x1111, 0x030000), None, None, 0),
    )?;
    let v = NetSpec::new(&format!("{NET_PREFIX}1"), 3, "fe:00:00:00:00:01");
    down_net(&fs, None, v, "down")?;
    Ok(fs)
}
