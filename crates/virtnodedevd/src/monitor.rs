//! Following the host live: uevents from the kernel, or from udevd once it has processed
//! them, applied to the device set in batches on a thread of their own.
//!
//! When udevd runs, its re-broadcast is used (the udev database is complete by then, as
//! libvirt needs); when it does not (containers, minimal hosts) the kernel's own uevents
//! are used and sysfs is read directly. Which applies is decided per event from udevd's
//! control socket, so udevd starting or stopping later is followed. A receive-queue
//! overflow loses events, so the whole host is then re-read and the differences sent.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, connect, recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned,
    MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, UnixAddr,
};
use nodedev::HostRoot;
use tracing::{debug, info, warn};

use crate::driver::{Change, DeviceState, Driver};
use crate::uevent::{self, Source, Uevent, GROUP_KERNEL, GROUP_UDEV};

/// Receive buffer asked for the netlink socket, as udevd does, so storms of thousands of
/// devices fit while a batch is being applied.
const RCVBUF: usize = 128 << 20;
/// Largest uevent datagram we read (the kernel caps them at UEVENT_BUFFER_SIZE = 2 KiB,
/// udevd's re-broadcast adds its header and database properties).
const MSG_MAX: usize = 16 << 10;
/// How often udevd's presence is re-checked while events arrive.
const UDEVD_CHECK_EVERY: Duration = Duration::from_secs(1);

pub struct Monitor {
    root: HostRoot,
    netlink: Option<OwnedFd>,
    inject: Option<UnixDatagram>,
}

impl Monitor {
    /// Opens the event sources. Call before the first enumeration so that nothing that
    /// happens during it is missed. `inject` (tests only) is a datagram socket that takes
    /// kernel-format uevents instead of the host's.
    ///
    /// A daemon reading a fake root (tests) does not follow the host's uevents: they are
    /// about other devices.
    pub fn open(root: &HostRoot, inject: Option<&Path>) -> io::Result<Monitor> {
        let (netlink, inject) = match inject {
            Some(path) => {
                let _ = std::fs::remove_file(path);
                (None, Some(UnixDatagram::bind(path)?))
            }
            None if root.path() != Path::new("/") => (None, None),
            None => (Some(open_netlink()?), None),
        };
        Ok(Monitor {
            root: root.clone(),
            netlink,
            inject,
        })
    }

    pub fn spawn(self, driver: Arc<Driver>) -> io::Result<Option<JoinHandle<()>>> {
        if self.netlink.is_none() && self.inject.is_none() {
            info!("reading a fake root: not following the host's uevents");
            return Ok(None);
        }
        std::thread::Builder::new()
            .name("uevent-monitor".into())
            .spawn(move || {
                crate::supervise::restarting("the uevent monitor", |restarted| {
                    if restarted {
                        // The batch being applied when it failed is lost.
                        driver.enumerate(true);
                    }
                    self.run(&driver)
                })
            })
            .map(Some)
    }

    /// Whether udevd answers on its control socket. The socket file outlives a udevd
    /// that was killed, so its existence alone proves nothing.
    fn udevd_active(&self) -> bool {
        let path = self.root.run_udev().join("control");
        let Ok(addr) = UnixAddr::new(&path) else {
            return false;
        };
        let Ok(fd) = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        ) else {
            return path.exists();
        };
        match connect(fd.as_raw_fd(), &addr) {
            Ok(()) => true,
            Err(Errno::ECONNREFUSED | Errno::ENOENT | Errno::ENOTDIR) => false,
            Err(_) => path.exists(),
        }
    }

    fn run(&self, driver: &Driver) {
        let mut udevd = self.udevd_active();
        let mut checked = Instant::now();
        if self.inject.is_some() {
            info!("following injected uevents (test mode)");
        } else {
            log_source(udevd);
        }
        let mut buf = vec![0u8; MSG_MAX];
        loop {
            let mut fds = Vec::new();
            if let Some(fd) = &self.netlink {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            if let Some(s) = &self.inject {
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    warn!("uevent monitor stopped: poll failed: {e}");
                    return;
                }
            }
            let mut batch = Vec::new();
            let mut lost = false;
            if let Some(fd) = &self.netlink {
                lost |= drain_netlink(fd, &mut buf, &mut batch);
            }
            if let Some(s) = &self.inject {
                drain_inject(s, &mut buf, &mut batch);
            }
            if self.inject.is_none() {
                if checked.elapsed() >= UDEVD_CHECK_EVERY {
                    checked = Instant::now();
                    let now = self.udevd_active();
                    if now != udevd {
                        udevd = now;
                        log_source(udevd);
                    }
                }
                // With udevd running, its re-broadcast (with the database written) is
                // the one to act on; the kernel's copy would be read too early.
                batch.retain(|e| (e.source == Source::Udev) == udevd);
            }
            if lost {
                warn!("uevents were lost (receive queue overflow); re-reading all devices");
                driver.enumerate(true);
                continue;
            }
            if !batch.is_empty() {
                let root = &self.root;
                driver.apply(|state| {
                    let mut changes = Vec::new();
                    for ev in &batch {
                        handle(root, state, ev, &mut changes);
                    }
                    changes
                });
            }
        }
    }
}

fn log_source(udevd: bool) {
    if udevd {
        info!("udevd is running: following its processed uevents");
    } else {
        info!("udevd is not running: following the kernel's uevents and reading sysfs directly");
    }
}

/// One uevent, as libvirt's udevHandleOneDevice treats it (plus bind/unbind, which change
/// a device's driver).
fn handle(
    root: &HostRoot,
    state: &mut DeviceState,
    ev: &Uevent,
    changes: &mut Vec<(String, Change)>,
) {
    debug!(action = %ev.action, devpath = %ev.devpath, seqnum = ?ev.seqnum, "uevent");
    match ev.action.as_str() {
        "add" | "change" | "bind" | "unbind" => add(root, state, &ev.syspath(), changes),
        "remove" => changes.extend(state.remove_path(&ev.syspath())),
        "move" => {
            if let Some(old) = &ev.devpath_old {
                changes.extend(state.remove_path(&format!("/sys{old}")));
            }
            add(root, state, &ev.syspath(), changes);
        }
        _ => {}
    }
}

fn add(
    root: &HostRoot,
    state: &mut DeviceState,
    syspath: &str,
    changes: &mut Vec<(String, Change)>,
) {
    match nodedev::discover_device(root, syspath, |p| state.name_at(p)) {
        Some(dev) => changes.push(state.add(dev)),
        None => debug!("no node device at {syspath} (unsupported, or gone while read)"),
    }
}

fn open_netlink() -> io::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        SockProtocol::NetlinkKObjectUEvent,
    )?;
    // Beyond rmem_max needs CAP_NET_ADMIN; fall back to what an unprivileged daemon gets.
    if setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF).is_err() {
        let _ = setsockopt(&fd, sockopt::RcvBuf, &RCVBUF);
    }
    setsockopt(&fd, sockopt::PassCred, &true)?;
    bind(
        fd.as_raw_fd(),
        &NetlinkAddr::new(0, GROUP_KERNEL | GROUP_UDEV),
    )?;
    Ok(fd)
}

/// Reads every queued datagram; true when the kernel reported lost messages.
fn drain_netlink(fd: &OwnedFd, buf: &mut [u8], batch: &mut Vec<Uevent>) -> bool {
    let mut lost = false;
    loop {
        let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
        let mut iov = [io::IoSliceMut::new(buf)];
        let (len, groups, uid) = match recvmsg::<NetlinkAddr>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(m) => {
                let uid = m.cmsgs().ok().and_then(|mut c| {
                    c.find_map(|c| match c {
                        ControlMessageOwned::ScmCredentials(cred) => Some(cred.uid()),
                        _ => None,
                    })
                });
                (m.bytes, m.address.map_or(0, |a| a.groups()), uid)
            }
            Err(Errno::EAGAIN) => return lost,
            Err(Errno::ENOBUFS) => {
                lost = true;
                continue;
            }
            Err(Errno::EINTR) => continue,
            Err(e) => {
                warn!("reading uevents failed: {e}");
                return lost;
            }
        };
        // Only the kernel and root (udevd) may speak on these groups; anything else is
        // ignored, as libudev does.
        if groups == 0 || uid != Some(0) {
            continue;
        }
        if let Some(ev) = uevent::parse(&buf[..len]) {
            let expected = if groups & GROUP_UDEV != 0 {
                Source::Udev
            } else {
                Source::Kernel
            };
            if ev.source == expected {
                batch.push(ev);
            }
        }
    }
}

fn drain_inject(s: &UnixDatagram, buf: &mut [u8], batch: &mut Vec<Uevent>) {
    let _ = s.set_nonblocking(true);
    while let Ok(n) = s.recv(buf) {
        if let Some(ev) = uevent::parse(&buf[..n]) {
            batch.push(ev);
        }
    }
}
