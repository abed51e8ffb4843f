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

use crate::access::{AccessManager, Perm};
use crate::driver::{DeviceList, Driver};
use crate::events::EventSink;

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
    pub access: AccessManager,
}

pub struct Session {
    info: ClientInfo,
    authenticated: bool,
    /// The URI accepted by CONNECT_OPEN; `None` until then.
    uri: Option<String>,
    readonly: bool,
    events: EventSender,
    /// Where this client's event callbacks send, made at its first registration.
    event_sink: Option<EventSink>,
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

/// [`lookup`], the device as the list shares it.
fn lookup_shared<'a>(list: &'a DeviceList, name: &str) -> Result<&'a Arc<Device>, VirError> {
    list.shared(name).ok_or_else(|| no_device(name))
}

impl Service for RemoteProgram {
    type Session = Session;

    fn has_program(&self, prog: u32, vers: u32) -> bool {
        prog == REMOTE_PROGRAM && vers == REMOTE_VERSION
    }

    fn connect(&self, info: ClientInfo, events: EventSender) -> Session {
        // On a polkit socket root too starts unauthenticated: libvirt lets it through at
        // AUTH_LIST, without asking polkit.
        let authenticated = self.auth == Auth::None;
        Session {
            readonly: info.readonly,
            info,
            authenticated,
            uri: None,
            events,
            event_sink: None,
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
            C::ConnectOpen(a) => self.open(s, a).await,
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
            C::ConnectSetIdentity(a) => self.set_identity(s, a).await,
            C::NodeNumOfDevices(a) => self.num_of_devices(s, a).await,
            C::NodeListDevices(a) => self.list_devices(s, a).await,
            C::ConnectListAllNodeDevices(a) => self.list_all(s, a).await,
            C::NodeDeviceLookupByName(a) => self.lookup_by_name(s, a).await,
            C::NodeDeviceLookupScsiHostByWwn(a) => self.lookup_scsi_host_by_wwn(s, a).await,
            C::NodeDeviceGetXmlDesc(a) => self.get_xml_desc(s, a).await,
            C::NodeDeviceGetParent(a) => self.get_parent(s, a).await,
            C::NodeDeviceNumOfCaps(a) => self.num_of_caps(s, a).await,
            C::NodeDeviceListCaps(a) => self.list_caps(s, a).await,
            C::NodeDeviceIsActive(a) => self.device_int(s, &a.name, Device::is_active).await,
            C::NodeDeviceIsPersistent(a) => {
                self.device_int(s, &a.name, Device::is_persistent).await
            }
            C::NodeDeviceGetAutostart(a) => self.device_int(s, &a.name, Device::autostart).await,
            C::ConnectNodeDeviceEventRegisterAny(a) => self.event_register(s, a).await,
            C::ConnectNodeDeviceEventDeregisterAny(a) => self.event_deregister(s, a).await,
            C::Manage(call) => self.manage(s, info, call).await,
            C::Pci(call) => self.pci(s, info, call).await,
            C::Unserved(_) => Err(unsupported::unsupported(info, s.readonly, args)),
        };
        result.into()
    }
}

/// Access control, as the node-device driver applies it.
impl RemoteProgram {
    /// The caller of session `s` holds `perm` (on the connection, or on `device`).
    async fn ensure(&self, s: &Session, perm: Perm, device: Option<&str>) -> Result<(), VirError> {
        self.access.ensure(&s.info.identity, perm, device).await
    }

    /// The device named `name` exists and the caller holds `perm` on it: libvirt looks
    /// the device up before it checks.
    async fn ensure_on(&self, s: &Session, perm: Perm, name: &str) -> Result<(), VirError> {
        if !self.access.enabled() {
            return Ok(());
        }
        lookup(&self.driver.devices(), name)?;
        self.ensure(s, perm, Some(name)).await
    }

    /// The devices among `devices` the caller may see (`node_device:getattr`), in order.
    async fn visible<'a>(&self, s: &Session, devices: Vec<&'a Device>) -> Vec<&'a Device> {
        if !self.access.enabled() {
            return devices;
        }
        let who = s.info.identity.get();
        let mut seen = Vec::with_capacity(devices.len());
        // Several checks in flight at once: each is a round trip to polkitd.
        for batch in devices.chunks(16) {
            let checks = batch.iter().map(|d| {
                self.access
                    .allows(&who, Perm::NodeDeviceGetattr, Some(d.name()))
            });
            let allowed = futures_util::future::join_all(checks).await;
            seen.extend(
                batch
                    .iter()
                    .zip(allowed)
                    .filter(|(_, ok)| *ok)
                    .map(|(d, _)| *d),
            );
        }
        seen
    }

    /// Where the client's event callbacks send: filtered under access control.
    fn event_sink(&self, s: &mut Session) -> EventSink {
        let sink = s.event_sink.get_or_insert_with(|| {
            if self.access.enabled() {
                EventSink::filtered(self.access, s.info.identity.clone(), s.events.clone())
            } else {
                EventSink::Direct(s.events.clone())
            }
        });
        sink.clone()
    }
}
