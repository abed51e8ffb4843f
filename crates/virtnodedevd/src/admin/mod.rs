//! The admin program on the admin socket (what virt-admin talks to): libvirt 11.3's 20
//! procedures over the daemon's two servers, `virtnodedevd` and `admin`.
//!
//! A call is decoded once into a [`AdminCall`] (protocol crate), then handed to the method
//! named after its libvirt API: `connect_*` in `connect.rs`, `server_*` in `server.rs`, the
//! client procedures in `client.rs`. A new procedure is a variant there and an arm here.
//!
//! Error texts, domains and the order of checks follow admin_server_dispatch.c and
//! admin_server.c: the generated dispatchers look the server up first ("No server
//! named"), the hand-written ones (SET_THREADPOOL, CLIENT_GET_INFO, SET_CLIENT_LIMITS) say
//! "no server with matching name" in the admin domain; flags are checked after lookups.
//! Every failure is an [`AdminError`], mapped to libvirt's triple in `error.rs`.

mod client;
mod connect;
mod error;
mod params;
mod server;

use std::sync::Arc;

use protocol::admin::{AdminCall, ADMIN_PROGRAM, ADMIN_VERSION};
use rpc::{ClientInfo, EventSender, Header, Reply, Server, Service};
use tokio::sync::watch;

use crate::cli::DAEMON_NAME;
use error::AdminError;

/// The servers this daemon runs, as virt-admin lists them.
const SERVERS: [&str; 2] = [DAEMON_NAME, "admin"];

/// What the admin program may change in the daemon beyond its servers.
pub struct DaemonControl {
    /// `-t` / CONNECT_SET_DAEMON_TIMEOUT: seconds without clients before exiting; 0 never.
    pub timeout: watch::Sender<u32>,
    /// CONNECT_DAEMON_SHUTDOWN: the daemon stops as on SIGTERM.
    pub quit: tokio::sync::Notify,
}

/// The encoded return value of one admin procedure.
type AdminResult = Result<Vec<u8>, AdminError>;

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
    fn lookup(&self, name: &str) -> Result<&Arc<Server>, AdminError> {
        self.server(name)
            .ok_or_else(|| AdminError::NoServer(name.into()))
    }

    /// The hand-written dispatchers' wording.
    fn lookup_admin(&self, name: &str) -> Result<&Arc<Server>, AdminError> {
        self.server(name)
            .ok_or_else(|| AdminError::NoMatchingServer(name.into()))
    }

    fn dispatch(&self, call: AdminCall) -> AdminResult {
        use AdminCall as C;
        match call {
            C::ConnectOpen(a) => self.connect_open(a),
            C::ConnectClose => self.connect_close(),
            C::ConnectGetLibVersion => self.connect_get_lib_version(),
            C::ConnectListServers(a) => self.connect_list_servers(a),
            C::ConnectLookupServer(a) => self.connect_lookup_server(a),
            C::ServerGetThreadpoolParameters(a) => self.server_get_threadpool_parameters(a),
            C::ServerSetThreadpoolParameters(a) => self.server_set_threadpool_parameters(a),
            C::ServerListClients(a) => self.server_list_clients(a),
            C::ServerLookupClient(a) => self.server_lookup_client(a),
            C::ClientGetInfo(a) => self.client_get_info(a),
            C::ClientClose(a) => self.client_close(a),
            C::ServerGetClientLimits(a) => self.server_get_client_limits(a),
            C::ServerSetClientLimits(a) => self.server_set_client_limits(a),
            C::ConnectGetLoggingOutputs(a) => self.connect_get_logging_outputs(a),
            C::ConnectGetLoggingFilters(a) => self.connect_get_logging_filters(a),
            C::ConnectSetLoggingOutputs(a) => self.connect_set_logging_outputs(a),
            C::ConnectSetLoggingFilters(a) => self.connect_set_logging_filters(a),
            C::ServerUpdateTlsFiles(a) => self.server_update_tls_files(a),
            C::ConnectSetDaemonTimeout(a) => self.connect_set_daemon_timeout(a),
            C::ConnectDaemonShutdown(a) => self.connect_daemon_shutdown(a),
        }
    }
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
        let call = AdminCall::decode(header.proc_, args);
        let close = matches!(call, Ok(AdminCall::ConnectClose));
        let shutdown = matches!(call, Ok(AdminCall::ConnectDaemonShutdown(_)));
        let result = call
            .map_err(AdminError::from)
            .and_then(|c| self.dispatch(c))
            .map_err(|e| e.to_vir_error());
        Reply {
            // libvirt 11.3 closes its servers before the worker's reply goes out: virt-admin
            // daemon-shutdown reads end of file, not an answer.
            hang_up: shutdown && result.is_ok(),
            result,
            close,
            start_keepalive: false,
        }
    }

    fn disconnect(&self, _s: ()) {}
}
