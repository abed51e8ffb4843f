//! A client's socket as the connection loop uses it: watched for input only.
//!
//! tokio's `UnixStream` registers every socket for both input and output, edge-triggered.
//! A client that reads a reply frees room in our send buffer, which is an output edge: the
//! daemon, asleep waiting for the next call, is woken for nothing, then again when the call
//! comes. That is two wake-ups (two context switches) per call where one will do, and on
//! a virtual machine a switch costs more than the rest of a small call. Here the socket is
//! registered for input alone; a write goes straight out, and only a write that finds the
//! buffer full (a slow reader, a large reply) watches for room, through a second
//! registration of a duplicate descriptor that lasts until the write is through.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use nix::errno::Errno;
use nix::sys::socket::{send, shutdown, MsgFlags, Shutdown};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// The most one read asks of the kernel: a frame's worth at a time is plenty.
const READ_CHUNK: usize = 64 << 10;

pub struct ClientSocket {
    input: AsyncFd<std::os::unix::net::UnixStream>,
    /// Watching for room to write, while a write waits for it.
    output: Option<AsyncFd<OwnedFd>>,
}

impl ClientSocket {
    /// Takes over an accepted connection (it must not be registered with the runtime).
    pub fn new(stream: std::os::unix::net::UnixStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(Self {
            input: register(stream, Interest::READABLE)?,
            output: None,
        })
    }

    /// Takes over a connection the runtime accepted.
    pub fn from_tokio(stream: tokio::net::UnixStream) -> io::Result<Self> {
        Self::new(stream.into_std()?)
    }
}

/// Registers a descriptor this process owns with the runtime, for `interest` alone.
fn register<T: AsRawFd + Into<OwnedFd>>(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    // SAFETY: `inner` owns its descriptor (it converts into an `OwnedFd`), the `AsyncFd`
    // owns `inner` and only lends it out, so the descriptor stays open and the same for
    // the registration's whole life.
    unsafe { AsyncFd::register_with_interest(inner, interest) }.map_err(|e| e.into_parts().1)
}

impl AsyncRead for ClientSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut ready = ready!(this.input.poll_read_ready(cx))?;
            // Read into the buffer's uninitialized room: zeroing it first, as a safe read
            // must, cost 8 KiB of memset per call.
            // SAFETY: the slice is only handed to `recv`, which writes bytes and never
            // de-initializes any.
            let room = unsafe { buf.unfilled_mut() };
            let want = room.len().min(READ_CHUNK);
            let room = &mut room[..want];
            match ready.try_io(|s| {
                rustix::net::recv(s.get_ref(), &mut *room, rustix::net::RecvFlags::empty())
                    .map(|(got, _)| got.0.len())
                    .map_err(io::Error::from)
            }) {
                Ok(Ok(n)) => {
                    // SAFETY: `recv` initialized the first `n` bytes of the unfilled room.
                    unsafe { buf.assume_init(n) };
                    // A short read emptied the socket. Forgetting the readiness, as
                    // tokio's own streams do, makes the read after the reply wait for the
                    // next call's edge rather than find the socket empty: one system call
                    // less per call under real clients, which are slower than the daemon.
                    // A client quick enough to have sent its next call by then costs an
                    // epoll_wait instead (about 4% of a call in a tight loop).
                    if n > 0 && n < want {
                        ready.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                // Nothing after all: readiness was cleared, wait for the next edge.
                Err(_) => continue,
            }
        }
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            match send(
                this.input.get_ref().as_raw_fd(),
                data,
                MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(n) => {
                    // Through: stop watching for room, so that it wakes no one.
                    this.output = None;
                    return Poll::Ready(Ok(n));
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
            // Full. A registration made now reports room that is already there, so no
            // edge is missed between the refusal and the wait.
            let output = match this.output.take() {
                Some(o) => o,
                None => {
                    let dup = this.input.get_ref().as_fd().try_clone_to_owned()?;
                    register(dup, Interest::WRITABLE)?
                }
            };
            let output = this.output.insert(output);
            let mut ready = ready!(output.poll_write_ready(cx))?;
            ready.clear_ready();
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let fd = self.input.get_ref().as_raw_fd();
        Poll::Ready(shutdown(fd, Shutdown::Write).map_err(io::Error::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_and_writes_including_past_a_full_buffer() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut sock = ClientSocket::new(ours).unwrap();
        let mut peer = tokio::net::UnixStream::from_std({
            theirs.set_nonblocking(true).unwrap();
            theirs
        })
        .unwrap();
        peer.write_all(b"call").await.unwrap();
        let mut got = [0u8; 4];
        sock.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"call");
        // Far more than a socket buffer holds: the write waits for the peer to read.
        let big = vec![7u8; 4 << 20];
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            peer.read_to_end(&mut all).await.unwrap();
            all
        });
        sock.write_all(&big).await.unwrap();
        assert!(
            sock.output.is_none(),
            "still watching for room after the write"
        );
        sock.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap().len(), big.len());
    }

    #[tokio::test]
    async fn a_closed_peer_reads_as_the_end_and_fails_writes() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut sock = ClientSocket::new(ours).unwrap();
        drop(theirs);
        let mut buf = Vec::new();
        assert_eq!(sock.read_to_end(&mut buf).await.unwrap(), 0);
        assert!(sock.write_all(b"reply").await.is_err());
    }
}
