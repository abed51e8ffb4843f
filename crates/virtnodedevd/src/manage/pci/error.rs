//! What PCI detach, reattach and reset fail with, and the one place where that becomes
//! libvirt's (code, domain, message) triple. libvirt raises these from several files, each
//! with its own domain: the QEMU driver's checks (VIR_FROM_QEMU), `domain_driver.c`
//! (VIR_FROM_DOMAIN), `virpci.c` and `virhostdev.c` (VIR_FROM_NONE); our own refusals are
//! node-device errors.

use protocol::{ErrorCode, ErrorDomain, VirError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PciError {
    /// virCheckFlags in qemuNodeDeviceDetachFlags.
    #[error("unsupported flags (0x{0:x}) in function qemuNodeDeviceDetachFlags")]
    BadFlags(u32),
    #[error("argument unsupported: 'legacy KVM' device assignment is no longer supported on this system")]
    LegacyKvm,
    /// virHostdevHostSupportsPassthroughVFIO: no IOMMU group or no /dev/vfio/vfio.
    #[error(
        "argument unsupported: VFIO device assignment is currently not supported on this system"
    )]
    NoVfio,
    /// virDomainDriverNodeDeviceGetPCIInfo.
    #[error("invalid argument: device {0} is not a PCI device")]
    NotPci(String),
    /// VIR_ERR_INTERNAL_ERROR from virpci.c.
    #[error("internal error: {0}")]
    Internal(String),
    /// virReportSystemError: the detail with strerror appended, errno in `int1`.
    #[error("{detail}: {}", strerror(*.errno))]
    System { detail: String, errno: i32 },
    /// virHostdevIsPCINodeDeviceUsed; here "used" means a process holds the device's VFIO
    /// group or device file open.
    #[error("Requested operation is not valid: {0}")]
    InUse(String),
    /// Not libvirt's: binding to VFIO would leave the IOMMU group unusable.
    #[error("Requested operation is not valid: {0}")]
    NotViable(String),
    /// Not libvirt's: the device (or its IOMMU group) is one the host needs.
    #[error("operation forbidden: {0}")]
    Protected(String),
    /// Not libvirt's (it does not wait): the kernel did not bind the device in time.
    #[error("Timed out during operation: {0}")]
    Timeout(String),
}

/// The C library's text for an errno, as libvirt's virReportSystemError appends it.
pub fn strerror(errno: i32) -> &'static str {
    nix::errno::Errno::from_raw(errno).desc()
}

impl PciError {
    pub fn system(detail: impl Into<String>, e: &std::io::Error) -> Self {
        Self::System {
            detail: detail.into(),
            errno: e.raw_os_error().unwrap_or(nix::errno::Errno::EIO as i32),
        }
    }
}

impl From<PciError> for VirError {
    fn from(e: PciError) -> VirError {
        use PciError as P;
        let (code, domain, detail) = match e {
            P::BadFlags(flags) => {
                return VirError::bad_flags(
                    ErrorDomain::Qemu,
                    u64::from(flags),
                    "qemuNodeDeviceDetachFlags",
                )
            }
            P::LegacyKvm => (
                ErrorCode::ArgumentUnsupported,
                ErrorDomain::Qemu,
                "'legacy KVM' device assignment is no longer supported on this system".into(),
            ),
            P::NoVfio => (
                ErrorCode::ArgumentUnsupported,
                ErrorDomain::Qemu,
                "VFIO device assignment is currently not supported on this system".into(),
            ),
            P::NotPci(n) => (
                ErrorCode::InvalidArg,
                ErrorDomain::Domain,
                format!("device {n} is not a PCI device"),
            ),
            P::Internal(d) => (ErrorCode::InternalError, ErrorDomain::None, d),
            P::System { detail, errno } => {
                let mut v = VirError::new(
                    ErrorCode::SystemError,
                    ErrorDomain::None,
                    format!("{detail}: {}", strerror(errno)),
                );
                v.int1 = errno;
                return v;
            }
            P::InUse(d) => (ErrorCode::OperationInvalid, ErrorDomain::None, d),
            P::NotViable(d) => (ErrorCode::OperationInvalid, ErrorDomain::NodeDev, d),
            P::Protected(d) => (ErrorCode::OperationDenied, ErrorDomain::NodeDev, d),
            P::Timeout(d) => (ErrorCode::OperationTimeout, ErrorDomain::NodeDev, d),
        };
        VirError::new(code, domain, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_libvirts() {
        let e = PciError::System {
            detail: "Device 0000:01:00.0 not found: could not access /sys/bus/pci/devices/0000:01:00.0/config".into(),
            errno: 2,
        };
        assert_eq!(
            VirError::from(e).message,
            "Device 0000:01:00.0 not found: could not access /sys/bus/pci/devices/0000:01:00.0/config: No such file or directory"
        );
        for e in [
            PciError::LegacyKvm,
            PciError::NoVfio,
            PciError::Internal("x".into()),
            PciError::InUse("x".into()),
            PciError::Protected("x".into()),
            PciError::Timeout("x".into()),
        ] {
            let message = e.to_string();
            assert_eq!(VirError::from(e).message, message);
        }
        let v = VirError::from(PciError::BadFlags(4));
        assert_eq!(
            v.message,
            "unsupported flags (0x4) in function qemuNodeDeviceDetachFlags"
        );
        assert_eq!(v.domain, ErrorDomain::Qemu as i32);
        assert_eq!(
            VirError::from(PciError::NotPci("computer".into())).message,
            "invalid argument: device computer is not a PCI device"
        );
    }
}
