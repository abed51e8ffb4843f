//! SIGHUP: read the configuration file again and apply what can change while clients stay
//! connected — logging and the servers' client and worker limits. (libvirt itself only
//! reloads its drivers on SIGHUP; sockets, auth and keepalive settings still need a
//! restart here too.) A file that no longer loads is reported and changes nothing.

use std::path::Path;

use rpc::Server;
use tracing::{error, info};
use virconf::daemon::DaemonConfig;

use crate::logging;

pub fn reload(explicit: Option<&Path>, privileged: bool, main: &Server, admin: &Server) {
    let file = explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| DaemonConfig::default_path(privileged));
    let config = match DaemonConfig::load(explicit, privileged) {
        Ok(c) => c,
        Err(e) => {
            error!(
                "Can't load config file: {}: {}",
                e.message(),
                file.display()
            );
            return;
        }
    };
    if let Err(e) = logging::configure(
        config.log_level,
        config.log_filters.as_deref(),
        config.log_outputs.as_deref(),
        logging::mode(),
    ) {
        error!("{}", e.message());
    }
    crate::manage::pci::configure(&config);
    let apply = |srv: &Server, what: &str, clients, unauth, min, max, prio| {
        if let Err(e) = srv.set_client_limits(Some(clients), unauth) {
            error!("{what}: {}", e.to_vir_error().message);
        }
        if let Err(e) = srv.set_threadpool(Some(min), Some(max), prio) {
            error!("{what}: {}", e.to_vir_error().message);
        }
    };
    apply(
        main,
        "main server",
        config.max_clients as usize,
        Some(config.max_anonymous_clients as usize),
        config.min_workers,
        config.max_workers,
        Some(config.prio_workers),
    );
    apply(
        admin,
        "admin server",
        config.admin_max_clients as usize,
        None,
        config.admin_min_workers,
        config.admin_max_workers,
        None,
    );
    info!("Reloaded configuration from {}", file.display());
}
