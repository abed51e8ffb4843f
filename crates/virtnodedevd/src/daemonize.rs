//! `-d`: libvirt's `virDaemonForkIntoBackground`. The process forks twice (the middle
//! child calls setsid, so the daemon has no controlling terminal) and the original
//! process waits on a pipe for one status byte from the daemon: 0 once its sockets are
//! listening, or the `virDaemonErr` number of what failed. It then exits 0, or prints
//! libvirt's message and exits 1, so `virtnodedevd -d` in a script reports start-up
//! failures.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

use nix::unistd::{fork, ForkResult};

/// The daemon's end of the status pipe, until start-up is reported.
static STATUS: Mutex<Option<File>> = Mutex::new(None);

/// `virDaemonErr`: what failed at start-up. The daemon exits with this number (libvirt's
/// `main()` returns it) and a waiting `-d` parent prints its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DaemonErr {
    PidFile = 1,
    RunDir = 2,
    Init = 3,
    Signal = 4,
    Network = 6,
    Audit = 10,
}

impl DaemonErr {
    /// `virDaemonErrTypeToString`, for every number a daemon can send.
    fn text(status: u8) -> &'static str {
        match status {
            0 => "Initialization successful",
            1 => "Unable to obtain pidfile",
            2 => "Unable to create rundir",
            3 => "Unable to initialize libvirt",
            4 => "Unable to setup signal handlers",
            5 => "Unable to drop privileges",
            6 => "Unable to initialize network sockets",
            7 => "Unable to load configuration file",
            8 => "Unable to look for hook scripts",
            9 => "Unable to re-execute daemon",
            10 => "Unable to initialize audit system",
            11 => "Unable to initialize driver",
            _ => "unknown error",
        }
    }
}

/// Forks into the background. Returns in the daemon process only; the calling process
/// waits for the daemon's status and exits. Must run while the process has one thread.
pub fn fork_into_background(argv0: &str) -> std::io::Result<()> {
    std::env::set_current_dir("/").map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot change to root directory: {e}"))
    })?;
    let (rd, wr) = nix::unistd::pipe()?;
    // SAFETY: the process is single-threaded here (main() calls this before any runtime,
    // monitor or driver thread exists), so the child may run arbitrary code.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(rd);
            if detach().is_err() {
                std::process::exit(1);
            }
            // SAFETY: still single-threaded, as above.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    *STATUS.lock().unwrap_or_else(|e| e.into_inner()) = Some(File::from(wr));
                    Ok(())
                }
                Ok(ForkResult::Parent { .. }) => std::process::exit(0),
                Err(_) => std::process::exit(1),
            }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let ok = matches!(
                nix::sys::wait::waitpid(child, None),
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0))
            );
            if !ok {
                return Err(std::io::Error::other("the first child failed"));
            }
            let mut status = [0u8; 1];
            let mut f = File::from(rd);
            match f.read(&mut status) {
                Ok(1) if status[0] == 0 => std::process::exit(0),
                Ok(1) => {
                    eprintln!(
                        "{argv0}: error: {}. Check /var/log/messages or run without --daemon for more info.",
                        DaemonErr::text(status[0])
                    );
                    std::process::exit(1)
                }
                Ok(_) => {
                    eprintln!(
                        "{argv0}: error: unable to determine if daemon is running: daemon exited before start-up completed"
                    );
                    std::process::exit(1)
                }
                Err(e) => {
                    eprintln!("{argv0}: error: unable to determine if daemon is running: {e}");
                    std::process::exit(1)
                }
            }
        }
    }
}

/// stdin, stdout and stderr to /dev/null, then a new session.
fn detach() -> std::io::Result<()> {
    let null_in: OwnedFd = File::open("/dev/null")?.into();
    let null_out: OwnedFd = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")?
        .into();
    nix::unistd::dup2(null_in.as_raw_fd(), 0)?;
    nix::unistd::dup2(null_out.as_raw_fd(), 1)?;
    nix::unistd::dup2(null_out.as_raw_fd(), 2)?;
    nix::unistd::setsid()?;
    Ok(())
}

/// Tells a waiting parent that start-up succeeded (no-op without `-d`).
pub fn report_ready() {
    report(0);
}

/// Tells a waiting parent what failed (no-op without `-d` or after [`report_ready`]).
pub fn report_failure(err: DaemonErr) {
    report(err as u8);
}

fn report(status: u8) {
    if let Some(mut f) = STATUS.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = f.write_all(&[status]);
    }
}
