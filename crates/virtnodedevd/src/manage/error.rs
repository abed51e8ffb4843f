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
    #[error("{}", definition_code(.0).template().replacen("%s", &.0.detail, 1))]
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

/// The code of a parser error: every code and domain the parser uses is one of ours (see
/// the test below).
fn definition_code(e: &DefError) -> ErrorCode {
    ErrorCode::try_from(e.code).unwrap_or(ErrorCode::InternalError)
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
            ManageError::Definition(d) => {
                let code = definition_code(&d);
                let domain = ErrorDomain::try_from(d.domain).unwrap_or(ErrorDomain::NodeDev);
                VirError::new(code, domain, d.detail)
            }
            ManageError::UnknownCause => VirError::unknown_cause(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodedev::parse::{code, domain};

    #[test]
    fn every_code_and_domain_of_the_parser_is_known() {
        for c in [
            code::INTERNAL_ERROR,
            code::XML_ERROR,
            code::CONFIG_UNSUPPORTED,
            code::PARSE_FAILED,
            code::XML_DETAIL,
            code::NO_NAME,
            code::XML_INVALID_SCHEMA,
        ] {
            assert!(ErrorCode::try_from(c).is_ok(), "code {c}");
        }
        for d in [domain::XML, domain::NODEDEV] {
            assert!(ErrorDomain::try_from(d).is_ok(), "domain {d}");
        }
    }

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
            ManageError::from(DefError::new(code::XML_ERROR, domain::XML, "bad")),
            ManageError::UnknownCause,
        ] {
            let message = e.to_string();
            assert_eq!(VirError::from(e).message, message);
        }
    }
}
