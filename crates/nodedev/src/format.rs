//! `virNodeDeviceDefFormat` (libvirt 11.3) as a pure function of a [`Device`].

use crate::model::*;
use crate::xml::{escape, XmlBuf};

const PCIE_SPEEDS: [&str; 7] = ["", "2.5", "5", "8", "16", "32", "64"];
const PCI_HEADERS: [&str; 3] = ["endpoint", "pci-bridge", "cardbus-bridge"];

fn uuid_string(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn pci_addr_line(a: &PciAddr) -> String {
    // libvirt prints the function as '0x%d' (decimal after a hex prefix).
    format!(
        "<address domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{}'/>",
        a.domain, a.bus, a.slot, a.function
    )
}

fn format_system(b: &mut XmlBuf, s: &SystemCap) {
    b.opt_elem("product", s.product_name.as_deref());
    b.open("<hardware>");
    b.opt_elem("vendor", s.hardware_vendor.as_deref());
    b.opt_elem("version", s.hardware_version.as_deref());
    b.opt_elem("serial", s.hardware_serial.as_deref());
    b.line(&format!("<uuid>{}</uuid>", uuid_string(&s.hardware_uuid)));
    b.close("</hardware>");
    b.open("<firmware>");
    b.opt_elem("vendor", s.firmware_vendor.as_deref());
    b.opt_elem("version", s.firmware_version.as_deref());
    b.opt_elem("release_date", s.firmware_release_date.as_deref());
    b.close("</firmware>");
}

pub(crate) fn format_mdev_types(b: &mut XmlBuf, types: &[MdevType]) {
    if types.is_empty() {
        return;
    }
    b.open("<capability type='mdev_types'>");
    for t in types {
        b.open(&format!("<type id='{}'>", escape(&t.id)));
        b.opt_elem("name", t.name.as_deref());
        b.opt_elem("deviceAPI", t.device_api.as_deref());
        b.line(&format!(
            "<availableInstances>{}</availableInstances>",
            t.available_instances
        ));
        b.close("</type>");
    }
    b.close("</capability>");
}

/// `virNodeDeviceCapVPDFormat`. libvirt 11.3 escapes field values too (9.0 printed them
/// verbatim: `SN<&>123`); a custom field with an empty value is an empty element.
fn format_vpd(b: &mut XmlBuf, v: &Vpd) {
    b.open("<capability type='vpd'>");
    b.opt_elem("name", v.name.as_deref());
    let custom = |b: &mut XmlBuf, kind: &str, list: &[VpdCustom]| {
        for c in list {
            let index = c.index as char;
            if c.value.is_empty() {
                b.line(&format!("<{kind}_field index='{index}'/>"));
            } else {
                b.line(&format!(
                    "<{kind}_field index='{index}'>{}</{kind}_field>",
                    escape(&c.value)
                ));
            }
        }
    };
    if let Some(ro) = &v.read_only {
        b.open("<fields access='readonly'>");
        b.opt_elem("change_level", ro.change_level.as_deref());
        b.opt_elem("manufacture_id", ro.manufacture_id.as_deref());
        b.opt_elem("part_number", ro.part_number.as_deref());
        b.opt_elem("serial_number", ro.serial_number.as_deref());
        custom(b, "vendor", &ro.vendor);
        b.close("</fields>");
    }
    if let Some(rw) = &v.read_write {
        b.open("<fields access='readwrite'>");
        b.opt_elem("asset_tag", rw.asset_tag.as_deref());
        custom(b, "vendor", &rw.vendor);
        custom(b, "system", &rw.system);
        b.close("</fields>");
    }
    b.close("</capability>");
}

fn ccw_lines(b: &mut XmlBuf, a: &CcwAddr) {
    b.line(&format!("<cssid>0x{:x}</cssid>", a.cssid));
    b.line(&format!("<ssid>0x{:x}</ssid>", a.ssid));
    b.line(&format!("<devno>0x{:04x}</devno>", a.devno));
}

/// A CCW device: `<state>` (11.3) unless `online` held another value, its address, and
/// the group it is a member of.
fn format_ccw(b: &mut XmlBuf, c: &CcwCap) {
    if let Some(st) = c.state {
        b.elem("state", st.name());
    }
    ccw_lines(b, &c.addr);
    if let Some(g) = &c.group_dev {
        b.open("<capability type='ccwgroup_member'>");
        b.elem("group_device", g);
        b.close("</capability>");
    }
}

/// `virNodeDeviceCapCCWGroupDefFormat`; qeth's `card_type`/`chpid` are printed with a
/// plain `%s`, so a missing one shows as `(null)` and nothing is escaped.
fn format_ccwgroup(b: &mut XmlBuf, g: &CcwGroupCap) {
    if let Some(st) = g.state {
        b.elem("state", st.name());
    }
    ccw_lines(b, &g.addr);
    if !g.members.is_empty() {
        b.open("<members>");
        for m in &g.members {
            b.line(&format!(
                "<ccw_device ref='{}'>{}</ccw_device>",
                escape(&m.reference),
                escape(&m.device)
            ));
        }
        b.close("</members>");
    }
    b.open(&format!("<capability type='{}'>", g.group_type.name()));
    let raw = |v: &Option<String>| v.clone().unwrap_or_else(|| "(null)".into());
    b.line(&format!("<card_type>{}</card_type>", raw(&g.card_type)));
    b.line(&format!("<chpid>{}</chpid>", raw(&g.chpid)));
    b.close("</capability>");
}

fn format_css(b: &mut XmlBuf, c: &CssCap) {
    ccw_lines(b, &c.addr);
    if let Some(a) = &c.channel_dev_addr {
        b.open("<channel_dev_addr>");
        ccw_lines(b, a);
        b.close("</channel_dev_addr>");
    }
    format_mdev_types(b, &c.mdev_types);
}

fn format_mdev(b: &mut XmlBuf, m: &MdevCap) {
    b.line(&format!("<type id='{}'/>", escape(&m.type_id)));
    b.elem("uuid", &m.uuid);
    b.elem("parent_addr", &m.parent_addr);
    b.line(&format!("<iommuGroup number='{}'/>", m.iommu_group));
    for (n, v) in &m.attrs {
        b.line(&format!("<attr name='{n}' value='{v}'/>"));
    }
}

fn pcie_link_line(l: &PcieLink, validity: &str) -> String {
    let mut s = format!("<link validity='{validity}'");
    if l.port >= 0 {
        s.push_str(&format!(" port='{}'", l.port));
    }
    if l.speed != 0 {
        // libvirt formats an out-of-table speed as a NULL string.
        let sp = PCIE_SPEEDS
            .get(l.speed as usize)
            .copied()
            .unwrap_or("(null)");
        s.push_str(&format!(" speed='{sp}'"));
    }
    s.push_str(&format!(" width='{}'/>", l.width));
    s
}

fn format_pci(b: &mut XmlBuf, p: &PciCap) {
    if p.class >= 0 {
        b.line(&format!("<class>0x{:06x}</class>", p.class));
    }
    b.line(&format!("<domain>{}</domain>", p.addr.domain as i32));
    b.line(&format!("<bus>{}</bus>", p.addr.bus));
    b.line(&format!("<slot>{}</slot>", p.addr.slot));
    b.line(&format!("<function>{}</function>", p.addr.function));
    id_and_name(b, "product", p.product, p.product_name.as_deref(), "/>");
    id_and_name(b, "vendor", p.vendor, p.vendor_name.as_deref(), "/>");
    if let Some(pf) = &p.physical_function {
        b.open("<capability type='phys_function'>");
        b.line(&pci_addr_line(pf));
        b.close("</capability>");
    }
    if p.has_vf_cap() {
        let mut s = String::from("<capability type='virt_functions'");
        if p.max_virtual_functions != 0 {
            s.push_str(&format!(" maxCount='{}'", p.max_virtual_functions));
        }
        if p.virtual_functions.is_empty() {
            s.push_str("/>");
            b.line(&s);
        } else {
            s.push('>');
            b.open(&s);
            for vf in &p.virtual_functions {
                b.line(&pci_addr_line(vf));
            }
            b.close("</capability>");
        }
    }
    if p.hdr_type != 0 {
        let h = PCI_HEADERS
            .get(p.hdr_type as usize)
            .copied()
            .unwrap_or("(null)");
        b.line(&format!("<capability type='{h}'/>"));
    }
    format_mdev_types(b, &p.mdev_types);
    if let Some(v) = &p.vpd {
        format_vpd(b, v);
    }
    if !p.iommu_group_devices.is_empty() {
        b.open(&format!("<iommuGroup number='{}'>", p.iommu_group as i32));
        for a in &p.iommu_group_devices {
            b.line(&pci_addr_line(a));
        }
        b.close("</iommuGroup>");
    }
    if p.numa_node >= 0 {
        b.line(&format!("<numa node='{}'/>", p.numa_node));
    }
    if let Some(e) = &p.pci_express {
        if e.link_cap.is_none() && e.link_sta.is_none() {
            b.line("<pci-express/>");
        } else {
            b.open("<pci-express>");
            if let Some(l) = &e.link_cap {
                b.line(&pcie_link_line(l, "cap"));
            }
            if let Some(l) = &e.link_sta {
                b.line(&pcie_link_line(l, "sta"));
            }
            b.close("</pci-express>");
        }
    }
}

fn format_net(b: &mut XmlBuf, n: &NetCap) {
    b.opt_elem("interface", n.ifname.as_deref());
    b.opt_elem("address", n.address.as_deref());
    if n.link_speed != 0 || n.link_state != 0 {
        let mut s = String::from("<link");
        if n.link_speed != 0 {
            s.push_str(&format!(" speed='{}'", n.link_speed));
        }
        if n.link_state != 0 {
            let st = IF_STATES.get(n.link_state as usize).copied().unwrap_or("");
            s.push_str(&format!(" state='{st}'"));
        }
        s.push_str("/>");
        b.line(&s);
    }
    for (i, f) in NET_FEATURES.iter().enumerate() {
        if n.features & (1 << i) != 0 {
            b.line(&format!("<feature name='{f}'/>"));
        }
    }
    let sub = match n.subtype {
        NetSubtype::Ieee80203 => "80203",
        NetSubtype::Ieee80211 => "80211",
    };
    b.line(&format!("<capability type='{sub}'/>"));
}

fn format_storage(b: &mut XmlBuf, s: &StorageCap) {
    b.opt_elem("block", s.block.as_deref());
    b.opt_elem("bus", s.bus.as_deref());
    b.opt_elem("drive_type", s.drive_type.as_deref());
    b.opt_elem("model", s.model.as_deref());
    b.opt_elem("vendor", s.vendor.as_deref());
    b.opt_elem("serial", s.serial.as_deref());
    if s.removable {
        b.open("<capability type='removable'>");
        b.line(&format!(
            "<media_available>{}</media_available>",
            u8::from(s.media_available)
        ));
        b.line(&format!(
            "<media_size>{}</media_size>",
            s.removable_media_size
        ));
        b.opt_elem("media_label", s.media_label.as_deref());
        block_geometry(b, s);
        b.close("</capability>");
    } else {
        b.line(&format!("<size>{}</size>", s.size));
        block_geometry(b, s);
    }
    if s.hotpluggable {
        b.line("<capability type='hotpluggable'/>");
    }
}

/// `<logical_block_size>` and `<num_blocks>`: both unless both are 0 (11.3; 9.0 left out
/// each one that was 0).
fn block_geometry(b: &mut XmlBuf, s: &StorageCap) {
    if s.logical_block_size == 0 && s.num_blocks == 0 {
        return;
    }
    b.line(&format!(
        "<logical_block_size>{}</logical_block_size>",
        s.logical_block_size
    ));
    b.line(&format!("<num_blocks>{}</num_blocks>", s.num_blocks));
}

fn format_usb_dev(b: &mut XmlBuf, u: &UsbDevCap) {
    b.line(&format!("<bus>{}</bus>", u.bus as i32));
    b.line(&format!("<device>{}</device>", u.device as i32));
    // libvirt writes USB's empty elements with a space before the slash, PCI's without.
    id_and_name(b, "product", u.product, u.product_name.as_deref(), " />");
    id_and_name(b, "vendor", u.vendor, u.vendor_name.as_deref(), " />");
}

/// `<product id='0x1234'>Name</product>`, or the empty element ending in `empty_end`
/// when the name is unknown.
fn id_and_name(
    b: &mut XmlBuf,
    tag: &str,
    id: impl std::fmt::LowerHex,
    name: Option<&str>,
    empty_end: &str,
) {
    match name {
        Some(n) => b.line(&format!("<{tag} id='0x{id:04x}'>{}</{tag}>", escape(n))),
        None => b.line(&format!("<{tag} id='0x{id:04x}'{empty_end}")),
    }
}

fn format_scsi_host(b: &mut XmlBuf, h: &ScsiHostCap) {
    b.line(&format!("<host>{}</host>", h.host as i32));
    if h.unique_id != -1 {
        b.line(&format!("<unique_id>{}</unique_id>", h.unique_id));
    }
    if let Some(fc) = &h.fc_host {
        b.open("<capability type='fc_host'>");
        b.elem("wwnn", &fc.wwnn);
        b.elem("wwpn", &fc.wwpn);
        b.opt_elem("fabric_wwn", fc.fabric_wwn.as_deref());
        b.close("</capability>");
    }
    if let Some((max, used)) = h.vport_ops {
        b.open("<capability type='vport_ops'>");
        b.line(&format!("<max_vports>{max}</max_vports>"));
        b.line(&format!("<vports>{used}</vports>"));
        b.close("</capability>");
    }
}

/// Format a device exactly as libvirt 11.3's `virNodeDeviceDefFormat`.
pub fn device_to_xml(d: &Device) -> String {
    let mut b = XmlBuf::new();
    b.open("<device>");
    b.elem("name", d.name());
    b.opt_elem("path", d.sysfs_path());
    if let Some(n) = d.devnode() {
        b.line(&format!("<devnode type='dev'>{}</devnode>", escape(n)));
    }
    for l in d.devlinks() {
        b.line(&format!("<devnode type='link'>{}</devnode>", escape(l)));
    }
    b.opt_elem("parent", d.parent());
    if let Some(drv) = d.driver() {
        b.open("<driver>");
        b.elem("name", drv);
        b.close("</driver>");
    }
    for c in &d.caps {
        b.open(&format!("<capability type='{}'>", c.cap_type().name()));
        match c {
            Cap::System(s) => format_system(&mut b, s),
            Cap::Pci(p) => format_pci(&mut b, p),
            Cap::Net(n) => format_net(&mut b, n),
            Cap::Storage(s) => format_storage(&mut b, s),
            Cap::UsbDev(u) => format_usb_dev(&mut b, u),
            Cap::UsbInterface(u) => {
                b.line(&format!("<number>{}</number>", u.number as i32));
                b.line(&format!("<class>{}</class>", u.class as i32));
                b.line(&format!("<subclass>{}</subclass>", u.subclass as i32));
                b.line(&format!("<protocol>{}</protocol>", u.protocol as i32));
                b.opt_elem("description", u.description.as_deref());
            }
            Cap::ScsiHost(h) => format_scsi_host(&mut b, h),
            Cap::Scsi(s) => {
                b.line(&format!("<host>{}</host>", s.host as i32));
                b.line(&format!("<bus>{}</bus>", s.bus as i32));
                b.line(&format!("<target>{}</target>", s.target as i32));
                b.line(&format!("<lun>{}</lun>", s.lun as i32));
                b.opt_elem("type", s.scsi_type.as_deref());
            }
            Cap::ScsiTarget(t) => {
                b.elem("target", &t.name);
                if let Some((rport, wwpn)) = &t.fc_remote_port {
                    b.open("<capability type='fc_remote_port'>");
                    b.line(&format!("<rport>{rport}</rport>"));
                    b.line(&format!("<wwpn>{wwpn}</wwpn>"));
                    b.close("</capability>");
                }
            }
            Cap::ScsiGeneric(p) => b.elem("char", p),
            Cap::Drm(t) => b.elem("type", t),
            Cap::Mdev(m) => format_mdev(&mut b, m),
            Cap::Ccw(c) => format_ccw(&mut b, c),
            Cap::Css(c) => format_css(&mut b, c),
            Cap::Vdpa(c) => b.opt_elem("chardev", c.as_deref()),
            Cap::ApCard(a) => b.line(&format!("<ap-adapter>0x{a:02x}</ap-adapter>")),
            Cap::ApQueue(a, d) => {
                b.line(&format!("<ap-adapter>0x{a:02x}</ap-adapter>"));
                b.line(&format!("<ap-domain>0x{d:04x}</ap-domain>"));
            }
            Cap::ApMatrix(t) => format_mdev_types(&mut b, t),
            Cap::MdevTypes(m) => format_mdev_types(&mut b, &m.mdev_types),
            Cap::CcwGroup(g) => format_ccwgroup(&mut b, g),
        }
        b.close("</capability>");
    }
    b.close("</device>");
    b.finish()
}
