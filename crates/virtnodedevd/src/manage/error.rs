//! What managing devices fails with, by libvirt's error code, and the one place where that
//! becomes libvirt's (code, domain, message) triple.

use nodedev::parse::DefError;
use protocol::{ErrorCode, ErrorDomain, VirError};

/// A refused or failed management call. Every variant is reported in the node-device
/// domain, with the code it is named after; `Display` is the message clients print.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManageError {
    /// VIR_ERR_INTERNAL_ERROR, libvirt's usual complaint (mdevctl and sysfs failures).
    #[error("internal error: {0}")]
    Internal(String),
    /// VIR_ERR_XML_ERROR.
    #[error("XML error: {0}")]
    Xml(String),
    /// VIR_ERR_PARSE_FAILED.
    #[error("failed to parse configuration file {0}")]
    ParseFailed(String),
    /// VIR_ERR_NO_NODE_DEVICE.
    #[error("Node device not found: {0}")]
    NoNodeDevice(String),
    /// VIR_ERR_OPERATION_INVALID.
    #[error("Requested operation is not valid: {0}")]
    OperationInvalid(String),
    /// VIR_ERR_CONFIG_UNSUPPORTED.
    #[error("unsupported configuration: {0}")]
    ConfigUnsupported(String),
    /// VIR_ERR_OPERATION_UNSUPPORTED.
    #[error("Operation not supported: {0}")]
    OperationUnsupported(String),
    /// VIR_ERR_SYSTEM_ERROR (`virReportSystemError`): the detail, with errno in `int1`.
    #[error("{detail}")]
    System { detail: String, errno: i32 },
    /// A definition the parser refused, with its own code and domain.
    #[error("{}", .0.code.format(&.0.detail))]
    Definition(#[from] DefError),
    /// The driver failed without saying why (libvirt's `virDispatchError` then).
    #[error("An error occurred, but the cause is unknown")]
    UnknownCause,
}

impl ManageError {
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::Internal(detail.into())
    }

    /// What libvirt says of a device type it cannot create, define or change.
    pub fn unsupported_device_type() -> Self {
        Self::ConfigUnsupported("Unsupported device type".into())
    }

    pub fn unknown_cause() -> Self {
        Self::UnknownCause
    }

    /// The detail without the code's text (`str2` on the wire).
    pub fn detail(&self) -> String {
        match self {
            Self::Internal(d)
            | Self::Xml(d)
            | Self::ParseFailed(d)
            | Self::NoNodeDevice(d)
            | Self::OperationInvalid(d)
            | Self::ConfigUnsupported(d)
            | Self::OperationUnsupported(d) => d.clone(),
            Self::System { detail, .. } => detail.clone(),
            Self::Definition(e) => e.detail.clone(),
            Self::UnknownCause => String::new(),
        }
    }
}

impl From<ManageError> for VirError {
    fn from(e: ManageError) -> VirError {
        let nodedev =
            |code: ErrorCode, detail: String| VirError::new(code, ErrorDomain::NodeDev, detail);
        match e {
            ManageError::Internal(d) => nodedev(ErrorCode::InternalError, d),
            ManageError::Xml(d) => nodedev(ErrorCode::XmlError, d),
            ManageError::ParseFailed(d) => nodedev(ErrorCode::ParseFailed, d),
            ManageError::NoNodeDevice(d) => nodedev(ErrorCode::NoNodeDevice, d),
            ManageError::OperationInvalid(d) => nodedev(ErrorCode::OperationInvalid, d),
            ManageError::ConfigUnsupported(d) => nodedev(ErrorCode::ConfigUnsupported, d),
            ManageError::OperationUnsupported(d) => nodedev(ErrorCode::OperationUnsupported, d),
            ManageError::System { detail, errno } => {
                let mut v = nodedev(ErrorCode::SystemError, detail);
                v.int1 = errno;
                v
            }
            ManageError::Definition(d) => VirError::new(d.code, d.domain, d.detail),
            ManageError::UnknownCause => VirError::unknown_cause(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_message_clients_print() {
        for e in [
            ManageError::internal("x"),
            ManageError::OperationInvalid("Device 'd' is not active".into()),
            ManageError::unsupported_device_type(),
            ManageError::System {
                detail: "Write failed: EIO".into(),
                errno: 5,
            },
            ManageError::from(DefError::new(ErrorCode::XmlError, ErrorDomain::Xml, "bad")),
            ManageError::UnknownCause,
        ] {
            let message = e.to_string();
            assert_eq!(VirError::from(e).message, message);
        }
    }
}
