//! The fake host used by the integration tests: fakesys's `rich_full` tree.
#![allow(dead_code)] // each test file uses some of it

use fakesys::FakeSys;

// One skip decision for every test crate: the daemon's tests own it.
#[path = "../../../virtnodedevd/tests/common/skip.rs"]
mod skip;
#[allow(unused_imports)]
pub use skip::{available, skip_or_fail};

#[allow(unused_imports)] // the differential test uses it, the others do not
pub use fakesys::trees::VDPA_CHARDEV;

/// Build a small but varied host in `dir`.
pub fn build_host(dir: &std::path::Path) -> FakeSys {
    fakesys::trees::rich_full(dir).unwrap()
}

/// The variable a run sets to `1` to rewrite the expected files instead of comparing.
pub const REGENERATE: &str = "VIRTNODEDEVD_REGENERATE";

/// Compares `actual` with the expected file `tests/golden/NAME.xml`; with
/// `VIRTNODEDEVD_REGENERATE=1`, writes `actual` there instead (see tests/golden/README.md).
#[track_caller]
pub fn assert_golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.xml"));
    if std::env::var_os(REGENERATE).is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        eprintln!("regenerated {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} ({REGENERATE}=1 writes it)", path.display()));
    assert_eq!(
        actual,
        expected,
        "differs from {} ({REGENERATE}=1 rewrites it; review the diff)",
        path.display()
    );
}

/// A ccwgroup device's `<ccw_device>` lines sorted: libvirt lists a group's members in
/// directory order, which depends on the filesystem the tree is on.
pub fn members_sorted(xml: &str) -> String {
    let mut lines: Vec<&str> = xml.split_inclusive('\n').collect();
    let members: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("<ccw_device "))
        .collect();
    if let (Some(&a), Some(&b)) = (members.first(), members.last()) {
        lines[a..=b].sort();
    }
    lines.concat()
}
