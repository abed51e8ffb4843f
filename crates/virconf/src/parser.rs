//! libvirt's configuration syntax, accepted exactly as `virConfParse()`
//! (src/util/virconf.c, libvirt 9.0) accepts it, with the default flags
//! (neither the VMX nor the LXC dialect).
//!
//! The grammar, as virconf.c implements it:
//!
//! ```text
//! file      := (statement separator)*
//! statement := blanks-and-newlines ( '#' comment | name blanks '=' blanks value blanks ['#' comment] )
//! separator := blanks ( end | newline blanks-and-newlines | ';' blanks-and-newlines )
//! name      := ALPHA (ALNUM | '_')*
//! value     := '"' [^"\r\n]* '"' | '\'' [^'\r\n]* '\'' | '"""' any* '"""'
//!            | ['-' | '+'] DIGIT+
//!            | '[' blanks-and-newlines [value (blanks-and-newlines ',' blanks-and-newlines value)* [',']] blanks-and-newlines ']'
//! ```
//!
//! Quirks reproduced on purpose (each one verified against libvirtd 9.0):
//! - a statement must follow any leading whitespace, so a file holding only
//!   blanks or newlines is `expecting a name` (an empty file is fine);
//! - comments are not allowed inside a list;
//! - the first of several entries with the same name wins;
//! - a number without `-` is an unsigned value (`VIR_CONF_ULLONG`), even
//!   with a leading `+`; digits accumulate with two's-complement wrap-around
//!   as the C code does in practice;
//! - a string stops at an embedded NUL byte (`g_strndup`);
//! - `"""` opens a triple-quoted string only when at least seven bytes remain.
//!
//! Unlike libvirt, nested lists are parsed without recursion, so no input
//! can exhaust the stack.

use std::io::Read;
use std::path::Path;

use crate::error::{ConfError, SyntaxError};

/// `MAX_CONFIG_FILE_SIZE` in virconf.c: 10 MiB, a sanity limit.
pub const MAX_CONFIG_FILE_SIZE: u64 = 10 * 1024 * 1024;

/// One value, typed as virconf.c types it (`virConfType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `VIR_CONF_LLONG`: a number written with a leading `-`.
    LLong(i64),
    /// `VIR_CONF_ULLONG`: a number written without a leading `-`. Holds the
    /// bits libvirt keeps in its `long long`.
    ULLong(u64),
    /// `VIR_CONF_STRING`.
    String(String),
    /// `VIR_CONF_LIST`.
    List(Vec<Value>),
}

impl Value {
    /// libvirt's name for the type (`virConfTypeToString`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::LLong(_) => "long",
            Value::ULLong(_) => "unsigned long",
            Value::String(_) => "string",
            Value::List(_) => "list",
        }
    }

    /// The `long long` libvirt stores for a number.
    fn as_c_long_long(&self) -> Option<i64> {
        match self {
            Value::LLong(l) => Some(*l),
            Value::ULLong(u) => Some(*u as i64),
            _ => None,
        }
    }
}

impl Drop for Value {
    /// Nested lists are freed without recursion, so dropping a value from
    /// hostile input (a million `[`) cannot overflow the stack. (`Clone`,
    /// `Debug` and `PartialEq` still recurse; the daemon never uses them on
    /// nested lists.)
    fn drop(&mut self) {
        let Value::List(items) = self else {
            return;
        };
        if !items.iter().any(|v| matches!(v, Value::List(_))) {
            return;
        }
        let mut pending = std::mem::take(items);
        while let Some(mut v) = pending.pop() {
            if let Value::List(inner) = &mut v {
                pending.append(inner);
            }
        }
    }
}

/// A named entry, with the comment that followed it on its line, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub name: String,
    /// Its value.
    pub value: Value,
    /// Text after `#` on the same line, without the `#`.
    pub comment: Option<String>,
}

/// A parsed configuration file (`virConf`).
///
/// Keys the caller never asks for are simply ignored, as in libvirt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conf {
    filename: String,
    entries: Vec<Entry>,
}

impl Conf {
    /// Parses `content`, naming it `filename` in error messages
    /// (`virConfParse`).
    pub fn parse(content: &[u8], filename: &str) -> Result<Conf, ConfError> {
        let mut p = Parser {
            filename,
            s: content,
            pos: 0,
            line: 1,
            entries: Vec::new(),
        };
        while p.pos < p.s.len() {
            p.statement()?;
            p.separator()?;
        }
        Ok(Conf {
            filename: filename.to_string(),
            entries: p.entries,
        })
    }

    /// [`Conf::parse`] for text.
    pub fn parse_str(content: &str, filename: &str) -> Result<Conf, ConfError> {
        Conf::parse(content.as_bytes(), filename)
    }

    /// Reads and parses a file (`virConfReadFile`), with libvirt's errors
    /// for a file that cannot be opened or read or is over
    /// [`MAX_CONFIG_FILE_SIZE`].
    pub fn read_file(path: &Path) -> Result<Conf, ConfError> {
        let name = path.to_string_lossy().into_owned();
        let file = std::fs::File::open(path)
            .map_err(|e| ConfError::system(format!("Failed to open file '{name}'"), &e))?;
        let mut content = Vec::new();
        let read_err =
            |e: &std::io::Error| ConfError::system(format!("Failed to read file '{name}'"), e);
        file.take(MAX_CONFIG_FILE_SIZE + 1)
            .read_to_end(&mut content)
            .map_err(|e| read_err(&e))?;
        if content.len() as u64 > MAX_CONFIG_FILE_SIZE {
            // virFileReadLimFD reports an oversized file as EOVERFLOW.
            return Err(read_err(&std::io::Error::from_raw_os_error(EOVERFLOW)));
        }
        Conf::parse(&content, &name)
    }

    /// The name used in error messages.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// Every named entry in file order, duplicates included.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The value of `key` (`virConfGetValue`): the first entry of that name.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|e| e.name == key)
            .map(|e| &e.value)
    }

    fn expected(&self, what: &str, key: &str) -> ConfError {
        ConfError::Internal(format!(
            "{}: expected {what} for '{key}' parameter",
            self.filename
        ))
    }

    fn out_of_range(&self, key: &str, range: &str) -> ConfError {
        ConfError::Internal(format!(
            "{}: value for '{key}' parameter must be in range {range}",
            self.filename
        ))
    }

    /// `virConfGetValueString`: `Ok(None)` when absent.
    pub fn get_string(&self, key: &str) -> Result<Option<String>, ConfError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.expected("a string", key)),
        }
    }

    /// `virConfGetValueStringList`; with `compat_string` a lone string is a
    /// one-element list.
    pub fn get_string_list(
        &self,
        key: &str,
        compat_string: bool,
    ) -> Result<Option<Vec<String>>, ConfError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::List(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    // libvirt raises this one as VIR_ERR_CONF_SYNTAX.
                    _ => Err(ConfError::SyntaxDetail(format!(
                        "{}: expected a string list for '{key}' parameter",
                        self.filename
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Value::String(s)) if compat_string => Ok(Some(vec![s.clone()])),
            Some(_) if compat_string => Err(self.expected("a string or string list", key)),
            Some(_) => Err(self.expected("a string list", key)),
        }
    }

    /// `virConfGetValueBool`: an unsigned 0 or 1.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, ConfError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::ULLong(u)) if *u <= 1 => Ok(Some(*u == 1)),
            Some(Value::ULLong(_)) => Err(ConfError::Internal(format!(
                "{}: value for '{key}' parameter must be 0 or 1",
                self.filename
            ))),
            Some(_) => Err(self.expected("a bool", key)),
        }
    }

    /// `virConfGetValueInt`. Like libvirt, the range check looks at the
    /// stored `long long`, so a huge unsigned value that wrapped negative
    /// passes.
    pub fn get_int(&self, key: &str) -> Result<Option<i32>, ConfError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let l = v
            .as_c_long_long()
            .ok_or_else(|| self.expected("a signed integer", key))?;
        i32::try_from(l)
            .map(Some)
            .map_err(|_| self.out_of_range(key, &format!("{}:{}", i32::MIN, i32::MAX)))
    }

    /// `virConfGetValueUInt`: unsigned only, at most `UINT_MAX`.
    pub fn get_uint(&self, key: &str) -> Result<Option<u32>, ConfError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::ULLong(u)) => u32::try_from(*u)
                .map(Some)
                .map_err(|_| self.out_of_range(key, &format!("0:{}", u32::MAX))),
            Some(_) => Err(self.expected("an unsigned integer", key)),
        }
    }

    /// `virConfGetValueSizeT` on a 64-bit host: unsigned only, no range limit.
    pub fn get_size_t(&self, key: &str) -> Result<Option<u64>, ConfError> {
        self.get_ullong(key)
    }

    /// `virConfGetValueSSizeT` on a 64-bit host.
    pub fn get_ssize_t(&self, key: &str) -> Result<Option<i64>, ConfError> {
        self.get_llong(key)
    }

    /// `virConfGetValueLLong`: a negative number, or an unsigned one up to
    /// `LLONG_MAX`.
    pub fn get_llong(&self, key: &str) -> Result<Option<i64>, ConfError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::LLong(l)) => Ok(Some(*l)),
            Some(Value::ULLong(u)) => i64::try_from(*u)
                .map(Some)
                .map_err(|_| self.out_of_range(key, &format!("{}:{}", i64::MIN, i64::MAX))),
            Some(_) => Err(self.expected("a signed integer", key)),
        }
    }

    /// `virConfGetValueULLong`: unsigned only.
    pub fn get_ullong(&self, key: &str) -> Result<Option<u64>, ConfError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::ULLong(u)) => Ok(Some(*u)),
            Some(_) => Err(self.expected("an unsigned integer", key)),
        }
    }
}

/// Linux's EOVERFLOW ("Value too large for defined data type").
const EOVERFLOW: i32 = 75;

struct Parser<'a> {
    filename: &'a str,
    s: &'a [u8],
    pos: usize,
    line: u32,
    entries: Vec<Entry>,
}

fn is_eol(c: u8) -> bool {
    c == b'\n' || c == b'\r'
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// `g_strndup`: the copy stops at the first NUL.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Parser<'_> {
    /// The current byte; the C parser reads the buffer's NUL terminator at
    /// the end, so past the end this is 0.
    fn cur(&self) -> u8 {
        self.s.get(self.pos).copied().unwrap_or(0)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn next(&mut self) {
        if !self.at_end() {
            self.pos += 1;
        }
    }

    fn skip_blanks(&mut self) {
        while !self.at_end() && is_blank(self.cur()) {
            self.pos += 1;
        }
    }

    fn skip_blanks_and_eol(&mut self) {
        while !self.at_end() && (is_blank(self.cur()) || is_eol(self.cur())) {
            if self.cur() == b'\n' {
                self.line = self.line.saturating_add(1);
            }
            self.pos += 1;
        }
    }

    fn starts_with_triple_quote(&self) -> bool {
        self.s.get(self.pos..self.pos + 3) == Some(b"\"\"\"".as_slice())
    }

    fn err(&self, kind: SyntaxError) -> ConfError {
        ConfError::Syntax {
            file: self.filename.to_string(),
            line: self.line,
            kind,
        }
    }

    fn rest_of_line(&mut self) -> String {
        let base = self.pos;
        while !self.at_end() && !is_eol(self.cur()) {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.s[base..self.pos]).into_owned()
    }

    fn statement(&mut self) -> Result<(), ConfError> {
        self.skip_blanks_and_eol();
        if self.cur() == b'#' {
            // A standalone comment; virconf keeps it only for rewriting files.
            self.next();
            self.rest_of_line();
            return Ok(());
        }
        let name = self.name()?;
        self.skip_blanks();
        if self.cur() != b'=' {
            return Err(self.err(SyntaxError::ExpectingAssignment));
        }
        self.next();
        self.skip_blanks();
        let value = self.value()?;
        self.skip_blanks();
        let comment = if self.cur() == b'#' {
            self.next();
            Some(self.rest_of_line())
        } else {
            None
        };
        self.entries.push(Entry {
            name,
            value,
            comment,
        });
        Ok(())
    }

    fn separator(&mut self) -> Result<(), ConfError> {
        self.skip_blanks();
        if self.at_end() {
            return Ok(());
        }
        if is_eol(self.cur()) {
            self.skip_blanks_and_eol();
        } else if self.cur() == b';' {
            self.next();
            self.skip_blanks_and_eol();
        } else {
            return Err(self.err(SyntaxError::ExpectingSeparator));
        }
        Ok(())
    }

    fn name(&mut self) -> Result<String, ConfError> {
        self.skip_blanks();
        let base = self.pos;
        if !self.cur().is_ascii_alphabetic() {
            return Err(self.err(SyntaxError::ExpectingName));
        }
        while !self.at_end() && (self.cur().is_ascii_alphanumeric() || self.cur() == b'_') {
            self.pos += 1;
        }
        Ok(String::from_utf8_lossy(&self.s[base..self.pos]).into_owned())
    }

    /// `virConfParseValue`, with the recursion into list items replaced by
    /// an explicit stack of the lists still open.
    fn value(&mut self) -> Result<Value, ConfError> {
        let mut open: Vec<Vec<Value>> = Vec::new();
        'item: loop {
            self.skip_blanks();
            if self.at_end() {
                return Err(self.err(SyntaxError::ExpectingValue));
            }
            let mut done = match self.cur() {
                b'"' | b'\'' => Value::String(self.string()?),
                b'[' => {
                    self.next();
                    self.skip_blanks_and_eol();
                    if !self.at_end() && self.cur() != b']' {
                        open.push(Vec::new());
                        continue 'item;
                    }
                    if self.cur() != b']' {
                        return Err(self.err(SyntaxError::ListNotClosed));
                    }
                    self.next();
                    Value::List(Vec::new())
                }
                c if c.is_ascii_digit() || c == b'-' || c == b'+' => self.number()?,
                _ => return Err(self.err(SyntaxError::ExpectingValue)),
            };
            // Hand the finished value to the innermost open list, closing
            // lists for as long as a `]` follows.
            loop {
                let Some(items) = open.last_mut() else {
                    return Ok(done);
                };
                items.push(done);
                self.skip_blanks_and_eol();
                if !self.at_end() && self.cur() != b']' {
                    if self.cur() != b',' {
                        return Err(self.err(SyntaxError::ExpectingListSeparator));
                    }
                    self.next();
                    self.skip_blanks_and_eol();
                    if self.cur() != b']' {
                        continue 'item;
                    }
                }
                if self.cur() != b']' {
                    return Err(self.err(SyntaxError::ListNotClosed));
                }
                self.next();
                done = Value::List(open.pop().unwrap_or_default());
            }
        }
    }

    fn number(&mut self) -> Result<Value, ConfError> {
        let neg = self.cur() == b'-';
        if neg || self.cur() == b'+' {
            self.next();
        }
        if self.at_end() || !self.cur().is_ascii_digit() {
            return Err(self.err(SyntaxError::UnterminatedNumber));
        }
        let mut l: i64 = 0;
        while !self.at_end() && self.cur().is_ascii_digit() {
            l = l
                .wrapping_mul(10)
                .wrapping_add(i64::from(self.cur() - b'0'));
            self.pos += 1;
        }
        Ok(if neg {
            Value::LLong(l.wrapping_neg())
        } else {
            Value::ULLong(l as u64)
        })
    }

    /// `virConfParseString`; called on a `"` or `'`.
    fn string(&mut self) -> Result<String, ConfError> {
        let quote = self.cur();
        if quote == b'"' && self.pos + 6 < self.s.len() && self.starts_with_triple_quote() {
            self.pos += 3;
            let base = self.pos;
            while self.pos + 2 < self.s.len() && !self.starts_with_triple_quote() {
                if self.cur() == b'\n' {
                    self.line = self.line.saturating_add(1);
                }
                self.next();
            }
            if !self.starts_with_triple_quote() {
                return Err(self.err(SyntaxError::UnterminatedString));
            }
            let s = c_string(&self.s[base..self.pos]);
            self.pos += 3;
            return Ok(s);
        }
        self.next();
        let base = self.pos;
        while !self.at_end() && self.cur() != quote && !is_eol(self.cur()) {
            self.pos += 1;
        }
        if self.cur() != quote {
            return Err(self.err(SyntaxError::UnterminatedString));
        }
        let s = c_string(&self.s[base..self.pos]);
        self.next();
        Ok(s)
    }
}

#[cfg(test)]
mod tests;
