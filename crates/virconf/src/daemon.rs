//! The daemon configuration as libvirt 9.0's `remote_daemon_config.c`
//! reads it for `virtnodedevd`.
//!
//! virtnodedevd is built without `WITH_IP` (only `libvirtd` and
//! `virtproxyd` have it), so the TCP/TLS keys in [`IGNORED_IP_KEYS`] are
//! never looked at: like any unknown key they are ignored even when their
//! value has the wrong type. Debian builds with `WITH_POLKIT` and
//! `WITH_SASL`, which decide the default auth and whether `"sasl"` is a
//! valid auth name.

use std::path::{Path, PathBuf};

use crate::error::ConfError;
use crate::log::{
    check_log_level, parse_log_filters, parse_log_outputs, LogFilter, LogOutput, LogPriority,
};
use crate::parser::Conf;

/// The daemon's name, used for its config file name.
pub const DAEMON_NAME: &str = "virtnodedevd";

/// Keys `daemonConfigLoadOptions` reads for virtnodedevd, in the order it
/// reads them (which decides the error reported when several are bad).
pub const READ_KEYS: &[&str] = &[
    "auth_unix_rw",
    "auth_unix_ro",
    "access_drivers",
    "unix_sock_group",
    "unix_sock_admin_perms",
    "unix_sock_ro_perms",
    "unix_sock_rw_perms",
    "unix_sock_dir",
    "sasl_allowed_username_list",
    "min_workers",
    "max_workers",
    "max_clients",
    "max_queued_clients",
    "max_anonymous_clients",
    "prio_workers",
    "max_client_requests",
    "admin_min_workers",
    "admin_max_workers",
    "admin_max_clients",
    "admin_max_queued_clients",
    "admin_max_client_requests",
    "audit_level",
    "audit_logging",
    "host_uuid",
    "host_uuid_source",
    "log_level",
    "log_filters",
    "log_outputs",
    "keepalive_interval",
    "keepalive_count",
    "admin_keepalive_interval",
    "admin_keepalive_count",
    "ovs_timeout",
];

/// Keys read only under `WITH_IP` (libvirtd, virtproxyd); virtnodedevd
/// ignores them.
pub const IGNORED_IP_KEYS: &[&str] = &[
    "listen_tcp",
    "listen_tls",
    "tls_port",
    "tcp_port",
    "listen_addr",
    "auth_tcp",
    "auth_tls",
    "tls_no_sanity_certificate",
    "tls_no_verify_certificate",
    "key_file",
    "cert_file",
    "ca_file",
    "crl_file",
    "tls_allowed_dn_list",
    "tls_priority",
    "tcp_min_ssf",
];

/// Keys still shown in the shipped file but read by no daemon.
pub const OBSOLETE_KEYS: &[&str] = &["keepalive_required", "admin_keepalive_required"];

/// `VIR_NETDEV_OVS_DEFAULT_TIMEOUT`, seconds.
pub const OVS_DEFAULT_TIMEOUT: u32 = 5;

/// A UNIX socket authentication scheme (`REMOTE_AUTH_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `"none"`
    None,
    /// `"sasl"` (accepted because Debian builds `WITH_SASL`).
    Sasl,
    /// `"polkit"`
    Polkit,
}

impl Auth {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Sasl => "sasl",
            Auth::Polkit => "polkit",
        }
    }
}

/// Where the host UUID comes from (`host_uuid_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostUuidSource {
    /// `"smbios"`, the default: fetched on demand.
    Smbios,
    /// `"machine-id"`: read from /etc/machine-id at startup.
    MachineId,
}

/// Everything `struct daemonConfig` holds in a build without `WITH_IP`.
///
/// Strings and lists that libvirt leaves NULL by default are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// `host_uuid`: overrides `host_uuid_source`.
    pub host_uuid: Option<String>,
    /// `host_uuid_source`: `None` means smbios; see [`DaemonConfig::host_uuid_source`].
    pub host_uuid_source: Option<String>,

    /// `unix_sock_admin_perms`, an octal string; default `"0700"`.
    pub unix_sock_admin_perms: String,
    /// `unix_sock_ro_perms`, an octal string; default `"0777"`.
    pub unix_sock_ro_perms: String,
    /// `unix_sock_rw_perms`, an octal string; `"0777"` when the rw auth is
    /// polkit, else `"0700"`.
    pub unix_sock_rw_perms: String,
    /// `unix_sock_group`: group name for the sockets; `None` leaves root's.
    pub unix_sock_group: Option<String>,
    /// `unix_sock_dir`: `None` means `/run/libvirt` (privileged) or
    /// `$XDG_RUNTIME_DIR/libvirt`.
    pub unix_sock_dir: Option<String>,

    /// `auth_unix_rw`: polkit when privileged, else none.
    pub auth_unix_rw: Auth,
    /// `auth_unix_ro`: polkit when privileged, else none.
    pub auth_unix_ro: Auth,

    /// `access_drivers`: `None` means the `nop` driver.
    pub access_drivers: Option<Vec<String>>,
    /// `sasl_allowed_username_list`.
    pub sasl_allowed_username_list: Option<Vec<String>>,

    /// `min_workers`, default 5. libvirt does not reject
    /// `min_workers > max_workers`: the thread pool lowers min to max.
    pub min_workers: u32,
    /// `max_workers`, default 20; 0 is rejected at load.
    pub max_workers: u32,
    /// `max_clients`, default 5000.
    pub max_clients: u32,
    /// `max_queued_clients` (listen backlog), default 1000.
    pub max_queued_clients: u32,
    /// `max_anonymous_clients`, default 20.
    pub max_anonymous_clients: u32,
    /// `prio_workers`, default 5.
    pub prio_workers: u32,
    /// `max_client_requests`, default 5.
    pub max_client_requests: u32,

    /// `log_level`; 0 (the default) means "not set".
    pub log_level: u32,
    /// `log_filters`.
    pub log_filters: Option<String>,
    /// `log_outputs`.
    pub log_outputs: Option<String>,

    /// `audit_level`, default 1.
    pub audit_level: u32,
    /// `audit_logging`, default false.
    pub audit_logging: bool,

    /// `keepalive_interval`, default 5; -1 disables sending.
    pub keepalive_interval: i32,
    /// `keepalive_count`, default 5.
    pub keepalive_count: u32,

    /// `admin_min_workers`, default 5.
    pub admin_min_workers: u32,
    /// `admin_max_workers`, default 20 (not checked for 0 at load).
    pub admin_max_workers: u32,
    /// `admin_max_clients`, default 5000.
    pub admin_max_clients: u32,
    /// `admin_max_queued_clients`, default 20.
    pub admin_max_queued_clients: u32,
    /// `admin_max_client_requests`, default 5.
    pub admin_max_client_requests: u32,

    /// `admin_keepalive_interval`, default 5.
    pub admin_keepalive_interval: i32,
    /// `admin_keepalive_count`, default 5.
    pub admin_keepalive_count: u32,

    /// `ovs_timeout`, default 5 seconds.
    pub ovs_timeout: u32,
}

impl DaemonConfig {
    /// `daemonConfigNew()`: libvirt's defaults.
    pub fn defaults(privileged: bool) -> DaemonConfig {
        // Only a root daemon defaults to PolicyKit (WITH_POLKIT).
        let auth = if privileged { Auth::Polkit } else { Auth::None };
        DaemonConfig {
            host_uuid: None,
            host_uuid_source: None,
            unix_sock_admin_perms: "0700".into(),
            unix_sock_ro_perms: "0777".into(),
            unix_sock_rw_perms: if auth == Auth::Polkit { "0777" } else { "0700" }.into(),
            unix_sock_group: None,
            unix_sock_dir: None,
            auth_unix_rw: auth,
            auth_unix_ro: auth,
            access_drivers: None,
            sasl_allowed_username_list: None,
            min_workers: 5,
            max_workers: 20,
            max_clients: 5000,
            max_queued_clients: 1000,
            max_anonymous_clients: 20,
            prio_workers: 5,
            max_client_requests: 5,
            log_level: 0,
            log_filters: None,
            log_outputs: None,
            audit_level: 1,
            audit_logging: false,
            keepalive_interval: 5,
            keepalive_count: 5,
            admin_min_workers: 5,
            admin_max_workers: 20,
            admin_max_clients: 5000,
            admin_max_queued_clients: 20,
            admin_max_client_requests: 5,
            admin_keepalive_interval: 5,
            admin_keepalive_count: 5,
            ovs_timeout: OVS_DEFAULT_TIMEOUT,
        }
    }

    /// `daemonConfigFilePath()`: `/etc/libvirt/virtnodedevd.conf` for root,
    /// else `$XDG_CONFIG_HOME/libvirt/virtnodedevd.conf` (glib's
    /// `g_get_user_config_dir()`: `XDG_CONFIG_HOME`, else `$HOME/.config`).
    pub fn default_path(privileged: bool) -> PathBuf {
        if privileged {
            return PathBuf::from(format!("/etc/libvirt/{DAEMON_NAME}.conf"));
        }
        let config_home = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").unwrap_or_default();
                PathBuf::from(home).join(".config")
            });
        config_home
            .join("libvirt")
            .join(format!("{DAEMON_NAME}.conf"))
    }

    /// What the daemon's `main()` does: with `explicit` (`-f PATH`) the
    /// file must be readable; without, [`DaemonConfig::default_path`] is
    /// used and its absence (ENOENT) just means defaults.
    pub fn load(explicit: Option<&Path>, privileged: bool) -> Result<DaemonConfig, ConfError> {
        match explicit {
            Some(path) => DaemonConfig::load_file(path, privileged),
            None => {
                let path = DaemonConfig::default_path(privileged);
                match std::fs::metadata(&path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Ok(DaemonConfig::defaults(privileged))
                    }
                    _ => DaemonConfig::load_file(&path, privileged),
                }
            }
        }
    }

    /// Reads `path` over the defaults (`daemonConfigLoadFile`).
    pub fn load_file(path: &Path, privileged: bool) -> Result<DaemonConfig, ConfError> {
        let conf = Conf::read_file(path)?;
        DaemonConfig::from_conf(&conf, privileged)
    }

    /// Parses `text` over the defaults, naming it `name` in errors.
    pub fn load_str(text: &str, name: &str, privileged: bool) -> Result<DaemonConfig, ConfError> {
        let conf = Conf::parse_str(text, name)?;
        DaemonConfig::from_conf(&conf, privileged)
    }

    /// `daemonConfigLoadOptions()` over the defaults.
    pub fn from_conf(conf: &Conf, privileged: bool) -> Result<DaemonConfig, ConfError> {
        let mut d = DaemonConfig::defaults(privileged);
        d.apply(conf)?;
        Ok(d)
    }

    fn apply(&mut self, conf: &Conf) -> Result<(), ConfError> {
        fn set<T>(field: &mut T, v: Option<T>) {
            if let Some(v) = v {
                *field = v;
            }
        }
        fn set_opt<T>(field: &mut Option<T>, v: Option<T>) {
            if v.is_some() {
                *field = v;
            }
        }

        set(&mut self.auth_unix_rw, get_auth(conf, "auth_unix_rw")?);
        // Wide-open rw socket when polkit guards it; this happens before
        // unix_sock_rw_perms is read so an explicit value still wins, and
        // it never narrows the default back (a root daemon set to "none"
        // keeps "0777" unless the perms are set too).
        if self.auth_unix_rw == Auth::Polkit {
            self.unix_sock_rw_perms = "0777".into();
        }
        set(&mut self.auth_unix_ro, get_auth(conf, "auth_unix_ro")?);

        set_opt(
            &mut self.access_drivers,
            conf.get_string_list("access_drivers", false)?,
        );

        set_opt(
            &mut self.unix_sock_group,
            conf.get_string("unix_sock_group")?,
        );
        set(
            &mut self.unix_sock_admin_perms,
            conf.get_string("unix_sock_admin_perms")?,
        );
        set(
            &mut self.unix_sock_ro_perms,
            conf.get_string("unix_sock_ro_perms")?,
        );
        set(
            &mut self.unix_sock_rw_perms,
            conf.get_string("unix_sock_rw_perms")?,
        );
        set_opt(&mut self.unix_sock_dir, conf.get_string("unix_sock_dir")?);

        set_opt(
            &mut self.sasl_allowed_username_list,
            conf.get_string_list("sasl_allowed_username_list", false)?,
        );

        set(&mut self.min_workers, conf.get_uint("min_workers")?);
        set(&mut self.max_workers, conf.get_uint("max_workers")?);
        if self.max_workers < 1 {
            return Err(ConfError::Internal(
                "'max_workers' must be greater than 0".into(),
            ));
        }
        set(&mut self.max_clients, conf.get_uint("max_clients")?);
        set(
            &mut self.max_queued_clients,
            conf.get_uint("max_queued_clients")?,
        );
        set(
            &mut self.max_anonymous_clients,
            conf.get_uint("max_anonymous_clients")?,
        );
        set(&mut self.prio_workers, conf.get_uint("prio_workers")?);
        set(
            &mut self.max_client_requests,
            conf.get_uint("max_client_requests")?,
        );

        set(
            &mut self.admin_min_workers,
            conf.get_uint("admin_min_workers")?,
        );
        set(
            &mut self.admin_max_workers,
            conf.get_uint("admin_max_workers")?,
        );
        set(
            &mut self.admin_max_clients,
            conf.get_uint("admin_max_clients")?,
        );
        set(
            &mut self.admin_max_queued_clients,
            conf.get_uint("admin_max_queued_clients")?,
        );
        set(
            &mut self.admin_max_client_requests,
            conf.get_uint("admin_max_client_requests")?,
        );

        set(&mut self.audit_level, conf.get_uint("audit_level")?);
        set(&mut self.audit_logging, conf.get_bool("audit_logging")?);

        set_opt(&mut self.host_uuid, conf.get_string("host_uuid")?);
        set_opt(
            &mut self.host_uuid_source,
            conf.get_string("host_uuid_source")?,
        );

        set(&mut self.log_level, conf.get_uint("log_level")?);
        set_opt(&mut self.log_filters, conf.get_string("log_filters")?);
        set_opt(&mut self.log_outputs, conf.get_string("log_outputs")?);

        set(
            &mut self.keepalive_interval,
            conf.get_int("keepalive_interval")?,
        );
        set(&mut self.keepalive_count, conf.get_uint("keepalive_count")?);
        set(
            &mut self.admin_keepalive_interval,
            conf.get_int("admin_keepalive_interval")?,
        );
        set(
            &mut self.admin_keepalive_count,
            conf.get_uint("admin_keepalive_count")?,
        );

        set(&mut self.ovs_timeout, conf.get_uint("ovs_timeout")?);
        Ok(())
    }

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

    /// Checks the logging keys in `virDaemonSetupLogging()`'s order (level,
    /// filters, outputs); see [`crate::log`] for how libvirt reports a failure.
    pub fn logging(&self) -> Result<LoggingConfig, ConfError> {
        Ok(LoggingConfig {
            level: check_log_level(self.log_level)?,
            filters: parse_log_filters(self.log_filters.as_deref().unwrap_or(""))?,
            outputs: parse_log_outputs(self.log_outputs.as_deref().unwrap_or(""))?,
        })
    }

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

    /// `daemonSetupAccessManager()`: the access drivers named by `access_drivers`
    /// (`none` when unset or empty). libvirt knows `none` and, built `WITH_POLKIT` as
    /// Debian builds it, `polkit`; any other name fails with this error, which libvirt
    /// logs before `Can't initialize access manager` and exit status 1.
    pub fn access_manager(&self) -> Result<Vec<AccessDriver>, ConfError> {
        let names = match self.access_drivers.as_deref() {
            None | Some([]) => return Ok(vec![AccessDriver::None]),
            Some(n) => n,
        };
        names
            .iter()
            .map(|n| match n.as_str() {
                "none" => Ok(AccessDriver::None),
                "polkit" => Ok(AccessDriver::Polkit),
                other => Err(ConfError::Internal(format!(
                    "Cannot find security driver '{other}'"
                ))),
            })
            .collect()
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

/// An access control driver of `access_drivers` (`virAccessDriver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessDriver {
    /// `"none"` (libvirt's nop driver): everything allowed.
    None,
    /// `"polkit"`: each API call checked with PolicyKit.
    Polkit,
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

/// The checked logging settings, see [`DaemonConfig::logging`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingConfig {
    /// `log_level`; `None` when unset (0).
    pub level: Option<LogPriority>,
    /// `log_filters`, parsed.
    pub filters: Vec<LogFilter>,
    /// `log_outputs`, parsed; empty means the daemon picks its default output.
    pub outputs: Vec<LogOutput>,
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

/// `remoteConfigGetAuth()`.
fn get_auth(conf: &Conf, key: &str) -> Result<Option<Auth>, ConfError> {
    let Some(s) = conf.get_string(key)? else {
        return Ok(None);
    };
    match s.as_str() {
        "none" => Ok(Some(Auth::None)),
        "sasl" => Ok(Some(Auth::Sasl)),
        "polkit" => Ok(Some(Auth::Polkit)),
        other => Err(ConfError::Unsupported(format!(
            "{}: {key}: unsupported auth {other}",
            conf.filename()
        ))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "/tmp/x.conf";

    fn load(text: &str) -> Result<DaemonConfig, ConfError> {
        DaemonConfig::load_str(text, NAME, true)
    }

    fn err(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    #[test]
    fn privileged_defaults_use_polkit_and_open_rw_socket() {
        let d = DaemonConfig::defaults(true);
        assert_eq!(d.auth_unix_rw, Auth::Polkit);
        assert_eq!(d.auth_unix_ro, Auth::Polkit);
        assert_eq!(d.unix_sock_rw_perms, "0777");
        assert_eq!(d.unix_sock_ro_perms, "0777");
        assert_eq!(d.unix_sock_admin_perms, "0700");
        assert_eq!(
            (
                d.min_workers,
                d.max_workers,
                d.prio_workers,
                d.max_client_requests
            ),
            (5, 20, 5, 5)
        );
        assert_eq!(
            (d.max_clients, d.max_queued_clients, d.max_anonymous_clients),
            (5000, 1000, 20)
        );
        assert_eq!(
            (
                d.admin_min_workers,
                d.admin_max_workers,
                d.admin_max_clients,
                d.admin_max_queued_clients,
                d.admin_max_client_requests
            ),
            (5, 20, 5000, 20, 5)
        );
        assert_eq!((d.keepalive_interval, d.keepalive_count), (5, 5));
        assert_eq!(
            (d.admin_keepalive_interval, d.admin_keepalive_count),
            (5, 5)
        );
        assert_eq!((d.audit_level, d.audit_logging, d.log_level), (1, false, 0));
        assert_eq!(d.ovs_timeout, 5);
        assert_eq!(d.unix_sock_dir, None);
        assert_eq!(d.access_drivers, None);
    }

    #[test]
    fn unprivileged_defaults_use_no_auth_and_private_rw_socket() {
        let d = DaemonConfig::defaults(false);
        assert_eq!(d.auth_unix_rw, Auth::None);
        assert_eq!(d.auth_unix_ro, Auth::None);
        assert_eq!(d.unix_sock_rw_perms, "0700");
    }

    #[test]
    fn shipped_conf_parses_to_the_defaults() {
        for privileged in [true, false] {
            let d = DaemonConfig::load_str(crate::SHIPPED_CONF, "virtnodedevd.conf", privileged)
                .unwrap();
            assert_eq!(d, DaemonConfig::defaults(privileged));
        }
    }

    #[test]
    fn shipped_conf_mentions_every_read_key_in_libvirt_order() {
        let keys: Vec<&str> = crate::SHIPPED_CONF
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
            .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        for k in READ_KEYS {
            assert!(keys.contains(k), "{k} missing from the shipped conf");
        }
        for k in IGNORED_IP_KEYS {
            assert!(!keys.contains(k), "{k} is not for virtnodedevd");
        }
        // Uncommenting each line with its shown value gives the defaults too.
        let uncommented: String = crate::SHIPPED_CONF
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| {
                l.split_once(" = ")
                    .is_some_and(|(k, _)| keys.contains(&k) && !k.starts_with("host_uuid"))
            })
            .filter(|l| {
                !["unix_sock_group", "access_drivers", "sasl_allowed", "log_"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let d = DaemonConfig::load_str(&uncommented, "u", true).unwrap();
        let mut want = DaemonConfig::defaults(true);
        want.unix_sock_dir = Some("/run/libvirt".into());
        assert_eq!(d, want);
    }

    #[test]
    fn file_values_override_defaults() {
        let d = load(concat!(
            "unix_sock_group = \"libvirt\"\n",
            "unix_sock_dir = '/tmp/s'\n",
            "auth_unix_ro = \"none\"\n",
            "access_drivers = [ \"polkit\" ]\n",
            "max_workers = 3\nmin_workers = 9\n",
            "keepalive_interval = -1\n",
            "audit_logging = 1\n",
            "log_filters = \"1:node_device\"\n",
            "host_uuid_source = \"machine-id\"\n",
        ))
        .unwrap();
        assert_eq!(d.unix_sock_group.as_deref(), Some("libvirt"));
        assert_eq!(d.unix_sock_dir.as_deref(), Some("/tmp/s"));
        assert_eq!(d.auth_unix_ro, Auth::None);
        assert_eq!(d.access_drivers, Some(vec!["polkit".to_string()]));
        // min > max is accepted; the thread pool clamps it later.
        assert_eq!((d.min_workers, d.max_workers), (9, 3));
        assert_eq!(d.keepalive_interval, -1);
        assert!(d.audit_logging);
        assert_eq!(d.log_filters.as_deref(), Some("1:node_device"));
        assert_eq!(d.host_uuid_source().unwrap(), HostUuidSource::MachineId);
    }

    #[test]
    fn polkit_rw_auth_opens_rw_socket_unless_perms_are_set() {
        let d = DaemonConfig::load_str("auth_unix_rw = \"polkit\"", NAME, false).unwrap();
        assert_eq!(d.unix_sock_rw_perms, "0777");
        let d = DaemonConfig::load_str(
            "unix_sock_rw_perms = \"0770\"\nauth_unix_rw = \"polkit\"",
            NAME,
            false,
        )
        .unwrap();
        assert_eq!(d.unix_sock_rw_perms, "0770");
        // Turning polkit off as root does not narrow the default back.
        let d = load("auth_unix_rw = \"none\"").unwrap();
        assert_eq!(
            (d.auth_unix_rw, d.unix_sock_rw_perms.as_str()),
            (Auth::None, "0777")
        );
    }

    #[test]
    fn unknown_and_ip_only_keys_are_ignored_whatever_their_type() {
        let d =
            load("bogus = [ 1 ]\nlisten_tcp = \"yes\"\ntcp_min_ssf = -1\nkeepalive_required = 1")
                .unwrap();
        assert_eq!(d, DaemonConfig::defaults(true));
    }

    #[test]
    fn unknown_auth_is_unsupported_configuration() {
        let e = load("auth_unix_rw = \"bogus\"").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported configuration: /tmp/x.conf: auth_unix_rw: unsupported auth bogus"
        );
        assert_eq!((e.code(), e.domain()), (67, 9));
        assert_eq!(
            err("auth_unix_ro = 1"),
            "internal error: /tmp/x.conf: expected a string for 'auth_unix_ro' parameter"
        );
        assert_eq!(
            load("auth_unix_rw = \"sasl\"").unwrap().auth_unix_rw,
            Auth::Sasl
        );
    }

    #[test]
    fn wrong_types_report_libvirt_messages() {
        let e = load("unix_sock_group = 5\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "internal error: /tmp/x.conf: expected a string for 'unix_sock_group' parameter"
        );
        assert_eq!((e.code(), e.domain()), (1, 9));
        assert_eq!(
            err("max_workers = -1"),
            "internal error: /tmp/x.conf: expected an unsigned integer for 'max_workers' parameter"
        );
        assert_eq!(
            err("max_workers = 4294967296"),
            "internal error: /tmp/x.conf: value for 'max_workers' parameter must be in range 0:4294967295"
        );
        assert_eq!(
            err("keepalive_interval = 2147483648"),
            "internal error: /tmp/x.conf: value for 'keepalive_interval' parameter must be in range -2147483648:2147483647"
        );
        assert_eq!(
            err("audit_logging = 2"),
            "internal error: /tmp/x.conf: value for 'audit_logging' parameter must be 0 or 1"
        );
        assert_eq!(
            err("access_drivers = [ 1 ]"),
            "configuration file syntax error: /tmp/x.conf: expected a string list for 'access_drivers' parameter"
        );
        assert_eq!(
            err("access_drivers = \"x\""),
            "internal error: /tmp/x.conf: expected a string list for 'access_drivers' parameter"
        );
    }

    #[test]
    fn zero_max_workers_is_rejected_after_reading_it() {
        let e = load("max_workers = 0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "internal error: 'max_workers' must be greater than 0"
        );
        // The first of duplicate keys wins.
        assert!(load("max_workers = 0\nmax_workers = 3").is_err());
        assert!(load("max_workers = 3\nmax_workers = 0").is_ok());
        // Read order decides which error shows: auth comes first.
        assert!(err("max_workers = 0\nauth_unix_rw = 'x'").contains("unsupported auth x"));
    }

    #[test]
    fn syntax_error_names_the_file_and_line() {
        assert_eq!(
            err("unix_sock_dir = \"/tmp/s\"\nfoo bar\n"),
            "configuration file syntax error: /tmp/x.conf:2: expecting an assignment"
        );
    }

    #[test]
    fn load_file_uses_the_path_in_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("virtnodedevd.conf");
        std::fs::write(&path, "unix_sock_group = 5\n").unwrap();
        let e = DaemonConfig::load_file(&path, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "internal error: {}: expected a string for 'unix_sock_group' parameter",
                path.display()
            )
        );
        let e = DaemonConfig::load(Some(&dir.path().join("missing.conf")), true).unwrap_err();
        assert!(e
            .to_string()
            .ends_with("missing.conf': No such file or directory"));
    }

    #[test]
    fn modes_parse_like_strtol_base_8() {
        assert_eq!(parse_mode("0777").unwrap(), 0o777);
        assert_eq!(parse_mode("700").unwrap(), 0o700);
        assert_eq!(parse_mode(" +0770").unwrap(), 0o770);
        assert_eq!(parse_mode("-1").unwrap(), -1);
        assert_eq!(parse_mode("17777777777").unwrap(), i32::MAX);
        for bad in [
            "08",
            "",
            " ",
            "0777 ",
            "0x1ff",
            "rw",
            "-",
            "20000000000",
            "77777777777777777777777",
        ] {
            assert_eq!(
                parse_mode(bad).unwrap_err().to_string(),
                format!("Failed to parse mode '{bad}'"),
                "input {bad:?}"
            );
        }
        let e = parse_mode("08").unwrap_err();
        assert_eq!((e.code(), e.domain()), (0, 0));
    }

    #[test]
    fn socket_modes_check_ro_then_admin_then_rw() {
        let d = load("unix_sock_rw_perms = \"9\"\nunix_sock_admin_perms = \"8\"").unwrap();
        assert_eq!(
            d.socket_modes().unwrap_err().to_string(),
            "Failed to parse mode '8'"
        );
        let m = DaemonConfig::defaults(false).socket_modes().unwrap();
        assert_eq!(
            m,
            SocketModes {
                ro: 0o777,
                admin: 0o700,
                rw: 0o700
            }
        );
    }

    #[test]
    fn unknown_host_uuid_source_is_reported_as_libvirt_logs_it() {
        let d = load("host_uuid_source = \"dmi\"").unwrap();
        assert_eq!(
            d.host_uuid_source().unwrap_err().to_string(),
            "invalid UUID source: dmi"
        );
        assert_eq!(
            DaemonConfig::defaults(true).host_uuid_source().unwrap(),
            HostUuidSource::Smbios
        );
    }

    #[test]
    fn host_uuid_is_parsed_and_checked_like_vir_uuid_parse() {
        let want = [
            0x4b, 0x20, 0xd0, 0x80, 0x1b, 0x54, 0x40, 0x48, 0x85, 0xb3, 0xa6, 0xa6, 0x2d, 0x16,
            0x5c, 0x01,
        ];
        for ok in [
            "4b20d080-1b54-4048-85b3-a6a62d165c01",
            "4B20D0801B54404885B3A6A62D165C01",
            " \t4b20d080 1b54-4048-85b3-a6a62d165c01\n",
            "4b-20-d0-80-1b54404885b3a6a62d165c01",
            "--4b20d0801b54404885b3a6a62d165c01",
        ] {
            assert_eq!(parse_uuid(ok), Some(want), "{ok:?}");
        }
        for bad in [
            "not-a-uuid",
            "",
            "4b20d080-1b54-4048-85b3-a6a62d165c0",
            "4b20d080-1b54-4048-85b3-a6a62d165c011",
            "4b20d080-1b54-4048-85b3-a6a62d165c01x",
            "4-b20d080-1b54-4048-85b3-a6a62d165c01",
            "\x0b4b20d080-1b54-4048-85b3-a6a62d165c01",
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_uuid_setup_reports_libvirts_messages() {
        let dir = tempfile::tempdir().unwrap();
        let mid = dir.path().join("machine-id");
        let e = |text: &str| {
            load(text)
                .unwrap()
                .setup_host_uuid(&mid)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e("host_uuid = \"not-a-uuid\""),
            "invalid host UUID: not-a-uuid"
        );
        assert_eq!(
            e("host_uuid_source = \"bogus\""),
            "invalid UUID source: bogus"
        );
        assert_eq!(
            e("host_uuid_source = \"machine-id\""),
            format!("Can't read {}", mid.display())
        );
        std::fs::write(&mid, "0123456789abcdef0123456789abcdef\n").unwrap();
        let u = load("host_uuid_source = \"machine-id\"")
            .unwrap()
            .setup_host_uuid(&mid)
            .unwrap()
            .unwrap();
        assert_eq!(u[0..2], [0x01, 0x23]);
        // host_uuid wins, even over a bad source.
        assert!(load(
            "host_uuid = \"4b20d080-1b54-4048-85b3-a6a62d165c01\"\nhost_uuid_source = \"bogus\""
        )
        .unwrap()
        .setup_host_uuid(&mid)
        .unwrap()
        .is_some());
        std::fs::write(&mid, "0000000000000000000000000000000000000000").unwrap();
        assert_eq!(
            e("host_uuid_source = \"machine-id\""),
            "invalid host UUID: 000000000000000000000000000000000000"
        );
        assert_eq!(
            DaemonConfig::defaults(true).setup_host_uuid(&mid).unwrap(),
            None
        );
    }

    #[test]
    fn unknown_access_driver_is_refused() {
        assert_eq!(
            DaemonConfig::defaults(true).access_manager().unwrap(),
            [AccessDriver::None]
        );
        assert_eq!(
            load("access_drivers = []")
                .unwrap()
                .access_manager()
                .unwrap(),
            [AccessDriver::None]
        );
        assert_eq!(
            load("access_drivers = [ \"polkit\", \"none\" ]")
                .unwrap()
                .access_manager()
                .unwrap(),
            [AccessDriver::Polkit, AccessDriver::None]
        );
        let e = load("access_drivers = [ \"polkit\", \"nop\" ]")
            .unwrap()
            .access_manager()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "internal error: Cannot find security driver 'nop'"
        );
    }

    #[test]
    fn logging_settings_are_checked_level_first() {
        let d = load("log_level = 5\nlog_outputs = \"9:stderr\"").unwrap();
        assert_eq!(
            d.logging().unwrap_err().to_string(),
            "invalid argument: Failed to set logging priority, argument '5' is invalid"
        );
        let d = load("log_filters = \"1:node_device\"\nlog_outputs = \"1:stderr\"").unwrap();
        let l = d.logging().unwrap();
        assert_eq!((l.level, l.filters.len(), l.outputs.len()), (None, 1, 1));
        assert!(DaemonConfig::defaults(true)
            .logging()
            .unwrap()
            .outputs
            .is_empty());
    }

    #[test]
    fn default_path_is_etc_for_root() {
        assert_eq!(
            DaemonConfig::default_path(true),
            PathBuf::from("/etc/libvirt/virtnodedevd.conf")
        );
        assert!(DaemonConfig::default_path(false).ends_with("libvirt/virtnodedevd.conf"));
    }
}
