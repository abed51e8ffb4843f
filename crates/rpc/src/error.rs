//! libvirt's error triple (code, domain, message) and its wire form, `virNetMessageError`.
//!
//! Clients print only the message, but libvirt-python exposes every field, so they are
//! filled the way libvirt's reporting functions fill them.

use xdr::{Encoder, Xdr};

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

impl TryFrom<i32> for ErrorCode {
    type Error = i32;

    /// The code of a number another crate reports (e.g. a definition parser's error).
    fn try_from(n: i32) -> Result<Self, i32> {
        use ErrorCode::*;
        const ALL: [ErrorCode; 23] = [
            InternalError,
            NoSupport,
            NoConnect,
            InvalidArg,
            OperationFailed,
            NoName,
            XmlError,
            OperationDenied,
            ParseFailed,
            ConfSyntax,
            XmlDetail,
            SystemError,
            Rpc,
            AuthFailed,
            NoNodeDevice,
            OperationInvalid,
            ConfigUnsupported,
            OperationTimeout,
            ArgumentUnsupported,
            OperationUnsupported,
            XmlInvalidSchema,
            NoServer,
            NoClient,
        ];
        ALL.into_iter().find(|c| *c as i32 == n).ok_or(n)
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

impl TryFrom<i32> for ErrorDomain {
    type Error = i32;

    fn try_from(n: i32) -> Result<Self, i32> {
        use ErrorDomain::*;
        const ALL: [ErrorDomain; 16] = [
            None,
            Xml,
            Rpc,
            Conf,
            Storage,
            Network,
            Domain,
            NodeDev,
            Interface,
            Secret,
            NwFilter,
            DomainSnapshot,
            Streams,
            Polkit,
            Admin,
            DomainCheckpoint,
        ];
        ALL.into_iter().find(|d| *d as i32 == n).ok_or(n)
    }
}

/// VIR_ERR_ERROR: the only level libvirt sends.
const LEVEL_ERROR: i32 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirError {
    pub code: i32,
    pub domain: i32,
    pub message: String,
    pub str1: Option<String>,
    pub str2: Option<String>,
    pub str3: Option<String>,
    pub int1: i32,
    pub int2: i32,
}

impl VirError {
    /// As `virReportError(code, "%s", detail)`: the code's template with the detail in it.
    pub fn new(code: ErrorCode, domain: ErrorDomain, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let template = code.template();
        Self {
            code: code as i32,
            domain: domain as i32,
            message: template.replacen("%s", &detail, 1),
            str1: Some(template.to_owned()),
            str2: Some(detail),
            str3: None,
            int1: -1,
            int2: -1,
        }
    }

    /// `internal error: …` in the RPC domain, the dispatcher's usual complaint.
    pub fn rpc_internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, ErrorDomain::Rpc, detail)
    }

    /// VIR_ERR_RPC in the RPC domain (decode failures, unknown procedures, ...).
    pub fn rpc(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Rpc, ErrorDomain::Rpc, detail)
    }

    /// `virReportUnsupportedError()`: the public API named in the message.
    pub fn no_support(domain: ErrorDomain, api: &str) -> Self {
        Self::new(ErrorCode::NoSupport, domain, api)
    }

    /// `virCheckFlags()` failure: no "invalid argument:" prefix, the function in str1.
    pub fn bad_flags(domain: ErrorDomain, flags: u64, function: &str) -> Self {
        Self {
            code: ErrorCode::InvalidArg as i32,
            domain: domain as i32,
            message: format!("unsupported flags (0x{flags:x}) in function {function}"),
            str1: Some(function.to_owned()),
            str2: Some("flags".to_owned()),
            str3: None,
            int1: 0,
            int2: 0,
        }
    }

    /// An internal error with no template or detail fields, as libvirt reports a failure
    /// whose cause it does not know.
    fn bare(domain: ErrorDomain, message: &str) -> Self {
        Self {
            code: ErrorCode::InternalError as i32,
            domain: domain as i32,
            message: message.to_owned(),
            str1: None,
            str2: None,
            str3: None,
            int1: 0,
            int2: 0,
        }
    }

    /// What `virDispatchError()` reports when a driver failed without saying why.
    pub fn unknown_cause() -> Self {
        Self::bare(
            ErrorDomain::None,
            "An error occurred, but the cause is unknown",
        )
    }

    /// What the RPC dispatcher reports when a handler failed without setting an error.
    pub fn no_error_set() -> Self {
        Self::bare(
            ErrorDomain::Rpc,
            "Library function returned error but did not set virError",
        )
    }

    /// The payload of an error reply (`remote_error`).
    pub fn encode(&self, e: &mut Encoder) {
        e.put_i32(self.code);
        e.put_i32(self.domain);
        Some(self.message.clone()).encode(e);
        e.put_i32(LEVEL_ERROR);
        e.put_u32(0); // dom: never set by a node-device daemon
        self.str1.encode(e);
        self.str2.encode(e);
        self.str3.encode(e);
        e.put_i32(self.int1);
        e.put_i32(self.int2);
        e.put_u32(0); // net
    }

    /// Whether the encoded form stays within libvirt's string limit; libvirt closes the
    /// connection when it cannot serialize an error.
    pub fn fits(&self) -> bool {
        let max = crate::header::STRING_MAX as usize;
        self.message.len() <= max
            && [&self.str1, &self.str2, &self.str3]
                .iter()
                .all(|s| s.as_ref().is_none_or(|s| s.len() <= max))
    }
}

impl std::fmt::Display for VirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for VirError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_error_matches_libvirt_bytes() {
        let err = VirError::new(
            ErrorCode::NoNodeDevice,
            ErrorDomain::NodeDev,
            "no node device with matching name 'nosuch'",
        );
        let mut e = Encoder::new();
        err.encode(&mut e);
        let b = e.into_inner();
        // 224-byte reply = 28 header bytes + 196 payload bytes, as captured from libvirtd.
        assert_eq!(b.len(), 196);
        assert_eq!(&b[..8], &[0, 0, 0, 0x35, 0, 0, 0, 0x16]);
        assert_eq!(
            err.message,
            "Node device not found: no node device with matching name 'nosuch'"
        );
    }

    #[test]
    fn bad_flags_text_uses_lowercase_hex() {
        let err = VirError::bad_flags(
            ErrorDomain::NodeDev,
            0x2000000,
            "nodeConnectListAllNodeDevices",
        );
        assert_eq!(
            err.message,
            "unsupported flags (0x2000000) in function nodeConnectListAllNodeDevices"
        );
    }
}
