//! The daemon configuration as libvirt 9.0's `remote_daemon_config.c`
//! reads it for `virtnodedevd`.
//!
//! virtnodedevd is built without `WITH_IP` (only `libvirtd` and
//! `virtproxyd` have it), so the TCP/TLS keys in [`IGNORED_IP_KEYS`] are
//! never looked at: like any unknown key they are ignored even when their
//! value has the wrong type. Debian builds with `WITH_POLKIT` and
//! `WITH_SASL`, which decide the default auth and whether `"sasl"` is a
//! valid auth name.

mod host_uuid;
mod socket_modes;

use std::path::{Path, PathBuf};

pub use host_uuid::{parse_uuid, HostUuidSource};
pub use socket_modes::{parse_mode, SocketModes};

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
    // Not libvirt's: the host protections of PCI detach and reset (issue 14).
    "pci_protect",
    "pci_allow",
    "pci_persist",
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

    /// `pci_protect`: what PCI detach and reset refuse to touch, by kind
    /// ([`PCI_PROTECT_KINDS`]) or by PCI address; default every kind.
    pub pci_protect: Vec<String>,
    /// `pci_allow`: PCI addresses exempt from `pci_protect`.
    pub pci_allow: Vec<String>,
    /// `pci_persist`: detached devices are detached again when the daemon starts.
    pub pci_persist: bool,
}

/// The kinds of host device `pci_protect` names: the one carrying the root
/// filesystem, any mounted filesystem, the interface of the default route, the
/// console (primary GPU, framebuffer).
pub const PCI_PROTECT_KINDS: [&str; 4] = ["root", "mounts", "default-route", "console"];

/// `DDDD:BB:SS.F` in lower-case hex, as sysfs names PCI functions.
fn is_pci_address(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b':',
            10 => c == b'.',
            11 => (b'0'..=b'7').contains(&c),
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
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
            pci_protect: PCI_PROTECT_KINDS.iter().map(|k| k.to_string()).collect(),
            pci_allow: Vec::new(),
            pci_persist: false,
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

    /// Reads every key of [`READ_KEYS`] in that order: the first bad key
    /// is the one reported.
    fn apply(&mut self, conf: &Conf) -> Result<(), ConfError> {
        self.apply_sockets(conf)?;
        self.apply_workers(conf)?;
        self.apply_admin_workers(conf)?;
        self.apply_audit_uuid_and_logging(conf)?;
        self.apply_keepalive_and_ovs(conf)?;
        self.apply_pci(conf)
    }

    /// `pci_protect` and `pci_allow`: a misspelt entry would silently protect less, so it
    /// stops the daemon instead.
    fn apply_pci(&mut self, conf: &Conf) -> Result<(), ConfError> {
        set(
            &mut self.pci_protect,
            conf.get_string_list("pci_protect", false)?,
        );
        set(
            &mut self.pci_allow,
            conf.get_string_list("pci_allow", false)?,
        );
        set(&mut self.pci_persist, conf.get_bool("pci_persist")?);
        if let Some(bad) = self
            .pci_protect
            .iter()
            .find(|e| !PCI_PROTECT_KINDS.contains(&e.as_str()) && !is_pci_address(e))
        {
            return Err(ConfError::Internal(format!(
                "pci_protect: '{bad}' is neither one of {} nor a PCI address like 0000:03:00.0",
                PCI_PROTECT_KINDS.join(", ")
            )));
        }
        if let Some(bad) = self.pci_allow.iter().find(|e| !is_pci_address(e)) {
            return Err(ConfError::Internal(format!(
                "pci_allow: '{bad}' is not a PCI address like 0000:03:00.0"
            )));
        }
        Ok(())
    }

    /// Auth, access drivers, socket group/perms/dir, SASL user list.
    fn apply_sockets(&mut self, conf: &Conf) -> Result<(), ConfError> {
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
        Ok(())
    }

    fn apply_workers(&mut self, conf: &Conf) -> Result<(), ConfError> {
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
        Ok(())
    }

    fn apply_admin_workers(&mut self, conf: &Conf) -> Result<(), ConfError> {
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
        Ok(())
    }

    fn apply_audit_uuid_and_logging(&mut self, conf: &Conf) -> Result<(), ConfError> {
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
        Ok(())
    }

    fn apply_keepalive_and_ovs(&mut self, conf: &Conf) -> Result<(), ConfError> {
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

    /// Checks the logging keys in `virDaemonSetupLogging()`'s order (level,
    /// filters, outputs); see [`crate::log`] for how libvirt reports a failure.
    pub fn logging(&self) -> Result<LoggingConfig, ConfError> {
        Ok(LoggingConfig {
            level: check_log_level(self.log_level)?,
            filters: parse_log_filters(self.log_filters.as_deref().unwrap_or(""))?,
            outputs: parse_log_outputs(self.log_outputs.as_deref().unwrap_or(""))?,
        })
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
}

/// An access control driver of `access_drivers` (`virAccessDriver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessDriver {
    /// `"none"` (libvirt's nop driver): everything allowed.
    None,
    /// `"polkit"`: each API call checked with PolicyKit.
    Polkit,
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

/// Sets `field` when the key was present.
fn set<T>(field: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *field = v;
    }
}

/// Sets an optional `field` when the key was present, never back to `None`.
fn set_opt<T>(field: &mut Option<T>, v: Option<T>) {
    if v.is_some() {
        *field = v;
    }
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

#[cfg(test)]
mod tests;
