//! virNodeDeviceDettach, DetachFlags, ReAttach and Reset, which libvirt serves only in its
//! hypervisor drivers, handed to [`crate::manage::pci`]. The public API refuses read-only
//! connections first; the QEMU driver then checks flags, the driver name and VFIO on the
//! host before it looks the device up (`qemuNodeDeviceDetachFlags`), then checks access
//! (`node_device:detach`, for all four), then acts.

use protocol::{PciCall, ProcInfo, VirError};
use tracing::info;

use super::{encode, lookup, read_only, CallResult, RemoteProgram, Session};
use crate::access::Perm;
use crate::driver::Driver;
use crate::manage::pci;

impl RemoteProgram {
    pub(super) async fn pci(&self, s: &Session, info: &ProcInfo, call: PciCall) -> CallResult {
        let api = info.api.unwrap_or(info.name);
        if s.readonly {
            return Err(read_only(info.no_support_domain(), api));
        }
        // Loading a module and binding wait on the kernel: off the thread that serves every
        // client.
        let driver = self.driver.clone();
        let (call, stub) = blocking(move || {
            let stub = checks(&driver, &call)?;
            Ok((call, stub))
        })
        .await?;
        self.ensure(s, Perm::NodeDeviceDetach, Some(call.name()))
            .await?;
        let driver = self.driver.clone();
        blocking(move || {
            let name = call.name();
            let list = driver.devices();
            let dev = lookup(&list, name)?;
            let done = match &call {
                PciCall::NodeDeviceReAttach(_) => pci::reattach(&driver, dev),
                PciCall::NodeDeviceReset(_) => pci::reset(&driver, dev),
                _ => pci::detach(&driver, dev, stub.flatten().as_deref()),
            };
            if let Err(e) = done {
                let e = VirError::from(e);
                info!(api, device = %name, "refused: {}", e.message);
                return Err(e);
            }
            encode(&())
        })
        .await
    }
}

/// The QEMU driver's checks up to and including the lookup: for a detach, the stub driver
/// to bind (`Some(None)` for the default).
fn checks(driver: &Driver, call: &PciCall) -> Result<Option<Option<String>>, VirError> {
    use PciCall as P;
    let stub = match call {
        P::NodeDeviceDettach(_) => Some(pci::detach_checks(driver, None, 0)?),
        P::NodeDeviceDetachFlags(a) => Some(pci::detach_checks(
            driver,
            a.driver_name.as_deref(),
            a.flags,
        )?),
        P::NodeDeviceReAttach(_) | P::NodeDeviceReset(_) => None,
    };
    lookup(&driver.devices(), call.name())?;
    Ok(stub)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VirError> + Send + 'static,
) -> Result<T, VirError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(VirError::no_error_set()))
}
