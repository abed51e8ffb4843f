//! The node-device queries (lists, lookups, XML, capabilities, autostart and state) and
//! event registration.

use nodedev::{CapType, Device};
use protocol::remote as r;
use protocol::{
    list_flags, VirError, REMOTE_NODE_DEVICE_CAPS_LIST_MAX, REMOTE_NODE_DEVICE_LIST_MAX,
};

use super::{check_flags, encode, lookup, lookup_shared, CallResult, RemoteProgram, Session};
use crate::access::Perm;

impl RemoteProgram {
    pub(super) async fn num_of_devices(
        &self,
        s: &Session,
        a: r::NodeNumOfDevicesArgs,
    ) -> CallResult {
        self.ensure(s, Perm::ConnectSearchNodeDevices, None).await?;
        check_flags(a.flags, 0, "nodeNumOfDevices")?;
        let list = self.driver.devices();
        let matching = list
            .iter()
            .filter(|d| has_cap_str(d, a.cap.as_deref()))
            .collect();
        let n = self.visible(s, matching).await.len();
        encode(&r::IntRet { value: n as i32 })
    }

    pub(super) async fn list_devices(&self, s: &Session, a: r::NodeListDevicesArgs) -> CallResult {
        check_maxnames(
            a.maxnames,
            REMOTE_NODE_DEVICE_LIST_MAX,
            "REMOTE_NODE_DEVICE_LIST_MAX",
        )?;
        self.ensure(s, Perm::ConnectSearchNodeDevices, None).await?;
        check_flags(a.flags, 0, "nodeListDevices")?;
        let list = self.driver.devices();
        let matching = list
            .iter()
            .filter(|d| has_cap_str(d, a.cap.as_deref()))
            .collect();
        let mut names = self.visible(s, matching).await;
        names.truncate(a.maxnames as usize);
        Ok(encode_names(&names, false))
    }

    pub(super) async fn list_all(&self, s: &Session, a: r::ListAllArgs) -> CallResult {
        check_flags(
            a.flags,
            list_flags::FILTERS_ALL,
            "nodeConnectListAllNodeDevices",
        )?;
        self.ensure(s, Perm::ConnectSearchNodeDevices, None).await?;
        let list = self.driver.devices();
        let matching = list
            .iter()
            .filter(|d| matches_list_flags(d, a.flags))
            .collect();
        let matching = self.visible(s, matching).await;
        if a.need_results == 0 {
            return encode(&r::ListAllRet {
                devices: Vec::new(),
                ret: matching.len() as u32,
            });
        }
        if matching.len() > REMOTE_NODE_DEVICE_LIST_MAX {
            return Err(VirError::rpc_internal(format!(
                "Too many node_devices '{}' for limit '{}'",
                matching.len(),
                REMOTE_NODE_DEVICE_LIST_MAX
            )));
        }
        Ok(encode_names(&matching, true))
    }

    pub(super) async fn lookup_by_name(&self, s: &Session, a: r::NameArgs) -> CallResult {
        let list = self.driver.devices();
        let dev = lookup(&list, &a.name)?;
        self.ensure(s, Perm::NodeDeviceGetattr, Some(dev.name()))
            .await?;
        encode(&r::NodeDeviceRet {
            dev: r::NodeDevice {
                name: dev.name().to_owned(),
            },
        })
    }

    pub(super) async fn lookup_scsi_host_by_wwn(
        &self,
        s: &Session,
        a: r::LookupScsiHostByWwnArgs,
    ) -> CallResult {
        check_flags(a.flags, 0, "nodeDeviceLookupSCSIHostByWWN")?;
        let list = self.driver.devices();
        let found = list
            .iter()
            .find(|d| d.scsi_host_wwns() == Some((a.wwnn.as_str(), a.wwpn.as_str())));
        match found {
            Some(d) => {
                self.ensure(s, Perm::NodeDeviceGetattr, Some(d.name()))
                    .await?;
                encode(&r::NodeDeviceRet {
                    dev: r::NodeDevice {
                        name: d.name().to_owned(),
                    },
                })
            }
            // libvirt 9.0's driver fails here without reporting an error.
            None => Err(VirError::unknown_cause()),
        }
    }

    pub(super) async fn get_xml_desc(&self, s: &Session, a: r::NameFlagsArgs) -> CallResult {
        // VIR_NODE_DEVICE_XML_INACTIVE (libvirt 10.1.0): the defined configuration.
        check_flags(a.flags, 1, "nodeDeviceGetXMLDesc")?;
        self.ensure_on(s, Perm::NodeDeviceRead, &a.name).await?;
        let list = self.driver.devices();
        let dev = self.driver.refreshed(lookup_shared(&list, &a.name)?);
        let inactive;
        let xml: &str = if a.flags & 1 != 0 {
            inactive = crate::manage::inactive_xml(&self.driver, &dev.device)?;
            &inactive
        } else {
            &dev.xml
        };
        // remote_node_device_get_xml_desc_ret is one string; encoded in place.
        let mut e = xdr::Encoder::new();
        e.put_str(xml);
        Ok(e.into_inner())
    }

    pub(super) async fn get_parent(&self, s: &Session, a: r::NameArgs) -> CallResult {
        self.ensure_on(s, Perm::NodeDeviceRead, &a.name).await?;
        let list = self.driver.devices();
        let dev = lookup(&list, &a.name)?;
        encode(&r::OptStringRet {
            value: dev.parent().map(str::to_owned),
        })
    }

    pub(super) async fn num_of_caps(&self, s: &Session, a: r::NameArgs) -> CallResult {
        self.ensure_on(s, Perm::NodeDeviceRead, &a.name).await?;
        let list = self.driver.devices();
        let dev = self.driver.refreshed(lookup_shared(&list, &a.name)?);
        encode(&r::IntRet {
            value: dev.device.caps().len() as i32,
        })
    }

    pub(super) async fn list_caps(&self, s: &Session, a: r::ListCapsArgs) -> CallResult {
        check_maxnames(
            a.maxnames,
            REMOTE_NODE_DEVICE_CAPS_LIST_MAX,
            "REMOTE_NODE_DEVICE_CAPS_LIST_MAX",
        )?;
        self.ensure_on(s, Perm::NodeDeviceRead, &a.name).await?;
        let list = self.driver.devices();
        let dev = self.driver.refreshed(lookup_shared(&list, &a.name)?);
        let names = dev
            .device
            .caps()
            .into_iter()
            .take(a.maxnames as usize)
            .map(|c| c.name().to_owned())
            .collect();
        encode(&r::NamesRet { names })
    }

    /// IsActive, IsPersistent, GetAutostart: a bit of the device's state.
    pub(super) async fn device_int(
        &self,
        s: &Session,
        name: &str,
        f: impl Fn(&Device) -> bool,
    ) -> CallResult {
        self.ensure_on(s, Perm::NodeDeviceRead, name).await?;
        let list = self.driver.devices();
        let dev = lookup(&list, name)?;
        encode(&r::IntRet {
            value: f(dev) as i32,
        })
    }

    pub(super) async fn event_register(
        &self,
        s: &mut Session,
        a: r::EventRegisterAnyArgs,
    ) -> CallResult {
        if !matches!(
            a.event_id,
            protocol::event_id::LIFECYCLE | protocol::event_id::UPDATE
        ) {
            return Err(VirError::rpc_internal(format!(
                "unsupported node device event ID {}",
                a.event_id
            )));
        }
        self.ensure(s, Perm::ConnectSearchNodeDevices, None).await?;
        let id = self.events.register(
            s.info.id,
            a.event_id,
            a.dev.map(|d| d.name),
            self.event_sink(s),
        );
        encode(&r::IntRet { value: id })
    }

    pub(super) async fn event_deregister(
        &self,
        s: &mut Session,
        a: r::EventDeregisterAnyArgs,
    ) -> CallResult {
        if !self.events.is_registered(s.info.id, a.callback_id) {
            return Err(VirError::rpc_internal(format!(
                "node device event callback {} not registered",
                a.callback_id
            )));
        }
        self.ensure(s, Perm::ConnectRead, None).await?;
        self.events.deregister(s.info.id, a.callback_id);
        Ok(Vec::new())
    }
}

/// A list reply (`remote_node_list_devices_ret`, or with `count_after`
/// `remote_connect_list_all_node_devices_ret`), encoded straight from the devices' names:
/// a large host's list is one buffer, not one string per device.
fn encode_names(devices: &[&Device], count_after: bool) -> Vec<u8> {
    let len: usize = devices.iter().map(|d| 8 + d.name().len()).sum();
    let mut e = xdr::Encoder::from_vec(Vec::with_capacity(len + 8));
    e.put_u32(devices.len() as u32);
    for d in devices {
        e.put_str(d.name());
    }
    if count_after {
        e.put_u32(devices.len() as u32);
    }
    e.into_inner()
}

fn check_maxnames(maxnames: i32, max: usize, what: &str) -> Result<(), VirError> {
    if maxnames < 0 {
        return Err(VirError::rpc("maxnames must be non-negative"));
    }
    if maxnames as usize > max {
        return Err(VirError::rpc(format!("maxnames > {what}")));
    }
    Ok(())
}

/// NUM_OF_DEVICES / LIST_DEVICES filter: no cap, or a capability the device has
/// (nested ones included); unknown names match nothing.
fn has_cap_str(d: &Device, cap: Option<&str>) -> bool {
    match cap {
        None => true,
        Some(c) => CapType::from_name(c).is_some_and(|c| d.has_cap(c)),
    }
}

/// virNodeDeviceMatch (libvirt 11.3): any requested capability, one of the requested
/// states and one of the requested persistences.
fn matches_list_flags(d: &Device, flags: u32) -> bool {
    let caps = flags & list_flags::FILTERS_CAP;
    if caps != 0 && !d.caps().iter().any(|&c| caps & c.list_flag() != 0) {
        return false;
    }
    either_of(
        flags,
        list_flags::ACTIVE,
        list_flags::INACTIVE,
        d.is_active(),
    ) && either_of(
        flags,
        list_flags::PERSISTENT,
        list_flags::TRANSIENT,
        d.is_persistent(),
    )
}

/// A pair of filter bits: neither asked means no filter; otherwise the one that says what
/// the device is must be among them.
fn either_of(flags: u32, yes: u32, no: u32, is: bool) -> bool {
    let want = if is { yes } else { no };
    flags & (yes | no) == 0 || flags & want != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listable_capability_is_within_the_accepted_cap_filter() {
        assert_eq!(CapType::LIST_MASK & !list_flags::FILTERS_CAP, 0);
    }

    #[test]
    fn maxnames_limits_give_rpc_errors() {
        assert_eq!(
            check_maxnames(65537, 65536, "REMOTE_NODE_DEVICE_LIST_MAX")
                .unwrap_err()
                .message,
            "maxnames > REMOTE_NODE_DEVICE_LIST_MAX"
        );
        assert!(check_maxnames(-1, 65536, "X").is_err());
        assert!(check_maxnames(65536, 65536, "X").is_ok());
    }
}
