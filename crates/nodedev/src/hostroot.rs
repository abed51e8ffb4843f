//! The one place that knows where the host's filesystems are.
//!
//! Every read of sysfs, the udev database, `/dev` or data files goes through
//! a [`HostRoot`], so that tests (and the differential test against libvirt)
//! can point discovery at a fake tree built by `fakesys`.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::sysdir::{HeldDir, SysDir};

/// Root directory under which `sys/`, `run/udev/`, `dev/` and `usr/` are found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRoot {
    root: PathBuf,
    /// `sys/class`, held for the lookups every interface's re-read makes there.
    class: Arc<HeldDir>,
}

impl Default for HostRoot {
    fn default() -> Self {
        HostRoot::at(PathBuf::from("/"))
    }
}

impl HostRoot {
    /// A host root at `path`. The path is canonicalized when it exists so that
    /// canonical sysfs paths can be mapped back to what the host would show.
    pub fn new(path: impl AsRef<Path>) -> Self {
        let p = path.as_ref();
        HostRoot::at(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
    }

    fn at(root: PathBuf) -> Self {
        HostRoot {
            root,
            class: Arc::default(),
        }
    }

    /// `<root>/sys/class`, held open.
    pub fn class_dir(&self) -> SysDir<'_> {
        self.class.dir(self.join("/sys/class"))
    }

    /// Whether this is the host itself, whose `/sys` is the kernel's: some guarantees of
    /// sysfs hold there that a fake tree may break.
    pub fn is_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The root directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `<root>/sys`
    pub fn sys(&self) -> PathBuf {
        self.root.join("sys")
    }

    /// `<root>/run/udev` (the udev database lives in `data/` below it).
    pub fn run_udev(&self) -> PathBuf {
        self.root.join("run/udev")
    }

    /// `<root>/dev`
    pub fn dev(&self) -> PathBuf {
        self.root.join("dev")
    }

    /// Map an absolute host path such as `/sys/class/net/eth0` into the root.
    pub fn join(&self, host_path: &str) -> PathBuf {
        self.root.join(host_path.trim_start_matches('/'))
    }

    /// Map a path inside the root back to the path the host would show
    /// (`<root>/sys/devices/x` -> `/sys/devices/x`). libvirt over a fake tree
    /// sees bind-mounted paths, so this is what it prints.
    pub fn host_path(&self, p: &Path) -> String {
        match p.strip_prefix(&self.root) {
            Ok(rel) => {
                let mut s = String::from("/");
                s.push_str(&rel.to_string_lossy());
                s
            }
            Err(_) => p.to_string_lossy().into_owned(),
        }
    }

    /// Resolve a sysfs `bus/X/devices/NAME` or `class/X/NAME` entry. Such
    /// links point straight at a device's canonical directory under
    /// `sys/devices`, which contains no symlinked directories in sysfs, so
    /// one `readlink` plus one `stat` does what [`Self::canonicalize`] does
    /// with a `stat` per path component. Anything else takes the slow path.
    pub fn resolve_device_link(&self, link: &Path) -> Option<PathBuf> {
        let target = match std::fs::read_link(link) {
            Ok(t) => t,
            Err(_) => return self.canonicalize(link),
        };
        let mut out = if target.is_absolute() {
            self.root.clone()
        } else {
            link.parent()?.to_path_buf()
        };
        for c in target.components() {
            match c {
                Component::Normal(s) => out.push(s),
                // `..` pops in the guard; climbing out of the root bails out.
                Component::ParentDir if out == self.root || !out.pop() => {
                    return self.canonicalize(link);
                }
                _ => {}
            }
        }
        let devices = self.root.join("sys/devices");
        if out.starts_with(&devices) && std::fs::symlink_metadata(&out).is_ok_and(|m| m.is_dir()) {
            Some(out)
        } else {
            self.canonicalize(link)
        }
    }

    /// Resolve symlinks in `p` (which must be inside the root), without ever
    /// leaving the root: absolute link targets are taken relative to the root.
    /// Returns `None` when some component does not exist.
    pub fn canonicalize(&self, p: &Path) -> Option<PathBuf> {
        let rel = p.strip_prefix(&self.root).ok()?;
        let mut out = self.root.clone();
        let mut pending: Vec<std::ffi::OsString> = rel
            .components()
            .rev()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            if c == ".." {
                if out != self.root {
                    out.pop();
                }
                continue;
            }
            out.push(&c);
            let md = std::fs::symlink_metadata(&out).ok()?;
            if md.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = std::fs::read_link(&out).ok()?;
                out.pop();
                if target.is_absolute() {
                    out = self.root.clone();
                }
                for tc in target.components().rev() {
                    match tc {
                        Component::Normal(s) => pending.push(s.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
        }
        Some(out)
    }
}

/// The most of one file [`read`] returns: sysfs attributes are at most a page, PCI VPD
/// 32 KiB, a udev database entry a few KiB; a huge file planted in the tree is cut short
/// rather than read whole.
pub const READ_MAX: u64 = 1 << 20;

/// `std::fs::read` that never blocks and never reads more than [`READ_MAX`]: the file is
/// opened with `O_NONBLOCK`, so a FIFO planted where a sysfs attribute belongs reads as
/// empty instead of hanging discovery (regular files are unaffected).
pub fn read(p: impl AsRef<Path>) -> std::io::Result<Vec<u8>> {
    read_at_most(p, READ_MAX)
}

/// [`read`] with another bound than [`READ_MAX`] (for files the kernel's own attributes
/// are not: `modules.alias` is about a megabyte).
pub fn read_at_most(p: impl AsRef<Path>, max: u64) -> std::io::Result<Vec<u8>> {
    read_fd(open_nonblocking(p)?, max)
}

/// Opens a file of the host for reading with `O_NONBLOCK`: a FIFO planted where a sysfs
/// attribute belongs cannot hang the open or a read (regular files are unaffected).
pub fn open_nonblocking(p: impl AsRef<Path>) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)
}

/// At most `max` bytes of an open file.
pub(crate) fn read_fd(f: std::fs::File, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::mem::MaybeUninit;
    // One read answers nearly every call: a sysfs attribute hands over its whole value at
    // once (at most a page), and a regular file all that fits; a short read is the end.
    // Read on the stack, kept at its exact size: values live on in the device model. The
    // page is left uninitialized: zeroing it cost more than the bytes read.
    let mut page = [MaybeUninit::<u8>::uninit(); 4096];
    let first = page.len().min(usize::try_from(max).unwrap_or(usize::MAX));
    let mut out = loop {
        match rustix::io::read(&f, &mut page[..first]) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r?.0.to_vec(),
        }
    };
    let n = out.len();
    if n == page.len() {
        f.take(max - n as u64).read_to_end(&mut out)?;
    }
    Ok(out)
}

/// [`read`] as UTF-8 text (an error when it is not UTF-8, like
/// `std::fs::read_to_string`).
pub fn read_to_string(p: impl AsRef<Path>) -> std::io::Result<String> {
    String::from_utf8(read(p)?).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_read_max() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; READ_MAX as usize * 2]).unwrap();
        assert_eq!(read(&big).unwrap().len() as u64, READ_MAX);
    }

    #[test]
    fn default_root_is_slash_and_paths_map_unchanged() {
        let r = HostRoot::default();
        assert_eq!(r.sys(), PathBuf::from("/sys"));
        assert_eq!(r.host_path(Path::new("/sys/devices/x")), "/sys/devices/x");
    }

    #[test]
    fn canonicalize_keeps_absolute_links_inside_root() {
        let d = tempfile::tempdir().unwrap();
        let r = HostRoot::new(d.path());
        std::fs::create_dir_all(d.path().join("sys/devices/a")).unwrap();
        std::fs::create_dir_all(d.path().join("sys/bus")).unwrap();
        std::os::unix::fs::symlink("/sys/devices/a", d.path().join("sys/bus/abs")).unwrap();
        std::os::unix::fs::symlink("../devices/a", d.path().join("sys/bus/rel")).unwrap();
        let a = r.canonicalize(&r.sys().join("bus/abs")).unwrap();
        let b = r.canonicalize(&r.sys().join("bus/rel")).unwrap();
        assert_eq!(a, b);
        assert_eq!(r.host_path(&a), "/sys/devices/a");
        assert_eq!(
            r.resolve_device_link(&r.sys().join("bus/abs")),
            Some(a.clone())
        );
        assert_eq!(r.resolve_device_link(&r.sys().join("bus/rel")), Some(a));
    }
}
