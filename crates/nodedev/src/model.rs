//! The device model: what libvirt's `virNodeDeviceDef` holds, as plain data.

use crate::idents::{Ident, Idents};

/// Capability types, in libvirt's `virNodeDevCapType` order (which is also
/// the order of the `VIR_CONNECT_LIST_NODE_DEVICES_CAP_*` bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CapType {
    System,
    Pci,
    UsbDev,
    UsbInterface,
    Net,
    ScsiHost,
    ScsiTarget,
    Scsi,
    Storage,
    FcHost,
    Vports,
    ScsiGeneric,
    Drm,
    MdevTypes,
    Mdev,
    CcwDev,
    CssDev,
    Vdpa,
    ApCard,
    ApQueue,
    ApMatrix,
    Vpd,
    CcwGroupDev,
    CcwGroupMember,
}

impl CapType {
    pub const ALL: [CapType; 24] = [
        CapType::System,
        CapType::Pci,
        CapType::UsbDev,
        CapType::UsbInterface,
        CapType::Net,
        CapType::ScsiHost,
        CapType::ScsiTarget,
        CapType::Scsi,
        CapType::Storage,
        CapType::FcHost,
        CapType::Vports,
        CapType::ScsiGeneric,
        CapType::Drm,
        CapType::MdevTypes,
        CapType::Mdev,
        CapType::CcwDev,
        CapType::CssDev,
        CapType::Vdpa,
        CapType::ApCard,
        CapType::ApQueue,
        CapType::ApMatrix,
        CapType::Vpd,
        CapType::CcwGroupDev,
        CapType::CcwGroupMember,
    ];

    /// The ListAllNodeDevices flag bits of every capability type: derived from [`ALL`], so
    /// a new type is listable as soon as it is in that list.
    ///
    /// [`ALL`]: CapType::ALL
    pub const LIST_MASK: u32 = {
        let mut mask = 0;
        let mut i = 0;
        while i < CapType::ALL.len() {
            mask |= 1 << (CapType::ALL[i] as u32);
            i += 1;
        }
        mask
    };

    /// libvirt's `virNodeDevCapTypeToString`.
    pub fn name(self) -> &'static str {
        match self {
            CapType::System => "system",
            CapType::Pci => "pci",
            CapType::UsbDev => "usb_device",
            CapType::UsbInterface => "usb",
            CapType::Net => "net",
            CapType::ScsiHost => "scsi_host",
            CapType::ScsiTarget => "scsi_target",
            CapType::Scsi => "scsi",
            CapType::Storage => "storage",
            CapType::FcHost => "fc_host",
            CapType::Vports => "vports",
            CapType::ScsiGeneric => "scsi_generic",
            CapType::Drm => "drm",
            CapType::MdevTypes => "mdev_types",
            CapType::Mdev => "mdev",
            CapType::CcwDev => "ccw",
            CapType::CssDev => "css",
            CapType::Vdpa => "vdpa",
            CapType::ApCard => "ap_card",
            CapType::ApQueue => "ap_queue",
            CapType::ApMatrix => "ap_matrix",
            CapType::Vpd => "vpd",
            CapType::CcwGroupDev => "ccwgroup",
            CapType::CcwGroupMember => "ccwgroup_member",
        }
    }

    /// libvirt's `virNodeDevCapTypeFromString`.
    pub fn from_name(s: &str) -> Option<CapType> {
        CapType::ALL.iter().copied().find(|c| c.name() == s)
    }

    /// The `VIR_CONNECT_LIST_NODE_DEVICES_CAP_*` bit for this type.
    pub fn list_flag(self) -> u32 {
        1 << (self as u32)
    }
}

/// A PCI address (domain:bus:slot.function).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PciAddr {
    pub domain: u32,
    pub bus: u32,
    pub slot: u32,
    pub function: u32,
}

impl PciAddr {
    /// `virPCIDeviceAddressParse`: `DDDD:BB:SS.F` in hex.
    pub fn parse(s: &str) -> Option<PciAddr> {
        let (dom, rest) = s.split_once(':')?;
        let (bus, rest) = rest.split_once(':')?;
        let (slot, func) = rest.split_once('.')?;
        let h = |x: &str| crate::udev::parse_ui(x, 16);
        Some(PciAddr {
            domain: h(dom)?,
            bus: h(bus)?,
            slot: h(slot)?,
            function: h(func)?,
        })
    }

    /// `virPCIDeviceAddressAsString`: `%04x:%02x:%02x.%d`.
    pub fn to_sysfs_name(&self) -> String {
        format!(
            "{:04x}:{:02x}:{:02x}.{}",
            self.domain, self.bus, self.slot, self.function
        )
    }
}

/// DMI data of the `computer` device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemCap {
    pub product_name: Option<String>,
    pub hardware_vendor: Option<String>,
    pub hardware_version: Option<String>,
    pub hardware_serial: Option<String>,
    pub hardware_uuid: [u8; 16],
    pub firmware_vendor: Option<String>,
    pub firmware_version: Option<String>,
    pub firmware_release_date: Option<String>,
}

/// One end of a PCI Express link (`virPCIELink`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcieLink {
    /// -1 when not shown (the status side).
    pub port: i32,
    /// Index into libvirt's speed table ("", "2.5", "5", "8", "16", "32", "64").
    pub speed: u32,
    pub width: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PciExpress {
    pub link_cap: Option<PcieLink>,
    pub link_sta: Option<PcieLink>,
}

/// One mediated device type (`virMediatedDeviceType`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdevType {
    pub id: String,
    pub name: Option<String>,
    pub device_api: Option<String>,
    pub available_instances: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PciCap {
    /// -1 when unknown (never printed then).
    pub class: i32,
    pub addr: PciAddr,
    pub vendor: u32,
    pub product: u32,
    /// From pci.ids, shared by every device of that vendor and product.
    pub vendor_name: Option<std::sync::Arc<str>>,
    pub product_name: Option<std::sync::Arc<str>>,
    /// -1 when absent.
    pub numa_node: i32,
    /// 0 endpoint, 1 pci-bridge, 2 cardbus-bridge.
    pub hdr_type: u8,
    pub physical_function: Option<PciAddr>,
    /// `Some` when the device is SR-IOV capable (max or actual VFs non-zero).
    pub max_virtual_functions: u32,
    pub virtual_functions: Vec<PciAddr>,
    pub iommu_group: u32,
    pub iommu_group_devices: Vec<PciAddr>,
    pub mdev_types: Vec<MdevType>,
    /// `Some` when the device is PCI Express.
    pub pci_express: Option<PciExpress>,
    /// Vital Product Data, when the `vpd` file parses.
    pub vpd: Option<Box<Vpd>>,
    /// The device has `sriov_totalvfs` (an SR-IOV physical function) and `vpd`: seen at
    /// discovery, fixed by the kernel for the device's lifetime.
    pub sriov_capable: bool,
    pub vpd_capable: bool,
}

/// One vendor- or system-specific VPD field (`virPCIVPDResourceCustom`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpdCustom {
    /// The second keyword character (`V1` -> `'1'`).
    pub index: u8,
    pub value: String,
}

/// The VPD-R section (`virPCIVPDResourceRO`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VpdReadOnly {
    pub change_level: Option<String>,
    pub manufacture_id: Option<String>,
    pub part_number: Option<String>,
    pub serial_number: Option<String>,
    pub vendor: Vec<VpdCustom>,
}

/// The VPD-W section (`virPCIVPDResourceRW`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VpdReadWrite {
    pub asset_tag: Option<String>,
    pub vendor: Vec<VpdCustom>,
    pub system: Vec<VpdCustom>,
}

/// A parsed PCI VPD image (`virPCIVPDResource`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vpd {
    pub name: Option<String>,
    pub read_only: Option<VpdReadOnly>,
    pub read_write: Option<VpdReadWrite>,
}

impl PciCap {
    pub fn has_vf_cap(&self) -> bool {
        self.max_virtual_functions > 0 || !self.virtual_functions.is_empty()
    }
}

/// `virNodeDevNetCapType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NetSubtype {
    #[default]
    Ieee80203,
    Ieee80211,
}

/// Interface operational states (`virNetDevIfState`), index 0 = none.
pub const IF_STATES: [&str; 8] = [
    "",
    "unknown",
    "notpresent",
    "down",
    "lowerlayerdown",
    "testing",
    "dormant",
    "up",
];

/// `virNetDevFeature` names, in bitmap (and output) order.
pub const NET_FEATURES: [&str; 14] = [
    "rx",
    "tx",
    "sg",
    "tso",
    "gso",
    "gro",
    "lro",
    "rxvlan",
    "txvlan",
    "ntuple",
    "rxhash",
    "rdma",
    "txudptnl",
    "switchdev",
];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetCap {
    /// Inline up to 24 bytes (an interface name is at most 15; a MAC address 17), so an
    /// interface costs no allocation for either: a large host has tens of thousands.
    pub ifname: Option<compact_str::CompactString>,
    pub address: Option<compact_str::CompactString>,
    pub address_len: u32,
    pub link_speed: u32,
    /// Index into [`IF_STATES`].
    pub link_state: u8,
    /// Bit i set = `NET_FEATURES[i]`.
    pub features: u16,
    pub subtype: NetSubtype,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageCap {
    pub block: Option<String>,
    pub bus: Option<String>,
    pub drive_type: Option<String>,
    pub model: Option<String>,
    pub vendor: Option<String>,
    pub serial: Option<String>,
    pub removable: bool,
    pub media_available: bool,
    pub hotpluggable: bool,
    pub removable_media_size: u64,
    pub media_label: Option<String>,
    pub size: u64,
    pub logical_block_size: u64,
    pub num_blocks: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsbDevCap {
    pub bus: u32,
    pub device: u32,
    pub vendor: u32,
    pub product: u32,
    pub vendor_name: Option<String>,
    pub product_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsbIfCap {
    pub number: u32,
    pub class: u32,
    pub subclass: u32,
    pub protocol: u32,
    pub description: Option<String>,
}

/// Fibre Channel data of an FC-capable scsi_host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FcHost {
    pub wwnn: String,
    pub wwpn: String,
    pub fabric_wwn: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScsiHostCap {
    pub host: u32,
    /// -1 when unknown.
    pub unique_id: i32,
    pub fc_host: Option<FcHost>,
    /// `(max_vports, vports)` when vport operations are possible.
    pub vport_ops: Option<(i32, i32)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScsiCap {
    pub host: u32,
    pub bus: u32,
    pub target: u32,
    pub lun: u32,
    pub scsi_type: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScsiTargetCap {
    pub name: String,
    /// `(rport, wwpn)` when the target sits behind an FC remote port.
    pub fc_remote_port: Option<(String, String)>,
}

/// An active mediated device (`virNodeDevCapMdev`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MdevCap {
    /// The type id (basename of the `mdev_type` link).
    pub type_id: String,
    pub uuid: String,
    /// Basename of the parent device's sysfs path.
    pub parent_addr: String,
    pub iommu_group: u32,
    /// `<attr name= value=/>` from a persistent definition (mdevctl), in order.
    pub attrs: Vec<(String, String)>,
}

/// A channel subsystem address `cssid.ssid.devno` (`virCCWDeviceAddress`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CcwAddr {
    pub cssid: u32,
    pub ssid: u32,
    pub devno: u32,
}

impl CcwAddr {
    /// `virCCWDeviceAddressParseFromString`: three hex fields separated by
    /// dots, within the architectural limits.
    pub fn parse(s: &str) -> Option<CcwAddr> {
        let mut it = s.splitn(3, '.');
        let h = |x: Option<&str>| x.and_then(|x| crate::udev::parse_ui(x, 16));
        let a = CcwAddr {
            cssid: h(it.next())?,
            ssid: h(it.next())?,
            devno: h(it.next())?,
        };
        (a.cssid <= 0xfe && a.ssid <= 3 && a.devno <= 0xffff).then_some(a)
    }
}

/// `virNodeDevCCWStateType`, from the `online` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CcwState {
    Offline,
    Online,
}

impl CcwState {
    pub fn name(self) -> &'static str {
        match self {
            CcwState::Offline => "offline",
            CcwState::Online => "online",
        }
    }
}

/// A CCW device (`virNodeDevCapCCW` as used for `ccw`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CcwCap {
    pub addr: CcwAddr,
    /// `None` when `online` holds a value other than 0 or 1 (libvirt prints no `<state>`).
    pub state: Option<CcwState>,
    /// The node device name of the ccwgroup device this device is a member of
    /// (`group_device` link), which makes it a `ccwgroup_member`.
    pub group_dev: Option<String>,
}

/// `virNodeDevCCWGroupCapType`: the kind of group, from the udev `DEVTYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CcwGroupType {
    QethGeneric,
    QethLayer2,
    QethLayer3,
}

impl CcwGroupType {
    pub const ALL: [CcwGroupType; 3] = [
        CcwGroupType::QethGeneric,
        CcwGroupType::QethLayer2,
        CcwGroupType::QethLayer3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CcwGroupType::QethGeneric => "qeth_generic",
            CcwGroupType::QethLayer2 => "qeth_layer2",
            CcwGroupType::QethLayer3 => "qeth_layer3",
        }
    }

    pub fn from_name(s: &str) -> Option<CcwGroupType> {
        CcwGroupType::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// One `cdevN` link of a group (`virCCWGroupMemberType`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CcwGroupMember {
    /// The link's name (`cdev0`).
    pub reference: String,
    /// The member's node device name (`ccw_0_0_bd00`).
    pub device: String,
}

/// A ccwgroup device such as a qeth network card (`virNodeDevCapCCWGroup`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CcwGroupCap {
    pub state: Option<CcwState>,
    pub addr: CcwAddr,
    pub members: Vec<CcwGroupMember>,
    pub group_type: CcwGroupType,
    /// qeth `card_type` and `chpid`; libvirt prints `(null)` for a missing one.
    pub card_type: Option<String>,
    pub chpid: Option<String>,
}

/// A subchannel (`virNodeDevCapCCW` as used for `css`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CssCap {
    pub addr: CcwAddr,
    /// The device behind the subchannel (`dev_busid`), unless "none".
    pub channel_dev_addr: Option<CcwAddr>,
    pub mdev_types: Vec<MdevType>,
}

/// A mediated device parent that is not PCI/css/matrix (e.g. `mtty`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MdevParentCap {
    /// Name of its `/sys/class/mdev_bus` link.
    pub address: String,
    pub mdev_types: Vec<MdevType>,
}

/// One capability with its data (libvirt's `virNodeDevCapData`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cap {
    System(Box<SystemCap>),
    Pci(Box<PciCap>),
    Net(Box<NetCap>),
    Storage(Box<StorageCap>),
    UsbDev(Box<UsbDevCap>),
    UsbInterface(Box<UsbIfCap>),
    ScsiHost(Box<ScsiHostCap>),
    Scsi(Box<ScsiCap>),
    ScsiTarget(Box<ScsiTargetCap>),
    /// The `/dev/sgN` path.
    ScsiGeneric(Box<str>),
    /// DRM minor type: "primary", "control" or "render".
    Drm(&'static str),
    Mdev(Box<MdevCap>),
    Ccw(Box<CcwCap>),
    Css(Box<CssCap>),
    /// The `/dev/vhost-vdpa-N` character device, when there is one.
    Vdpa(Option<Box<str>>),
    /// AP adapter id.
    ApCard(u32),
    /// AP adapter and domain ids.
    ApQueue(u32, u32),
    /// The matrix device's mdev types (its address is always "matrix").
    ApMatrix(Vec<MdevType>),
    MdevTypes(Box<MdevParentCap>),
    CcwGroup(Box<CcwGroupCap>),
}

impl Cap {
    pub fn cap_type(&self) -> CapType {
        match self {
            Cap::System(_) => CapType::System,
            Cap::Pci(_) => CapType::Pci,
            Cap::Net(_) => CapType::Net,
            Cap::Storage(_) => CapType::Storage,
            Cap::UsbDev(_) => CapType::UsbDev,
            Cap::UsbInterface(_) => CapType::UsbInterface,
            Cap::ScsiHost(_) => CapType::ScsiHost,
            Cap::Scsi(_) => CapType::Scsi,
            Cap::ScsiTarget(_) => CapType::ScsiTarget,
            Cap::ScsiGeneric(_) => CapType::ScsiGeneric,
            Cap::Drm(_) => CapType::Drm,
            Cap::Mdev(_) => CapType::Mdev,
            Cap::Ccw(_) => CapType::CcwDev,
            Cap::Css(_) => CapType::CssDev,
            Cap::Vdpa(_) => CapType::Vdpa,
            Cap::ApCard(_) => CapType::ApCard,
            Cap::ApQueue(..) => CapType::ApQueue,
            Cap::ApMatrix(_) => CapType::ApMatrix,
            Cap::MdevTypes(_) => CapType::MdevTypes,
            Cap::CcwGroup(_) => CapType::CcwGroupDev,
        }
    }
}

/// A device's `/dev` node and its links (`<devnode type='dev'>`, `type='link'`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DevNodes {
    pub(crate) node: Option<Box<str>>,
    pub(crate) links: Box<[String]>,
}

/// One node device (libvirt's `virNodeDeviceDef` plus the object flags).
///
/// Kept compact (88 bytes and few allocations): a host's whole device set lives here,
/// 100,000 devices at the scale we serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Name; host path as shown in `<path>` (`/sys/devices/...`, none for `computer`);
    /// parent's name (none only for `computer`); driver.
    pub(crate) idents: Idents,
    /// Its `/dev` node and links, which few devices have (disks, SCSI generic, DRM).
    pub(crate) dev_nodes: Option<Box<DevNodes>>,
    /// Almost always one: kept inline rather than in an allocation of its own.
    pub(crate) caps: smallvec::SmallVec<[Cap; 1]>,
    pub(crate) active: bool,
    pub(crate) persistent: bool,
    pub(crate) autostart: bool,
    /// Its sysfs directory, held for re-reads (not part of what the device is).
    pub(crate) held: crate::sysdir::HeldDir,
}

impl Device {
    /// A device with one capability; udev devices are active, transient and
    /// not autostarted.
    pub fn new(name: impl Into<String>, cap: Cap) -> Device {
        Device {
            idents: Idents::new(&name.into()),
            dev_nodes: None,
            caps: smallvec::smallvec![cap],
            active: true,
            persistent: false,
            autostart: false,
            held: Default::default(),
        }
    }

    pub fn name(&self) -> &str {
        self.idents.name()
    }

    /// The parent's name; `None` only for `computer`.
    pub fn parent(&self) -> Option<&str> {
        self.idents.get(Ident::Parent)
    }

    pub fn sysfs_path(&self) -> Option<&str> {
        self.idents.get(Ident::SysfsPath)
    }

    pub fn devnode(&self) -> Option<&str> {
        self.dev_nodes.as_ref().and_then(|n| n.node.as_deref())
    }

    /// The `/dev` links to its node.
    pub fn devlinks(&self) -> &[String] {
        self.dev_nodes.as_ref().map_or(&[], |n| &n.links[..])
    }

    pub fn driver(&self) -> Option<&str> {
        self.idents.get(Ident::Driver)
    }

    pub fn cap_data(&self) -> &[Cap] {
        &self.caps
    }

    /// The capability list as `virNodeDeviceCapsListExport` reports it:
    /// each capability followed by the nested ones its flags enable.
    pub fn caps(&self) -> Vec<CapType> {
        let mut out = Vec::with_capacity(self.caps.len() + 1);
        for c in &self.caps {
            out.push(c.cap_type());
            match c {
                Cap::Pci(p) => {
                    if !p.mdev_types.is_empty() {
                        out.push(CapType::MdevTypes);
                    }
                    if p.vpd.is_some() {
                        out.push(CapType::Vpd);
                    }
                }
                Cap::Css(c) if !c.mdev_types.is_empty() => out.push(CapType::MdevTypes),
                Cap::ApMatrix(t) if !t.is_empty() => out.push(CapType::MdevTypes),
                Cap::Ccw(c) if c.group_dev.is_some() => out.push(CapType::CcwGroupMember),
                Cap::ScsiHost(h) => {
                    if h.fc_host.is_some() {
                        out.push(CapType::FcHost);
                    }
                    if h.vport_ops.is_some() {
                        out.push(CapType::Vports);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Whether the device matches a capability filter, nested caps included
    /// (`virNodeDeviceObjHasCap`).
    pub fn has_cap(&self, c: CapType) -> bool {
        self.caps().contains(&c)
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    pub fn autostart(&self) -> bool {
        self.autostart
    }

    /// Active / persistent / autostart flags (`virNodeDeviceObjSet*`).
    pub fn set_state(&mut self, active: bool, persistent: bool, autostart: bool) {
        self.active = active;
        self.persistent = persistent;
        self.autostart = autostart;
    }

    pub fn cap_data_mut(&mut self) -> &mut [Cap] {
        &mut self.caps
    }

    /// The mediated device data, for an mdev.
    pub fn mdev(&self) -> Option<&MdevCap> {
        self.caps.iter().find_map(|c| match c {
            Cap::Mdev(m) => Some(&**m),
            _ => None,
        })
    }

    /// `nodeDeviceObjFormatAddress`: the address mdevctl knows a parent by (PCI
    /// address, subchannel, `matrix`, or the mdev_bus name).
    pub fn mdev_parent_address(&self) -> Option<String> {
        self.caps.iter().find_map(|c| match c {
            Cap::Pci(p) => Some(p.addr.to_sysfs_name()),
            Cap::Css(c) => Some(format!(
                "{:x}.{:x}.{:04x}",
                c.addr.cssid, c.addr.ssid, c.addr.devno
            )),
            Cap::ApMatrix(_) => Some("matrix".to_owned()),
            Cap::MdevTypes(m) => Some(m.address.clone()),
            _ => None,
        })
    }

    /// The mdev types a parent offers (PCI, css, matrix or mdev_bus parent).
    pub fn mdev_types(&self) -> Option<&[MdevType]> {
        self.caps.iter().find_map(|c| match c {
            Cap::Pci(p) if !p.mdev_types.is_empty() => Some(&p.mdev_types[..]),
            Cap::Css(c) if !c.mdev_types.is_empty() => Some(&c.mdev_types[..]),
            Cap::ApMatrix(t) if !t.is_empty() => Some(&t[..]),
            Cap::MdevTypes(m) => Some(&m.mdev_types[..]),
            _ => None,
        })
    }

    pub fn set_parent(&mut self, p: Option<String>) {
        self.idents.set(Ident::Parent, p.as_deref());
    }

    pub fn set_sysfs_path(&mut self, p: Option<String>) {
        self.idents.set(Ident::SysfsPath, p.as_deref());
    }

    pub fn set_driver(&mut self, d: Option<String>) {
        self.idents.set(Ident::Driver, d.as_deref());
    }

    pub fn set_devnode(&mut self, d: Option<String>, links: Vec<String>) {
        self.dev_nodes = (d.is_some() || !links.is_empty()).then(|| {
            Box::new(DevNodes {
                node: d.map(String::into_boxed_str),
                links: links.into_boxed_slice(),
            })
        });
    }

    /// `(wwnn, wwpn)` of an fc_host capable scsi_host.
    pub fn scsi_host_wwns(&self) -> Option<(&str, &str)> {
        self.caps.iter().find_map(|c| match c {
            Cap::ScsiHost(h) => h
                .fc_host
                .as_ref()
                .map(|f| (f.wwnn.as_str(), f.wwpn.as_str())),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::CapType;

    #[test]
    fn list_mask_covers_every_capability_type_once() {
        // libvirt 11.3's VIR_CONNECT_LIST_NODE_DEVICES_CAP_SYSTEM … CAP_CCWGROUP_MEMBER:
        // bits 0 to 23 (22 and 23 are the ccwgroup ones, new since 9.0).
        assert_eq!(CapType::LIST_MASK, (1 << 24) - 1);
        assert_eq!(CapType::CcwGroupDev.list_flag(), 1 << 22);
        assert_eq!(CapType::CcwGroupMember.list_flag(), 1 << 23);
        for c in CapType::ALL {
            assert_eq!(CapType::from_name(c.name()), Some(c));
            assert_ne!(CapType::LIST_MASK & c.list_flag(), 0);
        }
    }

    #[test]
    fn a_device_stays_small() {
        // A host's whole device set is kept: 88 bytes plus the `Arc`'s 16 is one
        // 112-byte malloc chunk per device; 8 bytes more would make it 128.
        assert!(std::mem::size_of::<super::Device>() <= 88);
        assert!(std::mem::size_of::<super::Cap>() <= 24);
    }
}
