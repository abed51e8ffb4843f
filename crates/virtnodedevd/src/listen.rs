//! The daemon's files on disk: socket paths, listening sockets, the pid file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

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

/// Why a socket could not be set up; the texts are libvirt's (virnetsocket.c,
/// virutil.c). Each makes the daemon exit with `VIR_DAEMON_ERR_NETWORK`.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// `virGetGroupID`: neither a group name nor a number.
    #[error("invalid argument: Failed to parse group '{0}'")]
    Group(String),
    #[error("Failed to create socket: {}", strerror(.0))]
    Socket(Errno),
    /// `sun_path` holds 107 bytes and a NUL.
    #[error("Path {} too long for unix socket: {}", .0.display(), strerror(&Errno::ENAMETOOLONG))]
    PathTooLong(PathBuf),
    /// Ours: libvirt unlinks the path and steals a live daemon's socket.
    #[error("Failed to bind socket to '{}': another daemon is listening on it", .0.display())]
    InUse(PathBuf),
    #[error("Failed to bind socket to '{}': {}", .0.display(), strerror(.1))]
    Bind(PathBuf, Errno),
    /// The uid is libvirt's -1 ("leave it").
    #[error("Failed to change ownership of '{}' to -1:{}: {}", .0.display(), *.1 as i32, strerror(.2))]
    Chown(PathBuf, u32, Errno),
    #[error("Unable to listen on socket: {}", strerror(.0))]
    Listen(Errno),
}

/// `virGetGroupID`: a group name, else a number (`strtoul` base 10, whole string); a
/// leading `+` means a number only.
pub fn group_id(group: &str) -> Result<u32, ListenError> {
    let number = match group.strip_prefix('+') {
        Some(n) => n,
        None => {
            if let Ok(Some(g)) = nix::unistd::Group::from_name(group) {
                return Ok(g.gid.as_raw());
            }
            group
        }
    };
    parse_c_uint(number).ok_or_else(|| ListenError::Group(number.into()))
}

/// `virStrToLong_ui(s, NULL, 10, ..)`: C `strtoul` over the whole string (leading blanks
/// and a sign allowed; `-N` wraps to `2^32 - N`), fitting 32 bits.
fn parse_c_uint(s: &str) -> Option<u32> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u32 = digits.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// `virNetSocketListen`'s backlog: libvirt hands `max_queued_clients` (a `size_t`) to an
/// `int` parameter and uses 30 for anything not positive.
pub fn backlog(max_queued_clients: u32) -> i32 {
    match max_queued_clients as i32 {
        n if n > 0 => n,
        _ => 30,
    }
}

/// `virNetSocketNewListenUNIX` + `virNetSocketListen`: binds a listening socket at
/// `path` that has `mode` from the moment it exists, owned by group `gid` unless 0.
///
/// The mode comes from the umask, set to `~mode` around bind() as libvirt does, not from
/// a chmod afterwards, so the socket never exists with wider permissions. The umask is
/// process-wide: this must run while the daemon has a single thread (`main` binds
/// before any other thread starts), or another thread's files would be created under it.
///
/// libvirt unlinks whatever is at the path and binds, silently stealing the sockets of a
/// daemon that is still running. We only replace a socket file nobody answers on.
pub fn bind(path: &Path, mode: i32, gid: u32, backlog: i32) -> Result<UnixListener, ListenError> {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
    use nix::sys::stat::{umask, Mode};

    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(ListenError::Socket)?;
    // sizeof(sun_path) is 108 and libvirt keeps room for the NUL.
    if path.as_os_str().len() >= 108 {
        return Err(ListenError::PathTooLong(path.into()));
    }
    let addr = UnixAddr::new(path).map_err(|_| ListenError::PathTooLong(path.into()))?;
    if UnixStream::connect(path).is_ok() {
        return Err(ListenError::InUse(path.into()));
    }
    let _ = fs::remove_file(path);
    let old = umask(Mode::from_bits_truncate(!(mode as u32) & 0o777));
    let bound = socket::bind(fd.as_raw_fd(), &addr);
    umask(old);
    bound.map_err(|e| ListenError::Bind(path.into(), e))?;
    let finish = || {
        if gid != 0 {
            nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
                .map_err(|e| ListenError::Chown(path.into(), gid, e))?;
        }
        listen(&fd, backlog).map_err(ListenError::Listen)
    };
    if let Err(e) = finish() {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    let listener = UnixListener::from(fd);
    listener
        .set_nonblocking(true)
        .map_err(|e| ListenError::Listen(io_errno(&e)))?;
    Ok(listener)
}

/// listen(2) with libvirt's exact backlog: nix's `Backlog` refuses values at or above
/// `SOMAXCONN`, which libvirt passes on for the kernel to cap at `net.core.somaxconn`.
fn listen(fd: &OwnedFd, backlog: i32) -> nix::Result<()> {
    // SAFETY: listen() only reads its two integer arguments; `fd` is an open socket
    // owned by the caller for the duration of the call.
    let r = unsafe { nix::libc::listen(fd.as_raw_fd(), backlog) };
    Errno::result(r).map(drop)
}

/// The C library's text for `e`, as libvirt's `g_strerror()` gives it (nix's own table
/// words some differently: EAGAIN is "Try again" there).
pub fn strerror(e: &Errno) -> String {
    let text = io::Error::from_raw_os_error(*e as i32).to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn io_errno(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

/// `g_mkdir_with_parents(dir, 0777)` under `umask`, restoring the umask after: what
/// libvirt does for its run directory. Single-threaded callers only (see [`bind`]).
pub fn mkdir_with_parents(dir: &Path, umask: u32) -> Result<(), Errno> {
    use nix::sys::stat::{umask as set_umask, Mode};
    let old = set_umask(Mode::from_bits_truncate(umask));
    let r = fs::DirBuilder::new()
        .recursive(true)
        .mode(0o777)
        .create(dir);
    set_umask(old);
    match r {
        // g_mkdir_with_parents says ENOTDIR for an existing non-directory.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Errno::ENOTDIR),
        Err(e) => Err(io_errno(&e)),
        Ok(()) => Ok(()),
    }
}

/// The run directory libvirt's `main()` makes before anything else: `/run/libvirt`
/// (umask 022) for root, `$XDG_RUNTIME_DIR/libvirt` (umask 077) otherwise. Failing is
/// `VIR_DAEMON_ERR_RUNDIR` with this message.
pub fn ensure_rundir(privileged: bool) -> Result<(), String> {
    let (dir, mask) = if privileged {
        (PathBuf::from("/run/libvirt"), 0o022)
    } else {
        (user_runtime_dir().join("libvirt"), 0o077)
    };
    mkdir_with_parents(&dir, mask).map_err(|e| {
        format!(
            "unable to create rundir {}: {}",
            dir.display(),
            strerror(&e)
        )
    })
}

/// Why the pid file could not be taken; libvirt's texts (virpidfile.c). The daemon
/// exits with `VIR_DAEMON_ERR_PIDFILE`.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("Failed to open pid file '{}': {}", .0.display(), strerror(.1))]
    Open(PathBuf, Errno),
    #[error("Unable to check status of pid file '{}': {}", .0.display(), strerror(.1))]
    Stat(PathBuf, Errno),
    #[error("Failed to acquire pid file '{}': {}", .0.display(), strerror(.1))]
    Acquire(PathBuf, Errno),
    #[error("Failed to write to pid file '{}': {}", .0.display(), strerror(.1))]
    Write(PathBuf, Errno),
}

/// A pid file held locked for the daemon's life, so a second instance refuses to start.
///
/// As `virPidFileAcquirePath`: the parent directory is not created, the lock is a POSIX
/// record lock on the first byte (what libvirt's own tools test), the file is re-opened
/// if it was replaced while we waited, and the pid is written without a newline.
pub struct PidFile {
    path: PathBuf,
    _file: File,
}

impl PidFile {
    /// Takes the pid file, with libvirt's lock (a write lock on byte 0, which libvirt's
    /// own daemons and tools honour) and messages. The pid is written, synced and locked
    /// under a temporary name and then renamed into place, so that at any moment the path
    /// holds either no pid file or a complete one (libvirt truncates and writes in place,
    /// which a kill can leave empty). `tests/crash.rs` kills the daemon at each step
    /// (see `fault.rs`).
    pub fn acquire(path: &Path) -> Result<Self, PidFileError> {
        let p = || path.to_owned();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let prefix = format!(
            ".{}.tmp",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let tmp = dir.join(format!("{prefix}{}", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(|e| PidFileError::Open(p(), io_errno(&e)))?;
        fault::point(fault::PID_CREATED);
        let placed = (|| {
            lock_first_byte(&file).map_err(|e| PidFileError::Acquire(p(), e))?;
            write!(file, "{}", std::process::id())
                .map_err(|e| PidFileError::Write(p(), io_errno(&e)))?;
            fault::point(fault::PID_WRITTEN);
            file.sync_all()
                .map_err(|e| PidFileError::Write(p(), io_errno(&e)))?;
            fault::point(fault::PID_FSYNCED);
            Self::put_in_place(&tmp, path)
        })();
        if let Err(e) = placed {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
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
            _file: file,
        })
    }

    /// Renames the locked temporary `tmp` to `path` unless a running daemon holds the
    /// file there (libvirt's "Failed to acquire pid file").
    fn put_in_place(tmp: &Path, path: &Path) -> Result<(), PidFileError> {
        use nix::fcntl::{renameat2, RenameFlags};
        use std::os::unix::fs::MetadataExt;
        let p = || path.to_owned();
        let stat = |e: io::Error| PidFileError::Stat(p(), io_errno(&e));
        loop {
            match OpenOptions::new().write(true).open(path) {
                Ok(old) => {
                    lock_first_byte(&old).map_err(|e| PidFileError::Acquire(p(), e))?;
                    // Another start may have replaced the file between our open and
                    // our lock: the file we hold must still be the one at the path.
                    match fs::metadata(path) {
                        Ok(m) if m.ino() == old.metadata().map_err(stat)?.ino() => {}
                        Ok(_) => continue,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(stat(e)),
                    }
                    // The stale file stays locked (`old` open) until it is replaced.
                    return fs::rename(tmp, path)
                        .map_err(|e| PidFileError::Open(p(), io_errno(&e)));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Without NOREPLACE two starts could both find no file and both
                    // rename; one must see the other's.
                    match renameat2(None, tmp, None, path, RenameFlags::RENAME_NOREPLACE) {
                        Ok(()) => return Ok(()),
                        Err(Errno::EEXIST) => continue,
                        // A file system without RENAME_NOREPLACE.
                        Err(Errno::EINVAL) => {
                            return fs::rename(tmp, path)
                                .map_err(|e| PidFileError::Open(p(), io_errno(&e)))
                        }
                        Err(e) => return Err(PidFileError::Open(p(), e)),
                    }
                }
                Err(e) => return Err(PidFileError::Open(p(), io_errno(&e))),
            }
        }
    }
}

/// `virFileLock(fd, false, 0, 1, false)`: F_SETLK, a write lock on byte 0.
fn lock_first_byte(file: &File) -> Result<(), Errno> {
    use nix::fcntl::{fcntl, FcntlArg};
    use nix::libc;
    let fl = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 1,
        l_pid: 0,
    };
    fcntl(file.as_raw_fd(), FcntlArg::F_SETLK(&fl)).map(drop)
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
    fn pid_file_is_written_and_record_locked_like_libvirts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.pid");
        let first = PidFile::acquire(&path).unwrap();
        // POSIX locks never conflict within one process (a second instance is refused in
        // tests/service.rs); here, check the record lock libvirt's tools look for.
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        let ino = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&path).unwrap().ino()
        };
        assert!(
            locks.lines().any(|l| l.contains("POSIX")
                && l.contains("WRITE")
                && l.contains(&format!(":{ino} 0 0"))),
            "{locks}"
        );
        // Last: closing any descriptor of the file drops this process's POSIX locks.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        drop(first);
        assert!(!path.exists());
        let e = PidFile::acquire(&dir.path().join("missing/d.pid"))
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "Failed to open pid file '{}': No such file or directory",
                dir.path().join("missing/d.pid").display()
            )
        );
    }

    #[test]
    fn groups_are_names_then_numbers_like_vir_get_group_id() {
        assert_eq!(group_id("root").unwrap(), 0);
        assert_eq!(group_id("+0").unwrap(), 0);
        assert_eq!(group_id("12345").unwrap(), 12345);
        assert_eq!(group_id(" +7").unwrap(), 7);
        assert_eq!(group_id("-1").unwrap(), u32::MAX);
        for bad in ["vnd-no-such-group", "+root", "", "12x", "4294967296"] {
            let want = bad.strip_prefix('+').unwrap_or(bad);
            assert_eq!(
                group_id(bad).unwrap_err().to_string(),
                format!("invalid argument: Failed to parse group '{want}'")
            );
        }
    }

    #[test]
    fn backlog_is_max_queued_clients_or_30() {
        assert_eq!(backlog(1000), 1000);
        assert_eq!(backlog(20), 20);
        assert_eq!(backlog(0), 30);
        assert_eq!(backlog(u32::MAX), 30);
        assert_eq!(backlog(100_000), 100_000);
    }

    // Mode 0777 here: bind() sets the process umask to 0 for a moment, which can only
    // widen (never break) files other tests of this binary create meanwhile.
    #[test]
    fn stale_socket_is_replaced_but_live_one_is_not_stolen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let live = bind(&path, 0o777, 0, 5).unwrap();
        assert!(matches!(
            bind(&path, 0o777, 0, 5).unwrap_err(),
            ListenError::InUse(_)
        ));
        drop(live);
        bind(&path, 0o777, 0, 5).unwrap();
    }

    #[test]
    fn bind_failures_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/s");
        assert_eq!(
            bind(&path, 0o777, 0, 5).unwrap_err().to_string(),
            format!(
                "Failed to bind socket to '{}': No such file or directory",
                path.display()
            )
        );
        let long = dir.path().join("x".repeat(120));
        assert_eq!(
            bind(&long, 0o777, 0, 5).unwrap_err().to_string(),
            format!(
                "Path {} too long for unix socket: File name too long",
                long.display()
            )
        );
    }
}
