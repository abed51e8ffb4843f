//! The daemon as a system service: config errors, SIGHUP, `-t`, `-d` and its pid file,
//! socket activation, readiness notification and the shipped systemd units.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{available, have, sample_tree, Daemon, BIN};
use protocol::remote::{self as r, proc};
use protocol::{REMOTE_PROGRAM, REMOTE_VERSION};
use rpc::client::Client;

fn base_conf(dir: &Path) -> String {
    format!(
        "unix_sock_dir = \"{}\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n",
        dir.display()
    )
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn virt_admin_text(admin_sock: &Path, args: &[&str]) -> String {
    let o = common::virt_admin(admin_sock, args);
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// Runs the daemon in the foreground with `conf` and returns (exit code, stderr).
fn run_with_conf(conf: &str) -> (Option<i32>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.conf");
    std::fs::write(&path, format!("{}{conf}\n", base_conf(dir.path()))).unwrap();
    let o = Command::new(BIN)
        .arg("-f")
        .arg(&path)
        .arg("-p")
        .arg(dir.path().join("pid"))
        .arg("-t")
        .arg("1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        dir,
    )
}

#[test]
fn invalid_config_values_name_the_file_and_exit_1() {
    let (code, err, dir) = run_with_conf("max_clients = \"many\"");
    let file = dir.path().join("bad.conf");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "Can't load config file: internal error: {}: expected an unsigned integer for 'max_clients' parameter: {}",
            file.display(),
            file.display()
        )),
        "{err}"
    );
    let (code, err, dir) = run_with_conf("max_workers = ");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "Can't load config file: configuration file syntax error: {}:4: expecting a value",
            dir.path().join("bad.conf").display()
        )),
        "{err}"
    );
    // Bad logging settings are reported by virDispatchError after loading.
    let (code, err, _dir) = run_with_conf("log_filters = \"bogus\"");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("libvirt:  error : invalid argument: Malformed format for filter 'bogus'"),
        "{err}"
    );
    // A missing -f file.
    let o = Command::new(BIN)
        .args(["-f", "/nonexistent/x.conf"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("Failed to open file '/nonexistent/x.conf': No such file or directory"));
}

#[test]
fn valid_config_with_every_kind_of_key_starts_and_applies_limits() {
    let mut d = Daemon::start(
        None,
        "max_clients = 300\nmax_anonymous_clients = 30\nmin_workers = 2\nmax_workers = 7\nprio_workers = 3\n\
         log_level = 2\nlog_filters = \"1:rpc 3:virtnodedevd\"\nkeepalive_interval = 10\nadmin_max_clients = 9\n\
         some_key_libvirt_ignores = 1\n",
    );
    if available(have("virt-admin"), "virt-admin (libvirt-clients)") {
        let out = virt_admin_text(&d.admin_sock(), &["srv-clients-info", "virtnodedevd"]);
        assert!(out.contains("nclients_max        : 300"), "{out}");
        assert!(out.contains("nclients_unauth_max : 30"), "{out}");
        let out = virt_admin_text(&d.admin_sock(), &["srv-threadpool-info", "virtnodedevd"]);
        assert!(out.contains("minWorkers     : 2"), "{out}");
        assert!(out.contains("maxWorkers     : 7"), "{out}");
        assert!(out.contains("prioWorkers    : 3"), "{out}");
        let out = virt_admin_text(&d.admin_sock(), &["srv-clients-info", "admin"]);
        assert!(out.contains("nclients_max        : 9"), "{out}");
        let out = virt_admin_text(&d.admin_sock(), &["daemon-log-filters"]);
        assert!(out.contains("1:*rpc* 3:*virtnodedevd* "), "{out}");
    }
    assert!(d.stop().success());
}

#[test]
fn sighup_reloads_config_and_keeps_clients_and_their_callbacks() {
    let tree = tempfile::tempdir().unwrap();
    sample_tree(tree.path());
    let d = Daemon::start(Some(tree.path()), "");
    let mut c = d.open_client();
    let id: r::IntRet = c
        .call(
            proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
            &r::EventRegisterAnyArgs {
                event_id: 0,
                dev: None,
            },
        )
        .unwrap();
    // Change the config: limits and logging.
    let conf = d.dir.path().join("virtnodedevd.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text += "max_clients = 77\nlog_filters = \"2:remote\"\n";
    std::fs::write(&conf, text).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    if available(have("virt-admin"), "virt-admin (libvirt-clients)") {
        wait_for("the reload", 10, || {
            virt_admin_text(&d.admin_sock(), &["srv-clients-info", "virtnodedevd"])
                .contains("nclients_max        : 77")
        });
        let out = virt_admin_text(&d.admin_sock(), &["daemon-log-filters"]);
        assert!(out.contains("2:*remote* "), "{out}");
    } else {
        std::thread::sleep(Duration::from_millis(500));
    }
    // Same connection: calls work and the callback is still ours to deregister.
    let t: r::StringRet = c.call(proc::CONNECT_GET_TYPE, &()).unwrap();
    assert_eq!(t.value, "nodedev");
    let () = c
        .call(
            proc::CONNECT_NODE_DEVICE_EVENT_DEREGISTER_ANY,
            &r::EventDeregisterAnyArgs {
                callback_id: id.value,
            },
        )
        .unwrap();
    // A config that no longer loads changes nothing and the daemon goes on.
    std::fs::write(&conf, "max_clients = \n").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t: r::StringRet = c.call(proc::CONNECT_GET_TYPE, &()).unwrap();
    assert_eq!(t.value, "nodedev");
}

fn spawn_timeout_daemon(dir: &Path, timeout: &str) -> std::process::Child {
    let conf = dir.join("c.conf");
    std::fs::write(&conf, base_conf(dir)).unwrap();
    Command::new(BIN)
        .arg("-f")
        .arg(&conf)
        .arg("-p")
        .arg(dir.join("pid"))
        .args(["-t", timeout])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_exit(child: &mut std::process::Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn timeout_exits_when_idle_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut child = spawn_timeout_daemon(dir.path(), "2");
    let status = wait_exit(&mut child, 15).expect("daemon should exit when idle");
    assert!(status.success());
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert!(!dir.path().join("virtnodedevd-sock").exists());
    assert!(!dir.path().join("pid").exists());
}

#[test]
fn timeout_waits_for_connected_clients() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_timeout_daemon(dir.path(), "1");
    let sock = dir.path().join("virtnodedevd-sock");
    wait_for("the socket", 10, || UnixStream::connect(&sock).is_ok());
    let c = Client::connect(&sock, REMOTE_PROGRAM, REMOTE_VERSION).unwrap();
    assert!(
        wait_exit(&mut child, 4).is_none(),
        "exited with a client connected"
    );
    drop(c);
    assert!(wait_exit(&mut child, 10).expect("exit once idle").success());
}

/// Without `-t` the daemon runs until stopped; a timeout set later through the admin
/// program (`virt-admin daemon-timeout`) then ends it once idle.
#[test]
fn a_timeout_set_through_the_admin_socket_ends_an_idle_daemon() {
    if !available(have("virt-admin"), "virt-admin (libvirt-clients)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_timeout_daemon(dir.path(), "0");
    let admin = dir.path().join("virtnodedevd-admin-sock");
    wait_for("the admin socket", 10, || {
        UnixStream::connect(&admin).is_ok()
    });
    assert!(
        wait_exit(&mut child, 3).is_none(),
        "exited without a timeout"
    );
    let o = common::virt_admin(&admin, &["daemon-timeout", "--timeout", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let status = wait_exit(&mut child, 15).expect("exit once idle after the timeout was set");
    assert!(status.success());
}

#[test]
fn daemon_mode_writes_a_locked_pid_file_and_reports_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.conf");
    std::fs::write(&conf, base_conf(dir.path())).unwrap();
    let pid_file = dir.path().join("d.pid");
    let start = || {
        Command::new(BIN)
            .arg("-d")
            .arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg(&pid_file)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = start();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The parent returns once the sockets are there.
    assert!(UnixStream::connect(dir.path().join("virtnodedevd-sock")).is_ok());
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_ne!(pid as u32, std::process::id());
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // A second instance is refused and says why.
    let o = start();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(
            "error: Unable to obtain pidfile. Check /var/log/messages or run without --daemon for more info."
        ),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The first one is untouched and stops cleanly.
    assert!(UnixStream::connect(dir.path().join("virtnodedevd-sock")).is_ok());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_for("the daemon to stop", 10, || {
        !Path::new(&format!("/proc/{pid}")).exists() || !pid_file.exists()
    });
    wait_for("the pid file to go", 10, || !pid_file.exists());
    assert!(!dir.path().join("virtnodedevd-sock").exists());
}

#[test]
fn daemon_mode_reports_a_socket_failure() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.conf");
    // The socket directory cannot be created (a file is in the way).
    std::fs::write(dir.path().join("blocker"), "").unwrap();
    std::fs::write(&conf, base_conf(&dir.path().join("blocker"))).unwrap();
    let o = Command::new(BIN)
        .arg("-d")
        .arg("-f")
        .arg(&conf)
        .arg("-p")
        .arg(dir.path().join("d.pid"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("error: Unable to initialize network sockets"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!dir.path().join("d.pid").exists());
}

/// Listening sockets as systemd makes them, in `dir`.
fn listeners(dir: &Path) -> Vec<(PathBuf, UnixListener)> {
    ["rw", "ro", "adm"]
        .iter()
        .map(|n| {
            let p = dir.join(n);
            let l = UnixListener::bind(&p).unwrap();
            (p, l)
        })
        .collect()
}

/// Starts the daemon the way systemd does: the sockets as fds 3, 4, 5 with
/// LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES (`sh` sets LISTEN_PID to its own pid, which
/// `exec` keeps), and optionally NOTIFY_SOCKET.
fn activate(dir: &Path, names: &str, notify: Option<&Path>) -> std::process::Child {
    let socks = listeners(dir);
    let conf = dir.join("c.conf");
    // The configured directory must not be used.
    std::fs::write(&conf, base_conf(&dir.join("unused"))).unwrap();
    let fds: Vec<i32> = socks.iter().map(|(_, l)| l.as_raw_fd()).collect();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(BIN)
        .arg("-f")
        .arg(&conf)
        .arg("-p")
        .arg(dir.join("pid"))
        .env("LISTEN_FDS", "3")
        .env("LISTEN_FDNAMES", names)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.join("err")).unwrap()));
    match notify {
        Some(n) => cmd.env("NOTIFY_SOCKET", n),
        None => cmd.env_remove("NOTIFY_SOCKET"),
    };
    // SAFETY: only dup2 (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Out of the way first, in case a source is already 3, 4 or 5.
            let mut high = [0; 3];
            for (i, fd) in fds.iter().enumerate() {
                high[i] = nix::fcntl::fcntl(*fd, nix::fcntl::FcntlArg::F_DUPFD(100))?;
            }
            for (i, fd) in high.iter().enumerate() {
                if libc_dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(socks);
    child
}

fn libc_dup2(from: i32, to: i32) -> i32 {
    // dup2 clears FD_CLOEXEC on the new descriptor, so it survives exec.
    nix::unistd::dup2(from, to).map_or(-1, |fd| fd)
}

const NAMES: &str = "virtnodedevd.socket:virtnodedevd-ro.socket:virtnodedevd-admin.socket";

#[test]
fn socket_activation_serves_the_passed_sockets_and_notifies_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = activate(dir.path(), NAMES, Some(&notify_path));
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 from the daemon");
    assert_eq!(String::from_utf8_lossy(&buf[..n]).trim_end(), "READY=1");
    // Every passed socket serves its program; the configured directory is not used.
    let mut c = Client::connect(&dir.path().join("rw"), REMOTE_PROGRAM, REMOTE_VERSION).unwrap();
    let () = c
        .call(
            proc::CONNECT_OPEN,
            &r::ConnectOpenArgs {
                name: Some("nodedev:///system".into()),
                flags: 0,
            },
        )
        .unwrap();
    let mut ro = Client::connect(&dir.path().join("ro"), REMOTE_PROGRAM, REMOTE_VERSION).unwrap();
    let () = ro
        .call(
            proc::CONNECT_OPEN,
            &r::ConnectOpenArgs {
                name: Some("nodedev:///system".into()),
                flags: 0,
            },
        )
        .unwrap();
    // The read-only socket refuses writes.
    let e = ro
        .call::<_, ()>(
            proc::NODE_DEVICE_DESTROY,
            &r::NodeDevice { name: "x".into() },
        )
        .unwrap_err();
    assert!(e.to_string().contains("read only access"), "{e}");
    if available(have("virt-admin"), "virt-admin (libvirt-clients)") {
        let out = virt_admin_text(&dir.path().join("adm"), &["srv-list"]);
        assert!(
            out.contains("virtnodedevd") && out.contains("admin"),
            "{out}"
        );
    }
    assert!(!dir.path().join("unused").exists());
    drop((c, ro));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    // systemd owns the socket files: the daemon leaves them.
    assert!(dir.path().join("rw").exists());
}

#[test]
fn socket_activation_with_an_unknown_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // The admin socket is not passed under its name, so it is bound from the config,
    // in a directory that must exist (libvirt does not create unix_sock_dir).
    std::fs::create_dir(dir.path().join("unused")).unwrap();
    let mut child = activate(
        dir.path(),
        "virtnodedevd.socket:virtnodedevd-ro.socket:bogus.socket",
        None,
    );
    let status = wait_exit(&mut child, 10).expect("refused");
    let err = std::fs::read_to_string(dir.path().join("err")).unwrap();
    // daemonSetupNetworking fails: VIR_DAEMON_ERR_NETWORK.
    assert_eq!(status.code(), Some(6), "{status:?}: {err}");
    assert!(
        err.contains("Some activation file descriptors are unclaimed"),
        "{err}"
    );
    // The admin socket was not passed under its name, so it was bound from the config
    // and then removed again.
    assert!(!dir.path().join("unused/virtnodedevd-admin-sock").exists());
}

#[test]
fn systemd_socket_activate_starts_the_daemon_on_first_connection() {
    if !available(have("systemd-socket-activate"), "systemd-socket-activate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("c.conf");
    std::fs::write(&conf, base_conf(&dir.path().join("unused"))).unwrap();
    let rw = dir.path().join("rw");
    let mut child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&rw)
        .arg("-l")
        .arg(dir.path().join("ro"))
        .arg("-l")
        .arg(dir.path().join("adm"))
        .arg(format!("--fdname={NAMES}"))
        .arg(BIN)
        .arg("-f")
        .arg(&conf)
        .arg("-p")
        .arg(dir.path().join("pid"))
        .arg("-t")
        .arg("1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The path appears at bind(), before listen(): retry until it accepts.
    let mut client = None;
    wait_for("the activation sockets", 10, || {
        client = Client::connect(&rw, REMOTE_PROGRAM, REMOTE_VERSION).ok();
        client.is_some()
    });
    let mut c = client.unwrap();
    let () = c
        .call(
            proc::CONNECT_OPEN,
            &r::ConnectOpenArgs {
                name: Some("nodedev:///system".into()),
                flags: 0,
            },
        )
        .unwrap();
    let t: r::StringRet = c.call(proc::CONNECT_GET_TYPE, &()).unwrap();
    assert_eq!(t.value, "nodedev");
    drop(c);
    // -t 1: the daemon (exec'd in place of systemd-socket-activate) exits when idle.
    let status = wait_exit(&mut child, 15).expect("idle exit");
    assert!(status.success());
    assert!(!dir.path().join("unused").exists());
}

#[test]
fn shipped_units_pass_systemd_analyze_verify() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/systemd");
    let names = [
        "virtnodedevd.service",
        "virtnodedevd.socket",
        "virtnodedevd-ro.socket",
        "virtnodedevd-admin.socket",
    ];
    let service = std::fs::read_to_string(units.join("virtnodedevd.service")).unwrap();
    assert!(service.contains("ExecStart=/usr/sbin/virtnodedevd $VIRTNODEDEVD_ARGS"));
    assert!(service.contains("Type=notify"));
    assert!(service.contains("VIRTNODEDEVD_ARGS=\"--timeout 120\""));
    for (unit, path) in [
        ("virtnodedevd.socket", "/run/libvirt/virtnodedevd-sock"),
        (
            "virtnodedevd-ro.socket",
            "/run/libvirt/virtnodedevd-sock-ro",
        ),
        (
            "virtnodedevd-admin.socket",
            "/run/libvirt/virtnodedevd-admin-sock",
        ),
    ] {
        let text = std::fs::read_to_string(units.join(unit)).unwrap();
        assert!(text.contains(&format!("ListenStream={path}\n")), "{unit}");
    }
    if !available(have("systemd-analyze"), "systemd-analyze") {
        return;
    }
    // verify checks that ExecStart exists: point it at the binary under test.
    let tmp = tempfile::tempdir().unwrap();
    for n in names {
        let text = std::fs::read_to_string(units.join(n))
            .unwrap()
            .replace("/usr/sbin/virtnodedevd", BIN);
        std::fs::write(tmp.path().join(n), text).unwrap();
    }
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(names.iter().map(|n| tmp.path().join(n)))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "systemd-analyze verify: {err}");
    assert!(!err.contains("virtnodedevd"), "warnings: {err}");
}
