//! polkit authentication on the read-write and read-only sockets, against a real polkitd
//! on a private system bus, with the answers of libvirtd 11.3 and 9.0 started under the
//! same polkitd (issue 12, items 1 and 2 as far as they concern authentication).
//!
//! Everything private: the bus listens on a socket in a temporary directory (never the
//! host's), polkitd runs in a mount namespace where libvirt 11.3's policy and rules files
//! (plus a test rule) stand in for the host's, and the test users carry a unique prefix.
//! All of it is stopped and removed when the test ends, passing or not.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{available, Daemon, Libvirt};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const CHROOT_11_3: &str = "/var/cache/reference-libvirtd/trixie";
const POLKITD: &str = "/usr/lib/polkit-1/polkitd";

const AGENT: &str = "error: authentication unavailable: no polkit agent available to \
                     authenticate action 'org.libvirt.unix.manage'";
const DENIED: &str = "error: authentication failed: access denied by policy";
const NO_POLKIT: &str = "error: error from service: GDBus.Error:org.freedesktop.DBus.Error.\
                         ServiceUnknown: The name org.freedesktop.PolicyKit1 was not provided \
                         by any .service files";

fn chroot_11_3() -> PathBuf {
    PathBuf::from(std::env::var("REFERENCE_CHROOT").unwrap_or_else(|_| CHROOT_11_3.into()))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn world_readable(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Test users: one outside every group that matters, one in `libvirt`, one a test rule
/// refuses even monitoring to.
struct Users {
    plain: String,
    member: String,
    denied: String,
    created_group: bool,
}

impl Users {
    fn create() -> Users {
        let tag = format!("vndpk{:04x}", std::process::id() & 0xffff);
        let created_group = !Command::new("getent")
            .args(["group", "libvirt"])
            .output()
            .unwrap()
            .status
            .success();
        if created_group {
            run(Command::new("groupadd").arg("libvirt"));
        }
        let users = Users {
            plain: format!("{tag}p"),
            member: format!("{tag}m"),
            denied: format!("{tag}d"),
            created_group,
        };
        for (name, groups) in [
            (&users.plain, None),
            (&users.member, Some("libvirt")),
            (&users.denied, None),
        ] {
            let mut c = Command::new("useradd");
            c.args(["-M", "-N", "-s", "/bin/sh"]);
            if let Some(g) = groups {
                c.args(["-G", g]);
            }
            run(c.arg(name));
        }
        users
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        for name in [&self.plain, &self.member, &self.denied] {
            let _ = Command::new("userdel").arg(name).output();
        }
        if self.created_group {
            let _ = Command::new("groupdel").arg("libvirt").output();
        }
    }
}

/// Removes the empty directory a reference's namespace mounted `dir` on in the 11.3
/// chroot. The kernel lets go of a finished namespace's mounts a moment after its last
/// process is reaped: until then the directory is busy.
fn remove_mount_point(dir: &Path) {
    let point = chroot_11_3().join(dir.strip_prefix("/").unwrap());
    for _ in 0..100 {
        match std::fs::remove_dir(&point) {
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EBUSY as i32) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => return,
        }
    }
}

/// Runs the bash `script` (which ends by exec'ing the program to keep) in a private mount
/// namespace, on the system bus `bus`, its output in `log`.
fn in_namespace(script: &str, bus: &str, log: &Path) -> Child {
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash", "-c", script])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .expect("start a program in a mount namespace")
}

/// A private system bus with polkitd on it, as libvirt's packages configure polkit.
struct PolkitHost {
    dir: tempfile::TempDir,
    bus: Child,
    polkitd: Option<Child>,
    users: Users,
}

impl PolkitHost {
    fn start() -> PolkitHost {
        let users = Users::create();
        let dir = tempfile::Builder::new().prefix("vnd-pk").tempdir().unwrap();
        world_readable(dir.path());
        let (actions, rules) = (dir.path().join("actions"), dir.path().join("rules"));
        std::fs::create_dir(&actions).unwrap();
        std::fs::create_dir(&rules).unwrap();
        let shipped = chroot_11_3().join("usr/share/polkit-1");
        for f in ["org.libvirt.unix.policy", "org.libvirt.api.policy"] {
            std::fs::copy(shipped.join("actions").join(f), actions.join(f)).unwrap();
        }
        std::fs::copy(
            shipped.join("rules.d/60-libvirt.rules"),
            rules.join("60-libvirt.rules"),
        )
        .unwrap();
        std::fs::write(
            rules.join("10-vnd-test.rules"),
            format!(
                "polkit.addRule(function(action, subject) {{\n  if (action.id == \
                 \"org.libvirt.unix.monitor\" && subject.user == \"{}\") {{\n    return \
                 polkit.Result.NO;\n  }}\n}});\n",
                users.denied
            ),
        )
        .unwrap();
        // No service directory: a stopped polkitd stays stopped (no bus activation).
        let conf = dir.path().join("bus.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
</busconfig>
"#,
                dir.path().display()
            ),
        )
        .unwrap();
        let bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--nopidfile"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut host = PolkitHost {
            dir,
            bus,
            polkitd: None,
            users,
        };
        wait_until("the private bus", || common::listening(&host.bus_socket()));
        host.start_polkitd();
        host
    }

    fn bus_socket(&self) -> PathBuf {
        self.dir.path().join("bus")
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.bus_socket().display())
    }

    fn start_polkitd(&mut self) {
        let d = self.dir.path().display();
        let script = format!(
            "mount --bind {d}/actions /usr/share/polkit-1/actions && \
             mount --bind {d}/rules /usr/share/polkit-1/rules.d && \
             mount -t tmpfs tmpfs /etc/polkit-1/rules.d && exec {POLKITD} --no-debug"
        );
        let log = self.dir.path().join("polkitd.log");
        self.polkitd = Some(in_namespace(&script, &self.address(), &log));
        wait_until("polkitd on the bus", || self.polkit_on_bus());
    }

    fn polkit_on_bus(&self) -> bool {
        let out = Command::new("busctl")
            .arg(format!("--address={}", self.address()))
            .args([
                "call",
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "NameHasOwner",
                "s",
                "org.freedesktop.PolicyKit1",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "b true"
    }

    fn polkitd_pid(&self) -> Pid {
        Pid::from_raw(self.polkitd.as_ref().expect("polkitd runs").id() as i32)
    }

    fn stop_polkitd(&mut self) {
        if let Some(mut c) = self.polkitd.take() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGKILL);
            let _ = c.wait();
        }
    }
}

impl Drop for PolkitHost {
    fn drop(&mut self) {
        self.stop_polkitd();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
        // 11.3's reference mounted the bus directory in its chroot (see PolkitReference).
        remove_mount_point(self.dir.path());
    }
}

/// libvirtd 9.0 or 11.3 with polkit on both sockets, talking to the private bus.
struct PolkitReference {
    dir: tempfile::TempDir,
    child: Child,
    libvirt: Libvirt,
}

impl PolkitReference {
    /// Started under the private mount namespace of its own, with `bus` as its system bus.
    fn start(libvirt: Libvirt, host: &PolkitHost, bus: &str) -> PolkitReference {
        let dir = tempfile::Builder::new()
            .prefix("vnd-pkref")
            .tempdir()
            .unwrap();
        world_readable(dir.path());
        let d = dir.path().display().to_string();
        let conf = format!("{d}/libvirtd.conf");
        std::fs::write(
            &conf,
            format!(
                "unix_sock_dir = \"{d}\"\nauth_unix_rw = \"polkit\"\nauth_unix_ro = \"polkit\"\n\
                 log_outputs = \"3:file:{d}/log\"\n"
            ),
        )
        .unwrap();
        let mut script =
            "mkdir -p /run/libvirt && mount -t tmpfs tmpfs /run/libvirt && ".to_owned();
        let exe = match libvirt {
            Libvirt::V9_0 => "/usr/sbin/libvirtd".to_owned(),
            Libvirt::V11_3 => {
                // The chroot sees /proc (polkit's subject), the host's users (libvirt
                // looks the client's uid up), its own sockets and the bus at their paths.
                let root = chroot_11_3().display().to_string();
                for sub in ["proc", "sys", "dev"] {
                    script += &format!("mount --rbind /{sub} {root}/{sub} && ");
                }
                for f in ["passwd", "group"] {
                    script += &format!("mount --bind /etc/{f} {root}/etc/{f} && ");
                }
                script += &format!("mount -t tmpfs tmpfs {root}/run/libvirt && ");
                for p in [dir.path(), host.dir.path()] {
                    let p = p.display();
                    script += &format!("mkdir -p {root}{p} && mount --bind {p} {root}{p} && ");
                }
                format!("chroot {root} /usr/sbin/libvirtd")
            }
        };
        script += &format!("exec {exe} -f {conf}");
        let child = in_namespace(&script, bus, &dir.path().join("out"));
        let r = PolkitReference {
            dir,
            child,
            libvirt,
        };
        wait_until("the reference's sockets", || {
            common::listening(&r.dir.path().join("libvirt-sock"))
                && common::listening(&r.dir.path().join("libvirt-sock-ro"))
        });
        r
    }
}

impl Drop for PolkitReference {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let _ = self.child.wait();
        if self.libvirt == Libvirt::V11_3 {
            // The bus directory's mount point goes with the PolkitHost.
            remove_mount_point(self.dir.path());
        }
    }
}

/// One daemon under test: its name and how to reach it.
struct Target {
    name: String,
    rw: String,
    ro: String,
    admin: String,
}

impl Target {
    fn ours(d: &Daemon) -> Target {
        Target {
            name: "virtnodedevd".into(),
            rw: d.uri(),
            ro: d.ro_uri(),
            admin: format!(
                "virtnodedevd+unix:///system?socket={}",
                d.admin_sock().display()
            ),
        }
    }

    fn reference(r: &PolkitReference) -> Target {
        let sock = |s: &str| r.dir.path().join(s).display().to_string();
        Target {
            name: format!("libvirtd {}", r.libvirt.label()),
            rw: format!("nodedev+unix:///system?socket={}", sock("libvirt-sock")),
            ro: format!("nodedev+unix:///system?socket={}", sock("libvirt-sock-ro")),
            admin: format!(
                "libvirtd+unix:///system?socket={}",
                sock("libvirt-admin-sock")
            ),
        }
    }

    /// The admin server's name for the node-device server.
    fn server(&self) -> &str {
        if self.name == "virtnodedevd" {
            "virtnodedevd"
        } else {
            "libvirtd"
        }
    }

    fn unauth_clients(&self) -> String {
        let out = Command::new("virt-admin")
            .args(["-c", &self.admin, "srv-clients-info", self.server()])
            .output()
            .expect("run virt-admin");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("nclients_unauth "))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }
}

/// A command run as `user` (root when `None`).
fn as_user(user: Option<&str>, program: &str) -> Command {
    match user {
        None => Command::new(program),
        Some(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--", program]);
            c
        }
    }
}

/// What `virsh nodedev-list --cap system` says: the device, or virsh's last error line.
fn virsh_list(user: Option<&str>, uri: &str) -> String {
    let out = as_user(user, "virsh")
        .args(["-q", "-c", uri, "nodedev-list", "--cap", "system"])
        .stdin(Stdio::null())
        .output()
        .expect("run virsh");
    outcome(&out)
}

fn outcome(out: &Output) -> String {
    if out.status.success() {
        return String::from_utf8_lossy(&out.stdout).trim().to_owned();
    }
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_owned()
}

/// libvirt-python's view: `ok` or the error's code, domain and message.
fn python_open(user: Option<&str>, uri: &str, readonly: bool) -> String {
    let code = format!(
        "import libvirt\nlibvirt.registerErrorHandler(lambda *a: None, None)\ntry:\n    \
         c = libvirt.{}({uri:?})\n    print('ok', len(c.listAllDevices(0)) > 0)\n\
         except libvirt.libvirtError as e:\n    \
         print(e.get_error_code(), e.get_error_domain(), e.get_error_message())\n",
        if readonly { "openReadOnly" } else { "open" }
    );
    python_as(user, &code)
}

/// Opens and closes `uri` as `user` in a loop for a second: connections per second (the
/// figure the issue asks for; no assertion on it).
fn connection_rate(user: Option<&str>, uri: &str) -> String {
    let code = format!(
        "import libvirt, time\nn = 0\nt0 = time.monotonic()\n\
         while time.monotonic() - t0 < 1.0:\n    libvirt.open({uri:?}).close()\n    n += 1\n\
         print('%.0f' % (n / (time.monotonic() - t0)))\n"
    );
    python_as(user, &code)
}

/// What a Python snippet run as `user` printed.
fn python_as(user: Option<&str>, code: &str) -> String {
    let out = as_user(user, "/usr/bin/python3")
        .args(["-c", code])
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn can_run() -> bool {
    let root = nix::unistd::geteuid().is_root();
    available(root, "root (test users, a private polkitd)")
        && available(
            common::have("dbus-daemon") && Path::new(POLKITD).exists() && common::have("busctl"),
            "dbus-daemon and polkitd (Debian's dbus-daemon, polkitd)",
        )
        && Libvirt::V9_0.clients_available()
        && available(
            Path::new("/usr/sbin/libvirtd").exists(),
            "libvirtd 9.0 (libvirt-daemon)",
        )
        && Libvirt::V11_3.clients_available()
        && ensure_chroot()
}

/// The reference tool builds 11.3's chroot on first use.
fn ensure_chroot() -> bool {
    let ok = chroot_11_3().join("usr/sbin/libvirtd").exists()
        || Libvirt::V11_3
            .command("true")
            .output()
            .is_ok_and(|o| o.status.success());
    available(ok, "libvirt 11.3's chroot")
}

/// Our daemon and libvirtd 11.3 and 9.0, polkit on both sockets, on the system bus `bus`.
fn start_daemons(host: &PolkitHost, bus: &str) -> (Daemon, [PolkitReference; 2]) {
    let ours = Daemon::start_env(
        None,
        "auth_unix_rw = \"polkit\"\nauth_unix_ro = \"polkit\"",
        false,
        &[("DBUS_SYSTEM_BUS_ADDRESS", Path::new(bus))],
    );
    world_readable(ours.dir.path());
    let refs = [
        PolkitReference::start(Libvirt::V11_3, host, bus),
        PolkitReference::start(Libvirt::V9_0, host, bus),
    ];
    (ours, refs)
}

fn targets_of(ours: &Daemon, refs: &[PolkitReference]) -> Vec<Target> {
    let mut targets = vec![Target::ours(ours)];
    targets.extend(refs.iter().map(Target::reference));
    targets
}

#[test]
fn polkit_authentication_answers_as_libvirt() {
    if !can_run() {
        return;
    }
    let mut host = PolkitHost::start();
    let bus = host.address();
    let (ours, refs) = start_daemons(&host, &bus);
    let targets = targets_of(&ours, &refs);
    let names = [&host.users.plain, &host.users.member, &host.users.denied].map(String::clone);
    let [plain, member, denied] = [0, 1, 2].map(|i| Some(names[i].as_str()));

    // Who may connect where: libvirt's policy lets anyone monitor, its rules file lets
    // the libvirt group manage, root never asks; the test rule refuses one user.
    for t in &targets {
        let got = [
            virsh_list(plain, &t.ro),
            virsh_list(plain, &t.rw),
            virsh_list(member, &t.ro),
            virsh_list(member, &t.rw),
            virsh_list(denied, &t.ro),
            virsh_list(denied, &t.rw),
            virsh_list(None, &t.ro),
            virsh_list(None, &t.rw),
        ];
        let want = [
            "computer", AGENT, "computer", "computer", DENIED, AGENT, "computer", "computer",
        ];
        assert_eq!(got, want, "{}", t.name);
        let py = [
            python_open(plain, &t.ro, true),
            python_open(plain, &t.rw, false),
            python_open(denied, &t.ro, true),
            python_open(member, &t.rw, false),
        ];
        let want = [
            "ok True".to_owned(),
            format!("94 60 {}", &AGENT["error: ".len()..]),
            format!("45 60 {}", &DENIED["error: ".len()..]),
            "ok True".to_owned(),
        ];
        assert_eq!(py, want, "{}", t.name);
    }

    for t in &targets {
        eprintln!(
            "{}: {} connections/s for a libvirt group member through polkit (rw socket)",
            t.name,
            connection_rate(member, &t.rw)
        );
    }

    no_stall(&host, &targets);

    // polkitd gone: libvirt's D-Bus error for the clients that must ask, root unaffected;
    // back again, the same daemons ask it again.
    host.stop_polkitd();
    for t in &targets {
        assert_eq!(virsh_list(member, &t.rw), NO_POLKIT, "{}", t.name);
        assert_eq!(
            python_open(plain, &t.ro, true),
            format!("89 47 {}", &NO_POLKIT["error: ".len()..]),
            "{}",
            t.name
        );
        assert_eq!(virsh_list(None, &t.rw), "computer", "{}", t.name);
    }
    host.start_polkitd();
    for t in &targets {
        assert_eq!(virsh_list(member, &t.rw), "computer", "{}", t.name);
    }
    drop(targets);
    drop(refs);
    drop(ours);

    // No system bus at all.
    let missing = format!("unix:path={}/no-bus", host.dir.path().display());
    let (ours, refs) = start_daemons(&host, &missing);
    let targets = targets_of(&ours, &refs);
    for t in &targets {
        assert_eq!(
            python_open(plain, &t.ro, true),
            "1 47 internal error: Unable to get system bus connection: Could not connect: \
             No such file or directory",
            "{}",
            t.name
        );
        assert_eq!(virsh_list(None, &t.rw), "computer", "{}", t.name);
    }
}

/// A polkitd that does not answer (stopped with SIGSTOP, its bus name still owned):
/// the clients waiting for it count as unauthenticated, as libvirt counts them, and get
/// libvirt's D-Bus timeout; meanwhile root is served, and a waiting client that hangs up
/// is dropped at once by our daemon, without waiting for polkitd. (libvirt's client list
/// after such a hang-up was not stable enough here to be compared: not pinned.)
fn no_stall(host: &PolkitHost, targets: &[Target]) {
    let member = host.users.member.clone();
    kill(host.polkitd_pid(), Signal::SIGSTOP).unwrap();
    let waiting: Vec<Child> = targets
        .iter()
        .map(|t| {
            as_user(Some(&member), "virsh")
                .args(["-q", "-c", &t.rw, "nodedev-list", "--cap", "system"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run virsh")
        })
        .collect();
    for t in targets {
        wait_until(&format!("{}: a pending client", t.name), || {
            t.unauth_clients() == "1"
        });
        assert_eq!(virsh_list(None, &t.rw), "computer", "{}", t.name);
    }
    let ours = &targets[0];
    let mut quitter = as_user(Some(&member), "virsh")
        .args(["-q", "-c", &ours.rw, "nodedev-list", "--cap", "system"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run virsh");
    wait_until("two pending clients", || ours.unauth_clients() == "2");
    // runuser forks the client and waits for it: the client is runuser's child.
    let mut client = String::new();
    wait_until("the client under runuser", || {
        let out = Command::new("pgrep")
            .args(["-P", &quitter.id().to_string()])
            .output()
            .unwrap();
        client = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        !client.is_empty()
    });
    kill(Pid::from_raw(client.parse().unwrap()), Signal::SIGKILL).unwrap();
    let _ = quitter.wait();
    wait_until("the client that hung up to be dropped", || {
        ours.unauth_clients() == "1"
    });
    for (t, c) in targets.iter().zip(waiting) {
        let out = c.wait_with_output().unwrap();
        assert_eq!(
            outcome(&out),
            "error: error from service: Timeout was reached",
            "{}",
            t.name
        );
    }
    kill(host.polkitd_pid(), Signal::SIGCONT).unwrap();
}
