//! The admin program on the admin socket (what virt-admin talks to): libvirt 9.0's 19
//! procedures over the daemon's two servers, `virtnodedevd` and `admin`.
//!
//! Error texts, domains and the order of checks follow admin_server_dispatch.c and
//! admin_server.c: the generated dispatchers look the server up first ("No server
//! named"), the hand-written ones (SET_THREADPOOL, CLIENT_GET_INFO, SET_CLIENT_LIMITS) say
//! "no server with matching name" in the admin domain; flags are checked after lookups.

use std::sync::Arc;

use protocol::admin::*;
use protocol::remote::{TypedParam, TypedValue};
use protocol::{ErrorCode, ErrorDomain, VirError, LIB_VERSION};
use rpc::{ClientInfo, ClientSnapshot, EventSender, Header, Reply, Server, Service};
use tokio::sync::watch;
use xdr::{Decoder, Xdr};

use crate::cli::DAEMON_NAME;
use crate::logging;

/// The servers this daemon runs, as virt-admin lists them.
const SERVERS: [&str; 2] = [DAEMON_NAME, "admin"];

/// What the admin program may change in the daemon beyond its servers.
pub struct DaemonControl {
    /// `-t` / CONNECT_SET_DAEMON_TIMEOUT: seconds without clients before exiting; 0 never.
    pub timeout: watch::Sender<u32>,
}

pub struct AdminProgram {
    main: Arc<Server>,
    admin: Arc<Server>,
    daemon: Arc<DaemonControl>,
}

impl AdminProgram {
    pub fn new(main: Arc<Server>, admin: Arc<Server>, daemon: Arc<DaemonControl>) -> Self {
        Self {
            main,
            admin,
            daemon,
        }
    }

    fn server(&self, name: &str) -> Option<&Arc<Server>> {
        if name == DAEMON_NAME {
            Some(&self.main)
        } else if name == "admin" {
            Some(&self.admin)
        } else {
            None
        }
    }

    /// `virNetDaemonGetServer`, as the generated dispatchers report it.
    fn lookup(&self, name: &str) -> Result<&Arc<Server>, VirError> {
        self.server(name).ok_or_else(|| {
            VirError::new(
                ErrorCode::NoServer,
                ErrorDomain::Rpc,
                format!("No server named '{name}'"),
            )
        })
    }

    /// The hand-written dispatchers' wording.
    fn lookup_admin(&self, name: &str) -> Result<&Arc<Server>, VirError> {
        self.server(name).ok_or_else(|| {
            VirError::new(
                ErrorCode::NoServer,
                ErrorDomain::Admin,
                format!("no server with matching name '{name}' found"),
            )
        })
    }

    fn dispatch(&self, p: i32, args: &[u8]) -> Result<Vec<u8>, VirError> {
        match p {
            proc::CONNECT_OPEN => {
                let a: FlagsArgs = decode(args)?;
                check_flags(a.flags, "adminDispatchConnectOpen")?;
                Ok(Vec::new())
            }
            proc::CONNECT_GET_LIB_VERSION => Ok(xdr::to_bytes(&LIB_VERSION)),
            proc::CONNECT_LIST_SERVERS => {
                let a: ListServersArgs = decode(args)?;
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
            }
            proc::CONNECT_LOOKUP_SERVER => {
                let a: LookupServerArgs = decode(args)?;
                // libvirt does not check these flags.
                self.lookup(&a.name)?;
                Ok(xdr::to_bytes(&LookupServerRet {
                    srv: Server_ { name: a.name },
                }))
            }
            proc::SERVER_GET_THREADPOOL_PARAMETERS => {
                let a: ServerFlagsArgs = decode(args)?;
                let srv = self.lookup(&a.srv.name)?;
                check_flags(a.flags, "adminServerGetThreadPoolParameters")?;
                let t = srv.threadpool();
                Ok(params(vec![
                    uint("minWorkers", t.min_workers),
                    uint("maxWorkers", t.max_workers),
                    uint("nWorkers", t.n_workers),
                    uint("freeWorkers", t.free_workers),
                    uint("prioWorkers", t.prio_workers),
                    uint("jobQueueDepth", t.job_queue_depth),
                ]))
            }
            proc::SERVER_SET_THREADPOOL_PARAMETERS => {
                let a: SetParamsArgs = decode(args)?;
                let srv = self.lookup_admin(&a.srv.name)?;
                check_flags(a.flags, "adminServerSetThreadPoolParameters")?;
                validate(&a.params, &["minWorkers", "maxWorkers", "prioWorkers"])?;
                srv.set_threadpool(
                    get_uint(&a.params, "minWorkers"),
                    get_uint(&a.params, "maxWorkers"),
                    get_uint(&a.params, "prioWorkers"),
                )
                .map_err(|e| e.to_vir_error())?;
                Ok(Vec::new())
            }
            proc::SERVER_LIST_CLIENTS => {
                let a: ListClientsArgs = decode(args)?;
                let srv = self.lookup(&a.srv.name)?;
                check_flags(a.flags, "adminServerListClients")?;
                let all = srv.clients();
                let n = all.len().min(ADMIN_LIST_MAX);
                let clients = if a.need_results != 0 {
                    all.iter()
                        .take(ADMIN_LIST_MAX)
                        .map(|c| client_ref(&a.srv.name, c))
                        .collect()
                } else {
                    Vec::new()
                };
                Ok(xdr::to_bytes(&ListClientsRet {
                    clients,
                    ret: n as u32,
                }))
            }
            proc::SERVER_LOOKUP_CLIENT => {
                let a: LookupClientArgs = decode(args)?;
                let srv = self.lookup(&a.srv.name)?;
                check_flags(a.flags, "adminServerLookupClient")?;
                let c = srv.client(a.id).ok_or_else(|| no_client(a.id))?;
                Ok(xdr::to_bytes(&LookupClientRet {
                    clnt: client_ref(&a.srv.name, &c),
                }))
            }
            proc::CLIENT_GET_INFO => {
                let a: ClientFlagsArgs = decode(args)?;
                let srv = self.lookup_admin(&a.clnt.srv.name)?;
                let c = srv.client(a.clnt.id).ok_or_else(|| {
                    VirError::new(
                        ErrorCode::NoClient,
                        ErrorDomain::Admin,
                        format!("no client with matching id '{}' found", a.clnt.id),
                    )
                })?;
                check_flags(a.flags, "adminClientGetInfo")?;
                Ok(params(client_info(&c.info)))
            }
            proc::CLIENT_CLOSE => {
                let a: ClientFlagsArgs = decode(args)?;
                let srv = self.lookup(&a.clnt.srv.name)?;
                srv.client(a.clnt.id).ok_or_else(|| no_client(a.clnt.id))?;
                check_flags(a.flags, "adminClientClose")?;
                srv.close_client(a.clnt.id);
                Ok(Vec::new())
            }
            proc::SERVER_GET_CLIENT_LIMITS => {
                let a: ServerFlagsArgs = decode(args)?;
                let srv = self.lookup(&a.srv.name)?;
                check_flags(a.flags, "adminServerGetClientLimits")?;
                let (max, n, unauth_max, unauth) = srv.client_limits();
                Ok(params(vec![
                    uint("nclients_max", max as u32),
                    uint("nclients", n as u32),
                    uint("nclients_unauth_max", unauth_max as u32),
                    uint("nclients_unauth", unauth as u32),
                ]))
            }
            proc::SERVER_SET_CLIENT_LIMITS => {
                let a: SetParamsArgs = decode(args)?;
                let srv = self.lookup_admin(&a.srv.name)?;
                check_flags(a.flags, "adminServerSetClientLimits")?;
                validate(&a.params, &["nclients_max", "nclients_unauth_max"])?;
                srv.set_client_limits(
                    get_uint(&a.params, "nclients_max").map(|v| v as usize),
                    get_uint(&a.params, "nclients_unauth_max").map(|v| v as usize),
                )
                .map_err(|e| e.to_vir_error())?;
                Ok(Vec::new())
            }
            proc::CONNECT_GET_LOGGING_OUTPUTS => {
                let a: FlagsArgs = decode(args)?;
                check_flags(a.flags, "adminConnectGetLoggingOutputs")?;
                let (outputs, noutputs) = logging::outputs();
                Ok(xdr::to_bytes(&GetOutputsRet { outputs, noutputs }))
            }
            proc::CONNECT_GET_LOGGING_FILTERS => {
                let a: FlagsArgs = decode(args)?;
                check_flags(a.flags, "adminConnectGetLoggingFilters")?;
                let (filters, nfilters) = logging::filters();
                Ok(xdr::to_bytes(&GetFiltersRet { filters, nfilters }))
            }
            proc::CONNECT_SET_LOGGING_OUTPUTS => {
                let a: SetStringArgs = decode(args)?;
                check_flags(a.flags, "adminConnectSetLoggingOutputs")?;
                logging::set_outputs(a.value.as_deref())?;
                Ok(Vec::new())
            }
            proc::CONNECT_SET_LOGGING_FILTERS => {
                let a: SetStringArgs = decode(args)?;
                check_flags(a.flags, "adminConnectSetLoggingFilters")?;
                logging::set_filters(a.value.as_deref())?;
                Ok(Vec::new())
            }
            proc::SERVER_UPDATE_TLS_FILES => {
                let a: ServerFlagsArgs = decode(args)?;
                self.lookup(&a.srv.name)?;
                check_flags(a.flags, "adminServerUpdateTlsFiles")?;
                Err(VirError::rpc_internal(
                    "no tls service found, unable to update tls files",
                ))
            }
            proc::CONNECT_SET_DAEMON_TIMEOUT => {
                let a: SetTimeoutArgs = decode(args)?;
                check_flags(a.flags, "adminConnectSetDaemonTimeout")?;
                self.daemon.timeout.send_replace(a.timeout);
                Ok(Vec::new())
            }
            p => Err(VirError::rpc(format!("unknown procedure: {p}"))),
        }
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

fn no_client(id: u64) -> VirError {
    VirError::new(
        ErrorCode::NoClient,
        ErrorDomain::Rpc,
        format!("No client with matching ID '{id}'"),
    )
}

fn client_ref(server: &str, c: &ClientSnapshot) -> Client_ {
    Client_ {
        srv: Server_ {
            name: server.into(),
        },
        id: c.info.id,
        timestamp: c.timestamp,
        transport: c.transport,
    }
}

fn uint(name: &str, v: u32) -> TypedParam {
    TypedParam {
        field: name.into(),
        value: TypedValue::UInt(v),
    }
}

fn params(list: Vec<TypedParam>) -> Vec<u8> {
    xdr::to_bytes(&list)
}

/// `adminClientGetInfo` for a unix client: readonly, then the peer's identity.
fn client_info(info: &ClientInfo) -> Vec<TypedParam> {
    let mut p = vec![TypedParam {
        field: "readonly".into(),
        value: TypedValue::Boolean(info.readonly.into()),
    }];
    let int = |f: &str, v: i32| TypedParam {
        field: f.into(),
        value: TypedValue::Int(v),
    };
    let string = |f: &str, v: String| TypedParam {
        field: f.into(),
        value: TypedValue::String(v),
    };
    if info.uid != u32::MAX {
        p.push(int("unix_user_id", info.uid as i32));
        if let Ok(Some(u)) = nix::unistd::User::from_uid(info.uid.into()) {
            p.push(string("unix_user_name", u.name));
        }
    }
    if info.gid != u32::MAX {
        p.push(int("unix_group_id", info.gid as i32));
        if let Ok(Some(g)) = nix::unistd::Group::from_gid(info.gid.into()) {
            p.push(string("unix_group_name", g.name));
        }
    }
    if info.pid >= 0 {
        p.push(int("unix_process_id", info.pid));
    }
    p
}

fn type_name(v: &TypedValue) -> &'static str {
    match v {
        TypedValue::Int(_) => "int",
        TypedValue::UInt(_) => "uint",
        TypedValue::LLong(_) => "llong",
        TypedValue::ULLong(_) => "ullong",
        TypedValue::Double(_) => "double",
        TypedValue::Boolean(_) => "boolean",
        TypedValue::String(_) => "string",
    }
}

/// `virTypedParamsValidate` with UINT keys: parameters and keys are both sorted by name
/// and walked together, so which complaint comes first depends on that order, as in
/// libvirt.
fn validate(params: &[TypedParam], keys: &[&str]) -> Result<(), VirError> {
    let mut sorted: Vec<&TypedParam> = params.iter().collect();
    sorted.sort_by(|a, b| a.field.as_bytes().cmp(b.field.as_bytes()));
    let mut keys: Vec<&str> = keys.to_vec();
    keys.sort_unstable();
    let (mut i, mut j) = (0, 0);
    let mut last: Option<&str> = None;
    while i < sorted.len() && j < keys.len() {
        if sorted[i].field != keys[j] {
            j += 1;
            continue;
        }
        if last == Some(sorted[i].field.as_str()) {
            return Err(VirError::new(
                ErrorCode::InvalidArg,
                ErrorDomain::None,
                format!("parameter '{}' occurs multiple times", sorted[i].field),
            ));
        }
        if !matches!(sorted[i].value, TypedValue::UInt(_)) {
            return Err(VirError::new(
                ErrorCode::InvalidArg,
                ErrorDomain::None,
                format!(
                    "invalid type '{}' for parameter '{}', expected 'uint'",
                    type_name(&sorted[i].value),
                    sorted[i].field
                ),
            ));
        }
        last = Some(sorted[i].field.as_str());
        i += 1;
    }
    if j == keys.len() && i != sorted.len() {
        return Err(VirError::new(
            ErrorCode::ArgumentUnsupported,
            ErrorDomain::None,
            format!("parameter '{}' not supported", sorted[i].field),
        ));
    }
    Ok(())
}

fn get_uint(params: &[TypedParam], name: &str) -> Option<u32> {
    params
        .iter()
        .find_map(|p| match (&p.value, p.field == name) {
            (TypedValue::UInt(v), true) => Some(*v),
            _ => None,
        })
}

impl Service for AdminProgram {
    type Session = ();

    fn has_program(&self, prog: u32, vers: u32) -> bool {
        prog == ADMIN_PROGRAM && vers == ADMIN_VERSION
    }

    /// remoteAdmClientNew: only peers running as the daemon's own user.
    fn admit(&self, info: &ClientInfo) -> bool {
        info.uid == nix::unistd::geteuid().as_raw()
    }

    fn connect(&self, _info: ClientInfo, _events: EventSender) {}

    async fn call(&self, _s: &mut (), header: &Header, args: &[u8]) -> Reply {
        if header.proc_ == proc::CONNECT_CLOSE {
            return Reply {
                result: Ok(Vec::new()),
                close: true,
                start_keepalive: false,
            };
        }
        self.dispatch(header.proc_, args).into()
    }

    fn disconnect(&self, _s: ()) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, v: TypedValue) -> TypedParam {
        TypedParam {
            field: name.into(),
            value: v,
        }
    }

    const KEYS: [&str; 3] = ["minWorkers", "maxWorkers", "prioWorkers"];

    #[test]
    fn validation_follows_virtypedparamsvalidate() {
        assert!(validate(&[p("maxWorkers", TypedValue::UInt(3))], &KEYS).is_ok());
        let e = validate(&[p("foo", TypedValue::UInt(3))], &KEYS).unwrap_err();
        assert_eq!(
            (e.code, e.domain, e.message.as_str()),
            (74, 0, "argument unsupported: parameter 'foo' not supported")
        );
        let e = validate(&[p("minWorkers", TypedValue::Int(3))], &KEYS).unwrap_err();
        assert_eq!(
            e.message,
            "invalid argument: invalid type 'int' for parameter 'minWorkers', expected 'uint'"
        );
        let e = validate(
            &[
                p("minWorkers", TypedValue::UInt(3)),
                p("minWorkers", TypedValue::UInt(4)),
            ],
            &KEYS,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "invalid argument: parameter 'minWorkers' occurs multiple times"
        );
    }
}
