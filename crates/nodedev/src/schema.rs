//! The RelaxNG check of libvirt 11.3's `nodedev.rng` that the VALIDATE flag asks for,
//! written out by hand for the parts a device definition for creation uses (the `<device>`
//! interleave, `<parent>`, and the `mdev` and `scsi_host` capabilities), with the messages
//! of 11.3's libxml2 for the common failures. Other capability types are not checked.

use crate::parse::{Element, Node};

/// Ok, or the validator's messages, one per line (each ending in `\n`).
///
/// libvirt 11.3's schema makes `<device>`'s content an interleave (any order; 9.0 had a
/// fixed sequence), and libxml2 checks an interleave in two passes: it first sorts the
/// children, in document order, into the interleave's members by element name, stopping
/// at the first child that belongs to none; then it validates the members in the schema's
/// order and stops at the first that fails. What the first pass left over is reported
/// last, as extra content.
pub fn validate_device(root: &Element) -> Result<(), String> {
    if let Some((a, _)) = root.attrs.first() {
        return Err(format!("Invalid attribute {a} for element device\n"));
    }
    const MEMBERS: [&str; 6] = ["name", "path", "devnode", "parent", "driver", "capability"];
    let mut groups: [Vec<&Element>; 6] = Default::default();
    let mut leftover = None;
    for child in &root.children {
        let name = match child {
            Node::Text(t) if t.trim().is_empty() => continue,
            // libxml2 names a text node "text".
            Node::Text(_) => "text",
            Node::Element(e) => match MEMBERS.iter().position(|m| *m == e.name) {
                Some(i) => {
                    groups[i].push(e);
                    continue;
                }
                None => e.name.as_str(),
            },
        };
        leftover = Some(name);
        break;
    }
    let failed = |what: &str| Err(format!("{what}{DEVICE_FAILED}"));
    let extra = |name: &str| format!("Extra element {name} in interleave\n");
    for (member, els) in MEMBERS.iter().zip(&groups) {
        let repeatable = matches!(*member, "devnode" | "capability");
        match *member {
            "name" if els.is_empty() => {
                return failed(&format!(
                    "Expecting an element name, got nothing\n{INTERLEAVE}"
                ))
            }
            _ if els.len() > 1 && !repeatable => return failed(&extra(member)),
            _ => {}
        }
        for e in els {
            let mut errs = Vec::new();
            match *member {
                "name" | "path" => {
                    if let Some(x) = e.elements().next() {
                        return Err(format!("Element {member} has extra content: {}\n", x.name));
                    }
                }
                "devnode" => {
                    let ok = e.attrs.len() == 1
                        && matches!(e.attr("type"), Some("dev" | "link"))
                        && text_only(e);
                    if !ok {
                        errs.push("Element devnode failed to validate attributes\n".to_owned());
                    }
                }
                "parent" => check_parent(e, &mut errs),
                "capability" => check_capability(e, &mut errs),
                _ => {}
            }
            if !errs.is_empty() {
                return failed(&format!("{}{}", errs.concat(), extra(member)));
            }
        }
    }
    match leftover {
        Some(x) => Err(format!("Element device has extra content: {x}\n")),
        None => Ok(()),
    }
}

const DEVICE_FAILED: &str = "Element device failed to validate content\n";

fn text_only(e: &Element) -> bool {
    e.elements().next().is_none()
}

fn is_wwn(s: &str) -> bool {
    let h = s.strip_prefix("0x").unwrap_or(s);
    h.len() == 16 && h.bytes().all(|c| c.is_ascii_hexdigit())
}

fn is_uuid(s: &str) -> bool {
    let hex = |p: &str| p.bytes().all(|c| c.is_ascii_hexdigit());
    if s.len() == 32 {
        return hex(s);
    }
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| hex(p))
}

fn is_uint(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) && t.parse::<u64>().is_ok()
}

fn check_parent(p: &Element, errs: &mut Vec<String>) {
    let names: Vec<&str> = p.attrs.iter().map(|(n, _)| n.as_str()).collect();
    let ok = match names.as_slice() {
        [] => true,
        [a, b] if (*a == "wwnn" && *b == "wwpn") || (*a == "wwpn" && *b == "wwnn") => {
            p.attrs.iter().all(|(_, v)| is_wwn(v)) && text_only(p) && blank_text(p)
        }
        ["fabric_wwn"] => p.attrs.iter().all(|(_, v)| is_wwn(v)) && blank_text(p),
        _ => false,
    };
    if !ok {
        let first = names.first().copied().unwrap_or("");
        errs.push(format!("Invalid attribute {first} for element parent\n"));
    }
}

fn blank_text(e: &Element) -> bool {
    e.children.iter().all(|c| match c {
        Node::Text(t) => t.trim().is_empty(),
        Node::Element(_) => false,
    })
}

const INTERLEAVE: &str = "Invalid sequence in interleave\n";
const CAP_FAILED: &str = "Element capability failed to validate content\n";

fn check_capability(c: &Element, errs: &mut Vec<String>) {
    match c.attr("type") {
        Some("mdev") => check_mdev(c, errs),
        Some("scsi_host") => {
            let els: Vec<&Element> = c.elements().collect();
            let mut e = String::new();
            match els.first() {
                None => e.push_str("Expecting an element host, got nothing\n"),
                Some(h) if h.name != "host" => {
                    e.push_str(&format!("Expecting element host, got {}\n", h.name))
                }
                Some(h) if !is_uint(&h.text()) => e.push_str(&format!(
                    "Type unsignedLong doesn't allow value '{}'\n\
                     Error validating datatype unsignedLong\n\
                     Element host failed to validate content\n",
                    h.text()
                )),
                Some(_) => {
                    let mut i = 1;
                    if els.get(i).is_some_and(|u| u.name == "unique_id") {
                        i += 1;
                    }
                    while let Some(sub) = els.get(i).filter(|s| s.name == "capability") {
                        if !sub_cap_ok(sub) {
                            e.push_str(CAP_FAILED);
                            break;
                        }
                        i += 1;
                    }
                    if e.is_empty() {
                        if let Some(x) = els.get(i) {
                            e.push_str(&format!(
                                "Element capability has extra content: {}\n",
                                x.name
                            ));
                            errs.push(e);
                            return;
                        }
                    }
                }
            }
            if !e.is_empty() {
                errs.push(format!("{e}{INTERLEAVE}{CAP_FAILED}"));
            }
        }
        Some("system") if c.child("hardware").is_none() => errs.push(format!(
            "Expecting an element hardware, got nothing\n{INTERLEAVE}{CAP_FAILED}"
        )),
        Some(
            "system" | "pci" | "usb_device" | "usb" | "net" | "scsi_target" | "scsi" | "storage"
            | "scsi_generic" | "drm" | "ccw" | "css" | "vdpa" | "ap_card" | "ap_queue"
            | "ap_matrix",
        ) => {}
        _ => errs.push(format!("{INTERLEAVE}{CAP_FAILED}")),
    }
}

fn sub_cap_ok(sub: &Element) -> bool {
    let els: Vec<&Element> = sub.elements().collect();
    let wwn = |e: &&Element, n: &str| e.name == n && is_wwn(e.text().trim());
    match sub.attr("type") {
        Some("fc_host") => {
            els.len() >= 2
                && els.len() <= 3
                && wwn(&els[0], "wwnn")
                && wwn(&els[1], "wwpn")
                && els.get(2).is_none_or(|f| wwn(f, "fabric_wwn"))
        }
        Some("vport_ops") => {
            els.len() == 2
                && els[0].name == "max_vports"
                && is_uint(&els[0].text())
                && els[1].name == "vports"
                && is_uint(&els[1].text())
        }
        _ => false,
    }
}

fn check_mdev(c: &Element, errs: &mut Vec<String>) {
    let mut e = String::new();
    let mut seen_type = false;
    let mut seen = std::collections::HashSet::new();
    for x in c.elements() {
        let ok = match x.name.as_str() {
            "type" if !(x.attrs.len() == 1 && x.attr("id").is_some()) => {
                e.push_str(&format!(
                    "Element type failed to validate attributes\n{INTERLEAVE}"
                ));
                break;
            }
            "type" => true,
            "iommuGroup" => x.attrs.len() == 1 && x.attr("number").is_some_and(is_uint),
            "uuid" => is_uuid(x.text().trim()) && text_only(x),
            "parent_addr" => text_only(x),
            "attr" => {
                if !(x.attrs.len() == 2 && x.attr("name").is_some() && x.attr("value").is_some()) {
                    e.push_str("Element attr failed to validate attributes\n");
                    false
                } else {
                    true
                }
            }
            other => {
                errs.push(format!("Element capability has extra content: {other}\n"));
                return;
            }
        };
        let repeat = x.name != "attr" && !seen.insert(x.name.clone());
        if !ok || repeat {
            e.push_str(&format!("Extra element {} in interleave\n", x.name));
            break;
        }
        if x.name == "type" {
            seen_type = true;
        }
    }
    if e.is_empty() && !seen_type {
        e.push_str(&format!(
            "Expecting an element type, got nothing\n{INTERLEAVE}"
        ));
    }
    if !e.is_empty() {
        errs.push(format!("{e}{CAP_FAILED}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers of libvirt 11.3 (`virNodeDeviceCreateXML(doc, VALIDATE)`).
    const SEEN_FROM_11_3: &[(&str, Option<&str>)] = &[
        ("<device/>", Some("Expecting an element name, got nothing\nInvalid sequence in interleave\nElement device failed to validate content\n")),
        ("<device><name>x</name></device>", None),
        ("<device><name>x</name><parent>computer</parent></device>", None),
        ("<device><parent>computer</parent><name>x</name></device>", None),
        ("<device><bogus/></device>", Some("Expecting an element name, got nothing\nInvalid sequence in interleave\nElement device failed to validate content\n")),
        ("<device><name>x</name><bogus/></device>", Some("Element device has extra content: bogus\n")),
        ("<device><name>x</name><name>y</name></device>", Some("Extra element name in interleave\nElement device failed to validate content\n")),
        ("<device><name><b/></name></device>", Some("Element name has extra content: b\n")),
        ("<device><parent>pci_0000_00_02_0</parent><capability type='mdev'><type id='i915-GVTg_V5_4'/></capability></device>", Some("Expecting an element name, got nothing\nInvalid sequence in interleave\nElement device failed to validate content\n")),
        ("<device><parent>pci_0000_00_02_0</parent><capability type='mdev'><type id='i915-GVTg_V5_4'/><uuid>bad</uuid></capability></device>", Some("Expecting an element name, got nothing\nInvalid sequence in interleave\nElement device failed to validate content\n")),
        ("<device><parent>pci_0000_00_02_0</parent><capability type='mdev'></capability></device>", Some("Expecting an element name, got nothing\nInvalid sequence in interleave\nElement device failed to validate content\n")),
        ("<device><capability type='mdev'><type id='x'/></capability><parent>p</parent></device>", Some("Expecting an element name, got nothing\nInvalid sequence in interleave\nElement device failed to validate content\n")),
        ("<device><name>x</name><capability type='bogus'/></device>", Some("Invalid sequence in interleave\nElement capability failed to validate content\nExtra element capability in interleave\nElement device failed to validate content\n")),
        ("<device><capability type='scsi_host'><capability type='fc_host'><wwnn>20000000c9831b4b</wwnn><wwpn>10000000c9831b4b</wwpn></capability></capability><parent>scsi_host5</parent></device>", Some("Expecting an element name, got nothing\nInvalid sequence in interleave\nElement device failed to validate content\n")),
        ("<device><parent wwnn='zz'/><capability type='scsi_host'><capability type='fc_host'/></capability></device>", Some("Expecting an element name, got nothing\nInvalid sequence in interleave\nElement device failed to validate content\n")),
        ("<device><name>x</name><devnode type='dev'>/dev/a</devnode><devnode type='bogus'>b</devnode></device>", Some("Element devnode failed to validate attributes\nExtra element devnode in interleave\nElement device failed to validate content\n")),
        ("<device><driver/></device>", Some("Expecting an element name, got nothing\nInvalid sequence in interleave\nElement device failed to validate content\n")),
        ("<device><name>n</name><parent>pci_0000_00_02_0</parent><capability type='mdev'><type id='i915-GVTg_V5_4'/></capability></device>", None),
        ("<device><name>n</name><parent>pci_0000_00_02_0</parent><capability type='mdev'><type id='i915-GVTg_V5_4'/><uuid>bad</uuid></capability></device>", Some("Extra element uuid in interleave\nElement capability failed to validate content\nExtra element capability in interleave\nElement device failed to validate content\n")),
        ("<device><name>n</name><parent>pci_0000_00_02_0</parent><capability type='mdev'></capability></device>", Some("Expecting an element type, got nothing\nInvalid sequence in interleave\nElement capability failed to validate content\nExtra element capability in interleave\nElement device failed to validate content\n")),
        ("<device><name>n</name><capability type='mdev'><type id='x'/></capability><parent>p</parent></device>", None),
        ("<device><name>n</name><capability type='scsi_host'><capability type='fc_host'><wwnn>20000000c9831b4b</wwnn><wwpn>10000000c9831b4b</wwpn></capability></capability><parent>scsi_host5</parent></device>", Some("Expecting element host, got capability\nInvalid sequence in interleave\nElement capability failed to validate content\nExtra element capability in interleave\nElement device failed to validate content\n")),
        ("<device><name>n</name><parent wwnn='zz'/><capability type='scsi_host'><capability type='fc_host'/></capability></device>", Some("Invalid attribute wwnn for element parent\nExtra element parent in interleave\nElement device failed to validate content\n")),
        ("<device><name>n</name><capability type='scsi_host'><capability type='fc_host'><wwnn>zz</wwnn><wwpn>10000000c9831b4b</wwpn></capability></capability></device>", Some("Expecting element host, got capability\nInvalid sequence in interleave\nElement capability failed to validate content\nExtra element capability in interleave\nElement device failed to validate content\n")),
        ("<device><name>n</name><capability type='scsi_host'><host>x</host></capability></device>", Some("Type unsignedLong doesn't allow value 'x'\nError validating datatype unsignedLong\nElement host failed to validate content\nInvalid sequence in interleave\nElement capability failed to validate content\nExtra element capability in interleave\nElement device failed to validate content\n")),
        ("<device><name>n</name><parent>p</parent><parent>q</parent><capability type='mdev'><type id='x'/></capability></device>", Some("Extra element parent in interleave\nElement device failed to validate content\n")),
        ("<device><name>n</name><capability type='mdev'><type id='x'/><attr name='a' value='b'/><iommuGroup number='x'/></capability></device>", Some("Extra element iommuGroup in interleave\nElement capability failed to validate content\nExtra element capability in interleave\nElement device failed to validate content\n")),
        ("<device><name>n</name><driver><name>x</name></driver><capability type='mdev'><type id='x'/></capability><path>/p</path></device>", None),
        ("<device><name>n</name><capability type='mdev'><type id='x'/></capability><capability type='mdev'><type id='y'/></capability></device>", None),
        ("<device><name>n</name><capability type='mdev'><type/></capability></device>", Some("Element type failed to validate attributes\nInvalid sequence in interleave\nElement capability failed to validate content\nExtra element capability in interleave\nElement device failed to validate content\n")),
        ("<device><name>n</name>text<capability type='mdev'><type id='x'/></capability></device>", Some("Element device has extra content: text\n")),
        ("<device a='b'><name>n</name><capability type='mdev'><type id='x'/></capability></device>", Some("Invalid attribute a for element device\n")),
        // (A pci capability is not checked here: not something one creates.)
        ("<device><name>n</name><capability type='mdev'><type id='x'/><bogus/></capability></device>", Some("Element capability has extra content: bogus\nExtra element capability in interleave\nElement device failed to validate content\n")),
    ];

    /// Every document above gets 11.3's messages (`None`: it passes the schema, and libvirt
    /// refuses it later for what it means).
    #[test]
    fn messages_match_libvirt_11_3() {
        for (doc, want) in SEEN_FROM_11_3 {
            let root = crate::parse::parse_xml(doc).unwrap();
            assert_eq!(validate_device(&root).err().as_deref(), *want, "{doc}");
        }
    }
}
