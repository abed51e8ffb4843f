//! The admin program on the admin socket (what virt-admin talks to).

use std::sync::Arc;

use protocol::{ErrorCode, ErrorDomain, VirError, LIB_VERSION};
use rpc::{ClientInfo, EventSender, Header, Reply, Server, Service};
use xdr::{xdr_struct, Decoder, Xdr};

use crate::cli::DAEMON_NAME;

/// ADMIN_PROGRAM and its version.
pub const ADMIN_PROGRAM: u32 = 0x0690_0690;
pub const ADMIN_VERSION: u32 = 1;
/// ADMIN_STRING_MAX.
const ADMIN_STRING_MAX: u32 = 4_194_304;

mod proc {
    pub const CONNECT_OPEN: i32 = 1;
    pub const CONNECT_CLOSE: i32 = 2;
    pub const CONNECT_GET_LIB_VERSION: i32 = 3;
    pub const CONNECT_LIST_SERVERS: i32 = 4;
    pub const CONNECT_LOOKUP_SERVER: i32 = 5;
    /// ADMIN_PROC_CONNECT_SET_DAEMON_TIMEOUT, the last one in libvirt 9.0.
    pub const LAST: i32 = 19;
}

xdr_struct! { pub struct FlagsArgs { pub flags: u32 } }
xdr_struct! { pub struct Server_ { pub name: String } }
xdr_struct! { pub struct ListServersArgs { pub need_results: u32, pub flags: u32 } }
xdr_struct! { pub struct ListServersRet { pub servers: Vec<Server_>, pub ret: u32 } }
xdr_struct! { pub struct LookupServerArgs { pub name: String, pub flags: u32 } }
xdr_struct! { pub struct LookupServerRet { pub srv: Server_ } }

/// The servers this daemon runs, as virt-admin lists them.
const SERVERS: [&str; 2] = [DAEMON_NAME, "admin"];

pub struct AdminProgram {
    #[allow(dead_code)]
    main: Arc<Server>,
}

impl AdminProgram {
    pub fn new(main: Arc<Server>) -> Self {
        Self { main }
    }
}

fn decode<T: Xdr>(args: &[u8]) -> Result<T, VirError> {
    T::decode(&mut Decoder::new(args).with_string_max(ADMIN_STRING_MAX))
        .map_err(|_| VirError::rpc("Unable to decode message payload"))
}

fn check_flags(flags: u32, function: &str) -> Result<(), VirError> {
    if flags != 0 {
        return Err(VirError::bad_flags(
            ErrorDomain::Admin,
            flags.into(),
            function,
        ));
    }
    Ok(())
}

impl Service for AdminProgram {
    type Session = ();

    fn has_program(&self, prog: u32, vers: u32) -> bool {
        prog == ADMIN_PROGRAM && vers == ADMIN_VERSION
    }

    fn connect(&self, _info: ClientInfo, _events: EventSender) {}

    async fn call(&self, _s: &mut (), header: &Header, args: &[u8]) -> Reply {
        let result = match header.proc_ {
            proc::CONNECT_OPEN => decode::<FlagsArgs>(args)
                .and_then(|a| check_flags(a.flags, "adminDispatchConnectOpen"))
                .map(|_| Vec::new()),
            proc::CONNECT_CLOSE => {
                return Reply {
                    result: Ok(Vec::new()),
                    close: true,
                    start_keepalive: false,
                }
            }
            proc::CONNECT_GET_LIB_VERSION => Ok(xdr::to_bytes(&LIB_VERSION)),
            proc::CONNECT_LIST_SERVERS => decode::<ListServersArgs>(args).and_then(|a| {
                check_flags(a.flags, "adminConnectListServers")?;
                let servers = if a.need_results != 0 {
                    SERVERS
                        .iter()
                        .map(|n| Server_ { name: (*n).into() })
                        .collect()
                } else {
                    Vec::new()
                };
                Ok(xdr::to_bytes(&ListServersRet {
                    servers,
                    ret: SERVERS.len() as u32,
                }))
            }),
            proc::CONNECT_LOOKUP_SERVER => decode::<LookupServerArgs>(args).and_then(|a| {
                // libvirt does not check these flags.
                if !SERVERS.contains(&a.name.as_str()) {
                    return Err(VirError::new(
                        ErrorCode::NoServer,
                        ErrorDomain::Rpc,
                        format!("No server named '{}'", a.name),
                    ));
                }
                Ok(xdr::to_bytes(&LookupServerRet {
                    srv: Server_ { name: a.name },
                }))
            }),
            p if (1..=proc::LAST).contains(&p) => Err(VirError::new(
                ErrorCode::NoSupport,
                ErrorDomain::Admin,
                "admin procedure not implemented yet",
            )),
            p => Err(VirError::rpc(format!("unknown procedure: {p}"))),
        };
        result.into()
    }

    fn disconnect(&self, _s: ()) {}
}
