//! Reading XML documents: a small well-formedness checker of our own that reports the first
//! fatal error the way libvirt relays libxml2's (`at line LINE: MESSAGE`,
//! the offending line and a `---^` pointer) for the common mistakes. It is written here
//! rather than taken from an XML crate because clients see libxml2's exact messages and
//! positions, which no crate reproduces. It keeps libxml2's limits without XML_PARSE_HUGE
//! (nesting depth, name length), never recurses on the input's structure and stays linear
//! in the input's size. libxml2's 10,000,000-byte limits on text, attribute values,
//! comments, PIs and CDATA cannot be reached: every XML string arrives in an RPC string of
//! at most 4 MiB (`REMOTE_STRING_MAX`; the daemon asserts that at compile time against
//! [`MAX_TEXT_LENGTH`]).

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

    /// XPath `string()` of the element: all descendant text, in document order.
    pub fn text(&self) -> String {
        let mut s = String::new();
        // Depth-first without recursion: a stack of child iterators.
        let mut stack = vec![self.children.iter()];
        while let Some(children) = stack.last_mut() {
            match children.next() {
                Some(Node::Text(t)) => s.push_str(t),
                Some(Node::Element(e)) => stack.push(e.children.iter()),
                None => {
                    stack.pop();
                }
            }
        }
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

/// libxml2's `xmlParserMaxDepth`: without XML_PARSE_HUGE (libvirt never sets it) an element
/// may have at most this many open ancestors; the next start tag is a fatal error.
pub const MAX_DEPTH: usize = 256;

/// libxml2's `XML_MAX_NAME_LENGTH`: the longest name (or NCName part of a qualified name)
/// it accepts without XML_PARSE_HUGE.
pub const MAX_NAME_LENGTH: usize = 50_000;

/// libxml2's `XML_MAX_TEXT_LENGTH`: the longest text node, attribute value, comment, PI or
/// CDATA section it accepts without XML_PARSE_HUGE.
pub const MAX_TEXT_LENGTH: usize = 10_000_000;

/// Which of libxml2's name productions is being read; it names the production in its
/// "Name too long" message.
#[derive(Clone, Copy)]
enum NameKind {
    Name,
    QName,
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

    /// A name (`Name` for end tags, entity references and PI targets). Longer than
    /// [`MAX_NAME_LENGTH`] is libxml2's fatal "Name too long", reported at its start.
    fn name(&mut self, kind: NameKind) -> Result<Option<String>, XmlFault> {
        let start = self.pos;
        if !self.peek().is_some_and(is_name_start) {
            return Ok(None);
        }
        while self.peek().is_some_and(is_name_char) {
            self.pos += 1;
        }
        let name = &self.s[start..self.pos];
        let too_long = match kind {
            NameKind::Name => name.len() > MAX_NAME_LENGTH,
            // Element and attribute names are read as prefix:local, each an NCName.
            NameKind::QName => name
                .split(|&c| c == b':')
                .any(|p| p.len() > MAX_NAME_LENGTH),
        };
        if too_long {
            let what = match kind {
                NameKind::Name => "Name",
                NameKind::QName => "NCName",
            };
            self.pos = start;
            return self.fault(format!("Name too long: {what}"));
        }
        Ok(Some(String::from_utf8_lossy(name).into_owned()))
    }

    /// An element or attribute name.
    fn qname(&mut self) -> Result<Option<String>, XmlFault> {
        self.name(NameKind::QName)
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
        self.name(NameKind::Name)?;
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
        let Some(name) = self.name(NameKind::Name)? else {
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

    /// The start tag at `<`: name and attributes. `Ok(true)` when it closed itself (`/>`).
    fn start_tag(&mut self, el: &mut Element, open: usize) -> Result<bool, XmlFault> {
        self.pos += 1;
        el.name = self.qname()?.ok_or_else(|| XmlFault {
            pos: self.pos,
            msg: "StartTag: invalid element name".into(),
        })?;
        // Duplicate attributes are found with a set once there are many, so that a start
        // tag with hundreds of thousands of attributes stays linear.
        let mut seen: Option<std::collections::HashSet<String>> = None;
        loop {
            self.skip_blanks();
            match self.peek() {
                None => return self.fault(self.unfinished_start_tag(&el.name, open)),
                Some(b'>') => {
                    self.pos += 1;
                    return Ok(false);
                }
                Some(b'/') => {
                    if self.s.get(self.pos + 1) == Some(&b'>') {
                        self.pos += 2;
                        return Ok(true);
                    }
                    return self.fault(self.unfinished_start_tag(&el.name, open));
                }
                Some(_) => {
                    let Some(an) = self.qname()? else {
                        return self.fault("attributes construct error");
                    };
                    self.skip_blanks();
                    if self.peek() != Some(b'=') {
                        return self
                            .fault(format!("Specification mandates value for attribute {an}"));
                    }
                    self.pos += 1;
                    self.skip_blanks();
                    let v = self.att_value()?;
                    let dup = match &seen {
                        Some(set) => set.contains(&an),
                        None => el.attrs.iter().any(|(n, _)| *n == an),
                    };
                    if dup {
                        return self.fault(format!("Attribute {an} redefined"));
                    }
                    match &mut seen {
                        Some(set) => {
                            set.insert(an.clone());
                        }
                        None if el.attrs.len() >= 16 => {
                            seen = Some(el.attrs.iter().map(|(n, _)| n.clone()).collect());
                        }
                        None => {}
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
    }

    fn unfinished_start_tag(&self, name: &str, open: usize) -> String {
        format!(
            "Couldn't find end of Start Tag {name} line {}",
            self.line_at(open)
        )
    }

    /// A quoted attribute value, normalised as libxml2 does (tabs and newlines to spaces).
    fn att_value(&mut self) -> Result<String, XmlFault> {
        let q = match self.peek() {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return self.fault("AttValue: \" or ' expected"),
        };
        self.pos += 1;
        let mut v = String::new();
        let mut run = self.pos;
        loop {
            match self.peek() {
                None => return self.fault("AttValue: ' expected"),
                Some(c) if c == q => {
                    v.push_str(&String::from_utf8_lossy(&self.s[run..self.pos]));
                    self.pos += 1;
                    return Ok(v);
                }
                Some(b'<') => return self.fault("Unescaped '<' not allowed in attributes values"),
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
    }

    /// The root element and everything in it. Open elements live on an explicit stack, never
    /// on the call stack, and at most [`MAX_DEPTH`] + 1 of them are open at once: the
    /// input decides how deep a document goes, not how deep we recurse.
    fn root_element(&mut self) -> Result<Element, XmlFault> {
        // Each open element with the offset of its `<` (for "line N" in messages) and the
        // character data not yet attached to it.
        let mut open: Vec<(Element, usize, String)> = Vec::new();
        loop {
            // At the `<` of a start tag.
            if open.len() > MAX_DEPTH {
                return self.fault(format!(
                    "Excessive depth in document: {MAX_DEPTH} use XML_PARSE_HUGE option"
                ));
            }
            let at = self.pos;
            let mut el = Element::default();
            let mut finished = if self.start_tag(&mut el, at)? {
                Some(el)
            } else {
                open.push((el, at, String::new()));
                None
            };
            // Content, until the next start tag or the end of the root element.
            loop {
                if let Some(done) = finished.take() {
                    match open.last_mut() {
                        Some((parent, _, text)) => {
                            if !text.is_empty() {
                                parent.children.push(Node::Text(std::mem::take(text)));
                            }
                            parent.children.push(Node::Element(done));
                        }
                        None => return Ok(done),
                    }
                }
                let (el, el_at, text) = open.last_mut().expect("an element is open");
                match self.peek() {
                    None => {
                        return self.fault(format!(
                            "Premature end of data in tag {} line {}",
                            el.name,
                            self.line_at(*el_at)
                        ))
                    }
                    Some(b'<') => {
                        if !text.is_empty() {
                            el.children.push(Node::Text(std::mem::take(text)));
                        }
                        if self.starts("</") {
                            self.pos += 2;
                            let close = self.name(NameKind::Name)?.unwrap_or_default();
                            self.skip_blanks();
                            if self.peek() != Some(b'>') {
                                return self.fault("expected '>'");
                            }
                            self.pos += 1;
                            if close != el.name {
                                return self.fault(format!(
                                    "Opening and ending tag mismatch: {} line {} and {close}",
                                    el.name,
                                    self.line_at(*el_at)
                                ));
                            }
                            finished = open.pop().map(|(el, _, _)| el);
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
                            break;
                        }
                    }
                    Some(b'&') => self.reference(text)?,
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
        let root = self.root_element()?;
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

/// Parses `xml` as libxml2 does for libvirt's `virXMLParseString`: the tree, or the first
/// fatal error as libvirt 11.3 relays it (`at line LINE: MESSAGE`, the line and a `---^`
/// pointer; 9.0 named the document instead, `(node_device_definition):LINE: MESSAGE`).
pub fn parse(xml: &str) -> Result<Element, String> {
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
        // An error at the end of the input shows the last line that has text (libvirt 11.3
        // steps back over the terminating NUL; 9.0 showed "(null)" there).
        if cur > 0 && cur == s.len() {
            cur -= 1;
        }
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
        if ctx.is_empty() {
            // No line to show (an empty or blank document): libvirt 11.3 gives the message
            // alone, where 9.0 printed "(null)" and a pointer.
            return format!("at line {line}: {}\n", f.msg);
        }
        let context = String::from_utf8_lossy(ctx);
        let mut pointer: String = ctx
            .iter()
            .take(col)
            .map(|&c| if c == b'\t' { '\t' } else { '-' })
            .collect();
        pointer.push('^');
        format!("at line {line}: {}\n{context}\n{pointer}", f.msg)
    })
}
