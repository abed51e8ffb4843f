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
