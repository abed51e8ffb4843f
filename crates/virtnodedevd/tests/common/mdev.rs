//! The shared setup of the mdev and vHBA tests (`tests/mdev.rs`): a fake tree with mdev
//! parents and an NPIV HBA, our daemon on it taking uevents from a small "fake kernel" thread
//! that turns writes to `mdev_supported_types/*/create`, an mdev's `remove` and an HBA's
//! `vport_create` / `vport_delete` into device directories and uevents, as the kernel would;
//! optionally Debian's mdevctl run through `tests/mdevctl-ns`; and the clients that drive it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fakesys::FakeSys;
use protocol::remote::{self as r, proc};
use rpc::client::Client;
use xdr::{Decoder, Xdr};

use super::{fc_mdev_s390_tree, virsh, virsh_available, Daemon};

/// One test's host: the `fc_mdev_s390` tree, our daemon on it (taking uevents from the fake
/// kernel, and driving mdevctl when asked), and a scratch file for the XML given to virsh.
pub struct MdevHost {
    // Fields drop in this order: the fake kernel stops before the daemon, the tree goes last.
    kernel: Option<FakeKernel>,
    pub daemon: Daemon,
    pub uri: String,
    pub tree: FakeSys,
    pub root: PathBuf,
    file: PathBuf,
    tmp: tempfile::TempDir,
}

impl MdevHost {
    /// Without mdevctl; `None` when virsh is missing and the run allows skipping.
    pub fn start() -> Option<MdevHost> {
        Self::start_with(false, |_| {})
    }

    /// With Debian's mdevctl (over the fake tree only); `None` when virsh, mdevctl or root
    /// is missing and the run allows skipping.
    pub fn with_mdevctl() -> Option<MdevHost> {
        Self::start_with(true, |_| {})
    }

    /// `prepare` changes the tree before the daemon starts (definitions in the store, ...).
    pub fn start_with(mdevctl: bool, prepare: impl FnOnce(&FakeSys)) -> Option<MdevHost> {
        if !virsh_available() || (mdevctl && !mdevctl_usable()) {
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let tree = fc_mdev_s390_tree(tmp.path());
        let root = tree.root().to_path_buf();
        prepare(&tree);
        let wrapper = mdevctl_ns();
        let env: &[(&str, &Path)] = if mdevctl {
            &[("VIRTNODEDEVD_MDEVCTL", wrapper.as_path())]
        } else {
            &[]
        };
        let daemon = Daemon::start_env(Some(&root), "", true, env);
        if mdevctl {
            assert!(
                daemon.log().contains("managing mediated devices with"),
                "{}",
                daemon.log()
            );
        }
        let kernel = FakeKernel::start(root.clone(), daemon.uevent_sock());
        Some(MdevHost {
            kernel: Some(kernel),
            uri: daemon.uri(),
            daemon,
            tree,
            root,
            file: tmp.path().join("m.xml"),
            tmp,
        })
    }

    /// Writes `xml` to the scratch file and returns its path, for `virsh nodedev-create` and
    /// `nodedev-define`.
    pub fn xml_file(&self, xml: &str) -> &str {
        std::fs::write(&self.file, xml).unwrap();
        self.file.to_str().unwrap()
    }

    /// mdevctl's store directory of the parent at `addr`.
    pub fn store(&self, addr: &str) -> PathBuf {
        self.root.join("etc/mdevctl.d").join(addr)
    }

    /// Stops the fake kernel and the daemon, and starts a daemon without mdevctl and without
    /// injected uevents on the same tree (a restart, or a switch away from mdevctl).
    pub fn restart_plain(&mut self) {
        self.kernel = None;
        self.daemon.stop();
        self.daemon = Daemon::start(Some(&self.root), "");
        self.uri = self.daemon.uri();
    }

    pub fn watcher(&self) -> Watcher {
        Watcher::new(&self.daemon)
    }

    /// A scratch directory that lives as long as the host.
    pub fn scratch(&self) -> &Path {
        self.tmp.path()
    }
}

/// The T4 GPU of the tree, an mdev parent at 0000:af:00.0.
pub const GPU: &str = "pci_0000_af_00_0";

/// Watches the tree and plays the kernel's part for mdev create/remove and for NPIV
/// `vport_create` / `vport_delete`.
pub struct FakeKernel {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn send_uevent(uevents: &Path, action: &str, devpath: &str, subsystem: &str) {
    let devpath = devpath.strip_prefix("/sys").unwrap_or(devpath);
    let msg = format!(
        "{action}@{devpath}\0ACTION={action}\0DEVPATH={devpath}\0SUBSYSTEM={subsystem}\0SEQNUM=1\0"
    );
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let _ = sock.send_to(msg.as_bytes(), uevents);
}

impl FakeKernel {
    pub fn start(root: PathBuf, uevents: PathBuf) -> FakeKernel {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let f = fakesys::FakeSys::new(&root).unwrap();
            let send = |action: &str, devpath: &str| send_uevent(&uevents, action, devpath, "mdev");
            while !s.load(Ordering::Relaxed) {
                for parent in mdev_parents(&root) {
                    let types = root
                        .join(parent.trim_start_matches('/'))
                        .join("mdev_supported_types");
                    for t in std::fs::read_dir(&types).into_iter().flatten().flatten() {
                        let create = t.path().join("create");
                        let Ok(uuid) = std::fs::read_to_string(&create) else {
                            continue;
                        };
                        let uuid = uuid.trim().to_owned();
                        if uuid.is_empty() {
                            continue;
                        }
                        std::fs::write(&create, "").unwrap();
                        let ty = t.file_name().to_string_lossy().into_owned();
                        let dev = f.mdev(&parent, &uuid, &ty, Some(200)).unwrap();
                        f.write(&format!("{dev}/remove"), "").unwrap();
                        send("add", &dev);
                    }
                    // Mdevs of this parent asked to go.
                    for e in std::fs::read_dir(root.join(parent.trim_start_matches('/')))
                        .into_iter()
                        .flatten()
                        .flatten()
                    {
                        let rm = e.path().join("remove");
                        if std::fs::read_to_string(&rm).is_ok_and(|s| s.trim() == "1") {
                            let uuid = e.file_name().to_string_lossy().into_owned();
                            let dev = format!("{parent}/{uuid}");
                            let _ = std::fs::remove_file(
                                root.join(format!("sys/bus/mdev/devices/{uuid}")),
                            );
                            for t in std::fs::read_dir(&types).into_iter().flatten().flatten() {
                                let _ = std::fs::remove_file(t.path().join("devices").join(&uuid));
                            }
                            std::fs::remove_dir_all(e.path()).unwrap();
                            send("remove", &dev);
                        }
                    }
                }
                vports(&root, &f, &uevents);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        FakeKernel {
            stop,
            thread: Some(thread),
        }
    }
}

/// The host path of a symlink's target inside the fake root.
fn host_path(root: &Path, p: &Path) -> Option<String> {
    let c = std::fs::canonicalize(p).ok()?;
    let rel = c.strip_prefix(std::fs::canonicalize(root).ok()?).ok()?;
    Some(format!("/{}", rel.display()))
}

/// `vport_create` / `vport_delete` of every fc_host: a write of `wwpn:wwnn` creates
/// `vport-H:0-K/hostN` (scsi_host + fc_host) below the HBA's SCSI host, or removes the
/// vport whose host has those names (with everything below it, as the kernel tears down
/// the LUNs of a vHBA in use), each followed by its uevents.
fn vports(root: &Path, f: &fakesys::FakeSys, uevents: &Path) {
    for e in std::fs::read_dir(root.join("sys/class/fc_host"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Some(fc) = host_path(root, &e.path()) else {
            continue;
        };
        // .../hostH/fc_host/hostH -> .../hostH
        let host = fc.rsplitn(3, '/').nth(2).unwrap().to_owned();
        let h: u32 = e.file_name().to_string_lossy()[4..].parse().unwrap();
        let dir = e.path();
        if let Ok(req) = std::fs::read_to_string(dir.join("vport_create")) {
            if let Some((wwpn, wwnn)) = req.trim().split_once(':') {
                std::fs::write(dir.join("vport_create"), "").unwrap();
                // The kernel numbers SCSI hosts on, never reusing a number.
                let n = 1 + std::fs::read_dir(root.join("sys/class/scsi_host"))
                    .unwrap()
                    .flatten()
                    .filter_map(|e| e.file_name().to_string_lossy()[4..].parse::<u32>().ok())
                    .max()
                    .unwrap_or(0);
                let k = (0..)
                    .find(|k| {
                        !root
                            .join(host.trim_start_matches('/'))
                            .join(format!("vport-{h}:0-{k}"))
                            .exists()
                    })
                    .unwrap();
                let vport = format!("{host}/vport-{h}:0-{k}");
                f.write(&format!("{vport}/uevent"), "").unwrap();
                let fabric = std::fs::read_to_string(dir.join("fabric_name"))
                    .ok()
                    .map(|s| s.trim().trim_start_matches("0x").to_owned());
                let new = super::rw_scsi_host(
                    f,
                    &vport,
                    n,
                    "qla2xxx",
                    Some((wwpn, wwnn, fabric.as_deref(), None)),
                );
                send_uevent(uevents, "add", &new, "scsi");
            }
        }
        if let Ok(req) = std::fs::read_to_string(dir.join("vport_delete")) {
            if let Some((wwpn, _)) = req.trim().split_once(':') {
                std::fs::write(dir.join("vport_delete"), "").unwrap();
                delete_vport(root, &host, wwpn, uevents);
            }
        }
    }
}

fn delete_vport(root: &Path, host: &str, wwpn: &str, uevents: &Path) {
    let hdir = root.join(host.trim_start_matches('/'));
    for v in std::fs::read_dir(&hdir).into_iter().flatten().flatten() {
        if !v.file_name().to_string_lossy().starts_with("vport-") {
            continue;
        }
        let matches = std::fs::read_dir(v.path())
            .into_iter()
            .flatten()
            .flatten()
            .any(|c| {
                let n = c.file_name().to_string_lossy().into_owned();
                std::fs::read_to_string(c.path().join(format!("fc_host/{n}/port_name")))
                    .is_ok_and(|p| p.trim() == format!("0x{wwpn}"))
            });
        if !matches {
            continue;
        }
        // Every device below the vport, deepest first, and the links naming them.
        let mut devs = Vec::new();
        collect_devices(root, &v.path(), &mut devs);
        devs.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let vport_host = host_path(root, &v.path()).unwrap();
        for top in ["sys/class", "sys/bus"] {
            for sub in std::fs::read_dir(root.join(top))
                .into_iter()
                .flatten()
                .flatten()
            {
                let dirs = [sub.path(), sub.path().join("devices")];
                for d in dirs {
                    for l in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                        if host_path(root, &l.path()).is_some_and(|t| t.starts_with(&vport_host)) {
                            let _ = std::fs::remove_file(l.path());
                        }
                    }
                }
            }
        }
        std::fs::remove_dir_all(v.path()).unwrap();
        for (p, subsystem) in devs {
            send_uevent(uevents, "remove", &p, &subsystem);
        }
    }
}

fn collect_devices(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    if dir.join("uevent").exists() {
        if let Ok(sub) = std::fs::read_link(dir.join("subsystem")) {
            let s = sub.file_name().unwrap().to_string_lossy().into_owned();
            out.push((host_path(root, dir).unwrap(), s));
        }
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let t = e.file_type().unwrap();
        if t.is_dir() && !t.is_symlink() {
            collect_devices(root, &e.path(), out);
        }
    }
}

impl Drop for FakeKernel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Host paths of the devices under `class/mdev_bus`.
fn mdev_parents(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root.join("sys/class/mdev_bus"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(p) = std::fs::canonicalize(e.path()) {
            if let Ok(rel) = p.strip_prefix(std::fs::canonicalize(root).unwrap()) {
                out.push(format!("/{}", rel.display()));
            }
        }
    }
    out
}

pub fn run(uri: &str, args: &[&str]) -> (bool, String, String) {
    let o = virsh(uri, args);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn mdev_xml(uuid: Option<&str>, ty: &str) -> String {
    let u = uuid
        .map(|u| format!("<uuid>{u}</uuid>"))
        .unwrap_or_default();
    format!(
        "<device><parent>{GPU}</parent><capability type='mdev'><type id='{ty}'/>{u}\
         <attr name='x' value='1'/></capability></device>"
    )
}

// ----------------------------------------------------------------------------------------
// Events.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Created(String),
    Deleted(String),
    Defined(String),
    Undefined(String),
    Updated(String),
}

/// A client subscribed to lifecycle and update events for every device (as in hotplug.rs).
pub struct Watcher {
    pub c: Client,
}

impl Watcher {
    pub fn new(d: &Daemon) -> Watcher {
        Watcher { c: d.subscriber() }
    }

    pub fn next(&mut self) -> Ev {
        loop {
            let m = self.c.read_message().expect("an event within 10 s");
            let d = &mut Decoder::new(&m.payload);
            match m.header.proc_ {
                proc::NODE_DEVICE_EVENT_LIFECYCLE => {
                    let e = r::LifecycleEventMsg::decode(d).unwrap();
                    assert_eq!(e.detail, 0);
                    return match e.event {
                        0 => Ev::Created(e.dev.name),
                        1 => Ev::Deleted(e.dev.name),
                        2 => Ev::Defined(e.dev.name),
                        3 => Ev::Undefined(e.dev.name),
                        x => panic!("unexpected lifecycle event {x}"),
                    };
                }
                proc::NODE_DEVICE_EVENT_UPDATE => {
                    let e = r::UpdateEventMsg::decode(d).unwrap();
                    return Ev::Updated(e.dev.name);
                }
                _ => continue,
            }
        }
    }

    /// Asserts that no event arrives for a while.
    pub fn quiet(&mut self, ms: u64) {
        self.c
            .stream()
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .unwrap();
        loop {
            match self.c.read_message() {
                Ok(m)
                    if m.header.proc_ == proc::NODE_DEVICE_EVENT_LIFECYCLE
                        || m.header.proc_ == proc::NODE_DEVICE_EVENT_UPDATE =>
                {
                    panic!("unexpected event (proc {})", m.header.proc_)
                }
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        self.c
            .stream()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
    }
}

pub fn ok(uri: &str, args: &[&str]) -> String {
    let (ok, out, err) = run(uri, args);
    assert!(ok, "virsh {args:?}: {err}");
    out
}

pub fn fails(uri: &str, args: &[&str], want: &str) {
    let (ok, _, err) = run(uri, args);
    assert!(
        !ok && err.contains(want),
        "virsh {args:?}: want {want:?}, got {err:?}"
    );
}

pub fn vhba_xml(parent: &str, wwns: Option<(&str, &str)>) -> String {
    let fc = match wwns {
        Some((n, p)) => format!("<wwnn>{n}</wwnn><wwpn>{p}</wwpn>"),
        None => String::new(),
    };
    format!(
        "<device>{parent}<capability type='scsi_host'><capability type='fc_host'>{fc}</capability></capability></device>"
    )
}

/// Everything a fake root holds that the daemon could change: sysfs and the store.
pub fn snapshot(root: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let t = e.file_type().unwrap();
            if t.is_symlink() {
                out.push((
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                ));
            } else if t.is_dir() {
                out.push((rel, "dir".into()));
                walk(root, &p, out);
            } else {
                let b = std::fs::read(&p).unwrap_or_default();
                out.push((rel, String::from_utf8_lossy(&b).into_owned()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &root.join("sys"), &mut out);
    walk(root, &root.join("etc"), &mut out);
    out.sort();
    out
}

// ----------------------------------------------------------------------------------------
// mdevctl (Debian's 1.2.0), only ever inside a private mount namespace over the fake tree.

/// The wrapper that runs mdevctl over a fake root (`tests/mdevctl-ns`).
pub fn mdevctl_ns() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mdevctl-ns")
}

/// What the mdevctl tests need: root, mdevctl and unshare (see [`super::available`]).
#[track_caller]
pub fn mdevctl_usable() -> bool {
    super::available(
        nix::unistd::geteuid().is_root() && super::have("mdevctl") && super::have("unshare"),
        "root, mdevctl and unshare",
    )
}

/// mdevctl over the fake tree at `root`.
pub fn mdevctl(root: &Path, args: &[&str]) -> (bool, String, String) {
    let o = std::process::Command::new(mdevctl_ns())
        .args(args)
        .env("VIRTNODEDEVD_HOST_ROOT", root)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
