//! virtnodedevd: libvirt's host device management daemon.

mod admin;
mod cli;
mod driver;
mod listen;
mod remote;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use nodedev::HostRoot;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info};
use virconf::daemon::DaemonConfig;

use crate::cli::{Action, Options, DAEMON_NAME};
use crate::driver::Driver;
use crate::listen::{PidFile, SocketPaths};
use crate::remote::{Auth, RemoteProgram};

/// Where the host is read from. Only tests set this: the daemon always reads the real
/// host by default.
const HOST_ROOT_ENV: &str = "VIRTNODEDEVD_HOST_ROOT";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().cloned().unwrap_or_else(|| DAEMON_NAME.into());
    let privileged = nix::unistd::geteuid().is_root();
    let opts = match cli::parse(&argv0, &args[1..]) {
        Ok(Action::Run(o)) => o,
        Ok(Action::Help) => {
            eprint!("{}", cli::usage(&argv0, privileged));
            return ExitCode::SUCCESS;
        }
        Ok(Action::Version) => {
            println!("{argv0} (libvirt) {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{}", e.message);
            if e.show_usage {
                eprint!("{}", cli::usage(&argv0, privileged));
            }
            return ExitCode::FAILURE;
        }
    };

    let config = match DaemonConfig::load(opts.config.as_deref(), privileged) {
        Ok(c) => c,
        Err(e) => {
            let file = opts
                .config
                .clone()
                .unwrap_or_else(|| DaemonConfig::default_path(privileged));
            eprintln!(
                "{DAEMON_NAME}: error: Can't load config file: {}: {}",
                e.message(),
                file.display()
            );
            return ExitCode::FAILURE;
        }
    };
    init_logging(&config, opts.verbose);

    if opts.daemon {
        // Forking is only sound while the process has one thread: the runtime is
        // created after this.
        if let Err(e) = nix::unistd::daemon(false, false) {
            eprintln!("{DAEMON_NAME}: error: Failed to fork as daemon: {e}");
            return ExitCode::FAILURE;
        }
    }

    match run(opts, config, privileged) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            error!("{msg}");
            eprintln!("{DAEMON_NAME}: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &DaemonConfig, verbose: bool) {
    // libvirt levels: 1 debug, 2 info, 3 warning, 4 error.
    let level = match (config.log_level, verbose) {
        (1, _) => "debug",
        (2, _) | (_, true) => "info",
        (3, _) => "warn",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIRTNODEDEVD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn run(opts: Options, config: DaemonConfig, privileged: bool) -> Result<(), String> {
    let pid_path = opts
        .pid_file
        .clone()
        .unwrap_or_else(|| listen::default_pid_file(privileged));
    let _pid_file = PidFile::acquire(&pid_path).map_err(|e| e.to_string())?;

    let root = std::env::var_os(HOST_ROOT_ENV)
        .map(|r| HostRoot::new(PathBuf::from(r)))
        .unwrap_or_default();
    let driver = Arc::new(Driver::new(root));
    let n = driver.enumerate();
    info!("enumerated {n} node devices");

    let modes = config.socket_modes().map_err(|e| e.message())?;
    let gid = match config.unix_sock_group.as_deref() {
        None => None,
        Some(g) => Some(
            nix::unistd::Group::from_name(g)
                .ok()
                .flatten()
                .ok_or_else(|| format!("Failed to lookup group '{g}'"))?
                .gid
                .as_raw(),
        ),
    };
    let paths = SocketPaths::new(privileged, config.unix_sock_dir.as_deref());
    let bind =
        |p: &PathBuf, mode: i32| listen::bind(p, mode as u32, gid).map_err(|e| e.to_string());
    let rw = bind(&paths.rw, modes.rw)?;
    let ro = paths.ro.as_ref().map(|p| bind(p, modes.ro)).transpose();
    let admin = paths
        .admin
        .as_ref()
        .map(|p| bind(p, modes.admin))
        .transpose();
    let cleanup = |paths: &SocketPaths| {
        for p in paths.all() {
            let _ = std::fs::remove_file(p);
        }
    };
    let (ro, admin) = match (ro, admin) {
        (Ok(ro), Ok(admin)) => (ro, admin),
        (Err(e), _) | (_, Err(e)) => {
            cleanup(&paths);
            return Err(e);
        }
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(serve(opts, config, privileged, driver, rw, ro, admin));
    cleanup(&paths);
    result
}

async fn serve(
    opts: Options,
    config: DaemonConfig,
    privileged: bool,
    driver: Arc<Driver>,
    rw: std::os::unix::net::UnixListener,
    ro: Option<std::os::unix::net::UnixListener>,
    admin: Option<std::os::unix::net::UnixListener>,
) -> Result<(), String> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = rpc::Limits {
        max_clients: config.max_clients.max(1) as usize,
        keepalive_interval: config.keepalive_interval,
        keepalive_count: config.keepalive_count,
        ..rpc::Limits::default()
    };
    let server = rpc::server::Server::new(limits);
    let to_auth = |a: virconf::daemon::Auth| match a {
        virconf::daemon::Auth::Polkit => Auth::Polkit,
        _ => Auth::None,
    };
    let program = |auth| {
        Arc::new(RemoteProgram {
            driver: driver.clone(),
            auth,
            privileged,
        })
    };
    let tokio_listener = |l: std::os::unix::net::UnixListener| {
        tokio::net::UnixListener::from_std(l).map_err(|e| e.to_string())
    };
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(rpc::serve(
        server.clone(),
        tokio_listener(rw)?,
        false,
        program(to_auth(config.auth_unix_rw)),
        stop_rx.clone(),
    )));
    if let Some(ro) = ro {
        tasks.push(tokio::spawn(rpc::serve(
            server.clone(),
            tokio_listener(ro)?,
            true,
            program(to_auth(config.auth_unix_ro)),
            stop_rx.clone(),
        )));
    }
    let admin_server = rpc::server::Server::new(rpc::Limits {
        max_clients: config.admin_max_clients.max(1) as usize,
        keepalive_interval: config.admin_keepalive_interval,
        keepalive_count: config.admin_keepalive_count,
        ..rpc::Limits::default()
    });
    if let Some(admin) = admin {
        tasks.push(tokio::spawn(rpc::serve(
            admin_server.clone(),
            tokio_listener(admin)?,
            false,
            Arc::new(admin::AdminProgram::new(server.clone())),
            stop_rx.clone(),
        )));
    }
    info!("{DAEMON_NAME} ready");

    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut idle_since = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let n = driver.enumerate();
                info!("SIGHUP: re-read {n} node devices");
            }
            _ = tick.tick(), if opts.timeout > 0 => {
                if server.active_clients() > 0 {
                    idle_since = tokio::time::Instant::now();
                } else if idle_since.elapsed() >= Duration::from_secs(opts.timeout.into()) {
                    info!("no clients for {} seconds, exiting", opts.timeout);
                    break;
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
