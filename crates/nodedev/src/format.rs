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

fn pci_addr_line(b: &mut XmlBuf, a: &PciAddr) {
    // libvirt prints the function as '0x%d' (decimal after a hex prefix).
    b.line_fmt(format_args!(
        "<address domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{}'/>",
        a.domain, a.bus, a.slot, a.function
    ));
}

/// ` name='value'` when there is a value, nothing otherwise (formatted in place).
struct Attr<T>(&'static str, Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Attr<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.1 {
            Some(v) => write!(f, " {}='{v}'", self.0),
            None => Ok(()),
        }
    }
}

fn format_system(b: &mut XmlBuf, s: &SystemCap) {
    b.opt_elem("product", s.product_name.as_deref());
    b.open("<hardware>");
    b.opt_elem("vendor", s.hardware_vendor.as_deref());
    b.opt_elem("version", s.hardware_version.as_deref());
    b.opt_elem("serial", s.hardware_serial.as_deref());
    b.line_fmt(format_args!(
        "<uuid>{}</uuid>",
        uuid_string(&s.hardware_uuid)
    ));
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
        b.open_fmt(format_args!("<type id='{}'>", escape(&t.id)));
        b.opt_elem("name", t.name.as_deref());
        b.opt_elem("deviceAPI", t.device_api.as_deref());
        b.line_fmt(format_args!(
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
                b.line_fmt(format_args!("<{kind}_field index='{index}'/>"));
            } else {
                b.line_fmt(format_args!(
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
    b.line_fmt(format_args!("<cssid>0x{:x}</cssid>", a.cssid));
    b.line_fmt(format_args!("<ssid>0x{:x}</ssid>", a.ssid));
    b.line_fmt(format_args!("<devno>0x{:04x}</devno>", a.devno));
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
            b.line_fmt(format_args!(
                "<ccw_device ref='{}'>{}</ccw_device>",
                escape(&m.reference),
                escape(&m.device)
            ));
        }
        b.close("</members>");
    }
    b.open_fmt(format_args!("<capability type='{}'>", g.group_type.name()));
    fn raw(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("(null)")
    }
    b.line_fmt(format_args!("<card_type>{}</card_type>", raw(&g.card_type)));
    b.line_fmt(format_args!("<chpid>{}</chpid>", raw(&g.chpid)));
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
    b.line_fmt(format_args!("<type id='{}'/>", escape(&m.type_id)));
    b.elem("uuid", &m.uuid);
    b.elem("parent_addr", &m.parent_addr);
    b.line_fmt(format_args!("<iommuGroup number='{}'/>", m.iommu_group));
    for (n, v) in &m.attrs {
        b.line_fmt(format_args!("<attr name='{n}' value='{v}'/>"));
    }
}

fn pcie_link_line(b: &mut XmlBuf, l: &PcieLink, validity: &str) {
    // libvirt formats an out-of-table speed as a NULL string.
    let speed = (l.speed != 0).then(|| {
        PCIE_SPEEDS
            .get(l.speed as usize)
            .copied()
            .unwrap_or("(null)")
    });
    b.line_fmt(format_args!(
        "<link validity='{validity}'{}{} width='{}'/>",
        Attr("port", (l.port >= 0).then_some(l.port)),
        Attr("speed", speed),
        l.width
    ));
}

fn format_pci(b: &mut XmlBuf, p: &PciCap) {
    if p.class >= 0 {
        b.line_fmt(format_args!("<class>0x{:06x}</class>", p.class));
    }
    b.line_fmt(format_args!("<domain>{}</domain>", p.addr.domain as i32));
    b.line_fmt(format_args!("<bus>{}</bus>", p.addr.bus));
    b.line_fmt(format_args!("<slot>{}</slot>", p.addr.slot));
    b.line_fmt(format_args!("<function>{}</function>", p.addr.function));
    id_and_name(b, "product", p.product, p.product_name.as_deref(), "/>");
    id_and_name(b, "vendor", p.vendor, p.vendor_name.as_deref(), "/>");
    if let Some(pf) = &p.physical_function {
        b.open("<capability type='phys_function'>");
        pci_addr_line(b, pf);
        b.close("</capability>");
    }
    if p.has_vf_cap() {
        let max = (p.max_virtual_functions != 0).then_some(p.max_virtual_functions);
        let max = Attr("maxCount", max);
        if p.virtual_functions.is_empty() {
            b.line_fmt(format_args!("<capability type='virt_functions'{max}/>"));
        } else {
            b.open_fmt(format_args!("<capability type='virt_functions'{max}>"));
            for vf in &p.virtual_functions {
                pci_addr_line(b, vf);
            }
            b.close("</capability>");
        }
    }
    if p.hdr_type != 0 {
        let h = PCI_HEADERS
            .get(p.hdr_type as usize)
            .copied()
            .unwrap_or("(null)");
        b.line_fmt(format_args!("<capability type='{h}'/>"));
    }
    format_mdev_types(b, &p.mdev_types);
    if let Some(v) = &p.vpd {
        format_vpd(b, v);
    }
    if !p.iommu_group_devices.is_empty() {
        b.open_fmt(format_args!(
            "<iommuGroup number='{}'>",
            p.iommu_group as i32
        ));
        for a in &p.iommu_group_devices {
            pci_addr_line(b, a);
        }
        b.close("</iommuGroup>");
    }
    if p.numa_node >= 0 {
        b.line_fmt(format_args!("<numa node='{}'/>", p.numa_node));
    }
    if let Some(e) = &p.pci_express {
        if e.link_cap.is_none() && e.link_sta.is_none() {
            b.line("<pci-express/>");
        } else {
            b.open("<pci-express>");
            if let Some(l) = &e.link_cap {
                pcie_link_line(b, l, "cap");
            }
            if let Some(l) = &e.link_sta {
                pcie_link_line(b, l, "sta");
            }
            b.close("</pci-express>");
        }
    }
}

fn format_net(b: &mut XmlBuf, n: &NetCap) {
    b.opt_elem("interface", n.ifname.as_deref());
    b.opt_elem("address", n.address.as_deref());
    if n.link_speed != 0 || n.link_state != 0 {
        let state = (n.link_state != 0)
            .then(|| IF_STATES.get(n.link_state as usize).copied().unwrap_or(""));
        b.line_fmt(format_args!(
            "<link{}{}/>",
            Attr("speed", (n.link_speed != 0).then_some(n.link_speed)),
            Attr("state", state)
        ));
    }
    for (i, f) in NET_FEATURES.iter().enumerate() {
        if n.features & (1 << i) != 0 {
            b.line_fmt(format_args!("<feature name='{f}'/>"));
        }
    }
    let sub = match n.subtype {
        NetSubtype::Ieee80203 => "80203",
        NetSubtype::Ieee80211 => "80211",
    };
    b.line_fmt(format_args!("<capability type='{sub}'/>"));
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
        b.line_fmt(format_args!(
            "<media_available>{}</media_available>",
            u8::from(s.media_available)
        ));
        b.line_fmt(format_args!(
            "<media_size>{}</media_size>",
            s.removable_media_size
        ));
        b.opt_elem("media_label", s.media_label.as_deref());
        block_geometry(b, s);
        b.close("</capability>");
    } else {
        b.line_fmt(format_args!("<size>{}</size>", s.size));
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
    b.line_fmt(format_args!(
        "<logical_block_size>{}</logical_block_size>",
        s.logical_block_size
    ));
    b.line_fmt(format_args!("<num_blocks>{}</num_blocks>", s.num_blocks));
}

fn format_usb_dev(b: &mut XmlBuf, u: &UsbDevCap) {
    b.line_fmt(format_args!("<bus>{}</bus>", u.bus as i32));
    b.line_fmt(format_args!("<device>{}</device>", u.device as i32));
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
        Some(n) => b.line_fmt(format_args!("<{tag} id='0x{id:04x}'>{}</{tag}>", escape(n))),
        None => b.line_fmt(format_args!("<{tag} id='0x{id:04x}'{empty_end}")),
    }
}

fn format_scsi_host(b: &mut XmlBuf, h: &ScsiHostCap) {
    b.line_fmt(format_args!("<host>{}</host>", h.host as i32));
    if h.unique_id != -1 {
        b.line_fmt(format_args!("<unique_id>{}</unique_id>", h.unique_id));
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
        b.line_fmt(format_args!("<max_vports>{max}</max_vports>"));
        b.line_fmt(format_args!("<vports>{used}</vports>"));
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
        b.line_fmt(format_args!("<devnode type='dev'>{}</devnode>", escape(n)));
    }
    for l in d.devlinks() {
        b.line_fmt(format_args!("<devnode type='link'>{}</devnode>", escape(l)));
    }
    b.opt_elem("parent", d.parent());
    if let Some(drv) = d.driver() {
        b.open("<driver>");
        b.elem("name", drv);
        b.close("</driver>");
    }
    for c in &d.caps {
        b.open_fmt(format_args!("<capability type='{}'>", c.cap_type().name()));
        match c {
            Cap::System(s) => format_system(&mut b, s),
            Cap::Pci(p) => format_pci(&mut b, p),
            Cap::Net(n) => format_net(&mut b, n),
            Cap::Storage(s) => format_storage(&mut b, s),
            Cap::UsbDev(u) => format_usb_dev(&mut b, u),
            Cap::UsbInterface(u) => {
                b.line_fmt(format_args!("<number>{}</number>", u.number as i32));
                b.line_fmt(format_args!("<class>{}</class>", u.class as i32));
                b.line_fmt(format_args!("<subclass>{}</subclass>", u.subclass as i32));
                b.line_fmt(format_args!("<protocol>{}</protocol>", u.protocol as i32));
                b.opt_elem("description", u.description.as_deref());
            }
            Cap::ScsiHost(h) => format_scsi_host(&mut b, h),
            Cap::Scsi(s) => {
                b.line_fmt(format_args!("<host>{}</host>", s.host as i32));
                b.line_fmt(format_args!("<bus>{}</bus>", s.bus as i32));
                b.line_fmt(format_args!("<target>{}</target>", s.target as i32));
                b.line_fmt(format_args!("<lun>{}</lun>", s.lun as i32));
                b.opt_elem("type", s.scsi_type.as_deref());
            }
            Cap::ScsiTarget(t) => {
                b.elem("target", &t.name);
                if let Some((rport, wwpn)) = &t.fc_remote_port {
                    b.open("<capability type='fc_remote_port'>");
                    b.line_fmt(format_args!("<rport>{rport}</rport>"));
                    b.line_fmt(format_args!("<wwpn>{wwpn}</wwpn>"));
                    b.close("</capability>");
                }
            }
            Cap::ScsiGeneric(p) => b.elem("char", p),
            Cap::Drm(t) => b.elem("type", t),
            Cap::Mdev(m) => format_mdev(&mut b, m),
            Cap::Ccw(c) => format_ccw(&mut b, c),
            Cap::Css(c) => format_css(&mut b, c),
            Cap::Vdpa(c) => b.opt_elem("chardev", c.as_deref()),
            Cap::ApCard(a) => b.line_fmt(format_args!("<ap-adapter>0x{a:02x}</ap-adapter>")),
            Cap::ApQueue(a, d) => {
                b.line_fmt(format_args!("<ap-adapter>0x{a:02x}</ap-adapter>"));
                b.line_fmt(format_args!("<ap-domain>0x{d:04x}</ap-domain>"));
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
