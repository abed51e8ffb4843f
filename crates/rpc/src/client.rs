//! A small blocking client for libvirt's RPC protocol, for tests, benchmarks and tools.
//! Events and keepalive messages that arrive while waiting for a reply are queued.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use xdr::{Decoder, Xdr};

use crate::error::VirError;
use crate::header::{frame, Header, MessageType, Status, HEADER_LEN, STRING_MAX};

/// A message received from the server.
#[derive(Debug, Clone)]
pub struct Message {
    pub header: Header,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
pub enum CallError {
    Io(io::Error),
    /// The server answered with an error payload.
    Remote(VirError),
    /// The reply could not be decoded.
    Decode,
}

impl From<io::Error> for CallError {
    fn from(e: io::Error) -> Self {
        CallError::Io(e)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Io(e) => write!(f, "I/O error: {e}"),
            CallError::Remote(e) => write!(f, "{}", e.message),
            CallError::Decode => f.write_str("cannot decode reply"),
        }
    }
}

pub struct Client {
    stream: UnixStream,
    prog: u32,
    vers: u32,
    serial: u32,
    pending: VecDeque<Message>,
}

impl Client {
    pub fn connect(path: &Path, prog: u32, vers: u32) -> io::Result<Self> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self {
            stream,
            prog,
            vers,
            serial: 0,
            pending: VecDeque::new(),
        })
    }

    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Sends raw bytes (for malformed-input tests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads the next message from the server, whatever it is.
    pub fn read_message(&mut self) -> io::Result<Message> {
        if let Some(m) = self.pending.pop_front() {
            return Ok(m);
        }
        self.read_wire()
    }

    fn read_wire(&mut self) -> io::Result<Message> {
        self.wait_readable()?;
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len < 4 + HEADER_LEN {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "short frame"));
        }
        let mut buf = vec![0u8; len - 4];
        self.stream.read_exact(&mut buf)?;
        let header = Header::decode(&mut Decoder::new(&buf))
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad header"))?;
        buf.drain(..HEADER_LEN);
        Ok(Message {
            header,
            payload: buf,
        })
    }

    /// Waits in `poll` until the socket has something to read, as libvirt's client does
    /// (`virNetClientIOEventLoop`) before every read, for at most the stream's read timeout.
    /// A thread asleep in `poll` is woken by the reply alone; one asleep in a blocking read
    /// is also woken when the server takes in its request (the kernel signals room to write
    /// on the same queue), which charges the server a cross-CPU wake-up per call that
    /// libvirt's clients never cause.
    fn wait_readable(&self) -> io::Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let timeout = match self.stream.read_timeout()? {
            None => PollTimeout::NONE,
            Some(t) => PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX),
        };
        let mut fds = [PollFd::new(self.stream.as_fd(), PollFlags::POLLIN)];
        loop {
            match poll(&mut fds, timeout) {
                Ok(0) => return Err(io::ErrorKind::WouldBlock.into()),
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Calls a procedure with raw XDR arguments; returns the raw reply payload.
    pub fn call_raw(&mut self, proc_: i32, args: &[u8]) -> Result<Vec<u8>, CallError> {
        let serial = self.serial;
        self.serial = self.serial.wrapping_add(1);
        let h = Header {
            prog: self.prog,
            vers: self.vers,
            proc_,
            mtype: MessageType::CALL,
            serial,
            status: Status::OK,
        };
        self.stream
            .write_all(&frame(&h, |e| e.put_fixed_opaque(args)))?;
        loop {
            let m = self.read_wire()?;
            if m.header.mtype != MessageType::REPLY || m.header.serial != serial {
                self.pending.push_back(m);
                continue;
            }
            if m.header.status == Status::OK {
                return Ok(m.payload);
            }
            return Err(CallError::Remote(
                decode_error(&m.payload).ok_or(CallError::Decode)?,
            ));
        }
    }

    /// Calls a procedure with typed arguments and result.
    pub fn call<A: Xdr, R: Xdr>(&mut self, proc_: i32, args: &A) -> Result<R, CallError> {
        let payload = self.call_raw(proc_, &xdr::to_bytes(args))?;
        R::decode(&mut Decoder::new(&payload).with_string_max(STRING_MAX))
            .map_err(|_| CallError::Decode)
    }
}

/// Decodes a `remote_error` payload.
pub fn decode_error(payload: &[u8]) -> Option<VirError> {
    let d = &mut Decoder::new(payload);
    let code = d.get_i32().ok()?;
    let domain = d.get_i32().ok()?;
    let message = Option::<String>::decode(d).ok()?;
    let _level = d.get_i32().ok()?;
    if d.get_present().ok()? {
        // dom: name, uuid, id
        d.get_string().ok()?;
        d.get_fixed_opaque(16).ok()?;
        d.get_i32().ok()?;
    }
    let str1 = Option::<String>::decode(d).ok()?;
    let str2 = Option::<String>::decode(d).ok()?;
    let str3 = Option::<String>::decode(d).ok()?;
    let int1 = d.get_i32().ok()?;
    let int2 = d.get_i32().ok()?;
    Some(VirError {
        code,
        domain,
        message: message.unwrap_or_default(),
        str1,
        str2,
        str3,
        int1,
        int2,
    })
}
