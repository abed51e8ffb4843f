//! Shared pieces of the integration tests: starting the real daemon on temporary sockets
//! over a fake device tree, the sample tree, and running real clients against it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fakesys::{BlockSpec, DmiSpec, FakeSys, NetSpec, PciSpec, PcieSpec};
use protocol::remote::{proc, ConnectOpenArgs};
use protocol::{REMOTE_PROGRAM, REMOTE_VERSION};
use rpc::client::Client;

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
        let dir = tempfile::Builder::new()
            .prefix("vnd-test")
            .tempdir()
            .unwrap();
        let conf = dir.path().join("virtnodedevd.conf");
        std::fs::write(
            &conf,
            format!(
                "unix_sock_dir = \"{}\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n{extra_conf}\n",
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
        let child = cmd.spawn().expect("start virtnodedevd");
        let d = Daemon {
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !d.admin_sock().exists() || std::os::unix::net::UnixStream::connect(d.sock()).is_err()
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

    pub fn open_client(&self) -> Client {
        self.open_client_on(&self.sock())
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

/// Interface names in fake trees carry this prefix; no such interface exists on the host,
/// so neither daemon finds ethtool features for them.
pub const NET_PREFIX: &str = "vndt";

/// A small host: DMI data, a PCIe host bridge, a root port with a NIC behind it, a SATA
/// controller with a disk (with udev properties), a conventional PCI device without a
/// driver, and a virtual interface.
pub fn sample_tree(dir: &Path) -> FakeSys {
    let fs = FakeSys::new(dir).unwrap();
    fs.dmi(&DmiSpec {
        product_name: Some("Test Machine".into()),
        sys_vendor: Some("Example & Co".into()),
        product_version: Some("1.0".into()),
        product_serial: Some("SN123".into()),
        product_uuid: Some("4c4c4544-0042-3510-8052-b4c04f333232".into()),
        bios_vendor: Some("Example BIOS".into()),
        bios_version: Some("2.3".into()),
        bios_date: Some("01/02/2024".into()),
    })
    .unwrap();
    let pcie = |port_type| PcieSpec {
        port_type,
        link_port: 1,
        cap_speed: 3,
        cap_width: 4,
        sta_speed: 3,
        sta_width: 4,
    };
    fs.pci_device(
        "0000:00:00.0",
        None,
        &PciSpec {
            vendor: 0x8086,
            device: 0x29c0,
            class: 0x060000,
            ..Default::default()
        },
    )
    .unwrap();
    let port = fs
        .pci_device(
            "0000:00:1c.0",
            None,
            &PciSpec {
                vendor: 0x8086,
                device: 0x2940,
                class: 0x060400,
                header_type: 1,
                driver: Some("pcieport".into()),
                pcie: Some(pcie(4)),
                ..Default::default()
            },
        )
        .unwrap();
    let nic = fs
        .pci_device(
            "0000:01:00.0",
            Some(&port),
            &PciSpec {
                vendor: 0x8086,
                device: 0x10d3,
                class: 0x020000,
                driver: Some("e1000e".into()),
                pcie: Some(pcie(0)),
                numa_node: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
    fs.net(
        Some(&nic),
        &NetSpec::new(&format!("{NET_PREFIX}0"), 2, "52:54:00:12:34:56"),
    )
    .unwrap();
    let sata = fs
        .pci_device(
            "0000:00:1f.2",
            None,
            &PciSpec {
                vendor: 0x8086,
                device: 0x2922,
                class: 0x010601,
                driver: Some("ahci".into()),
                ..Default::default()
            },
        )
        .unwrap();
    fs.block(Some(&sata), &BlockSpec::disk("sdz", 8, 0, 1_000_000))
        .unwrap();
    // Without ID_TYPE libvirt drops a disk whose node is not /dev/vd*, /dev/dasd*, /dev/nvme*.
    fs.udev_db(
        "b8:0",
        &[
            ("ID_TYPE", "disk"),
            ("ID_BUS", "ata"),
            ("ID_MODEL", "Test_Disk"),
            ("ID_VENDOR", "ATA"),
            ("ID_SERIAL", "Test_Disk_TD123"),
            ("ID_SERIAL_SHORT", "TD123"),
        ],
        &["disk/by-id/ata-Test_Disk_TD123"],
    )
    .unwrap();
    fs.pci_device(
        "0000:00:05.0",
        None,
        &PciSpec {
            vendor: 0x1234,
            device: 0x1111,
            class: 0x030000,
            ..Default::default()
        },
    )
    .unwrap();
    let mut v = NetSpec::new(&format!("{NET_PREFIX}1"), 3, "fe:00:00:00:00:01");
    v.operstate = "down".into();
    v.speed = None;
    fs.net(None, &v).unwrap();
    fs
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

/// Whether tests that need real clients must run rather than skip.
pub fn required(what: &str) -> bool {
    if std::env::var_os("VIRTNODEDEVD_REQUIRE_CLIENTS").is_some() {
        panic!("{what} is required (VIRTNODEDEVD_REQUIRE_CLIENTS is set) but not available");
    }
    eprintln!("skipping: {what} not available");
    false
}

pub fn virsh_available() -> bool {
    have("virsh") || required("virsh")
}

pub fn python_libvirt_available() -> bool {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import libvirt"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok || required("python3-libvirt")
}

pub fn virsh(uri: &str, args: &[&str]) -> Output {
    Command::new("virsh")
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

/// Runs a Python snippet with Debian's python3 (which has python3-libvirt); `URI` is set.
pub fn python(uri: &str, code: &str) -> Output {
    Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(code)
        .env("URI", uri)
        .output()
        .expect("run python3")
}

/// The reference daemon (Debian's libvirtd 9.0), run by the shared tool.
pub struct Reference {
    pub dir: tempfile::TempDir,
    pub uri: String,
}

pub const REFERENCE_TOOL: &str = "../../../shared/tools/reference-libvirtd";

impl Reference {
    /// Starts the reference over `root` (or the real host); `None` when it cannot run here
    /// (not root, or libvirtd missing) and the environment does not require it.
    pub fn start(root: Option<&Path>) -> Option<Reference> {
        let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE_TOOL);
        let must = std::env::var_os("VIRTNODEDEVD_REQUIRE_REFERENCE").is_some();
        if !nix::unistd::geteuid().is_root()
            || !tool.exists()
            || !Path::new("/usr/sbin/libvirtd").exists()
        {
            assert!(
                !must,
                "the reference libvirtd is required but cannot run here"
            );
            eprintln!("skipping: reference libvirtd not available (needs root and libvirt-daemon)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("vnd-ref")
            .tempdir()
            .unwrap();
        let mut cmd = Command::new(&tool);
        cmd.arg("start").arg(dir.path());
        if let Some(r) = root {
            cmd.arg(r);
        }
        let out = cmd.output().expect("run reference-libvirtd");
        assert!(
            out.status.success(),
            "reference did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let uri = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Some(Reference { dir, uri })
    }

    pub fn ro_uri(&self) -> String {
        format!("{}-ro", self.uri)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE_TOOL);
        let _ = Command::new(tool).arg("stop").arg(self.dir.path()).output();
    }
}
