//! XDR (RFC 4506) encoding and decoding, the subset libvirt's RPC programs use.
//!
//! Hand-written rather than taken from a crate: the XDR crates on crates.io are either
//! unmaintained serde formats or code generators for `.x` files, and libvirt needs two
//! quirks none of them offers — optional-data discriminants where *any* non-zero value
//! means "present" (go-libvirt sends `0x01000000`), and a per-decoder string limit. The
//! format itself is a few dozen lines.
//!
//! This crate knows nothing about libvirt: limits are given by the caller.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Error {
    #[error("unexpected end of XDR data")]
    Truncated,
    #[error("XDR length {0} exceeds the limit {1}")]
    TooLong(u32, u32),
    #[error("XDR string is not valid UTF-8")]
    NotUtf8,
    #[error("unknown XDR union discriminant {0}")]
    BadDiscriminant(i32),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Appends XDR items to a byte buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes after whatever `buf` already holds (e.g. a message header).
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn put_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn put_u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn put_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Variable-length opaque data or a string: length, bytes, zero padding to 4.
    pub fn put_opaque(&mut self, bytes: &[u8]) {
        self.put_u32(bytes.len() as u32);
        self.put_fixed_opaque(bytes);
    }

    /// Fixed-length opaque data: bytes and zero padding, no length word.
    pub fn put_fixed_opaque(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        let pad = (4 - bytes.len() % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
    }

    pub fn put_str(&mut self, s: &str) {
        self.put_opaque(s.as_bytes());
    }

    /// Overwrites four bytes at `at` (used to patch a length word after the fact).
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
}

/// Reads XDR items from a byte slice. Trailing bytes are left alone: libvirt ignores them.
#[derive(Debug)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    string_max: u32,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            string_max: u32::MAX,
        }
    }

    /// Rejects strings and opaque data longer than `max` bytes, as rpcgen's `string<N>` does.
    pub fn with_string_max(mut self, max: u32) -> Self {
        self.string_max = max;
        self
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(Error::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn get_u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn get_i32(&mut self) -> Result<i32> {
        Ok(self.get_u32()? as i32)
    }

    pub fn get_u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub fn get_i64(&mut self) -> Result<i64> {
        Ok(self.get_u64()? as i64)
    }

    pub fn get_fixed_opaque(&mut self, len: usize) -> Result<&'a [u8]> {
        let padded = len.checked_add(3).ok_or(Error::Truncated)? & !3;
        let b = self.take(padded)?;
        Ok(&b[..len])
    }

    pub fn get_opaque(&mut self) -> Result<&'a [u8]> {
        let len = self.get_u32()?;
        if len > self.string_max {
            return Err(Error::TooLong(len, self.string_max));
        }
        self.get_fixed_opaque(len as usize)
    }

    pub fn get_string(&mut self) -> Result<String> {
        let b = self.get_opaque()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| Error::NotUtf8)
    }

    /// Optional data: any non-zero discriminant means present (glibc's `xdr_bool`).
    pub fn get_present(&mut self) -> Result<bool> {
        Ok(self.get_u32()? != 0)
    }

    /// An array count, refused when above `max` or when the rest of the input could not
    /// hold that many items (so a hostile count never allocates).
    pub fn get_count(&mut self, max: u32) -> Result<usize> {
        let n = self.get_u32()?;
        if n > max || n as usize > self.remaining() / 4 {
            return Err(Error::TooLong(n, max));
        }
        Ok(n as usize)
    }
}

/// A value with an XDR representation.
pub trait Xdr: Sized {
    fn encode(&self, e: &mut Encoder);
    fn decode(d: &mut Decoder<'_>) -> Result<Self>;
}

impl Xdr for u32 {
    fn encode(&self, e: &mut Encoder) {
        e.put_u32(*self)
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        d.get_u32()
    }
}

impl Xdr for i32 {
    fn encode(&self, e: &mut Encoder) {
        e.put_i32(*self)
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        d.get_i32()
    }
}

impl Xdr for u64 {
    fn encode(&self, e: &mut Encoder) {
        e.put_u64(*self)
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        d.get_u64()
    }
}

impl Xdr for i64 {
    fn encode(&self, e: &mut Encoder) {
        e.put_i64(*self)
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        d.get_i64()
    }
}

impl Xdr for f64 {
    fn encode(&self, e: &mut Encoder) {
        e.put_u64(self.to_bits())
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(f64::from_bits(d.get_u64()?))
    }
}

impl Xdr for String {
    fn encode(&self, e: &mut Encoder) {
        e.put_str(self)
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        d.get_string()
    }
}

/// `T *` in rpcgen: a discriminant, then the value when present.
impl<T: Xdr> Xdr for Option<T> {
    fn encode(&self, e: &mut Encoder) {
        match self {
            None => e.put_u32(0),
            Some(v) => {
                e.put_u32(1);
                v.encode(e);
            }
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        if d.get_present()? {
            Ok(Some(T::decode(d)?))
        } else {
            Ok(None)
        }
    }
}

/// `T name<>`: a count, then the items. The decode limit is only the input's size; give a
/// protocol limit with [`Decoder::get_count`] where the protocol has one.
impl<T: Xdr> Xdr for Vec<T> {
    fn encode(&self, e: &mut Encoder) {
        e.put_u32(self.len() as u32);
        for v in self {
            v.encode(e);
        }
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let n = d.get_count(u32::MAX)?;
        // The count is only checked against the bytes left (each item takes at least 4),
        // and an item may be far larger in memory than on the wire: grow as items decode.
        let mut v = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            v.push(T::decode(d)?);
        }
        Ok(v)
    }
}

/// `opaque x[16]`, e.g. a UUID.
impl Xdr for [u8; 16] {
    fn encode(&self, e: &mut Encoder) {
        e.put_fixed_opaque(self)
    }
    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let mut a = [0u8; 16];
        a.copy_from_slice(d.get_fixed_opaque(16)?);
        Ok(a)
    }
}

impl Xdr for () {
    fn encode(&self, _: &mut Encoder) {}
    fn decode(_: &mut Decoder<'_>) -> Result<Self> {
        Ok(())
    }
}

/// Declares a struct whose XDR form is its fields in order, as rpcgen lays out a `struct`.
#[macro_export]
macro_rules! xdr_struct {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl $crate::Xdr for $name {
            fn encode(&self, _e: &mut $crate::Encoder) {
                $(self.$f.encode(_e);)*
            }
            fn decode(_d: &mut $crate::Decoder<'_>) -> $crate::Result<Self> {
                Ok(Self { $($f: <$t as $crate::Xdr>::decode(_d)?),* })
            }
        }
    };
}

/// Encodes one value into a fresh buffer.
pub fn to_bytes<T: Xdr>(v: &T) -> Vec<u8> {
    let mut e = Encoder::new();
    v.encode(&mut e);
    e.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    xdr_struct! {
        pub struct Open {
            pub name: Option<String>,
            pub flags: u32,
        }
    }

    #[test]
    fn string_is_length_bytes_and_padding() {
        assert_eq!(
            to_bytes(&"computer".to_string()),
            b"\0\0\0\x08computer".to_vec()
        );
        assert_eq!(to_bytes(&"abcde".to_string()), b"\0\0\0\x05abcde\0\0\0");
        assert_eq!(to_bytes(&String::new()), vec![0, 0, 0, 0]);
    }

    #[test]
    fn open_call_payload_matches_virsh() {
        let bytes = hex("00000001 00000011 6e6f64656465763a2f2f2f73797374656d000000 00000000");
        let open = Open::decode(&mut Decoder::new(&bytes)).unwrap();
        assert_eq!(open.name.as_deref(), Some("nodedev:///system"));
        assert_eq!(open.flags, 0);
        assert_eq!(to_bytes(&open), bytes);
    }

    #[test]
    fn any_nonzero_discriminant_means_present() {
        let bytes = hex("01000000 00000001 61000000 00000000");
        let open = Open::decode(&mut Decoder::new(&bytes)).unwrap();
        assert_eq!(open.name.as_deref(), Some("a"));
    }

    #[test]
    fn truncated_and_oversized_input_is_refused() {
        assert_eq!(
            String::decode(&mut Decoder::new(&hex("00000008 636f6d70"))),
            Err(Error::Truncated)
        );
        let long = hex("00000005 6162636465000000");
        let mut d = Decoder::new(&long).with_string_max(4);
        assert_eq!(String::decode(&mut d), Err(Error::TooLong(5, 4)));
        assert!(Vec::<u32>::decode(&mut Decoder::new(&hex("fffffff0"))).is_err());
    }

    #[test]
    fn decoder_never_panics_on_garbage() {
        let mut seed = 0x1234_5678u32;
        for len in 0..200usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let _ = Open::decode(&mut Decoder::new(&bytes));
            let _ = Vec::<Option<String>>::decode(&mut Decoder::new(&bytes));
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
