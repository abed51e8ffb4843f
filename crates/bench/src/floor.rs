//! The floor: a server that answers the benchmark's calls with replies recorded from a
//! real daemon, so what it costs per call is a Unix-socket round trip plus copying a
//! prepared answer (no parsing beyond the frame length and procedure, no formatting, no
//! allocation per call). The benchmark prints every daemon's cost as a ratio to it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::remote::{proc as proc_, ConnectOpenArgs, ListAllArgs, ListAllRet, NameFlagsArgs};
use protocol::{REMOTE_PROGRAM, REMOTE_VERSION};
use rpc::client::Client;
use rpc::header::{frame, Header, MessageType, Status, HEADER_LEN, LEN_LEN};
use xdr::Decoder;

/// Byte offset of the serial in a framed message (length word, prog, vers, proc, type).
const SERIAL_AT: usize = LEN_LEN + 16;

/// Prepared reply frames (serial left to patch), by procedure and then by the exact
/// argument bytes of the call.
#[derive(Default)]
pub struct Recording {
    replies: HashMap<i32, HashMap<Vec<u8>, Vec<u8>>>,
    /// The connection the replies were recorded on, kept open so that a call no one
    /// recorded (what libvirt.open() asks before the sweep) is asked of the daemon once
    /// and answered from the recording ever after. The benchmark's warm-up makes every
    /// such call before anything is measured.
    learner: Option<Client>,
}

impl Recording {
    fn add(&mut self, proc_: i32, args: Vec<u8>, payload: &[u8]) {
        let h = Header {
            prog: REMOTE_PROGRAM,
            vers: REMOTE_VERSION,
            proc_,
            mtype: MessageType::REPLY,
            serial: 0,
            status: Status::OK,
        };
        let reply = frame(&h, |e| e.put_fixed_opaque(payload));
        self.replies.entry(proc_).or_default().insert(args, reply);
    }

    /// The reply to a call: recorded, or asked of the daemon now and recorded.
    fn reply(&mut self, proc_: i32, args: &[u8]) -> Option<&[u8]> {
        let known = self
            .replies
            .get(&proc_)
            .is_some_and(|r| r.contains_key(args));
        if !known {
            let payload = self.learner.as_mut()?.call_raw(proc_, args).ok()?;
            self.add(proc_, args.to_vec(), &payload);
        }
        self.replies.get(&proc_)?.get(args).map(Vec::as_slice)
    }

    /// How many replies are prepared.
    pub fn count(&self) -> usize {
        self.replies.values().map(HashMap::len).sum()
    }
}

/// Asks the daemon at `source` every call the benchmark's clients make (AUTH_LIST, CONNECT_OPEN,
/// LIST_ALL_NODE_DEVICES, GET_XML_DESC of each listed device) and keeps the replies.
pub fn record(source: &Path) -> Result<Recording, String> {
    let mut c = Client::connect(source, REMOTE_PROGRAM, REMOTE_VERSION)
        .map_err(|e| format!("connect {}: {e}", source.display()))?;
    c.stream()
        .set_read_timeout(Some(Duration::from_secs(600)))
        .map_err(|e| e.to_string())?;
    let mut rec = Recording::default();
    // A client's close is answered here: passed on, it would close the learner too.
    rec.add(proc_::CONNECT_CLOSE, Vec::new(), &[]);
    let mut ask = |c: &mut Client, proc_: i32, args: Vec<u8>| -> Result<Vec<u8>, String> {
        let payload = c
            .call_raw(proc_, &args)
            .map_err(|e| format!("recording procedure {proc_}: {e}"))?;
        rec.add(proc_, args, &payload);
        Ok(payload)
    };
    ask(&mut c, proc_::AUTH_LIST, Vec::new())?;
    let open = ConnectOpenArgs {
        name: Some("nodedev:///system".into()),
        flags: 0,
    };
    ask(&mut c, proc_::CONNECT_OPEN, xdr::to_bytes(&open))?;
    let list = ListAllArgs {
        need_results: 1,
        flags: 0,
    };
    let payload = ask(
        &mut c,
        proc_::CONNECT_LIST_ALL_NODE_DEVICES,
        xdr::to_bytes(&list),
    )?;
    let names: ListAllRet = xdr::Xdr::decode(&mut Decoder::new(&payload))
        .map_err(|e| format!("LIST_ALL reply: {e:?}"))?;
    for d in names.devices {
        let args = NameFlagsArgs {
            name: d.name,
            flags: 0,
        };
        ask(
            &mut c,
            proc_::NODE_DEVICE_GET_XML_DESC,
            xdr::to_bytes(&args),
        )?;
    }
    rec.learner = Some(c);
    Ok(rec)
}

/// Serves `rec` on `socket` until killed, on one thread: epoll (level-triggered) says
/// which connections have something to read; each gets one read, every whole call in
/// its buffer is answered and the answers leave in one blocking write. One thread, so
/// 8 busy clients cost no more context switches than the wake-ups they cause.
pub fn serve(socket: &Path, pid_file: Option<&PathBuf>, mut rec: Recording) -> Result<(), String> {
    let _ = std::fs::remove_file(socket);
    let listener =
        UnixListener::bind(socket).map_err(|e| format!("bind {}: {e}", socket.display()))?;
    if let Some(p) = pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let ep = Epoll::new().map_err(|e| format!("epoll: {e}"))?;
    let lfd = listener.as_raw_fd();
    ep.add(lfd).map_err(|e| format!("epoll: {e}"))?;
    let mut conns: HashMap<RawFd, Conn> = HashMap::new();
    let mut ready = Vec::with_capacity(64);
    loop {
        ep.wait(&mut ready)
            .map_err(|e| format!("epoll_wait: {e}"))?;
        for &fd in &ready {
            if fd == lfd {
                if let Ok((s, _)) = listener.accept() {
                    if ep.add(s.as_raw_fd()).is_ok() {
                        conns.insert(s.as_raw_fd(), Conn::new(s));
                    }
                }
                continue;
            }
            let Some(c) = conns.get_mut(&fd) else {
                continue;
            };
            if !c.pump(&mut rec) {
                // Closing the fd takes it out of the epoll set.
                conns.remove(&fd);
            }
        }
    }
}

/// One client: its socket and what it sent that is not answered yet.
struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    end: usize,
    out: Vec<u8>,
}

impl Conn {
    fn new(stream: UnixStream) -> Conn {
        Conn {
            stream,
            buf: vec![0u8; 64 * 1024],
            end: 0,
            out: Vec::with_capacity(64 * 1024),
        }
    }

    /// One read, then the answers to every whole call; false when the connection is
    /// done (closed, broken, or a call that was not recorded).
    fn pump(&mut self, rec: &mut Recording) -> bool {
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        match self.stream.read(&mut self.buf[self.end..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => self.end += n,
        }
        self.out.clear();
        let mut start = 0;
        while self.end - start >= LEN_LEN {
            let len = u32::from_be_bytes(self.buf[start..start + 4].try_into().unwrap()) as usize;
            if len < LEN_LEN + HEADER_LEN {
                return false;
            }
            if self.end - start < len {
                if len > self.buf.len() {
                    self.buf.resize(len, 0);
                }
                break;
            }
            let msg = &self.buf[start..start + len];
            let proc_ = i32::from_be_bytes(msg[12..16].try_into().unwrap());
            let Some(reply) = rec.reply(proc_, &msg[LEN_LEN + HEADER_LEN..]) else {
                return false;
            };
            let at = self.out.len();
            self.out.extend_from_slice(reply);
            self.out[at + SERIAL_AT..at + SERIAL_AT + 4]
                .copy_from_slice(&msg[SERIAL_AT..SERIAL_AT + 4]);
            start += len;
        }
        if start > 0 {
            self.buf.copy_within(start..self.end, 0);
            self.end -= start;
        }
        self.out.is_empty() || self.stream.write_all(&self.out).is_ok()
    }
}

/// The few epoll calls the floor needs.
struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> std::io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a valid fd is owned from here on.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by epoll_create1 and is owned by nobody else.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn add(&self, fd: RawFd) -> std::io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        let r = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait(&self, ready: &mut Vec<RawFd>) -> std::io::Result<()> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // SAFETY: `evs` has room for the 64 events the kernel may write.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr(), 64, -1) };
        ready.clear();
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return if e.kind() == std::io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        ready.extend(evs[..n as usize].iter().map(|e| e.u64 as RawFd));
        Ok(())
    }
}
