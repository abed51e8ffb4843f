//! Mediated devices and NPIV vHBAs created, defined and removed through the node-device
//! API, as libvirt 9.0's `nodeDeviceCreateXML`, `nodeDeviceDefineXML`, `nodeDeviceDestroy`,
//! `nodeDeviceUndefine`, `nodeDeviceCreate` and `nodeDeviceSetAutostart` do it.
//!
//! Like libvirt, we drive `mdevctl` when it is installed, with 9.0's command lines
//! ([`Mdevctl`]). Without it we do what mdevctl does ourselves: a transient mdev is created
//! by writing its UUID to the parent's `mdev_supported_types/<type>/create` and removed
//! through its `remove`; persistent definitions live in mdevctl's store
//! (`/etc/mdevctl.d/<parent>/<uuid>`, [`crate::store`]), so installing or removing mdevctl
//! later loses nothing. The device set shows every definition: an active mdev with the
//! same UUID is marked persistent, otherwise an inactive device stands for it
//! ([`reconcile`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nodedev::parse::{self, DefError, DeviceDef};
use nodedev::{Cap, Device, HostRoot, MdevCap};
use protocol::VirError;
use tracing::{debug, info, warn};

use crate::driver::{Change, DeviceList, DeviceState, Driver};

/// How long a created device may take to appear (libvirt's LINUX_NEW_DEVICE_WAIT_TIME);
/// `VIRTNODEDEVD_NEW_DEVICE_WAIT_MS` overrides it (tests).
const NEW_DEVICE_WAIT: Duration = Duration::from_secs(60);

fn new_device_wait() -> Duration {
    std::env::var("VIRTNODEDEVD_NEW_DEVICE_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(NEW_DEVICE_WAIT, Duration::from_millis)
}

/// One persistent mediated device (an mdevctl definition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub parent_addr: String,
    pub uuid: String,
    pub type_id: String,
    pub attrs: Vec<(String, String)>,
    pub autostart: bool,
}

impl Definition {
    /// `mdevGenerateDeviceName`: `mdev_<uuid>_<parent address>`, non-alphanumerics as `_`.
    pub fn name(&self) -> String {
        generate_name(&format!("mdev_{}_{}", self.uuid, self.parent_addr))
    }
}

fn generate_name(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                b as char
            } else {
                '_'
            }
        })
        .collect()
}

// ----------------------------------------------------------------------------------------
// Errors.

fn template(code: i32) -> &'static str {
    match code {
        1 => "internal error: %s",
        27 => "XML error: %s",
        32 => "failed to parse configuration file %s",
        53 => "Node device not found: %s",
        55 => "Requested operation is not valid: %s",
        67 => "unsupported configuration: %s",
        84 => "Operation not supported: %s",
        92 => "XML document failed to validate against schema: %s",
        _ => "%s",
    }
}

pub fn vir(e: DefError) -> VirError {
    let t = template(e.code);
    VirError {
        code: e.code,
        domain: e.domain,
        message: t.replacen("%s", &e.detail, 1),
        str1: Some(t.to_owned()),
        str2: Some(e.detail),
        str3: None,
        int1: -1,
        int2: -1,
    }
}

fn err(code: i32, detail: impl Into<String>) -> VirError {
    vir(DefError::new(code, parse::domain::NODEDEV, detail))
}

fn internal(detail: impl Into<String>) -> VirError {
    err(1, detail)
}

fn unsupported() -> VirError {
    err(67, "Unsupported device type")
}

/// How mdevctl reports a failure on stderr (anyhow's `Error: ...`).
fn mdevctl_msg(e: impl std::fmt::Display) -> String {
    format!("Error: {e}\n")
}

// ----------------------------------------------------------------------------------------
// mdevctl.

/// The `mdevctl` program this daemon drives, if any: `VIRTNODEDEVD_MDEVCTL` names it (set
/// but empty: none; tests point it at a wrapper that runs Debian's mdevctl in a private
/// mount namespace over the fake tree); otherwise `mdevctl` from `PATH`, but only when the
/// daemon reads the real host: with a fake root, the host's mdevctl would act on the real
/// `/sys` and `/etc/mdevctl.d`.
pub struct Mdevctl(std::path::PathBuf);

static MDEVCTL: std::sync::OnceLock<Option<Mdevctl>> = std::sync::OnceLock::new();

/// What one mdevctl run printed.
struct MdevctlOut {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl MdevctlOut {
    /// libvirt's MDEVCTL_ERROR: stderr, or "Unknown error".
    fn error(&self) -> String {
        if self.stderr.is_empty() {
            "Unknown error".to_owned()
        } else {
            self.stderr.clone()
        }
    }
}

impl Mdevctl {
    pub fn get(root: &HostRoot) -> Option<&'static Mdevctl> {
        MDEVCTL
            .get_or_init(|| {
                let found = match std::env::var_os("VIRTNODEDEVD_MDEVCTL") {
                    Some(p) if p.is_empty() => None,
                    Some(p) => Some(std::path::PathBuf::from(p)),
                    None if root.path() == std::path::Path::new("/") => {
                        std::env::var_os("PATH").and_then(|path| {
                            std::env::split_paths(&path)
                                .map(|d| d.join("mdevctl"))
                                .find(|p| {
                                    use std::os::unix::fs::PermissionsExt;
                                    p.metadata()
                                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                                })
                        })
                    }
                    None => None,
                };
                match &found {
                    Some(p) => info!("managing mediated devices with {}", p.display()),
                    None => info!("mdevctl not used: managing mediated devices through sysfs and mdevctl's store"),
                }
                found.map(Mdevctl)
            })
            .as_ref()
    }

    fn run(&self, args: &[&str], input: Option<&str>) -> Result<MdevctlOut, VirError> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        debug!(?args, "running mdevctl");
        let mut child = Command::new(&self.0)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| internal(format!("Cannot run {}: {e}", self.0.display())))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            let _ = stdin.write_all(text.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| internal(format!("Cannot run {}: {e}", self.0.display())))?;
        Ok(MdevctlOut {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `mdevctl start|define --parent ADDR --jsonfile /dev/stdin [--uuid UUID]`; the UUID
    /// mdevctl made up when none was given.
    fn create_or_define(
        &self,
        sub: &str,
        what: &str,
        addr: &str,
        m: &parse::MdevDef,
    ) -> Result<Option<String>, VirError> {
        let json = crate::store::to_json_compact(&m.type_id, false, &m.attrs);
        let parent = format!("--parent={addr}");
        let uuid = m.uuid.as_ref().map(|u| format!("--uuid={u}"));
        let mut args = vec![sub, &parent, "--jsonfile=/dev/stdin"];
        if let Some(u) = &uuid {
            args.push(u);
        }
        let out = self.run(&args, Some(&json))?;
        if !out.ok {
            return Err(internal(format!(
                "Unable to {what} mediated device: {}",
                out.error()
            )));
        }
        let made = out.stdout.trim();
        Ok((!made.is_empty()).then(|| made.to_owned()))
    }

    /// `mdevctl list --dumpjson --defined`.
    fn list_defined(&self) -> Result<BTreeMap<String, Definition>, String> {
        let out = self
            .run(&["list", "--dumpjson", "--defined"], None)
            .map_err(|e| e.message)?;
        if !out.ok {
            return Err(out.stderr);
        }
        let defs = crate::store::parse_list(&out.stdout)
            .ok_or_else(|| "mdevctl JSON response contains no devices".to_owned())?;
        Ok(defs.into_iter().map(|d| (d.name(), d)).collect())
    }
}

// ----------------------------------------------------------------------------------------
// The persistent overlay.

/// Held across a store write and the matching state change, and by the store watcher's
/// re-read, so the watcher never reports (as made behind our back) a change we are making.
static STORE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn store_lock() -> std::sync::MutexGuard<'static, ()> {
    STORE_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Set once any definition was seen, so that hosts without any skip the scan.
static EVER_DEFINED: AtomicBool = AtomicBool::new(false);

/// Brings the device set in line with `state.defined`: an active mdev with a definition
/// is persistent (with its autostart and attributes), a definition without an active
/// device is an inactive device, a device whose definition went away is transient again
/// (active) or gone (inactive). Sends no events: the callers do.
pub fn reconcile(state: &mut DeviceState) {
    if state.defined.is_empty()
        && state.live_attrs.is_empty()
        && !EVER_DEFINED.load(Ordering::Relaxed)
    {
        return;
    }
    EVER_DEFINED.store(true, Ordering::Relaxed);
    let defined = state.defined.clone();
    let mut puts: Vec<(String, Option<Device>)> = Vec::new();
    let list = state.list();
    for d in list.iter() {
        if d.mdev().is_some() && d.is_persistent() && !defined.contains_key(d.name()) {
            if d.is_active() {
                let mut n = d.clone();
                n.set_state(true, false, false);
                if let Some(Cap::Mdev(m)) = n.cap_data_mut().first_mut() {
                    m.attrs.clear();
                }
                puts.push((d.name().to_owned(), Some(n)));
            } else {
                puts.push((d.name().to_owned(), None));
            }
        }
    }
    for (name, def) in &defined {
        let want = match list.get(name) {
            Some(d) if d.is_active() => {
                let mut n = d.clone();
                n.set_state(true, true, def.autostart);
                for c in n.cap_data_mut() {
                    if let Cap::Mdev(m) = c {
                        m.attrs = def.attrs.clone();
                    }
                }
                n
            }
            _ => inactive_device(list, def),
        };
        if list.get(name) != Some(&want) {
            puts.push((name.clone(), Some(want)));
        }
    }
    for (name, dev) in puts {
        state.put(&name, dev);
    }
    live_overlay(state);
}

/// Running mediated devices whose live attributes were changed (NodeDeviceUpdate with
/// AFFECT_LIVE, or their definition changed while they run) show those; the entry goes
/// when the device stops.
fn live_overlay(state: &mut DeviceState) {
    if state.live_attrs.is_empty() {
        return;
    }
    let list = state.list().clone();
    state.live_attrs.retain(|n, _| {
        list.get(n)
            .is_some_and(|d| d.is_active() && d.mdev().is_some())
    });
    let mut puts = Vec::new();
    for (name, attrs) in &state.live_attrs {
        let Some(d) = list.get(name) else { continue };
        if d.mdev().is_some_and(|m| &m.attrs != attrs) {
            let mut n = d.clone();
            for c in n.cap_data_mut() {
                if let Cap::Mdev(m) = c {
                    m.attrs = attrs.clone();
                }
            }
            puts.push(n);
        }
    }
    for d in puts {
        let name = d.name().to_owned();
        state.put(&name, Some(d));
    }
}

/// The device libvirt lists for a definition that is not running.
fn inactive_device(list: &DeviceList, def: &Definition) -> Device {
    let cap = MdevCap {
        type_id: def.type_id.clone(),
        uuid: def.uuid.clone(),
        parent_addr: def.parent_addr.clone(),
        iommu_group: 0,
        attrs: def.attrs.clone(),
    };
    let mut d = Device::new(def.name(), Cap::Mdev(Box::new(cap)));
    let parent = list
        .iter()
        .find(|p| p.mdev_parent_address().as_deref() == Some(def.parent_addr.as_str()))
        .map_or_else(|| "computer".to_owned(), |p| p.name().to_owned());
    d.set_parent(Some(parent));
    // libvirt re-reads the driver from sysfs for the XML: none without a device.
    d.set_state(false, true, def.autostart);
    d
}

/// Reads mdevctl's store into the device set. At start-up (`notify` false) without
/// events; later (the store changed behind our back) with DEFINED / UNDEFINED / UPDATE.
pub fn load_store(driver: &Driver, notify: bool) {
    let _g = store_lock();
    let new = match Mdevctl::get(driver.root()) {
        Some(m) => match m.list_defined() {
            Ok(d) => d,
            Err(e) => {
                warn!("failed to query mdevs from mdevctl: {}", e.trim_end());
                return;
            }
        },
        None => crate::store::load(driver.root()),
    };
    driver.apply(|state| {
        let changes = diff(&state.defined, &new);
        state.defined = new;
        if notify {
            changes
        } else {
            Vec::new()
        }
    });
}

fn diff(
    old: &BTreeMap<String, Definition>,
    new: &BTreeMap<String, Definition>,
) -> Vec<(String, Change)> {
    let mut out = Vec::new();
    for (n, d) in new {
        match old.get(n) {
            None => out.push((n.clone(), Change::Defined)),
            Some(o) if o != d => out.push((n.clone(), Change::Updated)),
            _ => {}
        }
    }
    for n in old.keys() {
        if !new.contains_key(n) {
            out.push((n.clone(), Change::Undefined));
        }
    }
    out
}

/// Follows the store directory (changes by mdevctl or by hand) and starts autostart
/// definitions whose parent appears. inotify tells when the store changed (then, as
/// libvirt does, the definitions are re-read after 100 ms, so a burst of writes is one
/// re-read); while the store directory cannot be watched (missing, inotify unavailable)
/// it is polled every 250 ms, and with inotify it is still compared every 5 s in case an
/// event was lost.
pub fn spawn_watcher(driver: std::sync::Arc<Driver>) {
    // The start-up pass runs before any client can define or change anything.
    let mut auto = Autostart::default();
    if Mdevctl::get(driver.root()).is_none() {
        auto.run(&driver);
    }
    let _ = std::thread::Builder::new()
        .name("mdev-store".into())
        .spawn(move || {
            crate::supervise::restarting("the mdev store watcher", |restarted| {
                if restarted {
                    load_store(&driver, true);
                }
                follow_store(&driver, &mut auto)
            })
        });
}

/// The store watcher's loop (see [`spawn_watcher`]).
fn follow_store(driver: &Driver, auto: &mut Autostart) {
    let root = driver.root().clone();
    let mut watch = StoreWatch::new(&root);
    let mut last = store_stamp(&root);
    let mut compared = Instant::now();
    loop {
        let tick = Duration::from_millis(250);
        let changed = match &mut watch {
            Some(w) => w.wait(tick),
            None => {
                std::thread::sleep(tick);
                false
            }
        };
        let watching = watch.as_ref().is_some_and(StoreWatch::watching);
        if changed {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(w) = &mut watch {
                w.wait(Duration::ZERO);
            }
        }
        if changed || !watching || compared.elapsed() >= Duration::from_secs(5) {
            compared = Instant::now();
            let now = store_stamp(&root);
            if now != last {
                last = now;
                load_store(driver, true);
            }
        }
        // With mdevctl, its udev rule starts autostart devices when their
        // parent appears (libvirt does nothing); without it, we do.
        if Mdevctl::get(driver.root()).is_none() {
            auto.run(driver);
        }
    }
}

/// inotify watches on the store directory and each parent directory in it.
struct StoreWatch {
    ino: nix::sys::inotify::Inotify,
    top: std::path::PathBuf,
    watched: std::collections::HashMap<nix::sys::inotify::WatchDescriptor, std::path::PathBuf>,
}

impl StoreWatch {
    fn new(root: &HostRoot) -> Option<StoreWatch> {
        use nix::sys::inotify::{InitFlags, Inotify};
        match Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK) {
            Ok(ino) => {
                let mut w = StoreWatch {
                    ino,
                    top: crate::store::dir(root),
                    watched: Default::default(),
                };
                w.add_watches();
                Some(w)
            }
            Err(e) => {
                warn!("inotify unavailable ({e}): polling mdevctl's store");
                None
            }
        }
    }

    /// Whether the store directory itself is watched.
    fn watching(&self) -> bool {
        self.watched.values().any(|p| *p == self.top)
    }

    fn add_watches(&mut self) {
        use nix::sys::inotify::AddWatchFlags as F;
        let mask = F::IN_CREATE
            | F::IN_DELETE
            | F::IN_MOVED_TO
            | F::IN_MOVED_FROM
            | F::IN_CLOSE_WRITE
            | F::IN_ATTRIB
            | F::IN_DELETE_SELF
            | F::IN_MOVE_SELF
            | F::IN_ONLYDIR;
        let mut dirs = vec![self.top.clone()];
        if let Ok(rd) = std::fs::read_dir(&self.top) {
            dirs.extend(
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        for d in dirs {
            if self.watched.values().any(|p| *p == d) {
                continue;
            }
            if let Ok(wd) = self.ino.add_watch(&d, mask) {
                self.watched.insert(wd, d);
            }
        }
    }

    /// Waits up to `timeout` for events; true when the store changed.
    fn wait(&mut self, timeout: Duration) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use nix::sys::inotify::AddWatchFlags as F;
        use std::os::fd::AsFd;
        let ms = PollTimeout::try_from(timeout.as_millis().min(60_000) as i32)
            .unwrap_or(PollTimeout::ZERO);
        let mut fds = [PollFd::new(self.ino.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, ms), Ok(n) if n > 0) {
            if !self.watching() {
                self.add_watches();
            }
            return false;
        }
        let mut changed = false;
        while let Ok(events) = self.ino.read_events() {
            if events.is_empty() {
                break;
            }
            for ev in events {
                changed = true;
                if ev
                    .mask
                    .intersects(F::IN_IGNORED | F::IN_DELETE_SELF | F::IN_MOVE_SELF)
                {
                    if let Some(p) = self.watched.remove(&ev.wd) {
                        let _ = self.ino.rm_watch(ev.wd);
                        debug!(dir = %p.display(), "store directory gone");
                    }
                }
            }
        }
        self.add_watches();
        changed
    }
}

/// Names, sizes and mtimes of every entry of the store.
fn store_stamp(root: &HostRoot) -> Vec<(String, u64, i128)> {
    let mut out = Vec::new();
    let top = crate::store::dir(root);
    let Ok(rd) = std::fs::read_dir(&top) else {
        return out;
    };
    for p in rd.flatten() {
        let pn = p.file_name().to_string_lossy().into_owned();
        if let Ok(files) = std::fs::read_dir(p.path()) {
            for f in files.flatten() {
                if let Ok(m) = f.metadata() {
                    let t = m
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos() as i128);
                    out.push((
                        format!("{pn}/{}", f.file_name().to_string_lossy()),
                        m.len(),
                        t,
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

/// Starts inactive autostart definitions when their parent appears, as mdevctl's udev
/// rule does on a parent's add event; at daemon start (the first pass) every autostart
/// definition whose parent is present, as at boot. Setting autostart, or defining an
/// autostart device, while the parent is present starts nothing (as with mdevctl).
#[derive(Default)]
struct Autostart {
    /// The device list of the last pass, and the parent addresses present in it.
    last: Option<(
        std::sync::Arc<DeviceList>,
        std::collections::HashSet<String>,
    )>,
}

impl Autostart {
    fn run(&mut self, driver: &Driver) {
        let list = driver.devices();
        if let Some((l, _)) = &self.last {
            if std::sync::Arc::ptr_eq(l, &list) {
                return;
            }
        }
        let parents: std::collections::HashSet<String> = list
            .iter()
            .filter_map(|d| d.mdev_parent_address())
            .collect();
        for d in list.iter().filter(|d| d.autostart() && !d.is_active()) {
            let Some(m) = d.mdev() else { continue };
            let appeared = parents.contains(&m.parent_addr)
                && self
                    .last
                    .as_ref()
                    .is_none_or(|(_, before)| !before.contains(&m.parent_addr));
            if !appeared {
                continue;
            }
            let Some(parent) = parent_by_addr(&list, &m.parent_addr) else {
                continue;
            };
            info!(device = d.name(), "autostarting mediated device");
            if let Err(e) = start_mdev(driver.root(), parent, &m.type_id, &m.uuid) {
                warn!(device = d.name(), "autostart failed: {}", e.message);
            } else {
                write_attrs(driver.root(), &m.uuid, &m.attrs);
            }
        }
        self.last = Some((list, parents));
    }
}

// ----------------------------------------------------------------------------------------
// Parsing with the driver's post-parse and validate callbacks.

// Every definition arrives in an RPC string, so libxml2's text-size limits (which our XML
// parser does not check) can never be reached; this fails to build if that stops holding.
const _: () = assert!((protocol::REMOTE_STRING_MAX as usize) < parse::MAX_TEXT_LENGTH);

/// virNodeDeviceDefParse + nodeDeviceDefPostParse + nodeDeviceDefValidate: the definition
/// and, for an mdev, the parent's address.
fn parse_def(
    list: &DeviceList,
    xml: &str,
    validate: bool,
) -> Result<(DeviceDef, Option<String>), VirError> {
    let def = parse::parse_definition(xml, validate).map_err(vir)?;
    let addr = post_parse(list, &def)?;
    Ok((def, addr))
}

/// nodeDeviceDefPostParse + nodeDeviceDefValidate: for an mdev, the parent's address.
fn post_parse(list: &DeviceList, def: &DeviceDef) -> Result<Option<String>, VirError> {
    let mut addr = None;
    if def.mdev().is_some() {
        let Some(parent) = def.parent.as_deref() else {
            return Err(err(67, "missing parent device"));
        };
        let Some(p) = list.get(parent) else {
            return Err(err(67, format!("invalid parent device '{parent}'")));
        };
        addr = p.mdev_parent_address();
        if addr.is_none() {
            return Err(err(
                32,
                format!("Unable to find address for parent device '{parent}'"),
            ));
        }
    }
    Ok(addr)
}

/// A new random (version 4) UUID for an mdev created without one, as mdevctl would make.
/// Without randomness the call fails with libvirt's message for that (virRandomBytes),
/// rather than making a UUID that could collide.
fn random_uuid() -> Result<String, VirError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| internal(format!("failed to generate byte stream: {e}")))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}

/// The parent device of a definition, by the address mdevctl uses.
fn parent_by_addr<'a>(list: &'a DeviceList, addr: &str) -> Option<&'a Device> {
    list.iter()
        .find(|p| p.mdev_parent_address().as_deref() == Some(addr))
}

/// What `mdevctl start` checks and does: the parent offers the type with an instance
/// left and the UUID is free; then the UUID goes to the type's `create`.
fn start_mdev(root: &HostRoot, parent: &Device, type_id: &str, uuid: &str) -> Result<(), VirError> {
    let fail = |m: String| internal(format!("Unable to start mediated device: {m}"));
    let addr = parent.mdev_parent_address().unwrap_or_default();
    let Some(sys) = parent.sysfs_path() else {
        return Err(fail(mdevctl_msg(format!(
            "Parent {addr} is not currently registered for mdev support"
        ))));
    };
    let types = root.join(sys).join("mdev_supported_types");
    if !types.is_dir() {
        return Err(fail(mdevctl_msg(format!(
            "Parent {addr} is not currently registered for mdev support"
        ))));
    }
    let tdir = types.join(type_id);
    if !tdir.is_dir() {
        return Err(fail(mdevctl_msg(format!(
            "MDEV type {type_id} is not supported by parent {addr}"
        ))));
    }
    if root.join("/sys/bus/mdev/devices").join(uuid).exists() {
        return Err(fail(mdevctl_msg(format!("Device {uuid} already exists"))));
    }
    let avail = std::fs::read_to_string(tdir.join("available_instances"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    if avail == Some(0) {
        return Err(fail(mdevctl_msg(format!(
            "No available instances of {type_id} on {addr}"
        ))));
    }
    debug!(uuid, type_id, parent = addr, "creating mediated device");
    std::fs::write(tdir.join("create"), uuid).map_err(|e| fail(mdevctl_msg(e)))
}

/// Waits for `found` to name a device, reading the device at `syspath` directly when the
/// uevent does not come (no monitor, e.g. a fake root).
fn wait_for(
    driver: &Driver,
    syspath: impl Fn() -> Option<String>,
    found: impl Fn(&DeviceList) -> Option<String>,
) -> Option<String> {
    let start = Instant::now();
    let limit = new_device_wait();
    let mut read_directly = false;
    loop {
        if let Some(n) = found(&driver.devices()) {
            return Some(n);
        }
        if start.elapsed() >= limit {
            return None;
        }
        if !read_directly && start.elapsed() >= Duration::from_secs(2) {
            if let Some(p) = syspath() {
                read_directly = true;
                let root = driver.root().clone();
                driver.apply(|state| {
                    match nodedev::discover_device(&root, &p, |x| state.name_at(x)) {
                        Some(dev) => vec![state.add(dev)],
                        None => Vec::new(),
                    }
                });
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mdev_syspath(root: &HostRoot, uuid: &str) -> Option<String> {
    let p = root.canonicalize(&root.join("/sys/bus/mdev/devices").join(uuid))?;
    let rel = p.strip_prefix(root.path()).ok()?;
    Some(format!("/{}", rel.display()))
}

fn find_mdev(list: &DeviceList, uuid: &str, addr: &str) -> Option<String> {
    list.iter()
        .find(|d| {
            d.is_active()
                && d.mdev()
                    .is_some_and(|m| m.uuid == uuid && m.parent_addr == addr)
        })
        .map(|d| d.name().to_owned())
}

// ----------------------------------------------------------------------------------------
// The API.

/// nodeDeviceCreateXML.
pub fn create_xml(driver: &Driver, xml: &str, validate: bool) -> Result<String, VirError> {
    let list = driver.devices();
    let (def, addr) = parse_def(&list, xml, validate)?;
    if def.scsi_host().is_some() {
        return crate::vhba::create(driver, &list, &def);
    }
    let Some(m) = def.mdev() else {
        return Err(unsupported());
    };
    if def.parent.is_none() {
        return Err(err(27, "cannot create a mediated device without a parent"));
    }
    let addr = addr.unwrap_or_default();
    if let Some(mc) = Mdevctl::get(driver.root()) {
        let made = mc.create_or_define("start", "start", &addr, m)?;
        let uuid = made.or_else(|| m.uuid.clone()).unwrap_or_default();
        let root = driver.root().clone();
        return wait_for(
            driver,
            || mdev_syspath(&root, &uuid),
            |l| find_mdev(l, &uuid, &addr),
        )
        .ok_or_else(VirError::unknown_cause);
    }
    let parent = parent_by_addr(&list, &addr).ok_or_else(|| {
        internal(format!(
            "unable to find parent device '{}'",
            def.parent.as_deref().unwrap_or("")
        ))
    })?;
    let uuid = match &m.uuid {
        Some(u) => u.clone(),
        None => random_uuid()?,
    };
    start_mdev(driver.root(), parent, &m.type_id, &uuid)?;
    write_attrs(driver.root(), &uuid, &m.attrs);
    let root = driver.root().clone();
    wait_for(
        driver,
        || mdev_syspath(&root, &uuid),
        |l| find_mdev(l, &uuid, &addr),
    )
    .ok_or_else(VirError::unknown_cause)
}

/// mdevctl writes the definition's attributes to the new device.
fn write_attrs(root: &HostRoot, uuid: &str, attrs: &[(String, String)]) {
    let dir = root.join("/sys/bus/mdev/devices").join(uuid);
    for (n, v) in attrs {
        if n.contains('/') {
            continue;
        }
        if let Err(e) = std::fs::write(dir.join(n), v) {
            warn!(uuid, attr = n, "cannot set mdev attribute: {e}");
        }
    }
}

/// nodeDeviceDefineXML.
pub fn define_xml(driver: &Driver, xml: &str, validate: bool) -> Result<String, VirError> {
    let list = driver.devices();
    let (def, addr) = parse_def(&list, xml, validate)?;
    let Some(m) = def.mdev() else {
        return Err(unsupported());
    };
    if def.parent.is_none() {
        return Err(err(27, "cannot define a mediated device without a parent"));
    }
    let parent_addr = addr.unwrap_or_default();
    if let Some(mc) = Mdevctl::get(driver.root()) {
        let _g = store_lock();
        let made = mc.create_or_define("define", "define", &parent_addr, m)?;
        let d = Definition {
            parent_addr,
            uuid: made.or_else(|| m.uuid.clone()).unwrap_or_default(),
            type_id: m.type_id.clone(),
            attrs: m.attrs.clone(),
            autostart: false,
        };
        return Ok(note_defined(driver, d));
    }
    let uuid = match &m.uuid {
        Some(u) => u.clone(),
        None => random_uuid()?,
    };
    // mdevctl refuses a UUID defined under another parent.
    if let Some(other) = list.iter().find(|d| {
        d.is_persistent()
            && d.mdev()
                .is_some_and(|x| x.uuid == uuid && x.parent_addr != parent_addr)
    }) {
        let _ = other;
        return Err(internal(format!(
            "Unable to define mediated device: {}",
            mdevctl_msg(format!(
                "Device {uuid} is already defined with a different parent"
            ))
        )));
    }
    // A running device keeps its autostart setting only through the definition.
    let d = Definition {
        parent_addr,
        uuid,
        type_id: m.type_id.clone(),
        attrs: m.attrs.clone(),
        autostart: false,
    };
    let _g = store_lock();
    crate::store::write(driver.root(), &d).map_err(|e| {
        internal(format!(
            "Unable to define mediated device: {}",
            mdevctl_msg(e)
        ))
    })?;
    Ok(note_defined(driver, d))
}

/// A definition just stored: DEFINED, or UPDATE for a redefinition. Call with the store
/// lock held.
fn note_defined(driver: &Driver, d: Definition) -> String {
    let name = d.name();
    driver.apply(|state| {
        let change = match state.defined.insert(name.clone(), d) {
            None => Change::Defined,
            Some(_) => Change::Updated,
        };
        vec![(name.clone(), change)]
    });
    name
}

fn lookup(list: &DeviceList, name: &str) -> Result<Device, VirError> {
    list.get(name)
        .cloned()
        .ok_or_else(|| err(53, format!("no node device with matching name '{name}'")))
}

/// nodeDeviceDestroy.
pub fn destroy(driver: &Driver, name: &str) -> Result<(), VirError> {
    let list = driver.devices();
    let dev = lookup(&list, name)?;
    if dev.has_cap(nodedev::CapType::ScsiHost) {
        return crate::vhba::destroy(driver, &list, &dev);
    }
    let Some(m) = dev.mdev() else {
        return Err(unsupported());
    };
    if !dev.is_active() {
        return Err(err(55, format!("Device '{name}' is not active")));
    }
    let root = driver.root();
    // vfio lets one user open a group: EBUSY means a guest has the device.
    let group = root.join("/dev/vfio").join(m.iommu_group.to_string());
    if let Err(e) = std::fs::File::open(&group) {
        if e.raw_os_error() == Some(nix::libc::EBUSY) {
            return Err(internal(format!(
                "Unable to destroy '{name}': device in use"
            )));
        }
    }
    if let Some(mc) = Mdevctl::get(root) {
        let out = mc.run(&["stop", &format!("--uuid={}", m.uuid)], None)?;
        if !out.ok {
            return Err(internal(format!(
                "Unable to destroy '{name}': {}",
                out.error()
            )));
        }
        return Ok(());
    }
    let remove = root
        .join("/sys/bus/mdev/devices")
        .join(&m.uuid)
        .join("remove");
    std::fs::write(&remove, "1")
        .map_err(|e| internal(format!("Unable to destroy '{name}': {}", mdevctl_msg(e))))
}

/// nodeDeviceUndefine.
pub fn undefine(driver: &Driver, name: &str) -> Result<(), VirError> {
    let list = driver.devices();
    let dev = lookup(&list, name)?;
    if !dev.is_persistent() {
        return Err(err(55, format!("Node device '{name}' is not defined")));
    }
    if dev.mdev().is_none() {
        return Err(unsupported());
    }
    let def = {
        let mut found = None;
        driver.apply(|state| {
            found = state.defined.get(name).cloned();
            Vec::new()
        });
        found
    };
    let Some(def) = def else {
        return Err(err(55, format!("Node device '{name}' is not defined")));
    };
    let _g = store_lock();
    if let Some(mc) = Mdevctl::get(driver.root()) {
        let out = mc.run(&["undefine", &format!("--uuid={}", def.uuid)], None)?;
        if !out.ok {
            return Err(internal(format!(
                "Unable to undefine mediated device: {}",
                out.error()
            )));
        }
    } else {
        crate::store::remove(driver.root(), &def).map_err(|e| {
            internal(format!(
                "Unable to undefine mediated device: {}",
                mdevctl_msg(e)
            ))
        })?;
    }
    driver.apply(|state| {
        if state.defined.remove(name).is_some() {
            vec![(name.to_owned(), Change::Undefined)]
        } else {
            Vec::new()
        }
    });
    Ok(())
}

/// nodeDeviceCreate: starts a defined mdev.
pub fn start(driver: &Driver, name: &str) -> Result<(), VirError> {
    let list = driver.devices();
    let dev = lookup(&list, name)?;
    let Some(m) = dev.mdev() else {
        return Err(unsupported());
    };
    let fail = |m: String| internal(format!("Unable to create mediated device: {m}"));
    if let Some(mc) = Mdevctl::get(driver.root()) {
        let out = mc.run(&["start", &format!("--uuid={}", m.uuid)], None)?;
        if !out.ok {
            return Err(fail(out.error()));
        }
        return Ok(());
    }
    let Some(parent) = parent_by_addr(&list, &m.parent_addr) else {
        return Err(fail(mdevctl_msg(format!(
            "Unable to find parent device '{}'",
            m.parent_addr
        ))));
    };
    start_mdev(driver.root(), parent, &m.type_id, &m.uuid).map_err(|e| {
        let detail = e.str2.unwrap_or_default();
        fail(
            detail
                .strip_prefix("Unable to start mediated device: ")
                .unwrap_or(&detail)
                .to_owned(),
        )
    })?;
    write_attrs(driver.root(), &m.uuid, &m.attrs);
    Ok(())
}

/// nodeDeviceSetAutostart.
pub fn set_autostart(driver: &Driver, name: &str, autostart: bool) -> Result<(), VirError> {
    let list = driver.devices();
    let dev = lookup(&list, name)?;
    if dev.mdev().is_none() {
        return Err(err(84, "Unsupported device type"));
    }
    if !dev.is_persistent() {
        return Err(err(55, "cannot set autostart for transient device"));
    }
    if dev.autostart() == autostart {
        return Ok(());
    }
    let mut def = None;
    driver.apply(|state| {
        def = state.defined.get(name).cloned();
        Vec::new()
    });
    let Some(mut def) = def else {
        return Err(err(55, "cannot set autostart for transient device"));
    };
    def.autostart = autostart;
    let _g = store_lock();
    if let Some(mc) = Mdevctl::get(driver.root()) {
        let mode = if autostart { "--auto" } else { "--manual" };
        let out = mc.run(&["modify", "--uuid", &def.uuid, mode], None)?;
        if !out.ok {
            let e = if out.stderr.is_empty() {
                "Unknown Error".to_owned()
            } else {
                out.stderr
            };
            return Err(internal(format!(
                "Unable to set autostart on '{name}': {e}"
            )));
        }
    } else {
        crate::store::write(driver.root(), &def).map_err(|e| {
            internal(format!(
                "Unable to set autostart on '{name}': {}",
                mdevctl_msg(e)
            ))
        })?;
    }
    // libvirt re-reads mdevctl's store when it changes and finds the autostart setting
    // changed: an update event.
    driver.apply(|state| {
        state.defined.insert(name.to_owned(), def);
        vec![(name.to_owned(), Change::Updated)]
    });
    Ok(())
}

// ----------------------------------------------------------------------------------------
// NodeDeviceUpdate and the inactive XML (libvirt 10.1.0).

/// VIR_NODE_DEVICE_UPDATE_AFFECT_LIVE.
pub const UPDATE_AFFECT_LIVE: u32 = 1;
/// VIR_NODE_DEVICE_UPDATE_AFFECT_CONFIG.
pub const UPDATE_AFFECT_CONFIG: u32 = 2;

/// The stored definition of a device, if it has one.
fn definition(driver: &Driver, name: &str) -> Option<Definition> {
    let mut def = None;
    driver.apply(|state| {
        def = state.defined.get(name).cloned();
        Vec::new()
    });
    def
}

/// GetXMLDesc with VIR_NODE_DEVICE_XML_INACTIVE: the defined configuration (type and
/// attributes) of a persistent device; `dev` is the device as re-read for its XML.
pub fn inactive_xml(driver: &Driver, dev: &Device) -> Result<String, VirError> {
    if !dev.is_persistent() {
        return Err(err(
            55,
            format!("node device '{}' is not persistent", dev.name()),
        ));
    }
    let Some(def) = definition(driver, dev.name()) else {
        return Ok(dev.to_xml());
    };
    let mut d = dev.clone();
    for c in d.cap_data_mut() {
        if let Cap::Mdev(m) = c {
            m.type_id = def.type_id.clone();
            m.attrs = def.attrs.clone();
        }
    }
    Ok(d.to_xml())
}

/// virNodeDeviceObjUpdateModificationImpact: CURRENT means LIVE for an active device and
/// CONFIG for an inactive one; LIVE needs an active device, CONFIG a persistent one.
fn modification_impact(dev: &Device, mut flags: u32) -> Result<u32, VirError> {
    let active = dev.is_active();
    if flags & (UPDATE_AFFECT_LIVE | UPDATE_AFFECT_CONFIG) == 0 {
        flags |= if active {
            UPDATE_AFFECT_LIVE
        } else {
            UPDATE_AFFECT_CONFIG
        };
    }
    if !active && flags & UPDATE_AFFECT_LIVE != 0 {
        return Err(err(55, "node device is not active"));
    }
    if !dev.is_persistent() && flags & UPDATE_AFFECT_CONFIG != 0 {
        return Err(err(
            55,
            "transient node devices do not have any persistent config",
        ));
    }
    Ok(flags)
}

/// nodeDeviceDefValidateUpdate: same UUID and parent; for a live update the type of the
/// running device.
fn validate_update(
    name: &str,
    cur: &MdevCap,
    new: &parse::MdevDef,
    new_addr: &str,
    live: bool,
) -> Result<(), VirError> {
    if new.uuid.as_deref() != Some(cur.uuid.as_str()) {
        // Upstream's text lacks the quote after the name.
        return Err(err(
            67,
            format!(
                "Cannot update device '{name}, uuid mismatch (current uuid '{}')",
                cur.uuid
            ),
        ));
    }
    if live && new.type_id != cur.type_id {
        return Err(err(
            67,
            format!(
                "Cannot update device '{name}', type mismatch (current type '{}')",
                cur.type_id
            ),
        ));
    }
    if new_addr != cur.parent_addr {
        return Err(err(
            67,
            format!(
                "Cannot update device '{name}', parent address mismatch (current parent address '{}')",
                cur.parent_addr
            ),
        ));
    }
    Ok(())
}

/// nodeDeviceUpdate (flags already checked, the device looked up by the caller): changes
/// the definition (AFFECT_CONFIG) and/or the attributes of the running device
/// (AFFECT_LIVE) of a mediated device; an UPDATE event for each configuration that changed.
pub fn update(driver: &Driver, name: &str, xml: &str, flags: u32) -> Result<(), VirError> {
    let list = driver.devices();
    let dev = lookup(&list, name)?;
    let (_, def) = parse::parse_existing(xml).map_err(vir)?;
    let addr = post_parse(&list, &def)?;
    let (Some(cur), Some(new)) = (dev.mdev(), def.mdev()) else {
        return Err(unsupported());
    };
    let flags = modification_impact(&dev, flags)?;
    let live = flags & UPDATE_AFFECT_LIVE != 0;
    let config = flags & UPDATE_AFFECT_CONFIG != 0;
    let addr = addr.unwrap_or_default();
    validate_update(name, cur, new, &addr, live)?;
    let fail = |m: String| internal(format!("Unable to modify mediated device: {m}"));
    let _g = store_lock();
    let stored = definition(driver, name);
    let new_def = Definition {
        parent_addr: addr.clone(),
        uuid: cur.uuid.clone(),
        type_id: new.type_id.clone(),
        attrs: new.attrs.clone(),
        // The XML has no autostart: the definition keeps its own.
        autostart: stored.as_ref().is_some_and(|d| d.autostart),
    };
    if let Some(mc) = Mdevctl::get(driver.root()) {
        // libvirt first asks whether this mdevctl knows `modify --defined --live --jsonfile`
        // (mdevctl 1.3.0 and later).
        let probe = mc.run(
            &["modify", "--defined", "--live", "--jsonfile", "b", "--help"],
            None,
        )?;
        if !probe.ok {
            warn!("Installed mdevctl version does not support modify with options jsonfile, defined and live");
            return Err(err(
                84,
                "Unable to modify mediated device: modify unsupported",
            ));
        }
        let json =
            crate::store::to_json_compact(&new_def.type_id, new_def.autostart, &new_def.attrs);
        let parent = format!("--parent={addr}");
        let uuid = format!("--uuid={}", cur.uuid);
        let mut args = vec!["modify", &parent, "--jsonfile=/dev/stdin", &uuid];
        if config {
            args.push("--defined");
        }
        if live {
            args.push("--live");
        }
        let out = mc.run(&args, Some(&json))?;
        if !out.ok {
            return Err(fail(out.error()));
        }
    } else {
        // mdevctl's rule for a live and stored modify: the stored type must be the
        // running one.
        if live && config && stored.as_ref().is_some_and(|d| d.type_id != cur.type_id) {
            return Err(fail(mdevctl_msg(
                "'type' of active and defined mdev does not match",
            )));
        }
        if live {
            set_live_attrs(driver.root(), &cur.uuid, &new.attrs).map_err(fail)?;
        }
        if config {
            crate::store::write(driver.root(), &new_def).map_err(|e| fail(mdevctl_msg(e)))?;
        }
    }
    let running_attrs = cur.attrs.clone();
    driver.apply(|state| {
        let mut changes = Vec::new();
        if config {
            if stored.as_ref() != Some(&new_def) {
                changes.push((name.to_owned(), Change::Updated));
            }
            state.defined.insert(name.to_owned(), new_def.clone());
            // The running device keeps what it runs with.
            if dev.is_active() && !live {
                state
                    .live_attrs
                    .entry(name.to_owned())
                    .or_insert(running_attrs.clone());
            }
        }
        if live {
            if running_attrs != new.attrs {
                changes.push((name.to_owned(), Change::Updated));
            }
            state.live_attrs.insert(name.to_owned(), new.attrs.clone());
        }
        changes
    });
    Ok(())
}

/// Writes a running mdev's attributes to sysfs in order, as mdevctl does when it starts a
/// device with them.
fn set_live_attrs(root: &HostRoot, uuid: &str, attrs: &[(String, String)]) -> Result<(), String> {
    let dir = root.join("/sys/bus/mdev/devices").join(uuid);
    for (n, v) in attrs {
        if n.is_empty() || n.contains('/') || n == "." || n == ".." {
            return Err(mdevctl_msg(format!("Invalid attribute name {n:?}")));
        }
        let path = dir.join(n);
        if !path.is_file() {
            return Err(mdevctl_msg(format!(
                "Invalid attribute {n} for device {uuid}"
            )));
        }
        std::fs::write(&path, v)
            .map_err(|e| mdevctl_msg(format!("Failed to write {v} to attribute {n}: {e}")))?;
    }
    Ok(())
}
