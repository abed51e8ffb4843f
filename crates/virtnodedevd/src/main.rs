//! virtnodedevd: libvirt's host device management daemon. Everything is in the library
//! (`lib.rs`); this only runs it.

fn main() -> std::process::ExitCode {
    virtnodedevd::daemon::main()
}
