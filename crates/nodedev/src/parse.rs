//! Node-device definitions from XML, as libvirt 9.0's `virNodeDeviceDefParse` reads them
//! for `virNodeDeviceCreateXML` / `virNodeDeviceDefineXML` (mediated devices and NPIV
//! vHBAs), with libvirt's error codes and texts.
//!
//! The XML itself is read by [`crate::xml_reader`], with libxml2's messages and limits.
//! The schema check (`VALIDATE` flag) covers the elements a creatable device uses, with
//! libxml2's RelaxNG messages for the common cases.

use virerror::{ErrorCode, ErrorDomain};

/// Where a definition error belongs, as libvirt reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct DefError {
    pub code: ErrorCode,
    pub domain: ErrorDomain,
    /// The detail (without the code's prefix, e.g. "internal error: ").
    pub detail: String,
}

impl DefError {
    pub fn new(code: ErrorCode, domain: ErrorDomain, detail: impl Into<String>) -> Self {
        DefError {
            code,
            domain,
            detail: detail.into(),
        }
    }
    fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, ErrorDomain::NodeDev, detail)
    }
}

pub use crate::xml_reader::{Element, Node, MAX_DEPTH, MAX_NAME_LENGTH, MAX_TEXT_LENGTH};

/// Parses `xml` as libvirt's `virXMLParseString` does: the first fatal error as libvirt
/// reports it (XML_DETAIL in the node-device domain).
pub fn parse_xml(xml: &str) -> Result<Element, DefError> {
    crate::xml_reader::parse(xml)
        .map_err(|detail| DefError::new(ErrorCode::XmlDetail, ErrorDomain::NodeDev, detail))
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
            ErrorCode::XmlError,
            ErrorDomain::Xml,
            format!(
                "Missing required attribute '{attr}' in element '{}'",
                el.name
            ),
        ));
    };
    if !allowed(v) {
        return Err(DefError::new(
            ErrorCode::XmlError,
            ErrorDomain::Xml,
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
            ErrorCode::ConfigUnsupported,
            ErrorDomain::NodeDev,
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

/// `virRandomGenerateWWN` for a nodedev connection: NAA 5, the Qumranet OUI libvirt picks
/// for QEMU, and 36 random bits.
fn random_wwn() -> String {
    let mut bytes = [0u8; 8];
    // Without randomness the WWN is still well formed; uniqueness is the kernel's check.
    let _ = getrandom::fill(&mut bytes);
    format!("5001a4a{:09x}", u64::from_le_bytes(bytes) & ((1 << 36) - 1))
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
                // libvirt 11.3 makes up the WWNs not given (9.0 could not for a
                // nodedev connection and failed with "no WWNN supplied ...").
                let wwnn = sub.child_string("wwnn").unwrap_or_else(random_wwn);
                let wwpn = sub.child_string("wwpn").unwrap_or_else(random_wwn);
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
    let root = parse_xml(xml)?;
    if root.name != "device" {
        return Err(DefError::new(
            ErrorCode::XmlError,
            ErrorDomain::Xml,
            format!("expecting root element of 'device', not '{}'", root.name),
        ));
    }
    if validate {
        if let Err(detail) = crate::schema::validate_device(&root) {
            return Err(DefError::new(
                ErrorCode::XmlInvalidSchema,
                ErrorDomain::Xml,
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
                ErrorCode::XmlError,
                ErrorDomain::NodeDev,
                format!("when providing parent wwnn='{n}', the wwpn must also be provided"),
            ))
        }
        (None, Some(p)) => {
            return Err(DefError::new(
                ErrorCode::XmlError,
                ErrorDomain::NodeDev,
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
    let root = parse_xml(xml)?;
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
            ErrorCode::NoName,
            ErrorDomain::NodeDev,
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
            "at line 1: Start tag expected, '<' not found\nthis is not XML at all\n^"
        );
        assert_eq!(
            err("<device>\n"),
            "at line 2: Premature end of data in tag device line 1\n<device>\n--------^"
        );
        assert_eq!(
            err("<device>"),
            "at line 1: Premature end of data in tag device line 1\n<device>\n--------^"
        );
        assert_eq!(err(""), "at line 1: Document is empty\n");
        // Seen from libvirt 11.3: at the end of the input, the last line with text.
        assert_eq!(
            err("<device>\n\n\n"),
            "at line 4: Premature end of data in tag device line 1\n<device>\n--------^"
        );
        assert_eq!(
            err("<device>\n  <name>x"),
            "at line 2: Premature end of data in tag name line 2\n  <name>x\n---------^"
        );
        assert_eq!(
            err("<device>\r\n"),
            "at line 2: Premature end of data in tag device line 1\n<device>\n--------^"
        );
        assert_eq!(
            err("\n\n"),
            "at line 3: Start tag expected, '<' not found\n"
        );
        assert_eq!(
            err("   "),
            "at line 1: Start tag expected, '<' not found\n   \n---^"
        );
        assert_eq!(
            err("<device><name>x</nam></device>"),
            "at line 1: Opening and ending tag mismatch: name line 1 and nam\n<device><name>x</nam></device>\n---------------------^"
        );
        assert_eq!(
            err("<device>&foo;</device>"),
            "at line 1: Entity 'foo' not defined\n<device>&foo;</device>\n-------------^"
        );
        assert_eq!(
            err("<device></device><x/>"),
            "at line 1: Extra content at the end of the document\n<device></device><x/>\n-----------------^"
        );
        assert_eq!(
            err("<device a=b/>"),
            "at line 1: AttValue: \" or ' expected\n<device a=b/>\n----------^"
        );
        assert_eq!(
            err("<device a='b' a='c'/>"),
            "at line 1: Attribute a redefined\n<device a='b' a='c'/>\n-------------------^"
        );
        assert_eq!(
            err("<device><name>x</name></device"),
            "at line 1: expected '>'\n<device><name>x</name></device\n------------------------------^"
        );
        assert_eq!(
            err("<device><name>x</name>\n<parent>computer</parent>\n\t<capability type='mdev'>\n  <type id='nvidia-222'/>\n  </capability\n</device>"),
            "at line 6: expected '>'\n</device>\n^"
        );
        assert_eq!(
            err("<?xml version=\"1.0\"?>"),
            "at line 1: Start tag expected, '<' not found\n<?xml version=\"1.0\"?>\n---------------------^"
        );
        assert_eq!(
            err("<device>< /device>"),
            "at line 1: StartTag: invalid element name\n<device>< /device>\n---------^"
        );
    }

    /// The message's first line and the length of its `---^` pointer line, as measured on
    /// libvirt 9.0 (libxml2 2.9.14) with the same inputs.
    fn head_and_pointer(xml: &str) -> (String, usize) {
        let e = err(xml);
        let mut lines = e.split('\n');
        let head = lines.next().unwrap().to_owned();
        (head, lines.next_back().unwrap().len())
    }

    fn nested(depth: usize) -> String {
        let inner = depth - 1;
        format!(
            "<device><name>x</name>{}{}</device>",
            "<a>".repeat(inner),
            "</a>".repeat(inner)
        )
    }

    #[test]
    fn nesting_deeper_than_libxml2_allows_is_its_fatal_error() {
        assert_eq!(err(&nested(257)), "no device capabilities for 'new device'");
        let depth = "at line 1: Excessive depth in document: 256 use XML_PARSE_HUGE option";
        assert_eq!(head_and_pointer(&nested(258)), (depth.to_owned(), 791));
        assert_eq!(head_and_pointer(&nested(300)).0, depth);
        let unclosed = format!("<device>{}", "<a>".repeat(300));
        assert_eq!(head_and_pointer(&unclosed), (depth.to_owned(), 777));
        let lines = format!("<device>\n{}", "<a x='1'>\n".repeat(300));
        assert_eq!(
            err(&lines),
            "at line 258: Excessive depth in document: 256 use XML_PARSE_HUGE option\n<a x='1'>\n^"
        );
        // The crash the bound prevents: thousands of levels, and far more than any stack
        // holds in one 4 MiB string.
        let too_deep = depth;
        for depth in [4_000, 1_000_000] {
            let bomb = format!("<device><name>x</name>{}", "<a>".repeat(depth));
            assert_eq!(head_and_pointer(&bomb).0, too_deep, "depth {depth}");
        }
    }

    #[test]
    fn names_longer_than_libxml2_allows_are_its_fatal_error() {
        let n = |k: usize| "n".repeat(k);
        let ok = "no device capabilities for 'new device'";
        assert_eq!(err(&format!("<device><{}/></device>", n(50_000))), ok);
        assert_eq!(err(&format!("<device a{}='1'/>", n(49_999))), ok);
        assert_eq!(err(&format!("<device><?{}?></device>", n(50_000))), ok);
        let cases = [
            (format!("<device><{}/></device>", n(50_001)), "NCName", 10),
            (format!("<device a{}='1'/>", n(50_000)), "NCName", 9),
            (
                format!("<device><a>&{};</a></device>", n(50_001)),
                "Name",
                13,
            ),
            (format!("<device><?{}?></device>", n(50_001)), "Name", 11),
            (format!("<device></{}></device>", n(50_001)), "Name", 11),
        ];
        for (xml, what, pointer) in cases {
            assert_eq!(
                head_and_pointer(&xml),
                (format!("at line 1: Name too long: {what}"), pointer)
            );
        }
    }

    #[test]
    fn huge_flat_documents_parse_in_linear_time() {
        // Quadratic work here (a line count per element, a scan per attribute) would make
        // these take hours; linear, they take milliseconds.
        let many = format!("<device>{}</device>", "<a/>\n".repeat(800_000));
        assert_eq!(err(&many), "no device capabilities for 'new device'");
        let attrs: String = (0..300_000).map(|i| format!(" a{i}='{i}'")).collect();
        assert_eq!(
            err(&format!("<device{attrs}/>")),
            "no device capabilities for 'new device'"
        );
        let dup = format!("<device{attrs} a7='x'/>");
        assert!(err(&dup).contains("Attribute a7 redefined"));
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
        assert_eq!(e.code, ErrorCode::XmlInvalidSchema);
        let e = parse_existing(
            "<device><name>mdev_x</name><parent>p</parent><capability type='mdev'>\
             <uuid>4b20d080-1b54-4048-85b3-a6a62d165c01</uuid></capability></device>",
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::XmlInvalidSchema);
        let e = parse_existing(
            "<device><name></name><capability type='mdev'><type id='t'/></capability></device>",
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.detail.as_str()),
            (ErrorCode::NoName, "missing name information")
        );
    }
}
