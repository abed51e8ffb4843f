//! The remote program as a node-device daemon serves it: connection procedures and the
//! node-device API. Each handler decodes its arguments, asks the driver, encodes the
//! answer; the checks run in libvirt's order (connection, read-only, flags, lookup).

use std::sync::Arc;

use nodedev::{CapType, Device};
use protocol::remote::{self as r, proc};
use protocol::{
    feature, list_flags, procedure, ErrorCode, ErrorDomain, Family, ProcInfo, ReadOnly, VirError,
    LIB_VERSION, REMOTE_NODE_DEVICE_CAPS_LIST_MAX, REMOTE_NODE_DEVICE_LIST_MAX, REMOTE_PROGRAM,
    REMOTE_STRING_MAX, REMOTE_VERSION, VIR_CONNECT_RO,
};
use rpc::{ClientInfo, EventSender, Header, Reply, Service};
use xdr::{Decoder, Xdr};

use crate::driver::{DeviceList, Driver};

/// How a socket authenticates its clients (auth_unix_rw / auth_unix_ro).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    /// SASL is offered as libvirt offers it, but no mechanism is implemented: every
    /// client stays unauthenticated (fail closed, root included, as SASL exempts no one).
    Sasl,
    Polkit,
}

/// The remote program on one listening socket.
pub struct RemoteProgram {
    pub driver: Arc<Driver>,
    pub events: Arc<crate::events::Events>,
    pub auth: Auth,
    pub privileged: bool,
}

pub struct Session {
    info: ClientInfo,
    authenticated: bool,
    /// The URI accepted by CONNECT_OPEN; `None` until then.
    uri: Option<String>,
    readonly: bool,
    events: EventSender,
}

type CallResult = Result<Vec<u8>, VirError>;

fn encode<T: Xdr>(v: &T) -> CallResult {
    Ok(xdr::to_bytes(v))
}

fn decode<T: Xdr>(args: &[u8]) -> Result<T, VirError> {
    T::decode(&mut Decoder::new(args).with_string_max(REMOTE_STRING_MAX))
        .map_err(|_| VirError::rpc("Unable to decode message payload"))
}

fn no_device(name: &str) -> VirError {
    VirError::new(
        ErrorCode::NoNodeDevice,
        ErrorDomain::NodeDev,
        format!("no node device with matching name '{name}'"),
    )
}

/// `virCheckReadOnlyGoto()` in the public API `api`, whose source file reports in `domain`.
fn read_only(domain: ErrorDomain, api: &str) -> VirError {
    VirError::new(
        ErrorCode::OperationDenied,
        domain,
        format!("read only access prevents {api}"),
    )
}

fn bad_flags(flags: u32, function: &str) -> VirError {
    VirError::bad_flags(ErrorDomain::NodeDev, flags.into(), function)
}

fn lookup<'a>(list: &'a DeviceList, name: &str) -> Result<&'a Device, VirError> {
    list.get(name).ok_or_else(|| no_device(name))
}

impl Service for RemoteProgram {
    type Session = Session;

    fn has_program(&self, prog: u32, vers: u32) -> bool {
        prog == REMOTE_PROGRAM && vers == REMOTE_VERSION
    }

    fn connect(&self, info: ClientInfo, events: EventSender) -> Session {
        // Root passes a polkit socket without asking polkit, as libvirt does.
        let authenticated = match self.auth {
            Auth::None => true,
            Auth::Polkit => info.uid == 0,
            Auth::Sasl => false,
        };
        Session {
            readonly: info.readonly,
            info,
            authenticated,
            uri: None,
            events,
        }
    }

    async fn call(&self, s: &mut Session, header: &Header, args: &[u8]) -> Reply {
        let p = header.proc_;
        let Some(info) = procedure(p).filter(|i| i.family != Family::Event) else {
            return Reply::err(VirError::rpc(format!("unknown procedure: {p}")));
        };
        if !s.authenticated && !matches!(p, proc::AUTH_LIST..=proc::AUTH_POLKIT) {
            return Reply::err(VirError::rpc("authentication required"));
        }
        // libvirt decodes a call's arguments before its dispatcher looks at anything, the
        // procedures this daemon does not serve included.
        if !protocol::arg_layouts::args_decode(p, args) {
            return Reply::err(VirError::rpc("Unable to decode message payload"));
        }
        match p {
            proc::CONNECT_OPEN => return self.open(s, args).into(),
            proc::CONNECT_CLOSE => {
                return Reply {
                    result: Ok(Vec::new()),
                    close: true,
                    start_keepalive: false,
                }
            }
            proc::AUTH_LIST => return self.auth_list(s).into(),
            proc::AUTH_POLKIT => return self.auth_polkit(s).into(),
            proc::AUTH_SASL_INIT | proc::AUTH_SASL_START | proc::AUTH_SASL_STEP => {
                return Reply::err(VirError::new(
                    ErrorCode::AuthFailed,
                    ErrorDomain::Rpc,
                    "authentication failed",
                ))
            }
            proc::CONNECT_SUPPORTS_FEATURE => return self.supports_feature(s, args),
            _ => {}
        }
        if s.uri.is_none() {
            let detail = match info.family {
                Family::Hypervisor => "hypervisor connection not open",
                _ => "connection not open",
            };
            return Reply::err(VirError::rpc_internal(detail));
        }
        if is_manage(p) {
            // Creating a device waits for the kernel (up to a minute): off the thread that
            // serves every client.
            let driver = self.driver.clone();
            let readonly = s.readonly;
            let args = args.to_vec();
            return tokio::task::spawn_blocking(move || manage(&driver, readonly, p, &args))
                .await
                .unwrap_or_else(|_| Err(VirError::no_error_set()))
                .into();
        }
        self.dispatch_open(s, p, args)
            .unwrap_or_else(|| Err(unsupported(info, s.readonly, args)))
            .into()
    }

    fn disconnect(&self, s: Session) {
        self.events.client_gone(s.info.id);
    }

    /// Clients of a polkit socket count against max_anonymous_clients until they pass.
    fn auth_pending(&self, s: &Session) -> bool {
        !s.authenticated
    }
}

/// Any other API of the remote program (the node-device driver has none of them), answered
/// as libvirt's daemon answers it: its dispatcher calls the public API on a connection
/// opened read-only for a read-only client, and the API's checks run before it finds no
/// driver method — the argument checks some APIs make first, then the read-only refusal,
/// then NO_SUPPORT.
fn unsupported(info: &ProcInfo, readonly: bool, args: &[u8]) -> VirError {
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
        // The node-device driver does not claim VIR_DRV_FEATURE_FD_PASSING.
        proc::DOMAIN_FD_ASSOCIATE => Err(VirError::new(
            ErrorCode::ArgumentUnsupported,
            domain,
            "fd passing is not supported by this connection",
        )),
        _ => Ok(0),
    }
}

impl RemoteProgram {
    fn auth_list(&self, s: &mut Session) -> CallResult {
        let t = match self.auth {
            _ if s.authenticated => r::auth_type::NONE,
            Auth::Sasl => r::auth_type::SASL,
            _ => r::auth_type::POLKIT,
        };
        encode(&r::AuthListRet { types: vec![t] })
    }

    fn auth_polkit(&self, s: &mut Session) -> CallResult {
        if self.auth != Auth::Polkit || s.authenticated {
            return Err(VirError::no_error_set());
        }
        // Asking polkitd over D-Bus is not implemented yet: refuse rather than let an
        // unprivileged client in.
        Err(VirError::new(
            ErrorCode::AuthFailed,
            ErrorDomain::Polkit,
            "access denied by policy",
        ))
    }

    fn supports_feature(&self, s: &mut Session, args: &[u8]) -> Reply {
        let a: r::SupportsFeatureArgs = match decode(args) {
            Ok(a) => a,
            Err(e) => return Reply::err(e),
        };
        if s.uri.is_none() && a.feature != feature::PROGRAM_KEEPALIVE {
            return Reply::err(VirError::rpc_internal("hypervisor connection not open"));
        }
        let supported = matches!(
            a.feature,
            feature::FD_PASSING
                | feature::PROGRAM_KEEPALIVE
                | feature::REMOTE_EVENT_CALLBACK
                | feature::REMOTE_CLOSE_CALLBACK
        );
        Reply {
            result: encode(&r::IntRet {
                value: supported as i32,
            }),
            close: false,
            start_keepalive: a.feature == feature::PROGRAM_KEEPALIVE,
        }
    }

    fn open(&self, s: &mut Session, args: &[u8]) -> CallResult {
        let a: r::ConnectOpenArgs = decode(args)?;
        if s.uri.is_some() {
            // libvirt also forgets the connection it had.
            s.uri = None;
            s.readonly = s.info.readonly;
            return Err(VirError::rpc_internal("connection already open"));
        }
        let Some(name) = a.name else {
            return Err(VirError::rpc_internal("connection not open"));
        };
        s.uri = Some(self.accept_uri(&name)?);
        s.readonly = s.info.readonly || a.flags & VIR_CONNECT_RO != 0;
        Ok(Vec::new())
    }

    /// Checks a CONNECT_OPEN URI as the nodedev driver's open does, returning the URI
    /// that CONNECT_GET_URI reports.
    fn accept_uri(&self, name: &str) -> Result<String, VirError> {
        let expected = if self.privileged {
            "/system"
        } else {
            "/session"
        };
        // An empty name comes from `remote:` URIs; this daemon has only one driver.
        if name.is_empty() {
            return Ok(format!("nodedev://{expected}"));
        }
        let no_driver = |what: String| VirError::new(ErrorCode::NoConnect, ErrorDomain::None, what);
        let Some((scheme, rest)) = name.split_once(':') else {
            return Err(no_driver(format!(
                "URI '{name}' does not include a driver name"
            )));
        };
        if scheme != "nodedev" {
            return Err(no_driver(name.to_owned()));
        }
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let path = if let Some(after) = rest.strip_prefix("//") {
            let (host, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            if !host.is_empty() {
                // The node-device driver is local only.
                return Err(no_driver(name.to_owned()));
            }
            path
        } else {
            rest
        };
        let path = path.split('#').next().unwrap_or("");
        if path != expected {
            return Err(VirError::new(
                ErrorCode::InternalError,
                ErrorDomain::None,
                format!("unexpected nodedev URI path '{path}', try nodedev://{expected}"),
            ));
        }
        Ok(match query {
            Some(q) => format!("nodedev://{expected}?{q}"),
            None => format!("nodedev://{expected}"),
        })
    }

    /// The procedures served once the connection is open; `None` for the rest.
    fn dispatch_open(&self, s: &mut Session, p: i32, args: &[u8]) -> Option<CallResult> {
        let res = match p {
            proc::CONNECT_GET_TYPE => encode(&r::StringRet {
                value: "nodedev".into(),
            }),
            proc::CONNECT_GET_URI => encode(&r::StringRet {
                value: s.uri.clone().unwrap_or_default(),
            }),
            proc::CONNECT_IS_SECURE => encode(&r::IntRet { value: 1 }),
            proc::CONNECT_GET_LIB_VERSION => encode(&r::HyperRet { value: LIB_VERSION }),
            proc::CONNECT_REGISTER_CLOSE_CALLBACK | proc::CONNECT_UNREGISTER_CLOSE_CALLBACK => {
                Ok(Vec::new())
            }
            proc::CONNECT_SET_IDENTITY => decode::<r::SetIdentityArgs>(args).map(|_| Vec::new()),
            proc::NODE_NUM_OF_DEVICES => self.num_of_devices(args),
            proc::NODE_LIST_DEVICES => self.list_devices(args),
            proc::CONNECT_LIST_ALL_NODE_DEVICES => self.list_all(args),
            proc::NODE_DEVICE_LOOKUP_BY_NAME => self.lookup_by_name(args),
            proc::NODE_DEVICE_LOOKUP_SCSI_HOST_BY_WWN => self.lookup_scsi_host_by_wwn(args),
            proc::NODE_DEVICE_GET_XML_DESC => self.get_xml_desc(args),
            proc::NODE_DEVICE_GET_PARENT => self.get_parent(args),
            proc::NODE_DEVICE_NUM_OF_CAPS => self.num_of_caps(args),
            proc::NODE_DEVICE_LIST_CAPS => self.list_caps(args),
            proc::NODE_DEVICE_IS_ACTIVE => self.device_int(args, |d| d.is_active()),
            proc::NODE_DEVICE_IS_PERSISTENT => self.device_int(args, |d| d.is_persistent()),
            proc::NODE_DEVICE_GET_AUTOSTART => {
                // libvirt 9.0's public API refuses this one on read-only connections, once
                // the arguments are decoded.
                match decode::<r::NameArgs>(args) {
                    Err(e) => Err(e),
                    Ok(_) if s.readonly => {
                        Err(read_only(ErrorDomain::NodeDev, "virNodeDeviceGetAutostart"))
                    }
                    Ok(_) => self.device_int(args, |d| d.autostart()),
                }
            }
            proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY => self.event_register(s, args),
            proc::CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY => self.event_deregister(s, args),
            _ => return None,
        };
        Some(res)
    }

    fn num_of_devices(&self, args: &[u8]) -> CallResult {
        let a: r::NodeNumOfDevicesArgs = decode(args)?;
        if a.flags != 0 {
            return Err(bad_flags(a.flags, "nodeNumOfDevices"));
        }
        let list = self.driver.devices();
        let n = list
            .iter()
            .filter(|d| has_cap_str(d, a.cap.as_deref()))
            .count();
        encode(&r::IntRet { value: n as i32 })
    }

    fn list_devices(&self, args: &[u8]) -> CallResult {
        let a: r::NodeListDevicesArgs = decode(args)?;
        check_maxnames(
            a.maxnames,
            REMOTE_NODE_DEVICE_LIST_MAX,
            "REMOTE_NODE_DEVICE_LIST_MAX",
        )?;
        if a.flags != 0 {
            return Err(bad_flags(a.flags, "nodeListDevices"));
        }
        let list = self.driver.devices();
        let names = list
            .iter()
            .filter(|d| has_cap_str(d, a.cap.as_deref()))
            .take(a.maxnames as usize)
            .map(|d| d.name().to_owned())
            .collect();
        encode(&r::NamesRet { names })
    }

    fn list_all(&self, args: &[u8]) -> CallResult {
        let a: r::ListAllArgs = decode(args)?;
        if a.flags & !list_flags::ALL != 0 {
            return Err(bad_flags(a.flags, "nodeConnectListAllNodeDevices"));
        }
        let list = self.driver.devices();
        let matching = list.iter().filter(|d| matches_list_flags(d, a.flags));
        if a.need_results == 0 {
            return encode(&r::ListAllRet {
                devices: Vec::new(),
                ret: matching.count() as u32,
            });
        }
        let devices: Vec<r::NodeDevice> = matching
            .map(|d| r::NodeDevice {
                name: d.name().to_owned(),
            })
            .collect();
        if devices.len() > REMOTE_NODE_DEVICE_LIST_MAX {
            return Err(VirError::rpc_internal(format!(
                "Too many node_devices '{}' for limit '{}'",
                devices.len(),
                REMOTE_NODE_DEVICE_LIST_MAX
            )));
        }
        let ret = devices.len() as u32;
        encode(&r::ListAllRet { devices, ret })
    }

    fn lookup_by_name(&self, args: &[u8]) -> CallResult {
        let a: r::NameArgs = decode(args)?;
        let list = self.driver.devices();
        let dev = lookup(&list, &a.name)?;
        encode(&r::NodeDeviceRet {
            dev: r::NodeDevice {
                name: dev.name().to_owned(),
            },
        })
    }

    fn lookup_scsi_host_by_wwn(&self, args: &[u8]) -> CallResult {
        let a: r::LookupScsiHostByWwnArgs = decode(args)?;
        if a.flags != 0 {
            return Err(bad_flags(a.flags, "nodeDeviceLookupSCSIHostByWWN"));
        }
        let list = self.driver.devices();
        let found = list
            .iter()
            .find(|d| d.scsi_host_wwns() == Some((a.wwnn.as_str(), a.wwpn.as_str())));
        match found {
            Some(d) => encode(&r::NodeDeviceRet {
                dev: r::NodeDevice {
                    name: d.name().to_owned(),
                },
            }),
            // libvirt 9.0's driver fails here without reporting an error.
            None => Err(VirError::unknown_cause()),
        }
    }

    fn get_xml_desc(&self, args: &[u8]) -> CallResult {
        let a: r::NameFlagsArgs = decode(args)?;
        // VIR_NODE_DEVICE_XML_INACTIVE (libvirt 10.1.0): the defined configuration.
        if a.flags & !1 != 0 {
            return Err(bad_flags(a.flags, "nodeDeviceGetXMLDesc"));
        }
        let list = self.driver.devices();
        let dev = self.driver.refreshed(lookup(&list, &a.name)?);
        let inactive;
        let xml = if a.flags & 1 != 0 {
            inactive = crate::manage::inactive_xml(&self.driver, &dev.device)?;
            &inactive
        } else {
            &dev.xml
        };
        // remote_node_device_get_xml_desc_ret is one string; encoded in place.
        let mut e = xdr::Encoder::new();
        e.put_str(xml);
        Ok(e.into_inner())
    }

    fn get_parent(&self, args: &[u8]) -> CallResult {
        let a: r::NameArgs = decode(args)?;
        let list = self.driver.devices();
        let dev = lookup(&list, &a.name)?;
        encode(&r::OptStringRet {
            value: dev.parent().map(str::to_owned),
        })
    }

    fn num_of_caps(&self, args: &[u8]) -> CallResult {
        let a: r::NameArgs = decode(args)?;
        let list = self.driver.devices();
        let dev = self.driver.refreshed(lookup(&list, &a.name)?);
        encode(&r::IntRet {
            value: dev.device.caps().len() as i32,
        })
    }

    fn list_caps(&self, args: &[u8]) -> CallResult {
        let a: r::ListCapsArgs = decode(args)?;
        check_maxnames(
            a.maxnames,
            REMOTE_NODE_DEVICE_CAPS_LIST_MAX,
            "REMOTE_NODE_DEVICE_CAPS_LIST_MAX",
        )?;
        let list = self.driver.devices();
        let dev = self.driver.refreshed(lookup(&list, &a.name)?);
        let names = dev
            .device
            .caps()
            .into_iter()
            .take(a.maxnames as usize)
            .map(|c| c.name().to_owned())
            .collect();
        encode(&r::NamesRet { names })
    }

    fn device_int(&self, args: &[u8], f: impl Fn(&Device) -> bool) -> CallResult {
        let a: r::NameArgs = decode(args)?;
        let list = self.driver.devices();
        let dev = lookup(&list, &a.name)?;
        encode(&r::IntRet {
            value: f(dev) as i32,
        })
    }

    fn event_register(&self, s: &mut Session, args: &[u8]) -> CallResult {
        let a: r::EventRegisterAnyArgs = decode(args)?;
        if !matches!(
            a.event_id,
            protocol::event_id::LIFECYCLE | protocol::event_id::UPDATE
        ) {
            return Err(VirError::rpc_internal(format!(
                "unsupported node device event ID {}",
                a.event_id
            )));
        }
        let id = self.events.register(
            s.info.id,
            a.event_id,
            a.dev.map(|d| d.name),
            s.events.clone(),
        );
        encode(&r::IntRet { value: id })
    }

    fn event_deregister(&self, s: &mut Session, args: &[u8]) -> CallResult {
        let a: r::EventDeregisterAnyArgs = decode(args)?;
        if !self.events.deregister(s.info.id, a.callback_id) {
            return Err(VirError::rpc_internal(format!(
                "node device event callback {} not registered",
                a.callback_id
            )));
        }
        Ok(Vec::new())
    }
}

/// Procedures that change devices, run off the serving thread.
fn is_manage(p: i32) -> bool {
    matches!(
        p,
        proc::NODE_DEVICE_CREATE_XML
            | proc::NODE_DEVICE_DEFINE_XML
            | proc::NODE_DEVICE_DESTROY
            | proc::NODE_DEVICE_UNDEFINE
            | proc::NODE_DEVICE_CREATE
            | proc::NODE_DEVICE_SET_AUTOSTART
            | proc::NODE_DEVICE_UPDATE
    )
}

/// The calls that change devices: mediated devices and vHBAs (see `mdev`). libvirt
/// decodes the arguments, then its public API refuses read-only connections.
fn manage(driver: &Driver, readonly: bool, p: i32, args: &[u8]) -> CallResult {
    let api = procedure(p).and_then(|i| i.api).unwrap_or("");
    // The arguments, once the connection may write.
    fn writable<T: Xdr>(args: &[u8], readonly: bool, api: &str) -> Result<T, VirError> {
        let a = decode(args)?;
        if readonly {
            return Err(read_only(ErrorDomain::NodeDev, api));
        }
        Ok(a)
    }
    let list = driver.devices();
    match p {
        proc::NODE_DEVICE_CREATE_XML | proc::NODE_DEVICE_DEFINE_XML => {
            let a: r::XmlFlagsArgs = writable(args, readonly, api)?;
            let function = if p == proc::NODE_DEVICE_CREATE_XML {
                "nodeDeviceCreateXML"
            } else {
                "nodeDeviceDefineXML"
            };
            // VIR_NODE_DEVICE_CREATE_XML_VALIDATE / VIR_NODE_DEVICE_DEFINE_XML_VALIDATE
            if a.flags & !1 != 0 {
                return Err(bad_flags(a.flags, function));
            }
            let validate = a.flags & 1 != 0;
            let name = if p == proc::NODE_DEVICE_CREATE_XML {
                crate::manage::create_xml(driver, &a.xml_desc, validate)?
            } else {
                crate::manage::define_xml(driver, &a.xml_desc, validate)?
            };
            encode(&r::NodeDeviceRet {
                dev: r::NodeDevice { name },
            })
        }
        proc::NODE_DEVICE_DESTROY => {
            let a: r::NameArgs = writable(args, readonly, api)?;
            lookup(&list, &a.name)?;
            crate::manage::destroy(driver, &a.name)?;
            encode(&())
        }
        proc::NODE_DEVICE_UNDEFINE | proc::NODE_DEVICE_CREATE => {
            let a: r::NameFlagsArgs = writable(args, readonly, api)?;
            let function = if p == proc::NODE_DEVICE_UNDEFINE {
                "nodeDeviceUndefine"
            } else {
                "nodeDeviceCreate"
            };
            if a.flags != 0 {
                return Err(bad_flags(a.flags, function));
            }
            let dev = lookup(&list, &a.name)?;
            if p == proc::NODE_DEVICE_CREATE && dev.is_active() {
                return Err(VirError::new(
                    ErrorCode::OperationInvalid,
                    ErrorDomain::NodeDev,
                    "Device is already active",
                ));
            }
            if p == proc::NODE_DEVICE_UNDEFINE {
                crate::manage::undefine(driver, &a.name)?;
            } else {
                crate::manage::start(driver, &a.name)?;
            }
            encode(&())
        }
        proc::NODE_DEVICE_UPDATE => {
            let a: r::NodeDeviceUpdateArgs = writable(args, readonly, api)?;
            let known = crate::manage::UPDATE_AFFECT_LIVE | crate::manage::UPDATE_AFFECT_CONFIG;
            if a.flags & !known != 0 {
                return Err(bad_flags(a.flags, "nodeDeviceUpdate"));
            }
            lookup(&list, &a.name)?;
            crate::manage::update(driver, &a.name, &a.xml_desc, a.flags)?;
            encode(&())
        }
        _ => {
            let a: r::SetAutostartArgs = writable(args, readonly, api)?;
            lookup(&list, &a.name)?;
            crate::manage::set_autostart(driver, &a.name, a.autostart != 0)?;
            encode(&())
        }
    }
}

fn check_maxnames(maxnames: i32, max: usize, what: &str) -> Result<(), VirError> {
    if maxnames < 0 {
        return Err(VirError::rpc("maxnames must be non-negative"));
    }
    if maxnames as usize > max {
        return Err(VirError::rpc(format!("maxnames > {what}")));
    }
    Ok(())
}

/// NUM_OF_DEVICES / LIST_DEVICES filter: no cap, or a capability the device has
/// (nested ones included); unknown names match nothing.
fn has_cap_str(d: &Device, cap: Option<&str>) -> bool {
    match cap {
        None => true,
        Some(c) => CapType::from_name(c).is_some_and(|c| d.has_cap(c)),
    }
}

/// virNodeDeviceMatch: any requested capability, and one of the requested states.
fn matches_list_flags(d: &Device, flags: u32) -> bool {
    let caps = flags & list_flags::CAP_MASK;
    if caps != 0
        && !CapType::ALL
            .iter()
            .any(|&c| caps & c.list_flag() != 0 && d.has_cap(c))
    {
        return false;
    }
    let states = flags & (list_flags::ACTIVE | list_flags::INACTIVE);
    if states != 0 {
        let want = if d.is_active() {
            list_flags::ACTIVE
        } else {
            list_flags::INACTIVE
        };
        if states & want == 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(privileged: bool) -> RemoteProgram {
        let events = Arc::new(crate::events::Events::default());
        RemoteProgram {
            driver: Arc::new(Driver::new(
                nodedev::HostRoot::new("/nonexistent"),
                |_| {},
                events.clone(),
            )),
            events,
            auth: Auth::None,
            privileged,
        }
    }

    #[test]
    fn open_accepts_system_uris_as_libvirt_does() {
        let p = program(true);
        assert_eq!(
            p.accept_uri("nodedev:///system").unwrap(),
            "nodedev:///system"
        );
        assert_eq!(
            p.accept_uri("nodedev:/system").unwrap(),
            "nodedev:///system"
        );
        assert_eq!(
            p.accept_uri("nodedev:///system?foo=bar").unwrap(),
            "nodedev:///system?foo=bar"
        );
        assert_eq!(
            p.accept_uri("nodedev:///session").unwrap_err().message,
            "internal error: unexpected nodedev URI path '/session', try nodedev:///system"
        );
        assert_eq!(
            p.accept_uri("bogus:///system").unwrap_err().message,
            "no connection driver available for bogus:///system"
        );
        assert_eq!(
            p.accept_uri("nodedev").unwrap_err().message,
            "no connection driver available for URI 'nodedev' does not include a driver name"
        );
        assert_eq!(
            p.accept_uri("NODEDEV:///system").unwrap_err().code,
            ErrorCode::NoConnect as i32
        );
    }

    #[test]
    fn maxnames_limits_give_rpc_errors() {
        assert_eq!(
            check_maxnames(65537, 65536, "REMOTE_NODE_DEVICE_LIST_MAX")
                .unwrap_err()
                .message,
            "maxnames > REMOTE_NODE_DEVICE_LIST_MAX"
        );
        assert!(check_maxnames(-1, 65536, "X").is_err());
        assert!(check_maxnames(65536, 65536, "X").is_ok());
    }
}
