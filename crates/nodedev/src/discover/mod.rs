//! Discovery: libvirt's udev backend (`node_device_udev.c`) reproduced over
//! a [`HostRoot`]: enumerate like `udev_enumerate_scan_devices`, classify
//! like `udevGetDeviceType`, fill capabilities like `udevGetDeviceDetails`,
//! and find parents like `udevSetParent`.

mod mdev;
mod misc;
mod net;
mod pci;
mod s390;
mod storage;
mod system;
pub(crate) mod vpd;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::hostroot::HostRoot;
use crate::idents::Ident;
use crate::model::{Cap, CapType, Device};
use crate::sysdir::{HeldDir, SysDir};
use crate::udev::UdevDevice;

pub use pci::PciIds;
pub use vpd::parse_bytes as parse_vpd;

/// Subsystems libvirt tells libudev not to enumerate (`subsystem_ignored`).
const SUBSYSTEM_IGNORED: [&str; 4] = ["acpi", "tty", "vc", "i2c"];

/// Per-enumeration context (lazily loaded shared data).
pub(crate) struct Ctx<'a> {
    pub root: &'a HostRoot,
    /// Loaded once, by whichever enumeration thread needs it first.
    pub pci_ids: std::sync::OnceLock<Option<PciIds>>,
}

impl<'a> Ctx<'a> {
    pub fn new(root: &'a HostRoot) -> Self {
        Ctx {
            root,
            pci_ids: std::sync::OnceLock::new(),
        }
    }

    pub fn pci_ids(&self) -> Option<&PciIds> {
        self.pci_ids
            .get_or_init(|| PciIds::load(&self.root.join("/usr/share/misc/pci.ids")))
            .as_ref()
    }
}

/// List the syspaths libudev's enumerator would return, in its order.
pub(crate) fn scan_syspaths(root: &HostRoot) -> Vec<PathBuf> {
    let sys = root.sys();
    let mut found: Vec<PathBuf> = Vec::new();
    let mut scan = |dir: PathBuf| {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            if name.as_encoded_bytes().first() == Some(&b'.') {
                continue;
            }
            if let Some(p) = root.resolve_device_link(&e.path()) {
                found.push(p);
            }
        }
    };
    for (base, sub) in [("bus", Some("devices")), ("class", None)] {
        let Ok(rd) = std::fs::read_dir(sys.join(base)) else {
            continue;
        };
        let mut dirs: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
        dirs.sort();
        for d in dirs {
            let n = d.to_string_lossy();
            if n.starts_with('.') || SUBSYSTEM_IGNORED.contains(&n.as_ref()) {
                continue;
            }
            let mut p = sys.join(base).join(&d);
            if let Some(s) = sub {
                p.push(s);
            }
            scan(p);
        }
    }
    found.sort_by(|a, b| device_order(a, b));
    found.dedup();
    found
}

/// sd-device-enumerator's ordering: md/dm block devices last, otherwise
/// path order component by component (so parents come before children).
fn device_order(a: &Path, b: &Path) -> std::cmp::Ordering {
    let delayed = |p: &Path| {
        let s = p.to_string_lossy();
        s.contains("/block/md") || s.contains("/block/dm-")
    };
    delayed(a)
        .cmp(&delayed(b))
        .then_with(|| a.components().cmp(b.components()))
}

/// `udevGetDeviceType`.
fn device_type(dev: &UdevDevice) -> Option<CapType> {
    if let Some(devtype) = dev.devtype() {
        return match devtype {
            "usb_device" => Some(CapType::UsbDev),
            "usb_interface" => Some(CapType::UsbInterface),
            "scsi_host" => Some(CapType::ScsiHost),
            "scsi_target" => Some(CapType::ScsiTarget),
            "scsi_device" => Some(CapType::Scsi),
            "disk" => Some(CapType::Storage),
            "wlan" => Some(CapType::Net),
            "drm_minor" => Some(CapType::Drm),
            "ap_card" => Some(CapType::ApCard),
            "ap_queue" => Some(CapType::ApQueue),
            "qeth_generic" | "qeth_layer2" | "qeth_layer3" => Some(CapType::CcwGroupDev),
            _ => None,
        };
    }
    let mut t = None;
    if dev.has_prop("PCI_CLASS") {
        t = Some(CapType::Pci);
    }
    if dev.has_prop("INTERFACE") {
        t = Some(CapType::Net);
    }
    match dev.subsystem.as_deref() {
        Some("scsi_generic") => Some(CapType::ScsiGeneric),
        Some("mdev") => Some(CapType::Mdev),
        Some("ccw") => Some(CapType::CcwDev),
        Some("css") => Some(CapType::CssDev),
        Some("vdpa") => Some(CapType::Vdpa),
        Some("matrix") => Some(CapType::ApMatrix),
        Some("mtty") => Some(CapType::MdevTypes),
        _ => t,
    }
}

/// `nodeDeviceGenerateName`: `<subsystem>_<sysname>[_<suffix>]` with every
/// non-alphanumeric character replaced by `_`.
pub(crate) fn generate_name(
    subsystem: Option<&str>,
    sysname: &str,
    suffix: Option<&str>,
) -> String {
    let mut s = format!("{}_{}", subsystem.unwrap_or("(null)"), sysname);
    if let Some(x) = suffix {
        s.push('_');
        s.push_str(x);
    }
    // libvirt replaces byte by byte: a multi-byte character gives one `_`
    // per byte. U+FFFD stands for one byte that was not UTF-8.
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if c.is_ascii_alphanumeric() => out.push(c),
            char::REPLACEMENT_CHARACTER => out.push('_'),
            c => out.extend(std::iter::repeat_n('_', c.len_utf8())),
        }
    }
    out
}

/// The name of the bound driver (`nodeDeviceUpdateDriverName`); `Err` when there is no
/// `driver` link at all.
pub(crate) fn driver_name(root: &HostRoot, dir: &SysDir) -> std::io::Result<Option<String>> {
    let name = dir.link_name("driver")?;
    // libvirt requires the link to be accessible before resolving it. The kernel's links
    // always are: it takes a device's `driver` link away before the driver goes
    // (`driver_sysfs_remove`), and driver directories are open to all. A fake tree's link
    // may dangle, so it is looked at there (the walk to `/sys/bus/*/drivers/*` is the
    // dearest lookup of a re-read).
    Ok(name.filter(|_| root.is_host() || dir.exists("driver")))
}

/// Build one device from a udev device (`udevAddOneDevice` minus parent).
fn build_device(ctx: &Ctx, dev: &UdevDevice) -> Option<Device> {
    let Some(t) = device_type(dev) else {
        tracing::debug!(
            "Could not determine device type for device with sysfs name '{}'",
            dev.sysname
        );
        return None;
    };
    let (name, cap) = match t {
        CapType::Pci => pci::process(ctx, dev)?,
        CapType::Net => net::process(ctx, dev)?,
        CapType::Storage => storage::process(dev)?,
        CapType::UsbDev => misc::usb_device(dev)?,
        CapType::UsbInterface => misc::usb_interface(dev)?,
        CapType::ScsiHost => misc::scsi_host(ctx.root, dev)?,
        CapType::Scsi => misc::scsi_device(dev)?,
        CapType::ScsiTarget => misc::scsi_target(ctx.root, dev)?,
        CapType::ScsiGeneric => misc::scsi_generic(dev)?,
        CapType::Drm => misc::drm(dev)?,
        CapType::Mdev => mdev::mdev_device(ctx.root, dev)?,
        CapType::MdevTypes => mdev::mdev_parent(ctx.root, dev)?,
        CapType::CcwDev => s390::ccw(dev)?,
        CapType::CssDev => s390::css(dev)?,
        CapType::ApCard => s390::ap_card(dev)?,
        CapType::ApQueue => s390::ap_queue(dev)?,
        CapType::ApMatrix => s390::ap_matrix(dev)?,
        CapType::Vdpa => s390::vdpa(ctx.root, dev)?,
        CapType::CcwGroupDev => s390::ccwgroup(dev)?,
        // udevGetDeviceType never yields these.
        CapType::System
        | CapType::FcHost
        | CapType::Vports
        | CapType::Vpd
        | CapType::CcwGroupMember => return None,
    };
    let mut d = Device::new(name, cap);
    d.idents.set(Ident::SysfsPath, Some(&dev.host_syspath));
    d.set_devnode(dev.devnode().map(str::to_owned), dev.devlinks.clone());
    let driver = driver_name(ctx.root, &SysDir::open(&dev.syspath))
        .ok()
        .flatten();
    d.idents.set(Ident::Driver, driver.as_deref());
    Some(d)
}

/// Enumerate every device libvirt 11.3's udev backend would list, with
/// `computer` first. Never panics on odd sysfs content: devices libvirt
/// would discard are skipped (logged at debug level).
pub fn enumerate(root: &HostRoot) -> Vec<Device> {
    let ctx = Ctx::new(root);
    let syspaths = scan_syspaths(root);
    let parts = read_devices(&ctx, &syspaths);
    let found = parts.iter().map(Vec::len).sum::<usize>();
    // Sized once: growing by doubling would hold two copies of the list at its peak.
    let mut devices: Vec<Device> = Vec::with_capacity(found + 1);
    devices.push(system::computer(root));
    let mut by_name: HashMap<Box<str>, usize> = HashMap::with_capacity(found + 1);
    by_name.insert("computer".into(), 0);
    // syspath (inside root) -> the device there, for parent lookup; the paths are borrowed.
    let mut by_path: HashMap<&Path, usize> = HashMap::with_capacity(found);

    // Back in the enumeration order by taking from the parts in turn, rather than
    // gathering them into one more list first.
    let n = parts.len().max(1);
    let mut parts: Vec<_> = parts
        .into_iter()
        .map(|p| p.into_iter().peekable())
        .collect();
    for (i, syspath) in syspaths.iter().enumerate() {
        let Some((_, mut dev)) = parts
            .get_mut(i % n)
            .and_then(|p| p.next_if(|(j, _)| *j == i))
        else {
            continue;
        };
        let syspath = syspath.as_path();
        // udevSetParent: nearest ancestor directory that is a known device.
        let mut parent = None;
        let mut p = syspath.parent();
        while let Some(pp) = p {
            if pp == root.path() {
                break;
            }
            if let Some(&d) = by_path.get(pp) {
                parent = Some(d);
                break;
            }
            p = pp.parent();
        }
        let parent = parent.map_or("computer", |d| devices[d].name());
        dev.idents.set(Ident::Parent, Some(parent));
        // virNodeDeviceObjListAssignDef replaces a device of the same name.
        let at = match by_name.get(dev.name()) {
            Some(&at) => {
                devices[at] = dev;
                at
            }
            None => {
                by_name.insert(dev.name().into(), devices.len());
                devices.push(dev);
                devices.len() - 1
            }
        };
        by_path.insert(syspath, at);
    }
    devices
}

/// Reads the device at each syspath on as many threads as there are CPUs (up to 4): each
/// device is a few dozen small sysfs reads, independent of the others, so a large host is
/// read that much sooner. The threads are gone when this returns. Returns each device
/// found with the index of its syspath, in parts: part t of n holds what was found at
/// indices t, t + n, t + 2n..., in order.
fn read_devices(ctx: &Ctx, syspaths: &[PathBuf]) -> Vec<Vec<(usize, Device)>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let read_one = |syspath: &PathBuf| -> Option<Device> {
        let udev = UdevDevice::load(ctx.root, syspath)?;
        if udev
            .subsystem
            .as_deref()
            .is_none_or(|s| SUBSYSTEM_IGNORED.contains(&s))
        {
            return None;
        }
        let dev = build_device(ctx, &udev);
        if dev.is_none() {
            tracing::debug!("Discarding device {}", udev.host_syspath);
        }
        dev
    };
    // Below a few hundred devices a thread costs more than it saves.
    if threads == 1 || syspaths.len() < 512 {
        return vec![syspaths
            .iter()
            .enumerate()
            .filter_map(|(i, p)| read_one(p).map(|d| (i, d)))
            .collect()];
    }
    // Thread t reads paths t, t + n, t + 2n...: kinds of devices come in runs, and this
    // spreads the expensive ones.
    let parts: Vec<Vec<(usize, Device)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..syspaths.len())
                        .step_by(threads)
                        .filter_map(|i| read_one(&syspaths[i]).map(|d| (i, d)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    parts
}

/// Discover the one device at `host_syspath` (`/sys/devices/...` as the host names it),
/// as libvirt's `udevAddOneDevice` does for a uevent. `parent_of` maps a host syspath to
/// the name of the known device there; the parent is the nearest ancestor directory it
/// knows, else `computer`. `None` when there is nothing libvirt would list there (an
/// unsupported device, or one that vanished while being read).
pub fn discover_device(
    root: &HostRoot,
    host_syspath: &str,
    parent_of: impl Fn(&str) -> Option<String>,
) -> Option<Device> {
    let ctx = Ctx::new(root);
    let syspath = root.join(host_syspath);
    let udev = UdevDevice::load(root, &syspath)?;
    if udev
        .subsystem
        .as_deref()
        .is_none_or(|s| SUBSYSTEM_IGNORED.contains(&s))
    {
        return None;
    }
    let mut dev = build_device(&ctx, &udev)?;
    let mut parent = None;
    let mut p = Path::new(host_syspath).parent();
    while let Some(pp) = p {
        if pp == Path::new("/") {
            break;
        }
        if let Some(n) = pp.to_str().and_then(&parent_of) {
            parent = Some(n);
            break;
        }
        p = pp.parent();
    }
    dev.idents
        .set(Ident::Parent, Some(parent.as_deref().unwrap_or("computer")));
    Some(dev)
}

/// Re-read what libvirt re-reads on `GetXMLDesc`
/// (`nodeDeviceUpdateDriverName` + `virNodeDeviceUpdateCaps`), each attribute looked up
/// from the device's held directory.
pub(crate) fn refresh(dev: &mut Device, root: &HostRoot, held: &HeldDir) {
    let Some(path) = dev.sysfs_path().map(str::to_owned) else {
        return;
    };
    let mut dir = held.dir(root.join(&path));
    // Interfaces, disks, SCSI generic and DRM devices belong to a class, not a bus: the
    // kernel never binds them to a driver, so their driver is as found.
    let class_device = matches!(
        dev.caps.first(),
        Some(Cap::Net(_) | Cap::Storage(_) | Cap::ScsiGeneric(_) | Cap::Drm(_))
    );
    if !class_device {
        let driver = match driver_name(root, &dir) {
            Ok(name) => name,
            // No driver link: unbound, or the held directory was deleted (a fake tree
            // rebuilt): then it is opened anew and asked again.
            Err(_) if dir.is_deleted() => {
                held.forget(dir);
                dir = held.dir(root.join(&path));
                driver_name(root, &dir).ok().flatten()
            }
            Err(_) => None,
        };
        dev.idents.set(Ident::Driver, driver.as_deref());
    }
    for cap in dev.caps.iter_mut() {
        match cap {
            Cap::Net(n) => {
                // An interface whose link state cannot be read may be one whose held
                // directory was deleted (a fake tree rebuilt): then it is opened anew.
                if !net::link_info(root, Some(&dir), n) && dir.is_deleted() {
                    held.forget(dir);
                    dir = held.dir(root.join(&path));
                    net::link_info(root, Some(&dir), n);
                }
                n.features = net::features(root, &root.class_dir(), n.ifname.as_deref());
            }
            Cap::Pci(p) => {
                pci::dynamic_caps(root, &dir, p, false);
            }
            Cap::ScsiHost(h) => misc::scsi_host_caps(root, h),
            Cap::ScsiTarget(t) => misc::scsi_target_caps(root, &path, t),
            // On failure libvirt fails the query; the list is left empty.
            Cap::Css(c) => c.mdev_types = mdev::mdev_types(&dir).unwrap_or_default(),
            Cap::ApMatrix(t) => *t = mdev::mdev_types(&dir).unwrap_or_default(),
            Cap::MdevTypes(m) => m.mdev_types = mdev::mdev_types(&dir).unwrap_or_default(),
            // virNodeDeviceGetCCWDynamicCaps / virNodeDeviceGetCCWGroupDynamicCaps (11.3):
            // group membership can change without a uevent. Where libvirt fails the query
            // because a group lost its members, the list is shown empty.
            Cap::Ccw(c) => c.group_dev = s390::group_device(dir.path()),
            Cap::CcwGroup(g) => g.members = s390::group_members(dir.path()).unwrap_or_default(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_replace_non_alphanumerics() {
        assert_eq!(
            generate_name(Some("net"), "eth0", Some("02:fc:00:00:00:01")),
            "net_eth0_02_fc_00_00_00_01"
        );
        assert_eq!(
            generate_name(Some("pci"), "0000:00:1f.2", None),
            "pci_0000_00_1f_2"
        );
    }

    #[test]
    fn enumeration_order_puts_parents_first_and_dm_last() {
        let mut v = [
            PathBuf::from("/sys/devices/virtual/block/dm-0"),
            PathBuf::from("/sys/devices/pci0000:00/0000:00:01.0/x"),
            PathBuf::from("/sys/devices/pci0000:00/0000:00:01.0"),
            PathBuf::from("/sys/devices/pci0000:00/0000:00:01.0-a"),
        ];
        v.sort_by(|a, b| device_order(a, b));
        assert_eq!(v[0], PathBuf::from("/sys/devices/pci0000:00/0000:00:01.0"));
        assert_eq!(
            v[1],
            PathBuf::from("/sys/devices/pci0000:00/0000:00:01.0/x")
        );
        assert_eq!(v[3], PathBuf::from("/sys/devices/virtual/block/dm-0"));
    }
}
