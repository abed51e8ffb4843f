//! Keeping the daemon's own threads alive. The RPC server isolates each call; the uevent
//! monitor and the mdev store watcher are threads of their own, and a panic there would
//! otherwise end hotplug or store following silently for the rest of the daemon's life.

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use tracing::error;

/// How long a thread that panicked waits before it runs again, so that a fault that
/// repeats costs a log line a second, not a core.
const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// Runs `body` until it returns. When it panics, logs the panic and runs it again after
/// [`RESTART_PAUSE`], telling it (`true`) that it restarted, so it can re-read what it may
/// have missed.
pub fn restarting(what: &str, mut body: impl FnMut(bool)) {
    let mut restarted = false;
    loop {
        match panic::catch_unwind(AssertUnwindSafe(|| body(restarted))) {
            Ok(()) => return,
            Err(p) => {
                error!(
                    "{what} failed: {}; restarting it",
                    rpc::server::panic_message(&*p)
                );
                std::thread::sleep(RESTART_PAUSE);
                restarted = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_body_runs_again_until_it_returns() {
        let mut runs = Vec::new();
        restarting("test body", |restarted| {
            runs.push(restarted);
            if runs.len() < 3 {
                panic!("fault number {}", runs.len());
            }
        });
        assert_eq!(runs, [false, true, true]);
    }
}
