//! The admin program (what virt-admin talks to): procedure numbers, limits and argument and
//! return layouts, from libvirt 9.0's `admin_protocol.x`. Field order is the wire order.
//! The daemon's dispatch is in `virtnodedevd`'s `admin` module.

use xdr::{xdr_struct, Decoder, Encoder, Xdr};

use crate::remote::TypedParam;

/// ADMIN_PROGRAM and its version.
pub const ADMIN_PROGRAM: u32 = 0x0690_0690;
pub const ADMIN_VERSION: u32 = 1;
/// ADMIN_STRING_MAX.
pub const ADMIN_STRING_MAX: u32 = 4_194_304;
/// ADMIN_SERVER_LIST_MAX, ADMIN_CLIENT_LIST_MAX.
pub const ADMIN_LIST_MAX: usize = 16_384;
/// ADMIN_SERVER_THREADPOOL_PARAMETERS_MAX and ADMIN_SERVER_CLIENT_LIMITS_MAX.
pub const ADMIN_PARAMS_MAX: u32 = 32;

/// Procedure numbers (ADMIN_PROC_*).
pub mod proc {
    pub const CONNECT_OPEN: i32 = 1;
    pub const CONNECT_CLOSE: i32 = 2;
    pub const CONNECT_GET_LIB_VERSION: i32 = 3;
    pub const CONNECT_LIST_SERVERS: i32 = 4;
    pub const CONNECT_LOOKUP_SERVER: i32 = 5;
    pub const SERVER_GET_THREADPOOL_PARAMETERS: i32 = 6;
    pub const SERVER_SET_THREADPOOL_PARAMETERS: i32 = 7;
    pub const SERVER_LIST_CLIENTS: i32 = 8;
    pub const SERVER_LOOKUP_CLIENT: i32 = 9;
    pub const CLIENT_GET_INFO: i32 = 10;
    pub const CLIENT_CLOSE: i32 = 11;
    pub const SERVER_GET_CLIENT_LIMITS: i32 = 12;
    pub const SERVER_SET_CLIENT_LIMITS: i32 = 13;
    pub const CONNECT_GET_LOGGING_OUTPUTS: i32 = 14;
    pub const CONNECT_GET_LOGGING_FILTERS: i32 = 15;
    pub const CONNECT_SET_LOGGING_OUTPUTS: i32 = 16;
    pub const CONNECT_SET_LOGGING_FILTERS: i32 = 17;
    pub const SERVER_UPDATE_TLS_FILES: i32 = 18;
    pub const CONNECT_SET_DAEMON_TIMEOUT: i32 = 19;
}

xdr_struct! { pub struct FlagsArgs { pub flags: u32 } }
xdr_struct! { pub struct Server_ { pub name: String } }
xdr_struct! { pub struct Client_ { pub srv: Server_, pub id: u64, pub timestamp: i64, pub transport: u32 } }
xdr_struct! { pub struct ListServersArgs { pub need_results: u32, pub flags: u32 } }
xdr_struct! { pub struct ListServersRet { pub servers: Vec<Server_>, pub ret: u32 } }
xdr_struct! { pub struct LookupServerArgs { pub name: String, pub flags: u32 } }
xdr_struct! { pub struct LookupServerRet { pub srv: Server_ } }
xdr_struct! { pub struct ServerFlagsArgs { pub srv: Server_, pub flags: u32 } }
xdr_struct! { pub struct ListClientsArgs { pub srv: Server_, pub need_results: u32, pub flags: u32 } }
xdr_struct! { pub struct ListClientsRet { pub clients: Vec<Client_>, pub ret: u32 } }
xdr_struct! { pub struct LookupClientArgs { pub srv: Server_, pub id: u64, pub flags: u32 } }
xdr_struct! { pub struct LookupClientRet { pub clnt: Client_ } }
xdr_struct! { pub struct ClientFlagsArgs { pub clnt: Client_, pub flags: u32 } }
xdr_struct! { pub struct GetOutputsRet { pub outputs: String, pub noutputs: u32 } }
xdr_struct! { pub struct GetFiltersRet { pub filters: Option<String>, pub nfilters: u32 } }
xdr_struct! { pub struct SetStringArgs { pub value: Option<String>, pub flags: u32 } }
xdr_struct! { pub struct SetTimeoutArgs { pub timeout: u32, pub flags: u32 } }

/// `{ admin_nonnull_server srv; admin_typed_param params<32>; unsigned flags }`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetParamsArgs {
    pub srv: Server_,
    pub params: Vec<TypedParam>,
    pub flags: u32,
}

impl Xdr for SetParamsArgs {
    fn encode(&self, e: &mut Encoder) {
        self.srv.encode(e);
        self.params.encode(e);
        e.put_u32(self.flags);
    }

    fn decode(d: &mut Decoder<'_>) -> xdr::Result<Self> {
        let srv = Server_::decode(d)?;
        let n = d.get_count(ADMIN_PARAMS_MAX)?;
        let params = (0..n)
            .map(|_| TypedParam::decode(d))
            .collect::<xdr::Result<_>>()?;
        Ok(Self {
            srv,
            params,
            flags: d.get_u32()?,
        })
    }
}
