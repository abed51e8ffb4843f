//! The daemon's files on disk: socket paths, listening sockets, the pid file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::cli::DAEMON_NAME;
use crate::fault;

/// Socket file paths (virDaemonUnixSocketPaths): the read-only socket exists only for a
/// privileged daemon; the admin socket only when the directory is the default one or the
/// daemon is privileged.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketPaths {
    pub rw: PathBuf,
    pub ro: Option<PathBuf>,
    pub admin: Option<PathBuf>,
}

/// `$XDG_RUNTIME_DIR`, or `$HOME/.cache` as glib falls back.
pub fn user_runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => home().join(".cache"),
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

impl SocketPaths {
    pub fn new(privileged: bool, unix_sock_dir: Option<&str>) -> Self {
        let (dir, custom) = match unix_sock_dir {
            Some(d) => (PathBuf::from(d), true),
            None if privileged => (PathBuf::from("/run/libvirt"), false),
            None => (user_runtime_dir().join("libvirt"), false),
        };
        Self {
            rw: dir.join(format!("{DAEMON_NAME}-sock")),
            ro: privileged.then(|| dir.join(format!("{DAEMON_NAME}-sock-ro"))),
            admin: (privileged || !custom).then(|| dir.join(format!("{DAEMON_NAME}-admin-sock"))),
        }
    }
}

/// The default pid file: /run/NAME.pid, or $XDG_RUNTIME_DIR/libvirt/NAME.pid.
pub fn default_pid_file(privileged: bool) -> PathBuf {
    if privileged {
        PathBuf::from(format!("/run/{DAEMON_NAME}.pid"))
    } else {
        user_runtime_dir()
            .join("libvirt")
            .join(format!("{DAEMON_NAME}.pid"))
    }
}

/// Binds a listening socket at `path` with `mode` and optional group.
///
/// libvirt unlinks whatever is at the path and binds, silently stealing the sockets of a
/// daemon that is still running. We only replace a socket file nobody answers on.
pub fn bind(path: &Path, mode: u32, gid: Option<u32>) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "Failed to bind socket to '{}': another daemon is listening on it",
                    path.display()
                ),
            ));
        }
        fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("Failed to bind socket to '{}': {e}", path.display()),
        )
    })?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    if let Some(gid) = gid {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))?;
    }
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A pid file held locked for the daemon's life, so a second instance refuses to start.
pub struct PidFile {
    path: PathBuf,
    _lock: Flock<File>,
}

impl PidFile {
    /// Takes the pid file. The pid is written, synced and locked under a temporary name
    /// and then put in place (truncating and writing in place, as libvirt does, leaves an
    /// empty file to a reader, or for good to a kill, in between): at any moment the path
    /// holds either no pid file or a complete one. `tests/crash.rs` kills the daemon at
    /// each step (see `fault.rs`).
    pub fn acquire(path: &Path) -> io::Result<Self> {
        let fail = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("Failed to acquire pid file '{}': {e}", path.display()),
            )
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        fs::create_dir_all(dir).map_err(fail)?;
        let prefix = format!(
            ".{}.tmp",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let tmp = dir.join(format!("{prefix}{}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(fail)?;
        fault::point(fault::PID_CREATED);
        let placed = (|| {
            let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
                .map_err(|(_, errno)| io::Error::from(errno))?;
            writeln!(lock, "{}", std::process::id())?;
            fault::point(fault::PID_WRITTEN);
            lock.sync_all()?;
            fault::point(fault::PID_FSYNCED);
            Self::put_in_place(&tmp, path)?;
            Ok(lock)
        })();
        let lock = match placed {
            Ok(l) => l,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(fail(e));
            }
        };
        fault::point(fault::PID_RENAMED);
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        fault::point(fault::PID_DIR_FSYNCED);
        // Temporaries of starts killed before their rename; any other start now in
        // progress cannot take the file from us, and fails.
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(Self {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// Renames the locked temporary `tmp` to `path` unless a running daemon holds the
    /// file there.
    fn put_in_place(tmp: &Path, path: &Path) -> io::Result<()> {
        use nix::fcntl::{renameat2, RenameFlags};
        use std::os::unix::fs::MetadataExt;
        loop {
            match File::open(path) {
                Ok(old) => {
                    let old = Flock::lock(old, FlockArg::LockExclusiveNonblock)
                        .map_err(|(_, errno)| io::Error::from(errno))?;
                    // Another start may have replaced the file between our open and
                    // our lock: the file we hold must still be the one at the path.
                    match fs::metadata(path) {
                        Ok(m) if m.ino() == old.metadata()?.ino() => {}
                        Ok(_) => continue,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    }
                    // The stale file stays locked until it is replaced.
                    return fs::rename(tmp, path);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Without NOREPLACE two starts could both find no file and both
                    // rename; one must see the other's.
                    match renameat2(None, tmp, None, path, RenameFlags::RENAME_NOREPLACE) {
                        Ok(()) => return Ok(()),
                        Err(nix::errno::Errno::EEXIST) => continue,
                        // A file system without RENAME_NOREPLACE.
                        Err(nix::errno::Errno::EINVAL) => return fs::rename(tmp, path),
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_follow_the_man_page() {
        let p = SocketPaths::new(true, None);
        assert_eq!(p.rw, PathBuf::from("/run/libvirt/virtnodedevd-sock"));
        assert_eq!(
            p.ro,
            Some(PathBuf::from("/run/libvirt/virtnodedevd-sock-ro"))
        );
        assert_eq!(
            p.admin,
            Some(PathBuf::from("/run/libvirt/virtnodedevd-admin-sock"))
        );
        let p = SocketPaths::new(true, Some("/tmp/x"));
        assert_eq!(p.rw, PathBuf::from("/tmp/x/virtnodedevd-sock"));
        assert_eq!(
            p.admin,
            Some(PathBuf::from("/tmp/x/virtnodedevd-admin-sock"))
        );
        let p = SocketPaths::new(false, Some("/tmp/x"));
        assert_eq!((p.ro, p.admin), (None, None));
    }

    #[test]
    fn a_second_pid_file_holder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.pid");
        let first = PidFile::acquire(&path).unwrap();
        let err = PidFile::acquire(&path).err().unwrap();
        assert!(err.to_string().starts_with("Failed to acquire pid file"));
        drop(first);
        assert!(!path.exists());
    }

    #[test]
    fn stale_socket_is_replaced_but_live_one_is_not_stolen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let live = bind(&path, 0o700, None).unwrap();
        assert_eq!(
            bind(&path, 0o700, None).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop(live);
        bind(&path, 0o700, None).unwrap();
    }
}
