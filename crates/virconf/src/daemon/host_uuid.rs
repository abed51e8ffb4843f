//! The host UUID: `host_uuid` and `host_uuid_source` checked and read as
//! `daemonSetupHostUUID()` does.

use std::path::Path;

use super::DaemonConfig;
use crate::error::ConfError;

/// Where the host UUID comes from (`host_uuid_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostUuidSource {
    /// `"smbios"`, the default: fetched on demand.
    Smbios,
    /// `"machine-id"`: read from /etc/machine-id at startup.
    MachineId,
}

impl DaemonConfig {
    /// `daemonSetupHostUUID()`: the host UUID the daemon runs with, checked as libvirt
    /// checks it before logging is set up. `host_uuid` wins over `host_uuid_source`;
    /// `"machine-id"` reads `machine_id` (`/etc/machine-id`) at start-up; smbios (the
    /// default) is read on demand, so `None`.
    ///
    /// libvirt logs the returned message, then `Can't setup host uuid`, and exits 1:
    ///
    /// ```text
    /// ... error : daemonSetupHostUUID:696 : invalid host UUID: not-a-uuid
    /// ... error : main:924 : Can't setup host uuid
    /// ```
    pub fn setup_host_uuid(&self, machine_id: &Path) -> Result<Option<[u8; 16]>, ConfError> {
        let text = match &self.host_uuid {
            Some(u) => u.clone(),
            None => match self.host_uuid_source()? {
                HostUuidSource::Smbios => return Ok(None),
                HostUuidSource::MachineId => read_machine_id(machine_id).ok_or_else(|| {
                    ConfError::Logged(format!("Can't read {}", machine_id.display()))
                })?,
            },
        };
        match parse_uuid(&text) {
            Some(u) => Ok(Some(u)),
            // libvirt logs machine-id's newline as well (an empty line follows); ours
            // would escape it, so it is left out.
            None => Err(ConfError::Logged(format!(
                "invalid host UUID: {}",
                text.strip_suffix('\n').unwrap_or(&text)
            ))),
        }
    }

    /// Checks `host_uuid_source` as `daemonSetupHostUUID()` does; only
    /// meaningful when `host_uuid` is unset (it takes precedence and the
    /// source is then not looked at). On an unknown source libvirt logs
    /// `invalid UUID source: X`, then `Can't setup host uuid`, and exits 1.
    pub fn host_uuid_source(&self) -> Result<HostUuidSource, ConfError> {
        match self.host_uuid_source.as_deref() {
            None | Some("smbios") => Ok(HostUuidSource::Smbios),
            Some("machine-id") => Ok(HostUuidSource::MachineId),
            Some(other) => Err(ConfError::Logged(format!("invalid UUID source: {other}"))),
        }
    }
}

/// What `virFileReadBufQuiet(path, buf, VIR_UUID_STRING_BUFLEN)` reads: at most 36
/// bytes, as text up to a NUL.
fn read_machine_id(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(UUID_STRING_LEN as u64)
        .read_to_end(&mut buf)
        .ok()?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// `VIR_UUID_STRING_BUFLEN - 1`: the text of a UUID with its dashes.
const UUID_STRING_LEN: usize = 36;

/// `virUUIDParse()` followed by `virUUIDIsValid()`, as `virSetHostUUIDStr()` checks a
/// configured host UUID: 32 hex digits in pairs, with `-` or ` ` allowed anywhere
/// between pairs and blanks around, and not all 16 bytes the same (so the nil UUID is
/// refused).
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    // g_ascii_isspace: no vertical tab.
    let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r');
    let b = s.as_bytes();
    let mut i = b.iter().take_while(|&&c| blank(c)).count();
    let mut uuid = [0u8; 16];
    let mut n = 0;
    while n < uuid.len() {
        match b.get(i)? {
            b'-' | b' ' => i += 1,
            &hi => {
                let hi = (hi as char).to_digit(16)?;
                let lo = (*b.get(i + 1)? as char).to_digit(16)?;
                uuid[n] = (hi * 16 + lo) as u8;
                n += 1;
                i += 2;
            }
        }
    }
    if !b[i..].iter().all(|&c| blank(c)) || uuid.iter().all(|&x| x == uuid[0]) {
        return None;
    }
    Some(uuid)
}
