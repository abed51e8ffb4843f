//! Every procedure of the remote program the node-device driver does not implement,
//! answered as libvirt's daemon answers it.

use protocol::remote::{self as r, proc};
use protocol::{ErrorCode, ErrorDomain, ProcInfo, ReadOnly, VirError};

use super::{decode, read_only};

/// Any other API of the remote program (the node-device driver has none of them), answered
/// as libvirt's daemon answers it: its dispatcher calls the public API on a connection
/// opened read-only for a read-only client, and the API's checks run before it finds no
/// driver method — the argument checks some APIs make first, then the read-only refusal,
/// then NO_SUPPORT.
pub(super) fn unsupported(info: &ProcInfo, readonly: bool, args: &[u8]) -> VirError {
    let api = info.api.unwrap_or(info.name);
    let domain = info.no_support_domain();
    let checks = || -> Result<(), VirError> {
        let flags = checks_before_read_only(info.number, api, domain, args)?;
        if !readonly {
            return Ok(());
        }
        match info.read_only {
            ReadOnly::Denied => Err(read_only(domain, api)),
            ReadOnly::DeniedWithFlags(mask) if flags & mask != 0 => Err(read_only(domain, api)),
            ReadOnly::SecureFlags(mask) if flags & mask != 0 => Err(VirError::new(
                ErrorCode::OperationDenied,
                domain,
                format!("{api} with secure flag"),
            )),
            _ => Ok(()),
        }
    };
    checks()
        .err()
        .unwrap_or_else(|| VirError::no_support(domain, api))
}

/// The checks of libvirt's dispatcher and public API that come before an API's read-only
/// check and that decoded arguments can fail, as libvirt 9.0 makes them; returns the
/// call's flags where the read-only check depends on them (0 elsewhere). Arguments are
/// checked against their layout in `call` already; they are decoded only here.
fn checks_before_read_only(
    p: i32,
    api: &str,
    domain: ErrorDomain,
    args: &[u8],
) -> Result<u32, VirError> {
    // virReportInvalidArg() and kin: no "invalid argument:" prefix.
    let invalid = |arg: &str, message: String| VirError {
        code: ErrorCode::InvalidArg as i32,
        domain: domain as i32,
        message,
        str1: Some(api.to_owned()),
        str2: Some(arg.to_owned()),
        str3: None,
        int1: 0,
        int2: 0,
    };
    let not_null = |arg: &str| invalid(arg, format!("{arg} in {api} must not be NULL"));
    match p {
        proc::DOMAIN_GET_XML_DESC
        | proc::DOMAIN_GET_VCPUS_FLAGS
        | proc::DOMAIN_MANAGED_SAVE_GET_XML_DESC => Ok(decode::<r::DomainFlagsArgs>(args)?.flags),
        proc::DOMAIN_SNAPSHOT_GET_XML_DESC | proc::DOMAIN_CHECKPOINT_GET_XML_DESC => {
            Ok(decode::<r::SnapshotFlagsArgs>(args)?.flags)
        }
        // The dispatcher takes the client's descriptor first; this daemon receives none.
        proc::DOMAIN_OPEN_GRAPHICS => Err(VirError::rpc_internal("No FD available at slot 0")),
        proc::DOMAIN_SEND_PROCESS_SIGNAL => {
            if decode::<r::DomainSendProcessSignalArgs>(args)?.pid_value == 0 {
                return Err(invalid(
                    "pid_value",
                    format!("pid_value in {api} must not be zero"),
                ));
            }
            Ok(0)
        }
        proc::DOMAIN_RENAME => match decode::<r::DomainRenameArgs>(args)?.new_name {
            None => Err(not_null("new_name")),
            Some(n) if n.is_empty() => Err(invalid(
                "new_name",
                format!("string new_name in {api} must not be empty"),
            )),
            Some(_) => Ok(0),
        },
        proc::DOMAIN_INTERFACE_ADDRESSES => {
            // The read-only check applies to VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT (1);
            // the table's mask tests 1 << source.
            let source = decode::<r::DomainInterfaceAddressesArgs>(args)?.source;
            Ok(1u32.checked_shl(source).unwrap_or(0))
        }
        _ => later_checks(p, api, domain, args, invalid),
    }
}

/// The rest of [`checks_before_read_only`]: typed-parameter and array arguments, mutually
/// exclusive flags, descriptor passing, then [`event_checks`].
fn later_checks(
    p: i32,
    api: &str,
    domain: ErrorDomain,
    args: &[u8],
    invalid: impl Fn(&str, String) -> VirError,
) -> Result<u32, VirError> {
    let not_null = |arg: &str| invalid(arg, format!("{arg} in {api} must not be NULL"));
    match p {
        proc::DOMAIN_SET_LAUNCH_SECURITY_STATE => {
            let a: r::DomainSetLaunchSecurityStateArgs = decode(args)?;
            // The dispatcher copies each parameter into virTypedParameter's 80-byte field.
            if let Some(long) = a.params.iter().find(|t| t.field.len() >= 80) {
                return Err(VirError::new(
                    ErrorCode::InternalError,
                    ErrorDomain::None,
                    format!("parameter {} too big for destination", long.field),
                ));
            }
            if a.params.is_empty() {
                return Err(not_null("params"));
            }
            Ok(0)
        }
        proc::DOMAIN_MANAGED_SAVE_DEFINE_XML => {
            // VIR_DOMAIN_SAVE_RUNNING, VIR_DOMAIN_SAVE_PAUSED
            let flags = decode::<r::DomainManagedSaveDefineXmlArgs>(args)?.flags;
            if flags & 2 != 0 && flags & 4 != 0 {
                return Err(invalid(
                    "ctl",
                    "Flags 'VIR_DOMAIN_SAVE_RUNNING' and 'VIR_DOMAIN_SAVE_PAUSED' are mutually exclusive"
                        .into(),
                ));
            }
            Ok(0)
        }
        proc::CONNECT_BASELINE_HYPERVISOR_CPU => {
            // An empty array reaches the API as a NULL pointer.
            if decode::<r::BaselineHypervisorCpuArgs>(args)?
                .xml_cpus
                .is_empty()
            {
                return Err(not_null("xmlCPUs"));
            }
            Ok(0)
        }
        proc::DOMAIN_AUTHORIZED_SSH_KEYS_SET => {
            // VIR_DOMAIN_AUTHORIZED_SSH_KEYS_SET_APPEND, _REMOVE
            let a: r::AuthorizedSshKeysSetArgs = decode(args)?;
            if a.flags & 3 != 0 && a.keys.is_empty() {
                return Err(not_null("keys"));
            }
            if a.flags & 3 == 3 {
                return Err(invalid(
                    "ctl",
                    "Flags 'VIR_DOMAIN_AUTHORIZED_SSH_KEYS_SET_APPEND' and 'VIR_DOMAIN_AUTHORIZED_SSH_KEYS_SET_REMOVE' are mutually exclusive"
                        .into(),
                ));
            }
            Ok(0)
        }
        // The node-device driver does not claim VIR_DRV_FEATURE_FD_PASSING.
        proc::DOMAIN_FD_ASSOCIATE => Err(VirError::new(
            ErrorCode::ArgumentUnsupported,
            domain,
            "fd passing is not supported by this connection",
        )),
        _ => event_checks(p, args),
    }
}

/// The rest of [`later_checks`]: the dispatchers' checks of other drivers' event
/// registrations and deregistrations.
fn event_checks(p: i32, args: &[u8]) -> Result<u32, VirError> {
    match p {
        // The dispatchers of the event registrations refuse an event ID their release does
        // not know before calling the API: libvirt 11.3's (domain IDs up to 27,
        // NIC_MAC_CHANGE; network up to 1, METADATA_CHANGE; 9.0 stopped at 26 and 0). The
        // legacy domain call stops at VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED (15) on purpose.
        proc::CONNECT_DOMAIN_EVENT_REGISTER_ANY
        | proc::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY
        | proc::CONNECT_NETWORK_EVENT_REGISTER_ANY
        | proc::CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY
        | proc::CONNECT_SECRET_EVENT_REGISTER_ANY => {
            let id = decode::<r::IntRet>(args)?.value;
            let (kind, last) = match p {
                proc::CONNECT_DOMAIN_EVENT_REGISTER_ANY => ("", 15),
                proc::CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY => ("", 27),
                proc::CONNECT_NETWORK_EVENT_REGISTER_ANY => ("network ", 1),
                proc::CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY => ("storage pool ", 1),
                _ => ("secret ", 1),
            };
            if !(0..=last).contains(&id) {
                return Err(VirError::rpc_internal(format!(
                    "unsupported {kind}event ID {id}"
                )));
            }
            Ok(0)
        }
        // libvirt's dispatcher looks a deregistered callback up in the client's own list
        // first; registering one of these never succeeds on a node-device connection.
        proc::CONNECT_DOMAIN_EVENT_DEREGISTER => {
            Err(VirError::rpc_internal("domain event 0 not registered"))
        }
        proc::CONNECT_DOMAIN_EVENT_DEREGISTER_ANY => {
            let id = decode::<r::EventDeregisterAnyArgs>(args)?.callback_id;
            // The event IDs of the legacy call: up to VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED.
            Err(VirError::rpc_internal(if (0..=15).contains(&id) {
                format!("domain event {id} not registered")
            } else {
                format!("unsupported event ID {id}")
            }))
        }
        proc::CONNECT_NETWORK_EVENT_DEREGISTER_ANY
        | proc::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY
        | proc::CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY
        | proc::CONNECT_SECRET_EVENT_DEREGISTER_ANY => {
            let id = decode::<r::EventDeregisterAnyArgs>(args)?.callback_id;
            let kind = match p {
                proc::CONNECT_NETWORK_EVENT_DEREGISTER_ANY => "network",
                proc::CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY => "domain",
                proc::CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY => "storage pool",
                // libvirt 9.0's secret dispatcher says "node device" (its message, copied).
                _ => "node device",
            };
            Err(VirError::rpc_internal(format!(
                "{kind} event callback {id} not registered"
            )))
        }
        _ => Ok(0),
    }
}
