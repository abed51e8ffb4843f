//! The `virAdmServer*` procedures on a server's own settings: its worker pool, its client
//! limits and its TLS files.

use protocol::admin::{ServerFlagsArgs, SetParamsArgs};

use super::error::{check_flags, AdminError};
use super::params::{encode, get_uint, uint};
use super::{AdminProgram, AdminResult};
use crate::typed_params::validate;

/// The typed parameters SERVER_SET_THREADPOOL_PARAMETERS accepts.
const THREADPOOL_KEYS: [(&str, &str); 3] = [
    ("minWorkers", "uint"),
    ("maxWorkers", "uint"),
    ("prioWorkers", "uint"),
];
/// The typed parameters SERVER_SET_CLIENT_LIMITS accepts.
const CLIENT_LIMIT_KEYS: [(&str, &str); 2] =
    [("nclients_max", "uint"), ("nclients_unauth_max", "uint")];

impl AdminProgram {
    pub(super) fn server_get_threadpool_parameters(&self, a: ServerFlagsArgs) -> AdminResult {
        let srv = self.lookup(&a.srv.name)?;
        check_flags(a.flags, "adminServerGetThreadPoolParameters")?;
        let t = srv.threadpool();
        Ok(encode(vec![
            uint("minWorkers", t.min_workers),
            uint("maxWorkers", t.max_workers),
            uint("nWorkers", t.n_workers),
            uint("freeWorkers", t.free_workers),
            uint("prioWorkers", t.prio_workers),
            uint("jobQueueDepth", t.job_queue_depth),
        ]))
    }

    pub(super) fn server_set_threadpool_parameters(&self, a: SetParamsArgs) -> AdminResult {
        let srv = self.lookup_admin(&a.srv.name)?;
        check_flags(a.flags, "adminServerSetThreadPoolParameters")?;
        validate(&a.params, &THREADPOOL_KEYS)?;
        srv.set_threadpool(
            get_uint(&a.params, "minWorkers"),
            get_uint(&a.params, "maxWorkers"),
            get_uint(&a.params, "prioWorkers"),
        )
        .map_err(AdminError::Limit)?;
        Ok(Vec::new())
    }

    pub(super) fn server_get_client_limits(&self, a: ServerFlagsArgs) -> AdminResult {
        let srv = self.lookup(&a.srv.name)?;
        check_flags(a.flags, "adminServerGetClientLimits")?;
        let (max, n, unauth_max, unauth) = srv.client_limits();
        Ok(encode(vec![
            uint("nclients_max", max as u32),
            uint("nclients", n as u32),
            uint("nclients_unauth_max", unauth_max as u32),
            uint("nclients_unauth", unauth as u32),
        ]))
    }

    pub(super) fn server_set_client_limits(&self, a: SetParamsArgs) -> AdminResult {
        let srv = self.lookup_admin(&a.srv.name)?;
        check_flags(a.flags, "adminServerSetClientLimits")?;
        validate(&a.params, &CLIENT_LIMIT_KEYS)?;
        srv.set_client_limits(
            get_uint(&a.params, "nclients_max").map(|v| v as usize),
            get_uint(&a.params, "nclients_unauth_max").map(|v| v as usize),
        )
        .map_err(AdminError::Limit)?;
        Ok(Vec::new())
    }

    /// The daemon listens on unix sockets only, so there is never a TLS context.
    pub(super) fn server_update_tls_files(&self, a: ServerFlagsArgs) -> AdminResult {
        self.lookup(&a.srv.name)?;
        check_flags(a.flags, "adminServerUpdateTlsFiles")?;
        Err(AdminError::NoTlsService)
    }
}
