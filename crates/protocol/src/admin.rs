//! The admin program (what virt-admin talks to): procedure numbers, limits and argument and
//! return layouts, from libvirt 11.3's `admin_protocol.x` (9.0's and procedure 20). Field order is the wire order.
//! A call is decoded once, by [`AdminCall::decode`], for the daemon's dispatch (its
//! `admin` module) and the fuzz targets alike.

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
    /// Since libvirt 11.2.0.
    pub const CONNECT_DAEMON_SHUTDOWN: i32 = 20;
}

/// virDaemonShutdownFlags.
pub const DAEMON_SHUTDOWN_PRESERVE: u32 = 1;

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

/// A call that [`AdminCall::decode`] turns down; the daemon answers each with libvirt's
/// `VIR_ERR_RPC` in the RPC domain, these texts being the detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A procedure number libvirt 11.3's admin program does not have.
    #[error("unknown procedure: {0}")]
    UnknownProcedure(i32),
    /// Arguments that do not decode as the procedure's layout (short, a string or list
    /// over its limit, a bad discriminant). Bytes after the layout are ignored, as libvirt
    /// does.
    #[error("Unable to decode message payload")]
    Payload,
}

/// One admin-program call: the procedure with its decoded arguments, one variant per
/// `ADMIN_PROC_*`, named after the libvirt API it serves.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminCall {
    ConnectOpen(FlagsArgs),
    ConnectClose,
    ConnectGetLibVersion,
    ConnectListServers(ListServersArgs),
    ConnectLookupServer(LookupServerArgs),
    ServerGetThreadpoolParameters(ServerFlagsArgs),
    ServerSetThreadpoolParameters(SetParamsArgs),
    ServerListClients(ListClientsArgs),
    ServerLookupClient(LookupClientArgs),
    ClientGetInfo(ClientFlagsArgs),
    ClientClose(ClientFlagsArgs),
    ServerGetClientLimits(ServerFlagsArgs),
    ServerSetClientLimits(SetParamsArgs),
    ConnectGetLoggingOutputs(FlagsArgs),
    ConnectGetLoggingFilters(FlagsArgs),
    ConnectSetLoggingOutputs(SetStringArgs),
    ConnectSetLoggingFilters(SetStringArgs),
    ServerUpdateTlsFiles(ServerFlagsArgs),
    ConnectSetDaemonTimeout(SetTimeoutArgs),
    ConnectDaemonShutdown(FlagsArgs),
}

impl AdminCall {
    /// Decodes procedure `proc_`'s arguments from `args`. Pure: the daemon's dispatch and
    /// the fuzz targets both call it.
    pub fn decode(proc_: i32, args: &[u8]) -> Result<Self, DecodeError> {
        use AdminCall as C;
        let a = args;
        Ok(match proc_ {
            proc::CONNECT_OPEN => C::ConnectOpen(arg(a)?),
            // Void arguments: whatever was sent is not looked at.
            proc::CONNECT_CLOSE => C::ConnectClose,
            proc::CONNECT_GET_LIB_VERSION => C::ConnectGetLibVersion,
            proc::CONNECT_LIST_SERVERS => C::ConnectListServers(arg(a)?),
            proc::CONNECT_LOOKUP_SERVER => C::ConnectLookupServer(arg(a)?),
            proc::SERVER_GET_THREADPOOL_PARAMETERS => C::ServerGetThreadpoolParameters(arg(a)?),
            proc::SERVER_SET_THREADPOOL_PARAMETERS => C::ServerSetThreadpoolParameters(arg(a)?),
            proc::SERVER_LIST_CLIENTS => C::ServerListClients(arg(a)?),
            proc::SERVER_LOOKUP_CLIENT => C::ServerLookupClient(arg(a)?),
            proc::CLIENT_GET_INFO => C::ClientGetInfo(arg(a)?),
            proc::CLIENT_CLOSE => C::ClientClose(arg(a)?),
            proc::SERVER_GET_CLIENT_LIMITS => C::ServerGetClientLimits(arg(a)?),
            proc::SERVER_SET_CLIENT_LIMITS => C::ServerSetClientLimits(arg(a)?),
            proc::CONNECT_GET_LOGGING_OUTPUTS => C::ConnectGetLoggingOutputs(arg(a)?),
            proc::CONNECT_GET_LOGGING_FILTERS => C::ConnectGetLoggingFilters(arg(a)?),
            proc::CONNECT_SET_LOGGING_OUTPUTS => C::ConnectSetLoggingOutputs(arg(a)?),
            proc::CONNECT_SET_LOGGING_FILTERS => C::ConnectSetLoggingFilters(arg(a)?),
            proc::SERVER_UPDATE_TLS_FILES => C::ServerUpdateTlsFiles(arg(a)?),
            proc::CONNECT_SET_DAEMON_TIMEOUT => C::ConnectSetDaemonTimeout(arg(a)?),
            proc::CONNECT_DAEMON_SHUTDOWN => C::ConnectDaemonShutdown(arg(a)?),
            p => return Err(DecodeError::UnknownProcedure(p)),
        })
    }

    /// The `ADMIN_PROC_*` number this call was decoded from.
    pub fn procedure(&self) -> i32 {
        use AdminCall as C;
        match self {
            C::ConnectOpen(_) => proc::CONNECT_OPEN,
            C::ConnectClose => proc::CONNECT_CLOSE,
            C::ConnectGetLibVersion => proc::CONNECT_GET_LIB_VERSION,
            C::ConnectListServers(_) => proc::CONNECT_LIST_SERVERS,
            C::ConnectLookupServer(_) => proc::CONNECT_LOOKUP_SERVER,
            C::ServerGetThreadpoolParameters(_) => proc::SERVER_GET_THREADPOOL_PARAMETERS,
            C::ServerSetThreadpoolParameters(_) => proc::SERVER_SET_THREADPOOL_PARAMETERS,
            C::ServerListClients(_) => proc::SERVER_LIST_CLIENTS,
            C::ServerLookupClient(_) => proc::SERVER_LOOKUP_CLIENT,
            C::ClientGetInfo(_) => proc::CLIENT_GET_INFO,
            C::ClientClose(_) => proc::CLIENT_CLOSE,
            C::ServerGetClientLimits(_) => proc::SERVER_GET_CLIENT_LIMITS,
            C::ServerSetClientLimits(_) => proc::SERVER_SET_CLIENT_LIMITS,
            C::ConnectGetLoggingOutputs(_) => proc::CONNECT_GET_LOGGING_OUTPUTS,
            C::ConnectGetLoggingFilters(_) => proc::CONNECT_GET_LOGGING_FILTERS,
            C::ConnectSetLoggingOutputs(_) => proc::CONNECT_SET_LOGGING_OUTPUTS,
            C::ConnectSetLoggingFilters(_) => proc::CONNECT_SET_LOGGING_FILTERS,
            C::ServerUpdateTlsFiles(_) => proc::SERVER_UPDATE_TLS_FILES,
            C::ConnectSetDaemonTimeout(_) => proc::CONNECT_SET_DAEMON_TIMEOUT,
            C::ConnectDaemonShutdown(_) => proc::CONNECT_DAEMON_SHUTDOWN,
        }
    }
}

/// One argument struct, with every string held to ADMIN_STRING_MAX.
fn arg<T: Xdr>(args: &[u8]) -> Result<T, DecodeError> {
    T::decode(&mut Decoder::new(args).with_string_max(ADMIN_STRING_MAX))
        .map_err(|_| DecodeError::Payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::TypedValue;

    fn srv() -> Server_ {
        Server_ {
            name: "virtnodedevd".into(),
        }
    }

    fn clnt() -> Client_ {
        Client_ {
            srv: srv(),
            id: 7,
            timestamp: 1_700_000_000,
            transport: 0,
        }
    }

    fn set_params() -> SetParamsArgs {
        SetParamsArgs {
            srv: srv(),
            params: vec![TypedParam {
                field: "maxWorkers".into(),
                value: TypedValue::UInt(9),
            }],
            flags: 0,
        }
    }

    fn case<T: Xdr + Clone>(p: i32, a: T, call: fn(T) -> AdminCall) -> (i32, Vec<u8>, AdminCall) {
        (p, xdr::to_bytes(&a), call(a))
    }

    /// Every procedure with arguments as a client encodes them and the call they decode to,
    /// in procedure order.
    fn every_procedure() -> Vec<(i32, Vec<u8>, AdminCall)> {
        let mut all = connection_procedures();
        all.extend(logging_and_daemon_procedures());
        all
    }

    /// The procedures of the connection, its servers and their clients (1 to 12).
    fn connection_procedures() -> Vec<(i32, Vec<u8>, AdminCall)> {
        use AdminCall as C;
        let flags = FlagsArgs { flags: 1 };
        let srv_flags = ServerFlagsArgs {
            srv: srv(),
            flags: 2,
        };
        let clnt_flags = ClientFlagsArgs {
            clnt: clnt(),
            flags: 0,
        };
        vec![
            case(proc::CONNECT_OPEN, flags.clone(), C::ConnectOpen),
            (proc::CONNECT_CLOSE, Vec::new(), C::ConnectClose),
            (
                proc::CONNECT_GET_LIB_VERSION,
                Vec::new(),
                C::ConnectGetLibVersion,
            ),
            case(
                proc::CONNECT_LIST_SERVERS,
                ListServersArgs {
                    need_results: 1,
                    flags: 0,
                },
                C::ConnectListServers,
            ),
            case(
                proc::CONNECT_LOOKUP_SERVER,
                LookupServerArgs {
                    name: "admin".into(),
                    flags: 0,
                },
                C::ConnectLookupServer,
            ),
            case(
                proc::SERVER_GET_THREADPOOL_PARAMETERS,
                srv_flags.clone(),
                C::ServerGetThreadpoolParameters,
            ),
            case(
                proc::SERVER_SET_THREADPOOL_PARAMETERS,
                set_params(),
                C::ServerSetThreadpoolParameters,
            ),
            case(
                proc::SERVER_LIST_CLIENTS,
                ListClientsArgs {
                    srv: srv(),
                    need_results: 1,
                    flags: 0,
                },
                C::ServerListClients,
            ),
            case(
                proc::SERVER_LOOKUP_CLIENT,
                LookupClientArgs {
                    srv: srv(),
                    id: 3,
                    flags: 0,
                },
                C::ServerLookupClient,
            ),
            case(proc::CLIENT_GET_INFO, clnt_flags.clone(), C::ClientGetInfo),
            case(proc::CLIENT_CLOSE, clnt_flags, C::ClientClose),
            case(
                proc::SERVER_GET_CLIENT_LIMITS,
                srv_flags.clone(),
                C::ServerGetClientLimits,
            ),
            case(
                proc::SERVER_SET_CLIENT_LIMITS,
                set_params(),
                C::ServerSetClientLimits,
            ),
        ]
    }

    /// Logging, TLS, the daemon's timeout and shutdown (13 to 20).
    fn logging_and_daemon_procedures() -> Vec<(i32, Vec<u8>, AdminCall)> {
        use AdminCall as C;
        let flags = FlagsArgs { flags: 1 };
        let srv_flags = ServerFlagsArgs {
            srv: srv(),
            flags: 2,
        };
        let set_string = SetStringArgs {
            value: Some("1:stderr".into()),
            flags: 0,
        };
        vec![
            case(
                proc::CONNECT_GET_LOGGING_OUTPUTS,
                flags.clone(),
                C::ConnectGetLoggingOutputs,
            ),
            case(
                proc::CONNECT_GET_LOGGING_FILTERS,
                flags,
                C::ConnectGetLoggingFilters,
            ),
            case(
                proc::CONNECT_SET_LOGGING_OUTPUTS,
                set_string.clone(),
                C::ConnectSetLoggingOutputs,
            ),
            case(
                proc::CONNECT_SET_LOGGING_FILTERS,
                SetStringArgs {
                    value: None,
                    flags: 0,
                },
                C::ConnectSetLoggingFilters,
            ),
            case(
                proc::SERVER_UPDATE_TLS_FILES,
                srv_flags,
                C::ServerUpdateTlsFiles,
            ),
            case(
                proc::CONNECT_SET_DAEMON_TIMEOUT,
                SetTimeoutArgs {
                    timeout: 30,
                    flags: 0,
                },
                C::ConnectSetDaemonTimeout,
            ),
            case(
                proc::CONNECT_DAEMON_SHUTDOWN,
                FlagsArgs {
                    flags: DAEMON_SHUTDOWN_PRESERVE,
                },
                C::ConnectDaemonShutdown,
            ),
        ]
    }

    #[test]
    fn every_procedure_decodes_its_arguments() {
        let all = every_procedure();
        let procs: Vec<i32> = all.iter().map(|(p, _, _)| *p).collect();
        assert_eq!(procs, (1..=20).collect::<Vec<_>>());
        for (p, args, want) in all {
            let call = AdminCall::decode(p, &args).unwrap();
            assert_eq!(call, want, "procedure {p}");
            assert_eq!(call.procedure(), p);
        }
    }

    #[test]
    fn bytes_after_the_arguments_are_ignored() {
        for (p, mut args, want) in every_procedure() {
            args.extend_from_slice(&[0xff; 5]);
            assert_eq!(AdminCall::decode(p, &args).unwrap(), want, "procedure {p}");
        }
    }

    #[test]
    fn unknown_procedures_are_refused_by_number() {
        for p in [0, 21, -1, i32::MIN, i32::MAX] {
            let e = AdminCall::decode(p, &[]).unwrap_err();
            assert_eq!(e, DecodeError::UnknownProcedure(p));
            assert_eq!(e.to_string(), format!("unknown procedure: {p}"));
        }
    }

    #[test]
    fn truncated_arguments_do_not_decode() {
        for (p, args, _) in every_procedure() {
            for len in 0..args.len() {
                let e = AdminCall::decode(p, &args[..len]).unwrap_err();
                assert_eq!(e, DecodeError::Payload, "procedure {p}, {len} bytes");
                assert_eq!(e.to_string(), "Unable to decode message payload");
            }
        }
    }

    #[test]
    fn arguments_over_admins_limits_do_not_decode() {
        let mut too_many = set_params();
        too_many.params = vec![too_many.params[0].clone(); ADMIN_PARAMS_MAX as usize + 1];
        let args = xdr::to_bytes(&too_many);
        for p in [
            proc::SERVER_SET_THREADPOOL_PARAMETERS,
            proc::SERVER_SET_CLIENT_LIMITS,
        ] {
            assert_eq!(AdminCall::decode(p, &args), Err(DecodeError::Payload));
        }
        let long = LookupServerArgs {
            name: "a".repeat(ADMIN_STRING_MAX as usize + 1),
            flags: 0,
        };
        let args = xdr::to_bytes(&long);
        assert_eq!(
            AdminCall::decode(proc::CONNECT_LOOKUP_SERVER, &args),
            Err(DecodeError::Payload)
        );
    }
}
