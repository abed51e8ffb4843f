//! systemd socket activation (`virSystemdGetActivation`) and readiness notification.
//!
//! With `LISTEN_PID` equal to our pid and `LISTEN_FDS` = n, descriptors 3 … 3+n-1 are
//! listening sockets named by `LISTEN_FDNAMES` (colon-separated; systemd sets each to the
//! socket unit's name unless `FileDescriptorName=` says otherwise). The daemon uses
//! `virtnodedevd.socket`, `virtnodedevd-ro.socket` and `virtnodedevd-admin.socket`
//! instead of binding those paths; a socket not passed is bound from the config as
//! usual, and a passed descriptor with any other name is an error, as in libvirt.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use crate::cli::DAEMON_NAME;

pub struct Activation {
    fds: HashMap<String, Vec<OwnedFd>>,
}

impl Activation {
    /// Reads and clears the LISTEN_* variables; `None` when not socket-activated.
    pub fn from_env() -> Result<Option<Activation>, String> {
        let Some(pid) = std::env::var("LISTEN_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            return Ok(None);
        };
        if pid != std::process::id() {
            return Ok(None);
        }
        let Some(n) = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            return Ok(None);
        };
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        if n == 0 {
            return Ok(None);
        }
        let mut fds: HashMap<String, Vec<OwnedFd>> = HashMap::new();
        let owned: Vec<OwnedFd> = (0..n as i32)
            .map(|i| {
                let fd = 3 + i;
                // Passed descriptors must not leak into anything we start.
                let _ = nix::fcntl::fcntl(
                    fd,
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
                );
                // SAFETY: systemd's protocol hands us descriptors 3.. 3+LISTEN_FDS-1,
                // which nothing else in this process owns.
                unsafe { OwnedFd::from_raw_fd(fd) }
            })
            .collect();
        let names = std::env::var("LISTEN_FDNAMES").map_err(|_| {
            "internal error: Missing LISTEN_FDNAMES env from systemd socket activation".to_owned()
        })?;
        std::env::remove_var("LISTEN_FDNAMES");
        let names: Vec<&str> = names.split(':').collect();
        if names.len() != owned.len() {
            return Err(format!(
                "internal error: Expecting {} FD names but got {}",
                owned.len(),
                names.len()
            ));
        }
        for (name, fd) in names.into_iter().zip(owned) {
            fds.entry(name.to_owned()).or_default().push(fd);
        }
        Ok(Some(Activation { fds }))
    }

    /// Takes the listening socket passed for `unit` (e.g. `virtnodedevd-ro.socket`).
    pub fn claim(&mut self, unit: &str) -> Result<Option<UnixListener>, String> {
        let Some(mut fds) = self.fds.remove(unit) else {
            return Ok(None);
        };
        // A unit may pass several descriptors; ours listen on one path each.
        let fd = fds.remove(0);
        let l = UnixListener::from(fd);
        l.set_nonblocking(true)
            .map_err(|e| format!("socket activation: {unit}: {e}"))?;
        Ok(Some(l))
    }

    /// `virSystemdActivationComplete`.
    pub fn complete(&self) -> Result<(), String> {
        if self.fds.is_empty() {
            Ok(())
        } else {
            Err("internal error: Some activation file descriptors are unclaimed".into())
        }
    }
}

/// The unit names libvirt's units give the three sockets.
pub fn unit_names() -> [String; 3] {
    [
        format!("{DAEMON_NAME}.socket"),
        format!("{DAEMON_NAME}-ro.socket"),
        format!("{DAEMON_NAME}-admin.socket"),
    ]
}

/// Tells systemd (Type=notify) that the daemon is ready; nothing without NOTIFY_SOCKET.
pub fn notify_ready() {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(true, &[sd_notify::NotifyState::Ready]) {
            tracing::warn!("cannot notify systemd: {e}");
        }
    }
}
