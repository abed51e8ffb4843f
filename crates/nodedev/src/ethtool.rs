//! Network interface features through the `SIOCETHTOOL` ioctl, queried by
//! interface name like libvirt's `virNetDevGetFeatures`.
//!
//! libvirt asks with eight ioctls (six legacy getters, `ETHTOOL_GFLAGS`, then
//! `ETHTOOL_GFEATURES` for the UDP tunnel bit). Every legacy answer is a mask over the
//! device's active features (`ethtool_get_feature_mask`, `__ethtool_get_flags` in the
//! kernel's net/ethtool/ioctl.c), so one `ETHTOOL_GFEATURES` gives them all, once the
//! kernel has said where each feature's bit is (its `ETH_SS_FEATURES` names, asked once).
//! Where that is not possible the eight ioctls are made, as libvirt makes them.
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
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;
/// Feature bits the one-ioctl path handles; the kernel has 64 at most today.
const MAX_FEATURES: usize = 32 * MAX_BLOCKS;
const MAX_BLOCKS: usize = 4;

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
    match FeatureBits::get(&ctl) {
        Ok(bits) => bits.features(&ctl),
        Err(NoBits::UnknownInterface) => 0,
        Err(NoBits::Unsupported) => legacy_features(&ctl),
    }
}

/// Why the one-ioctl path cannot answer.
enum NoBits {
    /// The kernel does not know the interface (a fake tree, one just gone): nothing to ask.
    UnknownInterface,
    /// The names could not be had or do not fit: libvirt's eight ioctls.
    Unsupported,
}

/// libvirt's eight queries.
fn legacy_features(ctl: &Control) -> u16 {
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

/// Which of the kernel's feature bits make up each of libvirt's features: the kernel's
/// masks for the legacy getters, by feature name.
const LEGACY_MASKS: [(u16, &[&str]); 11] = [
    (F_RX, &["rx-checksum"]),
    // NETIF_F_CSUM_MASK | NETIF_F_FCOE_CRC | NETIF_F_SCTP_CRC
    (
        F_TX,
        &[
            "tx-checksum-ipv4",
            "tx-checksum-ip-generic",
            "tx-checksum-ipv6",
            "tx-checksum-fcoe-crc",
            "tx-checksum-sctp",
        ],
    ),
    (F_SG, &["tx-scatter-gather", "tx-scatter-gather-fraglist"]),
    // NETIF_F_ALL_TSO
    (
        F_TSO,
        &[
            "tx-tcp-segmentation",
            "tx-tcp-ecn-segmentation",
            "tx-tcp-mangleid-segmentation",
            "tx-tcp6-segmentation",
        ],
    ),
    (F_GSO, &["tx-generic-segmentation"]),
    (F_GRO, &["rx-gro"]),
    // __ethtool_get_flags
    (F_LRO, &["rx-lro"]),
    (F_RXVLAN, &["rx-vlan-hw-parse"]),
    (F_TXVLAN, &["tx-vlan-hw-insert"]),
    (F_NTUPLE, &["rx-ntuple-filter"]),
    (F_RXHASH, &["rx-hashing"]),
];

/// Where libvirt's features sit in the kernel's feature bitmap.
struct FeatureBits {
    /// Blocks of 32 bits to ask for.
    blocks: usize,
    /// For each of libvirt's features, the kernel's bits that make it up.
    masks: Vec<(u16, [u32; MAX_BLOCKS])>,
}

#[repr(C)]
struct SsetInfo {
    cmd: u32,
    reserved: u32,
    sset_mask: u64,
    len: u32,
}

#[repr(C)]
struct GStrings {
    cmd: u32,
    string_set: u32,
    len: u32,
    data: [[u8; ETH_GSTRING_LEN]; MAX_FEATURES],
}

#[repr(C)]
struct GFeaturesAll {
    cmd: u32,
    size: u32,
    features: [FeaturesBlock; MAX_BLOCKS],
}

/// The names are the kernel's, the same for every interface: asked of the first
/// interface the kernel knows, then kept.
static FEATURE_BITS: OnceLock<Option<FeatureBits>> = OnceLock::new();

impl FeatureBits {
    fn get(ctl: &Control) -> Result<&'static FeatureBits, NoBits> {
        if let Some(bits) = FEATURE_BITS.get() {
            return bits.as_ref().ok_or(NoBits::Unsupported);
        }
        let bits = Self::ask(ctl)?;
        FEATURE_BITS
            .get_or_init(|| Some(bits))
            .as_ref()
            .ok_or(NoBits::Unsupported)
    }

    /// An interface unknown to the kernel cannot tell: the next one is asked. A kernel
    /// that answers but does not fit keeps the eight ioctls for good.
    fn ask(ctl: &Control) -> Result<FeatureBits, NoBits> {
        let mut info = SsetInfo {
            cmd: ETHTOOL_GSSET_INFO,
            reserved: 0,
            sset_mask: 1 << ETH_SS_FEATURES,
            len: 0,
        };
        if !ctl.ioctl(&mut info) {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENODEV) {
                return Err(NoBits::UnknownInterface);
            }
            let _ = FEATURE_BITS.set(None);
            return Err(NoBits::Unsupported);
        }
        let count = info.len as usize;
        if info.sset_mask != 1 << ETH_SS_FEATURES || count == 0 || count > MAX_FEATURES {
            let _ = FEATURE_BITS.set(None);
            return Err(NoBits::Unsupported);
        }
        let mut strings = Box::new(GStrings {
            cmd: ETHTOOL_GSTRINGS,
            string_set: ETH_SS_FEATURES,
            len: count as u32,
            data: [[0; ETH_GSTRING_LEN]; MAX_FEATURES],
        });
        if !ctl.ioctl(&mut *strings) || strings.len as usize != count {
            // The interface went away in between, or the set changed size: asked again
            // of the next interface.
            return Err(NoBits::Unsupported);
        }
        let names: Vec<&[u8]> = strings.data[..count]
            .iter()
            .map(|n| n.split(|b| *b == 0).next().unwrap_or(&[]))
            .collect();
        let mut masks = Vec::new();
        for (feature, wanted) in LEGACY_MASKS {
            let mut mask = [0u32; MAX_BLOCKS];
            for w in wanted {
                if let Some(i) = names.iter().position(|n| *n == w.as_bytes()) {
                    mask[i / 32] |= 1 << (i % 32);
                }
            }
            masks.push((feature, mask));
        }
        Ok(FeatureBits {
            blocks: count.div_ceil(32),
            masks,
        })
    }

    fn features(&self, ctl: &Control) -> u16 {
        let mut g = GFeaturesAll {
            cmd: ETHTOOL_GFEATURES,
            size: self.blocks as u32,
            features: [FeaturesBlock::default(); MAX_BLOCKS],
        };
        if !ctl.ioctl(&mut g) {
            // Unknown to the kernel (a fake tree, an interface just gone), or some other
            // refusal: libvirt's way says which.
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENODEV) {
                return 0;
            }
            return legacy_features(ctl);
        }
        let active = g.features.map(|b| b.active);
        let mut out = 0;
        for (feature, mask) in &self.masks {
            if active.iter().zip(mask).any(|(a, m)| a & m != 0) {
                out |= feature;
            }
        }
        // libvirt reads its UDP tunnel bit at a fixed place.
        if active[TX_UDP_TNL / 32] & (1 << (TX_UDP_TNL % 32)) != 0 {
            out |= F_TXUDPTNL;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-ioctl answer equals libvirt's eight on every interface of this host.
    #[test]
    fn one_query_answers_as_the_eight_do() {
        let mut seen = 0;
        for e in std::fs::read_dir("/sys/class/net").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(ctl) = Control::open(&name) else {
                continue;
            };
            let Ok(bits) = FeatureBits::get(&ctl) else {
                continue;
            };
            let one = bits.features(&ctl);
            assert_eq!(one, legacy_features(&ctl), "{name}");
            seen += 1;
        }
        assert!(seen > 0, "no interface answered the feature queries");
    }
}
