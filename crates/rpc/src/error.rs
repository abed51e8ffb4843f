//! libvirt's error triple (code, domain, message) and its wire form, `virNetMessageError`.
//!
//! Clients print only the message, but libvirt-python exposes every field, so they are
//! filled the way libvirt's reporting functions fill them.

use xdr::{Encoder, Xdr};

pub use virerror::{ErrorCode, ErrorDomain};

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
            message: code.format(&detail),
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
