//! A tiny XML writer with libvirt's `virBuffer` semantics: two-space
//! indentation per level and `virBufferEscapeString` escaping.

/// Escape like `virBufferEscapeString`: `< > & " '` become entities, and the
/// control characters in libvirt's forbidden list are dropped silently.
/// libvirt's list stops at 0x19, so 0x1A..0x1F pass through unchanged.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    fn special(c: char) -> bool {
        matches!(c, '<' | '>' | '&' | '"' | '\'')
            || matches!(c as u32, 0x01..=0x08 | 0x0B | 0x0C | 0x0E..=0x19)
    }
    if !s.chars().any(special) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if special(c) => {}
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Line-oriented buffer with indentation, like libvirt's `virBuffer`.
#[derive(Default)]
pub struct XmlBuf {
    out: String,
    indent: usize,
}

impl XmlBuf {
    pub fn new() -> Self {
        XmlBuf {
            // Most devices' XML fits (an SR-IOV function's is about 800 bytes).
            out: String::with_capacity(1024),
            indent: 0,
        }
    }

    /// Append one already-formatted line (no escaping), followed by `\n`.
    pub fn line(&mut self, s: &str) {
        self.indentation();
        self.out.push_str(s);
        self.out.push('\n');
    }

    /// Append one line formatted in place (no escaping), followed by `\n`: no string of
    /// its own per line, which on a large host is most of what formatting allocates.
    pub fn line_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        use std::fmt::Write;
        self.indentation();
        // Writing into a String cannot fail.
        let _ = self.out.write_fmt(args);
        self.out.push('\n');
    }

    fn indentation(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
    }

    /// `<tag>escaped</tag>` on one line.
    pub fn elem(&mut self, tag: &str, value: &str) {
        let v = escape(value);
        self.line_fmt(format_args!("<{tag}>{v}</{tag}>"));
    }

    /// `<tag>escaped</tag>` when the value is present, like
    /// `virBufferEscapeString` which prints nothing for NULL.
    pub fn opt_elem(&mut self, tag: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.elem(tag, v);
        }
    }

    pub fn open(&mut self, s: &str) {
        self.line(s);
        self.indent += 1;
    }

    /// [`XmlBuf::open`] with the line formatted in place.
    pub fn open_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        self.line_fmt(args);
        self.indent += 1;
    }

    pub fn close(&mut self, s: &str) {
        self.indent = self.indent.saturating_sub(1);
        self.line(s);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_matches_vir_buffer_escape_string() {
        assert_eq!(escape("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
        assert_eq!(escape("x\u{1}y\u{1a}z\tq"), "xy\u{1a}z\tq");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn indentation_is_two_spaces_per_level() {
        let mut b = XmlBuf::new();
        b.open("<a>");
        b.elem("b", "1");
        b.close("</a>");
        assert_eq!(b.finish(), "<a>\n  <b>1</b>\n</a>\n");
    }
}
