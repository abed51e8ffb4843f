//! The socket permission keys, parsed as `daemonSetupNetworking()` parses
//! them.

use super::DaemonConfig;
use crate::error::ConfError;

impl DaemonConfig {
    /// The three socket modes, parsed in libvirt's order (ro, admin, rw)
    /// with [`parse_mode`]. libvirt does this in `daemonSetupNetworking()`,
    /// long after loading; see [`parse_mode`] for how it fails.
    pub fn socket_modes(&self) -> Result<SocketModes, ConfError> {
        Ok(SocketModes {
            ro: parse_mode(&self.unix_sock_ro_perms)?,
            admin: parse_mode(&self.unix_sock_admin_perms)?,
            rw: parse_mode(&self.unix_sock_rw_perms)?,
        })
    }
}

/// Socket permission bits, as `virStrToLong_i(.., 8, ..)` produced them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketModes {
    /// Read-only socket.
    pub ro: i32,
    /// Admin socket.
    pub admin: i32,
    /// Read-write socket.
    pub rw: i32,
}

/// Parses a socket permission string as libvirt does: `strtol(s, .., 8)`
/// that must consume the whole string and fit an `int`. So leading
/// whitespace and a sign are accepted (`" -1"` is -1), trailing text is not.
///
/// libvirt only logs a failure, from `daemonSetupNetworking()` after the
/// pid file and servers exist:
///
/// ```text
/// ... error : daemonSetupNetworking:253 : Failed to parse mode '08'
/// ```
///
/// and the daemon exits with status 6 (`VIR_DAEMON_ERR_NETWORK`).
pub fn parse_mode(s: &str) -> Result<i32, ConfError> {
    parse_octal_int(s).ok_or_else(|| ConfError::Logged(format!("Failed to parse mode '{s}'")))
}

fn parse_octal_int(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let mut i = 0;
    // C isspace() in the C locale.
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    // strtol reports ERANGE past LONG_MAX; any such value fails the int check anyway.
    let mut val: i64 = 0;
    let mut overflow = false;
    while i < b.len() && (b'0'..=b'7').contains(&b[i]) {
        match val
            .checked_mul(8)
            .and_then(|v| v.checked_add(i64::from(b[i] - b'0')))
        {
            Some(v) => val = v,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start || i != b.len() || overflow {
        return None;
    }
    i32::try_from(if neg { -val } else { val }).ok()
}
