//! Every committed fuzz input, replayed on stable: `fuzz/seeds/TARGET` (captured and
//! hand-made, `fuzz/seeds/make.py`) and `fuzz/corpus/TARGET` (what the fuzzer found,
//! minimized with `cargo fuzz cmin`), each through the target's body. A panic fails the
//! test and names the file.
//!
//! Each input runs on a thread with the stack of the daemon's tokio workers (2 MiB, tokio's
//! default), where a call's arguments are decoded: an input that overflows it here would
//! take the daemon down. (libFuzzer runs on the 8 MiB main stack.)

use std::path::{Path, PathBuf};

const WORKER_STACK: usize = 2 << 20;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["seeds", "corpus"] {
        let dir = fuzz_dir().join(kind).join(target);
        if kind == "corpus" && !dir.exists() {
            continue; // a target not fuzzed yet; its seeds are required
        }
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
            panic!("{}: {e} (every target has committed seeds)", dir.display())
        });
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn body(target: &str) -> fuzzcheck::Body {
    fuzzcheck::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no target {target}"))
        .1
}

/// Runs `files` through `target` on a worker-sized stack; returns how many ran.
fn replay(target: &str, files: Vec<PathBuf>) -> usize {
    let f = body(target);
    let n = files.len();
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let shown = path
            .strip_prefix(fuzz_dir())
            .unwrap_or(&path)
            .display()
            .to_string();
        // Printed (and shown by the harness) only when the test fails: the file that
        // aborted the process on a stack overflow is the last one named.
        println!("replaying fuzz/{shown}");
        let run = std::thread::Builder::new()
            .stack_size(WORKER_STACK)
            .spawn(move || f(&data))
            .unwrap()
            .join();
        if let Err(panic) = run {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            panic!("fuzz/{shown} makes target {target} panic: {msg}");
        }
    }
    n
}

macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {$(
        #[test]
        fn $target() {
            let n = replay(stringify!($target), inputs(stringify!($target)));
            assert!(n > 0, "no inputs for {}", stringify!($target));
        }
    )*};
}

replay_tests!(
    xdr_decode,
    rpc_frames,
    remote_args,
    admin_args,
    uevent,
    virconf,
    virconf_log,
    nodedev_xml,
    nodedev_xml_structured,
    vpd,
);

#[test]
fn every_target_is_replayed() {
    // The list above and the crate's table must not drift apart.
    let listed = [
        "xdr_decode",
        "rpc_frames",
        "remote_args",
        "admin_args",
        "uevent",
        "virconf",
        "virconf_log",
        "nodedev_xml",
        "nodedev_xml_structured",
        "vpd",
    ];
    let mut known: Vec<_> = fuzzcheck::TARGETS.iter().map(|(n, _)| *n).collect();
    known.sort();
    let mut listed = listed.to_vec();
    listed.sort();
    assert_eq!(known, listed);
}
