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
mod model;
pub mod parse;
mod schema;
mod sysdir;
pub mod udev;
pub mod xml;
pub mod xml_reader;

pub use discover::{discover_device, enumerate, parse_vpd, PciIds};
pub use hostroot::{read_at_most, HostRoot};
pub use model::*;
pub use sysdir::{SysDir, SysDirs};

impl Device {
    /// The device's XML exactly as libvirt 9.0's `virNodeDeviceDefFormat`.
    pub fn to_xml(&self) -> String {
        format::device_to_xml(self)
    }

    /// Re-read the volatile data libvirt re-reads on every
    /// `virNodeDeviceGetXMLDesc` (and when listing capabilities): the bound
    /// driver, net link state/speed and features, and PCI SR-IOV / IOMMU
    /// group / mdev types. Cheap: a handful of small sysfs reads (plus a few
    /// ethtool ioctls for net devices).
    pub fn refresh(&mut self, root: &HostRoot) {
        self.refresh_in(root, &SysDirs::new(0));
    }

    /// [`Device::refresh`] through directories held in `dirs`, which keeps the
    /// re-read to one short lookup per attribute.
    pub fn refresh_in(&mut self, root: &HostRoot, dirs: &SysDirs) {
        discover::refresh(self, root, dirs);
    }
}
