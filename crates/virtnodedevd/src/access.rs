//! Access control (`access_drivers`), as libvirt's access manager: with the `polkit`
//! driver every node-device API asks polkitd whether the caller holds the API's
//! permission (`org.libvirt.api.OBJECT.PERM`), passing `connect_driver` and, for a device,
//! `node_device_name` as details; list calls and events leave out the devices the caller
//! may not see.
//!
//! The permission each procedure needs is libvirt's (the `@acl` and `@aclfilter` of its
//! remote protocol), checked where its node-device driver checks it: after the device is
//! looked up or the XML parsed, before anything is done.

use protocol::{ErrorCode, ErrorDomain, VirError};
use rpc::Identity;
use virconf::daemon::AccessDriver;

use crate::polkit;

/// The connection driver's name, which libvirt passes as `connect_driver` and names in
/// its refusal.
const DRIVER_NAME: &str = "nodedev";

/// What a caller may be allowed (`virAccessPermConnect`, `virAccessPermNodeDevice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    ConnectGetattr,
    ConnectRead,
    ConnectWrite,
    ConnectSearchNodeDevices,
    NodeDeviceGetattr,
    NodeDeviceRead,
    NodeDeviceWrite,
    NodeDeviceStart,
    NodeDeviceStop,
    NodeDeviceDetach,
    NodeDeviceSave,
    NodeDeviceDelete,
}

impl Perm {
    /// The polkit action (`virAccessDriverPolkitFormatAction`: `_` becomes `-`).
    pub fn action(self) -> &'static str {
        use Perm::*;
        match self {
            ConnectGetattr => "org.libvirt.api.connect.getattr",
            ConnectRead => "org.libvirt.api.connect.read",
            ConnectWrite => "org.libvirt.api.connect.write",
            ConnectSearchNodeDevices => "org.libvirt.api.connect.search-node-devices",
            NodeDeviceGetattr => "org.libvirt.api.node-device.getattr",
            NodeDeviceRead => "org.libvirt.api.node-device.read",
            NodeDeviceWrite => "org.libvirt.api.node-device.write",
            NodeDeviceStart => "org.libvirt.api.node-device.start",
            NodeDeviceStop => "org.libvirt.api.node-device.stop",
            NodeDeviceDetach => "org.libvirt.api.node-device.detach",
            NodeDeviceSave => "org.libvirt.api.node-device.save",
            NodeDeviceDelete => "org.libvirt.api.node-device.delete",
        }
    }

    fn on_device(self) -> bool {
        !matches!(
            self,
            Perm::ConnectGetattr
                | Perm::ConnectRead
                | Perm::ConnectWrite
                | Perm::ConnectSearchNodeDevices
        )
    }
}

/// libvirt's access manager: a stack of drivers, each of which must allow a call.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessManager {
    /// Whether `polkit` is in the stack; `none` allows everything and adds nothing.
    polkit: bool,
}

impl AccessManager {
    pub fn new(drivers: &[AccessDriver]) -> Self {
        Self {
            polkit: drivers.contains(&AccessDriver::Polkit),
        }
    }

    /// Whether any call can be refused (callers skip preparatory work otherwise).
    pub fn enabled(&self) -> bool {
        self.polkit
    }

    /// libvirt's `...EnsureACL`: `perm` on the connection, or on the device `device`
    /// names; a refusal, and any failure to ask, is libvirt's one error.
    pub async fn ensure(
        &self,
        who: &rpc::ClientIdentity,
        perm: Perm,
        device: Option<&str>,
    ) -> Result<(), VirError> {
        if !self.polkit || self.allows(&who.get(), perm, device).await {
            Ok(())
        } else {
            Err(denied())
        }
    }

    /// libvirt's `...CheckACL`, the filter of lists and events: false on a refusal and on
    /// any failure to ask. `who` is the caller's identity as it stands (a list asks once
    /// per device with the same one).
    pub async fn allows(&self, who: &Identity, perm: Perm, device: Option<&str>) -> bool {
        if !self.polkit {
            return true;
        }
        match check_polkit(who, perm, device).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(
                    action = perm.action(),
                    device,
                    "access refused: {}",
                    e.message
                );
                false
            }
        }
    }
}

/// `virAccessDriverPolkitCheck`: the caller's process, never allowed to interact.
async fn check_polkit(
    identity: &Identity,
    perm: Perm,
    device: Option<&str>,
) -> Result<(), VirError> {
    let internal = |what: &str| VirError::new(ErrorCode::InternalError, ErrorDomain::Access, what);
    let pid = identity
        .process_id
        .ok_or_else(|| internal("No process ID available"))?;
    let start_time = identity
        .process_time
        .ok_or_else(|| internal("No process start time available"))?;
    let uid = identity
        .unix_user_id
        .ok_or_else(|| internal("No UNIX caller UID available"))?;
    let mut details = vec![("connect_driver", DRIVER_NAME)];
    if perm.on_device() {
        details.push(("node_device_name", device.unwrap_or_default()));
    }
    polkit::check_auth(
        perm.action(),
        pid as i32,
        start_time,
        uid as u32,
        &details,
        false,
    )
    .await
}

/// What every refused or unanswered check becomes (`virAccessManagerSanitizeError`
/// and the generated `...EnsureACL`).
fn denied() -> VirError {
    VirError::new(
        ErrorCode::AccessDenied,
        ErrorDomain::Access,
        format!("'{DRIVER_NAME}' denied access"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_libvirts() {
        assert_eq!(
            Perm::ConnectSearchNodeDevices.action(),
            "org.libvirt.api.connect.search-node-devices"
        );
        assert!(Perm::NodeDeviceDetach.on_device());
        assert!(!Perm::ConnectWrite.on_device());
        assert_eq!(denied().message, "access denied: 'nodedev' denied access");
    }

    #[tokio::test]
    async fn without_polkit_everything_is_allowed() {
        let m = AccessManager::new(&[AccessDriver::None]);
        assert!(!m.enabled());
        let who = rpc::ClientIdentity::of_socket(1000, 1000, -1, None);
        assert!(m.allows(&who.get(), Perm::NodeDeviceWrite, Some("x")).await);
    }
}
