//! virtnodedevd, libvirt's host device management daemon, as a library: the binary
//! (`main.rs`) only calls [`daemon::main`]; tests drive the management area in-process and
//! the fuzz targets (`fuzz/` at the repository root) reach the parsers the daemon runs.
//!
//! The modules, from the host up:
//! - [`driver`]: the device state (devices, persistent definitions) and its one owner;
//! - [`monitor`] and [`uevent`]: following the host's uevents into the state;
//! - [`manage`]: creating, defining, changing and removing mediated devices and vHBAs;
//! - [`events`], [`remote`], [`admin`]: the programs clients talk to; [`polkit`]: asking
//!   polkitd about a client; [`access`]: the access control of every API call;
//! - [`daemon`], [`cli`], [`listen`], [`activation`], [`daemonize`], [`logging`],
//!   [`reload`], [`supervise`], [`fault`]: the process around them.

pub mod access;
pub mod activation;
pub mod admin;
pub mod cli;
pub mod daemon;
pub mod daemonize;
pub mod driver;
pub mod events;
pub mod fault;
pub mod listen;
pub mod logging;
pub mod manage;
pub mod memory;
pub mod monitor;
pub mod polkit;
pub mod reload;
pub mod remote;
pub mod supervise;
pub mod typed_params;
pub mod uevent;
