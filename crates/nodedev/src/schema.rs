//! The RelaxNG check of `nodedev.rng` that the VALIDATE flag asks for, written out by hand
//! for the parts a device definition for creation uses (the `<device>` sequence, `<parent>`,
//! and the `mdev` and `scsi_host` capabilities), with libxml2's messages for the common
//! failures. Other capability types are not checked.

use crate::parse::{Element, Node};

/// Ok, or the validator's messages, one per line (each ending in `\n`).
pub fn validate_device(root: &Element) -> Result<(), String> {
    let mut errs: Vec<String> = Vec::new();
    let els: Vec<&Element> = root.elements().collect();
    if els.is_empty() {
        return Err("Expecting an element , got nothing\n".into());
    }
    let mut i = 0;
    let unexpected = |e: &Element| format!("Did not expect element {} there\n", e.name);
    if els[0].name != "name" || !text_only(els[0]) {
        return Err(unexpected(els[0]));
    }
    i += 1;
    if els.get(i).is_some_and(|e| e.name == "path" && text_only(e)) {
        i += 1;
    }
    if els
        .get(i)
        .is_some_and(|e| e.name == "devnode" && e.attr("type") == Some("dev") && e.attrs.len() == 1)
    {
        i += 1;
    }
    while els.get(i).is_some_and(|e| {
        e.name == "devnode" && e.attr("type") == Some("link") && e.attrs.len() == 1
    }) {
        i += 1;
    }
    if let Some(p) = els.get(i).filter(|e| e.name == "parent") {
        check_parent(p, &mut errs);
        i += 1;
    }
    if els.get(i).is_some_and(|e| e.name == "driver") {
        i += 1;
    }
    while let Some(c) = els.get(i).filter(|e| e.name == "capability") {
        check_capability(c, &mut errs);
        i += 1;
    }
    if let Some(e) = els.get(i) {
        errs.push(unexpected(e));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.concat())
    }
}

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
                Some(h) if !is_uint(&h.text()) => {
                    e.push_str("Error validating datatype unsignedLong\nElement host failed to validate content\n")
                }
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
            "type" => x.attrs.len() == 1 && x.attr("id").is_some(),
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
