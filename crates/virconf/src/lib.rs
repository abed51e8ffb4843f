//! libvirt's configuration files for virtnodedevd.
//!
//! - [`Conf`]: the `key = value` syntax exactly as libvirt 9.0's
//!   `virconf.c` accepts it, with its typed getters and their errors.
//! - [`daemon::DaemonConfig`]: the keys `remote_daemon_config.c` reads for
//!   virtnodedevd, with libvirt's defaults and load-time checks.
//! - [`ConfError`]: libvirt's `(code, domain, message)` for every failure;
//!   its docs say what the daemon prints and how it exits.
//! - [`log`]: `log_level`, `log_filters` and `log_outputs` checked as
//!   virlog.c checks them when the daemon sets up logging.
//!
//! [`SHIPPED_CONF`] is our commented `virtnodedevd.conf`, for packaging.

pub mod daemon;
mod error;
pub mod log;
mod parser;

pub use error::{ConfError, SyntaxError};
pub use parser::{Conf, Entry, Value, MAX_CONFIG_FILE_SIZE};

/// The commented default configuration file installed as
/// `/etc/libvirt/virtnodedevd.conf`; every key is commented out, so it
/// loads to the defaults.
pub const SHIPPED_CONF: &str = include_str!("../virtnodedevd.conf");
