//! The 24-byte message header that follows the length word (virnetprotocol.x).

use xdr::{Decoder, Encoder};

/// Largest `length - 4` libvirt accepts: VIR_NET_MESSAGE_MAX.
pub const MESSAGE_MAX: usize = 33_554_432;
/// VIR_NET_MESSAGE_HEADER_MAX.
pub const HEADER_LEN: usize = 24;
/// The length word, which counts itself.
pub const LEN_LEN: usize = 4;
/// VIR_NET_MESSAGE_STRING_MAX: the limit of every string in libvirt's programs.
pub const STRING_MAX: u32 = 4_194_304;

/// KEEPALIVE_PROGRAM ("keep") and its procedures.
pub const KEEPALIVE_PROGRAM: u32 = 0x6b65_6570;
pub const KEEPALIVE_VERSION: u32 = 1;
pub const KEEPALIVE_PING: i32 = 1;
pub const KEEPALIVE_PONG: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageType(pub i32);

impl MessageType {
    pub const CALL: Self = Self(0);
    pub const REPLY: Self = Self(1);
    pub const MESSAGE: Self = Self(2);
    pub const STREAM: Self = Self(3);
    pub const CALL_WITH_FDS: Self = Self(4);
    pub const REPLY_WITH_FDS: Self = Self(5);
    pub const STREAM_HOLE: Self = Self(6);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub i32);

impl Status {
    pub const OK: Self = Self(0);
    pub const ERROR: Self = Self(1);
    pub const CONTINUE: Self = Self(2);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub prog: u32,
    pub vers: u32,
    pub proc_: i32,
    pub mtype: MessageType,
    pub serial: u32,
    pub status: Status,
}

impl Header {
    pub fn decode(d: &mut Decoder<'_>) -> xdr::Result<Self> {
        Ok(Self {
            prog: d.get_u32()?,
            vers: d.get_u32()?,
            proc_: d.get_i32()?,
            mtype: MessageType(d.get_i32()?),
            serial: d.get_u32()?,
            status: Status(d.get_i32()?),
        })
    }

    pub fn encode(&self, e: &mut Encoder) {
        e.put_u32(self.prog);
        e.put_u32(self.vers);
        e.put_i32(self.proc_);
        e.put_i32(self.mtype.0);
        e.put_u32(self.serial);
        e.put_i32(self.status.0);
    }

    /// The header of the reply to this call: same program, procedure and serial.
    pub fn reply(&self, status: Status) -> Self {
        Self {
            mtype: MessageType::REPLY,
            status,
            ..*self
        }
    }

    /// A server-to-client MESSAGE (event or keepalive).
    pub fn message(prog: u32, vers: u32, proc_: i32, serial: u32) -> Self {
        Self {
            prog,
            vers,
            proc_,
            mtype: MessageType::MESSAGE,
            serial,
            status: Status::OK,
        }
    }
}

/// Builds one framed message: length word, header, then whatever `body` encodes.
pub fn frame(header: &Header, body: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    frame_into(&mut out, header, body);
    out
}

/// Like [`frame`], appending to `out` (several messages can share one write).
pub fn frame_into(out: &mut Vec<u8>, header: &Header, body: impl FnOnce(&mut Encoder)) {
    let start = out.len();
    let mut e = Encoder::from_vec(std::mem::take(out));
    e.put_u32(0);
    header.encode(&mut e);
    body(&mut e);
    let len = (e.len() - start) as u32;
    e.patch_u32(start, len);
    *out = e.into_inner();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_frame_is_28_bytes() {
        let h = Header::message(KEEPALIVE_PROGRAM, 1, KEEPALIVE_PING, 0);
        let f = frame(&h, |_| {});
        assert_eq!(f.len(), 28);
        assert_eq!(&f[..8], &[0, 0, 0, 0x1c, 0x6b, 0x65, 0x65, 0x70]);
        let h2 = Header::decode(&mut Decoder::new(&f[4..])).unwrap();
        assert_eq!(h2, h);
    }
}
