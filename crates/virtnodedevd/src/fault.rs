//! Fault injection for the crash-consistency tests (`tests/crash.rs`): the daemon kills
//! itself with SIGKILL at a named step of a store or pid-file write, so a test can prove
//! that a kill landed exactly there and then check what a restart finds.
//!
//! `VIRTNODEDEVD_FAULT=<point>[:<n>]` arms the `n`th (default first) time the daemon
//! reaches `<point>`; `VIRTNODEDEVD_FAULT_MARKER=<file>` names a file that receives the
//! point's name just before the kill. Both are read once, at the first point reached
//! (the pid file, before anything else happens).
//!
//! Why `debug_assertions` rather than a cargo feature: the integration tests run the
//! binary cargo builds for them, in the same profile, so a plain `cargo test` reaches the
//! hook with nothing to remember, while `cargo build --release` (what packagers ship)
//! compiles every point to nothing; a feature would either be forgotten by the test run
//! or, enabled through a dev-dependency on ourselves, leak into other builds through
//! feature unification.

/// Every injection point, in the order a write reaches them.
#[cfg_attr(not(debug_assertions), allow(dead_code))]
pub const POINTS: &[&str] = &[
    // mdevctl's store (store.rs).
    STORE_MKDIR,
    STORE_CREATED,
    STORE_WRITTEN,
    STORE_FSYNCED,
    STORE_RENAMED,
    STORE_REMOVED,
    STORE_DIR_FSYNCED,
    // The pid file (listen.rs).
    PID_CREATED,
    PID_WRITTEN,
    PID_FSYNCED,
    PID_RENAMED,
    PID_DIR_FSYNCED,
];

/// A directory of the store (`mdevctl.d` or a parent's) was created, its parent not
/// yet synced.
pub const STORE_MKDIR: &str = "store-mkdir";
/// The temporary file exists, empty.
pub const STORE_CREATED: &str = "store-created";
/// The temporary file holds the whole definition, not yet synced.
pub const STORE_WRITTEN: &str = "store-written";
/// The temporary file is on disk.
pub const STORE_FSYNCED: &str = "store-fsynced";
/// The temporary file replaced the definition; the directory is not yet synced.
pub const STORE_RENAMED: &str = "store-renamed";
/// A definition was unlinked; the directory is not yet synced.
pub const STORE_REMOVED: &str = "store-removed";
/// The write or removal is complete on disk; the daemon has not yet recorded it.
pub const STORE_DIR_FSYNCED: &str = "store-dir-fsynced";
pub const PID_CREATED: &str = "pid-created";
pub const PID_WRITTEN: &str = "pid-written";
pub const PID_FSYNCED: &str = "pid-fsynced";
/// The pid file is in place (renamed or linked); its directory is not yet synced.
pub const PID_RENAMED: &str = "pid-renamed";
pub const PID_DIR_FSYNCED: &str = "pid-dir-fsynced";

#[cfg(debug_assertions)]
mod armed {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;

    struct Plan {
        point: String,
        nth: u32,
        hits: AtomicU32,
        marker: Option<PathBuf>,
    }

    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();

    fn plan() -> Option<Plan> {
        let spec = std::env::var("VIRTNODEDEVD_FAULT").ok()?;
        let (point, nth) = match spec.split_once(':') {
            Some((p, n)) => (p, n.parse().ok()),
            None => (spec.as_str(), Some(1)),
        };
        // A misspelt point would never fire and a test would wait for nothing.
        assert!(
            super::POINTS.contains(&point) && nth.is_some_and(|n| n > 0),
            "VIRTNODEDEVD_FAULT: unknown fault point {spec:?}"
        );
        Some(Plan {
            point: point.to_owned(),
            nth: nth.unwrap_or(1),
            hits: AtomicU32::new(0),
            marker: std::env::var_os("VIRTNODEDEVD_FAULT_MARKER").map(PathBuf::from),
        })
    }

    pub fn point(name: &str) {
        let Some(p) = PLAN.get_or_init(plan) else {
            return;
        };
        if p.point != name || p.hits.fetch_add(1, Ordering::SeqCst) + 1 != p.nth {
            return;
        }
        if let Some(m) = &p.marker {
            let _ = std::fs::write(m, name);
        }
        // SIGKILL, not a panic or exit: no unwinding, no destructors (the pid file's
        // Drop would otherwise tidy up), exactly what a kill -9 or an OOM kill leaves.
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        std::process::abort();
    }
}

/// Kills the daemon here when a test armed this point.
#[cfg(debug_assertions)]
pub use armed::point;

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &str) {}
