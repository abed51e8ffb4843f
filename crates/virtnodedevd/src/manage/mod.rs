//! Mediated devices and NPIV vHBAs created, defined and removed through the node-device
//! API, as libvirt 9.0's `nodeDeviceCreateXML`, `nodeDeviceDefineXML`, `nodeDeviceDestroy`,
//! `nodeDeviceUndefine`, `nodeDeviceCreate` and `nodeDeviceSetAutostart` do it.
//!
//! Like libvirt, we drive `mdevctl` when it is installed, with 9.0's command lines
//! ([`Mdevctl`]). Without it we do what mdevctl does ourselves: a transient mdev is created
//! by writing its UUID to the parent's `mdev_supported_types/<type>/create` and removed
//! through its `remove`; persistent definitions live in mdevctl's store
//! (`/etc/mdevctl.d/<parent>/<uuid>`, [`store`]), so installing or removing mdevctl
//! later loses nothing. The device set shows every definition: an active mdev with the
//! same UUID is marked persistent, otherwise an inactive device stands for it
//! ([`reconcile`]).
//!
//! The management area: [`mdev`] (the API), [`vhba`], [`update`], the [`mdevctl`] runner,
//! the [`store`], the persistent [`overlay`] and its [`watch`]er, what is done in sysfs
//! ([`kernel`]) and the errors ([`ManageError`], mapped to libvirt's triple in one place)..

mod error;
mod kernel;
mod mdev;
mod mdevctl;
mod overlay;
pub mod pci;
pub mod store;
mod update;
mod vhba;
mod watch;

pub use error::ManageError;
pub use mdev::{check_definition, create_xml, define_xml, destroy, set_autostart, start, undefine};
pub use overlay::{load_store, reconcile};
pub use update::{inactive_xml, update, UPDATE_AFFECT_CONFIG, UPDATE_AFFECT_LIVE};
pub use watch::{spawn_watcher, DeviceChanges};
