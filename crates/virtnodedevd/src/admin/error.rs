//! What the admin procedures refuse, and the one place those refusals become libvirt's
//! (code, domain, message).

use protocol::admin::DecodeError;
use protocol::{ErrorCode, ErrorDomain, VirError};
use rpc::LimitError;

/// An admin call's failure. The display text is libvirt's detail, put into the code's
/// template by [`AdminError::to_vir_error`].
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// An unknown procedure or undecodable arguments: VIR_ERR_RPC in the RPC domain.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// `virNetDaemonGetServer`, as the generated dispatchers report it: VIR_ERR_NO_SERVER
    /// in the RPC domain.
    #[error("No server named '{0}'")]
    NoServer(String),
    /// The hand-written dispatchers' own lookup: VIR_ERR_NO_SERVER in the admin domain.
    #[error("no server with matching name '{0}' found")]
    NoMatchingServer(String),
    /// `virNetServerGetClient`: VIR_ERR_NO_CLIENT in the RPC domain.
    #[error("No client with matching ID '{0}'")]
    NoClient(u64),
    /// adminDispatchClientGetInfo's own lookup: VIR_ERR_NO_CLIENT in the admin domain.
    #[error("no client with matching id '{0}' found")]
    NoMatchingClient(u64),
    /// `virCheckFlags` in the admin API function named.
    #[error("unsupported flags (0x{flags:x}) in function {function}")]
    BadFlags { flags: u32, function: &'static str },
    /// virNetServerUpdateTlsFiles on a server without TLS: VIR_ERR_INTERNAL_ERROR, RPC.
    #[error("no tls service found, unable to update tls files")]
    NoTlsService,
    /// `virTypedParamsValidate`, in no domain.
    #[error(transparent)]
    Param(#[from] crate::typed_params::ParamError),
    /// A thread-pool or client limit the server refused; `rpc` owns those texts.
    #[error("{}", .0.to_vir_error().message)]
    Limit(LimitError),
    /// A log filter or output the logging module refused, already in libvirt's terms.
    #[error("{}", .0.message)]
    Logging(VirError),
}

impl AdminError {
    /// libvirt's error triple for this failure, as the admin dispatcher sends it.
    pub fn to_vir_error(&self) -> VirError {
        use AdminError as E;
        use ErrorCode as C;
        use ErrorDomain as D;
        let (code, domain) = match self {
            E::Decode(_) => (C::Rpc, D::Rpc),
            E::NoServer(_) => (C::NoServer, D::Rpc),
            E::NoMatchingServer(_) => (C::NoServer, D::Admin),
            E::NoClient(_) => (C::NoClient, D::Rpc),
            E::NoMatchingClient(_) => (C::NoClient, D::Admin),
            E::NoTlsService => (C::InternalError, D::Rpc),
            E::Param(e) => return e.to_vir_error(),
            E::BadFlags { flags, function } => {
                return VirError::bad_flags(D::Admin, (*flags).into(), function)
            }
            E::Limit(e) => return e.to_vir_error(),
            E::Logging(e) => return e.clone(),
        };
        VirError::new(code, domain, self.to_string())
    }
}

/// `virCheckFlags(0, …)`: most of these procedures take no flag.
pub fn check_flags(flags: u32, function: &'static str) -> Result<(), AdminError> {
    check_flags_of(flags, 0, function)
}

/// `virCheckFlags(supported, …)`: the error names the bits outside `supported`.
pub fn check_flags_of(
    flags: u32,
    supported: u32,
    function: &'static str,
) -> Result<(), AdminError> {
    match flags & !supported {
        0 => Ok(()),
        flags => Err(AdminError::BadFlags { flags, function }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triple(e: AdminError) -> (i32, i32, String) {
        let v = e.to_vir_error();
        (v.code, v.domain, v.message)
    }

    #[test]
    fn decode_failures_are_rpc_errors_with_dispatchs_texts() {
        let e = triple(DecodeError::UnknownProcedure(20).into());
        assert_eq!(e, (39, 7, "unknown procedure: 20".into()));
        let e = triple(DecodeError::Payload.into());
        assert_eq!(e, (39, 7, "Unable to decode message payload".into()));
    }

    #[test]
    fn lookups_keep_both_of_libvirts_wordings() {
        let e = triple(AdminError::NoServer("x".into()));
        assert_eq!(e, (95, 7, "Server not found: No server named 'x'".into()));
        let e = triple(AdminError::NoMatchingServer("x".into()));
        assert_eq!(
            e,
            (
                95,
                62,
                "Server not found: no server with matching name 'x' found".into()
            )
        );
        let e = triple(AdminError::NoClient(7));
        assert_eq!(
            e,
            (
                96,
                7,
                "Client not found: No client with matching ID '7'".into()
            )
        );
        let e = triple(AdminError::NoMatchingClient(7));
        assert_eq!(
            e,
            (
                96,
                62,
                "Client not found: no client with matching id '7' found".into()
            )
        );
    }

    #[test]
    fn bad_flags_name_the_api_function() {
        let v = check_flags(4, "adminClientClose")
            .unwrap_err()
            .to_vir_error();
        assert_eq!(
            v,
            VirError::bad_flags(ErrorDomain::Admin, 4, "adminClientClose")
        );
        assert!(check_flags(0, "adminClientClose").is_ok());
    }
}
