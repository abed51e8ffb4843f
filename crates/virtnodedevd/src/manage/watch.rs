//! Following mdevctl's store behind the daemon's back, and autostart.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::inotify::WatchDescriptor;
use nodedev::HostRoot;
use tracing::{debug, info, warn};

use super::kernel::{parent_by_addr, start_mdev, write_attrs};
use super::mdevctl::Mdevctl;
use super::overlay::load_store;
use crate::driver::{Change, ChangeListener, DeviceList, Driver};

/// Tells the store watcher that the device set changed: a parent may have appeared, whose
/// autostart definitions are then started. Given to the driver beside the clients' events.
pub struct DeviceChanges {
    tx: UnixDatagram,
    rx: UnixDatagram,
    /// A wake-up is on its way: a storm of changes sends one.
    pending: AtomicBool,
}

impl DeviceChanges {
    pub fn new() -> std::io::Result<Self> {
        let (tx, rx) = UnixDatagram::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Self {
            tx,
            rx,
            pending: AtomicBool::new(false),
        })
    }

    /// Takes the wake-ups sent so far (changes after this send another).
    fn take(&self) {
        self.pending.store(false, Ordering::SeqCst);
        let mut buf = [0u8; 16];
        while self.rx.recv(&mut buf).is_ok() {}
    }
}

impl ChangeListener for DeviceChanges {
    fn changed(&self, _device: &str, _change: Change) {
        if !self.pending.swap(true, Ordering::SeqCst) {
            let _ = self.tx.send(&[1]);
        }
    }
}

/// Follows the store directory (changes by mdevctl or by hand) and starts autostart
/// definitions whose parent appears. inotify tells when the store changed (then, as
/// libvirt does, the definitions are re-read after 100 ms, so a burst of writes is one
/// re-read) and, while the store does not exist, when its nearest existing ancestor
/// gains an entry; the store is still compared every 5 s in case an event was lost.
/// Without inotify it is polled every 250 ms. The device set's changes wake the thread
/// for autostart; otherwise it sleeps.
pub fn spawn_watcher(driver: Arc<Driver>, changes: Arc<DeviceChanges>) {
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
                follow_store(&driver, &changes, &mut auto)
            })
        });
}

/// How often the store is compared without an event (inotify unavailable, or in case
/// one was lost).
const POLL: Duration = Duration::from_millis(250);
const COMPARE: Duration = Duration::from_secs(5);

/// The store watcher's loop (see [`spawn_watcher`]).
fn follow_store(driver: &Driver, changes: &DeviceChanges, auto: &mut Autostart) {
    let root = driver.root().clone();
    let mut watch = StoreWatch::new(&root);
    let mut last = store_stamp(&root);
    let mut compared = Instant::now();
    loop {
        let timeout = if watch.is_some() { COMPARE } else { POLL };
        let changed = match &mut watch {
            Some(w) => w.wait(timeout, changes),
            None => {
                std::thread::sleep(timeout);
                false
            }
        };
        if changed {
            std::thread::sleep(Duration::from_millis(100));
            if let Some(w) = &mut watch {
                w.wait(Duration::ZERO, changes);
            }
        }
        if changed || watch.is_none() || compared.elapsed() >= COMPARE {
            compared = Instant::now();
            let now = store_stamp(&root);
            if now != last {
                last = now;
                load_store(driver, true);
            }
        }
        changes.take();
        // With mdevctl, its udev rule starts autostart devices when their
        // parent appears (libvirt does nothing); without it, we do.
        if Mdevctl::get(driver.root()).is_none() {
            auto.run(driver);
        }
    }
}

/// inotify watches on the store directory and each parent directory in it; while the
/// store does not exist, on its nearest existing ancestor instead.
struct StoreWatch {
    ino: nix::sys::inotify::Inotify,
    top: PathBuf,
    /// Where the store will appear from, while it does not exist.
    ancestor: Option<(WatchDescriptor, PathBuf)>,
    watched: HashMap<WatchDescriptor, PathBuf>,
}

impl StoreWatch {
    fn new(root: &HostRoot) -> Option<StoreWatch> {
        use nix::sys::inotify::{InitFlags, Inotify};
        match Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK) {
            Ok(ino) => {
                let mut w = StoreWatch {
                    ino,
                    top: super::store::dir(root),
                    ancestor: None,
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
        self.follow_ancestor();
    }

    /// While the store is not watched, watches the nearest ancestor that exists for the
    /// entries that could lead to it; once it is, lets go of that ancestor.
    fn follow_ancestor(&mut self) {
        use nix::sys::inotify::AddWatchFlags as F;
        if self.watching() {
            self.drop_ancestor();
            return;
        }
        let nearest = self.top.ancestors().skip(1).find(|a| a.is_dir());
        let Some(nearest) = nearest.map(Path::to_path_buf) else {
            return;
        };
        if self.ancestor.as_ref().is_some_and(|(_, p)| *p == nearest) {
            return;
        }
        self.drop_ancestor();
        let mask =
            F::IN_CREATE | F::IN_MOVED_TO | F::IN_DELETE_SELF | F::IN_MOVE_SELF | F::IN_ONLYDIR;
        if let Ok(wd) = self.ino.add_watch(&nearest, mask) {
            self.ancestor = Some((wd, nearest));
        }
    }

    fn drop_ancestor(&mut self) {
        if let Some((wd, _)) = self.ancestor.take() {
            let _ = self.ino.rm_watch(wd);
        }
    }

    /// Waits up to `timeout` for events on the store, or for a change of the device set;
    /// true when the store changed.
    fn wait(&mut self, timeout: Duration, changes: &DeviceChanges) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use nix::sys::inotify::AddWatchFlags as F;
        use std::os::fd::AsFd;
        let ms = PollTimeout::try_from(timeout.as_millis().min(60_000) as i32)
            .unwrap_or(PollTimeout::ZERO);
        let mut fds = [
            PollFd::new(self.ino.as_fd(), PollFlags::POLLIN),
            PollFd::new(changes.rx.as_fd(), PollFlags::POLLIN),
        ];
        let ready = matches!(poll(&mut fds, ms), Ok(n) if n > 0);
        if !ready {
            if !self.watching() {
                // An ancestor's event may have come before its watch did: look again.
                self.add_watches();
                return self.watching();
            }
            return false;
        }
        if !fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
        {
            return false;
        }
        let was_watching = self.watching();
        let mut changed = false;
        while let Ok(events) = self.ino.read_events() {
            if events.is_empty() {
                break;
            }
            for ev in events {
                if self.ancestor.as_ref().is_some_and(|(wd, _)| *wd == ev.wd) {
                    // The ancestor's entries are not the store's; a gone ancestor is
                    // replaced by the next one up below.
                    if ev.mask.intersects(F::IN_IGNORED | F::IN_DELETE_SELF) {
                        self.ancestor = None;
                    }
                    continue;
                }
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
        // The store just appeared: what was written into it before the watch existed
        // has sent no event, so it counts as a change.
        changed || (!was_watching && self.watching())
    }
}

/// Names, sizes and mtimes of every entry of the store.
fn store_stamp(root: &HostRoot) -> Vec<(String, u64, i128)> {
    let mut out = Vec::new();
    let top = super::store::dir(root);
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
    /// The device list of the last pass, and the addresses of the mdev parents in it.
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
        // A parent is one that offers mdev types: mdevctl's rule starts a parent's
        // devices on its "registered" change event, not on any device's add.
        let parents: std::collections::HashSet<String> = list
            .iter()
            .filter(|d| d.mdev_types().is_some())
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
                warn!(device = d.name(), "autostart failed: {}", e);
            } else {
                write_attrs(driver.root(), &m.uuid, &m.attrs);
            }
        }
        self.last = Some((list, parents));
    }
}
