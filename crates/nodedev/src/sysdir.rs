//! A device's sysfs directory held open, so that what a query re-reads is reached with one
//! short name relative to it (`openat`, `readlinkat`, `statat`) instead of a walk down the
//! whole path each time. On sysfs the walk is most of a re-read's cost: a `stat` of
//! `/sys/devices/pci0000:00/0000:00:03.0/physfn` costs twice a `statat` of `physfn` from the
//! held directory, and reading `/sys/class/net/eth0/operstate` six times a read of
//! `operstate` from it.
//!
//! The handle is an `O_PATH` descriptor: it pins the directory, not a page of kernel buffer
//! like an open attribute would, and it never reads a value that may have gone stale:
//! every value is opened and read anew.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rustix::fs::{AtFlags, Mode, OFlags};

/// A directory of the host, held open.
#[derive(Debug)]
pub struct SysDir {
    /// `None` when the directory could not be opened: every lookup then fails as it would
    /// in a directory that does not exist.
    fd: Option<OwnedFd>,
    path: PathBuf,
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl SysDir {
    /// Opens `path` (inside the root). A directory that cannot be opened gives a handle in
    /// which nothing exists, so callers need no second way of failing.
    pub fn open(path: &Path) -> SysDir {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok();
        SysDir {
            fd,
            path: path.to_path_buf(),
        }
    }

    /// Where the directory was opened (inside the root).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's own name.
    pub fn name(&self) -> Option<&str> {
        self.path.file_name().and_then(OsStr::to_str)
    }

    fn fd(&self) -> io::Result<&OwnedFd> {
        self.fd.as_ref().ok_or_else(not_found)
    }

    /// Whether `name` exists, links followed (`access(F_OK)`).
    pub fn exists(&self, name: &str) -> bool {
        self.fd()
            .is_ok_and(|fd| rustix::fs::statat(fd, name, AtFlags::empty()).is_ok())
    }

    /// Whether `name` is a directory itself, not a link to one.
    pub fn is_real_dir(&self, name: &str) -> bool {
        self.fd().is_ok_and(|fd| {
            rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
        })
    }

    /// Whether the directory was deleted under the handle (a fake tree rebuilt): looked at
    /// on the handle alone, without a lookup. A removed sysfs directory is not seen this
    /// way (kernfs keeps its link count); its device's `remove` uevent, or the reading anew
    /// that follows lost uevents, lets go of the handle instead.
    pub fn is_deleted(&self) -> bool {
        self.fd
            .as_ref()
            .is_some_and(|fd| rustix::fs::fstat(fd).is_ok_and(|st| st.st_nlink == 0))
    }

    /// The target of the link `name`, read into a buffer on the stack; the closure gets it
    /// without an allocation.
    pub fn with_link<T>(&self, name: &str, f: impl FnOnce(&Path) -> T) -> io::Result<T> {
        let mut buf = [0u8; libc::PATH_MAX as usize];
        let fd = self.fd()?;
        let n = rustix::fs::readlinkat_raw(fd, name, &mut buf[..])?;
        Ok(f(Path::new(OsStr::from_bytes(&buf[..n]))))
    }

    /// The last component of the target of the link `name`, when it is UTF-8.
    pub fn link_name(&self, name: &str) -> io::Result<Option<String>> {
        self.with_link(name, |t| {
            t.file_name().and_then(OsStr::to_str).map(str::to_owned)
        })
    }

    /// The contents of the file `name`, like [`crate::hostroot::read_at_most`]: opened
    /// `O_NONBLOCK` (a planted FIFO reads as empty), at most `max` bytes, one read for a
    /// sysfs attribute.
    pub fn read(&self, name: &str, max: u64) -> io::Result<Vec<u8>> {
        let fd = rustix::fs::openat(
            self.fd()?,
            name,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )?;
        crate::hostroot::read_fd(std::fs::File::from(fd), max)
    }

    /// The names in the directory `name`, in directory order (`.` and `..` left out).
    pub fn entries(&self, name: &str) -> io::Result<Vec<String>> {
        let fd = rustix::fs::openat(
            self.fd()?,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut dir = rustix::fs::Dir::new(fd)?;
        let mut out = Vec::new();
        while let Some(e) = dir.read() {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                out.push(String::from_utf8_lossy(n).into_owned());
            }
        }
        Ok(out)
    }
}

/// The device directories re-read queries hold open, by host sysfs path. Bounded: past
/// `cap` directories a query opens its directory for itself and closes it after (slower,
/// never stale), so a host of 100,000 devices does not pin 100,000 descriptors.
pub struct SysDirs {
    dirs: Mutex<HashMap<String, Arc<SysDir>>>,
    cap: usize,
}

impl SysDirs {
    pub fn new(cap: usize) -> Self {
        Self {
            dirs: Mutex::new(HashMap::new()),
            cap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<SysDir>>> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The held directory of the device at `host_syspath` (a host path such as
    /// `/sys/devices/...`), opened now if it is not held yet.
    pub fn get(&self, root: &crate::HostRoot, host_syspath: &str) -> Arc<SysDir> {
        if let Some(d) = self.lock().get(host_syspath) {
            return d.clone();
        }
        let dir = Arc::new(SysDir::open(&root.join(host_syspath)));
        let mut dirs = self.lock();
        if dir.fd.is_some() && dirs.len() < self.cap {
            dirs.insert(host_syspath.to_owned(), dir.clone());
        }
        dir
    }

    /// Lets go of the directory held for `host_syspath` (the device went away, moved or
    /// was seen gone), so the next query opens it anew.
    pub fn forget(&self, host_syspath: &str) {
        self.lock().remove(host_syspath);
    }

    /// Lets go of every directory (the device set was read anew).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many directories are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_relative_to_the_held_directory() {
        let t = tempfile::tempdir().unwrap();
        let dev = t.path().join("dev");
        std::fs::create_dir_all(dev.join("sub/a")).unwrap();
        std::fs::write(dev.join("uevent"), "").unwrap();
        std::fs::write(dev.join("value"), "42\n").unwrap();
        std::os::unix::fs::symlink("../drivers/e1000e", dev.join("driver")).unwrap();
        let d = SysDir::open(&dev);
        assert!(!d.is_deleted());
        assert_eq!(d.read("value", 4096).unwrap(), b"42\n");
        assert_eq!(d.link_name("driver").unwrap().as_deref(), Some("e1000e"));
        // The link dangles: it is a link, but nothing exists behind it.
        assert!(!d.exists("driver"));
        assert!(d.is_real_dir("sub"));
        assert_eq!(d.entries("sub").unwrap(), ["a"]);
        assert_eq!(
            d.read("missing", 4096).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        // Deleted under the handle: nothing is found any more, and it says so.
        std::fs::remove_dir_all(&dev).unwrap();
        assert!(d.is_deleted());
        assert!(d.link_name("driver").is_err());
    }

    #[test]
    fn a_directory_that_cannot_be_opened_holds_nothing() {
        let d = SysDir::open(Path::new("/nonexistent/vnd-sysdir"));
        assert!(!d.is_deleted());
        assert!(!d.exists("uevent"));
        assert_eq!(d.read("x", 1).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn the_cache_stops_holding_at_its_bound() {
        let t = tempfile::tempdir().unwrap();
        for i in 0..3 {
            std::fs::create_dir_all(t.path().join(format!("sys/devices/d{i}"))).unwrap();
        }
        let root = crate::HostRoot::new(t.path());
        let dirs = SysDirs::new(2);
        for i in 0..3 {
            assert!(dirs.get(&root, &format!("/sys/devices/d{i}")).fd.is_some());
        }
        assert_eq!(dirs.len(), 2);
        dirs.forget("/sys/devices/d0");
        assert_eq!(dirs.len(), 1);
        // A directory that is not there is never held.
        dirs.get(&root, "/sys/devices/none");
        assert_eq!(dirs.len(), 1);
    }
}
