//! A client socket as a stream of frames: input buffering, partial reads and libvirt's
//! size limits on the way in, buffered whole messages on the way out.
//!
//! The framing rule itself is [`next_frame`], a pure function kept public so that it can
//! be fuzzed on its own; [`Connection`] owns the buffers around it.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use xdr::Decoder;

use crate::error::VirError;
use crate::header::{frame_into, Header, MessageType, Status, HEADER_LEN, LEN_LEN, MESSAGE_MAX};

/// What a complete frame at the front of the input buffer asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The frame is not complete yet.
    NeedMore,
    /// A complete frame of this many bytes, length word included.
    Frame(usize),
    /// A length word libvirt refuses: the connection is dropped.
    Close,
}

/// Splits the next frame off client input: the framing rules of the connection loop,
/// public so that they can be fuzzed on their own.
pub fn next_frame(buf: &[u8]) -> Step {
    let Some(len) = length_word(buf) else {
        return Step::NeedMore;
    };
    // libvirt drops the connection without a word for lengths that cannot hold a header
    // or that exceed VIR_NET_MESSAGE_MAX.
    if len < LEN_LEN + HEADER_LEN || len - LEN_LEN > MESSAGE_MAX {
        return Step::Close;
    }
    if buf.len() < len {
        Step::NeedMore
    } else {
        Step::Frame(len)
    }
}

fn length_word(buf: &[u8]) -> Option<usize> {
    let word = buf.get(..LEN_LEN)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]) as usize)
}

/// Why a connection stops yielding frames; each ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("message length {0} is outside libvirt's limits")]
    Length(usize),
    #[error("malformed message header: {0}")]
    Header(#[from] xdr::Error),
    #[error("connection closed in the middle of a message")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One message from the client: its decoded header and what follows it.
#[derive(Debug)]
pub struct Frame {
    pub header: Header,
    bytes: Vec<u8>,
    /// Where the payload lies in `bytes`.
    payload_at: std::ops::Range<usize>,
}

impl Frame {
    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.payload_at.clone()]
    }

    /// The arguments of a call, or `None` for a message a server does not answer:
    /// replies, streams and unknown types from a client are dropped silently.
    pub fn call_args(&self) -> Option<&[u8]> {
        let payload = self.payload();
        match self.header.mtype {
            MessageType::CALL => Some(payload),
            // Descriptor passing is never used by these programs; the count is skipped
            // and the call answered as a plain one, as libvirt does for nfds = 0.
            MessageType::CALL_WITH_FDS if payload.len() >= 4 => Some(&payload[4..]),
            _ => None,
        }
    }
}

/// A fresh buffer's size, and what one shrinks back to once a large message is through.
const INITIAL_CAPACITY: usize = 8192;
/// A buffer this large is given back once it is empty: a list of 10,000 names is 300 KiB,
/// which eight idle clients would otherwise each keep.
const SHRINK_ABOVE: usize = 64 << 10;
/// The most input buffer a connection grows by ahead of the bytes that fill it.
const RESERVE_STEP: usize = 64 << 10;

/// A client socket read as frames and written as whole messages.
///
/// Reading is cancel-safe: bytes read stay buffered when [`Connection::read_frame`] is
/// dropped in a `select!`, so the loop can wait for input, events and timers at once.
/// Output is only buffered by the `queue_*` methods and goes out on [`Connection::flush`],
/// so several replies can share one write and a message is always written whole.
pub struct Connection<S = crate::socket::ClientSocket> {
    stream: S,
    input: Vec<u8>,
    /// Bytes at the front of `input` already handed out as frames.
    consumed: usize,
    output: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            input: Vec::with_capacity(INITIAL_CAPACITY),
            consumed: 0,
            output: Vec::with_capacity(INITIAL_CAPACITY),
        }
    }

    /// The next frame, reading as needed; `None` when the client closed its end between
    /// two frames.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if let Some(frame) = self.buffered_frame()? {
                return Ok(Some(frame));
            }
            self.make_room();
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return if self.input.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
        }
    }

    /// Resolves when the client hangs up (or its socket fails), reading ahead into the
    /// buffer meanwhile; once a whole frame is buffered it stops reading and never
    /// resolves, so a client cannot make the daemon buffer without bound. Cancel-safe.
    pub async fn hung_up(&mut self) {
        loop {
            if !matches!(next_frame(&self.input[self.consumed..]), Step::NeedMore) {
                return std::future::pending().await;
            }
            self.make_room();
            match self.stream.read_buf(&mut self.input).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// The next frame if it is already buffered, without reading.
    pub fn buffered_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let rest = &self.input[self.consumed..];
        let len = match next_frame(rest) {
            Step::NeedMore => return Ok(None),
            Step::Close => return Err(FrameError::Length(length_word(rest).unwrap_or(0))),
            Step::Frame(len) => len,
        };
        let header = Header::decode(&mut Decoder::new(&rest[LEN_LEN..len]))?;
        let start = self.consumed;
        self.consumed += len;
        let frame = if self.consumed == self.input.len() && len > INITIAL_CAPACITY {
            // A large message that is all the buffer holds leaves with the buffer rather
            // than being copied out of it.
            self.consumed = 0;
            let bytes = std::mem::replace(&mut self.input, Vec::with_capacity(INITIAL_CAPACITY));
            Frame {
                header,
                bytes,
                payload_at: start + LEN_LEN + HEADER_LEN..start + len,
            }
        } else {
            let bytes = self.input[start + LEN_LEN + HEADER_LEN..start + len].to_vec();
            Frame {
                header,
                payload_at: 0..bytes.len(),
                bytes,
            }
        };
        Ok(Some(frame))
    }

    /// Drops what was handed out and makes room for the rest of a large frame, but only
    /// as its bytes arrive: a length word alone must not make us reserve 32 MiB for every
    /// connection.
    fn make_room(&mut self) {
        if self.consumed > 0 {
            self.input.drain(..self.consumed);
            self.consumed = 0;
            if self.input.is_empty() && self.input.capacity() > SHRINK_ABOVE {
                self.input.shrink_to(INITIAL_CAPACITY);
            }
        }
        if let Some(len) = length_word(&self.input) {
            let missing = len.saturating_sub(self.input.len());
            let step = missing.min(self.input.len().max(RESERVE_STEP));
            self.input.reserve(step);
        }
    }

    /// Whether anything is queued for the client.
    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Queues a message that is already framed (an event).
    pub fn queue(&mut self, message: &[u8]) {
        self.output.extend_from_slice(message);
    }

    /// Queues a message that is a header alone (keepalive).
    pub fn queue_message(&mut self, header: &Header) {
        frame_into(&mut self.output, header, |_| {});
    }

    /// Queues the reply to `call`; false when an error could not be encoded (libvirt then
    /// closes the connection).
    pub fn queue_reply(&mut self, call: &Header, result: Result<Vec<u8>, VirError>) -> bool {
        let result = match result {
            Ok(p) if p.len() + HEADER_LEN > MESSAGE_MAX => {
                Err(VirError::rpc("Unable to encode message payload"))
            }
            r => r,
        };
        match result {
            Ok(payload) => frame_into(&mut self.output, &call.reply(Status::OK), |e| {
                e.put_fixed_opaque(&payload);
            }),
            Err(err) => {
                if !err.fits() {
                    return false;
                }
                frame_into(&mut self.output, &call.reply(Status::ERROR), |e| {
                    err.encode(e)
                });
            }
        }
        true
    }

    /// Writes everything queued. This waits as long as the client does not read; callers
    /// race it against whatever must end the connection anyway.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        self.stream.write_all(&self.output).await?;
        self.output.clear();
        if self.output.capacity() > SHRINK_ABOVE {
            self.output.shrink_to(INITIAL_CAPACITY);
        }
        Ok(())
    }

    /// Closes the connection, as libvirt does: no half-close first. A client polling
    /// between a half-close and the close would see the end of input without a hang-up,
    /// which libvirt's client reports as "Disconnected ... due to I/O error" instead of
    /// "due to end of file".
    pub fn close(self) {
        drop(self.stream);
    }
}

#[cfg(test)]
mod tests;
