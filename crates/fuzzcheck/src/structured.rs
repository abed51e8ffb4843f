//! A node-device document described by a short program: each input byte picks an
//! operation, the following bytes its arguments. Byte-level mutation of XML text needs
//! thousands of lucky insertions to reach a nesting depth of 4,000 or a 50,000-byte name;
//! here it takes three bytes, so the fuzzer explores the limits of the XML reader
//! (libxml2's depth 256, name length 50,000, text and attribute sizes) and what lies past
//! them. `fuzz/seeds/make.py` writes programs for the interesting sizes.

/// Element names the definition parser and the schema know, then a few it does not.
pub const ELEMENTS: &[&str] = &[
    "device",
    "name",
    "parent",
    "capability",
    "a",
    "driver",
    "path",
    "devnode",
    "type",
    "uuid",
    "attr",
    "wwnn",
    "wwpn",
    "fabric_wwn",
    "unique_id",
    "parent_addr",
    "host",
    "link",
    "number",
    "id",
    "address",
    "domain",
    "bus",
    "slot",
    "function",
    "vport_ops",
    "max_vports",
    "mdev_x",
    "x",
];

/// Attribute names.
pub const ATTRIBUTES: &[&str] = &[
    "type",
    "id",
    "name",
    "value",
    "path",
    "uuid",
    "wwnn",
    "wwpn",
    "fabric_wwn",
    "parent",
    "wwnn_parent",
    "fabric_wwn_parent",
    "domain",
    "bus",
    "slot",
    "function",
    "index",
];

/// Attribute values and text: capability types, numbers, WWNs, UUIDs, entities.
pub const VALUES: &[&str] = &[
    "",
    "system",
    "pci",
    "usb_device",
    "usb",
    "net",
    "scsi_host",
    "scsi_target",
    "scsi",
    "storage",
    "fc_host",
    "vports",
    "scsi_generic",
    "drm",
    "mdev_types",
    "mdev",
    "ccw",
    "css",
    "vdpa",
    "ap_card",
    "ap_queue",
    "ap_matrix",
    "vpd",
    "0",
    "1",
    "-1",
    "0x1f",
    "4294967296",
    "20000000c9831b4b",
    "4b20d080-1b54-4048-85b3-a6a62d165c01",
    "pci_0000_00_02_0",
    "computer",
    "nvidia-222",
    "&amp;",
    "&lt;",
    "&#x41;",
    "&#0;",
    "&bogus;",
    "<![CDATA[x]]>",
    "<!-- c -->",
    "<?pi x?>",
    "\u{e9}",
];

/// Nothing generated grows past REMOTE_STRING_MAX: no client can send more.
pub const OUTPUT_MAX: usize = protocol::REMOTE_STRING_MAX as usize;

struct Program<'a>(&'a [u8]);

impl Program<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> usize {
        let hi = self.u8().unwrap_or(0) as usize;
        (hi << 8) | self.u8().unwrap_or(0) as usize
    }

    fn pick<'t>(&mut self, table: &[&'t str]) -> &'t str {
        table[self.u8().unwrap_or(0) as usize % table.len()]
    }
}

fn open(out: &mut String, stack: &mut Vec<String>, name: String, attrs: &str) {
    out.push('<');
    out.push_str(&name);
    out.push_str(attrs);
    out.push('>');
    stack.push(name);
}

fn close(out: &mut String, stack: &mut Vec<String>) {
    if let Some(name) = stack.pop() {
        out.push_str("</");
        out.push_str(&name);
        out.push('>');
    }
}

/// The document `program` describes. It starts inside `<device>`; every element still
/// open at the end is closed unless the program's last operation says otherwise.
/// Operations (first byte modulo 11):
/// 0 open a known element with 0-3 known attributes, 1 close one, 2 text (a value
/// repeated up to 65,535 times), 3 nest N (16 bits) levels of one known element,
/// 4 an element whose name is N (16 bits) bytes long, 5 an element with N distinct
/// attributes, 6 an attribute value of N × 64 bytes, 7 close down to depth N,
/// 8 up to 15 raw bytes, 9 the same attribute N times, 10 stop without closing.
pub fn xml(program: &[u8]) -> String {
    xml_within(program, OUTPUT_MAX)
}

/// [`xml`], with no operation taking the document past `max` bytes (give or take one
/// element's name and attributes). Small caps make a fast campaign (`fuzz/run`,
/// FUZZ_MAX_LEN): at 4 MiB most programs describe documents of megabytes.
pub fn xml_within(program: &[u8], max: usize) -> String {
    let max = max.min(OUTPUT_MAX);
    let mut p = Program(program);
    let mut out = String::from("<device>");
    let mut stack = vec!["device".to_string()];
    let mut close_all = true;
    while let Some(op) = p.u8() {
        if out.len() > max {
            break;
        }
        match op % 11 {
            0 => {
                let name = p.pick(ELEMENTS).to_string();
                let mut attrs = String::new();
                for _ in 0..p.u8().unwrap_or(0) % 4 {
                    let (k, v) = (p.pick(ATTRIBUTES), p.pick(VALUES));
                    attrs.push_str(&format!(" {k}='{v}'"));
                }
                open(&mut out, &mut stack, name, &attrs);
            }
            1 => close(&mut out, &mut stack),
            2 => {
                let v = p.pick(VALUES);
                let n = p.u16();
                let room = max.saturating_sub(out.len());
                out.push_str(&v.repeat(n.min(room / v.len().max(1))));
            }
            3 => {
                let name = p.pick(ELEMENTS);
                for _ in 0..p.u16() {
                    if out.len() > max {
                        break;
                    }
                    open(&mut out, &mut stack, name.to_string(), "");
                }
            }
            4 => {
                let n = p.u16().min(max.saturating_sub(out.len()));
                open(&mut out, &mut stack, "n".repeat(n.max(1)), "");
            }
            5 => {
                let name = p.pick(ELEMENTS).to_string();
                let mut attrs = String::new();
                for i in 0..p.u16() {
                    if out.len() + attrs.len() > max {
                        break;
                    }
                    attrs.push_str(&format!(" a{i}='{i}'"));
                }
                open(&mut out, &mut stack, name, &attrs);
            }
            6 => {
                let (name, k) = (p.pick(ELEMENTS).to_string(), p.pick(ATTRIBUTES));
                let n = (p.u16() * 64).min(max.saturating_sub(out.len()));
                open(
                    &mut out,
                    &mut stack,
                    name,
                    &format!(" {k}='{}'", "v".repeat(n)),
                );
            }
            7 => {
                let depth = p.u16();
                while stack.len() > depth {
                    close(&mut out, &mut stack);
                }
            }
            8 => {
                let n = p.u8().unwrap_or(0) as usize % 16;
                let (raw, rest) = p.0.split_at(n.min(p.0.len()));
                out.push_str(&String::from_utf8_lossy(raw));
                p.0 = rest;
            }
            9 => {
                let (name, k) = (p.pick(ELEMENTS).to_string(), p.pick(ATTRIBUTES));
                let one = format!(" {k}='x'");
                let n = p.u16().min(max.saturating_sub(out.len()) / one.len());
                let attrs = one.repeat(n.max(2));
                open(&mut out, &mut stack, name, &attrs);
            }
            _ => {
                close_all = false;
                break;
            }
        }
    }
    if close_all {
        while !stack.is_empty() {
            close(&mut out, &mut stack);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::xml;

    #[test]
    fn three_bytes_describe_a_4000_deep_document() {
        // Op 3, element 4 ("a"), depth 0x0fa0.
        let doc = xml(&[3, 4, 0x0f, 0xa0]);
        assert!(doc.starts_with("<device><a><a>"));
        assert_eq!(doc.matches("<a>").count(), 4000);
        assert!(doc.ends_with("</a></device>"));
    }

    #[test]
    fn the_empty_program_is_an_empty_device() {
        assert_eq!(xml(&[]), "<device></device>");
    }

    #[test]
    fn output_stays_within_what_a_client_can_send() {
        let doc = xml(&[2, 1, 0xff, 0xff, 2, 1, 0xff, 0xff, 2, 1, 0xff, 0xff]);
        assert!(doc.len() <= protocol::REMOTE_STRING_MAX as usize + 64);
        let doc = xml(&[6, 0, 0, 0xff, 0xff, 6, 0, 0, 0xff, 0xff]);
        assert!(doc.len() <= protocol::REMOTE_STRING_MAX as usize + 64);
    }
}
