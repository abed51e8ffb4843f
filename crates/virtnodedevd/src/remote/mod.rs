//! The remote program as a node-device daemon serves it: a call is decoded once into a
//! [`RemoteCall`], then handled by the method named after the API it implements:
//! [`connect`] (open, authentication, features), [`queries`] (the node-device queries and
//! events), [`manage`] (the calls that change devices) and [`unsupported`] (every other
//! procedure of the program). Checks run in libvirt's order (decode, connection,
//! read-only, flags, lookup).

mod connect;
mod manage;
mod pci;
mod queries;
mod unsupported;

use std::sync::Arc;

use nodedev::Device;
use protocol::remote::{self as r, proc};
use protocol::{
    procedure, DecodeError, ErrorCode, ErrorDomain, Family, ProcInfo, RemoteCall, VirError,
    LIB_VERSION, REMOTE_PROGRAM, REMOTE_STRING_MAX, REMOTE_VERSION,
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

/// virCheckFlags: the error names only the bits outside `supported`.
fn check_flags(flags: u32, supported: u32, function: &str) -> Result<(), VirError> {
    match flags & !supported {
        0 => Ok(()),
        unsupported => Err(VirError::bad_flags(
            ErrorDomain::NodeDev,
            unsupported.into(),
            function,
        )),
    }
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
            return Reply::err(VirError::rpc(DecodeError.to_string()));
        }
        let call = match RemoteCall::decode(p, args) {
            Ok(c) => c,
            Err(e) => return Reply::err(VirError::rpc(e.to_string())),
        };
        if !call.before_open() && s.uri.is_none() {
            let detail = match info.family {
                Family::Hypervisor => "hypervisor connection not open",
                _ => "connection not open",
            };
            return Reply::err(VirError::rpc_internal(detail));
        }
        self.dispatch(s, info, call, args).await
    }

    fn disconnect(&self, s: Session) {
        self.events.client_gone(s.info.id);
    }

    /// Clients of a polkit socket count against max_anonymous_clients until they pass.
    fn auth_pending(&self, s: &Session) -> bool {
        !s.authenticated
    }
}

impl RemoteProgram {
    /// One decoded call, to the handler named after the API it implements.
    async fn dispatch(
        &self,
        s: &mut Session,
        info: &ProcInfo,
        call: RemoteCall,
        args: &[u8],
    ) -> Reply {
        use RemoteCall as C;
        let result = match call {
            C::ConnectOpen(a) => self.open(s, a),
            C::ConnectClose => {
                return Reply {
                    result: Ok(Vec::new()),
                    close: true,
                    start_keepalive: false,
                    hang_up: false,
                }
            }
            C::AuthList => self.auth_list(s),
            C::AuthPolkit => self.auth_polkit(s).await,
            C::AuthSasl(_) => Err(VirError::new(
                ErrorCode::AuthFailed,
                ErrorDomain::Rpc,
                "authentication failed",
            )),
            C::ConnectSupportsFeature(a) => return self.supports_feature(s, a),
            C::ConnectGetType => encode(&r::StringRet {
                value: "nodedev".into(),
            }),
            C::ConnectGetUri => encode(&r::StringRet {
                value: s.uri.clone().unwrap_or_default(),
            }),
            C::ConnectIsSecure => encode(&r::IntRet { value: 1 }),
            C::ConnectGetLibVersion => encode(&r::HyperRet { value: LIB_VERSION }),
            C::ConnectRegisterCloseCallback | C::ConnectUnregisterCloseCallback => Ok(Vec::new()),
            C::ConnectSetIdentity(_) => Ok(Vec::new()),
            C::NodeNumOfDevices(a) => self.num_of_devices(a),
            C::NodeListDevices(a) => self.list_devices(a),
            C::ConnectListAllNodeDevices(a) => self.list_all(a),
            C::NodeDeviceLookupByName(a) => self.lookup_by_name(a),
            C::NodeDeviceLookupScsiHostByWwn(a) => self.lookup_scsi_host_by_wwn(a),
            C::NodeDeviceGetXmlDesc(a) => self.get_xml_desc(a),
            C::NodeDeviceGetParent(a) => self.get_parent(a),
            C::NodeDeviceNumOfCaps(a) => self.num_of_caps(a),
            C::NodeDeviceListCaps(a) => self.list_caps(a),
            C::NodeDeviceIsActive(a) => self.device_int(&a.name, Device::is_active),
            C::NodeDeviceIsPersistent(a) => self.device_int(&a.name, Device::is_persistent),
            C::NodeDeviceGetAutostart(a) => self.device_int(&a.name, Device::autostart),
            C::ConnectNodeDeviceEventRegisterAny(a) => self.event_register(s, a),
            C::ConnectNodeDeviceEventDeregisterAny(a) => self.event_deregister(s, a),
            C::Manage(call) => {
                // Creating a device waits for the kernel (up to a minute): off the thread
                // that serves every client.
                let driver = self.driver.clone();
                let readonly = s.readonly;
                let api = info.api.unwrap_or(info.name);
                tokio::task::spawn_blocking(move || manage::manage(&driver, readonly, api, call))
                    .await
                    .unwrap_or_else(|_| Err(VirError::no_error_set()))
            }
            C::Pci(call) => {
                // Binding waits for the kernel: off the thread that serves every client.
                let driver = self.driver.clone();
                let readonly = s.readonly;
                let info = *info;
                tokio::task::spawn_blocking(move || pci::pci_call(&driver, readonly, &info, call))
                    .await
                    .unwrap_or_else(|_| Err(VirError::no_error_set()))
            }
            C::Unserved(_) => Err(unsupported::unsupported(info, s.readonly, args)),
        };
        result.into()
    }
}
