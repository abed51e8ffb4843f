//! libvirt's error numbers and domains (`include/libvirt/virterror.h`), with the message
//! format libvirt gives each code: the one place every crate takes them from (the wire's
//! error payload is in `rpc`).

/// virErrorNumber values this daemon reports, with libvirt's "message with detail" texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorCode {
    InternalError = 1,
    NoSupport = 3,
    NoConnect = 5,
    InvalidArg = 8,
    OperationFailed = 9,
    NoName = 21,
    XmlError = 27,
    OperationDenied = 29,
    ParseFailed = 32,
    ConfSyntax = 33,
    XmlDetail = 35,
    SystemError = 38,
    Rpc = 39,
    AuthFailed = 45,
    NoNodeDevice = 53,
    OperationInvalid = 55,
    ConfigUnsupported = 67,
    OperationTimeout = 68,
    ArgumentUnsupported = 74,
    AuthCancelled = 79,
    OperationUnsupported = 84,
    AccessDenied = 88,
    DbusService = 89,
    XmlInvalidSchema = 92,
    AuthUnavailable = 94,
    NoServer = 95,
    NoClient = 96,
}

impl ErrorCode {
    /// The format libvirt's virErrorMsg() gives this code when a detail is supplied.
    pub fn template(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InternalError => "internal error: %1$s",
            NoSupport => "this function is not supported by the connection driver: %1$s",
            NoConnect => "no connection driver available for %1$s",
            InvalidArg => "invalid argument: %1$s",
            OperationFailed => "operation failed: %1$s",
            // Reported with its whole text as the detail ("missing name information").
            NoName => "%s",
            XmlError => "XML error: %1$s",
            OperationDenied => "operation forbidden: %1$s",
            ParseFailed => "failed to parse configuration file %1$s",
            ConfSyntax => "configuration file syntax error: %1$s",
            XmlDetail | SystemError | Rpc => "%s",
            AuthFailed => "authentication failed: %1$s",
            NoNodeDevice => "Node device not found: %1$s",
            OperationInvalid => "Requested operation is not valid: %1$s",
            ConfigUnsupported => "unsupported configuration: %1$s",
            OperationTimeout => "Timed out during operation: %1$s",
            ArgumentUnsupported => "argument unsupported: %1$s",
            AuthCancelled => "authentication cancelled: %1$s",
            DbusService => "error from service: %1$s",
            AuthUnavailable => "authentication unavailable: %1$s",
            OperationUnsupported => "Operation not supported: %1$s",
            AccessDenied => "access denied: %1$s",
            XmlInvalidSchema => "XML document failed to validate against schema: %1$s",
            NoServer => "Server not found: %1$s",
            NoClient => "Client not found: %1$s",
        }
    }

    /// The message libvirt builds from [`ErrorCode::template`] and `detail`.
    pub fn format(self, detail: &str) -> String {
        let t = self.template();
        match t.find("%1$s") {
            Some(i) => format!("{}{detail}{}", &t[..i], &t[i + 4..]),
            None => t.replacen("%s", detail, 1),
        }
    }
}

/// virErrorDomain values this daemon reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorDomain {
    None = 0,
    Xml = 5,
    Rpc = 7,
    Conf = 9,
    /// The qemu driver's own checks (libvirt serves PCI detach only there).
    Qemu = 10,
    Storage = 18,
    Network = 19,
    Domain = 20,
    NodeDev = 22,
    Dbus = 47,
    Access = 55,
    Interface = 26,
    Secret = 30,
    NwFilter = 33,
    DomainSnapshot = 35,
    Streams = 38,
    Polkit = 60,
    Admin = 62,
    DomainCheckpoint = 69,
}
