//! A private system bus with polkitd on it, test users, and libvirtd 9.0 and 11.3 started
//! under that polkitd: what the polkit tests (authentication, access control) share.
//!
//! Everything private: the bus listens on a socket in a temporary directory (never the
//! host's), polkitd runs in a mount namespace where libvirt 11.3's policy and rules files
//! (plus the test rules) stand in for the host's, and the test users carry a unique prefix.
//! All of it is stopped and removed when the test ends, passing or not.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{available, Daemon, Libvirt};

pub const CHROOT_11_3: &str = "/var/cache/reference-libvirtd/trixie";
pub const POLKITD: &str = "/usr/lib/polkit-1/polkitd";

pub const AGENT: &str = "error: authentication unavailable: no polkit agent available to \
                     authenticate action 'org.libvirt.unix.manage'";
pub const DENIED: &str = "error: authentication failed: access denied by policy";
pub const NO_POLKIT: &str = "error: error from service: GDBus.Error:org.freedesktop.DBus.Error.\
                         ServiceUnknown: The name org.freedesktop.PolicyKit1 was not provided \
                         by any .service files";

pub fn chroot_11_3() -> PathBuf {
    PathBuf::from(std::env::var("REFERENCE_CHROOT").unwrap_or_else(|_| CHROOT_11_3.into()))
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn world_readable(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Test users: one outside every group that matters, one in `libvirt`, one a test rule
/// refuses even monitoring to.
pub struct Users {
    pub plain: String,
    pub member: String,
    pub denied: String,
    pub created_group: bool,
}

impl Users {
    pub fn create() -> Users {
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
pub fn remove_mount_point(dir: &Path) {
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
pub fn in_namespace(script: &str, bus: &str, log: &Path) -> Child {
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash", "-c", script])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .expect("start a program in a mount namespace")
}

/// The test's rules, ahead of libvirt's: one user may not even monitor; for access
/// control (`org.libvirt.api.*`, asked only by daemons with `access_drivers`), the
/// libvirt group member may not see `computer` nor devices named `net_vndhide*`, but may
/// write (not start, stop, save or delete) devices; the plain user may not read
/// `computer`; and a connection is seen only when the driver is named `nodedev`.
fn test_rules(users: &Users) -> String {
    format!(
        r#"polkit.addRule(function(action, subject) {{
  var dev = action.lookup("node_device_name");
  if (action.id == "org.libvirt.unix.monitor" && subject.user == "{denied}") {{
    return polkit.Result.NO;
  }}
  if (action.id.indexOf("org.libvirt.api.") == 0 && action.lookup("connect_driver") != "nodedev") {{
    return polkit.Result.NO;
  }}
  if (subject.user == "{member}") {{
    if (action.id == "org.libvirt.api.node-device.getattr" &&
        (dev == "computer" || dev.indexOf("net_vndhide") == 0)) {{
      return polkit.Result.NO;
    }}
    if (action.id == "org.libvirt.api.node-device.write") {{
      return polkit.Result.YES;
    }}
  }}
  if (subject.user == "{plain}" && action.id == "org.libvirt.api.node-device.read" &&
      dev == "computer") {{
    return polkit.Result.NO;
  }}
}});
"#,
        denied = users.denied,
        member = users.member,
        plain = users.plain,
    )
}

/// A private system bus with polkitd on it, as libvirt's packages configure polkit.
pub struct PolkitHost {
    pub dir: tempfile::TempDir,
    pub bus: Child,
    pub polkitd: Option<Child>,
    pub users: Users,
    /// Held for the host's life, dropped last: the tests of one file run on threads of one
    /// process, and the users (named after the process) and the `libvirt` group are
    /// shared, so one host at a time.
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

static ONE_HOST: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl PolkitHost {
    pub fn start() -> PolkitHost {
        // A test that failed while holding it leaves nothing behind (Drop ran).
        let one_at_a_time = ONE_HOST.lock().unwrap_or_else(|e| e.into_inner());
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
        std::fs::write(rules.join("10-vnd-test.rules"), test_rules(&users)).unwrap();
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
            _one_at_a_time: one_at_a_time,
        };
        wait_until("the private bus", || super::listening(&host.bus_socket()));
        host.start_polkitd();
        host
    }

    pub fn bus_socket(&self) -> PathBuf {
        self.dir.path().join("bus")
    }

    pub fn address(&self) -> String {
        format!("unix:path={}", self.bus_socket().display())
    }

    pub fn start_polkitd(&mut self) {
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

    pub fn polkit_on_bus(&self) -> bool {
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

    pub fn polkitd_pid(&self) -> Pid {
        Pid::from_raw(self.polkitd.as_ref().expect("polkitd runs").id() as i32)
    }

    pub fn stop_polkitd(&mut self) {
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
pub struct PolkitReference {
    pub dir: tempfile::TempDir,
    pub child: Child,
    pub libvirt: Libvirt,
}

impl PolkitReference {
    /// Started under the private mount namespace of its own, with `bus` as its system bus.
    pub fn start(
        libvirt: Libvirt,
        host: &PolkitHost,
        bus: &str,
        extra_conf: &str,
    ) -> PolkitReference {
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
                 log_outputs = \"3:file:{d}/log\"\n{extra_conf}\n"
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
            super::listening(&r.dir.path().join("libvirt-sock"))
                && super::listening(&r.dir.path().join("libvirt-sock-ro"))
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
pub struct Target {
    pub name: String,
    pub rw: String,
    pub ro: String,
    pub admin: String,
}

impl Target {
    pub fn ours(d: &Daemon) -> Target {
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

    pub fn reference(r: &PolkitReference) -> Target {
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
    pub fn server(&self) -> &str {
        if self.name == "virtnodedevd" {
            "virtnodedevd"
        } else {
            "libvirtd"
        }
    }

    pub fn unauth_clients(&self) -> String {
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
pub fn as_user(user: Option<&str>, program: &str) -> Command {
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
pub fn virsh_list(user: Option<&str>, uri: &str) -> String {
    let out = as_user(user, "virsh")
        .args(["-q", "-c", uri, "nodedev-list", "--cap", "system"])
        .stdin(Stdio::null())
        .output()
        .expect("run virsh");
    outcome(&out)
}

pub fn outcome(out: &Output) -> String {
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
pub fn python_open(user: Option<&str>, uri: &str, readonly: bool) -> String {
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
pub fn connection_rate(user: Option<&str>, uri: &str) -> String {
    let code = format!(
        "import libvirt, time\nn = 0\nt0 = time.monotonic()\n\
         while time.monotonic() - t0 < 1.0:\n    libvirt.open({uri:?}).close()\n    n += 1\n\
         print('%.0f' % (n / (time.monotonic() - t0)))\n"
    );
    python_as(user, &code)
}

/// What a Python snippet run as `user` printed.
pub fn python_as(user: Option<&str>, code: &str) -> String {
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

pub fn can_run() -> bool {
    let root = nix::unistd::geteuid().is_root();
    available(root, "root (test users, a private polkitd)")
        && available(
            super::have("dbus-daemon") && Path::new(POLKITD).exists() && super::have("busctl"),
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
pub fn ensure_chroot() -> bool {
    let ok = chroot_11_3().join("usr/sbin/libvirtd").exists()
        || Libvirt::V11_3
            .command("true")
            .output()
            .is_ok_and(|o| o.status.success());
    available(ok, "libvirt 11.3's chroot")
}

/// Our daemon and libvirtd 11.3 and 9.0, polkit on both sockets, on the system bus `bus`.
pub fn start_daemons(
    host: &PolkitHost,
    bus: &str,
    extra_conf: &str,
) -> (Daemon, [PolkitReference; 2]) {
    let ours = Daemon::start_env(
        None,
        &format!("auth_unix_rw = \"polkit\"\nauth_unix_ro = \"polkit\"\n{extra_conf}"),
        false,
        &[("DBUS_SYSTEM_BUS_ADDRESS", Path::new(bus))],
    );
    world_readable(ours.dir.path());
    let refs = [
        PolkitReference::start(Libvirt::V11_3, host, bus, extra_conf),
        PolkitReference::start(Libvirt::V9_0, host, bus, extra_conf),
    ];
    (ours, refs)
}

pub fn targets_of(ours: &Daemon, refs: &[PolkitReference]) -> Vec<Target> {
    let mut targets = vec![Target::ours(ours)];
    targets.extend(refs.iter().map(Target::reference));
    targets
}
