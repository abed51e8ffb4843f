//! Following mdevctl's store behind the daemon's back, and autostart.

use std::time::{Duration, Instant};

use nodedev::HostRoot;
use tracing::{debug, info, warn};

use super::kernel::{parent_by_addr, start_mdev, write_attrs};
use super::mdevctl::Mdevctl;
use super::overlay::load_store;
use crate::driver::{DeviceList, Driver};

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
                    top: super::store::dir(root),
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
                // The store just appeared: what was written into it before the watch
                // existed has sent no event, so it counts as a change.
                return self.watching();
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
