//! The fake host used by the integration tests: fakesys's `rich_full` tree.

use fakesys::FakeSys;

#[allow(unused_imports)] // the differential test uses it, fake_tree does not
pub use fakesys::trees::VDPA_CHARDEV;

/// Build a small but varied host in `dir`.
pub fn build_host(dir: &std::path::Path) -> FakeSys {
    fakesys::trees::rich_full(dir).unwrap()
}
