//! Who a client is (libvirt's `virIdentity`): what its socket says — peer credentials,
//! the process's start time, its security label — or what a trusted client forwarded
//! with CONNECT_SET_IDENTITY. Access control asks polkit about this identity; the admin
//! program's client-info shows it.

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

/// The attributes of an identity, each optional as in libvirt (a forwarded identity
/// holds only what its sender put in it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub user_name: Option<String>,
    pub unix_user_id: Option<u64>,
    pub group_name: Option<String>,
    pub unix_group_id: Option<u64>,
    pub process_id: Option<i64>,
    /// When the process started, in clock ticks since boot (`/proc/PID/stat` field 22):
    /// with the pid, what polkit needs to tell this process from a later one.
    pub process_time: Option<u64>,
    pub sasl_user_name: Option<String>,
    pub x509_dname: Option<String>,
    pub selinux_context: Option<String>,
    pub system_token: Option<String>,
}

/// A connection's identity: made from its socket the first time something asks
/// (`virNetServerClientGetIdentity`: user and group names cost NSS lookups that most
/// clients never need), replaced by CONNECT_SET_IDENTITY. Shared by the connection's
/// session and the server's registry, so the admin program sees a forwarded identity.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    peer: Peer,
    current: Arc<Mutex<Option<Identity>>>,
}

/// What the socket told at accept.
#[derive(Debug, Clone)]
struct Peer {
    uid: u32,
    gid: u32,
    pid: i32,
    security_label: Option<String>,
}

impl ClientIdentity {
    /// The identity of a peer with these credentials and security label.
    pub fn of_socket(uid: u32, gid: u32, pid: i32, security_label: Option<String>) -> Self {
        Self {
            peer: Peer {
                uid,
                gid,
                pid,
                security_label,
            },
            current: Arc::default(),
        }
    }

    /// The identity now: the forwarded one, or the socket's.
    pub fn get(&self) -> Identity {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.get_or_insert_with(|| self.peer.identity()).clone()
    }

    /// CONNECT_SET_IDENTITY: from now on the client is `identity`.
    pub fn set(&self, identity: Identity) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(identity);
    }
}

impl Peer {
    /// `virNetServerClientCreateIdentity` for a local socket.
    fn identity(&self) -> Identity {
        let known = |id: u32| (id != u32::MAX).then_some(id);
        let uid = known(self.uid);
        let gid = known(self.gid);
        let pid = (self.pid >= 0).then_some(self.pid);
        Identity {
            user_name: uid
                .and_then(|u| nix::unistd::User::from_uid(u.into()).ok().flatten())
                .map(|u| u.name),
            unix_user_id: uid.map(u64::from),
            group_name: gid
                .and_then(|g| nix::unistd::Group::from_gid(g.into()).ok().flatten())
                .map(|g| g.name),
            unix_group_id: gid.map(u64::from),
            process_id: pid.map(i64::from),
            process_time: pid.and_then(|p| process_start_time(p).ok()),
            selinux_context: self.security_label.clone(),
            ..Identity::default()
        }
    }
}

/// Why a process's start time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartTimeError {
    #[error("Cannot find start time for pid {0}")]
    Missing(i32),
    #[error("Cannot parse start time {field} for pid {pid}")]
    Unparsable { field: String, pid: i32 },
}

/// When `pid` started, in clock ticks since boot (`/proc/PID/stat` field 22), as libvirt's
/// `virProcessGetStartTime` reads it.
pub fn process_start_time(pid: i32) -> Result<u64, StartTimeError> {
    let missing = || StartTimeError::Missing(pid);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|_| missing())?;
    // The command name (field 2) may hold spaces and parentheses: count after its end.
    let rest = stat.rsplit_once(')').ok_or_else(missing)?.1;
    let field = rest.split_whitespace().nth(19).ok_or_else(missing)?;
    field.parse().map_err(|_| StartTimeError::Unparsable {
        field: field.to_owned(),
        pid,
    })
}

/// The peer's security label (`SO_PEERSEC`, what libselinux's `getpeercon` reads), or
/// `None` where no security module labels sockets (`ENOPROTOOPT`), as libvirt treats it.
pub(crate) fn peer_security_label(socket: &impl AsRawFd) -> Option<String> {
    let mut buf = [0u8; 256];
    let mut len = buf.len() as nix::libc::socklen_t;
    // SAFETY: the buffer and its length are valid for the call; the kernel writes at most
    // `len` bytes and updates `len`. nix has no wrapper for SO_PEERSEC.
    let rc = unsafe {
        nix::libc::getsockopt(
            socket.as_raw_fd(),
            nix::libc::SOL_SOCKET,
            nix::libc::SO_PEERSEC,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    let label = &buf[..(len as usize).min(buf.len())];
    let label = label.split(|&b| b == 0).next().unwrap_or_default();
    (!label.is_empty()).then(|| String::from_utf8_lossy(label).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_of_stat() {
        let me = std::process::id() as i32;
        let t = process_start_time(me).unwrap();
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let after = stat.rsplit_once(") ").unwrap().1;
        assert_eq!(after.split(' ').nth(19).unwrap(), t.to_string());
        assert_eq!(process_start_time(-5), Err(StartTimeError::Missing(-5)));
    }

    #[test]
    fn the_socket_identity_is_made_once_and_a_forwarded_one_replaces_it() {
        let me = std::process::id() as i32;
        let id = ClientIdentity::of_socket(0, 0, me, None);
        let first = id.get();
        assert_eq!(first.user_name.as_deref(), Some("root"));
        assert_eq!(first.unix_user_id, Some(0));
        assert_eq!(first.process_id, Some(me.into()));
        assert!(first.process_time.is_some());
        let shared = id.clone();
        shared.set(Identity {
            unix_user_id: Some(1000),
            ..Identity::default()
        });
        assert_eq!(id.get().unix_user_id, Some(1000));
        assert_eq!(id.get().user_name, None);
        let unknown = ClientIdentity::of_socket(u32::MAX, u32::MAX, -1, None).get();
        assert_eq!(unknown, Identity::default());
    }
}
