//! The one place where a test that cannot do its work here (a client, a tool, root or the
//! reference is missing) decides between failing and skipping. It fails, so that a green run
//! means the work was done; only a run that says so explicitly with
//! `VIRTNODEDEVD_ALLOW_SKIP=1` skips, with a note on stderr. `scripts/test` never sets it.
//!
//! Shared by the test crates of `virtnodedevd` and `nodedev` (the latter includes this file).

/// The variable a run sets to `1` to let tests skip what they cannot do here.
pub const ALLOW_SKIP: &str = "VIRTNODEDEVD_ALLOW_SKIP";

/// `what` is missing: panics, unless the run allows skipping; then notes the skip and
/// returns, and the caller leaves out the work that needs `what`.
#[track_caller]
pub fn skip_or_fail(what: &str) {
    if std::env::var_os(ALLOW_SKIP).is_some_and(|v| v == "1") {
        eprintln!("skipping: {what} not available ({ALLOW_SKIP}=1)");
        return;
    }
    panic!("{what} not available; set {ALLOW_SKIP}=1 to let the run skip what needs it");
}

/// `ok` when what the test needs (`what`) is there; otherwise [`skip_or_fail`] and `false`.
#[track_caller]
pub fn available(ok: bool, what: &str) -> bool {
    if !ok {
        skip_or_fail(what);
    }
    ok
}
