//! The `virAdmConnect*` procedures: the connection itself, the daemon's servers, its
//! logging and its idle timeout.

use protocol::admin::{
    FlagsArgs, GetFiltersRet, GetOutputsRet, ListServersArgs, ListServersRet, LookupServerArgs,
    LookupServerRet, Server_, SetStringArgs, SetTimeoutArgs,
};
use protocol::LIB_VERSION;

use super::error::{check_flags, check_flags_of, AdminError};
use super::{AdminProgram, AdminResult, SERVERS};
use crate::logging;

impl AdminProgram {
    pub(super) fn connect_open(&self, a: FlagsArgs) -> AdminResult {
        check_flags(a.flags, "adminDispatchConnectOpen")?;
        Ok(Vec::new())
    }

    /// The reply only; `call` closes the connection after it.
    pub(super) fn connect_close(&self) -> AdminResult {
        Ok(Vec::new())
    }

    pub(super) fn connect_get_lib_version(&self) -> AdminResult {
        Ok(xdr::to_bytes(&LIB_VERSION))
    }

    pub(super) fn connect_list_servers(&self, a: ListServersArgs) -> AdminResult {
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

    pub(super) fn connect_lookup_server(&self, a: LookupServerArgs) -> AdminResult {
        // libvirt does not check these flags.
        self.lookup(&a.name)?;
        Ok(xdr::to_bytes(&LookupServerRet {
            srv: Server_ { name: a.name },
        }))
    }

    pub(super) fn connect_get_logging_outputs(&self, a: FlagsArgs) -> AdminResult {
        check_flags(a.flags, "adminConnectGetLoggingOutputs")?;
        let (outputs, noutputs) = logging::outputs();
        Ok(xdr::to_bytes(&GetOutputsRet { outputs, noutputs }))
    }

    pub(super) fn connect_get_logging_filters(&self, a: FlagsArgs) -> AdminResult {
        check_flags(a.flags, "adminConnectGetLoggingFilters")?;
        let (filters, nfilters) = logging::filters();
        Ok(xdr::to_bytes(&GetFiltersRet { filters, nfilters }))
    }

    pub(super) fn connect_set_logging_outputs(&self, a: SetStringArgs) -> AdminResult {
        check_flags(a.flags, "adminConnectSetLoggingOutputs")?;
        logging::set_outputs(a.value.as_deref()).map_err(AdminError::Logging)?;
        Ok(Vec::new())
    }

    pub(super) fn connect_set_logging_filters(&self, a: SetStringArgs) -> AdminResult {
        check_flags(a.flags, "adminConnectSetLoggingFilters")?;
        logging::set_filters(a.value.as_deref()).map_err(AdminError::Logging)?;
        Ok(Vec::new())
    }

    pub(super) fn connect_set_daemon_timeout(&self, a: SetTimeoutArgs) -> AdminResult {
        check_flags(a.flags, "adminConnectSetDaemonTimeout")?;
        self.daemon.timeout.send_replace(a.timeout);
        Ok(Vec::new())
    }

    /// adminConnectDaemonShutdown. PRESERVE first runs the drivers' stateStop, which the
    /// node-device driver does not have: both stop the daemon as SIGTERM does.
    pub(super) fn connect_daemon_shutdown(&self, a: FlagsArgs) -> AdminResult {
        check_flags_of(
            a.flags,
            protocol::admin::DAEMON_SHUTDOWN_PRESERVE,
            "adminConnectDaemonShutdown",
        )?;
        self.daemon.quit.notify_one();
        Ok(Vec::new())
    }
}
