//! Network interfaces: `udevProcessNetworkInterface`,
//! `virNetDevGetLinkInfo` and `virNetDevGetFeatures`.

use super::{generate_name, Ctx};
use crate::hostroot::HostRoot;
use crate::model::{Cap, NetCap, NetSubtype, IF_STATES};
use crate::sysdir::SysDir;
use crate::udev::{parse_ui, UdevDevice};

pub(super) fn process(ctx: &Ctx, dev: &UdevDevice) -> Option<(String, Cap)> {
    let subtype = if dev.devtype() == Some("wlan") {
        NetSubtype::Ieee80211
    } else {
        NetSubtype::Ieee80203
    };
    let ifname = dev.prop("INTERFACE").map(Into::into);
    let address = dev.string_attr("address").map(Into::into);
    let address_len = match dev.sysattr("addr_len") {
        None => 0,
        Some(s) => parse_ui(&s, 0)?,
    };
    let name = generate_name(dev.subsystem.as_deref(), &dev.sysname, address.as_deref());
    let mut net = NetCap {
        ifname,
        address,
        address_len,
        subtype,
        ..Default::default()
    };
    if !link_info(ctx.root, None, &mut net) {
        return None;
    }
    net.features = features(ctx.root, &ctx.root.class_dir(), net.ifname.as_deref());
    Some((name, Cap::Net(Box::new(net))))
}

/// `virNetDevGetLinkInfo`; false where libvirt fails (the device is then
/// dropped at discovery, and GetXMLDesc fails on refresh).
///
/// libvirt reads `/sys/class/net/IFNAME/`, a link to the interface's own directory: when
/// `dir` is that directory (it bears the interface's name), it is read from there.
pub(crate) fn link_info(root: &HostRoot, dir: Option<&SysDir>, net: &mut NetCap) -> bool {
    let Some(ifname) = net.ifname.as_deref() else {
        return false;
    };
    let class_dir;
    let dir = match dir.filter(|d| d.name() == Some(ifname)) {
        Some(d) => d,
        None => {
            class_dir = SysDir::open(&root.join("/sys/class/net").join(ifname));
            &class_dir
        }
    };
    let Ok(buf) = dir.read("operstate", crate::hostroot::READ_MAX) else {
        tracing::debug!("The interface '{ifname}' was removed before we could query it.");
        return false;
    };
    let Ok(buf) = std::str::from_utf8(&buf) else {
        return false;
    };
    let Some((state, _)) = buf.split_once('\n') else {
        return false;
    };
    let Some(idx) = IF_STATES
        .iter()
        .position(|s| *s == state)
        .filter(|i| *i > 0)
    else {
        tracing::debug!("Unable to parse: {buf}");
        return false;
    };
    net.link_state = idx as u8;
    if state != "up" {
        net.link_speed = 0;
        return true;
    }
    match dir.read("speed", crate::hostroot::READ_MAX) {
        Ok(b) => {
            let s = String::from_utf8_lossy(&b);
            let Some(num) = s.strip_suffix('\n') else {
                return false;
            };
            match parse_ui(num, 10) {
                Some(v) => net.link_speed = v,
                None => return false,
            }
        }
        // Devices that do not report a speed fail the read with EINVAL.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(_) => return false,
    }
    true
}

/// `virNetDevGetFeatures`: ethtool ioctls by name plus the RDMA check.
/// (switchdev needs devlink over netlink; not reported yet.)
/// `class` is the root's `/sys/class`.
pub(crate) fn features(root: &HostRoot, class: &SysDir, ifname: Option<&str>) -> u16 {
    let Some(ifname) = ifname else { return 0 };
    let mut f = crate::ethtool::features(ifname);
    if class.exists("infiniband") && rdma(root, ifname) {
        f |= crate::ethtool::F_RDMA;
    }
    f
}

/// `virNetDevRDMAFeature`: an InfiniBand device shares the PCI resource file.
fn rdma(root: &HostRoot, ifname: &str) -> bool {
    let ib = root.join("/sys/class/infiniband");
    let Ok(rd) = std::fs::read_dir(&ib) else {
        return false;
    };
    let Ok(mine) = crate::hostroot::read(
        root.join("/sys/class/net")
            .join(ifname)
            .join("device/resource"),
    ) else {
        return false;
    };
    rd.flatten().any(|e| {
        crate::hostroot::read(e.path().join("device/resource"))
            .is_ok_and(|r| !r.is_empty() && r == mine)
    })
}
