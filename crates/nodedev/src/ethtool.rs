//! Network interface features through the `SIOCETHTOOL` ioctl, queried by
//! interface name like libvirt's `virNetDevGetFeatures` (legacy getters,
//! `ETHTOOL_GFLAGS`, then `ETHTOOL_GFEATURES` for the UDP tunnel bit).
//! The only `unsafe` code of the crate lives here.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GRXCSUM: u32 = 0x14;
const ETHTOOL_GTXCSUM: u32 = 0x16;
const ETHTOOL_GSG: u32 = 0x18;
const ETHTOOL_GTSO: u32 = 0x1e;
const ETHTOOL_GFLAGS: u32 = 0x25;
const ETHTOOL_GGSO: u32 = 0x23;
const ETHTOOL_GGRO: u32 = 0x2b;
const ETHTOOL_GFEATURES: u32 = 0x3a;

const ETH_FLAG_TXVLAN: u32 = 1 << 7;
const ETH_FLAG_RXVLAN: u32 = 1 << 8;
const ETH_FLAG_LRO: u32 = 1 << 15;
const ETH_FLAG_NTUPLE: u32 = 1 << 27;
const ETH_FLAG_RXHASH: u32 = 1 << 28;

// Bit positions in crate::model::NET_FEATURES.
const F_RX: u16 = 1 << 0;
const F_TX: u16 = 1 << 1;
const F_SG: u16 = 1 << 2;
const F_TSO: u16 = 1 << 3;
const F_GSO: u16 = 1 << 4;
const F_GRO: u16 = 1 << 5;
const F_LRO: u16 = 1 << 6;
const F_RXVLAN: u16 = 1 << 7;
const F_TXVLAN: u16 = 1 << 8;
const F_NTUPLE: u16 = 1 << 9;
const F_RXHASH: u16 = 1 << 10;
pub(crate) const F_RDMA: u16 = 1 << 11;
const F_TXUDPTNL: u16 = 1 << 12;

/// libvirt's TX_UDP_TNL bit and the number of feature blocks it asks for.
const TX_UDP_TNL: usize = 25;
const GFEATURES_SIZE: usize = 2;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct FeaturesBlock {
    available: u32,
    requested: u32,
    active: u32,
    never_changed: u32,
}

#[repr(C)]
struct GFeatures {
    cmd: u32,
    size: u32,
    features: [FeaturesBlock; GFEATURES_SIZE],
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

struct Control {
    fd: BorrowedFd<'static>,
    name: [u8; libc::IFNAMSIZ],
}

/// The socket every ethtool query goes through: made once, not per query (it only
/// carries ioctls, which may run on it from several threads at once).
static SOCKET: OnceLock<Option<OwnedFd>> = OnceLock::new();

fn socket() -> Option<BorrowedFd<'static>> {
    let fd = SOCKET.get_or_init(|| {
        // SAFETY: plain socket(2) call; the result is checked before use and
        // owned by OwnedFd from then on.
        let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        // SAFETY: raw is a fresh, valid descriptor that nothing else owns.
        (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw) })
    });
    fd.as_ref().map(|fd| fd.as_fd())
}

impl Control {
    fn open(ifname: &str) -> Option<Control> {
        if ifname.len() >= libc::IFNAMSIZ || ifname.as_bytes().contains(&0) {
            return None;
        }
        let mut name = [0u8; libc::IFNAMSIZ];
        name[..ifname.len()].copy_from_slice(ifname.as_bytes());
        Some(Control {
            fd: socket()?,
            name,
        })
    }

    /// Issue SIOCETHTOOL with `data` as the ethtool command buffer.
    fn ioctl<T>(&self, data: &mut T) -> bool {
        let mut ifr = IfReq {
            name: self.name,
            data: data as *mut T as *mut libc::c_void,
            _pad: [0; 16],
        };
        // SAFETY: ifr is a properly laid out struct ifreq (name + pointer,
        // padded to the kernel's size) and data points to a live, writable
        // ethtool command structure of the type the command expects.
        let rc = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                SIOCETHTOOL as _,
                &mut ifr as *mut IfReq,
            )
        };
        rc == 0
    }

    fn value(&self, cmd: u32) -> Option<u32> {
        let mut v = EthtoolValue { cmd, data: 0 };
        if self.ioctl(&mut v) {
            Some(v.data)
        } else {
            None
        }
    }
}

/// Feature bitmap (see `crate::model::NET_FEATURES`) for `ifname`; empty
/// when the kernel does not know the interface (e.g. over a fake tree).
pub fn features(ifname: &str) -> u16 {
    let Some(ctl) = Control::open(ifname) else {
        return 0;
    };
    let mut out = 0u16;
    // An interface the kernel does not know (a fake tree, one just gone) answers nothing:
    // one refusal is enough to tell.
    let rx = ctl.value(ETHTOOL_GRXCSUM);
    if rx.is_none() && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENODEV) {
        return 0;
    }
    if matches!(rx, Some(d) if d > 0) {
        out |= F_RX;
    }
    for (cmd, bit) in [
        (ETHTOOL_GTXCSUM, F_TX),
        (ETHTOOL_GSG, F_SG),
        (ETHTOOL_GTSO, F_TSO),
        (ETHTOOL_GGSO, F_GSO),
        (ETHTOOL_GGRO, F_GRO),
    ] {
        if matches!(ctl.value(cmd), Some(d) if d > 0) {
            out |= bit;
        }
    }
    if let Some(flags) = ctl.value(ETHTOOL_GFLAGS).filter(|d| *d > 0) {
        for (flag, bit) in [
            (ETH_FLAG_LRO, F_LRO),
            (ETH_FLAG_RXVLAN, F_RXVLAN),
            (ETH_FLAG_TXVLAN, F_TXVLAN),
            (ETH_FLAG_NTUPLE, F_NTUPLE),
            (ETH_FLAG_RXHASH, F_RXHASH),
        ] {
            if flags & flag != 0 {
                out |= bit;
            }
        }
    }
    let mut g = GFeatures {
        cmd: ETHTOOL_GFEATURES,
        size: GFEATURES_SIZE as u32,
        features: [FeaturesBlock::default(); GFEATURES_SIZE],
    };
    if ctl.ioctl(&mut g) && g.features[TX_UDP_TNL / 32].active & (1 << (TX_UDP_TNL % 32)) != 0 {
        out |= F_TXUDPTNL;
    }
    out
}
