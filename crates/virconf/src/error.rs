//! The one error type of this crate and its mapping onto libvirt's
//! `(code, domain, message)` triple.

use std::fmt;

use virerror::{ErrorCode, ErrorDomain};

/// What the parser was looking for when it gave up; the text is libvirt's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntaxError {
    /// `expecting a value`
    ExpectingValue,
    /// `unterminated number` (a lone sign)
    UnterminatedNumber,
    /// `unterminated string`
    UnterminatedString,
    /// `expecting a separator in list`
    ExpectingListSeparator,
    /// `list is not closed with ]`
    ListNotClosed,
    /// `expecting a name`
    ExpectingName,
    /// `expecting an assignment`
    ExpectingAssignment,
    /// `expecting a separator`
    ExpectingSeparator,
}

impl SyntaxError {
    /// libvirt's wording (virconf.c, untranslated).
    pub fn text(self) -> &'static str {
        match self {
            SyntaxError::ExpectingValue => "expecting a value",
            SyntaxError::UnterminatedNumber => "unterminated number",
            SyntaxError::UnterminatedString => "unterminated string",
            SyntaxError::ExpectingListSeparator => "expecting a separator in list",
            SyntaxError::ListNotClosed => "list is not closed with ]",
            SyntaxError::ExpectingName => "expecting a name",
            SyntaxError::ExpectingAssignment => "expecting an assignment",
            SyntaxError::ExpectingSeparator => "expecting a separator",
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// An error loading a configuration, carrying exactly what libvirt would
/// put in its `virError`.
///
/// `Display` (and [`ConfError::message`]) is the full message as
/// `virGetLastErrorMessage()` returns it, prefix included, e.g.
/// `configuration file syntax error: /etc/libvirt/virtnodedevd.conf:3: expecting a value`.
///
/// # What the daemon prints on a bad config
///
/// libvirt 9.0's `remote_daemon.c` `main()` does, before logging is set up:
///
/// ```c
/// VIR_ERROR(_("Can't load config file: %s: %s"),
///           virGetLastErrorMessage(), remote_config_file);
/// exit(EXIT_FAILURE);
/// ```
///
/// The default log output at that point is stderr, so the daemon prints
/// (after two `info :` lines with the version and hostname):
///
/// ```text
/// 2024-01-01 00:00:00.000+0000: 1234: error : main:918 : Can't load config file: <message>: <path>
/// ```
///
/// and exits with status 1. For example (verified against Debian's 9.0.0-4 libvirtd):
///
/// ```text
/// ... error : main:918 : Can't load config file: internal error: /tmp/x.conf: expected a string for 'unix_sock_group' parameter: /tmp/x.conf
/// ```
///
/// When no `-f` was given and the default file does not exist the daemon
/// runs on defaults (see [`crate::daemon::DaemonConfig::load`]); an explicit
/// `-f` to a missing file is the system error
/// `Failed to open file '<path>': No such file or directory`.
///
/// The socket permission strings are *not* checked at load time; see
/// [`crate::daemon::parse_mode`] for the later failure and its exit status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfError {
    /// A syntax error from the parser (`virConfError`):
    /// `configuration file syntax error: FILE:LINE: WHAT`.
    #[error("configuration file syntax error: {file}:{line}: {kind}")]
    Syntax {
        /// The name the text was loaded under (the path for a file).
        file: String,
        /// 1-based line the parser had reached.
        line: u32,
        /// What was expected.
        kind: SyntaxError,
    },
    /// `VIR_ERR_CONF_SYNTAX` raised by a getter rather than the parser, so
    /// without a line number: `configuration file syntax error: DETAIL`.
    #[error("configuration file syntax error: {0}")]
    SyntaxDetail(String),
    /// `VIR_ERR_INTERNAL_ERROR`: `internal error: DETAIL`.
    #[error("internal error: {0}")]
    Internal(String),
    /// `VIR_ERR_CONFIG_UNSUPPORTED`: `unsupported configuration: DETAIL`.
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// `VIR_ERR_INVALID_ARG` from virlog.c (domain `VIR_FROM_NONE`):
    /// `invalid argument: DETAIL`. The daemon reports these through
    /// `virDispatchError()` as `libvirt:  error : invalid argument: ...`
    /// on stderr (two spaces: the domain name is empty) and exits 1.
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// Something libvirt's daemon only logs with `VIR_ERROR` after loading
    /// the file (a bad socket mode, an unknown `host_uuid_source`); there
    /// is no `virError`, so [`ConfError::code`] and [`ConfError::domain`]
    /// are 0. The text is the logged line's message.
    #[error("{0}")]
    Logged(String),
    /// `virReportSystemError`: `CONTEXT: STRERROR`, domain `VIR_FROM_NONE`.
    #[error("{context}: {strerror}")]
    System {
        /// e.g. `Failed to open file '/x.conf'`.
        context: String,
        /// The OS error number.
        errno: i32,
        /// The C library's text for `errno`.
        strerror: String,
    },
}

impl ConfError {
    /// libvirt's `virErrorNumber` for this error (0, VIR_ERR_OK, for one already logged).
    pub fn code(&self) -> i32 {
        let code = match self {
            // Every parser error, and a list holding a non-string where a string list is
            // expected.
            ConfError::Syntax { .. } | ConfError::SyntaxDetail(_) => ErrorCode::ConfSyntax,
            // The virConfGetValue* type and range errors.
            ConfError::Internal(_) => ErrorCode::InternalError,
            // A bad log_level, log_filters or log_outputs.
            ConfError::InvalidArg(_) => ErrorCode::InvalidArg,
            // An unknown auth_unix_* value.
            ConfError::Unsupported(_) => ErrorCode::ConfigUnsupported,
            // Reading the file failed.
            ConfError::System { .. } => ErrorCode::SystemError,
            ConfError::Logged(_) => return 0,
        };
        code as i32
    }

    /// libvirt's `virErrorDomain` for this error: virfile.c and the logging code report
    /// without a domain, virconf.c and remote_daemon_config.c in VIR_FROM_CONF.
    pub fn domain(&self) -> i32 {
        let domain = match self {
            ConfError::System { .. } | ConfError::InvalidArg(_) | ConfError::Logged(_) => {
                ErrorDomain::None
            }
            _ => ErrorDomain::Conf,
        };
        domain as i32
    }

    /// The full message, as `virGetLastErrorMessage()` would return it.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The `(code, domain, message)` triple a libvirt client would see.
    pub fn triple(&self) -> (i32, i32, String) {
        (self.code(), self.domain(), self.message())
    }

    pub(crate) fn system(context: String, err: &std::io::Error) -> ConfError {
        ConfError::System {
            context,
            errno: err.raw_os_error().unwrap_or(0),
            strerror: strerror(err),
        }
    }
}

/// The C library's description of an I/O error, without Rust's
/// ` (os error N)` suffix, so messages read like libvirt's `g_strerror()`.
fn strerror(err: &std::io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(n) => {
            let suffix = format!(" (os error {n})");
            text.strip_suffix(&suffix).unwrap_or(&text).to_string()
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_error_formats_like_vir_conf_error() {
        let e = ConfError::Syntax {
            file: "/tmp/x.conf".into(),
            line: 3,
            kind: SyntaxError::ExpectingValue,
        };
        assert_eq!(
            e.to_string(),
            "configuration file syntax error: /tmp/x.conf:3: expecting a value"
        );
        assert_eq!(e.code(), 33);
        assert_eq!(e.domain(), 9);
    }

    #[test]
    fn system_error_drops_rust_os_error_suffix() {
        let io = std::io::Error::from_raw_os_error(2);
        let e = ConfError::system("Failed to open file '/nope'".into(), &io);
        assert_eq!(
            e.to_string(),
            "Failed to open file '/nope': No such file or directory"
        );
        assert_eq!(e.triple().0, 38);
        assert_eq!(e.domain(), 0);
    }
}
