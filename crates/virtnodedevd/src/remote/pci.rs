//! virNodeDeviceDettach, DetachFlags, ReAttach and Reset, which libvirt serves only in its
//! hypervisor drivers, handed to [`crate::manage::pci`]. The public API refuses read-only
//! connections first; the QEMU driver then checks flags, the driver name and VFIO on the
//! host before it looks the device up (`qemuNodeDeviceDetachFlags`).

use protocol::{PciCall, ProcInfo, VirError};
use tracing::info;

use super::{encode, lookup, read_only, CallResult};
use crate::driver::Driver;
use crate::manage::pci;

pub(super) fn pci_call(
    driver: &Driver,
    readonly: bool,
    info: &ProcInfo,
    call: PciCall,
) -> CallResult {
    use PciCall as P;
    if readonly {
        return Err(read_only(
            info.no_support_domain(),
            info.api.unwrap_or(info.name),
        ));
    }
    let (name, stub) = match &call {
        P::NodeDeviceDettach(a) => (&a.name, Some(pci::detach_checks(driver, None, 0)?)),
        P::NodeDeviceDetachFlags(a) => (
            &a.name,
            Some(pci::detach_checks(
                driver,
                a.driver_name.as_deref(),
                a.flags,
            )?),
        ),
        P::NodeDeviceReAttach(a) | P::NodeDeviceReset(a) => (&a.name, None),
    };
    let list = driver.devices();
    let dev = lookup(&list, name)?;
    let done = match (&call, stub) {
        (P::NodeDeviceReAttach(_), _) => pci::reattach(driver, dev),
        (P::NodeDeviceReset(_), _) => pci::reset(driver, dev),
        (_, stub) => pci::detach(driver, dev, stub.flatten().as_deref()),
    };
    if let Err(e) = done {
        let e = VirError::from(e);
        info!(api = info.api.unwrap_or(info.name), device = %name, "refused: {}", e.message);
        return Err(e);
    }
    encode(&())
}
