//! Real-world trees: laid out as the kernel and udevd lay out real hardware (a Dell
//! server's DMI data, PCIe ports and endpoints on NUMA node 0, udevd's database format).

mod usb_sas;

use std::io;
use std::path::Path;

pub use usb_sas::usb_sas;

use super::{down_net, machine, pci_spec, pcie_link, PciIds};
use crate::{vpd_image, BlockSpec, FakeSys, MdevTypeSpec, NetSpec, PciSpec, PcieSpec, VpdSpec};

/// A PCI function with a driver on NUMA node 0, on the root bus or behind `parent`;
/// returns its path.
pub fn pci_fn(
    f: &FakeSys,
    addr: &str,
    parent: Option<&str>,
    ids: PciIds,
    driver: Option<&str>,
    pcie: Option<PcieSpec>,
    header_type: u8,
) -> io::Result<String> {
    let spec = PciSpec {
        numa_node: Some(0),
        ..pci_spec(ids, driver, pcie, header_type)
    };
    f.pci_device(addr, parent, &spec)
}

/// An Intel PCIe 3.0 root port (device id `device`, `width` lanes) on the root bus.
fn root_port(f: &FakeSys, addr: &str, device: u16, width: u8) -> io::Result<String> {
    let ids = (0x8086, device, 0x060400);
    pci_fn(
        f,
        addr,
        None,
        ids,
        Some("pcieport"),
        Some(pcie_link(4, 3, width)),
        1,
    )
}

/// A PCIe 3.0 endpoint with `width` lanes behind `port`, bound to `driver`.
fn endpoint(
    f: &FakeSys,
    addr: &str,
    port: Option<&str>,
    ids: PciIds,
    driver: &str,
    width: u8,
) -> io::Result<String> {
    pci_fn(
        f,
        addr,
        port,
        ids,
        Some(driver),
        Some(pcie_link(0, 3, width)),
        0,
    )
}

/// A Dell server with DMI data, as every real-world tree has.
fn dell(dir: &Path, product: &str) -> io::Result<FakeSys> {
    machine(
        dir,
        [
            product,
            "Dell Inc.",
            "Not Specified",
            "7XK2Q83",
            "4c4c4544-0058-4b10-8032-b7c04f513833",
            "Dell Inc.",
            "2.19.1",
            "06/20/2023",
        ],
    )
}

/// SR-IOV as on a ConnectX-5 dual-port card: PF 0 with all 64 VFs enabled (each VF bound to
/// mlx5_core with its own interface and IOMMU group, some links up, some down, some VFs
/// without a MAC yet), PF 1 capable of 64 but with none enabled; the PF carries VPD.
pub fn sriov(dir: &Path) -> io::Result<FakeSys> {
    use super::NET_PREFIX;
    let f = dell(dir, "PowerEdge R740")?;
    let port = root_port(&f, "0000:3a:00.0", 0x2030, 16)?;
    let pf_ids = (0x15b3, 0x1017, 0x020000);
    let pf0 = endpoint(&f, "0000:3b:00.0", Some(&port), pf_ids, "mlx5_core", 16)?;
    let pf1 = endpoint(&f, "0000:3b:00.1", Some(&port), pf_ids, "mlx5_core", 16)?;
    f.iommu_group(&pf0, 40)?;
    f.iommu_group(&pf1, 41)?;
    f.vpd(
        &pf0,
        &vpd_image(&VpdSpec {
            name: Some(b"CX512A - ConnectX-5 SFP28".to_vec()),
            read_only: vec![
                (*b"PN", b"MCX512A-ACAT".to_vec()),
                (*b"EC", b"AC".to_vec()),
                (*b"SN", b"MT2012X01234".to_vec()),
                (*b"V0", b"PCIeGen3 x8".to_vec()),
                (*b"V2", b"MCX512A-ACAT".to_vec()),
                (*b"V3", b"3a9c8b5e4f1d2c7a6b0e9f8d7c6b5a4e".to_vec()),
                (
                    *b"VA",
                    b"MLX:MODL=CX512A:MN=MLNX:CSKU=V2:UUID=V3:PCI=V0".to_vec(),
                ),
            ],
            ..Default::default()
        }),
    )?;
    for (pf, i, state) in [(&pf0, 0u32, "up"), (&pf1, 1, "down")] {
        let mut n = NetSpec::new(
            &format!("{NET_PREFIX}p{i}"),
            4 + i,
            &format!("b8:59:9f:3a:0c:{:02x}", 0x10 + i),
        );
        n.operstate = state.into();
        n.speed = (state == "up").then(|| "25000".into());
        f.net(Some(pf), &n)?;
        f.udev_db(
            &format!("n{}", 4 + i),
            &[
                ("ID_NET_NAMING_SCHEME", "v252"),
                ("ID_NET_NAME_MAC", &format!("enxb8599f3a0c{:02x}", 0x10 + i)),
                ("ID_NET_NAME_PATH", &format!("enp59s0f{i}np{i}")),
                ("ID_BUS", "pci"),
                ("ID_VENDOR_ID", "0x15b3"),
                ("ID_MODEL_ID", "0x1017"),
                ("ID_NET_DRIVER", "mlx5_core"),
                ("ID_PATH", &format!("pci-0000:3b:00.{i}")),
            ],
            &[],
        )?;
    }
    let mut vfs = Vec::new();
    for i in 0..64u32 {
        // VF offset 2, stride 1: 3b:00.2 ... 3b:08.1.
        let devfn = 2 + i;
        let addr = format!("0000:3b:{:02x}.{}", devfn / 8, devfn % 8);
        let vf_ids = (0x15b3, 0x1018, 0x020000);
        let vf = endpoint(&f, &addr, Some(&port), vf_ids, "mlx5_core", 16)?;
        f.iommu_group(&vf, 100 + i)?;
        let mac = if i % 5 == 4 {
            "00:00:00:00:00:00".to_string()
        } else {
            format!("02:3b:00:00:{:02x}:{:02x}", i / 8, i)
        };
        let mut n = NetSpec::new(&format!("{NET_PREFIX}p0v{i}"), 10 + i, &mac);
        if i % 3 == 0 {
            down_net(&f, Some(&vf), n, "down")?;
        } else {
            n.speed = Some("25000".into());
            f.net(Some(&vf), &n)?;
        }
        vfs.push(vf);
    }
    f.sriov(&pf0, Some(64), &vfs)?;
    f.sriov(&pf1, Some(64), &[])?;
    Ok(f)
}

/// FC data of a SCSI host: (port_name, node_name, fabric_name, vport (max, in use)).
pub type FcPort<'a> = (&'a str, &'a str, Option<&'a str>, Option<(u32, u32)>);

/// A SCSI host `hostN` below `parent` with its scsi_host class device; with `fc` also its
/// fc_host class device. Returns the host's path.
pub fn scsi_host(
    f: &FakeSys,
    parent: &str,
    n: u32,
    proc_name: &str,
    fc: Option<FcPort>,
) -> io::Result<String> {
    let host = f.scsi_host_dev(
        parent,
        n,
        &[
            ("unique_id", &*(n + 1).to_string()),
            ("proc_name", proc_name),
            ("state", "running"),
        ],
    )?;
    if let Some((wwpn, wwnn, fabric, vports)) = fc {
        let fcd = format!("{host}/fc_host/host{n}");
        f.device(&fcd, "fc_host", false, &[])?;
        let mut attrs = vec![
            ("port_name", format!("0x{wwpn}")),
            ("node_name", format!("0x{wwnn}")),
            ("port_id", format!("0x0a{n:02x}00")),
            ("port_type", "NPort (fabric via point-to-point)".to_string()),
            ("port_state", "Online".to_string()),
            ("speed", "16 Gbit".to_string()),
            ("supported_classes", "Class 3".to_string()),
            (
                "symbolic_name",
                "QLE2692 FW:v9.08.02 DVR:v10.02.07.900-k".to_string(),
            ),
        ];
        if let Some(fab) = fabric {
            attrs.push(("fabric_name", format!("0x{fab}")));
        }
        if let Some((max, used)) = vports {
            attrs.push(("max_npiv_vports", max.to_string()));
            attrs.push(("npiv_vports_inuse", used.to_string()));
            attrs.push(("vport_create", String::new()));
            attrs.push(("vport_delete", String::new()));
        }
        for (k, v) in attrs {
            // The vport files are write-only triggers: empty, no newline.
            let content = if v.is_empty() { v } else { format!("{v}\n") };
            f.write(&format!("{fcd}/{k}"), content)?;
        }
    }
    Ok(host)
}

/// An FC remote port `rport-H:0-I` below `host` (class fc_remote_ports); with `luns`, a
/// target behind it with that many disk LUNs (each with sg node and udev-described block
/// device, numbered on from `disk`).
fn rport(
    f: &FakeSys,
    host: &str,
    (h, i): (u32, u32),
    wwpn: &str,
    luns: u32,
    disk: &mut u32,
) -> io::Result<()> {
    let rport = format!("{host}/rport-{h}:0-{i}");
    let rp = f.transport(&rport, "fc_remote_ports")?;
    let target = luns > 0;
    f.attrs(
        &rp,
        &[
            ("port_name", format!("0x{wwpn}")),
            ("node_name", format!("0x{}", wwpn.replacen('5', "4", 1))),
            ("port_id", format!("0x0b{i:02x}00")),
            (
                "roles",
                if target { "FCP Target" } else { "Fabric Port" }.into(),
            ),
            ("port_state", "Online".to_string()),
            (
                "scsi_target_id",
                if target { i.to_string() } else { "-1".into() },
            ),
        ],
    )?;
    if !target {
        return Ok(());
    }
    let target = f.scsi_target(&rport, &format!("target{h}:0:{i}"))?;
    for l in 0..luns {
        let lun = f.scsi_lun(&target, &format!("{h}:0:{i}:{l}"), Some("sd"), &[])?;
        f.attrs(
            &lun,
            &[
                ("type", "0"),
                ("vendor", "HITACHI "),
                ("model", "OPEN-V          "),
                ("rev", "8001"),
            ],
        )?;
        f.scsi_generic(&lun, *disk + 20)?;
        let bname = format!("sd{}", (b'p' + *disk as u8) as char);
        let minor = 16 * (*disk + 15);
        f.block(Some(&lun), &BlockSpec::disk(&bname, 8, minor, 209715200))?;
        let serial = format!("360060e8012a3b4005040a3b4000000{:02x}", *disk);
        let by_id = format!("disk/by-id/scsi-{serial}");
        let by_path = format!("disk/by-path/pci-0000:5e:00.0-fc-0x{wwpn}-lun-{l}");
        f.udevd_db(
            &format!("b8:{minor}"),
            &[
                ("ID_SCSI", "1"),
                ("ID_VENDOR", "HITACHI"),
                ("ID_MODEL", "OPEN-V"),
                ("ID_TYPE", "disk"),
                ("ID_SERIAL", &serial),
                ("ID_SERIAL_SHORT", &serial[1..]),
                ("ID_BUS", "scsi"),
                ("DM_MULTIPATH_DEVICE_PATH", "1"),
            ],
            &[&by_path, &by_id],
            &["systemd"],
        )?;
        *disk += 1;
    }
    Ok(())
}

/// WWNs of the FC ports in [`fc_mdev_s390`]: (wwnn, wwpn) of the NPIV-capable port and
/// of the vHBA created on it.
pub const FC_HBA_WWN: (&str, &str) = ("20000024ff7a1b2c", "21000024ff7a1b2c");
pub const FC_VHBA_WWN: (&str, &str) = ("2001001b32a9da4e", "2101001b32a9da4e");

/// Fibre Channel with NPIV (a dual-port QLogic HBA: port 1 online with two target ports of
/// two LUNs each, a fabric port without target, and a vHBA created through vport_create
/// with its own target; port 2 with its link down and no fabric), an mdev-capable GPU
/// (NVIDIA T4 with vGPU types and two active mdevs), and s390 devices (I/O and vfio-ccw
/// subchannels with an mdev on the latter, online and offline CCW devices, AP cards and
/// queues and the vfio_ap matrix with an active mdev).
pub fn fc_mdev_s390(dir: &Path) -> io::Result<FakeSys> {
    let f = dell(dir, "PowerEdge R750")?;
    let port = root_port(&f, "0000:5d:00.0", 0x347a, 8)?;
    let mut disk = 0;
    let qla = (0x1077, 0x2261, 0x0c0400);
    let hba0 = endpoint(&f, "0000:5e:00.0", Some(&port), qla, "qla2xxx", 8)?;
    let fabric = Some("100000051e0c3a5b");
    let hba_port = (FC_HBA_WWN.1, FC_HBA_WWN.0, fabric, Some((254, 1)));
    let h11 = scsi_host(&f, &hba0, 11, "qla2xxx", Some(hba_port))?;
    rport(&f, &h11, (11, 0), "50060e801049cfd1", 2, &mut disk)?;
    rport(&f, &h11, (11, 1), "50060e801049cfd9", 2, &mut disk)?;
    rport(&f, &h11, (11, 2), "fffffc0b0c0d0e0f", 0, &mut disk)?;
    // The vHBA: vport-11:0-0 (class fc_vports) with its own SCSI host.
    let vport = format!("{h11}/vport-11:0-0");
    let fv = f.transport(&vport, "fc_vports")?;
    f.attrs(
        &fv,
        &[
            ("port_name", &*format!("0x{}", FC_VHBA_WWN.1)),
            ("node_name", &*format!("0x{}", FC_VHBA_WWN.0)),
            ("vport_state", "Active"),
            ("vport_type", "NPIV"),
            ("roles", "FCP Initiator"),
        ],
    )?;
    let vhba_port = (FC_VHBA_WWN.1, FC_VHBA_WWN.0, fabric, None);
    let h12 = scsi_host(&f, &vport, 12, "qla2xxx", Some(vhba_port))?;
    rport(&f, &h12, (12, 0), "50060e801049cfd1", 1, &mut disk)?;
    let hba1 = endpoint(&f, "0000:5e:00.1", Some(&port), qla, "qla2xxx", 8)?;
    let down_port = ("21000024ff7a1b2d", "20000024ff7a1b2d", None, Some((254, 0)));
    scsi_host(&f, &hba1, 13, "qla2xxx", Some(down_port))?;

    // NVIDIA T4 with vGPU types (directory order = creation order) and two mdevs.
    let t4 = (0x10de, 0x1eb8, 0x030200);
    let gpu = endpoint(&f, "0000:af:00.0", None, t4, "nvidia", 16)?;
    f.iommu_group(&gpu, 150)?;
    let types: Vec<MdevTypeSpec> = [
        ("nvidia-222", "GRID T4-1B", 14),
        ("nvidia-223", "GRID T4-2B", 7),
        ("nvidia-228", "GRID T4-8Q", 0),
        ("nvidia-230", "GRID T4-16Q", 0),
        ("nvidia-319", "GRID T4-4A", 4),
    ]
    .iter()
    .map(|(id, n, a)| MdevTypeSpec::new(id, Some(n), "vfio-pci", *a))
    .collect();
    f.mdev_types(&gpu, &types)?;
    for t in &types {
        f.write(
            &format!("{gpu}/mdev_supported_types/{}/description", t.id),
            "num_heads=4, frl_config=45, framebuffer=1024M, max_resolution=5120x2880, max_instance=16\n",
        )?;
    }
    f.mdev(
        &gpu,
        "c0ffee00-1b54-4048-85b3-a6a62d165c01",
        "nvidia-222",
        Some(151),
    )?;
    f.mdev(
        &gpu,
        "c0ffee00-1b54-4048-85b3-a6a62d165c02",
        "nvidia-228",
        Some(152),
    )?;

    // s390: channel subsystem and AP.
    f.io_subchannel("0.0.0000", "1", "virtio_ccw")?;
    f.io_subchannel("0.0.0001", "0", "dasd-eckd")?;
    let sch2 = f.vfio_ccw("0.0.0013", "0.0.2b09", 0)?;
    let uuid = "7e270a25-e163-4922-af60-757fc8ed48c6";
    f.mdev(&sch2, uuid, "vfio_ccw-io", Some(3))?;
    f.css("0.0.ff00", None, Some("none"))?;
    for adapter in [0x03u32, 0x04] {
        let card = f.ap_card(adapter)?;
        for domain in [0x0005u32, 0x0047] {
            f.ap_queue(&card, adapter, domain)?;
        }
    }
    let matrix = f.vfio_ap_matrix(65535)?;
    let uuid = "4b55dd88-0b7c-4b4c-b6a0-c4d7a0e1f2a3";
    f.mdev(&matrix, uuid, "vfio_ap-passthrough", Some(4))?;
    Ok(f)
}
