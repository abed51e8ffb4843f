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
    OperationUnsupported = 84,
    XmlInvalidSchema = 92,
    NoServer = 95,
    NoClient = 96,
}

impl ErrorCode {
    /// The format libvirt's virErrorMsg() gives this code when a detail is supplied.
    pub fn template(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InternalError => "internal error: %s",
            NoSupport => "this function is not supported by the connection driver: %s",
            NoConnect => "no connection driver available for %s",
            InvalidArg => "invalid argument: %s",
            OperationFailed => "operation failed: %s",
            // Reported with its whole text as the detail ("missing name information").
            NoName => "%s",
            XmlError => "XML error: %s",
            OperationDenied => "operation forbidden: %s",
            ParseFailed => "failed to parse configuration file %s",
            ConfSyntax => "configuration file syntax error: %s",
            XmlDetail | SystemError | Rpc => "%s",
            AuthFailed => "authentication failed: %s",
            NoNodeDevice => "Node device not found: %s",
            OperationInvalid => "Requested operation is not valid: %s",
            ConfigUnsupported => "unsupported configuration: %s",
            OperationTimeout => "Timed out during operation: %s",
            ArgumentUnsupported => "argument unsupported: %s",
            OperationUnsupported => "Operation not supported: %s",
            XmlInvalidSchema => "XML document failed to validate against schema: %s",
            NoServer => "Server not found: %s",
            NoClient => "Client not found: %s",
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
    Storage = 18,
    Network = 19,
    Domain = 20,
    NodeDev = 22,
    Interface = 26,
    Secret = 30,
    NwFilter = 33,
    DomainSnapshot = 35,
    Streams = 38,
    Polkit = 60,
    Admin = 62,
    DomainCheckpoint = 69,
}
