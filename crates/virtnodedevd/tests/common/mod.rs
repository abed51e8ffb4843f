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

/// A richer host (copied from the nodedev crate's differential tree): PCIe with an IOMMU
/// group, a NIC with udev data, disks with and without udev data, a partition, a PCI device
/// without config space whose child is re-parented, virtual interfaces (veth-like, bridge,
/// wlan), a loop device, USB, SCSI and DRM devices.
pub fn rich_tree(dir: &Path) -> FakeSys {
    let f = FakeSys::new(dir).unwrap();
    f.dmi(&DmiSpec {
        product_name: Some("Fake Machine <X1>".into()),
        sys_vendor: Some("Fake & Co".into()),
        product_version: Some("1.0".into()),
        product_serial: Some("SER-123".into()),
        product_uuid: Some("4c4c4544-0042-3510-8056-b3c04f4d3132".into()),
        bios_vendor: Some("FakeBIOS".into()),
        bios_version: Some("2.3.4".into()),
        bios_date: Some("01/02/2023".into()),
    })
    .unwrap();
    // Host bridge: 4 KiB config space without an Express capability.
    f.pci_device(
        "0000:00:00.0",
        None,
        &PciSpec {
            vendor: 0x8086,
            device: 0x29c0,
            class: 0x060000,
            config_size: 4096,
            ..Default::default()
        },
    )
    .unwrap();
    // PCIe root port (a bridge) with a NIC behind it.
    let port = f
        .pci_device(
            "0000:00:1c.0",
            None,
            &PciSpec {
                vendor: 0x8086,
                device: 0x2948,
                class: 0x060400,
                header_type: 1,
                driver: Some("pcieport".into()),
                pcie: Some(PcieSpec {
                    port_type: 4,
                    link_port: 1,
                    cap_speed: 3,
                    cap_width: 8,
                    sta_speed: 2,
                    sta_width: 4,
                }),
                ..Default::default()
            },
        )
        .unwrap();
    let nic = f
        .pci_device(
            "0000:01:00.0",
            Some(&port),
            &PciSpec {
                vendor: 0x8086,
                device: 0x10d3,
                class: 0x020000,
                driver: Some("e1000e".into()),
                numa_node: Some(0),
                pcie: Some(PcieSpec {
                    port_type: 0,
                    link_port: 0,
                    cap_speed: 1,
                    cap_width: 1,
                    sta_speed: 1,
                    sta_width: 1,
                }),
                ..Default::default()
            },
        )
        .unwrap();
    f.iommu_group(&nic, 7).unwrap();
    let mut eth = NetSpec::new("fketh0", 1001, "52:54:00:aa:bb:cc");
    eth.speed = Some("1000".into());
    f.net(Some(&nic), &eth).unwrap();
    f.udev_db(
        "n1001",
        &[("ID_NET_DRIVER", "e1000e"), ("ID_BUS", "pci")],
        &[],
    )
    .unwrap();
    // SATA controller, conventional PCI, with a disk described by udev.
    let sata = f
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
    let sda = BlockSpec::disk("sda", 8, 0, 2097152);
    f.block(Some(&sata), &sda).unwrap();
    f.write(&format!("{sata}/model"), "QEMU HARDDISK   \n")
        .unwrap();
    f.udev_db(
        "b8:0",
        &[
            ("ID_TYPE", "disk"),
            ("ID_BUS", "ata"),
            ("ID_SERIAL", "QEMU_HARDDISK_QM00001"),
        ],
        &[
            "disk/by-id/ata-QEMU_HARDDISK_QM00001",
            "disk/by-path/pci-0000:00:1f.2-ata-1",
        ],
    )
    .unwrap();
    // A partition is not a node device.
    let mut part = BlockSpec::disk("sda1", 8, 1, 1024);
    part.devtype = "partition".into();
    f.block(Some(&format!("{sata}/block/sda")), &part).unwrap();
    // A device without config space is dropped; its children go to computer.
    let odd = f
        .pci_device(
            "0000:00:1e.0",
            None,
            &PciSpec {
                vendor: 0x1af4,
                device: 0x1000,
                class: 0x020000,
                driver: Some("virtio-pci".into()),
                no_config: true,
                ..Default::default()
            },
        )
        .unwrap();
    let mut orphan = NetSpec::new("fkorph0", 1002, "52:54:00:00:00:02");
    orphan.operstate = "down".into();
    orphan.speed = None;
    f.net(Some(&odd), &orphan).unwrap();
    // A virtio disk without udev data: libvirt guesses "disk" from /dev/vd.
    let vblk = f
        .pci_device(
            "0000:00:05.0",
            None,
            &PciSpec {
                vendor: 0x1af4,
                device: 0x1042,
                class: 0x018000,
                driver: Some("virtio-pci".into()),
                ..Default::default()
            },
        )
        .unwrap();
    f.block(Some(&vblk), &BlockSpec::disk("vdz", 254, 0, 8192))
        .unwrap();
    // Virtual devices: a veth-like interface, a bridge (skipped), a loop
    // device (skipped: no drive type).
    let mut veth = NetSpec::new("fkveth0", 1003, "aa:bb:cc:dd:ee:ff");
    veth.operstate = "lowerlayerdown".into();
    veth.speed = None;
    f.net(None, &veth).unwrap();
    let mut br = NetSpec::new("fkbr0", 1004, "aa:bb:cc:dd:ee:00");
    br.devtype = Some("bridge".into());
    f.net(None, &br).unwrap();
    let mut wl = NetSpec::new("fkwlan0", 1005, "aa:bb:cc:dd:ee:01");
    wl.devtype = Some("wlan".into());
    wl.operstate = "dormant".into();
    f.net(None, &wl).unwrap();
    f.block(None, &BlockSpec::disk("loop0", 7, 0, 0)).unwrap();
    rich_usb_scsi_drm(&f);
    f
}

fn rich_pci(f: &FakeSys, addr: &str, class: u32, driver: &str) -> String {
    f.pci_device(
        addr,
        None,
        &PciSpec {
            vendor: 0x8086,
            device: 0x1000 + (class >> 16) as u16,
            class,
            driver: Some(driver.into()),
            ..Default::default()
        },
    )
    .unwrap()
}

fn rich_usb_scsi_drm(f: &FakeSys) {
    // USB: root hub described by udev, a device udev does not know (dropped
    // for lack of ID_VENDOR_ID) and interfaces of both.
    let xhci = rich_pci(f, "0000:00:14.0", 0x0c0330, "xhci_hcd");
    let hub = format!("{xhci}/usb1");
    f.device(
        &hub,
        "usb",
        true,
        &[
            ("MAJOR", "189"),
            ("MINOR", "0"),
            ("DEVNAME", "bus/usb/001/001"),
            ("DEVTYPE", "usb_device"),
            ("BUSNUM", "001"),
            ("DEVNUM", "001"),
        ],
    )
    .unwrap();
    f.write(&format!("{hub}/manufacturer"), "Linux 6.1.0 xhci-hcd\n")
        .unwrap();
    f.write(&format!("{hub}/product"), "xHCI Host Controller\n")
        .unwrap();
    f.udev_db(
        "c189:0",
        &[
            ("ID_VENDOR_ID", "1d6b"),
            ("ID_MODEL_ID", "0003"),
            ("ID_VENDOR_FROM_DATABASE", "Linux Foundation"),
        ],
        &[],
    )
    .unwrap();
    let intf = format!("{hub}/1-0:1.0");
    f.device(&intf, "usb", true, &[("DEVTYPE", "usb_interface")])
        .unwrap();
    for (n, v) in [
        ("bInterfaceNumber", "00"),
        ("bInterfaceClass", "09"),
        ("bInterfaceSubClass", "00"),
        ("bInterfaceProtocol", "03"),
    ] {
        f.write(&format!("{intf}/{n}"), format!("{v}\n")).unwrap();
    }
    let dev = format!("{hub}/1-1");
    f.device(
        &dev,
        "usb",
        true,
        &[
            ("MAJOR", "189"),
            ("MINOR", "1"),
            ("DEVNAME", "bus/usb/001/002"),
            ("DEVTYPE", "usb_device"),
            ("BUSNUM", "001"),
            ("DEVNUM", "002"),
        ],
    )
    .unwrap();
    let intf2 = format!("{dev}/1-1:1.0");
    f.device(&intf2, "usb", true, &[("DEVTYPE", "usb_interface")])
        .unwrap();
    for (n, v) in [
        ("bInterfaceNumber", "00"),
        ("bInterfaceClass", "ff"),
        ("bInterfaceSubClass", "01"),
        ("bInterfaceProtocol", "02"),
    ] {
        f.write(&format!("{intf2}/{n}"), format!("{v}\n")).unwrap();
    }

    // SCSI: host, target, LUN and its sg node.
    let hba = rich_pci(f, "0000:00:10.0", 0x010000, "virtio-pci");
    let host = format!("{hba}/host2");
    f.device(&host, "scsi", true, &[("DEVTYPE", "scsi_host")])
        .unwrap();
    let shost = format!("{host}/scsi_host/host2");
    f.device(&shost, "scsi_host", false, &[]).unwrap();
    f.write(&format!("{shost}/unique_id"), "3\n").unwrap();
    let target = format!("{host}/target2:0:0");
    f.device(&target, "scsi", true, &[("DEVTYPE", "scsi_target")])
        .unwrap();
    let lun = format!("{target}/2:0:0:0");
    f.device(&lun, "scsi", true, &[("DEVTYPE", "scsi_device")])
        .unwrap();
    f.write(&format!("{lun}/type"), "5\n").unwrap();
    let sg = format!("{lun}/scsi_generic/sg0");
    f.device(
        &sg,
        "scsi_generic",
        false,
        &[("MAJOR", "21"), ("MINOR", "0"), ("DEVNAME", "sg0")],
    )
    .unwrap();

    // DRM: primary and render nodes of a VGA device.
    let vga = rich_pci(f, "0000:00:02.0", 0x030000, "i915");
    for (n, minor) in [("card0", "0"), ("renderD128", "128")] {
        let d = format!("{vga}/drm/{n}");
        let devname = format!("dri/{n}");
        f.device(
            &d,
            "drm",
            false,
            &[
                ("MAJOR", "226"),
                ("MINOR", minor),
                ("DEVNAME", &devname),
                ("DEVTYPE", "drm_minor"),
            ],
        )
        .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Real-world trees (issue 3): laid out as the kernel and udevd lay out real hardware.

/// A PCIe spec for an endpoint or port with the same link capability and status.
fn rw_pcie(port_type: u8, speed: u8, width: u8) -> PcieSpec {
    PcieSpec {
        port_type,
        link_port: 0,
        cap_speed: speed,
        cap_width: width,
        sta_speed: speed,
        sta_width: width,
    }
}

/// A PCIe function with a driver, on the root bus or behind `parent`.
pub fn rw_pci_fn(
    f: &FakeSys,
    addr: &str,
    parent: Option<&str>,
    ids: (u16, u16, u32),
    driver: Option<&str>,
    pcie: Option<PcieSpec>,
    header_type: u8,
) -> String {
    f.pci_device(
        addr,
        parent,
        &PciSpec {
            vendor: ids.0,
            device: ids.1,
            class: ids.2,
            driver: driver.map(str::to_owned),
            header_type,
            pcie,
            numa_node: Some(0),
            ..Default::default()
        },
    )
    .unwrap()
}

/// A machine with DMI data, as every real-world tree has.
fn rw_machine(dir: &Path, product: &str) -> FakeSys {
    let f = FakeSys::new(dir).unwrap();
    f.dmi(&DmiSpec {
        product_name: Some(product.into()),
        sys_vendor: Some("Dell Inc.".into()),
        product_version: Some("Not Specified".into()),
        product_serial: Some("7XK2Q83".into()),
        product_uuid: Some("4c4c4544-0058-4b10-8032-b7c04f513833".into()),
        bios_vendor: Some("Dell Inc.".into()),
        bios_version: Some("2.19.1".into()),
        bios_date: Some("06/20/2023".into()),
    })
    .unwrap();
    f
}

/// SR-IOV as on a ConnectX-5 dual-port card: PF 0 with all 64 VFs enabled (each VF bound to
/// mlx5_core with its own interface and IOMMU group, some links up, some down, some VFs
/// without a MAC yet), PF 1 capable of 64 but with none enabled; the PF carries VPD.
pub fn sriov_tree(dir: &Path) -> FakeSys {
    let f = rw_machine(dir, "PowerEdge R740");
    let port = rw_pci_fn(
        &f,
        "0000:3a:00.0",
        None,
        (0x8086, 0x2030, 0x060400),
        Some("pcieport"),
        Some(rw_pcie(4, 3, 16)),
        1,
    );
    let pf_ids = (0x15b3, 0x1017, 0x020000);
    let pf0 = rw_pci_fn(
        &f,
        "0000:3b:00.0",
        Some(&port),
        pf_ids,
        Some("mlx5_core"),
        Some(rw_pcie(0, 3, 16)),
        0,
    );
    let pf1 = rw_pci_fn(
        &f,
        "0000:3b:00.1",
        Some(&port),
        pf_ids,
        Some("mlx5_core"),
        Some(rw_pcie(0, 3, 16)),
        0,
    );
    f.iommu_group(&pf0, 40).unwrap();
    f.iommu_group(&pf1, 41).unwrap();
    f.vpd(
        &pf0,
        &fakesys::vpd_image(&fakesys::VpdSpec {
            name: Some(b"CX512A - ConnectX-5 SFP28".to_vec()),
            read_only: vec![
                (*b"PN", b"MCX512A-ACAT".to_vec()),
                (*b"EC", b"AC".to_vec()),
                (*b"SN", b"MT2012X01234".to_vec()),
                (*b"V0", b"PCIeGen3 x8".to_vec()),
                (*b"V2", b"MCX512A-ACAT".to_vec()),
                (*b"V3", b"3a9c8b5e4f1d2c7a6b0e9f8d7c6b5a4e".to_vec()),
                (
                    *b"VA",
                    b"MLX:MODL=CX512A:MN=MLNX:CSKU=V2:UUID=V3:PCI=V0".to_vec(),
                ),
            ],
            ..Default::default()
        }),
    )
    .unwrap();
    for (pf, i, state) in [(&pf0, 0u32, "up"), (&pf1, 1, "down")] {
        let mut n = NetSpec::new(
            &format!("{NET_PREFIX}p{i}"),
            4 + i,
            &format!("b8:59:9f:3a:0c:{:02x}", 0x10 + i),
        );
        n.operstate = state.into();
        n.speed = (state == "up").then(|| "25000".into());
        f.net(Some(pf), &n).unwrap();
        f.udev_db(
            &format!("n{}", 4 + i),
            &[
                ("ID_NET_NAMING_SCHEME", "v252"),
                ("ID_NET_NAME_MAC", &format!("enxb8599f3a0c{:02x}", 0x10 + i)),
                ("ID_NET_NAME_PATH", &format!("enp59s0f{i}np{i}")),
                ("ID_BUS", "pci"),
                ("ID_VENDOR_ID", "0x15b3"),
                ("ID_MODEL_ID", "0x1017"),
                ("ID_NET_DRIVER", "mlx5_core"),
                ("ID_PATH", &format!("pci-0000:3b:00.{i}")),
            ],
            &[],
        )
        .unwrap();
    }
    let mut vfs = Vec::new();
    for i in 0..64u32 {
        // VF offset 2, stride 1: 3b:00.2 ... 3b:08.1.
        let devfn = 2 + i;
        let addr = format!("0000:3b:{:02x}.{}", devfn / 8, devfn % 8);
        let vf = rw_pci_fn(
            &f,
            &addr,
            Some(&port),
            (0x15b3, 0x1018, 0x020000),
            Some("mlx5_core"),
            Some(rw_pcie(0, 3, 16)),
            0,
        );
        f.iommu_group(&vf, 100 + i).unwrap();
        let mac = if i % 5 == 4 {
            "00:00:00:00:00:00".to_string()
        } else {
            format!("02:3b:00:00:{:02x}:{:02x}", i / 8, i)
        };
        let mut n = NetSpec::new(&format!("{NET_PREFIX}p0v{i}"), 10 + i, &mac);
        if i % 3 == 0 {
            n.operstate = "down".into();
            n.speed = None;
        } else {
            n.speed = Some("25000".into());
        }
        f.net(Some(&vf), &n).unwrap();
        vfs.push(vf);
    }
    f.sriov(&pf0, Some(64), &vfs).unwrap();
    f.sriov(&pf1, Some(64), &[]).unwrap();
    f
}

/// A udev database entry as udevd writes it (`S:` links, `L:` priority, `I:` init time,
/// `E:` properties, `G:`/`Q:` tags, `V:` version), replacing any earlier one.
fn rw_udev_db(f: &FakeSys, id: &str, props: &[(&str, &str)], links: &[&str], tags: &[&str]) {
    let mut s = String::new();
    for l in links {
        s.push_str(&format!("S:{l}\n"));
    }
    if !links.is_empty() {
        s.push_str("L:0\n");
    }
    s.push_str("I:6235721\n");
    for (k, v) in props {
        s.push_str(&format!("E:{k}={v}\n"));
    }
    for t in tags {
        s.push_str(&format!("G:{t}\n"));
    }
    for t in tags {
        s.push_str(&format!("Q:{t}\n"));
    }
    s.push_str("V:1\n");
    f.write(&format!("/run/udev/data/{id}"), s).unwrap();
}

/// One USB device (hub or function) as the kernel's usb core creates it: uevent, the
/// descriptor attributes, and a udev database entry with what udev's usb_id and hwdb
/// builtins write. `db_names` false leaves out the hwdb names (libvirt then falls back to
/// the `manufacturer`/`product` attributes).
#[allow(clippy::too_many_arguments)]
fn rw_usb_device(
    f: &FakeSys,
    path: &str,
    bus: u32,
    devnum: u32,
    ids: (u16, u16, &str),
    class: &str,
    strings: (Option<&str>, Option<&str>, Option<&str>),
    db_names: Option<(&str, &str)>,
) {
    let minor = ((bus - 1) * 128 + devnum - 1).to_string();
    let devname = format!("bus/usb/{bus:03}/{devnum:03}");
    let product = format!("{:x}/{:x}/{}", ids.0, ids.1, ids.2.trim_start_matches('0'));
    let (busnum, devnum_s) = (format!("{bus:03}"), format!("{devnum:03}"));
    let typ = format!("{}/0/{}", class.trim_start_matches('0'), "1");
    f.device(
        path,
        "usb",
        true,
        &[
            ("MAJOR", "189"),
            ("MINOR", &minor),
            ("DEVNAME", &devname),
            ("DEVTYPE", "usb_device"),
            ("DRIVER", "usb"),
            ("PRODUCT", &product),
            ("TYPE", &typ),
            ("BUSNUM", &busnum),
            ("DEVNUM", &devnum_s),
        ],
    )
    .unwrap();
    f.bind_driver(path, "usb", "usb").unwrap();
    for (n, v) in [
        ("idVendor", format!("{:04x}", ids.0)),
        ("idProduct", format!("{:04x}", ids.1)),
        ("bcdDevice", ids.2.to_string()),
        ("bDeviceClass", class.to_string()),
        ("bDeviceSubClass", "00".into()),
        ("bDeviceProtocol", "01".into()),
        ("bNumConfigurations", "1".into()),
        ("bConfigurationValue", "1".into()),
        ("busnum", bus.to_string()),
        ("devnum", devnum.to_string()),
        ("speed", "480".into()),
        ("version", " 2.00".into()),
        ("maxchild", if class == "09" { "4" } else { "0" }.into()),
        ("removable", "unknown".into()),
    ] {
        f.write(&format!("{path}/{n}"), format!("{v}\n")).unwrap();
    }
    let (manufacturer, prod, serial) = strings;
    for (n, v) in [
        ("manufacturer", manufacturer),
        ("product", prod),
        ("serial", serial),
    ] {
        if let Some(v) = v {
            f.write(&format!("{path}/{n}"), format!("{v}\n")).unwrap();
        }
    }
    f.write(&format!("/dev/{devname}"), "").unwrap();
    let vid = format!("{:04x}", ids.0);
    let pid = format!("{:04x}", ids.1);
    let enc = |s: Option<&str>| s.unwrap_or("").replace(' ', "\\x20");
    let und = |s: Option<&str>| s.unwrap_or("").trim().replace(' ', "_");
    let (v_enc, m_enc, v_und, m_und) = (enc(manufacturer), enc(prod), und(manufacturer), und(prod));
    let id_serial = format!("{v_und}_{m_und}");
    let syspath_tail = path.rsplit('/').next().unwrap();
    let id_path = format!(
        "pci-0000:00:14.0-usb-0:{}",
        syspath_tail.split('-').nth(1).unwrap_or("0")
    );
    let mut props: Vec<(&str, &str)> = vec![
        ("ID_VENDOR", &v_und),
        ("ID_VENDOR_ENC", &v_enc),
        ("ID_VENDOR_ID", &vid),
        ("ID_MODEL", &m_und),
        ("ID_MODEL_ENC", &m_enc),
        ("ID_MODEL_ID", &pid),
        ("ID_REVISION", ids.2),
        ("ID_SERIAL", &id_serial),
        ("ID_BUS", "usb"),
        ("ID_USB_INTERFACES", ":090000:"),
    ];
    if let Some((v, m)) = db_names {
        props.push(("ID_VENDOR_FROM_DATABASE", v));
        props.push(("ID_MODEL_FROM_DATABASE", m));
    }
    props.push(("ID_PATH", &id_path));
    props.push(("DRIVER", "usb"));
    rw_udev_db(
        f,
        &format!("c189:{minor}"),
        &props,
        &[],
        &["seat", "uaccess"],
    );
}

/// A USB interface with its descriptor attributes and udev database entry.
fn rw_usb_interface(f: &FakeSys, dev: &str, name: &str, cls: (&str, &str, &str), driver: &str) {
    let path = format!("{dev}/{name}");
    let iface = format!(
        "{}/{}/{}",
        u32::from_str_radix(cls.0, 16).unwrap(),
        u32::from_str_radix(cls.1, 16).unwrap(),
        u32::from_str_radix(cls.2, 16).unwrap()
    );
    f.device(
        &path,
        "usb",
        true,
        &[
            ("DEVTYPE", "usb_interface"),
            ("DRIVER", driver),
            ("INTERFACE", &iface),
            (
                "MODALIAS",
                "usb:v0000p0000d0000dc00dsc00dp00ic00isc00ip00in00",
            ),
        ],
    )
    .unwrap();
    f.bind_driver(&path, "usb", driver).unwrap();
    let num = name.rsplit('.').next().unwrap();
    for (n, v) in [
        (
            "bInterfaceNumber",
            format!("{:02x}", num.parse::<u32>().unwrap()),
        ),
        ("bAlternateSetting", " 0".into()),
        ("bNumEndpoints", "01".into()),
        ("bInterfaceClass", cls.0.into()),
        ("bInterfaceSubClass", cls.1.into()),
        ("bInterfaceProtocol", cls.2.into()),
        ("supports_autosuspend", "1".into()),
    ] {
        f.write(&format!("{path}/{n}"), format!("{v}\n")).unwrap();
    }
    rw_udev_db(
        f,
        &format!("+usb:{name}"),
        &[("ID_USB_CLASS_FROM_DATABASE", "Hub"), ("DRIVER", driver)],
        &[],
        &[],
    );
}

/// A USB hub chain (root hub -> hub -> hub -> keyboard receiver with three HID interfaces,
/// plus a device udev's hwdb does not know and a SuperSpeed root hub with nothing behind
/// it), with a HID device and hidraw node below an interface (not node devices), and a SAS
/// HBA with four disks (one 4Kn), a tape drive and an enclosure, each with its SAS
/// transport objects, scsi_device/scsi_disk/bsg class devices, sg node and block device
/// (with partitions) described by udev as udevd does.
pub fn usb_sas_tree(dir: &Path) -> FakeSys {
    let f = rw_machine(dir, "PowerEdge R640");
    let xhci = rw_pci_fn(
        &f,
        "0000:00:14.0",
        None,
        (0x8086, 0xa36d, 0x0c0330),
        Some("xhci_hcd"),
        None,
        0,
    );
    let usb1 = format!("{xhci}/usb1");
    rw_usb_device(
        &f,
        &usb1,
        1,
        1,
        (0x1d6b, 0x0002, "0601"),
        "09",
        (
            Some("Linux 6.1.0-18-amd64 xhci-hcd"),
            Some("xHCI Host Controller"),
            Some("0000:00:14.0"),
        ),
        Some(("Linux Foundation", "2.0 root hub")),
    );
    rw_usb_interface(&f, &usb1, "1-0:1.0", ("09", "00", "00"), "hub");
    let usb2 = format!("{xhci}/usb2");
    rw_usb_device(
        &f,
        &usb2,
        2,
        1,
        (0x1d6b, 0x0003, "0601"),
        "09",
        (
            Some("Linux 6.1.0-18-amd64 xhci-hcd"),
            Some("xHCI Host Controller"),
            Some("0000:00:14.0"),
        ),
        Some(("Linux Foundation", "3.0 root hub")),
    );
    rw_usb_interface(&f, &usb2, "2-0:1.0", ("09", "00", "00"), "hub");
    let hub1 = format!("{usb1}/1-1");
    rw_usb_device(
        &f,
        &hub1,
        1,
        2,
        (0x05e3, 0x0610, "9226"),
        "09",
        (Some("GenesysLogic"), Some("USB2.1 Hub"), None),
        Some(("Genesys Logic, Inc.", "Hub")),
    );
    rw_usb_interface(&f, &hub1, "1-1:1.0", ("09", "00", "02"), "hub");
    let hub2 = format!("{hub1}/1-1.2");
    rw_usb_device(
        &f,
        &hub2,
        1,
        3,
        (0x2109, 0x2817, "0213"),
        "09",
        (
            Some("VIA Labs, Inc.         "),
            Some("USB2.0 Hub             "),
            None,
        ),
        Some(("VIA Labs, Inc.", "USB2.0 Hub")),
    );
    rw_usb_interface(&f, &hub2, "1-1.2:1.0", ("09", "00", "01"), "hub");
    let kbd = format!("{hub2}/1-1.2.4");
    rw_usb_device(
        &f,
        &kbd,
        1,
        4,
        (0x046d, 0xc52b, "1211"),
        "00",
        (Some("Logitech"), Some("USB Receiver"), None),
        Some(("Logitech, Inc.", "Unifying Receiver")),
    );
    for (i, cls) in [("01", "01"), ("01", "02"), ("00", "00")]
        .iter()
        .enumerate()
    {
        rw_usb_interface(
            &f,
            &kbd,
            &format!("1-1.2.4:1.{i}"),
            ("03", cls.0, cls.1),
            "usbhid",
        );
    }
    // A HID device and its hidraw node below the first interface: not node devices.
    let hid = format!("{kbd}/1-1.2.4:1.0/0003:046D:C52B.0001");
    f.device(
        &hid,
        "hid",
        true,
        &[
            ("DRIVER", "hid-generic"),
            ("HID_ID", "0003:0000046D:0000C52B"),
            ("HID_NAME", "Logitech USB Receiver"),
            ("MODALIAS", "hid:b0003g0001v0000046Dp0000C52B"),
        ],
    )
    .unwrap();
    f.device(
        &format!("{hid}/hidraw/hidraw0"),
        "hidraw",
        false,
        &[("MAJOR", "241"), ("MINOR", "0"), ("DEVNAME", "hidraw0")],
    )
    .unwrap();
    // Unknown to the hwdb: names come from the string descriptors, trailing blanks and all.
    let odd = format!("{hub2}/1-1.2.3");
    rw_usb_device(
        &f,
        &odd,
        1,
        5,
        (0x1209, 0x0001, "0100"),
        "ff",
        (
            Some("ACME Widgets & <Co>  "),
            Some("Prototype\tboard"),
            Some("0001"),
        ),
        None,
    );
    rw_usb_interface(&f, &odd, "1-1.2.3:1.0", ("ff", "00", "00"), "usbfs");

    // SAS HBA behind a root port.
    let port = rw_pci_fn(
        &f,
        "0000:00:03.0",
        None,
        (0x8086, 0x2f08, 0x060400),
        Some("pcieport"),
        Some(rw_pcie(4, 3, 8)),
        1,
    );
    let hba = rw_pci_fn(
        &f,
        "0000:18:00.0",
        Some(&port),
        (0x1000, 0x0097, 0x010700),
        Some("mpt3sas"),
        Some(rw_pcie(0, 3, 8)),
        0,
    );
    let host = format!("{hba}/host0");
    f.device(&host, "scsi", true, &[("DEVTYPE", "scsi_host")])
        .unwrap();
    let sh = format!("{host}/scsi_host/host0");
    f.device(&sh, "scsi_host", false, &[]).unwrap();
    for (n, v) in [
        ("unique_id", "1"),
        ("proc_name", "mpt3sas"),
        ("host_busy", "0"),
        ("can_queue", "4352"),
        ("state", "running"),
    ] {
        f.write(&format!("{sh}/{n}"), format!("{v}\n")).unwrap();
    }
    f.device(&format!("{host}/sas_host/host0"), "sas_host", false, &[])
        .unwrap();
    // (kind, type, vendor, model, size in sectors, logical block size, serial)
    let luns: [(&str, u32, &str, &str, u64, u64, &str); 6] = [
        (
            "disk",
            0,
            "SEAGATE ",
            "ST4000NM0025    ",
            7814037168,
            512,
            "35000c500a1b2c301",
        ),
        (
            "disk",
            0,
            "SEAGATE ",
            "ST4000NM0025    ",
            7814037168,
            512,
            "35000c500a1b2c302",
        ),
        (
            "disk",
            0,
            "TOSHIBA ",
            "AL15SEB120N     ",
            2344225968,
            512,
            "35000039a48200003",
        ),
        (
            "disk",
            0,
            "HGST    ",
            "HUH721212AL4200 ",
            2929721344,
            4096,
            "35000cca2b3c4d504",
        ),
        ("tape", 1, "IBM     ", "ULT3580-HH8     ", 0, 0, ""),
        ("encl", 13, "DP      ", "BP14G+          ", 0, 0, ""),
    ];
    for (k, (kind, ty, vendor, model, size, lbs, serial)) in luns.iter().enumerate() {
        let phy = format!("{host}/phy-0:{k}");
        f.write(&format!("{phy}/uevent"), "").unwrap();
        f.device(&format!("{phy}/sas_phy/phy-0:{k}"), "sas_phy", false, &[])
            .unwrap();
        let sport = format!("{host}/port-0:{k}");
        f.write(&format!("{sport}/uevent"), "").unwrap();
        f.device(
            &format!("{sport}/sas_port/port-0:{k}"),
            "sas_port",
            false,
            &[],
        )
        .unwrap();
        let end = format!("{sport}/end_device-0:{k}");
        f.write(&format!("{end}/uevent"), "").unwrap();
        f.device(
            &format!("{end}/sas_device/end_device-0:{k}"),
            "sas_device",
            false,
            &[],
        )
        .unwrap();
        f.device(
            &format!("{end}/sas_end_device/end_device-0:{k}"),
            "sas_end_device",
            false,
            &[],
        )
        .unwrap();
        let target = format!("{end}/target0:0:{k}");
        f.device(&target, "scsi", true, &[("DEVTYPE", "scsi_target")])
            .unwrap();
        let hctl = format!("0:0:{k}:0");
        let lun = format!("{target}/{hctl}");
        let driver = match *kind {
            "disk" => "sd",
            "tape" => "st",
            _ => "ses",
        };
        f.device(
            &lun,
            "scsi",
            true,
            &[
                ("DEVTYPE", "scsi_device"),
                ("DRIVER", driver),
                ("MODALIAS", &format!("scsi:t-0x{ty:02x}")),
            ],
        )
        .unwrap();
        f.bind_driver(&lun, "scsi", driver).unwrap();
        for (n, v) in [
            ("type", ty.to_string()),
            ("vendor", vendor.to_string()),
            ("model", model.to_string()),
            ("rev", "E004".to_string()),
            ("state", "running".to_string()),
            ("sas_address", format!("0x5000c500a1b2c3{k:02x}")),
        ] {
            f.write(&format!("{lun}/{n}"), format!("{v}\n")).unwrap();
        }
        f.device(
            &format!("{lun}/scsi_device/{hctl}"),
            "scsi_device",
            false,
            &[],
        )
        .unwrap();
        f.device(
            &format!("{lun}/bsg/{hctl}"),
            "bsg",
            false,
            &[
                ("MAJOR", "246"),
                ("MINOR", &k.to_string()),
                ("DEVNAME", &format!("bsg/{hctl}")),
            ],
        )
        .unwrap();
        let sg = format!("sg{k}");
        f.device(
            &format!("{lun}/scsi_generic/{sg}"),
            "scsi_generic",
            false,
            &[("MAJOR", "21"), ("MINOR", &k.to_string()), ("DEVNAME", &sg)],
        )
        .unwrap();
        rw_udev_db(
            &f,
            &format!("c21:{k}"),
            &[
                ("ID_SCSI", "1"),
                ("ID_PATH", &format!("pci-0000:18:00.0-sas-phy{k}-lun-0")),
            ],
            &[],
            &[],
        );
        if *kind == "tape" {
            f.device(
                &format!("{lun}/scsi_tape/st0"),
                "scsi_tape",
                false,
                &[("MAJOR", "9"), ("MINOR", "0"), ("DEVNAME", "st0")],
            )
            .unwrap();
        }
        if *kind == "encl" {
            f.device(&format!("{lun}/enclosure/{hctl}"), "enclosure", false, &[])
                .unwrap();
        }
        if *kind != "disk" {
            continue;
        }
        f.device(&format!("{lun}/scsi_disk/{hctl}"), "scsi_disk", false, &[])
            .unwrap();
        let letter = (b'a' + k as u8) as char;
        let name = format!("sd{letter}");
        let minor = (k * 16) as u32;
        let mut spec = BlockSpec::disk(&name, 8, minor, *size);
        spec.logical_block_size = *lbs;
        let blk = f.block(Some(&lun), &spec).unwrap();
        let vendor_t = vendor.trim();
        let model_t = model.trim();
        let wwn = format!("0x{}", &serial[1..]);
        let path_id = format!("pci-0000:18:00.0-sas-phy{k}-lun-0");
        let props = [
            ("DEVLINKS", ""),
            ("ID_SCSI", "1"),
            ("ID_VENDOR", vendor_t),
            ("ID_VENDOR_ENC", vendor_t),
            ("ID_MODEL", model_t),
            ("ID_MODEL_ENC", model_t),
            ("ID_REVISION", "E004"),
            ("ID_TYPE", "disk"),
            ("ID_SERIAL", serial),
            ("ID_SERIAL_SHORT", &serial[1..]),
            ("ID_WWN", &wwn),
            ("ID_WWN_WITH_EXTENSION", &wwn),
            ("ID_BUS", "scsi"),
            ("ID_PATH", &path_id),
            ("ID_PART_TABLE_TYPE", "gpt"),
        ];
        let by_id = format!("disk/by-id/scsi-{serial}");
        let by_wwn = format!("disk/by-id/wwn-{wwn}");
        let by_path = format!("disk/by-path/{path_id}");
        rw_udev_db(
            &f,
            &format!("b8:{minor}"),
            &props[1..],
            &[&by_path, &by_id, &by_wwn],
            &["systemd"],
        );
        // Partitions sit right below the disk's directory.
        for p in 1..=2u32 {
            let pname = format!("{name}{p}");
            let pdir = format!("{blk}/{pname}");
            let (pmin, pn) = ((minor + p).to_string(), p.to_string());
            f.device(
                &pdir,
                "block",
                false,
                &[
                    ("MAJOR", "8"),
                    ("MINOR", &pmin),
                    ("DEVNAME", &pname),
                    ("DEVTYPE", "partition"),
                    ("PARTN", &pn),
                ],
            )
            .unwrap();
            for (n, v) in [
                ("partition", pn.clone()),
                ("start", "2048".into()),
                ("size", "1048576".into()),
            ] {
                f.write(&format!("{pdir}/{n}"), format!("{v}\n")).unwrap();
            }
            rw_udev_db(
                &f,
                &format!("b8:{}", minor + p),
                &[
                    ("ID_TYPE", "disk"),
                    ("ID_BUS", "scsi"),
                    ("ID_SERIAL", serial),
                ],
                &[],
                &["systemd"],
            );
        }
    }
    f
}

/// FC data of a SCSI host: (port_name, node_name, fabric_name, vport (max, in use)).
pub type RwFc<'a> = (&'a str, &'a str, Option<&'a str>, Option<(u32, u32)>);

/// A SCSI host `hostN` below `parent` with its scsi_host class device; with `fc` also its
/// fc_host class device.
pub fn rw_scsi_host(
    f: &FakeSys,
    parent: &str,
    n: u32,
    proc_name: &str,
    fc: Option<RwFc>,
) -> String {
    let host = format!("{parent}/host{n}");
    f.device(&host, "scsi", true, &[("DEVTYPE", "scsi_host")])
        .unwrap();
    let sh = format!("{host}/scsi_host/host{n}");
    f.device(&sh, "scsi_host", false, &[]).unwrap();
    for (k, v) in [
        ("unique_id", (n + 1).to_string()),
        ("proc_name", proc_name.to_string()),
        ("state", "running".to_string()),
    ] {
        f.write(&format!("{sh}/{k}"), format!("{v}\n")).unwrap();
    }
    if let Some((wwpn, wwnn, fabric, vports)) = fc {
        let fcd = format!("{host}/fc_host/host{n}");
        f.device(&fcd, "fc_host", false, &[]).unwrap();
        let mut attrs = vec![
            ("port_name", format!("0x{wwpn}")),
            ("node_name", format!("0x{wwnn}")),
            ("port_id", format!("0x0a{n:02x}00")),
            ("port_type", "NPort (fabric via point-to-point)".to_string()),
            ("port_state", "Online".to_string()),
            ("speed", "16 Gbit".to_string()),
            ("supported_classes", "Class 3".to_string()),
            (
                "symbolic_name",
                "QLE2692 FW:v9.08.02 DVR:v10.02.07.900-k".to_string(),
            ),
        ];
        if let Some(fab) = fabric {
            attrs.push(("fabric_name", format!("0x{fab}")));
        }
        if let Some((max, used)) = vports {
            attrs.push(("max_npiv_vports", max.to_string()));
            attrs.push(("npiv_vports_inuse", used.to_string()));
            attrs.push(("vport_create", String::new()));
            attrs.push(("vport_delete", String::new()));
        }
        for (k, v) in attrs {
            let content = if v.is_empty() { v } else { format!("{v}\n") };
            f.write(&format!("{fcd}/{k}"), content).unwrap();
        }
    }
    host
}

/// An FC remote port `rport-H:0-I` below `host` (class fc_remote_ports); with `luns`, a
/// target behind it with that many disk LUNs (each with sg node and udev-described block
/// device, named from `disk`).
fn rw_rport(f: &FakeSys, host: &str, h: u32, i: u32, wwpn: &str, luns: u32, disk: &mut u32) {
    let name = format!("rport-{h}:0-{i}");
    let rport = format!("{host}/{name}");
    f.write(&format!("{rport}/uevent"), "").unwrap();
    let rp = format!("{rport}/fc_remote_ports/{name}");
    f.device(&rp, "fc_remote_ports", false, &[]).unwrap();
    for (k, v) in [
        ("port_name", format!("0x{wwpn}")),
        ("node_name", format!("0x{}", wwpn.replacen('5', "4", 1))),
        ("port_id", format!("0x0b{i:02x}00")),
        (
            "roles",
            if luns > 0 {
                "FCP Target"
            } else {
                "Fabric Port"
            }
            .to_string(),
        ),
        ("port_state", "Online".to_string()),
        (
            "scsi_target_id",
            if luns > 0 { i.to_string() } else { "-1".into() },
        ),
    ] {
        f.write(&format!("{rp}/{k}"), format!("{v}\n")).unwrap();
    }
    if luns == 0 {
        return;
    }
    let target = format!("{rport}/target{h}:0:{i}");
    f.device(&target, "scsi", true, &[("DEVTYPE", "scsi_target")])
        .unwrap();
    for l in 0..luns {
        let hctl = format!("{h}:0:{i}:{l}");
        let lun = format!("{target}/{hctl}");
        f.device(
            &lun,
            "scsi",
            true,
            &[("DEVTYPE", "scsi_device"), ("DRIVER", "sd")],
        )
        .unwrap();
        f.bind_driver(&lun, "scsi", "sd").unwrap();
        for (k, v) in [
            ("type", "0"),
            ("vendor", "HITACHI "),
            ("model", "OPEN-V          "),
            ("rev", "8001"),
        ] {
            f.write(&format!("{lun}/{k}"), format!("{v}\n")).unwrap();
        }
        let sg = format!("sg{}", *disk + 20);
        f.device(
            &format!("{lun}/scsi_generic/{sg}"),
            "scsi_generic",
            false,
            &[
                ("MAJOR", "21"),
                ("MINOR", &(*disk + 20).to_string()),
                ("DEVNAME", &sg),
            ],
        )
        .unwrap();
        let bname = format!("sd{}", (b'p' + *disk as u8) as char);
        let minor = 16 * (*disk + 15);
        f.block(Some(&lun), &BlockSpec::disk(&bname, 8, minor, 209715200))
            .unwrap();
        let serial = format!("360060e8012a3b4005040a3b4000000{:02x}", *disk);
        let by_id = format!("disk/by-id/scsi-{serial}");
        let by_path = format!("disk/by-path/pci-0000:5e:00.0-fc-0x{wwpn}-lun-{l}");
        rw_udev_db(
            f,
            &format!("b8:{minor}"),
            &[
                ("ID_SCSI", "1"),
                ("ID_VENDOR", "HITACHI"),
                ("ID_MODEL", "OPEN-V"),
                ("ID_TYPE", "disk"),
                ("ID_SERIAL", &serial),
                ("ID_SERIAL_SHORT", &serial[1..]),
                ("ID_BUS", "scsi"),
                ("DM_MULTIPATH_DEVICE_PATH", "1"),
            ],
            &[&by_path, &by_id],
            &["systemd"],
        );
        *disk += 1;
    }
}

/// WWNs of the FC ports in `fc_mdev_s390_tree`: (wwnn, wwpn) of the NPIV-capable port and
/// of the vHBA created on it.
pub const FC_HBA_WWN: (&str, &str) = ("20000024ff7a1b2c", "21000024ff7a1b2c");
pub const FC_VHBA_WWN: (&str, &str) = ("2001001b32a9da4e", "2101001b32a9da4e");

/// Fibre Channel with NPIV (a dual-port QLogic HBA: port 1 online with two target ports of
/// two LUNs each, a fabric port without target, and a vHBA created through vport_create
/// with its own target; port 2 with its link down and no fabric), an mdev-capable GPU
/// (NVIDIA T4 with vGPU types and two active mdevs), and s390 devices (I/O and vfio-ccw
/// subchannels with an mdev on the latter, online and offline CCW devices, AP cards and
/// queues and the vfio_ap matrix with an active mdev).
pub fn fc_mdev_s390_tree(dir: &Path) -> FakeSys {
    let f = rw_machine(dir, "PowerEdge R750");
    let port = rw_pci_fn(
        &f,
        "0000:5d:00.0",
        None,
        (0x8086, 0x347a, 0x060400),
        Some("pcieport"),
        Some(rw_pcie(4, 3, 8)),
        1,
    );
    let mut disk = 0;
    let hba0 = rw_pci_fn(
        &f,
        "0000:5e:00.0",
        Some(&port),
        (0x1077, 0x2261, 0x0c0400),
        Some("qla2xxx"),
        Some(rw_pcie(0, 3, 8)),
        0,
    );
    let h11 = rw_scsi_host(
        &f,
        &hba0,
        11,
        "qla2xxx",
        Some((
            FC_HBA_WWN.1,
            FC_HBA_WWN.0,
            Some("100000051e0c3a5b"),
            Some((254, 1)),
        )),
    );
    rw_rport(&f, &h11, 11, 0, "50060e801049cfd1", 2, &mut disk);
    rw_rport(&f, &h11, 11, 1, "50060e801049cfd9", 2, &mut disk);
    rw_rport(&f, &h11, 11, 2, "fffffc0b0c0d0e0f", 0, &mut disk);
    // The vHBA: vport-11:0-0 (class fc_vports) with its own SCSI host.
    let vport = format!("{h11}/vport-11:0-0");
    f.write(&format!("{vport}/uevent"), "").unwrap();
    let fv = format!("{vport}/fc_vports/vport-11:0-0");
    f.device(&fv, "fc_vports", false, &[]).unwrap();
    for (k, v) in [
        ("port_name", format!("0x{}", FC_VHBA_WWN.1)),
        ("node_name", format!("0x{}", FC_VHBA_WWN.0)),
        ("vport_state", "Active".into()),
        ("vport_type", "NPIV".into()),
        ("roles", "FCP Initiator".into()),
    ] {
        f.write(&format!("{fv}/{k}"), format!("{v}\n")).unwrap();
    }
    let h12 = rw_scsi_host(
        &f,
        &vport,
        12,
        "qla2xxx",
        Some((FC_VHBA_WWN.1, FC_VHBA_WWN.0, Some("100000051e0c3a5b"), None)),
    );
    rw_rport(&f, &h12, 12, 0, "50060e801049cfd1", 1, &mut disk);
    let hba1 = rw_pci_fn(
        &f,
        "0000:5e:00.1",
        Some(&port),
        (0x1077, 0x2261, 0x0c0400),
        Some("qla2xxx"),
        Some(rw_pcie(0, 3, 8)),
        0,
    );
    rw_scsi_host(
        &f,
        &hba1,
        13,
        "qla2xxx",
        Some(("21000024ff7a1b2d", "20000024ff7a1b2d", None, Some((254, 0)))),
    );

    // NVIDIA T4 with vGPU types (directory order = creation order) and two mdevs.
    let gpu = rw_pci_fn(
        &f,
        "0000:af:00.0",
        None,
        (0x10de, 0x1eb8, 0x030200),
        Some("nvidia"),
        Some(rw_pcie(0, 3, 16)),
        0,
    );
    f.iommu_group(&gpu, 150).unwrap();
    let types: Vec<fakesys::MdevTypeSpec> = [
        ("nvidia-222", "GRID T4-1B", 14),
        ("nvidia-223", "GRID T4-2B", 7),
        ("nvidia-228", "GRID T4-8Q", 0),
        ("nvidia-230", "GRID T4-16Q", 0),
        ("nvidia-319", "GRID T4-4A", 4),
    ]
    .iter()
    .map(|(id, n, a)| fakesys::MdevTypeSpec::new(id, Some(n), "vfio-pci", *a))
    .collect();
    f.mdev_types(&gpu, &types).unwrap();
    for t in &types {
        f.write(
            &format!("{gpu}/mdev_supported_types/{}/description", t.id),
            "num_heads=4, frl_config=45, framebuffer=1024M, max_resolution=5120x2880, max_instance=16\n",
        )
        .unwrap();
    }
    f.mdev(
        &gpu,
        "c0ffee00-1b54-4048-85b3-a6a62d165c01",
        "nvidia-222",
        Some(151),
    )
    .unwrap();
    f.mdev(
        &gpu,
        "c0ffee00-1b54-4048-85b3-a6a62d165c02",
        "nvidia-228",
        Some(152),
    )
    .unwrap();

    // s390: channel subsystem and AP.
    let sch = f
        .css("0.0.0000", Some("io_subchannel"), Some("0.0.0000"))
        .unwrap();
    f.ccw(&sch, "0.0.0000", "1", "virtio_ccw").unwrap();
    let sch1 = f
        .css("0.0.0001", Some("io_subchannel"), Some("0.0.0001"))
        .unwrap();
    f.ccw(&sch1, "0.0.0001", "0", "dasd-eckd").unwrap();
    let sch2 = f
        .css("0.0.0013", Some("vfio_ccw"), Some("0.0.2b09"))
        .unwrap();
    f.mdev_types(
        &sch2,
        &[fakesys::MdevTypeSpec::new(
            "vfio_ccw-io",
            Some("I/O subchannel (Non-QDIO)"),
            "vfio-ccw",
            0,
        )],
    )
    .unwrap();
    f.mdev(
        &sch2,
        "7e270a25-e163-4922-af60-757fc8ed48c6",
        "vfio_ccw-io",
        Some(3),
    )
    .unwrap();
    f.css("0.0.ff00", None, Some("none")).unwrap();
    for adapter in [0x03u32, 0x04] {
        let card = f.ap_card(adapter).unwrap();
        for domain in [0x0005u32, 0x0047] {
            f.ap_queue(&card, adapter, domain).unwrap();
        }
    }
    let matrix = f.ap_matrix().unwrap();
    f.mdev_types(
        &matrix,
        &[fakesys::MdevTypeSpec::new(
            "vfio_ap-passthrough",
            Some("VFIO AP Passthrough Device"),
            "vfio-ap",
            65535,
        )],
    )
    .unwrap();
    f.mdev(
        &matrix,
        "4b55dd88-0b7c-4b4c-b6a0-c4d7a0e1f2a3",
        "vfio_ap-passthrough",
        Some(4),
    )
    .unwrap();
    f
}
