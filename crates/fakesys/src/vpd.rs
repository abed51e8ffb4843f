//! PCI Vital Product Data images (the binary sysfs `vpd` file), laid out as
//! the PCI Local Bus spec (I.3) and PCIe (6.28) describe: an identifier
//! string resource (0x82), a read-only VPD-R resource (0x90) ending in the
//! `RV` checksum field, an optional read-write VPD-W resource (0x91) and
//! the small end tag (0x78).

/// A VPD image under construction. Fields are written in the given order.
#[derive(Clone, Debug, Default)]
pub struct VpdSpec {
    /// Identifier string (product name); `None` omits the string resource.
    pub name: Option<Vec<u8>>,
    /// VPD-R fields (keyword, raw value), e.g. `(*b"PN", b"X1".to_vec())`.
    /// `RV` is appended automatically unless `no_checksum` is set.
    pub read_only: Vec<([u8; 2], Vec<u8>)>,
    /// VPD-W fields; `RW` is appended when `rw_space` is non-zero.
    pub read_write: Option<Vec<([u8; 2], Vec<u8>)>>,
    pub rw_space: u8,
    /// Leave out the mandatory `RV` field (an invalid image).
    pub no_checksum: bool,
    /// Corrupt the checksum byte (an invalid image).
    pub bad_checksum: bool,
    /// Leave out the end tag (an invalid image).
    pub no_end: bool,
}

fn large(out: &mut Vec<u8>, tag: u8, data: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&(data.len() as u16).to_le_bytes());
    out.extend_from_slice(data);
}

/// Serialize `spec` into the bytes of a sysfs `vpd` file.
pub fn vpd_image(spec: &VpdSpec) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(n) = &spec.name {
        large(&mut out, 0x82, n);
    }
    // VPD-R: header, fields, then RV whose first data byte makes the sum of
    // every byte from offset 0 up to and including it zero.
    let mut body = Vec::new();
    for (k, v) in &spec.read_only {
        body.extend_from_slice(k);
        body.push(v.len() as u8);
        body.extend_from_slice(v);
    }
    if !spec.no_checksum {
        body.extend_from_slice(b"RV");
        body.push(1);
        body.push(0);
    }
    large(&mut out, 0x90, &body);
    if !spec.no_checksum {
        let last = out.len() - 1;
        let sum = out[..last].iter().fold(0u8, |a, b| a.wrapping_add(*b));
        out[last] = sum.wrapping_neg();
        if spec.bad_checksum {
            out[last] = out[last].wrapping_add(1);
        }
    }
    if let Some(rw) = &spec.read_write {
        let mut body = Vec::new();
        for (k, v) in rw {
            body.extend_from_slice(k);
            body.push(v.len() as u8);
            body.extend_from_slice(v);
        }
        if spec.rw_space > 0 {
            body.extend_from_slice(b"RW");
            body.push(spec.rw_space);
            body.extend(std::iter::repeat_n(0u8, spec.rw_space as usize));
        }
        large(&mut out, 0x91, &body);
    }
    if !spec.no_end {
        out.push(0x78);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_makes_the_bytes_up_to_rv_sum_to_zero() {
        let img = vpd_image(&VpdSpec {
            name: Some(b"Card".to_vec()),
            read_only: vec![(*b"PN", b"X1".to_vec())],
            ..Default::default()
        });
        let rv = img.windows(2).position(|w| w == b"RV").unwrap();
        let sum = img[..=rv + 3].iter().fold(0u8, |a, b| a.wrapping_add(*b));
        assert_eq!(sum, 0);
        assert_eq!(*img.last().unwrap(), 0x78);
    }
}
