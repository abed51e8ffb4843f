//! Procedure numbers and argument/return layouts of the remote program procedures the
//! node-device daemon answers. Field order is the wire order.

use xdr::{xdr_struct, Decoder, Encoder, Xdr};

/// Procedure numbers (REMOTE_PROC_*).
pub mod proc {
    pub const CONNECT_OPEN: i32 = 1;
    pub const CONNECT_CLOSE: i32 = 2;
    pub const CONNECT_GET_TYPE: i32 = 3;
    pub const CONNECT_SUPPORTS_FEATURE: i32 = 60;
    pub const AUTH_LIST: i32 = 66;
    pub const AUTH_SASL_INIT: i32 = 67;
    pub const AUTH_SASL_START: i32 = 68;
    pub const AUTH_SASL_STEP: i32 = 69;
    pub const AUTH_POLKIT: i32 = 70;
    pub const CONNECT_GET_URI: i32 = 110;
    pub const NODE_NUM_OF_DEVICES: i32 = 111;
    pub const NODE_LIST_DEVICES: i32 = 112;
    pub const NODE_DEVICE_LOOKUP_BY_NAME: i32 = 113;
    pub const NODE_DEVICE_GET_XML_DESC: i32 = 114;
    pub const NODE_DEVICE_GET_PARENT: i32 = 115;
    pub const NODE_DEVICE_NUM_OF_CAPS: i32 = 116;
    pub const NODE_DEVICE_LIST_CAPS: i32 = 117;
    pub const NODE_DEVICE_DETTACH: i32 = 118;
    pub const NODE_DEVICE_RE_ATTACH: i32 = 119;
    pub const NODE_DEVICE_RESET: i32 = 120;
    pub const NODE_DEVICE_CREATE_XML: i32 = 123;
    pub const NODE_DEVICE_DESTROY: i32 = 124;
    pub const CONNECT_IS_SECURE: i32 = 149;
    pub const CONNECT_GET_LIB_VERSION: i32 = 157;
    pub const CONNECT_LIST_ALL_NODE_DEVICES: i32 = 285;
    pub const NODE_DEVICE_LOOKUP_SCSI_HOST_BY_WWN: i32 = 297;
    pub const NODE_DEVICE_DETACH_FLAGS: i32 = 301;
    pub const CONNECT_REGISTER_CLOSE_CALLBACK: i32 = 360;
    pub const CONNECT_UNREGISTER_CLOSE_CALLBACK: i32 = 361;
    pub const CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY: i32 = 374;
    pub const CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY: i32 = 375;
    pub const NODE_DEVICE_EVENT_LIFECYCLE: i32 = 376;
    pub const NODE_DEVICE_EVENT_UPDATE: i32 = 377;
    pub const CONNECT_SET_IDENTITY: i32 = 419;
    pub const NODE_DEVICE_DEFINE_XML: i32 = 428;
    pub const NODE_DEVICE_UNDEFINE: i32 = 429;
    pub const NODE_DEVICE_CREATE: i32 = 430;
    pub const NODE_DEVICE_GET_AUTOSTART: i32 = 433;
    pub const NODE_DEVICE_SET_AUTOSTART: i32 = 434;
    pub const NODE_DEVICE_IS_PERSISTENT: i32 = 435;
    pub const NODE_DEVICE_IS_ACTIVE: i32 = 436;
    /// Since libvirt 10.1.0.
    pub const NODE_DEVICE_UPDATE: i32 = 447;

    // Hypervisor procedures whose public API checks its arguments (or its flags) around
    // the read-only check, so the answer depends on them although the call is unsupported.
    pub const DOMAIN_GET_XML_DESC: i32 = 14;
    pub const DOMAIN_SNAPSHOT_GET_XML_DESC: i32 = 186;
    pub const DOMAIN_GET_VCPUS_FLAGS: i32 = 200;
    pub const DOMAIN_OPEN_GRAPHICS: i32 = 249;
    pub const DOMAIN_SEND_PROCESS_SIGNAL: i32 = 295;
    pub const DOMAIN_INTERFACE_ADDRESSES: i32 = 353;
    pub const DOMAIN_RENAME: i32 = 358;
    pub const DOMAIN_MANAGED_SAVE_GET_XML_DESC: i32 = 388;
    pub const DOMAIN_MANAGED_SAVE_DEFINE_XML: i32 = 389;
    pub const CONNECT_BASELINE_HYPERVISOR_CPU: i32 = 394;
    pub const DOMAIN_CHECKPOINT_GET_XML_DESC: i32 = 412;
    pub const DOMAIN_AUTHORIZED_SSH_KEYS_SET: i32 = 425;
    pub const DOMAIN_SET_LAUNCH_SECURITY_STATE: i32 = 439;
    pub const DOMAIN_FD_ASSOCIATE: i32 = 443;

    // Event registrations whose dispatcher checks the event ID first.
    pub const CONNECT_DOMAIN_EVENT_REGISTER_ANY: i32 = 167;
    pub const CONNECT_NETWORK_EVENT_REGISTER_ANY: i32 = 313;
    pub const CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: i32 = 316;
    pub const CONNECT_STORAGE_POOL_EVENT_REGISTER_ANY: i32 = 368;
    pub const CONNECT_SECRET_EVENT_REGISTER_ANY: i32 = 380;

    // Event deregistrations the dispatcher answers from its own (here always empty) lists.
    pub const CONNECT_DOMAIN_EVENT_DEREGISTER_ANY: i32 = 168;
    pub const CONNECT_DOMAIN_EVENT_DEREGISTER: i32 = 106;
    pub const CONNECT_NETWORK_EVENT_DEREGISTER_ANY: i32 = 314;
    pub const CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: i32 = 317;
    pub const CONNECT_STORAGE_POOL_EVENT_DEREGISTER_ANY: i32 = 369;
    pub const CONNECT_SECRET_EVENT_DEREGISTER_ANY: i32 = 381;
}

/// REMOTE_CPU_BASELINE_MAX.
pub const REMOTE_CPU_BASELINE_MAX: u32 = 256;
/// REMOTE_DOMAIN_LAUNCH_SECURITY_STATE_PARAMS_MAX.
pub const REMOTE_DOMAIN_LAUNCH_SECURITY_STATE_PARAMS_MAX: u32 = 64;
/// REMOTE_DOMAIN_AUTHORIZED_SSH_KEYS_MAX.
pub const REMOTE_DOMAIN_AUTHORIZED_SSH_KEYS_MAX: u32 = 2048;

/// `remote_auth_type`.
pub mod auth_type {
    pub const NONE: i32 = 0;
    pub const SASL: i32 = 1;
    pub const POLKIT: i32 = 2;
}

xdr_struct! {
    /// `remote_nonnull_node_device`: a device is named, nothing more.
    pub struct NodeDevice { pub name: String }
}

xdr_struct! { pub struct ConnectOpenArgs { pub name: Option<String>, pub flags: u32 } }
xdr_struct! { pub struct SupportsFeatureArgs { pub feature: i32 } }
xdr_struct! { pub struct IntRet { pub value: i32 } }
xdr_struct! { pub struct StringRet { pub value: String } }
xdr_struct! { pub struct OptStringRet { pub value: Option<String> } }
xdr_struct! { pub struct HyperRet { pub value: u64 } }
xdr_struct! { pub struct AuthListRet { pub types: Vec<i32> } }
xdr_struct! { pub struct NodeNumOfDevicesArgs { pub cap: Option<String>, pub flags: u32 } }
xdr_struct! { pub struct NodeListDevicesArgs { pub cap: Option<String>, pub maxnames: i32, pub flags: u32 } }
xdr_struct! { pub struct NamesRet { pub names: Vec<String> } }
xdr_struct! { pub struct NameArgs { pub name: String } }
xdr_struct! { pub struct NameFlagsArgs { pub name: String, pub flags: u32 } }
xdr_struct! { pub struct ListCapsArgs { pub name: String, pub maxnames: i32 } }
xdr_struct! { pub struct NodeDeviceRet { pub dev: NodeDevice } }
xdr_struct! { pub struct XmlFlagsArgs { pub xml_desc: String, pub flags: u32 } }
xdr_struct! { pub struct ListAllArgs { pub need_results: i32, pub flags: u32 } }
xdr_struct! { pub struct ListAllRet { pub devices: Vec<NodeDevice>, pub ret: u32 } }
xdr_struct! { pub struct LookupScsiHostByWwnArgs { pub wwnn: String, pub wwpn: String, pub flags: u32 } }
xdr_struct! {
    /// `remote_node_device_update_args` (10.1.0); flags VIR_NODE_DEVICE_UPDATE_AFFECT_*.
    pub struct NodeDeviceUpdateArgs { pub name: String, pub xml_desc: String, pub flags: u32 }
}
xdr_struct! {
    /// `remote_node_device_detach_flags_args`: a null driver name is the default (vfio).
    pub struct NodeDeviceDetachFlagsArgs { pub name: String, pub driver_name: Option<String>, pub flags: u32 }
}
xdr_struct! { pub struct SetAutostartArgs { pub name: String, pub autostart: i32 } }
xdr_struct! { pub struct EventRegisterAnyArgs { pub event_id: i32, pub dev: Option<NodeDevice> } }
xdr_struct! { pub struct EventDeregisterAnyArgs { pub callback_id: i32 } }
xdr_struct! {
    /// REMOTE_PROC_NODE_DEVICE_EVENT_LIFECYCLE message body.
    pub struct LifecycleEventMsg { pub callback_id: i32, pub dev: NodeDevice, pub event: i32, pub detail: i32 }
}
xdr_struct! {
    /// REMOTE_PROC_NODE_DEVICE_EVENT_UPDATE message body.
    pub struct UpdateEventMsg { pub callback_id: i32, pub dev: NodeDevice }
}

xdr_struct! {
    /// `remote_nonnull_domain`.
    pub struct NonnullDomain { pub name: String, pub uuid: [u8; 16], pub id: i32 }
}
xdr_struct! {
    /// `remote_nonnull_domain_snapshot`, and `remote_nonnull_domain_checkpoint` (same layout).
    pub struct NonnullDomainSnapshot { pub name: String, pub dom: NonnullDomain }
}
xdr_struct! {
    /// A domain and flags: DOMAIN_GET_XML_DESC, DOMAIN_GET_VCPUS_FLAGS,
    /// DOMAIN_MANAGED_SAVE_GET_XML_DESC.
    pub struct DomainFlagsArgs { pub dom: NonnullDomain, pub flags: u32 }
}
xdr_struct! {
    /// A snapshot (or checkpoint) and flags: its GET_XML_DESC.
    pub struct SnapshotFlagsArgs { pub snap: NonnullDomainSnapshot, pub flags: u32 }
}
xdr_struct! {
    pub struct DomainSendProcessSignalArgs {
        pub dom: NonnullDomain, pub pid_value: i64, pub signum: u32, pub flags: u32
    }
}
xdr_struct! {
    pub struct DomainRenameArgs { pub dom: NonnullDomain, pub new_name: Option<String>, pub flags: u32 }
}
xdr_struct! {
    pub struct DomainInterfaceAddressesArgs { pub dom: NonnullDomain, pub source: u32, pub flags: u32 }
}
xdr_struct! {
    pub struct DomainManagedSaveDefineXmlArgs {
        pub dom: NonnullDomain, pub dxml: Option<String>, pub flags: u32
    }
}

/// Strings of an array the protocol bounds.
fn bounded_strings(d: &mut Decoder<'_>, max: u32) -> xdr::Result<Vec<String>> {
    let n = d.get_count(max)?;
    (0..n).map(|_| d.get_string()).collect()
}

/// CONNECT_BASELINE_HYPERVISOR_CPU arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BaselineHypervisorCpuArgs {
    pub emulator: Option<String>,
    pub arch: Option<String>,
    pub machine: Option<String>,
    pub virttype: Option<String>,
    pub xml_cpus: Vec<String>,
    pub flags: u32,
}

impl Xdr for BaselineHypervisorCpuArgs {
    fn encode(&self, e: &mut Encoder) {
        self.emulator.encode(e);
        self.arch.encode(e);
        self.machine.encode(e);
        self.virttype.encode(e);
        self.xml_cpus.encode(e);
        e.put_u32(self.flags);
    }

    fn decode(d: &mut Decoder<'_>) -> xdr::Result<Self> {
        Ok(Self {
            emulator: Xdr::decode(d)?,
            arch: Xdr::decode(d)?,
            machine: Xdr::decode(d)?,
            virttype: Xdr::decode(d)?,
            xml_cpus: bounded_strings(d, REMOTE_CPU_BASELINE_MAX)?,
            flags: d.get_u32()?,
        })
    }
}

/// DOMAIN_AUTHORIZED_SSH_KEYS_SET arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuthorizedSshKeysSetArgs {
    pub dom: NonnullDomain,
    pub user: String,
    pub keys: Vec<String>,
    pub flags: u32,
}

impl Xdr for AuthorizedSshKeysSetArgs {
    fn encode(&self, e: &mut Encoder) {
        self.dom.encode(e);
        self.user.encode(e);
        self.keys.encode(e);
        e.put_u32(self.flags);
    }

    fn decode(d: &mut Decoder<'_>) -> xdr::Result<Self> {
        Ok(Self {
            dom: Xdr::decode(d)?,
            user: d.get_string()?,
            keys: bounded_strings(d, REMOTE_DOMAIN_AUTHORIZED_SSH_KEYS_MAX)?,
            flags: d.get_u32()?,
        })
    }
}

/// `remote_typed_param`: a name and a typed value.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedParam {
    pub field: String,
    pub value: TypedValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TypedValue {
    Int(i32),
    UInt(u32),
    LLong(i64),
    ULLong(u64),
    Double(f64),
    Boolean(i32),
    String(String),
}

impl Xdr for TypedParam {
    fn encode(&self, e: &mut Encoder) {
        self.field.encode(e);
        match &self.value {
            TypedValue::Int(v) => (e.put_i32(1), e.put_i32(*v)),
            TypedValue::UInt(v) => (e.put_i32(2), e.put_u32(*v)),
            TypedValue::LLong(v) => (e.put_i32(3), e.put_i64(*v)),
            TypedValue::ULLong(v) => (e.put_i32(4), e.put_u64(*v)),
            TypedValue::Double(v) => (e.put_i32(5), v.encode(e)),
            TypedValue::Boolean(v) => (e.put_i32(6), e.put_i32(*v)),
            TypedValue::String(v) => (e.put_i32(7), v.encode(e)),
        };
    }

    fn decode(d: &mut Decoder<'_>) -> xdr::Result<Self> {
        let field = d.get_string()?;
        let value = match d.get_i32()? {
            1 => TypedValue::Int(d.get_i32()?),
            2 => TypedValue::UInt(d.get_u32()?),
            3 => TypedValue::LLong(d.get_i64()?),
            4 => TypedValue::ULLong(d.get_u64()?),
            5 => TypedValue::Double(f64::decode(d)?),
            6 => TypedValue::Boolean(d.get_i32()?),
            7 => TypedValue::String(d.get_string()?),
            t => return Err(xdr::Error::BadDiscriminant(t)),
        };
        Ok(Self { field, value })
    }
}

/// CONNECT_SET_IDENTITY arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct SetIdentityArgs {
    pub params: Vec<TypedParam>,
    pub flags: u32,
}

impl Xdr for SetIdentityArgs {
    fn encode(&self, e: &mut Encoder) {
        self.params.encode(e);
        e.put_u32(self.flags);
    }

    fn decode(d: &mut Decoder<'_>) -> xdr::Result<Self> {
        let n = d.get_count(crate::REMOTE_CONNECT_IDENTITY_PARAMS_MAX)?;
        let params = (0..n)
            .map(|_| TypedParam::decode(d))
            .collect::<xdr::Result<_>>()?;
        Ok(Self {
            params,
            flags: d.get_u32()?,
        })
    }
}

/// DOMAIN_SET_LAUNCH_SECURITY_STATE arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DomainSetLaunchSecurityStateArgs {
    pub dom: NonnullDomain,
    pub params: Vec<TypedParam>,
    pub flags: u32,
}

impl Xdr for DomainSetLaunchSecurityStateArgs {
    fn encode(&self, e: &mut Encoder) {
        self.dom.encode(e);
        self.params.encode(e);
        e.put_u32(self.flags);
    }

    fn decode(d: &mut Decoder<'_>) -> xdr::Result<Self> {
        let dom = NonnullDomain::decode(d)?;
        let n = d.get_count(REMOTE_DOMAIN_LAUNCH_SECURITY_STATE_PARAMS_MAX)?;
        let params = (0..n)
            .map(|_| TypedParam::decode(d))
            .collect::<xdr::Result<_>>()?;
        Ok(Self {
            dom,
            params,
            flags: d.get_u32()?,
        })
    }
}
