//! The daemon's own parsers of untrusted input, as a library so that the fuzz targets
//! (`fuzz/` at the repository root) reach the code the daemon runs. Everything else is in
//! the binary (`main.rs`).

pub mod uevent;
