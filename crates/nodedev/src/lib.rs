//! Host device discovery and description for the node-device driver.
//!
//! A Rust reimplementation of what libvirt 9.0's `virtnodedevd` knows about
//! devices: discovery from sysfs and the udev database under a configurable
//! [`HostRoot`], the device model ([`Device`], [`Cap`]) and its XML
//! ([`Device::to_xml`], byte-identical to `virNodeDeviceDefFormat`).
//!
//! Discovery returns data; formatting is a pure function of that data.

mod discover;
mod ethtool;
mod format;
mod hostroot;
mod idents;
mod model;
pub mod parse;
mod schema;
mod sysdir;
pub mod udev;
pub mod xml;
pub mod xml_reader;

pub use discover::{discover_device, enumerate, parse_vpd, PciIds};
pub use hostroot::{open_nonblocking, read_at_most, HostRoot};
pub use model::*;
pub use sysdir::{held_dirs, set_held_dirs_max, SysDir};

impl Device {
    /// The device's XML exactly as libvirt 9.0's `virNodeDeviceDefFormat`.
    pub fn to_xml(&self) -> String {
        format::device_to_xml(self)
    }

    /// Re-read the volatile data libvirt re-reads on every
    /// `virNodeDeviceGetXMLDesc` (and when listing capabilities): the bound
    /// driver, net link state/speed and features, and PCI SR-IOV / IOMMU
    /// group / mdev types. Cheap: a handful of small sysfs reads (plus one
    /// ethtool ioctl for net devices).
    pub fn refresh(&mut self, root: &HostRoot) {
        discover::refresh(self, root, &sysdir::HeldDir::default());
    }

    /// A copy of the device with what [`Device::refresh`] re-reads brought up to date,
    /// read through the device's own held directory (one short lookup per attribute;
    /// see [`set_held_dirs_max`]).
    pub fn reread(&self, root: &HostRoot) -> Device {
        let mut d = self.clone();
        discover::refresh(&mut d, root, &self.held);
        d
    }
}
