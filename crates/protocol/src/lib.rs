//! Our definitions of libvirt's remote program as the node-device daemon serves it:
//! procedure numbers, argument and return layouts, feature and flag values, limits.
//! Written from libvirt 9.0's `remote_protocol.x` and observed traffic; see
//! `docs/protocol-reference.md` in the shared notes.

pub mod admin;
pub mod arg_layouts;
pub mod procedures;
pub mod remote;
pub mod remote_call;
pub use remote_call::{DecodeError, ManageCall, PciCall, RemoteCall};

pub use procedures::{procedure, Family, ProcInfo, ReadOnly};
pub use rpc::{ErrorCode, ErrorDomain, VirError};

/// REMOTE_PROGRAM and REMOTE_PROTOCOL_VERSION.
pub const REMOTE_PROGRAM: u32 = 0x2000_8086;
pub const REMOTE_VERSION: u32 = 1;

/// REMOTE_STRING_MAX: every string argument and result.
pub const REMOTE_STRING_MAX: u32 = 4_194_304;
/// REMOTE_NODE_DEVICE_LIST_MAX: names in NODE_LIST_DEVICES, devices in LIST_ALL.
pub const REMOTE_NODE_DEVICE_LIST_MAX: usize = 65_536;
/// REMOTE_NODE_DEVICE_CAPS_LIST_MAX: names in NODE_DEVICE_LIST_CAPS.
pub const REMOTE_NODE_DEVICE_CAPS_LIST_MAX: usize = 65_536;
/// REMOTE_CONNECT_IDENTITY_PARAMS_MAX.
pub const REMOTE_CONNECT_IDENTITY_PARAMS_MAX: u32 = 20;

/// The library version we answer with (ConnectGetLibVersion, the admin program's version):
/// the libvirt release whose behaviour we reproduce.
pub const LIB_VERSION: u64 = 11_003_000;
/// [`LIB_VERSION`] as `--version` and the log's first line print it.
pub const LIB_VERSION_STRING: &str = "11.3.0";

/// virDrvFeature values asked through CONNECT_SUPPORTS_FEATURE.
pub mod feature {
    pub const FD_PASSING: i32 = 8;
    pub const PROGRAM_KEEPALIVE: i32 = 10;
    pub const REMOTE_EVENT_CALLBACK: i32 = 14;
    pub const REMOTE_CLOSE_CALLBACK: i32 = 15;
}

/// virConnectFlags bits in CONNECT_OPEN.
pub const VIR_CONNECT_RO: u32 = 1;

/// virConnectListAllNodeDevicesFlags state bits (the capability bits come from the
/// device model).
pub mod list_flags {
    /// VIR_CONNECT_LIST_NODE_DEVICES_FILTERS_CAP of libvirt 11.3: bits 0 to 23 (22 and 23,
    /// ccwgroup and ccwgroup_member, since 11.1.0). Which bit a capability has is
    /// `nodedev::CapType::list_flag`.
    pub const FILTERS_CAP: u32 = (1 << 24) - 1;
    /// Since libvirt 10.1.0.
    pub const PERSISTENT: u32 = 1 << 28;
    /// Since libvirt 10.1.0.
    pub const TRANSIENT: u32 = 1 << 29;
    pub const INACTIVE: u32 = 1 << 30;
    pub const ACTIVE: u32 = 1 << 31;
    /// VIR_CONNECT_LIST_NODE_DEVICES_FILTERS_ALL: what nodeConnectListAllNodeDevices accepts.
    pub const FILTERS_ALL: u32 = FILTERS_CAP | PERSISTENT | TRANSIENT | INACTIVE | ACTIVE;
}

/// virNodeDeviceEventID.
pub mod event_id {
    pub const LIFECYCLE: i32 = 0;
    pub const UPDATE: i32 = 1;
}

#[cfg(test)]
mod version_tests {
    #[test]
    fn the_version_string_is_the_version_number() {
        let v = super::LIB_VERSION;
        let s = format!("{}.{}.{}", v / 1_000_000, v / 1000 % 1000, v % 1000);
        assert_eq!(s, super::LIB_VERSION_STRING);
        // The packages carry the same version (the workspace's).
        assert_eq!(env!("CARGO_PKG_VERSION"), super::LIB_VERSION_STRING);
    }
}
