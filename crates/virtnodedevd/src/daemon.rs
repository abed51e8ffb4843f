//! The daemon itself: command line, configuration, start-up, sockets, signals, and the
//! serving loop that wires the device state, the management area and the programs
//! together.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use nodedev::HostRoot;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::{error, info};
use virconf::daemon::DaemonConfig;

use crate::access::AccessManager;
use crate::cli::{Action, Options, DAEMON_NAME};
use crate::daemonize::DaemonErr;
use crate::driver::Driver;
use crate::listen::{PidFile, SocketPaths};
use crate::remote::{Auth, RemoteProgram};
use crate::{activation, admin, cli, daemonize, events, listen, logging, manage, monitor, reload};

/// Where the host is read from. Only tests set this: the daemon always reads the real
/// host by default.
const HOST_ROOT_ENV: &str = "VIRTNODEDEVD_HOST_ROOT";
/// Tests only: take kernel-format uevents from this datagram socket instead of netlink.
const UEVENT_SOCKET_ENV: &str = "VIRTNODEDEVD_UEVENT_SOCKET";

/// What `virtnodedevd` does when it runs; the exit code is libvirt's.
pub fn main() -> ExitCode {
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
            println!("{argv0} (libvirt) {}", protocol::LIB_VERSION_STRING);
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

    // libvirt logs from the start: its default output (stderr, at warning) carries the
    // start-up errors below until the configured outputs take over.
    logging::install();
    let config = match DaemonConfig::load(opts.config.as_deref(), privileged) {
        Ok(c) => c,
        Err(e) => {
            let file = opts
                .config
                .clone()
                .unwrap_or_else(|| DaemonConfig::default_path(privileged));
            // virReportError logs the error itself, then main() says what it was doing.
            error!("{e}");
            error!(
                "Can't load config file: {}: {}",
                e.message(),
                file.display()
            );
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = config.setup_host_uuid(Path::new(MACHINE_ID)) {
        error!("{e}");
        error!("Can't setup host uuid");
        return ExitCode::FAILURE;
    }
    let log_mode = logging::StartMode {
        daemon: opts.daemon,
        privileged,
        verbose: opts.verbose,
    };
    if let Err(e) = logging::configure(
        config.log_level,
        config.log_filters.as_deref(),
        config.log_outputs.as_deref(),
        log_mode,
    ) {
        // virDispatchError() with no domain name.
        eprintln!("libvirt:  error : {}", e.message());
        return ExitCode::FAILURE;
    }
    if let Err(e) = config.access_manager() {
        error!("{e}");
        error!("Can't initialize access manager");
        return ExitCode::FAILURE;
    }
    if let Err(msgs) = prepare_user_dirs(&opts, &config, privileged) {
        for m in msgs {
            error!("{m}");
        }
        return ExitCode::FAILURE;
    }

    if opts.daemon {
        // Forking is only sound while the process has one thread: the runtime is
        // created after this. Only the daemon returns; the caller exits with its status.
        if let Err(e) = daemonize::fork_into_background(&argv0) {
            error!("Failed to fork as daemon: {e}");
            return ExitCode::FAILURE;
        }
    }

    match run(opts, config, privileged) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            daemonize::report_failure(f.err);
            error!("{}", f.message);
            // libvirt's main() returns the virDaemonErr number.
            ExitCode::from(f.err as u8)
        }
    }
}

/// `/etc/machine-id`, for `host_uuid_source = "machine-id"`.
const MACHINE_ID: &str = "/etc/machine-id";

/// A start-up failure after the fork point: what is logged and the `virDaemonErr` the
/// daemon exits with (and a `-d` parent is told).
struct Fatal {
    err: DaemonErr,
    message: String,
}

fn fatal(err: DaemonErr) -> impl FnOnce(String) -> Fatal {
    move |message| Fatal { err, message }
}

/// An unprivileged daemon's runtime directory, made as libvirt makes it while deciding
/// the pid file path (no `-p`) and the default socket directory; libvirt's messages on
/// failure, exit status 1. Runs single-threaded (the umask is process-wide).
fn prepare_user_dirs(
    opts: &Options,
    config: &DaemonConfig,
    privileged: bool,
) -> Result<(), Vec<String>> {
    if privileged {
        return Ok(());
    }
    let dir = listen::user_runtime_dir().join("libvirt");
    if opts.pid_file.is_none() {
        // virPidFileConstructPath: mode 0700 under the process umask.
        let made = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir);
        if let Err(e) = made {
            let errno = nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0));
            return Err(vec![
                format!(
                    "Cannot create user runtime directory '{}': {}",
                    dir.display(),
                    listen::strerror(&errno)
                ),
                "Can't determine pid file path.".into(),
            ]);
        }
    }
    // virDaemonUnixSocketPaths reports no detail of its own.
    if config.unix_sock_dir.is_none() && listen::mkdir_with_parents(&dir, 0o077).is_err() {
        return Err(vec!["Can't determine socket paths".into()]);
    }
    Ok(())
}

/// Raises the soft limit on open files towards the hard one, up to 65,536: clients and
/// the device directories held for re-reads are all descriptors, and the usual soft limit
/// (1,024) is for programs that use select(2), which this one does not.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let want = hard.min(65_536);
        if soft < want {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, want, hard) {
                tracing::debug!("cannot raise the open files limit to {want}: {e}");
            }
        }
    }
}

/// Start-up from the pid file on, in libvirt's order of checks (pid file, run
/// directory, signal handlers, audit, sockets), each failure with its `virDaemonErr`.
/// Unlike libvirt, the devices are read before the sockets are bound.
fn run(opts: Options, config: DaemonConfig, privileged: bool) -> Result<(), Fatal> {
    let pid_path = opts
        .pid_file
        .clone()
        .unwrap_or_else(|| listen::default_pid_file(privileged));
    let _pid_file = PidFile::acquire(&pid_path)
        .map_err(|e| e.to_string())
        .map_err(fatal(DaemonErr::PidFile))?;
    listen::ensure_rundir(privileged).map_err(fatal(DaemonErr::RunDir))?;
    raise_open_files_limit();
    crate::memory::tune_allocator();

    // One thread serves every client: calls are short and in memory, and a single
    // thread avoids the cross-thread wake-ups that dominate the cost of a small call.
    // Slow work (re-reading the host) goes to the blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .map_err(fatal(DaemonErr::Init))?;
    // Signal handlers go in before the sockets appear, so a client that sees the
    // sockets can also stop the daemon cleanly.
    let signals = {
        let _rt = runtime.enter();
        Signals::new()
            .map_err(|e| format!("cannot handle signals: {e}"))
            .map_err(fatal(DaemonErr::Signal))?
    };
    check_audit(config.audit_level)?;
    let root = std::env::var_os(HOST_ROOT_ENV)
        .map(|r| HostRoot::new(PathBuf::from(r)))
        .unwrap_or_default();
    let inject = std::env::var_os(UEVENT_SOCKET_ENV).map(PathBuf::from);
    // Before the sockets: a client that sees them may already make uevents happen (and
    // tests send theirs as soon as the sockets answer). libvirt's closest step is its
    // NETLINK_KOBJECT_UEVENT event service, whose failure is VIR_DAEMON_ERR_NETWORK.
    let monitor = monitor::Monitor::open(&root, inject.as_deref())
        .map_err(|e| format!("cannot listen for uevents: {e}"))
        .map_err(fatal(DaemonErr::Network))?;
    // The devices are read before the sockets appear, so the first client sees them all
    // (libvirt binds first and holds its clients until its driver is ready).
    let events = Arc::new(events::Events::default());
    let device_changes = manage::DeviceChanges::new()
        .map(Arc::new)
        .map_err(|e| format!("cannot set up the mdev store watcher: {e}"))
        .map_err(fatal(DaemonErr::Init))?;
    let listener = crate::driver::Fanout(vec![events.clone(), device_changes.clone()]);
    nodedev::set_held_dirs_max(crate::driver::held_dirs_max());
    let driver = Arc::new(Driver::new(root, manage::reconcile, Arc::new(listener)));
    let n = driver.enumerate(false);
    info!("enumerated {n} node devices");
    manage::load_store(&driver, false);
    manage::pci::configure(&config);
    // Before the sockets, so that no client sees a recorded device on its host driver.
    manage::pci::reapply(&driver);
    // Bound while this is still the only thread: bind() sets the process umask. A
    // current-thread runtime, signal handlers and reading the devices start no thread;
    // the uevent monitor, the mdev watcher and the blocking pool all start below.
    let mut listeners = Listeners::bind(&config, privileged).map_err(fatal(DaemonErr::Network))?;
    let started = Started {
        runtime: &runtime,
        driver,
        events,
        device_changes,
        monitor,
        signals,
    };
    let result = start_and_serve(opts, config, privileged, started, &mut listeners);
    listeners.remove();
    result
}

/// `virAuditOpen` at start-up: with `audit_level` 2 or more the daemon must be able to
/// reach the kernel's audit system, else it exits with `VIR_DAEMON_ERR_AUDIT`. The node
/// device driver sends no audit records, so the socket is only opened, as a check.
fn check_audit(level: u32) -> Result<(), Fatal> {
    use nix::errno::Errno;
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
    if level == 0 {
        return Ok(());
    }
    let e = match socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkAudit,
    ) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let message = if matches!(
        e,
        Errno::EINVAL | Errno::EPROTONOSUPPORT | Errno::EAFNOSUPPORT
    ) {
        if level < 2 {
            info!("Audit is not supported by the kernel");
            return Ok(());
        }
        // libvirt passes VIR_FROM_AUDIT (36) where the error code goes, and 36 is
        // VIR_ERR_INVALID_NETWORK: its message prefix is what gets logged.
        "invalid network pointer in Audit is not supported by the kernel".to_owned()
    } else {
        format!("Unable to initialize audit layer: {}", listen::strerror(&e))
    };
    if level < 2 {
        error!("{message}");
        return Ok(());
    }
    Err(Fatal {
        err: DaemonErr::Audit,
        message,
    })
}

/// What start-up prepared before the sockets.
struct Started<'a> {
    runtime: &'a tokio::runtime::Runtime,
    driver: Arc<Driver>,
    events: Arc<events::Events>,
    device_changes: Arc<manage::DeviceChanges>,
    monitor: monitor::Monitor,
    signals: Signals,
}

fn start_and_serve(
    opts: Options,
    config: DaemonConfig,
    privileged: bool,
    started: Started<'_>,
    listeners: &mut Listeners,
) -> Result<(), Fatal> {
    let Started {
        runtime,
        driver,
        events,
        device_changes,
        monitor,
        signals,
    } = started;
    manage::spawn_watcher(driver.clone(), device_changes);
    monitor
        .spawn(driver.clone())
        .map_err(|e| format!("cannot start the uevent monitor: {e}"))
        .map_err(fatal(DaemonErr::Network))?;
    runtime
        .block_on(serve(
            opts,
            config,
            privileged,
            (driver, events),
            listeners,
            signals,
        ))
        .map_err(fatal(DaemonErr::Init))
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// The daemon's three sockets, bound and ready to hand to the servers.
struct Listeners {
    paths: SocketPaths,
    /// The socket files this daemon made (not those systemd passed), removed at exit.
    owned: Vec<PathBuf>,
    rw: Option<std::os::unix::net::UnixListener>,
    ro: Option<std::os::unix::net::UnixListener>,
    admin: Option<std::os::unix::net::UnixListener>,
}

impl Listeners {
    /// `daemonSetupNetworking`'s order: activation, group, modes (ro, admin, rw), then
    /// the rw, ro and admin sockets. Every failure is `VIR_DAEMON_ERR_NETWORK`.
    fn bind(config: &DaemonConfig, privileged: bool) -> Result<Self, String> {
        // listen::bind sets the process-wide umask: no other thread may exist yet. Debug
        // builds (every test run) check it.
        debug_assert_eq!(
            std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count()),
            1,
            "sockets must be bound while the daemon has one thread"
        );
        let mut act = activation::Activation::from_env()?;
        let gid = match config.unix_sock_group.as_deref() {
            None => 0,
            Some(g) => listen::group_id(g).map_err(|e| e.to_string())?,
        };
        let modes = config.socket_modes().map_err(|e| e.message())?;
        let queued = listen::backlog(config.max_queued_clients);
        let admin_queued = listen::backlog(config.admin_max_queued_clients);
        let [rw_unit, ro_unit, admin_unit] = activation::unit_names();
        let mut l = Listeners {
            paths: SocketPaths::new(privileged, config.unix_sock_dir.as_deref()),
            owned: Vec::new(),
            rw: None,
            ro: None,
            admin: None,
        };
        let bind = |p: &PathBuf, mode: i32, backlog: i32| -> Result<_, String> {
            listen::bind(p, mode, gid, backlog).map_err(|e| e.to_string())
        };
        // Bound one at a time so that a failure removes only what this daemon created.
        let mut made = Vec::new();
        // A socket systemd passed is used as is; the others are bound from the config.
        let mut passed = |unit: &str| match act.as_mut() {
            Some(a) => a.claim(unit),
            None => Ok(None),
        };
        let result = (|| {
            l.rw = Some(match passed(&rw_unit)? {
                Some(s) => s,
                None => {
                    let s = bind(&l.paths.rw, modes.rw, queued)?;
                    made.push(l.paths.rw.clone());
                    s
                }
            });
            if let Some(p) = l.paths.ro.clone() {
                l.ro = Some(match passed(&ro_unit)? {
                    Some(s) => s,
                    None => {
                        let s = bind(&p, modes.ro, queued)?;
                        made.push(p);
                        s
                    }
                });
            }
            if let Some(p) = l.paths.admin.clone() {
                l.admin = Some(match passed(&admin_unit)? {
                    Some(s) => s,
                    None => {
                        let s = bind(&p, modes.admin, admin_queued)?;
                        made.push(p);
                        s
                    }
                });
            }
            Ok(())
        })()
        .and_then(|()| act.as_ref().map_or(Ok(()), |a| a.complete()));
        if let Err(e) = result {
            for p in made {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        l.owned = made;
        Ok(l)
    }

    fn take(
        slot: &mut Option<std::os::unix::net::UnixListener>,
    ) -> Result<Option<tokio::net::UnixListener>, String> {
        slot.take()
            .map(|l| tokio::net::UnixListener::from_std(l).map_err(|e| e.to_string()))
            .transpose()
    }

    fn remove(&self) {
        for p in &self.owned {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The main server's limits, from the config file.
fn remote_limits(config: &DaemonConfig) -> rpc::Limits {
    rpc::Limits {
        max_clients: config.max_clients as usize,
        max_anonymous_clients: config.max_anonymous_clients as usize,
        min_workers: config.min_workers,
        max_workers: config.max_workers,
        prio_workers: config.prio_workers,
        max_client_requests: config.max_client_requests,
        keepalive_interval: config.keepalive_interval,
        keepalive_count: config.keepalive_count,
        ..rpc::Limits::default()
    }
}

/// The admin server's limits: libvirt's admin server has no priority workers and no
/// anonymous-client limit.
fn admin_limits(config: &DaemonConfig) -> rpc::Limits {
    rpc::Limits {
        max_clients: config.admin_max_clients as usize,
        max_anonymous_clients: 0,
        min_workers: config.admin_min_workers,
        max_workers: config.admin_max_workers,
        prio_workers: 0,
        max_client_requests: config.admin_max_client_requests,
        keepalive_interval: config.admin_keepalive_interval,
        keepalive_count: config.admin_keepalive_count,
        ..rpc::Limits::default()
    }
}

async fn serve(
    opts: Options,
    config: DaemonConfig,
    privileged: bool,
    (driver, events): (Arc<Driver>, Arc<events::Events>),
    listeners: &mut Listeners,
    mut signals: Signals,
) -> Result<(), String> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = rpc::server::Server::new(remote_limits(&config));
    let to_auth = |a: virconf::daemon::Auth| match a {
        virconf::daemon::Auth::Polkit => Auth::Polkit,
        virconf::daemon::Auth::Sasl => Auth::Sasl,
        virconf::daemon::Auth::None => Auth::None,
    };
    // Checked when the configuration was loaded.
    let access = AccessManager::new(&config.access_manager().unwrap_or_default());
    let program = |auth| {
        Arc::new(RemoteProgram {
            driver: driver.clone(),
            events: events.clone(),
            auth,
            privileged,
            access,
        })
    };
    let mut tasks = Vec::new();
    let rw = Listeners::take(&mut listeners.rw)?.expect("rw socket is always bound");
    tasks.push(tokio::spawn(rpc::serve(
        server.clone(),
        rw,
        false,
        program(to_auth(config.auth_unix_rw)),
        stop_rx.clone(),
    )));
    if let Some(ro) = Listeners::take(&mut listeners.ro)? {
        tasks.push(tokio::spawn(rpc::serve(
            server.clone(),
            ro,
            true,
            program(to_auth(config.auth_unix_ro)),
            stop_rx.clone(),
        )));
    }
    let admin_server = rpc::server::Server::new(admin_limits(&config));
    let (timeout_tx, mut timeout_rx) = watch::channel(opts.timeout);
    let control = Arc::new(admin::DaemonControl {
        timeout: timeout_tx,
        quit: tokio::sync::Notify::new(),
    });
    if let Some(admin) = Listeners::take(&mut listeners.admin)? {
        tasks.push(tokio::spawn(rpc::serve(
            admin_server.clone(),
            admin,
            false,
            Arc::new(admin::AdminProgram::new(
                server.clone(),
                admin_server.clone(),
                control.clone(),
            )),
            stop_rx.clone(),
        )));
    }
    info!("{DAEMON_NAME} ready");
    daemonize::report_ready();
    activation::notify_ready();

    let mut idle_since = tokio::time::Instant::now();
    // Only with a timeout: an idle daemon without one is never woken. A tick missed while
    // disabled is not made up for.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = signals.term.recv() => break,
            _ = signals.int.recv() => break,
            _ = control.quit.notified() => {
                info!("shutdown requested through the admin socket");
                break;
            }
            _ = signals.hup.recv() => {
                info!("Reloading configuration on SIGHUP");
                reload::reload(opts.config.as_deref(), privileged, &server, &admin_server);
                let d = driver.clone();
                match tokio::task::spawn_blocking(move || d.enumerate(true)).await {
                    Ok(n) => info!("SIGHUP: re-read {n} node devices"),
                    Err(e) => error!("SIGHUP: re-reading devices failed: {e}"),
                }
            }
            // admin CONNECT_SET_DAEMON_TIMEOUT restarts the count with the new value.
            Ok(()) = timeout_rx.changed() => idle_since = tokio::time::Instant::now(),
            _ = tick.tick(), if *timeout_rx.borrow() != 0 => {
                let timeout = *timeout_rx.borrow();
                // virNetDaemonHasClients: clients of any server, admin included.
                if timeout == 0 || server.active_clients() + admin_server.active_clients() > 0 {
                    idle_since = tokio::time::Instant::now();
                } else if idle_since.elapsed() >= Duration::from_secs(timeout.into()) {
                    info!("no clients for {timeout} seconds, exiting");
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
