//! What the fuzz targets share: decoding the way the daemon decodes, per procedure, with
//! checks that whatever decodes also encodes back consistently.

use protocol::admin::{self as a, ADMIN_PROGRAM, ADMIN_STRING_MAX};
use protocol::remote::{self as r, proc};
use protocol::{REMOTE_PROGRAM, REMOTE_STRING_MAX};
use xdr::{Decoder, Xdr};

/// Decodes a `T` from the front of `data` as the daemon does (strings limited to
/// `string_max`). When it decodes, the value must encode to exactly as many bytes as were
/// consumed (padding and discriminants may differ, lengths not), and that encoding must
/// decode again to the same encoding.
pub fn roundtrip<T: Xdr>(data: &[u8], string_max: u32) -> Option<T> {
    let mut d = Decoder::new(data).with_string_max(string_max);
    let v = T::decode(&mut d).ok()?;
    let consumed = data.len() - d.remaining();
    let bytes = xdr::to_bytes(&v);
    assert_eq!(bytes.len(), consumed, "re-encoding changed the length");
    let again = T::decode(&mut Decoder::new(&bytes).with_string_max(string_max))
        .expect("our own encoding does not decode");
    assert_eq!(xdr::to_bytes(&again), bytes, "encoding is not stable");
    Some(v)
}

/// [`roundtrip`] for a value nothing else looks at.
fn check<T: Xdr>(data: &[u8], string_max: u32) {
    let _ = roundtrip::<T>(data, string_max);
}

/// The argument decoding of one remote-program call, as `virtnodedevd`'s `remote` module
/// does it for procedure `p`, including the parsers the decoded values are handed to.
pub fn remote_call(p: i32, args: &[u8]) {
    let m = REMOTE_STRING_MAX;
    // Every call's arguments are first checked against the procedure's layout.
    let _ = protocol::arg_layouts::args_decode(p, args);
    match p {
        proc::CONNECT_OPEN => check::<r::ConnectOpenArgs>(args, m),
        proc::CONNECT_SUPPORTS_FEATURE => check::<r::SupportsFeatureArgs>(args, m),
        proc::CONNECT_SET_IDENTITY => check::<r::SetIdentityArgs>(args, m),
        proc::NODE_NUM_OF_DEVICES => check::<r::NodeNumOfDevicesArgs>(args, m),
        proc::NODE_LIST_DEVICES => check::<r::NodeListDevicesArgs>(args, m),
        proc::CONNECT_LIST_ALL_NODE_DEVICES => check::<r::ListAllArgs>(args, m),
        proc::NODE_DEVICE_LOOKUP_SCSI_HOST_BY_WWN => check::<r::LookupScsiHostByWwnArgs>(args, m),
        proc::NODE_DEVICE_GET_XML_DESC | proc::NODE_DEVICE_UNDEFINE | proc::NODE_DEVICE_CREATE => {
            check::<r::NameFlagsArgs>(args, m)
        }
        proc::NODE_DEVICE_LOOKUP_BY_NAME
        | proc::NODE_DEVICE_GET_PARENT
        | proc::NODE_DEVICE_NUM_OF_CAPS
        | proc::NODE_DEVICE_IS_ACTIVE
        | proc::NODE_DEVICE_IS_PERSISTENT
        | proc::NODE_DEVICE_GET_AUTOSTART
        | proc::NODE_DEVICE_DESTROY => check::<r::NameArgs>(args, m),
        proc::NODE_DEVICE_LIST_CAPS => check::<r::ListCapsArgs>(args, m),
        proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY => check::<r::EventRegisterAnyArgs>(args, m),
        proc::CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY => {
            check::<r::EventDeregisterAnyArgs>(args, m)
        }
        proc::NODE_DEVICE_SET_AUTOSTART => check::<r::SetAutostartArgs>(args, m),
        proc::NODE_DEVICE_CREATE_XML | proc::NODE_DEVICE_DEFINE_XML => {
            if let Some(x) = roundtrip::<r::XmlFlagsArgs>(args, m) {
                let _ = nodedev::parse::parse_definition(&x.xml_desc, x.flags & 1 != 0);
            }
        }
        proc::NODE_DEVICE_UPDATE => {
            if let Some(x) = roundtrip::<r::NodeDeviceUpdateArgs>(args, m) {
                let _ = nodedev::parse::parse_existing(&x.xml_desc);
            }
        }
        // Unsupported calls whose answer depends on their arguments (checks before the
        // read-only one).
        proc::DOMAIN_GET_XML_DESC
        | proc::DOMAIN_GET_VCPUS_FLAGS
        | proc::DOMAIN_MANAGED_SAVE_GET_XML_DESC => check::<r::DomainFlagsArgs>(args, m),
        proc::DOMAIN_SNAPSHOT_GET_XML_DESC | proc::DOMAIN_CHECKPOINT_GET_XML_DESC => {
            check::<r::SnapshotFlagsArgs>(args, m)
        }
        proc::DOMAIN_SEND_PROCESS_SIGNAL => check::<r::DomainSendProcessSignalArgs>(args, m),
        proc::DOMAIN_INTERFACE_ADDRESSES => check::<r::DomainInterfaceAddressesArgs>(args, m),
        proc::DOMAIN_RENAME => check::<r::DomainRenameArgs>(args, m),
        proc::DOMAIN_MANAGED_SAVE_DEFINE_XML => check::<r::DomainManagedSaveDefineXmlArgs>(args, m),
        proc::CONNECT_BASELINE_HYPERVISOR_CPU => check::<r::BaselineHypervisorCpuArgs>(args, m),
        proc::DOMAIN_AUTHORIZED_SSH_KEYS_SET => check::<r::AuthorizedSshKeysSetArgs>(args, m),
        proc::DOMAIN_SET_LAUNCH_SECURITY_STATE => {
            check::<r::DomainSetLaunchSecurityStateArgs>(args, m)
        }
        _ => {}
    }
}

/// Every remote procedure whose arguments the daemon decodes (new ones go at the end:
/// the seeds choose by index).
pub const REMOTE_PROCS: &[i32] = &[
    proc::CONNECT_OPEN,
    proc::CONNECT_SUPPORTS_FEATURE,
    proc::CONNECT_SET_IDENTITY,
    proc::NODE_NUM_OF_DEVICES,
    proc::NODE_LIST_DEVICES,
    proc::CONNECT_LIST_ALL_NODE_DEVICES,
    proc::NODE_DEVICE_LOOKUP_SCSI_HOST_BY_WWN,
    proc::NODE_DEVICE_GET_XML_DESC,
    proc::NODE_DEVICE_UNDEFINE,
    proc::NODE_DEVICE_CREATE,
    proc::NODE_DEVICE_LOOKUP_BY_NAME,
    proc::NODE_DEVICE_GET_PARENT,
    proc::NODE_DEVICE_NUM_OF_CAPS,
    proc::NODE_DEVICE_IS_ACTIVE,
    proc::NODE_DEVICE_IS_PERSISTENT,
    proc::NODE_DEVICE_GET_AUTOSTART,
    proc::NODE_DEVICE_DESTROY,
    proc::NODE_DEVICE_LIST_CAPS,
    proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
    proc::CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY,
    proc::NODE_DEVICE_SET_AUTOSTART,
    proc::NODE_DEVICE_CREATE_XML,
    proc::NODE_DEVICE_DEFINE_XML,
    proc::NODE_DEVICE_UPDATE,
    proc::DOMAIN_GET_XML_DESC,
    proc::DOMAIN_GET_VCPUS_FLAGS,
    proc::DOMAIN_MANAGED_SAVE_GET_XML_DESC,
    proc::DOMAIN_SNAPSHOT_GET_XML_DESC,
    proc::DOMAIN_CHECKPOINT_GET_XML_DESC,
    proc::DOMAIN_SEND_PROCESS_SIGNAL,
    proc::DOMAIN_INTERFACE_ADDRESSES,
    proc::DOMAIN_RENAME,
    proc::DOMAIN_MANAGED_SAVE_DEFINE_XML,
    proc::CONNECT_BASELINE_HYPERVISOR_CPU,
    proc::DOMAIN_AUTHORIZED_SSH_KEYS_SET,
    proc::DOMAIN_SET_LAUNCH_SECURITY_STATE,
];

/// The argument decoding of one admin-program call, as `virtnodedevd`'s `admin` module
/// does it, including the log filter/output parsers the logging calls feed.
pub fn admin_call(p: i32, args: &[u8]) {
    let m = ADMIN_STRING_MAX;
    use a::proc as ap;
    match p {
        ap::CONNECT_OPEN | ap::CONNECT_GET_LOGGING_OUTPUTS | ap::CONNECT_GET_LOGGING_FILTERS => {
            check::<a::FlagsArgs>(args, m)
        }
        ap::CONNECT_LIST_SERVERS => check::<a::ListServersArgs>(args, m),
        ap::CONNECT_LOOKUP_SERVER => check::<a::LookupServerArgs>(args, m),
        ap::SERVER_GET_THREADPOOL_PARAMETERS
        | ap::SERVER_GET_CLIENT_LIMITS
        | ap::SERVER_UPDATE_TLS_FILES => check::<a::ServerFlagsArgs>(args, m),
        ap::SERVER_SET_THREADPOOL_PARAMETERS | ap::SERVER_SET_CLIENT_LIMITS => {
            check::<a::SetParamsArgs>(args, m)
        }
        ap::SERVER_LIST_CLIENTS => check::<a::ListClientsArgs>(args, m),
        ap::SERVER_LOOKUP_CLIENT => check::<a::LookupClientArgs>(args, m),
        ap::CLIENT_GET_INFO | ap::CLIENT_CLOSE => check::<a::ClientFlagsArgs>(args, m),
        ap::CONNECT_SET_LOGGING_OUTPUTS => {
            if let Some(s) = roundtrip::<a::SetStringArgs>(args, m) {
                let _ = virconf::log::parse_log_outputs(s.value.as_deref().unwrap_or(""));
            }
        }
        ap::CONNECT_SET_LOGGING_FILTERS => {
            if let Some(s) = roundtrip::<a::SetStringArgs>(args, m) {
                let _ = virconf::log::parse_log_filters(s.value.as_deref().unwrap_or(""));
            }
        }
        ap::CONNECT_SET_DAEMON_TIMEOUT => check::<a::SetTimeoutArgs>(args, m),
        _ => {}
    }
}

/// A call's arguments handed to the program it names, as the daemon's sockets would.
pub fn program_call(prog: u32, p: i32, args: &[u8]) {
    match prog {
        REMOTE_PROGRAM => remote_call(p, args),
        ADMIN_PROGRAM => admin_call(p, args),
        _ => {}
    }
}
