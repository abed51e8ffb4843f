//! Node-device definitions from XML, as libvirt 9.0's `virNodeDeviceDefParse` reads them
//! for `virNodeDeviceCreateXML` / `virNodeDeviceDefineXML` (mediated devices and NPIV
//! vHBAs), with libvirt's error codes and texts.
//!
//! The XML parser is a small well-formedness checker of our own that reports the first
//! fatal error the way libvirt relays libxml2's (`(node_device_definition):LINE: MESSAGE`,
//! the offending line and a `---^` pointer) for the common mistakes. The schema check
//! (`VALIDATE` flag) covers the elements a creatable device uses, with libxml2's RelaxNG
//! messages for the common cases.

/// Where a definition error belongs, as libvirt reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefError {
    /// virErrorNumber.
    pub code: i32,
    /// virErrorDomain.
    pub domain: i32,
    /// The detail (without the code's prefix, e.g. "internal error: ").
    pub detail: String,
}

pub mod code {
    pub const INTERNAL_ERROR: i32 = 1;
    pub const XML_ERROR: i32 = 27;
    pub const CONFIG_UNSUPPORTED: i32 = 67;
    pub const PARSE_FAILED: i32 = 32;
    pub const XML_DETAIL: i32 = 35;
    pub const NO_NAME: i32 = 21;
    pub const XML_INVALID_SCHEMA: i32 = 92;
}
pub mod domain {
    pub const XML: i32 = 5;
    pub const NODEDEV: i32 = 22;
}

impl DefError {
    pub fn new(code: i32, domain: i32, detail: impl Into<String>) -> Self {
        DefError {
            code,
            domain,
            detail: detail.into(),
        }
    }
    fn internal(detail: impl Into<String>) -> Self {
        Self::new(code::INTERNAL_ERROR, domain::NODEDEV, detail)
    }
}

// ---------------------------------------------------------------------------------------
// A minimal XML tree and parser.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|c| match c {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.elements().filter(move |e| e.name == name)
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// XPath `string()` of the element: all descendant text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        fn walk(e: &Element, s: &mut String) {
            for c in &e.children {
                match c {
                    Node::Text(t) => s.push_str(t),
                    Node::Element(e) => walk(e, s),
                }
            }
        }
        walk(self, &mut s);
        s
    }

    /// `virXPathString("string(./NAME[1])")`: `None` when missing or empty.
    pub fn child_string(&self, name: &str) -> Option<String> {
        self.child(name).map(|e| e.text()).filter(|s| !s.is_empty())
    }

    /// `virXPathString("string(./NAME[1]/@ATTR)")`: `None` when missing or empty.
    pub fn child_attr(&self, name: &str, attr: &str) -> Option<String> {
        self.child(name)
            .and_then(|e| e.attr(attr))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }
}

/// A fatal XML error: the byte offset libxml2's parser stood at and its message.
struct XmlFault {
    pos: usize,
    msg: String,
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':' || c >= 0x80
}

fn is_name_char(c: u8) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == b'.' || c == b'-'
}

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn starts(&self, p: &str) -> bool {
        self.s[self.pos..].starts_with(p.as_bytes())
    }

    fn fault<T>(&self, msg: impl Into<String>) -> Result<T, XmlFault> {
        Err(XmlFault {
            pos: self.pos,
            msg: msg.into(),
        })
    }

    fn line_at(&self, pos: usize) -> usize {
        1 + self.s[..pos.min(self.s.len())]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
    }

    fn name(&mut self) -> Option<String> {
        let start = self.pos;
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        Some(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    /// Comments, processing instructions and blanks between top-level items.
    fn misc(&mut self) -> Result<(), XmlFault> {
        loop {
            self.skip_blanks();
            if self.starts("<!--") {
                self.comment()?;
            } else if self.starts("<?") {
                self.pi()?;
            } else {
                return Ok(());
            }
        }
    }

    fn comment(&mut self) -> Result<(), XmlFault> {
        self.pos += 4;
        match find(&self.s[self.pos..], b"-->") {
            Some(i) => {
                self.pos += i + 3;
                Ok(())
            }
            None => {
                self.pos = self.s.len();
                self.fault("Comment not terminated")
            }
        }
    }

    fn pi(&mut self) -> Result<(), XmlFault> {
        self.pos += 2;
        match find(&self.s[self.pos..], b"?>") {
            Some(i) => {
                self.pos += i + 2;
                Ok(())
            }
            None => {
                self.pos = self.s.len();
                self.fault("ParsePI: PI xml never end ...")
            }
        }
    }

    fn reference(&mut self, out: &mut String) -> Result<(), XmlFault> {
        // at '&'
        self.pos += 1;
        if self.peek() == Some(b'#') {
            self.pos += 1;
            let hex = self.peek() == Some(b'x');
            if hex {
                self.pos += 1;
            }
            let start = self.pos;
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_hexdigit() && (hex || c.is_ascii_digit()))
            {
                self.pos += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
            if self.peek() != Some(b';') {
                return self.fault("CharRef: invalid decimal value");
            }
            self.pos += 1;
            let v = u32::from_str_radix(digits, if hex { 16 } else { 10 }).ok();
            match v.and_then(char::from_u32) {
                Some(c) if c != '\0' => out.push(c),
                _ => {
                    return self.fault(format!(
                        "xmlParseCharRef: invalid xmlChar value {}",
                        v.unwrap_or(0)
                    ))
                }
            }
            return Ok(());
        }
        let Some(name) = self.name() else {
            return self.fault("xmlParseEntityRef: no name");
        };
        if self.peek() != Some(b';') {
            return self.fault("EntityRef: expecting ';'");
        }
        self.pos += 1;
        match name.as_str() {
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "amp" => out.push('&'),
            "quot" => out.push('"'),
            "apos" => out.push('\''),
            _ => return self.fault(format!("Entity '{name}' not defined")),
        }
        Ok(())
    }

    fn element(&mut self) -> Result<Element, XmlFault> {
        // at '<'
        let open_line = self.line_at(self.pos);
        self.pos += 1;
        let Some(name) = self.name() else {
            return self.fault("StartTag: invalid element name");
        };
        let mut el = Element {
            name,
            ..Default::default()
        };
        loop {
            self.skip_blanks();
            match self.peek() {
                None => {
                    return self.fault(format!(
                        "Couldn't find end of Start Tag {} line {open_line}",
                        el.name
                    ))
                }
                Some(b'>') => {
                    self.pos += 1;
                    break;
                }
                Some(b'/') => {
                    if self.s.get(self.pos + 1) == Some(&b'>') {
                        self.pos += 2;
                        return Ok(el);
                    }
                    return self.fault(format!(
                        "Couldn't find end of Start Tag {} line {open_line}",
                        el.name
                    ));
                }
                Some(_) => {
                    let Some(an) = self.name() else {
                        return self.fault("attributes construct error");
                    };
                    self.skip_blanks();
                    if self.peek() != Some(b'=') {
                        return self
                            .fault(format!("Specification mandates value for attribute {an}"));
                    }
                    self.pos += 1;
                    self.skip_blanks();
                    let q = match self.peek() {
                        Some(q @ (b'"' | b'\'')) => q,
                        _ => return self.fault("AttValue: \" or ' expected"),
                    };
                    self.pos += 1;
                    let mut v = String::new();
                    let mut run = self.pos;
                    loop {
                        match self.peek() {
                            None => {
                                return self.fault("AttValue: ' expected");
                            }
                            Some(c) if c == q => {
                                v.push_str(&String::from_utf8_lossy(&self.s[run..self.pos]));
                                self.pos += 1;
                                break;
                            }
                            Some(b'<') => {
                                return self.fault("Unescaped '<' not allowed in attributes values")
                            }
                            Some(b'&') => {
                                v.push_str(&String::from_utf8_lossy(&self.s[run..self.pos]));
                                self.reference(&mut v)?;
                                run = self.pos;
                            }
                            Some(b'\t' | b'\n' | b'\r') => {
                                v.push_str(&String::from_utf8_lossy(&self.s[run..self.pos]));
                                v.push(' ');
                                self.pos += 1;
                                run = self.pos;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                    if el.attrs.iter().any(|(n, _)| *n == an) {
                        return self.fault(format!("Attribute {an} redefined"));
                    }
                    el.attrs.push((an, v));
                    if !self
                        .peek()
                        .is_some_and(|c| is_blank(c) || c == b'>' || c == b'/')
                    {
                        return self.fault("attributes construct error");
                    }
                }
            }
        }
        // Content.
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return self.fault(format!(
                        "Premature end of data in tag {} line {open_line}",
                        el.name
                    ))
                }
                Some(b'<') => {
                    if !text.is_empty() {
                        el.children.push(Node::Text(std::mem::take(&mut text)));
                    }
                    if self.starts("</") {
                        self.pos += 2;
                        let close = self.name().unwrap_or_default();
                        self.skip_blanks();
                        if self.peek() != Some(b'>') {
                            return self.fault("expected '>'");
                        }
                        self.pos += 1;
                        if close != el.name {
                            return self.fault(format!(
                                "Opening and ending tag mismatch: {} line {open_line} and {close}",
                                el.name
                            ));
                        }
                        return Ok(el);
                    } else if self.starts("<!--") {
                        self.comment()?;
                    } else if self.starts("<![CDATA[") {
                        self.pos += 9;
                        match find(&self.s[self.pos..], b"]]>") {
                            Some(i) => {
                                text.push_str(&String::from_utf8_lossy(
                                    &self.s[self.pos..self.pos + i],
                                ));
                                self.pos += i + 3;
                            }
                            None => {
                                self.pos = self.s.len();
                                return self.fault("CData section not finished\n");
                            }
                        }
                    } else if self.starts("<?") {
                        self.pi()?;
                    } else {
                        let child = self.element()?;
                        el.children.push(Node::Element(child));
                    }
                }
                Some(b'&') => self.reference(&mut text)?,
                Some(_) => {
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c != b'<' && c != b'&') {
                        self.pos += 1;
                    }
                    text.push_str(&String::from_utf8_lossy(&self.s[start..self.pos]));
                }
            }
        }
    }

    fn document(&mut self) -> Result<Element, XmlFault> {
        if self.s.is_empty() {
            return self.fault("Document is empty");
        }
        if self.starts("\u{feff}") {
            self.pos += 3;
        }
        if self.starts("<?xml") {
            self.pi()?;
        }
        self.misc()?;
        if self.starts("<!DOCTYPE") {
            match self.s[self.pos..].iter().position(|&c| c == b'>') {
                Some(i) => self.pos += i + 1,
                None => {
                    self.pos = self.s.len();
                    return self.fault("DOCTYPE improperly terminated");
                }
            }
            self.misc()?;
        }
        if self.peek() != Some(b'<') {
            return self.fault("Start tag expected, '<' not found");
        }
        let root = self.element()?;
        self.misc()?;
        if self.pos < self.s.len() {
            return self.fault("Extra content at the end of the document");
        }
        Ok(root)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses `xml` as libvirt's `virXMLParse` does with the given document name
/// (`(node_device_definition)`): the first fatal error as libvirt reports it
/// (XML_DETAIL in the node-device domain).
pub fn parse_xml(xml: &str, docname: &str) -> Result<Element, DefError> {
    let mut p = Parser {
        s: xml.as_bytes(),
        pos: 0,
    };
    p.document().map_err(|f| {
        let s = p.s;
        let line = p.line_at(f.pos);
        // catchXMLError: the line around the error and a pointer to it.
        let at = f.pos.min(s.len());
        let mut cur = at;
        while cur > 0 && matches!(s.get(cur), Some(b'\n' | b'\r')) {
            cur -= 1;
        }
        while cur > 0 && !matches!(s.get(cur), Some(b'\n' | b'\r')) {
            cur -= 1;
        }
        if matches!(s.get(cur), Some(b'\n' | b'\r')) {
            cur += 1;
        }
        let col = at.saturating_sub(cur);
        let end = s[cur..]
            .iter()
            .position(|&c| c == b'\n' || c == b'\r')
            .map_or(s.len(), |i| cur + i);
        let ctx = &s[cur..end];
        let context = if ctx.is_empty() {
            "(null)".to_owned()
        } else {
            String::from_utf8_lossy(ctx).into_owned()
        };
        let mut pointer: String = ctx
            .iter()
            .take(col)
            .map(|&c| if c == b'\t' { '\t' } else { '-' })
            .collect();
        pointer.push('^');
        DefError::new(
            code::XML_DETAIL,
            domain::NODEDEV,
            format!("{docname}:{line}: {}\n{context}\n{pointer}", f.msg),
        )
    })
}

// ---------------------------------------------------------------------------------------
// Definitions.

/// One `<attr name= value=/>` of a mediated device, in order.
pub type MdevAttr = (String, String);

/// A mediated device definition (`virNodeDevCapMdev` of a new device).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MdevDef {
    pub type_id: String,
    /// Canonical lower-case form, when given.
    pub uuid: Option<String>,
    pub attrs: Vec<MdevAttr>,
    /// `<iommuGroup number=.../>` when given.
    pub iommu_group: Option<u32>,
}

/// The `fc_host` part of a new scsi_host (vHBA).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScsiHostDef {
    /// `(wwnn, wwpn)` when an fc_host capability is given (both required).
    pub fc_host: Option<(String, String)>,
    pub fabric_wwn: Option<String>,
    pub vport_ops: bool,
}

/// The capabilities of a definition that matter for creating devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapDef {
    Mdev(MdevDef),
    ScsiHost(ScsiHostDef),
    /// Any other capability type (by its name); nothing can be created from it.
    Other(String),
}

/// A parsed `<device>` definition for a new device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceDef {
    pub parent: Option<String>,
    pub parent_wwnn: Option<String>,
    pub parent_wwpn: Option<String>,
    pub parent_fabric_wwn: Option<String>,
    pub caps: Vec<CapDef>,
}

impl DeviceDef {
    pub fn mdev(&self) -> Option<&MdevDef> {
        self.caps.iter().find_map(|c| match c {
            CapDef::Mdev(m) => Some(m),
            _ => None,
        })
    }

    pub fn scsi_host(&self) -> Option<&ScsiHostDef> {
        self.caps.iter().find_map(|c| match c {
            CapDef::ScsiHost(h) => Some(h),
            _ => None,
        })
    }
}

/// virXMLPropEnum with VIR_XML_PROP_REQUIRED.
fn prop_enum<'a>(
    el: &'a Element,
    attr: &str,
    allowed: impl Fn(&str) -> bool,
) -> Result<&'a str, DefError> {
    let Some(v) = el.attr(attr) else {
        return Err(DefError::new(
            code::XML_ERROR,
            domain::XML,
            format!(
                "Missing required attribute '{attr}' in element '{}'",
                el.name
            ),
        ));
    };
    if !allowed(v) {
        return Err(DefError::new(
            code::XML_ERROR,
            domain::XML,
            format!(
                "Invalid value for attribute '{attr}' in element '{}': '{v}'.",
                el.name
            ),
        ));
    }
    Ok(v)
}

/// virUUIDParse: 32 hex digits, dashes allowed between pairs, surrounding blanks.
pub fn parse_uuid(s: &str) -> Option<String> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let mut hex = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '-' {
            continue;
        }
        let d = chars.next()?;
        if !c.is_ascii_hexdigit() || !d.is_ascii_hexdigit() {
            return None;
        }
        hex.push(c.to_ascii_lowercase());
        hex.push(d.to_ascii_lowercase());
        if hex.len() > 32 {
            return None;
        }
    }
    if hex.len() != 32 {
        return None;
    }
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// virXPathUInt: -1 missing, -2 invalid.
fn parse_uint(s: &str) -> Option<u32> {
    let t = s.trim_start();
    if t.starts_with('-') {
        return None;
    }
    t.parse().ok()
}

const NAME: &str = "new device";

fn parse_mdev(cap: &Element) -> Result<MdevDef, DefError> {
    let type_id = cap.child_attr("type", "id").ok_or_else(|| {
        DefError::new(
            code::CONFIG_UNSUPPORTED,
            domain::NODEDEV,
            format!("missing type id attribute for '{NAME}'"),
        )
    })?;
    let uuid = match cap.child_string("uuid") {
        Some(u) => Some(parse_uuid(&u).ok_or_else(|| {
            DefError::internal(format!("Invalid uuid '{u}' for new mdev device"))
        })?),
        None => None,
    };
    let iommu_group = match cap.child("iommuGroup").and_then(|g| g.attr("number")) {
        Some(n) => Some(parse_uint(n).ok_or_else(|| {
            DefError::internal(format!("invalid iommuGroup number attribute for '{NAME}'"))
        })?),
        None => None,
    };
    // A nameless or valueless <attr> is skipped (libvirt ignores that error).
    let attrs = cap
        .children_named("attr")
        .filter_map(|a| Some((a.attr("name")?.to_owned(), a.attr("value")?.to_owned())))
        .collect();
    Ok(MdevDef {
        type_id,
        uuid,
        attrs,
        iommu_group,
    })
}

fn parse_scsi_host(cap: &Element) -> Result<ScsiHostDef, DefError> {
    let mut h = ScsiHostDef::default();
    for sub in cap.children_named("capability") {
        let Some(t) = sub.attr("type") else {
            return Err(DefError::internal(format!(
                "missing SCSI host capability type for '{NAME}'"
            )));
        };
        match t {
            "vport_ops" => h.vport_ops = true,
            "fc_host" => {
                // A nodedev connection's virt type cannot generate WWNs.
                let wwnn = sub.child_string("wwnn").ok_or_else(|| {
                    DefError::internal(format!(
                        "no WWNN supplied for '{NAME}', and auto-generation failed"
                    ))
                })?;
                let wwpn = sub.child_string("wwpn").ok_or_else(|| {
                    DefError::internal(format!(
                        "no WWPN supplied for '{NAME}', and auto-generation failed"
                    ))
                })?;
                h.fc_host = Some((wwnn, wwpn));
                h.fabric_wwn = sub.child_string("fabric_wwn");
            }
            _ => {
                return Err(DefError::internal(format!(
                    "unknown SCSI host capability type '{t}' for '{NAME}'"
                )))
            }
        }
    }
    Ok(h)
}

/// `virNodeDeviceDefParse(..., CREATE_DEVICE, ...)` up to (not including) the driver's
/// post-parse and validate callbacks. `validate` is the VALIDATE flag.
pub fn parse_definition(xml: &str, validate: bool) -> Result<DeviceDef, DefError> {
    let root = parse_xml(xml, "(node_device_definition)")?;
    if root.name != "device" {
        return Err(DefError::new(
            code::XML_ERROR,
            domain::XML,
            format!("expecting root element of 'device', not '{}'", root.name),
        ));
    }
    if validate {
        if let Err(detail) = crate::schema::validate_device(&root) {
            return Err(DefError::new(
                code::XML_INVALID_SCHEMA,
                domain::XML,
                format!(
                    "Unable to validate doc against /usr/share/libvirt/schemas/nodedev.rng\n{detail}"
                ),
            ));
        }
    }
    for dn in root.children_named("devnode") {
        prop_enum(dn, "type", |v| matches!(v, "dev" | "link"))?;
    }
    let mut def = DeviceDef {
        parent: root.child_string("parent"),
        parent_wwnn: root.child_attr("parent", "wwnn"),
        parent_wwpn: root.child_attr("parent", "wwpn"),
        parent_fabric_wwn: None,
        caps: Vec::new(),
    };
    match (&def.parent_wwnn, &def.parent_wwpn) {
        (Some(n), None) => {
            return Err(DefError::new(
                code::XML_ERROR,
                domain::NODEDEV,
                format!("when providing parent wwnn='{n}', the wwpn must also be provided"),
            ))
        }
        (None, Some(p)) => {
            return Err(DefError::new(
                code::XML_ERROR,
                domain::NODEDEV,
                format!("when providing parent wwpn='{p}', the wwnn must also be provided"),
            ))
        }
        _ => {}
    }
    def.parent_fabric_wwn = root.child_attr("parent", "fabric_wwn");
    let caps: Vec<&Element> = root.children_named("capability").collect();
    if caps.is_empty() {
        return Err(DefError::internal(format!(
            "no device capabilities for '{NAME}'"
        )));
    }
    for cap in caps {
        let t = prop_enum(cap, "type", |v| crate::CapType::from_name(v).is_some())?;
        let c = match t {
            "mdev" => CapDef::Mdev(parse_mdev(cap)?),
            "scsi_host" => CapDef::ScsiHost(parse_scsi_host(cap)?),
            "mdev_types" | "fc_host" | "vports" | "scsi_generic" | "vdpa" | "vpd" => {
                // libvirt prints the enum's number, which is the capability's bit index.
                let n = crate::CapType::from_name(t).map_or(0, |c| c.list_flag().trailing_zeros());
                return Err(DefError::internal(format!(
                    "unknown capability type '{n}' for '{NAME}'"
                )));
            }
            "system"
                if cap
                    .child("hardware")
                    .and_then(|h| h.child_string("uuid"))
                    .is_none() =>
            {
                return Err(DefError::internal(format!(
                    "no system UUID supplied for '{NAME}'"
                )))
            }
            other => CapDef::Other(other.to_owned()),
        };
        def.caps.push(c);
    }
    Ok(def)
}

/// `virNodeDeviceDefParse(..., EXISTING_DEVICE, ..., validate = true)` as
/// `virNodeDeviceUpdate` (libvirt 10.1.0) calls it, up to the driver's callbacks: always
/// checked against the schema, and the device's `<name>` is required (VIR_ERR_NO_NAME) and
/// names the device in the parser's messages. Returns the name and the definition.
pub fn parse_existing(xml: &str) -> Result<(String, DeviceDef), DefError> {
    let root = parse_xml(xml, "(node_device_definition)")?;
    let name = root.child_string("name");
    let rename = |mut e: DefError| {
        if let Some(n) = &name {
            e.detail = e.detail.replace(&format!("'{NAME}'"), &format!("'{n}'"));
        }
        e
    };
    let def = parse_definition(xml, true).map_err(rename)?;
    let Some(name) = name else {
        return Err(DefError::new(
            code::NO_NAME,
            domain::NODEDEV,
            "missing name information",
        ));
    };
    Ok((name, def))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(xml: &str) -> String {
        parse_definition(xml, false).unwrap_err().detail
    }

    #[test]
    fn libxml2_messages() {
        assert_eq!(
            err("this is not XML at all"),
            "(node_device_definition):1: Start tag expected, '<' not found\nthis is not XML at all\n^"
        );
        assert_eq!(
            err("<device>\n"),
            "(node_device_definition):2: Premature end of data in tag device line 1\n(null)\n^"
        );
        assert_eq!(
            err("<device>"),
            "(node_device_definition):1: Premature end of data in tag device line 1\n<device>\n--------^"
        );
        assert_eq!(
            err(""),
            "(node_device_definition):1: Document is empty\n(null)\n^"
        );
        assert_eq!(
            err("   "),
            "(node_device_definition):1: Start tag expected, '<' not found\n   \n---^"
        );
        assert_eq!(
            err("<device><name>x</nam></device>"),
            "(node_device_definition):1: Opening and ending tag mismatch: name line 1 and nam\n<device><name>x</nam></device>\n---------------------^"
        );
        assert_eq!(
            err("<device>&foo;</device>"),
            "(node_device_definition):1: Entity 'foo' not defined\n<device>&foo;</device>\n-------------^"
        );
        assert_eq!(
            err("<device></device><x/>"),
            "(node_device_definition):1: Extra content at the end of the document\n<device></device><x/>\n-----------------^"
        );
        assert_eq!(
            err("<device a=b/>"),
            "(node_device_definition):1: AttValue: \" or ' expected\n<device a=b/>\n----------^"
        );
        assert_eq!(
            err("<device a='b' a='c'/>"),
            "(node_device_definition):1: Attribute a redefined\n<device a='b' a='c'/>\n-------------------^"
        );
        assert_eq!(
            err("<device><name>x</name></device"),
            "(node_device_definition):1: expected '>'\n<device><name>x</name></device\n------------------------------^"
        );
        assert_eq!(
            err("<device><name>x</name>\n<parent>computer</parent>\n\t<capability type='mdev'>\n  <type id='nvidia-222'/>\n  </capability\n</device>"),
            "(node_device_definition):6: expected '>'\n</device>\n^"
        );
        assert_eq!(
            err("<?xml version=\"1.0\"?>"),
            "(node_device_definition):1: Start tag expected, '<' not found\n<?xml version=\"1.0\"?>\n---------------------^"
        );
        assert_eq!(
            err("<device>< /device>"),
            "(node_device_definition):1: StartTag: invalid element name\n<device>< /device>\n---------^"
        );
    }

    #[test]
    fn definitions() {
        assert_eq!(err("<device/>"), "no device capabilities for 'new device'");
        assert_eq!(
            err("<foo/>"),
            "expecting root element of 'device', not 'foo'"
        );
        let d = parse_definition(
            "<device><name>x</name><parent>pci_0000_00_02_0</parent><capability type='mdev'>\
             <type id='nvidia-222'/><uuid>4B20D080-1B54-4048-85B3-A6A62D165C01</uuid>\
             <attr name='a' value='1'/><attr name='b'/></capability></device>",
            false,
        )
        .unwrap();
        assert_eq!(d.parent.as_deref(), Some("pci_0000_00_02_0"));
        let m = d.mdev().unwrap();
        assert_eq!(m.type_id, "nvidia-222");
        assert_eq!(
            m.uuid.as_deref(),
            Some("4b20d080-1b54-4048-85b3-a6a62d165c01")
        );
        assert_eq!(m.attrs, vec![("a".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn existing_devices() {
        let (name, d) = parse_existing(
            "<device><name>mdev_x</name><parent>p</parent><capability type='mdev'>\
             <type id='t'/><uuid>4b20d080-1b54-4048-85b3-a6a62d165c01</uuid></capability></device>",
        )
        .unwrap();
        assert_eq!(name, "mdev_x");
        assert_eq!(d.mdev().unwrap().type_id, "t");
        // Always validated: no <name> is a schema error.
        let e = parse_existing("<device><capability type='mdev'/></device>").unwrap_err();
        assert_eq!(e.code, code::XML_INVALID_SCHEMA);
        let e = parse_existing(
            "<device><name>mdev_x</name><parent>p</parent><capability type='mdev'>\
             <uuid>4b20d080-1b54-4048-85b3-a6a62d165c01</uuid></capability></device>",
        )
        .unwrap_err();
        assert_eq!(e.code, code::XML_INVALID_SCHEMA);
        let e = parse_existing(
            "<device><name></name><capability type='mdev'><type id='t'/></capability></device>",
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.detail.as_str()),
            (code::NO_NAME, "missing name information")
        );
    }
}
