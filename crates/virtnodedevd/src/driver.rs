//! The node-device driver's state: the current device set and the persistent definitions.
//!
//! One owner applies changes to [`DeviceState`] (start-up, the uevent monitor, a resync)
//! and publishes an immutable [`DeviceList`] snapshot; readers take the snapshot (an
//! `Arc`), so a call never sees half an update, and events go out only after the snapshot
//! that contains their change is published.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use nodedev::{Device, HostRoot};
// parking_lot's locks are not poisoned by a panic: a call that panics while holding one
// (caught per call by the RPC server) must not make every later call panic too.
use parking_lot::{Mutex, RwLock};
use tracing::debug;

/// All devices known at one moment.
#[derive(Default, Clone)]
pub struct DeviceList {
    by_name: BTreeSet<ByName>,
}

impl DeviceList {
    pub fn get(&self, name: &str) -> Option<&Device> {
        self.by_name.get(name).map(|d| &*d.0)
    }

    /// The device as the list shares it (what [`Driver::refreshed`] takes).
    pub fn shared(&self, name: &str) -> Option<&Arc<Device>> {
        self.by_name.get(name).map(|d| &d.0)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Device> {
        self.by_name.iter().map(|d| &*d.0)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// One persistent mediated device (an mdevctl definition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub parent_addr: String,
    pub uuid: String,
    pub type_id: String,
    pub attrs: Vec<(String, String)>,
    pub autostart: bool,
}

impl Definition {
    /// `mdevGenerateDeviceName`: `mdev_<uuid>_<parent address>`, non-alphanumerics as `_`.
    pub fn name(&self) -> String {
        generate_name(&format!("mdev_{}_{}", self.uuid, self.parent_addr))
    }
}

fn generate_name(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                b as char
            } else {
                '_'
            }
        })
        .collect()
}

/// What happened to a device, as a lifecycle or update event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Deleted,
    Updated,
    /// A persistent (mdevctl) definition appeared.
    Defined,
    /// A persistent definition went away.
    Undefined,
}

/// Which of its own strings an index finds a device by.
trait DeviceKey {
    fn key(d: &Device) -> &str;
}

/// The device list's key: the name.
struct Name;

impl DeviceKey for Name {
    fn key(d: &Device) -> &str {
        d.name()
    }
}

/// The uevent index's key: the host sysfs path.
struct SysfsPath;

impl DeviceKey for SysfsPath {
    fn key(d: &Device) -> &str {
        d.sysfs_path().unwrap_or_default()
    }
}

/// A device in an index, found by one of its own strings (no copy of the string).
struct By<K>(Arc<Device>, std::marker::PhantomData<K>);

impl<K: DeviceKey> By<K> {
    fn new(d: Arc<Device>) -> Self {
        By(d, std::marker::PhantomData)
    }

    fn key(&self) -> &str {
        K::key(&self.0)
    }
}

type ByName = By<Name>;
type ByPath = By<SysfsPath>;

impl<K> Clone for By<K> {
    fn clone(&self) -> Self {
        By(self.0.clone(), std::marker::PhantomData)
    }
}

impl<K: DeviceKey> std::borrow::Borrow<str> for By<K> {
    fn borrow(&self) -> &str {
        self.key()
    }
}

impl<K: DeviceKey> std::hash::Hash for By<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

impl<K: DeviceKey> Ord for By<K> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(other.key())
    }
}

impl<K: DeviceKey> PartialOrd for By<K> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: DeviceKey> PartialEq for By<K> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<K: DeviceKey> Eq for By<K> {}

/// The authoritative device set, with a sysfs-path index for uevents.
#[derive(Default)]
pub struct DeviceState {
    /// Shared with the published snapshot until the next change.
    list: Arc<DeviceList>,
    by_path: HashSet<ByPath>,
    /// Persistent mediated device definitions (mdevctl's store), by device name.
    pub defined: BTreeMap<String, Definition>,
    /// Attributes of running mediated devices whose live configuration differs from their
    /// definition (set by NodeDeviceUpdate), by device name.
    pub live_attrs: BTreeMap<String, Vec<(String, String)>>,
}

impl DeviceState {
    fn from_devices(devices: Vec<Device>) -> Self {
        let mut s = Self::default();
        for d in devices {
            s.insert(d);
        }
        s
    }

    fn insert(&mut self, dev: Device) -> Option<Arc<Device>> {
        let dev = Arc::new(dev);
        if dev.sysfs_path().is_some() {
            self.by_path.replace(ByPath::new(dev.clone()));
        }
        Arc::make_mut(&mut self.list)
            .by_name
            .replace(ByName::new(dev))
            .map(|old| old.0)
    }

    /// The device list as it stands inside a change.
    pub fn list(&self) -> &DeviceList {
        &self.list
    }

    /// Replaces or removes a device by name, without events (persistent mdev overlay).
    pub fn put(&mut self, name: &str, dev: Option<Device>) {
        match dev {
            Some(d) => {
                self.insert(d);
            }
            None => {
                if let Some(By(d, _)) = Arc::make_mut(&mut self.list).by_name.take(name) {
                    if let Some(p) = d.sysfs_path() {
                        if self.by_path.get(p).is_some_and(|n| n.0.name() == name) {
                            self.by_path.remove(p);
                        }
                    }
                }
            }
        }
    }

    /// The name of the device at a host sysfs path.
    pub fn name_at(&self, host_syspath: &str) -> Option<String> {
        self.by_path
            .get(host_syspath)
            .map(|d| d.0.name().to_owned())
    }

    /// Adds or replaces a device (libvirt's udevAddOneDevice): Created for a new name,
    /// Updated for a known one. A defined mediated device that was not running (no sysfs
    /// path) is Created when it starts, as in libvirt.
    pub fn add(&mut self, dev: Device) -> (String, Change) {
        let name = dev.name().to_owned();
        match self.insert(dev) {
            Some(old) if old.sysfs_path().is_some() => (name, Change::Updated),
            _ => (name, Change::Created),
        }
    }

    /// Removes the device at a host sysfs path (udevRemoveOneDeviceSysPath).
    pub fn remove_path(&mut self, host_syspath: &str) -> Option<(String, Change)> {
        let gone = self.by_path.take(host_syspath)?;
        let name = gone.0.name();
        // The name may since have been taken over by a device elsewhere.
        if self.list.by_name.get(name)?.0.sysfs_path() != Some(host_syspath) {
            return None;
        }
        Arc::make_mut(&mut self.list).by_name.remove(name);
        Some((name.to_owned(), Change::Deleted))
    }

    /// Replaces the whole set with a fresh enumeration; returns what differs.
    fn replace(&mut self, devices: Vec<Device>, overlay: Overlay) -> Vec<(String, Change)> {
        let mut new = Self::from_devices(devices);
        new.defined = std::mem::take(&mut self.defined);
        new.live_attrs = std::mem::take(&mut self.live_attrs);
        overlay(&mut new);
        let mut changes = Vec::new();
        for By(dev, _) in &self.list.by_name {
            let name = dev.name();
            match new.list.by_name.get(name) {
                None => changes.push((name.to_string(), Change::Deleted)),
                Some(d) if d.0 != *dev => changes.push((name.to_string(), Change::Updated)),
                Some(_) => {}
            }
        }
        for By(dev, _) in &new.list.by_name {
            if !self.list.by_name.contains(dev.name()) {
                changes.push((dev.name().to_string(), Change::Created));
            }
        }
        *self = new;
        changes
    }
}

/// Where the device state's published changes go: the remote program's event registry.
/// The state knows nothing of the wire.
pub trait ChangeListener: Send + Sync {
    fn changed(&self, device: &str, change: Change);
}

/// Several listeners, each told every change in turn.
pub struct Fanout(pub Vec<Arc<dyn ChangeListener>>);

impl ChangeListener for Fanout {
    fn changed(&self, device: &str, change: Change) {
        for l in &self.0 {
            l.changed(device, change);
        }
    }
}

/// Brings the device set in line with something outside sysfs after every change: the
/// persistent mdev overlay ([`crate::manage::reconcile`]). Given to [`Driver::new`], so the
/// state does not depend on the management area.
pub type Overlay = fn(&mut DeviceState);

pub struct Driver {
    root: HostRoot,
    state: Mutex<DeviceState>,
    devices: RwLock<Arc<DeviceList>>,
    overlay: Overlay,
    listener: Arc<dyn ChangeListener>,
    refreshed: Mutex<FormatCache>,
}

/// How much XML is kept at most (bytes): a device is formatted once per change while its
/// XML is kept; on a host whose XML does not fit, what is not kept is formatted again,
/// rather than keeping a second copy of the host's description in memory. Formatting is
/// about 1% of a call's cost at 10,000 devices: 2 MiB here cost 3 MiB of resident memory
/// there and saved nothing measurable; at 3,000 devices (all kept) it saved about 8% of a
/// call for 1.3 MiB. 256 KiB holds a few hundred devices' XML.
const FORMAT_CACHE_BYTES: usize = 256 << 10;

/// Devices as last re-read, with their XML, by name.
#[derive(Default)]
struct FormatCache {
    by_name: HashMap<String, Arc<Refreshed>>,
    /// XML bytes held.
    bytes: usize,
}

impl FormatCache {
    fn get(&self, name: &str) -> Option<&Arc<Refreshed>> {
        self.by_name.get(name)
    }

    fn insert(&mut self, name: &str, r: Arc<Refreshed>) {
        self.remove(name);
        // Full: some other device makes room (whichever the map yields first, which is no
        // order in particular). A sweep over more devices than fit then still finds as
        // many as fit, where emptying the cache would have it find none.
        while self.bytes + r.xml.len() > FORMAT_CACHE_BYTES {
            let Some(victim) = self.by_name.keys().next().cloned() else {
                break;
            };
            self.remove(&victim);
        }
        self.bytes += r.xml.len();
        self.by_name.insert(name.to_owned(), r);
    }

    fn remove(&mut self, name: &str) {
        if let Some(old) = self.by_name.remove(name) {
            self.bytes -= old.xml.len();
        }
    }

    fn clear(&mut self) {
        self.by_name.clear();
        self.bytes = 0;
    }

    fn len(&self) -> usize {
        self.by_name.len()
    }
}

/// How many device directories re-reads hold open: what the open files limit leaves
/// once every client the daemon admits by default (5,000) has its socket, at most 32,768
/// (an `O_PATH` descriptor costs the kernel a few hundred bytes and no buffer).
pub fn held_dirs_max() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    usize::try_from(soft.saturating_sub(6_000))
        .unwrap_or(usize::MAX)
        .min(32_768)
}

/// A device as last re-read, with its XML.
pub struct Refreshed {
    /// The listed device itself when the re-read found nothing new (no copy is kept).
    pub device: Arc<Device>,
    /// Exactly as long as the XML: what the cache counts is what it holds.
    pub xml: Box<str>,
}

impl Driver {
    pub fn new(root: HostRoot, overlay: Overlay, listener: Arc<dyn ChangeListener>) -> Self {
        Self {
            root,
            state: Mutex::new(DeviceState::default()),
            devices: RwLock::new(Arc::new(DeviceList::default())),
            overlay,
            listener,
            refreshed: Mutex::new(FormatCache::default()),
        }
    }

    pub fn root(&self) -> &HostRoot {
        &self.root
    }

    pub fn devices(&self) -> Arc<DeviceList> {
        self.devices.read().clone()
    }

    /// The device with the data libvirt re-reads on every XML or capability query
    /// (driver binding, link state, SR-IOV, mdev types, ...) brought up to date, and its XML.
    ///
    /// Like libvirt, every call re-reads: no answer is older than the call. What is kept is
    /// the formatting: when the re-read device equals the one last formatted, its XML is
    /// served again, so a device is formatted once per change, not once per call.
    pub fn refreshed(&self, dev: &Arc<Device>) -> Arc<Refreshed> {
        #[cfg(debug_assertions)]
        self.test_panic_hook(dev.name());
        let device = dev.reread(&self.root);
        if let Some(r) = self.refreshed.lock().get(dev.name()) {
            if *r.device == device {
                return r.clone();
            }
        }
        let xml = device.to_xml().into_boxed_str();
        let device = if device == **dev {
            dev.clone()
        } else {
            Arc::new(device)
        };
        let r = Arc::new(Refreshed { xml, device });
        self.refreshed.lock().insert(dev.name(), r.clone());
        r
    }

    /// Reads the whole host and replaces the device set. The first time (start-up) sends
    /// no events; later (SIGHUP, a monitor that lost events) every difference is sent.
    pub fn enumerate(&self, notify: bool) -> usize {
        let devices = nodedev::enumerate(&self.root);
        let n = self.apply(|state| {
            let changes = state.replace(devices, self.overlay);
            if notify {
                changes
            } else {
                Vec::new()
            }
        });
        crate::memory::give_back_free_memory();
        n
    }

    /// Applies a batch of changes to the device set, publishes the new snapshot, then
    /// sends the events. Returns the number of devices.
    pub fn apply(&self, f: impl FnOnce(&mut DeviceState) -> Vec<(String, Change)>) -> usize {
        let mut state = self.state.lock();
        let changes = f(&mut state);
        (self.overlay)(&mut state);
        let n = state.list.len();
        // The snapshot is the state's own list: one copy of the device set between
        // changes; the next change copies it before touching it.
        *self.devices.write() = state.list.clone();
        drop(state);
        {
            let mut cache = self.refreshed.lock();
            if changes.len() > cache.len() / 2 {
                cache.clear();
            } else {
                for (name, _) in &changes {
                    cache.remove(name);
                }
            }
        }
        for (name, change) in changes {
            debug!(device = %name, ?change, "device event");
            self.listener.changed(&name, change);
        }
        n
    }

    /// Test builds only: an XML or capability query of the device named by
    /// `VIRTNODEDEVD_TEST_PANIC_DEVICE` panics while holding every lock of the driver, so
    /// tests can show that a panic costs only that call.
    #[cfg(debug_assertions)]
    fn test_panic_hook(&self, name: &str) {
        static DEVICE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let device = DEVICE.get_or_init(|| std::env::var("VIRTNODEDEVD_TEST_PANIC_DEVICE").ok());
        if device.as_deref() == Some(name) {
            let _state = self.state.lock();
            let _devices = self.devices.write();
            panic!("test panic while answering for {name}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(xml_len: usize) -> Arc<Refreshed> {
        Arc::new(Refreshed {
            device: Arc::new(Device::new("x", nodedev::Cap::Drm("primary"))),
            xml: "x".repeat(xml_len).into(),
        })
    }

    fn at(name: &str, path: &str) -> Device {
        let mut d = Device::new(name, nodedev::Cap::Drm("primary"));
        d.set_sysfs_path(Some(path.into()));
        d
    }

    #[test]
    fn devices_are_found_by_path_until_another_takes_their_name() {
        let mut s = DeviceState::default();
        assert_eq!(s.add(at("a", "/sys/devices/a")).1, Change::Created);
        s.add(at("b", "/sys/devices/b"));
        assert_eq!(s.name_at("/sys/devices/a").as_deref(), Some("a"));
        // "b" moves: its old path no longer removes it.
        s.add(at("b", "/sys/devices/b2"));
        assert_eq!(s.remove_path("/sys/devices/b"), None);
        assert_eq!(s.name_at("/sys/devices/b2").as_deref(), Some("b"));
        assert_eq!(
            s.remove_path("/sys/devices/b2"),
            Some(("b".into(), Change::Deleted))
        );
        s.put("a", None);
        assert_eq!(s.name_at("/sys/devices/a"), None);
        assert!(s.list().is_empty());
    }

    #[test]
    fn the_format_cache_keeps_what_fits_and_no_more() {
        let mut c = FormatCache::default();
        let each = FORMAT_CACHE_BYTES / 10;
        for i in 0..25 {
            c.insert(&format!("d{i}"), formatted(each));
            assert!(c.bytes <= FORMAT_CACHE_BYTES);
        }
        // A sweep over more than fits still finds as many as fit.
        assert_eq!(c.len(), 10);
        assert_eq!(c.bytes, 10 * each);
        // A device formatted again replaces its own entry.
        c.insert("d24", formatted(each / 2));
        assert_eq!(c.bytes, 9 * each + each / 2);
        c.remove("d24");
        assert_eq!(c.len(), 9);
        c.clear();
        assert_eq!((c.len(), c.bytes), (0, 0));
    }
}
