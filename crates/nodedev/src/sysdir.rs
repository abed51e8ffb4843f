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

use std::ffi::OsStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rustix::fs::{AtFlags, Mode, OFlags};

/// A directory of the host, open.
#[derive(Debug)]
pub struct SysDir<'a> {
    fd: Fd<'a>,
    path: PathBuf,
}

/// Where a [`SysDir`]'s descriptor lives.
#[derive(Debug)]
enum Fd<'a> {
    /// The directory could not be opened: every lookup then fails as it would in a
    /// directory that does not exist.
    None,
    /// Opened for this use alone.
    Own(OwnedFd),
    /// A [`HeldDir`]'s, kept locked while in use (re-reads of one device take turns).
    Held(MutexGuard<'a, Option<OwnedFd>>),
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl SysDir<'static> {
    /// Opens `path` (inside the root). A directory that cannot be opened gives a handle in
    /// which nothing exists, so callers need no second way of failing.
    pub fn open(path: &Path) -> SysDir<'static> {
        SysDir {
            fd: open_dir(path).map_or(Fd::None, Fd::Own),
            path: path.to_path_buf(),
        }
    }
}

impl SysDir<'_> {
    /// Where the directory was opened (inside the root).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's own name.
    pub fn name(&self) -> Option<&str> {
        self.path.file_name().and_then(OsStr::to_str)
    }

    fn fd(&self) -> io::Result<&OwnedFd> {
        match &self.fd {
            Fd::None => None,
            Fd::Own(fd) => Some(fd),
            Fd::Held(slot) => slot.as_ref(),
        }
        .ok_or_else(not_found)
    }

    /// Whether the directory could be opened.
    pub fn is_open(&self) -> bool {
        self.fd().is_ok()
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
        self.fd()
            .is_ok_and(|fd| rustix::fs::fstat(fd).is_ok_and(|st| st.st_nlink == 0))
    }

    /// The target of the link `name`, read into a buffer on the stack; the closure gets it
    /// without an allocation.
    pub fn with_link<T>(&self, name: &str, f: impl FnOnce(&Path) -> T) -> io::Result<T> {
        // Uninitialized: zeroing a page per lookup cost more than the lookup's copy.
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); libc::PATH_MAX as usize];
        let fd = self.fd()?;
        let (target, _) = rustix::fs::readlinkat_raw(fd, name, &mut buf[..])?;
        Ok(f(Path::new(OsStr::from_bytes(target))))
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

fn open_dir(path: &Path) -> Option<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Directories held now by every [`HeldDir`], and how many may be.
static HELD: AtomicUsize = AtomicUsize::new(0);
static HELD_MAX: AtomicUsize = AtomicUsize::new(0);

/// How many directories [`HeldDir`]s may hold at once, all together (none until set): past
/// it, a query opens its directory for itself and closes it after (slower, never stale),
/// so a host of 100,000 devices does not pin 100,000 descriptors.
pub fn set_held_dirs_max(n: usize) {
    HELD_MAX.store(n, Ordering::Relaxed);
}

/// How many directories are held now.
pub fn held_dirs() -> usize {
    HELD.load(Ordering::Relaxed)
}

/// A device's directory, held open from its first re-read for as long as the device is
/// the same. Kept in the device itself, so it goes when the device goes, and costs a
/// device that is never asked about nothing but an empty slot. Not part of what a device
/// is: copies start empty, and any two compare equal.
#[derive(Default)]
pub struct HeldDir(Mutex<Option<OwnedFd>>);

impl HeldDir {
    /// The directory at `path` (inside the root): the held one, or opened now and held if
    /// the budget allows. The handle is the device's alone while in use.
    pub fn dir(&self, path: PathBuf) -> SysDir<'_> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return SysDir {
                fd: Fd::Held(slot),
                path,
            };
        }
        let Some(fd) = open_dir(&path) else {
            return SysDir { fd: Fd::None, path };
        };
        let reserved = HELD.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < HELD_MAX.load(Ordering::Relaxed)).then_some(n + 1)
        });
        if reserved.is_err() {
            return SysDir {
                fd: Fd::Own(fd),
                path,
            };
        }
        *slot = Some(fd);
        SysDir {
            fd: Fd::Held(slot),
            path,
        }
    }

    /// Lets go of the directory `dir` came from (it was deleted under the handle): the
    /// next query opens it anew.
    pub fn forget(&self, dir: SysDir<'_>) {
        drop(dir);
        self.release();
    }

    fn release(&self) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.take().is_some() {
            HELD.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for HeldDir {
    fn drop(&mut self) {
        self.release();
    }
}

impl Clone for HeldDir {
    fn clone(&self) -> Self {
        HeldDir::default()
    }
}

impl PartialEq for HeldDir {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for HeldDir {}

impl std::fmt::Debug for HeldDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldDir")
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
    fn held_directories_stay_within_the_budget_and_go_with_their_holder() {
        let t = tempfile::tempdir().unwrap();
        for i in 0..3 {
            std::fs::create_dir_all(t.path().join(format!("d{i}"))).unwrap();
        }
        // The only test of this crate that holds directories: the count is its own.
        set_held_dirs_max(2);
        let held: Vec<HeldDir> = (0..3).map(|_| HeldDir::default()).collect();
        for (i, h) in held.iter().enumerate() {
            assert!(h.dir(t.path().join(format!("d{i}"))).is_open());
        }
        assert_eq!(held_dirs(), 2);
        // A copy holds nothing of its own.
        let copy = held[0].clone();
        drop(copy);
        assert_eq!(held_dirs(), 2);
        held[0].forget(held[0].dir(t.path().join("d0")));
        assert_eq!(held_dirs(), 1);
        // A directory that is not there is never held.
        assert!(!held[0].dir(t.path().join("none")).is_open());
        assert_eq!(held_dirs(), 1);
        drop(held);
        assert_eq!(held_dirs(), 0);
        set_held_dirs_max(0);
    }
}
