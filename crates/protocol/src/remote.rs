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
    pub const NODE_DEVICE_CREATE_XML: i32 = 123;
    pub const NODE_DEVICE_DESTROY: i32 = 124;
    pub const CONNECT_IS_SECURE: i32 = 149;
    pub const CONNECT_GET_LIB_VERSION: i32 = 157;
    pub const CONNECT_LIST_ALL_NODE_DEVICES: i32 = 285;
    pub const NODE_DEVICE_LOOKUP_SCSI_HOST_BY_WWN: i32 = 297;
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
}

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
