//! The USB hub chain and SAS HBA tree ([`usb_sas`]) and its builders.

use std::io;
use std::path::Path;

use super::{dell, endpoint, pci_fn, root_port};
use crate::{BlockSpec, FakeSys};

/// A USB device's ids: (idVendor, idProduct, bcdDevice).
type UsbIds<'a> = (u16, u16, &'a str);

/// A USB device's string descriptors: (manufacturer, product, serial).
type UsbStrings<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>);

/// One USB device (hub or function) as the kernel's usb core creates it: uevent, the
/// descriptor attributes, and a udev database entry with what udev's usb_id and hwdb
/// builtins write. `db_names` `None` leaves out the hwdb names (libvirt then falls back
/// to the `manufacturer`/`product` attributes).
fn usb_device(
    f: &FakeSys,
    path: &str,
    (bus, devnum): (u32, u32),
    ids: UsbIds,
    class: &str,
    strings: UsbStrings,
    db_names: Option<(&str, &str)>,
) -> io::Result<()> {
    let minor = ((bus - 1) * 128 + devnum - 1).to_string();
    let devname = format!("bus/usb/{bus:03}/{devnum:03}");
    let product = format!("{:x}/{:x}/{}", ids.0, ids.1, ids.2.trim_start_matches('0'));
    let typ = format!("{}/0/{}", class.trim_start_matches('0'), "1");
    let more = [("DRIVER", "usb"), ("PRODUCT", &*product), ("TYPE", &*typ)];
    f.usb_device_uevent(path, bus, devnum, &more)?;
    f.bind_driver(path, "usb", "usb")?;
    f.attrs(
        path,
        &[
            ("idVendor", format!("{:04x}", ids.0)),
            ("idProduct", format!("{:04x}", ids.1)),
            ("bcdDevice", ids.2.to_string()),
            ("bDeviceClass", class.to_string()),
            ("bDeviceSubClass", "00".into()),
            ("bDeviceProtocol", "01".into()),
            ("bNumConfigurations", "1".into()),
            ("bConfigurationValue", "1".into()),
            ("busnum", bus.to_string()),
            ("devnum", devnum.to_string()),
            ("speed", "480".into()),
            ("version", " 2.00".into()),
            ("maxchild", if class == "09" { "4" } else { "0" }.into()),
            ("removable", "unknown".into()),
        ],
    )?;
    let (manufacturer, prod, serial) = strings;
    for (n, v) in [
        ("manufacturer", manufacturer),
        ("product", prod),
        ("serial", serial),
    ] {
        if let Some(v) = v {
            f.attrs(path, &[(n, v)])?;
        }
    }
    f.write(&format!("/dev/{devname}"), "")?;
    let vid = format!("{:04x}", ids.0);
    let pid = format!("{:04x}", ids.1);
    let enc = |s: Option<&str>| s.unwrap_or("").replace(' ', "\\x20");
    let und = |s: Option<&str>| s.unwrap_or("").trim().replace(' ', "_");
    let (v_enc, m_enc, v_und, m_und) = (enc(manufacturer), enc(prod), und(manufacturer), und(prod));
    let id_serial = format!("{v_und}_{m_und}");
    let syspath_tail = path.rsplit('/').next().unwrap_or(path);
    let id_path = format!(
        "pci-0000:00:14.0-usb-0:{}",
        syspath_tail.split('-').nth(1).unwrap_or("0")
    );
    let mut props: Vec<(&str, &str)> = vec![
        ("ID_VENDOR", &v_und),
        ("ID_VENDOR_ENC", &v_enc),
        ("ID_VENDOR_ID", &vid),
        ("ID_MODEL", &m_und),
        ("ID_MODEL_ENC", &m_enc),
        ("ID_MODEL_ID", &pid),
        ("ID_REVISION", ids.2),
        ("ID_SERIAL", &id_serial),
        ("ID_BUS", "usb"),
        ("ID_USB_INTERFACES", ":090000:"),
    ];
    if let Some((v, m)) = db_names {
        props.push(("ID_VENDOR_FROM_DATABASE", v));
        props.push(("ID_MODEL_FROM_DATABASE", m));
    }
    props.push(("ID_PATH", &id_path));
    props.push(("DRIVER", "usb"));
    f.udevd_db(&format!("c189:{minor}"), &props, &[], &["seat", "uaccess"])
}

/// A USB interface `name` of `dev` with its descriptor attributes and udev database entry;
/// `cls` is (class, subclass, protocol) in hex.
fn usb_interface(
    f: &FakeSys,
    dev: &str,
    name: &str,
    cls: (&str, &str, &str),
    driver: &str,
) -> io::Result<()> {
    let path = format!("{dev}/{name}");
    let dec = |h: &str| u32::from_str_radix(h, 16).unwrap_or_default();
    let iface = format!("{}/{}/{}", dec(cls.0), dec(cls.1), dec(cls.2));
    f.device(
        &path,
        "usb",
        true,
        &[
            ("DEVTYPE", "usb_interface"),
            ("DRIVER", driver),
            ("INTERFACE", &iface),
            (
                "MODALIAS",
                "usb:v0000p0000d0000dc00dsc00dp00ic00isc00ip00in00",
            ),
        ],
    )?;
    f.bind_driver(&path, "usb", driver)?;
    let num: u32 = name.rsplit('.').next().unwrap_or(name).parse().unwrap_or(0);
    f.attrs(
        &path,
        &[
            ("bInterfaceNumber", &*format!("{num:02x}")),
            ("bAlternateSetting", " 0"),
            ("bNumEndpoints", "01"),
            ("bInterfaceClass", cls.0),
            ("bInterfaceSubClass", cls.1),
            ("bInterfaceProtocol", cls.2),
            ("supports_autosuspend", "1"),
        ],
    )?;
    f.udevd_db(
        &format!("+usb:{name}"),
        &[("ID_USB_CLASS_FROM_DATABASE", "Hub"), ("DRIVER", driver)],
        &[],
        &[],
    )
}

/// A USB hub chain (root hub -> hub -> hub -> keyboard receiver with three HID interfaces,
/// plus a device udev's hwdb does not know and a SuperSpeed root hub with nothing behind
/// it), with a HID device and hidraw node below an interface (not node devices), and a SAS
/// HBA with four disks (one 4Kn), a tape drive and an enclosure, each with its SAS
/// transport objects, scsi_device/scsi_disk/bsg class devices, sg node and block device
/// (with partitions) described by udev as udevd does.
pub fn usb_sas(dir: &Path) -> io::Result<FakeSys> {
    let f = dell(dir, "PowerEdge R640")?;
    let xhci = usb_root_hubs(&f)?;
    usb_hub_chain(&f, &xhci)?;
    sas_hba(&f)?;
    Ok(f)
}

/// The xHCI controller with its USB 2.0 and 3.0 root hubs; returns the controller's path.
fn usb_root_hubs(f: &FakeSys) -> io::Result<String> {
    let xhci_ids = (0x8086, 0xa36d, 0x0c0330);
    let xhci = pci_fn(f, "0000:00:14.0", None, xhci_ids, Some("xhci_hcd"), None, 0)?;
    let xhci_strings = (
        Some("Linux 6.1.0-18-amd64 xhci-hcd"),
        Some("xHCI Host Controller"),
        Some("0000:00:14.0"),
    );
    for (bus, id, name) in [(1, 0x0002, "2.0 root hub"), (2, 0x0003, "3.0 root hub")] {
        let usb = format!("{xhci}/usb{bus}");
        usb_device(
            f,
            &usb,
            (bus, 1),
            (0x1d6b, id, "0601"),
            "09",
            xhci_strings,
            Some(("Linux Foundation", name)),
        )?;
        usb_interface(f, &usb, &format!("{bus}-0:1.0"), ("09", "00", "00"), "hub")?;
    }
    Ok(xhci)
}

/// Two hubs behind the USB 2.0 root hub, a keyboard receiver (with a HID device) and a
/// device the hwdb does not know behind them.
fn usb_hub_chain(f: &FakeSys, xhci: &str) -> io::Result<()> {
    let usb1 = format!("{xhci}/usb1");
    let hub1 = format!("{usb1}/1-1");
    usb_device(
        f,
        &hub1,
        (1, 2),
        (0x05e3, 0x0610, "9226"),
        "09",
        (Some("GenesysLogic"), Some("USB2.1 Hub"), None),
        Some(("Genesys Logic, Inc.", "Hub")),
    )?;
    usb_interface(f, &hub1, "1-1:1.0", ("09", "00", "02"), "hub")?;
    let hub2 = format!("{hub1}/1-1.2");
    usb_device(
        f,
        &hub2,
        (1, 3),
        (0x2109, 0x2817, "0213"),
        "09",
        (
            Some("VIA Labs, Inc.         "),
            Some("USB2.0 Hub             "),
            None,
        ),
        Some(("VIA Labs, Inc.", "USB2.0 Hub")),
    )?;
    usb_interface(f, &hub2, "1-1.2:1.0", ("09", "00", "01"), "hub")?;
    let kbd = format!("{hub2}/1-1.2.4");
    usb_device(
        f,
        &kbd,
        (1, 4),
        (0x046d, 0xc52b, "1211"),
        "00",
        (Some("Logitech"), Some("USB Receiver"), None),
        Some(("Logitech, Inc.", "Unifying Receiver")),
    )?;
    for (i, (sub, proto)) in [("01", "01"), ("01", "02"), ("00", "00")]
        .into_iter()
        .enumerate()
    {
        let name = format!("1-1.2.4:1.{i}");
        usb_interface(f, &kbd, &name, ("03", sub, proto), "usbhid")?;
    }
    // A HID device and its hidraw node below the first interface: not node devices.
    let hid = format!("{kbd}/1-1.2.4:1.0/0003:046D:C52B.0001");
    f.device(
        &hid,
        "hid",
        true,
        &[
            ("DRIVER", "hid-generic"),
            ("HID_ID", "0003:0000046D:0000C52B"),
            ("HID_NAME", "Logitech USB Receiver"),
            ("MODALIAS", "hid:b0003g0001v0000046Dp0000C52B"),
        ],
    )?;
    f.device(
        &format!("{hid}/hidraw/hidraw0"),
        "hidraw",
        false,
        &[("MAJOR", "241"), ("MINOR", "0"), ("DEVNAME", "hidraw0")],
    )?;
    // Unknown to the hwdb: names come from the string descriptors, trailing blanks and all.
    let odd = format!("{hub2}/1-1.2.3");
    usb_device(
        f,
        &odd,
        (1, 5),
        (0x1209, 0x0001, "0100"),
        "ff",
        (
            Some("ACME Widgets & <Co>  "),
            Some("Prototype\tboard"),
            Some("0001"),
        ),
        None,
    )?;
    usb_interface(f, &odd, "1-1.2.3:1.0", ("ff", "00", "00"), "usbfs")
}

/// The SAS HBA behind a root port, with its disks, tape drive and enclosure.
fn sas_hba(f: &FakeSys) -> io::Result<()> {
    let port = root_port(f, "0000:00:03.0", 0x2f08, 8)?;
    let hba_ids = (0x1000, 0x0097, 0x010700);
    let hba = endpoint(f, "0000:18:00.0", Some(&port), hba_ids, "mpt3sas", 8)?;
    let host = f.scsi_host_dev(
        &hba,
        0,
        &[
            ("unique_id", "1"),
            ("proc_name", "mpt3sas"),
            ("host_busy", "0"),
            ("can_queue", "4352"),
            ("state", "running"),
        ],
    )?;
    f.device(&format!("{host}/sas_host/host0"), "sas_host", false, &[])?;
    // (vendor, model, size in sectors, logical block size, serial)
    let disks = [
        (
            "SEAGATE ",
            "ST4000NM0025    ",
            7814037168,
            512,
            "35000c500a1b2c301",
        ),
        (
            "SEAGATE ",
            "ST4000NM0025    ",
            7814037168,
            512,
            "35000c500a1b2c302",
        ),
        (
            "TOSHIBA ",
            "AL15SEB120N     ",
            2344225968,
            512,
            "35000039a48200003",
        ),
        (
            "HGST    ",
            "HUH721212AL4200 ",
            2929721344,
            4096,
            "35000cca2b3c4d504",
        ),
    ];
    let mut k = 0;
    for (vendor, model, size, lbs, serial) in disks {
        let lun = sas_lun(f, &host, k, 0, vendor, model)?;
        sas_disk(f, &lun, k, (vendor, model), (size, lbs), serial)?;
        k += 1;
    }
    let tape = sas_lun(f, &host, k, 1, "IBM     ", "ULT3580-HH8     ")?;
    f.device(
        &format!("{tape}/scsi_tape/st0"),
        "scsi_tape",
        false,
        &[("MAJOR", "9"), ("MINOR", "0"), ("DEVNAME", "st0")],
    )?;
    let encl = sas_lun(f, &host, k + 1, 13, "DP      ", "BP14G+          ")?;
    let hctl = format!("0:0:{}:0", k + 1);
    f.device(&format!("{encl}/enclosure/{hctl}"), "enclosure", false, &[])
}

/// SAS phy, port and end device `k` of `host` (host 0), with a SCSI target and its LUN 0
/// of SCSI type `ty` (its driver chosen by type), its scsi_device and bsg class devices,
/// sg node and udev database entry; returns the LUN's path.
fn sas_lun(
    f: &FakeSys,
    host: &str,
    k: u32,
    ty: u32,
    vendor: &str,
    model: &str,
) -> io::Result<String> {
    f.transport(&format!("{host}/phy-0:{k}"), "sas_phy")?;
    let sport = format!("{host}/port-0:{k}");
    f.transport(&sport, "sas_port")?;
    let end = format!("{sport}/end_device-0:{k}");
    f.transport(&end, "sas_device")?;
    let sas_end = format!("{end}/sas_end_device/end_device-0:{k}");
    f.device(&sas_end, "sas_end_device", false, &[])?;
    let target = f.scsi_target(&end, &format!("target0:0:{k}"))?;
    let hctl = format!("0:0:{k}:0");
    let driver = match ty {
        0 => "sd",
        1 => "st",
        _ => "ses",
    };
    let modalias = format!("scsi:t-0x{ty:02x}");
    let lun = f.scsi_lun(&target, &hctl, Some(driver), &[("MODALIAS", &modalias)])?;
    f.attrs(
        &lun,
        &[
            ("type", ty.to_string()),
            ("vendor", vendor.to_string()),
            ("model", model.to_string()),
            ("rev", "E004".to_string()),
            ("state", "running".to_string()),
            ("sas_address", format!("0x5000c500a1b2c3{k:02x}")),
        ],
    )?;
    f.device(
        &format!("{lun}/scsi_device/{hctl}"),
        "scsi_device",
        false,
        &[],
    )?;
    f.device(
        &format!("{lun}/bsg/{hctl}"),
        "bsg",
        false,
        &[
            ("MAJOR", "246"),
            ("MINOR", &k.to_string()),
            ("DEVNAME", &format!("bsg/{hctl}")),
        ],
    )?;
    f.scsi_generic(&lun, k)?;
    let path_id = format!("pci-0000:18:00.0-sas-phy{k}-lun-0");
    f.udevd_db(
        &format!("c21:{k}"),
        &[("ID_SCSI", "1"), ("ID_PATH", &path_id)],
        &[],
        &[],
    )?;
    Ok(lun)
}

/// The disk side of SAS LUN `k`: scsi_disk class device, block device `sdX` of `size`
/// sectors of `lbs` bytes with two partitions, all described by udev.
fn sas_disk(
    f: &FakeSys,
    lun: &str,
    k: u32,
    (vendor, model): (&str, &str),
    (size, lbs): (u64, u64),
    serial: &str,
) -> io::Result<()> {
    let hctl = format!("0:0:{k}:0");
    f.device(&format!("{lun}/scsi_disk/{hctl}"), "scsi_disk", false, &[])?;
    let letter = (b'a' + k as u8) as char;
    let name = format!("sd{letter}");
    let minor = k * 16;
    let mut spec = BlockSpec::disk(&name, 8, minor, size);
    spec.logical_block_size = lbs;
    let blk = f.block(Some(lun), &spec)?;
    let (vendor_t, model_t) = (vendor.trim(), model.trim());
    let wwn = format!("0x{}", &serial[1..]);
    let path_id = format!("pci-0000:18:00.0-sas-phy{k}-lun-0");
    let props = [
        ("ID_SCSI", "1"),
        ("ID_VENDOR", vendor_t),
        ("ID_VENDOR_ENC", vendor_t),
        ("ID_MODEL", model_t),
        ("ID_MODEL_ENC", model_t),
        ("ID_REVISION", "E004"),
        ("ID_TYPE", "disk"),
        ("ID_SERIAL", serial),
        ("ID_SERIAL_SHORT", &serial[1..]),
        ("ID_WWN", &wwn),
        ("ID_WWN_WITH_EXTENSION", &wwn),
        ("ID_BUS", "scsi"),
        ("ID_PATH", &path_id),
        ("ID_PART_TABLE_TYPE", "gpt"),
    ];
    let by_id = format!("disk/by-id/scsi-{serial}");
    let by_wwn = format!("disk/by-id/wwn-{wwn}");
    let by_path = format!("disk/by-path/{path_id}");
    f.udevd_db(
        &format!("b8:{minor}"),
        &props,
        &[&by_path, &by_id, &by_wwn],
        &["systemd"],
    )?;
    // Partitions sit right below the disk's directory.
    for p in 1..=2u32 {
        let pname = format!("{name}{p}");
        let pdir = format!("{blk}/{pname}");
        let (pmin, pn) = ((minor + p).to_string(), p.to_string());
        f.device(
            &pdir,
            "block",
            false,
            &[
                ("MAJOR", "8"),
                ("MINOR", &pmin),
                ("DEVNAME", &pname),
                ("DEVTYPE", "partition"),
                ("PARTN", &pn),
            ],
        )?;
        f.attrs(
            &pdir,
            &[("partition", &*pn), ("start", "2048"), ("size", "1048576")],
        )?;
        f.udevd_db(
            &format!("b8:{}", minor + p),
            &[
                ("ID_TYPE", "disk"),
                ("ID_BUS", "scsi"),
                ("ID_SERIAL", serial),
            ],
            &[],
            &["systemd"],
        )?;
    }
    Ok(())
}
