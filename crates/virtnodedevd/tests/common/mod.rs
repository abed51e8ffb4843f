//! Shared pieces of the integration tests: starting the real daemon on temporary sockets
//! over a fake device tree, the sample tree, and running real clients against it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fakesys::{FakeSys, PcieSpec};
use protocol::remote::{proc, ConnectOpenArgs};
use protocol::{REMOTE_PROGRAM, REMOTE_VERSION};
use rpc::client::Client;

pub mod mdev;
pub mod polkit;
mod skip;
#[allow(unused_imports)] // each test file uses some of it
pub use skip::{available, skip_or_fail, ALLOW_SKIP};

pub const BIN: &str = env!("CARGO_BIN_EXE_virtnodedevd");

/// A running `virtnodedevd` with its sockets in a private temporary directory.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Daemon {
    /// Starts the daemon over `root` (a fake host root) with `extra_conf` appended to a
    /// config that puts the sockets in the temporary directory.
    pub fn start(root: Option<&Path>, extra_conf: &str) -> Daemon {
        Self::start_with(root, extra_conf, false)
    }

    /// Like [`Daemon::start`]; with `inject`, the daemon takes kernel-format uevents from
    /// [`Daemon::uevent_sock`] instead of the host's netlink.
    pub fn start_with(root: Option<&Path>, extra_conf: &str, inject: bool) -> Daemon {
        Self::start_env(root, extra_conf, inject, &[])
    }

    /// Like [`Daemon::start_with`], with extra environment variables for the daemon.
    pub fn start_env(
        root: Option<&Path>,
        extra_conf: &str,
        inject: bool,
        env: &[(&str, &Path)],
    ) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("vnd-test")
            .tempdir()
            .unwrap();
        let conf = dir.path().join("virtnodedevd.conf");
        std::fs::write(
            &conf,
            format!(
                // The first of duplicate keys wins: the test's own settings go first.
                "{extra_conf}\nunix_sock_dir = \"{}\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg(dir.path().join("virtnodedevd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("daemon.log")).unwrap(),
            ));
        match root {
            Some(r) => cmd.env("VIRTNODEDEVD_HOST_ROOT", r),
            None => cmd.env_remove("VIRTNODEDEVD_HOST_ROOT"),
        };
        if inject {
            cmd.env("VIRTNODEDEVD_UEVENT_SOCKET", dir.path().join("uevents"));
        } else {
            cmd.env_remove("VIRTNODEDEVD_UEVENT_SOCKET");
        }
        cmd.env("VIRTNODEDEVD_LOG", "debug");
        // The host's mdevctl must never run over a fake tree; a test names its wrapper.
        cmd.env_remove("VIRTNODEDEVD_MDEVCTL");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start virtnodedevd");
        let d = Daemon {
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        // The admin socket's file appears at bind(), a moment before listen(): wait until
        // the kernel lists it as listening, without connecting (a connection would be an
        // admin client the tests would see).
        while !listening(&d.admin_sock())
            || std::os::unix::net::UnixStream::connect(d.sock()).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "daemon did not start: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("virtnodedevd-sock")
    }

    pub fn ro_sock(&self) -> PathBuf {
        self.dir.path().join("virtnodedevd-sock-ro")
    }

    pub fn uevent_sock(&self) -> PathBuf {
        self.dir.path().join("uevents")
    }

    /// Sends one kernel-format uevent to a daemon started with `inject`.
    pub fn inject(&self, action: &str, devpath: &str, subsystem: &str) {
        let devpath = devpath.strip_prefix("/sys").unwrap_or(devpath);
        let msg = format!(
            "{action}@{devpath}\0ACTION={action}\0DEVPATH={devpath}\0SUBSYSTEM={subsystem}\0SEQNUM=1\0"
        );
        let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
        s.send_to(msg.as_bytes(), self.uevent_sock()).unwrap();
    }

    pub fn admin_sock(&self) -> PathBuf {
        self.dir.path().join("virtnodedevd-admin-sock")
    }

    pub fn uri(&self) -> String {
        format!("nodedev+unix:///system?socket={}", self.sock().display())
    }

    pub fn ro_uri(&self) -> String {
        format!("nodedev+unix:///system?socket={}", self.ro_sock().display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// A raw client on the read-write socket, not yet opened.
    pub fn client(&self) -> Client {
        Client::connect(&self.sock(), REMOTE_PROGRAM, REMOTE_VERSION).unwrap()
    }

    /// A client that has done CONNECT_OPEN on `sock`.
    pub fn open_client_on(&self, sock: &Path) -> Client {
        open_client_at(sock)
    }

    pub fn open_client(&self) -> Client {
        self.open_client_on(&self.sock())
    }

    /// A client subscribed to lifecycle and update events of every device, reading with a
    /// 10 s timeout so that a missing event fails the test instead of hanging it.
    pub fn subscriber(&self) -> Client {
        let mut c = self.open_client();
        for id in [protocol::event_id::LIFECYCLE, protocol::event_id::UPDATE] {
            let _: protocol::remote::IntRet = c
                .call(
                    proc::CONNECT_NODE_DEVICE_EVENT_REGISTER_ANY,
                    &protocol::remote::EventRegisterAnyArgs {
                        event_id: id,
                        dev: None,
                    },
                )
                .unwrap();
        }
        c.stream()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        c
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

// The trees live in `fakesys::trees`; these wrappers keep the tests' short names. Each
// test file uses some of them (as with `dead_code` above).
#[allow(unused_imports)]
pub use fakesys::trees::{FcPort as RwFc, FC_HBA_WWN, FC_VHBA_WWN, NET_PREFIX};

/// [`fakesys::trees::sample`].
pub fn sample_tree(dir: &Path) -> FakeSys {
    fakesys::trees::sample(dir).unwrap()
}

/// [`fakesys::trees::rich`].
pub fn rich_tree(dir: &Path) -> FakeSys {
    fakesys::trees::rich(dir).unwrap()
}

/// [`fakesys::trees::sriov`].
pub fn sriov_tree(dir: &Path) -> FakeSys {
    fakesys::trees::sriov(dir).unwrap()
}

/// [`fakesys::trees::usb_sas`].
pub fn usb_sas_tree(dir: &Path) -> FakeSys {
    fakesys::trees::usb_sas(dir).unwrap()
}

/// [`fakesys::trees::fc_mdev_s390`].
pub fn fc_mdev_s390_tree(dir: &Path) -> FakeSys {
    fakesys::trees::fc_mdev_s390(dir).unwrap()
}

/// [`fakesys::trees::pci_fn`].
pub fn rw_pci_fn(
    f: &FakeSys,
    addr: &str,
    parent: Option<&str>,
    ids: (u16, u16, u32),
    driver: Option<&str>,
    pcie: Option<PcieSpec>,
    header_type: u8,
) -> String {
    fakesys::trees::pci_fn(f, addr, parent, ids, driver, pcie, header_type).unwrap()
}

/// [`fakesys::trees::scsi_host`].
pub fn rw_scsi_host(
    f: &FakeSys,
    parent: &str,
    n: u32,
    proc_name: &str,
    fc: Option<RwFc>,
) -> String {
    fakesys::trees::scsi_host(f, parent, n, proc_name, fc).unwrap()
}

/// Whether a Unix socket at `path` is listening (`__SO_ACCEPTCON` in /proc/net/unix).
pub fn listening(path: &Path) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return path.exists();
    };
    let path = path.to_string_lossy();
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 8
            && f[7] == path
            && u32::from_str_radix(f[3], 16).is_ok_and(|fl| fl & 0x10000 != 0)
    })
}

/// A raw client that has done CONNECT_OPEN on the socket at `sock` (ours or the reference's).
pub fn open_client_at(sock: &Path) -> Client {
    let mut c = Client::connect(sock, REMOTE_PROGRAM, REMOTE_VERSION).unwrap();
    let _: () = c
        .call(
            proc::CONNECT_OPEN,
            &ConnectOpenArgs {
                name: Some("nodedev:///system".into()),
                flags: 0,
            },
        )
        .unwrap();
    c
}

/// The sorted names of every device, as ListAllNodeDevices gives them.
pub fn device_names(c: &mut Client) -> Vec<String> {
    let ret: protocol::remote::ListAllRet = c
        .call(
            proc::CONNECT_LIST_ALL_NODE_DEVICES,
            &protocol::remote::ListAllArgs {
                need_results: 1,
                flags: 0,
            },
        )
        .unwrap();
    let mut names: Vec<String> = ret.devices.into_iter().map(|d| d.name).collect();
    names.sort();
    names
}

/// Debian's client tools are installed (CI installs them; see .ci/run).
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// virsh is installed; otherwise the test fails unless the run allows skipping.
#[track_caller]
pub fn virsh_available() -> bool {
    available(have("virsh"), "virsh (libvirt-clients)")
}

/// python3-libvirt is installed; otherwise the test fails unless the run allows skipping.
#[track_caller]
pub fn python_libvirt_available() -> bool {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import libvirt"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    available(ok, "python3-libvirt")
}

pub fn virsh(uri: &str, args: &[&str]) -> Output {
    virsh_of(Libvirt::V9_0, uri, args)
}

/// virsh of the given release (see [`Libvirt::command`]).
pub fn virsh_of(libvirt: Libvirt, uri: &str, args: &[&str]) -> Output {
    libvirt
        .command("virsh")
        .arg("-q")
        .arg("-c")
        .arg(uri)
        .args(args)
        .env("LIBVIRT_DEFAULT_URI", uri)
        .output()
        .expect("run virsh")
}

/// stdout of a virsh command that must succeed.
pub fn virsh_ok(uri: &str, args: &[&str]) -> String {
    let o = virsh(uri, args);
    assert!(
        o.status.success(),
        "virsh {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs Debian's virt-admin against the admin socket at `admin_sock`.
pub fn virt_admin(admin_sock: &Path, args: &[&str]) -> Output {
    virt_admin_of(Libvirt::V9_0, admin_sock, args)
}

/// virt-admin of the given release against the admin socket at `admin_sock`.
pub fn virt_admin_of(libvirt: Libvirt, admin_sock: &Path, args: &[&str]) -> Output {
    libvirt
        .command("virt-admin")
        .arg("-c")
        .arg(format!(
            "virtnodedevd+unix:///system?socket={}",
            admin_sock.display()
        ))
        .args(args)
        .output()
        .expect("run virt-admin")
}

/// Runs a Python snippet with Debian's python3 (which has python3-libvirt); `URI` is set.
pub fn python(uri: &str, code: &str) -> Output {
    python_of(Libvirt::V9_0, uri, code)
}

/// python3 with libvirt-python of the given release; `URI` is set.
pub fn python_of(libvirt: Libvirt, uri: &str, code: &str) -> Output {
    libvirt
        .command("/usr/bin/python3")
        .arg("-c")
        .arg(code)
        .env("URI", uri)
        .output()
        .expect("run python3")
}

/// A libvirt release the tests measure against: its daemon as the reference, its clients
/// (virsh, virt-admin, libvirt-python, mdevctl, xmllint with its schemas) as what drives a
/// daemon. 11.3 (Debian 13's) is the reference for behaviour; 9.0 (Debian 12's, installed on
/// the host) stays served, with the differences listed where each test compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libvirt {
    V9_0,
    V11_3,
}

impl Libvirt {
    /// Both, the reference for behaviour first.
    pub const BOTH: [Libvirt; 2] = [Libvirt::V11_3, Libvirt::V9_0];

    /// The version as `REFERENCE_LIBVIRT` names it.
    pub fn label(self) -> &'static str {
        match self {
            Libvirt::V9_0 => "9.0",
            Libvirt::V11_3 => "11.3",
        }
    }

    /// A command that runs `program` from this release's clients. 11.3's run in the
    /// reference tool's chroot, which sees the system temporary directory (where every test
    /// keeps its sockets and files) at the same path.
    pub fn command(self, program: &str) -> Command {
        match self {
            Libvirt::V9_0 => Command::new(program),
            Libvirt::V11_3 => {
                let mut c = Command::new(reference_tool());
                c.env("REFERENCE_LIBVIRT", "11.3")
                    .arg("run")
                    .arg(std::env::temp_dir())
                    .arg(program);
                c
            }
        }
    }

    /// This release's node-device schema, as its own `xmllint` (see [`Libvirt::command`])
    /// sees it.
    pub fn nodedev_schema(self) -> &'static str {
        "/usr/share/libvirt/schemas/nodedev.rng"
    }

    /// Its clients can run here: Debian 12's packages on the host, or root and the tool
    /// (which builds the 11.3 chroot on first use). Fails unless the run allows skipping.
    #[track_caller]
    pub fn clients_available(self) -> bool {
        match self {
            Libvirt::V9_0 => virsh_available() && python_libvirt_available(),
            Libvirt::V11_3 => available(
                nix::unistd::geteuid().is_root() && reference_tool().exists(),
                "libvirt 11.3's clients (needs root and the reference tool)",
            ),
        }
    }
}

fn reference_tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE_TOOL)
}

/// A reference daemon (libvirtd 9.0 or 11.3), run by the shared tool.
pub struct Reference {
    pub dir: tempfile::TempDir,
    pub uri: String,
    pub libvirt: Libvirt,
}

pub const REFERENCE_TOOL: &str = "../../../shared/tools/reference-libvirtd";

impl Reference {
    /// Starts the reference for behaviour, libvirt 11.3, over `root` (or the real host);
    /// `None` when it cannot run here and the run allows skipping (see [`skip_or_fail`]).
    pub fn start(root: Option<&Path>) -> Option<Reference> {
        Self::start_version(Libvirt::V11_3, root)
    }

    /// Starts the reference of the given release over `root` (or the real host).
    pub fn start_version(libvirt: Libvirt, root: Option<&Path>) -> Option<Reference> {
        let tool = reference_tool();
        let can = nix::unistd::geteuid().is_root()
            && tool.exists()
            && (libvirt == Libvirt::V11_3 || Path::new("/usr/sbin/libvirtd").exists());
        if !available(
            can,
            "the reference libvirtd (needs root, the reference tool and libvirt-daemon)",
        ) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("vnd-ref")
            .tempdir()
            .unwrap();
        let mut cmd = Command::new(&tool);
        cmd.env("REFERENCE_LIBVIRT", libvirt.label())
            .arg("start")
            .arg(dir.path());
        if let Some(r) = root {
            cmd.arg(r);
        }
        let out = cmd.output().expect("run reference-libvirtd");
        assert!(
            out.status.success(),
            "reference {} did not start: {}",
            libvirt.label(),
            String::from_utf8_lossy(&out.stderr)
        );
        let uri = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Some(Reference { dir, uri, libvirt })
    }

    pub fn ro_uri(&self) -> String {
        format!("{}-ro", self.uri)
    }

    /// The read-write socket (the path in the URI).
    pub fn sock(&self) -> PathBuf {
        PathBuf::from(self.uri.split_once("socket=").expect("socket in URI").1)
    }

    /// A raw client on the reference's read-write socket that has done CONNECT_OPEN.
    pub fn open_client(&self) -> Client {
        open_client_at(&self.sock())
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = Command::new(reference_tool())
            .env("REFERENCE_LIBVIRT", self.libvirt.label())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}
