//! PCI Vital Product Data: the parser of libvirt 9.0's `virpcivpd.c`
//! (`virPCIVPDParse`), reproduced rule for rule, including what it skips,
//! what it rejects and the running checksum over every byte it reads.

use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::model::{Vpd, VpdCustom, VpdReadOnly, VpdReadWrite};

/// VPD addresses are 15 bits (`PCI_VPD_ADDR_MASK`).
const ADDR_MASK: usize = 0x7fff;
const LARGE_RESOURCE: u8 = 0x80;
const STRING_RESOURCE: u8 = 0x80 | 0x02;
const READ_ONLY_RESOURCE: u8 = 0x80 | 0x10;
const READ_WRITE_RESOURCE: u8 = 0x80 | 0x11;
const END_TAG: u8 = 0x0f;

/// `virPCIVPDResourceFieldValueFormat`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Binary,
    Reserved,
    ReadWrite,
    Unknown,
}

fn upper_or_digit(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

fn is_vendor(k: [u8; 2]) -> bool {
    k[0] == b'V' && upper_or_digit(k[1])
}

fn is_system(k: [u8; 2]) -> bool {
    k[0] == b'Y' && upper_or_digit(k[1]) && k != *b"YA"
}

/// `virPCIVPDResourceGetFieldValueFormat`.
fn field_format(k: [u8; 2]) -> Format {
    if !(upper_or_digit(k[0]) && upper_or_digit(k[1])) {
        return Format::Unknown;
    }
    if is_vendor(k) || is_system(k) {
        return Format::Text;
    }
    match &k {
        b"CP" => Format::Binary,
        b"EC" | b"MN" | b"PN" | b"SN" | b"YA" => Format::Text,
        b"RV" => Format::Reserved,
        b"RW" => Format::ReadWrite,
        _ => Format::Unknown,
    }
}

/// `g_strstrip` over the bytes up to the first NUL.
fn c_string_stripped(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let s = &b[..end];
    let start = s.iter().position(|c| !ws(c)).unwrap_or(s.len());
    let stop = s.iter().rposition(|c| !ws(c)).map_or(start, |i| i + 1);
    &s[start..stop.max(start)]
}

/// `virPCIVPDResourceIsValidTextValue`: printable ASCII only.
fn valid_text(b: &[u8]) -> Option<String> {
    b.iter()
        .all(|c| (0x20..0x7f).contains(c))
        .then(|| String::from_utf8_lossy(b).into_owned())
}

fn upsert(list: &mut Vec<VpdCustom>, index: u8, value: String) {
    match list.iter_mut().find(|c| c.index == index) {
        Some(c) => c.value = value,
        None => list.push(VpdCustom { index, value }),
    }
}

/// Positioned reads (`pread`) that add every byte read to the checksum.
struct Reader<'a> {
    src: &'a dyn Fn(u64, &mut [u8]) -> usize,
    csum: u8,
}

impl Reader<'_> {
    /// `virPCIVPDReadVPDBytes`; `None` on a short read (libvirt fails then).
    fn read(&mut self, pos: usize, count: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; count];
        let n = (self.src)(pos as u64, &mut buf);
        if n != count {
            return None;
        }
        for b in &buf {
            self.csum = self.csum.wrapping_add(*b);
        }
        Some(buf)
    }
}

/// `virPCIVPDParseVPDLargeResourceFields`.
fn parse_fields(r: &mut Reader, res_pos: usize, len: usize, ro: bool, vpd: &mut Vpd) -> bool {
    let end = res_pos + len;
    let mut pos = res_pos;
    let mut has_checksum = false;
    let mut has_rw = false;
    while pos + 3 <= end {
        let Some(h) = r.read(pos, 3) else {
            return false;
        };
        let flen = h[2] as usize;
        pos += 3;
        let key = [h[0], h[1]];
        let fmt = field_format(key);
        if (!ro && fmt == Format::Reserved) || (ro && fmt == Format::ReadWrite) {
            return false;
        }
        let to_read = if fmt == Format::Reserved { 1 } else { flen };
        if end < pos + flen {
            return false;
        }
        let Some(data) = r.read(pos, to_read) else {
            return false;
        };
        pos += flen;
        let value = match fmt {
            Format::Text => match valid_text(c_string_stripped(&data)) {
                Some(v) => Some(v),
                None => continue,
            },
            Format::Reserved => {
                if r.csum != 0 {
                    return false;
                }
                has_checksum = true;
                break;
            }
            Format::ReadWrite => {
                has_rw = true;
                break;
            }
            Format::Unknown => continue,
            // Binary values (CP) are not kept by libvirt.
            Format::Binary => None,
        };
        // The section exists as soon as one known field is seen, even when
        // the field itself is then skipped.
        if ro {
            let sec = vpd.read_only.get_or_insert_with(VpdReadOnly::default);
            let slot = match &key {
                b"EC" => &mut sec.change_level,
                b"MN" => &mut sec.manufacture_id,
                b"PN" => &mut sec.part_number,
                b"SN" => &mut sec.serial_number,
                _ => {
                    if let (true, Some(v)) = (is_vendor(key), value) {
                        upsert(&mut sec.vendor, key[1], v);
                    }
                    continue;
                }
            };
            *slot = value;
        } else {
            let sec = vpd.read_write.get_or_insert_with(VpdReadWrite::default);
            if &key == b"YA" {
                sec.asset_tag = value;
            } else if let Some(v) = value {
                if is_vendor(key) {
                    upsert(&mut sec.vendor, key[1], v);
                } else if is_system(key) {
                    upsert(&mut sec.system, key[1], v);
                }
            }
        }
    }
    let end_reached = pos >= end;
    if ro {
        has_checksum && end_reached
    } else {
        let _ = has_rw;
        end_reached
    }
}

/// `virPCIVPDParse` over a positioned-read source.
fn parse_with(src: &dyn Fn(u64, &mut [u8]) -> usize) -> Option<Vpd> {
    let mut r = Reader { src, csum: 0 };
    let mut vpd = Vpd::default();
    let mut pos = 0usize;
    let mut end_reached = false;
    let mut has_ro = false;
    while pos <= ADDR_MASK {
        let Some(t) = r.read(pos, 1) else { break };
        let mut tag = t[0];
        let len;
        if tag & LARGE_RESOURCE != 0 {
            if pos > ADDR_MASK + 1 - 3 {
                break;
            }
            let Some(h) = r.read(pos + 1, 2) else { break };
            len = h[0] as usize + ((h[1] as usize) << 8);
            pos += 3;
        } else {
            len = (tag & 7) as usize;
            tag >>= 3;
            pos += 1;
        }
        if tag == END_TAG {
            end_reached = true;
            break;
        }
        if len > ADDR_MASK + 1 - pos {
            break;
        }
        let ok = match tag {
            STRING_RESOURCE => match r.read(pos, len) {
                None => false,
                Some(b) => match valid_text(c_string_stripped(&b)) {
                    Some(v) => {
                        vpd.name = Some(v);
                        true
                    }
                    None => false,
                },
            },
            READ_ONLY_RESOURCE => {
                has_ro = true;
                parse_fields(&mut r, pos, len, true, &mut vpd)
            }
            READ_WRITE_RESOURCE => parse_fields(&mut r, pos, len, false, &mut vpd),
            _ => true,
        };
        if !ok {
            return None;
        }
        pos += len;
    }
    (has_ro && end_reached).then_some(vpd)
}

/// Parse a VPD image held in memory (the bytes of a sysfs `vpd` file).
pub fn parse_bytes(b: &[u8]) -> Option<Vpd> {
    parse_with(&|off, buf| {
        let off = off as usize;
        if off >= b.len() {
            return 0;
        }
        let n = buf.len().min(b.len() - off);
        buf[..n].copy_from_slice(&b[off..off + n]);
        n
    })
}

/// `virPCIDeviceHasVPD` + `virPCIDeviceGetVPD`: the `vpd` file must be a
/// regular file; it is read piecewise like libvirt does (reading VPD from
/// real hardware is slow, so only the bytes the parser needs are read).
pub(crate) fn read(path: &Path) -> Option<Vpd> {
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let f = std::fs::File::open(path).ok()?;
    parse_with(&|off, buf| {
        let mut done = 0;
        // pread on a regular file returns what is there; one retry loop
        // only for EINTR.
        loop {
            match f.read_at(&mut buf[done..], off + done as u64) {
                Ok(n) => {
                    done += n;
                    return done;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return usize::MAX,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn large(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&(body.len() as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    fn with_checksum(mut img: Vec<u8>, ro_body: &[u8]) -> Vec<u8> {
        let mut body = ro_body.to_vec();
        body.extend_from_slice(b"RV\x01\x00");
        img.extend(large(0x90, &body));
        let last = img.len() - 1;
        let sum = img[..last].iter().fold(0u8, |a, b| a.wrapping_add(*b));
        img[last] = sum.wrapping_neg();
        img
    }

    #[test]
    fn name_and_read_only_fields_are_parsed_and_trimmed() {
        let mut img = with_checksum(large(0x82, b" Card X "), b"PN\x03 P1SN\x02S9");
        img.push(0x78);
        let v = parse_bytes(&img).unwrap();
        assert_eq!(v.name.as_deref(), Some("Card X"));
        let ro = v.read_only.unwrap();
        assert_eq!(ro.part_number.as_deref(), Some("P1"));
        assert_eq!(ro.serial_number.as_deref(), Some("S9"));
        assert!(v.read_write.is_none());
    }

    #[test]
    fn missing_end_tag_bad_checksum_or_no_vpd_r_reject_the_image() {
        let img = with_checksum(Vec::new(), b"PN\x01A");
        assert!(parse_bytes(&img).is_none());
        let mut bad = with_checksum(Vec::new(), b"PN\x01A");
        let l = bad.len() - 1;
        bad[l] ^= 1;
        bad.push(0x78);
        assert!(parse_bytes(&bad).is_none());
        let mut no_ro = large(0x82, b"X");
        no_ro.push(0x78);
        assert!(parse_bytes(&no_ro).is_none());
    }

    #[test]
    fn rv_not_last_in_vpd_r_rejects_the_image() {
        let mut img = large(0x90, b"RV\x01\x00PN\x01A");
        let sum = img[..6].iter().fold(0u8, |a, b| a.wrapping_add(*b));
        img[6] = sum.wrapping_neg();
        img.push(0x78);
        assert!(parse_bytes(&img).is_none());
    }

    #[test]
    fn invalid_text_values_are_skipped_but_the_image_is_kept() {
        let mut img = with_checksum(Vec::new(), b"PN\x02\x01AV1\x01B");
        img.push(0x78);
        let ro = parse_bytes(&img).unwrap().read_only.unwrap();
        assert_eq!(ro.part_number, None);
        assert_eq!(
            ro.vendor,
            vec![VpdCustom {
                index: b'1',
                value: "B".into()
            }]
        );
    }
}
